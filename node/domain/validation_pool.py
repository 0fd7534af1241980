"""A bulk import's batches, validated one batch ahead in a worker process.

Validating a seizure is pure Python (~70 µs here: pycountry, python-stdnum,
the HS and ODS tables), and so is most of sealing and storing one; a thread
would not overlap them (one GIL). A second process does, on another core:
while this process seals and stores batch k, the worker validates batch k+1.
Seizures cross as serialized protobuf, a few µs each way.

The order and the outcome are those of validating inline: batches come out in
the order they went in, each whole or not at all; the first broken rule stops
the import, named by the seizure's index in the whole import
(`seizures[1234].goods[0].hs_code`), after the batches before it were stored.
If the worker cannot be started or dies, the rest is validated inline.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from typing import Any

from gcn.v1 import records_pb2 as rec
from node.domain import samples, validation
from node.errors import ValidationError
from node.logging import get_logger

log = get_logger(__name__)

# What the worker answers for a batch: the checked seizures, serialized, or the
# first broken rule as (index in the batch, field, rule).
_Answer = list[bytes] | tuple[int, str, str]


def check_serialized(payloads: list[bytes], latest: date) -> _Answer:
    """The worker's job (a module-level function, so it pickles by name)."""
    out = []
    for i, payload in enumerate(payloads):
        try:
            out.append(validation.check_seizure(rec.Seizure.FromString(payload), latest).SerializeToString())
        except ValidationError as e:
            return (i, e.field, e.rule)
    return out


def _within(index: int, field: str) -> str:
    """The path of a seizure's field in a batch; "seizure" (the whole record) is the entry itself."""
    return f"seizures[{index}]" if field == "seizure" else f"seizures[{index}].{field}"


def check_inline(batch: list[rec.Seizure], latest: date, offset: int) -> list[rec.Seizure]:
    checked = []
    for i, seizure in enumerate(batch):
        try:
            checked.append(validation.check_seizure(seizure, latest))
        except ValidationError as e:
            raise ValidationError(_within(offset + i, e.field), e.rule) from e
    return checked


def _unpack(answer: _Answer, offset: int) -> list[rec.Seizure]:
    if isinstance(answer, tuple):
        index, field, rule = answer
        raise ValidationError(_within(offset + index, field), rule)
    return [rec.Seizure.FromString(p) for p in answer]


def spare_cores() -> bool:
    """True when this process may run on more than one core."""
    try:
        return len(os.sched_getaffinity(0)) > 1
    except AttributeError:  # not on Linux
        return (os.cpu_count() or 1) > 1


def warm_up(today: date) -> None:
    """The worker's first job: import and load what validation reads (country
    and currency lists, HS and ODS tables), so that no batch waits for it."""
    validation.check_seizure(samples.ivory_seizure(today), today)


def checked_batches(
    batches: Iterable[list[rec.Seizure]], latest: Callable[[], date], *, parallel: bool | None = None
) -> Iterator[list[rec.Seizure]]:
    """Yield each batch validated (normalized copies), in order. `parallel`:
    validate ahead in a worker process (default: when there is a spare core
    and more than one batch). `latest` is the latest acceptable incident date,
    asked once per batch."""
    it = iter(batches)
    first = next(it, None)
    if first is None:
        return
    second = next(it, None)
    rest = itertools.chain([] if second is None else [second], it)
    if second is None or not (spare_cores() if parallel is None else parallel):
        offset = 0
        for batch in itertools.chain([first], rest):
            yield check_inline(batch, latest(), offset)
            offset += len(batch)
        return
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("forkserver"))
    try:
        yield from Pipeline(pool, latest).run(itertools.chain([first], rest))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class Pipeline:
    """Batches checked here until the worker has started, then one ahead there."""

    def __init__(self, pool: ProcessPoolExecutor, latest: Callable[[], date]) -> None:
        self.pool = pool
        self.latest = latest
        self.broken = False
        self.ready: Future[None] | None = self._submit(warm_up, latest())

    def _submit(self, fn: Callable[..., object], *args: object) -> Future[Any] | None:
        if self.broken:
            return None
        try:
            return self.pool.submit(fn, *args)
        except (BrokenProcessPool, OSError, RuntimeError) as e:
            self._fall_back("validation worker unavailable; validating inline", e)
            return None

    def _fall_back(self, why: str, error: BaseException) -> None:
        self.broken = True
        log.warning(why, error=type(error).__name__)

    def _worker_ready(self) -> bool:
        if self.broken or self.ready is None or not self.ready.done():
            return False
        error = self.ready.exception()
        if error is not None:
            self._fall_back("validation worker failed to start; validating inline", error)
            return False
        return True

    def _result(
        self, batch: list[rec.Seizure], future: Future[_Answer] | None, offset: int
    ) -> list[rec.Seizure]:
        if future is not None and not self.broken:
            try:
                return _unpack(future.result(), offset)
            except BrokenProcessPool as e:
                self._fall_back("validation worker died; validating inline", e)
        return check_inline(batch, self.latest(), offset)

    def run(self, batches: Iterator[list[rec.Seizure]]) -> Iterator[list[rec.Seizure]]:
        offset = 0  # the index of the batch's first seizure in the whole import
        ahead: tuple[list[rec.Seizure], Future[_Answer] | None, int] | None = None
        for batch in batches:
            if ahead is not None:
                submitted = self._send(batch, offset)
                done = self._result(*ahead)
                ahead = submitted
                yield done  # stored here while the worker checks `submitted`
            elif self._worker_ready() and (following := next(batches, None)) is not None:
                # The worker is warm: it takes the next batch while this one is checked here.
                ahead = self._send(following, offset + len(batch))
                yield check_inline(batch, self.latest(), offset)
                offset += len(following)
            else:
                yield check_inline(batch, self.latest(), offset)  # the worker is still starting
            offset += len(batch)
        if ahead is not None:
            yield self._result(*ahead)

    def _send(
        self, batch: list[rec.Seizure], offset: int
    ) -> tuple[list[rec.Seizure], Future[_Answer] | None, int]:
        payloads = [s.SerializeToString() for s in batch]
        return batch, self._submit(check_serialized, payloads, self.latest()), offset
