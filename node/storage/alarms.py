"""Alarms: rows an operator must look at (see `node.storage.models.AlarmRow` for the
kinds). Written in the caller's transaction, or in one of their own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.storage.db import Database
from node.storage.models import AlarmRow


def add_alarm(
    s: Session,
    kind: str,
    now: datetime,
    detail: str,
    *,
    origin: str = "",
    audience: str = "",
    seq: int = 0,
    first_hash: bytes = b"",
    second_hash: bytes = b"",
) -> None:
    s.add(
        AlarmRow(
            kind=kind,
            origin=origin[:64],
            audience=audience[:128],
            seq=seq,
            first_hash=first_hash,
            second_hash=second_hash,
            detail=detail[:512],
            created_at=now,
        )
    )


def record_alarm(db: Database, kind: str, now: datetime, detail: str, **where: object) -> None:
    """An alarm in a transaction of its own."""
    with db.begin() as s:
        add_alarm(s, kind, now, detail, **where)  # type: ignore[arg-type]


def recent_alarms(
    db: Database, limit: int = 50, *, kind: str | None = None, since: datetime | None = None
) -> list[AlarmRow]:
    """The newest alarms first, optionally of one kind or from a time on."""
    stmt = select(AlarmRow)
    if kind:
        stmt = stmt.where(AlarmRow.kind == kind)
    if since is not None:
        stmt = stmt.where(AlarmRow.created_at >= since)
    with db.read() as s:
        return list(s.scalars(stmt.order_by(AlarmRow.id.desc()).limit(limit)))
