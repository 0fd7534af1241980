"""The sending side of replication: this node's version vector, and the
envelopes a peer lacks from the streams it is entitled to.

A sync with nothing to send costs one read of the `streams` table (the
vector), whatever the size of the log: the log itself is only read for
streams where the peer is behind. Alerts, key messages, retractions and
corrections go before bulk seizure history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, or_, select

from federation.routing import Topology
from federation.vectors import Stream, Vector, lacking
from gcn.v1 import envelope_pb2 as epb
from node.db import Database
from node.log import as_envelope
from node.models import EnvelopeRow, StreamRow

DEFAULT_MAX_ENVELOPES = 2000
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
_URGENT = (epb.RECORD_KIND_KEY, epb.RECORD_KIND_ALERT, epb.RECORD_KIND_RETRACTION, epb.RECORD_KIND_CORRECTION)


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


class SyncSource:
    def __init__(self, node_id: str, db: Database, topology: Callable[[], Topology | None]) -> None:
        self.node_id = node_id
        self.db = db
        self.topology = topology

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
        self, peer: str, have: Vector, *, max_envelopes: int = 0, max_bytes: int = 0, origin: str = ""
    ) -> Batch:
        """What `peer` lacks, given the vector it stated, urgent kinds first."""
        mine: dict[Stream, int] = {(h.origin, h.audience): h.seq for h in self.vector(peer, origin)}
        todo = lacking(mine, have)
        if not todo:
            return Batch([], False, 0)
        limit = max_envelopes or DEFAULT_MAX_ENVELOPES
        budget = max_bytes or DEFAULT_MAX_BYTES
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
        urgent_stmt = (
            select(EnvelopeRow)
            .where(where, EnvelopeRow.kind.in_(_URGENT))
            .order_by(EnvelopeRow.origin, EnvelopeRow.audience, EnvelopeRow.seq, EnvelopeRow.id)
            .limit(max(1, limit // 2))
        )
        in_order = (
            select(EnvelopeRow)
            .where(where)
            .order_by(EnvelopeRow.origin, EnvelopeRow.audience, EnvelopeRow.seq, EnvelopeRow.id)
            .limit(limit + 1)
        )
        out: list[epb.Envelope] = []
        taken: set[int] = set()
        size = 0
        with self.db.read() as s:
            for row in (*s.scalars(urgent_stmt), *s.scalars(in_order)):
                if row.id in taken:
                    continue
                n = len(row.header) + len(row.ciphertext) + len(row.signature)
                if len(out) == limit or (out and size + n > budget):
                    return Batch(out, True, size)
                out.append(as_envelope(row))
                taken.add(row.id)
                size += n
        return Batch(out, False, size)
