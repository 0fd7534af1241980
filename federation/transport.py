"""The transport to a peer: a gRPC channel over mutual TLS, and a stub whose
calls raise `federation.errors.PeerError`s in place of gRPC status codes (so
the scheduler and the sync rounds know no grpc).

The client presents its node certificate; it checks the server's certificate
against the federation CA and requires it to name the peer it meant to reach
(`ssl_target_name_override` = the peer's `server_name`), so a node reached at
an address cannot pretend to be another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from crypto.certs import server_name
from federation.errors import PeerError, peer_error
from gcn.v1 import directory_pb2 as dir_pb
from gcn.v1 import search_pb2, sync_pb2, sync_pb2_grpc

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
R = TypeVar("R")


@dataclass(frozen=True)
class TlsMaterial:
    """PEM bytes of the node's TLS key and certificate, and the federation CA."""

    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes

    @classmethod
    def load(cls, directory: Path) -> TlsMaterial:
        return cls(
            (directory / "key.pem").read_bytes(),
            (directory / "cert.pem").read_bytes(),
            (directory / "ca.pem").read_bytes(),
        )

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)], root_certificates=self.ca_pem, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_pem, private_key=self.key_pem, certificate_chain=self.cert_pem
        )


def peer_channel(
    tls: TlsMaterial, peer_id: str, endpoint: str, max_receive: int = MAX_MESSAGE_BYTES
) -> grpc.Channel:
    """A mutual-TLS channel to `peer_id`; replies larger than `max_receive` fail."""
    options = [
        ("grpc.ssl_target_name_override", server_name(peer_id)),
        ("grpc.max_receive_message_length", max_receive),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # Reconnection pacing is the sync scheduler's job (persisted, with jitter);
        # keep gRPC's own channel backoff short so it never hides a peer that is back.
        # Not "grpc.min_reconnect_backoff_ms": gRPC also takes it as the time
        # a connection attempt may take, and 200 ms cut every handshake over a
        # link with a long round trip (or a hub that is slow to accept) short.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]
    return grpc.secure_channel(endpoint, tls.channel_credentials(), options=options)


def sync_stub(channel: grpc.Channel) -> sync_pb2_grpc.SyncServiceStub:
    return sync_pb2_grpc.SyncServiceStub(channel)


def as_peer_error(e: grpc.RpcError) -> PeerError:
    """The domain error for a failed gRPC call (or future)."""
    code = e.code() if callable(getattr(e, "code", None)) else None
    details = e.details() if callable(getattr(e, "details", None)) else None
    return peer_error(code.name if code is not None else "UNKNOWN", details or "")


def _call(method: Callable[..., R], request: Any, timeout: float) -> R:
    try:
        return method(request, timeout=timeout)
    except grpc.RpcError as e:
        raise as_peer_error(e) from e


class PeerStub:
    """A SyncService stub (or a fake with its methods) whose failed calls raise
    `PeerError`s (`PeerUnreachableError` for a link that is down or timed out)."""

    def __init__(self, stub: Any) -> None:
        self.stub = stub

    def GetVector(self, request: sync_pb2.GetVectorRequest, timeout: float) -> sync_pb2.VersionVector:  # noqa: N802
        reply: sync_pb2.VersionVector = _call(self.stub.GetVector, request, timeout)
        return reply

    def Pull(self, request: sync_pb2.PullRequest, timeout: float) -> sync_pb2.PullResponse:  # noqa: N802
        reply: sync_pb2.PullResponse = _call(self.stub.Pull, request, timeout)
        return reply

    def Push(self, request: sync_pb2.PushRequest, timeout: float) -> sync_pb2.PushResponse:  # noqa: N802
        reply: sync_pb2.PushResponse = _call(self.stub.Push, request, timeout)
        return reply

    def GetDirectory(  # noqa: N802
        self, request: sync_pb2.GetDirectoryRequest, timeout: float
    ) -> dir_pb.SignedDirectory:
        reply: dir_pb.SignedDirectory = _call(self.stub.GetDirectory, request, timeout)
        return reply


def peer_stub(channel: grpc.Channel) -> PeerStub:
    """The SyncService of the peer at the end of `channel`, raising `PeerError`s."""
    return PeerStub(sync_stub(channel))


class PeerFuture:
    """A gRPC future whose `result()` raises a `PeerError` when the call failed."""

    def __init__(self, future: Any) -> None:
        self.future = future

    def result(self, timeout: float | None = None) -> Any:
        """The reply; a `PeerError` when the call failed; `TimeoutError` when
        `timeout` passed first (the call itself may still finish later)."""
        try:
            return self.future.result(timeout)
        except grpc.FutureTimeoutError as e:
            raise TimeoutError(f"no reply within {timeout} s") from e
        except grpc.RpcError as e:
            raise as_peer_error(e) from e

    def cancel(self) -> bool:
        return bool(self.future.cancel())

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        self.future.add_done_callback(fn)


def hub_search(channel: grpc.Channel, request: search_pb2.HubSearchRequest, timeout: float) -> PeerFuture:
    """Start a `HubSearch` call on the hub at the end of `channel`."""
    return PeerFuture(sync_stub(channel).HubSearch.future(request, timeout=timeout))
