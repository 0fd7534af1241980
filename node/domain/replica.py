"""What envelopes received from peers do to this node's store: the
`federation.receive.ReplicaStore` the receiver applies chunks through.

Each chunk is one transaction under the apply lock: envelopes held already are
duplicates; two different envelopes for one stream position are both kept as
evidence with an alarm; stream heads move over contiguous seqs whose
`prev_hash` chains (a broken link is an alarm, the head stops); key messages
the receiver judged authorised are learned, the others kept as evidence with an
alarm; bodies that open are indexed, and records stored earlier as ciphertext
are indexed when their epoch key arrives. A body that breaks the record rules
is kept, not indexed, with an `invalid_body` alarm.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

from google.protobuf.message import DecodeError
from sqlalchemy import select, tuple_
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from crypto import envelope as env_crypto
from crypto.custody import Receipt
from crypto.errors import CryptoError
from crypto.signing import KeyRing
from federation.receive import ApplyResult, Arrival, UnstorableError
from federation.vectors import Stream
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from node.clock import Clock, system_clock
from node.domain import index
from node.domain.index import Opened, index_records
from node.logging import get_logger
from node.storage.alarms import add_alarm
from node.storage.audience_keys import AudienceKeys
from node.storage.custody import store_receipts
from node.storage.db import APPLY_LOCK, Database, writers_lock
from node.storage.envelope_log import EnvelopeLog, as_envelope
from node.storage.models import AlarmRow, EnvelopeRow, RecordRow, StreamRow

log = get_logger(__name__)
_ALARM_EVENTS = {
    "equivocation": "equivocation detected",
    "broken_chain": "broken chain detected",
    "unauthorised_key_message": "key message not believed: kept as evidence, not learned",
}


class Replica:
    def __init__(
        self, db: Database, envelope_log: EnvelopeLog, keys: AudienceKeys, clock: Clock = system_clock
    ) -> None:
        self.db = db
        self.log = envelope_log
        self.keys = keys
        self.clock = clock

    def local_vector(self) -> dict[Stream, int]:
        with self.db.read() as s:
            return {(r.origin, r.audience): r.head_seq for r in s.scalars(select(StreamRow))}

    def held(self, hashes: Sequence[bytes]) -> set[bytes]:
        held: set[bytes] = set()
        with self.db.read() as s:
            for start in range(0, len(hashes), 1000):
                part = hashes[start : start + 1000]
                held.update(s.scalars(select(EnvelopeRow.hash).where(EnvelopeRow.hash.in_(part))))
        return held

    def store_receipts(self, receipts: Sequence[Receipt]) -> None:
        with self.db.begin() as s:
            store_receipts(s, receipts)

    def store(
        self, arrivals: Sequence[Arrival], now: datetime, keyring: Callable[[], KeyRing]
    ) -> ApplyResult:
        result = ApplyResult()
        try:
            with self.db.begin() as s:
                self._store(s, arrivals, now, keyring, result)
        except (IntegrityError, DataError) as e:
            raise UnstorableError(type(e).__name__) from e
        return result

    # -- inside the transaction ------------------------------------------------------------

    def _store(
        self,
        s: Session,
        arrivals: Sequence[Arrival],
        now: datetime,
        keyring: Callable[[], KeyRing],
        result: ApplyResult,
    ) -> None:
        # Two peers may hand over the same envelopes at once (a node with two
        # upstreams): the "held?" check and the insert must not interleave.
        writers_lock(s, APPLY_LOCK)
        hashes = [a.envelope.hash for a in arrivals]
        held = set(s.scalars(select(EnvelopeRow.hash).where(EnvelopeRow.hash.in_(hashes))))
        fresh: dict[bytes, Arrival] = {}
        for a in arrivals:
            if a.envelope.hash in held or a.envelope.hash in fresh:
                result.duplicates += 1
            else:
                fresh[a.envelope.hash] = a
        new_arrivals = sorted(fresh.values(), key=lambda a: _position(a.envelope))
        new = [a.envelope for a in new_arrivals]
        result.alarms += self._equivocations(s, new, now)
        ids = self.log.store_many(s, new, now)
        result.stored = len(new)
        learned = self._learn_keys(s, new_arrivals, now, result)
        streams = {(v.header.origin, v.header.audience) for v in new}
        for origin, audience in sorted(streams):
            result.heads[(origin, audience)] = self._advance(s, origin, audience, now, result)
        readable = [(i, v) for i, v in zip(ids, new, strict=True) if v.header.kind != epb.RECORD_KIND_KEY]
        result.indexed += self._index(s, readable)
        result.indexed += self._index_newly_readable(s, learned, {i for i, _ in readable}, keyring)

    def _equivocations(self, s: Session, new: list[env_crypto.VerifiedEnvelope], now: datetime) -> int:
        """Envelopes that take a stream position already held by another envelope."""
        if not new:
            return 0
        keys = [_position(v) for v in new]
        rows = s.execute(
            select(EnvelopeRow.origin, EnvelopeRow.audience, EnvelopeRow.seq, EnvelopeRow.hash).where(
                tuple_(EnvelopeRow.origin, EnvelopeRow.audience, EnvelopeRow.seq).in_(keys)
            )
        )
        taken = {(o, a, q): h for o, a, q, h in rows}
        alarms = 0
        for v in new:  # in order: a second envelope for a position in this same batch counts too
            other = taken.setdefault(_position(v), v.hash)
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
        self, s: Session, new: list[Arrival], now: datetime, result: ApplyResult
    ) -> set[tuple[str, int]]:
        """Learn the key messages the receiver believed (`federation.key_messages`);
        the others are evidence, with an alarm."""
        learned: set[tuple[str, int]] = set()
        for a in new:
            v = a.envelope
            if v.header.kind != epb.RECORD_KIND_KEY:
                continue
            if a.key_message is None:
                why = a.unbelieved or "key message not believed"
                self._alarm(s, "unauthorised_key_message", v, b"", now, why)
                result.alarms += 1
                continue
            got = self.keys.learn(v.header, a.key_message, now)
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

    def index_readable(self, learned: set[tuple[str, int]], keyring: Callable[[], KeyRing]) -> int:
        """Index what is held as ciphertext under epochs this node just learned
        outside an apply (key messages another replica of the node stored)."""
        if not learned:
            return 0
        with self.db.begin() as s:
            writers_lock(s, APPLY_LOCK)
            return self._index_newly_readable(s, learned, set(), keyring)

    def _index_newly_readable(
        self, s: Session, learned: set[tuple[str, int]], skip: set[int], keyring: Callable[[], KeyRing]
    ) -> int:
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
            signer = keyring().keys_of(header.origin)
            items.append((row.id, env_crypto.VerifiedEnvelope(envelope, header, row.hash, signer[0])))
        return self._index(s, items) if items else 0


def _position(v: env_crypto.VerifiedEnvelope) -> tuple[str, str, int]:
    return (v.header.origin, v.header.audience, v.header.seq)
