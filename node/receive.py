"""Applying envelopes received from a peer (a sync batch, a push, a bundle).

Invariants:
- every envelope is verified (well formed, signed by its origin with a key
  valid when it was made, its origin one the caller may relay) before anything
  of the batch is stored; a batch with one bad envelope is refused whole, and
  nothing of it is stored;
- apply is idempotent: an envelope already held is a no-op;
- a stream head moves only over contiguous seqs whose `prev_hash` chains;
  out-of-order envelopes are stored and the head catches up when the gap fills;
- two different envelopes for one `(origin, audience, seq)`, or an envelope
  whose `prev_hash` contradicts the one held before it, are both kept as
  evidence and raise an alarm; the stream head does not move past them;
- key messages are accepted only from the audience's key holder; a record
  whose epoch key is missing is stored as ciphertext and indexed when the key
  arrives.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from crypto import envelope as env_crypto
from crypto.errors import CryptoError, MalformedEnvelopeError
from crypto.signing import KeyRing
from federation.audiences import AudienceError, parse_audience
from federation.trust import Trust
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from node.audience_keys import AudienceKeys
from node.db import APPLY_LOCK, Database, writers_lock
from node.errors import NodeError, PermissionDeniedError, ValidationError
from node.index import Opened, index_records
from node.log import EnvelopeLog, as_envelope
from node.logging import get_logger
from node.models import AlarmRow, EnvelopeRow, RecordRow, StreamRow
from node.notify import notify

log = get_logger(__name__)


class RefusedEnvelopeError(NodeError):
    """An envelope of the batch failed verification; nothing was stored."""

    index: int


class MalformedEnvelopeRefusedError(RefusedEnvelopeError, ValidationError):
    """Maps to INVALID_ARGUMENT."""

    def __init__(self, index: int, reason: str) -> None:
        ValidationError.__init__(self, f"envelopes[{index}]", f"refused: {reason}")
        self.index = index


class ForgedEnvelopeRefusedError(RefusedEnvelopeError, PermissionDeniedError):
    """A signature that does not verify: maps to PERMISSION_DENIED."""

    def __init__(self, index: int, reason: str) -> None:
        PermissionDeniedError.__init__(self, f"envelope {index} refused: {reason}")
        self.index = index


@dataclass
class ApplyResult:
    stored: int = 0
    duplicates: int = 0
    alarms: int = 0
    indexed: int = 0
    heads: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)


class Receiver:
    def __init__(
        self, node_id: str, db: Database, envelope_log: EnvelopeLog, keys: AudienceKeys, trust: Trust
    ) -> None:
        self.node_id = node_id
        self.db = db
        self.log = envelope_log
        self.keys = keys
        self.trust = trust
        self.on_commit: list[Callable[[], None]] = []  # relay onwards at once

    def local_vector(self) -> dict[tuple[str, str], int]:
        """Per stream, the highest contiguous seq held here."""
        with self.db.read() as s:
            return {(r.origin, r.audience): r.head_seq for r in s.scalars(select(StreamRow))}

    def verify_batch(
        self, envelopes: Sequence[epb.Envelope], caller: str
    ) -> list[env_crypto.VerifiedEnvelope]:
        ring = self.trust.keyring()
        outcomes = _verify_all(envelopes, ring)
        verified = []
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, (MalformedEnvelopeError, AudienceError)):
                raise MalformedEnvelopeRefusedError(i, str(outcome)) from outcome
            if isinstance(outcome, CryptoError):
                raise ForgedEnvelopeRefusedError(i, str(outcome)) from outcome
            h = outcome.header
            if h.origin != caller and not self.trust.may_relay(caller, h.origin, h.audience):
                raise PermissionDeniedError(
                    f"envelope {i} refused: {caller} may not relay envelopes of {h.origin} to {h.audience}"
                )
            verified.append(outcome)
        return verified

    def apply(self, envelopes: Sequence[epb.Envelope], caller: str, now: datetime) -> ApplyResult:
        """Verify the whole batch, then store what is new in one transaction."""
        try:
            verified = self.verify_batch(envelopes, caller)
        except (RefusedEnvelopeError, PermissionDeniedError) as e:
            log.warning("envelope batch refused", caller=caller, size=len(envelopes), reason=str(e))
            raise
        result = ApplyResult()
        with self.db.begin() as s:
            self._store(s, verified, now, result)
        if result.stored:
            notify(self.on_commit)
        if result.stored or result.alarms:
            log.info(
                "envelopes applied",
                caller=caller,
                stored=result.stored,
                duplicates=result.duplicates,
                indexed=result.indexed,
                alarms=result.alarms,
            )
        return result

    # -- inside the transaction ------------------------------------------------------------

    def _store(
        self, s: Session, verified: list[env_crypto.VerifiedEnvelope], now: datetime, result: ApplyResult
    ) -> None:
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
        learned = self._learn_keys(new)
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
            "equivocation detected" if kind == "equivocation" else "broken chain detected",
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

    def _learn_keys(self, new: list[env_crypto.VerifiedEnvelope]) -> set[tuple[str, int]]:
        learned: set[tuple[str, int]] = set()
        for v in new:
            if v.header.kind != epb.RECORD_KIND_KEY:
                continue
            self.keys.saw_message(v.envelope.ciphertext)
            if not self.trust.may_issue_keys(v.header.origin, v.header.audience):
                log.warning(
                    "key message not from the audience's holder",
                    origin=v.header.origin,
                    audience=v.header.audience,
                    holder=self.trust.holder_of(v.header.audience),
                    record_id=v.header.record_id,
                )
                continue
            got = self.keys.learn(v.header, v.envelope.ciphertext)
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
                body = rec.RecordBody.FromString(env_crypto.open_body(v.envelope, v.header, key))
            except (CryptoError, ValueError) as e:
                log.warning(
                    "envelope does not open",
                    origin=v.header.origin,
                    record_id=v.header.record_id,
                    audience=v.header.audience,
                    reason=str(e),
                )
                continue
            opened.append(Opened(envelope_id, v.header, body, env_crypto.header_created_at(v.header)))
        index_records(s, opened)
        return len(opened)

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
