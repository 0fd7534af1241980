"""What the node's two gRPC servers share: options, the interceptors they
are given (`node.api.interceptors`), standard health checking, and a handle
that stops them gracefully."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer

    def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, refuse new calls, give in-flight ones `grace` seconds."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


def new_server(
    *, max_message_bytes: int, workers: int, thread_prefix: str, interceptors: Sequence[Any]
) -> grpc.Server:
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    pool = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_prefix)
    return grpc.server(pool, interceptors=list(interceptors), options=options)


def start(server: grpc.Server, port: int, services: Sequence[str]) -> RunningServer:
    """Add health checking, start, and mark `services` (and the server) SERVING."""
    if port == 0:
        raise OSError("cannot listen on the requested address")
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.start()
    for name in ("", *services):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, port, health_servicer)
