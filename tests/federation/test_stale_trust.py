"""Stale trust fails closed, visibly, and recovers by itself.

A node whose directory has expired (or whose freshest root timestamp is too
old, or which has seen a timestamp for a version it does not hold) still lets
officers read what it holds, but refuses envelopes created after its horizon,
relays nothing, and says so; a valid newer directory or timestamp ends it.
Real nodes on loopback with mutual TLS."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import grpc
import pytest

from federation.peers import Peer
from federation.root import RootStore
from federation.scheduler import PeerSync, SyncSettings
from federation.transport import peer_stub, sync_stub
from gcn.v1 import directory_pb2 as dir_pb
from gcn.v1 import sync_pb2
from node.domain import samples
from node.logging import get_logger
from node.replication import Replication
from node.storage.envelope_log import as_envelope
from node.storage.files import write_file
from node.storage.models import EnvelopeRow
from node.storage.peer_state import DbPeerStateStore, Health
from node.testing.clock import ManualClock
from node.testing.local_federation import LocalFederation

pytestmark = pytest.mark.slow
DAY = 24 * 3600


@pytest.fixture
def fed(tmp_path: Path, clock: ManualClock) -> Iterator[LocalFederation]:
    f = LocalFederation(tmp_path, clock)
    f.root = RootStore.init(
        tmp_path / "root2", "gcn-local", clock(), timestamp_max_age=timedelta(days=2), write=write_file
    )
    f.add("WCO-GLOBAL", "global")
    f.add("KE", "national", country="KE", region="ESA", upstreams=["WCO-GLOBAL"])
    f.add("TZ", "national", country="TZ", region="ESA", upstreams=["WCO-GLOBAL"])
    f.publish(valid_days=30)
    f.start()
    f.sync_all(rounds=2)
    yield f
    f.close()


def _tz_envelopes(fed: LocalFederation) -> list:  # type: ignore[type-arg]
    from sqlalchemy import select

    with fed.nodes["TZ"].app.db.read() as s:
        rows = s.scalars(select(EnvelopeRow).where(EnvelopeRow.origin == "TZ").order_by(EnvelopeRow.id))
        return [as_envelope(r) for r in rows]


def _push(fed: LocalFederation, sender: str, receiver: str, envelopes: list) -> sync_pb2.PushResponse:  # type: ignore[type-arg]
    stub = sync_stub(fed.nodes[sender].channel(fed.nodes[receiver]))
    reply: sync_pb2.PushResponse = stub.Push(sync_pb2.PushRequest(envelopes=envelopes), timeout=10)
    return reply


def test_a_withheld_directory_freezes_a_node_no_longer_than_the_timestamp_age(
    fed: LocalFederation, clock: ManualClock
) -> None:
    """The attack: the root revokes TZ; KE's upstream withholds that directory.
    KE on its old view would keep trusting TZ; with timestamps no older than 2
    days required, KE turns stale after 2 days, refuses TZ's new envelopes, and
    relays nothing, until the new directory reaches it."""
    ke, tz = fed.nodes["KE"].app, fed.nodes["TZ"].app
    clock.advance(3600)
    tz.records.record_seizure(samples.ivory_seizure(clock().date()))  # dated before the horizon
    early = _tz_envelopes(fed)[-1:]
    fed.root.revoke("TZ", clock())
    v2 = fed.root.publish(clock())
    fed.nodes["WCO-GLOBAL"].app.accept_directory(v2)  # ... and never to KE
    assert ke.trust.check_freshness(clock()).fresh  # within the 2 days
    clock.advance(3 * DAY)
    verdict = ke.trust.check_freshness(clock())
    assert "no fresh timestamp" in verdict.stale
    tz.records.record_seizure(samples.ivory_seizure(clock().date()))
    fresh = _tz_envelopes(fed)[-1:]
    # KE takes nothing and relays nothing while stale: not TZ's new envelopes,
    # nor one dated before the horizon (red team F5: back-dating got past a
    # check on created_at alone) ...
    for envelopes in (fresh, early):
        with pytest.raises(grpc.RpcError) as err:
            _push(fed, "TZ", "KE", envelopes)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as err:
        sync_stub(fed.nodes["TZ"].channel(fed.nodes["KE"])).GetVector(sync_pb2.GetVectorRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not relaying" in (err.value.details() or "")
    # ... but its officers still read what it holds.
    own = ke.records.record_seizure(samples.hcfc_seizure(clock().date()))
    assert ke.reader.get(own.record_id).seizure.goods
    # The new directory reaches KE (a sync round with its upstream): fresh again,
    # and TZ's new envelopes are refused for what they are now.
    ps = PeerSync(
        Peer("WCO-GLOBAL", fed.nodes["WCO-GLOBAL"].endpoint, upstream=True),
        partial(lambda: peer_stub(fed.nodes["KE"].channel(fed.nodes["WCO-GLOBAL"]))),
        ke.sync_source,
        ke.receiver,
        DbPeerStateStore(ke.db),
        SyncSettings(timeout=5),
        get_logger("test"),
        random.Random(1),
        directory_version=ke.trust.version,
        on_directory=ke.accept_directory,
    )
    fed.nodes["WCO-GLOBAL"].app.accept_directory(  # the root's daily timestamp reaches the hub
        dir_pb.SignedDirectory(timestamp=fed.root.timestamp(clock()))
    )
    ps.run(clock())
    assert ke.trust.version() == 2 and ke.trust.check_freshness(clock()).fresh
    with pytest.raises(grpc.RpcError) as err:
        _push(fed, "TZ", "KE", fresh)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED  # TZ is revoked: it cannot even call


def test_a_timestamp_for_a_version_not_held_makes_the_node_stale_at_once(
    fed: LocalFederation, clock: ManualClock
) -> None:
    ke = fed.nodes["KE"].app
    clock.advance(60)
    fed.root.revoke("TZ", clock())
    fed.root.publish(clock())
    stamp = fed.root.timestamp(clock())
    ke.accept_directory(dir_pb.SignedDirectory(timestamp=stamp))  # the timestamp got through, v2 did not
    verdict = ke.trust.check_freshness(clock())
    assert "directory version 2 exists" in verdict.stale and "holds version 1" in verdict.stale


def test_a_fresh_timestamp_flows_down_in_a_sync_round_and_keeps_the_node_fresh(
    fed: LocalFederation, clock: ManualClock
) -> None:
    top, ke = fed.nodes["WCO-GLOBAL"].app, fed.nodes["KE"].app
    clock.advance(1.5 * DAY)
    top.accept_directory(dir_pb.SignedDirectory(timestamp=fed.root.timestamp(clock())))
    clock.advance(1 * DAY)  # 2.5 days after the directory: only the timestamp vouches for it
    assert top.trust.check_freshness(clock()).fresh
    assert ke.trust.check_freshness(clock()).stale
    reply = sync_stub(fed.nodes["KE"].channel(fed.nodes["WCO-GLOBAL"])).GetDirectory(
        sync_pb2.GetDirectoryRequest(have_version=ke.trust.version()), timeout=5
    )
    assert not reply.directory and reply.HasField("timestamp")
    ke.accept_directory(reply)
    assert ke.trust.check_freshness(clock()).fresh


def test_an_expired_directory_is_stale_and_a_running_node_takes_an_imported_one_by_itself(
    fed: LocalFederation, clock: ManualClock
) -> None:
    ke = fed.nodes["KE"]
    clock.advance(31 * DAY)
    assert ke.app.trust.check_freshness(clock()).stale
    replication = Replication(ke.app, ke.tls)
    health: list[Health] = []
    replication.on_health.append(health.append)
    try:
        replication.periodic()
        assert [h.relaying for h in health] == [False]
        # `gcn directory import` writes the file beside the running node.
        ke.app.trust.files.store(fed.root.publish(clock()))
        replication.periodic()
        assert [h.relaying for h in health] == [False, True] and ke.app.trust.version() == 2
    finally:
        replication.stop()
