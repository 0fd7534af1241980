"""`/metrics` in Prometheus text format, scraped over HTTP the way Prometheus
does it, while a small federation on loopback works: the numbers move."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from federation.policy import Share
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import search_pb2 as spb
from node.config import config_from
from node.domain import samples
from node.errors import ConfigError
from node.metrics import NodeMetrics
from node.testing.clock import ManualClock
from node.testing.local_federation import LocalFederation
from tests.federation.policy_fixtures import FixedPolicy

pytestmark = pytest.mark.slow

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass(frozen=True)
class Analyst:
    name: str = "analyst"
    role: str = "analyst"


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples_: Samples, name: str, **labels: str) -> float:
    return samples_.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def fed(tmp_path: Path, clock: ManualClock) -> Iterator[LocalFederation]:
    f = LocalFederation(tmp_path, clock)
    f.add("RINEX-ESA", "regional", region="ESA")
    f.add("KE", "national", country="KE", region="ESA", upstreams=["RINEX-ESA"])
    f.publish()
    f.start()
    yield f
    f.close()


@pytest.fixture
def ke_metrics(fed: LocalFederation) -> Iterator[tuple[NodeMetrics, int]]:
    metrics = NodeMetrics(fed.nodes["KE"].app, slow_seconds=0)
    port = metrics.serve("127.0.0.1:0")
    yield metrics, port
    metrics.stop()


def test_the_numbers_move_as_the_node_records_syncs_and_searches(
    fed: LocalFederation, ke_metrics: tuple[NodeMetrics, int], clock: ManualClock
) -> None:
    _, port = ke_metrics
    ke = fed.nodes["KE"].app
    ke.records.policy = FixedPolicy(  # type: ignore[assignment]
        [Share("national:KE", epb.VIEW_FULL), Share("region:ESA", epb.VIEW_REDACTED)]
    )
    before = scrape(port)
    assert value(before, "gcn_records", kind="seizure") == 0
    assert value(before, "gcn_peer_link_state", peer="RINEX-ESA", state="never") == 1
    assert value(before, "gcn_directory_version") >= 1
    assert value(before, "gcn_directory_fresh") == 1

    # Before the region's key came: one share waits, and says so here too.
    ke.records.record_seizure(samples.ivory_seizure(clock().date()))
    waiting = scrape(port)
    assert value(waiting, "gcn_records", kind="seizure") == 1
    assert value(waiting, "gcn_shares_waiting_for_key", audience="region:ESA") == 1

    to_hub = fed.peer_sync("KE", "RINEX-ESA")  # as `gcn serve` runs it: its state saved
    for _ in range(2):
        to_hub.run(clock())
        ke.records.seal_waiting()
    to_hub.run(clock())
    for _ in range(2):
        ke.records.record_seizure(samples.hcfc_seizure(clock().date()))
    lagging = scrape(port)
    assert value(lagging, "gcn_shares_waiting_for_key", audience="region:ESA") == 0
    assert value(lagging, "gcn_records", kind="seizure") == 3 + 3  # national:KE and region:ESA views
    assert value(lagging, "gcn_sync_behind_total", peer="RINEX-ESA") == 2
    assert (
        value(lagging, "gcn_sync_behind_envelopes", peer="RINEX-ESA", origin="KE", audience="region:ESA") == 2
    )

    to_hub.run(clock())
    ke.search.search_for(
        Analyst(), npb.SearchRequest(query=spb.SearchQuery(species="pangolin"), local_only=True)
    )
    after = scrape(port)
    assert value(after, "gcn_sync_behind_total", peer="RINEX-ESA") == 0
    assert value(after, "gcn_peer_link_state", peer="RINEX-ESA", state="ok") == 1
    assert value(after, "gcn_peer_envelopes_total", peer="RINEX-ESA", direction="sent") >= 3
    assert value(after, "gcn_peer_bytes_total", peer="RINEX-ESA", direction="sent") > 0
    assert value(after, "gcn_search_duration_seconds_count", scope="local") == 1
    assert value(after, "gcn_streams") >= 2


def test_a_metrics_address_must_name_its_host(tmp_path: Path) -> None:
    node = {"id": "KE", "name": "KE customs", "role": "national", "country": "KE"}
    config = config_from({"node": node, "server": {"metrics_listen": "127.0.0.1:9464"}}, tmp_path)
    assert config.server.metrics_listen == "127.0.0.1:9464"
    with pytest.raises(ConfigError, match="metrics_listen ':9464' must name its host"):
        config_from({"node": node, "server": {"metrics_listen": ":9464"}}, tmp_path)
    with pytest.raises(ConfigError, match="metrics_listen 'localhost' must be HOST:PORT"):
        config_from({"node": node, "server": {"metrics_listen": "localhost"}}, tmp_path)


def test_a_taken_metrics_port_stops_gcn_serve_with_one_line(tmp_path: Path, clock: ManualClock) -> None:
    """Red team (ops pass 1, finding 6): it stopped with a Python traceback."""
    import os
    import socket
    import subprocess
    import sys

    from tests.conftest import make_node

    app = make_node(tmp_path / "ke", clock, f"sqlite:///{tmp_path / 'ke.sqlite'}")
    config = app.config.base_dir / "gcn.toml"
    app.close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "GCN_SERVER_METRICS_LISTEN": f"127.0.0.1:{port}", "GCN_SERVER_TLS": "off"}
        gcn = str(Path(sys.executable).with_name("gcn"))
        done = subprocess.run(
            [gcn, "serve", "--config", str(config)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"gcn: cannot listen on 127.0.0.1:{port} for metrics"), done.stderr
    assert "Traceback" not in done.stderr
