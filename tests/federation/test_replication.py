"""Replication and store-and-forward across a real federation on loopback
(mutual TLS, real databases), driven by a manual clock: no test sleeps."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from federation.policy import Share
from federation.scheduler import PeerSync, SyncSettings
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.domain import samples
from node.storage.models import EnvelopeRow, RecordRow
from node.storage.peer_state import DbPeerStateStore
from node.testing.clock import ManualClock
from node.testing.local_federation import LocalFederation
from tests.federation.holdings import envelopes_of_record
from tests.federation.policy_fixtures import FixedPolicy

pytestmark = pytest.mark.slow


@pytest.fixture
def chain(tmp_path: Path, clock: ManualClock) -> Iterator[LocalFederation]:
    """port KE-MBA → KE → RINEX-ESA → WCO-GLOBAL ← RINEX-SEA ← VN, and TZ in ESA."""
    f = LocalFederation(tmp_path, clock)
    f.add("WCO-GLOBAL", "global")
    f.add("RINEX-ESA", "regional", region="ESA", upstreams=["WCO-GLOBAL"])
    f.add("RINEX-SEA", "regional", region="SEA", upstreams=["WCO-GLOBAL"])
    f.add("KE", "national", country="KE", region="ESA", upstreams=["RINEX-ESA"])
    f.add("KE-MBA", "port", country="KE", region="ESA", upstreams=["KE"])
    f.add("TZ", "national", country="TZ", region="ESA", upstreams=["RINEX-ESA"])
    f.add("VN", "national", country="VN", region="SEA", upstreams=["RINEX-SEA"])
    f.publish()
    f.start()
    f.sync_all(rounds=3)  # key messages reach every member
    yield f
    f.close()


def _peer_sync(fed: LocalFederation, a: str, b: str, settings: SyncSettings | None = None) -> PeerSync:
    return fed.peer_sync(a, b, settings)


def _records_from(fed: LocalFederation, node: str, origin: str) -> int:
    with fed.nodes[node].app.db.begin() as s:
        return int(
            s.scalar(select(func.count(func.distinct(RecordRow.record_id))).where(RecordRow.origin == origin))
            or 0
        )


def test_backoff_grows_while_the_peer_is_down_and_resets_when_it_returns(
    chain: LocalFederation, clock: ManualClock
) -> None:
    ps = _peer_sync(chain, "KE-MBA", "KE")
    chain.nodes["KE"].stop()
    delays = []
    for _ in range(8):
        assert ps.due(clock())
        state = ps.run(clock())
        delays.append(state.backoff_seconds)
        assert not ps.due(clock())
        clock.advance(state.backoff_seconds)
    ceilings = [min(60, 2**i) for i in range(8)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    assert state.failures == 8 and state.last_error.startswith("UNAVAILABLE")
    # The backoff is in the database: a restarted node resumes it.
    assert DbPeerStateStore(chain.nodes["KE-MBA"].app.db).load("KE", "").failures == 8
    chain.nodes["KE"].start()
    state = ps.run(clock())
    assert (state.failures, state.backoff_seconds, state.last_error) == (0, 0.0, "")
    assert state.last_success_at == clock()


def test_a_port_offline_records_5000_seizures_and_everything_arrives_once_in_order(
    chain: LocalFederation, clock: ManualClock
) -> None:
    port = chain.nodes["KE-MBA"].app
    ps = _peer_sync(chain, "KE-MBA", "KE")
    chain.nodes["KE"].stop()
    rng = random.Random(5)
    stored = port.records.import_seizures(
        (samples.random_seizure(rng, clock().date()) for _ in range(5000)), batch_size=1000
    )
    assert stored == 5000
    for _ in range(3):
        ps.run(clock())
        clock.advance(ps.state().backoff_seconds)
    assert ps.state().failures == 3
    chain.nodes["KE"].start()
    state = ps.run(clock())
    assert state.failures == 0 and state.envelopes_sent >= 5000
    assert _records_from(chain, "KE", "KE-MBA") == 5000
    with chain.nodes["KE"].app.db.begin() as s:
        seqs = list(
            s.scalars(
                select(EnvelopeRow.seq)
                .where(EnvelopeRow.origin == "KE-MBA", EnvelopeRow.audience == "national:KE")
                .order_by(EnvelopeRow.id)
            )
        )
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    assert chain.nodes["KE"].app.receiver.local_vector()[("KE-MBA", "national:KE")] == seqs[-1]
    # Nothing more to do: a second round moves nothing.
    again = ps.run(clock())
    assert again.envelopes_sent == state.envelopes_sent


def test_a_record_travels_the_chain_to_exactly_its_audiences(
    chain: LocalFederation, clock: ManualClock
) -> None:
    port = chain.nodes["KE-MBA"].app
    port.records.policy = FixedPolicy(
        [Share("national:KE", epb.VIEW_FULL), Share("region:ESA", epb.VIEW_FULL)]
    )  # type: ignore[assignment]
    record_id = port.records.record_seizure(samples.ivory_seizure(clock().date())).record_id
    chain.sync_all(rounds=3)
    readers = {n for n, node in chain.nodes.items() if _can_read(node.app, record_id)}
    assert readers == {"KE-MBA", "KE", "RINEX-ESA", "TZ"}
    holders = {n for n, node in chain.nodes.items() if envelopes_of_record(port, node.app, record_id)}
    assert holders == {"KE-MBA", "KE", "RINEX-ESA", "TZ"}


def _can_read(app, record_id: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        return app.reader.get(record_id).WhichOneof("body") is not None
    except Exception:
        return False


def test_a_retraction_reaches_every_holder_of_the_original(
    chain: LocalFederation, clock: ManualClock
) -> None:
    ke = chain.nodes["KE"].app
    ke.records.policy = FixedPolicy([Share("region:ESA", epb.VIEW_FULL), Share("global", epb.VIEW_FULL)])  # type: ignore[assignment]
    record_id = ke.records.record_seizure(samples.hcfc_seizure(clock().date())).record_id
    chain.sync_all(rounds=3)
    assert _can_read(chain.nodes["VN"].app, record_id)
    ke.records.retract(record_id, "wrong consignment")
    chain.sync_all(rounds=3)
    for name, node in chain.nodes.items():
        if _can_read(node.app, record_id):
            assert node.app.reader.get(record_id).status == npb.RECORD_STATUS_RETRACTED, name


def test_a_sync_with_nothing_to_send_costs_a_vector_exchange(
    chain: LocalFederation, clock: ManualClock
) -> None:
    chain.sync_all(rounds=1)
    result = chain.sync("KE", "RINEX-ESA")
    assert (result.pushed, result.pulled, result.calls) == (0, 0, 2)


def test_an_envelope_held_twice_through_two_upstreams_is_stored_once(
    tmp_path: Path, clock: ManualClock
) -> None:
    f = LocalFederation(tmp_path, clock)
    try:
        f.add("WCO-GLOBAL", "global")
        f.add("RINEX-ESA", "regional", region="ESA", upstreams=["WCO-GLOBAL"])
        f.add("KE", "national", country="KE", region="ESA", upstreams=["RINEX-ESA", "WCO-GLOBAL"])
        f.publish()
        f.start()
        ke = f.nodes["KE"].app
        ke.records.policy = FixedPolicy([Share("global", epb.VIEW_FULL)])  # type: ignore[assignment]
        f.sync_all(rounds=2)
        record_id = ke.records.record_seizure(samples.ivory_seizure(clock().date())).record_id
        f.sync_all(rounds=3)
        for name in ("RINEX-ESA", "WCO-GLOBAL"):
            assert len(envelopes_of_record(ke, f.nodes[name].app, record_id)) == 1, name
    finally:
        f.close()


def test_a_hand_carried_bundle_moves_a_ports_records_without_any_link(
    chain: LocalFederation, clock: ManualClock, tmp_path: Path
) -> None:
    from node.bundle import export_bundle, import_bundle
    from node.errors import PermissionDeniedError, ValidationError

    port, national = chain.nodes["KE-MBA"].app, chain.nodes["KE"].app
    for node in chain.nodes.values():
        node.stop()  # no link at all
    rng = random.Random(9)
    port.records.import_seizures(samples.random_seizure(rng, clock().date()) for _ in range(25))
    stick = tmp_path / "usb" / "ke-mba-to-ke.gcnb"
    stick.parent.mkdir()
    assert export_bundle(port, "KE", stick).envelopes >= 25
    result = import_bundle(national, stick).result
    assert result.stored >= 25 and not result.refused
    assert _records_from(chain, "KE", "KE-MBA") == 25
    assert import_bundle(national, stick).result.stored == 0  # a second import is a no-op
    data = bytearray(stick.read_bytes())
    data[len(data) // 2] ^= 0x10
    stick.write_bytes(bytes(data))
    with pytest.raises((PermissionDeniedError, ValidationError)):
        import_bundle(national, stick)
    assert _records_from(chain, "KE", "KE-MBA") == 25


def test_a_port_seizure_arrives_everywhere_in_exactly_the_view_its_policy_says(
    chain: LocalFederation, clock: ManualClock
) -> None:
    """The shipped default policy: a TLP:GREEN seizure goes in full to its
    administration, redacted to its region, statistical to the world."""
    seizure = samples.ivory_seizure(clock().date())
    seizure.tlp = rec.TLP_GREEN
    record_id = chain.nodes["KE-MBA"].app.records.record_seizure(seizure).record_id
    chain.sync_all(rounds=4)
    full, red, stat = (
        ("national:KE", epb.VIEW_FULL),
        ("region:ESA", epb.VIEW_REDACTED),
        ("global", epb.VIEW_STATISTICAL),
    )
    expected = {
        "KE-MBA": {full, red, stat},
        "KE": {full, red, stat},
        "TZ": {red, stat},
        "RINEX-ESA": {red, stat},
        "WCO-GLOBAL": {stat},
        "RINEX-SEA": {stat},
        "VN": {stat},
    }
    for name, node in chain.nodes.items():
        with node.app.db.begin() as s:
            views = {
                (r.audience, r.view)
                for r in s.scalars(select(RecordRow).where(RecordRow.record_id == record_id))
            }
        assert views == expected[name], name
    best = {name: node.app.reader.get(record_id) for name, node in chain.nodes.items()}
    assert any(p.kind == rec.PARTY_KIND_PERSON for p in best["KE"].seizure.parties)
    assert best["TZ"].view == epb.VIEW_REDACTED
    assert not any(p.kind == rec.PARTY_KIND_PERSON for p in best["TZ"].seizure.parties)
    assert best["TZ"].seizure.notes == "" and best["TZ"].seizure.conveyance.container_numbers
    assert best["VN"].view == epb.VIEW_STATISTICAL
    assert best["VN"].seizure.incident_date.endswith("-01")
    assert not best["VN"].seizure.parties and not best["VN"].seizure.conveyance.container_numbers


def test_a_node_restored_from_an_old_disk_takes_back_its_history_and_never_reuses_a_seq(
    chain: LocalFederation, clock: ManualClock, tmp_path: Path
) -> None:
    import shutil

    from node.app import NodeApp
    from node.replication import Replication

    ke = chain.nodes["KE"]
    ke.app.records.record_seizure(samples.ivory_seizure(clock().date()))
    chain.sync("KE", "RINEX-ESA")
    backup = tmp_path / "ke-backup.sqlite"
    ke.app.db.dispose()
    shutil.copy(ke.directory / "gcn.sqlite", backup)  # the backup is taken here ...
    reopened = NodeApp.open(ke.app.config, clock)
    later = [reopened.records.record_seizure(samples.hcfc_seizure(clock().date())) for _ in range(3)]
    reopened.close()
    ke.app = NodeApp.open(ke.app.config, clock)
    chain.sync("KE", "RINEX-ESA")  # ... the hub holds the regional and global envelopes recorded after it,
    chain.sync("KE-MBA", "KE")  # and the port (a member of national:KE) the national ones
    ke.close()
    shutil.copy(backup, ke.directory / "gcn.sqlite")  # the disk dies; the old backup comes back
    for suffix in ("-wal", "-shm"):
        (ke.directory / f"gcn.sqlite{suffix}").unlink(missing_ok=True)
    restored = NodeApp.open(ke.app.config, clock)
    try:
        replication = Replication(restored, ke.tls)
        assert replication.restore_own_streams() > 0
        for r in later:
            assert restored.reader.get(r.record_id).seizure.goods[0].ods_substance == "HCFC-22"
        after = restored.records.record_seizure(samples.rosewood_seizure(clock().date()))
        same_stream = [e for r in later for e in r.envelopes if e.audience == after.envelopes[0].audience]
        assert after.envelopes[0].seq == max(e.seq for e in same_stream) + 1
        replication.stop()
    finally:
        restored.close()


def test_a_long_run_of_urgent_envelopes_does_not_starve_the_seizure_before_it(
    tmp_path: Path, clock: ManualClock
) -> None:
    """Urgent kinds go first, but never more than half a batch: the stream's
    contiguous run after the peer's head always moves (found in review: with
    urgent-only batches the head stayed stuck forever)."""
    from node.storage.models import StreamRow

    f = LocalFederation(tmp_path, clock)
    try:
        f.add("KE", "national", country="KE", region="ESA")
        f.add("KE-MBA", "port", country="KE", region="ESA", upstreams=["KE"])
        f.publish()
        f.start()
        f.sync_all(rounds=2)
        ke, port = f.nodes["KE"].app, f.nodes["KE-MBA"].app

        def head(app: object) -> int:
            with app.db.read() as s:  # type: ignore[attr-defined]
                row = s.get(StreamRow, ("KE", "national:KE"))
                return row.head_seq if row else 0

        ke.records.record_seizure(samples.ivory_seizure(clock().date()))
        for _ in range(60):
            ke.records.record_alert(samples.vessel_alert(clock().date()))
        for _ in range(4):
            f.sync("KE-MBA", "KE", max_envelopes=50)
        assert head(port) == head(ke)
    finally:
        f.close()


def test_a_round_that_fails_on_our_side_backs_off_and_stays_scheduled(
    chain: LocalFederation, clock: ManualClock
) -> None:
    """Not only gRPC errors: a batch our receiver refuses counts as a failure,
    with backoff, and the state is saved (found in review: the job died)."""
    ps = _peer_sync(chain, "KE-MBA", "KE")

    class Refusing:
        def apply(self, *a: object, **k: object) -> object:
            raise RuntimeError("database is locked")

        def local_vector(self) -> dict[tuple[str, str], int]:
            return {}

        def waiting_from(self, peer: str) -> set[tuple[str, str]]:
            return set()

    ps.sink = Refusing()  # type: ignore[assignment]
    state = ps.run(clock())
    assert state.failures == 1 and state.last_error.startswith("LOCAL: RuntimeError: database is locked")
    assert ps.state().failures == 1


def test_a_newer_directory_travels_down_from_the_upstream_in_a_sync_round(
    chain: LocalFederation, clock: ManualClock
) -> None:
    """Only the national node is handed version 2; its port takes it from it in
    its next round (and an upstream with nothing newer answers empty)."""
    port, ke = chain.nodes["KE-MBA"].app, chain.nodes["KE"].app
    ps = _peer_sync(chain, "KE-MBA", "KE")
    ps.directory_version = port.trust.version
    ps.on_directory = port.accept_directory
    assert port.trust.version() == 1
    ps.run(clock())
    assert port.trust.version() == 1  # nothing newer
    signed = chain.root.publish(clock())
    ke.accept_directory(signed)
    state = ps.run(clock())
    assert state.failures == 0 and port.trust.version() == 2
