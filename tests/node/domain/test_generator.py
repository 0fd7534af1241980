"""The data generator: every record it makes passes the node's own rules, the
same seed makes the same records, and record i does not depend on how many
were asked for (streams of any size, resumable)."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcn.v1 import records_pb2 as rec
from node.domain import validation
from node.domain.generator import PROFILES, Generator

TODAY = date(2026, 12, 4)


def test_two_thousand_seizures_and_two_hundred_alerts_all_pass_validation() -> None:
    gen = Generator(seed=7, today=TODAY)
    commodities: set[int] = set()
    for s in gen.seizures(2000):
        checked = validation.check_seizure(s, TODAY)
        commodities.update(g.commodity for g in checked.goods)
        assert checked.place.port_locode[:2] == checked.place.country
    assert commodities == {p.commodity for p in PROFILES}
    for a in gen.alerts(200):
        validation.check_alert(a, TODAY)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), index=st.integers(0, 10**7))
def test_any_record_of_any_seed_is_valid_and_reproducible(seed: int, index: int) -> None:
    gen = Generator(seed=seed, today=TODAY)
    s = gen.seizure(index)
    validation.check_seizure(s, TODAY)
    assert Generator(seed=seed, today=TODAY).seizure(index) == s
    validation.check_alert(gen.alert(index), TODAY)


def test_record_i_is_the_same_however_many_are_asked_for() -> None:
    gen = Generator(seed=1, today=TODAY)
    first = list(gen.seizures(50))
    assert list(itertools.islice(gen.seizures(10**9), 50)) == first  # lazily: a billion is never made
    assert list(gen.seizures(10, start=40)) == first[40:]
    assert list(Generator(seed=2, today=TODAY).seizures(50)) != first


def test_seizures_can_be_made_in_the_given_countries_only() -> None:
    gen = Generator(seed=3, today=TODAY, countries=("KE", "TZ"))
    assert {s.place.country for s in gen.seizures(300)} == {"KE", "TZ"}
    with pytest.raises(ValueError, match="no ports known for XX"):
        Generator(seed=3, today=TODAY, countries=("XX",))


def test_the_story_looks_like_the_field_ivory_leaves_africa_for_asia_by_sea() -> None:
    ivory = [s for s in Generator(seed=5, today=TODAY).seizures(3000) if s.goods[0].hs_code == "050710"]
    assert len(ivory) > 100
    assert all(s.route.origin_country in {"UG", "CD", "CM", "TZ", "MZ", "KE"} for s in ivory)
    assert all(s.route.destination_country in {"VN", "CN", "MY", "TH", "HK", "KH", "LA"} for s in ivory)
    sea = [s for s in ivory if s.conveyance.mode == rec.TRANSPORT_MODE_SEA]
    assert len(sea) > len(ivory) / 2
    assert all(s.conveyance.container_numbers and s.conveyance.vessel_imo for s in sea)


def test_dates_are_within_the_years_asked_and_never_in_the_future() -> None:
    gen = Generator(seed=9, today=TODAY, years=2)
    days = [date.fromisoformat(s.incident_date) for s in gen.seizures(500)]
    assert min(days) >= date(2024, 12, 4) and max(days) <= TODAY
