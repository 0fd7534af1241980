"""`gcn export csv` and `gcn export stix` against a real node on loopback: every
page of a local search, the filters, the output file, the errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import stix2validator

from node.api.server import build_server
from node.api.tls import server_credentials
from node.app import NodeApp
from node.cli import export_cmds
from node.cli.main import main
from node.domain import samples
from node.testing.clock import ManualClock


@pytest.fixture
def address(app: NodeApp, analyst_token: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The node's address; an analyst's token in GCN_TOKEN, the node's API CA in GCN_NODE_CA."""
    monkeypatch.setenv("GCN_TOKEN", analyst_token)
    monkeypatch.setenv("GCN_NODE_CA", str(app.config.api_tls_dir / "ca.pem"))
    running = build_server(
        app, "127.0.0.1:0", max_message_bytes=4 << 20, workers=4, tls=server_credentials(app.config)
    )
    yield f"127.0.0.1:{running.port}"
    running.stop(None)


@pytest.fixture
def stocked(app: NodeApp, clock: ManualClock) -> dict[str, str]:
    today = clock().date()
    r = app.records
    ids = {
        "ivory": r.record_seizure(samples.ivory_seizure(today - timedelta(days=3))).record_id,
        "hcfc": r.record_seizure(samples.hcfc_seizure(today - timedelta(days=2))).record_id,
        "rosewood": r.record_seizure(samples.rosewood_seizure(today - timedelta(days=1))).record_id,
        "alert": r.record_alert(samples.vessel_alert(today + timedelta(days=30))).record_id,
    }
    r.retract(ids["hcfc"], "duplicate of an earlier report")
    return ids


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_export_stix_to_a_file_reads_every_page_and_passes_the_validator(
    app: NodeApp,
    address: str,
    stocked: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(export_cmds, "PAGE_SIZE", 3)  # four records: two pages
    out = tmp_path / "ke.stix.json"
    code, stdout, err = run(capsys, "export", "stix", "--node", address, "--output", str(out))
    assert code == 0 and stdout == "" and f"a STIX 2.1 bundle of 4 record(s) to {out}" in err
    assert out.stat().st_mode & 0o777 == 0o600
    text = out.read_text()
    result = stix2validator.validate_string(
        text, stix2validator.ValidationOptions(version="2.1", enforce_refs=True)
    )
    assert result.is_valid and result.errors == []
    objects = json.loads(text)["objects"]
    records = {o["x_gcn_record_id"]: o for o in objects if o["type"] in ("incident", "indicator")}
    assert set(records) == set(stocked.values())
    assert records[stocked["hcfc"]]["revoked"] is True
    assert records[stocked["alert"]]["type"] == "indicator"
    (node,) = [o for o in objects if "x_gcn_node_id" in o]
    assert node["name"] == "KE customs"
    searches = [e for e in app.audit.entries() if e.action == "search"]
    assert len(searches) == 2  # each page is an audited read
    code, again, _ = run(capsys, "export", "stix", "--node", address)
    assert code == 0 and again == text  # stdout, and the same bytes


def test_export_csv_with_filters_and_goods(
    address: str, stocked: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "export", "csv", "--node", address)
    assert code == 0
    rows = csv_rows(out)
    assert {r["record_id"] for r in rows} == set(stocked.values())
    assert {r["record_id"]: r["status"] for r in rows}[stocked["hcfc"]] == "retracted"
    code, out, _ = run(capsys, "export", "csv", "--node", address, "--goods")
    assert code == 0 and len(csv_rows(out)) == 2 + 1 + 1 + 1  # ivory has two goods items; the alert none
    code, out, _ = run(capsys, "export", "csv", "--node", address, "--kind", "alert")
    assert [r["record_id"] for r in csv_rows(out)] == [stocked["alert"]]
    code, out, _ = run(capsys, "export", "csv", "--node", address, "--hide-retracted", "--kind", "seizure")
    assert {r["record_id"] for r in csv_rows(out)} == {stocked["ivory"], stocked["rosewood"]}
    code, out, _ = run(capsys, "export", "csv", "--node", address, "--country", "mg")
    assert [r["record_id"] for r in csv_rows(out)] == [stocked["rosewood"]]
    code, out, _ = run(capsys, "export", "csv", "--node", address, "--operation", "demeter", "--origin", "ke")
    assert {r["record_id"] for r in csv_rows(out)} == {stocked["ivory"], stocked["alert"]}
    code, out, _ = run(capsys, "export", "csv", "--node", address, "--origin", "TZ")
    assert code == 0 and csv_rows(out) == [] and out.startswith("record_id,origin,kind,")


def test_export_errors_name_the_field(
    address: str,
    stocked: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = run(capsys, "export", "csv", "--node", address, "--from", "2026-13-01")
    assert code == 2 and "date_from" in err
    missing = tmp_path / "no-such-dir" / "out.csv"
    code, _, err = run(capsys, "export", "csv", "--node", address, "--output", str(missing))
    assert code == 2 and f"--output: cannot write {missing}" in err
    monkeypatch.delenv("GCN_TOKEN")
    code, _, err = run(capsys, "export", "stix", "--node", address)
    assert code == 2 and "no token" in err
