"""Per-peer replication state in the database (see `federation.scheduler`)."""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy import select

from federation.scheduler import PeerState
from node.db import Database
from node.models import PeerRow

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
