"""Per-peer replication state in the database (see `federation.peer_machine`)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import select

from federation.peer_machine import STALLED_INTERVALS, PeerState, link_state
from node.storage.db import Database
from node.storage.models import PeerRow

__all__ = ["STALLED_INTERVALS", "DbPeerStateStore", "Health", "link_state"]
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
            row = s.get(PeerRow, state.peer_id)
            if row is None:
                row = PeerRow(peer_id=state.peer_id)
                s.add(row)
            for f in _FIELDS:
                setattr(row, f, getattr(state, f))

    def all(self) -> list[PeerState]:
        with self.db.read() as s:
            return [PeerState(**{f: getattr(r, f) for f in _FIELDS}) for r in s.scalars(select(PeerRow))]


@dataclass(frozen=True)
class Health:
    """What the node can do, as its health service says it (after each watchdog tick)."""

    relaying: bool  # trust is fresh: the node accepts and relays new envelopes
    links: dict[str, str]  # peer → link_state
    streams_waiting: int  # streams waiting behind a refused envelope

    @property
    def links_ok(self) -> bool:
        return self.streams_waiting == 0 and all(v in ("ok", "never") for v in self.links.values())
