"""One server interceptor: binds request context into structlog and maps domain
errors to gRPC status codes. `INTERNAL` never leaks details: the reply names a
reference that the node's log line carries with the traceback."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import structlog
from google.protobuf.message import DecodeError

from crypto.errors import CryptoError, KeyUnavailableError, SignatureError
from node.errors import (
    ConfigError,
    ConflictError,
    NodeError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    ValidationError,
)
from node.logging import get_logger

log = get_logger(__name__)

_STATUS: list[tuple[type[Exception], grpc.StatusCode]] = [
    (ValidationError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (ConflictError, grpc.StatusCode.FAILED_PRECONDITION),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
    (SignatureError, grpc.StatusCode.PERMISSION_DENIED),
    (KeyUnavailableError, grpc.StatusCode.FAILED_PRECONDITION),
    (CryptoError, grpc.StatusCode.INVALID_ARGUMENT),
    (NodeError, grpc.StatusCode.FAILED_PRECONDITION),
]


def status_for(error: Exception) -> grpc.StatusCode | None:
    for cls, code in _STATUS:
        if isinstance(error, cls):
            return code
    return None


class _Undecodable:
    """Stands in for a request whose bytes did not parse."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _safe_deserializer(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def wrapped(data: bytes) -> Any:
        try:
            return deserialize(data)
        except (DecodeError, ValueError, RuntimeError) as e:
            return _Undecodable(e)

    return wrapped


class ErrorInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = details.method
        behaviour = handler.unary_unary

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            structlog.contextvars.clear_contextvars()
            request_id = uuid.uuid4().hex[:12]
            structlog.contextvars.bind_contextvars(rpc=method, request_id=request_id, peer=context.peer())
            try:
                if isinstance(request, _Undecodable):
                    raise ValidationError("request", "is not a valid protobuf message for this method")
                return behaviour(request, context)
            except Exception as e:
                code = status_for(e)
                if code is None:
                    log.exception("internal error")
                    context.abort(grpc.StatusCode.INTERNAL, f"internal error (reference {request_id})")
                    raise  # unreachable: abort raises
                level = log.warning if code == grpc.StatusCode.PERMISSION_DENIED else log.info
                level("request refused", code=code.name, error=str(e))
                context.abort(code, str(e))
            finally:
                structlog.contextvars.clear_contextvars()

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=_safe_deserializer(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
