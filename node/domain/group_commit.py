"""Group commit: one writer thread commits every record waiting in one
transaction, and each caller gets its reply only after that commit.

Concurrent officers (or one client with several calls in flight) then share
the fixed cost of a transaction instead of queueing behind each other's. A
batch that fails is retried record by record, so one bad record cannot make
another fail.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

U = TypeVar("U")
R = TypeVar("R")
_STOP = object()


class GroupCommitter(Generic[U, R]):
    def __init__(
        self, commit: Callable[[Sequence[U]], Sequence[R]], max_batch: int = 256, name: str = "group-commit"
    ) -> None:
        self._commit = commit
        self._max = max_batch
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, unit: U) -> R:
        """Queue `unit` and wait until it is committed (or failed)."""
        future: Future[R] = Future()
        self._queue.put((unit, future))
        return future.result()

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self._max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(nxt)
            self._run(batch)  # type: ignore[arg-type]

    def _run(self, batch: list[tuple[U, Future[R]]]) -> None:
        try:
            results = self._commit([unit for unit, _ in batch])
        except BaseException as e:
            if len(batch) == 1:
                batch[0][1].set_exception(e)
                return
            for item in batch:  # retry alone: only the guilty unit fails
                self._run([item])
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
