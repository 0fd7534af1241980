"""Leases between the replicas of one node over one PostgreSQL database.

A hub that outgrows one machine runs several `gcn serve` processes with the
same node directory (keys, config) and one PostgreSQL database. They all serve
officers, accept pushes and answer searches (what they write is already safe
from each other: `writers_lock`, the stream-head row lock). What must run in
exactly one of them at a time takes a lease here:

- `sync:<peer>`: our replication job with that peer (two would send the same
  envelopes twice and fight over its backoff state);
- `duties`: the key holder's epochs, sealing waiting shares, restoring own
  streams at start (two writers once started one epoch with two keys).

A lease is a PostgreSQL session-level advisory lock taken on a connection this
process keeps for the purpose. It is held for as long as that connection
lives: when the process dies (SIGKILL, a crash, a lost machine) the server
closes the connection and the lock is free at once; another replica takes it
at its next try (`probe_interval_seconds`). A process that is frozen rather
than dead (SIGSTOP, a hung machine) keeps its session: a holder that has not
used its lease connection for `SILENT_AFTER_SECONDS` has its session ended by
the replica that wants the lease (`pg_terminate_backend`; the replicas share
one database role), which then takes it. Whether a lease is still held is
checked on every use by a round trip on that connection: if it broke, every
lease is lost, and taken again on a new connection if nobody else took them.

On SQLite (one process per database file) every lease is always held.
"""

from __future__ import annotations

import hashlib
import threading

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from node.logging import get_logger
from node.storage.db import Database

log = get_logger(__name__)

SYNC = "sync:"
DUTIES = "duties"
SILENT_AFTER_SECONDS = 10.0


def lease_key(scope: str, name: str) -> int:
    """The 64-bit advisory lock number of a lease (signed, as PostgreSQL's
    bigint). Advisory locks are per database, not per schema: `scope` (the
    schema and the node id) keeps two nodes in one database apart."""
    digest = hashlib.sha256(b"gcn-lease\0" + scope.encode() + b"\0" + name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Leases:
    def __init__(self, db: Database, node_id: str) -> None:
        self.db = db
        self.node_id = node_id
        self.scope = ""  # "<schema>/<node id>", read on the lease connection
        self.shared = db.engine.dialect.name == "postgresql"
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._held: set[str] = set()
        # A holder silent this long (no use of its lease connection) is taken as dead.
        self.silent_after = SILENT_AFTER_SECONDS

    def hold(self, name: str) -> bool:
        """Is this lease ours now (taking it if it is free)? A database in
        trouble means no lease (a bug of ours still raises)."""
        if not self.shared:
            return True
        with self._lock:
            try:
                conn = self._connection()
                if name in self._held:
                    conn.execute(text("SELECT 1"))  # the session, and with it the lock, still lives
                    return True
                key = lease_key(self.scope, name)
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
                if not got and self._end_silent_holder(conn, name, key):
                    got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            except (SQLAlchemyError, OSError) as e:  # the connection broke: every lease went with it
                self._lost(str(e))
                return False
            if got:
                self._held.add(name)
                log.info("lease taken: this replica runs it", lease=name)
            return got

    def _end_silent_holder(self, conn: Connection, name: str, key: int) -> bool:
        """End the session of a holder that has not used its lease connection
        for `silent_after` seconds (a frozen process keeps its session, and so
        its locks, for ever: SIGSTOP, a hung machine, a stalled VM). A live
        holder touches it at least every `probe_interval` (its periodic check
        asks for the duties lease); once ended, it finds its leases lost at its
        next use. Returns whether a session was ended."""
        unsigned = key & 0xFFFFFFFFFFFFFFFF
        row = conn.execute(
            text(
                "SELECT l.pid, EXTRACT(EPOCH FROM (now() - a.state_change)) FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo "
                "AND l.objsubid = 1 "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF},
        ).first()
        if row is None or row[1] is None or float(row[1]) < self.silent_after:
            return False
        pid, silent = int(row[0]), float(row[1])
        ended = bool(conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar())
        log.warning(
            "lease holder silent: its database session ended, the lease is taken here",
            lease=name,
            silent_seconds=round(silent, 1),
            ended=ended,
        )
        return ended

    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._held) if self.shared else []

    def release_all(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()  # the session ends: its advisory locks go
                except Exception as e:
                    log.debug("lease connection did not close cleanly", error=str(e))
            self._conn = None
            self._held.clear()

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._held.clear()
            self._conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            schema = self._conn.execute(text("SELECT current_schema()")).scalar()
            self.scope = f"{schema}/{self.node_id}"
        return self._conn

    def _lost(self, why: str) -> None:
        if self._held:
            log.warning("leases lost with their database connection", leases=sorted(self._held), error=why)
        self._held.clear()
        if self._conn is not None:
            try:
                self._conn.invalidate()
            except Exception as e:
                log.debug("lease connection could not be invalidated", error=str(e))
        self._conn = None
