"""The outbox's reads in SQL (`federation.outbox.OutboxStore`), and the node's
refusals and custody seen from the outbox's side."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import cast

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from federation.outbox import EnvelopeReader, Head, Ranges, Stored
from federation.refusal import BY_PEER, Refused
from federation.vectors import Stream, Vector
from gcn.v1 import sync_pb2
from node.storage.custody import CustodyVouch
from node.storage.db import Database
from node.storage.models import EnvelopeRow, StreamRow
from node.storage.refusals import StreamRefusals

_ORDER = (EnvelopeRow.origin, EnvelopeRow.audience, EnvelopeRow.seq, EnvelopeRow.id)


def stored(row: EnvelopeRow) -> Stored:
    return Stored(
        row.id,
        row.origin,
        row.audience,
        row.seq,
        row.kind,
        row.hash,
        row.header,
        row.ciphertext,
        row.signature,
        row.received_at,
    )


class SqlOutboxStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def heads(self, origin: str = "") -> list[Head]:
        stmt = select(StreamRow).order_by(StreamRow.origin, StreamRow.audience)
        if origin:
            stmt = stmt.where(StreamRow.origin == origin)
        with self.db.read() as s:
            return [Head(r.origin, r.audience, r.head_seq, r.head_hash) for r in s.scalars(stmt)]

    @contextmanager
    def reading(self) -> Iterator[EnvelopeReader]:
        with self.db.read() as s:
            yield _Reader(s)

    def ids_of(self, keys: Sequence[tuple[str, str, int]]) -> list[int]:
        if not keys:
            return []
        where = or_(
            *(
                and_(EnvelopeRow.origin == o, EnvelopeRow.audience == a, EnvelopeRow.seq == q)
                for o, a, q in keys
            )
        )
        with self.db.read() as s:
            return list(s.scalars(select(EnvelopeRow.id).where(where)))


class _Reader:
    def __init__(self, session: Session) -> None:
        self.session = session

    def __call__(self, ranges: Ranges, *, kinds: Collection[int] = (), limit: int) -> Iterable[Stored]:
        where = or_(
            *(
                and_(
                    EnvelopeRow.origin == o,
                    EnvelopeRow.audience == a,
                    EnvelopeRow.seq > after,
                    EnvelopeRow.seq <= upto,
                )
                for (o, a), (after, upto) in ranges.items()
            )
        )
        stmt = select(EnvelopeRow).where(where)
        if kinds:
            stmt = stmt.where(EnvelopeRow.kind.in_(kinds))
        stmt = stmt.order_by(*_ORDER).limit(limit).execution_options(yield_per=256)
        return (stored(row) for row in self.session.scalars(stmt))


class RefusedByPeer:
    """`StreamRefusals` in the direction of what we sent (`federation.outbox.SentRefusals`)."""

    def __init__(self, refusals: StreamRefusals) -> None:
        self.refusals = refusals

    def waiting(self, peer: str, theirs: Vector) -> set[Stream]:
        return self.refusals.waiting(peer, BY_PEER, theirs)

    def note(self, peer: str, refusals: Sequence[Refused]) -> object:
        return self.refusals.note(peer, BY_PEER, refusals)


class OutboxCustody:
    """`CustodyVouch` as the outbox calls it (`federation.outbox.CustodyVoucher`):
    it reads of each envelope only the fields `Stored` and `EnvelopeRow` share."""

    def __init__(self, vouch: CustodyVouch) -> None:
        self.inner = vouch

    def ended(self) -> dict[tuple[str, str], datetime]:
        return self.inner.ended()

    def vouch(
        self, runs: dict[Stream, list[Stored]], ended: dict[tuple[str, str], datetime], now: datetime
    ) -> tuple[list[sync_pb2.SignedReceipt], dict[Stream, int]]:
        return self.inner.vouch(cast(dict[Stream, list[EnvelopeRow]], runs), ended, now)
