"""node.timing: optional phase timings, told to listeners only when there are some."""

from __future__ import annotations

import time

import pytest

from node.timing import Phases


def test_each_listener_is_told_the_phase_and_how_long_it_took() -> None:
    phases = Phases()
    first: list[tuple[str, float]] = []
    second: list[tuple[str, float]] = []
    phases.listeners += [lambda p, s: first.append((p, s)), lambda p, s: second.append((p, s))]
    with phases.timed("seal"):
        time.sleep(0.01)
    assert first == second
    assert [p for p, _ in first] == ["seal"]
    assert 0.01 <= first[0][1] < 5


def test_a_block_that_raises_is_timed_and_the_error_goes_on() -> None:
    phases = Phases()
    told: list[str] = []
    phases.listeners.append(lambda p, s: told.append(p))
    with pytest.raises(ValueError, match="boom"), phases.timed("store"):
        raise ValueError("boom")
    assert told == ["store"]


def test_without_listeners_the_block_just_runs() -> None:
    ran = []
    with Phases().timed("prepare"):
        ran.append(1)
    assert ran == [1]
