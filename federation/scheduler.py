"""Store-and-forward: one job per peer.

`PeerSync` is the per-peer state machine, free of threads and wall clocks:
`run(now)` does one round (push what the peer lacks, pull what we lack from an
upstream) and records the outcome — progress counters on success; on failure
the consecutive failure count and an exponential backoff with jitter, capped.
Its state lives in the database (a `PeerStateStore`), so a restarted node
resumes with the same backoff and counters; what the peer holds is always
re-learned from its vector, so nothing is sent twice to storage.

`SyncScheduler` runs those state machines on APScheduler: one job per peer,
rescheduled after each run at the peer's next attempt; `poke()` (called after
every commit) brings forward the peers that are not backing off, so new
envelopes go out at once. Tests drive `PeerSync` with a manual clock.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import grpc

from crypto.errors import CryptoError
from federation.backoff import backoff_delay
from federation.peers import Peer
from federation.sync import RoundResult, Sink, Source, pull, push

EXPECTED_OUTAGES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass
class PeerState:
    peer_id: str
    endpoint: str
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    next_attempt_at: datetime | None = None
    failures: int = 0
    backoff_seconds: float = 0.0
    last_error: str = ""
    envelopes_sent: int = 0
    envelopes_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    peer_behind: int = 0
    us_behind: int = 0
    their_vector: str = "[]"


class PeerStateStore(Protocol):
    def load(self, peer_id: str, endpoint: str) -> PeerState: ...

    def save(self, state: PeerState) -> None: ...


class Logger(Protocol):
    def debug(self, event: str, **kw: Any) -> Any: ...

    def info(self, event: str, **kw: Any) -> Any: ...

    def warning(self, event: str, **kw: Any) -> Any: ...


@dataclass
class SyncSettings:
    interval: float = 30.0
    backoff_initial: float = 1.0
    backoff_max: float = 600.0
    timeout: float = 30.0
    max_envelopes: int = 0


@dataclass
class PeerSync:
    peer: Peer
    stub: Callable[[], Any]  # -> a SyncService stub (its channel reconnects by itself)
    source: Source
    sink: Sink
    store: PeerStateStore
    settings: SyncSettings
    log: Logger
    rng: random.Random = field(default_factory=random.Random)
    # Called after a failed round: drop the channel, so the next attempt connects
    # afresh instead of waiting out gRPC's own reconnect backoff (ours governs).
    reset: Callable[[], None] = lambda: None
    # Consecutive failures as of the last round (kept in memory for `poke`, which
    # runs after every commit and must not read the database).
    failures: int = 0
    # Directory propagation: with an upstream, each round first asks for a newer
    # directory than `directory_version()`, and hands one to `on_directory`.
    directory_version: Callable[[], int] | None = None
    on_directory: Callable[[Any], object] | None = None

    def state(self) -> PeerState:
        return self.store.load(self.peer.node_id, self.peer.endpoint)

    def due(self, now: datetime) -> bool:
        at = self.state().next_attempt_at
        return at is None or at <= now

    def run(self, now: datetime) -> PeerState:
        """One round now; the outcome is persisted and returned."""
        state = self.state()
        state.last_attempt_at = now
        result = RoundResult()
        try:
            stub = self.stub()
            self._newer_directory(stub)
            push(
                stub,
                self.peer.node_id,
                self.source,
                result,
                self.settings.timeout,
                self.settings.max_envelopes,
            )
            if self.peer.upstream:
                pull(
                    stub,
                    self.peer.node_id,
                    self.sink,
                    now,
                    result,
                    self.settings.timeout,
                    self.settings.max_envelopes,
                )
        except grpc.RpcError as e:
            self._failed(state, now, e.code().name, e.details() or "", e.code() in EXPECTED_OUTAGES, result)
            self.reset()
        except Exception as e:  # e.g. our side refused a pulled batch, or the database was busy
            self._failed(state, now, type(e).__name__, str(e), False, result)
            self.reset()
        else:
            self._succeeded(state, now, result)
        self.store.save(state)
        self.failures = state.failures
        return state

    def _newer_directory(self, stub: Any) -> None:
        if not self.peer.upstream or self.directory_version is None or self.on_directory is None:
            return
        from gcn.v1 import sync_pb2

        have = self.directory_version()
        try:
            reply = stub.GetDirectory(
                sync_pb2.GetDirectoryRequest(have_version=have), timeout=self.settings.timeout
            )
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return  # the upstream holds no directory yet
            raise
        if not reply.directory:
            return
        try:
            self.on_directory(reply)  # verified there: newer, unexpired, signed by the trusted root
        except CryptoError as e:
            self.log.warning("directory from upstream refused", peer=self.peer.node_id, reason=str(e))
            return
        self.log.info("newer directory taken from upstream", peer=self.peer.node_id, had=have)

    def _count(self, state: PeerState, result: RoundResult) -> None:
        state.envelopes_sent += result.pushed
        state.envelopes_received += result.pulled
        state.bytes_sent += result.bytes_sent
        state.bytes_received += result.bytes_received

    def _succeeded(self, state: PeerState, now: datetime, result: RoundResult) -> None:
        self._count(state, result)
        if state.failures:
            self.log.info("peer reachable again", peer=self.peer.node_id, after_failures=state.failures)
        state.failures, state.backoff_seconds, state.last_error = 0, 0.0, ""
        state.last_success_at = now
        state.next_attempt_at = now + timedelta(seconds=self.settings.interval)
        state.peer_behind = state.us_behind = 0
        if result.their_vector is not None:
            state.their_vector = json.dumps(sorted([o, a, q] for (o, a), q in result.their_vector.items()))
        if result.pushed or result.pulled:
            self.log.info(
                "sync round",
                peer=self.peer.node_id,
                pushed=result.pushed,
                pulled=result.pulled,
                bytes_sent=result.bytes_sent,
                bytes_received=result.bytes_received,
            )

    def _failed(
        self, state: PeerState, now: datetime, code: str, details: str, expected: bool, result: RoundResult
    ) -> None:
        self._count(state, result)
        state.failures += 1
        state.backoff_seconds = backoff_delay(
            state.failures, self.settings.backoff_initial, self.settings.backoff_max, self.rng
        )
        state.next_attempt_at = now + timedelta(seconds=state.backoff_seconds)
        state.last_error = f"{code}: {details}"[:512]
        level = self.log.debug if expected else self.log.warning
        level(
            "peer sync failed",
            peer=self.peer.node_id,
            code=code,
            failures=state.failures,
            backoff_seconds=round(state.backoff_seconds, 3),
            error=details,
        )


class SyncScheduler:
    """APScheduler jobs over `PeerSync`s."""

    def __init__(self, peers: list[PeerSync], clock: Callable[[], datetime]) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.peers = {p.peer.node_id: p for p in peers}
        self.clock = clock
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._lock = threading.Lock()
        self._stopping = False
        self._dirty: set[str] = set()

    def start(self) -> None:
        for peer_id, ps in self.peers.items():
            state = ps.state()
            ps.failures = state.failures
            at = state.next_attempt_at or self.clock()
            self._scheduler.add_job(
                self._run,
                "date",
                run_date=max(at, self.clock()),
                id=peer_id,
                args=[peer_id],
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        self._scheduler.start()

    def _run(self, peer_id: str) -> None:
        ps = self.peers[peer_id]
        nxt = self.clock()
        try:
            with self._lock:
                self._dirty.discard(peer_id)
            state = ps.run(self.clock())
            nxt = state.next_attempt_at or self.clock()
        finally:
            # Always reschedule (a job that died would never run again); sooner
            # if a commit poked while this round ran and the peer is healthy.
            with self._lock:
                if peer_id in self._dirty and ps.failures == 0:
                    nxt = self.clock()
                if self._scheduler.running and not self._stopping:
                    self._scheduler.add_job(
                        self._run,
                        "date",
                        run_date=nxt,
                        id=peer_id,
                        args=[peer_id],
                        replace_existing=True,
                        max_instances=1,
                        coalesce=True,
                        misfire_grace_time=None,
                    )

    def poke(self) -> None:
        """New envelopes committed: sync at once with every peer not backing off.
        Never raises (it runs after a commit)."""
        from apscheduler.jobstores.base import JobLookupError

        now = self.clock()
        with self._lock:
            if not self._scheduler.running or self._stopping:
                return
            for peer_id, ps in self.peers.items():
                if ps.failures:
                    continue
                job = self._scheduler.get_job(peer_id)
                try:
                    if job is None:
                        raise JobLookupError(peer_id)
                    job.modify(next_run_time=now)
                except JobLookupError:
                    self._dirty.add(peer_id)  # its round is running: it reschedules itself at once

    def shutdown(self) -> None:
        """Stop scheduling, then wait for running rounds (outside the lock: a
        finishing round takes it to reschedule itself, and must see `_stopping`)."""
        with self._lock:
            self._stopping = True
            running = self._scheduler.running
        if running:
            self._scheduler.shutdown(wait=True)
