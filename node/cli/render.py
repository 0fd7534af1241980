"""Output: rich tables for people, JSON (protobuf JSON mapping) for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec

# No markup, emoji codes or highlighting: what we print includes text other nodes
# wrote (alarm details, record fields), which must show as it is, never as style or links.
console = Console(markup=False, emoji=False, highlight=False)


def say(text: str) -> None:
    """One plain line for people: no markup (paths may hold brackets), no wrapping."""
    console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)


def as_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def print_json(message: Message | list[Message]) -> None:
    data = [as_dict(m) for m in message] if isinstance(message, list) else as_dict(message)
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def _short(enum: Any, value: int, prefix: str) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix).lower().replace("_", "-")
    except ValueError:
        return str(value)


def _summary(r: npb.StoredRecord) -> tuple[str, str, str, str]:
    """(date, where, what, subject) for one record row."""
    which = r.WhichOneof("body")
    body: Any
    if which == "correction":
        body = r.correction.seizure if r.correction.HasField("seizure") else r.correction.alert
    else:
        body = getattr(r, which) if which else None
    if isinstance(body, rec.Seizure):
        goods = "; ".join(
            f"{g.description} ({g.quantity.value:g} {_short(rec.Unit, g.quantity.unit, 'UNIT_')})"
            for g in body.goods
        )
        subject = ", ".join(
            [
                *body.conveyance.container_numbers,
                *([body.conveyance.vessel_imo] if body.conveyance.vessel_imo else []),
            ]
        )
        return body.incident_date, body.place.port_locode or body.place.country, goods, subject
    if isinstance(body, rec.Alert):
        subject = ", ".join(
            f"{_short(rec.SubjectKind, s.kind, 'SUBJECT_KIND_')} {s.value}" for s in body.subjects
        )
        return body.valid_until, _short(rec.Priority, body.priority, "PRIORITY_"), body.title, subject
    if isinstance(body, rec.Retraction) or which == "retraction":
        return "", "", f"retracts {r.retraction.target_record_id}: {r.retraction.reason}", ""
    return "", "", "(not readable here)", ""


def records_table(records: list[npb.StoredRecord], title: str = "records") -> None:
    table = Table(title=title)
    for col in ("record", "kind", "origin", "date", "where", "what", "subject", "status"):
        table.add_column(col, overflow="fold")
    for r in records:
        date, where, what, subject = _summary(r)
        table.add_row(
            r.record_id[:8],
            _short(epb.RecordKind, r.kind, "RECORD_KIND_"),
            r.origin,
            date,
            where,
            what,
            subject,
            _short(npb.RecordStatus, r.status, "RECORD_STATUS_"),
        )
    console.print(table)


def record_detail(r: npb.StoredRecord) -> None:
    table = Table(show_header=False, title=f"record {r.record_id}")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("kind", _short(epb.RecordKind, r.kind, "RECORD_KIND_"))
    table.add_row("origin", r.origin)
    table.add_row("audience", f"{r.audience} ({_short(epb.View, r.view, 'VIEW_')} view)")
    table.add_row(
        "status",
        _short(npb.RecordStatus, r.status, "RECORD_STATUS_")
        + (f" by {r.superseded_by}" if r.superseded_by else ""),
    )
    table.add_row("created", r.created_at.ToDatetime().isoformat() + "Z")
    which = r.WhichOneof("body")
    if which:
        body = json.dumps(as_dict(getattr(r, which)), indent=2, sort_keys=True)
        table.add_row(which, body)
    if r.too_large:
        table.add_row("body", "left out: larger than a reply may carry (docs/protocol.md, Limits)")
    console.print(table)


def recorded(reply: npb.RecordReply) -> None:
    streams = ", ".join(f"{e.audience}#{e.seq}" for e in reply.envelopes)
    line = f"recorded {_short(epb.RecordKind, reply.kind, 'RECORD_KIND_')} {reply.record_id} → {streams}"
    if reply.co2e_tonnes:
        line += f" (CO2-equivalent {reply.co2e_tonnes:,.1f} t)"
    console.print(line)
