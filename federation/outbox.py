"""The sending side of replication: this node's version vector, and the
envelopes a peer lacks from the streams it is entitled to.

A sync with nothing to send costs one read of the `streams` table (the
vector), whatever the size of the log: the log itself is only read for
streams where the peer is behind. Alerts, key messages, retractions and
corrections go before bulk seizure history.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select

from crypto.envelope import envelope_hash
from federation.refusal import BY_PEER, DAMAGED, Refused
from federation.routing import Topology
from federation.vectors import Stream, Vector, lacking
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import sync_pb2
from node.domain import limits
from node.logging import get_logger
from node.storage.custody import CustodyVouch
from node.storage.db import Database
from node.storage.envelope_log import as_envelope
from node.storage.models import EnvelopeRow, StreamRow
from node.storage.refusals import StreamRefusals

log = get_logger(__name__)
# A batch's defaults and caps, whatever the caller states (node/domain/limits.py).
DEFAULT_MAX_ENVELOPES = limits.PULL_DEFAULT_ENVELOPES
DEFAULT_MAX_BYTES = limits.PULL_DEFAULT_BYTES
# Sent first: key messages and urgent records (version 2 header class, or a
# version 1 header's own kind).
_URGENT = (
    epb.RECORD_KIND_KEY,
    epb.RECORD_KIND_SEALED_URGENT,
    epb.RECORD_KIND_ALERT,
    epb.RECORD_KIND_RETRACTION,
    epb.RECORD_KIND_CORRECTION,
)


@dataclass(frozen=True)
class Head:
    origin: str
    audience: str
    seq: int
    hash: bytes


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
        db: Database,
        topology: Callable[[], Topology | None],
        refusals: StreamRefusals | None = None,
    ) -> None:
        self.node_id = node_id
        self.db = db
        self.topology = topology
        self.refusals = refusals
        # (envelope id -> reason, found_by): quarantine damaged envelopes we hold.
        self.on_damaged: Callable[[dict[int, str], str], object] | None = None
        # (envelope ids, found_by): check these of ours, quarantine the damaged ones.
        self.on_suspect: Callable[[Sequence[int], str], object] | None = None
        # Custody receipts for envelopes signed by keys that have ended (None: none sent).
        self.custody: CustodyVouch | None = None
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def waiting(self, peer: str, theirs: Vector) -> set[Stream]:
        if self.refusals is None:
            return set()
        return self.refusals.waiting(peer, BY_PEER, theirs)

    def refused(self, peer: str, refusals: Sequence[Refused]) -> None:
        if self.refusals is not None:
            self.refusals.note(peer, BY_PEER, refusals)
        damaged = [r for r in refusals if r.code in DAMAGED]
        if damaged and self.on_suspect is not None:
            with self.db.read() as s:
                ids = list(
                    s.scalars(
                        select(EnvelopeRow.id).where(
                            or_(
                                *(
                                    and_(
                                        EnvelopeRow.origin == r.origin,
                                        EnvelopeRow.audience == r.audience,
                                        EnvelopeRow.seq == r.seq,
                                    )
                                    for r in damaged
                                )
                            )
                        )
                    )
                )
            self.on_suspect(ids, "refusal")

    def heads(self, origin: str = "") -> list[Head]:
        stmt = select(StreamRow).order_by(StreamRow.origin, StreamRow.audience)
        if origin:
            stmt = stmt.where(StreamRow.origin == origin)
        with self.db.read() as s:
            return [Head(r.origin, r.audience, r.head_seq, r.head_hash) for r in s.scalars(stmt)]

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
        limit = min(max_envelopes or limits.PULL_DEFAULT_ENVELOPES, limits.PULL_MAX_ENVELOPES)
        budget = min(max_bytes or limits.PULL_DEFAULT_BYTES, limits.PULL_MAX_BYTES)
        ranges = [
            and_(
                EnvelopeRow.origin == o,
                EnvelopeRow.audience == a,
                EnvelopeRow.seq > after,
                EnvelopeRow.seq <= mine[(o, a)],
            )
            for (o, a), after in todo.items()
        ]
        where = or_(*ranges)
        # Urgent kinds first, but never more than half a batch of them: the rest
        # is each stream's contiguous run after the peer's head, so its head
        # always moves (a long tail of alerts must not starve the seizure before it).
        order = (EnvelopeRow.origin, EnvelopeRow.audience, EnvelopeRow.seq, EnvelopeRow.id)
        urgent_stmt = (
            select(EnvelopeRow)
            .where(where, EnvelopeRow.kind.in_(_URGENT))
            .order_by(*order)
            .limit(max(1, limit // 2))
            .execution_options(yield_per=256)
        )
        in_order = (
            select(EnvelopeRow)
            .where(where)
            .order_by(*order)
            .limit(limit + 1)
            .execution_options(yield_per=256)
        )
        picked = _Picked(limit, budget)
        with self.db.read() as s:
            for stmt in (urgent_stmt, in_order) if urgent_first else (in_order,):
                for row in s.scalars(stmt):
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


class _Picked:
    """The envelopes of one batch, within its count and byte budgets."""

    def __init__(self, limit: int, budget: int) -> None:
        self.limit, self.budget = limit, budget
        self.out: list[epb.Envelope] = []
        self.taken: set[int] = set()
        self.size = 0
        self.full = False
        self.damaged: dict[int, str] = {}
        self.stopped: set[Stream] = set()
        self.rows: list[EnvelopeRow] = []

    def runs(self) -> dict[Stream, list[EnvelopeRow]]:
        """The picked rows per stream, in seq order."""
        out: dict[Stream, list[EnvelopeRow]] = {}
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

    def take(self, row: EnvelopeRow) -> bool:
        """Add `row`; False when the batch is full."""
        if row.id in self.taken or (row.origin, row.audience) in self.stopped:
            return True
        n = len(row.header) + len(row.ciphertext) + len(row.signature)
        if len(self.out) == self.limit or (self.out and self.size + n > self.budget):
            self.full = True
            return False
        envelope = as_envelope(row)
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
