"""`gcn search` across a federation: KE's officer asks KE, which asks its hub
RINEX-ESA over mutual TLS. The hub's answer, a hub that is down and a hub that
accepts the connection but never answers are each named in a status line.
Real nodes, keys, certificates and listeners on loopback (SQLite)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.api.grpc_server import RunningServer
from node.api.server import build_server
from node.api.tls import server_credentials
from node.cli.main import main
from node.domain import samples
from node.hub_links import HubLinks
from node.storage.users import Role, UserStore
from node.testing.clock import ManualClock
from node.testing.local_federation import LocalFederation


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=1))


@pytest.fixture
def fed(tmp_path: Path, clock: ManualClock) -> Iterator[LocalFederation]:
    """RINEX-ESA above KE and TZ; TZ's seizure reached the hub, not KE."""
    f = LocalFederation(tmp_path, clock)
    f.add("RINEX-ESA", "regional", region="ESA")
    f.add("KE", "national", country="KE", region="ESA", upstreams=["RINEX-ESA"])
    f.add("TZ", "national", country="TZ", region="ESA", upstreams=["RINEX-ESA"])
    f.publish()
    f.start()
    f.sync_all(rounds=3)  # audience keys reach every member
    f.nodes["TZ"].app.records.record_seizure(samples.hcfc_seizure(clock().date()))
    f.sync("TZ", "RINEX-ESA")
    yield f
    f.close()


@pytest.fixture
def address(fed: LocalFederation, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    ke = fed.nodes["KE"]
    hubs = HubLinks(ke.tls, "KE", ke.app.trust.directory, ke.app.config.federation.upstream_ids)
    ke.app.search.hubs = hubs
    monkeypatch.setenv("GCN_TOKEN", UserStore(ke.app.db, clock).add("wanjiru", Role.OFFICER, clock()))
    monkeypatch.setenv("GCN_NODE_CA", str(ke.app.config.api_tls_dir / "ca.pem"))
    monkeypatch.setenv("COLUMNS", "80")
    running: RunningServer = build_server(
        ke.app, "127.0.0.1:0", max_message_bytes=4 << 20, workers=4, tls=server_credentials(ke.app.config)
    )
    yield f"127.0.0.1:{running.port}"
    running.stop(None)
    hubs.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_hub_results_and_each_source_named(
    fed: LocalFederation, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "search", "--node", address, "--container", "MSKU 701234 9")
    assert (code, err) == (0, ""), err
    assert "MSKU7012349" in out and "TZ" in out
    lines = out.splitlines()
    assert "local ok 0 results" in out
    assert any(line.startswith("RINEX-ESA ok 1 result ") for line in lines), out
    assert max(len(line) for line in lines) <= 80

    code, out, _ = run(capsys, "search", "--node", address, "--container", "MSKU7012349", "--json")
    data = json.loads(out)
    (hit,) = data["hits"]
    assert hit["record"]["origin"] == "TZ" and hit["sources"] == ["RINEX-ESA"] and hit["verified"]
    assert [(s["source"], s["state"]) for s in data["sources"]] == [("local", "ok"), ("RINEX-ESA", "ok")]

    code, out, _ = run(capsys, "search", "--node", address, "--container", "MSKU7012349", "--local")
    assert code == 0 and "no results" in out and "RINEX-ESA" not in out


def test_a_hub_down_or_silent_is_named_and_the_search_still_answers(
    fed: LocalFederation, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = fed.nodes["RINEX-ESA"]
    hub.stop()
    host, port = hub.endpoint.rsplit(":", 1)
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind((host, int(port)))
        silent.listen(8)
        code, out, _ = run(capsys, "search", "--node", address, "--deadline", "1")
    assert code == 0
    assert "local ok" in out and "RINEX-ESA timeout (no answer within the deadline)" in out, out

    code, out, _ = run(capsys, "search", "--node", address, "--deadline", "2")  # nothing listens now
    assert code == 0
    assert "local ok" in out and "RINEX-ESA unavailable (" in out, out
