"""Building records from command-line flags or a JSON file.

JSON uses the protobuf JSON mapping of `gcn.v1.Seizure` / `gcn.v1.Alert`
(field names in lowerCamelCase or as in the .proto; enum values by name).
Flags take short enum names ("wildlife", "nii-scan", "amber").
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from gcn.v1 import records_pb2 as rec
from node.cli.errors import CliError

M = TypeVar("M", bound=Message)


def enum_value(enum: Any, prefix: str, text: str, flag: str) -> int:
    """'nii-scan' -> DETECTION_METHOD_NII_SCAN's number."""
    name = prefix + text.strip().upper().replace("-", "_").replace(" ", "_")
    if name.endswith("_UNSPECIFIED") or name not in enum.keys():
        choices = ", ".join(
            k.removeprefix(prefix).lower().replace("_", "-")
            for k in enum.keys()
            if not k.endswith("_UNSPECIFIED")
        )
        raise CliError(f"{flag}: {text!r} is not one of: {choices}")
    return int(enum.Value(name))


def choices(enum: Any, prefix: str) -> str:
    return "|".join(
        k.removeprefix(prefix).lower().replace("_", "-")
        for k in enum.keys()
        if not k.endswith("_UNSPECIFIED")
    )


def from_json_file(path: str, message: type[M]) -> M:
    try:
        text = Path(path).read_text() if path != "-" else __import__("sys").stdin.read()
    except OSError as e:
        raise CliError(f"--file: cannot read {path}: {e.strerror}") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CliError(
            f"--file: {path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
        ) from e
    try:
        return json_format.ParseDict(data, message())
    except json_format.ParseError as e:
        first_line = str(e).splitlines()[0] if str(e) else "unparseable"
        raise CliError(f"--file: {path} is not a {message.DESCRIPTOR.name}: {first_line}") from e


def seizures_from_jsonl(path: str) -> list[rec.Seizure]:
    """One gcn.v1.Seizure as JSON per line (blank lines and # comments skipped)."""
    try:
        lines = (
            Path(path).read_text().splitlines()
            if path != "-"
            else __import__("sys").stdin.read().splitlines()
        )
    except OSError as e:
        raise CliError(f"{path}: cannot read it: {e.strerror}") from e
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            out.append(json_format.Parse(line, rec.Seizure()))
        except json_format.ParseError as e:
            first_line = str(e).splitlines()[0] if str(e) else "unparseable"
            raise CliError(f"{path} line {n}: not a Seizure: {first_line}") from e
    return out


def _quantity(text: str, flag: str) -> rec.Quantity:
    parts = text.split()
    if len(parts) != 2:
        raise CliError(f"{flag}: expected a number and a unit, e.g. '450 kg' (got {text!r})")
    units = {
        "kg": rec.UNIT_KG,
        "g": rec.UNIT_G,
        "t": rec.UNIT_TONNE,
        "tonne": rec.UNIT_TONNE,
        "l": rec.UNIT_LITRE,
        "m3": rec.UNIT_CUBIC_METRE,
        "pcs": rec.UNIT_PIECE,
        "piece": rec.UNIT_PIECE,
        "pieces": rec.UNIT_PIECE,
        "pair": rec.UNIT_PAIR,
        "pairs": rec.UNIT_PAIR,
        "m2": rec.UNIT_SQUARE_METRE,
    }
    try:
        value = float(parts[0])
    except ValueError as e:
        raise CliError(f"{flag}: {parts[0]!r} is not a number") from e
    if parts[1].lower() not in units:
        raise CliError(f"{flag}: unit {parts[1]!r} is not one of: {', '.join(units)}")
    return rec.Quantity(value=value, unit=units[parts[1].lower()])


def _money(text: str, flag: str) -> rec.Money:
    parts = text.split()
    try:
        return rec.Money(amount=float(parts[0]), currency=parts[1].upper())
    except (ValueError, IndexError) as e:
        raise CliError(f"{flag}: expected an amount and an ISO 4217 currency, e.g. '1200 USD'") from e


def _party(text: str, kind: int, flag: str) -> rec.Party:
    parts = [p.strip() for p in text.split(":")]
    if len(parts) < 2:
        raise CliError(f"{flag}: expected NAME:ROLE[:COUNTRY], e.g. 'Sesame Traders Ltd:shipper:KE'")
    role = enum_value(rec.PartyRole, "PARTY_ROLE_", parts[1], flag)
    return rec.Party(kind=kind, role=role, name=parts[0], country=parts[2] if len(parts) > 2 else "")  # type: ignore[arg-type]


def seizure_from_flags(a: SimpleNamespace) -> rec.Seizure:
    s = rec.Seizure(
        incident_date=a.date or "",
        notes=a.notes or "",
        concealment=a.concealment or "",
        operation_code=a.operation or "",
    )
    s.place.country = a.country or ""
    s.place.port_locode = a.port or ""
    if a.direction:
        s.direction = enum_value(rec.Direction, "DIRECTION_", a.direction, "--direction")  # type: ignore[assignment]
    if a.detection:
        s.detection_method = enum_value(rec.DetectionMethod, "DETECTION_METHOD_", a.detection, "--detection")  # type: ignore[assignment]
    s.tlp = enum_value(rec.TLP, "TLP_", a.tlp, "--tlp")  # type: ignore[assignment]
    g = s.goods.add(
        description=a.description or "",
        hs_code=a.hs or "",
        species=a.species or "",
        ods_substance=a.ods or "",
        basel_code=a.basel or "",
    )
    if a.commodity:
        g.commodity = enum_value(rec.Commodity, "COMMODITY_", a.commodity, "--commodity")  # type: ignore[assignment]
    if a.cites:
        g.cites_appendix = enum_value(rec.CitesAppendix, "CITES_APPENDIX_", a.cites, "--cites")  # type: ignore[assignment]
    if a.quantity:
        g.quantity.CopyFrom(_quantity(a.quantity, "--quantity"))
    if a.value:
        g.declared_value.CopyFrom(_money(a.value, "--value"))
    if a.mode:
        s.conveyance.mode = enum_value(rec.TransportMode, "TRANSPORT_MODE_", a.mode, "--mode")  # type: ignore[assignment]
    s.conveyance.vessel_imo = a.imo or ""
    s.conveyance.vessel_name = a.vessel or ""
    s.conveyance.flight = a.flight or ""
    s.conveyance.container_numbers.extend(a.container or [])
    s.route.origin_country = a.origin_country or ""
    s.route.destination_country = a.destination_country or ""
    s.route.transit_countries.extend(a.transit or [])
    s.parties.extend(_party(p, rec.PARTY_KIND_PERSON, "--person") for p in a.person or [])
    s.parties.extend(_party(c, rec.PARTY_KIND_COMPANY, "--company") for c in a.company or [])
    return s


_SUBJECT_FLAGS = (
    ("vessel", rec.SUBJECT_KIND_VESSEL),
    ("container", rec.SUBJECT_KIND_CONTAINER),
    ("company", rec.SUBJECT_KIND_COMPANY),
    ("person", rec.SUBJECT_KIND_PERSON),
    ("permit_series", rec.SUBJECT_KIND_PERMIT_SERIES),
    ("route", rec.SUBJECT_KIND_ROUTE),
    ("flight", rec.SUBJECT_KIND_FLIGHT),
)


def alert_from_flags(a: SimpleNamespace) -> rec.Alert:
    alert = rec.Alert(
        title=a.title or "",
        valid_until=a.valid_until or "",
        notes=a.notes or "",
        recommended_action=a.action or "",
        operation_code=a.operation or "",
    )
    for flag, kind in _SUBJECT_FLAGS:
        alert.subjects.extend(rec.AlertSubject(kind=kind, value=v) for v in getattr(a, flag) or [])
    alert.indicators.extend(a.indicator or [])
    if a.commodity:
        alert.commodity = enum_value(rec.Commodity, "COMMODITY_", a.commodity, "--commodity")  # type: ignore[assignment]
    alert.priority = enum_value(rec.Priority, "PRIORITY_", a.priority, "--priority")  # type: ignore[assignment]
    alert.tlp = enum_value(rec.TLP, "TLP_", a.tlp, "--tlp")  # type: ignore[assignment]
    return alert
