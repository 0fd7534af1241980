"""After-commit listeners (e.g. the sync scheduler's poke).

They run after the data is committed, so they must never fail the operation:
an exception is logged (as our own bug) and the next listener still runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import structlog

log = structlog.get_logger(__name__)


def notify(listeners: Iterable[Callable[[], None]]) -> None:
    for listener in listeners:
        try:
            listener()
        except Exception:
            log.exception("after-commit listener failed", listener=getattr(listener, "__qualname__", "?"))
