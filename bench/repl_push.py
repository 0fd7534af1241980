"""Replication throughput (§1), its measured limit, and the empty round as the
history grows (§4): what `bench.replication` measures with plain
`LocalFederation.sync` rounds (the product's `sync_round`).

The limit calls the product's own functions in a loop, in process: the
sender's `SyncSource.batch_for` (read), then at the receiver
`Receiver.verify_batch` (verify) and `Receiver.apply` (which verifies the
same envelopes again, then stores them): store = apply - verify.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import NodeSpec, count_envelopes, make_seizures, share_to, step
from federation import vectors
from federation.outbox import DEFAULT_MAX_ENVELOPES
from federation.transport import sync_stub
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from gcn.v1 import sync_pb2
from node.clock import system_clock
from node.testing.local_federation import LocalFederation, LocalNode

THROUGHPUT_TARGET = 3_000.0  # envelopes/s, national → hub
EMPTY_TARGET_MS, FLAT_TARGET = 5.0, 1.5  # median ms of an empty round; largest / smallest
GLOBAL_HUB, HUB, NATIONAL, PORT = "WCO-GLOBAL", "RINEX-ESA", "KE", "KE-MBA"
SIDE_PUSH, SIDE_LIMIT = "TZ", "UG"  # fresh region:ESA members: the second push, the measured limit
REGION, WORLD, HOME = "region:ESA", "global", "national:KE"
HISTORY_POINTS = (0, 1_000, 5_000)  # plus --envelopes: when the empty round is measured
TIMEOUT = 60.0  # seconds, one sync call

# WCO-GLOBAL ← RINEX-ESA ← {KE ← KE-MBA, TZ, UG}
FEDERATION = (
    NodeSpec(GLOBAL_HUB, "global"),
    NodeSpec(HUB, "regional", region="ESA", upstreams=(GLOBAL_HUB,)),
    NodeSpec(NATIONAL, "national", country="KE", region="ESA", upstreams=(HUB,)),
    NodeSpec(PORT, "port", country="KE", region="ESA", upstreams=(NATIONAL,)),
    NodeSpec(SIDE_PUSH, "national", country="TZ", region="ESA", upstreams=(HUB,)),
    NodeSpec(SIDE_LIMIT, "national", country="UG", region="ESA", upstreams=(HUB,)),
)


@dataclass
class Options:
    envelopes: int
    small_batch: int
    latency_records: int
    spacing_s: float
    interval_s: float
    catchup: int
    empty_rounds: int
    database_url: str | None
    json_path: Path | None
    seed: int
    log_level: str
    quick: bool


@dataclass
class Transfer:
    """Envelopes moved from one node to another."""

    name: str
    envelopes: int
    seconds: float
    calls: int = 0
    bytes_sent: int = 0
    cpu_s: float = 0.0
    target: float | None = None

    @property
    def rate(self) -> float:
        return self.envelopes / self.seconds if self.seconds > 0 else 0.0

    @property
    def us(self) -> float:
        return self.seconds / self.envelopes * 1e6 if self.envelopes else 0.0

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.rate >= self.target


@dataclass
class Limit:
    """The receiving side of a push in process, without gRPC (see the module's doc)."""

    envelopes: int = 0
    batches: int = 0
    read_s: float = 0.0
    verify_s: float = 0.0
    apply_s: float = 0.0
    cpu_s: float = 0.0
    envelope_bytes: float = 0.0  # header + ciphertext + signature, mean

    @property
    def store_s(self) -> float:
        return self.apply_s - self.verify_s

    @property
    def rate(self) -> float:
        return self.envelopes / self.apply_s if self.apply_s > 0 else 0.0

    def us(self, seconds: float) -> float:
        return seconds / self.envelopes * 1e6 if self.envelopes else 0.0


@dataclass
class EmptyRound:
    """Rounds between two synced nodes (push + pull, nothing to move)."""

    history_national: int  # envelopes in the national node's log
    history_hub: int
    seconds: list[float]
    calls: int
    bytes_sent: int
    bytes_received: int
    vector_bytes: int  # the GetVector reply (not in RoundResult)
    pull_request_bytes: int  # the PullRequest, our vector (not in RoundResult)
    moved: int = 0  # envelopes pushed or pulled during the rounds (0 expected)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1e3

    @property
    def p90_ms(self) -> float:
        if len(self.seconds) < 2:
            return self.median_ms
        return statistics.quantiles(self.seconds, n=10, method="inclusive")[8] * 1e3


@dataclass
class Pushes:
    pushes: list[Transfer] = field(default_factory=list)
    limit: Limit = field(default_factory=Limit)
    empty: list[EmptyRound] = field(default_factory=list)
    imports: list[Transfer] = field(default_factory=list)  # import_seizures, informative


def import_at(node: LocalNode, seizures: Sequence[rec.Seizure]) -> Transfer:
    cpu0, start = time.process_time(), time.perf_counter()
    stored = node.app.records.import_seizures(seizures, batch_size=1000)
    seconds = time.perf_counter() - start
    return Transfer(f"import_seizures at {node.node_id}", stored, seconds, cpu_s=time.process_time() - cpu0)


def timed_sync(
    fed: LocalFederation, a: str, b: str, name: str, max_envelopes: int = 0, target: float | None = None
) -> Transfer:
    """One `sync_round` from a's side (push what b lacks, pull what a lacks)."""
    cpu0, start = time.process_time(), time.perf_counter()
    r = fed.sync(a, b, max_envelopes=max_envelopes)
    seconds = time.perf_counter() - start
    return Transfer(name, r.pushed, seconds, r.calls, r.bytes_sent, time.process_time() - cpu0, target)


def merge(name: str, parts: Sequence[Transfer], target: float | None) -> Transfer:
    return Transfer(
        name,
        sum(p.envelopes for p in parts),
        sum(p.seconds for p in parts),
        sum(p.calls for p in parts),
        sum(p.bytes_sent for p in parts),
        sum(p.cpu_s for p in parts),
        target,
    )


def empty_rounds(fed: LocalFederation, rounds: int) -> EmptyRound:
    ke, hub = fed.nodes[NATIONAL], fed.nodes[HUB]
    for _ in range(3):  # warm: anything left over moves now, not during the timing
        fed.sync(NATIONAL, HUB)
    seconds, results = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        results.append(fed.sync(NATIONAL, HUB))
        seconds.append(time.perf_counter() - start)
    theirs = sync_stub(ke.channel(hub)).GetVector(sync_pb2.GetVectorRequest(), timeout=TIMEOUT)
    have = vectors.to_proto((o, a, q, b"") for (o, a), q in sorted(ke.app.receiver.local_vector().items()))
    last = results[-1]
    return EmptyRound(
        count_envelopes(ke),
        count_envelopes(hub),
        seconds,
        last.calls,
        last.bytes_sent,
        last.bytes_received,
        theirs.ByteSize(),
        sync_pb2.PullRequest(have=have).ByteSize(),
        sum(r.pushed + r.pulled for r in results),
    )


def national_to_hub(fed: LocalFederation, o: Options) -> Pushes:
    """KE records `--envelopes` seizures, each one envelope to region:ESA, in steps;
    after each step one sync_round pushes them to the hub, then empty rounds are timed."""
    out = Pushes()
    ke = fed.nodes[NATIONAL]
    ke.app.records.policy = share_to(REGION)
    seizures = make_seizures(o.seed, o.envelopes)
    points = sorted({p for p in HISTORY_POINTS if p < o.envelopes} | {o.envelopes})
    done, pushes = 0, []
    for point in points:
        if point > done:
            step(f"{NATIONAL}: import_seizures of {point - done:,} seizures (one {REGION} envelope each)")
            out.imports.append(import_at(ke, seizures[done:point]))
            step(f"push {NATIONAL} → {HUB}: {point - done:,} envelopes, default batch")
            pushes.append(timed_sync(fed, NATIONAL, HUB, "push"))
            done = point
        step(f"empty rounds {NATIONAL} ↔ {HUB}: {o.empty_rounds}, history {count_envelopes(ke):,} envelopes")
        out.empty.append(empty_rounds(fed, o.empty_rounds))
    name = f"push {NATIONAL} → {HUB}, batch {DEFAULT_MAX_ENVELOPES:,} (default)"
    out.pushes.append(merge(name, pushes, THROUGHPUT_TARGET))
    step(f"push {NATIONAL} → {SIDE_PUSH} (a fresh {REGION} member): batch {o.small_batch}")
    name = f"push {NATIONAL} → {SIDE_PUSH}, batch {o.small_batch:,}"
    out.pushes.append(timed_sync(fed, NATIONAL, SIDE_PUSH, name, o.small_batch, THROUGHPUT_TARGET))
    step(f"measured limit: the same envelopes, verify_batch and apply at {SIDE_LIMIT} in process")
    out.limit = measure_limit(fed.nodes[NATIONAL], fed.nodes[SIDE_LIMIT])
    return out


def read_batches(source: LocalNode, peer: LocalNode, limit: Limit) -> list[list[epb.Envelope]]:
    """What a push would send `peer`, batch by batch (default batch size), as the
    sender's `SyncSource.batch_for` reads it; the reading is timed."""
    have = peer.app.receiver.local_vector()
    batches: list[list[epb.Envelope]] = []
    while True:
        start = time.perf_counter()
        batch = source.app.sync_source.batch_for(peer.node_id, have)
        limit.read_s += time.perf_counter() - start
        if not batch.envelopes:
            return batches
        batches.append(list(batch.envelopes))
        for envelope in batch.envelopes:
            h = epb.EnvelopeHeader.FromString(envelope.header)
            have[(h.origin, h.audience)] = max(have.get((h.origin, h.audience), 0), h.seq)
        if not batch.more:
            return batches


def measure_limit(source: LocalNode, target: LocalNode) -> Limit:
    limit = Limit()
    batches = read_batches(source, target, limit)
    receiver = target.app.receiver
    limit.batches = len(batches)
    limit.envelopes = sum(len(b) for b in batches)
    if not limit.envelopes:
        return limit
    limit.envelope_bytes = statistics.fmean(
        len(e.header) + len(e.ciphertext) + len(e.signature) for b in batches for e in b
    )
    stored = 0
    for batch in batches:
        now = system_clock()
        start = time.perf_counter()
        receiver.verify_batch(batch, source.node_id, now)
        verified, cpu0 = time.perf_counter(), time.process_time()
        stored += receiver.apply(batch, source.node_id, now).stored
        limit.verify_s += verified - start
        limit.apply_s += time.perf_counter() - verified
        limit.cpu_s += time.process_time() - cpu0
    if stored != limit.envelopes:
        step(f"[yellow]limit: {stored} of {limit.envelopes} envelopes stored (duplicates?)[/yellow]")
    return limit
