"""Hub statistics are the same from full and statistical views."""

from __future__ import annotations

from datetime import date

import pytest

from federation.views import project
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from node.domain import samples, validation
from rinex.aggregate import aggregate

TODAY = date(2026, 11, 28)


def _checked() -> list[rec.Seizure]:
    return [validation.check_seizure(s, TODAY) for s in samples.sample_seizures(TODAY)]


def test_statistics_per_commodity_country_and_month() -> None:
    stats = aggregate(_checked())
    assert stats.seizures == 3
    assert stats.by_commodity["wildlife"].seizures == 1 and stats.by_commodity["wildlife"].items == 2
    assert stats.by_commodity["wildlife"].kilograms == pytest.approx(452.5 + 1100)
    assert stats.by_commodity["ods_hfc"].co2e_tonnes == pytest.approx(13.6 * 1810)
    assert stats.by_commodity["timber"].other_units == {"cubic_metre": 84}
    assert {k for k, c in stats.by_country.items() if c.seizures} == {"KE", "NL", "VN"}
    assert stats.by_month["2026-11"].seizures == 3


def test_a_hub_holding_statistical_views_computes_the_same_figures() -> None:
    full = aggregate(_checked())
    statistical = aggregate(
        project(rec.RecordBody(seizure=s), epb.VIEW_STATISTICAL).seizure for s in _checked()
    )
    for attr in ("by_commodity", "by_country", "by_month"):
        assert getattr(full, attr) == getattr(statistical, attr), attr
