"""Health says which links work: `gcn.link/PEER` per link and `gcn.links` for
all of them (issue 8: "health reports it"), on the node's real health service,
read over the federation listener's mutual TLS."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.api.server import LINK_SERVICE, LINKS_SERVICE, STORAGE_SERVICE, report_health
from node.replication import Replication
from node.testing.clock import ManualClock
from node.testing.local_federation import LocalFederation, LocalNode

pytestmark = pytest.mark.slow
Status = health_pb2.HealthCheckResponse


@pytest.fixture
def fed(tmp_path: Path, clock: ManualClock) -> Iterator[LocalFederation]:
    f = LocalFederation(tmp_path, clock)
    f.add("WCO-GLOBAL", "global")
    f.add("RINEX-ESA", "regional", region="ESA", upstreams=["WCO-GLOBAL"])
    f.add("KE", "national", country="KE", region="ESA", upstreams=["RINEX-ESA"])
    f.publish()
    f.start()
    yield f
    f.close()


def _status(asker: LocalNode, node: LocalNode, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(asker.channel(node))
    reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(reply.status)


def test_health_names_the_link_that_is_down_and_clears_when_it_is_back(
    fed: LocalFederation, clock: ManualClock
) -> None:
    esa, hub, ke = fed.nodes["RINEX-ESA"], fed.nodes["WCO-GLOBAL"], fed.nodes["KE"]
    assert esa.server is not None
    replication = Replication(esa.app, esa.tls)
    replication.on_health.append(partial(report_health, esa.server))
    to_hub = replication.peer_sync(next(p for p in replication.peers() if p.node_id == "WCO-GLOBAL"))
    try:
        to_hub.run(clock())
        replication.periodic()
        assert _status(ke, esa, LINK_SERVICE + "WCO-GLOBAL") == Status.SERVING
        assert _status(ke, esa, LINK_SERVICE + "KE") == Status.UNKNOWN  # no round with KE yet
        assert _status(ke, esa, LINKS_SERVICE) == Status.SERVING

        hub.stop()  # the global hub's link goes down
        to_hub.run(clock())
        replication.periodic()
        assert _status(ke, esa, LINK_SERVICE + "WCO-GLOBAL") == Status.NOT_SERVING
        assert _status(ke, esa, LINKS_SERVICE) == Status.NOT_SERVING

        hub.start()
        to_hub.run(clock())
        replication.periodic()
        assert _status(ke, esa, LINK_SERVICE + "WCO-GLOBAL") == Status.SERVING
        assert _status(ke, esa, LINKS_SERVICE) == Status.SERVING
    finally:
        replication.stop()


def test_health_says_when_the_disk_under_the_node_is_nearly_full(fed: LocalFederation) -> None:
    esa, ke = fed.nodes["RINEX-ESA"], fed.nodes["KE"]
    assert esa.server is not None
    replication = Replication(esa.app, esa.tls)
    replication.on_health.append(partial(report_health, esa.server))
    try:
        replication.periodic()
        assert _status(ke, esa, STORAGE_SERVICE) == Status.SERVING
        replication.min_free_bytes = 1 << 62  # more than any disk here has free
        replication.periodic()
        assert _status(ke, esa, STORAGE_SERVICE) == Status.NOT_SERVING
        replication.min_free_bytes = 0
        replication.periodic()
        assert _status(ke, esa, STORAGE_SERVICE) == Status.SERVING
    finally:
        replication.stop()
