"""`node.storage.bulk_insert`: rows handed to the driver read back exactly as the ORM
would have stored them, and the ids it hands out never collide, on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from node.app import NodeApp
from node.storage.bulk_insert import RowInserter, next_ids
from node.storage.models import ENVELOPES, RECORDS, EnvelopeRow, RecordRow


def _envelope(id_: int | None, n: int, at: datetime) -> dict[str, object]:
    row: dict[str, object] = {
        "hash": n.to_bytes(32, "big"),
        "origin": "XX",
        "audience": "national:XX",
        "seq": n,
        "epoch": 1,
        "kind": 1,
        "record_id": f"00000000-0000-4000-8000-{n:012d}",
        "created_at": at,
        "received_at": at + timedelta(seconds=n),
        "header": b"h" * n,
        "ciphertext": bytes(range(n % 256)) * 3,
        "signature": b"s" * 64,
        "prev_hash": b"",
    }
    if id_ is not None:
        row["id"] = id_
    return row


def test_rows_read_back_as_the_orm_stores_them(app: NodeApp) -> None:
    at = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    columns = tuple(_envelope(0, 1, at))
    inserter = RowInserter(ENVELOPES, columns)
    with app.db.begin() as s:
        ids = next_ids(s.connection(), ENVELOPES, 3)
        inserter.execute(s.connection(), [tuple(_envelope(i, n, at).values()) for n, i in enumerate(ids, 1)])
    with app.db.read() as s:
        rows = {r.id: r for r in s.scalars(select(EnvelopeRow).where(EnvelopeRow.id.in_(ids)))}
    assert sorted(rows) == ids
    for n, i in enumerate(ids, 1):
        r, want = rows[i], _envelope(i, n, at)
        assert {c: getattr(r, c) for c in columns} == want
        assert r.created_at.tzinfo is not None and r.received_at == at + timedelta(seconds=n)


def test_ids_follow_rows_the_orm_inserted_and_the_orm_follows_them(app: NodeApp) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with app.db.begin() as s:
        s.add(EnvelopeRow(**_envelope(None, 101, at)))
        s.flush()
        taken = set(s.scalars(select(EnvelopeRow.id)))
        ids = next_ids(s.connection(), ENVELOPES, 5)
        assert len(set(ids)) == 5 and not taken & set(ids)
        RowInserter(ENVELOPES, tuple(_envelope(0, 1, at))).execute(
            s.connection(), [tuple(_envelope(i, 200 + k, at).values()) for k, i in enumerate(ids)]
        )
    with app.db.begin() as s:
        later = EnvelopeRow(**_envelope(None, 300, at))
        s.add(later)
        s.flush()
        assert later.id not in ids and later.id not in taken
        assert next_ids(s.connection(), ENVELOPES, 1)[0] not in {*ids, *taken, later.id}


def test_dates_times_and_nulls_of_a_record_row(app: NodeApp) -> None:
    at = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    with app.db.begin() as s:
        [eid] = next_ids(s.connection(), ENVELOPES, 1)
        RowInserter(ENVELOPES, tuple(_envelope(0, 1, at))).execute(
            s.connection(), [tuple(_envelope(eid, 7, at).values())]
        )
        columns = (
            "envelope_id",
            "record_id",
            "kind",
            "origin",
            "audience",
            "view",
            "created_at",
            "event_date",
            "event_month",
            "status",
            "superseded_by",
            "tlp",
            "target_record_id",
        )
        row = (
            eid,
            "r-1",
            1,
            "XX",
            "national:XX",
            1,
            at,
            date(2026, 5, 1),
            date(2026, 5, 1),
            1,
            None,
            2,
            None,
        )
        RowInserter(RECORDS, columns).execute(s.connection(), [row])
    with app.db.read() as s:
        got = s.get(RecordRow, eid)
    assert got is not None
    assert (got.created_at, got.event_date, got.superseded_by, got.target_record_id, got.tlp) == (
        at,
        date(2026, 5, 1),
        None,
        None,
        2,
    )


def test_an_unknown_column_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="no column"):
        RowInserter(ENVELOPES, ("id", "nope"))
