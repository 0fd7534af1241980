"""Applying envelopes from a peer: verification before storage, idempotence,
gaps, equivocation, keys that arrive late, and key messages from impostors.

The federation is faked through the `Trust` protocol (the directory comes
later); storage, crypto and indexing are real, on both backends."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from crypto.audience import MemberKey
from crypto.signing import KeyRing, PublicSigningKey
from federation.routing import Topology
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from node.app import NodeApp
from node.domain import samples
from node.storage.envelope_log import as_envelope
from node.storage.models import AlarmRow, EnvelopeRow, RecordRow, StreamRow
from node.testing.clock import ManualClock
from tests.conftest import make_node

Pair = tuple[NodeApp, NodeApp]


@dataclass
class FakeTrust:
    """Two nodes' keys, and who holds which audience."""

    ring: KeyRing
    holders: dict[str, str]
    relays: set[tuple[str, str]] = field(default_factory=set)

    def keyring(self) -> KeyRing:
        return self.ring

    def holder_of(self, audience: str) -> str | None:
        return self.holders.get(audience)

    def may_relay(self, caller: str, origin: str, audience: str) -> bool:
        return (caller, origin) in self.relays

    def may_write(self, origin: str, audience: str) -> bool:
        return audience in self.holders or audience == f"node:{origin}"

    def may_issue_keys(self, origin: str, audience: str) -> bool:
        return self.holders.get(audience) == origin

    def is_active(self, node_id: str) -> bool:
        return True

    def topology(self) -> Topology | None:
        return None

    def members_of(self, audience: str) -> list[str]:
        return []


def _ring(*apps: NodeApp) -> KeyRing:
    keys = []
    for a in apps:
        k = a.keys.signing
        keys.append(PublicSigningKey(a.config.node.id, k.key_id, k.public_raw, k.not_before))
    return KeyRing(keys)


@pytest.fixture
def pair(tmp_path: Path, clock: ManualClock, db_url: str) -> Iterator[Pair]:
    """KE (origin, holds national:KE) and HUB (receiver), HUB a member of national:KE epoch 2."""
    ke = make_node(tmp_path / "ke", clock, f"sqlite:///{tmp_path / 'ke.sqlite'}")
    hub = make_node(tmp_path / "hub", clock, db_url, node_id="RINEX-ESA", country="", role="regional")
    trust = FakeTrust(_ring(ke, hub), {"national:KE": "KE", "node:KE": "KE"}, {("RINEX-ESA", "KE")})
    for app in (ke, hub):
        app.receiver.trust = trust
    members = {
        app.config.node.id: MemberKey(app.keys.encryption.key_id, app.keys.encryption.public_raw)
        for app in (ke, hub)
    }
    with ke.envelope_log.writing_own(), ke.db.begin() as s:
        epoch, key = ke.audience_keys.create_epoch(s, ke.envelope_log, "national:KE", members, clock())
    ke.audience_keys.remember("national:KE", epoch, key, members)
    yield ke, hub
    ke.close()
    hub.close()


def _stream(app: NodeApp, audience: str = "national:KE") -> list[epb.Envelope]:
    with app.db.begin() as s:
        rows = s.scalars(
            select(EnvelopeRow).where(EnvelopeRow.audience == audience).order_by(EnvelopeRow.seq)
        )
        return [as_envelope(r) for r in rows]


def _count(app: NodeApp, model: type = EnvelopeRow) -> int:
    with app.db.begin() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _head(app: NodeApp, origin: str, audience: str) -> int:
    with app.db.begin() as s:
        row = s.get(StreamRow, (origin, audience))
        return row.head_seq if row else 0


def test_a_member_stores_verifies_and_reads_the_stream(pair: Pair, clock: ManualClock) -> None:
    ke, hub = pair
    recorded = ke.records.record_seizure(samples.ivory_seizure(clock().date()))
    result = hub.receiver.apply(_stream(ke), "KE", clock())
    assert result.stored == 3 and result.indexed == 1  # two key messages (epochs 1, 2) and the seizure
    assert hub.reader.get(recorded.record_id).seizure.place.port_locode == "KEMBA"
    assert _head(hub, "KE", "national:KE") == 3


def test_applying_the_same_envelopes_again_is_a_no_op(pair: Pair, clock: ManualClock) -> None:
    ke, hub = pair
    ke.records.record_seizure(samples.ivory_seizure(clock().date()))
    hub.receiver.apply(_stream(ke), "KE", clock())
    before = _count(hub)
    again = hub.receiver.apply(_stream(ke), "KE", clock())
    assert (again.stored, again.duplicates) == (0, 3)
    assert _count(hub) == before


def test_a_gap_holds_the_head_until_it_fills(pair: Pair, clock: ManualClock) -> None:
    ke, hub = pair
    for s in samples.sample_seizures(clock().date()):
        ke.records.record_seizure(s)
    stream = _stream(ke)  # seq 1..5
    hub.receiver.apply(stream[:2] + stream[3:], "KE", clock())
    assert _head(hub, "KE", "national:KE") == 2
    hub.receiver.apply([stream[2]], "KE", clock())
    assert _head(hub, "KE", "national:KE") == 5
    assert len(hub.reader.list(npb.ListRecordsRequest()).records) == 3


def test_records_whose_key_arrives_later_are_indexed_when_it_does(pair: Pair, clock: ManualClock) -> None:
    ke, hub = pair
    recorded = ke.records.record_seizure(samples.hcfc_seizure(clock().date()))
    stream = _stream(ke)
    hub.receiver.apply([stream[2]], "KE", clock())
    assert hub.reader.list(npb.ListRecordsRequest()).records == []  # kept as ciphertext
    result = hub.receiver.apply(stream[:2], "KE", clock())
    assert result.indexed == 1
    assert hub.reader.get(recorded.record_id).seizure.goods[0].ods_substance == "HCFC-22"


def test_equivocation_keeps_both_envelopes_and_raises_an_alarm(
    pair: Pair, clock: ManualClock, tmp_path: Path
) -> None:
    ke, hub = pair
    ke.records.record_seizure(samples.ivory_seizure(clock().date()))
    honest = _stream(ke)
    hub.receiver.apply(honest, "KE", clock())
    # KE restored from an old backup writes seq 3 again, differently.
    with ke.db.begin() as s:
        prev = s.scalars(
            select(EnvelopeRow.hash).where(EnvelopeRow.seq == 2, EnvelopeRow.audience == "national:KE")
        ).one()
        s.execute(delete(RecordRow))
        s.execute(delete(EnvelopeRow).where(EnvelopeRow.seq == 3, EnvelopeRow.audience == "national:KE"))
        head = s.get(StreamRow, ("KE", "national:KE"))
        assert head is not None
        head.head_seq, head.head_hash = 2, prev
    forked = ke.records.record_seizure(samples.hcfc_seizure(clock().date()))
    assert forked.envelopes[0].seq == 3
    result = hub.receiver.apply(_stream(ke)[2:], "KE", clock())
    assert result.stored == 1 and result.alarms == 1
    assert _count(hub, AlarmRow) == 1
    with hub.db.begin() as s:
        assert s.scalar(select(func.count()).where(EnvelopeRow.origin == "KE", EnvelopeRow.seq == 3)) == 2


@pytest.mark.parametrize(
    "part",
    [
        pytest.param("header", id="flipped-bit-in-header"),
        pytest.param("ciphertext", id="flipped-bit-in-ciphertext"),
        pytest.param("signature", id="flipped-bit-in-signature"),
    ],
)
def test_a_tampered_envelope_is_refused_by_name_and_the_rest_of_the_batch_is_stored(
    pair: Pair, clock: ManualClock, part: str
) -> None:
    ke, hub = pair
    ke.records.record_seizure(samples.ivory_seizure(clock().date()))
    ke.records.record_seizure(samples.hcfc_seizure(clock().date()))
    stream = _stream(ke)  # 2 key messages, 2 seizures
    bad = epb.Envelope()
    bad.CopyFrom(stream[2])
    data = bytearray(getattr(bad, part))
    data[len(data) // 2] ^= 0x01
    setattr(bad, part, bytes(data))
    result = hub.receiver.apply([*stream[:2], bad, stream[3]], "KE", clock())
    assert result.stored == 3
    [refused] = result.refused
    assert refused.index == 2 and refused.code in ("malformed", "forged")
    if part != "header":  # a flipped header bit may change what it names
        assert (refused.origin, refused.audience, refused.seq) == ("KE", "national:KE", 3)
    assert _head(hub, "KE", "national:KE") == 2  # the stream waits at the refused one
    with hub.db.begin() as s:
        assert s.scalar(select(func.count()).where(EnvelopeRow.origin == "KE")) == 3
        alarms = list(s.scalars(select(AlarmRow)))
    assert [a.kind for a in alarms] == ["refused_from_peer"]
    # The intact copy heals the stream.
    healed = hub.receiver.apply([stream[2]], "KE", clock())
    assert (healed.stored, healed.refused) == (1, [])
    assert _head(hub, "KE", "national:KE") == 4


def test_a_caller_may_not_hand_over_another_origins_envelopes(pair: Pair, clock: ManualClock) -> None:
    ke, hub = pair
    ke.records.record_seizure(samples.ivory_seizure(clock().date()))
    result = hub.receiver.apply(_stream(ke), "TZ", clock())
    assert result.stored == 0
    assert {r.code for r in result.refused} == {"not_permitted"}
    assert "TZ may not relay envelopes of KE" in result.refused[0].reason


def test_an_envelope_dated_beyond_the_clock_plus_slack_is_refused(pair: Pair, clock: ManualClock) -> None:
    ke, hub = pair
    clock.advance(24 * 3600)  # KE's clock a day ahead of the hub's
    ke.records.record_seizure(samples.ivory_seizure(clock().date()))
    clock.advance(-24 * 3600)
    result = hub.receiver.apply(_stream(ke), "KE", clock())
    assert result.stored == 2  # the key messages, made before
    [refused] = result.refused
    assert refused.code == "future" and "beyond this node's clock" in refused.reason


def test_a_key_message_from_a_node_that_does_not_hold_the_audience_is_ignored(
    pair: Pair, clock: ManualClock
) -> None:
    ke, hub = pair
    hub.receiver.trust.holders["national:KE"] = "TZ"  # type: ignore[attr-defined]
    recorded = ke.records.record_seizure(samples.ivory_seizure(clock().date()))
    result = hub.receiver.apply(_stream(ke), "KE", clock())
    assert result.stored == 3 and result.indexed == 0
    with pytest.raises(Exception, match="no record"):
        hub.reader.get(recorded.record_id)


def test_two_envelopes_for_one_position_in_the_same_batch_raise_an_alarm(
    pair: Pair, clock: ManualClock
) -> None:
    """A relay that holds both sides of an equivocation sends both at once."""
    ke, hub = pair
    ke.records.record_seizure(samples.ivory_seizure(clock().date()))
    honest = _stream(ke)
    with ke.db.begin() as s:
        prev = s.scalars(
            select(EnvelopeRow.hash).where(EnvelopeRow.seq == 2, EnvelopeRow.audience == "national:KE")
        ).one()
        s.execute(delete(RecordRow))
        s.execute(delete(EnvelopeRow).where(EnvelopeRow.seq == 3, EnvelopeRow.audience == "national:KE"))
        head = s.get(StreamRow, ("KE", "national:KE"))
        assert head is not None
        head.head_seq, head.head_hash = 2, prev
    ke.records.record_seizure(samples.hcfc_seizure(clock().date()))
    forked = _stream(ke)[2]
    result = hub.receiver.apply([*honest, forked], "KE", clock())
    assert result.alarms == 1
    assert _count(hub, AlarmRow) == 1


def test_two_peers_handing_over_the_same_batch_at_once_store_it_once(
    pair: Pair, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node with two upstreams gets the same envelopes from both at the same
    moment. The first apply is held between its "held?" check and its insert
    until the second has had its chance to run (at most a second): the second
    must wait for the first and find the envelopes held, not insert them again
    (on PostgreSQL that was a unique-constraint failure, INTERNAL to the sender)."""
    ke, hub = pair
    for s in samples.sample_seizures(clock().date()):
        ke.records.record_seizure(s)
    stream = _stream(ke)
    before = _count(hub)
    both_checked = threading.Barrier(2, timeout=1.0)
    store_many = hub.envelope_log.store_many

    def held_open(*args: object, **kwargs: object) -> list[int]:
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait()
        return store_many(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hub.envelope_log, "store_many", held_open)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: hub.receiver.apply(stream, "KE", clock()), range(2)))
    assert sorted((r.stored, r.duplicates) for r in results) == [(0, len(stream)), (len(stream), 0)]
    assert _count(hub) - before == len(stream) and _head(hub, "KE", "national:KE") == len(stream)


def test_a_receiver_that_fails_mid_batch_keeps_every_chunk_it_committed(
    pair: Pair, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Applies commit in bounded chunks: a receiver that dies in the middle of a
    large batch still moves forward, and the batch sent again completes it."""
    from sqlalchemy.exc import OperationalError

    ke, hub = pair
    for s in samples.sample_seizures(clock().date())[:4]:
        ke.records.record_seizure(s)
    stream = _stream(ke)  # 2 key messages, and the seizures shared to national:KE
    assert len(stream) >= 5
    hub.receiver.chunk = 2
    store_many = hub.envelope_log.store_many
    calls = [0]

    def dies_at_the_third(*args: object, **kwargs: object) -> list[int]:
        calls[0] += 1
        if calls[0] == 3:
            raise OperationalError("INSERT", {}, Exception("the disk went away"))
        return store_many(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hub.envelope_log, "store_many", dies_at_the_third)
    with pytest.raises(OperationalError):
        hub.receiver.apply(stream, "KE", clock())
    assert _head(hub, "KE", "national:KE") == 4  # two chunks committed
    again = hub.receiver.apply(stream, "KE", clock())
    assert (again.stored, again.duplicates) == (len(stream) - 4, 4)
    assert _head(hub, "KE", "national:KE") == len(stream)


def test_each_committed_chunk_is_told_with_its_caller_while_the_rest_is_stored(
    pair: Pair, clock: ManualClock
) -> None:
    """A hub relays a large batch onwards chunk by chunk: the listeners hear of
    each commit (with the peer it came from) while the rest is still arriving,
    and meanwhile the batch's streams are not pulled from that peer (it is
    pushing them); once the batch is applied they are pulled again."""
    ke, hub = pair
    for s in samples.sample_seizures(clock().date())[:4]:
        ke.records.record_seizure(s)
    stream = _stream(ke)
    assert len(stream) >= 5
    hub.receiver.chunk = 2
    told: list[tuple[str, int, set[tuple[str, str]], set[tuple[str, str]]]] = []
    commits = [0]
    hub.receiver.on_commit.append(lambda: commits.__setitem__(0, commits[0] + 1))
    hub.receiver.on_stored.append(
        lambda caller: told.append(
            (
                caller,
                _head(hub, "KE", "national:KE"),
                hub.receiver.waiting_from("KE"),
                hub.receiver.waiting_from("TZ"),
            )
        )
    )
    result = hub.receiver.apply(stream, "KE", clock())
    assert result.stored == len(stream)
    chunks = -(-len(stream) // 2)
    assert commits[0] == chunks
    assert [(caller, head) for caller, head, _, _ in told] == [
        ("KE", min(2 * (i + 1), len(stream))) for i in range(chunks)
    ]
    assert all(mine == {("KE", "national:KE")} and others == set() for _, _, mine, others in told)
    assert hub.receiver.waiting_from("KE") == set()
    again = hub.receiver.apply(stream, "KE", clock())  # all duplicates: nothing committed, nobody told
    assert again.duplicates == len(stream) and len(told) == chunks
