"""The error-mapping interceptor, and the request decoding it relies on.

A domain error (`node.errors`, `crypto.errors`) ends the call with its status
code and its message, logged as "request refused" (a warning for
PERMISSION_DENIED, info otherwise). Anything else is a bug of ours: it is
logged with its traceback as "internal error" and answered INTERNAL without
details, naming only the request id the log line carries.

`DecodingInterceptor` (innermost, so that a caller is authenticated before its
bytes are looked at) answers a request that does not parse with
INVALID_ARGUMENT instead of letting gRPC fail the call on its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError

from crypto.errors import CryptoError, KeyUnavailableError, SignatureError
from node.api.interceptors._handlers import Behaviour, rewrap
from node.api.interceptors.context import current_request_id, new_request_id
from node.errors import (
    ConfigError,
    ConflictError,
    DuplicateRecordError,
    NodeError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    ValidationError,
)
from node.logging import get_logger

# The name the refusal log lines have always carried (operators' queries use it).
log = get_logger("node.api.interceptors")

_STATUS: list[tuple[type[Exception], grpc.StatusCode]] = [
    (ValidationError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (ConflictError, grpc.StatusCode.FAILED_PRECONDITION),
    (DuplicateRecordError, grpc.StatusCode.ALREADY_EXISTS),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
    (ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (SignatureError, grpc.StatusCode.PERMISSION_DENIED),
    (KeyUnavailableError, grpc.StatusCode.FAILED_PRECONDITION),
    (CryptoError, grpc.StatusCode.INVALID_ARGUMENT),
    (NodeError, grpc.StatusCode.FAILED_PRECONDITION),
]


def status_for(error: Exception) -> grpc.StatusCode | None:
    """The status code of a domain error; None for anything else (a bug of ours)."""
    for cls, code in _STATUS:
        if isinstance(error, cls):
            return code
    return None


def refuse(e: Exception, context: grpc.ServicerContext) -> NoReturn:
    """Log `e` and end the call with its status code (INTERNAL, with a reference, if unmapped)."""
    code = status_for(e)
    if code is None:
        request_id = current_request_id()
        if request_id is None:  # outside a request context: the log line names the reference itself
            request_id = new_request_id()
            log.exception("internal error", request_id=request_id)
        else:
            log.exception("internal error")
        context.abort(grpc.StatusCode.INTERNAL, f"internal error (reference {request_id})")
        raise e  # unreachable: abort raises
    level = log.warning if code == grpc.StatusCode.PERMISSION_DENIED else log.info
    level("request refused", code=code.name, error=str(e))
    context.abort(code, str(e))
    raise e  # unreachable: abort raises


class ErrorMappingInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Maps what the call raises before it answers (for a response stream:
    while it starts; what its iterator raises later is gRPC's to report)."""

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return handler

        def wrap(behaviour: Behaviour, _response_streams: bool) -> Behaviour:
            def call(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    return behaviour(request, context)
                except Exception as e:
                    refuse(e, context)

            return call

        return rewrap(handler, wrap)


class Undecodable:
    """Stands in for a request whose bytes did not parse."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def safe_deserializer(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`deserialize`, returning an `Undecodable` instead of raising."""
    if deserialize is None:
        return None

    def wrapped(data: bytes) -> Any:
        try:
            return deserialize(data)
        except (DecodeError, ValueError, RuntimeError) as e:
            return Undecodable(e)

    return wrapped


class DecodingInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Unary calls only: a streamed request is decoded message by message, by gRPC."""

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler

        def wrap(behaviour: Behaviour, _response_streams: bool) -> Behaviour:
            def call(request: Any, context: grpc.ServicerContext) -> Any:
                if isinstance(request, Undecodable):
                    raise ValidationError("request", "is not a valid protobuf message for this method")
                return behaviour(request, context)

            return call

        return rewrap(handler, wrap, request_deserializer=safe_deserializer(handler.request_deserializer))
