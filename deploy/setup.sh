#!/usr/bin/env bash
# Create .venv (if missing) and install gcn with its development tools into it.
# Safe to run again: it only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# pip's output goes to .venv/pip-install.log, and to the terminal only when it fails
# (its build warnings would otherwise bury the demo's report).
.venv/bin/python -m pip install --quiet --upgrade pip >.venv/pip-install.log 2>&1 \
  || echo "setup: could not upgrade pip; going on with the one there (see .venv/pip-install.log)" >&2
if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' >>.venv/pip-install.log 2>&1; then
  grep -v "is ignored: it is neither a file nor a directory" .venv/pip-install.log >&2 || true
  echo "setup: pip install -e '.[dev]' failed (the whole log: .venv/pip-install.log)" >&2
  exit 1
fi
.venv/bin/python -c "import gcn.v1.node_pb2, node, crypto" >/dev/null
# libfaketime, for the clock-skew fault story (tests/fault): install it when missing and we can.
if [ ! -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] && ! command -v faketime >/dev/null \
   && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get install -y -qq faketime >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq faketime >/dev/null 2>&1; } \
    || echo "setup: could not install faketime; the clock-skew fault story will be skipped" >&2
fi
