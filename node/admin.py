"""The operator facade: what the `gcn` commands that must work on a stopped node
(`users`, `alarms`, `audit`, `sync status`, `bundle export/import`, `directory import`,
`stats`…) do with the node's own files. They open its database themselves
instead of calling its API; officer commands go over gRPC (`node.cli.client`).

This module is the CLI's one way into the node's storage: `node.cli` imports
nothing of node.storage or node.domain (an import-linter contract), only this,
`node.app` (to open a node) and `node.bootstrap` (`gcn init`). What it hands
out are plain values (`Alarm`, `PeerState`, `AuditEntry`, `AuditCheck`) or
narrow stores (`UserStore`, `AuditLog`),
never a database session or an ORM row. It also hands `gcn export` the pure
export mappings (`stix_json`, `write_csv`: records in, text out, no state).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

from federation.refusal import BY_PEER
from federation.scheduler import PeerState
from gcn.v1 import node_pb2 as npb
from node.app import NodeApp
from node.bundle import Exported, Imported, export_bundle, import_bundle, last_known_vector
from node.config import Config
from node.domain.export_csv import write_csv
from node.storage.alarms import recent_alarms
from node.storage.audit import AuditCheck, AuditEntry, AuditLog
from node.storage.db import Database
from node.storage.models import AlarmRow
from node.storage.peer_state import DbPeerStateStore, link_state
from node.storage.trust_files import TrustFiles
from node.storage.users import Role, User, UserStore

__all__ = [
    "BY_PEER",
    "Alarm",
    "AuditCheck",
    "AuditEntry",
    "AuditLog",
    "Exported",
    "Imported",
    "PeerState",
    "Role",
    "TrustFiles",
    "User",
    "UserStore",
    "alarms",
    "export_bundle",
    "import_bundle",
    "last_known_vector",
    "link_state",
    "open_audit",
    "open_node",
    "open_users",
    "peer_states",
    "stix_json",
    "write_csv",
]


@contextmanager
def open_node(config: Config) -> Iterator[NodeApp]:
    """The node of `config`, opened for one command and closed after it."""
    app = NodeApp.open(config)
    try:
        yield app
    finally:
        app.close()


@contextmanager
def open_users(config: Config) -> Iterator[UserStore]:
    """The users of the node of `config`, straight from its database (migrated first)."""
    db = Database(config.database_url, sqlite_synchronous=config.database.sqlite_synchronous)
    try:
        db.migrate()
        yield UserStore(db)
    finally:
        db.dispose()


@contextmanager
def open_audit(config: Config) -> Iterator[AuditLog]:
    """The audit log of the node of `config`, straight from its database
    (migrated first; no keys needed): `gcn audit list` and `gcn audit verify`."""
    db = Database(config.database_url, sqlite_synchronous=config.database.sqlite_synchronous)
    try:
        db.migrate()
        yield AuditLog(db)
    finally:
        db.dispose()


@dataclass(frozen=True)
class Alarm:
    """Something the node flagged for an operator (see `node.storage.models.AlarmRow`)."""

    id: int
    kind: str
    created_at: datetime
    origin: str
    audience: str
    seq: int
    detail: str

    @classmethod
    def of(cls, row: AlarmRow) -> Alarm:
        return cls(row.id, row.kind, row.created_at, row.origin, row.audience, row.seq, row.detail)


def alarms(
    app: NodeApp, limit: int = 50, *, kind: str | None = None, since: datetime | None = None
) -> list[Alarm]:
    """The newest alarms first, optionally of one kind or from a time on."""
    return [Alarm.of(r) for r in recent_alarms(app.db, limit, kind=kind, since=since)]


def peer_states(app: NodeApp) -> dict[str, PeerState]:
    """Each peer's replication state as last saved, by peer id."""
    return {s.peer_id: s for s in DbPeerStateStore(app.db).all()}


def stix_json(records: Iterable[npb.StoredRecord], node_names: Mapping[str, str] | None = None) -> str:
    """`node.domain.export_stix.stix_json`, imported on first use: stix2 takes a
    good part of a second to load, and only `gcn export stix` needs it."""
    from node.domain.export_stix import stix_json as to_stix

    return to_stix(records, node_names)


def generated_json_lines(
    kind: str,
    count: int,
    *,
    seed: int,
    today: date,
    countries: tuple[str, ...] = (),
    years: int = 10,
    start: int = 0,
) -> Iterator[str]:
    """`count` generated seizures or alerts (`node.domain.generator`), each one
    line of protobuf JSON (what `gcn seizure import` reads), made as they are read."""
    from google.protobuf import json_format

    from node.domain.generator import Generator

    gen = Generator(seed=seed, today=today, countries=countries, years=years)
    records = gen.seizures(count, start) if kind == "seizures" else gen.alerts(count, start)
    for record in records:
        yield json_format.MessageToJson(record, indent=None, ensure_ascii=False)
