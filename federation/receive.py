"""The receive path: judging and applying envelopes received from a peer (a
sync batch, a push, a bundle).

This module decides; the node's store does what it is told. What the receiver
needs from storage is declared here as Protocols (`ReplicaStore`,
`RefusalBook`, `CustodyCheck`); `node.domain.replica` implements the store
over the node's database.

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
  chunk it committed, and the sender's next look at its vector shows them.
  `on_commit` is told after each chunk that stored something, so a hub relays
  the first chunk of a large batch onwards while it stores the rest;
  `on_stored` is told the caller too, so the relay skips the peer the
  envelopes came from. While a batch from a peer is applied, its streams are
  not pulled from that peer (`waiting_from`): it is pushing them. A
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

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from crypto import envelope as env_crypto
from crypto.custody import Receipt
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
from federation.notify import notify
from federation.refusal import FROM_PEER, Refused
from federation.trust import Trust
from federation.vectors import Stream
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import sync_pb2

log = structlog.get_logger(__name__)
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


@dataclass(frozen=True)
class Arrival:
    """A verified, admissible envelope, with the verdict on its key message
    (kind KEY only): the message to learn, or why it is not believed."""

    envelope: env_crypto.VerifiedEnvelope
    key_message: epb.KeyMessage | None = None
    unbelieved: str | None = None


class UnstorableError(Exception):
    """The store could not take a chunk (a row its database refuses)."""


class ReplicaStore(Protocol):
    def local_vector(self) -> dict[Stream, int]:
        """Per stream, the highest contiguous seq held."""
        ...

    def held(self, hashes: Sequence[bytes]) -> set[bytes]:
        """Which of these envelope hashes are held already."""
        ...

    def store(
        self, arrivals: Sequence[Arrival], now: datetime, keyring: Callable[[], KeyRing]
    ) -> ApplyResult:
        """Store one chunk in one transaction: skip what is held, keep equivocations
        as evidence with an alarm, advance heads over what chains, learn the key
        messages given, index what opens. Raises `UnstorableError` if the database
        refuses a row (nothing of the chunk is stored then)."""
        ...

    def store_receipts(self, receipts: Sequence[Receipt]) -> None: ...


class RefusalBook(Protocol):
    def note(self, peer: str, direction: str, refusals: Sequence[Refused]) -> object: ...

    def waiting(self, peer: str, direction: str, heads: Callable[[], dict[Stream, int]]) -> set[Stream]: ...


@dataclass
class Judged:
    refused: dict[int, str] = field(default_factory=dict)  # index -> why
    used: list[Receipt] = field(default_factory=list)  # receipts that vouched for what is accepted


class CustodyCheck(Protocol):
    def judge(
        self,
        batch: Sequence[tuple[int, env_crypto.VerifiedEnvelope]],
        receipts: Sequence[sync_pb2.SignedReceipt],
        now: datetime,
    ) -> Judged:
        """Which envelopes of the batch signed by ended keys lack custody (`docs/trust.md`)."""
        ...


_Fresh = tuple[int, env_crypto.VerifiedEnvelope]  # (index in the request, envelope)


class Receiver:
    def __init__(
        self,
        node_id: str,
        store: ReplicaStore,
        trust: Trust,
        refusals: RefusalBook,
        custody: CustodyCheck,
        *,
        clock: Callable[[], datetime],
        clock_skew: timedelta = MAX_CLOCK_SKEW,
        chunk: int = APPLY_CHUNK,
        horizon: Callable[[datetime], datetime | None] = lambda now: None,
    ) -> None:
        self.node_id = node_id
        self.store = store
        self.trust = trust
        self.refusals = refusals
        self.custody = custody
        self.clock = clock
        self.clock_skew = clock_skew
        self.chunk = max(1, chunk)
        # Envelopes created after this are refused (the held directory's trust ends there).
        self.horizon = horizon
        self.on_commit: list[Callable[[], None]] = []  # after each committed chunk
        # After each committed chunk, with the caller whose envelopes it stored
        # (relay onwards at once, to every peer but that one).
        self.on_stored: list[Callable[[str], None]] = []
        # Per caller, the streams of its batches being applied now (`waiting_from`).
        self._arriving: dict[str, list[set[Stream]]] = {}
        self._arriving_lock = threading.Lock()
        # (caller, refusals) after envelopes of a batch were refused (e.g. fetch intact copies).
        self.on_refused: list[Callable[[str, list[Refused]], None]] = []

    def local_vector(self) -> dict[Stream, int]:
        """Per stream, the highest contiguous seq held here."""
        return self.store.local_vector()

    def waiting_from(self, peer: str) -> set[Stream]:
        """Streams not to ask `peer` for now: we refused one of its envelopes, or
        a batch of that stream from `peer` is being applied here right now (it is
        pushing them to us: a pull would bring the same envelopes twice)."""
        with self._arriving_lock:
            arriving = set().union(*self._arriving.get(peer, []))
        return self.refusals.waiting(peer, FROM_PEER, self.local_vector) | arriving

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
        with self._arriving_from(caller, fresh_envelopes):
            self._apply_fresh(fresh_envelopes, indexes, caller, now, receipts, result)
            if result.refused:
                self._refused(caller, result.refused)
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

    @contextmanager
    def _arriving_from(self, caller: str, envelopes: Sequence[epb.Envelope]) -> Iterator[None]:
        streams = _streams_of(envelopes)
        with self._arriving_lock:
            self._arriving.setdefault(caller, []).append(streams)
        try:
            yield
        finally:
            with self._arriving_lock:
                batches = self._arriving[caller]
                batches.remove(streams)
                if not batches:
                    del self._arriving[caller]

    def _apply_fresh(
        self,
        fresh_envelopes: list[epb.Envelope],
        indexes: list[int],
        caller: str,
        now: datetime,
        receipts: Sequence[sync_pb2.SignedReceipt],
        result: ApplyResult,
    ) -> None:
        """Verify and store chunk by chunk, in stream order (as the headers say;
        the signature covers them), so the first chunk commits (and is relayed)
        after verifying only itself. Custody receipts chain across the batch: from
        the first chunk with an envelope signed by a key that has ended, the rest
        of the batch is verified and judged as one."""
        ordered = sorted(zip(indexes, fresh_envelopes, strict=True), key=lambda p: _position_of(p[1]))
        refused: list[Refused] = []
        start = 0
        while start < len(ordered):
            verified = self._verified(ordered[start : start + self.chunk], caller, now, refused)
            start += self.chunk
            if any(_signer_ended(v, now) for _, v in verified):
                verified += self._verified(ordered[start:], caller, now, refused)
                start = len(ordered)
                verified = self._with_custody(verified, receipts, now, refused)
            for part in range(0, len(verified), self.chunk):
                self._store_chunk(verified[part : part + self.chunk], caller, now, result)
        # Refused on verification (in request order), by custody, then by storage.
        result.refused[:0] = [
            *sorted((r for r in refused if r.code != codes.CUSTODY), key=lambda r: r.index),
            *(r for r in refused if r.code == codes.CUSTODY),
        ]

    def _verified(
        self, piece: Sequence[tuple[int, epb.Envelope]], caller: str, now: datetime, refused: list[Refused]
    ) -> list[_Fresh]:
        verified: list[_Fresh] = []
        outcomes = self.verify_batch([e for _, e in piece], caller, now)
        for (i, _), outcome in zip(piece, outcomes, strict=True):
            if isinstance(outcome, Refused):
                refused.append(_renumbered(outcome, i))
            else:
                verified.append((i, outcome))
        return verified

    def _with_custody(
        self,
        verified: list[_Fresh],
        receipts: Sequence[sync_pb2.SignedReceipt],
        now: datetime,
        refused: list[Refused],
    ) -> list[_Fresh]:
        """What custody lets through (`docs/trust.md`); the receipts it used are kept."""
        custody = self.custody.judge(verified, receipts, now)
        refused += [
            _refusal(i, v.envelope, v, codes.CUSTODY, custody.refused[i])
            for i, v in verified
            if i in custody.refused
        ]
        if custody.used:
            self.store.store_receipts(custody.used)
        fresh = [(i, v) for i, v in verified if i not in custody.refused]
        fresh.sort(key=lambda f: (f[1].header.origin, f[1].header.audience, f[1].header.seq))
        return fresh

    def _store_chunk(self, chunk: list[_Fresh], caller: str, now: datetime, result: ApplyResult) -> None:
        stored = result.stored
        self._apply_chunk(chunk, now, result)
        if result.stored > stored:
            # Each committed chunk is relayed at once: a hub forwards the first
            # chunk of a large batch while it stores the rest (the scheduler
            # coalesces the pokes: a round running now goes once more).
            notify(self.on_commit)
            notify([_bound_caller(listener, caller) for listener in self.on_stored])

    def _not_held(
        self, envelopes: Sequence[epb.Envelope], result: ApplyResult
    ) -> tuple[list[epb.Envelope], list[int]]:
        """The envelopes not held yet (a held hash is the same bytes, verified before)."""
        hashes = [env_crypto.envelope_hash(e) for e in envelopes]
        held = self.store.held(hashes)
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

    def _arrival(self, v: env_crypto.VerifiedEnvelope, now: datetime) -> Arrival:
        """Judge a key message's body (`federation.key_messages`): learned, or evidence."""
        if v.header.kind != epb.RECORD_KIND_KEY:
            return Arrival(v)
        msg, why = judge_body(v.header, v.envelope.ciphertext, self.trust.may_issue_keys, now)
        return Arrival(v, msg, None if msg is not None else f"key message not believed: {why}")

    def _apply_chunk(self, chunk: list[_Fresh], now: datetime, result: ApplyResult) -> None:
        try:
            part = self.store.store([self._arrival(v, now) for _, v in chunk], now, self.trust.keyring)
        except UnstorableError as e:
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
                error=str(e),
            )
            result.refused.append(
                _refusal(i, v.envelope, v, codes.STORAGE, f"this node's database cannot store it ({e})")
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


def _bound_caller(listener: Callable[[str], None], caller: str) -> Callable[[], None]:
    return lambda: listener(caller)


def _position_of(envelope: epb.Envelope) -> tuple[str, str, int]:
    """Where the header says the envelope goes (unparsable: first, to be refused)."""
    h = _header_or_empty(envelope)
    return (h.origin, h.audience, int(h.seq))


def _signer_ended(v: env_crypto.VerifiedEnvelope, now: datetime) -> bool:
    """Signed by a key whose window has ended: custody decides (`node.storage.custody`)."""
    end = v.signer.not_after
    return end is not None and end <= now


def _streams_of(envelopes: Sequence[epb.Envelope]) -> set[Stream]:
    """The streams the headers name (as far as they parse: this only steers pulls)."""
    out: set[Stream] = set()
    for envelope in envelopes:
        header = _header_or_empty(envelope)
        if header.origin:
            out.add((header.origin, header.audience))
    return out
