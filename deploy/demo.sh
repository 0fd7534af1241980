#!/usr/bin/env bash
# The main job, on one machine: set up, start a node on the embedded SQLite
# default, issue an officer's token, record realistic sample seizures and alerts
# through the CLI, list them, show one, and stop the node.
#   deploy/demo.sh            # run it (state in var/demo, kept between runs)
#   deploy/demo.sh --fresh    # start from an empty node
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
DEMO=var/demo
PORT=${GCN_DEMO_PORT:-7401}
[ "${1:-}" = "--fresh" ] && rm -rf "$DEMO"
mkdir -p "$DEMO"

if [ ! -f "$DEMO/ke/gcn.toml" ]; then
  gcn init --dir "$DEMO/ke" --id KE --name "Kenya Revenue Authority - Customs" \
    --role national --country KE --region ESA --listen "127.0.0.1:$PORT"
fi

# The node's admin issues an officer's token (printed once; on a re-run the
# demo officer gets a fresh one, which revokes the previous).
if gcn users list --config "$DEMO/ke/gcn.toml" --json | grep -q '"name": "demo"'; then
  GCN_TOKEN=$(gcn users rotate demo --config "$DEMO/ke/gcn.toml")
else
  GCN_TOKEN=$(gcn users add demo --role officer --config "$DEMO/ke/gcn.toml")
fi
export GCN_TOKEN

GCN_LOGGING_FORMAT=json gcn serve --config "$DEMO/ke/gcn.toml" 2>"$DEMO/ke/node.log" &
NODE_PID=$!
trap 'kill -TERM $NODE_PID 2>/dev/null; wait $NODE_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  grep -q '"node serving"' "$DEMO/ke/node.log" 2>/dev/null && break
  sleep 0.2
done
export GCN_NODE="127.0.0.1:$PORT"

python -m node.samples "$DEMO/samples" >/dev/null
for f in "$DEMO"/samples/seizure-*.json; do gcn seizure add --file "$f"; done
for f in "$DEMO"/samples/alert-*.json; do gcn alert add --file "$f"; done
gcn seizure add --date "$(date -u +%F)" --country KE --port KEMBA --direction export \
  --detection canine --commodity wildlife --description "rhino horn pieces in tea boxes" \
  --hs 051000 --species "Diceros bicornis" --cites i --quantity "12.5 kg" --mode air \
  --flight KQ310 --operation DEMETER --tlp red --notes "handler: canine unit 4"

echo
echo "== everything this node holds"
gcn records list --limit 20
echo "== search: vessel IMO 9074729"
gcn records list --imo 9074729
echo "== the node"
gcn node info
echo "== its users (tokens are never shown again)"
gcn users list --config "$DEMO/ke/gcn.toml"
echo "(node log: $DEMO/ke/node.log)"
