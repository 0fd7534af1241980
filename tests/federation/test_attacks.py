"""The attacks issue 9 showed against the trust layer, each replayed the way a
hostile member or a broken node would: real nodes on loopback, mutual TLS,
envelopes on the wire, the global hub on PostgreSQL (where a too-long column
once broke every push). Each test is named after the attack it stops.

KE, TZ, VN national nodes; KE-MBA, a port of KE; WCO-GLOBAL, their hub."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crypto import audience as aud
from crypto import envelope as env_crypto
from crypto.custody import sign_receipt
from crypto.directory import encryption_keys
from crypto.keys import SigningKey
from federation.policy import Share
from federation.sync import RoundResult, push
from federation.transport import sync_stub
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from gcn.v1 import sync_pb2
from node.app import NodeApp
from node.domain import samples
from node.storage.envelope_log import OwnEnvelope
from node.storage.models import AlarmRow, EnvelopeRow, StreamRefusalRow, StreamRow
from node.testing.clock import ManualClock
from node.testing.local_federation import LocalFederation
from tests.conftest import _postgres_schema_url

pytestmark = pytest.mark.slow
BILATERAL = "bilateral:KE+VN"


class Policy:
    def __init__(self, *shares: Share) -> None:
        self.share_list = list(shares)

    def shares(self, kind: int, body: object) -> list[Share]:
        return list(self.share_list)


@pytest.fixture
def hub_url() -> Iterator[str]:
    yield from _postgres_schema_url()


@pytest.fixture
def fed(tmp_path: Path, clock: ManualClock, hub_url: str) -> Iterator[LocalFederation]:
    def url(node_id: str) -> str:
        return hub_url if node_id == "WCO-GLOBAL" else f"sqlite:///{tmp_path / node_id / 'gcn.sqlite'}"

    f = LocalFederation(tmp_path, clock, database_url=url)
    f.add("WCO-GLOBAL", "global")
    f.add("KE", "national", country="KE", region="ESA", upstreams=["WCO-GLOBAL"])
    f.add("KE-MBA", "port", country="KE", region="ESA", upstreams=["KE"])
    f.add("TZ", "national", country="TZ", region="ESA", upstreams=["WCO-GLOBAL"])
    f.add("VN", "national", country="VN", region="SEA", upstreams=["WCO-GLOBAL"])
    f.root.add_bilateral("KE", "VN")
    f.publish()
    f.start()
    f.sync_all(rounds=3)
    yield f
    f.close()


def _app(fed: LocalFederation, node: str) -> NodeApp:
    return fed.nodes[node].app


def _write_own(app: NodeApp, item: OwnEnvelope, now: datetime) -> epb.Envelope:
    """What a hostile node's own code can do: append anything to its own streams."""
    with app.envelope_log.writing_own(), app.db.begin() as s:
        [appended] = app.envelope_log.append_own(s, [item], now)
    return appended.verified.envelope


def _write_own_header(
    app: NodeApp, audience: str, edit: Callable[[epb.EnvelopeHeader], object], body: bytes, now: datetime
) -> epb.Envelope:
    """A hostile node's own code writing a header of its choosing as the next
    envelope of its stream to `audience`, sealed and signed for real."""
    epoch, key = app.audience_keys.current(audience) or (0, None)
    log_ = app.envelope_log
    with log_.writing_own(), app.db.begin() as s:
        head = log_.head(s, log_.node_id, audience)
        seq, prev = (head.head_seq, head.head_hash) if head else (0, b"")
        header = epb.EnvelopeHeader(
            record_id=str(uuid.uuid4()),
            origin=log_.node_id,
            audience=audience,
            seq=seq + 1,
            prev_hash=prev,
            epoch=epoch,
            kind=epb.RECORD_KIND_SEALED,
        )
        header.created_at.FromDatetime(now)
        edit(header)
        if header.kind == epb.RECORD_KIND_KEY:
            key = None  # key messages are not sealed under an audience key
        v = env_crypto.seal(header, body, log_.signer, key)
        log_.store_many(s, [v], now)
        if head is None:
            head = StreamRow(origin=log_.node_id, audience=audience)
            s.add(head)
        head.head_seq, head.head_hash, head.updated_at = header.seq, v.hash, now
    return v.envelope


def _key_message(audience: str, epoch: int, members: dict[str, aud.MemberKey]) -> bytes:
    return aud.build_key_message(audience, epoch, aud.new_epoch_key(), members).SerializeToString()


def _push(
    fed: LocalFederation, sender: str, receiver: str, envelopes: list[epb.Envelope], **kw: object
) -> sync_pb2.PushResponse:
    stub = sync_stub(fed.nodes[sender].channel(fed.nodes[receiver]))
    reply: sync_pb2.PushResponse = stub.Push(sync_pb2.PushRequest(envelopes=envelopes, **kw), timeout=10)  # type: ignore[arg-type]
    return reply


def _alarms(app: NodeApp, kind: str) -> list[AlarmRow]:
    with app.db.read() as s:
        return list(s.scalars(select(AlarmRow).where(AlarmRow.kind == kind)))


def _held(app: NodeApp, envelope: epb.Envelope) -> bool:
    with app.db.read() as s:
        return bool(
            s.scalar(select(func.count()).where(EnvelopeRow.hash == env_crypto.envelope_hash(envelope)))
        )


def test_epoch_poisoning_by_a_member_is_kept_as_evidence_never_learned_and_the_holder_can_still_rekey(
    fed: LocalFederation, clock: ManualClock
) -> None:
    tz, hub = _app(fed, "TZ"), _app(fed, "WCO-GLOBAL")
    members = encryption_keys(hub.trust.directory())  # type: ignore[arg-type]
    poison = [
        # its own stream of `global`, naming `global` with the highest epoch there is
        OwnEnvelope(
            "global",
            epb.RECORD_KIND_KEY,
            epb.VIEW_UNSPECIFIED,
            str(uuid.uuid4()),
            _key_message("global", 2**32 - 1, members),
            0,
            None,
        ),
        # ... and a body naming another holder's audience
        OwnEnvelope(
            "global",
            epb.RECORD_KIND_KEY,
            epb.VIEW_UNSPECIFIED,
            str(uuid.uuid4()),
            _key_message("national:KE", 2**31 - 2, members),
            0,
            None,
        ),
    ]
    sent = [_write_own(tz, item, clock()) for item in poison]
    reply = _push(fed, "TZ", "WCO-GLOBAL", sent)
    assert reply.stored == 2 and not reply.refused  # kept, as evidence
    assert len(_alarms(hub, "unauthorised_key_message")) == 2
    current = hub.audience_keys.current("global")
    assert current is not None and current[0] < 2**31 - 2
    # The holder revokes TZ: the new epoch is a normal number, and TZ is out of it.
    clock.advance(120)
    fed.root.revoke("TZ", clock())
    fed.publish()
    after = hub.audience_keys.current("global")
    assert after is not None and current[0] < after[0] < 2**31 - 1
    assert "TZ" not in {m for m, _ in hub.audience_keys.current_members("global") or ()}
    # The hub restarts cleanly (the poison is replayed at load and refused again).
    again = NodeApp.open(hub.config, clock)
    try:
        assert again.audience_keys.current("global") == after
    finally:
        again.close()


def test_writing_into_an_audience_one_is_not_a_member_of_is_refused_at_the_first_hop(
    fed: LocalFederation, clock: ManualClock
) -> None:
    ke = _app(fed, "KE")
    key = ke.audience_keys.current("national:KE")
    assert key is not None
    body = samples.ivory_seizure(clock().date()).SerializeToString()
    forged = _write_own(
        ke,
        OwnEnvelope(
            "national:TZ", epb.RECORD_KIND_SEIZURE, epb.VIEW_FULL, str(uuid.uuid4()), body, key[0], key[1]
        ),
        clock(),
    )
    reply = _push(fed, "KE", "WCO-GLOBAL", [forged])
    assert [r.code for r in reply.refused] == ["not_member"]
    assert not _held(_app(fed, "WCO-GLOBAL"), forged)
    fed.sync("TZ", "WCO-GLOBAL")
    assert not _held(_app(fed, "TZ"), forged)


def test_an_envelope_dated_ten_years_ahead_is_refused(fed: LocalFederation, clock: ManualClock) -> None:
    ke = _app(fed, "KE")
    ke.records.policy = Policy(Share("global", epb.VIEW_STATISTICAL))  # type: ignore[assignment]
    clock.advance(3650 * 86400)
    ke.records.record_seizure(samples.ivory_seizure(clock().date()))
    clock.advance(-3650 * 86400)
    result = fed.sync("KE", "WCO-GLOBAL")
    assert result.refused == 1
    with ke.db.read() as s:
        assert (
            s.scalar(select(func.count()).select_from(AlarmRow).where(AlarmRow.kind == "refused_by_peer"))
            == 1
        )


def test_a_40_character_record_id_is_refused_at_the_first_hop_and_the_uplink_keeps_flowing(
    fed: LocalFederation, clock: ManualClock
) -> None:
    port, ke, hub = _app(fed, "KE-MBA"), _app(fed, "KE"), _app(fed, "WCO-GLOBAL")
    body = samples.ivory_seizure(clock().date()).SerializeToString()
    long_id = _write_own_header(
        port, "global", lambda h: setattr(h, "record_id", str(uuid.uuid4()) + "-abc"), body, clock()
    )
    reply = _push(fed, "KE-MBA", "KE", [long_id])
    assert [r.code for r in reply.refused] == ["malformed"] and "record_id" in reply.refused[0].reason
    assert not _held(ke, long_id)
    # A national node that stored one before this check existed hands it on:
    # the PostgreSQL hub refuses that one envelope and takes the rest.
    header = epb.EnvelopeHeader.FromString(long_id.header)
    signer = port.keyring.keys_of("KE-MBA")[0]
    with ke.db.begin() as s:
        ke.envelope_log.store_many(
            s,
            [env_crypto.VerifiedEnvelope(long_id, header, env_crypto.envelope_hash(long_id), signer)],
            clock(),
        )
        s.add(
            StreamRow(
                origin="KE-MBA",
                audience="global",
                head_seq=header.seq,
                head_hash=env_crypto.envelope_hash(long_id),
                updated_at=clock(),
            )
        )
    ke.records.policy = Policy(Share("global", epb.VIEW_STATISTICAL))  # type: ignore[assignment]
    own = ke.records.record_seizure(samples.hcfc_seizure(clock().date()))
    result = fed.sync("KE", "WCO-GLOBAL")
    assert result.refused == 1 and result.pushed >= 1
    assert hub.reader.get(own.record_id).kind == epb.RECORD_KIND_SEIZURE
    assert not _held(hub, long_id)


def test_a_revoked_ports_envelope_accepted_in_the_revocation_window_stalls_only_its_own_stream(
    fed: LocalFederation, clock: ManualClock
) -> None:
    """KE-MBA is revoked; until the new directory reaches KE, KE accepts its
    envelopes. The hub, which knows, refuses them one by one; KE's own records
    flow, and KE's pull from the hub runs."""
    port, ke, hub = _app(fed, "KE-MBA"), _app(fed, "KE"), _app(fed, "WCO-GLOBAL")
    for app in (port, ke):
        app.records.policy = Policy(Share("global", epb.VIEW_STATISTICAL))  # type: ignore[assignment]
    clock.advance(60)
    fed.root.revoke("KE-MBA", clock())
    v2 = fed.root.publish(clock())
    hub.accept_directory(v2)
    _app(fed, "VN").accept_directory(v2)
    clock.advance(60)
    port.records.record_seizure(samples.ivory_seizure(clock().date()))  # after its revocation
    fed.sync("KE-MBA", "KE")  # KE still on version 1: accepted
    own = ke.records.record_seizure(samples.hcfc_seizure(clock().date()))
    vn = _app(fed, "VN")
    vn.records.policy = Policy(Share("global", epb.VIEW_STATISTICAL))  # type: ignore[assignment]
    theirs = vn.records.record_seizure(samples.hcfc_seizure(clock().date()))
    fed.sync("VN", "WCO-GLOBAL")
    result = fed.sync("KE", "WCO-GLOBAL")  # push refuses one; the pull still runs
    assert result.refused == 1
    assert hub.reader.get(own.record_id)
    assert ke.reader.get(theirs.record_id)  # pulled in the same round
    with ke.db.read() as s:
        waiting = [(w.peer, w.origin, w.code) for w in s.scalars(select(StreamRefusalRow))]
    assert waiting == [("WCO-GLOBAL", "KE-MBA", "key_window")]  # only the port's stream waits


def test_a_back_dated_key_message_signed_by_a_retired_key_is_refused_without_custody(
    fed: LocalFederation, clock: ManualClock
) -> None:
    """KE rotated; the thief holds KE's old key and a compromised hub relays its
    back-dated key message for bilateral:KE+VN. Without custody it is refused;
    with a receipt the hub forges for itself it is kept, but never becomes the
    epoch VN seals bilateral records under: the thief's hub reads nothing new."""
    ke, vn, hub = _app(fed, "KE"), _app(fed, "VN"), _app(fed, "WCO-GLOBAL")
    old_key: SigningKey = ke.keys.signing
    old_created = clock()
    fed.sync("KE", "WCO-GLOBAL")
    fed.sync("VN", "WCO-GLOBAL")
    clock.advance(600)
    ke.rotate_signing_key()
    fed.root.update_keys("KE", ke.signing_keys_for_directory(), clock())
    fed.publish()
    legit = vn.audience_keys.current(BILATERAL)
    assert legit is not None
    # The thief: a key message wrapped for VN and for the hub, signed by KE's old
    # key, dated inside its window, next in KE's bilateral stream.
    with vn.db.read() as s:
        head = s.get(StreamRow, ("KE", BILATERAL))
        assert head is not None
        seq, prev = head.head_seq, head.head_hash
    members = {n: m for n, m in encryption_keys(hub.trust.directory()).items() if n in ("VN", "WCO-GLOBAL")}  # type: ignore[arg-type]
    evil_key = aud.new_epoch_key()
    msg = aud.build_key_message(BILATERAL, legit[0] + 1000, evil_key, members)
    header = epb.EnvelopeHeader(
        record_id=str(uuid.uuid4()),
        origin="KE",
        audience=BILATERAL,
        seq=seq + 1,
        prev_hash=prev,
        epoch=0,
        kind=epb.RECORD_KIND_KEY,
        view=epb.VIEW_UNSPECIFIED,
    )
    header.created_at.FromDatetime(old_created + timedelta(seconds=1))
    forged = env_crypto.seal(header, msg.SerializeToString(), old_key, None).envelope
    reply = _push(fed, "WCO-GLOBAL", "VN", [forged])
    assert [r.code for r in reply.refused] == ["custody"]

    # Red team F6: a receipt claiming a time before the envelope was made, or
    # before the voucher's own key existed, vouches for nothing.
    def hub_receipt(held_at: datetime) -> sync_pb2.SignedReceipt:
        forged_hash = env_crypto.envelope_hash(forged)
        return sign_receipt(hub.keys.signing, "WCO-GLOBAL", "KE", BILATERAL, seq + 1, forged_hash, held_at)

    for held_at in (datetime(2020, 1, 1, tzinfo=UTC), old_created - timedelta(minutes=10)):
        reply = _push(fed, "WCO-GLOBAL", "VN", [forged], receipts=[hub_receipt(held_at)])
        assert [r.code for r in reply.refused] == ["custody"], held_at
    # The compromised hub vouches for itself.
    reply = _push(
        fed, "WCO-GLOBAL", "VN", [forged], receipts=[hub_receipt(old_created + timedelta(seconds=2))]
    )
    assert reply.stored == 1
    assert vn.audience_keys.get(BILATERAL, legit[0] + 1000) == evil_key  # learned, for reading only
    assert vn.audience_keys.current(BILATERAL) == legit  # never the sealing epoch
    vn.records.policy = Policy(Share(BILATERAL, epb.VIEW_FULL))  # type: ignore[assignment]
    new = vn.records.record_seizure(samples.ivory_seizure(clock().date()))
    assert env_crypto.parse_header(vn.reader.get(new.record_id).envelope).epoch == legit[0]


def _hostile_body(clock: ManualClock, breakage: str) -> bytes:
    """A seizure body the sender's own code never validated: sealed and signed for real."""
    if breakage == "undecodable":  # red team retest: not a RecordBody at all
        return b"\xff\xff\xff\xff" + bytes(range(256)) * 4
    seizure = samples.ivory_seizure(clock().date())
    if breakage == "date":
        seizure.incident_date = "not-a-date"
    else:
        seizure.goods[0].commodity = 999  # type: ignore[assignment]
    body = rec.RecordBody(record_id=str(uuid.uuid4()), view=epb.VIEW_FULL, seizure=seizure)
    return body.SerializeToString()


@pytest.mark.parametrize("breakage", ["date", "commodity", "undecodable"])
def test_a_signed_body_that_breaks_the_record_rules_is_kept_unindexed_and_every_link_keeps_flowing(
    fed: LocalFederation, clock: ManualClock, breakage: str
) -> None:
    """Red team F1: a member sealed a seizure whose date is not a date (or whose
    commodity no version knows) into the global audience. Every node that reads
    it stored it and then failed every round with INTERNAL (the index raised);
    a node pulling its own streams back at start-up crashed. Now the body is
    kept as ciphertext, not indexed, with an alarm naming the stream."""
    tz, hub, ke = _app(fed, "TZ"), _app(fed, "WCO-GLOBAL"), _app(fed, "KE")
    bad = _write_own_header(tz, "global", lambda h: None, _hostile_body(clock, breakage), clock())
    tz.records.policy = Policy(Share("global", epb.VIEW_STATISTICAL))  # type: ignore[assignment]
    after = tz.records.record_seizure(samples.hcfc_seizure(clock().date()))

    reply = _push(fed, "TZ", "WCO-GLOBAL", [bad])
    assert (reply.stored, list(reply.refused)) == (1, [])
    assert _held(hub, bad)
    [alarm] = _alarms(hub, "invalid_body")
    assert (alarm.origin, alarm.audience) == ("TZ", "global")
    # The rest of TZ's stream, and the hub's link to KE, keep flowing.
    fed.sync("TZ", "WCO-GLOBAL")
    assert hub.reader.get(after.record_id, origin="TZ").kind == epb.RECORD_KIND_SEIZURE
    result = fed.sync("KE", "WCO-GLOBAL")
    assert result.refused == 0 and _held(ke, bad)
    assert ke.reader.get(after.record_id, origin="TZ").kind == epb.RECORD_KIND_SEIZURE
    assert len(_alarms(ke, "invalid_body")) == 1


def _forked_first(app: NodeApp, audience: str, now: datetime) -> epb.Envelope:
    """A second seq 1 of `app`'s own stream, different from the one it stored."""
    epoch, key = app.audience_keys.current(audience) or (0, None)
    header = epb.EnvelopeHeader(
        record_id=str(uuid.uuid4()), origin=app.config.node.id, audience=audience, seq=1, epoch=epoch
    )
    header.kind = epb.RECORD_KIND_SEALED
    header.created_at.FromDatetime(now)
    body = rec.RecordBody(record_id=str(uuid.uuid4()), view=epb.VIEW_STATISTICAL)
    body.seizure.CopyFrom(samples.hcfc_seizure(now.date()))
    return env_crypto.seal(header, body.SerializeToString(), app.envelope_log.signer, key).envelope


def test_a_fork_that_stalls_one_stream_does_not_hold_back_the_streams_sorted_after_it(
    fed: LocalFederation, clock: ManualClock
) -> None:
    """Red team F4b: TZ sent one history of its global stream to the hub and a
    different seq 1 straight to KE. Each round the hub's first batch for KE was
    all TZ envelopes KE cannot chain: no progress, the round ended, and every
    stream sorted after TZ's (the hub's own records) never reached KE."""
    tz, hub, ke = _app(fed, "TZ"), _app(fed, "WCO-GLOBAL"), _app(fed, "KE")
    tz.records.policy = Policy(Share("global", epb.VIEW_STATISTICAL))  # type: ignore[assignment]
    tz.records.import_seizures(samples.hcfc_seizure(clock().date()) for _ in range(12))
    fed.sync("TZ", "WCO-GLOBAL")
    fork = _forked_first(tz, "global", clock())
    _push(fed, "TZ", "KE", [fork])  # any member may hand its own envelopes to any node
    hub.records.policy = Policy(Share("global", epb.VIEW_STATISTICAL))  # type: ignore[assignment]
    own = hub.records.record_seizure(samples.ivory_seizure(clock().date()))

    fed.sync("KE", "WCO-GLOBAL", max_envelopes=5)  # batches smaller than TZ's history
    assert ke.reader.get(own.record_id, origin="WCO-GLOBAL").kind == epb.RECORD_KIND_SEIZURE
    # ... and the other way round: the hub pushing to KE.
    later = hub.records.record_seizure(samples.ivory_seizure(clock().date()))
    stub = sync_stub(fed.nodes["WCO-GLOBAL"].channel(fed.nodes["KE"]))
    push(stub, "KE", hub.sync_source, RoundResult(), timeout=10, max_envelopes=5)
    assert ke.reader.get(later.record_id, origin="WCO-GLOBAL").kind == epb.RECORD_KIND_SEIZURE


def test_two_processes_of_one_holder_never_start_one_epoch_twice_with_two_keys(
    fed: LocalFederation, clock: ManualClock
) -> None:
    """Red team F7: `gcn directory import` beside the running holder wrote a key
    message for the epoch the server wrote 0.7 s later, with another key:
    members kept the first, the server sealed under the second, and nobody
    could read the holder's new records. Now the CLI leaves epochs to a
    running server, and a holder numbers a new epoch above every key message
    of its own in the database, whoever wrote it."""
    node = fed.nodes["KE"]
    beside = NodeApp.open(node.app.config, clock)  # a second process of KE, same database
    try:
        members = node.app.trust.member_keys("national:KE")
        with beside.envelope_log.writing_own(), beside.db.begin() as s:
            first, _ = beside.audience_keys.create_epoch(
                s, beside.envelope_log, "national:KE", members, clock()
            )
    finally:
        beside.close()
    with node.app.envelope_log.writing_own(), node.app.db.begin() as s:
        second, _ = node.app.audience_keys.create_epoch(
            s, node.app.envelope_log, "national:KE", members, clock()
        )
    assert second > first


def _as_key_message(header: epb.EnvelopeHeader) -> None:
    header.kind = epb.RECORD_KIND_KEY
    header.epoch = 0


def test_a_bilateral_key_message_kept_as_evidence_is_not_learned_after_its_writer_is_revoked(
    fed: LocalFederation, clock: ManualClock
) -> None:
    """Red team F8: VN (not the holder of bilateral:KE+VN: KE is) wrote a key
    message for it: kept as evidence. After VN's revocation, KE restarted and
    judged it again as from a "revoked former holder" (any national node of a
    country the pair names) and learned it. Only the holder's side ever held it."""
    ke, vn = _app(fed, "KE"), _app(fed, "VN")
    members = {n: m for n, m in encryption_keys(ke.trust.directory()).items() if n in ("KE", "VN")}  # type: ignore[arg-type]
    epoch = ke.audience_keys.next_epoch(BILATERAL, clock()) + 5
    planted = _write_own_header(
        vn,
        BILATERAL,
        _as_key_message,
        _key_message(BILATERAL, epoch, members),
        clock(),
    )
    _push(fed, "VN", "KE", [planted])
    assert _held(ke, planted) and ke.audience_keys.get(BILATERAL, epoch) is None
    assert len(_alarms(ke, "unauthorised_key_message")) == 1
    clock.advance(60)
    fed.root.revoke("VN", clock())
    ke.accept_directory(fed.root.publish(clock()))
    restarted = NodeApp.open(ke.config, clock)  # every stored key message judged again
    try:
        assert restarted.audience_keys.get(BILATERAL, epoch) is None
        assert restarted.trust.may_issue_keys("KE", BILATERAL)
        assert not restarted.trust.may_issue_keys("VN", BILATERAL)
    finally:
        restarted.close()
