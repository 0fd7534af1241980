"""The node's tables (SQLAlchemy 2 declarative, `Mapped[]`).

- `envelopes` is the append-only log: every envelope this node holds, its own
  and received ones, exactly as signed. `id` is the local log sequence.
- `streams` holds, per stream (origin, audience), the highest contiguous `seq`
  held and the hash of that envelope: the node's version vector.
- `records` and `record_terms` index the plaintext of the records this node can
  read; the body itself is never stored decrypted, it is opened from the
  envelope when read.
Schema changes go through Alembic (`node/migrations`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class EnvelopeRow(Base):
    __tablename__ = "envelopes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    origin: Mapped[str] = mapped_column(String(64))
    audience: Mapped[str] = mapped_column(String(128))
    seq: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[int] = mapped_column(Integer)
    kind: Mapped[int] = mapped_column(Integer)
    record_id: Mapped[str] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    header: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32), default=b"")

    __table_args__ = (Index("ix_envelopes_stream", "origin", "audience", "seq"),)


class AlarmRow(Base):
    """Something an operator must look at. Evidence of misbehaviour
    (`equivocation`: two envelopes for one stream position, both kept;
    `broken_chain`; `unauthorised_key_message`), an envelope refused by or from
    a peer (`refused_by_peer`, `refused_from_peer`), a damaged envelope
    quarantined (`corrupt_envelope`), a signed body that breaks the record
    rules (`invalid_body`: kept, not indexed), or trouble of the node itself
    (`sync_job_missing`, `rekey_failed`, `directory_stale`). Hashes and seq are
    empty/0 where the alarm is not about one envelope."""

    __tablename__ = "alarms"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(String(64), index=True)
    audience: Mapped[str] = mapped_column(String(128))
    seq: Mapped[int] = mapped_column(BigInteger)
    first_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    second_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    detail: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StreamRow(Base):
    __tablename__ = "streams"

    origin: Mapped[str] = mapped_column(String(64), primary_key=True)
    audience: Mapped[str] = mapped_column(String(128), primary_key=True)
    head_seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RecordRow(Base):
    """One readable record envelope (a record shared to two audiences that this
    node can both read has two rows, one per view)."""

    __tablename__ = "records"

    envelope_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("envelopes.id", ondelete="CASCADE"),
        primary_key=True,
    )
    record_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(64), index=True)
    audience: Mapped[str] = mapped_column(String(128))
    view: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    event_date: Mapped[date] = mapped_column(Date, index=True)
    event_month: Mapped[date] = mapped_column(Date)  # the first of event_date's month: search order
    status: Mapped[int] = mapped_column(Integer, index=True)
    superseded_by: Mapped[str | None] = mapped_column(String(36))
    # For retractions and corrections: the record they supersede.
    target_record_id: Mapped[str | None] = mapped_column(String(36), index=True)
    tlp: Mapped[int] = mapped_column(Integer)

    # Search reads newest first by this key (`node.domain.search`): one index
    # walk, whatever the query, when its terms are common.
    __table_args__ = (Index("ix_records_search_order", "event_month", "record_id", "origin", "audience"),)


class RecordTermRow(Base):
    """A searchable value of a record: (field, value), e.g. ("container", "CSQU3054383")."""

    __tablename__ = "record_terms"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    envelope_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("records.envelope_id", ondelete="CASCADE"),
    )
    # The record's audience, repeated here so that a hub's search reads only the
    # index entries of the audiences its caller may read (no timing of others').
    audience: Mapped[str] = mapped_column(String(128))
    field: Mapped[str] = mapped_column(String(32))
    # Byte order on PostgreSQL too, so that a prefix is one index range whatever
    # the database's locale (search words are plain ASCII: `node.domain.normalise`).
    value: Mapped[str] = mapped_column(String(256).with_variant(String(256, collation="C"), "postgresql"))

    # (field, audience, value): a term's records, audience by audience;
    # (envelope_id, field, value): a record's terms, which search checks per
    # record without reading the table.
    __table_args__ = (
        Index("ix_record_terms_field_audience_value", "field", "audience", "value"),
        Index("ix_record_terms_envelope_field_value", "envelope_id", "field", "value"),
    )


class UserRow(Base):
    """An officer, analyst or admin of this node. Only the SHA-256 of the
    bearer token is stored (see `node.storage.users`); the token itself never is."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    token_issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PeerRow(Base):
    """Replication progress and backoff with one peer, persisted so a restart
    resumes where it was (what the peer holds is asked again by vector)."""

    __tablename__ = "peers"

    peer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(256))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer, default=0)
    backoff_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    last_error: Mapped[str] = mapped_column(String(512), default="")
    envelopes_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    envelopes_received: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_received: Mapped[int] = mapped_column(BigInteger, default=0)
    # The peer's version vector as it last stated it (JSON: [[origin, audience, seq], ...]).
    their_vector: Mapped[str] = mapped_column(Text, default="[]")
    down_since: Mapped[datetime | None] = mapped_column(UTCDateTime())  # first failure of this outage


class StreamRefusalRow(Base):
    """A stream waiting behind one refused envelope, per peer and direction:
    `by_peer` (the peer refused what we sent: we hold the stream back from it
    until `retry_at`) or `from_peer` (we refused what it sent: we do not ask it
    for the stream until `retry_at`). Deleted once the stream has moved past
    `seq` on the side that lacked it."""

    __tablename__ = "stream_refusals"

    peer: Mapped[str] = mapped_column(String(64), primary_key=True)
    direction: Mapped[str] = mapped_column(String(16), primary_key=True)
    origin: Mapped[str] = mapped_column(String(64), primary_key=True)
    audience: Mapped[str] = mapped_column(String(128), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(512))
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retry_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CustodyReceiptRow(Base):
    """A custody receipt this node relied on (or may hand on): `holder` said it
    held envelope `hash` at (origin, audience, seq) since `held_at`; the signed
    bytes are kept as they came."""

    __tablename__ = "custody_receipts"

    origin: Mapped[str] = mapped_column(String(64), primary_key=True)
    audience: Mapped[str] = mapped_column(String(128), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    holder: Mapped[str] = mapped_column(String(64), primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime())
    receipt: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class QuarantineRow(Base):
    """A stored envelope found damaged (its bytes no longer match its hash, or
    its signature no longer verifies): moved out of the log, kept as evidence.
    The stream head went back before it; an intact copy is fetched from
    another holder."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    envelope_id: Mapped[int] = mapped_column(BigInteger)  # its id in the log, before
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))  # the hash it was stored under
    origin: Mapped[str] = mapped_column(String(64), index=True)
    audience: Mapped[str] = mapped_column(String(128))
    seq: Mapped[int] = mapped_column(BigInteger)
    header: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    found_by: Mapped[str] = mapped_column(String(16))  # send, read, scrub, refusal
    reason: Mapped[str] = mapped_column(String(512))
    found_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditRow(Base):
    """One officer read (get, list, search) in the node's hash-chained audit
    log (`node.storage.audit`): `seq` is gapless from 1, `hash` covers every
    other field and `prev_hash`. Never replicated, never pruned."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    officer: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    query: Mapped[str] = mapped_column(Text)
    results: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class NodeMetaRow(Base):
    """Facts about this node's own store, e.g. the version of the terms its
    search index was built with (`node.domain.reindex`)."""

    __tablename__ = "node_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class WaitingShareRow(Base):
    """A share of one of this node's own records that could not be sealed when
    the record was made, because the node held no key for its audience yet
    (e.g. a port's first seizure before its national node's key message came).
    The record was sealed for the node itself meanwhile; when the key arrives
    the share is sealed from that copy and this row goes
    (`node.domain.waiting_shares`)."""

    __tablename__ = "waiting_shares"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[int] = mapped_column(Integer)
    audience: Mapped[str] = mapped_column(String(128), index=True)
    view: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_waiting_shares_record_audience", "record_id", "audience", unique=True),)


# Core handles on the tables, for the hot paths that bypass the ORM unit of work.
ENVELOPES = Base.metadata.tables["envelopes"]
STREAMS = Base.metadata.tables["streams"]
RECORDS = Base.metadata.tables["records"]
RECORD_TERMS = Base.metadata.tables["record_terms"]
