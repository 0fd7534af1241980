"""The sending side of replication: this node's version vector, and the
envelopes a peer lacks from the streams it is entitled to (pure).

The decision lives here; the reads go through an `OutboxStore` (node wires
its SQL one, `node.storage.outbox_store`; tests use an in-memory fake). A sync
with nothing to send costs one read of the store's heads (the vector), whatever
the size of the log: the log itself is only read for streams where the peer is
behind. Alerts, key messages, retractions and corrections go before bulk
seizure history, but never more than half a batch of them.

Imports: crypto, gcn protos and federation only; never node.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from crypto.envelope import envelope_hash
from federation.refusal import DAMAGED, Refused
from federation.routing import Topology
from federation.vectors import Stream, Vector, lacking
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import sync_pb2

log: Any = structlog.get_logger(__name__)

MIB = 1024 * 1024
# A Pull batch, whatever the caller asks: at most this many envelopes and bytes
# (node.domain.limits re-exports them as PULL_*). 0 in a request means the default.
DEFAULT_MAX_ENVELOPES = 2000
DEFAULT_MAX_BYTES = 2 * MIB
MAX_ENVELOPES = 5000
MAX_BYTES = 8 * MIB
# Sent first: key messages and urgent records (version 2 header class, or a
# version 1 header's own kind).
URGENT_KINDS = (
    epb.RECORD_KIND_KEY,
    epb.RECORD_KIND_SEALED_URGENT,
    epb.RECORD_KIND_ALERT,
    epb.RECORD_KIND_RETRACTION,
    epb.RECORD_KIND_CORRECTION,
)


@dataclass(frozen=True)
class BatchCaps:
    """A batch's defaults (when the caller states 0) and caps (whatever it states)."""

    default_envelopes: int = DEFAULT_MAX_ENVELOPES
    default_bytes: int = DEFAULT_MAX_BYTES
    max_envelopes: int = MAX_ENVELOPES
    max_bytes: int = MAX_BYTES

    def envelopes(self, asked: int) -> int:
        return min(asked or self.default_envelopes, self.max_envelopes)

    def bytes(self, asked: int) -> int:
        return min(asked or self.default_bytes, self.max_bytes)


@dataclass(frozen=True)
class Head:
    origin: str
    audience: str
    seq: int
    hash: bytes


@dataclass(frozen=True)
class Stored:
    """One envelope of the log, as the store hands it out."""

    id: int
    origin: str
    audience: str
    seq: int
    kind: int
    hash: bytes  # what it was stored under
    header: bytes
    ciphertext: bytes
    signature: bytes
    received_at: datetime

    @property
    def size(self) -> int:
        return len(self.header) + len(self.ciphertext) + len(self.signature)

    def envelope(self) -> epb.Envelope:
        return epb.Envelope(header=self.header, ciphertext=self.ciphertext, signature=self.signature)


# Per stream: (after, upto], the seqs a peer lacks.
Ranges = Mapping[Stream, tuple[int, int]]


class EnvelopeReader(Protocol):
    def __call__(self, ranges: Ranges, *, kinds: Collection[int] = (), limit: int) -> Iterable[Stored]:
        """The envelopes in `ranges` (only of `kinds`, if given), at most `limit`,
        in (origin, audience, seq, id) order, read lazily."""
        ...


class OutboxStore(Protocol):
    """What the outbox reads: the heads of the log, and ranges of it."""

    def heads(self, origin: str = "") -> list[Head]:
        """Every stream's head (only `origin`'s, if given), by (origin, audience)."""
        ...

    def reading(self) -> AbstractContextManager[EnvelopeReader]:
        """One consistent read of the log, for the queries of one batch."""
        ...

    def ids_of(self, keys: Sequence[tuple[str, str, int]]) -> list[int]:
        """The ids of the envelopes at these (origin, audience, seq)."""
        ...


class SentRefusals(Protocol):
    """Refusals of what we sent (node: `StreamRefusals` in the `by_peer` direction)."""

    def waiting(self, peer: str, theirs: Vector) -> set[Stream]:
        """Streams to hold back from `peer` now (and forget those it has healed)."""
        ...

    def note(self, peer: str, refusals: Sequence[Refused]) -> object:
        """Remember (and alarm about) envelopes `peer` refused."""
        ...


class CustodyVoucher(Protocol):
    """Custody receipts for envelopes signed by keys that have ended."""

    def ended(self) -> dict[tuple[str, str], datetime]:
        """(origin, key id) -> when the key ended."""
        ...

    def vouch(
        self, runs: dict[Stream, list[Stored]], ended: dict[tuple[str, str], datetime], now: datetime
    ) -> tuple[list[sync_pb2.SignedReceipt], dict[Stream, int]]:
        """Receipts for `runs` (per stream, what is about to be sent, in seq
        order), and where to cut a run so its last envelope is vouched for."""
        ...


@dataclass(frozen=True)
class Batch:
    envelopes: list[epb.Envelope]
    more: bool
    size: int
    receipts: list[sync_pb2.SignedReceipt] = field(default_factory=list)


class SyncSource:
    """Also the sender's side of refusals: `waiting` holds back the streams a
    peer refused an envelope of, `refused` remembers new refusals and checks
    our own copy (a damaged one is quarantined through `on_damaged`, which the
    node wires to `node.storage.quarantine.Quarantine.check`/`quarantine`)."""

    def __init__(
        self,
        node_id: str,
        store: OutboxStore,
        topology: Callable[[], Topology | None],
        refusals: SentRefusals | None = None,
        caps: Callable[[], BatchCaps] = BatchCaps,
    ) -> None:
        self.node_id = node_id
        self.store = store
        self.topology = topology
        self.refusals = refusals
        # Read at each batch (the node's limits may be changed at run time by tests).
        self.caps = caps
        # (envelope id -> reason, found_by): quarantine damaged envelopes we hold.
        self.on_damaged: Callable[[dict[int, str], str], object] | None = None
        # (envelope ids, found_by): check these of ours, quarantine the damaged ones.
        self.on_suspect: Callable[[Sequence[int], str], object] | None = None
        # Custody receipts for envelopes signed by keys that have ended (None: none sent).
        self.custody: CustodyVoucher | None = None
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def waiting(self, peer: str, theirs: Vector) -> set[Stream]:
        if self.refusals is None:
            return set()
        return self.refusals.waiting(peer, theirs)

    def refused(self, peer: str, refusals: Sequence[Refused]) -> None:
        if self.refusals is not None:
            self.refusals.note(peer, refusals)
        damaged = [r for r in refusals if r.code in DAMAGED]
        if damaged and self.on_suspect is not None:
            ids = self.store.ids_of([(r.origin, r.audience, r.seq) for r in damaged])
            self.on_suspect(ids, "refusal")

    def heads(self, origin: str = "") -> list[Head]:
        return self.store.heads(origin)

    def entitled(self, peer: str, audience: str) -> bool:
        topo = self.topology()
        return topo is not None and topo.entitled(self.node_id, peer, audience)

    def vector(self, peer: str | None = None, origin: str = "") -> list[Head]:
        """My heads; for a peer, only the streams it is entitled to see."""
        return [h for h in self.heads(origin) if peer is None or self.entitled(peer, h.audience)]

    def batch_for(
        self,
        peer: str,
        have: Vector,
        *,
        max_envelopes: int = 0,
        max_bytes: int = 0,
        origin: str = "",
        exclude: Collection[Stream] = (),
        urgent_first: bool = True,
    ) -> Batch:
        """What `peer` lacks, given the vector it stated, urgent kinds first
        (unless not `urgent_first`: then each stream's run after the peer's
        head, in order, so the next batch starts where this one ended).
        Streams in `exclude` are left out. Each envelope is checked against its
        stored hash as it is read: a damaged one is never sent (it goes to
        quarantine and its stream stops there for this batch)."""
        mine: dict[Stream, int] = {
            (h.origin, h.audience): h.seq
            for h in self.vector(peer, origin)
            if (h.origin, h.audience) not in exclude
        }
        todo = lacking(mine, have)
        if not todo:
            return Batch([], False, 0)
        caps = self.caps()
        limit, budget = caps.envelopes(max_envelopes), caps.bytes(max_bytes)
        ranges = {s: (after, mine[s]) for s, after in todo.items()}
        picked = Picked(limit, budget)
        with self.store.reading() as read:
            # Urgent kinds first, but never more than half a batch of them: the rest
            # is each stream's contiguous run after the peer's head, so its head
            # always moves (a long tail of alerts must not starve the seizure before it).
            passes: list[tuple[Collection[int], int]] = [((), limit + 1)]
            if urgent_first:
                passes.insert(0, (URGENT_KINDS, max(1, limit // 2)))
            for kinds, most in passes:
                for row in read(ranges, kinds=kinds, limit=most):
                    if not picked.take(row):
                        break
                if picked.full:
                    break
        if picked.damaged and self.on_damaged is not None:
            self.on_damaged(picked.damaged, "send")
        receipts: list[sync_pb2.SignedReceipt] = []
        if self.custody is not None and picked.rows:
            ended = self.custody.ended()
            if ended:
                receipts, cuts = self.custody.vouch(picked.runs(), ended, self.clock())
                if picked.cut(cuts):
                    return Batch(picked.out, True, picked.size, receipts)
        return Batch(picked.out, picked.full, picked.size, receipts)


class Picked:
    """The envelopes of one batch, within its count and byte budgets."""

    def __init__(self, limit: int, budget: int) -> None:
        self.limit, self.budget = limit, budget
        self.out: list[epb.Envelope] = []
        self.taken: set[int] = set()
        self.size = 0
        self.full = False
        self.damaged: dict[int, str] = {}
        self.stopped: set[Stream] = set()
        self.rows: list[Stored] = []

    def runs(self) -> dict[Stream, list[Stored]]:
        """The picked rows per stream, in seq order."""
        out: dict[Stream, list[Stored]] = {}
        for row in sorted(self.rows, key=lambda r: (r.origin, r.audience, r.seq)):
            out.setdefault((row.origin, row.audience), []).append(row)
        return out

    def cut(self, cuts: dict[Stream, int]) -> bool:
        """Drop what lies beyond each stream's cut; True if anything was dropped."""
        keep = [
            (row, env)
            for row, env in zip(self.rows, self.out, strict=True)
            if row.seq <= cuts.get((row.origin, row.audience), row.seq)
        ]
        if len(keep) == len(self.rows):
            return False
        self.rows = [r for r, _ in keep]
        self.out = [e for _, e in keep]
        self.size = sum(len(e.header) + len(e.ciphertext) + len(e.signature) for e in self.out)
        return True

    def take(self, row: Stored) -> bool:
        """Add `row`; False when the batch is full."""
        if row.id in self.taken or (row.origin, row.audience) in self.stopped:
            return True
        n = row.size
        if len(self.out) == self.limit or (self.out and self.size + n > self.budget):
            self.full = True
            return False
        envelope = row.envelope()
        if envelope_hash(envelope) != row.hash:
            self.damaged[row.id] = "its bytes no longer match the hash it was stored under"
            self.stopped.add((row.origin, row.audience))
            log.error(
                "damaged envelope found while sending", origin=row.origin, audience=row.audience, seq=row.seq
            )
            return True
        self.out.append(envelope)
        self.rows.append(row)
        self.taken.add(row.id)
        self.size += n
        return True
