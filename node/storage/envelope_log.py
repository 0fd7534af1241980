"""The node's append-only log of envelopes, and the heads of its streams.

Invariants:
- an envelope is stored once (its hash is unique); storing it again is a no-op;
- the node's own streams are gapless: `append_own` takes the next `seq` after
  the stream head and chains `prev_hash` to the head's hash, in the caller's
  transaction, under a process lock (and a row lock on PostgreSQL), so two
  concurrent records never get the same `seq`;
- a stream head only moves forward, and only over contiguous `seq`.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from crypto import envelope as env_crypto
from crypto.keys import SigningKey
from gcn.v1 import envelope_pb2 as epb
from node.errors import NodeError
from node.storage.bulk_insert import RowInserter, next_ids
from node.storage.models import ENVELOPES, STREAMS, EnvelopeRow, StreamRow
from node.timing import Phases

_ENVELOPE_INSERT = RowInserter(
    ENVELOPES,
    (
        "id",
        "hash",
        "origin",
        "audience",
        "seq",
        "epoch",
        "kind",
        "record_id",
        "created_at",
        "received_at",
        "header",
        "ciphertext",
        "signature",
        "prev_hash",
    ),
)


# The statements of the recording path, built once (building a Core statement
# costs more than running it for a one-record transaction).
_OWN_HEADS = (
    select(STREAMS.c.audience, STREAMS.c.head_seq, STREAMS.c.head_hash)
    .where(
        STREAMS.c.origin == bindparam("origin"),
        STREAMS.c.audience.in_(bindparam("audiences", expanding=True)),
    )
    .with_for_update()
)
_HIGHEST_OWN = (
    select(ENVELOPES.c.audience, func.max(ENVELOPES.c.seq))
    .where(
        ENVELOPES.c.origin == bindparam("origin"),
        ENVELOPES.c.audience.in_(bindparam("audiences", expanding=True)),
    )
    .group_by(ENVELOPES.c.audience)
)
_NEW_HEAD = insert(STREAMS)  # the column values come with the parameters
_MOVE_HEAD = update(STREAMS).where(
    STREAMS.c.origin == bindparam("b_origin"), STREAMS.c.audience == bindparam("b_audience")
)


class StreamStalledError(NodeError):
    """An own stream cannot take a new envelope without reusing a seq."""


@dataclass(frozen=True)
class OwnEnvelope:
    """What to seal into one of the node's own streams."""

    audience: str
    kind: epb.RecordKind.ValueType
    view: epb.View.ValueType
    record_id: str
    body: bytes
    epoch: int
    audience_key: bytes | None


@dataclass(frozen=True)
class Appended:
    envelope_id: int
    verified: env_crypto.VerifiedEnvelope


def _timestamp(at: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


class EnvelopeLog:
    def __init__(self, node_id: str, signer: SigningKey) -> None:
        self.node_id = node_id
        self.signer = signer
        self._own_lock = threading.Lock()
        # "seal": the time `append_own` spends sealing (for benchmarks; see node.timing).
        self.phases = Phases()

    @contextmanager
    def writing_own(self) -> Iterator[None]:
        """Hold while allocating sequence numbers in the node's own streams,
        until the transaction that uses them has committed."""
        with self._own_lock:
            yield

    def head(self, session: Session, origin: str, audience: str, *, lock: bool = False) -> StreamRow | None:
        stmt = select(StreamRow).where(StreamRow.origin == origin, StreamRow.audience == audience)
        if lock:
            stmt = stmt.with_for_update()
        return session.scalars(stmt).first()

    def append_own(self, session: Session, items: list[OwnEnvelope], now: datetime) -> list[Appended]:
        """Seal each item as the next envelope of this node's stream to its
        audience, in order, and store them all. Call inside `writing_own()` and
        a transaction; nothing is visible to others before the commit.

        This is the hot path of recording: it uses SQLAlchemy Core (one select
        of the heads, one insert of the envelopes, one write per head)."""
        conn = session.connection()
        heads = self._heads(conn, {item.audience for item in items})
        fresh = {a for a in {item.audience for item in items} if a not in heads}
        sealed: list[env_crypto.VerifiedEnvelope] = []
        with self.phases.timed("seal"):
            for item in items:
                # Each envelope its own sub-second offset: the views of one record,
                # sealed in one transaction, share no time a relay could match.
                created_at = _timestamp(now + timedelta(microseconds=secrets.randbelow(1_000_000)))
                seq, prev = heads.get(item.audience, (0, b""))
                # Version 2: the header names this envelope alone and only the
                # record's class; its id, kind and view are inside `body`.
                header = epb.EnvelopeHeader(
                    record_id=str(uuid.uuid4()),
                    origin=self.node_id,
                    audience=item.audience,
                    seq=seq + 1,
                    prev_hash=prev,
                    epoch=item.epoch,
                    kind=env_crypto.header_kind(item.kind),
                    created_at=created_at,
                )
                verified = env_crypto.seal(header, item.body, self.signer, item.audience_key)
                heads[item.audience] = (header.seq, verified.hash)
                sealed.append(verified)
        ids = self.store_many(session, sealed, now)
        for audience, (seq, head_hash) in heads.items():
            values = {"head_seq": seq, "head_hash": head_hash, "updated_at": now}
            if audience in fresh:
                conn.execute(_NEW_HEAD, {"origin": self.node_id, "audience": audience, **values})
            else:
                conn.execute(_MOVE_HEAD, {"b_origin": self.node_id, "b_audience": audience, **values})
        return [Appended(i, v) for i, v in zip(ids, sealed, strict=True)]

    def _heads(self, conn: Connection, audiences: set[str]) -> dict[str, tuple[int, bytes]]:
        """The heads of own streams, locked; refuses a stream that holds own
        envelopes beyond its head (a restore that did not complete, or an
        equivocation alarm): writing there would reuse a sequence number."""
        params = {"origin": self.node_id, "audiences": sorted(audiences)}
        heads = {a: (q, h) for a, q, h in conn.execute(_OWN_HEADS, params)}
        highest = conn.execute(_HIGHEST_OWN, params)
        for audience, seq in highest:
            if seq > heads.get(audience, (0, b""))[0]:
                raise StreamStalledError(
                    f"own stream {self.node_id} {audience} holds seq {seq} beyond its head "
                    f"{heads.get(audience, (0, b''))[0]}: refusing to reuse a sequence number "
                    "(see the alarms; restore from the peers that hold the stream)"
                )
        return heads

    def store_many(
        self, session: Session, envelopes: list[env_crypto.VerifiedEnvelope], now: datetime
    ) -> list[int]:
        """Insert verified envelopes; returns their log ids in the same order."""
        if not envelopes:
            return []
        conn = session.connection()
        ids = next_ids(conn, ENVELOPES, len(envelopes))
        _ENVELOPE_INSERT.execute(
            conn,
            [
                (
                    i,
                    v.hash,
                    v.header.origin,
                    v.header.audience,
                    v.header.seq,
                    v.header.epoch,
                    v.header.kind,
                    v.header.record_id,
                    env_crypto.header_created_at(v.header),
                    now,
                    v.envelope.header,
                    v.envelope.ciphertext,
                    v.envelope.signature,
                    v.header.prev_hash,
                )
                for i, v in zip(ids, envelopes, strict=True)
            ],
        )
        return ids

    def get(self, session: Session, envelope_id: int) -> EnvelopeRow | None:
        return session.get(EnvelopeRow, envelope_id)

    def last_own_epoch(self, session: Session, audience: str) -> int:
        """The epoch of this node's latest key message for `audience` in the
        database (another process of this node, e.g. a CLI command beside the
        running server, may have written one this process does not know)."""
        stmt = (
            select(EnvelopeRow.ciphertext)
            .where(
                EnvelopeRow.origin == self.node_id,
                EnvelopeRow.audience == audience,
                EnvelopeRow.kind == epb.RECORD_KIND_KEY,
            )
            .order_by(EnvelopeRow.seq.desc())
            .limit(1)
        )
        body = session.scalar(stmt)
        if body is None:
            return 0
        try:
            return int(epb.KeyMessage.FromString(body).epoch)
        except DecodeError:
            return 0

    def key_envelopes(self, session: Session) -> list[EnvelopeRow]:
        stmt = select(EnvelopeRow).where(EnvelopeRow.kind == epb.RECORD_KIND_KEY).order_by(EnvelopeRow.id)
        return list(session.scalars(stmt))


def as_envelope(row: EnvelopeRow) -> epb.Envelope:
    return epb.Envelope(header=row.header, ciphertext=row.ciphertext, signature=row.signature)
