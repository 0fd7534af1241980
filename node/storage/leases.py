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
at its next try (`probe_interval_seconds`). Whether a lease is still held is
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
            except (SQLAlchemyError, OSError) as e:  # the connection broke: every lease went with it
                self._lost(str(e))
                return False
            if got:
                self._held.add(name)
                log.info("lease taken: this replica runs it", lease=name)
            return got

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
