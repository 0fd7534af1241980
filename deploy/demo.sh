#!/usr/bin/env bash
# The main job: a small federation on one machine, on the embedded SQLite default.
#
#   deploy/demo.sh           # set up and run it (state in var/federation, kept between runs)
#   deploy/demo.sh --fresh   # start again from nothing
#   deploy/demo.sh --keep    # leave the nodes running at the end (stop: kill $(cat var/federation/pids))
#
# It does what the operators would, with the real `gcn` commands: a federation
# root; seven nodes (the WCO global hub, the ESA and SEA RINEX hubs, Kenya with
# its Mombasa port, Tanzania, Viet Nam) that each make their keys and a join
# request; the root admits them, issues their certificates and publishes the
# signed directory; every node runs `gcn serve` (officer API over TLS + mutual-TLS
# federation listener + store-and-forward). Officers then record at the port
# and in Viet Nam, and the demo shows what reached whom, in which view.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
DEMO=var/federation
BASE=${GCN_DEMO_BASE_PORT:-7400}
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --fresh) rm -rf "$DEMO" ;;
    --keep) KEEP=1 ;;
  esac
done
mkdir -p "$DEMO"

# id role country region upstreams
NODES=(
  "WCO-GLOBAL global - - -"
  "RINEX-ESA regional - ESA WCO-GLOBAL"
  "RINEX-SEA regional - SEA WCO-GLOBAL"
  "KE national KE ESA RINEX-ESA"
  "KE-MBA port KE ESA KE"
  "TZ national TZ ESA RINEX-ESA"
  "VN national VN SEA RINEX-SEA"
)
cfg() { echo "$DEMO/$1/gcn.toml"; }
officer_port() { echo $((BASE + $1)); }

if [ ! -f "$DEMO/root/state.json" ]; then
  echo "== the federation root"
  gcn root init --dir "$DEMO/root" --federation gcn-demo
  i=0
  for line in "${NODES[@]}"; do
    read -r id role country region ups <<<"$line"
    args=(--dir "$DEMO/$id" --id "$id" --name "$id customs" --role "$role" --listen "127.0.0.1:$(officer_port $i)"
          --root-keys "$DEMO/root/root-keys.json" --federation-listen "127.0.0.1:$((BASE + 100 + i))")
    [ "$country" != - ] && args+=(--country "$country")
    [ "$region" != - ] && args+=(--region "$region")
    [ "$ups" != - ] && args+=(--upstream "$ups")
    echo "== $id ($role): keys, join request, admission, certificate"
    gcn init "${args[@]}"
    gcn root admit "$DEMO/$id/join-request.json" --dir "$DEMO/root" --out "$DEMO/$id/node.cert.pem"
    gcn federation install --cert "$DEMO/$id/node.cert.pem" --ca "$DEMO/root/ca.pem" --config "$(cfg "$id")"
    (umask 077; gcn users add officer --role officer --config "$(cfg "$id")" 2>/dev/null >"$DEMO/$id/officer.token")
    i=$((i + 1))
  done
  gcn root bilateral KE VN --dir "$DEMO/root"
  gcn root publish --dir "$DEMO/root" --out "$DEMO/root/directory.pb"
  for line in "${NODES[@]}"; do
    read -r id _ <<<"$line"
    gcn directory import "$DEMO/root/directory.pb" --config "$(cfg "$id")" >/dev/null
  done
fi

for line in "${NODES[@]}"; do  # state from before TLS on the officer API: give it its CA and certificate
  read -r id _ <<<"$line"
  [ -f "$DEMO/$id/api-tls/cert.pem" ] || gcn api init --config "$(cfg "$id")"
done

echo "== starting ${#NODES[@]} nodes"
: >"$DEMO/pids"
for line in "${NODES[@]}"; do
  read -r id _ <<<"$line"
  GCN_LOGGING_FORMAT=json GCN_FEDERATION_SYNC_INTERVAL_SECONDS=2 \
    gcn serve --config "$(cfg "$id")" 2>"$DEMO/$id/node.log" &
  echo $! >>"$DEMO/pids"
done
stop_all() { [ "$KEEP" = 1 ] || { kill -TERM $(cat "$DEMO/pids") 2>/dev/null; wait 2>/dev/null || true; }; }
trap stop_all EXIT
for line in "${NODES[@]}"; do
  read -r id _ <<<"$line"
  for _ in $(seq 1 100); do
    grep -q '"node serving"' "$DEMO/$id/node.log" 2>/dev/null && break
    sleep 0.1
  done
done

as() {  # as NODE gcn-args...: run a client command as that node's officer (over TLS, trusting its API CA)
  local id=$1; shift
  local i=0
  for line in "${NODES[@]}"; do read -r n _ <<<"$line"; [ "$n" = "$id" ] && break; i=$((i + 1)); done
  GCN_NODE="127.0.0.1:$(officer_port $i)" GCN_NODE_CA="$DEMO/$id/api-tls/ca.pem" \
    GCN_TOKEN="$(cat "$DEMO/$id/officer.token")" gcn "$@"
}

python -m node.domain.samples "$DEMO/samples" >/dev/null
echo
echo "== at the port of Mombasa (KE-MBA): a TLP:GREEN ivory seizure"
GREEN=$(python - "$DEMO/samples/seizure-1.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); s["tlp"] = "TLP_GREEN"; print(json.dumps(s))
PY
)
echo "$GREEN" >"$DEMO/samples/seizure-green.json"
RID=$(as KE-MBA seizure add --file "$DEMO/samples/seizure-green.json" --json | python -c 'import json,sys; print(json.load(sys.stdin)["record_id"])')
as KE-MBA records show "$RID" | head -5
echo "== in Viet Nam (VN): a TLP:GREEN alert on the same vessel"
as VN alert add --file "$DEMO/samples/alert-1.json" --tlp green 2>/dev/null || as VN alert add --file "$DEMO/samples/alert-1.json"

echo "== waiting for store-and-forward (port → KE → RINEX-ESA → WCO-GLOBAL → RINEX-SEA → VN)"
for _ in $(seq 1 60); do
  if as WCO-GLOBAL records show "$RID" --json >/dev/null 2>&1; then break; fi
  sleep 0.5
done
cat >"$DEMO/show_view.py" <<'PY'
import json, sys
r = json.load(sys.stdin)
s = r.get("seizure", {})
persons = sum(1 for p in s.get("parties", []) if p.get("kind") == "PARTY_KIND_PERSON")
containers = s.get("conveyance", {}).get("container_numbers", [])
print(f"   {r['audience']:<12} {r['view']:<17} persons={persons} containers={containers} "
      f"incident={s.get('incident_date')} notes={'yes' if s.get('notes') else 'no'}")
PY
for id in KE RINEX-ESA TZ WCO-GLOBAL RINEX-SEA VN; do
  echo "-- $id:"
  as "$id" records show "$RID" --json 2>/dev/null | python "$DEMO/show_view.py" \
    || echo "   (not here: outside the audiences the origin chose)"
done
echo
echo "== search at the ESA hub: vessel IMO 9074729"
as RINEX-ESA records list --imo 9074729 || true
echo "== the global hub's CEN statistics (from statistical views only)"
gcn stats --config "$(cfg WCO-GLOBAL)"
echo "== sync status of the port"
gcn sync status --config "$(cfg KE-MBA)"
echo "(logs: $DEMO/<node>/node.log)"
