"""The transport to a peer: a gRPC channel over mutual TLS.

The client presents its node certificate; it checks the server's certificate
against the federation CA and requires it to name the peer it meant to reach
(`ssl_target_name_override` = the peer's `server_name`), so a node reached at
an address cannot pretend to be another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from crypto.certs import server_name
from gcn.v1 import sync_pb2_grpc

MAX_MESSAGE_BYTES = 16 * 1024 * 1024


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


def peer_channel(tls: TlsMaterial, peer_id: str, endpoint: str) -> grpc.Channel:
    options = [
        ("grpc.ssl_target_name_override", server_name(peer_id)),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # Reconnection pacing is the sync scheduler's job (persisted, with jitter);
        # keep gRPC's own channel backoff short so it never hides a peer that is back.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]
    return grpc.secure_channel(endpoint, tls.channel_credentials(), options=options)


def sync_stub(channel: grpc.Channel) -> sync_pb2_grpc.SyncServiceStub:
    return sync_pb2_grpc.SyncServiceStub(channel)
