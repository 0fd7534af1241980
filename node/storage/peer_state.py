"""Per-peer replication state in the database (see `federation.peer_machine`).

`DbPeerStateStore` writes each state as it is saved. `WriteBehindPeerStates`
(what a running node uses) does too when no other write is going on; while
one is (a large apply, chunk after chunk), the state is written by a thread of
its own as soon as the writer's turn comes, and the round that saved it goes
on at once: the next round with that peer (a relay) does not wait for a
chunk it has nothing to do with. Reads through it see the newest state,
written or not; `close()` writes what is left.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.peer_machine import STALLED_INTERVALS, PeerState, link_state
from node.logging import get_logger
from node.storage.db import Database
from node.storage.models import PeerRow

__all__ = ["STALLED_INTERVALS", "DbPeerStateStore", "Health", "WriteBehindPeerStates", "link_state"]
log = get_logger(__name__)
_FIELDS = [f.name for f in fields(PeerState)]


class DbPeerStateStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self, peer_id: str, endpoint: str) -> PeerState:
        with self.db.read() as s:
            row = s.get(PeerRow, peer_id)
            if row is None:
                return PeerState(peer_id, endpoint)
            state = PeerState(**{f: getattr(row, f) for f in _FIELDS})
        state.endpoint = endpoint
        return state

    def save(self, state: PeerState) -> None:
        # The scheduler's next round with this peer waits for it: before queued batches.
        with self.db.begin(first=True) as s:
            _write(s, state)

    def all(self) -> list[PeerState]:
        with self.db.read() as s:
            return [PeerState(**{f: getattr(r, f) for f in _FIELDS}) for r in s.scalars(select(PeerRow))]


class WriteBehindPeerStates(DbPeerStateStore):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one flush at a time: states are written in order
        self._pending: dict[str, PeerState] = {}
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="peer-state-writer", daemon=True)
        self._thread.start()

    def load(self, peer_id: str, endpoint: str) -> PeerState:
        with self._lock:
            pending = self._pending.get(peer_id)
        if pending is None:
            return super().load(peer_id, endpoint)
        return replace(pending, endpoint=endpoint)

    def all(self) -> list[PeerState]:
        with self._lock:
            pending = dict(self._pending)
        written = {s.peer_id: s for s in super().all()}
        return list({**written, **{k: replace(v) for k, v in pending.items()}}.values())

    def save(self, state: PeerState) -> None:
        with self._lock:
            self._pending[state.peer_id] = replace(state)
            closed = self._closed
        writers = self.db.writers
        if closed or writers is None or writers.idle:
            self.flush()
        else:
            self._wake.set()

    def flush(self) -> None:
        """Write every state saved and not written yet."""
        with self._flushing:
            with self._lock:
                batch = dict(self._pending)
            if not batch:
                return
            with self.db.begin(first=True) as s:
                for state in batch.values():
                    _write(s, state)
            with self._lock:
                for peer_id, state in batch.items():
                    if self._pending.get(peer_id) is state:
                        del self._pending[peer_id]

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join(timeout=30)
        self.flush()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                if self._closed:
                    return
            try:
                self.flush()
            except Exception:  # the next save (or close) tries again
                log.exception("peer state not written")


def _write(s: Session, state: PeerState) -> None:
    row = s.get(PeerRow, state.peer_id)
    if row is None:
        row = PeerRow(peer_id=state.peer_id)
        s.add(row)
    for f in _FIELDS:
        setattr(row, f, getattr(state, f))


@dataclass(frozen=True)
class Health:
    """What the node can do, as its health service says it (after each watchdog tick)."""

    relaying: bool  # trust is fresh: the node accepts and relays new envelopes
    links: dict[str, str]  # peer → link_state
    streams_waiting: int  # streams waiting behind a refused envelope
    storage: str = ""  # why the database or its disk cannot take writes ("": they can)

    @property
    def links_ok(self) -> bool:
        return self.streams_waiting == 0 and all(v in ("ok", "never") for v in self.links.values())
