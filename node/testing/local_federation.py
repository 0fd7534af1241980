"""A whole federation on one machine: a root, nodes with real keys, real
certificates, real mutual-TLS listeners on loopback, real databases.

Tests, the demo and the benchmarks build their federations with this, so they
all exercise the same joining, admission, directory and sync code an operator
uses; only the orchestration (who calls whom, when) lives here.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import grpc

from federation.peers import Peer
from federation.root import RootStore
from federation.scheduler import PeerSync, SyncSettings
from federation.sync import RoundResult, sync_round
from federation.transport import TlsMaterial, peer_channel, peer_stub, sync_stub
from gcn.v1 import directory_pb2 as dir_pb
from node.api.federation_server import build_federation_server
from node.api.grpc_server import RunningServer
from node.api.sync_servicer import SyncServicer
from node.app import NodeApp
from node.bootstrap import CONFIG_FILE, init_node
from node.clock import Clock
from node.config import load_config
from node.hub_links import HubLinks
from node.joining import install_certificate, prepare_join
from node.logging import get_logger
from node.storage.files import write_file
from node.storage.peer_state import DbPeerStateStore

# Ports are handed out below the kernel's ephemeral range (32768-60999 by
# default): a port picked here and bound a moment later is then never taken
# meanwhile by an outgoing connection's source port, only (rarely) by another
# test process picking the same random port.
_PORTS = range(20000, 32000)
_RNG = random.SystemRandom()  # never the seeded global generator: two runs must not pick alike


_HANDED_OUT: set[int] = set()  # a port is handed out once per process: two picks
# made before either is bound (a federation's listeners) must never be the same


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, for a server that binds it later, and
    never one this process was handed before."""
    for _ in range(200):
        port = _RNG.choice(_PORTS)
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port on {host} in {_PORTS.start}-{_PORTS.stop - 1}")


@dataclass
class LocalNode:
    node_id: str
    directory: Path
    app: NodeApp
    endpoint: str
    tls: TlsMaterial
    server: RunningServer | None = None
    channels: dict[str, grpc.Channel] = field(default_factory=dict)
    hub_links: HubLinks | None = None

    def servicer(self) -> SyncServicer:
        """The node's SyncService as `gcn serve` wires it."""
        servicer = SyncServicer(self.app.trust, self.app.sync_source, self.app.receiver, self.app.clock)
        servicer.hub_search = self.app.hub_search.answer
        return servicer

    def start(self) -> None:
        if self.hub_links is None:  # searches ask the hubs above, as under `gcn serve`
            upstreams = self.app.config.federation.upstream_ids
            self.hub_links = HubLinks(self.tls, self.node_id, self.app.trust.directory, upstreams)
            self.app.search.hubs = self.hub_links
        if self.server is None:
            self.server = build_federation_server(self.servicer(), self.endpoint, self.tls)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(None)
            self.server = None

    def channel(self, peer: LocalNode) -> grpc.Channel:
        if peer.node_id not in self.channels:
            self.channels[peer.node_id] = peer_channel(self.tls, peer.node_id, peer.endpoint)
        return self.channels[peer.node_id]

    def drop_channel(self, peer_id: str) -> None:
        channel = self.channels.pop(peer_id, None)
        if channel is not None:
            channel.close()

    def close(self) -> None:
        self.stop()
        for ch in self.channels.values():
            ch.close()
        if self.hub_links is not None:
            self.hub_links.close()
        self.app.close()


class LocalFederation:
    def __init__(
        self,
        base: Path,
        clock: Clock,
        database_url: Callable[[str], str] | None = None,
        federation: str = "gcn-local",
    ) -> None:
        self.base = base
        self.clock = clock
        self.database_url = database_url or (lambda node_id: f"sqlite:///{base / node_id / 'gcn.sqlite'}")
        self.root = RootStore.init(base / "root", federation, clock(), write=write_file)
        self.nodes: dict[str, LocalNode] = {}

    def add(
        self, node_id: str, role: str, *, country: str = "", region: str = "", upstreams: Sequence[str] = ()
    ) -> LocalNode:
        """Init a node, join it (request → admission → certificate), open it."""
        directory = self.base / node_id
        endpoint = f"127.0.0.1:{free_port()}"
        init_node(
            directory,
            node_id=node_id,
            name=f"{node_id} customs",
            role=role,
            country=country,
            region=region,
            listen="127.0.0.1:0",
            database_url=self.database_url(node_id),
            clock=self.clock,
            federation_listen=endpoint,
            upstreams=upstreams,
        )
        config = load_config(directory / CONFIG_FILE)
        request = prepare_join(config, self.root.root_public_keys(), self.clock())
        cert = self.root.admit(request, self.clock())
        install_certificate(config, cert, self.root.ca_certificate(), self.clock())
        node = LocalNode(
            node_id, directory, NodeApp.open(config, self.clock), endpoint, TlsMaterial.load(config.tls_dir)
        )
        self.nodes[node_id] = node
        return node

    def publish(self, valid_days: int = 30) -> dir_pb.SignedDirectory:
        """Publish a new directory version and hand it to every node."""
        signed = self.root.publish(self.clock(), valid_days)
        for node in self.nodes.values():
            node.app.accept_directory(signed)
        return signed

    def start(self) -> None:
        for node in self.nodes.values():
            node.start()

    def sync(self, a: str, b: str, *, max_envelopes: int = 0) -> RoundResult:
        """One round from `a`'s side with its peer `b`: push what b lacks, pull what a lacks."""
        node, peer = self.nodes[a], self.nodes[b]
        stub = sync_stub(node.channel(peer))
        return sync_round(
            stub, b, node.app.sync_source, node.app.receiver, self.clock(), max_envelopes=max_envelopes
        )

    def peer_sync(self, a: str, b: str, settings: SyncSettings | None = None) -> PeerSync:
        """`a`'s replication job with its upstream `b`, as a served node runs it:
        its state (backoff, traffic, the vector `b` stated) saved after each round."""
        node, peer = self.nodes[a], self.nodes[b]
        return PeerSync(
            Peer(b, peer.endpoint, upstream=True),
            partial(lambda n, p: peer_stub(n.channel(p)), node, peer),
            node.app.sync_source,
            node.app.receiver,
            DbPeerStateStore(node.app.db),
            settings or SyncSettings(interval=30, backoff_initial=1, backoff_max=60, timeout=5),
            get_logger("local-federation"),
            random.Random(1),
            reset=partial(node.drop_channel, b),
        )

    def sync_all(self, rounds: int = 4) -> None:
        """Every node with each of its upstreams, a few times over (enough to cross the tree)."""
        for _ in range(rounds):
            for node in self.nodes.values():
                for up in node.app.config.federation.upstream_ids:
                    if up in self.nodes:
                        self.sync(node.node_id, up)

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()


@contextmanager
def local_federation(base: Path, clock: Clock, **kwargs: object) -> Iterator[LocalFederation]:
    fed = LocalFederation(base, clock, **kwargs)  # type: ignore[arg-type]
    try:
        yield fed
    finally:
        fed.close()
