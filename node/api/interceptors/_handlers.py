"""Rebuilding a gRPC method handler around a wrapped behaviour, whatever its
shape (unary or streaming on either side), so that each interceptor states
only what it adds to a call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

Behaviour = Callable[[Any, grpc.ServicerContext], Any]
Wrap = Callable[[Behaviour, bool], Behaviour]
"""Given a handler's behaviour and whether its response streams, the behaviour to run instead."""

_SHAPES: dict[str, Callable[..., Any]] = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}
_KEEP: Any = object()


def rewrap(handler: Any, wrap: Wrap, *, request_deserializer: Any = _KEEP) -> Any:
    """`handler` with its behaviour replaced by `wrap(behaviour, response_streams)`,
    and its request deserializer by `request_deserializer` when given."""
    for shape, make in _SHAPES.items():
        behaviour = getattr(handler, shape)
        if behaviour is not None:
            return make(
                wrap(behaviour, shape.endswith("_stream")),
                request_deserializer=(
                    handler.request_deserializer if request_deserializer is _KEEP else request_deserializer
                ),
                response_serializer=handler.response_serializer,
            )
    return handler
