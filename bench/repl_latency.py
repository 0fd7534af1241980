"""Commit → readable two hops away (§2 of `bench.replication`): KE, RINEX-ESA
and WCO-GLOBAL each run their real `node.replication.Replication`; the bench
only listens, through the product's own hooks:

- `RecordService.on_commit` / `Receiver.on_commit` (a listener placed before
  the scheduler's poke): when each node committed, so when it poked;
- at the two receivers, a listener first in `Receiver.on_commit` notes the
  time and the highest envelope id then stored: a record has arrived with the
  first commit whose id reaches its envelope's (its stream and seq at KE, from
  the `Recorded` that `record_seizure` returned);
- `Replication.on_round` (`PeerSync.on_round`): when each round with each
  peer started and ended, to tell which round carried a record.
"""

from __future__ import annotations

import bisect
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select

from bench.common import make_seizures, percentile, share_to, step
from bench.repl_push import GLOBAL_HUB, HUB, NATIONAL, TIMEOUT, WORLD, Options
from federation.scheduler import RoundTimes, SyncSettings
from gcn.v1 import records_pb2 as rec
from node.replication import Replication
from node.storage.models import EnvelopeRow
from node.testing.local_federation import LocalFederation, LocalNode

P50_TARGET_S, P99_TARGET_S = 0.250, 1.0  # commit → readable two hops away
LATENCY_WARMUP = 5  # records through the chain before the latency is measured
PUSHED = frozenset({"commit", "rerun"})  # the rounds a commit brought forward


@dataclass
class Hop:
    name: str
    seconds: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float | None:
        return percentile(self.seconds, q)


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
    carried: dict[str, int] = field(default_factory=dict)  # "push-on-commit"/"timer"/... -> records
    record_s: float = 0.0  # mean time of one record_seizure call at the national node
    unshared: int = 0  # records KE kept to itself (no key for `global`): they cannot arrive

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


@dataclass(frozen=True)
class Round:
    start: float
    end: float
    trigger: str  # see `Trace.rounds`


class Trace:
    """One node's commits (so its pokes) and its rounds with each peer."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.pokes: list[float] = []
        self.times: dict[str, list[RoundTimes]] = {}
        self._lock = threading.Lock()

    def poked(self) -> None:
        with self._lock:
            self.pokes.append(time.perf_counter())

    def ran(self, times: RoundTimes) -> None:
        with self._lock:
            self.times.setdefault(times.peer_id, []).append(times)

    def pokes_during(self, start: float, end: float) -> int:
        return bisect.bisect_right(self.pokes, end) - bisect.bisect_left(self.pokes, start)

    def rounds(self, peer: str) -> list[Round]:
        """A round is "start" (the scheduler's first), "commit" (a poke came while
        none ran), "rerun" (it follows at once a round during which a poke came),
        or "timer" (none of these: the interval, or a poke the scheduler dropped)."""
        out: list[Round] = []
        ran = sorted(self.times.get(peer, []), key=lambda t: t.started)
        for i, t in enumerate(ran):
            if i == 0:
                trigger = "start"
            else:
                prev = ran[i - 1]
                soon = t.started - prev.ended < self.interval / 2
                if self.pokes_during(prev.ended, t.started):
                    trigger = "commit"
                elif soon and self.pokes_during(prev.started, prev.ended):
                    trigger = "rerun"
                else:
                    trigger = "timer"
            out.append(Round(t.started, t.ended, trigger))
        return out


def carrier(rounds: Sequence[Round], at: float) -> str:
    """The trigger of the round during which something arrived at the peer."""
    for r in rounds:
        if r.start <= at <= r.end:
            return r.trigger
    return "unknown"


class Arrivals:
    """When each of a node's commits of received envelopes happened, with the
    highest envelope id stored then (a listener first in `receiver.on_commit`)."""

    def __init__(self, node: LocalNode) -> None:
        self.node = node
        self.commits: list[tuple[int, float]] = []  # (highest envelope id, when)

    def committed(self) -> None:
        at = time.perf_counter()
        with self.node.app.db.read() as s:
            highest = int(s.scalar(select(func.max(EnvelopeRow.id))) or 0)
        self.commits.append((highest, at))

    def at(self, origin: str, audience: str, seq: int) -> float | None:
        """When the envelope (origin, audience, seq) arrived here, if it did."""
        with self.node.app.db.read() as s:
            envelope_id = s.scalar(
                select(EnvelopeRow.id).where(
                    EnvelopeRow.origin == origin, EnvelopeRow.audience == audience, EnvelopeRow.seq == seq
                )
            )
        if envelope_id is None:
            return None
        commits = sorted(self.commits)
        i = bisect.bisect_left(commits, (envelope_id, float("-inf")))
        return commits[i][1] if i < len(commits) else None


def wait_until(predicate: Callable[[], bool], timeout: float, poll: float = 0.01) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()


@dataclass(frozen=True)
class Sent:
    record_id: str
    at: float  # when record_seizure returned
    seq: int  # of its envelope in KE's stream to `global` (0: not shared there)


def record_spaced(ke: LocalNode, seizures: Sequence[rec.Seizure], spacing: float) -> tuple[list[Sent], float]:
    """Record one seizure every `spacing` seconds; when each record_seizure returned."""
    sent: list[Sent] = []
    spent = 0.0
    begin = time.perf_counter()
    for i, seizure in enumerate(seizures):
        delay = begin + i * spacing - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        start = time.perf_counter()
        recorded = ke.app.records.record_seizure(seizure)
        done = time.perf_counter()
        spent += done - start
        seq = next((e.seq for e in recorded.envelopes if e.audience == WORLD), 0)
        sent.append(Sent(recorded.record_id, done, seq))
    return sent, spent / max(1, len(seizures))


def _arrived(arrivals: Arrivals, s: Sent) -> float | None:
    return arrivals.at(NATIONAL, WORLD, s.seq) if s.seq else None


def latency(fed: LocalFederation, o: Options) -> Latency:
    ke, hub, top = fed.nodes[NATIONAL], fed.nodes[HUB], fed.nodes[GLOBAL_HUB]
    ke.app.records.policy = share_to(WORLD)
    settings = SyncSettings(interval=o.interval_s, backoff_initial=1.0, backoff_max=5.0, timeout=TIMEOUT)
    running = (top, hub, ke)
    reps = {n.node_id: Replication(n.app, n.tls, settings) for n in running}
    traces = {n.node_id: Trace(o.interval_s) for n in running}
    at_hub, at_top = Arrivals(hub), Arrivals(top)
    for node in running:  # before start(): these run before the scheduler's poke
        trace = traces[node.node_id]
        node.app.records.on_commit.append(trace.poked)
        node.app.receiver.on_commit.append(trace.poked)
        reps[node.node_id].on_round.append(trace.ran)
    hub.app.receiver.on_commit.insert(0, at_hub.committed)
    top.app.receiver.on_commit.insert(0, at_top.committed)
    warmup = make_seizures(o.seed - 1, LATENCY_WARMUP)
    seizures = make_seizures(o.seed + 1, o.latency_records)
    result = Latency(o.latency_records, o.spacing_s, o.interval_s, [])
    patience = 3 * o.interval_s + 10
    try:
        for rep in reps.values():
            rep.start()
        wait_until(lambda: all(t.times for t in traces.values()), TIMEOUT)
        step(f"latency: {LATENCY_WARMUP} warm-up records through {NATIONAL} → {HUB} → {GLOBAL_HUB}")
        warm, _ = record_spaced(ke, warmup, o.spacing_s)
        wait_until(lambda: all(_arrived(at_top, s) for s in warm if s.seq), patience)
        step(f"latency: {o.latency_records} records, one every {o.spacing_s * 1e3:.0f} ms")
        sent, result.record_s = record_spaced(ke, seizures, o.spacing_s)
        wait_until(lambda: all(_arrived(at_top, s) for s in sent if s.seq), patience)
    finally:
        for rep in reps.values():
            rep.stop()
        for node in running:
            for listeners in (node.app.records.on_commit, node.app.receiver.on_commit):
                listeners[:] = [x for x in listeners if x not in _bench_listeners(traces, at_hub, at_top)]
    _summarise(result, sent, traces, at_hub, at_top, top)
    return result


def _bench_listeners(traces: dict[str, Trace], *arrivals: Arrivals) -> list[Callable[[], None]]:
    return [*(t.poked for t in traces.values()), *(a.committed for a in arrivals)]


def _summarise(
    result: Latency,
    sent: Sequence[Sent],
    traces: dict[str, Trace],
    at_hub: Arrivals,
    at_top: Arrivals,
    top: LocalNode,
) -> None:
    first, second = traces[NATIONAL].rounds(HUB), traces[HUB].rounds(GLOBAL_HUB)
    names = (f"{NATIONAL} → {HUB}", f"{HUB} → {GLOBAL_HUB}", f"{NATIONAL} → {GLOBAL_HUB}")
    result.hops = [Hop(n) for n in names]
    carried: Counter[str] = Counter()
    for s in sent:
        t1, t2 = _arrived(at_hub, s), _arrived(at_top, s)
        if t1 is None or t2 is None:
            continue
        result.hops[0].seconds.append(t1 - s.at)
        result.hops[1].seconds.append(t2 - t1)
        result.hops[2].seconds.append(t2 - s.at)
        triggers = {carrier(first, t1), carrier(second, t2)}
        carried["push-on-commit" if triggers <= PUSHED else "+".join(sorted(triggers - PUSHED))] += 1
    result.arrived = len(result.end_to_end.seconds)
    result.unshared = sum(1 for s in sent if not s.seq)
    result.readable = sum(readable(top, s.record_id) for s in sent)
    result.carried = dict(carried)
    for name, node, rounds in ((names[0], NATIONAL, first), (names[1], HUB, second)):
        result.rounds[name] = dict(Counter(r.trigger for r in rounds))
        result.pokes_in_rounds[name] = sum(traces[node].pokes_during(r.start, r.end) for r in rounds)
        durations = [(x.end - x.start) * 1e3 for x in rounds if x.trigger != "start"] or [0.0]
        result.round_ms[name] = (round(statistics.median(durations), 1), round(max(durations), 1))


def readable(node: LocalNode, record_id: str) -> bool:
    try:
        return node.app.reader.get(record_id).WhichOneof("body") is not None
    except Exception:
        return False
