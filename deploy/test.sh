#!/usr/bin/env bash
# The test command: set up, then check everything CI checks.
#   deploy/test.sh            # all of it
#   deploy/test.sh -k sync    # extra arguments go to pytest
# Runs: generated protobuf code is current, ruff, mypy, import-linter (the layering
# contracts in pyproject.toml), and pytest on SQLite and on PostgreSQL
# (GCN_TEST_POSTGRES_URL, default the local server's `test` database).
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export GCN_TEST_POSTGRES_URL=${GCN_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && command -v pg_ctlcluster >/dev/null; then
  echo "PostgreSQL is down; starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi

# protoc's mypy plugin says "Writing mypy to …" for every file it checks: only the verdict is kept.
without_plugin_chatter() { grep -v '^Writing mypy to ' || true; }
echo "== generated code";  python protos/generate.py --check 2>&1 | without_plugin_chatter
echo "== ruff";            ruff check .
echo "== mypy";            mypy
echo "== import-linter";   lint-imports --no-logo
echo "== pytest";          pytest "$@"
