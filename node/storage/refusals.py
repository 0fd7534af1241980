"""Streams waiting behind a refused envelope, per peer and direction.

`by_peer`: the peer refused an envelope we sent; we hold that stream back from
it (every other stream flows) and retry with exponential backoff. `from_peer`:
we refused an envelope the peer sent; we do not ask it for that stream again
until the retry is due (an intact copy may come from another holder meanwhile).
A row is forgotten once the side that lacked the envelope holds the stream past
it. The first refusal of a stream position raises an alarm and a warning; the
retries are debug lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from federation.backoff import backoff_delay
from federation.refusal import BY_PEER, FROM_PEER, Refused
from federation.vectors import Stream
from node.clock import Clock
from node.logging import get_logger
from node.storage.alarms import add_alarm
from node.storage.db import Database
from node.storage.models import AlarmRow, StreamRefusalRow

log = get_logger(__name__)
_ALARM = {BY_PEER: "refused_by_peer", FROM_PEER: "refused_from_peer"}
ALARMS_PER_ORIGIN_HOUR = 50


class StreamRefusals:
    def __init__(
        self, db: Database, clock: Clock, *, backoff_initial: float = 1.0, backoff_max: float = 600.0
    ) -> None:
        self.db = db
        self.clock = clock
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        # Cheap check for the hot path: is any stream waiting at all?
        self._any: bool | None = None

    def note(self, peer: str, direction: str, refusals: Sequence[Refused]) -> list[Refused]:
        """Remember refusals (one row per stream: the first refused position);
        returns the ones that are new (alarmed)."""
        now = self.clock()
        new: list[Refused] = []
        alarmed: dict[str, int] = {}
        with self.db.begin() as s:
            for r in _first_per_stream(refusals):
                row = s.get(StreamRefusalRow, (peer, direction, r.origin, r.audience))
                if row is not None and row.seq == r.seq:
                    row.count += 1
                    row.code, row.reason, row.last_at = r.code, r.reason[:512], now
                    row.retry_at = now + timedelta(seconds=self._backoff(row.count))
                    continue
                if row is not None:
                    s.delete(row)
                    s.flush()
                s.add(
                    StreamRefusalRow(
                        peer=peer,
                        direction=direction,
                        origin=r.origin,
                        audience=r.audience,
                        seq=r.seq,
                        hash=r.hash,
                        code=r.code,
                        reason=r.reason[:512],
                        count=1,
                        first_at=now,
                        last_at=now,
                        retry_at=now + timedelta(seconds=self._backoff(1)),
                    )
                )
                prefix = f"{'refused by' if direction == BY_PEER else 'refused from'} {peer}: "
                if self._may_alarm(s, _ALARM[direction], prefix, r.origin, now, alarmed):
                    add_alarm(
                        s,
                        _ALARM[direction],
                        now,
                        f"{prefix}{r.describe()}",
                        origin=r.origin,
                        audience=r.audience,
                        seq=r.seq,
                        second_hash=r.hash,
                    )
                new.append(r)
        self._any = True
        for r in new:
            log.warning(
                "envelope refused by peer: its stream waits"
                if direction == BY_PEER
                else "envelope refused: its stream waits",
                peer=peer,
                origin=r.origin,
                audience=r.audience,
                seq=r.seq,
                code=r.code,
                reason=r.reason,
            )
        return new

    def _may_alarm(
        self, s: Session, kind: str, prefix: str, origin: str, now: datetime, alarmed: dict[str, int]
    ) -> bool:
        """At most ALARMS_PER_ORIGIN_HOUR refusal alarms of one kind per origin
        and peer an hour (a member writing thousands of bad streams must not
        bury the rest; counted per peer too, since a refused envelope's origin
        may be a lie, so that one member cannot spend another origin's budget);
        the last one says so. The refusals themselves are all kept."""
        if origin not in alarmed:
            since = now - timedelta(hours=1)
            alarmed[origin] = (
                s.scalar(
                    select(func.count())
                    .select_from(AlarmRow)
                    .where(
                        AlarmRow.kind == kind,
                        AlarmRow.origin == origin,
                        AlarmRow.created_at >= since,
                        AlarmRow.detail.startswith(prefix, autoescape=True),
                    )
                )
                or 0
            )
        alarmed[origin] += 1
        if alarmed[origin] == ALARMS_PER_ORIGIN_HOUR:
            add_alarm(
                s,
                kind,
                now,
                f"{prefix}{origin}: {ALARMS_PER_ORIGIN_HOUR} refusals within the hour; "
                "further ones are not alarmed until it passes (gcn sync status lists every waiting stream)",
                origin=origin,
            )
        return alarmed[origin] < ALARMS_PER_ORIGIN_HOUR

    def _backoff(self, count: int) -> float:
        return backoff_delay(count, self.backoff_initial, self.backoff_max)

    def waiting(
        self, peer: str, direction: str, heads: Mapping[Stream, int] | Callable[[], Mapping[Stream, int]]
    ) -> set[Stream]:
        """Streams to hold back now. `heads` is what the side that lacked the
        envelope holds (the peer's vector for `by_peer`, ours for `from_peer`);
        rows it has healed are forgotten."""
        if self._any is False:
            return set()
        now = self.clock()
        with self.db.read() as s:
            rows = list(
                s.scalars(
                    select(StreamRefusalRow).where(
                        StreamRefusalRow.peer == peer, StreamRefusalRow.direction == direction
                    )
                )
            )
        if not rows:
            if not self.all_rows():
                self._any = False
            return set()
        have = heads() if callable(heads) else heads
        healed = [r for r in rows if have.get((r.origin, r.audience), 0) >= r.seq]
        if healed:
            self._forget(healed)
        return {(r.origin, r.audience) for r in rows if r not in healed and r.retry_at > now}

    def _forget(self, rows: Sequence[StreamRefusalRow]) -> None:
        with self.db.begin() as s:
            for r in rows:
                s.execute(
                    delete(StreamRefusalRow).where(
                        StreamRefusalRow.peer == r.peer,
                        StreamRefusalRow.direction == r.direction,
                        StreamRefusalRow.origin == r.origin,
                        StreamRefusalRow.audience == r.audience,
                        StreamRefusalRow.seq == r.seq,
                    )
                )
        for r in rows:
            log.info(
                "stream flows again",
                peer=r.peer,
                origin=r.origin,
                audience=r.audience,
                seq=r.seq,
                refused_times=r.count,
            )

    def clear_stream(self, origin: str, audience: str, direction: str | None = None) -> None:
        """Forget every refusal of one stream (e.g. our copy was damaged and is quarantined)."""
        stmt = delete(StreamRefusalRow).where(
            StreamRefusalRow.origin == origin, StreamRefusalRow.audience == audience
        )
        if direction is not None:
            stmt = stmt.where(StreamRefusalRow.direction == direction)
        with self.db.begin() as s:
            s.execute(stmt)

    def all_rows(self) -> list[StreamRefusalRow]:
        with self.db.read() as s:
            return list(
                s.scalars(
                    select(StreamRefusalRow).order_by(
                        StreamRefusalRow.peer, StreamRefusalRow.origin, StreamRefusalRow.audience
                    )
                )
            )


def _first_per_stream(refusals: Sequence[Refused]) -> list[Refused]:
    first: dict[Stream, Refused] = {}
    for r in refusals:
        if r.stream not in first or r.seq < first[r.stream].seq:
            first[r.stream] = r
    return list(first.values())
