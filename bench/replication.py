"""Replication benchmark: how fast envelopes move between nodes over mutual TLS,
how long a new record takes to become readable two hops away, how fast a node
catches up after an outage, and what a sync with nothing to send costs as the
history grows.

    .venv/bin/python -m bench.replication [--quick] [--envelopes N] [--database-url URL] [--json PATH]

A `node.testing.local_federation.LocalFederation` on loopback (real keys, certificates,
mutual-TLS servers, one database per node), all nodes in this process.
bench/README.md says what each figure means. This is a report: nothing here
fails on timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

import grpc
from apscheduler.jobstores.base import JobLookupError
from google.protobuf.internal import api_implementation
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, make_url, select

from bench.ingest import CpuSample, ignore_node_env, make_seizures, peak_rss_bytes, quiet_logging
from bench.schemas import PostgresSchemas
from federation import vectors
from federation.outbox import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENVELOPES
from federation.peers import Peer
from federation.policy import Share
from federation.receive import ApplyResult, Receiver
from federation.scheduler import PeerState, PeerSync, SyncSettings
from federation.transport import peer_stub, sync_stub
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from gcn.v1 import sync_pb2
from node.clock import system_clock
from node.logging import get_logger
from node.replication import Replication
from node.storage.models import EnvelopeRow
from node.storage.peer_state import DbPeerStateStore
from node.testing.local_federation import LocalFederation, LocalNode

THROUGHPUT_TARGET = 3_000.0  # envelopes/s, national → hub
P50_TARGET_S, P99_TARGET_S = 0.250, 1.0  # commit → readable two hops away
EMPTY_TARGET_MS, FLAT_TARGET = 5.0, 1.5  # median ms of an empty round; largest / smallest
GLOBAL_HUB, HUB, NATIONAL, PORT = "WCO-GLOBAL", "RINEX-ESA", "KE", "KE-MBA"
SIDE_PUSH, SIDE_LIMIT = "TZ", "UG"  # fresh region:ESA members: the second push, the measured limit
REGION, WORLD, HOME = "region:ESA", "global", "national:KE"
LATENCY_WARMUP = 5  # records through the chain before the latency is measured
HISTORY_POINTS = (0, 1_000, 5_000)  # plus --envelopes: when the empty round is measured
TIMEOUT = 60.0  # seconds, one sync call

console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
log = get_logger("bench.replication")


# -- figures ---------------------------------------------------------------------------------


@dataclass
class Transfer:
    """Envelopes moved from one node to another (by gRPC, or applied by hand)."""

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
    """The receiving side of a push, in process without gRPC: `verify_batch`, then
    the rest of `Receiver.apply` (the store), over the same envelopes; and what the
    sender's `batch_for` costs to read them."""

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
class Hop:
    name: str
    seconds: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float | None:
        if not self.seconds:
            return None
        if q >= 100:
            return max(self.seconds)
        if len(self.seconds) < 2:
            return self.seconds[0]
        return statistics.quantiles(self.seconds, n=100, method="inclusive")[int(q) - 1]


@dataclass
class Latency:
    records: int
    spacing_s: float
    interval_s: float
    hops: list[Hop]  # to the hub, hub to global, end to end (last)
    arrived: int = 0
    readable: int = 0
    rounds: dict[str, dict[str, int]] = field(default_factory=dict)  # link -> trigger -> rounds
    pokes_in_rounds: dict[str, int] = field(default_factory=dict)  # link -> pokes while a round ran
    round_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # link -> (median, max) ms
    poke_errors: dict[str, int] = field(default_factory=dict)  # node -> JobLookupError from poke
    carried: dict[str, int] = field(default_factory=dict)  # "push-on-commit"/"timer"/... -> records
    record_s: float = 0.0  # mean time of one record_seizure call at the national node

    @property
    def end_to_end(self) -> Hop:
        return self.hops[-1]

    @property
    def passed(self) -> bool:
        p50, p99 = self.end_to_end.percentile(50), self.end_to_end.percentile(99)
        return (
            p50 is not None
            and p99 is not None
            and p50 <= P50_TARGET_S
            and p99 <= P99_TARGET_S
            and self.arrived == self.records
        )


@dataclass
class Catchup:
    records: int
    import_s: float
    failed_attempt: str
    transfer: Transfer
    arrived: int = 0


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
class Report:
    options: Options
    machine: dict[str, Any]
    pushes: list[Transfer] = field(default_factory=list)
    limit: Limit = field(default_factory=Limit)
    latency: Latency | None = None
    catchup: Catchup | None = None
    empty: list[EmptyRound] = field(default_factory=list)
    imports: list[Transfer] = field(default_factory=list)  # import_seizures, informative
    bench_rss_bytes: int = 0


# -- the federation --------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedPolicy:
    """Every record to the same audiences (a test-style policy, whatever its TLP)."""

    share_list: tuple[Share, ...]

    def shares(self, kind: epb.RecordKind.ValueType, body: rec.RecordBody) -> list[Share]:
        return list(self.share_list)


def share_to(*audiences: str) -> FixedPolicy:
    return FixedPolicy(tuple(Share(a, epb.VIEW_FULL) for a in audiences))


class Databases:
    """Each node's database: a SQLite file in its directory (LocalFederation's
    default), or one PostgreSQL schema per node, dropped at the end."""

    def __init__(self, database_url: str | None) -> None:
        self.database_url = database_url
        self._schemas = PostgresSchemas(database_url, "gcn_bench_repl") if database_url else None

    def url_for(self, node_id: str) -> str:
        assert self._schemas is not None
        return self._schemas.url_for(node_id)

    def close(self) -> None:
        if self._schemas is not None:
            self._schemas.close()


def build_federation(base: Path, dbs: Databases) -> LocalFederation:
    """WCO-GLOBAL ← RINEX-ESA ← {KE ← KE-MBA, TZ, UG}; every node serves, keys delivered."""
    url_for = dbs.url_for if dbs.database_url else None
    fed = LocalFederation(base, system_clock, database_url=url_for)
    fed.add(GLOBAL_HUB, "global")
    fed.add(HUB, "regional", region="ESA", upstreams=[GLOBAL_HUB])
    fed.add(NATIONAL, "national", country="KE", region="ESA", upstreams=[HUB])
    fed.add(PORT, "port", country="KE", region="ESA", upstreams=[NATIONAL])
    fed.add(SIDE_PUSH, "national", country="TZ", region="ESA", upstreams=[HUB])
    fed.add(SIDE_LIMIT, "national", country="UG", region="ESA", upstreams=[HUB])
    fed.publish()
    fed.start()
    fed.sync_all(rounds=3)  # key messages reach every member
    return fed


def count_envelopes(node: LocalNode, origin: str | None = None, audience: str | None = None) -> int:
    stmt = select(func.count()).select_from(EnvelopeRow)
    if origin is not None:
        stmt = stmt.where(EnvelopeRow.origin == origin)
    if audience is not None:
        stmt = stmt.where(EnvelopeRow.audience == audience)
    with node.app.db.read() as s:
        return int(s.scalar(stmt) or 0)


def step(message: str) -> None:
    console.print(f"[dim]… {message}[/dim]")


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


# -- 1 and 4. national → hub, and the empty round as the history grows ----------------------


def empty_rounds(fed: LocalFederation, rounds: int) -> EmptyRound:
    ke, hub = fed.nodes[NATIONAL], fed.nodes[HUB]
    for _ in range(3):  # warm: anything left over moves now, not during the timing
        fed.sync(NATIONAL, HUB)
    seconds, results = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        results.append(fed.sync(NATIONAL, HUB))
        seconds.append(time.perf_counter() - start)
    stub = sync_stub(ke.channel(hub))
    theirs = stub.GetVector(sync_pb2.GetVectorRequest(), timeout=TIMEOUT)
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


def national_to_hub(fed: LocalFederation, o: Options, report: Report) -> None:
    """KE records `--envelopes` seizures, each one envelope to region:ESA, in steps;
    after each step one sync_round pushes them to the hub, then empty rounds are timed."""
    ke = fed.nodes[NATIONAL]
    ke.app.records.policy = share_to(REGION)
    seizures = make_seizures(o.seed, o.envelopes, system_clock().date())
    points = sorted({p for p in HISTORY_POINTS if p < o.envelopes} | {o.envelopes})
    done, pushes = 0, []
    for point in points:
        if point > done:
            step(f"{NATIONAL}: import_seizures of {point - done:,} seizures (one {REGION} envelope each)")
            report.imports.append(import_at(ke, seizures[done:point]))
            step(f"push {NATIONAL} → {HUB}: {point - done:,} envelopes, default batch")
            pushes.append(timed_sync(fed, NATIONAL, HUB, "push"))
            done = point
        step(f"empty rounds {NATIONAL} ↔ {HUB}: {o.empty_rounds}, history {count_envelopes(ke):,} envelopes")
        report.empty.append(empty_rounds(fed, o.empty_rounds))
    name = f"push {NATIONAL} → {HUB}, batch {DEFAULT_MAX_ENVELOPES:,} (default)"
    report.pushes.append(merge(name, pushes, THROUGHPUT_TARGET))
    step(f"push {NATIONAL} → {SIDE_PUSH} (a fresh {REGION} member): batch {o.small_batch}")
    name = f"push {NATIONAL} → {SIDE_PUSH}, batch {o.small_batch:,}"
    report.pushes.append(timed_sync(fed, NATIONAL, SIDE_PUSH, name, o.small_batch, THROUGHPUT_TARGET))
    step(f"measured limit: the same envelopes applied by hand at {SIDE_LIMIT} (verify_batch + store)")
    report.limit = measure_limit(fed.nodes[NATIONAL], fed.nodes[SIDE_LIMIT])


def read_batches(source: LocalNode, peer: LocalNode, limit: Limit) -> list[list[epb.Envelope]]:
    """What a push would send `peer`, batch by batch (default batch size), as the
    sender reads it; the reading is timed."""
    have = peer.app.receiver.local_vector()
    batches: list[list[epb.Envelope]] = []
    while True:
        start = time.perf_counter()
        batch = source.app.sync_source.batch_for(peer.node_id, have)
        limit.read_s += time.perf_counter() - start
        if not batch.envelopes:
            return batches
        batches.append(batch.envelopes)
        for envelope in batch.envelopes:
            h = epb.EnvelopeHeader.FromString(envelope.header)
            have[(h.origin, h.audience)] = max(have.get((h.origin, h.audience), 0), h.seq)
        if not batch.more:
            return batches


@contextmanager
def verify_timer(receiver: Receiver) -> Iterator[list[float]]:
    """Add up the time `Receiver.apply` spends in `verify_batch`."""
    original = receiver.verify_batch
    spent = [0.0]

    def timed(envelopes: Sequence[epb.Envelope], caller: str, now: datetime) -> Any:
        start = time.perf_counter()
        try:
            return original(envelopes, caller, now)
        finally:
            spent[0] += time.perf_counter() - start

    with patch.object(receiver, "verify_batch", timed):
        yield spent


def measure_limit(source: LocalNode, target: LocalNode) -> Limit:
    limit = Limit()
    batches = read_batches(source, target, limit)
    receiver = target.app.receiver
    limit.batches = len(batches)
    limit.envelopes = sum(len(b) for b in batches)
    limit.envelope_bytes = statistics.fmean(
        len(e.header) + len(e.ciphertext) + len(e.signature) for b in batches for e in b
    )
    stored = 0
    with verify_timer(receiver) as verified:
        cpu0 = time.process_time()
        for batch in batches:
            start = time.perf_counter()
            stored += receiver.apply(batch, source.node_id, system_clock()).stored
            limit.apply_s += time.perf_counter() - start
        limit.cpu_s = time.process_time() - cpu0
    limit.verify_s = verified[0]
    if stored != limit.envelopes:
        console.print(f"[yellow]limit: {stored} of {limit.envelopes} envelopes stored (duplicates?)[/yellow]")
    return limit


# -- 2. commit → readable, national → hub → global hub ---------------------------------------


@dataclass
class Round:
    start: float
    end: float
    trigger: str  # see TracedPeerSync.run


@dataclass
class Link:
    """The rounds one node's scheduler ran with one peer, and the pokes it got."""

    rounds: list[Round] = field(default_factory=list)
    running: bool = False
    poked: bool = False  # a poke came while no round ran
    poked_in_round: bool = False  # a poke came while this round ran
    rerun_due: bool = False  # the last round got a poke while it ran
    pokes_in_rounds: int = 0

    def poke(self) -> None:
        if self.running:
            self.pokes_in_rounds += 1
            self.poked_in_round = True
        else:
            self.poked = True

    def carrier(self, at: float) -> str:
        """The trigger of the round during which something arrived at the peer."""
        for r in self.rounds:
            if r.start <= at <= r.end:
                return r.trigger
        return "unknown"


PUSHED = frozenset({"commit", "rerun"})  # the rounds a commit brought forward


@dataclass
class TracedPeerSync(PeerSync):
    link: Link = field(default_factory=Link)

    def run(self, now: datetime) -> PeerState:
        """A round is "start" (the scheduler's first), "commit" (a poke came while
        none ran), "rerun" (it follows at once a round during which a poke came),
        or "timer" (none of these: the interval, or a poke the scheduler dropped)."""
        link, start = self.link, time.perf_counter()
        trigger = self._trigger(start)
        link.poked = link.poked_in_round = False
        link.running = True
        try:
            return super().run(now)
        finally:
            link.running = False
            link.rerun_due = link.poked_in_round
            link.rounds.append(Round(start, time.perf_counter(), trigger))

    def _trigger(self, start: float) -> str:
        link = self.link
        if not link.rounds:
            return "start"
        if link.poked:
            return "commit"
        soon = start - link.rounds[-1].end < self.settings.interval / 2
        return "rerun" if link.rerun_due and soon else "timer"


class TracedReplication(Replication):
    """A node's real replication, each PeerSync's rounds and pokes recorded."""

    def __init__(self, node: LocalNode, settings: SyncSettings) -> None:
        super().__init__(node.app, node.tls, settings)
        self.links: dict[str, Link] = {}
        self.poke_errors = 0

    def peer_syncs(self) -> list[PeerSync]:
        traced: list[PeerSync] = []
        for ps in super().peer_syncs():
            link = self.links.setdefault(ps.peer.node_id, Link())
            traced.append(TracedPeerSync(**{f.name: getattr(ps, f.name) for f in fields(ps)}, link=link))
        return traced

    def start_traced(self) -> None:
        """Start; each commit's poke goes through `_poke` (in place of `scheduler.poke`)."""
        self.poke_errors = 0
        scheduler = self.start()
        for listeners in (self.app.records.on_commit, self.app.receiver.on_commit):
            listeners[listeners.index(scheduler.poke)] = self._poke

    def _poke(self) -> None:
        assert self.scheduler is not None
        for link in self.links.values():
            link.poke()
        try:
            self.scheduler.poke()
        except JobLookupError:
            # The job fired between poke's get_job and modify: SyncScheduler.poke raises,
            # and the caller's record_seizure (or the peer's Push) fails after its commit.
            self.poke_errors += 1

    def stop_traced(self) -> None:
        self.stop()
        for listeners in (self.app.records.on_commit, self.app.receiver.on_commit):
            if self._poke in listeners:
                listeners.remove(self._poke)


class Arrivals:
    """When each record became readable at a node: the commit of the apply that
    stored its envelope (a listener first in `receiver.on_commit`)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._local = threading.local()

    def _committed(self) -> None:
        self._local.at = time.perf_counter()

    def _apply(
        self,
        original: Callable[..., ApplyResult],
        envelopes: Sequence[epb.Envelope],
        caller: str,
        now: datetime,
    ) -> ApplyResult:
        self._local.at = None
        result = original(envelopes, caller, now)
        at = self._local.at or time.perf_counter()
        if result.stored:
            for envelope in envelopes:
                self.at.setdefault(epb.EnvelopeHeader.FromString(envelope.header).record_id, at)
        return result

    @contextmanager
    def watching(self, receiver: Receiver) -> Iterator[Arrivals]:
        receiver.on_commit.insert(0, self._committed)
        try:
            with patch.object(receiver, "apply", partial(self._apply, receiver.apply)):
                yield self
        finally:
            receiver.on_commit.remove(self._committed)


def wait_until(predicate: Callable[[], bool], timeout: float, poll: float = 0.001) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()


def record_spaced(
    ke: LocalNode, seizures: Sequence[rec.Seizure], spacing: float
) -> tuple[dict[str, float], float]:
    """Record one seizure every `spacing` seconds; when each record_seizure returned."""
    sent: dict[str, float] = {}
    spent = 0.0
    begin = time.perf_counter()
    for i, seizure in enumerate(seizures):
        delay = begin + i * spacing - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        start = time.perf_counter()
        record_id = ke.app.records.record_seizure(seizure).record_id
        sent[record_id] = time.perf_counter()
        spent += sent[record_id] - start
    return sent, spent / max(1, len(seizures))


def latency(fed: LocalFederation, o: Options) -> Latency:
    ke, hub, top = fed.nodes[NATIONAL], fed.nodes[HUB], fed.nodes[GLOBAL_HUB]
    ke.app.records.policy = share_to(WORLD)
    settings = SyncSettings(interval=o.interval_s, backoff_initial=1.0, backoff_max=5.0, timeout=TIMEOUT)
    reps = {n.node_id: TracedReplication(n, settings) for n in (top, hub, ke)}
    at_hub, at_top = Arrivals(), Arrivals()
    today = system_clock().date()
    warmup = make_seizures(o.seed - 1, LATENCY_WARMUP, today)
    seizures = make_seizures(o.seed + 1, o.latency_records, today)
    result = Latency(o.latency_records, o.spacing_s, o.interval_s, [])
    with at_hub.watching(hub.app.receiver), at_top.watching(top.app.receiver):
        for rep in reps.values():
            rep.start_traced()
        try:
            links = [link for rep in reps.values() for link in rep.links.values()]
            wait_until(lambda: all(link.rounds for link in links), TIMEOUT, 0.01)
            step(f"latency: {LATENCY_WARMUP} warm-up records through {NATIONAL} → {HUB} → {GLOBAL_HUB}")
            warm, _ = record_spaced(ke, warmup, o.spacing_s)
            wait_until(lambda: all(r in at_top.at for r in warm), 3 * o.interval_s + 10, 0.01)
            step(f"latency: {o.latency_records} records, one every {o.spacing_s * 1e3:.0f} ms")
            sent, result.record_s = record_spaced(ke, seizures, o.spacing_s)
            wait_until(lambda: all(r in at_top.at for r in sent), 3 * o.interval_s + 10, 0.01)
        finally:
            for rep in reps.values():
                rep.stop_traced()
    first, second = reps[NATIONAL].links[HUB], reps[HUB].links[GLOBAL_HUB]
    result.hops = [
        Hop(f"{NATIONAL} → {HUB}"),
        Hop(f"{HUB} → {GLOBAL_HUB}"),
        Hop(f"{NATIONAL} → {GLOBAL_HUB}"),
    ]
    carried: Counter[str] = Counter()
    for record_id, t0 in sent.items():
        t1, t2 = at_hub.at.get(record_id), at_top.at.get(record_id)
        if t1 is None or t2 is None:
            continue
        result.hops[0].seconds.append(t1 - t0)
        result.hops[1].seconds.append(t2 - t1)
        result.hops[2].seconds.append(t2 - t0)
        triggers = {first.carrier(t1), second.carrier(t2)}
        carried["push-on-commit" if triggers <= PUSHED else "+".join(sorted(triggers - PUSHED))] += 1
    result.arrived = len(result.end_to_end.seconds)
    result.readable = sum(readable(top, r) for r in sent)
    result.carried = dict(carried)
    result.poke_errors = {name: rep.poke_errors for name, rep in reps.items()}
    for name, link in ((f"{NATIONAL} → {HUB}", first), (f"{HUB} → {GLOBAL_HUB}", second)):
        result.rounds[name] = dict(Counter(r.trigger for r in link.rounds))
        result.pokes_in_rounds[name] = link.pokes_in_rounds
        durations = [(x.end - x.start) * 1e3 for x in link.rounds if x.trigger != "start"] or [0.0]
        result.round_ms[name] = (round(statistics.median(durations), 1), round(max(durations), 1))
    return result


def readable(node: LocalNode, record_id: str) -> bool:
    try:
        return node.app.reader.get(record_id).WhichOneof("body") is not None
    except Exception:
        return False


# -- 3. catch-up after an outage --------------------------------------------------------------


def port_peer_sync(fed: LocalFederation) -> PeerSync:
    """The port's PeerSync with its national node, as its scheduler runs it."""
    port, ke = fed.nodes[PORT], fed.nodes[NATIONAL]
    return PeerSync(
        Peer(NATIONAL, ke.endpoint, upstream=True),
        lambda: peer_stub(port.channel(ke)),
        port.app.sync_source,
        port.app.receiver,
        DbPeerStateStore(port.app.db),
        SyncSettings(interval=30, backoff_initial=1, backoff_max=60, timeout=TIMEOUT),
        log,
        reset=partial(port.drop_channel, NATIONAL),
    )


def catchup(fed: LocalFederation, o: Options) -> Catchup:
    port, ke = fed.nodes[PORT], fed.nodes[NATIONAL]
    port.app.records.policy = share_to(HOME)
    step(f"catch-up: {PORT} takes what {NATIONAL} holds for it first (not timed)")
    fed.sync(PORT, NATIONAL)
    ps = port_peer_sync(fed)
    ke.stop()
    step(f"catch-up: {NATIONAL} stopped; {PORT} records {o.catchup:,} seizures")
    failed = ps.run(system_clock())
    seizures = make_seizures(o.seed + 2, o.catchup, system_clock().date())
    imported = import_at(port, seizures)
    before = count_envelopes(ke, PORT, HOME)
    ke.start()
    step(f"catch-up: {NATIONAL} back; one PeerSync.run")
    was = ps.state()
    cpu0, start = time.process_time(), time.perf_counter()
    state = ps.run(system_clock())
    seconds = time.perf_counter() - start
    transfer = Transfer(
        f"catch-up {PORT} → {NATIONAL}: one PeerSync.run",
        state.envelopes_sent - was.envelopes_sent,
        seconds,
        bytes_sent=state.bytes_sent - was.bytes_sent,
        cpu_s=time.process_time() - cpu0,
    )
    if state.failures:
        console.print(f"[yellow]catch-up round failed: {state.last_error}[/yellow]")
    arrived = count_envelopes(ke, PORT, HOME) - before
    return Catchup(o.catchup, imported.seconds, failed.last_error.split(":")[0], transfer, arrived)


# -- the run ---------------------------------------------------------------------------------


def machine_facts(o: Options) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "protobuf_backend": api_implementation.Type(),
        "grpc": grpc.__version__,
        "database": "postgresql" if o.database_url else "sqlite (temp dir)",
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def run_all(o: Options) -> Report:
    report = Report(o, machine_facts(o))
    cpu_start, wall_start = CpuSample.now(), time.perf_counter()
    dbs = Databases(o.database_url)
    with tempfile.TemporaryDirectory(prefix="gcn-bench-repl-") as tmp:
        try:
            step("federation: 6 nodes, mutual TLS on loopback, keys delivered")
            fed = build_federation(Path(tmp), dbs)
            try:
                report.latency = latency(fed, o)  # first: the scheduler rounds stay small
                fed.sync_all(rounds=2)
                national_to_hub(fed, o, report)  # the empty rounds start from a small history
                report.catchup = catchup(fed, o)
            finally:
                fed.close()
        finally:
            dbs.close()
    report.machine["seconds"] = round(time.perf_counter() - wall_start, 1)
    report.machine["load_average_at_end"] = round(os.getloadavg()[0], 2)
    report.machine.update(CpuSample.now().since(cpu_start))
    report.bench_rss_bytes = peak_rss_bytes()
    return report


# -- the report ------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e3:,.1f}"


def _verdict(passed: bool | None) -> str:
    if passed is None:
        return "—"
    return "[green]PASS[/green]" if passed else "[red]BELOW[/red]"


def _cpu(x: Transfer) -> str:
    return f"{x.cpu_s / x.seconds:.2f}" if x.seconds > 0 else "—"


def throughput_table(r: Report) -> Table:
    lim = r.limit
    t = Table(title="1, 3. Replication throughput (envelopes/s)", title_justify="left")
    t.add_column("transfer", no_wrap=True)
    for col in (
        "envelopes",
        "calls",
        "seconds",
        "env/s",
        "µs/env",
        "target",
        "result",
        "vs limit",
        "CPU/wall",
    ):
        t.add_column(col, justify="right", no_wrap=True)
    rows = [*r.pushes, *([r.catchup.transfer] if r.catchup else [])]
    for x in rows:
        t.add_row(
            x.name,
            f"{x.envelopes:,}",
            str(x.calls or "—"),
            _fmt(x.seconds, 2),
            f"{x.rate:,.0f}",
            _fmt(x.us),
            "—" if x.target is None else f"≥ {x.target:,.0f}",
            _verdict(x.passed),
            f"{x.rate / lim.rate:.2f}" if lim.rate else "—",
            _cpu(x),
        )
    cpu = f"{lim.cpu_s / lim.apply_s:.2f}" if lim.apply_s else "—"
    t.add_row(
        f"[b]limit[/b]: apply by hand at {SIDE_LIMIT} (no gRPC)",
        f"{lim.envelopes:,}",
        str(lim.batches),
        _fmt(lim.apply_s, 2),
        f"[b]{lim.rate:,.0f}[/b]",
        _fmt(lim.us(lim.apply_s)),
        "—",
        "—",
        "1.00",
        cpu,
    )
    return t


def limit_table(r: Report) -> Table:
    lim = r.limit
    push = r.pushes[0] if r.pushes else None
    t = Table(title="1. Where a push's time goes (µs per envelope)", title_justify="left")
    t.add_column("component")
    t.add_column("what", style="dim")
    t.add_column("µs/env", justify="right")
    t.add_column("share of the push", justify="right")
    parts = [
        ("read", f"sender: SyncSource.batch_for at {NATIONAL}", lim.read_s),
        ("verify", "receiver: Receiver.verify_batch (Ed25519, hash, relay rule)", lim.verify_s),
        ("store", "receiver: the rest of apply (dedupe, insert, heads, open + index, commit)", lim.store_s),
    ]
    push_us = push.us if push else 0.0
    for name, what, seconds in parts:
        us = lim.us(seconds)
        t.add_row(name, what, _fmt(us), f"{us / push_us:.0%}" if push_us else "—")
    done = lim.us(lim.read_s + lim.apply_s)
    t.add_row("[b]read + verify + store[/b]", "all the in-process work of a push", f"[b]{_fmt(done)}[/b]", "")
    if push:
        rest = push_us - done
        t.add_row(
            "rest",
            "gRPC, protobuf (de)serialization, TLS, GetVector, the GIL between threads",
            _fmt(rest),
            f"{rest / push_us:.0%}" if push_us else "—",
        )
        t.add_row(f"[b]push[/b] ({push.name})", "measured", f"[b]{_fmt(push_us)}[/b]", "100%")
    return t


def latency_table(lat: Latency) -> Table:
    t = Table(
        title=f"2. Commit → readable ({lat.records} records, one every {lat.spacing_s * 1e3:.0f} ms, "
        f"sync interval {lat.interval_s:g} s)",
        title_justify="left",
    )
    t.add_column("hop", no_wrap=True)
    for col in ("records", "p50 ms", "p95 ms", "p99 ms", "max ms", "target", "result"):
        t.add_column(col, justify="right", no_wrap=True)
    for hop in lat.hops:
        last = hop is lat.end_to_end
        target = f"p50 ≤ {P50_TARGET_S * 1e3:.0f}, p99 ≤ {P99_TARGET_S * 1e3:,.0f}" if last else "—"
        t.add_row(
            f"[b]{hop.name}[/b]" if last else hop.name,
            f"{len(hop.seconds)}",
            *[_ms(hop.percentile(q)) for q in (50, 95, 99, 100)],
            target,
            _verdict(lat.passed) if last else "—",
        )
    return t


def latency_notes(lat: Latency) -> str:
    rounds = "; ".join(
        f"{name}: " + ", ".join(f"{n} {k}" for k, n in sorted(c.items())) for name, c in lat.rounds.items()
    )
    during = ", ".join(f"{name} {n}" for name, n in lat.pokes_in_rounds.items())
    errors = ", ".join(f"{name} {n}" for name, n in lat.poke_errors.items())
    took = ", ".join(f"{name} {med:.0f} / {top:.0f}" for name, (med, top) in lat.round_ms.items())
    carried = ", ".join(f"{n} by {k}" for k, n in sorted(lat.carried.items(), key=lambda kv: -kv[1]))
    return (
        f"arrived at {GLOBAL_HUB}: {lat.arrived}/{lat.records}, readable there (reader.get): "
        f"{lat.readable}/{lat.records}; record_seizure at {NATIONAL} took {lat.record_s * 1e3:.1f} ms each.\n"
        f"Path — records carried on both hops by rounds a commit brought forward (push-on-commit) or "
        f"not: {carried}.\n"
        f"Rounds by trigger — {rounds}. (commit: poked while idle; rerun: at once after a round that "
        "was poked while it ran; timer: the interval, or a dropped poke.)\n"
        f"Pokes that came while a round with that peer ran — {during}.\n"
        f"Round duration, median / max ms — {took}.\n"
        f"SyncScheduler.poke raised JobLookupError (caught here; it would fail the committed call): {errors}."
    )


def empty_table(r: Report) -> Table:
    t = Table(title=f"4. A sync round with nothing to send ({NATIONAL} ↔ {HUB})", title_justify="left")
    for col in (f"history at {NATIONAL}", f"at {HUB}", "rounds", "median ms", "p90 ms", "calls"):
        t.add_column(col, justify="right", no_wrap=True)
    for col in ("sent / received B", "vectors B", "moved"):
        t.add_column(col, justify="right", no_wrap=True)
    for e in r.empty:
        t.add_row(
            f"{e.history_national:,}",
            f"{e.history_hub:,}",
            str(len(e.seconds)),
            _fmt(e.median_ms, 2),
            _fmt(e.p90_ms, 2),
            str(e.calls),
            f"{e.bytes_sent} / {e.bytes_received}",
            f"{e.vector_bytes} + {e.pull_request_bytes}",
            str(e.moved),
        )
    return t


@dataclass(frozen=True)
class EmptySummary:
    ratio: float  # largest / smallest median over the history sizes
    worst_ms: float  # the largest median

    @property
    def flat(self) -> bool:
        return 0 < self.ratio <= FLAT_TARGET

    @property
    def cheap(self) -> bool:
        return 0 < self.worst_ms <= EMPTY_TARGET_MS


def empty_summary(r: Report) -> EmptySummary:
    medians = [e.median_ms for e in r.empty]
    if not medians or min(medians) <= 0:
        return EmptySummary(0.0, 0.0)
    return EmptySummary(max(medians) / min(medians), max(medians))


def bytes_table(r: Report) -> Table:
    t = Table(title="5. Bytes on the wire and memory", title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for x in [*r.pushes, *([r.catchup.transfer] if r.catchup else [])]:
        if x.envelopes:
            t.add_row(f"PushRequest bytes per envelope: {x.name}", f"{x.bytes_sent / x.envelopes:,.0f} B")
    t.add_row("envelope = header + ciphertext + signature (mean)", f"{r.limit.envelope_bytes:,.0f} B")
    t.add_row(
        "peak RSS, bench process (all six nodes, their servers)", f"{r.bench_rss_bytes / 2**20:,.1f} MiB"
    )
    return t


def print_report(r: Report) -> None:
    m, o = r.machine, r.options
    console.print(
        f"\n[b]gcn replication benchmark[/b] — {m['cores']} cores, Python {m['python']}, "
        f"protobuf {m['protobuf_backend']}, grpcio {m['grpc']}, database {m['database']}, "
        f"log level {o.log_level}, load average at start {m['load_average_at_start']}"
    )
    console.print()
    console.print(throughput_table(r))
    console.print()
    console.print(limit_table(r))
    if r.catchup:
        c = r.catchup
        console.print(
            f"catch-up: while {NATIONAL} was down the round failed ({c.failed_attempt}); {PORT} recorded "
            f"{c.records:,} seizures in {c.import_s:.1f} s; arrived: {c.arrived:,}/{c.records:,}"
        )
    if r.latency:
        console.print()
        console.print(latency_table(r.latency))
        console.print(latency_notes(r.latency))
    console.print()
    console.print(empty_table(r))
    e = empty_summary(r)
    console.print(
        f"flat: largest / smallest median {e.ratio:.2f} (target ≤ {FLAT_TARGET}) {_verdict(e.flat)}; "
        f"a few ms: largest median {e.worst_ms:.2f} ms (target ≤ {EMPTY_TARGET_MS:g}) {_verdict(e.cheap)}.\n"
        "'sent / received' is RoundResult.bytes_sent / bytes_received (push and pull payloads); 'vectors' "
        "are the GetVector reply and the PullRequest, which RoundResult does not count."
    )
    console.print()
    console.print(bytes_table(r))
    imports = ", ".join(f"{x.envelopes:,} in {x.seconds:.1f} s" for x in r.imports)
    console.print(
        f"\n[dim]Setup (not measured above): import_seizures at {NATIONAL}: {imports}. All nodes run in this "
        "process: a push's sender, receiver and both gRPC stacks share one GIL.[/dim]"
    )
    console.print(
        f"Other processes used {m['others_cpu_share']:.0%} of the machine during the run, the hypervisor "
        f"stole {m['steal_share']:.0%}; load average {m['load_average_at_start']} at start, "
        f"{m['load_average_at_end']} at end; the run took {m['seconds']:.0f} s."
    )


def _transfer_json(x: Transfer, lim: Limit) -> dict[str, Any]:
    return {
        **asdict(x),
        "envelopes_per_s": round(x.rate, 1),
        "us_per_envelope": round(x.us, 1),
        "pass": x.passed,
        "ratio_to_limit": round(x.rate / lim.rate, 3) if lim.rate else None,
        "push_bytes_per_envelope": round(x.bytes_sent / x.envelopes, 1) if x.envelopes else None,
    }


def report_json(r: Report) -> dict[str, Any]:
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(r.options).items()}
    if r.options.database_url:
        options["database_url"] = make_url(r.options.database_url).render_as_string(hide_password=True)
    lim = r.limit
    lat = r.latency
    summary = empty_summary(r)
    return {
        "bench": "replication",
        "machine": r.machine,
        "options": options,
        "default_batch": {"max_envelopes": DEFAULT_MAX_ENVELOPES, "max_bytes": DEFAULT_MAX_BYTES},
        "throughput": [_transfer_json(x, lim) for x in r.pushes],
        "limit": {
            **asdict(lim),
            "envelopes_per_s": round(lim.rate, 1),
            "read_us": round(lim.us(lim.read_s), 1),
            "verify_us": round(lim.us(lim.verify_s), 1),
            "store_us": round(lim.us(lim.store_s), 1),
        },
        "latency": None
        if lat is None
        else {
            **{k: v for k, v in asdict(lat).items() if k != "hops"},
            "pass": lat.passed,
            "hops": {
                h.name: {f"p{q}_ms": _round_ms(h.percentile(q)) for q in (50, 95, 99, 100)} for h in lat.hops
            },
        },
        "catchup": None
        if r.catchup is None
        else {**asdict(r.catchup), "transfer": _transfer_json(r.catchup.transfer, lim)},
        "empty_rounds": [
            {**asdict(e), "seconds": None, "median_ms": round(e.median_ms, 3), "p90_ms": round(e.p90_ms, 3)}
            for e in r.empty
        ],
        "empty_rounds_largest_over_smallest": round(summary.ratio, 3),
        "empty_rounds_flat": summary.flat,
        "empty_rounds_few_ms": summary.cheap,
        "imports": [asdict(x) for x in r.imports],
        "bench_peak_rss_bytes": r.bench_rss_bytes,
    }


def _round_ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 2)


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Never overwrite another module's figures (bench/run.sh gives every module the
    same --json): next to such a file, write `<stem>-replication<suffix>`."""
    if path.exists():
        try:
            ours = json.loads(path.read_text()).get("bench") == "replication"
        except (ValueError, AttributeError):
            ours = False
        if not ours:
            path = path.with_name(f"{path.stem}-replication{path.suffix}")
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


# -- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, list[str]]:
    p = argparse.ArgumentParser(prog="python -m bench.replication", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (2,000 envelopes), to iterate")
    p.add_argument(
        "--envelopes", type=int, help="envelopes KE pushes to the hub (default 20,000; quick 2,000)"
    )
    p.add_argument("--small-batch", type=int, default=500, help="the other push batch size (default 500)")
    p.add_argument(
        "--latency-records", type=int, help="records timed commit → readable (default 200; quick 50)"
    )
    p.add_argument("--spacing-ms", type=float, default=20.0, help="between two of those records (default 20)")
    p.add_argument("--interval", type=float, default=1.0, help="SyncSettings.interval, seconds (default 1)")
    p.add_argument(
        "--catchup", type=int, help="seizures recorded during the outage (default 20,000; quick 2,000)"
    )
    p.add_argument(
        "--empty-rounds", type=int, help="empty rounds timed per history size (default 50; quick 10)"
    )
    p.add_argument("--database-url", help="PostgreSQL URL (one temporary schema per node); default SQLite")
    p.add_argument("--json", type=Path, dest="json_path", help="also write the figures as JSON to this file")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    a, unknown = p.parse_known_args(argv)
    size = 2_000 if a.quick else 20_000
    o = Options(
        envelopes=a.envelopes or size,
        small_batch=a.small_batch,
        latency_records=a.latency_records or (50 if a.quick else 200),
        spacing_s=a.spacing_ms / 1e3,
        interval_s=a.interval,
        catchup=a.catchup or size,
        empty_rounds=a.empty_rounds or (10 if a.quick else 50),
        database_url=a.database_url,
        json_path=a.json_path,
        seed=a.seed,
        log_level=a.log_level,
        quick=a.quick,
    )
    if min(o.envelopes, o.small_batch, o.latency_records, o.catchup, o.empty_rounds) < 1 or o.interval_s <= 0:
        p.error("sizes must be at least 1 and --interval positive")
    return o, unknown


def main(argv: Sequence[str] | None = None) -> int:
    options, unknown = parse_args(argv)
    if unknown:  # bench/run.sh passes every module the same arguments
        console.print(f"[yellow]ignoring options of other bench modules: {' '.join(unknown)}[/yellow]")
    ignored = ignore_node_env()
    if ignored:
        console.print(f"[yellow]ignoring {', '.join(ignored)} for the bench nodes[/yellow]")
    quiet_logging(options.log_level)
    report = run_all(options)
    print_report(report)
    if options.json_path is not None:
        written = write_json(options.json_path, report_json(report))
        console.print(f"figures written to {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
