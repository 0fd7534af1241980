"""Recording: validate → apply the sharing policy → seal one envelope per share
→ append to the streams and index, in one unit of work.

The reply to a record call is built only after the transaction committed, so
an acknowledged record survives a crash of the process right after the reply.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.notify import notify
from federation.policy import Policy, Share
from federation.views import project
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.clock import Clock
from node.domain import record_ids, validation
from node.domain.duplicates import same_seizure
from node.domain.group_commit import GroupCommitter
from node.domain.index import Opened, index_records
from node.domain.validation_pool import check_inline, checked_batches
from node.domain.waiting_shares import WaitingShares
from node.errors import ConflictError, DuplicateRecordError, NodeError, NotFoundError, ValidationError
from node.logging import get_logger
from node.storage.audience_keys import AudienceKeys
from node.storage.db import Database
from node.storage.envelope_log import EnvelopeLog, OwnEnvelope
from node.storage.models import RecordRow
from node.timing import Phases

log = get_logger(__name__)

MAX_BATCH = 1000
_SUPERSEDABLE = (epb.RECORD_KIND_SEIZURE, epb.RECORD_KIND_ALERT, epb.RECORD_KIND_CORRECTION)


class MissingAudienceKeyError(NodeError):
    """The node has no current key for an audience its policy shares to."""


@dataclass(frozen=True)
class Recorded:
    record_id: str
    kind: epb.RecordKind.ValueType
    created_at: datetime
    envelopes: list[npb.EnvelopeRef]
    co2e_tonnes: float = 0.0


@dataclass(frozen=True)
class _Pending:
    record_id: str
    kind: epb.RecordKind.ValueType
    body: rec.RecordBody
    shares: list[Share]
    co2e: float = 0.0


def latest_date(now: datetime) -> date:
    """The calendar date somewhere on Earth is at most this (UTC+14): a seizure
    dated today in Kiribati or Hanoi is not "in the future" for a node on UTC."""
    return (now + timedelta(hours=14)).date()


def earliest_date(now: datetime) -> date:
    """The calendar date somewhere on Earth is at least this (UTC-12): an alert
    valid until today in the Americas is not "in the past"."""
    return (now - timedelta(hours=12)).date()


def _co2e(seizure: rec.Seizure) -> float:
    return round(sum(g.co2e_tonnes for g in seizure.goods), 6)


class RecordService:
    def __init__(
        self, db: Database, envelope_log: EnvelopeLog, keys: AudienceKeys, policy: Policy, clock: Clock
    ) -> None:
        self.db = db
        self.log = envelope_log
        self.keys = keys
        self.policy = policy
        self.clock = clock
        self.on_commit: list[Callable[[], None]] = []  # e.g. the sync scheduler's poke
        self._group: GroupCommitter[_Pending, Recorded] | None = None
        # Held while a retraction or correction decides where it goes and
        # commits, and while a waiting share is sealed (`waiting_shares`).
        self._own_changes = threading.Lock()
        self.waiting = WaitingShares(db, envelope_log, keys, clock, self._own_changes)
        # Per commit, "prepare" (policy views, serialization) and "store" (the
        # transaction: sealing, see `envelope_log.phases`, inserts, index, commit).
        self.phases = Phases()

    # -- the officer's operations ---------------------------------------------------------

    def record_seizure(self, seizure: rec.Seizure, *, refuse_duplicate: bool = False) -> Recorded:
        """One seizure. With `refuse_duplicate` (what the officer API does unless
        asked otherwise), one that repeats an own active seizure — the same day
        and place, one of the same containers or the same vessel — is refused
        naming the earlier record (`node.domain.duplicates`)."""
        now = self.clock()
        checked = validation.check_seizure(seizure, latest_date(now))
        if refuse_duplicate:
            self._refuse_duplicate(checked)
        return self._submit(self._new_seizure(checked), now)

    def _refuse_duplicate(self, checked: rec.Seizure) -> None:
        with self.db.read() as s:
            found = same_seizure(s, self.log.node_id, checked)
        if found is not None:
            record_id, matched = found
            place = checked.place.port_locode or checked.place.country
            raise DuplicateRecordError(
                f"seizure: this node recorded {record_id[:8]} on the same day ({checked.incident_date}) "
                f"at {place} with {matched}; if it is another seizure, send it again allowing a duplicate",
                record_id,
            )

    def record_alert(self, alert: rec.Alert) -> Recorded:
        now = self.clock()
        checked = validation.check_alert(alert, earliest_date(now))
        return self._submit(self._new(epb.RECORD_KIND_ALERT, rec.RecordBody(alert=checked)), now)

    def enable_group_commit(self, max_batch: int = 256) -> None:
        """From now on, new records from concurrent callers share transactions
        (see `node.domain.group_commit`); a served node turns this on."""
        if self._group is None:
            self._group = GroupCommitter(lambda units: self._commit(list(units), self.clock()), max_batch)

    def seal_waiting(self) -> int:
        """Seal the shares that waited for an audience key the node now holds
        (`waiting_shares`); replication is poked for what was sealed."""
        done = self.waiting.seal()
        if done.sealed:
            notify(self.on_commit)
        return done.sealed

    def close(self) -> None:
        if self._group is not None:
            self._group.close()
            self._group = None

    def _submit(self, pending: _Pending, now: datetime) -> Recorded:
        if self._group is not None:
            return _logged(self.log.node_id, self._group.submit(pending))
        return _logged(self.log.node_id, self._commit([pending], now)[0])

    def record_seizures(self, seizures: Sequence[rec.Seizure]) -> list[Recorded]:
        """Several seizures in one transaction; all are validated first (a bad one
        is named by its index: `seizures[3].goods[0].hs_code`), so nothing is
        stored unless all are valid."""
        if not seizures:
            raise ValidationError("seizures", "at least one seizure is required")
        if len(seizures) > MAX_BATCH:
            raise ValidationError("seizures", f"at most {MAX_BATCH} seizures per call (got {len(seizures)})")
        now = self.clock()
        pending = [self._new_seizure(s) for s in check_inline(list(seizures), latest_date(now), 0)]
        recorded = self._commit(pending, now)
        log.info("records stored", origin=self.log.node_id, records=len(recorded))
        return recorded

    def import_seizures(
        self, seizures: Iterable[rec.Seizure], batch_size: int = 1000, *, parallel: bool | None = None
    ) -> int:
        """Bulk ingest (e.g. a CEN history import): each batch is validated whole,
        then sealed and stored in one transaction; the next batch is validated in
        a worker process meanwhile (`node.domain.validation_pool`; `parallel=False`
        keeps it in this process). A broken rule stops the import, named by the
        seizure's index (`seizures[1234].goods[0].hs_code`); the batches before
        it stay stored. Returns how many were stored."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        stored = 0
        batches = _batches(seizures, batch_size)
        for checked in checked_batches(batches, lambda: latest_date(self.clock()), parallel=parallel):
            stored += self._store_checked(checked)
        return stored

    def retract(self, record_id: str, reason: str) -> Recorded:
        now = self.clock()
        target = self._own_record_id(record_id)
        body = rec.RecordBody(
            retraction=rec.Retraction(target_record_id=target, reason=validation.check_reason(reason))
        )
        with self._own_changes:
            with self.db.begin() as s:
                shares = self._shares_of_own_active(s, target)
            pending = _Pending(str(uuid.uuid4()), epb.RECORD_KIND_RETRACTION, body, shares)
            return _logged(self.log.node_id, self._commit([pending], now, check_active=target)[0])

    def correct(self, record_id: str, reason: str, replacement: rec.Seizure | rec.Alert) -> Recorded:
        """Supersede an own record by a full new version. The correction goes where
        the policy sends the new version; audiences the original reached but the
        new version may not are sent a retraction instead."""
        now = self.clock()
        target = self._own_record_id(record_id)
        correction = rec.Correction(target_record_id=target, reason=validation.check_reason(reason))
        if isinstance(replacement, rec.Seizure):
            checked_s = validation.check_seizure(replacement, latest_date(now))
            correction.seizure.CopyFrom(checked_s)
            want_kind = epb.RECORD_KIND_SEIZURE
        else:
            checked_a = validation.check_alert(replacement, earliest_date(now))
            correction.alert.CopyFrom(checked_a)
            want_kind = epb.RECORD_KIND_ALERT
        with self._own_changes:
            return self._correct(target, correction, want_kind, now)

    def _correct(
        self, target: str, correction: rec.Correction, want_kind: epb.RecordKind.ValueType, now: datetime
    ) -> Recorded:
        with self.db.begin() as s:
            old_shares = self._shares_of_own_active(s, target, want_kind)
        new_shares = self.policy.shares(epb.RECORD_KIND_CORRECTION, rec.RecordBody(correction=correction))
        items = [
            _Pending(
                str(uuid.uuid4()),
                epb.RECORD_KIND_CORRECTION,
                rec.RecordBody(correction=correction),
                new_shares,
            )
        ]
        dropped = sorted({sh for sh in old_shares if sh.audience not in {n.audience for n in new_shares}})
        if dropped:
            retraction = rec.Retraction(target_record_id=target, reason=f"corrected: {correction.reason}")
            items.append(
                _Pending(
                    str(uuid.uuid4()),
                    epb.RECORD_KIND_RETRACTION,
                    rec.RecordBody(retraction=retraction),
                    dropped,
                )
            )
        return _logged(self.log.node_id, self._commit(items, now, check_active=target)[0])

    # -- the unit of work -----------------------------------------------------------------

    def _new(self, kind: epb.RecordKind.ValueType, body: rec.RecordBody, co2e: float = 0.0) -> _Pending:
        return _Pending(str(uuid.uuid4()), kind, body, self.policy.shares(kind, body), co2e)

    def _new_seizure(self, checked: rec.Seizure) -> _Pending:
        return self._new(epb.RECORD_KIND_SEIZURE, rec.RecordBody(seizure=checked), _co2e(checked))

    def _store_checked(self, checked: list[rec.Seizure]) -> int:
        now = self.clock()
        pending = [self._new_seizure(s) for s in checked]
        self._commit(pending, now)
        log.info("records imported", origin=self.log.node_id, records=len(pending))
        return len(pending)

    def _commit(
        self, pending: list[_Pending], now: datetime, *, check_active: str | None = None
    ) -> list[Recorded]:
        items: list[OwnEnvelope] = []
        bodies: list[rec.RecordBody] = []
        waiting: list[tuple[_Pending, list[Share]]] = []
        recorded_at = Timestamp()
        recorded_at.FromDatetime(now)
        with self.phases.timed("prepare"):
            for p in pending:
                p.body.recorded_at.CopyFrom(recorded_at)
                keyed, unkeyed = self._keyed(p)
                if unkeyed:
                    waiting.append((p, unkeyed))
                for share in keyed:
                    body = self._project(p.body, share)
                    # Inside the ciphertext, not in the clear header (envelope version 2).
                    body.record_id, body.view = p.record_id, share.view
                    epoch, key = self._current_key(share.audience)
                    items.append(
                        OwnEnvelope(
                            share.audience,
                            p.kind,
                            share.view,
                            p.record_id,
                            body.SerializeToString(),
                            epoch,
                            key,
                        )
                    )
                    bodies.append(body)
        with self.phases.timed("store"), self.log.writing_own(), self.db.begin() as s:
            if check_active is not None:
                self._shares_of_own_active(s, check_active)  # re-check inside the write lock
                self.waiting.drop(s, check_active)  # its audiences that had no key never see it
            for p, unkeyed in waiting:
                self.waiting.add(s, p.record_id, p.kind, unkeyed, now)
            appended = self.log.append_own(s, items, now)
            index_records(
                s,
                [
                    Opened.of(a.envelope_id, a.verified.header, b, now)
                    for a, b in zip(appended, bodies, strict=True)
                ],
                fresh=True,
            )
        refs: dict[str, list[npb.EnvelopeRef]] = {}
        for a, item in zip(appended, items, strict=True):
            h = a.verified.header
            refs.setdefault(item.record_id, []).append(
                npb.EnvelopeRef(audience=h.audience, view=item.view, seq=h.seq, envelope_hash=a.verified.hash)
            )
        notify(self.on_commit)
        return [Recorded(p.record_id, p.kind, now, refs.get(p.record_id, []), p.co2e) for p in pending]

    def _own_record_id(self, value: str) -> str:
        """One of this node's record ids, whole or by an unambiguous prefix."""
        with self.db.read() as s:
            return record_ids.resolve(s, value, origin=self.log.node_id)

    @staticmethod
    def _project(body: rec.RecordBody, share: Share) -> rec.RecordBody:
        return project(body, share.view)

    def _keyed(self, p: _Pending) -> tuple[list[Share], list[Share]]:
        """The record's shares to seal now (their audience key is held) and
        those that wait for their key (e.g. before the node joined a federation,
        or before its region's first key message: `waiting_shares`). An officer
        can always record: a record with a share that waits keeps a full copy
        here (a full share sealed now, else one sealed for the node itself),
        from which the share is sealed when its key comes."""
        keyed = [sh for sh in p.shares if self.keys.current(sh.audience) is not None]
        unkeyed = [sh for sh in p.shares if sh not in keyed]
        if not keyed or (unkeyed and all(sh.view != epb.VIEW_FULL for sh in keyed)):
            keyed.append(self.waiting.home)  # the full copy the waiting shares are sealed from
        return keyed, unkeyed

    def _current_key(self, audience: str) -> tuple[int, bytes]:
        current = self.keys.current(audience)
        if current is None:
            raise MissingAudienceKeyError(
                f"this node holds no key for audience {audience}; run `gcn init` or wait for its key message"
            )
        return current

    def _shares_of_own_active(
        self, s: Session, record_id: str, kind: epb.RecordKind.ValueType | None = None
    ) -> list[Share]:
        rows = list(
            s.scalars(
                select(RecordRow).where(
                    RecordRow.record_id == record_id, RecordRow.origin == self.log.node_id
                )
            )
        )
        if not rows:
            raise NotFoundError(f"record {record_id} is not a record of this node")
        if any(r.kind not in _SUPERSEDABLE for r in rows):
            raise ConflictError(
                f"record {record_id} is a {_kind_name(rows[0].kind)}; "
                "only seizures, alerts and corrections can be superseded"
            )
        inactive = [r for r in rows if r.status != npb.RECORD_STATUS_ACTIVE]
        if inactive:
            status = npb.RecordStatus.Name(npb.RecordStatus.ValueType(inactive[0].status))
            raise ConflictError(f"record {record_id} is already {status} by {inactive[0].superseded_by}")
        if kind is not None:
            original = _original_kind(s, rows[0])
            if original != kind:
                raise ConflictError(
                    f"record {record_id} is a {_kind_name(original)}; "
                    f"it cannot be corrected by a {_kind_name(kind)}"
                )
        return sorted({Share(r.audience, r.view) for r in rows})  # type: ignore[arg-type]


def _original_kind(s: Session, row: RecordRow) -> int:
    """A correction's kind is the kind of the record it corrected, down the chain."""
    while row.kind == epb.RECORD_KIND_CORRECTION and row.target_record_id:
        target = s.scalars(
            select(RecordRow).where(
                RecordRow.record_id == row.target_record_id, RecordRow.origin == row.origin
            )
        ).first()
        if target is None:
            break
        row = target
    return row.kind


def _kind_name(kind: int) -> str:
    return epb.RecordKind.Name(epb.RecordKind.ValueType(kind)).removeprefix("RECORD_KIND_").lower()


def _batches(items: Iterable[rec.Seizure], size: int) -> Iterator[list[rec.Seizure]]:
    batch: list[rec.Seizure] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _logged(origin: str, r: Recorded) -> Recorded:
    """Log a stored record in the caller's context (request id, user), after the commit."""
    for e in r.envelopes:
        log.info(
            "record stored",
            record_id=r.record_id,
            origin=origin,
            audience=e.audience,
            seq=e.seq,
            kind=_kind_name(r.kind),
        )
    return r
