"""A bulk import validated one batch ahead in a worker process gives exactly
what validating inline gives: the same normalized seizures in the same order,
the same error naming the seizure's index in the whole import, and the same
records stored before it; a worker that dies changes nothing but the speed."""

from __future__ import annotations

import multiprocessing
import os
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date

import pytest
from sqlalchemy import func, select

from gcn.v1 import records_pb2 as rec
from node.app import NodeApp
from node.domain import samples
from node.domain.validation_pool import Pipeline, check_serialized, checked_batches
from node.errors import ValidationError
from node.storage.models import RecordRow
from node.testing.clock import ManualClock

TODAY = date(2026, 11, 2)


def _batches(count: int, size: int, seed: int = 11) -> list[list[rec.Seizure]]:
    rng = random.Random(seed)
    seizures = [samples.random_seizure(rng, TODAY) for _ in range(count)]
    for s in seizures[::4]:  # something for validation to normalize
        s.conveyance.container_numbers[0] = s.conveyance.container_numbers[0].lower()
        s.place.country = f" {s.place.country.lower()} "
    return [seizures[i : i + size] for i in range(0, count, size)]


def _latest() -> date:
    return TODAY


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    """A pipeline whose worker has started (so batches go to it, not inline)."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("forkserver"))
    p = Pipeline(pool, _latest)
    assert p.ready is not None
    p.ready.result(timeout=60)
    try:
        yield p
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def test_the_worker_gives_what_inline_validation_gives(pipeline: Pipeline) -> None:
    batches = _batches(37, 8)
    inline = list(checked_batches(iter(batches), _latest, parallel=False))
    ahead = list(pipeline.run(iter(batches)))
    assert not pipeline.broken
    assert [len(b) for b in ahead] == [8, 8, 8, 8, 5]
    assert ahead == inline
    assert ahead[0][0].conveyance.container_numbers[0].isupper() and ahead[0][0].place.country.isupper()


def test_a_broken_rule_in_the_worker_names_its_index_in_the_whole_import(pipeline: Pipeline) -> None:
    batches = _batches(30, 10)
    batches[2][3].goods[0].hs_code = "7700000"
    got: list[list[rec.Seizure]] = []
    with pytest.raises(ValidationError) as err:
        for batch in pipeline.run(iter(batches)):
            got.append(batch)
    assert err.value.field == "seizures[23].goods[0].hs_code"
    assert [len(b) for b in got] == [10, 10]


def test_a_dead_worker_leaves_the_rest_to_inline_validation(pipeline: Pipeline) -> None:
    with pytest.raises(BrokenProcessPool):
        pipeline.pool.submit(os._exit, 3).result(timeout=60)
    batches = _batches(20, 5)
    assert list(pipeline.run(iter(batches))) == list(checked_batches(iter(batches), _latest, parallel=False))
    assert pipeline.broken


def test_check_serialized_answers_the_first_broken_rule() -> None:
    [batch] = _batches(3, 3)
    batch[1].place.country = "XX"
    answer = check_serialized([s.SerializeToString() for s in batch], TODAY)
    assert isinstance(answer, tuple)
    index, field, rule = answer
    assert (index, field) == (1, "place.country") and "ISO 3166" in rule


def _stored(app: NodeApp) -> int:
    with app.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(RecordRow)) or 0)


@pytest.mark.parametrize("parallel", [True, False])
def test_import_stores_every_batch_before_the_broken_one(
    app: NodeApp, clock: ManualClock, parallel: bool
) -> None:
    rng = random.Random(5)
    seizures = [samples.random_seizure(rng, clock().date()) for _ in range(45)]
    seizures[23].conveyance.container_numbers[0] = "CSQU3054384"  # wrong check digit
    before = _stored(app)
    with pytest.raises(ValidationError) as err:
        app.records.import_seizures(seizures, batch_size=10, parallel=parallel)
    assert err.value.field == "seizures[23].conveyance.container_numbers[0]"
    assert _stored(app) - before == 20
    del seizures[23]
    assert app.records.import_seizures(seizures[20:], batch_size=10, parallel=parallel) == 24
    assert _stored(app) - before == 44
