"""A first-come, first-served queue for this process's writing transactions.

SQLite has one writer at a time. A writer that finds the lock taken waits in
SQLite's busy handler, which sleeps and retries (sleeps growing to 100 ms):
it wakes late, and a thread that commits and at once begins again (the next
chunk of a large apply) takes the lock back before the sleeper looks, so a
short transaction (a round's peer state, a record) can wait behind a whole
batch. Writers of one process therefore queue here, in arrival order, before
`BEGIN IMMEDIATE`; the busy handler is left for other processes (a CLI
command on the node's files).

A thread that already holds its turn (a nested transaction) is let through:
SQLite then decides, as it would without the queue.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WriterQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next_ticket = 0  # the ticket the next arrival draws
        self._serving = 0  # the ticket whose turn it is
        self._owner: int | None = None
        self._depth = 0
        self._abandoned: set[int] = set()  # tickets whose thread stopped waiting (an exception)

    @property
    def waiting(self) -> int:
        """Writers queued behind the one whose turn it is."""
        with self._cond:
            queued = self._next_ticket - self._serving - len(self._abandoned)
            return queued - (1 if self._owner is not None else 0)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this thread's turn; hold it for the block."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
            else:
                ticket = self._next_ticket
                self._next_ticket += 1
                try:
                    while self._serving != ticket:
                        self._cond.wait()
                except BaseException:
                    self._abandon(ticket)
                    raise
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._advance()

    def _abandon(self, ticket: int) -> None:
        if ticket == self._serving:
            self._advance()
        else:
            self._abandoned.add(ticket)

    def _advance(self) -> None:
        self._serving += 1
        while self._serving in self._abandoned:
            self._abandoned.discard(self._serving)
            self._serving += 1
        self._cond.notify_all()
