"""The search benchmark's pure helpers: its seizures pass the node's
validation and are the same for the same seed (a stopped build's probes are
drawn again from it), probes survive a save, every shape makes a query the
node accepts, and a shape's verdict."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

from bench.search_data import Probes, SeizureSource
from bench.search_shapes import Shape, Timing, shapes
from gcn.v1 import search_pb2 as spb
from node.domain import validation
from node.domain.search_query import parse_query

DAY = date(2026, 12, 4)


def test_seizures_are_valid_varied_and_the_same_for_the_same_seed() -> None:
    a, b = SeizureSource(7, DAY), SeizureSource(7, DAY)
    first = list(a.seizures(300))
    assert first == list(b.seizures(300))
    for s in first:
        validation.check_seizure(s, DAY)
    assert len({s.parties[0].name for s in first}) > 200
    assert a.probes == b.probes and len(a.probes.containers) == 4  # seizures 0, 97, 194, 291


def test_probes_survive_a_save(tmp_path: Path) -> None:
    source = SeizureSource(3, DAY)
    list(source.seizures(500))
    source.probes.save(tmp_path / "probes.json")
    assert Probes.load(tmp_path / "probes.json") == source.probes


def test_every_shape_makes_a_query_the_node_accepts() -> None:
    source = SeizureSource(5, DAY)
    list(source.seizures(2000))
    rng = random.Random(1)
    for shape in shapes(source.probes):
        for _ in range(20):
            parse_query(shape.make(rng))


def test_a_shape_passes_on_its_p99_and_on_the_300_ms_ceiling() -> None:
    lookup = Timing(Shape("x", 50.0, lambda r: spb.SearchQuery()))
    lookup.store_s = [0.01] * 99 + [0.2]
    assert lookup.passed("store") is True  # p99 under 50 ms, max under 300
    lookup.store_s = [0.01] * 99 + [0.4]
    assert lookup.passed("store") is False  # one query over 300 ms
    assert lookup.passed("full") is None
