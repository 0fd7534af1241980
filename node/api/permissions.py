"""Who may call what: the least role each NodeService method needs.

Analysts read and search; officers also record, retract and correct; admins
may do everything. The table is data, and `check_covers` (run when a server is
built) refuses to start a node whose NodeService has a method the table does
not name, so a new method is never reachable by accident. The interceptor
also refuses a method missing from the table (default deny).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from google.protobuf.descriptor import ServiceDescriptor

from gcn.v1 import node_pb2
from node.errors import ConfigError, PermissionDeniedError
from node.storage.users import Role, User

NODE_SERVICE: ServiceDescriptor = node_pb2.DESCRIPTOR.services_by_name["NodeService"]

NODE_PERMISSIONS: Mapping[str, Role] = MappingProxyType(
    {
        "RecordSeizure": Role.OFFICER,
        "RecordSeizures": Role.OFFICER,
        "RecordAlert": Role.OFFICER,
        "Retract": Role.OFFICER,
        "Correct": Role.OFFICER,
        "GetRecord": Role.ANALYST,
        "ListRecords": Role.ANALYST,
        "GetNodeInfo": Role.ANALYST,
        "Search": Role.ANALYST,
    }
)


def check_covers(table: Mapping[str, Role], service: ServiceDescriptor = NODE_SERVICE) -> None:
    """ConfigError unless `table` names exactly the methods of `service`."""
    methods = {m.name for m in service.methods}
    missing, unknown = methods - set(table), set(table) - methods
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"no role for {', '.join(sorted(missing))}")
        if unknown:
            parts.append(f"{', '.join(sorted(unknown))} not in the service")
        raise ConfigError(f"permission table for {service.full_name}: {'; '.join(parts)}")


def authorize(user: User, method: str, table: Mapping[str, Role] = NODE_PERMISSIONS) -> None:
    """PermissionDeniedError unless `user`'s role may call `method` (a bare method name)."""
    needed = table.get(method)
    if needed is None:
        raise PermissionDeniedError(f"no role may call {method}")
    if not user.role.allows(needed):
        raise PermissionDeniedError(f"role {user.role} may not call {method} (needs {needed})")
