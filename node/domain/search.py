"""Searching one store: the records that answer a `Query`, newest first, one
per record, with the views of it that are here folded together.

Order and position. Results come in descending (event date, origin, record
id): the same order at every node, so a node can merge its own results with
its hubs' and a page token is one `Position` for all of them (the last
record shown). Every view of a record sorts at the same place.

The plan. An index criterion's matches are counted up to `DRIVE_LIMIT`
first. When the rarest has no more than that, the search starts from its
matches, narrowed by those of the other rare ones (a few index lookups, then
a sort of at most `DRIVE_LIMIT` rows), and checks the rest per record;
when every criterion is common, it walks the records in search order
(`ix_records_search_order`) and checks each criterion per record, stopping
at the page's end. Neither plan is left to the planner's guess, so neither
falls onto a scan of the whole store. A criterion checked per record reads
that record's own terms (`ix_record_terms_envelope_id`), never every row of
its term (`_term_condition(by_record=True)`).

The audience filter (`audiences`) is an explicit predicate on the indexed
`audience` column of the rows: what a hub may show the node that asks.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, Select, String, and_, func, literal_column, select, text, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from node.domain.search_query import AT_LEAST, EQ, PREFIX, Criterion, Query
from node.errors import ValidationError
from node.storage.models import RecordRow, RecordTermRow, StreamRow

DRIVE_LIMIT = 5_000
_TERMS_PER_CHECK = 50  # term rows a per-record check reads (a record's terms)
# Rows fetched in one go: one per wanted record, plus room for one record's
# views (at most one row per view): most records have one row, and a walk
# that fetched a row per view of every wanted record read up to 4x the rows
# a page needs. A batch cut inside a record is fetched again from there.
_VIEWS_PER_RECORD = 4
_RESULT_KINDS = (epb.RECORD_KIND_SEIZURE, epb.RECORD_KIND_ALERT, epb.RECORD_KIND_CORRECTION)
_POSITION_RE = re.compile(r"p1:([0-9]{4}-[0-9]{2}-[0-9]{2}):([A-Z0-9][A-Z0-9-]{1,62}):([0-9a-f-]{36})")
MAX_TOKEN_CHARS = 160
# For the rest of the search's transaction on PostgreSQL. A walk's estimated
# cost (a check per record of the store) is far above jit_above_cost:
# compiling it took 250-500 ms of each search. A bitmap scan reads every
# index entry of a term before the first row, so a count "up to DRIVE_LIMIT"
# of a common term read all of them (90,000 at 170,000 records); it is taken
# whenever the statistics lag behind an import. Plain index scans stop early.
_PG_SEARCH_SETTINGS = text(
    "SELECT set_config('jit', 'off', true), set_config('enable_bitmapscan', 'off', true)"
)


@dataclass(frozen=True, order=True)
class Position:
    """Where a record sorts: results come in descending Position."""

    event_date: date
    origin: str
    record_id: str

    def token(self) -> str:
        raw = f"p1:{self.event_date.isoformat()}:{self.origin}:{self.record_id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def of(cls, row: RecordRow) -> Position:
        return cls(row.event_date, row.origin, row.record_id)


def parse_position(token: str, field: str = "page_token") -> Position | None:
    """A `Position.token`; '' is the top. Anything else is refused naming `field`."""
    if not token:
        return None
    refused = ValidationError(field, "is not a page token of this search (start again without it)")
    if len(token) > MAX_TOKEN_CHARS or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        raise refused
    try:
        raw = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)).decode("ascii")
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise refused from e
    m = _POSITION_RE.fullmatch(raw)
    if m is None:
        raise refused
    try:
        return Position(date.fromisoformat(m[1]), m[2], m[3])
    except ValueError as e:
        raise refused from e


@dataclass(frozen=True)
class Found:
    """One record: its fullest view here (`row`) and the other views held."""

    position: Position
    row: RecordRow
    other_views: tuple[int, ...]


def _term_condition(c: Criterion, *, by_record: str = "") -> ColumnElement[bool]:
    """`c` over record_terms. `by_record` (the dialect's name): for a check of
    one record's terms, written so that the database cannot take
    ix_record_terms_field_value for it. SQLite would (two conditions beat one
    in its estimates), and so would PostgreSQL whenever its statistics lag
    behind an import; either then reads every row of a common term once per
    record checked (seconds per query from ~20,000 records on). The record's
    own terms (ix_record_terms_envelope_id, ~50 rows) are the cheap way. On
    SQLite a unary + on a column is its own way of saying so; on PostgreSQL
    `field || ''` is an expression no index covers. Neither changes a result."""
    field: ColumnElement[str] | InstrumentedAttribute[str] = RecordTermRow.field
    col: ColumnElement[str] | InstrumentedAttribute[str] = RecordTermRow.value
    if by_record == "sqlite":
        field = literal_column("+record_terms.field", String())
        col = literal_column("+record_terms.value", String())
    elif by_record:
        field = RecordTermRow.field.concat("")
    if c.op == EQ:
        cond = col == c.value
    elif c.op == PREFIX:  # one index range: terms are compared byte by byte (models.RecordTermRow)
        cond = and_(col >= c.value, col < _after_prefix(c.value))
    else:
        assert c.op == AT_LEAST
        cond = col >= c.value
    return and_(field == c.field, cond)


def _after_prefix(value: str) -> str:
    """The least string greater than every string starting with `value`."""
    return value[:-1] + chr(ord(value[-1]) + 1)


def _has(c: Criterion, dialect: str) -> ColumnElement[bool]:
    """The record (of the outer query) has a term answering `c`: checked per
    record. The OFFSET 0 keeps PostgreSQL from turning the EXISTS into a
    semi-join, which reads every match of a common term (and sorts them all)
    before the first row of a page: the walk in search order is the plan."""
    probe = select(RecordTermRow.id).where(
        RecordTermRow.envelope_id == RecordRow.envelope_id, _term_condition(c, by_record=dialect)
    )
    return (probe if dialect == "sqlite" else probe.offset(0)).exists()


def _row_filters(
    q: Query, after: Position | None, audiences: Collection[str] | None
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [
        RecordRow.kind.in_(_RESULT_KINDS),
        RecordRow.status != npb.RECORD_STATUS_CORRECTED,  # shown by the correction
    ]
    if q.hide_retracted:
        conds.append(RecordRow.status == npb.RECORD_STATUS_ACTIVE)
    if audiences is not None:
        conds.append(RecordRow.audience.in_(sorted(audiences)))
    if q.origin:
        conds.append(RecordRow.origin == q.origin)
    if q.tlp:
        conds.append(RecordRow.tlp == q.tlp)
    if q.date_from:
        conds.append(RecordRow.event_date >= q.date_from)
    if q.date_to:
        conds.append(RecordRow.event_date <= q.date_to)
    if after is not None:
        conds.append(
            tuple_(RecordRow.event_date, RecordRow.origin, RecordRow.record_id)
            < tuple_(after.event_date, after.origin, after.record_id)
        )
    return conds


def _count_upto(s: Session, c: Criterion, limit: int) -> int:
    inner = select(RecordTermRow.envelope_id).where(_term_condition(c)).limit(limit + 1).subquery()
    return int(s.scalar(select(func.count()).select_from(inner)) or 0)


def _matches(s: Session, c: Criterion) -> set[int]:
    return set(s.scalars(select(RecordTermRow.envelope_id).where(_term_condition(c))))


def _rare_matches(s: Session, criteria: Sequence[Criterion]) -> tuple[list[int] | None, list[Criterion]]:
    """Where the search starts: the records in the matches of the rarest
    criterion, if it has at most DRIVE_LIMIT (None: none has), narrowed by
    the matches of each other rare one whose fetch (one index range) costs
    less than checking it for every candidate (~`_TERMS_PER_CHECK` term rows
    each): a company's full name is two or three rare words and "ltd". The
    criteria left are checked per record."""
    rare: list[tuple[int, Criterion]] = []
    common: list[Criterion] = []
    for c in criteria:
        # counted only as far as it could still be fetched: past the rarest
        # so far x _TERMS_PER_CHECK it will be checked per record anyway
        limit = min(DRIVE_LIMIT, rare[0][0] * _TERMS_PER_CHECK) if rare else DRIVE_LIMIT
        n = _count_upto(s, c, limit)
        if n == 0:
            return [], []
        if n > limit:
            common.append(c)
        else:
            rare.append((n, c))
            rare.sort(key=lambda x: x[0])
    if not rare:
        return None, common
    ids = _matches(s, rare[0][1])
    for n, c in rare[1:]:
        if n <= len(ids) * _TERMS_PER_CHECK:
            ids &= _matches(s, c)
            if not ids:
                return [], []
        else:
            common.append(c)
    return sorted(ids), common


def _ordered(q: Select[RecordRow]) -> Select[RecordRow]:
    return q.order_by(
        RecordRow.event_date.desc(), RecordRow.origin.desc(), RecordRow.record_id.desc(), RecordRow.view
    )


def search_store(
    s: Session,
    q: Query,
    *,
    limit: int,
    after: Position | None = None,
    audiences: Collection[str] | None = None,
) -> tuple[list[Found], bool]:
    """Up to `limit` records answering `q`, after `after`, and whether there are
    more. `audiences`: only rows of these audiences (None: any held)."""
    if audiences is not None and not audiences:
        return [], False
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        s.execute(_PG_SEARCH_SETTINGS)
    ids, common = _rare_matches(s, q.criteria)
    if ids is not None and not ids:
        return [], False
    checks = [_has(c, dialect) for c in common]
    found: list[Found] = []
    cursor = after
    while len(found) <= limit:
        want = limit + 1 - len(found) + _VIEWS_PER_RECORD
        stmt = select(RecordRow).where(*_row_filters(q, cursor, audiences), *checks)
        if ids is not None:
            stmt = stmt.where(RecordRow.envelope_id.in_(ids))
        rows = list(s.scalars(_ordered(stmt).limit(want)))
        groups = _fold(rows)
        if len(rows) == want and len(groups) > 1:
            groups = groups[:-1]  # the last record's other views may be in the next batch
        found.extend(groups)
        if len(rows) < want or not groups:
            break
        cursor = groups[-1].position
    return found[:limit], len(found) > limit


def _fold(rows: Sequence[RecordRow]) -> list[Found]:
    """Rows in search order (views of one record together, fullest first) as one
    Found per record."""
    out: list[Found] = []
    i = 0
    while i < len(rows):
        first = rows[i]
        j = i + 1
        while j < len(rows) and rows[j].origin == first.origin and rows[j].record_id == first.record_id:
            j += 1
        others = tuple(sorted({r.view for r in rows[i + 1 : j]} - {first.view}))
        out.append(Found(Position.of(first), first, others))
        i = j
    return out


def held_audiences(s: Session) -> list[str]:
    """The audiences of the streams this node holds."""
    return sorted(set(s.scalars(select(StreamRow.audience).distinct())))
