"""Per-peer replication state in the database (see `federation.scheduler`)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import select

from federation.scheduler import PeerState
from node.storage.db import Database
from node.storage.models import PeerRow

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
        with self.db.begin() as s:
            row = s.get(PeerRow, state.peer_id)
            if row is None:
                row = PeerRow(peer_id=state.peer_id)
                s.add(row)
            for f in _FIELDS:
                setattr(row, f, getattr(state, f))

    def all(self) -> list[PeerState]:
        with self.db.read() as s:
            return [PeerState(**{f: getattr(r, f) for f in _FIELDS}) for r in s.scalars(select(PeerRow))]


# A link that has not succeeded for this many intervals without failing is stalled:
# its rounds are not running (the failure this guards against: a job that vanished).
STALLED_INTERVALS = 3


def link_state(state: PeerState | None, now: datetime, interval: float) -> str:
    """ok, down (failing, backing off), stalled (no success for several
    intervals and no failure either), or never (no round yet)."""
    if state is None or (state.last_success_at is None and not state.failures):
        return "never"
    if state.failures:
        return "down"
    assert state.last_success_at is not None
    if now - state.last_success_at > timedelta(seconds=STALLED_INTERVALS * interval):
        return "stalled"
    return "ok"


@dataclass(frozen=True)
class Health:
    """What the node can do, as its health service says it (after each watchdog tick)."""

    relaying: bool  # trust is fresh: the node accepts and relays new envelopes
    links: dict[str, str]  # peer → link_state
    streams_waiting: int  # streams waiting behind a refused envelope

    @property
    def links_ok(self) -> bool:
        return self.streams_waiting == 0 and all(v in ("ok", "never") for v in self.links.values())
