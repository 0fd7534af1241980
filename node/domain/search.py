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
matches (a few index lookups, then a sort of at most `DRIVE_LIMIT` rows);
when every criterion is common, it walks the records in search order
(`ix_records_search_order`), `WINDOW` rows per statement, and checks each
criterion per record, stopping at the page's end or after `WALK_LIMIT` rows
(a short page, with a token to go on). Neither plan is left to the planner's
guess, so neither falls onto a scan of the whole store. A criterion checked per record reads
that record's own terms (`ix_record_terms_envelope_id`), never every row of
its term (`_term_condition(by_record=True)`).

The audience filter (`audiences`) is an explicit predicate on the indexed
`audience` column of the rows: what a hub may show the node that asks.
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

from sqlalchemy import ColumnElement, Select, String, and_, exists, func, literal_column, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from node.domain.search_query import AT_LEAST, EQ, PREFIX, Criterion, Query
from node.errors import ValidationError
from node.storage.models import RecordRow, RecordTermRow, StreamRow

DRIVE_LIMIT = 5_000
WINDOW = 2_000  # rows of the search order examined by one statement of a walk
WALK_LIMIT = 40_000  # rows a walk examines in one call before it answers with what it found
_VIEWS_PER_RECORD = 4  # rows fetched per wanted record in one go (one per view)
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
    c: Criterion, *, by_record: bool = False, audiences: Sequence[str] = ()
) -> ColumnElement[bool]:
    """`c` over record_terms. `by_record`: for a check of one record's terms,
    written so that SQLite cannot take ix_record_terms_field_value for it (a
    unary + on both columns): it would, for two conditions beat one in its
    estimates, and then read every row of a common term once per record
    checked (seconds per query from ~20,000 records on); the record's own
    terms (ix_record_terms_envelope_id, ~50 rows) are the cheap way. The unary
    + is SQLite's own way of saying so, and changes no result. `audiences`: the
    term's records of these audiences only, one index range per audience
    (ix_record_terms_field_audience_value): index entries of the others are
    never read, so how long a search takes says nothing about them."""
    field: ColumnElement[str] | InstrumentedAttribute[str] = RecordTermRow.field
    col: ColumnElement[str] | InstrumentedAttribute[str] = RecordTermRow.value
    if by_record:
        field = literal_column("+record_terms.field", String())
        col = literal_column("+record_terms.value", String())
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


def _has(c: Criterion, sqlite: bool) -> ColumnElement[bool]:
    """The record (of the outer query) has a term answering `c`."""
    return exists().where(
        RecordTermRow.envelope_id == RecordRow.envelope_id, _term_condition(c, by_record=sqlite)
    )


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


def _rarest(s: Session, criteria: Sequence[Criterion], audiences: Sequence[str]) -> Criterion | None:
    """The criterion with the fewest matches, if it has at most DRIVE_LIMIT."""
    best: tuple[int, Criterion] | None = None
    for c in criteria:
        n = _count_upto(s, c, DRIVE_LIMIT, audiences)
        if n <= DRIVE_LIMIT and (best is None or n < best[0]):
            best = (n, c)
            if n == 0:
                break
    return best[1] if best else None


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
    readable = sorted(audiences) if audiences is not None else held_audiences(s)
    driver = _rarest(s, q.criteria, readable) if q.criteria else None
    sqlite = s.get_bind().dialect.name == "sqlite"
    checks = [_has(c, sqlite) for c in q.criteria if c is not driver]
    if driver is None:
        return _walk(s, q, checks, limit, after, audiences, deadline)
    by_term = select(RecordTermRow.envelope_id).where(_term_condition(driver, audiences=readable))
    ids = list(s.scalars(by_term.distinct()))
    found: list[Found] = []
    cursor = after
    while ids and len(found) <= limit:
        want = (limit + 1 - len(found)) * _VIEWS_PER_RECORD
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


def _window_end(s: Session, q: Query, cursor: Position | None) -> Position | None:
    """The position `WINDOW` rows below `cursor` in search order (an index-only
    walk of ix_records_search_order), or None when fewer rows are left."""
    stmt = select(RecordRow.event_month, RecordRow.record_id, RecordRow.origin)
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
        low = _window_end(s, q, cursor)
        stmt = select(RecordRow).where(*_row_filters(q, cursor, audiences), *checks)
        if low is not None:
            stmt = stmt.where(_key() >= tuple_(low.event_month, low.record_id, low.origin))
        found.extend(_fold(list(s.scalars(_ordered(stmt)))))
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
