"""The hubs an officer's search asks (`node.searching.HubLink`), over their own
mutual-TLS channels (a search never shares, nor resets, a sync round's)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from federation.peers import hubs_above
from federation.transport import PeerFuture, TlsMaterial, hub_search, peer_channel
from gcn.v1 import directory_pb2 as dir_pb
from gcn.v1 import search_pb2
from node.domain.limits import MAX_PAGE_BYTES

# A hub's answer is one page of at most MAX_PAGE_BYTES (docs/protocol.md "Limits"):
# anything much larger is refused by the channel before it is read.
MAX_HUB_REPLY = MAX_PAGE_BYTES + (256 << 10)


@dataclass(frozen=True)
class GrpcHubLink:
    node_id: str
    channel: grpc.Channel

    def search(self, request: search_pb2.HubSearchRequest, timeout: float) -> PeerFuture:
        return hub_search(self.channel, request, timeout)


class HubLinks:
    """Callable: the hubs above this node in the current directory, nearest first."""

    def __init__(
        self,
        tls: TlsMaterial,
        node_id: str,
        directory: Callable[[], dir_pb.Directory | None],
        extra_upstreams: Sequence[str] = (),
    ) -> None:
        self.tls = tls
        self.node_id = node_id
        self.directory = directory
        self.extra_upstreams = tuple(extra_upstreams)
        self._channels: dict[tuple[str, str], grpc.Channel] = {}
        self._lock = threading.Lock()

    def __call__(self) -> list[GrpcHubLink]:
        directory = self.directory()
        if directory is None:
            return []
        out = []
        with self._lock:
            for hub in hubs_above(directory, self.node_id, self.extra_upstreams):
                key = (hub.node_id, hub.endpoint)
                channel = self._channels.get(key)
                if channel is None:
                    channel = self._channels[key] = peer_channel(
                        self.tls, hub.node_id, hub.endpoint, max_receive=MAX_HUB_REPLY
                    )
                out.append(GrpcHubLink(hub.node_id, channel))
        return out

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
