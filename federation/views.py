"""Views: what of a record each share carries.

`project(body, view)` returns a new `RecordBody` and never mutates its input.

- FULL: the record as recorded.
- REDACTED: no persons, no personal identifiers, no free-text notes (the intelligence
  stays: goods, conveyance, documents, route, companies, indicators).
- STATISTICAL: what the CEN statistics need: commodity, species, HS code,
  quantity, countries, port, month.

REDACTED and STATISTICAL are allow-lists (`REDACTED_SEIZURE`, … below): each
names the fields it keeps, so a field added to the proto later is left out of
those views until someone decides otherwise. Filters and truncations the tables
cannot say (which parties, which subjects, dates to the month) are in the
functions next to them. `docs/policy.md` has the same tables in prose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf.message import Message

from federation.errors import PolicyError
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec

# A field name → None (keep the value whole) or the spec of the sub-message's kept fields.
Spec = Mapping[str, "Spec | None"]
_M = TypeVar("_M", bound=Message)

RETRACTED_BY_ORIGIN = "retracted by origin"
CORRECTED_BY_ORIGIN = "corrected by origin"

_PLACE: Spec = {"port_locode": None, "country": None}  # not `description` (free text)
_ROUTE: Spec = {
    "origin_country": None,
    "export_country": None,
    "transit_countries": None,
    "destination_country": None,
}
_COMPANY: Spec = {"kind": None, "role": None, "name": None, "country": None}  # not `identifier`

REDACTED_SEIZURE: Spec = {
    "incident_date": None,
    "place": _PLACE,
    "direction": None,
    "detection_method": None,
    "goods": {
        "commodity": None,
        "description": None,
        "hs_code": None,
        "species": None,
        "cites_appendix": None,
        "ods_substance": None,
        "basel_code": None,
        "quantity": None,
        "declared_value": None,
        "co2e_tonnes": None,
    },
    # not `vehicle_registration`: a private car or truck identifies its owner
    "conveyance": {
        "mode": None,
        "vessel_imo": None,
        "vessel_name": None,
        "flight": None,
        "container_numbers": None,
    },
    "documents": {
        "bill_of_lading": None,
        "air_waybill": None,
        "permits": {"type": None, "number": None, "issuing_country": None, "forged": None},
    },
    "route": _ROUTE,
    # `parties`: companies only, see _redacted_seizure
    "operation_code": None,
    "tlp": None,
    # not `concealment`, not `notes` (free text)
}

REDACTED_ALERT: Spec = {
    "title": None,
    # `subjects`: all but persons, see _redacted_alert
    "indicators": None,
    "commodity": None,
    "priority": None,
    "valid_until": None,
    "recommended_action": None,
    "operation_code": None,
    "tlp": None,
    # not `notes`
}

STATISTICAL_SEIZURE: Spec = {
    "incident_date": None,  # truncated to the month
    "place": _PLACE,
    "direction": None,
    "detection_method": None,
    "goods": {
        "commodity": None,
        "hs_code": None,
        "species": None,
        "cites_appendix": None,
        "ods_substance": None,
        "basel_code": None,
        "quantity": None,
        "co2e_tonnes": None,
    },
    "route": _ROUTE,
    "operation_code": None,
    "tlp": None,
}

STATISTICAL_ALERT: Spec = {
    # `subjects`: routes only, see _statistical_alert
    "commodity": None,
    "priority": None,
    "valid_until": None,  # truncated to the month
    "operation_code": None,
    "tlp": None,
}

_DAY_SECONDS = 86_400


def keep(source: Message, target: Message, spec: Spec) -> None:
    """Copy into `target` only the fields of `source` that `spec` names."""
    for name, sub in spec.items():
        field = source.DESCRIPTOR.fields_by_name[name]
        value: Any = getattr(source, name)
        if field.is_repeated:
            if sub is None:
                getattr(target, name).extend(value)
            else:
                for item in value:
                    keep(item, getattr(target, name).add(), sub)
        elif field.message_type is not None:
            if source.HasField(name):
                if sub is None:
                    getattr(target, name).CopyFrom(value)
                else:
                    keep(value, getattr(target, name), sub)
        else:
            setattr(target, name, value)


def _kept(source: _M, spec: Spec) -> _M:
    target = type(source)()
    keep(source, target, spec)
    return target


def month_of(iso_date: str) -> str:
    """ "2026-11-17" → "2026-11-01"; anything that is not a date is dropped."""
    if len(iso_date) >= 7 and iso_date[4] == "-" and iso_date[:4].isdigit() and iso_date[5:7].isdigit():
        return f"{iso_date[:7]}-01"
    return ""


def is_personal(party: rec.Party) -> bool:
    return party.kind == rec.PARTY_KIND_PERSON or party.personal_data


def _redacted_seizure(s: rec.Seizure) -> rec.Seizure:
    out = _kept(s, REDACTED_SEIZURE)
    for party in s.parties:
        if not is_personal(party):
            keep(party, out.parties.add(), _COMPANY)
    return out


def _redacted_alert(a: rec.Alert) -> rec.Alert:
    out = _kept(a, REDACTED_ALERT)
    out.subjects.extend(x for x in a.subjects if x.kind != rec.SUBJECT_KIND_PERSON)
    return out


def _statistical_seizure(s: rec.Seizure) -> rec.Seizure:
    out = _kept(s, STATISTICAL_SEIZURE)
    out.incident_date = month_of(s.incident_date)
    return out


def _statistical_alert(a: rec.Alert) -> rec.Alert:
    out = _kept(a, STATISTICAL_ALERT)
    out.subjects.extend(x for x in a.subjects if x.kind == rec.SUBJECT_KIND_ROUTE)
    out.valid_until = month_of(a.valid_until)
    return out


_SEIZURE = {epb.VIEW_REDACTED: _redacted_seizure, epb.VIEW_STATISTICAL: _statistical_seizure}
_ALERT = {epb.VIEW_REDACTED: _redacted_alert, epb.VIEW_STATISTICAL: _statistical_alert}


def _project_correction(c: rec.Correction, view: epb.View.ValueType) -> rec.Correction:
    out = rec.Correction(target_record_id=c.target_record_id, reason=CORRECTED_BY_ORIGIN)
    if c.HasField("seizure"):
        out.seizure.CopyFrom(_SEIZURE[view](c.seizure))
    elif c.HasField("alert"):
        out.alert.CopyFrom(_ALERT[view](c.alert))
    return out


def _project_body(body: rec.RecordBody, view: epb.View.ValueType) -> rec.RecordBody:
    which = body.WhichOneof("body")
    if which == "seizure":
        return rec.RecordBody(seizure=_SEIZURE[view](body.seizure))
    if which == "alert":
        return rec.RecordBody(alert=_ALERT[view](body.alert))
    if which == "correction":
        return rec.RecordBody(correction=_project_correction(body.correction, view))
    if which == "retraction":
        target = body.retraction.target_record_id
        return rec.RecordBody(retraction=rec.Retraction(target_record_id=target, reason=RETRACTED_BY_ORIGIN))
    return rec.RecordBody()


def project(body: rec.RecordBody, view: epb.View.ValueType) -> rec.RecordBody:
    """The record as `view` shows it: a new message; `body` is left as it was."""
    if view == epb.VIEW_FULL:
        out = rec.RecordBody()
        out.CopyFrom(body)
        return out
    if view not in (epb.VIEW_REDACTED, epb.VIEW_STATISTICAL):
        raise PolicyError(f"view {view} is not one of full, redacted, statistical")
    out = _project_body(body, view)
    if body.HasField("recorded_at"):
        out.recorded_at.CopyFrom(body.recorded_at)
        if view == epb.VIEW_STATISTICAL:
            out.recorded_at.seconds -= out.recorded_at.seconds % _DAY_SECONDS
            out.recorded_at.nanos = 0
    return out
