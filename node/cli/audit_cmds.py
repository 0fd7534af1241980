"""`gcn audit list` and `gcn audit verify`: the node's trail of officer reads
(who searched for or read what, when, how many results), read from the node's
own database so they work while the node is stopped (`node.admin.open_audit`).

`verify` exits 0 when the hash chain is intact, 1 naming the first broken row
and why (hash mismatch, broken chain, gap, anchor), 2 on a usage error."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.table import Table

from node.admin import AuditCheck, AuditEntry, open_audit
from node.cli import render
from node.cli.alarm_cmds import _since
from node.cli.client import CliError
from node.cli.federation_cmds import _add, _config


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


def cmd_audit_list(a: argparse.Namespace) -> int:
    if a.limit < 1:
        raise CliError("--limit must be at least 1")
    since = _since(a.since)
    config = _config(a)
    with open_audit(config) as trail:
        rows = [entry_row(e) for e in trail.entries(since=since, officer=a.officer, limit=a.limit)]
    if a.json:
        json.dump({"audit": rows}, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    if not rows:
        render.console.print("no audited reads")
        return 0
    table = Table(title=f"audit log of {config.node.id}, newest first")
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


def cmd_audit_verify(a: argparse.Namespace) -> int:
    anchor = _anchor(a.anchor)
    with open_audit(_config(a)) as trail:
        check = trail.verify(anchor)
    if a.json:
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


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="the node's trail of officer reads (who read or searched what)")
    actions = audit.add_subparsers(dest="action", required=True)
    p = _add(actions, "list", "audited reads, newest first", cmd_audit_list)
    p.add_argument("--since", help="only reads from this UTC time on (ISO 8601)")
    p.add_argument("--officer", help="only reads by this user")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    p.add_argument("--json", action="store_true", help='print {"audit": [...]} instead of a table')
    p = _add(actions, "verify", "check the hash chain; exit 1 naming the first broken row", cmd_audit_verify)
    p.add_argument("--anchor", help="SEQ:HASH a past verify printed: that row must still have that hash")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
