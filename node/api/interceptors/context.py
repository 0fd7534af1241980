"""The request-context interceptor: every call, unary or streaming, runs with
its method (`rpc`), a fresh `request_id` and the caller's `peer` bound into
structlog's context variables, so that each log line of the call carries them;
they are cleared when the call ends. A server thread serves many calls, so the
binding is also cleared before each one starts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import structlog

from node.api.interceptors._handlers import Behaviour, rewrap


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


def bind_request(method: str, peer: str) -> str:
    """Start a call's log context afresh; returns its request id."""
    structlog.contextvars.clear_contextvars()
    request_id = new_request_id()
    structlog.contextvars.bind_contextvars(rpc=method, request_id=request_id, peer=peer)
    return request_id


def current_request_id() -> str | None:
    """The request id bound for the call running in this thread, if any."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


def end_request(request_id: str) -> None:
    """Clear the log context, unless it already belongs to another call (a
    response stream may be closed after its thread moved on)."""
    if current_request_id() in (request_id, None):
        structlog.contextvars.clear_contextvars()


def _cleared_after(responses: Any, request_id: str) -> Iterator[Any]:
    try:
        yield from responses
    finally:
        end_request(request_id)


class RequestContextInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Outermost: the other interceptors' log lines carry the call's context."""

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return handler
        method = details.method

        def wrap(behaviour: Behaviour, response_streams: bool) -> Behaviour:
            def call(request: Any, context: grpc.ServicerContext) -> Any:
                request_id = bind_request(method, context.peer())
                try:
                    result = behaviour(request, context)
                except BaseException:
                    structlog.contextvars.clear_contextvars()
                    raise
                if response_streams:
                    return _cleared_after(result, request_id)
                structlog.contextvars.clear_contextvars()
                return result

            return call

        return rewrap(handler, wrap)
