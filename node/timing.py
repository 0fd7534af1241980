"""Optional timings of the phases of a hot path (e.g. sealing and storing in a
commit), for benchmarks and profiling. Nothing is timed, and nothing is
called, unless a listener is attached.

    phases.listeners.append(lambda phase, seconds: ...)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

PhaseListener = Callable[[str, float], None]  # (phase name, seconds it took)


class Phases:
    def __init__(self) -> None:
        self.listeners: list[PhaseListener] = []

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Tell every listener how long the block took (also when it raised).
        A listener must not raise: it runs inside the caller's work."""
        if not self.listeners:
            yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            for listener in self.listeners:
                listener(phase, seconds)
