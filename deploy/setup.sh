#!/usr/bin/env bash
# Create .venv (if missing) and install gcn with its development tools into it.
# Safe to run again: it only installs what changed. One line per step; pip's
# own output goes to .venv/pip-install.log, and to the terminal only when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LOG=.venv/pip-install.log
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  echo "setup: .venv made ($(.venv/bin/python -V))"
else
  echo "setup: .venv there ($(.venv/bin/python -V))"
fi
if .venv/bin/python -m pip install --quiet --upgrade pip >"$LOG" 2>&1; then
  echo "setup: $(.venv/bin/python -m pip --version | cut -d' ' -f1-2)"
else
  echo "setup: could not upgrade pip; going on with the one there (see $LOG)" >&2
fi
if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' >>"$LOG" 2>&1; then
  grep -v "is ignored: it is neither a file nor a directory" "$LOG" >&2 || true
  echo "setup: pip install -e '.[dev]' failed (the whole log: $LOG)" >&2
  exit 1
fi
.venv/bin/python -c "import gcn.v1.node_pb2, node, crypto" >/dev/null
# pyproject.toml is kept free of setuptools' warnings: say so if one comes back (not its
# "Editable installation." note, which every editable install gets).
if grep "BuildBackendWarning\|SetuptoolsDeprecationWarning" "$LOG" | grep -qv "Editable installation"; then
  echo "setup: gcn installed, but setuptools warned about pyproject.toml (see $LOG)" >&2
else
  echo "setup: gcn installed in .venv, editable, with its dev tools (pip's log: $LOG)"
fi
# libfaketime, for the clock-skew fault story (tests/fault): install it when missing and we can.
if [ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || command -v faketime >/dev/null; then
  :
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  if apt-get install -y -qq faketime >/dev/null 2>&1 \
     || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq faketime >/dev/null 2>&1; }; then
    echo "setup: faketime installed (for the clock-skew fault story)"
  else
    echo "setup: could not install faketime; the clock-skew fault story will be skipped" >&2
  fi
fi
