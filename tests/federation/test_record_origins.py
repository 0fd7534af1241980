"""Record ids are chosen by each origin: two origins' records may share one.
A lookup by id takes the origin into account (GetRecord's `origin`), and a
lookup without it never silently answers with another origin's record. Real
nodes on loopback: KE and TZ record, the global hub WCO-GLOBAL holds both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

import node.domain.records
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import node_pb2_grpc
from gcn.v1 import records_pb2 as rec
from node.api.server import build_server
from node.cli.client import with_token
from node.domain import samples
from node.errors import ConflictError, NotFoundError, ValidationError
from node.storage.users import Role, UserStore
from node.testing.clock import ManualClock
from node.testing.local_federation import LocalFederation

pytestmark = pytest.mark.slow
SHARED_ID = uuid.UUID("5b0e5e9c-2b1f-4c7e-9a51-3c2d1f0e9a77")


@pytest.fixture
def fed(tmp_path: Path, clock: ManualClock) -> Iterator[LocalFederation]:
    f = LocalFederation(tmp_path, clock)
    f.add("WCO-GLOBAL", "global")
    f.add("KE", "national", country="KE", region="ESA", upstreams=["WCO-GLOBAL"])
    f.add("TZ", "national", country="TZ", region="ESA", upstreams=["WCO-GLOBAL"])
    f.publish()
    f.start()
    f.sync_all(rounds=3)
    yield f
    f.close()


def _open_seizure(clock: ManualClock) -> rec.Seizure:
    seizure = samples.ivory_seizure(clock().date())
    seizure.tlp = rec.TLP_GREEN  # national full, region redacted, global statistical
    return seizure


def test_a_record_id_held_from_two_origins_is_looked_up_by_origin(
    fed: LocalFederation, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both origins happen to choose the same id (a colliding or hostile generator).
    monkeypatch.setattr(node.domain.records, "uuid", SimpleNamespace(uuid4=lambda: SHARED_ID))
    for origin in ("KE", "TZ"):
        recorded = fed.nodes[origin].app.records.record_seizure(_open_seizure(clock))
        assert recorded.record_id == str(SHARED_ID)
    monkeypatch.undo()
    fed.sync_all(rounds=2)
    hub = fed.nodes["WCO-GLOBAL"].app

    with pytest.raises(ConflictError, match=r"several origins \(KE, TZ\)"):
        hub.reader.get(str(SHARED_ID))
    assert hub.reader.get(str(SHARED_ID), origin="TZ").origin == "TZ"
    assert hub.reader.get(str(SHARED_ID), origin="ke").origin == "KE"
    with pytest.raises(NotFoundError, match="of VN"):
        hub.reader.get(str(SHARED_ID), origin="VN")
    with pytest.raises(ValidationError, match=r"^origin: "):
        hub.reader.get(str(SHARED_ID), origin="KE\x00")
    # Every reader of the global audience is in the same position: KE too.
    with pytest.raises(ConflictError):
        fed.nodes["KE"].app.reader.get(str(SHARED_ID))
    assert fed.nodes["KE"].app.reader.get(str(SHARED_ID), origin="KE").view == epb.VIEW_FULL

    token = UserStore(hub.db, clock).add("analyst", Role.ANALYST, clock())
    running = build_server(hub, "127.0.0.1:0", max_message_bytes=4 * 1024 * 1024, workers=2, tls=None)
    channel = with_token(grpc.insecure_channel(f"127.0.0.1:{running.port}"), token)
    try:
        stub = node_pb2_grpc.NodeServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetRecord(npb.GetRecordRequest(record_id=str(SHARED_ID)), timeout=10)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "KE, TZ" in (err.value.details() or "")
        got = stub.GetRecord(npb.GetRecordRequest(record_id=str(SHARED_ID), origin="TZ"), timeout=10)
        assert got.origin == "TZ" and got.seizure.place.country == "KE"
    finally:
        channel.close()
        running.stop(None)
