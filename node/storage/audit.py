"""The audit trail: who searched for or read what, when, and how much came back.

Every officer-API read (`GetRecord`, `ListRecords`, and `Search` once it is
wired) appends one row to `audit_log` on this node: `seq` (1, 2, 3… gapless),
`at`, the officer's user name and role, the `action` (`get`, `list`,
`search`), the `query` (canonical JSON of the request's fields as the officer
sent them: `canonical_query`), the number of `results` returned, `prev_hash`
(the previous row's `hash`; 32 zero bytes for row 1) and `hash`, the SHA-256 of
a domain-separated, length-prefixed encoding of all the other fields
(`row_hash`). Editing, deleting or reordering rows breaks the chain at the
first row touched, which `AuditLog.verify` names (`gcn audit verify`).

What is never written: a bearer token (the caller is known by user name only)
and any record content. The query terms the officer typed are written: they
are what the audit is for.

The table is the node's own: it is not an envelope, nothing in the outbox, a
sync round or a bundle reads it, and gcn never prunes it. A chain proves
that nobody edited a row without rewriting every row after it; someone who
can write the database can still rewrite the whole chain from a row on, or cut
its tail. `AuditCheck.head_hash` (printed by `gcn audit verify`) is the anchor
against that: kept elsewhere, a later `verify(anchor=(seq, hash))` proves the
log up to that row is the one seen then.

Entry point for a new read path (the lead wires `NodeService.Search` so)::

    audit.record(officer, SEARCH, {"text": "rosewood", "hs_prefix": "4407"}, results=12)

`officer` is the authenticated `node.storage.users.User` (anything with a
`name` and a `role`; in a servicer: `node.api.interceptors.current_caller()`),
`query` a mapping of JSON values (str, int, float, bool, None, lists and
mappings of them; never a token), `results` how many records the reply
carries, `at` the time (default: the log's clock). The row is committed before
`record` returns; if it cannot be written the call raises and the read must not
be answered.

Appends are serialised by a process lock and, on PostgreSQL, a
transaction-scoped advisory lock (`writers_lock`; SQLite's `BEGIN IMMEDIATE`
already serialises writers), so concurrent reads get consecutive seqs.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.clock import Clock, system_clock
from node.storage.db import Database, writers_lock
from node.storage.models import AuditRow

GET: Final = "get"
LIST: Final = "list"
SEARCH: Final = "search"
ACTIONS: Final = frozenset({GET, LIST, SEARCH})

GENESIS: Final = bytes(32)  # the prev_hash of row 1
DOMAIN: Final = b"gcn/audit-row/v1\x00"
# Bounds of what one row keeps of a query: each string, each list, the whole JSON.
MAX_VALUE_CHARS: Final = 512
MAX_ITEMS: Final = 64
MAX_QUERY_CHARS: Final = 4096
AUDIT_LOCK: Final = 0x67636E_00A1  # "gcn" A1: appending to the audit log (PostgreSQL advisory lock)
_PAGE = 1000


class Officer(Protocol):
    """Who asked: a user of this node (`node.storage.users.User` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    officer: str
    role: str
    action: str
    query: str  # canonical JSON
    results: int
    prev_hash: bytes
    hash: bytes

    def query_fields(self) -> object:
        return json.loads(self.query)

    @classmethod
    def of(cls, row: AuditRow) -> AuditEntry:
        return cls(
            row.seq,
            row.at,
            row.officer,
            row.role,
            row.action,
            row.query,
            row.results,
            row.prev_hash,
            row.hash,
        )


@dataclass(frozen=True)
class AuditCheck:
    """What `verify` found: `rows` checked, the last intact row (`head_seq`,
    `head_hash`), and the first broken row (`broken_seq`, `reason`), if any."""

    rows: int
    head_seq: int
    head_hash: bytes
    broken_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def _bounded(value: object, depth: int = 0) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) <= MAX_VALUE_CHARS:
            return value
        return f"{value[:MAX_VALUE_CHARS]}…[+{len(value) - MAX_VALUE_CHARS} chars]"
    if depth >= 4:
        raise TypeError("audit query nested too deep")
    if isinstance(value, Mapping):
        return {str(k): _bounded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_bounded(v, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"…[+{len(value) - MAX_ITEMS} items]")
        return items
    raise TypeError(f"audit query values must be JSON values, not {type(value).__name__}")


def canonical_query(query: Mapping[str, object]) -> str:
    """The query as one row keeps it: compact JSON with sorted keys, strings
    and lists cut to their bounds (the cut is marked); beyond `MAX_QUERY_CHARS`
    only the SHA-256 of the full JSON and its length are kept."""
    text = json.dumps(_bounded(query), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(text) <= MAX_QUERY_CHARS:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()
    return json.dumps({"_oversize": {"chars": len(text), "sha256": digest}}, separators=(",", ":"))


def _utc_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(
    seq: int, at: datetime, officer: str, role: str, action: str, query: str, results: int, prev_hash: bytes
) -> bytes:
    """SHA-256 over `DOMAIN` and each field as an 8-byte big-endian length and
    its bytes (integers in decimal, `at` as UTC ISO 8601 with microseconds)."""
    h = hashlib.sha256(DOMAIN)
    for part in (
        str(seq).encode(),
        _utc_text(at).encode(),
        officer.encode(),
        role.encode(),
        action.encode(),
        query.encode(),
        str(results).encode(),
        prev_hash,
    ):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.digest()


def _hash_of(row: AuditRow) -> bytes:
    return row_hash(row.seq, row.at, row.officer, row.role, row.action, row.query, row.results, row.prev_hash)


class AuditLog:
    def __init__(self, db: Database, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock
        self._lock = threading.Lock()

    def record(
        self,
        officer: Officer,
        action: str,
        query: Mapping[str, object],
        results: int,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Append one row, committed before this returns (see the module docstring)."""
        if action not in ACTIONS:
            raise ValueError(f"audit action must be one of {sorted(ACTIONS)} (got {action!r})")
        if results < 0:
            raise ValueError("audit results must not be negative")
        text = canonical_query(query)
        when = (at or self.clock()).astimezone(UTC)
        name, role = str(officer.name)[:64], str(officer.role)[:16]
        with self._lock, self.db.begin() as s:
            writers_lock(s, AUDIT_LOCK)
            last = s.execute(
                select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)
            ).first()
            seq, prev = (last[0] + 1, last[1]) if last is not None else (1, GENESIS)
            row = AuditRow(
                seq=seq,
                at=when,
                officer=name,
                role=role,
                action=action,
                query=text,
                results=results,
                prev_hash=prev,
                hash=row_hash(seq, when, name, role, action, text, results, prev),
            )
            s.add(row)
            s.flush()
            return AuditEntry.of(row)

    def entries(
        self, *, since: datetime | None = None, officer: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The newest rows first, optionally from a time on and of one officer."""
        stmt = select(AuditRow)
        if since is not None:
            stmt = stmt.where(AuditRow.at >= since)
        if officer:
            stmt = stmt.where(AuditRow.officer == officer)
        with self.db.read() as s:
            return [AuditEntry.of(r) for r in s.scalars(stmt.order_by(AuditRow.seq.desc()).limit(limit))]

    def verify(self, anchor: tuple[int, bytes] | None = None) -> AuditCheck:
        """Walk the whole log in seq order, in one snapshot: each row must be the
        next seq, hash to its `hash`, and chain to the row before; with `anchor`
        (seq, hash), row `seq` must still have that hash."""
        rows, head_seq, head_hash = 0, 0, GENESIS
        anchored = anchor is None
        with self.db.read() as s:
            for row in _in_order(s):
                expected = head_seq + 1
                broken = _broken(row, expected, head_hash)
                if broken is not None:
                    return AuditCheck(rows, head_seq, head_hash, *broken)
                if anchor is not None and row.seq == anchor[0]:
                    if row.hash != anchor[1]:
                        return AuditCheck(
                            rows,
                            head_seq,
                            head_hash,
                            row.seq,
                            "anchor mismatch: the row's hash is not the one anchored",
                        )
                    anchored = True
                rows, head_seq, head_hash = rows + 1, row.seq, row.hash
        if not anchored:
            assert anchor is not None
            return AuditCheck(
                rows, head_seq, head_hash, anchor[0], "anchor missing: the log ends before the anchored row"
            )
        return AuditCheck(rows, head_seq, head_hash)


def _broken(row: AuditRow, expected: int, prev: bytes) -> tuple[int, str] | None:
    """The first broken row and why, when `row` is found where row `expected`
    should be and the row before it hashed to `prev` (None: intact)."""
    if row.seq != expected:
        return expected, f"gap: row {expected} is missing (the next row is {row.seq})"
    if _hash_of(row) != row.hash:
        return row.seq, "hash mismatch: the row's fields no longer match its hash (edited)"
    if row.prev_hash != prev:
        before = f"row {expected - 1}'s hash" if expected > 1 else "the genesis hash"
        return row.seq, f"broken chain: its prev_hash is not {before}"
    return None


def _in_order(s: Session) -> Iterator[AuditRow]:
    after = -(2**62)
    while True:
        page = list(
            s.scalars(select(AuditRow).where(AuditRow.seq > after).order_by(AuditRow.seq).limit(_PAGE))
        )
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1].seq
        s.expunge_all()
