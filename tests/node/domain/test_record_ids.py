"""Short record ids (#12 part 3): what a table shows works wherever an id is
asked for; an ambiguous prefix lists the candidates; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from gcn.v1 import envelope_pb2 as epb
from node.app import NodeApp
from node.domain import samples
from node.errors import ConflictError, NotFoundError, ValidationError
from node.storage.models import RecordRow
from node.testing.clock import ManualClock


def test_a_prefix_names_a_record_for_show_retract_and_correct(app: NodeApp, clock: ManualClock) -> None:
    day = clock().date() - timedelta(days=1)
    rid = app.records.record_seizure(samples.hcfc_seizure(day)).record_id
    assert app.reader.get(rid[:8]).record_id == rid
    assert app.reader.get(rid[:13].upper()).record_id == rid  # with its hyphen, any case
    assert app.reader.get(rid.replace("-", "")).record_id == rid  # the 32 digits alone
    fixed = samples.hcfc_seizure(day)
    fixed.goods[0].hs_code = "290372"
    correction = app.records.correct(rid[:8], "HS code", fixed)
    assert app.reader.get(rid[:8]).status != 1  # superseded
    retraction = app.records.retract(correction.record_id[:10], "withdrawn")
    assert retraction.kind == epb.RECORD_KIND_RETRACTION


def test_an_ambiguous_prefix_lists_the_candidates(app: NodeApp, clock: ManualClock) -> None:
    day = clock().date() - timedelta(days=1)
    a = app.records.record_seizure(samples.hcfc_seizure(day)).record_id
    b = app.records.record_seizure(samples.hcfc_seizure(day)).record_id
    shared_b = a[:6] + b[6:]  # make the two ids share their first six digits
    with app.db.begin() as s:
        s.execute(update(RecordRow).where(RecordRow.record_id == b).values(record_id=shared_b))
    with pytest.raises(ConflictError) as e:
        app.reader.get(a[:6])
    assert a in str(e.value) and shared_b in str(e.value) and "type more" in str(e.value)
    assert app.reader.get(a[:9]).record_id == a or a[:9] == shared_b[:9]


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        ("fc9e", ValidationError, "at least its first 6"),
        ("not-an-id", ValidationError, "must be a record id"),
        ("", ValidationError, "must be a record id"),
        ("abcdef", NotFoundError, "starting with abcdef"),
    ],
)
def test_a_short_or_unknown_prefix_says_so(app: NodeApp, value: str, error: type, words: str) -> None:
    with pytest.raises(error) as e:
        app.reader.get(value)
    assert words in str(e.value)


def test_only_own_records_are_retracted_by_prefix(app: NodeApp, clock: ManualClock) -> None:
    rid = app.records.record_seizure(samples.hcfc_seizure(clock().date())).record_id
    with app.db.begin() as s:
        s.execute(update(RecordRow).where(RecordRow.record_id == rid).values(origin="TZ"))
    with pytest.raises(NotFoundError) as e:
        app.records.retract(rid[:8], "not mine")
    assert "of KE" in str(e.value)
