"""Tests of node.domain.validation: valid records, a table of named bad inputs, and
property tests of the check-digit rules and of input immutability."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import imo as stdnum_imo
from stdnum import iso6346

from gcn.v1 import records_pb2 as rec
from node.domain.validation import (
    check_alert,
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

TODAY = date(2026, 11, 28)
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, database=None)

SeizureEdit = Callable[[rec.Seizure], object]
AlertEdit = Callable[[rec.Alert], object]


# --- valid records ----------------------------------------------------------------


def ivory_seizure() -> rec.Seizure:
    """Raw ivory found by scanner in an export container at Mombasa."""
    return rec.Seizure(
        incident_date=" 2026-11-20 ",
        place=rec.Place(port_locode="KE MBA", country="ke", description="Kilindini CFS 3"),
        direction=rec.DIRECTION_EXPORT,
        detection_method=rec.DETECTION_METHOD_NII_SCAN,
        goods=[
            rec.GoodsItem(
                commodity=rec.COMMODITY_WILDLIFE,
                description="Raw elephant ivory tusks, 212 pieces",
                hs_code="0507.10",
                species="Loxodonta  africana",
                cites_appendix=rec.CITES_APPENDIX_I,
                quantity=rec.Quantity(value=3200.0, unit=rec.UNIT_KG),
                declared_value=rec.Money(amount=0.0, currency="usd"),
                co2e_tonnes=99.0,  # a client cannot set it
            )
        ],
        concealment="Tusks wrapped in sacks under bags of groundnuts",
        conveyance=rec.Conveyance(
            mode=rec.TRANSPORT_MODE_SEA,
            vessel_imo="IMO 9074729",
            vessel_name="MV Example Trader",
            container_numbers=["csqu 305438 3"],
        ),
        documents=rec.Documents(
            bill_of_lading="MBA2611200042",
            permits=[rec.Permit(type=rec.PERMIT_TYPE_OTHER, number="PH-2026-118", issuing_country="ke")],
        ),
        route=rec.Route(
            origin_country="ug", export_country="KE", transit_countries=["my"], destination_country="VN"
        ),
        parties=[
            rec.Party(
                kind=rec.PARTY_KIND_PERSON,
                role=rec.PARTY_ROLE_SHIPPER,
                name=" John Doe ",
                country="KE",
                identifier="A1234567",
                personal_data=False,
            ),
            rec.Party(
                kind=rec.PARTY_KIND_COMPANY,
                role=rec.PARTY_ROLE_CONSIGNEE,
                name="Example Trading Co. Ltd",
                country="vn",
            ),
        ],
        operation_code=" thunder 2026 ",
        tlp=rec.TLP_AMBER,
        notes="Declared as groundnuts.",
    )


def ods_seizure() -> rec.Seizure:
    """Undeclared refrigerant cylinders at Laem Chabang."""
    return rec.Seizure(
        incident_date="2026-10-02",
        place=rec.Place(port_locode="THLCH", country="TH"),
        direction=rec.DIRECTION_IMPORT,
        detection_method=rec.DETECTION_METHOD_DOCUMENTARY_CHECK,
        goods=[
            rec.GoodsItem(
                commodity=rec.COMMODITY_ODS_HFC,
                description="Refrigerant R-22 in 73 disposable cylinders",
                hs_code="2903 71",
                ods_substance="r-22",
                quantity=rec.Quantity(value=1000.0, unit=rec.UNIT_KG),
            ),
            rec.GoodsItem(
                commodity=rec.COMMODITY_ODS_HFC,
                description="Trifluoromethane in 1 cylinder",
                hs_code="290341",
                ods_substance="hfc-23",
                quantity=rec.Quantity(value=13.6, unit=rec.UNIT_KG),
            ),
        ],
        operation_code="DEMETER-IX",
        tlp=rec.TLP_GREEN,
    )


def valid_alert() -> rec.Alert:
    return rec.Alert(
        title=" Ivory concealed in groundnut exports via Mombasa ",
        subjects=[
            rec.AlertSubject(kind=rec.SUBJECT_KIND_VESSEL, value="IMO 9074729"),
            rec.AlertSubject(kind=rec.SUBJECT_KIND_CONTAINER, value="csqu3054383"),
            rec.AlertSubject(kind=rec.SUBJECT_KIND_COMPANY, value="Example Trading Co. Ltd"),
            rec.AlertSubject(kind=rec.SUBJECT_KIND_ROUTE, value="ug > ke>vn"),
            rec.AlertSubject(kind=rec.SUBJECT_KIND_FLIGHT, value="kq 310"),
            rec.AlertSubject(kind=rec.SUBJECT_KIND_PERMIT_SERIES, value="PH-2026-1"),
            rec.AlertSubject(kind=rec.SUBJECT_KIND_PERSON, value="John Doe"),
        ],
        indicators=["Groundnuts declared for export to VN", " Freight paid in cash "],
        commodity=rec.COMMODITY_WILDLIFE,
        priority=rec.PRIORITY_HIGH,
        valid_until="2027-02-28",
        recommended_action="Scan all groundnut exports by this shipper.",
        operation_code=" thunder ",
        tlp=rec.TLP_AMBER,
    )


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
