"""One synchronisation round with one peer: push what it lacks, pull what we lack.

Both directions are driven by version vectors, so a round with nothing to do
costs two small calls (the peer's vector, and a pull that comes back empty),
whatever the history size. Progress is the peer's own acknowledgement: a push
batch counts only once the peer answered it (after its commit), and pulled
batches are applied (committed) before the next pull states the new vector.
Nothing here holds state between rounds; the scheduler persists what it needs.

The local side is given as Protocols, so this module knows neither SQLAlchemy
nor gRPC servers; `node` wires the real ones and tests may use fakes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from federation import vectors
from federation.refusal import Refused
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import sync_pb2

MAX_BATCHES_PER_ROUND = 10_000


class Batch(Protocol):
    @property
    def envelopes(self) -> list[epb.Envelope]: ...

    @property
    def more(self) -> bool: ...

    @property
    def receipts(self) -> list[sync_pb2.SignedReceipt]: ...


class Source(Protocol):
    def batch_for(
        self,
        peer: str,
        have: vectors.Vector,
        *,
        max_envelopes: int = 0,
        max_bytes: int = 0,
        origin: str = "",
        exclude: Collection[vectors.Stream] = (),
    ) -> Batch: ...

    def waiting(self, peer: str, theirs: vectors.Vector) -> set[vectors.Stream]:
        """Streams not to send to `peer` now: it refused one of their envelopes
        and the retry is not due (and forget the refusals it has healed since)."""
        ...

    def refused(self, peer: str, refusals: Sequence[Refused]) -> None:
        """`peer` refused these envelopes we sent: remember, alarm, check our copies."""
        ...


class Applied(Protocol):
    @property
    def stored(self) -> int: ...

    @property
    def duplicates(self) -> int: ...

    @property
    def refused(self) -> list[Refused]: ...


class Sink(Protocol):
    def apply(
        self,
        envelopes: Sequence[epb.Envelope],
        caller: str,
        now: datetime,
        receipts: Sequence[sync_pb2.SignedReceipt] = (),
    ) -> Applied: ...

    def local_vector(self) -> vectors.Vector: ...

    def waiting_from(self, peer: str) -> set[vectors.Stream]:
        """Streams not to ask `peer` for now (we refused one of its envelopes)."""
        ...


@dataclass
class RoundResult:
    pushed: int = 0
    pulled: int = 0
    duplicates: int = 0
    refused: int = 0  # envelopes refused, either way
    bytes_sent: int = 0
    bytes_received: int = 0
    calls: int = 0
    their_vector: vectors.Vector | None = None  # the peer's vector after the push


def push(
    stub: Any, peer: str, source: Source, result: RoundResult, timeout: float, max_envelopes: int = 0
) -> None:
    """Send the peer every envelope it lacks and is entitled to, batch by batch.
    An envelope it refuses holds back only its own stream, for this round and
    (with backoff) the next ones; the other streams go on."""
    theirs = vectors.from_proto(stub.GetVector(sync_pb2.GetVectorRequest(), timeout=timeout))
    result.calls += 1
    result.their_vector = theirs
    held_back = source.waiting(peer, theirs)
    for _ in range(MAX_BATCHES_PER_ROUND):
        batch = source.batch_for(peer, theirs, max_envelopes=max_envelopes, exclude=held_back)
        if not batch.envelopes:
            return
        request = sync_pb2.PushRequest(envelopes=batch.envelopes, receipts=batch.receipts)
        reply = stub.Push(request, timeout=timeout)
        result.calls += 1
        result.pushed += reply.stored
        result.duplicates += reply.duplicates
        result.bytes_sent += request.ByteSize()
        for key, seq in vectors.from_proto(reply.heads).items():
            theirs[key] = max(theirs.get(key, 0), seq)
        refusals = [Refused.from_proto(r) for r in reply.refused]
        if refusals:
            result.refused += len(refusals)
            source.refused(peer, refusals)
            held_back |= {r.stream for r in refusals}
        if reply.stored == 0 and not refusals:
            # No progress (streams stalled behind an equivocation, or copies the
            # peer holds under a damaged index): those streams wait for the next
            # round; the others, sorted after them, still go in this one.
            held_back |= _streams(batch.envelopes)
        _skip_past(theirs, batch.envelopes, held_back)
        if not batch.more:
            return


def _streams(envelopes: Sequence[epb.Envelope]) -> set[vectors.Stream]:
    out = set()
    for env in envelopes:
        header = epb.EnvelopeHeader.FromString(env.header)
        out.add((header.origin, header.audience))
    return out


def _skip_past(theirs: vectors.Vector, sent: Sequence[epb.Envelope], held_back: set[vectors.Stream]) -> None:
    """Envelopes the peer stored out of order (behind a gap it still has) are not
    sent again in this round: move our view of its vector past what we sent."""
    for env in sent:
        header = epb.EnvelopeHeader.FromString(env.header)
        key = (header.origin, header.audience)
        if key not in held_back and header.seq == theirs.get(key, 0) + 1:
            theirs[key] = header.seq


def pull(
    stub: Any,
    peer: str,
    sink: Sink,
    now: datetime,
    result: RoundResult,
    timeout: float,
    max_envelopes: int = 0,
    origin: str = "",
) -> None:
    """Ask the peer for what we lack, apply each batch (committed) before the
    next. Streams we refused an envelope of from this peer are not asked for."""
    stalled: set[vectors.Stream] = set()  # streams that made no progress in this round
    for _ in range(MAX_BATCHES_PER_ROUND):
        have = vectors.to_proto((o, a, q, b"") for (o, a), q in sorted(sink.local_vector().items()))
        skip = sink.waiting_from(peer) | stalled
        exclude = [sync_pb2.StreamHead(origin=o, audience=a) for o, a in sorted(skip)]
        request = sync_pb2.PullRequest(have=have, max_envelopes=max_envelopes, origin=origin, exclude=exclude)
        reply = stub.Pull(request, timeout=timeout)
        result.calls += 1
        result.bytes_received += reply.ByteSize()
        stored = refused = 0
        if reply.envelopes:
            applied = sink.apply(list(reply.envelopes), peer, now, list(reply.receipts))
            stored, refused = applied.stored, len(applied.refused)
            result.pulled += stored
            result.duplicates += applied.duplicates
            result.refused += refused
        if not reply.more or not reply.envelopes:
            return
        if stored == 0 and not refused:  # no progress: ask for the other streams
            stalled |= _streams(reply.envelopes)


def sync_round(
    stub: Any,
    peer: str,
    source: Source,
    sink: Sink,
    now: datetime,
    *,
    timeout: float = 30.0,
    max_envelopes: int = 0,
) -> RoundResult:
    result = RoundResult()
    push(stub, peer, source, result, timeout, max_envelopes)
    pull(stub, peer, sink, now, result, timeout, max_envelopes)
    return result
