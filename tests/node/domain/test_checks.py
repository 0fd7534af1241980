"""Tests of node.domain.checks: single values (codes, dates, ODS, operation and
Basel codes, bounded messages) and property tests of the check-digit rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import imo as stdnum_imo
from stdnum import iso6346

from gcn.v1 import records_pb2 as rec
from node.domain.validation import (
    check_container_number,
    check_country,
    check_date,
    check_hs_code,
    check_imo,
    check_reason,
    check_record_id,
    check_seizure,
    co2e_tonnes,
    ods_gwp,
)
from node.errors import ValidationError
from tests.node.domain.valid_records import TODAY, ivory_seizure, ods_seizure

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, database=None)

SeizureEdit = Callable[[rec.Seizure], object]
AlertEdit = Callable[[rec.Alert], object]


# --- single values ----------------------------------------------------------------


def test_check_record_id() -> None:
    value = " 123E4567-E89B-12D3-A456-426614174000 "
    assert check_record_id(value) == "123e4567-e89b-12d3-a456-426614174000"
    with pytest.raises(ValidationError) as err:
        check_record_id("123e4567e89b12d3a456426614174000")
    assert err.value.field == "record_id"


def test_check_reason() -> None:
    assert check_reason("  duplicate of an earlier record ") == "duplicate of an earlier record"
    for bad in ("   ", "x" * 2001):
        with pytest.raises(ValidationError) as err:
            check_reason(bad)
        assert err.value.field == "reason"


def test_check_country() -> None:
    assert check_country(" gb ", "c") == "GB"
    for bad in ("GBR", "XX", "G", "Kenya", ""):
        with pytest.raises(ValidationError):
            check_country(bad, "c")


def test_check_hs_code_prefix() -> None:
    assert check_hs_code("4407.99", "h") == "440799"
    assert check_hs_code("44", "h", prefix=True) == "44"
    assert check_hs_code("4407 99 10 00", "h", prefix=True) == "4407991000"
    with pytest.raises(ValidationError, match="2 to 10 digits"):
        check_hs_code("4", "h", prefix=True)
    with pytest.raises(ValidationError, match="chapter 77 is not an HS chapter"):
        check_hs_code("77", "h", prefix=True)
    with pytest.raises(ValidationError, match="chapter 00 is not an HS chapter"):
        check_hs_code("000000", "h")
    with pytest.raises(ValidationError, match="6 to 10 digits"):
        check_hs_code("44079912345", "h")


def test_check_date() -> None:
    assert check_date("2026-11-28", "d", today=TODAY) == TODAY
    assert check_date("2031-01-01", "d") == date(2031, 1, 1)
    with pytest.raises(ValidationError) as err:
        check_date("2031-01-01", "d", today=TODAY)
    assert err.value.rule == "must not be in the future (2031-01-01 is after 2026-11-28)"
    for bad in ("20261128", "2026-11-28T00:00", "2026-13-01"):
        with pytest.raises(ValidationError):
            check_date(bad, "d")


def test_check_imo_and_container_normalize() -> None:
    assert check_imo("IMO 9074729", "v") == "9074729"
    assert check_imo("imo9074729", "v") == "9074729"
    assert check_container_number(" csqu-305438-3 ", "c") == "CSQU3054383"
    with pytest.raises(ValidationError, match="ISO 6346"):
        check_container_number("CSQX3054383", "c")  # category must be U, J, Z or R


def test_ods_gwp_by_name_and_alias() -> None:
    assert ods_gwp("HCFC-22") == ods_gwp("r22") == ods_gwp("R-22") == 1810
    assert ods_gwp("HFC-134a") == ods_gwp("r-134A") == 1430
    assert ods_gwp("R-404A") == 3922
    assert ods_gwp("HFC-23") == 14800
    assert ods_gwp("Methyl Bromide") == 5
    assert ods_gwp("halon 1301") == 7140
    with pytest.raises(KeyError):
        ods_gwp("HFC-999")


def test_co2e_tonnes_units() -> None:
    assert co2e_tonnes("HFC-134a", rec.Quantity(value=2.0, unit=rec.UNIT_TONNE)) == 2860.0
    assert co2e_tonnes("R-404A", rec.Quantity(value=500.0, unit=rec.UNIT_G)) == pytest.approx(1.961)
    with pytest.raises(ValidationError, match="mass unit"):
        co2e_tonnes("HFC-134a", rec.Quantity(value=2.0, unit=rec.UNIT_LITRE))


@pytest.mark.parametrize(
    "code",
    ["DEMETER", "DEMETER-IX", "demeter 2026", "30 days at sea 2025", "THUNDERBALL", "SKY HOLE PATCHING 9"],
)
def test_operation_codes_accepted(code: str) -> None:
    seizure = ods_seizure()
    seizure.operation_code = code
    assert check_seizure(seizure, TODAY).operation_code == " ".join(code.split()).upper()


@pytest.mark.parametrize("code", ["A1180", "b1110", "Y48", "Y1", "GC010", "AB130", "A4160", "B4030"])
def test_basel_codes_accepted(code: str) -> None:
    seizure = ods_seizure()
    seizure.goods[0].basel_code = code
    assert check_seizure(seizure, TODAY).goods[0].basel_code == code.upper()


def test_message_never_echoes_more_than_64_characters() -> None:
    seizure = ivory_seizure()
    seizure.conveyance.container_numbers[0] = "Q" * 1000
    with pytest.raises(ValidationError) as err:
        check_seizure(seizure, TODAY)
    assert "Q" * 64 in err.value.rule
    assert "Q" * 65 not in err.value.rule


# --- properties -------------------------------------------------------------------

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGITS = "0123456789"

container_bases = st.builds(
    lambda owner, category, serial: f"{owner}{category}{serial:06d}",
    st.text(_LETTERS, min_size=3, max_size=3),
    st.sampled_from("UJZR"),
    st.integers(0, 999_999),
)


@PROPERTY_SETTINGS
@given(container_bases)
def test_container_check_digit_property(base: str) -> None:
    check = iso6346.calc_check_digit(base)
    assert check_container_number(base + check, "c") == base + check
    assert check_container_number(f" {base.lower()} {check}", "c") == base + check
    for wrong in _DIGITS.replace(check, ""):
        with pytest.raises(ValidationError, match="valid check digit"):
            check_container_number(base + wrong, "c")


@PROPERTY_SETTINGS
@given(st.integers(0, 999_999))
def test_imo_check_digit_property(serial: int) -> None:
    base = f"{serial:06d}"
    check = stdnum_imo.calc_check_digit(base)
    assert check_imo(base + check, "v") == base + check
    assert check_imo(f"IMO {base}{check}", "v") == base + check
    for wrong in _DIGITS.replace(check, ""):
        with pytest.raises(ValidationError, match="valid check digit"):
            check_imo(base + wrong, "v")
