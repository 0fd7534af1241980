"""The periodic verification pass: every envelope the node holds is checked
again, a few hundred at a time in log order, round and round; a damaged one
(its bytes no longer hash to the hash it was stored under, or no longer carry
its origin's signature) is quarantined and fetched again (`node.storage.quarantine`).
A disk that rots or a hand that edits the database is found within one pass
(at the default pace, 3,000 envelopes a minute: a 2.5-million-envelope hub is
verified every ~14 hours for ~1% of one core)."""

from __future__ import annotations

import threading

from sqlalchemy import select

from node.logging import get_logger
from node.storage.db import Database
from node.storage.models import EnvelopeRow
from node.storage.quarantine import Quarantine

log = get_logger(__name__)


class Scrubber:
    def __init__(self, db: Database, quarantine: Quarantine, *, per_step: int = 500) -> None:
        self.db = db
        self.quarantine = quarantine
        self.per_step = per_step
        self.after = 0  # the last envelope id checked
        self.passes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> int:
        """Check the next `per_step` envelopes; returns how many were damaged."""
        damaged: dict[int, str] = {}
        with self.db.read() as s:
            rows = list(
                s.scalars(
                    select(EnvelopeRow)
                    .where(EnvelopeRow.id > self.after)
                    .order_by(EnvelopeRow.id)
                    .limit(self.per_step)
                )
            )
            for row in rows:
                reason = self.quarantine.damage(row)
                if reason is not None:
                    damaged[row.id] = reason
        if rows:
            self.after = rows[-1].id
        else:
            self.after, self.passes = 0, self.passes + 1
        if damaged:
            self.quarantine.quarantine(damaged, "scrub")
        return len(damaged)

    def start(self, period: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, args=(period,), name="scrub", daemon=True)
        self._thread.start()

    def _run(self, period: float) -> None:
        while not self._stop.wait(period):
            try:
                self.step()
            except Exception as e:  # never let the pass die; try again next period
                log.exception("verification pass failed", error=str(e))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
