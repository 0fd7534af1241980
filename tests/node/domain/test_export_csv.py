"""The CSV export (node.domain.export_csv): the fixed column set, one row per
record or per goods item, lists in one cell, formula-looking cells defused."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.domain import samples
from node.domain.export_csv import GOODS_COLUMNS, RECORD_COLUMNS, csv_text, number, write_csv
from tests.node.domain.export_records import DAY, alert, mixed, seizure


def read(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def test_one_row_per_record_with_the_documented_columns() -> None:
    records = [seizure(samples.ivory_seizure(DAY), "s1"), alert(samples.vessel_alert(DAY), "a1")]
    header, rows = read(csv_text(records))
    assert header == list(RECORD_COLUMNS)
    assert [r["record_id"] for r in rows] == ["s1", "a1"]
    s, a = rows
    assert s["kind"] == "seizure" and s["status"] == "active" and s["view"] == "full"
    assert s["tlp"] == "TLP:AMBER" and s["created_at"] == "2026-11-21T09:30:15.250Z"
    assert (s["incident_date"], s["country"], s["port"]) == ("2026-11-20", "KE", "KEMBA")
    assert s["hs_codes"] == "050710; 050800"
    assert s["species"] == "Loxodonta africana; Smutsia gigantea"
    assert s["commodities"] == "wildlife"
    assert (s["vessel_imo"], s["container_numbers"]) == ("9074729", "CSQU3054383")
    assert (s["route_origin"], s["route_transit"], s["route_destination"]) == ("UG", "MY", "VN")
    assert s["parties"] == (
        "Sesame Traders Ltd (company, shipper, KE); John Doe Mwangi (person, broker, KE, A1234567)"
    )
    assert s["alert_title"] == ""
    assert a["kind"] == "alert" and a["alert_priority"] == "high"
    assert a["alert_valid_until"] == "2026-11-20"
    assert a["alert_subjects"] == "vessel: 9074729; route: KE>MY>VN"
    assert a["incident_date"] == "" and a["commodities"] == "wildlife"


def test_goods_gives_one_row_per_goods_item_and_one_for_a_record_without_goods() -> None:
    records = [
        seizure(samples.ivory_seizure(DAY), "s1"),
        seizure(samples.hcfc_seizure(DAY), "s2"),
        alert(samples.permit_alert(DAY), "a1"),
    ]
    header, rows = read(csv_text(records, goods=True))
    assert header == list(RECORD_COLUMNS + GOODS_COLUMNS)
    assert [(r["record_id"], r["goods_index"]) for r in rows] == [
        ("s1", "1"),
        ("s1", "2"),
        ("s2", "1"),
        ("a1", ""),
    ]
    first = rows[0]
    assert (first["goods_hs_code"], first["goods_species"], first["goods_cites_appendix"]) == (
        "050710",
        "Loxodonta africana",
        "i",
    )
    assert (first["goods_quantity"], first["goods_unit"]) == ("452.5", "kg")
    assert (first["goods_declared_value"], first["goods_currency"]) == ("1200", "USD")
    assert (
        rows[1]["goods_declared_value"] == "" and rows[1]["goods_description"] == "pangolin scales in sacks"
    )
    assert (rows[2]["goods_ods_substance"], rows[2]["goods_quantity"]) == ("HCFC-22", "13600")
    assert all(rows[3][c] == "" for c in GOODS_COLUMNS)


def test_status_view_and_corrections_are_columns() -> None:
    _, rows = read(csv_text(mixed()))
    by_id = {r["record_id"]: r for r in rows}
    assert by_id["hcfc"]["status"] == "retracted" and by_id["hcfc"]["superseded_by"] == "retraction-1"
    assert by_id["hcfc"]["tlp"] == "TLP:AMBER+STRICT"
    assert by_id["rosewood-fixed"]["corrects"] == "old-rosewood"
    assert by_id["rosewood-fixed"]["hs_codes"] == "440799"
    assert by_id["ivory-redacted"]["view"] == "redacted" and by_id["ivory-redacted"]["notes"] == ""
    assert "John Doe" not in by_id["ivory-redacted"]["parties"]
    assert by_id["ivory-statistical"]["incident_date"] == "2026-11-01"
    assert by_id["air"]["origin_revoked"] == "yes" and by_id["air"]["flight"] == "KQ310"


def test_a_cell_a_spreadsheet_would_run_is_defused() -> None:
    s = samples.hcfc_seizure(DAY)
    s.notes = '=HYPERLINK("http://example.invalid","x")'
    s.parties[0].name = "@SUM(A1)"
    s.concealment = "-2+3"
    _, rows = read(csv_text([seizure(s, "s")]))
    assert rows[0]["notes"].startswith("'=HYPERLINK(")
    assert rows[0]["parties"].startswith("'@SUM(A1)")
    assert rows[0]["concealment"] == "'-2+3"


def test_the_same_records_give_the_same_text_and_what_is_not_a_record_is_skipped() -> None:
    big = npb.StoredRecord(record_id="big", kind=epb.RECORD_KIND_SEIZURE, origin="KE", too_large=True)
    out = io.StringIO()
    assert write_csv([big, *mixed()], out) == len(mixed())
    assert out.getvalue() == csv_text(mixed())
    assert csv_text([]) == ",".join(RECORD_COLUMNS) + "\r\n"


def test_numbers_keep_their_digits() -> None:
    assert [number(v) for v in (0.0, 452.5, 13600.0, 1234567.0, 0.125, 24616.0)] == [
        "",
        "452.5",
        "13600",
        "1234567",
        "0.125",
        "24616",
    ]
    s = samples.hcfc_seizure(DAY + timedelta(days=1))
    s.goods[0].quantity.CopyFrom(rec.Quantity(value=1234567.5, unit=rec.UNIT_KG))
    _, rows = read(csv_text([seizure(s, "s")], goods=True))
    assert rows[0]["goods_quantity"] == "1234567.5"
