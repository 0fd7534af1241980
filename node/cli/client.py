"""The CLI's connection to a node: one channel that carries the officer's
bearer token on every call, calls with a deadline, gRPC errors turned into one
clear line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import grpc

from gcn.v1 import node_pb2_grpc


class CliError(Exception):
    """Printed as one line; the process exits non-zero."""


NO_TOKEN = (
    "unauthenticated: no token: pass --token or set GCN_TOKEN "
    "(the node's admin creates one with `gcn users add NAME --role officer`)"
)


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _CallDetails(_Details, grpc.ClientCallDetails):  # type: ignore[misc]
    pass


class _BearerToken(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds `authorization: Bearer <token>` to every unary call."""

    def __init__(self, token: str) -> None:
        self._metadata = ("authorization", f"Bearer {token}")

    def __repr__(self) -> str:
        return "_BearerToken(***)"

    def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        with_token = _CallDetails(
            details.method,
            details.timeout,
            [*(details.metadata or ()), self._metadata],
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )
        return continuation(with_token, request)


def with_token(channel: grpc.Channel, token: str) -> grpc.Channel:
    """`channel` with the bearer token on every unary call (health and
    reflection do not need it, but carrying it does no harm)."""
    return grpc.intercept_channel(channel, _BearerToken(token))


def connect(address: str, token: str | None) -> node_pb2_grpc.NodeServiceStub:
    if not token:
        raise CliError(NO_TOKEN)
    channel = with_token(grpc.insecure_channel(address), token)
    return node_pb2_grpc.NodeServiceStub(channel)


def call(method: Any, request: Any, timeout: float = 15.0) -> Any:
    try:
        return method(request, timeout=timeout)
    except grpc.RpcError as e:
        code = e.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            raise CliError(f"node unavailable: {e.details()}") from e
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise CliError(f"node did not answer within {timeout:.0f}s") from e
        name = code.name.lower().replace("_", " ")
        raise CliError(f"{name}: {e.details()}") from e
