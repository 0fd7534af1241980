"""One round with one peer (`federation.peer_sync.PeerSync`) over fakes, and
the transport's translation of status codes (`federation.transport`): a
peer's failure is a `PeerError` and counts as the peer's; anything else is a
bug of ours, logged with its traceback; the job's probes tell the two apart
the same way. No network, no APScheduler thread."""

from __future__ import annotations

import random
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from federation import vectors
from federation.errors import PeerError, PeerNotFoundError, PeerUnreachableError, peer_error
from federation.peer_machine import PeerState, SyncSettings
from federation.peer_sync import PeerSync
from federation.peers import Peer
from federation.scheduler import SyncScheduler
from federation.transport import PeerFuture, PeerStub, as_peer_error
from gcn.v1 import sync_pb2
from tests.conftest import NOW
from tests.federation.test_scheduler import MemoryStates, NothingToSend, NothingToStore, RecordingLog

SETTINGS = SyncSettings(interval=30, backoff_initial=2, backoff_max=60, timeout=5, probe_interval=1)


class Status(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@dataclass
class FakeSyncPeer:
    """A SyncService stub that fails the calls it is told to, as gRPC does."""

    fail: dict[str, Status] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    def GetVector(self, request: object, timeout: float) -> sync_pb2.VersionVector:
        self._call("GetVector")
        return sync_pb2.VersionVector()

    def Pull(self, request: object, timeout: float) -> sync_pb2.PullResponse:
        self._call("Pull")
        return sync_pb2.PullResponse()

    def Push(self, request: object, timeout: float) -> sync_pb2.PushResponse:
        self._call("Push")
        return sync_pb2.PushResponse()

    def GetDirectory(self, request: object, timeout: float) -> Any:
        self._call("GetDirectory")
        return type("Reply", (), {"directory": b"", "HasField": lambda self, name: False})()


def _ps(
    fake: FakeSyncPeer, log: RecordingLog, *, upstream: bool = True, **kw: Any
) -> tuple[PeerSync, list[str]]:
    resets: list[str] = []
    ps = PeerSync(
        Peer("HUB", "hub:1", upstream=upstream),
        lambda: PeerStub(fake),
        NothingToSend(),
        NothingToStore(),
        MemoryStates(),
        SETTINGS,
        log,
        random.Random(1),
        reset=lambda: resets.append("reset"),
        **kw,
    )
    return ps, resets


def test_status_codes_become_domain_errors() -> None:
    unreachable = as_peer_error(Status(grpc.StatusCode.UNAVAILABLE, "connection refused"))
    assert isinstance(unreachable, PeerUnreachableError) and unreachable.link
    assert (unreachable.code, unreachable.details) == ("UNAVAILABLE", "connection refused")
    assert isinstance(as_peer_error(Status(grpc.StatusCode.DEADLINE_EXCEEDED)), PeerUnreachableError)
    assert isinstance(as_peer_error(Status(grpc.StatusCode.NOT_FOUND)), PeerNotFoundError)
    denied = as_peer_error(Status(grpc.StatusCode.PERMISSION_DENIED, "not a member"))
    assert type(denied) is PeerError and not denied.link and str(denied) == "PERMISSION_DENIED: not a member"
    assert as_peer_error(grpc.RpcError()).code == "UNKNOWN"  # no status at all
    assert type(peer_error("INTERNAL")) is PeerError


def test_the_peer_stub_raises_domain_errors_and_passes_replies_through() -> None:
    fake = FakeSyncPeer(fail={"Push": Status(grpc.StatusCode.RESOURCE_EXHAUSTED, "too big")})
    stub = PeerStub(fake)
    assert stub.GetVector(sync_pb2.GetVectorRequest(), timeout=1) == sync_pb2.VersionVector()
    with pytest.raises(PeerError) as err:
        stub.Push(sync_pb2.PushRequest(), timeout=1)
    assert err.value.code == "RESOURCE_EXHAUSTED" and isinstance(err.value.__cause__, grpc.RpcError)


def test_a_future_that_failed_raises_a_domain_error() -> None:
    failed: Future[None] = Future()
    failed.set_exception(Status(grpc.StatusCode.UNAVAILABLE))
    with pytest.raises(PeerUnreachableError):
        PeerFuture(failed).result()
    done: Future[int] = Future()
    done.set_result(7)
    assert PeerFuture(done).result() == 7


def test_a_round_pushes_then_pulls_from_an_upstream_and_only_pushes_to_a_downstream() -> None:
    up, log = FakeSyncPeer(), RecordingLog()
    ps, _ = _ps(up, log)
    assert ps.run(NOW).failures == 0
    assert up.calls == ["GetVector", "Pull"]  # nothing to send: the vector, then a pull
    down = FakeSyncPeer()
    ps, _ = _ps(down, log, upstream=False)
    ps.run(NOW)
    assert down.calls == ["GetVector"]


def test_a_node_holding_its_sends_still_pulls() -> None:
    fake = FakeSyncPeer()
    ps, _ = _ps(fake, RecordingLog(), hold_sends=lambda: "directory stale")
    assert ps.run(NOW).failures == 0 and fake.calls == ["Pull"]


def test_the_peers_failure_is_the_peers_one_warning_a_reset_and_a_backoff() -> None:
    fake, log = (
        FakeSyncPeer(fail={"Pull": Status(grpc.StatusCode.PERMISSION_DENIED, "not a member")}),
        RecordingLog(),
    )
    ps, resets = _ps(fake, log)
    state = ps.run(NOW)
    assert (state.failures, state.last_error) == (1, "PERMISSION_DENIED: not a member")
    assert 1 <= state.backoff_seconds <= 2 and resets == ["reset"]
    assert not ps.link_down  # it answered: not a probe's business
    assert [(level, event) for level, event, _ in log.lines] == [("warning", "peer sync failed")]
    ps.run(NOW)
    assert log.lines[-1][0] == "debug"  # the retries are debug lines


def test_an_unreachable_peer_is_a_link_down() -> None:
    fake, log = (
        FakeSyncPeer(fail={"GetVector": Status(grpc.StatusCode.UNAVAILABLE, "refused")}),
        RecordingLog(),
    )
    ps, _ = _ps(fake, log)
    assert ps.run(NOW).last_error == "UNAVAILABLE: refused" and ps.link_down and ps.failures == 1
    assert log.lines[0][:2] == ("warning", "peer unreachable")


def test_our_bug_is_logged_with_its_traceback_as_ours() -> None:
    class Broken(NothingToSend):
        def waiting(self, peer: str, theirs: vectors.Vector) -> set[vectors.Stream]:
            raise ValueError("a bug of ours")

    fake, log = FakeSyncPeer(), RecordingLog()
    ps, resets = _ps(fake, log)
    ps.source = Broken()
    state = ps.run(NOW)
    assert state.last_error == "LOCAL: ValueError: a bug of ours" and not ps.link_down
    assert [(level, event) for level, event, _ in log.lines] == [
        ("exception", "sync round failed on this node (not the peer's fault)")
    ]
    assert resets == ["reset"]


def test_an_upstream_without_a_directory_is_no_failure() -> None:
    fake = FakeSyncPeer(fail={"GetDirectory": Status(grpc.StatusCode.NOT_FOUND, "no directory")})
    taken: list[object] = []
    ps, _ = _ps(fake, RecordingLog(), directory_version=lambda: 1, on_directory=taken.append)
    assert ps.run(NOW).failures == 0 and fake.calls == ["GetDirectory", "GetVector", "Pull"] and taken == []


def test_an_upstream_that_fails_the_directory_call_fails_the_round() -> None:
    fake = FakeSyncPeer(fail={"GetDirectory": Status(grpc.StatusCode.UNAVAILABLE)})
    ps, _ = _ps(fake, RecordingLog(), directory_version=lambda: 1, on_directory=lambda r: None)
    assert ps.run(NOW).last_error.startswith("UNAVAILABLE") and fake.calls == ["GetDirectory"]


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _down_for_a_while(probe: Any, log: RecordingLog) -> tuple[SyncScheduler, Mono]:
    """A scheduler (never started) whose one peer is down and not due for a while."""
    fake = FakeSyncPeer(fail={"GetVector": Status(grpc.StatusCode.UNAVAILABLE)})
    ps, _ = _ps(fake, log, probe=probe)
    ps.run(NOW)
    mono = Mono()
    sched = SyncScheduler([ps], lambda: NOW, log, settings=SETTINGS, monotonic=mono)
    mono.t -= 100  # its round is 100 s away
    return sched, mono


def test_a_probe_the_peer_does_not_answer_is_a_debug_line_and_one_that_breaks_is_our_bug() -> None:
    def unanswered(timeout: float) -> PeerFuture:
        f: Future[None] = Future()
        f.set_exception(Status(grpc.StatusCode.UNAVAILABLE))
        return PeerFuture(f)

    log = RecordingLog()
    sched, _ = _down_for_a_while(unanswered, log)
    log.lines.clear()
    assert sched.probe() == []
    assert [(level, event) for level, event, _ in log.lines] == [("debug", "probe unanswered")]

    def broken(timeout: float) -> Any:
        f: Future[None] = Future()
        f.set_exception(TypeError("a bug of ours"))
        return f

    log = RecordingLog()
    sched, _ = _down_for_a_while(broken, log)
    log.lines.clear()
    assert sched.probe() == []
    assert [(level, event) for level, event, _ in log.lines] == [("exception", "probe failed on this node")]


def test_a_probe_that_is_answered_brings_the_round_forward() -> None:
    def answered(timeout: float) -> PeerFuture:
        f: Future[None] = Future()
        f.set_result(None)
        return PeerFuture(f)

    log = RecordingLog()
    sched, _ = _down_for_a_while(answered, log)
    assert sched.probe() == ["HUB"]


def test_the_state_a_round_leaves_is_saved() -> None:
    fake = FakeSyncPeer()
    ps, _ = _ps(fake, RecordingLog())
    ps.run(NOW)
    saved: PeerState = ps.state()
    assert saved.last_success_at == NOW and saved.last_attempt_at == NOW


def test_a_push_only_round_does_not_pull_from_the_upstream() -> None:
    fake, log = FakeSyncPeer(), RecordingLog()
    ps, _ = _ps(fake, log)
    ps.run(NOW, pull=False)
    assert "GetVector" in fake.calls and "Pull" not in fake.calls
    ps.run(NOW)
    assert fake.calls.count("Pull") == 1
