"""Many rows into one table through the driver's `executemany`.

The hot paths (recording, applying a pushed batch) insert ~14 rows per record:
the envelope, its `records` row and a dozen `record_terms`. SQLAlchemy Core's
executemany builds and processes every parameter of every row in Python
(~100 µs per record on this project's machine, a third of a bulk ingest).
`RowInserter` compiles the INSERT once per dialect, applies a column's bind
processor only where its type has one (dates and `UTCDateTime` on SQLite, none
on PostgreSQL) and hands plain tuples (or dicts, for a named paramstyle) to the
DB-API's `executemany`, on the session's own connection and transaction.

`next_ids` hands out primary keys for a table whose ids the caller must know
(the envelope log returns them), so that those inserts need no RETURNING:
on SQLite the caller's transaction holds the write lock (`BEGIN IMMEDIATE`, see
`node.storage.db`), so ids above the current maximum are free; on PostgreSQL they come
from the column's sequence.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Select, Table, func, insert, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine


@dataclass(frozen=True)
class _Compiled:
    sql: str
    processors: tuple[Callable[[Any], Any] | None, ...]
    order: tuple[int, ...] | None  # positional paramstyle: where each placeholder's value is in a row
    names: tuple[str, ...]  # named paramstyle: the key of each column
    memoized: frozenset[int]  # columns of dates and times, whose processed values are reused


class RowInserter:
    """`INSERT INTO table (columns…)` for many rows given as tuples in `columns` order."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        unknown = [c for c in columns if c not in table.c]
        if unknown:
            raise ValueError(f"{table.name} has no column(s) {unknown}")
        self.table = table
        self.columns = tuple(columns)
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is not None:
            return found
        compiled = insert(self.table).compile(dialect=dialect, column_keys=list(self.columns))
        processors = tuple(
            self.table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in self.columns
        )
        order = None
        if compiled.positional:
            assert compiled.positiontup is not None
            order = tuple(self.columns.index(name) for name in compiled.positiontup)
        memoized = frozenset(
            i for i, c in enumerate(self.columns) if _python_type(self.table.c[c].type) in (datetime, date)
        )
        found = _Compiled(str(compiled), processors, order, self.columns, memoized)
        self._by_dialect[dialect.name] = found
        return found

    def execute(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        c = self._compiled(conn.dialect)
        active = [(i, p) for i, p in enumerate(c.processors) if p is not None]
        if active:
            # A batch repeats its timestamps (every own envelope of a commit has
            # the same created_at): a date or time is processed once per value.
            memos: list[dict[Any, Any] | None] = [{} if i in c.memoized else None for i, _ in active]
            processed = []
            for row in rows:
                values = list(row)
                for (i, p), memo in zip(active, memos, strict=True):
                    v = values[i]
                    if memo is None:
                        values[i] = p(v)
                    elif v in memo:
                        values[i] = memo[v]
                    else:
                        values[i] = memo[v] = p(v)
                processed.append(tuple(values))
            rows = processed
        params: Sequence[Any]
        if c.order is not None:
            if c.order == tuple(range(len(self.columns))):
                params = rows
            else:
                pick = operator.itemgetter(*c.order)
                params = [pick(row) for row in rows]
        else:
            names = c.names
            params = [dict(zip(names, row, strict=True)) for row in rows]
        conn.exec_driver_sql(c.sql, params)


def _python_type(column_type: TypeEngine[Any]) -> type | None:
    try:
        return column_type.python_type
    except NotImplementedError:
        return None


_PG_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")


@functools.cache
def _highest_id(table: Table) -> Select[Any]:
    return select(func.coalesce(func.max(table.c.id), 0))


def next_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """`count` unused primary keys of `table` (an integer `id` column), for rows
    the caller inserts in this transaction. On SQLite the transaction must hold
    the write lock (every writing transaction of `node.storage.db` does)."""
    if count <= 0:
        return []
    if conn.dialect.name == "sqlite":
        top = conn.execute(_highest_id(table)).scalar_one()
        return list(range(int(top) + 1, int(top) + 1 + count))
    if conn.dialect.name == "postgresql":
        rows = conn.execute(_PG_NEXT_IDS, {"table": table.name, "n": count})
        return [int(r) for r in rows.scalars()]
    raise NotImplementedError(f"next_ids: unsupported database {conn.dialect.name}")
