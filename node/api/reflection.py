"""Server reflection as both `grpc.reflection.v1` and `grpc.reflection.v1alpha`.

grpcio-reflection (up to 1.85 at least) ships only v1alpha; clients such as
grpcurl and Postman ask for v1 first. v1 is v1alpha promoted unchanged: the
same messages with the same field numbers under another package. So the v1
service here is the library's v1alpha servicer under the v1 name (the bytes on
the wire are the same), and the v1 `.proto` is v1alpha's descriptor renamed,
added to the default pool so that reflection can describe v1 itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2

V1ALPHA_PACKAGE = "grpc.reflection.v1alpha"
V1_PACKAGE = "grpc.reflection.v1"
V1_FILE = "grpc/reflection/v1/reflection.proto"
V1ALPHA_SERVICE: str = reflection.SERVICE_NAME
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
METHOD = "ServerReflectionInfo"


def _v1_file() -> Any:
    """The v1 reflection file in the default pool (added once, from v1alpha's)."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindFileByName(V1_FILE)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    v1alpha_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = V1_FILE, V1_PACKAGE
    proto.options.Clear()
    old, new = f".{V1ALPHA_PACKAGE}.", f".{V1_PACKAGE}."
    for message in proto.message_type:
        for f in message.field:
            if f.type_name:
                f.type_name = f.type_name.replace(old, new)
    for service in proto.service:
        for m in service.method:
            m.input_type, m.output_type = m.input_type.replace(old, new), m.output_type.replace(old, new)
    return pool.Add(proto)


def v1_message(name: str) -> Any:
    """A message class of `grpc.reflection.v1`, e.g. `ServerReflectionRequest` (for clients and tests)."""
    return message_factory.GetMessageClass(_v1_file().message_types_by_name[name])


def enable_reflection(services: Sequence[str], server: grpc.Server) -> None:
    """Serve reflection v1 and v1alpha on `server`, listing `services` and both reflection services."""
    _v1_file()
    listed = (*services, V1_SERVICE, V1ALPHA_SERVICE)
    servicer = reflection.ReflectionServicer(listed)
    reflection.enable_server_reflection(listed, server)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=v1alpha_pb2.ServerReflectionRequest.FromString,
        response_serializer=v1alpha_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(V1_SERVICE, {METHOD: handler})])
