"""Single values and reference data of the record rules: codes (countries,
currencies, container numbers with their ISO 6346 check digit, IMO numbers
with theirs, HS codes, UN/LOCODEs, flights, Basel and operation codes), dates,
bounded text, and the ODS table behind CO2-equivalents. Each check returns the
normalised value or raises `ValidationError(field, rule)`; `node.domain.validation`
applies them to whole records.

Reference data (HS chapters, ODS global-warming potentials, operation codes) is
read once from the CSV files in ``node/data`` (see ``node/data/SOURCES.md``);
countries and currencies come from `pycountry`, container and IMO check digits
from `python-stdnum`.
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
Check = Callable[[str, str], str]

_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ALPHA2_RE = re.compile(r"[A-Z]{2}")
_CONTAINER_RE = re.compile(r"[A-Z]{3}[UJZR][0-9]{7}")
_IMO_RE = re.compile(r"[0-9]{7}")
LOCODE_RE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")
_FLIGHT_RE = re.compile(r"[A-Z0-9]{2}[A-Z]?[0-9]{1,4}[A-Z]?")
_SPECIES_RE = re.compile(r"[A-Z][a-z]+(?: [A-Za-z.\-]+)+")
_BASEL_RE = re.compile(
    r"(?P<annex>[AB])(?P<num>[1-4][0-9]{3})|Y(?P<y>[1-9][0-9]?)|(?:A[A-D]|G[BCEFGHN])[0-9]{3}"
)
_OPERATION_SUFFIX = r"(?:[ -][A-Z0-9 ]{1,16})?"
TONNE_DIVISOR: dict[rec.Unit.ValueType, float] = {
    rec.UNIT_KG: 1_000.0,
    rec.UNIT_G: 1_000_000.0,
    rec.UNIT_TONNE: 1.0,
}
MASS_UNITS_TEXT = "UNIT_KG, UNIT_G or UNIT_TONNE"


# --- messages -----------------------------------------------------------------


def shown(value: str) -> str:
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


def bounded_text(
    value: str, field: str, *, limit: int, required: bool = False, multiline: bool = False
) -> str:
    """Strip a free-text field; refuse it when too long (or empty and required)
    or when it holds a control character (tab and newline: only `multiline`)."""
    if multiline:
        value = value.replace("\r\n", "\n")
    text = _required(value, field) if required else value.strip()
    if len(text) > limit:
        raise ValidationError(field, f"must be at most {limit} characters (got {len(text)})")
    _check_characters(text, field, multiline=multiline)
    return text


def at_most(items: Sized, limit: int, field: str, what: str) -> None:
    """Refuse a repeated field with more than `limit` entries (before looking at any)."""
    if len(items) > limit:
        raise ValidationError(field, f"must list at most {limit} {what} (got {len(items)})")


def fits(record: Message, field: str) -> None:
    """Refuse a record whose serialized form exceeds limits.MAX_RECORD_BYTES."""
    size = record.ByteSize()
    if size > limits.MAX_RECORD_BYTES:
        rule = f"must be at most {limits.MAX_RECORD_BYTES} bytes serialized (got {size})"
        raise ValidationError(field, rule)


def optional_value(value: str, field: str, check: Check) -> str:
    """Apply `check` to a set optional field; an unset (blank) one becomes ''."""
    return check(value, field) if value.strip() else ""


def enum_value(value: int, enum: EnumDescriptor, field: str, *, required: bool) -> None:
    if value not in enum.values_by_number:
        raise ValidationError(field, f"must be one of the defined {enum.name} values (got {value})")
    if required and value == 0:
        unspecified = enum.values_by_number[0].name
        raise ValidationError(field, f"is required ({unspecified} is not allowed)")


def finite(value: float, field: str, *, strict: bool) -> None:
    """Refuse NaN, infinities and values below 0 (or at 0 when `strict`)."""
    low_ok = value > 0 if strict else value >= 0
    if not (math.isfinite(value) and low_ok):
        bound = "greater than 0" if strict else "at least 0"
        raise ValidationError(field, f"must be a finite number {bound} (got {value})")


def at_most_value(value: float, limit: float, field: str) -> None:
    if value > limit:
        raise ValidationError(field, f"must be at most {limit:g} (got {value:g})")


def copied(message: _M) -> _M:
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
def alpha2_codes() -> frozenset[str]:
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
        raise ValidationError(field, f"{rule} (got {shown(text)})")
    return str(uuid.UUID(text))


def check_reason(value: str, field: str = "reason") -> str:
    """A retraction or correction reason: non-empty, at most 2000 characters, stripped."""
    return bounded_text(value, field, limit=MAX_REASON, required=True, multiline=True)


def check_country(value: str, field: str) -> str:
    """An ISO 3166-1 alpha-2 country code, any case; returned upper-case."""
    code = _required(value, field).upper()
    if not _ALPHA2_RE.fullmatch(code) or code not in alpha2_codes():
        raise ValidationError(field, f"must be an ISO 3166-1 alpha-2 country code (got {shown(code)})")
    return code


def check_currency(value: str, field: str) -> str:
    code = _required(value, field).upper()
    if code not in _currency_codes():
        raise ValidationError(field, f"must be an ISO 4217 currency code (got {shown(code)})")
    return code


def check_container_number(value: str, field: str) -> str:
    """An ISO 6346 container number with its check digit; spaces and hyphens are
    removed and letters upper-cased ("csqu 305438-3" -> "CSQU3054383")."""
    text = _required(value, field)
    code = re.sub(r"[\s\-]", "", text).upper()
    if not _CONTAINER_RE.fullmatch(code) or not iso6346.is_valid(code):
        rule = "must be an ISO 6346 container number with a valid check digit"
        raise ValidationError(field, f"{rule} (got {shown(text)})")
    return code


def check_imo(value: str, field: str) -> str:
    """An IMO ship number (7 digits, the last a check digit); "IMO 9074729" is
    accepted and reduced to "9074729"."""
    text = _required(value, field)
    code = re.sub(r"\s", "", text).upper().removeprefix("IMO")
    if not _IMO_RE.fullmatch(code) or not stdnum_imo.is_valid(code):
        rule = "must be an IMO ship number of 7 digits with a valid check digit"
        raise ValidationError(field, f"{rule} (got {shown(text)})")
    return code


def check_hs_code(value: str, field: str, *, prefix: bool = False) -> str:
    """An HS code of 6 to 10 digits (2 to 10 with `prefix`, for search filters);
    dots and spaces are removed ("4407.99" -> "440799"); its chapter must exist."""
    text = _required(value, field)
    code = re.sub(r"[.\s]", "", text)
    shortest = 2 if prefix else 6
    if not re.fullmatch(f"[0-9]{{{shortest},10}}", code):
        raise ValidationError(field, f"must be an HS code of {shortest} to 10 digits (got {shown(text)})")
    if code[:2] not in _hs_chapters():
        raise ValidationError(field, f"chapter {code[:2]} is not an HS chapter")
    return code


def check_date(value: str, field: str, *, today: date | None = None) -> date:
    """An ISO 8601 calendar date YYYY-MM-DD; with `today`, not after today."""
    text = _required(value, field)
    if not _DATE_RE.fullmatch(text):
        raise ValidationError(field, f"must be an ISO date YYYY-MM-DD (got {shown(text)})")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationError(field, f"must be an existing calendar date (got {shown(text)})") from None
    if today is not None and day > today:
        raise ValidationError(field, f"must not be in the future ({day} is after {today})")
    return day


def check_flight(value: str, field: str) -> str:
    text = _required(value, field)
    code = re.sub(r"\s", "", text).upper()
    if not _FLIGHT_RE.fullmatch(code):
        raise ValidationError(field, f"must be an IATA flight designator like 'KQ310' (got {shown(text)})")
    return code


def check_species(value: str, field: str) -> str:
    name = " ".join(value.split())
    if len(name) > MAX_SPECIES:
        raise ValidationError(field, f"must be at most {MAX_SPECIES} characters (got {len(name)})")
    if not _SPECIES_RE.fullmatch(name):
        rule = "must be a scientific name of two or more words, first capitalised, like 'Loxodonta africana'"
        raise ValidationError(field, f"{rule} (got {shown(name)})")
    return name


def _basel_in_range(match: re.Match[str]) -> bool:
    if match["y"]:
        return int(match["y"]) <= 48
    if match["annex"]:
        last = 4160 if match["annex"] == "A" else 4030
        return 1010 <= int(match["num"]) <= last
    return True


def check_basel(value: str, field: str) -> str:
    code = re.sub(r"\s", "", value).upper()
    match = _BASEL_RE.fullmatch(code)
    if match is None or not _basel_in_range(match):
        rule = "must be a Basel code A1010-A4160, B1010-B4030, Y1-Y48, or an OECD code like 'GC010'"
        raise ValidationError(field, f"{rule} (got {shown(value.strip())})")
    return code


def check_operation(value: str, field: str) -> str:
    """A known operation code, optionally followed by a space or hyphen and a
    suffix of up to 16 letters, digits or spaces ("DEMETER-IX", "THUNDER 2026")."""
    code = " ".join(value.split()).upper()
    if code and not _operation_re().fullmatch(code):
        known = ", ".join(_operation_codes()[:6])
        rule = f"must be a known operation code ({known}, ...) with an optional suffix"
        raise ValidationError(field, f"{rule} (got {shown(code)})")
    return code


def check_route_value(value: str, field: str) -> str:
    hops = _required(value, field).split(">")
    if len(hops) > limits.MAX_ROUTE_HOPS:
        raise ValidationError(field, f"must name at most {limits.MAX_ROUTE_HOPS} countries (got {len(hops)})")
    if len(hops) < 2:
        rule = "must be two or more ISO 3166-1 alpha-2 countries separated by '>', like 'CN>VN>KE'"
        raise ValidationError(field, f"{rule} (got {shown(value.strip())})")
    return ">".join(check_country(hop, field) for hop in hops)


def check_name(value: str, field: str) -> str:
    return bounded_text(value, field, limit=MAX_NAME, required=True)


def check_permit_series(value: str, field: str) -> str:
    return bounded_text(value, field, limit=MAX_PERMIT, required=True)


# --- ODS ------------------------------------------------------------------------


def ods_entry(substance: str) -> _Ods:
    try:
        return _ods_table()[_ods_key(substance)]
    except KeyError:
        raise KeyError(substance) from None


def ods_gwp(substance: str) -> int:
    """100-year GWP (IPCC AR4) of an ODS or HFC, by name or alias, case-insensitive
    ("R-22", "hcfc-22"). Raises KeyError if the substance is not in the table."""
    return ods_entry(substance).gwp


def co2e_tonnes(substance: str, quantity: rec.Quantity, path: str = "quantity") -> float:
    """CO2-equivalent tonnes of `quantity` of `substance`: mass in tonnes times GWP,
    rounded to 6 decimals. Only KG, G and TONNE quantities can be converted; a
    quantity whose CO2e would not be a finite number is refused (`path` names it)."""
    divisor = TONNE_DIVISOR.get(quantity.unit)
    if divisor is None:
        raise ValidationError(f"{path}.unit", f"must be a mass unit ({MASS_UNITS_TEXT}) to compute CO2e")
    finite(quantity.value, f"{path}.value", strict=False)
    gwp = ods_gwp(substance)
    co2e = round(quantity.value / divisor * gwp, 6)
    if not math.isfinite(co2e):
        rule = f"is too large: its CO2-equivalent (tonnes x GWP {gwp}) is not a finite number"
        raise ValidationError(f"{path}.value", f"{rule} (got {quantity.value})")
    return co2e
