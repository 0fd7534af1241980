"""The state of replication with one peer, and how a round's outcome moves it
(pure: no grpc, no scheduler, no clock of its own; `now` is always given).

- A success resets the failures and the backoff, counts the progress, keeps
  the vector the peer stated, and sets the next attempt one interval on.
- A failure counts one more consecutive failure (the first one opens an
  outage: `down_since`), draws the backoff (`federation.backoff`), and sets
  the next attempt after it. The last error is "CODE: details".
- A link is *down* while it fails for the link's sake (unreachable, timed
  out): only such peers are probed. `link_state` says ok / down / stalled /
  never for health and `gcn sync status`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from federation.backoff import backoff_delay
from federation.errors import LINK_CODES
from federation.sync import RoundResult

# The code of a round that failed for a bug of ours (or local storage in trouble), not the peer's.
LOCAL_ERROR = "LOCAL"
# A link that has not succeeded for this many intervals without failing is stalled:
# its rounds are not running (the failure this guards against: a job that vanished).
STALLED_INTERVALS = 3


@dataclass
class SyncSettings:
    interval: float = 30.0
    backoff_initial: float = 1.0
    backoff_max: float = 600.0
    timeout: float = 30.0
    max_envelopes: int = 0
    # How often the watchdog checks the jobs and probes peers that are down.
    probe_interval: float = 2.0
    probe_timeout: float = 1.5


@dataclass
class PeerState:
    peer_id: str
    endpoint: str
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    next_attempt_at: datetime | None = None
    failures: int = 0
    backoff_seconds: float = 0.0
    last_error: str = ""
    envelopes_sent: int = 0
    envelopes_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    their_vector: str = "[]"
    down_since: datetime | None = None


@dataclass(frozen=True)
class Recovered:
    """A success that ends an outage."""

    after_failures: int
    down_seconds: float | None


def count(state: PeerState, result: RoundResult) -> None:
    """Add a round's progress (what the peer acknowledged, even in a round that failed later)."""
    state.envelopes_sent += result.pushed
    state.envelopes_received += result.pulled
    state.bytes_sent += result.bytes_sent
    state.bytes_received += result.bytes_received


def succeeded(
    state: PeerState, now: datetime, settings: SyncSettings, result: RoundResult
) -> Recovered | None:
    """A round that went through. Returns how the outage it ends went, if it ends one."""
    count(state, result)
    recovered = None
    if state.failures:
        down = (now - state.down_since).total_seconds() if state.down_since else None
        recovered = Recovered(state.failures, down)
    state.failures, state.backoff_seconds, state.last_error = 0, 0.0, ""
    state.down_since = None
    state.last_success_at = now
    state.next_attempt_at = now + timedelta(seconds=settings.interval)
    if result.their_vector is not None:
        state.their_vector = json.dumps(sorted([o, a, q] for (o, a), q in result.their_vector.items()))
    return recovered


def failed(
    state: PeerState,
    now: datetime,
    settings: SyncSettings,
    code: str,
    details: str,
    result: RoundResult,
    rng: random.Random | None = None,
) -> None:
    """A round that failed with `code` (a status name, or `LOCAL_ERROR`)."""
    count(state, result)
    state.failures += 1
    if state.failures == 1:
        state.down_since = now
    state.backoff_seconds = backoff_delay(state.failures, settings.backoff_initial, settings.backoff_max, rng)
    state.next_attempt_at = now + timedelta(seconds=state.backoff_seconds)
    state.last_error = f"{code}: {details}"[:512]


def link_down(state: PeerState) -> bool:
    """Failing for the link's sake (unreachable, timed out): worth a probe."""
    return state.failures > 0 and state.last_error.startswith(LINK_CODES)


def next_delay(state: PeerState, settings: SyncSettings) -> float:
    """Seconds until the next round after `state`'s outcome."""
    return state.backoff_seconds if state.failures else settings.interval


def resume_delay(state: PeerState, now: datetime, settings: SyncSettings) -> tuple[float, float | None]:
    """Seconds from `now` to the persisted next attempt, never more than its
    backoff (a time saved under a clock that was ahead is never waited out in
    full); and, when it was more, how far away it was."""
    if state.next_attempt_at is None:
        return 0.0, None
    left = (state.next_attempt_at - now).total_seconds()
    bound = next_delay(state, settings)
    if left > bound:
        return bound, left
    return max(0.0, left), None


def link_state(state: PeerState | None, now: datetime, interval: float) -> str:
    """ok, down (failing, backing off), stalled (no success for several
    intervals and no failure either), or never (no round yet)."""
    if state is None or (state.last_success_at is None and not state.failures):
        return "never"
    if state.failures:
        return "down"
    assert state.last_success_at is not None
    if now - state.last_success_at > timedelta(seconds=STALLED_INTERVALS * interval):
        return "stalled"
    return "ok"
