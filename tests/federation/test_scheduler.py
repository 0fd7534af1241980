"""The sync scheduler: one job per peer that never disappears, whatever pokes,
failures, clock jumps or lost jobs happen; a poke during a round makes exactly
one more round; a peer that calls in or answers a probe is synced at once.

Real APScheduler, real threads; the peer is a fake SyncService stub that
counts rounds (one GetVector each) and can be told to fail."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import Mock

import grpc
import pytest

from federation import vectors
from federation.peers import Peer
from federation.refusal import Refused
from federation.scheduler import PeerState, PeerSync, RoundTimes, SyncScheduler, SyncSettings
from federation.transport import PeerFuture, PeerStub
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import sync_pb2
from node.logging import get_logger

log = get_logger("test.scheduler")


class Unavailable(grpc.RpcError):  # type: ignore[misc]
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "connection refused"


@dataclass
class FakePeer:
    """A SyncService stub: counts rounds, may hold each one open, may be down."""

    down: bool = False
    hold: float = 0.0
    rounds: int = 0
    pulls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_round: threading.Event = field(default_factory=threading.Event)

    def GetVector(self, request: object, timeout: float) -> sync_pb2.VersionVector:
        if self.down:
            raise Unavailable()
        with self.lock:
            self.rounds += 1
        self.in_round.set()
        time.sleep(self.hold)
        return sync_pb2.VersionVector()

    def Pull(self, request: object, timeout: float) -> sync_pb2.PullResponse:
        with self.lock:
            self.pulls += 1
        return sync_pb2.PullResponse()


@dataclass
class _Batch:
    envelopes: list[epb.Envelope] = field(default_factory=list)
    more: bool = False
    receipts: list[sync_pb2.SignedReceipt] = field(default_factory=list)


class NothingToSend:
    def batch_for(self, peer: str, have: vectors.Vector, **kw: Any) -> _Batch:
        return _Batch()

    def waiting(self, peer: str, theirs: vectors.Vector) -> set[vectors.Stream]:
        return set()

    def refused(self, peer: str, refusals: Sequence[Refused]) -> None:
        pass


class NothingToStore:
    def apply(
        self, envelopes: Sequence[epb.Envelope], caller: str, now: datetime, receipts: Sequence[Any] = ()
    ) -> Any:
        raise AssertionError("nothing is pulled")

    def local_vector(self) -> vectors.Vector:
        return {}

    def waiting_from(self, peer: str) -> set[vectors.Stream]:
        return set()


class MemoryStates:
    def __init__(self) -> None:
        self.states: dict[str, PeerState] = {}

    def load(self, peer_id: str, endpoint: str) -> PeerState:
        s = self.states.get(peer_id)
        return PeerState(**{**s.__dict__}) if s else PeerState(peer_id, endpoint)

    def save(self, state: PeerState) -> None:
        self.states[state.peer_id] = PeerState(**{**state.__dict__})


class ShiftedClock:
    """The wall clock plus an offset the test changes (a clock that jumps)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


SETTINGS = SyncSettings(interval=30, backoff_initial=20, backoff_max=60, timeout=5, probe_interval=0.2)


def _peer_sync(
    fake: FakePeer,
    states: MemoryStates,
    probe: Callable[[float], Any] | None = None,
    peer: Peer | None = None,
    logger: Any = log,
) -> PeerSync:
    return PeerSync(
        peer or Peer("HUB", "127.0.0.1:1", upstream=True),
        lambda: PeerStub(fake),  # grpc status codes become federation.errors
        NothingToSend(),
        NothingToStore(),
        states,
        SETTINGS,
        logger,
        random.Random(1),
        probe=probe,
    )


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


def _scheduler(peers: Collection[PeerSync], clock: ShiftedClock, **kw: Any) -> SyncScheduler:
    return SyncScheduler(list(peers), clock, log, settings=SETTINGS, **kw)


@pytest.fixture
def running() -> Iterator[list[SyncScheduler]]:
    started: list[SyncScheduler] = []
    yield started
    for s in started:
        s.shutdown()


def _wait(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_a_poke_during_a_round_makes_exactly_one_more_round(
    clock: ShiftedClock, running: list[SyncScheduler]
) -> None:
    fake, states = FakePeer(hold=0.3), MemoryStates()
    sched = _scheduler([_peer_sync(fake, states)], clock)
    running.append(sched)
    sched.start(watchdog=False)
    _wait(lambda: fake.rounds == 1)  # the first round, at start
    for _ in range(50):  # a surge of commits while it runs
        sched.poke()
    _wait(lambda: fake.rounds == 2)
    time.sleep(0.8)
    assert fake.rounds == 2
    job = sched._scheduler.get_job("HUB")
    assert job is not None and job.next_run_time is not None
    assert job.next_run_time > datetime.now(UTC) + timedelta(seconds=20)  # the interval, no more rounds


def test_the_job_survives_a_surge_of_pokes_from_many_threads(
    clock: ShiftedClock, running: list[SyncScheduler]
) -> None:
    """The failure seen in the field: a poke while the round ran re-added a
    one-shot job, APScheduler refused the second instance and deleted it."""
    fake, states = FakePeer(hold=0.01), MemoryStates()
    sched = _scheduler([_peer_sync(fake, states)], clock)
    running.append(sched)
    sched.start(watchdog=False)
    stop = time.monotonic() + 2.0

    def commits() -> None:
        while time.monotonic() < stop:
            sched.poke()
            time.sleep(0.001)

    threads = [threading.Thread(target=commits) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    during = fake.rounds
    assert during > 10
    assert sched._scheduler.get_job("HUB") is not None
    sched.poke()  # after the surge, a commit still goes out at once
    _wait(lambda: fake.rounds > during)
    assert sched.check() == []  # nothing to repair


def test_a_missing_job_is_recreated_with_an_alarm(clock: ShiftedClock, running: list[SyncScheduler]) -> None:
    fake, states = FakePeer(), MemoryStates()
    alarms: list[tuple[str, str, str]] = []
    sched = _scheduler([_peer_sync(fake, states)], clock, on_alarm=lambda *a: alarms.append(a))
    running.append(sched)
    sched.start(watchdog=False)
    _wait(lambda: fake.rounds == 1)
    sched._scheduler.remove_job("HUB")  # whatever bug or error removed it
    assert sched.check() == ["HUB"]
    assert alarms and alarms[0][:2] == ("sync_job_missing", "HUB")
    _wait(lambda: fake.rounds == 2)  # the re-created job syncs at once
    assert sched._scheduler.get_job("HUB") is not None


def test_the_watchdog_repairs_a_lost_job_by_itself(clock: ShiftedClock, running: list[SyncScheduler]) -> None:
    fake, states = FakePeer(), MemoryStates()
    sched = _scheduler([_peer_sync(fake, states)], clock)
    running.append(sched)
    sched.start()
    _wait(lambda: fake.rounds == 1)
    sched._scheduler.remove_job("HUB")
    _wait(lambda: fake.rounds == 2)


def test_a_fire_time_set_under_a_clock_a_day_ahead_is_re_armed_by_the_monotonic_clock(
    clock: ShiftedClock, running: list[SyncScheduler]
) -> None:
    """The node's clock was a day ahead when the round was armed, then NTP
    corrected it: the job's wall-clock fire time is a day away, but the round
    is due by the monotonic clock at the interval."""
    fake, states = FakePeer(), MemoryStates()
    settings = SyncSettings(interval=0.5, backoff_initial=1, backoff_max=60, timeout=5, probe_interval=0.2)
    ps = _peer_sync(fake, states)
    ps.settings = settings
    sched = SyncScheduler([ps], clock, log, settings=settings)
    running.append(sched)
    sched.start()
    _wait(lambda: fake.rounds >= 1)
    time.sleep(0.1)
    sched._scheduler.modify_job("HUB", next_run_time=datetime.now(UTC) + timedelta(days=1))
    done = fake.rounds
    _wait(lambda: fake.rounds >= done + 2, timeout=3)


def test_a_next_attempt_saved_under_a_skewed_clock_is_judged_again_at_start(
    clock: ShiftedClock, running: list[SyncScheduler]
) -> None:
    fake, states = FakePeer(), MemoryStates()
    states.save(
        PeerState(
            "HUB",
            "127.0.0.1:1",
            failures=1,
            backoff_seconds=0.3,
            next_attempt_at=datetime.now(UTC) + timedelta(days=1),
            last_error="UNAVAILABLE: connection refused",
        )
    )
    sched = _scheduler([_peer_sync(fake, states)], clock)
    running.append(sched)
    sched.start(watchdog=False)
    _wait(lambda: fake.rounds == 1, timeout=3)  # after the 0.3 s backoff, not a day


def test_a_peer_that_calls_in_brings_our_backed_off_round_forward(
    clock: ShiftedClock, running: list[SyncScheduler]
) -> None:
    fake, states = FakePeer(down=True), MemoryStates()
    ps = _peer_sync(fake, states)
    sched = _scheduler([ps], clock)
    running.append(sched)
    sched.start(watchdog=False)
    _wait(lambda: ps.failures == 1)  # down: the next attempt is 10-20 s away
    fake.down = False
    sched.called_in("HUB")
    _wait(lambda: fake.rounds == 1 and ps.failures == 0)
    sched.called_in("HUB")  # a healthy peer calling in changes nothing
    time.sleep(0.3)
    assert fake.rounds == 1


def test_a_peer_that_answers_a_probe_is_synced_at_once_whatever_the_backoff(
    clock: ShiftedClock, running: list[SyncScheduler]
) -> None:
    fake, states = FakePeer(down=True), MemoryStates()

    def probe(timeout: float) -> PeerFuture:
        f: Future[None] = Future()
        if fake.down:
            f.set_exception(Unavailable())
        else:
            f.set_result(None)
        return PeerFuture(f)

    ps = _peer_sync(fake, states, probe)
    sched = _scheduler([ps], clock)
    running.append(sched)
    sched.start()
    _wait(lambda: ps.failures == 1 and ps.link_down)
    time.sleep(0.5)  # probes go unanswered meanwhile
    assert fake.rounds == 0
    fake.down = False  # the link is back
    started = time.monotonic()
    _wait(lambda: fake.rounds == 1 and ps.failures == 0)
    assert time.monotonic() - started < 2  # a probe interval, not the 10-20 s backoff


def test_jobs_follow_the_directory(clock: ShiftedClock, running: list[SyncScheduler]) -> None:
    fakes = {"HUB": FakePeer(), "PORT": FakePeer()}
    states = MemoryStates()
    listed = [Peer("HUB", "127.0.0.1:1", upstream=True)]
    sched = _scheduler(
        [_peer_sync(fakes["HUB"], states)],
        clock,
        directory_peers=lambda: list(listed),
        make_peer=lambda p: _peer_sync(fakes[p.node_id], states, peer=p),
    )
    running.append(sched)
    sched.start(watchdog=False)
    listed.append(Peer("PORT", "127.0.0.1:1", upstream=False))  # a new directory names a new peer
    assert sched.check() == ["PORT"]
    _wait(lambda: fakes["PORT"].rounds == 1)
    del listed[0]  # ... and the next one no longer lists the hub
    assert sched.check() == ["HUB"]
    assert sched._scheduler.get_job("HUB") is None and set(sched.peers) == {"PORT"}


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def _add(self, level: str, event: str, **kw: Any) -> None:
        self.lines.append((level, event, kw))

    def debug(self, event: str, **kw: Any) -> None:
        self._add("debug", event, **kw)

    def info(self, event: str, **kw: Any) -> None:
        self._add("info", event, **kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._add("warning", event, **kw)

    def error(self, event: str, **kw: Any) -> None:
        self._add("error", event, **kw)

    def exception(self, event: str, **kw: Any) -> None:
        self._add("exception", event, **kw)


def test_a_peer_going_down_logs_one_warning_and_one_info_on_recovery() -> None:
    fake, states, rec = FakePeer(down=True), MemoryStates(), RecordingLog()
    ps = _peer_sync(fake, states, logger=rec)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    for i in range(4):
        ps.run(now + timedelta(seconds=i))
    fake.down = False
    ps.run(now + timedelta(seconds=10))
    above_debug = [(level, event) for level, event, _ in rec.lines if level != "debug"]
    assert above_debug == [("warning", "peer unreachable"), ("info", "peer reachable again")]
    assert rec.lines[-1][2]["down_seconds"] == 10.0


def test_our_own_bug_in_a_round_is_logged_with_its_traceback_not_as_the_peers_fault() -> None:
    fake, states, rec = FakePeer(), MemoryStates(), RecordingLog()
    ps = _peer_sync(fake, states, logger=rec)

    class Broken(NothingToSend):
        def batch_for(self, peer: str, have: vectors.Vector, **kw: Any) -> _Batch:
            raise KeyError("a bug")

    ps.source = Broken()
    state = ps.run(datetime(2026, 12, 1, tzinfo=UTC))
    assert state.failures == 1 and state.last_error.startswith("LOCAL: KeyError")
    assert [(level, event) for level, event, _ in rec.lines] == [
        ("exception", "sync round failed on this node (not the peer's fault)")
    ]


def test_round_listeners_are_told_when_each_round_ran_and_whether_it_failed() -> None:
    fake, states = FakePeer(), MemoryStates()
    ps = _peer_sync(fake, states)
    told: list[RoundTimes] = []
    ps.on_round.append(told.append)
    before = time.perf_counter()
    ps.run(datetime.now(UTC))
    fake.down = True
    ps.run(datetime.now(UTC))
    assert [(t.peer_id, t.failed) for t in told] == [("HUB", False), ("HUB", True)]
    assert before <= told[0].started <= told[0].ended <= told[1].started <= told[1].ended
    assert states.states["HUB"].failures == 1  # told after the outcome was saved


def test_a_round_listener_that_raises_is_logged_and_the_round_stands() -> None:
    fake, states = FakePeer(), MemoryStates()
    logger = Mock(wraps=log)
    ps = _peer_sync(fake, states, logger=logger)
    told: list[RoundTimes] = []

    def broken(times: RoundTimes) -> None:
        raise RuntimeError("a bug in the listener")

    ps.on_round += [broken, told.append]
    state = ps.run(datetime.now(UTC))
    assert state.failures == 0 and states.states["HUB"].last_success_at is not None
    assert len(told) == 1  # the next listener still ran
    logger.exception.assert_called_once_with("round listener failed", peer="HUB")


def test_envelopes_from_a_peer_are_relayed_to_every_other_peer_not_back_to_it(
    clock: ShiftedClock, running: list[SyncScheduler]
) -> None:
    """`relay(source)`: a round with the peer the envelopes came from would only
    pull back what it is still pushing, so its job keeps its time."""
    source, other, states = FakePeer(), FakePeer(), MemoryStates()
    sched = _scheduler(
        [
            _peer_sync(source, states, peer=Peer("KE", "127.0.0.1:1", upstream=False)),
            _peer_sync(other, states, peer=Peer("HUB", "127.0.0.1:2", upstream=True)),
        ],
        clock,
    )
    running.append(sched)
    sched.start(watchdog=False)
    _wait(lambda: source.rounds == 1 and other.rounds == 1)  # the first rounds, at start
    sched.relay("KE")
    _wait(lambda: other.rounds == 2)
    time.sleep(0.5)
    assert (source.rounds, other.rounds) == (1, 2)
    sched.poke()  # our own commit goes to every peer
    _wait(lambda: source.rounds == 2 and other.rounds == 3)


def test_a_round_for_a_poke_pushes_and_a_round_due_by_time_pulls_too(
    clock: ShiftedClock, running: list[SyncScheduler]
) -> None:
    """Our commit is pushed at once; the upstream pushes what it gets, so a
    pull in that round would only hold the next push up behind applying it.
    The rounds due by time pull (and a peer that calls in gets a full round)."""
    fake, states = FakePeer(), MemoryStates()
    settings = SyncSettings(interval=2.0, backoff_initial=20, backoff_max=60, timeout=5, probe_interval=0.2)
    ps = _peer_sync(fake, states)
    ps.settings = settings
    sched = SyncScheduler([ps], clock, log, settings=settings)
    running.append(sched)
    sched.start(watchdog=False)
    _wait(lambda: fake.rounds == 1 and fake.pulls == 1)  # the first round, at start: due
    sched.poke()
    _wait(lambda: fake.rounds == 2 and not sched._slots["HUB"].running)
    assert fake.pulls == 1
    _wait(lambda: fake.pulls == 2)  # the interval passes: a round due by time
