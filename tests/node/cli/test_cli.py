"""The `gcn` command line against a real node on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import click
import pytest
from google.protobuf import json_format

from gcn.v1 import records_pb2 as rec
from node.api.grpc_server import RunningServer
from node.api.server import build_server
from node.api.tls import server_credentials
from node.app import NodeApp
from node.bootstrap import CONFIG_FILE
from node.cli import render
from node.cli.main import main
from node.cli.node_cmds import host_port
from node.domain import samples
from node.storage.alarms import record_alarm
from node.testing.clock import ManualClock

pytestmark = pytest.mark.usefixtures("db_url")


@pytest.fixture
def address(app: NodeApp, officer_token: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The node's address; commands find an officer's token in GCN_TOKEN and
    the node's API CA in GCN_NODE_CA."""
    monkeypatch.setenv("GCN_TOKEN", officer_token)
    monkeypatch.setenv("GCN_NODE_CA", str(app.config.api_tls_dir / "ca.pem"))
    tls = server_credentials(app.config)
    running: RunningServer = build_server(app, "127.0.0.1:0", max_message_bytes=4 << 20, workers=4, tls=tls)
    yield f"127.0.0.1:{running.port}"
    running.stop(None)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_seizure_by_flags_then_show_as_json(
    address: str, capsys: pytest.CaptureFixture[str], clock: ManualClock
) -> None:
    code, out, _ = run(
        capsys,
        "seizure",
        "add",
        "--node",
        address,
        "--json",
        "--date",
        "2026-11-20",
        "--country",
        "ke",
        "--port",
        "KEMBA",
        "--direction",
        "export",
        "--detection",
        "nii-scan",
        "--commodity",
        "wildlife",
        "--description",
        "raw ivory",
        "--hs",
        "0507.10",
        "--species",
        "Loxodonta africana",
        "--cites",
        "i",
        "--quantity",
        "450 kg",
        "--value",
        "1200 usd",
        "--container",
        "CSQU3054383",
        "--imo",
        "IMO 9074729",
        "--person",
        "John Doe:broker:KE",
        "--company",
        "Sesame Traders Ltd:shipper:KE",
        "--operation",
        "demeter",
        "--tlp",
        "amber",
    )
    assert code == 0
    record_id = json.loads(out)["record_id"]
    code, out, _ = run(capsys, "records", "show", record_id, "--node", address, "--json")
    assert code == 0
    shown = json.loads(out)["seizure"]
    assert shown["place"] == {"country": "KE", "port_locode": "KEMBA"}
    assert shown["goods"][0]["hs_code"] == "050710"
    assert shown["conveyance"]["vessel_imo"] == "9074729"
    assert {p["name"] for p in shown["parties"]} == {"John Doe", "Sesame Traders Ltd"}
    code, out, _ = run(capsys, "records", "show", record_id, "--origin", "ke", "--node", address, "--json")
    assert code == 0 and json.loads(out)["origin"] == "KE"
    code, _, err = run(capsys, "records", "show", record_id, "--origin", "TZ", "--node", address)
    assert code == 2 and f"not found: no record {record_id} of TZ on this node" in err


def test_seizure_from_a_json_file_and_list_by_container(
    address: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, clock: ManualClock
) -> None:
    seizure = samples.hcfc_seizure(clock().date() - timedelta(days=1))
    path = tmp_path / "s.json"
    path.write_text(json_format.MessageToJson(seizure))
    code, out, _ = run(capsys, "seizure", "add", "--node", address, "--file", str(path))
    assert code == 0 and "CO2-equivalent 24,616.0 t" in out
    code, out, _ = run(capsys, "records", "list", "--node", address, "--container", "MSKU7012349", "--json")
    assert code == 0
    records = json.loads(out)["records"]
    assert len(records) == 1 and records[0]["seizure"]["operation_code"] == "CASSINI"


def test_alert_by_flags_and_retract(
    address: str, capsys: pytest.CaptureFixture[str], clock: ManualClock
) -> None:
    until = (clock().date() + timedelta(days=30)).isoformat()
    code, out, _ = run(
        capsys,
        "alert",
        "add",
        "--node",
        address,
        "--json",
        "--title",
        "Suspect vessel",
        "--vessel",
        "9074729",
        "--route",
        "KE>MY>VN",
        "--commodity",
        "wildlife",
        "--priority",
        "high",
        "--valid-until",
        until,
        "--indicator",
        "new shipper",
    )
    assert code == 0
    record_id = json.loads(out)["record_id"]
    code, out, _ = run(capsys, "retract", record_id, "--reason", "vessel cleared", "--node", address)
    assert code == 0 and "recorded retraction" in out
    code, out, _ = run(capsys, "records", "list", "--node", address, "--json")
    assert json.loads(out).get("records", []) == []


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        pytest.param(["--file", "{bad"], 2, "is not valid JSON (line 1", id="malformed-json"),
        pytest.param(["--file", '{"incidentDate": 5}'], 2, "is not a Seizure", id="json-wrong-type"),
        pytest.param(["--file", '{"nope": 1}'], 2, "is not a Seizure", id="json-unknown-field"),
        pytest.param(["--commodity", "gold"], 2, "--commodity: 'gold' is not one of", id="unknown-commodity"),
        pytest.param(
            ["--quantity", "ten kg"], 2, "--quantity: 'ten' is not a number", id="quantity-not-number"
        ),
        pytest.param(["--quantity", "10 bags"], 2, "unit 'bags'", id="quantity-unknown-unit"),
        pytest.param(
            [
                "--date",
                "2026-11-20",
                "--country",
                "KE",
                "--direction",
                "export",
                "--detection",
                "random",
                "--commodity",
                "timber",
                "--description",
                "logs",
                "--quantity",
                "3 m3",
                "--container",
                "CSQU3054384",
            ],
            2,
            "conveyance.container_numbers[0]",
            id="server-side-validation",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(
    address: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: list[str],
    exit_code: int,
    message: str,
) -> None:
    if args[0] == "--file":
        path = tmp_path / "bad.json"
        path.write_text(args[1])
        args = ["--file", str(path)]
    code, _, err = run(capsys, "seizure", "add", "--node", address, *args)
    assert code == exit_code
    assert err.startswith("gcn: ") and err.count("\n") == 1, err
    assert message in err


def test_an_unreachable_node_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "records", "list", "--node", "127.0.0.1:1", "--token", "gcn_x")
    assert code == 1 and err.startswith("gcn: node unavailable")


def test_a_missing_token_is_one_line_and_exit_2(
    address: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GCN_TOKEN")
    code, _, err = run(capsys, "records", "list", "--node", address)
    assert code == 2
    assert err.startswith("gcn: unauthenticated: ") and err.count("\n") == 1, err
    assert "--token" in err and "GCN_TOKEN" in err


def test_users_add_prints_the_token_once_and_it_works_until_removed(
    app: NodeApp, address: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GCN_TOKEN")
    config = str(app.config.base_dir / "gcn.toml")
    code, out, err = run(capsys, "users", "add", "ana", "--role", "analyst", "--config", config)
    assert code == 0 and "shown only this once" in err
    token = out.strip()
    assert token.startswith("gcn_") and "\n" not in token and token not in err

    code, out, _ = run(capsys, "records", "list", "--node", address, "--token", token, "--json")
    assert code == 0
    # An analyst reads but may not record: one line, the role and what it needs.
    code, _, err = run(
        capsys,
        "retract",
        "3f0c1b9e-0000-4000-8000-000000000000",
        "--reason",
        "x",
        "--node",
        address,
        "--token",
        token,
    )
    assert code == 2
    # (The in-process node logs its refusal as a warning on the same stderr.)
    assert err.splitlines()[-1] == "gcn: permission denied: role analyst may not call Retract (needs officer)"

    code, out, _ = run(capsys, "users", "list", "--config", config, "--json")
    listed = {u["name"]: u for u in json.loads(out)}
    assert listed["ana"]["role"] == "analyst" and listed["ana"]["last_used_at"]
    assert token not in out

    code, out, err = run(capsys, "users", "rotate", "ana", "--config", config)
    new = out.strip()
    assert code == 0 and new.startswith("gcn_") and new != token
    code, _, err = run(capsys, "records", "list", "--node", address, "--token", token)
    assert code == 2 and err == "gcn: unauthenticated: unknown or revoked token\n"
    assert run(capsys, "records", "list", "--node", address, "--token", new)[0] == 0

    code, out, _ = run(capsys, "users", "remove", "ana", "--config", config)
    assert code == 0 and "removed" in out
    code, _, err = run(capsys, "records", "list", "--node", address, "--token", new)
    assert code == 2 and "unknown or revoked token" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["add", "Bad Name", "--role", "officer"], "gcn: name: must be", id="bad-name"),
        pytest.param(["add", "officer", "--role", "officer"], "already exists", id="duplicate"),
        pytest.param(["remove", "nobody"], "no user nobody", id="remove-unknown"),
        pytest.param(["rotate", "nobody"], "no user nobody", id="rotate-unknown"),
    ],
)
def test_users_commands_refuse_bad_input_in_one_line(
    app: NodeApp,
    officer_token: str,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    config = str(app.config.base_dir / "gcn.toml")
    code, out, err = run(capsys, "users", *argv, "--config", config)
    assert code == 2 and out == ""
    assert err.startswith("gcn: ") and err.count("\n") == 1 and message in err, err


def test_init_refuses_to_overwrite_a_node(app: NodeApp, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "init", "--dir", str(app.config.base_dir), "--id", "KE", "--country", "KE")
    assert code == 2 and "already exists" in err


def test_seizure_json_round_trips_through_the_protobuf_json_mapping(clock: ManualClock) -> None:
    seizure = samples.ivory_seizure(clock().date())
    assert json_format.Parse(json_format.MessageToJson(seizure), rec.Seizure()) == seizure


def test_seizure_import_from_json_lines_in_batches(
    address: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, clock: ManualClock
) -> None:
    import random

    rng = random.Random(4)
    seizures = [samples.random_seizure(rng, clock().date()) for _ in range(7)]
    for s in seizures:
        s.tlp = rec.TLP_AMBER
    path = tmp_path / "history.jsonl"
    path.write_text(
        "# CEN history export\n" + "\n".join(json_format.MessageToJson(s, indent=None) for s in seizures)
    )
    code, out, _ = run(capsys, "seizure", "import", str(path), "--batch", "3", "--node", address)
    assert code == 0 and "imported 7 seizures" in out
    code, out, _ = run(capsys, "records", "list", "--node", address, "--json", "--limit", "100")
    assert len(json.loads(out)["records"]) == 7
    path.write_text(json_format.MessageToJson(seizures[0], indent=None) + "\n{not json}\n")
    code, _, err = run(capsys, "seizure", "import", str(path), "--node", address)
    assert code == 2 and "line 2: not a Seizure" in err


@pytest.mark.parametrize(
    "value", ["127.0.0.1:\uff17\uff14\uff10\uff11", "127.0.0.1:7401\n", "127.0.0.1:+7401", ":7401"]
)
def test_a_host_port_takes_ascii_digits_only(value: str) -> None:
    with pytest.raises(click.BadParameter):
        host_port(value)
    assert host_port("127.0.0.1:7401") == "127.0.0.1:7401"


def test_text_other_nodes_wrote_is_printed_as_it_is_never_as_terminal_markup(
    app: NodeApp,
    tmp_path: Path,
    clock: ManualClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Red team F3: a member's audience name or goods description in Rich markup
    showed in `gcn alarms` and `gcn records show` as a red banner and a link."""
    monkeypatch.setattr(render.console, "width", 400)  # one line per row
    hostile = "[bold white on red] KE COMPROMISED [/] [link=https://evil.example]call[/link] :warning:"
    record_alarm(app.db, "refused_from_peer", clock(), hostile, origin="TZ")
    code, out, _ = run(capsys, "alarms", "--config", str(tmp_path / "ke" / CONFIG_FILE))
    assert code == 0
    flat = " ".join(out.split())
    assert "[bold white on red] KE COMPROMISED [/]" in flat and "[link=https://evil.example]" in flat
    assert ":warning:" in flat


def test_the_same_seizure_twice_says_which_record_it_repeats_and_how_to_record_it_anyway(
    address: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "s.json"
    path.write_text(json_format.MessageToJson(samples.ivory_seizure(clock().date())))
    code, out, _ = run(capsys, "seizure", "add", "--node", address, "--file", str(path), "--json")
    assert code == 0
    first = json.loads(out)["record_id"]
    code, _, err = run(capsys, "seizure", "add", "--node", address, "--file", str(path))
    assert code == 2 and err.count("\n") == 1, err
    assert f"already exists: seizure: this node recorded {first[:8]} on the same day" in err
    assert "(add --allow-duplicate to record it anyway)" in err
    code, _, _ = run(capsys, "seizure", "add", "--node", address, "--file", str(path), "--allow-duplicate")
    assert code == 0


def test_generated_seizures_import_as_they_are_and_a_seed_makes_the_same_file(
    address: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path, again = tmp_path / "made.jsonl", tmp_path / "again.jsonl"
    args = ["generate", "seizures", "--count", "40", "--seed", "5", "--today", "2026-11-30"]
    args += ["--country", "ke"]
    assert run(capsys, *args, "--output", str(path))[0] == 0
    assert run(capsys, *args, "--output", str(again))[0] == 0
    assert path.read_bytes() == again.read_bytes() and len(path.read_text().splitlines()) == 40
    code, out, _ = run(capsys, "seizure", "import", str(path), "--batch", "15", "--node", address)
    assert code == 0 and "imported 40 seizures" in out, out
    code, out, _ = run(capsys, "generate", "alerts", "--count", "3", "--seed", "5", "--today", "2026-11-30")
    assert code == 0 and len(out.splitlines()) == 3 and '"validUntil"' in out
    code, _, err = run(capsys, "generate", "seizures", "--count", "1", "--country", "XX")
    assert code == 2 and "--country: no ports known for XX" in err
