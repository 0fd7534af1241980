"""Which peers a node replicates with: its upstreams, and the nodes that name
it as an upstream (its downstreams), as the directory lists them (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gcn.v1 import directory_pb2 as dir_pb


@dataclass(frozen=True, order=True)
class Peer:
    node_id: str
    endpoint: str
    upstream: bool  # True: we go to it (push and pull); False: it comes to us, we only push


def peers_of(directory: dir_pb.Directory, node_id: str, extra_upstreams: Sequence[str] = ()) -> list[Peer]:
    nodes = {n.id: n for n in directory.nodes if n.status == dir_pb.NODE_STATUS_ACTIVE}
    me = nodes.get(node_id)
    ups = set(extra_upstreams) | (set(me.upstreams) if me else set())
    downs = {n.id for n in nodes.values() if node_id in n.upstreams}
    out = []
    for peer_id in sorted((ups | downs) - {node_id}):
        peer = nodes.get(peer_id)
        if peer is not None and peer.endpoints:
            out.append(Peer(peer_id, peer.endpoints[0], peer_id in ups))
    return out


HUB_ROLES = ("regional", "global")


def hubs_above(directory: dir_pb.Directory, node_id: str, extra_upstreams: Sequence[str] = ()) -> list[Peer]:
    """The hubs a node's search asks: its upstream hubs, theirs, and so on up
    to the global hub (active, with an endpoint), nearest first."""
    nodes = {n.id: n for n in directory.nodes if n.status == dir_pb.NODE_STATUS_ACTIVE}
    me = nodes.get(node_id)
    frontier = sorted(set(extra_upstreams) | (set(me.upstreams) if me else set()))
    seen: set[str] = {node_id}
    out: list[Peer] = []
    while frontier:
        following: list[str] = []
        for hub_id in frontier:
            if hub_id in seen:
                continue
            seen.add(hub_id)
            hub = nodes.get(hub_id)
            if hub is None:
                continue
            if hub.role in HUB_ROLES and hub.endpoints:
                out.append(Peer(hub_id, hub.endpoints[0], True))
            following.extend(sorted(hub.upstreams))
        frontier = following
    return out
