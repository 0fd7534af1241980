"""One replication round with one peer, and its outcome recorded.

`PeerSync` is free of threads and wall clocks: `run(now)` does one round (push
what the peer lacks, pull what we lack from an upstream) and records the
outcome as `federation.peer_machine` says: progress counters on success; on
failure the consecutive failure count and an exponential backoff with jitter,
capped. Its state lives in the database (a `PeerStateStore`), so a restarted
node resumes with the same backoff and counters; what the peer holds is always
re-learned from its vector, so nothing is sent twice to storage.

Failures are told apart: a `federation.errors.PeerError` (the transport's
translation of a status code) is the peer's or the link's, logged as one
warning when the link goes down and one info line when it is back; anything
else is a bug of ours (or local storage in trouble), logged with its traceback.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from crypto.errors import CryptoError
from federation import peer_machine as machine
from federation.errors import PeerError, PeerNotFoundError
from federation.peer_machine import LOCAL_ERROR, PeerState, SyncSettings
from federation.peers import Peer
from federation.sync import RoundResult, Sink, Source, pull, push


class PeerStateStore(Protocol):
    def load(self, peer_id: str, endpoint: str) -> PeerState: ...

    def save(self, state: PeerState) -> None: ...


class Logger(Protocol):
    def debug(self, event: str, **kw: Any) -> Any: ...

    def info(self, event: str, **kw: Any) -> Any: ...

    def warning(self, event: str, **kw: Any) -> Any: ...

    def error(self, event: str, **kw: Any) -> Any: ...

    def exception(self, event: str, **kw: Any) -> Any: ...


@dataclass(frozen=True)
class RoundTimes:
    """When one round with a peer ran (`time.perf_counter` seconds), for a
    listener such as a benchmark tracing which round carried a record."""

    peer_id: str
    started: float
    ended: float
    failed: bool


@dataclass
class PeerSync:
    peer: Peer
    # -> a SyncService stub whose failed calls raise `PeerError`s
    # (`federation.transport.PeerStub`; its channel reconnects by itself).
    stub: Callable[[], Any]
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
    # Was the last failure the link's (unreachable, timed out)? Only such peers are probed.
    link_down: bool = False
    # Directory propagation: with an upstream, each round first asks for a newer
    # directory than `directory_version()`, and hands one to `on_directory`.
    directory_version: Callable[[], int] | None = None
    on_directory: Callable[[Any], object] | None = None
    # A cheap call that succeeds when the peer answers again (a health check),
    # given as a callable returning a future whose `result()` raises a
    # `PeerError` while the peer does not answer; None: never probed.
    probe: Callable[[float], Any] | None = None
    # Why this node must not send now (e.g. its directory is stale); "" to send.
    hold_sends: Callable[[], str] = lambda: ""
    # Told after each round, once its outcome is saved; a listener that raises is logged.
    on_round: list[Callable[[RoundTimes], None]] = field(default_factory=list)

    def state(self) -> PeerState:
        return self.store.load(self.peer.node_id, self.peer.endpoint)

    def due(self, now: datetime) -> bool:
        at = self.state().next_attempt_at
        return at is None or at <= now

    def run(self, now: datetime, *, pull: bool = True) -> PeerState:
        """One round now; the outcome is persisted and returned. A peer's
        failure (a `PeerError`) is the peer's; anything else is a bug of ours,
        logged with its traceback. `pull=False`: push only (a round for a poke)."""
        started = time.perf_counter()
        state = self.state()
        state.last_attempt_at = now
        result = RoundResult()
        try:
            self._exchange(now, result, pull)
        except PeerError as e:
            machine.failed(state, now, self.settings, e.code, e.details, result, self.rng)
            self._log_failure(state, e)
            self.reset()
        except Exception as e:  # our side: a bug, or local storage in trouble
            self.log.exception(
                "sync round failed on this node (not the peer's fault)",
                peer=self.peer.node_id,
                error=f"{type(e).__name__}: {e}",
            )
            machine.failed(
                state, now, self.settings, LOCAL_ERROR, f"{type(e).__name__}: {e}", result, self.rng
            )
            self.reset()
        else:
            self._log_success(machine.succeeded(state, now, self.settings, result), result)
        self.store.save(state)
        self.failures = state.failures
        self.link_down = machine.link_down(state)
        self._tell(RoundTimes(self.peer.node_id, started, time.perf_counter(), bool(state.failures)))
        return state

    def _tell(self, times: RoundTimes) -> None:
        for listener in self.on_round:
            try:
                listener(times)
            except Exception:
                self.log.exception("round listener failed", peer=self.peer.node_id)

    def next_delay(self, state: PeerState) -> float:
        """Seconds until the next round after `state`'s outcome."""
        return machine.next_delay(state, self.settings)

    def _exchange(self, now: datetime, result: RoundResult, pull_too: bool = True) -> None:
        stub = self.stub()
        self._newer_directory(stub)
        held = self.hold_sends()
        timeout, most = self.settings.timeout, self.settings.max_envelopes
        if held:
            self.log.debug("not sending to peer", peer=self.peer.node_id, reason=held)
        else:
            push(stub, self.peer.node_id, self.source, result, timeout, most)
        if self.peer.upstream and pull_too:
            pull(stub, self.peer.node_id, self.sink, now, result, timeout, most)

    def _newer_directory(self, stub: Any) -> None:
        if not self.peer.upstream or self.directory_version is None or self.on_directory is None:
            return
        from gcn.v1 import sync_pb2

        have = self.directory_version()
        try:
            reply = stub.GetDirectory(
                sync_pb2.GetDirectoryRequest(have_version=have), timeout=self.settings.timeout
            )
        except PeerNotFoundError:
            return  # the upstream holds no directory yet
        if not reply.directory and not reply.HasField("timestamp"):
            return
        try:
            # Verified there: newer, unexpired, signed by the trusted root (or a newer timestamp).
            taken = self.on_directory(reply)
        except CryptoError as e:
            self.log.warning("directory from upstream refused", peer=self.peer.node_id, reason=str(e))
            return
        if taken is not None:
            self.log.info("newer directory taken from upstream", peer=self.peer.node_id, had=have)

    def _log_success(self, recovered: machine.Recovered | None, result: RoundResult) -> None:
        if recovered is not None:
            self.log.info(
                "peer reachable again",
                peer=self.peer.node_id,
                after_failures=recovered.after_failures,
                down_seconds=None if recovered.down_seconds is None else round(recovered.down_seconds, 1),
            )
        if result.pushed or result.pulled or result.refused:
            self.log.info(
                "sync round",
                peer=self.peer.node_id,
                pushed=result.pushed,
                pulled=result.pulled,
                refused=result.refused,
                bytes_sent=result.bytes_sent,
                bytes_received=result.bytes_received,
            )

    def _log_failure(self, state: PeerState, e: PeerError) -> None:
        # One warning when the link goes down; the retries are debug lines.
        level = self.log.warning if state.failures == 1 else self.log.debug
        level(
            "peer unreachable" if e.link else "peer sync failed",
            peer=self.peer.node_id,
            code=e.code,
            failures=state.failures,
            backoff_seconds=round(state.backoff_seconds, 3),
            error=e.details,
        )
