"""The CLI's connection to a node: one channel, over TLS checked against the
node's API CA (or in plaintext to a loopback address), that carries the
officer's bearer token on every call; calls with a deadline, gRPC errors turned
into one clear line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import grpc

from gcn.v1 import node_pb2_grpc
from node.cli.errors import AlreadyExistsError, CliError, NodeUnreachableError

__all__ = ["CliError", "ClientTls", "NodeUnreachableError", "call", "connect", "open_channel", "with_token"]


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


@dataclass(frozen=True)
class ClientTls:
    """How a client checks the node: `ca_pem` is what it trusts (None: gRPC's
    default roots), `name` the name the certificate must carry when it is not
    the address's host (`--tls-name`)."""

    ca_pem: bytes | None
    name: str = ""

    def __repr__(self) -> str:
        return f"ClientTls(ca={'given' if self.ca_pem else 'default roots'}, name={self.name!r})"


def open_channel(address: str, tls: ClientTls | None) -> grpc.Channel:
    """A channel to the officer API at `address`: TLS, or plaintext when `tls` is None."""
    if tls is None:
        return grpc.insecure_channel(address)
    options = [("grpc.ssl_target_name_override", tls.name)] if tls.name else []
    credentials = grpc.ssl_channel_credentials(root_certificates=tls.ca_pem)
    return grpc.secure_channel(address, credentials, options=options)


def connect(address: str, token: str | None, tls: ClientTls | None) -> node_pb2_grpc.NodeServiceStub:
    if not token:
        raise CliError(NO_TOKEN)
    return node_pb2_grpc.NodeServiceStub(with_token(open_channel(address, tls), token))


NOT_TRUSTED = (
    "the node's TLS certificate is not signed by a CA this CLI trusts: pass --ca FILE or set "
    "GCN_NODE_CA to the node's API CA (its admin prints it with `gcn api ca`)"
)
WRONG_NAME = (
    "the node's TLS certificate does not carry the name this CLI reached it by: use a name it "
    "carries in --node, or pass --tls-name NAME (`gcn api show` on the node lists them)"
)


def _unavailable(details: str) -> CliError:
    """UNAVAILABLE, told apart: a certificate not trusted or a name it lacks (the
    caller's to fix, exit 2), or no node (exit 1)."""
    if "certificate_verify_failed" in details.lower():
        return CliError(f"{NOT_TRUSTED} ({details})")
    if "Hostname Verification" in details or "not in peer certificate" in details:
        return CliError(f"{WRONG_NAME} ({details})")
    if "handshake failed" in details.lower():
        hint = "a node with [server] tls = off needs --plaintext"
        return NodeUnreachableError(f"node unavailable: the TLS handshake failed ({hint}) ({details})")
    return NodeUnreachableError(f"node unavailable: {details}")


def call(method: Any, request: Any, timeout: float = 15.0) -> Any:
    try:
        return method(request, timeout=timeout)
    except grpc.RpcError as e:
        code = e.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            raise _unavailable(e.details() or "") from e
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise NodeUnreachableError(f"node did not answer within {timeout:.0f}s") from e
        name = code.name.lower().replace("_", " ")
        failed = (
            NodeUnreachableError
            if code == grpc.StatusCode.INTERNAL
            else AlreadyExistsError
            if code == grpc.StatusCode.ALREADY_EXISTS
            else CliError
        )
        raise failed(f"{name}: {e.details()}") from e
