"""Replication for a running node: its peers from the directory, a mutual-TLS
channel to each, one `PeerSync` per peer under the `SyncScheduler`, and the
restore check a node runs before it records anything."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial

import grpc

from federation import vectors
from federation.peers import Peer, peers_of
from federation.scheduler import PeerSync, SyncScheduler, SyncSettings
from federation.sync import RoundResult, pull
from federation.transport import TlsMaterial, peer_channel, sync_stub
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import sync_pb2, sync_pb2_grpc
from node.app import NodeApp
from node.logging import get_logger
from node.peer_state import DbPeerStateStore
from node.receive import ApplyResult

log = get_logger("node.replication")


class Replication:
    def __init__(self, app: NodeApp, tls: TlsMaterial, settings: SyncSettings | None = None) -> None:
        self.app = app
        self.tls = tls
        f = app.config.federation
        self.settings = settings or SyncSettings(
            interval=f.sync_interval_seconds,
            backoff_initial=f.backoff_initial_seconds,
            backoff_max=f.backoff_max_seconds,
        )
        self.store = DbPeerStateStore(app.db)
        self._channels: dict[str, grpc.Channel] = {}
        self.scheduler: SyncScheduler | None = None

    def peers(self) -> list[Peer]:
        directory = self.app.trust.directory()
        if directory is None:
            return []
        return peers_of(directory, self.app.config.node.id, self.app.config.federation.upstream_ids)

    def _stub(self, peer: Peer) -> sync_pb2_grpc.SyncServiceStub:
        channel = self._channels.get(peer.node_id)
        if channel is None:
            channel = self._channels[peer.node_id] = peer_channel(self.tls, peer.node_id, peer.endpoint)
        return sync_stub(channel)

    def _drop_channel(self, peer: Peer) -> None:
        channel = self._channels.pop(peer.node_id, None)
        if channel is not None:
            channel.close()

    def peer_syncs(self) -> list[PeerSync]:
        return [
            PeerSync(
                p,
                partial(self._stub, p),
                self.app.sync_source,
                self.app.receiver,
                self.store,
                self.settings,
                log,
                reset=partial(self._drop_channel, p),
                directory_version=self.app.trust.version,
                on_directory=self.app.accept_directory,
            )
            for p in self.peers()
        ]

    def start(self) -> SyncScheduler:
        self.scheduler = SyncScheduler(self.peer_syncs(), self.app.clock)
        self.app.records.on_commit.append(self.scheduler.poke)
        self.app.receiver.on_commit.append(self.scheduler.poke)
        self.scheduler.start()
        log.info("replication started", peers=[p.peer.node_id for p in self.scheduler.peers.values()])
        return self.scheduler

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown()
        for channel in self._channels.values():
            channel.close()

    def pull_from_all(self, timeout: float = 5.0) -> int:
        """One pull from every peer, downstream ones included (at start-up: a
        node that has just become an audience's holder learns the epochs its
        predecessor issued before it starts its own). Unreachable peers are skipped."""
        pulled = 0
        for peer in self.peers():
            result = RoundResult()
            try:
                pull(self._stub(peer), peer.node_id, self.app.receiver, self.app.clock(), result, timeout)
            except grpc.RpcError as e:
                log.info("start-up pull skipped", peer=peer.node_id, code=e.code().name)
            pulled += result.pulled
        return pulled

    def restore_own_streams(self, timeout: float = 5.0) -> int:
        """Ask each peer for the heads of this node's own streams and pull back
        whatever it holds beyond ours (a node restored from an old disk), so no
        sequence number is ever reused. Returns how many envelopes came back."""
        me = self.app.config.node.id
        restored = 0
        # Every peer, not only upstreams: a national stream is held by the node's
        # ports (its members), not by its hub.
        for peer in self.peers():
            stub = self._stub(peer)
            try:
                theirs = vectors.from_proto(
                    stub.GetVector(sync_pb2.GetVectorRequest(origin=me), timeout=timeout)
                )
                mine = {k: v for k, v in self.app.receiver.local_vector().items() if k[0] == me}
                if not vectors.lacking(theirs, mine):
                    continue
                result = RoundResult()
                pull(stub, peer.node_id, _OwnOnly(self.app, me), self.app.clock(), result, timeout, origin=me)
                restored += result.pulled
                log.warning("own history restored from peer", peer=peer.node_id, envelopes=result.pulled)
            except grpc.RpcError as e:
                log.warning("could not check own streams with peer", peer=peer.node_id, code=e.code().name)
        return restored


class _OwnOnly:
    """A sink that states only this node's own streams, so a pull brings back
    exactly its own history."""

    def __init__(self, app: NodeApp, me: str) -> None:
        self.app = app
        self.me = me

    def apply(self, envelopes: Sequence[epb.Envelope], caller: str, now: datetime) -> ApplyResult:
        return self.app.receiver.apply(envelopes, caller, now)

    def local_vector(self) -> vectors.Vector:
        return {k: v for k, v in self.app.receiver.local_vector().items() if k[0] == self.me}
