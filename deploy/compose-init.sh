#!/bin/sh
# The compose federation's set-up, run by its one-shot service `gcn-init`
# (deploy/compose.yaml): the federation root and five nodes, each step the
# `gcn` command its operator would type (docs/operations.md, "Deploying").
#
#   1. `gcn root init`            the root's keys and federation CA (once)
#   2. `gcn init … --root-keys`   each node: config, keys, database, API TLS, and
#                                 a join request pinning the root's keys
#   3. `gcn root admit`           the root checks each request, issues a certificate
#   4. `gcn federation install`   each node takes its certificate and the CA
#   5. `gcn root publish`         the signed directory naming every node …
#      `gcn directory import`     … taken by each node
#
# In a real federation the root and every node are separate administrations and
# the files (join-request.json, the certificate, ca.pem, the directory) are
# handed over between them; here one container mounts every volume.
#
# Safe to run again (`docker compose run --rm gcn-init`): it skips what exists.
# A run that admits no node signs a fresh timestamp instead of a new directory
# (`gcn root timestamp`: without one younger than 7 days the nodes stop trusting
# new envelopes; run it daily); `--publish` forces a new directory version (one
# is valid 30 days).
#
# Environment: STATE_DIR (default /srv/gcn: root/ and one directory per node),
# WCO_DATABASE_URL and ESA_DATABASE_URL (the hubs' PostgreSQL, password from
# PGPASSWORD), GCN_BIN (the gcn command), FEDERATION_NAME (default gcn-compose).
set -eu
GCN=${GCN_BIN:-gcn}
STATE=${STATE_DIR:-/srv/gcn}
ROOT=$STATE/root
FEDERATION=${FEDERATION_NAME:-gcn-compose}
WCO_DB=${WCO_DATABASE_URL:-postgresql+psycopg://gcn@postgres-global:5432/gcn}
ESA_DB=${ESA_DATABASE_URL:-postgresql+psycopg://gcn@postgres-esa:5432/gcn}
PUBLISH=no
[ "${1:-}" = "--publish" ] && PUBLISH=yes

say() { echo "gcn-init: $*"; }

if [ ! -f "$ROOT/root-keys.json" ]; then
  $GCN root init --dir "$ROOT" --federation "$FEDERATION" >/dev/null
  say "federation root $FEDERATION made in $ROOT"
fi

# name (the service, its host name and its directory), id, role, country, region, upstream, database URL
NODES="wco-global WCO-GLOBAL global - - - $WCO_DB
rinex-esa RINEX-ESA regional - ESA WCO-GLOBAL $ESA_DB
ke KE national KE ESA RINEX-ESA -
ke-mba KE-MBA port KE ESA KE -
tz TZ national TZ ESA RINEX-ESA -"

echo "$NODES" | while read -r name id role country region upstream db; do
  dir=$STATE/$name
  [ -f "$dir/gcn.toml" ] && continue
  set -- --dir "$dir" --id "$id" --name "$id (compose)" --role "$role" \
    --listen 0.0.0.0:7401 --api-name "$name" \
    --federation-listen 0.0.0.0:7501 --federation-endpoint "$name:7501" \
    --root-keys "$ROOT/root-keys.json"
  [ "$country" = - ] || set -- "$@" --country "$country"
  [ "$region" = - ] || set -- "$@" --region "$region"
  [ "$upstream" = - ] || set -- "$@" --upstream "$upstream"
  [ "$db" = - ] || set -- "$@" --database-url "$db"
  $GCN init "$@" >/dev/null
  say "$id made its keys and its join request ($dir/join-request.json)"
done

ADMITTED=$(echo "$NODES" | while read -r name id _; do
  dir=$STATE/$name
  [ -f "$dir/tls/cert.pem" ] && continue
  if [ ! -f "$dir/node.cert.pem" ]; then
    $GCN root admit "$dir/join-request.json" --dir "$ROOT" --out "$dir/node.cert.pem" >/dev/null
  fi
  $GCN federation install --cert "$dir/node.cert.pem" --ca "$ROOT/ca.pem" --config "$dir/gcn.toml" >/dev/null
  echo "$id"
done)
[ -n "$ADMITTED" ] && say "the root admitted $(echo $ADMITTED | tr ' ' ','); their certificates are installed"

if [ -n "$ADMITTED" ] || [ "$PUBLISH" = yes ]; then
  $GCN root publish --dir "$ROOT" --out "$ROOT/directory-latest.pb" >/dev/null
  FILE=$ROOT/directory-latest.pb
  say "the root published a new directory"
else
  $GCN root timestamp --dir "$ROOT" --out "$ROOT/timestamp-latest.pb" >/dev/null
  FILE=$ROOT/timestamp-latest.pb
  say "the root signed a fresh timestamp of its directory"
fi
echo "$NODES" | while read -r name _; do
  $GCN directory import "$FILE" --config "$STATE/$name/gcn.toml" >/dev/null
done
say "every node took it; officers: docker compose exec ke gcn users add NAME --role officer --config /srv/gcn/node/gcn.toml"
