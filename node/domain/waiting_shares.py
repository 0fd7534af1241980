"""Shares that wait for their audience's key.

A record is made when the officer records it, whatever keys the node holds. A
share whose audience key has not arrived yet (a port's first seizures before
its national node's key message, a national node before its region's first
epoch) cannot be sealed: it is written here instead, and the record is sealed
for the node itself (`node:<id>`, the full view) so that nothing is lost and
the officer can read it (unless a full-view share of it could be sealed at
once: that copy serves). As soon as the node holds a key the share may be
sealed under (`AudienceKeys.current`), `seal` re-projects the node's own copy
to the share's view and appends it to the audience's stream, exactly as if it
had been sealed at once: the same record id, the same `recorded_at`.

A waiting share of a record that was retracted or corrected meanwhile is
dropped, never sealed: its audience never saw the record, and the retraction
or correction went (or waits) where the record had gone.

What waits is never silent: one warning per audience when the first share
waits, one info line per audience when they are sealed, and `summary()` for
`gcn sync status`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from google.protobuf.message import DecodeError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from crypto import envelope as env_crypto
from crypto.errors import CryptoError
from federation.audiences import node_audience
from federation.policy import Share
from federation.views import project
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.clock import Clock
from node.domain.index import Opened, index_records
from node.logging import get_logger
from node.storage.alarms import add_alarm
from node.storage.audience_keys import AudienceKeys
from node.storage.db import Database
from node.storage.envelope_log import EnvelopeLog, OwnEnvelope, as_envelope
from node.storage.models import EnvelopeRow, RecordRow, WaitingShareRow

log = get_logger(__name__)

BATCH = 500  # waiting shares sealed per transaction
BUDGET_SECONDS = 1.5  # per call of `seal`: the watchdog that calls it has other duties


@dataclass(frozen=True)
class Waiting:
    """What waits for one audience's key."""

    audience: str
    shares: int
    since: datetime


@dataclass(frozen=True)
class Sealed:
    sealed: int = 0
    dropped: int = 0  # the record was retracted or corrected before the key came


class WaitingShares:
    def __init__(
        self,
        db: Database,
        envelope_log: EnvelopeLog,
        keys: AudienceKeys,
        clock: Clock,
        own_changes: threading.Lock,
    ) -> None:
        self.db = db
        self.clock = clock
        self.log = envelope_log
        self.keys = keys
        # Held while a retraction or correction of an own record decides where it
        # goes and commits, and while a waiting share is sealed: a retraction
        # never misses an audience a share was sealed to in between.
        self._own_changes = own_changes
        self._warned: set[str] = set()

    @property
    def home(self) -> Share:
        return Share(node_audience(self.log.node_id), epb.VIEW_FULL)

    # -- while recording ---------------------------------------------------------------------

    def add(self, s: Session, record_id: str, kind: int, shares: list[Share], now: datetime) -> None:
        """Write the shares of a new record that could not be sealed (inside the
        record's own transaction)."""
        for sh in shares:
            s.add(
                WaitingShareRow(
                    record_id=record_id, kind=kind, audience=sh.audience, view=sh.view, created_at=now
                )
            )
            if sh.audience not in self._warned:  # once per audience (an import makes thousands)
                self._warned.add(sh.audience)
                log.warning(
                    "share waits: no key for its audience yet; it is sealed when the key arrives",
                    record_id=record_id,
                    origin=self.log.node_id,
                    audience=sh.audience,
                )

    @staticmethod
    def drop(s: Session, record_id: str) -> int:
        """A record was retracted or corrected: its waiting shares never go."""
        result = s.execute(delete(WaitingShareRow).where(WaitingShareRow.record_id == record_id))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- when keys arrive --------------------------------------------------------------------

    def summary(self) -> list[Waiting]:
        with self.db.read() as s:
            rows = s.execute(
                select(WaitingShareRow.audience, func.count(), func.min(WaitingShareRow.created_at))
                .group_by(WaitingShareRow.audience)
                .order_by(WaitingShareRow.audience)
            ).all()
        return [Waiting(a, int(n), since) for a, n, since in rows]

    def sealable_audiences(self) -> list[str]:
        with self.db.read() as s:
            audiences = list(s.scalars(select(WaitingShareRow.audience).distinct()))
        return sorted(a for a in audiences if self.keys.current(a) is not None)

    def seal(self, budget: float = BUDGET_SECONDS) -> Sealed:
        """Seal waiting shares whose audience key the node now holds, in batches,
        until none is left or `budget` seconds have gone (the next call goes on)."""
        deadline = time.monotonic() + budget
        sealed = dropped = 0
        per_audience: dict[str, int] = {}
        for audience in self.sealable_audiences():
            while time.monotonic() < deadline:
                n, d = self._seal_batch(audience)
                sealed, dropped = sealed + n, dropped + d
                per_audience[audience] = per_audience.get(audience, 0) + n
                if n + d < BATCH:
                    break
        for audience, n in per_audience.items():
            if n:
                log.info(
                    "waiting shares sealed: their audience key arrived",
                    origin=self.log.node_id,
                    audience=audience,
                    records=n,
                )
                self._warned.discard(audience)
        if dropped:
            log.info("waiting shares dropped: their records were retracted or corrected", shares=dropped)
        return Sealed(sealed, dropped)

    def _seal_batch(self, audience: str) -> tuple[int, int]:
        current = self.keys.current(audience)
        if current is None:
            return 0, 0
        epoch, key = current
        with self._own_changes, self.log.writing_own(), self.db.begin() as s:
            rows = list(
                s.scalars(
                    select(WaitingShareRow)
                    .where(WaitingShareRow.audience == audience)
                    .order_by(WaitingShareRow.id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)  # PostgreSQL: another replica's rows are its own
                )
            )
            items: list[OwnEnvelope] = []
            bodies: list[rec.RecordBody] = []
            dropped = 0
            for row in rows:
                body = self._own_copy(s, row)
                s.delete(row)
                if body is None:
                    dropped += 1
                    continue
                view = epb.View.ValueType(row.view)
                shared = project(body, view)
                shared.record_id, shared.view = row.record_id, view
                kind = epb.RecordKind.ValueType(row.kind)
                items.append(
                    OwnEnvelope(audience, kind, view, row.record_id, shared.SerializeToString(), epoch, key)
                )
                bodies.append(shared)
            now = self.clock()
            appended = self.log.append_own(s, items, now)
            index_records(
                s,
                [
                    Opened.of(a.envelope_id, a.verified.header, b, now)
                    for a, b in zip(appended, bodies, strict=True)
                ],
                fresh=True,
            )
        return len(items), dropped

    def _own_copy(self, s: Session, waiting: WaitingShareRow) -> rec.RecordBody | None:
        """The full body of an own active record, from a full copy the node
        holds (None: it was superseded, or the copy cannot be read: an
        alarm, since that share is lost)."""
        record_id = waiting.record_id
        rows = list(
            s.scalars(
                select(RecordRow).where(
                    RecordRow.record_id == record_id,
                    RecordRow.origin == self.log.node_id,
                    RecordRow.view == epb.VIEW_FULL,
                )
            )
        )
        # Its copy for the node itself if there is one, else a full share sealed at once.
        rows.sort(key=lambda r: r.audience != self.home.audience)
        row = rows[0] if rows else None
        if row is not None and row.status != npb.RECORD_STATUS_ACTIVE:
            return None  # retracted or corrected before the key came
        env_row = None if row is None else s.get(EnvelopeRow, row.envelope_id)
        why = "its copy for the node is not in the log"
        if env_row is not None:
            envelope = as_envelope(env_row)
            header = env_crypto.parse_header(envelope)
            key = self.keys.get(header.audience, header.epoch)
            why = f"no key for {header.audience} epoch {header.epoch}"
            if key is not None:
                try:
                    return rec.RecordBody.FromString(env_crypto.open_body(envelope, header, key))
                except (CryptoError, DecodeError) as e:
                    why = f"its copy for the node does not open: {e}"
        log.error("a waiting share cannot be sealed: dropped", record_id=record_id, audience=waiting.audience)
        add_alarm(
            s,
            "waiting_share_lost",
            self.clock(),
            f"record {record_id} was not shared to {waiting.audience}: {why}",
            origin=self.log.node_id,
            audience=waiting.audience,
        )
        return None
