"""Damaged envelopes: found, moved out of the log, and healed from another holder.

A stored envelope is damaged when its bytes no longer hash to the hash it was
stored under, or no longer carry its origin's signature (a disk or a hand that
altered the database). It can be found when it is about to be sent, when a
peer refuses our copy, when it is read, or by the periodic verification pass
(`Scrubber`). Then, in one transaction: the row moves to `quarantine` (kept as
evidence), the records index of it goes with it, the stream head goes back to
the position before it, an alarm is written; after the commit the
`on_quarantined` listeners run (replication fetches an intact copy from a peer
that holds the stream). The node's vector now says it lacks the envelope, so
every peer that holds an intact copy also sends it at its next round: the
stream heals by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from crypto import envelope as env_crypto
from crypto.errors import CryptoError
from crypto.signing import KeyRing
from federation.notify import notify
from gcn.v1 import envelope_pb2 as epb
from node.clock import Clock
from node.logging import get_logger
from node.storage.alarms import add_alarm
from node.storage.db import APPLY_LOCK, Database, writers_lock
from node.storage.envelope_log import as_envelope
from node.storage.models import EnvelopeRow, QuarantineRow, StreamRow
from node.storage.refusals import StreamRefusals

log = get_logger(__name__)


@dataclass(frozen=True)
class Quarantined:
    origin: str
    audience: str
    seq: int


class Quarantine:
    def __init__(
        self, db: Database, clock: Clock, keyring: Callable[[], KeyRing], refusals: StreamRefusals
    ) -> None:
        self.db = db
        self.clock = clock
        self.keyring = keyring
        self.refusals = refusals
        self.on_quarantined: list[Callable[[Sequence[Quarantined]], None]] = []

    def damage(self, row: EnvelopeRow, *, signatures: bool = True) -> str | None:
        why = env_crypto.damage(as_envelope(row), row.hash, self.keyring() if signatures else None)
        return why if why is not None else _columns_damage(row)

    def check(self, envelope_ids: Sequence[int], found_by: str) -> list[Quarantined]:
        """Check these stored envelopes; quarantine the damaged ones."""
        damaged: dict[int, str] = {}
        with self.db.read() as s:
            for row in s.scalars(select(EnvelopeRow).where(EnvelopeRow.id.in_(list(envelope_ids)))):
                reason = self.damage(row)
                if reason is not None:
                    damaged[row.id] = reason
        return self.quarantine(damaged, found_by) if damaged else []

    def quarantine(self, damaged: dict[int, str], found_by: str) -> list[Quarantined]:
        """Move these envelopes (id → why) out of the log, in one transaction."""
        now = self.clock()
        out: list[Quarantined] = []
        with self.db.begin() as s:
            writers_lock(s, APPLY_LOCK)
            for envelope_id, reason in sorted(damaged.items()):
                row = s.get(EnvelopeRow, envelope_id)
                if row is None:
                    continue
                out.append(self._move(s, row, found_by, reason, now))
        for q in out:
            self.refusals.clear_stream(q.origin, q.audience)
            log.error(
                "damaged envelope quarantined: fetching an intact copy",
                origin=q.origin,
                audience=q.audience,
                seq=q.seq,
                found_by=found_by,
            )
        if out:
            notify([partial(listener, out) for listener in self.on_quarantined])
        return out

    def _move(self, s: Session, row: EnvelopeRow, found_by: str, reason: str, now: object) -> Quarantined:
        s.add(
            QuarantineRow(
                envelope_id=row.id,
                hash=row.hash,
                origin=row.origin,
                audience=row.audience,
                seq=row.seq,
                header=row.header,
                ciphertext=row.ciphertext,
                signature=row.signature,
                found_by=found_by,
                reason=reason[:512],
                found_at=now,
            )
        )
        add_alarm(
            s,
            "corrupt_envelope",
            now,  # type: ignore[arg-type]
            f"{row.origin} {row.audience} seq {row.seq} damaged ({found_by}): {reason}",
            origin=row.origin,
            audience=row.audience,
            seq=row.seq,
            first_hash=row.hash,
        )
        origin, audience, seq = row.origin, row.audience, row.seq
        header = _header(row)
        s.delete(row)  # the records index of it goes by ON DELETE CASCADE
        s.flush()
        _head_before(s, origin, audience, seq, now)
        if header is not None and (header.origin, header.audience, header.seq) != (origin, audience, seq):
            # stored under the wrong position: its true stream lacks it too
            _head_before(s, header.origin, header.audience, header.seq, now)
        return Quarantined(origin, audience, seq)


def _header(row: EnvelopeRow) -> epb.EnvelopeHeader | None:
    try:
        return env_crypto.parse_header(as_envelope(row))
    except CryptoError:
        return None


def _columns_damage(row: EnvelopeRow) -> str | None:
    """Why the row's routing columns disagree with the signed header, or None
    (a hand that edited seq or audience leaves the bytes intact)."""
    h = _header(row)
    if h is None:
        return "its header does not parse"
    if (h.origin, h.audience, h.seq) != (row.origin, row.audience, row.seq):
        return (
            f"its columns ({row.origin} {row.audience} seq {row.seq}) do not match "
            f"its signed header ({h.origin} {h.audience} seq {h.seq})"
        )
    return None


def _head_before(s: Session, origin: str, audience: str, seq: int, now: object) -> None:
    """Move the stream head back to just before `seq` (if it was at or past it)."""
    head = s.get(StreamRow, (origin, audience), with_for_update=True)
    if head is None or head.head_seq < seq:
        return
    if seq == 1:
        s.delete(head)
        return
    before = s.scalars(
        select(EnvelopeRow.hash).where(
            EnvelopeRow.origin == origin, EnvelopeRow.audience == audience, EnvelopeRow.seq == seq - 1
        )
    ).all()
    if len(before) != 1:  # not a chain we can stand on: back to nothing, the vector re-fills it
        s.delete(head)
        return
    head.head_seq, head.head_hash, head.updated_at = seq - 1, before[0], now  # type: ignore[assignment]
