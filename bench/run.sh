#!/usr/bin/env bash
# The benchmarks, in one command: set up .venv (deploy/setup.sh), then run every
# benchmark module in bench/ (each `bench/NAME.py` as `python -m bench.NAME`),
# passing this script's arguments to each. See bench/README.md.
#
#   bench/run.sh                      # default sizes, SQLite in a temp dir
#   bench/run.sh --records 20000 --json /tmp/ingest.json
#   bench/run.sh --database-url postgresql+psycopg://user:pass@localhost/gcn_bench
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
status=0
for module in bench/*.py; do
  name=$(basename "$module" .py)
  [ "$name" = "__init__" ] && continue
  echo "== bench.$name"
  .venv/bin/python -m "bench.$name" "$@" || status=$?
done
exit "$status"
