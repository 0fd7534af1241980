"""A first-come, first-served queue for this process's writing transactions.

SQLite has one writer at a time. A writer that finds the lock taken waits in
SQLite's busy handler, which sleeps and retries (sleeps growing to 100 ms):
it wakes late, and a thread that commits and at once begins again (the next
chunk of a large apply) takes the lock back before the sleeper looks, so a
short transaction (a round's peer state, a record) can wait behind a whole
batch. Writers of one process therefore queue here before `BEGIN IMMEDIATE`,
and the turn is handed to the next in line when the holder is done (nobody can
barge in); the busy handler is left for other processes (a CLI command on the
node's files).

A short bookkeeping write (`first=True`: a sync round's peer state, which the
next round waits for) goes before the queued ones, never before the holder.
A thread that already holds its turn (a nested transaction) is let through:
SQLite then decides, as it would without the queue.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class _Waiter:
    def __init__(self, thread: int) -> None:
        self.thread = thread
        self.given = threading.Event()


class WriterQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._first: deque[_Waiter] = deque()
        self._rest: deque[_Waiter] = deque()

    @property
    def waiting(self) -> int:
        """Writers queued behind the one whose turn it is."""
        with self._lock:
            return len(self._first) + len(self._rest)

    @property
    def idle(self) -> bool:
        """Nobody holds a turn (a writer now would not wait)."""
        with self._lock:
            return self._owner is None

    @contextmanager
    def turn(self, *, first: bool = False) -> Iterator[None]:
        """Wait for this thread's turn; hold it for the block."""
        self._take(first)
        try:
            yield
        finally:
            self._give_back()

    def _take(self, first: bool) -> None:
        me = threading.get_ident()
        with self._lock:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None:
                self._owner, self._depth = me, 1
                return
            waiter = _Waiter(me)
            (self._first if first else self._rest).append(waiter)
        try:
            waiter.given.wait()
        except BaseException:  # e.g. KeyboardInterrupt: leave the line, or pass the turn on
            with self._lock:
                line = next((q for q in (self._first, self._rest) if waiter in q), None)
                if line is not None:
                    line.remove(waiter)
            if line is None:  # the turn came as the wait ended
                self._give_back()
            raise

    def _give_back(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth:
                return
            line = self._first or self._rest
            if not line:
                self._owner = None
                return
            nxt = line.popleft()
            self._owner, self._depth = nxt.thread, 1
            nxt.given.set()
