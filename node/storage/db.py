"""The database connection: one engine per node, schema by Alembic migrations.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy
timeout, and its writing transactions queue first come, first served within
the process (`node.storage.writer_queue`); PostgreSQL is chosen by giving a
`postgresql+psycopg://` URL. The session's lifecycle belongs to the caller
(`with db.begin() as s:` at the edge).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from node.storage.writer_queue import WriterQueue

SQLITE_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
MIN_FREE_BYTES = 256 * 1024 * 1024  # below this the storage health check fails


def _sqlite_pragmas(synchronous: str) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is replaced by explicit BEGIN so
        # that SQLAlchemy's transactions are real SQLite transactions.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    return on_connect


def _sqlite_begin(conn: Any) -> None:
    # A writing transaction takes the write lock up front (BEGIN IMMEDIATE): two
    # writers never both read a stream head and then fail to upgrade
    # (SQLITE_BUSY mid-transaction). A reading one (`Database.read`) takes no
    # lock, so reads never queue behind the writer (WAL gives them a snapshot).
    read_only = conn.get_execution_options().get("gcn_read_only", False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class Database:
    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL", echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
                raise ValueError(f"sqlite synchronous must be one of {SQLITE_SYNCHRONOUS}")
            self.engine: Engine = create_engine(url, echo=echo)
            event.listen(self.engine, "connect", _sqlite_pragmas(sqlite_synchronous))
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(
            self.engine.execution_options(gcn_read_only=True), expire_on_commit=False
        )
        # SQLite: one writer at a time, so this process's writers take turns here
        # rather than polling in SQLite's busy handler.
        self.writers = WriterQueue() if self.is_sqlite else None

    @contextmanager
    def begin(self, *, first: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.
        `first`: a short bookkeeping write, which goes before the writers queued
        on SQLite (`node.storage.writer_queue`)."""
        if self.writers is None:
            with self._sessions.begin() as session:
                yield session
            return
        with self.writers.turn(first=first), self._sessions.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (a snapshot; on SQLite it takes no write lock)."""
        with self._readers.begin() as session:
            yield session

    def session(self) -> Session:
        return self._sessions()

    def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        command.upgrade(alembic_config(self.engine), "head")

    def dispose(self) -> None:
        self.engine.dispose()

    def problem(self, data_dir: Path, min_free_bytes: int = MIN_FREE_BYTES) -> str:
        """Why the node's storage cannot take writes now ("" if it can): the
        database does not answer, or the disk under `data_dir` (where SQLite,
        keys and logs live) is nearly full."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as e:  # any driver error: the health service says so, the node keeps going
            return f"the database does not answer: {type(e).__name__}"
        try:
            free = shutil.disk_usage(data_dir).free
        except OSError as e:
            return f"cannot read the free space under {data_dir}: {e.strerror or e}"
        if free < min_free_bytes:
            mib = 1024 * 1024
            return f"{free // mib} MiB free under {data_dir} (below {min_free_bytes // mib} MiB)"
        return ""


# Transaction-scoped PostgreSQL advisory locks (`writers_lock`); any distinct 64-bit numbers.
APPLY_LOCK = 0x67636E_0001  # "gcn" 1: applying envelopes from peers


def writers_lock(session: Session, key: int) -> None:
    """Make the rest of this transaction exclusive among transactions that take
    the same lock, until it ends. PostgreSQL: `pg_advisory_xact_lock`, so a
    check-then-insert (is this envelope held?) cannot race another one. SQLite:
    nothing to do, every writing transaction already holds the database's
    write lock (`BEGIN IMMEDIATE`)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def alembic_config(engine: Engine | None = None, url: str | None = None) -> AlembicConfig:
    script_location = Path(str(resources.files("node.storage") / "migrations"))
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(script_location))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url)
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg
