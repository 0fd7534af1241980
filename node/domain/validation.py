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

import csv
import functools
import importlib.resources
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

import pycountry
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message
from stdnum import imo as stdnum_imo
from stdnum import iso6346

from gcn.v1 import records_pb2 as rec
from node.domain import limits
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

CITES_IN_FORCE = date(1975, 7, 1)
ECHO_LIMIT = 64  # never repeat more user input than this in a message
MAX_REASON = 2000
MAX_NOTES = 10_000
MAX_CONCEALMENT = 1000
MAX_GOODS_DESCRIPTION = 500
MAX_SPECIES = 120
MAX_NAME = 200
MAX_TITLE = 200
MAX_PERMIT = 64
MAX_INDICATOR = 500
MAX_INDICATORS = limits.MAX_INDICATORS
MAX_CONTAINERS = limits.MAX_CONTAINERS
MAX_ACTION = 2000
MAX_DESCRIPTION = 1000  # place.description
MAX_REFERENCE = 64  # bill of lading, air waybill, vehicle registration
MAX_IDENTIFIER = 100  # party.identifier

_M = TypeVar("_M", bound=Message)
_Check = Callable[[str, str], str]

_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ALPHA2_RE = re.compile(r"[A-Z]{2}")
_CONTAINER_RE = re.compile(r"[A-Z]{3}[UJZR][0-9]{7}")
_IMO_RE = re.compile(r"[0-9]{7}")
_LOCODE_RE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")
_FLIGHT_RE = re.compile(r"[A-Z0-9]{2}[A-Z]?[0-9]{1,4}[A-Z]?")
_SPECIES_RE = re.compile(r"[A-Z][a-z]+(?: [A-Za-z.\-]+)+")
_BASEL_RE = re.compile(
    r"(?P<annex>[AB])(?P<num>[1-4][0-9]{3})|Y(?P<y>[1-9][0-9]?)|(?:A[A-D]|G[BCEFGHN])[0-9]{3}"
)
_OPERATION_SUFFIX = r"(?:[ -][A-Z0-9 ]{1,16})?"
_TONNE_DIVISOR: dict[rec.Unit.ValueType, float] = {
    rec.UNIT_KG: 1_000.0,
    rec.UNIT_G: 1_000_000.0,
    rec.UNIT_TONNE: 1.0,
}
_MASS_UNITS_TEXT = "UNIT_KG, UNIT_G or UNIT_TONNE"


# --- messages -----------------------------------------------------------------


def _show(value: str) -> str:
    """Quote user input for a message, cut to ECHO_LIMIT characters."""
    if len(value) > ECHO_LIMIT:
        return repr(value[:ECHO_LIMIT] + "…")
    return repr(value)


def _required(value: str, field: str) -> str:
    text = value.strip()
    if not text:
        raise ValidationError(field, "is required")
    return text


# Characters no text field may hold: C0 and C1 controls and DEL (terminal
# escapes, NUL), and the bidirectional embeddings, overrides and isolates that
# make a text display as something else. Multi-line fields may hold tab and
# newline (a CR LF pair is stored as a newline); single-line ones neither, nor
# the Unicode line and paragraph separators.
_BIDI = "\u202a-\u202e\u2066-\u2069"
_SINGLE_LINE_REFUSED = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\u2028\u2029]")
_MULTI_LINE_REFUSED = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")


def _check_characters(text: str, field: str, *, multiline: bool) -> None:
    found = (_MULTI_LINE_REFUSED if multiline else _SINGLE_LINE_REFUSED).search(text)
    if found is not None:
        allowed = " (tab and newline are allowed)" if multiline else ""
        where = f"U+{ord(found[0]):04X} at character {found.start()}"
        rule = f"must not contain control characters{allowed}; got {where}"
        raise ValidationError(field, rule)


def _text(value: str, field: str, *, limit: int, required: bool = False, multiline: bool = False) -> str:
    """Strip a free-text field; refuse it when too long (or empty and required)
    or when it holds a control character (tab and newline: only `multiline`)."""
    if multiline:
        value = value.replace("\r\n", "\n")
    text = _required(value, field) if required else value.strip()
    if len(text) > limit:
        raise ValidationError(field, f"must be at most {limit} characters (got {len(text)})")
    _check_characters(text, field, multiline=multiline)
    return text


def _at_most(items: Sized, limit: int, field: str, what: str) -> None:
    """Refuse a repeated field with more than `limit` entries (before looking at any)."""
    if len(items) > limit:
        raise ValidationError(field, f"must list at most {limit} {what} (got {len(items)})")


def _fits(record: Message, field: str) -> None:
    """Refuse a record whose serialized form exceeds limits.MAX_RECORD_BYTES."""
    size = record.ByteSize()
    if size > limits.MAX_RECORD_BYTES:
        rule = f"must be at most {limits.MAX_RECORD_BYTES} bytes serialized (got {size})"
        raise ValidationError(field, rule)


def _optional(value: str, field: str, check: _Check) -> str:
    """Apply `check` to a set optional field; an unset (blank) one becomes ''."""
    return check(value, field) if value.strip() else ""


def _enum(value: int, enum: EnumDescriptor, field: str, *, required: bool) -> None:
    if value not in enum.values_by_number:
        raise ValidationError(field, f"must be one of the defined {enum.name} values (got {value})")
    if required and value == 0:
        unspecified = enum.values_by_number[0].name
        raise ValidationError(field, f"is required ({unspecified} is not allowed)")


def _finite(value: float, field: str, *, strict: bool) -> None:
    """Refuse NaN, infinities and values below 0 (or at 0 when `strict`)."""
    low_ok = value > 0 if strict else value >= 0
    if not (math.isfinite(value) and low_ok):
        bound = "greater than 0" if strict else "at least 0"
        raise ValidationError(field, f"must be a finite number {bound} (got {value})")


def _at_most_value(value: float, limit: float, field: str) -> None:
    if value > limit:
        raise ValidationError(field, f"must be at most {limit:g} (got {value:g})")


def _copy(message: _M) -> _M:
    clone = type(message)()
    clone.CopyFrom(message)
    clone.DiscardUnknownFields()
    return clone


# --- reference data -------------------------------------------------------------


@dataclass(frozen=True)
class _Ods:
    name: str
    group: str
    gwp: int


def _data_rows(name: str) -> list[dict[str, str]]:
    """Rows of a CSV file in node/data; lines starting with '#' are comments."""
    text = (importlib.resources.files("node") / "data" / name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(lines))


@functools.cache
def _hs_chapters() -> frozenset[str]:
    return frozenset(row["chapter"] for row in _data_rows("hs_chapters.csv"))


def _ods_key(name: str) -> str:
    """Lookup key of a substance name: case, spaces, hyphens and underscores ignored."""
    return re.sub(r"[\s\-_]", "", name).casefold()


@functools.cache
def _ods_table() -> Mapping[str, _Ods]:
    table: dict[str, _Ods] = {}
    for row in _data_rows("ods_gwp.csv"):
        entry = _Ods(row["substance"], row["group"], int(row["gwp_100yr"]))
        names = [row["substance"], *filter(None, row["aliases"].split("|"))]
        for key in map(_ods_key, names):
            if key in table:
                raise RuntimeError(f"ods_gwp.csv: name {key!r} is listed twice")
            table[key] = entry
    return table


@functools.cache
def _operation_codes() -> tuple[str, ...]:
    return tuple(row["code"] for row in _data_rows("operations.csv"))


@functools.cache
def _operation_re() -> re.Pattern[str]:
    codes = sorted(_operation_codes(), key=len, reverse=True)
    return re.compile(f"(?:{'|'.join(map(re.escape, codes))}){_OPERATION_SUFFIX}")


@functools.cache
def _alpha2_codes() -> frozenset[str]:
    return frozenset(str(country.alpha_2) for country in pycountry.countries)


@functools.cache
def _currency_codes() -> frozenset[str]:
    return frozenset(str(currency.alpha_3) for currency in pycountry.currencies)


# --- single values --------------------------------------------------------------


def check_record_id(value: str, field: str = "record_id") -> str:
    """A record id: a UUID in 8-4-4-4-12 hex form; returned in canonical lower case."""
    text = _required(value, field)
    if not _UUID_RE.fullmatch(text):
        rule = "must be a UUID like 123e4567-e89b-12d3-a456-426614174000"
        raise ValidationError(field, f"{rule} (got {_show(text)})")
    return str(uuid.UUID(text))


def check_reason(value: str, field: str = "reason") -> str:
    """A retraction or correction reason: non-empty, at most 2000 characters, stripped."""
    return _text(value, field, limit=MAX_REASON, required=True, multiline=True)


def check_country(value: str, field: str) -> str:
    """An ISO 3166-1 alpha-2 country code, any case; returned upper-case."""
    code = _required(value, field).upper()
    if not _ALPHA2_RE.fullmatch(code) or code not in _alpha2_codes():
        raise ValidationError(field, f"must be an ISO 3166-1 alpha-2 country code (got {_show(code)})")
    return code


def _check_currency(value: str, field: str) -> str:
    code = _required(value, field).upper()
    if code not in _currency_codes():
        raise ValidationError(field, f"must be an ISO 4217 currency code (got {_show(code)})")
    return code


def check_container_number(value: str, field: str) -> str:
    """An ISO 6346 container number with its check digit; spaces and hyphens are
    removed and letters upper-cased ("csqu 305438-3" -> "CSQU3054383")."""
    text = _required(value, field)
    code = re.sub(r"[\s\-]", "", text).upper()
    if not _CONTAINER_RE.fullmatch(code) or not iso6346.is_valid(code):
        rule = "must be an ISO 6346 container number with a valid check digit"
        raise ValidationError(field, f"{rule} (got {_show(text)})")
    return code


def check_imo(value: str, field: str) -> str:
    """An IMO ship number (7 digits, the last a check digit); "IMO 9074729" is
    accepted and reduced to "9074729"."""
    text = _required(value, field)
    code = re.sub(r"\s", "", text).upper().removeprefix("IMO")
    if not _IMO_RE.fullmatch(code) or not stdnum_imo.is_valid(code):
        rule = "must be an IMO ship number of 7 digits with a valid check digit"
        raise ValidationError(field, f"{rule} (got {_show(text)})")
    return code


def check_hs_code(value: str, field: str, *, prefix: bool = False) -> str:
    """An HS code of 6 to 10 digits (2 to 10 with `prefix`, for search filters);
    dots and spaces are removed ("4407.99" -> "440799"); its chapter must exist."""
    text = _required(value, field)
    code = re.sub(r"[.\s]", "", text)
    shortest = 2 if prefix else 6
    if not re.fullmatch(f"[0-9]{{{shortest},10}}", code):
        raise ValidationError(field, f"must be an HS code of {shortest} to 10 digits (got {_show(text)})")
    if code[:2] not in _hs_chapters():
        raise ValidationError(field, f"chapter {code[:2]} is not an HS chapter")
    return code


def check_date(value: str, field: str, *, today: date | None = None) -> date:
    """An ISO 8601 calendar date YYYY-MM-DD; with `today`, not after today."""
    text = _required(value, field)
    if not _DATE_RE.fullmatch(text):
        raise ValidationError(field, f"must be an ISO date YYYY-MM-DD (got {_show(text)})")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationError(field, f"must be an existing calendar date (got {_show(text)})") from None
    if today is not None and day > today:
        raise ValidationError(field, f"must not be in the future ({day} is after {today})")
    return day


def _check_flight(value: str, field: str) -> str:
    text = _required(value, field)
    code = re.sub(r"\s", "", text).upper()
    if not _FLIGHT_RE.fullmatch(code):
        raise ValidationError(field, f"must be an IATA flight designator like 'KQ310' (got {_show(text)})")
    return code


def _check_species(value: str, field: str) -> str:
    name = " ".join(value.split())
    if len(name) > MAX_SPECIES:
        raise ValidationError(field, f"must be at most {MAX_SPECIES} characters (got {len(name)})")
    if not _SPECIES_RE.fullmatch(name):
        rule = "must be a scientific name of two or more words, first capitalised, like 'Loxodonta africana'"
        raise ValidationError(field, f"{rule} (got {_show(name)})")
    return name


def _basel_in_range(match: re.Match[str]) -> bool:
    if match["y"]:
        return int(match["y"]) <= 48
    if match["annex"]:
        last = 4160 if match["annex"] == "A" else 4030
        return 1010 <= int(match["num"]) <= last
    return True


def _check_basel(value: str, field: str) -> str:
    code = re.sub(r"\s", "", value).upper()
    match = _BASEL_RE.fullmatch(code)
    if match is None or not _basel_in_range(match):
        rule = "must be a Basel code A1010-A4160, B1010-B4030, Y1-Y48, or an OECD code like 'GC010'"
        raise ValidationError(field, f"{rule} (got {_show(value.strip())})")
    return code


def _check_operation(value: str, field: str) -> str:
    """A known operation code, optionally followed by a space or hyphen and a
    suffix of up to 16 letters, digits or spaces ("DEMETER-IX", "THUNDER 2026")."""
    code = " ".join(value.split()).upper()
    if code and not _operation_re().fullmatch(code):
        known = ", ".join(_operation_codes()[:6])
        rule = f"must be a known operation code ({known}, ...) with an optional suffix"
        raise ValidationError(field, f"{rule} (got {_show(code)})")
    return code


def _check_route_value(value: str, field: str) -> str:
    hops = _required(value, field).split(">")
    if len(hops) > limits.MAX_ROUTE_HOPS:
        raise ValidationError(field, f"must name at most {limits.MAX_ROUTE_HOPS} countries (got {len(hops)})")
    if len(hops) < 2:
        rule = "must be two or more ISO 3166-1 alpha-2 countries separated by '>', like 'CN>VN>KE'"
        raise ValidationError(field, f"{rule} (got {_show(value.strip())})")
    return ">".join(check_country(hop, field) for hop in hops)


def _check_name(value: str, field: str) -> str:
    return _text(value, field, limit=MAX_NAME, required=True)


def _check_permit_series(value: str, field: str) -> str:
    return _text(value, field, limit=MAX_PERMIT, required=True)


# --- ODS ------------------------------------------------------------------------


def _ods_entry(substance: str) -> _Ods:
    try:
        return _ods_table()[_ods_key(substance)]
    except KeyError:
        raise KeyError(substance) from None


def ods_gwp(substance: str) -> int:
    """100-year GWP (IPCC AR4) of an ODS or HFC, by name or alias, case-insensitive
    ("R-22", "hcfc-22"). Raises KeyError if the substance is not in the table."""
    return _ods_entry(substance).gwp


def co2e_tonnes(substance: str, quantity: rec.Quantity, path: str = "quantity") -> float:
    """CO2-equivalent tonnes of `quantity` of `substance`: mass in tonnes times GWP,
    rounded to 6 decimals. Only KG, G and TONNE quantities can be converted; a
    quantity whose CO2e would not be a finite number is refused (`path` names it)."""
    divisor = _TONNE_DIVISOR.get(quantity.unit)
    if divisor is None:
        raise ValidationError(f"{path}.unit", f"must be a mass unit ({_MASS_UNITS_TEXT}) to compute CO2e")
    _finite(quantity.value, f"{path}.value", strict=False)
    gwp = ods_gwp(substance)
    co2e = round(quantity.value / divisor * gwp, 6)
    if not math.isfinite(co2e):
        rule = f"is too large: its CO2-equivalent (tonnes x GWP {gwp}) is not a finite number"
        raise ValidationError(f"{path}.value", f"{rule} (got {quantity.value})")
    return co2e


# --- seizure --------------------------------------------------------------------


def check_seizure(seizure: rec.Seizure, today: date) -> rec.Seizure:
    """Validate a seizure; return a normalized copy or raise on the first broken rule."""
    out = _copy(seizure)
    _check_incident_date(out, today)
    _check_place(out.place)
    _enum(out.direction, rec.Direction.DESCRIPTOR, "direction", required=True)
    _enum(out.detection_method, rec.DetectionMethod.DESCRIPTOR, "detection_method", required=True)
    _check_goods_list(out)
    out.concealment = _text(out.concealment, "concealment", limit=MAX_CONCEALMENT, multiline=True)
    if out.HasField("conveyance"):
        _check_conveyance(out.conveyance)
    if out.HasField("documents"):
        _check_documents(out.documents)
    if out.HasField("route"):
        _check_route(out.route)
    _at_most(out.parties, limits.MAX_PARTIES, "parties", "parties")
    for i, party in enumerate(out.parties):
        _check_party(party, f"parties[{i}]")
    out.operation_code = _check_operation(out.operation_code, "operation_code")
    _enum(out.tlp, rec.TLP.DESCRIPTOR, "tlp", required=True)
    out.notes = _text(out.notes, "notes", limit=MAX_NOTES, multiline=True)
    _fits(out, "seizure")
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
    place.port_locode = _optional(place.port_locode, "place.port_locode", _check_locode)
    if place.port_locode and place.port_locode[:2] != place.country:
        rule = f"must be a port in place.country {place.country} (got {place.port_locode})"
        raise ValidationError("place.port_locode", rule)
    place.description = _text(place.description, "place.description", limit=MAX_DESCRIPTION, multiline=True)


def _check_locode(value: str, field: str) -> str:
    """A UN/LOCODE: existing country code then 3 of [A-Z2-9]; "KE MBA" -> "KEMBA"."""
    code = re.sub(r"\s", "", value).upper()
    if not _LOCODE_RE.fullmatch(code) or code[:2] not in _alpha2_codes():
        rule = "must be a UN/LOCODE: a country code and 3 characters of A-Z or 2-9, like 'KEMBA'"
        raise ValidationError(field, f"{rule} (got {_show(value.strip())})")
    return code


def _check_goods_list(seizure: rec.Seizure) -> None:
    if not seizure.goods:
        raise ValidationError("goods", "must list at least one goods item")
    _at_most(seizure.goods, limits.MAX_GOODS, "goods", "items")
    for i, item in enumerate(seizure.goods):
        _check_goods(item, f"goods[{i}]")


def _check_goods(item: rec.GoodsItem, path: str) -> None:
    _enum(item.commodity, rec.Commodity.DESCRIPTOR, f"{path}.commodity", required=True)
    item.description = _text(
        item.description, f"{path}.description", limit=MAX_GOODS_DESCRIPTION, required=True, multiline=True
    )
    item.hs_code = _optional(item.hs_code, f"{path}.hs_code", check_hs_code)
    _check_cites(item, path)
    _check_ods_substance(item, path)
    item.basel_code = _optional(item.basel_code, f"{path}.basel_code", _check_basel)
    _check_quantity(item, path)
    if item.HasField("declared_value"):
        _check_money(item.declared_value, f"{path}.declared_value")
    item.co2e_tonnes = (
        co2e_tonnes(item.ods_substance, item.quantity, f"{path}.quantity") if item.ods_substance else 0.0
    )


def _check_cites(item: rec.GoodsItem, path: str) -> None:
    item.species = _optional(item.species, f"{path}.species", _check_species)
    _enum(item.cites_appendix, rec.CitesAppendix.DESCRIPTOR, f"{path}.cites_appendix", required=False)
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
        item.ods_substance = _ods_entry(name).name
    except KeyError:
        rule = "must be a substance of the ODS table, like 'HCFC-22', 'R-134a' or 'HFC-404A'"
        raise ValidationError(field, f"{rule} (got {_show(name)})") from None


def _check_quantity(item: rec.GoodsItem, path: str) -> None:
    field = f"{path}.quantity"
    if not item.HasField("quantity"):
        raise ValidationError(field, "is required")
    _finite(item.quantity.value, f"{field}.value", strict=True)
    _at_most_value(item.quantity.value, limits.MAX_QUANTITY, f"{field}.value")
    _enum(item.quantity.unit, rec.Unit.DESCRIPTOR, f"{field}.unit", required=True)
    if item.commodity == rec.COMMODITY_ODS_HFC and item.quantity.unit not in _TONNE_DIVISOR:
        rule = f"must be a mass unit ({_MASS_UNITS_TEXT}) for ODS goods, so CO2e can be computed"
        raise ValidationError(f"{field}.unit", rule)


def _check_money(money: rec.Money, path: str) -> None:
    _finite(money.amount, f"{path}.amount", strict=False)
    _at_most_value(money.amount, limits.MAX_AMOUNT, f"{path}.amount")
    money.currency = _check_currency(money.currency, f"{path}.currency")


def _check_conveyance(conveyance: rec.Conveyance) -> None:
    _enum(conveyance.mode, rec.TransportMode.DESCRIPTOR, "conveyance.mode", required=False)
    conveyance.vessel_imo = _optional(conveyance.vessel_imo, "conveyance.vessel_imo", check_imo)
    conveyance.vessel_name = _text(conveyance.vessel_name, "conveyance.vessel_name", limit=MAX_NAME)
    conveyance.flight = _optional(conveyance.flight, "conveyance.flight", _check_flight)
    conveyance.vehicle_registration = _text(
        conveyance.vehicle_registration, "conveyance.vehicle_registration", limit=MAX_REFERENCE
    )
    numbers = conveyance.container_numbers
    _at_most(numbers, MAX_CONTAINERS, "conveyance.container_numbers", "containers")
    for i, number in enumerate(numbers):
        numbers[i] = check_container_number(number, f"conveyance.container_numbers[{i}]")


def _check_documents(documents: rec.Documents) -> None:
    documents.bill_of_lading = _text(
        documents.bill_of_lading, "documents.bill_of_lading", limit=MAX_REFERENCE
    )
    documents.air_waybill = _text(documents.air_waybill, "documents.air_waybill", limit=MAX_REFERENCE)
    _at_most(documents.permits, limits.MAX_PERMITS, "documents.permits", "permits")
    for i, permit in enumerate(documents.permits):
        path = f"documents.permits[{i}]"
        _enum(permit.type, rec.PermitType.DESCRIPTOR, f"{path}.type", required=False)
        permit.number = _text(permit.number, f"{path}.number", limit=MAX_PERMIT, required=True)
        permit.issuing_country = _optional(permit.issuing_country, f"{path}.issuing_country", check_country)


def _check_route(route: rec.Route) -> None:
    route.origin_country = _optional(route.origin_country, "route.origin_country", check_country)
    route.export_country = _optional(route.export_country, "route.export_country", check_country)
    transit = route.transit_countries
    _at_most(transit, limits.MAX_TRANSIT_COUNTRIES, "route.transit_countries", "countries")
    for i, country in enumerate(transit):
        transit[i] = check_country(country, f"route.transit_countries[{i}]")
    route.destination_country = _optional(
        route.destination_country, "route.destination_country", check_country
    )


def _check_party(party: rec.Party, path: str) -> None:
    _enum(party.kind, rec.PartyKind.DESCRIPTOR, f"{path}.kind", required=True)
    _enum(party.role, rec.PartyRole.DESCRIPTOR, f"{path}.role", required=True)
    party.name = _check_name(party.name, f"{path}.name")
    party.country = _optional(party.country, f"{path}.country", check_country)
    party.identifier = _text(party.identifier, f"{path}.identifier", limit=MAX_IDENTIFIER)
    if party.kind == rec.PARTY_KIND_PERSON:
        party.personal_data = True


# --- alert ----------------------------------------------------------------------

_SUBJECT_CHECKS: dict[rec.SubjectKind.ValueType, _Check] = {
    rec.SUBJECT_KIND_VESSEL: check_imo,
    rec.SUBJECT_KIND_CONTAINER: check_container_number,
    rec.SUBJECT_KIND_COMPANY: _check_name,
    rec.SUBJECT_KIND_PERSON: _check_name,
    rec.SUBJECT_KIND_PERMIT_SERIES: _check_permit_series,
    rec.SUBJECT_KIND_ROUTE: _check_route_value,
    rec.SUBJECT_KIND_FLIGHT: _check_flight,
}


def check_alert(alert: rec.Alert, today: date) -> rec.Alert:
    """Validate an alert; return a normalized copy or raise on the first broken rule."""
    out = _copy(alert)
    out.title = _text(out.title, "title", limit=MAX_TITLE, required=True)
    _check_subjects(out)
    _check_indicators(out)
    _enum(out.commodity, rec.Commodity.DESCRIPTOR, "commodity", required=True)
    _enum(out.priority, rec.Priority.DESCRIPTOR, "priority", required=True)
    day = check_date(out.valid_until, "valid_until")
    if day < today:
        raise ValidationError("valid_until", f"must not be in the past ({day} is before {today})")
    out.valid_until = day.isoformat()
    out.recommended_action = _text(
        out.recommended_action, "recommended_action", limit=MAX_ACTION, multiline=True
    )
    out.operation_code = _check_operation(out.operation_code, "operation_code")
    _enum(out.tlp, rec.TLP.DESCRIPTOR, "tlp", required=True)
    out.notes = _text(out.notes, "notes", limit=MAX_NOTES, multiline=True)
    _fits(out, "alert")
    return out


def _check_subjects(alert: rec.Alert) -> None:
    if not alert.subjects:
        raise ValidationError("subjects", "must list at least one subject")
    _at_most(alert.subjects, limits.MAX_SUBJECTS, "subjects", "subjects")
    for i, subject in enumerate(alert.subjects):
        path = f"subjects[{i}]"
        _enum(subject.kind, rec.SubjectKind.DESCRIPTOR, f"{path}.kind", required=True)
        check = _SUBJECT_CHECKS.get(subject.kind)
        if check is None:
            raise ValidationError(f"{path}.kind", f"kind {subject.kind} is not supported by this node")
        subject.value = check(subject.value, f"{path}.value")


def _check_indicators(alert: rec.Alert) -> None:
    indicators = alert.indicators
    _at_most(indicators, MAX_INDICATORS, "indicators", "indicators")
    for i, text in enumerate(indicators):
        indicators[i] = _text(text, f"indicators[{i}]", limit=MAX_INDICATOR, required=True)
