"""What a node needs to know about the federation to accept an envelope, as a
Protocol: the receiving side (`federation.receive`) depends on this, not on how the
directory is fetched or stored.

`LocalTrust` is the trust of a node that has no directory yet: it knows only
its own keys, holds only its own audiences, and accepts nothing from others.
`DirectoryTrust` is built from a verified directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from crypto.directory import signing_keyring
from crypto.signing import KeyRing
from federation.audiences import AudienceError, parse_audience
from federation.routing import Topology
from gcn.v1 import directory_pb2 as dir_pb

NodeStatus = int


class Trust(Protocol):
    def keyring(self) -> KeyRing:
        """Every node's signing keys with their validity windows."""
        ...

    def holder_of(self, audience: str) -> str | None:
        """The node that may issue epoch keys for `audience` (None: unknown audience)."""
        ...

    def may_issue_keys(self, origin: str, audience: str) -> bool:
        """Are `origin`'s key messages for `audience` to be believed? The current
        holder's are; so are those of a revoked former holder (its key windows
        end at its revocation, so only what it issued before counts)."""
        ...

    def may_relay(self, caller: str, origin: str, audience: str) -> bool:
        """May `caller` hand us `origin`'s envelopes of `audience`?"""
        ...

    def may_write(self, origin: str, audience: str) -> bool:
        """May `origin` write into `audience` at all (a member or its holder)?"""
        ...

    def is_active(self, node_id: str) -> bool:
        """Is `node_id` a member of the federation in good standing?"""
        ...

    def topology(self) -> Topology | None:
        """The federation graph and audience members (None: no directory)."""
        ...

    def members_of(self, audience: str) -> list[str]:
        """The nodes that may read `audience`."""
        ...


@dataclass(frozen=True)
class LocalTrust:
    node_id: str
    role: str
    country: str
    ring: KeyRing

    def keyring(self) -> KeyRing:
        return self.ring

    def holder_of(self, audience: str) -> str | None:
        try:
            parsed = parse_audience(audience)
        except AudienceError:
            return None
        if parsed.kind == "node":
            return parsed.parts[0]
        if parsed.kind == "national" and parsed.parts[0] == self.country and self.role == "national":
            return self.node_id
        return None

    def may_relay(self, caller: str, origin: str, audience: str) -> bool:
        return caller == origin == self.node_id

    def may_write(self, origin: str, audience: str) -> bool:
        return origin == self.node_id

    def may_issue_keys(self, origin: str, audience: str) -> bool:
        return self.holder_of(audience) == origin

    def is_active(self, node_id: str) -> bool:
        return node_id == self.node_id

    def topology(self) -> Topology | None:
        return None

    def members_of(self, audience: str) -> list[str]:
        return [self.node_id] if self.holder_of(audience) == self.node_id else []


@dataclass(frozen=True)
class DirectoryTrust:
    """Trust derived from a verified directory (plus the node's own keys, which
    may be newer than the directory right after a rotation)."""

    node_id: str
    directory: dir_pb.Directory
    ring: KeyRing
    topo: Topology
    holders: dict[str, str]
    roles: dict[str, tuple[str, str, NodeStatus]]  # node id -> (role, country, status)
    regions: dict[str, str]

    @classmethod
    def build(cls, node_id: str, directory: dir_pb.Directory, own_keys: KeyRing) -> DirectoryTrust:
        ring = signing_keyring(directory)
        merged = KeyRing(
            [*(k for n in directory.nodes for k in ring.keys_of(n.id)), *own_keys.keys_of(node_id)]
        )
        upstreams = {
            n.id: list(n.upstreams) for n in directory.nodes if n.status == dir_pb.NODE_STATUS_ACTIVE
        }
        members = {a.name: list(a.members) for a in directory.audiences}
        return cls(
            node_id,
            directory,
            merged,
            Topology.build(upstreams, members),
            {a.name: a.holder for a in directory.audiences},
            {n.id: (n.role, n.country, n.status) for n in directory.nodes},
            {n.id: n.region for n in directory.nodes},
        )

    def keyring(self) -> KeyRing:
        return self.ring

    def holder_of(self, audience: str) -> str | None:
        if audience.startswith("node:"):
            return audience.removeprefix("node:")
        return self.holders.get(audience)

    def is_active(self, node_id: str) -> bool:
        entry = self.roles.get(node_id)
        return entry is not None and entry[2] == dir_pb.NODE_STATUS_ACTIVE

    def may_issue_keys(self, origin: str, audience: str) -> bool:
        if self.holder_of(audience) == origin:
            return True
        entry = self.roles.get(origin)
        if entry is None or entry[2] == dir_pb.NODE_STATUS_ACTIVE:
            return False
        if audience.startswith("bilateral:"):
            # Held by one side's national node, always the same side (the root's
            # first orientation): the other side's revoked node never held it.
            holder = self.roles.get(self.holder_of(audience) or "")
            if holder is None or holder[1] != entry[1]:
                return False
        return _could_hold(entry[0], entry[1], self.regions.get(origin, ""), audience)

    def may_relay(self, caller: str, origin: str, audience: str) -> bool:
        """An active node relays its own envelopes, and those of audiences it may
        hold: as a member, or as a node on a shortest path between members. Hubs
        relay whatever they hold (membership may have changed since they took it,
        e.g. when the origin was revoked)."""
        if not self.is_active(caller):
            return False
        role = self.roles[caller][0]
        return caller == origin or role in ("regional", "global") or self.topo.may_hold(caller, audience)

    def may_write(self, origin: str, audience: str) -> bool:
        """Members and the holder write into an audience; a node's own `node:`
        audience is its alone. A revoked node counts as a member of the
        audiences its role, country and region put it in: what it wrote before
        its revocation is judged by its keys' windows, not refused here."""
        try:
            parsed = parse_audience(audience)
        except AudienceError:
            return False
        if parsed.kind == "node":
            return parsed.parts[0] == origin
        if self.holder_of(audience) == origin or origin in self.topo.members.get(audience, frozenset()):
            return True
        entry = self.roles.get(origin)
        if entry is None or entry[2] == dir_pb.NODE_STATUS_ACTIVE:
            return False
        return _could_belong(entry[1], self.regions.get(origin, ""), parsed.kind, parsed.parts)

    def topology(self) -> Topology:
        return self.topo

    def members_of(self, audience: str) -> list[str]:
        if audience.startswith("node:"):
            return [audience.removeprefix("node:")]
        return sorted(self.topo.members.get(audience, frozenset()))


def _could_hold(role: str, country: str, region: str, audience: str) -> bool:
    """Would a node of this role, country and region hold `audience`?"""
    try:
        parsed = parse_audience(audience)
    except AudienceError:
        return False
    if parsed.kind == "national":
        return role == "national" and parsed.parts[0] == country
    if parsed.kind == "bilateral":
        return role == "national" and country in parsed.parts
    if parsed.kind == "region":
        return role == "regional" and parsed.parts[0] == region
    return parsed.kind == "global" and role == "global"


def _could_belong(country: str, region: str, kind: str, parts: tuple[str, ...]) -> bool:
    """Would a node of this country and region be a member of such an audience?"""
    if kind == "national":
        return parts[0] == country
    if kind == "bilateral":
        return country in parts
    if kind == "region":
        return parts[0] == region
    return kind == "global"
