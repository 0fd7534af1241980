"""The node's operational signals in Prometheus text format, on `/metrics`
(`[server] metrics_listen`; off when empty).

Most figures are read from the node's own tables when Prometheus scrapes, so
they are true after a restart and cost nothing between scrapes: records by
kind, streams and envelopes held, per peer its link state, failures, backoff
and traffic (as saved after each round), how far behind each peer is per
stream (from the vector it last stated), streams waiting behind a refused
envelope, alarms by kind, shares waiting for an audience key, and the
directory's version, age and freshness. The one figure counted as it happens
is the search latency histogram. Counts that scan a table (records by kind)
are cached for `SLOW_SECONDS`.

Labels never carry record content: kinds, peer and node ids, audiences,
refusal codes and alarm kinds only.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from federation.peer_machine import link_state
from federation.peers import peers_of
from gcn.v1 import directory_pb2 as dir_pb
from gcn.v1 import envelope_pb2 as epb
from node.admin import last_known_vector
from node.app import NodeApp
from node.logging import get_logger
from node.storage.models import AlarmRow, RecordRow, StreamRow
from node.storage.peer_state import DbPeerStateStore

log = get_logger(__name__)

SLOW_SECONDS = 60.0
LINK_STATES = ("ok", "down", "stalled", "never")
SEARCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)


def _seconds(at: datetime | None) -> float:
    return at.timestamp() if at is not None else 0.0


@dataclass
class _Cached:
    at: float
    value: list[tuple[str, int]]


class NodeCollector(Collector):
    """Everything but the search histogram, read at each scrape."""

    def __init__(self, app: NodeApp, slow_seconds: float = SLOW_SECONDS) -> None:
        self.app = app
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        self._kinds: _Cached | None = None
        self._collect_lock = threading.Lock()
        self._last: tuple[float, list[Metric]] | None = None
        self.min_interval = 1.0 if slow_seconds else 0.0  # seconds between two reads of the tables

    def collect(self) -> Iterator[Metric]:
        """What the node's tables say, read at most once a second however often
        it is scraped (a scrape flood costs the node no more database work)."""
        with self._collect_lock:
            if self._last is None or time.monotonic() - self._last[0] >= self.min_interval:
                self._last = (time.monotonic(), list(self._read()))
            metrics = self._last[1]
        yield from metrics

    def _read(self) -> Iterator[Metric]:
        app = self.app
        now = app.clock()
        yield from self._records()
        yield from self._streams()
        yield from self._peers(now)
        yield from self._refusals()
        yield from self._alarms()
        yield from self._waiting()
        yield from self._directory(now)

    # -- what the node holds ---------------------------------------------------------------

    def _records(self) -> Iterator[Metric]:
        with self._lock:
            if self._kinds is None or time.monotonic() - self._kinds.at >= self.slow_seconds:
                with self.app.db.read() as s:
                    rows = s.execute(select(RecordRow.kind, func.count()).group_by(RecordRow.kind)).all()
                named = [
                    (
                        epb.RecordKind.Name(epb.RecordKind.ValueType(k)).removeprefix("RECORD_KIND_").lower(),
                        int(n),
                    )
                    for k, n in rows
                ]
                self._kinds = _Cached(time.monotonic(), named)
            kinds = self._kinds.value
        g = GaugeMetricFamily(
            "gcn_records",
            "Readable record envelopes held, by kind (one per view; recounted at most once a minute)",
            labels=["kind"],
        )
        for kind, n in kinds:
            g.add_metric([kind], n)
        yield g

    def _streams(self) -> Iterator[Metric]:
        with self.app.db.read() as s:
            streams, envelopes = s.execute(
                select(func.count(), func.coalesce(func.sum(StreamRow.head_seq), 0))
            ).one()
        yield GaugeMetricFamily(
            "gcn_streams", "Streams (origin, audience) the node holds", value=int(streams)
        )
        yield GaugeMetricFamily(
            "gcn_stream_envelopes",
            "Envelopes held up to each stream's contiguous head, summed over streams",
            value=int(envelopes),
        )

    # -- peers -------------------------------------------------------------------------------

    def _peers(self, now: datetime) -> Iterator[Metric]:
        app = self.app
        directory = app.trust.directory()
        peers = (
            peers_of(directory, app.config.node.id, app.config.federation.upstream_ids) if directory else []
        )
        states = {s.peer_id: s for s in DbPeerStateStore(app.db).all()}
        interval = app.config.federation.sync_interval_seconds
        state_g = GaugeMetricFamily(
            "gcn_peer_link_state",
            "1 for the link's state (ok, down, stalled, never)",
            labels=["peer", "state"],
        )
        failures = GaugeMetricFamily(
            "gcn_peer_failures", "Consecutive failed rounds with the peer", labels=["peer"]
        )
        backoff = GaugeMetricFamily(
            "gcn_peer_backoff_seconds", "Current backoff before the next round with the peer", labels=["peer"]
        )
        success = GaugeMetricFamily(
            "gcn_peer_last_success_timestamp_seconds",
            "When a round with the peer last succeeded (0: never)",
            labels=["peer"],
        )
        envelopes = CounterMetricFamily(
            "gcn_peer_envelopes", "Envelopes sent to and received from the peer", labels=["peer", "direction"]
        )
        traffic = CounterMetricFamily(
            "gcn_peer_bytes",
            "Bytes of envelopes sent to and received from the peer",
            labels=["peer", "direction"],
        )
        behind = GaugeMetricFamily(
            "gcn_sync_behind_envelopes",
            "Envelopes of a stream the peer lacks (ours, by the vector it last stated; only streams behind)",
            labels=["peer", "origin", "audience"],
        )
        behind_total = GaugeMetricFamily(
            "gcn_sync_behind_total",
            "Envelopes the peer lacks, over every stream it may hold",
            labels=["peer"],
        )
        mine = app.receiver.local_vector()
        for peer in peers:
            pid = peer.node_id
            st = states.get(pid)
            current = link_state(st, now, interval)
            for name in LINK_STATES:
                state_g.add_metric([pid, name], 1.0 if name == current else 0.0)
            failures.add_metric([pid], st.failures if st else 0)
            backoff.add_metric([pid], st.backoff_seconds if st else 0.0)
            success.add_metric([pid], _seconds(st.last_success_at if st else None))
            envelopes.add_metric([pid, "sent"], st.envelopes_sent if st else 0)
            envelopes.add_metric([pid, "received"], st.envelopes_received if st else 0)
            traffic.add_metric([pid, "sent"], st.bytes_sent if st else 0)
            traffic.add_metric([pid, "received"], st.bytes_received if st else 0)
            theirs = last_known_vector(app, pid)
            total = 0
            for (origin, audience), seq in mine.items():
                if not app.sync_source.entitled(pid, audience):
                    continue
                lack = seq - theirs.get((origin, audience), 0)
                if lack > 0:
                    behind.add_metric([pid, origin, audience], lack)
                    total += lack
            behind_total.add_metric([pid], total)
        yield from (state_g, failures, backoff, success, envelopes, traffic, behind, behind_total)

    def _refusals(self) -> Iterator[Metric]:
        g = GaugeMetricFamily(
            "gcn_streams_waiting",
            "Streams waiting behind a refused envelope, by direction and refusal code",
            labels=["direction", "code"],
        )
        counts: dict[tuple[str, str], int] = {}
        for r in self.app.refusals.all_rows():
            key = (r.direction, r.code)
            counts[key] = counts.get(key, 0) + 1
        for (direction, code), n in sorted(counts.items()):
            g.add_metric([direction, code], n)
        yield g

    def _alarms(self) -> Iterator[Metric]:
        with self.app.db.read() as s:
            rows = s.execute(select(AlarmRow.kind, func.count()).group_by(AlarmRow.kind)).all()
        c = CounterMetricFamily(
            "gcn_alarms", "Alarms the node raised, by kind (gcn alarms lists them)", labels=["kind"]
        )
        for kind, n in rows:
            c.add_metric([kind], int(n))
        yield c

    def _waiting(self) -> Iterator[Metric]:
        g = GaugeMetricFamily(
            "gcn_shares_waiting_for_key",
            "Shares of own records waiting for their audience's key",
            labels=["audience"],
        )
        for w in self.app.records.waiting.summary():
            g.add_metric([w.audience], w.shares)
        yield g

    def _directory(self, now: datetime) -> Iterator[Metric]:
        trust = self.app.trust
        directory = trust.directory()
        version = GaugeMetricFamily("gcn_directory_version", "Version of the held directory (0: none)")
        version.add_metric([], trust.version() if directory else 0)
        yield version
        if directory is None:
            return
        issued = directory.issued_at.ToDatetime().timestamp() if directory.HasField("issued_at") else 0.0
        yield GaugeMetricFamily(
            "gcn_directory_age_seconds",
            "Seconds since the held directory was issued",
            value=max(0.0, now.timestamp() - issued),
        )
        stamp = trust.timestamp()
        if stamp is not None:
            stamped = dir_pb.DirectoryTimestamp.FromString(stamp.timestamp).issued_at.ToDatetime().timestamp()
            yield GaugeMetricFamily(
                "gcn_directory_timestamp_age_seconds",
                "Seconds since the held root timestamp was issued",
                value=max(0.0, now.timestamp() - stamped),
            )
        verdict = trust.freshness(now)
        yield GaugeMetricFamily(
            "gcn_directory_fresh",
            "1 while the directory may be trusted for new envelopes",
            value=0.0 if verdict.stale else 1.0,
        )
        yield GaugeMetricFamily(
            "gcn_directory_fresh_until_timestamp_seconds",
            "The horizon after which new envelopes are refused",
            value=verdict.until.timestamp(),
        )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class NodeMetrics:
    """The registry of one node's metrics, and its HTTP endpoint."""

    def __init__(self, app: NodeApp, slow_seconds: float = SLOW_SECONDS) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(NodeCollector(app, slow_seconds))
        self.search_seconds = Histogram(
            "gcn_search_duration_seconds",
            "Officers' searches, from the request to the answer",
            labelnames=["scope"],
            buckets=SEARCH_BUCKETS,
            registry=self.registry,
        )
        app.search.on_searched.append(self._searched)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def _searched(self, seconds: float, federated: bool) -> None:
        self.search_seconds.labels("federated" if federated else "local").observe(seconds)

    def serve(self, listen: str) -> int:
        """Answer `/metrics` on `listen` ("host:port"; port 0 picks one); returns the port."""
        host, port = listen.rsplit(":", 1)
        try:
            server, thread = start_http_server(int(port), addr=host.strip("[]"), registry=self.registry)
        except OSError as e:
            raise OSError(f"cannot listen on {listen} for metrics: {e.strerror or e}") from e
        self._server, self._thread = server, thread
        bound = int(server.server_address[1])
        log.info("metrics serving", address=f"{host}:{bound}", path="/metrics")
        if not _loopback(host.strip("[]")):
            log.warning(
                "metrics served beyond loopback without authentication",
                address=f"{host}:{bound}",
                hint="they name peers, link states and the directory: a monitoring network only",
            )
        return bound

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
