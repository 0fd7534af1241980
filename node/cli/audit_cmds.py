"""`gcn audit list` and `gcn audit verify`: the node's trail of officer reads
(who searched for or read what, when, how many results), read from the node's
own database so they work while the node is stopped (`node.admin.open_audit`).

`verify` exits 0 when the hash chain is intact, 1 naming the first broken row
and why (hash mismatch, broken chain, gap, anchor), 2 on a usage error."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from node.cli.alarm_cmds import _since
from node.cli.errors import CliError
from node.cli.options import config_option, json_option, load

if TYPE_CHECKING:
    from node.admin import AuditCheck, AuditEntry


def entry_row(e: AuditEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": e.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "officer": e.officer,
        "role": e.role,
        "action": e.action,
        "query": e.query_fields(),
        "results": e.results,
        "hash": e.hash.hex(),
    }


@click.group()
def audit() -> None:
    pass


@audit.command("list")
@config_option()
@click.option("--since", metavar="TIME", help="only reads from this UTC time on (ISO 8601)")
@click.option("--officer", metavar="NAME", help="only reads by this user")
@click.option("--limit", type=int, default=100, show_default=True, help="at most this many")
@json_option('print {"audit": [...]} instead of a table')
def audit_list(config: str | None, since: str | None, officer: str | None, limit: int, as_json: bool) -> int:
    """Audited reads, newest first."""
    from rich.table import Table

    from node.admin import open_audit
    from node.cli import render

    if limit < 1:
        raise CliError("--limit must be at least 1")
    after = _since(since)
    node = load(config)
    with open_audit(node) as trail:
        rows = [entry_row(e) for e in trail.entries(since=after, officer=officer, limit=limit)]
    if as_json:
        json.dump({"audit": rows}, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    if not rows:
        render.console.print("no audited reads")
        return 0
    table = Table(title=f"audit log of {node.node.id}, newest first")
    for col in ("seq", "at", "officer", "action", "query", "results"):
        table.add_column(col, overflow="fold")
    for r in rows:
        query = json.dumps(r["query"], ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        table.add_row(
            str(r["seq"]),
            r["at"][:19] + "Z",
            f"{r['officer']} ({r['role']})",
            r["action"],
            query,
            str(r["results"]),
        )
    render.console.print(table)
    return 0


def _anchor(value: str | None) -> tuple[int, bytes] | None:
    if not value:
        return None
    seq, sep, digest = value.partition(":")
    try:
        anchor = int(seq), bytes.fromhex(digest)
    except ValueError:
        anchor = (0, b"")
    if not sep or anchor[0] < 1 or len(anchor[1]) != 32:
        raise CliError(f"--anchor {value!r} is not SEQ:HASH (as `gcn audit verify` printed it)")
    return anchor


def check_dict(c: AuditCheck) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": c.ok, "rows": c.rows, "head_seq": c.head_seq, "head_hash": c.head_hash.hex()}
    if not c.ok:
        out.update(broken_seq=c.broken_seq, reason=c.reason)
    return out


@audit.command("verify")
@config_option()
@click.option(
    "--anchor", metavar="SEQ:HASH", help="what a past verify printed: that row must still have that hash"
)
@json_option("print the result as JSON")
def audit_verify(config: str | None, anchor: str | None, as_json: bool) -> int:
    """Check the hash chain; exit 1 naming the first broken row."""
    from node.admin import open_audit
    from node.cli import render

    pinned = _anchor(anchor)
    with open_audit(load(config)) as trail:
        check = trail.verify(pinned)
    if as_json:
        json.dump(check_dict(check), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif check.ok:
        render.console.print(
            f"audit log intact: {check.rows} rows; head {check.head_seq}:{check.head_hash.hex()}"
        )
    else:
        print(
            f"gcn: audit log broken at row {check.broken_seq}: {check.reason} "
            f"({check.rows} rows intact before it)",
            file=sys.stderr,
        )
    return 0 if check.ok else 1
