"""The CLI's connection to a node: one channel, calls with a deadline, gRPC
errors turned into one clear line."""

from __future__ import annotations

from typing import Any

import grpc

from gcn.v1 import node_pb2_grpc


class CliError(Exception):
    """Printed as one line; the process exits non-zero."""


def connect(address: str) -> node_pb2_grpc.NodeServiceStub:
    channel = grpc.insecure_channel(address)
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
