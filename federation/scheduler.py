"""Store-and-forward: one job per peer, for the life of the node.

`SyncScheduler` runs the per-peer rounds (`federation.peer_sync.PeerSync`,
whose state moves as `federation.peer_machine` says) on APScheduler. Its invariants:

- **A peer's job never disappears.** Each peer has one APScheduler job with an
  interval trigger (a trigger that always has a next fire time, so APScheduler
  never deletes the job, whatever pokes, skipped instances or errors happen).
  The trigger is a heartbeat; whether a round runs is decided by the peer's
  *due* time, kept on the monotonic clock, so a wall clock that jumps (a day
  ahead, then corrected) neither stalls a peer nor makes it hammer.
- **A poke during a round makes exactly one more round** (`again`), run in the
  same job call; a poke while idle brings the job forward to now. Envelopes
  received from a peer (`relay`) poke every peer but that one. A round only
  for a poke pushes and does not pull from an upstream (the upstream pushes
  what it gets; a pull then would only hold up the next push behind applying
  it): a round due by time, or for a peer that called in or answered a probe,
  pulls too, and so does any round once `interval` has passed since the last pull.
- **A watchdog thread** (plain `threading`, monotonic waits) checks every
  `probe_interval` seconds that every peer the directory names has its job
  (repairing and alarming if not, and adding or removing jobs when the
  directory changes), re-arms a due peer whose fire time a wall-clock jump
  pushed away, and probes the peers that are down for a connectivity reason
  with a cheap health call: a link that comes back is used at once, whatever
  the backoff had grown to.
- **A peer that calls in is alive**: `called_in` brings our job towards it
  forward (Synapse's behaviour).
- **Failures are told apart**: a peer that is down logs one warning when the
  link goes down and one info line when it is back; our own bugs in a round are
  logged with their traceback, never as the peer's fault.

Tests drive `PeerSync` with a manual clock, and `SyncScheduler` with a
controllable monotonic clock and `check()`/`probe()` called by hand.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from federation import peer_machine as machine
from federation.backoff import backoff_delay
from federation.errors import PeerError
from federation.peer_machine import LOCAL_ERROR, PeerState, SyncSettings
from federation.peer_sync import Logger, PeerStateStore, PeerSync, RoundTimes
from federation.peers import Peer

__all__ = [
    "LOCAL_ERROR",
    "PeerState",
    "PeerStateStore",
    "PeerSync",
    "RoundTimes",
    "SyncScheduler",
    "SyncSettings",
]


@dataclass
class _Slot:
    """The scheduler's view of one peer (guarded by the scheduler's lock)."""

    ps: PeerSync
    due: float  # monotonic time of the next round
    running: bool = False
    again: bool = False  # run (once more) as soon as possible
    # The next round pulls from an upstream too: it is due by time, or the peer
    # called in or answered a probe. A round only for a poke (our commit) pushes.
    full: bool = True
    pull_due: float = 0.0  # monotonic time from which a round pulls anyway
    started: float = 0.0
    slow_warned: bool = False
    last_forward: float = float("-inf")  # the last time a call-in or a probe brought it forward


class SyncScheduler:
    """APScheduler jobs over `PeerSync`s, with a watchdog (see the module docstring)."""

    def __init__(
        self,
        peers: Sequence[PeerSync],
        clock: Callable[[], datetime],
        log: Logger,
        *,
        settings: SyncSettings | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        directory_peers: Callable[[], list[Peer]] | None = None,
        make_peer: Callable[[Peer], PeerSync] | None = None,
        on_alarm: Callable[[str, str, str], None] | None = None,
        on_check: Callable[[], None] | None = None,
    ) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.settings = settings or (peers[0].settings if peers else SyncSettings())
        self.clock = clock
        self.log = log
        self._mono = monotonic
        self._directory_peers = directory_peers
        self._make_peer = make_peer
        self._on_alarm = on_alarm
        self._on_check = on_check
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._lock = threading.Lock()
        self._stopping = False
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._slots: dict[str, _Slot] = {}
        for ps in peers:
            self._slots[ps.peer.node_id] = _Slot(ps, self._mono())

    @property
    def peers(self) -> dict[str, PeerSync]:
        return {peer_id: slot.ps for peer_id, slot in self._slots.items()}

    # -- life cycle ------------------------------------------------------------------------

    def start(self, *, watchdog: bool = True) -> None:
        for peer_id, slot in list(self._slots.items()):
            slot.due = self._mono() + self._resume_delay(slot.ps)
            self._add_job(peer_id, slot.due)
        self._scheduler.start()
        if watchdog:
            self._watchdog = threading.Thread(target=self._watch, name="sync-watchdog", daemon=True)
            self._watchdog.start()

    def _resume_delay(self, ps: PeerSync) -> float:
        """The persisted next attempt, re-judged against the wall clock now: a
        time saved under a clock that was ahead is never waited out in full."""
        state = ps.state()
        ps.failures, ps.link_down = state.failures, machine.link_down(state)
        delay, saved = machine.resume_delay(state, self.clock(), ps.settings)
        if saved is not None:
            self.log.warning(
                "saved next attempt is further away than its backoff: the clock moved; using the backoff",
                peer=ps.peer.node_id,
                saved_seconds_away=round(saved, 1),
                backoff_seconds=round(delay, 1),
            )
        return delay

    def shutdown(self) -> None:
        """Stop scheduling, then wait for running rounds (outside the lock: a
        finishing round takes it, and must see `_stopping`)."""
        with self._lock:
            self._stopping = True
            running = self._scheduler.running
        self._stop.set()
        if running:
            self._scheduler.shutdown(wait=True)
        if self._watchdog is not None:
            self._watchdog.join(timeout=10)

    # -- jobs --------------------------------------------------------------------------------

    def _add_job(self, peer_id: str, due: float) -> None:
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=max(self.settings.interval, 0.05),
            id=peer_id,
            args=[peer_id],
            next_run_time=self._wall(due),
            replace_existing=True,
            # A second instance only ever finds the first running and returns; two
            # keep APScheduler from skipping a fire while a round is finishing.
            max_instances=2,
            coalesce=True,
            misfire_grace_time=None,
        )

    def _wall(self, due: float) -> datetime:
        return self.clock() + timedelta(seconds=max(0.0, due - self._mono()))

    def _arm(self, peer_id: str, due: float) -> None:
        """Make the job fire at monotonic time `due`. Never raises."""
        from apscheduler.jobstores.base import JobLookupError

        if self._stopping or not self._scheduler.running:
            return
        with contextlib.suppress(JobLookupError):  # the watchdog re-creates it (and raises an alarm)
            self._scheduler.modify_job(peer_id, next_run_time=self._wall(due))

    def _tick(self, peer_id: str) -> None:
        slot = self._slots.get(peer_id)
        if slot is None:
            return
        with self._lock:
            if slot.running or self._stopping:
                return
            now = self._mono()
            if not slot.again and now < slot.due:
                early = True
            else:
                early = False
                slot.running, slot.started, slot.slow_warned = True, now, False
                if now >= slot.due:
                    slot.full = True
        if early:  # the heartbeat, or a wall clock that jumped ahead: not due yet
            self._arm(peer_id, slot.due)
            return
        delay = self.settings.interval
        try:
            while True:
                with self._lock:
                    slot.again = False
                    full = slot.full or self._mono() >= slot.pull_due
                    slot.full = False
                    if full:
                        slot.pull_due = self._mono() + self.settings.interval
                delay = self._round(slot.ps, pull=full)
                with self._lock:
                    if self._stopping or not slot.again or slot.ps.failures:
                        break
        finally:
            with self._lock:
                slot.running = False
                slot.due = self._mono() + delay
                if slot.again and not slot.ps.failures:
                    slot.due = self._mono()
            self._arm(peer_id, slot.due)

    def _round(self, ps: PeerSync, *, pull: bool = True) -> float:
        try:
            state = ps.run(self.clock(), pull=pull)
        except Exception as e:  # e.g. the peer state could not be saved
            self.log.exception("sync round failed on this node", peer=ps.peer.node_id, error=str(e))
            ps.failures += 1
            return backoff_delay(ps.failures, self.settings.backoff_initial, self.settings.backoff_max)
        return ps.next_delay(state)

    # -- bringing rounds forward ------------------------------------------------------------

    def poke(self) -> None:
        """New envelopes committed: sync at once with every peer not backing off.
        Never raises (it runs after a commit)."""
        self.relay("")

    def relay(self, source: str) -> None:
        """Envelopes received from peer `source` committed: sync at once with
        every other peer not backing off. `source` holds them already, and a
        round with it now would only pull back what it is still pushing (a
        duplicate), so its job keeps its time. Never raises (it runs after a commit)."""
        if self._stopping:
            return
        for peer_id, slot in list(self._slots.items()):
            if slot.ps.failures or peer_id == source:
                continue
            self._bring_forward(peer_id, slot)

    def called_in(self, peer_id: str) -> None:
        """`peer_id` called us: it is alive, so a backoff towards it is moot."""
        slot = self._slots.get(peer_id)
        if slot is None or not slot.ps.failures:
            return
        now = self._mono()
        if now - slot.last_forward < self.settings.backoff_initial:
            return
        slot.last_forward = now
        self.log.debug("peer called in: syncing with it now", peer=peer_id)
        self._bring_forward(peer_id, slot, full=True)

    def _bring_forward(self, peer_id: str, slot: _Slot, *, full: bool = False) -> None:
        with self._lock:
            slot.again = True
            slot.full = slot.full or full
            if slot.running:
                return  # the running round goes once more
        self._arm(peer_id, self._mono())

    # -- the watchdog ------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.probe_interval):
            try:
                if self._on_check is not None:
                    self._on_check()  # the node's own periodic duties (trust files, rekey, health)
                self.check()
                self.probe()
            except Exception as e:  # the watchdog itself must never die
                self.log.exception("sync watchdog failed", error=str(e))

    def check(self) -> list[str]:
        """The invariant check: every peer has its job, a due peer's job fires
        soon, and the jobs follow the directory. Returns what it repaired."""
        repaired = self._follow_directory()
        for peer_id, slot in list(self._slots.items()):
            job = self._scheduler.get_job(peer_id)
            if job is None:
                self._alarm("sync_job_missing", peer_id, "the sync job of this peer was missing: re-created")
                with self._lock:
                    slot.due = due = self._mono()
                    slot.again = True  # a running round goes once more; else the new job fires now
                    slot.full = True
                # `due` as set here: a round ending now rewrites slot.due (to the interval,
                # then back to now for `again`), and a read between the two armed the new
                # job 30 s away (seen once in CI: the re-created job did not run)
                self._add_job(peer_id, due)
                repaired.append(peer_id)
                continue
            self._check_slot(peer_id, slot, job.next_run_time)
        return repaired

    def _check_slot(self, peer_id: str, slot: _Slot, next_run: datetime | None) -> None:
        now, grace = self._mono(), self.settings.probe_interval
        with self._lock:
            running, due, started = slot.running, slot.due, slot.started
        if running:
            took = now - started
            if took > 3 * self.settings.timeout and not slot.slow_warned:
                slot.slow_warned = True
                self.log.warning("sync round still running", peer=peer_id, seconds=round(took, 1))
            return
        late = next_run is None or (next_run - self.clock()).total_seconds() > max(0.0, due - now) + grace
        if late:  # the wall clock moved back, or a fire was lost: fire by the monotonic clock
            self.log.info("sync job re-armed (its fire time had moved away)", peer=peer_id)
            self._arm(peer_id, due)

    def _follow_directory(self) -> list[str]:
        if self._directory_peers is None or self._make_peer is None:
            return []
        wanted = {p.node_id: p for p in self._directory_peers()}
        changed = []
        for peer_id, peer in wanted.items():
            slot = self._slots.get(peer_id)
            if slot is not None and slot.ps.peer == peer:
                continue
            ps = self._make_peer(peer)
            self._slots[peer_id] = _Slot(ps, self._mono())
            self._add_job(peer_id, self._mono())
            self.log.info("peer added to replication", peer=peer_id, endpoint=peer.endpoint)
            changed.append(peer_id)
        for peer_id in set(self._slots) - set(wanted):
            self._remove(peer_id)
            changed.append(peer_id)
        return changed

    def _remove(self, peer_id: str) -> None:
        from apscheduler.jobstores.base import JobLookupError

        self._slots.pop(peer_id, None)
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(peer_id)
        self.log.info("peer removed from replication (no longer in the directory)", peer=peer_id)

    def probe(self) -> list[str]:
        """Health-check the peers that are down for the link's sake; bring the
        ones that answer forward. Returns those that answered."""
        now = self._mono()
        pending = []
        for peer_id, slot in list(self._slots.items()):
            ps = slot.ps
            if ps.probe is None or not ps.failures or not ps.link_down or slot.running:
                continue
            if slot.due - now <= self.settings.probe_interval:
                continue  # its round comes soon anyway
            try:
                pending.append((peer_id, slot, ps.probe(self.settings.probe_timeout)))
            except PeerError as e:
                self.log.debug("probe not sent", peer=peer_id, error=str(e))
            except Exception as e:
                self.log.exception("probe not sent: a bug of this node", peer=peer_id, error=str(e))
        answered = []
        for peer_id, slot, future in pending:
            try:
                future.result()
            except PeerError as e:
                self.log.debug("probe unanswered", peer=peer_id, error=e.code)
                continue  # still down
            except Exception as e:
                self.log.exception("probe failed on this node", peer=peer_id, error=str(e))
                continue
            answered.append(peer_id)
            self.log.debug("peer answers a probe: syncing now", peer=peer_id)
            slot.last_forward = self._mono()
            self._bring_forward(peer_id, slot, full=True)
        return answered

    def _alarm(self, kind: str, peer_id: str, detail: str) -> None:
        self.log.error(detail, peer=peer_id, alarm=kind)
        if self._on_alarm is not None:
            try:
                self._on_alarm(kind, peer_id, detail)
            except Exception as e:
                self.log.exception("alarm not recorded", peer=peer_id, error=str(e))
