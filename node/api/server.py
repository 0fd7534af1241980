"""The gRPC server: `build_server` (tests call it with port 0 and get the real
port) and `serve` (the `gcn serve` process, with graceful shutdown).

The officer API is served over TLS (`node.api.tls`); plaintext only on a
loopback address. Every NodeService call is authenticated with a bearer token
and checked against `node.api.permissions`; health and reflection (v1 and v1alpha)
are open."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from functools import partial
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2

from federation.transport import TlsMaterial
from gcn.v1 import node_pb2, node_pb2_grpc
from node.api.federation_server import SYNC_SERVICE, build_federation_server
from node.api.grpc_server import RunningServer, new_server, start
from node.api.interceptors import Authenticator, officer_interceptors
from node.api.permissions import NODE_PERMISSIONS, check_covers
from node.api.reflection import enable_reflection
from node.api.servicers import NodeServicer
from node.api.sync_servicer import SyncServicer
from node.api.tls import api_tls_warnings, check_plaintext_listen, server_credentials
from node.app import NodeApp
from node.config import Config
from node.hub_links import HubLinks
from node.logging import get_logger
from node.metrics import NodeMetrics
from node.replication import Replication
from node.storage.peer_state import Health
from node.storage.users import UserStore

log = get_logger(__name__)
NODE_SERVICE = node_pb2.DESCRIPTOR.services_by_name["NodeService"].full_name


def build_server(
    app: NodeApp,
    listen: str,
    *,
    max_message_bytes: int,
    workers: int,
    tls: grpc.ServerCredentials | None,
    authenticator: Authenticator | None = None,
) -> RunningServer:
    """Create and start a server for `app` on `listen` ("host:port"; port 0 picks one),
    over TLS with `tls` (`node.api.tls.server_credentials`), or in plaintext when
    None, which only a loopback `listen` may be (ConfigError otherwise).
    Callers are authenticated by `authenticator`, by default the users in `app.db`."""
    check_covers(NODE_PERMISSIONS)
    if tls is None:
        check_plaintext_listen(listen)
    app.records.enable_group_commit()
    if authenticator is None:
        authenticator = UserStore(app.db)
    server = new_server(
        max_message_bytes=max_message_bytes,
        workers=workers,
        thread_prefix="rpc",
        interceptors=officer_interceptors(authenticator),
    )
    servicer = NodeServicer(app.records, app.reader, app.node_info, app.search)
    node_pb2_grpc.add_NodeServiceServicer_to_server(servicer, server)
    enable_reflection((NODE_SERVICE, health.SERVICE_NAME), server)
    try:
        port = server.add_insecure_port(listen) if tls is None else server.add_secure_port(listen, tls)
        return start(server, port, [NODE_SERVICE])
    except OSError as e:
        raise OSError(f"cannot listen on {listen}") from e


def serve(config: Config) -> None:
    """Run the node until SIGTERM or SIGINT, then drain in-flight calls."""
    tls = server_credentials(config)  # before anything else: a node without its API TLS does not start
    app = NodeApp.open(config)
    metrics = NodeMetrics(app) if config.server.metrics_listen else None
    if metrics is not None:  # first: a taken port stops the node before it serves anything
        metrics.serve(config.server.metrics_listen)
    # Federation first: a node restored from an old disk takes back its own
    # streams from its peers before it writes anything (even a key message).
    federation = start_federation(app)
    created = app.ensure_own_audiences()
    if created:
        log.info("audience keys created", audiences=created)
    users = UserStore(app.db)
    if not users.list():
        log.warning(
            "no users yet: every NodeService call will be refused",
            hint="gcn users add NAME --role officer --config CONFIG",
        )
    running = build_server(
        app,
        config.server.listen,
        max_message_bytes=config.server.max_message_bytes,
        workers=config.server.workers,
        tls=tls,
        authenticator=users,
    )
    if federation is not None:
        federation.replication.on_health.append(partial(report_health, running))
    for warning in api_tls_warnings(config, app.clock()):
        log.warning(warning)
    host = config.server.listen.rsplit(":", 1)[0]
    log.info(
        "node serving",
        node_id=config.node.id,
        address=f"{host}:{running.port}",
        tls=tls is not None,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("shutting down", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    running.stop(config.server.grace_seconds)
    if metrics is not None:
        metrics.stop()
    if federation is not None:
        federation.stop(config.server.grace_seconds)
    app.close()
    log.info("node stopped", node_id=config.node.id)


@dataclass
class RunningFederation:
    server: RunningServer
    replication: Replication
    hub_links: HubLinks | None = None

    def stop(self, grace: float | None) -> None:
        self.replication.stop()
        self.server.stop(grace)
        if self.hub_links is not None:
            self.hub_links.close()


LINKS_SERVICE = "gcn.links"  # every link ok and no stream waiting behind a refused envelope
LINK_SERVICE = "gcn.link/"  # + a peer's id: that link ok (UNKNOWN before its first round)
STORAGE_SERVICE = "gcn.storage"  # the database answers and its disk has room


def report_health(server: RunningServer, health: Health) -> None:
    """What the node can do, in its health service: `gcn.v1.SyncService` is
    NOT_SERVING while the node does not relay (stale trust); `gcn.links` while a
    link is down or stalled or a stream waits; `gcn.link/PEER` per link."""
    status = health_pb2.HealthCheckResponse
    server.health.set(SYNC_SERVICE, status.SERVING if health.relaying else status.NOT_SERVING)
    server.health.set(LINKS_SERVICE, status.SERVING if health.links_ok else status.NOT_SERVING)
    server.health.set(STORAGE_SERVICE, status.NOT_SERVING if health.storage else status.SERVING)
    for peer, state in health.links.items():
        server.health.set(
            LINK_SERVICE + peer,
            status.SERVING if state == "ok" else status.UNKNOWN if state == "never" else status.NOT_SERVING,
        )


def start_federation(app: NodeApp) -> RunningFederation | None:
    """The mutual-TLS listener and replication, when the node has joined a
    federation (a certificate installed and a directory held). Before the node
    records anything, it checks its own streams' heads with its upstreams."""
    config = app.config
    if not config.federation.listen:
        return None
    if not (config.tls_dir / "cert.pem").exists() or app.trust.directory() is None:
        log.warning(
            "federation listener not started: no certificate or no directory yet",
            hint="gcn federation install / gcn directory import",
        )
        return None
    tls = TlsMaterial.load(config.tls_dir)
    replication = Replication(app, tls)
    restored = replication.restore_own_streams()
    if [a for a in app.trust.held_audiences() if app.audience_keys.current(a) is None]:
        replication.pull_from_all()  # a new holder: learn its predecessor's epochs first
    started = app.refresh_epochs()
    servicer = SyncServicer(app.trust, app.sync_source, app.receiver, app.clock)
    servicer.on_call = replication.called_in
    servicer.hub_search = app.hub_search.answer
    hub_links = HubLinks(tls, config.node.id, app.trust.directory, config.federation.upstream_ids)
    app.search.hubs = hub_links
    server = build_federation_server(servicer, config.federation.listen, tls)
    replication.on_health.append(partial(report_health, server))
    replication.start()
    log.info(
        "federation serving",
        node_id=config.node.id,
        port=server.port,
        restored=restored,
        epochs_started=started,
        directory_version=app.trust.version(),
    )
    return RunningFederation(server, replication, hub_links)
