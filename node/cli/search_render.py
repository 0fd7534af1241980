"""How `gcn search` and `gcn alerts` show what `NodeService.Search` answered:
tables that fit an 80-column terminal, one status line per source, and the
JSON envelope scripts read (hits in the protobuf JSON mapping, timestamps in
UTC with their `Z`)."""

from __future__ import annotations

import re
from typing import Any

from rich import box
from rich.table import Table

from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.cli import render

_UNITS = {
    rec.UNIT_KG: "kg",
    rec.UNIT_G: "g",
    rec.UNIT_TONNE: "t",
    rec.UNIT_LITRE: "L",
    rec.UNIT_CUBIC_METRE: "m³",
    rec.UNIT_PIECE: "pcs",
    rec.UNIT_PAIR: "pairs",
    rec.UNIT_SQUARE_METRE: "m²",
    rec.UNIT_CONTAINER: "cont.",
}
_STATES = {
    npb.SourceStatus.STATE_OK: "ok",
    npb.SourceStatus.STATE_TIMEOUT: "timeout",
    npb.SourceStatus.STATE_UNAVAILABLE: "unavailable",
    npb.SourceStatus.STATE_REFUSED: "refused",
}
_REJECTED_PREFIX = re.compile(r"^[0-9]+ result\(s\) rejected: ")
TITLE_CHARS = 60
ALERT_TITLE_CHARS = 30  # in the search table, where it shares a row with seizures


def body_of(r: npb.StoredRecord) -> rec.Seizure | rec.Alert | None:
    """The seizure or alert a record carries (a correction: its new version)."""
    which = r.WhichOneof("body")
    if which == "correction":
        return r.correction.seizure if r.correction.HasField("seizure") else r.correction.alert
    if which in ("seizure", "alert"):
        body: rec.Seizure | rec.Alert = getattr(r, which)
        return body
    return None


def _short(enum: Any, value: int, prefix: str) -> str:
    return render._short(enum, value, prefix)


def _quantity(q: rec.Quantity) -> str:
    if not q.value and not q.unit:
        return ""
    return f"{q.value:,g} {_UNITS.get(q.unit, '')}".strip()


def _conveyance(c: rec.Conveyance) -> list[str]:
    out = list(c.container_numbers)
    if c.vessel_name:
        out.append(c.vessel_name)
    elif c.vessel_imo:
        out.append(f"IMO {c.vessel_imo}")
    if c.flight:
        out.append(c.flight)
    return out


def _goods_cells(g: rec.GoodsItem) -> list[str]:
    """commodity, species or HS code, quantity of one goods item."""
    return [_short(rec.Commodity, g.commodity, "COMMODITY_"), g.species or g.hs_code, _quantity(g.quantity)]


def _seizure_rows(s: rec.Seizure) -> list[list[str]]:
    """place, commodity, species or HS, quantity, conveyance: a row per goods
    item (the first carries the place and conveyance), so each stays aligned."""
    goods = [_goods_cells(g) for g in s.goods] or [["", "", ""]]
    place = s.place.port_locode or s.place.country
    first = [place, *goods[0], "\n".join(_conveyance(s.conveyance))]
    return [first, *(["", *g, ""] for g in goods[1:])]


def _subject(s: rec.AlertSubject) -> str:
    return f"{_short(rec.SubjectKind, s.kind, 'SUBJECT_KIND_')} {s.value}"


def _alert_cells(a: rec.Alert) -> list[str]:
    conveyances = [
        f"IMO {s.value}" if s.kind == rec.SUBJECT_KIND_VESSEL else s.value
        for s in a.subjects
        if s.kind in (rec.SUBJECT_KIND_CONTAINER, rec.SUBJECT_KIND_VESSEL, rec.SUBJECT_KIND_FLIGHT)
    ]
    return [
        "",
        _short(rec.Commodity, a.commodity, "COMMODITY_") if a.commodity else "",
        "alert: " + _clip(a.title, ALERT_TITLE_CHARS),
        "",
        "\n".join(conveyances),
    ]


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


def _date(h: npb.SearchHit) -> str:
    body = body_of(h.record)
    if isinstance(body, rec.Seizure) and body.incident_date:
        return body.incident_date
    return h.record.created_at.ToDatetime().date().isoformat()


def _table(title: str) -> Table:
    return Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        title_justify="left",
    )


def hits_table(hits: list[npb.SearchHit], title: str) -> None:
    """One row per record. Dates, origins, ports and container numbers never
    wrap; names and species wrap at spaces. A retracted record says so under
    its date; ✗ is a record whose signature did not check here."""
    table = _table(title)
    table.add_column("origin", no_wrap=True, overflow="ellipsis", max_width=10)
    table.add_column("date", no_wrap=True, min_width=10)
    table.add_column("place", no_wrap=True)
    table.add_column("commodity", overflow="fold", ratio=1)
    table.add_column("species/HS", overflow="fold", ratio=2)
    table.add_column("quantity", no_wrap=True)
    table.add_column("conveyance", no_wrap=True)
    table.add_column("✓", no_wrap=True)
    for h in hits:
        r = h.record
        body = body_of(r)
        if isinstance(body, rec.Seizure):
            rows = _seizure_rows(body)
        elif isinstance(body, rec.Alert):
            rows = [_alert_cells(body)]
        else:
            rows = [["", "", "(not readable here)", "", ""]]
        origin = r.origin + ("\nrevoked" if r.origin_revoked else "")
        date = _date(h)
        if r.status == npb.RECORD_STATUS_RETRACTED:
            date += "\nRETRACTED"
        table.add_row(origin, date, *rows[0], "✓" if h.verified else "✗")
        for more in rows[1:]:
            table.add_row("", "", *more, "")
    render.console.print(table)


def source_line(s: npb.SourceStatus) -> str:
    """`local ok 3 results 12 ms`, `RINEX-ESA timeout (no answer within the deadline)`."""
    state = _STATES.get(s.state, "unknown")
    if s.state != npb.SourceStatus.STATE_OK:
        return f"{s.source} {state}" + (f" ({s.detail})" if s.detail else "")
    line = f"{s.source} ok {s.count} result{'' if s.count == 1 else 's'} {s.millis} ms"
    if s.rejected:
        line += f" ({s.rejected} rejected: {_REJECTED_PREFIX.sub('', s.detail)})"
    return line


def source_dict(s: npb.SourceStatus) -> dict[str, Any]:
    return {
        "source": s.source,
        "state": _STATES.get(s.state, "unknown"),
        "count": s.count,
        "millis": s.millis,
        "rejected": s.rejected,
        "detail": s.detail,
    }


def alerts_table(hits: list[npb.SearchHit], title: str) -> None:
    table = _table(title)
    table.add_column("priority", no_wrap=True)
    table.add_column("valid until", no_wrap=True, min_width=10)
    table.add_column("title", overflow="fold", ratio=3)
    table.add_column("subjects", overflow="fold", ratio=2)
    table.add_column("origin", no_wrap=True, overflow="ellipsis", max_width=10)
    for h in hits:
        a = body_of(h.record)
        if not isinstance(a, rec.Alert):
            continue
        table.add_row(
            _short(rec.Priority, a.priority, "PRIORITY_"),
            a.valid_until,
            _clip(a.title, TITLE_CHARS),
            "\n".join(_subject(s) for s in a.subjects),
            h.record.origin + ("" if h.verified else " ✗"),
        )
    render.console.print(table)
