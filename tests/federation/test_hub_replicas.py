"""Two replicas of one hub over one PostgreSQL database (issue 13, part 5): each
peer's sync job runs on exactly one of them at a time, and the other takes it
over as soon as the first one's database session dies; nothing is lost or
sent twice. The replicas are two `NodeApp`s of the same node directory, as two
`gcn serve` processes would open it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from federation.policy import Share
from gcn.v1 import envelope_pb2 as epb
from node.app import NodeApp
from node.bootstrap import CONFIG_FILE
from node.config import load_config
from node.domain import samples
from node.replication import LeasedPeerSync, Replication
from node.storage.leases import DUTIES, SYNC, lease_key
from node.storage.models import EnvelopeRow
from node.testing.clock import ManualClock
from node.testing.local_federation import LocalFederation, local_federation
from tests.conftest import _postgres_schema_url
from tests.federation.policy_fixtures import FixedPolicy

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def hub_url() -> Iterator[str]:
    yield from _postgres_schema_url()


@pytest.fixture
def fed(tmp_path: Path, clock: ManualClock, hub_url: str) -> Iterator[LocalFederation]:
    def url(node_id: str) -> str:
        return hub_url if node_id == "RINEX-ESA" else f"sqlite:///{tmp_path / node_id / 'gcn.sqlite'}"

    f = LocalFederation(tmp_path, clock, database_url=url)
    f.add("WCO-GLOBAL", "global")
    f.add("RINEX-ESA", "regional", region="ESA", upstreams=["WCO-GLOBAL"])
    f.add("KE", "national", country="KE", region="ESA", upstreams=["RINEX-ESA"])
    f.publish()
    f.start()
    f.sync_all(rounds=3)
    f.nodes["KE"].app.records.policy = FixedPolicy([Share("global", epb.VIEW_FULL)])  # type: ignore[assignment]
    yield f
    f.close()


@pytest.fixture
def second(fed: LocalFederation, clock: ManualClock) -> Iterator[NodeApp]:
    """A second replica of RINEX-ESA: the same directory, the same database."""
    app = NodeApp.open(load_config(fed.nodes["RINEX-ESA"].directory / CONFIG_FILE), clock)
    yield app
    app.close()


def _to_global(replication: Replication) -> LeasedPeerSync:
    peer = next(p for p in replication.peers() if p.node_id == "WCO-GLOBAL")
    ps = replication.peer_sync(peer)
    assert isinstance(ps, LeasedPeerSync)
    return ps


def _kill_session_holding(hub_url: str, scope: str, lease: str) -> int:
    """What a SIGKILL of the replica does to its lease: the server ends its session."""
    key = lease_key(scope, lease) & 0xFFFFFFFFFFFFFFFF
    engine = create_engine(hub_url.split("?", maxsplit=1)[0])
    try:
        with engine.begin() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND classid = :hi AND objid = :lo AND objsubid = 1"
                    ),
                    {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
                ).all()
            )
    finally:
        engine.dispose()


def _global_copies(fed: LocalFederation) -> tuple[int, int]:
    """(envelopes of KE's global stream at the global hub, distinct seqs among them)."""
    with fed.nodes["WCO-GLOBAL"].app.db.read() as s:
        where = (EnvelopeRow.origin == "KE", EnvelopeRow.audience == "global")
        n = s.scalar(select(func.count()).select_from(EnvelopeRow).where(*where)) or 0
        seqs = s.scalar(select(func.count(func.distinct(EnvelopeRow.seq))).where(*where)) or 0
    return int(n), int(seqs)


def test_one_replica_runs_each_peer_job_and_the_other_takes_it_over_when_it_dies(
    fed: LocalFederation, second: NodeApp, clock: ManualClock, hub_url: str
) -> None:
    first_app, ke = fed.nodes["RINEX-ESA"].app, fed.nodes["KE"].app
    tls = fed.nodes["RINEX-ESA"].tls
    one, two = Replication(first_app, tls), Replication(second, tls)
    a, b = _to_global(one), _to_global(two)
    try:
        for _ in range(20):
            ke.records.record_seizure(samples.ivory_seizure(clock().date()))
        fed.sync("KE", "RINEX-ESA")  # KE's push lands in the shared database

        a.run(clock())
        b.run(clock())
        assert (a.standing_by, b.standing_by) == (False, True)
        assert b.next_delay(b.state()) == two.settings.probe_interval  # it asks again soon
        assert first_app.leases.hold(DUTIES) and not second.leases.hold(DUTIES)
        assert _global_copies(fed) == (20, 20)

        # The first replica dies: its database session (and with it its leases) ends.
        assert first_app.leases.scope.endswith("/RINEX-ESA")
        assert _kill_session_holding(hub_url, first_app.leases.scope, SYNC + "WCO-GLOBAL") == 1
        for _ in range(10):
            ke.records.record_seizure(samples.hcfc_seizure(clock().date()))
        fed.sync("KE", "RINEX-ESA")
        b.run(clock())
        assert not b.standing_by, "the survivor took the job at its next try"
        assert second.leases.hold(DUTIES)
        assert _global_copies(fed) == (30, 30)

        # The first one, back with a new session, finds its leases gone and stands by.
        a.run(clock())
        assert a.standing_by
        assert not first_app.leases.hold(DUTIES)
        b.run(clock())
        assert _global_copies(fed) == (30, 30), "nothing sent twice"
    finally:
        one.stop()
        two.stop()


def test_on_sqlite_every_lease_is_this_process_s(tmp_path: Path, clock: ManualClock) -> None:
    with local_federation(tmp_path, clock) as f:
        node = f.add("KE", "national", country="KE", region="ESA")
        assert node.app.leases.hold(DUTIES) and node.app.leases.hold(SYNC + "RINEX-ESA")
        assert node.app.leases.held() == []


def test_the_replica_that_takes_the_duties_over_makes_the_epoch_a_new_member_calls_for(
    fed: LocalFederation, second: NodeApp, clock: ManualClock, hub_url: str
) -> None:
    """Red team (ops pass 1, finding 1): a directory that changed a region's
    members was read by the replica without the duties lease; the one with it
    died before making the new epoch; the survivor took the lease and never
    made it (a revoked member would have read what came next)."""
    first_app = fed.nodes["RINEX-ESA"].app
    tls = fed.nodes["RINEX-ESA"].tls
    one, two = Replication(first_app, tls), Replication(second, tls)
    try:
        one.periodic()  # the first replica holds the duties
        two.periodic()
        assert first_app.leases.hold(DUTIES) and not second.leases.hold(DUTIES)
        before = second.audience_keys.current("region:ESA")
        fed.add("UG", "national", country="UG", region="ESA", upstreams=["RINEX-ESA"])
        signed = fed.root.publish(clock(), 30)
        second.accept_directory(signed)  # read by the replica without the duties: no epoch made
        assert second.audience_keys.current("region:ESA") == before

        assert _kill_session_holding(hub_url, first_app.leases.scope, DUTIES) == 1  # the holder dies
        two.periodic()
        members = second.audience_keys.current_members("region:ESA") or frozenset()
        assert "UG" in {m for m, _ in members}, "the new epoch is wrapped for the new member"
        assert second.audience_keys.current("region:ESA") != before
    finally:
        one.stop()
        two.stop()


def test_a_frozen_holder_loses_its_leases_to_a_replica_that_wants_them(
    fed: LocalFederation, second: NodeApp, clock: ManualClock, hub_url: str
) -> None:
    """Red team (ops pass 1, finding 3): a SIGSTOPped replica keeps its database
    session, so its locks: nothing flowed for as long as it was frozen. A holder
    silent past `silent_after` has its session ended by a replica that wants
    the lease."""
    first_app = fed.nodes["RINEX-ESA"].app
    assert first_app.leases.hold(DUTIES)
    assert not second.leases.hold(DUTIES)  # the holder is not silent yet
    second.leases.silent_after = 0.5
    time.sleep(0.8)  # the holder stays silent (frozen: it uses none of its connections)
    assert second.leases.hold(DUTIES), "the silent holder's session was ended and the lease taken"
    assert not first_app.leases.hold(DUTIES), "the frozen one, back, finds its lease gone"


def test_a_replica_takes_a_new_epoch_another_made_and_unwraps_nothing_it_holds(
    fed: LocalFederation, second: NodeApp, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reload runs at every check (2 s): it must not decapsulate (HPKE)
    every key message the node holds each time."""
    import crypto.audience

    first_app = fed.nodes["RINEX-ESA"].app
    unwraps: list[str] = []
    real = crypto.audience.unwrap_for

    def counting(msg: object, node_id: str, key: object) -> bytes:
        if node_id == "RINEX-ESA":  # not UG's own, as it joins in this process
            unwraps.append(node_id)
        return real(msg, node_id, key)  # type: ignore[arg-type]

    monkeypatch.setattr(crypto.audience, "unwrap_for", counting)
    assert second.reload_keys() == 0 and unwraps == []
    fed.add("UG", "national", country="UG", region="ESA", upstreams=["RINEX-ESA"])
    first_app.accept_directory(fed.root.publish(clock(), 30))  # the duties holder makes the new epoch
    made = first_app.audience_keys.current("region:ESA")
    assert second.reload_keys() >= 1
    assert second.audience_keys.current("region:ESA") == made
    assert len(unwraps) == 1, "only the new epoch's key message was unwrapped"
