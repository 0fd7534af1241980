"""Writing transactions of one process take turns first come, first served
(`node.storage.writer_queue`): a short transaction queued behind a long run
of chunks goes between them, not after the whole run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from node.storage import writer_queue
from node.storage.db import Database
from node.storage.writer_queue import WriterQueue


def _wait(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def test_writers_take_turns_in_the_order_they_came() -> None:
    q, order = WriterQueue(), []

    def writer(name: str) -> None:
        with q.turn():
            order.append(name)

    with q.turn():
        threads = []
        for i, name in enumerate(("a", "b", "c")):
            t = threading.Thread(target=writer, args=(name,))
            t.start()
            threads.append(t)
            _wait(lambda i=i: q.waiting == i + 1)  # type: ignore[misc]
    for t in threads:
        t.join(timeout=5)
    assert order == ["a", "b", "c"] and q.waiting == 0


def test_a_thread_holding_its_turn_is_let_through_again() -> None:
    q = WriterQueue()
    with q.turn(), q.turn():
        pass
    done = threading.Event()

    def other() -> None:
        with q.turn():
            done.set()

    threading.Thread(target=other).start()
    assert done.wait(5)  # the nested turn was given back whole


class _StopWaitingError(Exception):
    pass


class _RaisingEvent(threading.Event):
    """The wait of the thread named "quitter" ends with an exception (what a
    KeyboardInterrupt does)."""

    def wait(self, timeout: float | None = None) -> bool:
        if threading.current_thread().name == "quitter":
            raise _StopWaitingError()
        return super().wait(timeout)


def test_a_writer_that_stops_waiting_does_not_hold_up_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    real_waiter = writer_queue._Waiter

    class Waiter(real_waiter):  # type: ignore[misc,valid-type]
        def __init__(self, thread: int) -> None:
            super().__init__(thread)
            self.given = _RaisingEvent()

    monkeypatch.setattr(writer_queue, "_Waiter", Waiter)
    q, order, raised = WriterQueue(), [], []

    def quitter() -> None:
        try:
            with q.turn():
                order.append("quitter")
        except _StopWaitingError:
            raised.append(True)

    def next_writer() -> None:
        with q.turn():
            order.append("next")

    with q.turn():
        t1 = threading.Thread(target=quitter, name="quitter")
        t1.start()
        t1.join(timeout=5)
        t2 = threading.Thread(target=next_writer)
        t2.start()
        _wait(lambda: q.waiting == 1)
    t2.join(timeout=5)
    assert raised == [True] and order == ["next"] and q.waiting == 0


def test_a_bookkeeping_write_goes_before_the_queued_ones_not_before_the_holder() -> None:
    q, order = WriterQueue(), []

    def writer(name: str, first: bool) -> None:
        with q.turn(first=first):
            order.append(name)

    with q.turn():
        threads = []
        for i, (name, first) in enumerate((("batch1", False), ("batch2", False), ("peer state", True))):
            t = threading.Thread(target=writer, args=(name, first))
            t.start()
            threads.append(t)
            _wait(lambda i=i: q.waiting == i + 1)  # type: ignore[misc]
        order.append("holder")
    for t in threads:
        t.join(timeout=5)
    assert order == ["holder", "peer state", "batch1", "batch2"]


def test_a_short_transaction_goes_between_the_chunks_of_a_long_run(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'q.sqlite'}")
    with db.begin() as s:
        s.execute(text("CREATE TABLE t (who TEXT)"))
    first_open, go_on = threading.Event(), threading.Event()

    def chunks() -> None:  # a large apply: chunk after chunk, each its own transaction
        for i in range(3):
            with db.begin() as s:
                s.execute(text("INSERT INTO t VALUES (:w)"), {"w": f"chunk{i}"})
                if i == 0:
                    first_open.set()
                    go_on.wait(5)

    def short() -> None:
        with db.begin() as s:
            s.execute(text("INSERT INTO t VALUES ('short')"))

    run = threading.Thread(target=chunks)
    run.start()
    assert first_open.wait(5)
    other = threading.Thread(target=short)
    other.start()
    assert db.writers is not None
    _wait(lambda: db.writers is not None and db.writers.waiting == 1)
    go_on.set()
    run.join(timeout=10)
    other.join(timeout=10)
    with db.read() as s:
        order = [w for (w,) in s.execute(text("SELECT who FROM t ORDER BY rowid"))]
    assert order == ["chunk0", "short", "chunk1", "chunk2"]
    db.dispose()
