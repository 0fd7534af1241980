"""Records as CSV (`gcn export csv`; docs/exports.md lists the columns).

One row per record, or with `goods=True` one row per goods item (the record's
columns repeated, then the item's; a record without goods, such as an alert,
still gets one row, its goods columns empty). The column set is fixed
(`RECORD_COLUMNS`, `GOODS_COLUMNS`) whatever the records hold, in this order;
a list in one cell is joined with "; ". A cell that a spreadsheet would run as
a formula (it starts with =, +, -, @, a tab or a carriage return) gets a
leading apostrophe: the data came from other administrations.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import TextIO

from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.domain.export_common import TLP_LABELS, Exported, exported, short, status_name, view_name

RECORD_COLUMNS = (
    "record_id",
    "origin",
    "kind",
    "status",
    "superseded_by",
    "corrects",
    "view",
    "audience",
    "tlp",
    "created_at",
    "origin_revoked",
    "incident_date",
    "country",
    "port",
    "place_description",
    "direction",
    "detection_method",
    "operation_code",
    "commodities",
    "hs_codes",
    "species",
    "transport_mode",
    "vessel_imo",
    "vessel_name",
    "flight",
    "vehicle_registration",
    "container_numbers",
    "bill_of_lading",
    "air_waybill",
    "permits",
    "route_origin",
    "route_export",
    "route_transit",
    "route_destination",
    "parties",
    "concealment",
    "notes",
    "alert_title",
    "alert_priority",
    "alert_valid_until",
    "alert_subjects",
    "alert_indicators",
    "alert_recommended_action",
)
GOODS_COLUMNS = (
    "goods_index",
    "goods_commodity",
    "goods_description",
    "goods_hs_code",
    "goods_species",
    "goods_cites_appendix",
    "goods_ods_substance",
    "goods_basel_code",
    "goods_quantity",
    "goods_unit",
    "goods_declared_value",
    "goods_currency",
    "goods_co2e_tonnes",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _joined(values: Iterable[str]) -> str:
    return "; ".join(v for v in values if v)


def number(value: float) -> str:
    """452.5 → '452.5', 13600.0 → '13600', 0 → '' (no exponent, no lost digits)."""
    if not value:
        return ""
    return str(int(value)) if value.is_integer() and abs(value) < 1e18 else repr(value)


def _party(p: rec.Party) -> str:
    """'Sesame Traders Ltd (company, shipper, KE)'."""
    detail = [
        short(rec.PartyKind, p.kind, "PARTY_KIND_"),
        short(rec.PartyRole, p.role, "PARTY_ROLE_"),
        p.country,
        p.identifier,
    ]
    inner = ", ".join(x for x in detail if x)
    return f"{p.name} ({inner})" if inner else p.name


def _permit(p: rec.Permit) -> str:
    kind = short(rec.PermitType, p.type, "PERMIT_TYPE_")
    text = " ".join(x for x in (kind, p.number, p.issuing_country) if x)
    return f"{text} (forged)" if p.forged else text


def _seizure_cells(s: rec.Seizure) -> dict[str, str]:
    c, d, route = s.conveyance, s.documents, s.route
    return {
        "incident_date": s.incident_date,
        "country": s.place.country,
        "port": s.place.port_locode,
        "place_description": s.place.description,
        "direction": short(rec.Direction, s.direction, "DIRECTION_"),
        "detection_method": short(rec.DetectionMethod, s.detection_method, "DETECTION_METHOD_"),
        "operation_code": s.operation_code,
        "commodities": _joined(
            dict.fromkeys(short(rec.Commodity, g.commodity, "COMMODITY_") for g in s.goods)
        ),
        "hs_codes": _joined(dict.fromkeys(g.hs_code for g in s.goods)),
        "species": _joined(dict.fromkeys(g.species for g in s.goods)),
        "transport_mode": short(rec.TransportMode, c.mode, "TRANSPORT_MODE_"),
        "vessel_imo": c.vessel_imo,
        "vessel_name": c.vessel_name,
        "flight": c.flight,
        "vehicle_registration": c.vehicle_registration,
        "container_numbers": _joined(c.container_numbers),
        "bill_of_lading": d.bill_of_lading,
        "air_waybill": d.air_waybill,
        "permits": _joined(_permit(p) for p in d.permits),
        "route_origin": route.origin_country,
        "route_export": route.export_country,
        "route_transit": _joined(route.transit_countries),
        "route_destination": route.destination_country,
        "parties": _joined(_party(p) for p in s.parties),
        "concealment": s.concealment,
        "notes": s.notes,
    }


def _alert_cells(a: rec.Alert) -> dict[str, str]:
    subjects = (f"{short(rec.SubjectKind, x.kind, 'SUBJECT_KIND_')}: {x.value}" for x in a.subjects)
    return {
        "operation_code": a.operation_code,
        "commodities": short(rec.Commodity, a.commodity, "COMMODITY_"),
        "notes": a.notes,
        "alert_title": a.title,
        "alert_priority": short(rec.Priority, a.priority, "PRIORITY_"),
        "alert_valid_until": a.valid_until,
        "alert_subjects": _joined(subjects),
        "alert_indicators": _joined(a.indicators),
        "alert_recommended_action": a.recommended_action,
    }


def record_cells(e: Exported) -> dict[str, str]:
    """The RECORD_COLUMNS of one record (missing ones are '')."""
    r = e.record
    created = r.created_at.ToJsonString() if r.HasField("created_at") else ""
    cells = {
        "record_id": r.record_id,
        "origin": r.origin,
        "kind": e.kind,
        "status": status_name(r.status),
        "superseded_by": r.superseded_by,
        "corrects": e.corrects,
        "view": view_name(r.view),
        "audience": r.audience,
        "tlp": TLP_LABELS.get(e.tlp, ""),
        "created_at": created,
        "origin_revoked": "yes" if r.origin_revoked else "",
    }
    cells.update(_seizure_cells(e.seizure) if e.seizure is not None else _alert_cells(e.alert or rec.Alert()))
    return {col: cells.get(col, "") for col in RECORD_COLUMNS}


def goods_cells(index: int, g: rec.GoodsItem) -> dict[str, str]:
    """The GOODS_COLUMNS of one goods item."""
    q, v = g.quantity, g.declared_value
    return {
        "goods_index": str(index),
        "goods_commodity": short(rec.Commodity, g.commodity, "COMMODITY_"),
        "goods_description": g.description,
        "goods_hs_code": g.hs_code,
        "goods_species": g.species,
        "goods_cites_appendix": short(rec.CitesAppendix, g.cites_appendix, "CITES_APPENDIX_"),
        "goods_ods_substance": g.ods_substance,
        "goods_basel_code": g.basel_code,
        "goods_quantity": number(q.value) if g.HasField("quantity") else "",
        "goods_unit": short(rec.Unit, q.unit, "UNIT_"),
        "goods_declared_value": number(v.amount) if g.HasField("declared_value") else "",
        "goods_currency": v.currency,
        "goods_co2e_tonnes": number(g.co2e_tonnes),
    }


def columns(goods: bool = False) -> tuple[str, ...]:
    return RECORD_COLUMNS + GOODS_COLUMNS if goods else RECORD_COLUMNS


def rows(records: Iterable[npb.StoredRecord], goods: bool = False) -> Iterator[dict[str, str]]:
    """The rows, in the records' order; records that are neither seizure nor alert are skipped."""
    empty_goods = dict.fromkeys(GOODS_COLUMNS, "")
    for e in (x for x in (exported(r) for r in records) if x is not None):
        cells = record_cells(e)
        items = list(e.seizure.goods) if e.seizure is not None else []
        if not goods:
            yield cells
        elif not items:
            yield {**cells, **empty_goods}
        else:
            for i, g in enumerate(items, start=1):
                yield {**cells, **goods_cells(i, g)}


def safe_cell(value: str) -> str:
    """`value`, with a leading apostrophe when a spreadsheet would take it for a formula."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def write_csv(records: Iterable[npb.StoredRecord], out: TextIO, goods: bool = False) -> int:
    """Write the header and the rows to `out`; return how many rows."""
    writer = csv.DictWriter(out, fieldnames=columns(goods), lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for row in rows(records, goods):
        writer.writerow({k: safe_cell(v) for k, v in row.items()})
        count += 1
    return count


def csv_text(records: Iterable[npb.StoredRecord], goods: bool = False) -> str:
    out = io.StringIO()
    write_csv(records, out, goods)
    return out.getvalue()
