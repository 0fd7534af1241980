"""The per-peer state machine (`federation.peer_machine`), driven by a manual
clock: failures back off (doubling, capped, jittered) and open an outage, a
success ends it and resets everything, a saved next attempt is never waited
out beyond its backoff, and the link states health reports."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from federation import peer_machine as machine
from federation.peer_machine import LOCAL_ERROR, PeerState, SyncSettings
from federation.sync import RoundResult
from node.testing.clock import ManualClock
from tests.conftest import NOW

SETTINGS = SyncSettings(interval=30, backoff_initial=2, backoff_max=60)


def _fail(
    state: PeerState, clock: ManualClock, code: str = "UNAVAILABLE", rng: random.Random | None = None
) -> None:
    machine.failed(
        state, clock(), SETTINGS, code, "connection refused", RoundResult(), rng or random.Random(1)
    )


def test_a_success_counts_progress_and_sets_the_next_attempt_one_interval_on() -> None:
    clock, state = ManualClock(NOW), PeerState("HUB", "hub:1")
    result = RoundResult(
        pushed=3, pulled=2, bytes_sent=300, bytes_received=200, their_vector={("KE", "a"): 7}
    )
    assert machine.succeeded(state, clock(), SETTINGS, result) is None  # no outage to end
    assert (state.envelopes_sent, state.envelopes_received, state.bytes_sent, state.bytes_received) == (
        3,
        2,
        300,
        200,
    )
    assert state.last_success_at == clock() and state.next_attempt_at == clock() + timedelta(seconds=30)
    assert json.loads(state.their_vector) == [["KE", "a", 7]]
    assert machine.next_delay(state, SETTINGS) == 30
    assert machine.link_state(state, clock(), SETTINGS.interval) == "ok"


def test_failures_back_off_doubling_up_to_the_cap_and_open_one_outage() -> None:
    clock, state = ManualClock(NOW), PeerState("HUB", "hub:1")
    started = clock()
    ceilings = []
    for _ in range(8):
        _fail(state, clock)
        ceilings.append(min(60.0, 2 * 2 ** (state.failures - 1)))
        assert ceilings[-1] / 2 <= state.backoff_seconds <= ceilings[-1]
        assert state.next_attempt_at == clock() + timedelta(seconds=state.backoff_seconds)
        clock.advance(state.backoff_seconds)
    assert ceilings == [2, 4, 8, 16, 32, 60, 60, 60]
    assert state.failures == 8 and state.down_since == started  # the first failure opened it
    assert state.last_error == "UNAVAILABLE: connection refused"
    assert machine.link_down(state) and machine.link_state(state, clock(), 30) == "down"
    assert machine.next_delay(state, SETTINGS) == state.backoff_seconds


def test_a_success_after_an_outage_says_how_long_it_lasted_and_resets_it() -> None:
    clock, state = ManualClock(NOW), PeerState("HUB", "hub:1")
    _fail(state, clock)
    clock.advance(5)
    _fail(state, clock)
    clock.advance(7)
    recovered = machine.succeeded(state, clock(), SETTINGS, RoundResult())
    assert recovered == machine.Recovered(after_failures=2, down_seconds=12.0)
    assert (state.failures, state.backoff_seconds, state.last_error, state.down_since) == (0, 0.0, "", None)
    assert not machine.link_down(state)


def test_a_round_that_failed_late_still_counts_what_the_peer_acknowledged() -> None:
    clock, state = ManualClock(NOW), PeerState("HUB", "hub:1")
    machine.failed(state, clock(), SETTINGS, "INTERNAL", "boom", RoundResult(pushed=4, bytes_sent=40))
    assert (state.envelopes_sent, state.bytes_sent, state.failures) == (4, 40, 1)


def test_only_the_links_failures_make_a_link_down_to_probe() -> None:
    clock = ManualClock(NOW)
    for code, down in [
        ("UNAVAILABLE", True),
        ("DEADLINE_EXCEEDED", True),
        ("PERMISSION_DENIED", False),
        (LOCAL_ERROR, False),
    ]:
        state = PeerState("HUB", "hub:1")
        _fail(state, clock, code)
        assert machine.link_down(state) is down, code


def test_an_error_is_kept_to_512_characters() -> None:
    state = PeerState("HUB", "hub:1")
    machine.failed(state, NOW, SETTINGS, "INTERNAL", "x" * 2000, RoundResult())
    assert len(state.last_error) == 512 and state.last_error.startswith("INTERNAL: x")


def test_resume_waits_for_the_saved_attempt_but_never_beyond_its_backoff() -> None:
    clock, state = ManualClock(NOW), PeerState("HUB", "hub:1")
    assert machine.resume_delay(state, clock(), SETTINGS) == (0.0, None)  # never ran: at once
    machine.succeeded(state, clock(), SETTINGS, RoundResult())
    clock.advance(10)
    assert machine.resume_delay(state, clock(), SETTINGS) == (20.0, None)
    clock.advance(100)
    assert machine.resume_delay(state, clock(), SETTINGS) == (0.0, None)  # overdue: at once
    # Saved under a clock a day ahead: the interval, not a day.
    state.next_attempt_at = clock() + timedelta(days=1)
    assert machine.resume_delay(state, clock(), SETTINGS) == (30.0, 86400.0)
    _fail(state, clock)
    state.next_attempt_at = clock() + timedelta(hours=1)
    delay, saved = machine.resume_delay(state, clock(), SETTINGS)
    assert delay == state.backoff_seconds and saved == 3600.0


def test_link_states_never_ok_stalled_down() -> None:
    clock = ManualClock(NOW)
    assert machine.link_state(None, clock(), 30) == "never"
    state = PeerState("HUB", "hub:1")
    assert machine.link_state(state, clock(), 30) == "never"
    machine.succeeded(state, clock(), SETTINGS, RoundResult())
    clock.advance(machine.STALLED_INTERVALS * 30)
    assert machine.link_state(state, clock(), 30) == "ok"
    clock.advance(1)
    assert machine.link_state(state, clock(), 30) == "stalled"  # no success, no failure: not running
    _fail(state, clock)
    assert machine.link_state(state, clock(), 30) == "down"
