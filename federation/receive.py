"""Applying envelopes received from a peer (a sync batch, a push, a bundle).

Invariants:
- every envelope is judged on its own: well formed, signed by its origin with a
  key valid when it was made, created no later than this node's clock plus
  `clock_skew`, written by an origin that may write into its audience (a member
  or the holder), handed over by a caller that may relay it. One that fails is
  refused by name (`federation.refusal.Refused`, with a code and a sentence)
  and costs only its own stream: the rest of the batch is stored, the refusal
  is remembered per peer and stream (`node.storage.refusals`) with an alarm, and the
  caller is told which envelopes were refused;
- an envelope already held (same hash, so the same bytes) is a duplicate and is
  not verified again: apply is idempotent;
- what verifies is stored in stream order in chunks of at most `chunk`
  envelopes, a transaction each: a receiver that crashes mid-batch keeps every
  chunk it committed, and the sender's next look at its vector shows them. A
  chunk the database refuses (a row it cannot take) is stored envelope by
  envelope, and only the envelope it cannot take is refused (`storage`);
- a stream head moves only over contiguous seqs whose `prev_hash` chains;
  out-of-order envelopes are stored and the head catches up when the gap fills;
- two different envelopes for one `(origin, audience, seq)`, or an envelope
  whose `prev_hash` contradicts the one held before it, are both kept as
  evidence and raise an alarm; the stream head does not move past them;
- key messages are learned only from the audience's key holder; a record
  whose epoch key is missing is stored as ciphertext and indexed when the key
  arrives.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from google.protobuf.message import DecodeError
from sqlalchemy import select, tuple_
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from crypto import envelope as env_crypto
from crypto.errors import (
    CryptoError,
    KeyWindowError,
    MalformedEnvelopeError,
    SignatureError,
    UnknownKeyError,
)
from crypto.signing import KeyRing
from federation import refusal as codes
from federation.audiences import AudienceError, parse_audience
from federation.key_messages import judge_body
from federation.refusal import Refused
from federation.trust import Trust
from federation.vectors import Stream
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from gcn.v1 import sync_pb2
from node.clock import Clock, system_clock
from node.domain import index
from node.domain.index import Opened, index_records
from node.logging import get_logger
from node.notify import notify
from node.storage.alarms import add_alarm
from node.storage.audience_keys import AudienceKeys
from node.storage.custody import CustodyJudge, store_receipts
from node.storage.db import APPLY_LOCK, Database, writers_lock
from node.storage.envelope_log import EnvelopeLog, as_envelope
from node.storage.models import AlarmRow, EnvelopeRow, RecordRow, StreamRow
from node.storage.refusals import FROM_PEER, StreamRefusals

log = get_logger(__name__)
_ALARM_EVENTS = {
    "equivocation": "equivocation detected",
    "broken_chain": "broken chain detected",
    "unauthorised_key_message": "key message not believed: kept as evidence, not learned",
}
APPLY_CHUNK = 256
# How far in this node's future an envelope's created_at may be (clocks differ).
MAX_CLOCK_SKEW = timedelta(minutes=5)


@dataclass
class ApplyResult:
    stored: int = 0
    duplicates: int = 0
    alarms: int = 0
    indexed: int = 0
    heads: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    refused: list[Refused] = field(default_factory=list)

    def add(self, other: ApplyResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.alarms += other.alarms
        self.indexed += other.indexed
        self.heads.update(other.heads)
        self.refused.extend(other.refused)


_Fresh = tuple[int, env_crypto.VerifiedEnvelope]  # (index in the request, envelope)


class Receiver:
    def __init__(
        self,
        node_id: str,
        db: Database,
        envelope_log: EnvelopeLog,
        keys: AudienceKeys,
        trust: Trust,
        refusals: StreamRefusals | None = None,
        *,
        clock: Clock = system_clock,
        clock_skew: timedelta = MAX_CLOCK_SKEW,
        chunk: int = APPLY_CHUNK,
        horizon: Callable[[datetime], datetime | None] = lambda now: None,
    ) -> None:
        self.node_id = node_id
        self.db = db
        self.log = envelope_log
        self.keys = keys
        self.trust = trust
        self.refusals = refusals or StreamRefusals(db, clock)
        self.clock = clock
        self.clock_skew = clock_skew
        self.chunk = max(1, chunk)
        # Envelopes created after this are refused (the held directory's trust ends there).
        self.horizon = horizon
        self.custody = CustodyJudge(db, trust)
        self.on_commit: list[Callable[[], None]] = []  # relay onwards at once
        # (caller, refusals) after envelopes of a batch were refused (e.g. fetch intact copies).
        self.on_refused: list[Callable[[str, list[Refused]], None]] = []

    def local_vector(self) -> dict[tuple[str, str], int]:
        """Per stream, the highest contiguous seq held here."""
        with self.db.read() as s:
            return {(r.origin, r.audience): r.head_seq for r in s.scalars(select(StreamRow))}

    def waiting_from(self, peer: str) -> set[Stream]:
        """Streams not to ask `peer` for now: we refused one of its envelopes."""
        return self.refusals.waiting(peer, FROM_PEER, self.local_vector)

    def verify_batch(
        self, envelopes: Sequence[epb.Envelope], caller: str, now: datetime
    ) -> list[env_crypto.VerifiedEnvelope | Refused]:
        """Judge each envelope on its own, in order: verified, or refused by name."""
        ring = self.trust.keyring()
        outcomes = _verify_all(envelopes, ring)
        horizon = self.horizon(now)
        judged: list[env_crypto.VerifiedEnvelope | Refused] = []
        for i, (envelope, outcome) in enumerate(zip(envelopes, outcomes, strict=True)):
            if isinstance(outcome, Exception):
                judged.append(_refusal(i, envelope, None, *_classify(outcome)))
                continue
            problem = self._admissible(outcome, caller, now, horizon)
            judged.append(outcome if problem is None else _refusal(i, envelope, outcome, *problem))
        return judged

    def _admissible(
        self, v: env_crypto.VerifiedEnvelope, caller: str, now: datetime, horizon: datetime | None
    ) -> tuple[str, str] | None:
        h = v.header
        created = env_crypto.header_created_at(h)
        if created > now + self.clock_skew:
            return codes.FUTURE, (
                f"created_at {created.isoformat()} is beyond this node's clock ({now.isoformat()}) "
                f"plus {int(self.clock_skew.total_seconds())} s"
            )
        if horizon is not None and created > horizon:
            return codes.STALE_DIRECTORY, (
                f"created_at {created.isoformat()} is after this node's directory stopped being "
                f"trusted ({horizon.isoformat()}); waiting for a newer directory"
            )
        if h.origin != caller and not self.trust.may_relay(caller, h.origin, h.audience):
            return codes.NOT_PERMITTED, f"{caller} may not relay envelopes of {h.origin} to {h.audience}"
        if not self.trust.may_write(h.origin, h.audience):
            return codes.NOT_MEMBER, f"{h.origin} may not write into {h.audience} (neither member nor holder)"
        return None

    def apply(
        self,
        envelopes: Sequence[epb.Envelope],
        caller: str,
        now: datetime,
        receipts: Sequence[sync_pb2.SignedReceipt] = (),
    ) -> ApplyResult:
        """Store what is new and verifies, chunk by chunk; refuse the rest by name.
        `receipts` are custody receipts for envelopes signed by keys that have ended."""
        result = ApplyResult()
        fresh_envelopes, indexes = self._not_held(envelopes, result)
        verified: list[_Fresh] = []
        for i, outcome in zip(indexes, self.verify_batch(fresh_envelopes, caller, now), strict=True):
            if isinstance(outcome, Refused):
                result.refused.append(_renumbered(outcome, i))
            else:
                verified.append((i, outcome))
        custody = self.custody.judge(verified, receipts, now)
        fresh = [(i, v) for i, v in verified if i not in custody.refused]
        result.refused += [
            _refusal(i, v.envelope, v, codes.CUSTODY, custody.refused[i])
            for i, v in verified
            if i in custody.refused
        ]
        if custody.used:
            with self.db.begin() as s:
                store_receipts(s, custody.used)
        fresh.sort(key=lambda f: (f[1].header.origin, f[1].header.audience, f[1].header.seq))
        for start in range(0, len(fresh), self.chunk):
            self._apply_chunk(fresh[start : start + self.chunk], now, result)
        if result.refused:
            self._refused(caller, result.refused)
        if result.stored:
            notify(self.on_commit)
        if result.stored or result.alarms or result.refused:
            log.info(
                "envelopes applied",
                caller=caller,
                stored=result.stored,
                duplicates=result.duplicates,
                refused=len(result.refused),
                indexed=result.indexed,
                alarms=result.alarms,
            )
        return result

    def _not_held(
        self, envelopes: Sequence[epb.Envelope], result: ApplyResult
    ) -> tuple[list[epb.Envelope], list[int]]:
        """The envelopes not held yet (a held hash is the same bytes, verified before)."""
        hashes = [env_crypto.envelope_hash(e) for e in envelopes]
        held: set[bytes] = set()
        with self.db.read() as s:
            for start in range(0, len(hashes), 1000):
                part = hashes[start : start + 1000]
                held.update(s.scalars(select(EnvelopeRow.hash).where(EnvelopeRow.hash.in_(part))))
        out: list[epb.Envelope] = []
        indexes: list[int] = []
        for i, (envelope, h) in enumerate(zip(envelopes, hashes, strict=True)):
            if h in held:
                result.duplicates += 1
                continue
            held.add(h)  # a second copy in the same batch is a duplicate too
            out.append(envelope)
            indexes.append(i)
        return out, indexes

    def _apply_chunk(self, chunk: list[_Fresh], now: datetime, result: ApplyResult) -> None:
        part = ApplyResult()
        try:
            with self.db.begin() as s:
                self._store(s, [v for _, v in chunk], now, part)
        except (IntegrityError, DataError) as e:
            if len(chunk) > 1:
                for one in chunk:
                    self._apply_chunk([one], now, result)
                return
            i, v = chunk[0]
            log.error(
                "envelope not storable here",
                origin=v.header.origin,
                audience=v.header.audience,
                seq=v.header.seq,
                record_id=v.header.record_id,
                error=type(e).__name__,
            )
            result.refused.append(
                _refusal(
                    i,
                    v.envelope,
                    v,
                    codes.STORAGE,
                    f"this node's database cannot store it ({type(e).__name__})",
                )
            )
            return
        result.add(part)

    def _refused(self, caller: str, refused: list[Refused]) -> None:
        for r in refused:
            log.debug(
                "envelope refused",
                caller=caller,
                origin=r.origin,
                audience=r.audience,
                seq=r.seq,
                code=r.code,
            )
        try:
            self.refusals.note(caller, FROM_PEER, refused)
        except Exception:  # remembering is a convenience; the refusal itself stands
            log.exception("refusals not recorded", caller=caller)
        notify([_bound(listener, caller, refused) for listener in self.on_refused])

    # -- inside the transaction ------------------------------------------------------------

    def _store(
        self, s: Session, verified: list[env_crypto.VerifiedEnvelope], now: datetime, result: ApplyResult
    ) -> None:
        """One chunk, in the caller's transaction."""
        # Two peers may hand over the same envelopes at once (a node with two
        # upstreams): the "held?" check and the insert must not interleave.
        writers_lock(s, APPLY_LOCK)
        held = set(
            s.scalars(select(EnvelopeRow.hash).where(EnvelopeRow.hash.in_([v.hash for v in verified])))
        )
        fresh: dict[bytes, env_crypto.VerifiedEnvelope] = {}
        for v in verified:
            if v.hash in held or v.hash in fresh:
                result.duplicates += 1
            else:
                fresh[v.hash] = v
        new = sorted(fresh.values(), key=lambda v: (v.header.origin, v.header.audience, v.header.seq))
        result.alarms += self._equivocations(s, new, now)
        ids = self.log.store_many(s, new, now)
        result.stored = len(new)
        learned = self._learn_keys(s, new, now, result)
        streams = {(v.header.origin, v.header.audience) for v in new}
        for origin, audience in sorted(streams):
            result.heads[(origin, audience)] = self._advance(s, origin, audience, now, result)
        readable = [(i, v) for i, v in zip(ids, new, strict=True) if v.header.kind != epb.RECORD_KIND_KEY]
        result.indexed += self._index(s, readable)
        result.indexed += self._index_newly_readable(s, learned, {i for i, _ in readable})

    def _equivocations(self, s: Session, new: list[env_crypto.VerifiedEnvelope], now: datetime) -> int:
        """Envelopes that take a stream position already held by another envelope."""
        if not new:
            return 0
        keys = [(v.header.origin, v.header.audience, v.header.seq) for v in new]
        rows = s.execute(
            select(EnvelopeRow.origin, EnvelopeRow.audience, EnvelopeRow.seq, EnvelopeRow.hash).where(
                tuple_(EnvelopeRow.origin, EnvelopeRow.audience, EnvelopeRow.seq).in_(keys)
            )
        )
        taken = {(o, a, q): h for o, a, q, h in rows}
        alarms = 0
        for v in new:  # in order: a second envelope for a position in this same batch counts too
            position = (v.header.origin, v.header.audience, v.header.seq)
            other = taken.setdefault(position, v.hash)
            if other != v.hash:
                self._alarm(
                    s,
                    "equivocation",
                    v,
                    other,
                    now,
                    f"two different envelopes for {v.header.origin} {v.header.audience} seq {v.header.seq}",
                )
                alarms += 1
        return alarms

    def _alarm(
        self, s: Session, kind: str, v: env_crypto.VerifiedEnvelope, other: bytes, now: datetime, detail: str
    ) -> None:
        s.add(
            AlarmRow(
                kind=kind,
                origin=v.header.origin,
                audience=v.header.audience,
                seq=v.header.seq,
                first_hash=other,
                second_hash=v.hash,
                detail=detail[:512],
                created_at=now,
            )
        )
        log.error(
            _ALARM_EVENTS.get(kind, kind),
            detail=detail,
            origin=v.header.origin,
            audience=v.header.audience,
            seq=v.header.seq,
            record_id=v.header.record_id,
        )

    def _advance(
        self, s: Session, origin: str, audience: str, now: datetime, result: ApplyResult
    ) -> tuple[int, bytes]:
        """Move the stream head over contiguous, chaining envelopes."""
        head = self.log.head(s, origin, audience, lock=True)
        seq, last = (head.head_seq, head.head_hash) if head else (0, b"")
        rows = s.execute(
            select(EnvelopeRow.seq, EnvelopeRow.hash, EnvelopeRow.prev_hash, EnvelopeRow.record_id)
            .where(EnvelopeRow.origin == origin, EnvelopeRow.audience == audience, EnvelopeRow.seq > seq)
            .order_by(EnvelopeRow.seq, EnvelopeRow.id)
        )
        by_seq: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        for q, h, prev, _rid in rows:
            by_seq[q].append((h, prev))
        while len(by_seq.get(seq + 1, [])) == 1:
            h, prev = by_seq[seq + 1][0]
            if prev != last:
                s.add(
                    AlarmRow(
                        kind="broken_chain",
                        origin=origin,
                        audience=audience,
                        seq=seq + 1,
                        first_hash=last,
                        second_hash=h,
                        created_at=now,
                        detail=f"{origin} {audience} seq {seq + 1} does not chain to seq {seq}",
                    )
                )
                log.error("broken chain detected", origin=origin, audience=audience, seq=seq + 1)
                result.alarms += 1
                break
            seq, last = seq + 1, h
        if head is None:
            if seq:
                s.add(
                    StreamRow(origin=origin, audience=audience, head_seq=seq, head_hash=last, updated_at=now)
                )
        elif seq != head.head_seq:
            head.head_seq, head.head_hash, head.updated_at = seq, last, now
        return seq, last

    def _learn_keys(
        self, s: Session, new: list[env_crypto.VerifiedEnvelope], now: datetime, result: ApplyResult
    ) -> set[tuple[str, int]]:
        """Learn what the key messages among `new` may teach (`federation.key_messages`);
        the others are evidence, with an alarm."""
        learned: set[tuple[str, int]] = set()
        for v in new:
            if v.header.kind != epb.RECORD_KIND_KEY:
                continue
            msg, why = judge_body(v.header, v.envelope.ciphertext, self.trust.may_issue_keys, now)
            if msg is None:
                self._alarm(s, "unauthorised_key_message", v, b"", now, f"key message not believed: {why}")
                result.alarms += 1
                continue
            got = self.keys.learn(v.header, msg, now)
            if got is not None:
                learned.add(got)
        return learned

    def _index(self, s: Session, items: list[tuple[int, env_crypto.VerifiedEnvelope]]) -> int:
        opened = []
        for envelope_id, v in items:
            key = self.keys.get(v.header.audience, v.header.epoch)
            if key is None:
                continue
            try:
                plaintext = env_crypto.open_body(v.envelope, v.header, key)
            except CryptoError as e:
                log.warning(
                    "envelope does not open",
                    origin=v.header.origin,
                    record_id=v.header.record_id,
                    audience=v.header.audience,
                    reason=str(e),
                )
                continue
            try:
                body = rec.RecordBody.FromString(plaintext)
                item = Opened.of(envelope_id, v.header, body, env_crypto.header_created_at(v.header))
                why = index.unindexable(item)
            except (DecodeError, ValueError, RecursionError) as e:  # the body's fault: it costs only itself
                why = f"{type(e).__name__}: {e}"[:200]
            if why is not None:  # the origin sealed a body that breaks the record rules
                self._invalid_body(s, v, why)
                continue
            opened.append(item)
        index_records(s, opened)
        return len(opened)

    def _invalid_body(self, s: Session, v: env_crypto.VerifiedEnvelope, why: str) -> None:
        log.warning(
            "envelope body breaks the record rules: kept, not indexed",
            origin=v.header.origin,
            audience=v.header.audience,
            seq=v.header.seq,
            reason=why,
        )
        add_alarm(
            s,
            "invalid_body",
            self.clock(),
            f"body not indexed: {why}",
            origin=v.header.origin,
            audience=v.header.audience,
            seq=v.header.seq,
        )

    def _index_newly_readable(self, s: Session, learned: set[tuple[str, int]], skip: set[int]) -> int:
        """Records stored earlier as ciphertext whose epoch key just arrived."""
        if not learned:
            return 0
        stmt = (
            select(EnvelopeRow)
            .outerjoin(RecordRow, RecordRow.envelope_id == EnvelopeRow.id)
            .where(
                RecordRow.envelope_id.is_(None),
                EnvelopeRow.kind != epb.RECORD_KIND_KEY,
                tuple_(EnvelopeRow.audience, EnvelopeRow.epoch).in_(sorted(learned)),
            )
        )
        items = []
        for row in s.scalars(stmt):
            if row.id in skip:
                continue
            envelope = as_envelope(row)
            header = env_crypto.parse_header(envelope)
            signer = self.trust.keyring().keys_of(header.origin)
            items.append((row.id, env_crypto.VerifiedEnvelope(envelope, header, row.hash, signer[0])))
        return self._index(s, items) if items else 0


_Outcome = env_crypto.VerifiedEnvelope | CryptoError | AudienceError
_VERIFY_CHUNK = 128
# Ed25519 verification releases the GIL: large batches are verified on two
# threads (the machine's cores), in chunks, keeping the batch's order.
_verifiers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify")


def _verify_one(envelope: epb.Envelope, ring: KeyRing) -> _Outcome:
    try:
        v = env_crypto.verify(envelope, ring)
        parse_audience(v.header.audience)
        return v
    except (CryptoError, AudienceError) as e:
        return e


def _verify_chunk(chunk: Sequence[epb.Envelope], ring: KeyRing) -> list[_Outcome]:
    return [_verify_one(e, ring) for e in chunk]


def _verify_all(envelopes: Sequence[epb.Envelope], ring: KeyRing) -> list[_Outcome]:
    if len(envelopes) <= _VERIFY_CHUNK:
        return _verify_chunk(envelopes, ring)
    chunks = [envelopes[i : i + _VERIFY_CHUNK] for i in range(0, len(envelopes), _VERIFY_CHUNK)]
    return [o for part in _verifiers.map(_verify_chunk, chunks, [ring] * len(chunks)) for o in part]


def _classify(e: Exception) -> tuple[str, str]:
    if isinstance(e, (MalformedEnvelopeError, AudienceError)):
        return codes.MALFORMED, str(e)
    if isinstance(e, UnknownKeyError):
        return codes.UNKNOWN_KEY, str(e)
    if isinstance(e, KeyWindowError):
        return codes.KEY_WINDOW, str(e)
    if isinstance(e, SignatureError):
        return codes.FORGED, str(e)
    return codes.MALFORMED, str(e)


def _refusal(
    index: int, envelope: epb.Envelope, v: env_crypto.VerifiedEnvelope | None, code: str, reason: str
) -> Refused:
    """Name a refused envelope by what its header says (as far as it parses)."""
    header = v.header if v is not None else _header_or_empty(envelope)
    return Refused(
        index,
        header.origin,
        header.audience,
        int(header.seq),
        env_crypto.envelope_hash(envelope),
        code,
        reason,
    )


def _header_or_empty(envelope: epb.Envelope) -> epb.EnvelopeHeader:
    header = epb.EnvelopeHeader()
    try:
        header.ParseFromString(envelope.header)
    except Exception:
        return epb.EnvelopeHeader()
    # Names from an unverified header are only for telling the sender which one.
    header.origin, header.audience = header.origin[:64], header.audience[:128]
    return header


def _renumbered(r: Refused, index: int) -> Refused:
    return Refused(index, r.origin, r.audience, r.seq, r.hash, r.code, r.reason)


def _bound(
    listener: Callable[[str, list[Refused]], None], caller: str, refused: list[Refused]
) -> Callable[[], None]:
    return lambda: listener(caller, refused)
