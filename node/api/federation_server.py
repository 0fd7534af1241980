"""The federation listener: SyncService and health over mutual TLS, apart
from the officers' NodeService listener."""

from __future__ import annotations

from federation.transport import TlsMaterial
from gcn.v1 import sync_pb2, sync_pb2_grpc
from node.api.grpc_server import RunningServer, new_server, start
from node.api.interceptors import federation_interceptors
from node.api.sync_servicer import SyncServicer

SYNC_SERVICE = sync_pb2.DESCRIPTOR.services_by_name["SyncService"].full_name


def build_federation_server(
    servicer: SyncServicer,
    listen: str,
    tls: TlsMaterial,
    *,
    max_message_bytes: int = 16 * 1024 * 1024,
    workers: int = 8,
) -> RunningServer:
    server = new_server(
        max_message_bytes=max_message_bytes,
        workers=workers,
        thread_prefix="sync",
        interceptors=federation_interceptors(),
    )
    sync_pb2_grpc.add_SyncServiceServicer_to_server(servicer, server)
    try:
        return start(server, server.add_secure_port(listen, tls.server_credentials()), [SYNC_SERVICE])
    except OSError as e:
        raise OSError(f"cannot listen on {listen}") from e
