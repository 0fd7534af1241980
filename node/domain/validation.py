"""Input validation of seizure and alert records.

`check_seizure` and `check_alert` take a record as a client sent it and return
a NEW, normalized copy (the input is never mutated): surrounding whitespace is
stripped, codes are upper-cased and compacted, ODS names are made canonical and
the computed fields (`co2e_tonnes`, a person's `personal_data`) are set by the
node, whatever the client put there. They raise `ValidationError(field, rule)`
on the first broken rule, `field` being the path of the offending field in
proto field names (``goods[1].hs_code``) and `rule` a sentence stating the rule.

Reference data (HS chapters, ODS global-warming potentials, operation codes) is
read once from the CSV files in ``node/data`` (see ``node/data/SOURCES.md``);
countries and currencies come from `pycountry`, container and IMO check digits
from `python-stdnum`.

Basel waste codes (``basel_code``) are accepted when they match, after removing
whitespace and upper-casing::

    A1010-A4160 | B1010-B4030 | Y1-Y48 | (AA|AB|AC|AD|GB|GC|GE|GF|GG|GH|GN)ddd

that is Basel Annex VIII (A) and IX (B) entries, Annex I/II categories (Y48,
plastic waste, since the 2019 amendment), and OECD amber/green list codes
such as ``GC010`` or ``AB130``.
"""

from __future__ import annotations

import re
from datetime import date

from gcn.v1 import records_pb2 as rec
from node.domain import limits
from node.domain.checks import (
    CITES_IN_FORCE,
    LOCODE_RE,
    MASS_UNITS_TEXT,
    MAX_ACTION,
    MAX_CONCEALMENT,
    MAX_CONTAINERS,
    MAX_DESCRIPTION,
    MAX_GOODS_DESCRIPTION,
    MAX_IDENTIFIER,
    MAX_INDICATOR,
    MAX_INDICATORS,
    MAX_NAME,
    MAX_NOTES,
    MAX_PERMIT,
    MAX_REFERENCE,
    MAX_TITLE,
    TONNE_DIVISOR,
    Check,
    alpha2_codes,
    at_most,
    at_most_value,
    bounded_text,
    check_basel,
    check_container_number,
    check_country,
    check_currency,
    check_date,
    check_flight,
    check_hs_code,
    check_imo,
    check_name,
    check_operation,
    check_permit_series,
    check_reason,
    check_record_id,
    check_route_value,
    check_species,
    co2e_tonnes,
    copied,
    enum_value,
    finite,
    fits,
    ods_entry,
    ods_gwp,
    optional_value,
    shown,
)
from node.errors import ValidationError

__all__ = [
    "check_alert",
    "check_container_number",
    "check_country",
    "check_date",
    "check_hs_code",
    "check_imo",
    "check_reason",
    "check_record_id",
    "check_seizure",
    "co2e_tonnes",
    "ods_gwp",
]

# --- seizure --------------------------------------------------------------------


def check_seizure(seizure: rec.Seizure, today: date) -> rec.Seizure:
    """Validate a seizure; return a normalized copy or raise on the first broken rule."""
    out = copied(seizure)
    _check_incident_date(out, today)
    _check_place(out.place)
    enum_value(out.direction, rec.Direction.DESCRIPTOR, "direction", required=True)
    enum_value(out.detection_method, rec.DetectionMethod.DESCRIPTOR, "detection_method", required=True)
    _check_goods_list(out)
    out.concealment = bounded_text(out.concealment, "concealment", limit=MAX_CONCEALMENT, multiline=True)
    if out.HasField("conveyance"):
        _check_conveyance(out.conveyance)
    if out.HasField("documents"):
        _check_documents(out.documents)
    if out.HasField("route"):
        _check_route(out.route)
    at_most(out.parties, limits.MAX_PARTIES, "parties", "parties")
    for i, party in enumerate(out.parties):
        _check_party(party, f"parties[{i}]")
    out.operation_code = check_operation(out.operation_code, "operation_code")
    enum_value(out.tlp, rec.TLP.DESCRIPTOR, "tlp", required=True)
    out.notes = bounded_text(out.notes, "notes", limit=MAX_NOTES, multiline=True)
    fits(out, "seizure")
    return out


def _check_incident_date(seizure: rec.Seizure, today: date) -> None:
    day = check_date(seizure.incident_date, "incident_date", today=today)
    if day < CITES_IN_FORCE:
        raise ValidationError(
            "incident_date", f"must not be before {CITES_IN_FORCE}, when CITES entered into force (got {day})"
        )
    seizure.incident_date = day.isoformat()


def _check_place(place: rec.Place) -> None:
    place.country = check_country(place.country, "place.country")
    place.port_locode = optional_value(place.port_locode, "place.port_locode", check_locode)
    if place.port_locode and place.port_locode[:2] != place.country:
        rule = f"must be a port in place.country {place.country} (got {place.port_locode})"
        raise ValidationError("place.port_locode", rule)
    place.description = bounded_text(
        place.description, "place.description", limit=MAX_DESCRIPTION, multiline=True
    )


def check_locode(value: str, field: str) -> str:
    """A UN/LOCODE: existing country code then 3 of [A-Z2-9]; "KE MBA" -> "KEMBA"."""
    code = re.sub(r"\s", "", value).upper()
    if not LOCODE_RE.fullmatch(code) or code[:2] not in alpha2_codes():
        rule = "must be a UN/LOCODE: a country code and 3 characters of A-Z or 2-9, like 'KEMBA'"
        raise ValidationError(field, f"{rule} (got {shown(value.strip())})")
    return code


def _check_goods_list(seizure: rec.Seizure) -> None:
    if not seizure.goods:
        raise ValidationError("goods", "must list at least one goods item")
    at_most(seizure.goods, limits.MAX_GOODS, "goods", "items")
    for i, item in enumerate(seizure.goods):
        _check_goods(item, f"goods[{i}]")


def _check_goods(item: rec.GoodsItem, path: str) -> None:
    enum_value(item.commodity, rec.Commodity.DESCRIPTOR, f"{path}.commodity", required=True)
    item.description = bounded_text(
        item.description, f"{path}.description", limit=MAX_GOODS_DESCRIPTION, required=True, multiline=True
    )
    item.hs_code = optional_value(item.hs_code, f"{path}.hs_code", check_hs_code)
    _check_cites(item, path)
    _check_ods_substance(item, path)
    item.basel_code = optional_value(item.basel_code, f"{path}.basel_code", check_basel)
    _check_quantity(item, path)
    if item.HasField("declared_value"):
        _check_money(item.declared_value, f"{path}.declared_value")
    item.co2e_tonnes = (
        co2e_tonnes(item.ods_substance, item.quantity, f"{path}.quantity") if item.ods_substance else 0.0
    )


def _check_cites(item: rec.GoodsItem, path: str) -> None:
    item.species = optional_value(item.species, f"{path}.species", check_species)
    enum_value(item.cites_appendix, rec.CitesAppendix.DESCRIPTOR, f"{path}.cites_appendix", required=False)
    listed = item.cites_appendix != rec.CITES_APPENDIX_UNSPECIFIED
    if listed and not item.species and item.commodity in (rec.COMMODITY_WILDLIFE, rec.COMMODITY_TIMBER):
        rule = "is required for wildlife or timber when cites_appendix is set"
        raise ValidationError(f"{path}.species", rule)


def _check_ods_substance(item: rec.GoodsItem, path: str) -> None:
    field = f"{path}.ods_substance"
    name = item.ods_substance.strip()
    is_ods = item.commodity == rec.COMMODITY_ODS_HFC
    if not name:
        if is_ods:
            raise ValidationError(field, "is required for COMMODITY_ODS_HFC goods")
        item.ods_substance = ""
        return
    if not is_ods:
        raise ValidationError(field, "is only allowed for COMMODITY_ODS_HFC goods")
    try:
        item.ods_substance = ods_entry(name).name
    except KeyError:
        rule = "must be a substance of the ODS table, like 'HCFC-22', 'R-134a' or 'HFC-404A'"
        raise ValidationError(field, f"{rule} (got {shown(name)})") from None


def _check_quantity(item: rec.GoodsItem, path: str) -> None:
    field = f"{path}.quantity"
    if not item.HasField("quantity"):
        raise ValidationError(field, "is required")
    finite(item.quantity.value, f"{field}.value", strict=True)
    at_most_value(item.quantity.value, limits.MAX_QUANTITY, f"{field}.value")
    enum_value(item.quantity.unit, rec.Unit.DESCRIPTOR, f"{field}.unit", required=True)
    if item.commodity == rec.COMMODITY_ODS_HFC and item.quantity.unit not in TONNE_DIVISOR:
        rule = f"must be a mass unit ({MASS_UNITS_TEXT}) for ODS goods, so CO2e can be computed"
        raise ValidationError(f"{field}.unit", rule)


def _check_money(money: rec.Money, path: str) -> None:
    finite(money.amount, f"{path}.amount", strict=False)
    at_most_value(money.amount, limits.MAX_AMOUNT, f"{path}.amount")
    money.currency = check_currency(money.currency, f"{path}.currency")


def _check_conveyance(conveyance: rec.Conveyance) -> None:
    enum_value(conveyance.mode, rec.TransportMode.DESCRIPTOR, "conveyance.mode", required=False)
    conveyance.vessel_imo = optional_value(conveyance.vessel_imo, "conveyance.vessel_imo", check_imo)
    conveyance.vessel_name = bounded_text(conveyance.vessel_name, "conveyance.vessel_name", limit=MAX_NAME)
    conveyance.flight = optional_value(conveyance.flight, "conveyance.flight", check_flight)
    conveyance.vehicle_registration = bounded_text(
        conveyance.vehicle_registration, "conveyance.vehicle_registration", limit=MAX_REFERENCE
    )
    numbers = conveyance.container_numbers
    at_most(numbers, MAX_CONTAINERS, "conveyance.container_numbers", "containers")
    for i, number in enumerate(numbers):
        numbers[i] = check_container_number(number, f"conveyance.container_numbers[{i}]")


def _check_documents(documents: rec.Documents) -> None:
    documents.bill_of_lading = bounded_text(
        documents.bill_of_lading, "documents.bill_of_lading", limit=MAX_REFERENCE
    )
    documents.air_waybill = bounded_text(documents.air_waybill, "documents.air_waybill", limit=MAX_REFERENCE)
    at_most(documents.permits, limits.MAX_PERMITS, "documents.permits", "permits")
    for i, permit in enumerate(documents.permits):
        path = f"documents.permits[{i}]"
        enum_value(permit.type, rec.PermitType.DESCRIPTOR, f"{path}.type", required=False)
        permit.number = bounded_text(permit.number, f"{path}.number", limit=MAX_PERMIT, required=True)
        permit.issuing_country = optional_value(
            permit.issuing_country, f"{path}.issuing_country", check_country
        )


def _check_route(route: rec.Route) -> None:
    route.origin_country = optional_value(route.origin_country, "route.origin_country", check_country)
    route.export_country = optional_value(route.export_country, "route.export_country", check_country)
    transit = route.transit_countries
    at_most(transit, limits.MAX_TRANSIT_COUNTRIES, "route.transit_countries", "countries")
    for i, country in enumerate(transit):
        transit[i] = check_country(country, f"route.transit_countries[{i}]")
    route.destination_country = optional_value(
        route.destination_country, "route.destination_country", check_country
    )


def _check_party(party: rec.Party, path: str) -> None:
    enum_value(party.kind, rec.PartyKind.DESCRIPTOR, f"{path}.kind", required=True)
    enum_value(party.role, rec.PartyRole.DESCRIPTOR, f"{path}.role", required=True)
    party.name = check_name(party.name, f"{path}.name")
    party.country = optional_value(party.country, f"{path}.country", check_country)
    party.identifier = bounded_text(party.identifier, f"{path}.identifier", limit=MAX_IDENTIFIER)
    if party.kind == rec.PARTY_KIND_PERSON:
        party.personal_data = True


# --- alert ----------------------------------------------------------------------

_SUBJECT_CHECKS: dict[rec.SubjectKind.ValueType, Check] = {
    rec.SUBJECT_KIND_VESSEL: check_imo,
    rec.SUBJECT_KIND_CONTAINER: check_container_number,
    rec.SUBJECT_KIND_COMPANY: check_name,
    rec.SUBJECT_KIND_PERSON: check_name,
    rec.SUBJECT_KIND_PERMIT_SERIES: check_permit_series,
    rec.SUBJECT_KIND_ROUTE: check_route_value,
    rec.SUBJECT_KIND_FLIGHT: check_flight,
}


def check_alert(alert: rec.Alert, today: date) -> rec.Alert:
    """Validate an alert; return a normalized copy or raise on the first broken rule."""
    out = copied(alert)
    out.title = bounded_text(out.title, "title", limit=MAX_TITLE, required=True)
    _check_subjects(out)
    _check_indicators(out)
    enum_value(out.commodity, rec.Commodity.DESCRIPTOR, "commodity", required=True)
    enum_value(out.priority, rec.Priority.DESCRIPTOR, "priority", required=True)
    day = check_date(out.valid_until, "valid_until")
    if day < today:
        raise ValidationError("valid_until", f"must not be in the past ({day} is before {today})")
    out.valid_until = day.isoformat()
    out.recommended_action = bounded_text(
        out.recommended_action, "recommended_action", limit=MAX_ACTION, multiline=True
    )
    out.operation_code = check_operation(out.operation_code, "operation_code")
    enum_value(out.tlp, rec.TLP.DESCRIPTOR, "tlp", required=True)
    out.notes = bounded_text(out.notes, "notes", limit=MAX_NOTES, multiline=True)
    fits(out, "alert")
    return out


def _check_subjects(alert: rec.Alert) -> None:
    if not alert.subjects:
        raise ValidationError("subjects", "must list at least one subject")
    at_most(alert.subjects, limits.MAX_SUBJECTS, "subjects", "subjects")
    for i, subject in enumerate(alert.subjects):
        path = f"subjects[{i}]"
        enum_value(subject.kind, rec.SubjectKind.DESCRIPTOR, f"{path}.kind", required=True)
        check = _SUBJECT_CHECKS.get(subject.kind)
        if check is None:
            raise ValidationError(f"{path}.kind", f"kind {subject.kind} is not supported by this node")
        subject.value = check(subject.value, f"{path}.value")


def _check_indicators(alert: rec.Alert) -> None:
    indicators = alert.indicators
    at_most(indicators, MAX_INDICATORS, "indicators", "indicators")
    for i, text in enumerate(indicators):
        indicators[i] = bounded_text(text, f"indicators[{i}]", limit=MAX_INDICATOR, required=True)
