"""`gcn alarms`: what the node has flagged for an operator (evidence of
misbehaviour, refused or damaged envelopes, trouble of the node itself), read
from the node's own files so it works while the node is stopped."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from node.cli.errors import CliError
from node.cli.options import config_option, json_option, load

if TYPE_CHECKING:
    from node.admin import Alarm

KINDS = (
    "equivocation",
    "broken_chain",
    "unauthorised_key_message",
    "refused_by_peer",
    "refused_from_peer",
    "corrupt_envelope",
    "sync_job_missing",
    "rekey_failed",
    "directory_stale",
    "waiting_share_lost",
    "invalid_body",
)


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise CliError(f"--since {value!r} is not an ISO 8601 date or time (e.g. 2026-12-01T08:00Z)") from e
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def alarm_row(a: Alarm) -> dict[str, Any]:
    return {
        "at": a.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kind": a.kind,
        "origin": a.origin,
        "audience": a.audience,
        "seq": a.seq,
        "detail": a.detail,
    }


@click.command("alarms")
@config_option()
@click.option("--kind", type=click.Choice(KINDS), help="only alarms of this kind")
@click.option("--since", metavar="TIME", help="only alarms from this UTC time on (ISO 8601)")
@click.option("--limit", type=int, default=50, show_default=True, help="at most this many")
@json_option('print {"alarms": [...]} instead of a table')
def alarms_cmd(config: str | None, kind: str | None, since: str | None, limit: int, as_json: bool) -> int:
    """What the node flagged for an operator, newest first."""
    from rich.table import Table

    from node.admin import alarms, open_node
    from node.cli import render

    after = _since(since)
    with open_node(load(config)) as app:
        rows = [alarm_row(r) for r in alarms(app, limit, kind=kind, since=after)]
    if as_json:
        json.dump({"alarms": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not rows:
        render.console.print("no alarms")
        return 0
    table = Table(title=f"alarms of {app.config.node.id}, newest first")
    for col in ("at", "kind", "stream", "seq", "detail"):
        table.add_column(col, overflow="fold")
    for r in rows:
        stream = f"{r['origin']} {r['audience']}".strip()
        table.add_row(r["at"], r["kind"], stream, str(r["seq"] or ""), r["detail"])
    render.console.print(table)
    return 0
