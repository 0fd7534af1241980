#!/usr/bin/env bash
# The benchmarks, in one command: set up .venv (deploy/setup.sh), then run every
# benchmark module in bench/ (each `bench/NAME.py` with a `__main__` entry, as
# `python -m bench.NAME`: today bench.ingest, bench.replication and bench.search), passing
# this script's arguments to each. See bench/README.md.
#
#   bench/run.sh                      # default sizes, SQLite in a temp dir
#   bench/run.sh --quick              # small sizes, every module (~1-2 minutes)
#   bench/run.sh --records 20000 --json /tmp/bench.json
#   bench/run.sh --database-url postgresql+psycopg://user:pass@localhost/gcn_bench
#
# BENCH_SKIP_SETUP=1 skips deploy/setup.sh (a venv already set up, or shared).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_SKIP_SETUP:-}" != 1 ]; then
  bash deploy/setup.sh
fi
status=0
for module in bench/*.py; do
  grep -q '^if __name__ == "__main__":' "$module" || continue  # helpers, not benchmarks
  name=$(basename "$module" .py)
  echo "== bench.$name"
  .venv/bin/python -m "bench.$name" "$@" || status=$?
done
exit "$status"
