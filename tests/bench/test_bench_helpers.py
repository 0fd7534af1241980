"""The benchmarks' pure helpers: percentiles, phase totals from the product's
hooks, the JSON file that never overwrites another module's, and how the
latency bench tells which round carried a record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.common import listening, percentile, write_json
from bench.repl_latency import Round, Trace, carrier
from federation.scheduler import RoundTimes
from node.timing import Phases


def test_percentiles_are_inclusive_and_100_is_the_maximum() -> None:
    values = [float(x) for x in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 100) == 100.0
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0


def test_listening_adds_up_each_phase_and_detaches_afterwards() -> None:
    a, b = Phases(), Phases()
    with listening(a, b) as totals:
        for phases, name in ((a, "seal"), (a, "seal"), (b, "store")):
            with phases.timed(name):
                pass
    assert set(totals.seconds) == {"seal", "store"} and totals.get("prepare") == 0.0
    assert a.listeners == [] and b.listeners == []


def test_json_goes_beside_another_modules_file_and_over_its_own(tmp_path: Path) -> None:
    path = tmp_path / "figures.json"
    assert write_json(path, {"x": 1}, "ingest") == path
    beside = write_json(path, {"y": 2}, "replication")
    assert beside == tmp_path / "figures-replication.json"
    assert json.loads(path.read_text()) == {"bench": "ingest", "x": 1}
    assert write_json(beside, {"y": 3}, "replication") == beside
    assert json.loads(beside.read_text())["y"] == 3


def _trace(pokes: list[float], rounds: list[tuple[float, float]]) -> Trace:
    trace = Trace(interval=1.0)
    trace.pokes = pokes
    for start, end in rounds:
        trace.ran(RoundTimes("HUB", start, end, failed=False))
    return trace


def test_rounds_are_told_apart_by_what_brought_them() -> None:
    # start; a poke while idle → commit; a poke during it, the next at once → rerun;
    # nothing, a second later → timer.
    trace = _trace([1.5, 2.05], [(0.0, 0.1), (1.6, 2.1), (2.12, 2.2), (3.3, 3.4)])
    assert [r.trigger for r in trace.rounds("HUB")] == ["start", "commit", "rerun", "timer"]
    assert trace.pokes_during(1.6, 2.1) == 1


def test_a_record_is_carried_by_the_round_during_which_it_arrived() -> None:
    rounds = [Round(0.0, 1.0, "start"), Round(2.0, 3.0, "commit")]
    assert carrier(rounds, 2.5) == "commit"
    assert carrier(rounds, 1.5) == "unknown"
