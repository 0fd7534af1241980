#!/usr/bin/env bash
# The main job in one command: set up (deploy/setup.sh), then `gcn demo`.
#
#   deploy/demo.sh           # set up and run it (state in var/federation, kept between runs)
#   deploy/demo.sh --fresh   # start again from nothing
#   deploy/demo.sh --keep    # leave the federation running at the end (it prints what to try)
#   deploy/demo.sh --stop    # stop a federation left running by --keep
#
# `gcn demo` (node/cli/demo_cmds.py) makes a federation root and eight nodes
# with the real `gcn` commands — the WCO global hub, the ESA and SEA RINEX hubs,
# Kenya with its Mombasa port, Tanzania, Viet Nam and Thailand — each its own
# `gcn serve` on loopback (officer API over TLS, mutual-TLS federation, embedded
# SQLite); officers record, the port is cut off and comes back, officers search
# the federation; then a short report and a clean stop. It checks its ports
# first (127.0.0.1:7400-7699, --base-port N for others) and refuses naming the
# one taken; a node that fails stops everything, naming the node and its log.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh
exec .venv/bin/gcn demo "$@"
