"""Tests of node.domain.validation: valid records, a table of named bad inputs, and
property tests of the check-digit rules and of input immutability."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcn.v1 import records_pb2 as rec
from node.domain.validation import (
    check_alert,
    check_seizure,
)
from node.errors import ValidationError
from tests.node.domain.valid_records import ivory_seizure, ods_seizure, valid_alert

TODAY = date(2026, 11, 28)
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, database=None)

SeizureEdit = Callable[[rec.Seizure], object]
AlertEdit = Callable[[rec.Alert], object]


def test_ivory_seizure_is_valid_and_normalized() -> None:
    out = check_seizure(ivory_seizure(), TODAY)
    assert out.incident_date == "2026-11-20"
    assert (out.place.port_locode, out.place.country) == ("KEMBA", "KE")
    item = out.goods[0]
    assert (item.hs_code, item.species, item.co2e_tonnes) == ("050710", "Loxodonta africana", 0.0)
    assert item.declared_value.currency == "USD"
    assert out.conveyance.vessel_imo == "9074729"
    assert list(out.conveyance.container_numbers) == ["CSQU3054383"]
    assert out.documents.permits[0].issuing_country == "KE"
    assert (out.route.origin_country, list(out.route.transit_countries)) == ("UG", ["MY"])
    assert out.parties[0].name == "John Doe"
    assert out.parties[0].personal_data is True
    assert out.parties[1].personal_data is False
    assert out.operation_code == "THUNDER 2026"


def test_ods_seizure_computes_co2e() -> None:
    out = check_seizure(ods_seizure(), TODAY)
    assert [g.ods_substance for g in out.goods] == ["HCFC-22", "HFC-23"]
    assert [g.hs_code for g in out.goods] == ["290371", "290341"]
    assert out.goods[0].co2e_tonnes == 1810.0
    assert out.goods[1].co2e_tonnes == pytest.approx(201.28)
    assert out.operation_code == "DEMETER-IX"


def test_alert_is_valid_and_normalized() -> None:
    out = check_alert(valid_alert(), TODAY)
    assert out.title == "Ivory concealed in groundnut exports via Mombasa"
    assert [s.value for s in out.subjects] == [
        "9074729",
        "CSQU3054383",
        "Example Trading Co. Ltd",
        "UG>KE>VN",
        "KQ310",
        "PH-2026-1",
        "John Doe",
    ]
    assert list(out.indicators)[1] == "Freight paid in cash"
    assert out.operation_code == "THUNDER"


def test_alert_valid_until_today_is_accepted() -> None:
    alert = valid_alert()
    alert.valid_until = TODAY.isoformat()
    assert check_alert(alert, TODAY).valid_until == "2026-11-28"


def test_check_returns_new_message_without_unknown_fields() -> None:
    seizure = ivory_seizure()
    out = check_seizure(seizure, TODAY)
    assert out is not seizure
    tagged = rec.Seizure.FromString(ods_seizure().SerializeToString() + b"\x98\x06\x01")  # field 99 = 1
    plain = check_seizure(ods_seizure(), TODAY)
    assert check_seizure(tagged, TODAY).SerializeToString() == plain.SerializeToString()


# --- bad inputs -------------------------------------------------------------------


def _set_containers(seizure: rec.Seizure, count: int) -> None:
    seizure.conveyance.container_numbers[:] = ["CSQU3054383"] * count


def _set_container(seizure: rec.Seizure, number: str) -> None:
    seizure.conveyance.container_numbers[0] = number


def _drop_quantity(seizure: rec.Seizure) -> None:
    seizure.goods[0].ClearField("quantity")


BAD_SEIZURES = [
    pytest.param(ivory_seizure, lambda s: setattr(s, "incident_date", ""), "incident_date", "is required",
                 id="incident-date-missing"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "incident_date", "20/11/2026"), "incident_date",
                 "YYYY-MM-DD", id="incident-date-not-iso"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "incident_date", "2026-02-30"), "incident_date",
                 "calendar date", id="incident-date-not-a-day"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "incident_date", "2031-01-01"), "incident_date",
                 "must not be in the future (2031-01-01 is after 2026-11-28)", id="incident-date-future"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "incident_date", "1975-06-30"), "incident_date",
                 "CITES entered into force", id="incident-date-before-cites"),
    pytest.param(ivory_seizure, lambda s: s.ClearField("place"), "place.country", "is required",
                 id="place-missing"),
    pytest.param(ivory_seizure, lambda s: setattr(s.place, "country", "XK"), "place.country", "ISO 3166-1",
                 id="place-country-unknown"),
    pytest.param(ivory_seizure, lambda s: setattr(s.place, "port_locode", "KEM1A"), "place.port_locode",
                 "UN/LOCODE", id="locode-digit-1"),
    pytest.param(ivory_seizure, lambda s: setattr(s.place, "port_locode", "XXMBA"), "place.port_locode",
                 "UN/LOCODE", id="locode-country-unknown"),
    pytest.param(ivory_seizure, lambda s: setattr(s.place, "port_locode", "TZDAR"), "place.port_locode",
                 "place.country KE", id="locode-other-country"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "direction", rec.DIRECTION_UNSPECIFIED), "direction",
                 "is required", id="direction-unspecified"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "direction", 99), "direction",
                 "defined Direction values", id="direction-unknown-number"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "detection_method", 0), "detection_method",
                 "is required", id="detection-method-unspecified"),
    pytest.param(ivory_seizure, lambda s: s.ClearField("goods"), "goods", "at least one",
                 id="goods-empty"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0], "commodity", 42), "goods[0].commodity",
                 "defined Commodity values", id="goods-commodity-unknown"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0], "description", "  "), "goods[0].description",
                 "is required", id="goods-description-blank"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0], "description", "x" * 501),
                 "goods[0].description", "at most 500", id="goods-description-long"),
    pytest.param(ods_seizure, lambda s: setattr(s.goods[1], "hs_code", "7701.10"), "goods[1].hs_code",
                 "chapter 77 is not an HS chapter", id="hs-chapter-77"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0], "hs_code", "0507"), "goods[0].hs_code",
                 "6 to 10 digits", id="hs-too-short"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0], "hs_code", "05O710"), "goods[0].hs_code",
                 "6 to 10 digits", id="hs-letter-o"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0], "species", "Loxodonta"), "goods[0].species",
                 "scientific name", id="species-one-word"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0], "species", "loxodonta africana"),
                 "goods[0].species", "scientific name", id="species-lower-case"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0], "species", "Loxodonta " + "a" * 120),
                 "goods[0].species", "at most 120", id="species-long"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0], "species", ""), "goods[0].species",
                 "cites_appendix is set", id="cites-without-species"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0], "cites_appendix", 7), "goods[0].cites_appendix",
                 "defined CitesAppendix values", id="cites-appendix-unknown"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0], "ods_substance", "HCFC-22"),
                 "goods[0].ods_substance", "only allowed", id="ods-on-wildlife"),
    pytest.param(ods_seizure, lambda s: setattr(s.goods[0], "ods_substance", " "), "goods[0].ods_substance",
                 "is required", id="ods-missing"),
    pytest.param(ods_seizure, lambda s: setattr(s.goods[1], "ods_substance", "HFC-999"),
                 "goods[1].ods_substance", "ODS table", id="ods-unknown"),
    pytest.param(ods_seizure, lambda s: setattr(s.goods[0].quantity, "unit", rec.UNIT_PIECE),
                 "goods[0].quantity.unit", "mass unit", id="ods-in-pieces"),
    pytest.param(ivory_seizure, _drop_quantity, "goods[0].quantity", "is required", id="quantity-missing"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0].quantity, "value", 0.0),
                 "goods[0].quantity.value", "greater than 0", id="quantity-zero"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0].quantity, "value", math.nan),
                 "goods[0].quantity.value", "finite", id="quantity-nan"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0].quantity, "value", math.inf),
                 "goods[0].quantity.value", "finite", id="quantity-infinite"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0].quantity, "unit", 0), "goods[0].quantity.unit",
                 "is required", id="quantity-unit-unspecified"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0].declared_value, "amount", -1.0),
                 "goods[0].declared_value.amount", "at least 0", id="value-negative"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0].declared_value, "currency", "USX"),
                 "goods[0].declared_value.currency", "ISO 4217", id="value-currency-unknown"),
    pytest.param(ivory_seizure, lambda s: setattr(s.goods[0].declared_value, "currency", ""),
                 "goods[0].declared_value.currency", "is required", id="value-currency-missing"),
    pytest.param(ods_seizure, lambda s: setattr(s.goods[0], "basel_code", "A4170"), "goods[0].basel_code",
                 "Basel code", id="basel-a-out-of-range"),
    pytest.param(ods_seizure, lambda s: setattr(s.goods[0], "basel_code", "Y49"), "goods[0].basel_code",
                 "Basel code", id="basel-y49"),
    pytest.param(ivory_seizure, lambda s: setattr(s.conveyance, "mode", 12), "conveyance.mode",
                 "defined TransportMode values", id="conveyance-mode-unknown"),
    pytest.param(ivory_seizure, lambda s: setattr(s.conveyance, "vessel_imo", "IMO 9074728"),
                 "conveyance.vessel_imo", "valid check digit (got 'IMO 9074728')", id="imo-check-digit"),
    pytest.param(ivory_seizure, lambda s: setattr(s.conveyance, "vessel_imo", "907472"),
                 "conveyance.vessel_imo", "7 digits", id="imo-six-digits"),
    pytest.param(ivory_seizure, lambda s: setattr(s.conveyance, "flight", "KQ31000"), "conveyance.flight",
                 "IATA flight designator", id="flight-shape"),
    pytest.param(ivory_seizure, lambda s: _set_container(s, "CSQU3054384"),
                 "conveyance.container_numbers[0]",
                 "must be an ISO 6346 container number with a valid check digit (got 'CSQU3054384')",
                 id="container-check-digit"),
    pytest.param(ivory_seizure, lambda s: s.conveyance.container_numbers.append("MSCU123"),
                 "conveyance.container_numbers[1]", "ISO 6346", id="container-second-short"),
    pytest.param(ivory_seizure, lambda s: _set_containers(s, 201), "conveyance.container_numbers",
                 "at most 200", id="containers-too-many"),
    pytest.param(ivory_seizure, lambda s: setattr(s.documents.permits[0], "number", ""),
                 "documents.permits[0].number", "is required", id="permit-number-missing"),
    pytest.param(ivory_seizure, lambda s: setattr(s.documents.permits[0], "issuing_country", "EU"),
                 "documents.permits[0].issuing_country", "ISO 3166-1", id="permit-country-eu"),
    pytest.param(ivory_seizure, lambda s: setattr(s.documents.permits[0], "type", 99),
                 "documents.permits[0].type", "defined PermitType values", id="permit-type-unknown"),
    pytest.param(ivory_seizure, lambda s: setattr(s.route, "origin_country", "UGA"), "route.origin_country",
                 "ISO 3166-1", id="route-origin-alpha3"),
    pytest.param(ivory_seizure, lambda s: s.route.transit_countries.append("ZZ"),
                 "route.transit_countries[1]", "ISO 3166-1", id="route-transit-unknown"),
    pytest.param(ivory_seizure, lambda s: setattr(s.route, "destination_country", "Vietnam"),
                 "route.destination_country", "ISO 3166-1", id="route-destination-name"),
    pytest.param(ivory_seizure, lambda s: setattr(s.parties[0], "role", 0), "parties[0].role", "is required",
                 id="party-role-missing"),
    pytest.param(ivory_seizure, lambda s: setattr(s.parties[1], "kind", 0), "parties[1].kind", "is required",
                 id="party-kind-missing"),
    pytest.param(ivory_seizure, lambda s: setattr(s.parties[1], "name", ""), "parties[1].name", "is required",
                 id="party-name-missing"),
    pytest.param(ivory_seizure, lambda s: setattr(s.parties[0], "name", "n" * 201), "parties[0].name",
                 "at most 200", id="party-name-long"),
    pytest.param(ivory_seizure, lambda s: setattr(s.parties[0], "country", "Kenya"), "parties[0].country",
                 "ISO 3166-1", id="party-country-name"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "operation_code", "ZEUS"), "operation_code",
                 "known operation code (DEMETER", id="operation-unknown"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "operation_code", "DEMETERX"), "operation_code",
                 "known operation code", id="operation-no-separator"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "operation_code", "DEMETER-" + "X" * 17),
                 "operation_code", "optional suffix", id="operation-suffix-long"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "concealment", "c" * 1001), "concealment",
                 "at most 1000", id="concealment-long"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "tlp", 0), "tlp", "is required", id="tlp-unspecified"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "tlp", 9), "tlp", "defined TLP values",
                 id="tlp-unknown"),
    pytest.param(ivory_seizure, lambda s: setattr(s, "notes", "n" * 10_001), "notes", "at most 10000",
                 id="notes-long"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "edit", "field", "phrase"), BAD_SEIZURES)
def test_bad_seizure(make: Callable[[], rec.Seizure], edit: SeizureEdit, field: str, phrase: str) -> None:
    seizure = make()
    edit(seizure)
    with pytest.raises(ValidationError) as err:
        check_seizure(seizure, TODAY)
    assert err.value.field == field
    assert phrase in err.value.rule


BAD_ALERTS = [
    pytest.param(lambda a: setattr(a, "title", " "), "title", "is required", id="title-missing"),
    pytest.param(lambda a: setattr(a, "title", "t" * 201), "title", "at most 200", id="title-long"),
    pytest.param(lambda a: a.ClearField("subjects"), "subjects", "at least one", id="subjects-empty"),
    pytest.param(lambda a: setattr(a.subjects[2], "kind", 0), "subjects[2].kind", "is required",
                 id="subject-kind-missing"),
    pytest.param(lambda a: setattr(a.subjects[2], "kind", 55), "subjects[2].kind",
                 "defined SubjectKind values", id="subject-kind-unknown"),
    pytest.param(lambda a: setattr(a.subjects[0], "value", "9074728"), "subjects[0].value",
                 "valid check digit", id="subject-vessel-check-digit"),
    pytest.param(lambda a: setattr(a.subjects[1], "value", "CSQU3054384"), "subjects[1].value",
                 "ISO 6346", id="subject-container-check-digit"),
    pytest.param(lambda a: setattr(a.subjects[2], "value", ""), "subjects[2].value", "is required",
                 id="subject-company-empty"),
    pytest.param(lambda a: setattr(a.subjects[3], "value", "CN"), "subjects[3].value", "two or more",
                 id="subject-route-one-country"),
    pytest.param(lambda a: setattr(a.subjects[3], "value", "CN>ZZ>KE"), "subjects[3].value", "ISO 3166-1",
                 id="subject-route-unknown-country"),
    pytest.param(lambda a: setattr(a.subjects[4], "value", "KQ-31000"), "subjects[4].value", "IATA",
                 id="subject-flight-shape"),
    pytest.param(lambda a: setattr(a.subjects[5], "value", "P" * 65), "subjects[5].value", "at most 64",
                 id="subject-permit-series-long"),
    pytest.param(lambda a: setattr(a.subjects[6], "value", "p" * 201), "subjects[6].value", "at most 200",
                 id="subject-person-long"),
    pytest.param(lambda a: a.indicators.append(" "), "indicators[2]", "is required", id="indicator-blank"),
    pytest.param(lambda a: a.indicators.extend(["i"] * 49), "indicators", "at most 50",
                 id="indicators-too-many"),
    pytest.param(lambda a: a.indicators.append("i" * 501), "indicators[2]", "at most 500",
                 id="indicator-long"),
    pytest.param(lambda a: setattr(a, "commodity", 0), "commodity", "is required", id="commodity-missing"),
    pytest.param(lambda a: setattr(a, "priority", 17), "priority", "defined Priority values",
                 id="priority-unknown"),
    pytest.param(lambda a: setattr(a, "priority", 0), "priority", "is required", id="priority-missing"),
    pytest.param(lambda a: setattr(a, "valid_until", ""), "valid_until", "is required",
                 id="valid-until-missing"),
    pytest.param(lambda a: setattr(a, "valid_until", "2026-11-27"), "valid_until",
                 "must not be in the past (2026-11-27 is before 2026-11-28)", id="valid-until-past"),
    pytest.param(lambda a: setattr(a, "valid_until", "next week"), "valid_until", "YYYY-MM-DD",
                 id="valid-until-not-a-date"),
    pytest.param(lambda a: setattr(a, "recommended_action", "r" * 2001), "recommended_action",
                 "at most 2000", id="action-long"),
    pytest.param(lambda a: setattr(a, "operation_code", "OPERATION X"), "operation_code",
                 "known operation code", id="alert-operation-unknown"),
    pytest.param(lambda a: setattr(a, "tlp", 0), "tlp", "is required", id="alert-tlp-missing"),
    pytest.param(lambda a: setattr(a, "notes", "n" * 10_001), "notes", "at most 10000",
                 id="alert-notes-long"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "field", "phrase"), BAD_ALERTS)
def test_bad_alert(edit: AlertEdit, field: str, phrase: str) -> None:
    alert = valid_alert()
    edit(alert)
    with pytest.raises(ValidationError) as err:
        check_alert(alert, TODAY)
    assert err.value.field == field
    assert phrase in err.value.rule


_noise = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_padding = st.sampled_from(["", " ", "  ", "\t", "\n "])
_enum_numbers = st.integers(0, 12)


@st.composite
def edited_seizures(draw: st.DrawFn) -> rec.Seizure:
    """A valid seizure with some fields padded, re-cased or replaced by noise."""
    seizure = draw(st.sampled_from([ivory_seizure, ods_seizure]))()
    pad = draw(_padding)
    seizure.place.country = pad + seizure.place.country.lower() + pad
    seizure.direction = draw(_enum_numbers)  # type: ignore[assignment]
    seizure.goods[0].co2e_tonnes = draw(st.floats(allow_nan=True))
    seizure.goods[0].hs_code = draw(st.sampled_from([seizure.goods[0].hs_code, "7701.10", ""]))
    seizure.goods[0].description = pad + draw(_noise) + "x"
    seizure.operation_code = draw(st.sampled_from(["", " demeter ", "ZEUS"]))
    seizure.conveyance.container_numbers.append(draw(st.sampled_from(["csqu 305438 3", "CSQU3054384"])))
    seizure.parties.add(kind=rec.PARTY_KIND_PERSON, role=rec.PARTY_ROLE_PASSENGER, name=draw(_noise))
    seizure.notes = draw(_noise)
    return seizure


@PROPERTY_SETTINGS
@given(edited_seizures())
def test_check_seizure_never_mutates_input(seizure: rec.Seizure) -> None:
    before = seizure.SerializeToString(deterministic=True)
    try:
        out = check_seizure(seizure, TODAY)
    except ValidationError:
        pass
    else:
        assert out is not seizure
    assert seizure.SerializeToString(deterministic=True) == before


@PROPERTY_SETTINGS
@given(st.sampled_from([ivory_seizure, ods_seizure]))
def test_check_seizure_is_idempotent(make: Callable[[], rec.Seizure]) -> None:
    once = check_seizure(make(), TODAY)
    assert check_seizure(once, TODAY) == once
