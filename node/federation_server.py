"""The federation listener: SyncService and health over mutual TLS, apart
from the officers' NodeService listener."""

from __future__ import annotations

from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from federation.transport import TlsMaterial
from gcn.v1 import sync_pb2, sync_pb2_grpc
from node.interceptors import ErrorInterceptor
from node.sync_servicer import SyncServicer

SYNC_SERVICE = sync_pb2.DESCRIPTOR.services_by_name["SyncService"].full_name


@dataclass
class RunningFederationServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer

    def stop(self, grace: float | None = None) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


def build_federation_server(
    servicer: SyncServicer,
    listen: str,
    tls: TlsMaterial,
    *,
    max_message_bytes: int = 16 * 1024 * 1024,
    workers: int = 8,
) -> RunningFederationServer:
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync"),
        interceptors=[ErrorInterceptor()],
        options=options,
    )
    sync_pb2_grpc.add_SyncServiceServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_secure_port(listen, tls.server_credentials())
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    server.start()
    for name in ("", SYNC_SERVICE):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningFederationServer(server, port, health_servicer)
