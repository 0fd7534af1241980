"""`gcn sync status` and `gcn bundle export|import`: replication seen and done
from the node's own files (they work while the node is stopped, or offline)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from federation import vectors
from federation.peers import peers_of
from node.admin import (
    BY_PEER,
    alarms,
    export_bundle,
    import_bundle,
    last_known_vector,
    link_state,
    open_node,
    peer_states,
)
from node.app import NodeApp
from node.cli import render
from node.cli.options import config_option, json_option, load


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%SZ") if at else "never"


# The node's own trouble (not one peer's): shown by `sync status` for a day.
NODE_ALARMS = ("rekey_failed", "directory_stale", "sync_job_missing")
NODE_ALARM_HOURS = 24
WAITING_SHOWN = 50  # waiting streams listed in the table view


def trust_row(app: NodeApp) -> dict[str, Any]:
    """The held directory: its version, and whether new envelopes are trusted."""
    if not app.trust.joined:
        return {"directory_version": 0, "state": "not federated", "fresh_until": "never", "stale": ""}
    verdict = app.trust.freshness(app.clock())
    return {
        "directory_version": app.trust.version(),
        "state": "stale" if verdict.stale else "fresh",
        "fresh_until": _when(verdict.until),
        "stale": verdict.stale,
    }


def node_alarm_rows(app: NodeApp) -> list[dict[str, Any]]:
    """The node's own alarms of the last day (rekey failures, stale trust, lost jobs)."""
    since = app.clock() - timedelta(hours=NODE_ALARM_HOURS)
    rows = [r for kind in NODE_ALARMS for r in alarms(app, 20, kind=kind, since=since)]
    rows.sort(key=lambda r: r.id, reverse=True)
    return [{"kind": r.kind, "at": _when(r.created_at), "detail": r.detail} for r in rows]


def waiting_rows(app: NodeApp) -> list[dict[str, Any]]:
    """Each stream waiting behind a refused envelope, per peer and direction."""
    return [
        {
            "peer": r.peer,
            "direction": "refused by peer" if r.direction == BY_PEER else "refused from peer",
            "origin": r.origin,
            "audience": r.audience,
            "seq": r.seq,
            "code": r.code,
            "reason": r.reason,
            "times": r.count,
            "since": _when(r.first_at),
            "retry_at": _when(r.retry_at),
        }
        for r in app.refusals.all_rows()
    ]


def waiting_for_key_rows(app: NodeApp) -> list[dict[str, Any]]:
    """Own records' shares that wait for their audience's key (`waiting_shares`)."""
    return [
        {
            "audience": w.audience,
            "shares": w.shares,
            "since": _when(w.since),
            "key_held": app.audience_keys.current(w.audience) is not None,
        }
        for w in app.records.waiting.summary()
    ]


def status_rows(app: NodeApp) -> list[dict[str, Any]]:
    """Per peer: progress, backoff, and how far behind each side is (from the
    vector the peer last stated, against ours now)."""
    directory = app.trust.directory()
    peers = peers_of(directory, app.config.node.id, app.config.federation.upstream_ids) if directory else []
    states = peer_states(app)
    mine = app.receiver.local_vector()
    now = app.clock()
    interval = app.config.federation.sync_interval_seconds
    waiting: dict[str, int] = {}
    for r in app.refusals.all_rows():
        waiting[r.peer] = waiting.get(r.peer, 0) + 1
    rows = []
    for peer in peers:
        state = states.get(peer.node_id)
        theirs = last_known_vector(app, peer.node_id)
        entitled = {k: v for k, v in mine.items() if app.sync_source.entitled(peer.node_id, k[1])}
        rows.append(
            {
                "peer": peer.node_id,
                "endpoint": peer.endpoint,
                "direction": "upstream" if peer.upstream else "downstream",
                "state": link_state(state, now, interval),
                "streams_waiting": waiting.get(peer.node_id, 0),
                "down_since": _when(state.down_since if state else None),
                "last_success": _when(state.last_success_at if state else None),
                "next_attempt": _when(state.next_attempt_at if state else None),
                "failures": state.failures if state else 0,
                "backoff_seconds": round(state.backoff_seconds, 1) if state else 0.0,
                "peer_behind": vectors.behind(entitled, theirs),
                "we_behind": vectors.behind(theirs, mine) if peer.upstream else 0,
                "envelopes_sent": state.envelopes_sent if state else 0,
                "envelopes_received": state.envelopes_received if state else 0,
                "bytes_sent": state.bytes_sent if state else 0,
                "bytes_received": state.bytes_received if state else 0,
                "last_error": state.last_error if state else "",
            }
        )
    return rows


@click.group()
def sync() -> None:
    pass


@sync.command("status")
@config_option()
@json_option('print {"trust", "peers", "streams_waiting", "node_alarms"} as JSON, every waiting stream')
def sync_status(config: str | None, as_json: bool) -> int:
    """Per peer: last success, next attempt, backoff, behind, bytes."""
    with open_node(load(config)) as app:
        rows = status_rows(app)
        waiting = waiting_rows(app)
        trust = trust_row(app)
        node_alarms = node_alarm_rows(app)
        for_key = waiting_for_key_rows(app)
    if as_json:
        out = {
            "trust": trust,
            "peers": rows,
            "streams_waiting": waiting,
            "node_alarms": node_alarms,
            "waiting_for_key": for_key,
        }
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    table = Table(title=f"sync status of {app.config.node.id}")
    for col in (
        "peer",
        "direction",
        "state",
        "last success",
        "next attempt",
        "failures",
        "backoff s",
        "peer behind",
        "we behind",
        "sent",
        "received",
        "last error",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["peer"],
            r["direction"],
            r["state"],
            r["last_success"],
            r["next_attempt"],
            str(r["failures"]),
            str(r["backoff_seconds"]),
            str(r["peer_behind"]),
            str(r["we_behind"]),
            f"{r['envelopes_sent']} ({r['bytes_sent']:,} B)",
            f"{r['envelopes_received']} ({r['bytes_received']:,} B)",
            r["last_error"],
        )
    if trust["state"] == "stale":
        render.console.print(
            f"directory version {trust['directory_version']} is STALE: {trust['stale']} "
            f"(envelopes created after {trust['fresh_until']} are refused; nothing is relayed)"
        )
    elif trust["state"] == "fresh":
        render.console.print(
            f"directory version {trust['directory_version']}, fresh until {trust['fresh_until']}"
        )
    render.console.print(table)
    for al in node_alarms:
        render.console.print(f"alarm {al['kind']} at {al['at']}: {al['detail']}")
    if not rows:
        render.console.print("no peers: the node holds no directory, or lists no upstreams")
    for k in for_key:
        then = "sealed at the next check" if k["key_held"] else "sent when the key arrives"
        render.console.print(
            f"{k['shares']} record(s) wait for the key of {k['audience']} since {k['since']}: {then}"
        )
    for w in waiting[:WAITING_SHOWN]:
        render.console.print(
            f"stream {w['origin']} {w['audience']} waits at seq {w['seq']} ({w['direction']} {w['peer']}, "
            f"{w['times']}x since {w['since']}, next try {w['retry_at']}): {w['code']}: {w['reason']}"
        )
    if len(waiting) > WAITING_SHOWN:
        more = len(waiting) - WAITING_SHOWN
        render.console.print(f"... and {more} more waiting streams (--json lists all)")
    return 0


@click.group()
def bundle() -> None:
    pass


@bundle.command("export")
@config_option()
@click.option("--to", "peer", required=True, metavar="NODE_ID", help="the node id the bundle is for")
@click.option("--out", required=True, metavar="FILE", help="the bundle file to write")
def bundle_export(config: str | None, peer: str, out: str) -> int:
    """Write what a peer lacks (from its last known vector) to a signed file."""
    with open_node(load(config)) as app:
        done = export_bundle(app, peer, Path(out))
    files = ", ".join(str(p) for p in done.paths)
    render.console.print(
        f"wrote {done.envelopes} envelopes ({done.bytes:,} B) for {peer.strip().upper()} to {files} "
        f"(signed by {app.config.node.id})"
    )
    if len(done.paths) > 1:
        render.console.print(f"the bundle is in {len(done.paths)} parts: import every one of them")
    return 0


@bundle.command("import")
@config_option()
@click.argument("file")
def bundle_import(config: str | None, file: str) -> int:
    """Verify and apply a bundle (run again to resume an interrupted import).
    Exit 0 when every envelope is now held; 1 when some were refused (each named on stderr)."""
    with open_node(load(config)) as app:
        done = import_bundle(app, Path(file))
    r = done.result
    render.console.print(
        f"imported {file}: {done.total} envelopes: {r.stored} new, {r.duplicates} already held, "
        f"{len(r.refused)} refused; {r.indexed} readable"
    )
    for refused in r.refused:
        print(
            f"gcn: refused envelope {refused.index} ({refused.origin} {refused.audience} seq {refused.seq}): "
            f"{refused.code}: {refused.reason}",
            file=sys.stderr,
        )
    return 1 if r.refused else 0
