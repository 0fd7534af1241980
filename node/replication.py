"""Replication for a running node: its peers from the directory, a mutual-TLS
channel to each, one `PeerSync` per peer under the `SyncScheduler`, the
restore check a node runs before it records anything, and healing: a stream
whose envelope was damaged here, or refused from a peer as damaged, is
fetched again from another peer whose last stated vector holds it."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from federation import vectors
from federation.errors import PeerError
from federation.peer_machine import PeerState
from federation.peers import Peer, peers_of
from federation.receive import ApplyResult
from federation.refusal import DAMAGED, Refused
from federation.scheduler import PeerSync, RoundTimes, SyncScheduler, SyncSettings
from federation.sync import RoundResult, pull
from federation.transport import PeerFuture, PeerStub, TlsMaterial, peer_channel, peer_stub
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import sync_pb2
from node.app import NodeApp
from node.logging import get_logger
from node.storage.alarms import record_alarm
from node.storage.db import MIN_FREE_BYTES
from node.storage.leases import DUTIES, SYNC
from node.storage.peer_state import Health, WriteBehindPeerStates, link_state
from node.storage.quarantine import Quarantined
from node.storage.scrub import Scrubber

log = get_logger("node.replication")
SYNC_SERVICE = sync_pb2.DESCRIPTOR.services_by_name["SyncService"].full_name


class Replication:
    def __init__(self, app: NodeApp, tls: TlsMaterial, settings: SyncSettings | None = None) -> None:
        self.app = app
        self.tls = tls
        f = app.config.federation
        self.settings = settings or SyncSettings(
            interval=f.sync_interval_seconds,
            backoff_initial=f.backoff_initial_seconds,
            backoff_max=f.backoff_max_seconds,
            probe_interval=f.probe_interval_seconds,
        )
        self.store = WriteBehindPeerStates(app.db)
        self._channels: dict[str, grpc.Channel] = {}
        self._probes: dict[str, grpc.Channel] = {}
        self.scheduler: SyncScheduler | None = None
        self._healer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heal")
        self._healing: set[vectors.Stream] = set()
        self._healing_lock = threading.Lock()
        self._was_stale = False
        # After each periodic check, what health says (the federation listener's
        # and the officer API's health services).
        self.on_health: list[Callable[[Health], None]] = []
        # After each round with any peer (one list, shared by every PeerSync made here).
        self.on_round: list[Callable[[RoundTimes], None]] = []
        self._storage_problem = ""
        self.min_free_bytes = MIN_FREE_BYTES  # the storage health check's floor
        self.scrubber = Scrubber(app.db, app.quarantine, per_step=f.scrub_envelopes_per_step)

    def peers(self) -> list[Peer]:
        directory = self.app.trust.directory()
        if directory is None:
            return []
        return peers_of(directory, self.app.config.node.id, self.app.config.federation.upstream_ids)

    def _stub(self, peer: Peer) -> PeerStub:
        channel = self._channels.get(peer.node_id)
        if channel is None:
            channel = self._channels[peer.node_id] = peer_channel(self.tls, peer.node_id, peer.endpoint)
        return peer_stub(channel)

    def _drop_channel(self, peer: Peer) -> None:
        channel = self._channels.pop(peer.node_id, None)
        if channel is not None:
            channel.close()

    def _probe_channel(self, peer: Peer) -> grpc.Channel:
        # Its own channel: dropping it after a failed probe never touches a round's.
        channel = self._probes.get(peer.node_id)
        if channel is None:
            channel = self._probes[peer.node_id] = peer_channel(self.tls, peer.node_id, peer.endpoint)
        return channel

    def _probe(self, peer: Peer, timeout: float) -> PeerFuture:
        """A health check of the peer's federation listener, as a future (its
        `result()` raises a `PeerError` while the peer does not answer)."""
        stub = health_pb2_grpc.HealthStub(self._probe_channel(peer))
        future = stub.Check.future(
            health_pb2.HealthCheckRequest(service=SYNC_SERVICE), timeout=timeout, wait_for_ready=True
        )

        def done(f: Any) -> None:
            if f.exception() is not None:
                channel = self._probes.pop(peer.node_id, None)
                if channel is not None:
                    channel.close()

        future.add_done_callback(done)
        return PeerFuture(future)

    def peer_sync(self, p: Peer) -> PeerSync:
        return LeasedPeerSync(
            partial(self.app.leases.hold, SYNC + p.node_id),
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
            probe=partial(self._probe, p),
            hold_sends=self._hold_sends,
            on_round=self.on_round,
        )

    def _hold_sends(self) -> str:
        return self.app.trust.freshness(self.app.clock()).stale

    def periodic(self) -> None:
        """Every watchdog tick: a directory or timestamp imported beside the
        running node is taken; stale trust is noticed (and its end); a failed
        rekey is tried again; waiting shares whose key came are sealed (the
        duties: on the one replica holding their lease); keys another replica
        stored are taken; health says what the node can do."""
        app = self.app
        now = app.clock()
        duties = app.leases.hold(DUTIES)
        if app.leases.shared:
            try:
                app.reload_keys()
            except Exception as e:  # the next tick tries again
                log.exception("keys stored by another replica not taken", error=str(e))
        try:
            app.trust.reload_if_changed(now)  # its epochs, if any are due: below
        except Exception as e:  # a bad file beside us: say so, keep the one held
            log.warning("directory file beside the node not taken", error=str(e))
        verdict = app.trust.check_freshness(now)
        if verdict.stale and not self._was_stale and duties:
            record_alarm(app.db, "directory_stale", now, verdict.stale)
        self._was_stale = bool(verdict.stale)
        if duties:
            # Every tick, not only when a directory came or a rekey failed: a
            # replica that takes the duties over must make the epochs a directory
            # it read while another held them calls for (a revoked member must
            # not read what comes next). Nothing is made when nothing is due.
            app.refresh_epochs()
        if duties:
            try:
                app.records.seal_waiting()
            except Exception as e:  # retried at the next tick; the records stay on the node meanwhile
                log.exception("waiting shares not sealed: retrying at the next check", error=str(e))
        if self.on_health:
            health = self.health(relaying=not verdict.stale)
            for listener in self.on_health:
                listener(health)

    def health(self, *, relaying: bool) -> Health:
        now, interval = self.app.clock(), self.settings.interval
        states = {s.peer_id: s for s in self.store.all()}
        links = {p.node_id: link_state(states.get(p.node_id), now, interval) for p in self.peers()}
        storage = self.app.db.problem(self.app.config.data_dir, self.min_free_bytes)
        if storage and storage != self._storage_problem:
            log.error("storage cannot take writes", reason=storage)
        elif self._storage_problem and not storage:
            log.info("storage takes writes again")
        self._storage_problem = storage
        return Health(relaying, links, len(self.app.refusals.all_rows()), storage)

    def peer_syncs(self) -> list[PeerSync]:
        return [self.peer_sync(p) for p in self.peers()]

    def start(self) -> SyncScheduler:
        self.scheduler = SyncScheduler(
            self.peer_syncs(),
            self.app.clock,
            log,
            settings=self.settings,
            directory_peers=self.peers,
            make_peer=self.peer_sync,
            on_alarm=self._alarm,
            on_check=self.periodic,
        )
        self.app.records.on_commit.append(self.scheduler.poke)
        self.app.receiver.on_stored.append(self.scheduler.relay)
        self.app.receiver.on_refused.append(self._refused_from_peer)
        self.app.quarantine.on_quarantined.append(self._quarantined)
        self.scheduler.start()
        self.scrubber.start(self.app.config.federation.scrub_period_seconds)
        log.info("replication started", peers=sorted(self.scheduler.peers))
        return self.scheduler

    def called_in(self, caller: str) -> None:
        """A peer called us (wired to the sync servicer)."""
        if self.scheduler is not None:
            self.scheduler.called_in(caller)

    def stop(self) -> None:
        self.scrubber.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown()
        self.store.close()  # after the last round: its state is written
        self.app.leases.release_all()  # then another replica may take the jobs
        self._healer.shutdown(wait=True, cancel_futures=True)
        for channel in [*self._channels.values(), *self._probes.values()]:
            channel.close()

    def _alarm(self, kind: str, peer_id: str, detail: str) -> None:
        record_alarm(self.app.db, kind, self.app.clock(), detail, origin=peer_id)

    # -- healing -------------------------------------------------------------------------------

    def _refused_from_peer(self, caller: str, refused: list[Refused]) -> None:
        damaged = {r.stream for r in refused if r.code in DAMAGED}
        if damaged:
            self._heal_later(damaged, avoid=caller)

    def _quarantined(self, items: Sequence[Quarantined]) -> None:
        self._heal_later({(q.origin, q.audience) for q in items}, avoid=None)

    def _heal_later(self, streams: set[vectors.Stream], avoid: str | None) -> None:
        with self._healing_lock:
            todo = streams - self._healing
            self._healing |= todo
        if todo:
            with contextlib.suppress(RuntimeError):  # shutting down
                self._healer.submit(self.heal, todo, avoid)

    def heal(self, streams: set[vectors.Stream], avoid: str | None = None, timeout: float = 10.0) -> int:
        """Fetch what we lack of `streams` from the peers whose last stated vector
        holds more of them than we do (not from `avoid`). Returns envelopes stored."""
        try:
            return self._heal(streams, avoid, timeout)
        finally:
            with self._healing_lock:
                self._healing -= streams

    def _heal(self, streams: set[vectors.Stream], avoid: str | None, timeout: float) -> int:
        mine = self.app.receiver.local_vector()
        known = {s.peer_id: _vector_of(s.their_vector) for s in self.store.all()}
        stored = 0
        for peer in self.peers():
            if peer.node_id == avoid:
                continue
            theirs = known.get(peer.node_id, {})
            wanted = {st for st in streams if theirs.get(st, 0) > mine.get(st, 0)}
            for origin in sorted({o for o, _ in wanted}):
                result = RoundResult()
                try:
                    pull(
                        self._stub(peer),
                        peer.node_id,
                        self.app.receiver,
                        self.app.clock(),
                        result,
                        timeout,
                        origin=origin,
                    )
                except PeerError as e:
                    log.info("could not fetch from peer", peer=peer.node_id, origin=origin, code=e.code)
                    continue
                stored += result.pulled
                if result.pulled:
                    log.info(
                        "stream healed from another holder",
                        peer=peer.node_id,
                        origin=origin,
                        envelopes=result.pulled,
                    )
            mine = self.app.receiver.local_vector()
            if all(mine.get(st, 0) >= theirs.get(st, 0) for st in streams if st in theirs):
                streams = {st for st in streams if st not in theirs}
            if not streams:
                break
        return stored

    def pull_from_all(self, timeout: float = 5.0) -> int:
        """One pull from every peer, downstream ones included (at start-up: a
        node that has just become an audience's holder learns the epochs its
        predecessor issued before it starts its own). Unreachable peers are skipped."""
        pulled = 0
        for peer in self.peers():
            result = RoundResult()
            try:
                pull(self._stub(peer), peer.node_id, self.app.receiver, self.app.clock(), result, timeout)
            except PeerError as e:
                log.info("start-up pull skipped", peer=peer.node_id, code=e.code)
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
            except PeerError as e:
                log.warning("could not check own streams with peer", peer=peer.node_id, code=e.code)
        return restored


class LeasedPeerSync(PeerSync):
    """A peer's job that runs its rounds only while this replica holds the
    peer's lease (`node.storage.leases`; always, on SQLite). Without it, the
    round is skipped and tried again after `probe_interval`: a replica that
    dies hands its peers over within a few seconds."""

    def __init__(self, lease: Callable[[], bool], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lease = lease
        self.standing_by = False

    def run(self, now: datetime, *, pull: bool = True) -> PeerState:
        held = self.lease()
        if held != (not self.standing_by):
            log.info(
                "sync job taken over by this replica" if held else "sync job runs on another replica",
                peer=self.peer.node_id,
            )
        self.standing_by = not held
        if not held:
            return self.state()
        return super().run(now, pull=pull)

    def next_delay(self, state: PeerState) -> float:
        if self.standing_by:
            return self.settings.probe_interval
        return super().next_delay(state)


class _OwnOnly:
    """A sink that states only this node's own streams, so a pull brings back
    exactly its own history."""

    def __init__(self, app: NodeApp, me: str) -> None:
        self.app = app
        self.me = me

    def apply(
        self,
        envelopes: Sequence[epb.Envelope],
        caller: str,
        now: datetime,
        receipts: Sequence[sync_pb2.SignedReceipt] = (),
    ) -> ApplyResult:
        return self.app.receiver.apply(envelopes, caller, now, receipts)

    def local_vector(self) -> vectors.Vector:
        return {k: v for k, v in self.app.receiver.local_vector().items() if k[0] == self.me}

    def waiting_from(self, peer: str) -> set[vectors.Stream]:
        return self.app.receiver.waiting_from(peer)


def _vector_of(their_vector: str) -> vectors.Vector:
    try:
        return {(o, a): int(q) for o, a, q in json.loads(their_vector or "[]")}
    except (ValueError, TypeError):
        return {}
