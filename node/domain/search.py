"""Searching one store: the records that answer a `Query`, newest first, one
per record, with the views of it that are here folded together.

Order and position. Results come in descending (event month, record id,
origin): the same order at every node, so a node can merge its own results
with its hubs' and a page token is one `Position` for all of them (the last
record shown). Every view of a record sorts at the same place: a statistical
view keeps only the month of its date, so the order is by month, newest
first, and within a month by record id (random: a stable, arbitrary order).

The plan. An index criterion's matches are counted up to `DRIVE_LIMIT`
first. When the rarest has no more than that, the search starts from its
matches, narrowed by those of the other rare ones (a few index lookups,
then a sort of at most `DRIVE_LIMIT` rows), and checks the rest per record;
when every criterion is common, it walks the records in search order
(`ix_records_search_order`), `WINDOW` rows per statement, and checks each
criterion per record, stopping at the page's end or after `WALK_LIMIT` rows
(a short page, with a token to go on). Neither plan is left to the planner's
guess, so neither falls onto a scan of the whole store. A criterion checked
per record reads that record's own terms (ix_record_terms_envelope_field_value),
never every row of its term (`_term_condition(by_record=...)`).

The audience filter (`audiences`) is an explicit predicate on the indexed
`audience` column of the rows, and of the terms: what a hub may show the node
that asks, and index entries of other audiences are never read.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, func, literal_column, select, text, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from node.domain.search_query import AT_LEAST, EQ, PREFIX, Criterion, Query
from node.errors import ValidationError
from node.storage.models import RecordRow, RecordTermRow, StreamRow

DRIVE_LIMIT = 5_000
_TERMS_PER_CHECK = 50  # term rows a per-record check reads (a record's terms)
# For the rest of the search's transaction on PostgreSQL. A walk's estimated
# cost (a check per record of the store) is far above jit_above_cost:
# compiling it took 250-500 ms of each search. A bitmap scan reads every
# index entry of a term before the first row, so a count "up to DRIVE_LIMIT"
# of a common term read all of them (90,000 at 170,000 records); it is taken
# whenever the statistics lag behind an import. Plain index scans stop early.
_PG_SEARCH_SETTINGS = text(
    "SELECT set_config('jit', 'off', true), set_config('enable_bitmapscan', 'off', true)"
)
WINDOW = 2_000  # rows of the search order examined by one statement of a walk
WALK_LIMIT = 40_000  # rows a walk examines in one call before it answers with what it found
# Rows fetched in one go: one per wanted record, plus room for one record's
# views (at most one row per view). A batch cut inside a record is fetched
# again from there.
_VIEWS_PER_RECORD = 4
_RESULT_KINDS = (epb.RECORD_KIND_SEIZURE, epb.RECORD_KIND_ALERT, epb.RECORD_KIND_CORRECTION)
_POSITION_RE = re.compile(r"p2:([0-9]{4}-[0-9]{2}):([0-9a-f-]{36}):([A-Z0-9][A-Z0-9-]{1,62})")
MAX_TOKEN_CHARS = 160


@dataclass(frozen=True, order=True)
class Position:
    """Where a record sorts: results come in descending Position. The month of
    the event (a statistical view keeps no more of its date), then the record
    id, so every view of a record, at every node, sorts at the same place."""

    event_month: date  # the first of the month
    record_id: str
    origin: str

    def token(self) -> str:
        raw = f"p2:{self.event_month.isoformat()[:7]}:{self.record_id}:{self.origin}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def of(cls, row: RecordRow) -> Position:
        return cls(row.event_month, row.record_id, row.origin)

    @classmethod
    def at(cls, event_date: date, record_id: str, origin: str) -> Position:
        return cls(event_date.replace(day=1), record_id, origin)


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
        return Position(date.fromisoformat(m[1] + "-01"), m[2], m[3])
    except ValueError as e:
        raise refused from e


@dataclass(frozen=True)
class Found:
    """One record: its fullest view here (`row`) and the other views held."""

    position: Position
    row: RecordRow
    other_views: tuple[int, ...]


def _term_condition(
    c: Criterion, *, by_record: str = "", audiences: Sequence[str] = ()
) -> ColumnElement[bool]:
    """`c` over record_terms. `by_record` (the dialect's name): for a check of
    one record's terms, written so that the database cannot take a term index
    (field first) for it. SQLite would (two conditions beat one in its
    estimates), and so would PostgreSQL whenever its statistics lag behind an
    import; either then reads every row of a common term once per record
    checked (seconds per query from ~20,000 records on). The record's own terms
    (ix_record_terms_envelope_field_value) are the cheap way. On SQLite a unary
    + on a column is its own way of saying so; on PostgreSQL `field || ''` is
    an expression no index covers. Neither changes a result. `audiences`: the
    term's records of these audiences only, one index range per audience
    (ix_record_terms_field_audience_value): index entries of the others are
    never read, so how long a search takes says nothing about them."""
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
    if audiences:
        return and_(field == c.field, RecordTermRow.audience.in_(audiences), cond)
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
        conds.append(_before(after))
    return conds


def _before(p: Position) -> ColumnElement[bool]:
    """Rows sorting after `p` (below it: results come in descending order)."""
    before: ColumnElement[bool] = _key() < tuple_(p.event_month, p.record_id, p.origin)
    return before


def _key() -> Any:
    return tuple_(RecordRow.event_month, RecordRow.record_id, RecordRow.origin)


def _count_upto(s: Session, c: Criterion, limit: int, audiences: Sequence[str]) -> int:
    cond = _term_condition(c, audiences=audiences)
    inner = select(RecordTermRow.envelope_id).where(cond).limit(limit + 1).subquery()
    return int(s.scalar(select(func.count()).select_from(inner)) or 0)


def _matches(s: Session, c: Criterion, audiences: Sequence[str]) -> set[int]:
    return set(s.scalars(select(RecordTermRow.envelope_id).where(_term_condition(c, audiences=audiences))))


def _rare_matches(
    s: Session, criteria: Sequence[Criterion], audiences: Sequence[str]
) -> tuple[list[int] | None, list[Criterion]]:
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
        n = _count_upto(s, c, limit, audiences)
        if n == 0:
            return [], []
        if n > limit:
            common.append(c)
        else:
            rare.append((n, c))
            rare.sort(key=lambda x: x[0])
    if not rare:
        return None, common
    ids = _matches(s, rare[0][1], audiences)
    for n, c in rare[1:]:
        if n <= len(ids) * _TERMS_PER_CHECK:
            ids &= _matches(s, c, audiences)
            if not ids:
                return [], []
        else:
            common.append(c)
    return sorted(ids), common


def _ordered(q: Select[RecordRow]) -> Select[RecordRow]:
    return q.order_by(
        RecordRow.event_month.desc(), RecordRow.record_id.desc(), RecordRow.origin.desc(), RecordRow.view
    )


@dataclass(frozen=True)
class StorePage:
    """What one store found: up to `limit` records, whether more may follow,
    and `frontier`: every record sorting at or above it was examined (None
    when the store was searched to its end). A page can be short and still
    have more: a walk examines at most `WALK_LIMIT` rows per call."""

    found: list[Found]
    more: bool
    frontier: Position | None


def search_store(
    s: Session,
    q: Query,
    *,
    limit: int,
    after: Position | None = None,
    audiences: Collection[str] | None = None,
    deadline: float | None = None,
) -> StorePage:
    """Up to `limit` records answering `q`, after `after`. `audiences`: only
    rows of these audiences (None: any held). `deadline` (time.monotonic()):
    a walk stops there too and answers what it found, with a frontier."""
    if audiences is not None and not audiences:
        return StorePage([], False, None)
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        s.execute(_PG_SEARCH_SETTINGS)
    readable = sorted(audiences) if audiences is not None else held_audiences(s)
    ids, common = _rare_matches(s, q.criteria, readable)
    checks = [_has(c, dialect) for c in common]
    if ids is None:
        return _walk(s, q, checks, limit, after, audiences, deadline)
    found: list[Found] = []
    cursor = after
    while ids and len(found) <= limit:
        want = limit + 1 - len(found) + _VIEWS_PER_RECORD
        stmt = select(RecordRow).where(
            *_row_filters(q, cursor, audiences), *checks, RecordRow.envelope_id.in_(ids)
        )
        rows = list(s.scalars(_ordered(stmt).limit(want)))
        groups = _fold(rows)
        if len(rows) == want and len(groups) > 1:
            groups = groups[:-1]  # the last record's other views may be in the next batch
        found.extend(groups)
        if len(rows) < want or not groups:
            break
        cursor = groups[-1].position
    return _page(found, limit, None)


def _page(found: list[Found], limit: int, stopped_at: Position | None) -> StorePage:
    if len(found) > limit:
        return StorePage(found[:limit], True, found[limit - 1].position)
    return StorePage(found, stopped_at is not None, stopped_at)


def _window_end(
    s: Session, q: Query, cursor: Position | None, audiences: Collection[str] | None
) -> Position | None:
    """The position `WINDOW` rows below `cursor` in search order (an index-only
    walk of ix_records_search_order), or None when fewer rows are left. With
    `audiences`, rows of those audiences only: a window's end, which a hub
    may send as its frontier, is always a record the caller may read."""
    stmt = select(RecordRow.event_month, RecordRow.record_id, RecordRow.origin)
    if audiences is not None:
        stmt = stmt.where(RecordRow.audience.in_(sorted(audiences)))
    if cursor is not None:
        stmt = stmt.where(_before(cursor))
    if q.date_from:
        stmt = stmt.where(RecordRow.event_month >= q.date_from.replace(day=1))
    if q.date_to:
        stmt = stmt.where(RecordRow.event_month <= q.date_to)
    stmt = stmt.order_by(RecordRow.event_month.desc(), RecordRow.record_id.desc(), RecordRow.origin.desc())
    row = s.execute(stmt.offset(WINDOW - 1).limit(1)).first()
    return None if row is None else Position(row[0], row[1], row[2])


def _walk(
    s: Session,
    q: Query,
    checks: Sequence[ColumnElement[bool]],
    limit: int,
    after: Position | None,
    audiences: Collection[str] | None,
    deadline: float | None,
) -> StorePage:
    """Every criterion is common: the records in search order, a window of
    `WINDOW` rows at a time, each checked, until the page is full, the store
    ends, `WALK_LIMIT` rows were examined or the deadline passed (then the page
    is short, with more)."""
    found: list[Found] = []
    cursor = after
    examined = 0
    while len(found) <= limit:
        low = _window_end(s, q, cursor, audiences)
        want = limit + 1 - len(found) + _VIEWS_PER_RECORD
        stmt = select(RecordRow).where(*_row_filters(q, cursor, audiences), *checks)
        if low is not None:
            stmt = stmt.where(_key() >= tuple_(low.event_month, low.record_id, low.origin))
        rows = list(s.scalars(_ordered(stmt).limit(want)))
        groups = _fold(rows)
        if len(rows) == want:  # the page may fill inside this window: go on from the last whole record
            if len(groups) > 1:
                groups = groups[:-1]
            found.extend(groups)
            cursor = groups[-1].position
            continue
        found.extend(groups)  # the window is done
        examined += WINDOW
        if low is None:
            return _page(found, limit, None)
        cursor = low
        out_of_time = deadline is not None and time.monotonic() >= deadline
        if (examined >= WALK_LIMIT or out_of_time) and len(found) <= limit:
            return _page(found, limit, low)
    return _page(found, limit, None)


def _fold(rows: Sequence[RecordRow]) -> list[Found]:
    """Rows in search order (views of one record together, fullest first) as one
    Found per record."""
    out: list[Found] = []
    i = 0
    while i < len(rows):
        first = rows[i]
        j = i + 1
        while j < len(rows) and rows[j].record_id == first.record_id and rows[j].origin == first.origin:
            j += 1
        others = tuple(sorted({r.view for r in rows[i + 1 : j]} - {first.view}))
        out.append(Found(Position.of(first), first, others))
        i = j
    return out


def held_audiences(s: Session) -> list[str]:
    """The audiences of the streams this node holds."""
    return sorted(set(s.scalars(select(StreamRow.audience).distinct())))
