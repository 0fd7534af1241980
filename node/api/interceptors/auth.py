"""The authentication-and-roles interceptor. Every NodeService call must carry
``authorization: Bearer <token>`` metadata; the token names a user (through an
`Authenticator`, the node's `UserStore`) whose role must reach the method's
entry in `node.api.permissions`. Health and reflection stay open; a call to any
other service registered on the same server is refused (default deny). The
user's name and role are bound into the log context, never the token.

It raises domain errors (`UnauthenticatedError`, `PermissionDeniedError`);
the error-mapping interceptor outside it turns them into status codes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any, Protocol

import grpc
import structlog

from node.api.interceptors._handlers import Behaviour, rewrap
from node.api.permissions import NODE_PERMISSIONS, NODE_SERVICE, authorize
from node.errors import PermissionDeniedError, UnauthenticatedError
from node.storage.users import Role, User

OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
NO_TOKEN = "no token: send 'authorization: Bearer <token>' metadata (gcn: --token or GCN_TOKEN)"
MALFORMED = "malformed authorization metadata: expected one 'authorization: Bearer <token>'"


# The authenticated user of the NodeService call running in this thread.
_CALLER: ContextVar[User | None] = ContextVar("gcn_caller", default=None)


def current_caller() -> User:
    """Who is making the NodeService call being served (set once the call is
    authenticated and authorised); UnauthenticatedError outside such a call."""
    user = _CALLER.get()
    if user is None:
        raise UnauthenticatedError("no authenticated caller for this call")
    return user


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


Guard = Callable[[grpc.ServicerContext], None]
"""What a call must pass before its method runs: returns, or raises a domain error."""


class AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        authenticator: Authenticator,
        *,
        permissions: Mapping[str, Role] = NODE_PERMISSIONS,
        protected_service: str = NODE_SERVICE.full_name,
        open_services: frozenset[str] = OPEN_SERVICES,
    ) -> None:
        self.authenticator = authenticator
        self.permissions = permissions
        self.protected_service = protected_service
        self.open_services = open_services

    def guard(self, method: str) -> Guard | None:
        """What a call to `method` ("/package.Service/Method") must pass first (None: nothing)."""
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
            _CALLER.set(user)

        return check

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return handler
        guard = self.guard(details.method)
        if guard is None:
            return handler

        def wrap(behaviour: Behaviour, _response_streams: bool) -> Behaviour:
            def call(request: Any, context: grpc.ServicerContext) -> Any:
                # A server thread serves many calls: nobody's identity is left behind.
                _CALLER.set(None)
                try:
                    guard(context)
                    return behaviour(request, context)
                finally:
                    _CALLER.set(None)

            return call

        return rewrap(handler, wrap)
