"""`gcn search` and `gcn alerts` through the real CLI, against a real node on
loopback (TLS, an officer's token). SQLite only: the search itself is tested
on both backends in tests/node/search/.

The node's clock starts ten days before the real day, so that `gcn alerts`
(which asks about today, UTC, by the machine's clock) sees an alert that
expired since it was recorded."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.api.grpc_server import RunningServer
from node.api.server import build_server
from node.api.tls import server_credentials
from node.app import NodeApp
from node.cli import search_cmds
from node.cli.main import main
from node.cli.search_render import source_line
from node.domain import samples
from node.testing.clock import ManualClock

DATE = re.compile(r"\b20[0-9]{2}-[0-9]{2}-[0-9]{2}\b")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'node.sqlite'}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=10))


@pytest.fixture
def address(app: NodeApp, officer_token: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("GCN_TOKEN", officer_token)
    monkeypatch.setenv("GCN_NODE_CA", str(app.config.api_tls_dir / "ca.pem"))
    monkeypatch.setenv("COLUMNS", "80")
    running: RunningServer = build_server(
        app, "127.0.0.1:0", max_message_bytes=4 << 20, workers=4, tls=server_credentials(app.config)
    )
    yield f"127.0.0.1:{running.port}"
    running.stop(None)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _party_seizure(day: date, company: str, person: str) -> rec.Seizure:
    s = samples.ivory_seizure(day)
    del s.parties[:]
    s.parties.add(kind=rec.PARTY_KIND_COMPANY, role=rec.PARTY_ROLE_SHIPPER, name=company, country="TR")
    s.parties.add(kind=rec.PARTY_KIND_PERSON, role=rec.PARTY_ROLE_BROKER, name=person, country="DK")
    del s.conveyance.container_numbers[:]
    return s


@pytest.fixture
def stocked(app: NodeApp, clock: ManualClock) -> dict[str, str]:
    day = clock().date()
    r = app.records
    return {
        "ivory": r.record_seizure(samples.ivory_seizure(day - timedelta(days=3))).record_id,
        "hcfc": r.record_seizure(samples.hcfc_seizure(day - timedelta(days=2))).record_id,
        "rosewood": r.record_seizure(samples.rosewood_seizure(day - timedelta(days=1))).record_id,
        "societe": r.record_seizure(
            _party_seizure(day - timedelta(days=5), "Société Générale des Bois SARL", "Søren Østergaard")
        ).record_id,
    }


def _ids(out: str) -> list[str]:
    return [h["record"]["record_id"] for h in json.loads(out)["hits"]]


def test_by_container_with_spaces(
    address: str, stocked: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "search", "--node", address, "--container", "csqu 305438 3")
    assert (code, err) == (0, "")
    assert "CSQU3054383" in out and "KEMBA" in out and "Loxodonta" in out
    assert "1 result" in out
    assert re.search(r"^local ok 1 result [0-9]+ ms$", out, re.M)
    assert "next page" not in out


def test_by_company_with_accents_and_free_text(
    address: str, stocked: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "search", "--node", address, "--company", "SOCIETE generale", "--json")
    assert code == 0
    assert _ids(out) == [stocked["societe"]]
    code, out, _ = run(capsys, "search", "--node", address, "--company", "Société", "--json")
    assert _ids(out) == [stocked["societe"]]
    code, out, _ = run(capsys, "search", "--node", address, "cylinders", "refrigeration", "--json")
    assert (code, _ids(out)) == (0, [stocked["hcfc"]])
    code, out, _ = run(capsys, "search", "--node", address, "groundnuts")
    assert code == 0 and "no results" in out and "local ok 0 results" in out


def test_table_fits_80_columns_and_dates_stay_whole(
    app: NodeApp,
    address: str,
    stocked: dict[str, str],
    clock: ManualClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app.records.record_alert(samples.vessel_alert(clock().date() + timedelta(days=30)))
    app.records.retract(stocked["hcfc"], "entered twice")
    code, out, _ = run(capsys, "search", "--node", address)
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, out
    assert len(DATE.findall(out)) == 5, out  # four seizures and the alert, each date on one line
    assert "RETRACTED" in out and "✓" in out and "✗" not in out
    for word in ("CSQU3054383", "MSKU7012349", "KEMBA", "NLRTM", "VNHPH", "ods-hfc", "13,600 kg"):
        assert word in out, word
    code, out, _ = run(capsys, "search", "--node", address, "--hide-retracted", "--json")
    assert stocked["hcfc"] not in _ids(out)


def test_json_carries_the_envelope(
    address: str, stocked: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "search", "--node", address, "--species", "dalbergia", "--json", "--local")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"hits", "sources", "next_page_token"}
    (hit,) = data["hits"]
    assert hit["record"]["record_id"] == stocked["rosewood"]
    assert hit["record"]["envelope"]["header"]  # the signed envelope, to verify elsewhere
    assert hit["record"]["envelope"]["signature"]
    assert hit["verified"] is True and hit["sources"] == ["local"]
    assert hit["record"]["created_at"].endswith("Z")
    assert hit["record"]["seizure"]["route"]["origin_country"] == "MG"  # proto field names
    assert data["sources"][0] | {"millis": 0} == {
        "source": "local",
        "state": "ok",
        "count": 1,
        "millis": 0,
        "rejected": 0,
        "detail": "",
    }
    assert data["next_page_token"] == ""


def test_bad_input_names_the_field(
    address: str, stocked: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "search", "--node", address, "--container", "CSQU 305438 4")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "query.container_number (--container): must be" in err, err
    code, _, err = run(capsys, "search", "--node", address, "--from", "2026-11-30", "--to", "2026-11-01")
    assert code == 2 and "query.date_to (--to): must not be before" in err
    code, _, err = run(capsys, "search", "--node", address, "--page", "garbage")
    assert code == 2 and "page_token (--page): is not a page token" in err
    code, _, err = run(capsys, "search", "--node", address, "--commodity", "ivory")
    assert code == 2 and "--commodity" in err
    code, _, err = run(capsys, "search", "--node", address, "--as", "origin")
    assert code == 2 and "--as: needs --country" in err
    code, _, err = run(capsys, "search", "--node", address, "--deadline", "60")
    assert code == 2 and "--deadline" in err
    code, _, err = run(capsys, "search", "--node", address, "--country", "MG", "--as", "origin", "--json")
    assert code == 0


def test_pages_print_the_next_command_and_page_continues(
    address: str, stocked: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "search", "--node", address, "--kind", "seizure", "--limit", "2")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80, out
    command = out.split("next page:\n")[1].replace("\\\n", " ")  # shell continuation lines
    words = shlex.split(command)
    assert words[:6] == ["gcn", "search", "--kind", "seizure", "--limit", "2"]
    token = words[words.index("--page") + 1]
    first = run(capsys, "search", "--node", address, "--kind", "seizure", "--limit", "2", "--json")[1]
    assert json.loads(first)["next_page_token"] == token
    second = run(
        capsys, "search", "--node", address, "--kind", "seizure", "--limit", "2", "--page", token, "--json"
    )[1]
    seen = _ids(first) + _ids(second)
    assert len(seen) == len(set(seen)) == 4
    assert set(seen) == set(stocked.values())
    assert json.loads(second)["next_page_token"] == ""


def test_alerts_in_force_highest_priority_first(
    app: NodeApp,
    address: str,
    clock: ManualClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    today = datetime.now(UTC).date()
    expired = samples.vessel_alert(clock().date() + timedelta(days=2))
    expired.title = "Expired watch on reefer containers"
    expired.priority = rec.PRIORITY_URGENT
    r = app.records
    ids = {"expired": r.record_alert(expired).record_id}
    clock.advance(60)
    ids["urgent"] = r.record_alert(samples.permit_alert(today + timedelta(days=30))).record_id
    clock.advance(3600)
    ids["high"] = r.record_alert(samples.vessel_alert(today + timedelta(days=60))).record_id  # newer
    medium = samples.vessel_alert(today + timedelta(days=5))
    medium.priority = rec.PRIORITY_MEDIUM
    medium.title = "Medium watch"
    ids["medium"] = r.record_alert(medium).record_id
    r.record_seizure(samples.ivory_seizure(clock().date()))  # not an alert

    monkeypatch.setattr(search_cmds, "ALERTS_PAGE", 2)  # so that the alerts span pages
    code, out, _ = run(capsys, "alerts", "--node", address, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["on"] == today.isoformat() and data["truncated"] is False
    got = [h["record"]["record_id"] for h in data["alerts"]]
    assert got == [ids["urgent"], ids["high"], ids["medium"]]

    code, out, _ = run(capsys, "alerts", "--node", address)
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert f"3 alerts in force on {today.isoformat()}" in out
    assert out.index("urgent") < out.index("high") < out.index("medium")
    assert "Expired" not in out

    asked = (clock().date() + timedelta(days=1)).isoformat()  # the expired one was in force then
    code, out, _ = run(capsys, "alerts", "--node", address, "--on", asked, "--json")
    got = [h["record"]["record_id"] for h in json.loads(out)["alerts"]]
    assert got == [ids["urgent"], ids["expired"], ids["high"], ids["medium"]]  # urgent: newest first

    monkeypatch.setattr(search_cmds, "MAX_ALERTS", 2)
    code, out, _ = run(capsys, "alerts", "--node", address)
    assert code == 0 and "2 alerts in force" in out and "only the first 2 shown" in out


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (
            npb.SourceStatus(source="local", state=npb.SourceStatus.STATE_OK, count=3, millis=12),
            "local ok 3 results 12 ms",
        ),
        (
            npb.SourceStatus(
                source="RINEX-ESA",
                state=npb.SourceStatus.STATE_TIMEOUT,
                detail="no answer within the deadline",
            ),
            "RINEX-ESA timeout (no answer within the deadline)",
        ),
        (
            npb.SourceStatus(
                source="WCO-GLOBAL",
                state=npb.SourceStatus.STATE_OK,
                count=2,
                millis=40,
                rejected=1,
                detail="1 result(s) rejected: does not verify: bad signature",
            ),
            "WCO-GLOBAL ok 2 results 40 ms (1 rejected: does not verify: bad signature)",
        ),
        (
            npb.SourceStatus(
                source="RINEX-SEA", state=npb.SourceStatus.STATE_REFUSED, detail="permission denied"
            ),
            "RINEX-SEA refused (permission denied)",
        ),
    ],
)
def test_source_lines(status: npb.SourceStatus, line: str) -> None:
    assert source_line(status) == line


def parse_search(argv: list[str]) -> search_cmds.SearchArgs:
    """What `gcn search ARGV` asks, as click parses it."""
    assert argv[0] == "search"
    with search_cmds.search.make_context("search", argv[1:]) as ctx:
        return search_cmds.SearchArgs.of(ctx.params)


def test_the_next_page_command_keeps_the_query(capsys: pytest.CaptureFixture[str]) -> None:
    a = parse_search(
        [
            "search",
            "ivory",
            "tusks",
            "--company",
            "Société Générale",
            "--as",
            "party",
            "--country",
            "TR",
            "--local",
        ]
    )
    words = search_cmds.next_page_command(a, "TOKEN")
    assert words == [
        "gcn", "search", "ivory", "tusks", "--company", "Société Générale", "--country", "TR",
        "--as", "party", "--local", "--limit", "20", "--page", "TOKEN",
    ]  # fmt: skip
    again = parse_search(shlex.split(" ".join(search_cmds.shell_lines(words, 40)).replace("\\", ""))[1:])
    assert (again.text, again.company, again.page) == (["ivory", "tusks"], "Société Générale", "TOKEN")
    assert all(len(line) <= 40 for line in search_cmds.shell_lines(words, 40))
    dashed = parse_search(["search", "--local", "--", "-20C", "reefer"])
    again = parse_search(search_cmds.next_page_command(dashed, "T")[1:])
    assert (again.text, again.page, again.local) == (["-20C", "reefer"], "T", True)
