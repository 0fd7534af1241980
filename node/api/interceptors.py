"""One server interceptor: binds request context into structlog, authenticates
and authorizes the caller, and maps domain errors to gRPC status codes.
`INTERNAL` never leaks details: the reply names a reference that the node's log
line carries with the traceback.

With an `authenticator`, every NodeService call must carry
``authorization: Bearer <token>`` metadata; the caller's role must reach the
method's entry in `node.api.permissions`. Health and reflection stay open; a call to
any other service registered on the same server is refused (default deny). The
user's name and role are bound into the log context, never the token.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import grpc
import structlog
from google.protobuf.message import DecodeError

from crypto.errors import CryptoError, KeyUnavailableError, SignatureError
from node.api.permissions import NODE_PERMISSIONS, NODE_SERVICE, authorize
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
from node.storage.users import Role, User

log = get_logger(__name__)

OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
NO_TOKEN = "no token: send 'authorization: Bearer <token>' metadata (gcn: --token or GCN_TOKEN)"
MALFORMED = "malformed authorization metadata: expected one 'authorization: Bearer <token>'"


class Authenticator(Protocol):
    def authenticate(self, token: str) -> User: ...


def bearer_token(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The token of the one `authorization: Bearer <token>` entry, or UnauthenticatedError.
    Error messages never repeat what was sent."""
    values = [value for key, value in (metadata or ()) if key.lower() == "authorization"]
    if not values:
        raise UnauthenticatedError(NO_TOKEN)
    if len(values) > 1 or not isinstance(values[0], str):
        raise UnauthenticatedError(MALFORMED)
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise UnauthenticatedError(MALFORMED)
    return token


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


Guard = Callable[[grpc.ServicerContext], None]


class ErrorInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Without an `authenticator` every call is let through (as for a server
    that authenticates its callers some other way)."""

    def __init__(
        self,
        authenticator: Authenticator | None = None,
        *,
        permissions: Mapping[str, Role] = NODE_PERMISSIONS,
        protected_service: str = NODE_SERVICE.full_name,
        open_services: frozenset[str] = OPEN_SERVICES,
    ) -> None:
        self.authenticator = authenticator
        self.permissions = permissions
        self.protected_service = protected_service
        self.open_services = open_services

    def _guard(self, method: str) -> Guard | None:
        """What a call to `method` ("/package.Service/Method") must pass first."""
        if self.authenticator is None:
            return None
        service, _, name = method.lstrip("/").partition("/")
        if service in self.open_services:
            return None
        authenticator = self.authenticator
        permissions = self.permissions

        if service != self.protected_service:

            def refuse(_context: grpc.ServicerContext) -> None:
                raise PermissionDeniedError(f"{method} is not open to callers of this server")

            return refuse

        def check(context: grpc.ServicerContext) -> None:
            # The token is never held in a local here (a traceback rendered
            # with its locals must not show it), nor bound into the log context.
            user = authenticator.authenticate(bearer_token(context.invocation_metadata()))
            structlog.contextvars.bind_contextvars(user=user.name, role=user.role.value)
            authorize(user, name, permissions)

        return check

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return handler
        method = details.method
        guard = self._guard(method)
        if handler.unary_unary is None:
            return handler if guard is None else _guarded_streaming(handler, method, guard)
        behaviour = handler.unary_unary

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            structlog.contextvars.clear_contextvars()
            request_id = uuid.uuid4().hex[:12]
            structlog.contextvars.bind_contextvars(rpc=method, request_id=request_id, peer=context.peer())
            try:
                if guard is not None:
                    guard(context)
                if isinstance(request, _Undecodable):
                    raise ValidationError("request", "is not a valid protobuf message for this method")
                return behaviour(request, context)
            except Exception as e:
                _refuse(e, context, request_id)
            finally:
                structlog.contextvars.clear_contextvars()

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=_safe_deserializer(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


def _refuse(e: Exception, context: grpc.ServicerContext, request_id: str) -> None:
    """Log `e` and end the call with its status code (INTERNAL, with a reference, if unmapped)."""
    code = status_for(e)
    if code is None:
        log.exception("internal error")
        context.abort(grpc.StatusCode.INTERNAL, f"internal error (reference {request_id})")
        raise e  # unreachable: abort raises
    level = log.warning if code == grpc.StatusCode.PERMISSION_DENIED else log.info
    level("request refused", code=code.name, error=str(e))
    context.abort(code, str(e))


def _guarded_streaming(handler: Any, method: str, guard: Guard) -> Any:
    """A streaming handler that runs `guard` before the method (no NodeService
    method streams today; this keeps a future one from skipping the check)."""

    def guarded(behaviour: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            structlog.contextvars.clear_contextvars()
            request_id = uuid.uuid4().hex[:12]
            structlog.contextvars.bind_contextvars(rpc=method, request_id=request_id, peer=context.peer())
            try:
                guard(context)
            except Exception as e:
                _refuse(e, context, request_id)
            return behaviour(request, context)

        return call

    shapes = {
        "unary_stream": grpc.unary_stream_rpc_method_handler,
        "stream_unary": grpc.stream_unary_rpc_method_handler,
        "stream_stream": grpc.stream_stream_rpc_method_handler,
    }
    for attribute, make in shapes.items():
        behaviour = getattr(handler, attribute)
        if behaviour is not None:
            return make(
                guarded(behaviour),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler
