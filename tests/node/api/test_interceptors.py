"""Each server interceptor on its own, without a server: fake handlers, a fake
servicer context whose `abort` raises as gRPC's does. (Over real gRPC the
interceptors together are tested by test_auth.py and test_server.py.)"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
import structlog

from crypto.errors import CryptoError, KeyUnavailableError, SignatureError
from gcn.v1 import node_pb2 as npb
from node.api.interceptors import (
    OPEN_SERVICES,
    AuthInterceptor,
    DecodingInterceptor,
    ErrorMappingInterceptor,
    RequestContextInterceptor,
    federation_interceptors,
    officer_interceptors,
    status_for,
)
from node.api.interceptors.auth import MALFORMED, NO_TOKEN
from node.api.interceptors.context import bind_request, current_request_id, end_request
from node.api.interceptors.errors import Undecodable, refuse, safe_deserializer
from node.errors import (
    ConfigError,
    ConflictError,
    FailedPreconditionError,
    NodeError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    ValidationError,
)
from node.logging import configure_logging
from node.storage.users import Role, User

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class AbortedError(Exception):
    pass


@dataclass
class FakeContext:
    metadata: list[tuple[str, Any]] = field(default_factory=list)
    code: grpc.StatusCode | None = None
    details: str | None = None

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5555"

    def invocation_metadata(self) -> list[tuple[str, Any]]:
        return self.metadata

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise AbortedError()


@dataclass
class Details:
    method: str


class Users:
    def __init__(self, **tokens: Role) -> None:
        self.tokens = tokens

    def authenticate(self, token: str) -> User:
        role = self.tokens.get(token)
        if role is None:
            raise UnauthenticatedError("unknown or revoked token")
        return User(token.removesuffix("_token"), role, T0, T0, None)


def _through(interceptors: list[Any], handler: Any, method: str) -> Any:
    """The handler gRPC would run for `method`: interceptors[0] outermost, as grpc.server chains them."""

    def continuation(index: int) -> Callable[[Any], Any]:
        if index == len(interceptors):
            return lambda _details: handler
        return lambda details: interceptors[index].intercept_service(continuation(index + 1), details)

    return continuation(0)(Details(method))


def _unary(behaviour: Callable[[Any, Any], Any]) -> Any:
    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=npb.GetRecordRequest.FromString,
        response_serializer=lambda m: m,
    )


def _bound() -> dict[str, Any]:
    return dict(structlog.contextvars.get_contextvars())


@pytest.fixture(autouse=True)
def _fresh_log_context() -> Iterator[None]:
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging("json", "debug", stream=out)
    yield lambda: [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


# -- request context -----------------------------------------------------------------------------


def test_a_unary_call_runs_with_its_context_bound_and_cleared_after() -> None:
    seen: list[dict[str, Any]] = []
    structlog.contextvars.bind_contextvars(user="left-over-from-another-call")
    handler = _through(
        [RequestContextInterceptor()], _unary(lambda req, ctx: seen.append(_bound())), "/a.S/M"
    )
    handler.unary_unary(None, FakeContext())
    (context,) = seen
    assert set(context) == {"rpc", "request_id", "peer"}
    assert context["rpc"] == "/a.S/M" and context["peer"] == "ipv4:127.0.0.1:5555"
    assert len(context["request_id"]) == 12
    assert _bound() == {}


def test_each_call_has_its_own_request_id_and_a_failing_call_is_cleared_too() -> None:
    ids: list[str | None] = []

    def fail(_req: Any, _ctx: Any) -> None:
        ids.append(current_request_id())
        raise RuntimeError("boom")

    handler = _through([RequestContextInterceptor()], _unary(fail), "/a.S/M")
    for _ in range(2):
        with pytest.raises(RuntimeError):
            handler.unary_unary(None, FakeContext())
        assert _bound() == {}
    assert len(set(ids)) == 2 and None not in ids


def test_a_response_stream_keeps_its_context_until_it_ends() -> None:
    def watch(_req: Any, _ctx: Any) -> Iterator[str | None]:
        yield current_request_id()
        yield current_request_id()

    stream = grpc.unary_stream_rpc_method_handler(watch)
    handler = _through([RequestContextInterceptor()], stream, "/a.S/Watch")
    responses = handler.unary_stream(None, FakeContext())
    first = next(responses)
    assert first is not None and _bound()["rpc"] == "/a.S/Watch"
    assert list(responses) == [first]
    assert _bound() == {}


def test_a_request_stream_is_bound_like_a_unary_call() -> None:
    seen: list[dict[str, Any]] = []

    def total(requests: Iterator[int], _ctx: Any) -> int:
        seen.append(_bound())
        return sum(requests)

    handler = _through([RequestContextInterceptor()], grpc.stream_unary_rpc_method_handler(total), "/a.S/Sum")
    assert handler.stream_unary(iter([1, 2]), FakeContext()) == 3
    assert seen[0]["rpc"] == "/a.S/Sum" and _bound() == {}


def test_a_late_close_does_not_clear_another_calls_context() -> None:
    mine = bind_request("/a.S/M", "peer")
    other = bind_request("/a.S/Other", "peer")
    end_request(mine)
    assert current_request_id() == other
    end_request(other)
    assert _bound() == {}


def test_an_unknown_method_is_left_to_grpc() -> None:
    for interceptor in officer_interceptors(Users()):
        assert interceptor.intercept_service(lambda _d: None, Details("/a.S/M")) is None


# -- authentication and roles --------------------------------------------------------------------


def _guard(method: str, users: Users | None = None) -> Any:
    return AuthInterceptor(users or Users(analyst_token=Role.ANALYST)).guard(method)


def test_health_and_reflection_are_open() -> None:
    for service in OPEN_SERVICES:
        assert _guard(f"/{service}/Anything") is None


def test_other_services_are_refused_by_default() -> None:
    with pytest.raises(PermissionDeniedError, match=r"^/x.Other/Echo is not open to callers of this server$"):
        _guard("/x.Other/Echo")(FakeContext([("authorization", "Bearer analyst_token")]))


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ([], NO_TOKEN),
        ([("user-agent", "x")], NO_TOKEN),
        ([("authorization", "analyst_token")], MALFORMED),
        ([("authorization", "Basic analyst_token")], MALFORMED),
        ([("authorization", "Bearer a b")], MALFORMED),
        ([("authorization", "Bearer analyst_token")] * 2, MALFORMED),
        ([("authorization", "Bearer nobody")], "unknown or revoked token"),
    ],
)
def test_node_service_calls_must_bring_one_known_bearer_token(
    metadata: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(UnauthenticatedError) as raised:
        _guard("/gcn.v1.NodeService/GetRecord")(FakeContext(metadata))
    assert str(raised.value) == message
    assert _bound() == {}


def test_the_role_must_reach_the_methods_entry_and_the_user_is_bound_not_the_token() -> None:
    context = FakeContext([("authorization", "Bearer analyst_token")])
    _guard("/gcn.v1.NodeService/GetRecord")(context)
    assert _bound() == {"user": "analyst", "role": "analyst"}
    with pytest.raises(
        PermissionDeniedError, match=r"^role analyst may not call RecordSeizure \(needs officer\)$"
    ):
        _guard("/gcn.v1.NodeService/RecordSeizure")(context)
    with pytest.raises(PermissionDeniedError, match=r"^no role may call Watch$"):
        _guard("/gcn.v1.NodeService/Watch")(context)
    assert "analyst_token" not in json.dumps(_bound())


def test_the_guard_runs_before_the_method_unary_or_streaming() -> None:
    ran: list[str] = []
    unary = _through([AuthInterceptor(Users())], _unary(lambda req, ctx: ran.append("unary")), "/x.Other/M")
    with pytest.raises(PermissionDeniedError):
        unary.unary_unary(None, FakeContext())

    def watch_them(_req: Any, _ctx: Any) -> Iterator[Any]:
        ran.append("stream")
        return iter(())

    stream = grpc.unary_stream_rpc_method_handler(watch_them)
    watch = _through([AuthInterceptor(Users())], stream, "/gcn.v1.NodeService/Watch")
    with pytest.raises(UnauthenticatedError):
        watch.unary_stream(None, FakeContext())
    assert ran == []
    health = _through([AuthInterceptor(Users())], stream, "/grpc.health.v1.Health/Watch")
    assert health is stream


# -- error mapping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ValidationError("goods", "must not be empty"), grpc.StatusCode.INVALID_ARGUMENT),
        (NotFoundError("no such record"), grpc.StatusCode.NOT_FOUND),
        (ConflictError("already retracted"), grpc.StatusCode.FAILED_PRECONDITION),
        (PermissionDeniedError("no"), grpc.StatusCode.PERMISSION_DENIED),
        (UnauthenticatedError("who"), grpc.StatusCode.UNAUTHENTICATED),
        (ConfigError("bad config"), grpc.StatusCode.FAILED_PRECONDITION),
        (FailedPreconditionError("stale"), grpc.StatusCode.FAILED_PRECONDITION),
        (NodeError("other"), grpc.StatusCode.FAILED_PRECONDITION),
        (SignatureError("forged"), grpc.StatusCode.PERMISSION_DENIED),
        (KeyUnavailableError("no key"), grpc.StatusCode.FAILED_PRECONDITION),
        (CryptoError("bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (RuntimeError("bug"), None),
        (KeyError("bug"), None),
    ],
)
def test_status_codes(error: Exception, code: grpc.StatusCode | None) -> None:
    assert status_for(error) == code


def test_a_domain_error_ends_the_call_with_its_code_and_message(
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    for error, level in ((NotFoundError("no record r1"), "info"), (PermissionDeniedError("no"), "warning")):
        context = FakeContext()
        with pytest.raises(AbortedError):
            refuse(error, context)
        assert (context.code, context.details) == (status_for(error), str(error))
        line = log_lines()[-1]
        assert (line["event"], line["level"], line["error"]) == ("request refused", level, str(error))
        assert context.code is not None and line["code"] == context.code.name
        assert line["logger"] == "node.api.interceptors"


def test_our_bug_is_logged_with_its_traceback_and_answered_without_details(
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    request_id = bind_request("/a.S/M", "peer")
    context = FakeContext()
    with pytest.raises(AbortedError):
        try:
            raise RuntimeError("secret detail")
        except RuntimeError as e:  # as the interceptor calls it: while handling the error
            refuse(e, context)
    assert context.code == grpc.StatusCode.INTERNAL
    assert context.details == f"internal error (reference {request_id})"
    line = log_lines()[-1]
    assert (line["event"], line["level"], line["request_id"]) == ("internal error", "error", request_id)
    assert "RuntimeError: secret detail" in line["exception"]


def test_outside_a_request_context_the_reference_is_logged_with_the_error(
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    context = FakeContext()
    with pytest.raises(AbortedError):
        refuse(RuntimeError("bug"), context)
    line = log_lines()[-1]
    assert context.details == f"internal error (reference {line['request_id']})"


def test_the_error_interceptor_maps_what_a_call_raises_and_passes_replies_through() -> None:
    def get(request: Any, _ctx: Any) -> Any:
        if request.record_id == "missing":
            raise NotFoundError("no record missing")
        return "reply"

    handler = _through([ErrorMappingInterceptor()], _unary(get), "/a.S/M")
    assert handler.unary_unary(npb.GetRecordRequest(record_id="r1"), FakeContext()) == "reply"
    context = FakeContext()
    with pytest.raises(AbortedError):
        handler.unary_unary(npb.GetRecordRequest(record_id="missing"), context)
    assert (context.code, context.details) == (grpc.StatusCode.NOT_FOUND, "no record missing")


# -- decoding ------------------------------------------------------------------------------------


def test_undecodable_bytes_become_a_stand_in_not_an_exception() -> None:
    decode = safe_deserializer(npb.GetRecordRequest.FromString)
    assert decode is not None and safe_deserializer(None) is None
    assert decode(npb.GetRecordRequest(record_id="r1").SerializeToString()).record_id == "r1"
    assert isinstance(decode(b"\xff\xff\xff"), Undecodable)


def test_an_undecodable_request_is_refused_before_the_method_runs() -> None:
    ran: list[Any] = []
    handler = _through([DecodingInterceptor()], _unary(lambda req, ctx: ran.append(req)), "/a.S/M")
    request = handler.request_deserializer(b"\xff\xff\xff")
    with pytest.raises(ValidationError, match=r"^request: is not a valid protobuf message for this method$"):
        handler.unary_unary(request, FakeContext())
    assert ran == []
    stream = grpc.stream_stream_rpc_method_handler(lambda reqs, ctx: reqs)
    assert _through([DecodingInterceptor()], stream, "/a.S/M") is stream


# -- together ------------------------------------------------------------------------------------


def test_the_officer_chain_authenticates_before_it_decodes_and_logs_in_context(
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    chain = officer_interceptors(Users(analyst_token=Role.ANALYST))
    handler = _through(chain, _unary(lambda req, ctx: "reply"), "/gcn.v1.NodeService/GetRecord")
    garbage = handler.request_deserializer(b"\xff\xff\xff")
    context = FakeContext()
    with pytest.raises(AbortedError):
        handler.unary_unary(garbage, context)
    assert (context.code, context.details) == (grpc.StatusCode.UNAUTHENTICATED, NO_TOKEN)
    context = FakeContext([("authorization", "Bearer analyst_token")])
    with pytest.raises(AbortedError):
        handler.unary_unary(garbage, context)
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    line = log_lines()[-1]
    assert (line["rpc"], line["user"], line["role"]) == (
        "/gcn.v1.NodeService/GetRecord",
        "analyst",
        "analyst",
    )
    assert _bound() == {}
    request = npb.GetRecordRequest(record_id="r1")
    assert handler.unary_unary(request, FakeContext([("authorization", "Bearer analyst_token")])) == "reply"


def test_the_federation_chain_authenticates_nobody_itself() -> None:
    chain = federation_interceptors()
    assert not any(isinstance(i, AuthInterceptor) for i in chain)
    handler = _through(chain, _unary(lambda req, ctx: "reply"), "/gcn.v1.SyncService/Pull")
    assert handler.unary_unary(npb.GetRecordRequest(), FakeContext()) == "reply"


def test_over_grpc_a_watched_health_stream_is_open_and_ends_cleanly() -> None:
    """Health Watch (a response stream) through the officer chain on a real server:
    no token needed, and the stream ends when the client cancels it."""
    from concurrent import futures

    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(2), interceptors=officer_interceptors(Users()))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(), timeout=5)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
            with pytest.raises(grpc.RpcError) as ended:
                next(watch)
            assert ended.value.code() == grpc.StatusCode.CANCELLED
    finally:
        server.stop(None)
