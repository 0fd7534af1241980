"""Who may receive which streams: members of the audience, and the next hops
towards them.

The federation graph is undirected, made of every node's `upstreams` edges
(port → national → RINEX hub → global hub, plus any direct edges). A peer is
entitled to a stream of audience A, from my point of view, if it is a member of
A, or if it lies on a shortest path from me to some member of A (it is my next
hop towards that member). So a hub never sends an envelope to a peer that is
neither in its audience nor on the route to a member, and the origin never
widens an audience: routing only decides who carries it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Topology:
    edges: Mapping[str, frozenset[str]]  # node -> neighbours (both directions)
    members: Mapping[str, frozenset[str]] = field(default_factory=dict)  # audience -> member ids
    _dist: dict[str, dict[str, int]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, upstreams: Mapping[str, Iterable[str]], members: Mapping[str, Iterable[str]]) -> Topology:
        edges: dict[str, set[str]] = {n: set() for n in upstreams}
        for node, ups in upstreams.items():
            for up in ups:
                edges.setdefault(node, set()).add(up)
                edges.setdefault(up, set()).add(node)
        return cls({n: frozenset(v) for n, v in edges.items()}, {a: frozenset(m) for a, m in members.items()})

    def distances(self, source: str) -> dict[str, int]:
        return _bfs(self, source)

    def is_member(self, node: str, audience: str) -> bool:
        if audience.startswith("node:"):
            return audience == f"node:{node}"
        return node in self.members.get(audience, frozenset())

    def entitled(self, me: str, peer: str, audience: str) -> bool:
        """May `me` send `peer` the streams of `audience`?"""
        if self.is_member(peer, audience):
            return True
        if audience.startswith("node:") or peer not in self.edges.get(me, frozenset()):
            return False
        mine, theirs = self.distances(me), self.distances(peer)
        return any(
            m in mine and m in theirs and theirs[m] == mine[m] - 1
            for m in self.members.get(audience, frozenset())
            if m != me
        )

    def may_hold(self, node: str, audience: str) -> bool:
        """May `node` hold streams of `audience` at all: a member, or on a shortest
        path between two members (streams start at members: an origin is always
        a member of the audiences it writes to)."""
        if self.is_member(node, audience):
            return True
        d = self.distances(node)
        members = [m for m in self.members.get(audience, frozenset()) if m in d]
        return any(
            d[a] + d[b] == self.distances(a).get(b, -1)
            for i, a in enumerate(members)
            for b in members[i + 1 :]
        )


def _bfs(topology: Topology, source: str) -> dict[str, int]:
    cached = topology._dist.get(source)
    if cached is not None:
        return cached
    dist = {source: 0}
    queue = deque([source])
    while queue:
        n = queue.popleft()
        for nxt in topology.edges.get(n, frozenset()):
            if nxt not in dist:
                dist[nxt] = dist[n] + 1
                queue.append(nxt)
    topology._dist[source] = dist
    return dist
