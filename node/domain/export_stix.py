"""Records as a STIX 2.1 bundle (`gcn export stix`; docs/exports.md has the table).

A seizure is an `incident` with the OASIS Incident Core extension; its place
and the countries of its route are `location`s, its parties `identity`s, each
tied to the incident by a `related-to` relationship. An alert is an
`indicator`: its subjects make the STIX pattern (custom `x-gcn-*` observable
types), `valid_from` is when it was recorded and `valid_until` the day after
its last day in force. The TLP is the OASIS TLP 2.0 marking definition of the
level (AMBER+STRICT included). What STIX has no property for travels in
`x_gcn_*` properties, declared by one toplevel-property extension definition
(`GCN_EXTENSION_ID`). A retracted record is exported `revoked: true`.

Ids are UUIDv5 of the origin and record id (and the part), so exporting the
same records again gives the same bundle, byte for byte; nothing here reads
the clock. Only what the records carry, in the view they are in, is exported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from stix2.v21 import (
    Bundle,
    ExtensionDefinition,
    Identity,
    Incident,
    Indicator,
    Location,
    MarkingDefinition,
    Relationship,
)

from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.domain.export_common import (
    TLP_LABELS,
    Exported,
    exported,
    short,
    status_name,
    view_name,
)
from node.domain.stix_terms import (
    EPOCH,
    GCN_EXTENSION_ID,
    GCN_IDENTITY_ID,
    GCN_PROPERTIES,
    INCIDENT_CORE_ID,
    PARTY_CLASS,
    SUBJECT_PATTERNS,
    TLP2_CREATED,
    TLP2_EXTENSION_ID,
    TLP2_MARKINGS,
    stix_id,
)


def _gcn_objects() -> list[Any]:
    me = Identity(
        id=GCN_IDENTITY_ID,
        created=EPOCH,
        modified=EPOCH,
        name="Green Customs intelligence network (gcn)",
        description="The software that exported these objects; it defines the x_gcn_* properties.",
        identity_class="system",
    )
    extension = ExtensionDefinition(
        id=GCN_EXTENSION_ID,
        created_by_ref=GCN_IDENTITY_ID,
        created=EPOCH,
        modified=EPOCH,
        name="gcn seizure and alert properties",
        description="Properties of Green Customs seizures and alerts that STIX 2.1 has no property for.",
        schema="docs/exports.md of the gcn project: the x_gcn_* properties, their types and values",
        version="1.0.0",
        extension_types=["toplevel-property-extension"],
        extension_properties=list(GCN_PROPERTIES),
    )
    return [me, extension]


def tlp_marking(tlp: int) -> MarkingDefinition:
    """The OASIS TLP 2.0 marking definition of `tlp`."""
    marking_id, level = TLP2_MARKINGS[tlp]
    return MarkingDefinition(
        id=marking_id,
        created=TLP2_CREATED,
        name=TLP_LABELS[tlp],
        extensions={TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": level}},
    )


def _when(r: npb.StoredRecord) -> datetime:
    return r.created_at.ToDatetime(tzinfo=UTC) if r.HasField("created_at") else EPOCH


def _drop_empty(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if v not in ("", None, [], {}, False, 0)}


def _common(e: Exported, object_id: str) -> dict[str, Any]:
    """What every object of one record carries: id, times, author, marking, the extension."""
    r = e.record
    props: dict[str, Any] = {
        "id": object_id,
        "created": _when(r),
        "modified": _when(r),
        "created_by_ref": stix_id("identity", "node", r.origin),
        "extensions": {GCN_EXTENSION_ID: {"extension_type": "toplevel-property-extension"}},
        "allow_custom": True,
    }
    if e.tlp in TLP2_MARKINGS:
        props["object_marking_refs"] = [TLP2_MARKINGS[e.tlp][0]]
    return props


def _record_props(e: Exported) -> dict[str, Any]:
    r = e.record
    return _drop_empty(
        {
            "x_gcn_record_id": r.record_id,
            "x_gcn_origin": r.origin,
            "x_gcn_audience": r.audience,
            "x_gcn_view": view_name(r.view),
            "x_gcn_status": status_name(r.status),
            "x_gcn_superseded_by": r.superseded_by,
            "x_gcn_corrects": e.corrects,
            "x_gcn_correction_reason": e.correction_reason,
            "x_gcn_origin_revoked": r.origin_revoked,
        }
    )


def goods_dict(g: rec.GoodsItem) -> dict[str, Any]:
    """One goods item as the `x_gcn_goods` entry (empty fields left out)."""
    out = _drop_empty(
        {
            "commodity": short(rec.Commodity, g.commodity, "COMMODITY_"),
            "description": g.description,
            "hs_code": g.hs_code,
            "species": g.species,
            "cites_appendix": short(rec.CitesAppendix, g.cites_appendix, "CITES_APPENDIX_"),
            "ods_substance": g.ods_substance,
            "basel_code": g.basel_code,
            "co2e_tonnes": g.co2e_tonnes,
        }
    )
    if g.HasField("quantity"):
        out["quantity"] = {"value": g.quantity.value, "unit": short(rec.Unit, g.quantity.unit, "UNIT_")}
    if g.HasField("declared_value"):
        out["declared_value"] = {"amount": g.declared_value.amount, "currency": g.declared_value.currency}
    return out


def _goods_line(g: rec.GoodsItem) -> str:
    what = g.description or short(rec.Commodity, g.commodity, "COMMODITY_") or "goods"
    amount = (
        f"{g.quantity.value:g} {short(rec.Unit, g.quantity.unit, 'UNIT_')} " if g.HasField("quantity") else ""
    )
    detail = ", ".join(x for x in (g.species, f"HS {g.hs_code}" if g.hs_code else "", g.ods_substance) if x)
    return f"{amount}{what}" + (f" ({detail})" if detail else "")


def _seizure_name(s: rec.Seizure) -> str:
    commodities = sorted({short(rec.Commodity, g.commodity, "COMMODITY_") for g in s.goods} - {""})
    where = s.place.port_locode or s.place.country
    name = f"Seizure of {', '.join(commodities) or 'goods'}"
    if where:
        name += f" at {where}"
    return name + (f" on {s.incident_date}" if s.incident_date else "")


def _sentences(parts: list[str]) -> str:
    """'a', 'b.' → 'a. b.': each part one sentence, ending in one full stop."""
    return " ".join(p if p.endswith((".", "!", "?")) else f"{p}." for p in parts)


def _seizure_description(s: rec.Seizure) -> str:
    parts = ["; ".join(_goods_line(g) for g in s.goods) or "No goods listed in this view"]
    if s.concealment:
        parts.append(f"Concealment: {s.concealment}")
    if s.notes:
        parts.append(f"Notes: {s.notes}")
    return _sentences(parts)


def _seizure_props(s: rec.Seizure) -> dict[str, Any]:
    c, d = s.conveyance, s.documents
    permits = [
        _drop_empty(
            {
                "type": short(rec.PermitType, p.type, "PERMIT_TYPE_"),
                "number": p.number,
                "issuing_country": p.issuing_country,
                "forged": p.forged,
            }
        )
        for p in d.permits
    ]
    return _drop_empty(
        {
            "x_gcn_incident_date": s.incident_date,
            "x_gcn_direction": short(rec.Direction, s.direction, "DIRECTION_"),
            "x_gcn_detection_method": short(rec.DetectionMethod, s.detection_method, "DETECTION_METHOD_"),
            "x_gcn_operation_code": s.operation_code,
            "x_gcn_concealment": s.concealment,
            "x_gcn_notes": s.notes,
            "x_gcn_goods": [goods_dict(g) for g in s.goods],
            "x_gcn_transport_mode": short(rec.TransportMode, c.mode, "TRANSPORT_MODE_"),
            "x_gcn_vessel_imo": c.vessel_imo,
            "x_gcn_vessel_name": c.vessel_name,
            "x_gcn_flight": c.flight,
            "x_gcn_vehicle_registration": c.vehicle_registration,
            "x_gcn_container_numbers": list(c.container_numbers),
            "x_gcn_bill_of_lading": d.bill_of_lading,
            "x_gcn_air_waybill": d.air_waybill,
            "x_gcn_permits": permits,
        }
    )


def _places(s: rec.Seizure) -> list[tuple[str, int, str, str, str]]:
    """(role, sequence, country, locode, description) of the seizure's place and route."""
    out: list[tuple[str, int, str, str, str]] = []
    p = s.place
    if p.port_locode or p.country:
        out.append(("seizure", 0, p.country or p.port_locode[:2], p.port_locode, p.description))
    route = s.route
    for role, country in (("origin", route.origin_country), ("export", route.export_country)):
        if country:
            out.append((role, 0, country, "", ""))
    out += [("transit", i, country, "", "") for i, country in enumerate(route.transit_countries)]
    if route.destination_country:
        out.append(("destination", 0, route.destination_country, "", ""))
    return out


def _related(e: Exported, source: str, target: str, key: str) -> Relationship:
    base = _common(e, stix_id("relationship", e.record.origin, e.record.record_id, key))
    return Relationship(relationship_type="related-to", source_ref=source, target_ref=target, **base)


def incident_objects(e: Exported) -> list[Any]:
    """The incident of a seizure, with its locations, identities and relationships."""
    assert e.seizure is not None
    s, r = e.seizure, e.record
    incident_id = stix_id("incident", r.origin, r.record_id)
    retracted = r.status == npb.RECORD_STATUS_RETRACTED
    core = _drop_empty(
        {
            "extension_type": "property-extension",
            "determination": "blocked",
            "investigation_status": "closed" if retracted else "open",
            "detection_methods": [
                short(rec.DetectionMethod, s.detection_method, "DETECTION_METHOD_") or "unknown"
            ],
        }
    )
    base = _common(e, incident_id)
    base["extensions"][INCIDENT_CORE_ID] = core
    incident = Incident(
        name=_seizure_name(s),
        description=_seizure_description(s),
        revoked=retracted,
        **base,
        **_record_props(e),
        **_seizure_props(s),
    )
    out: list[Any] = [incident]
    for role, seq, country, locode, description in _places(s):
        key = f"place/{role}/{seq}"
        loc = Location(
            name=locode or country,
            country=country,
            **_drop_empty({"description": description, "x_gcn_locode": locode, "x_gcn_sequence": seq}),
            x_gcn_place_role=role,
            **_common(e, stix_id("location", r.origin, r.record_id, key)),
        )
        out += [loc, _related(e, incident_id, loc.id, key)]
    for i, party in enumerate(s.parties):
        key = f"party/{i}"
        who = Identity(
            name=party.name or "(name not in this view)",
            identity_class=PARTY_CLASS.get(party.kind, "unknown"),
            **_drop_empty(
                {
                    "roles": [short(rec.PartyRole, party.role, "PARTY_ROLE_")] if party.role else [],
                    "x_gcn_country": party.country,
                    "x_gcn_identifier": party.identifier,
                    "x_gcn_personal_data": party.personal_data,
                }
            ),
            x_gcn_sequence=i,
            **_common(e, stix_id("identity", r.origin, r.record_id, key)),
        )
        out += [who, _related(e, incident_id, who.id, key)]
    return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def alert_pattern(e: Exported) -> str:
    """The STIX pattern of an alert: any of its subjects (custom observable types);
    with none in this view, its commodity; with neither, its record id."""
    assert e.alert is not None
    a = e.alert
    terms = [
        SUBJECT_PATTERNS[x.kind].format(_escape(x.value)) for x in a.subjects if x.kind in SUBJECT_PATTERNS
    ]
    if not terms and a.commodity:
        terms = [f"[x-gcn-goods:commodity = '{short(rec.Commodity, a.commodity, 'COMMODITY_')}']"]
    return " OR ".join(terms) or f"[x-gcn-alert:record_id = '{_escape(e.record.record_id)}']"


def _alert_description(a: rec.Alert) -> str:
    parts = [f"Risk indicators: {'; '.join(a.indicators)}"] if a.indicators else []
    if a.recommended_action:
        parts.append(f"Recommended action: {a.recommended_action}")
    if a.notes:
        parts.append(f"Notes: {a.notes}")
    return _sentences(parts) if parts else "An alert (its text is not in this view)."


def indicator_object(e: Exported) -> Indicator:
    assert e.alert is not None
    a, r = e.alert, e.record
    base = _common(e, stix_id("indicator", r.origin, r.record_id))
    until: dict[str, Any] = {}
    try:
        last_day = datetime.fromisoformat(a.valid_until).replace(tzinfo=UTC) if a.valid_until else None
    except ValueError:
        last_day = None
    if last_day is not None and last_day + timedelta(days=1) > base["created"]:
        until["valid_until"] = last_day + timedelta(days=1)
    commodity = short(rec.Commodity, a.commodity, "COMMODITY_")
    name = a.title or f"Alert on {commodity or 'goods'} ({view_name(r.view)} view)"
    props = _drop_empty(
        {
            "x_gcn_subjects": [
                {"kind": short(rec.SubjectKind, x.kind, "SUBJECT_KIND_"), "value": x.value}
                for x in a.subjects
            ],
            "x_gcn_indicators": list(a.indicators),
            "x_gcn_commodity": commodity,
            "x_gcn_priority": short(rec.Priority, a.priority, "PRIORITY_"),
            "x_gcn_recommended_action": a.recommended_action,
            "x_gcn_operation_code": a.operation_code,
            "x_gcn_valid_until": a.valid_until,
            "x_gcn_notes": a.notes,
        }
    )
    return Indicator(
        name=name,
        description=_alert_description(a),
        pattern=alert_pattern(e),
        pattern_type="stix",
        valid_from=base["created"],
        revoked=r.status == npb.RECORD_STATUS_RETRACTED,
        **until,
        **base,
        **_record_props(e),
        **props,
    )


def _node_identity(origin: str, names: Mapping[str, str]) -> Identity:
    return Identity(
        id=stix_id("identity", "node", origin),
        created=EPOCH,
        modified=EPOCH,
        created_by_ref=GCN_IDENTITY_ID,
        name=names.get(origin) or f"gcn node {origin}",
        identity_class="organization",
        sectors=["government-national"],
        x_gcn_node_id=origin,
        extensions={GCN_EXTENSION_ID: {"extension_type": "toplevel-property-extension"}},
        allow_custom=True,
    )


def stix_bundle(records: Iterable[npb.StoredRecord], node_names: Mapping[str, str] | None = None) -> Bundle:
    """The records (seizures, alerts, corrections standing for them) as one bundle:
    our identity and extension definition, the TLP markings used, one identity per
    origin node (named from `node_names` where known), then each record's objects
    in the order given. Records that are neither seizure nor alert are skipped."""
    names = node_names or {}
    items = [e for e in (exported(r) for r in records) if e is not None]
    tlps = sorted({e.tlp for e in items if e.tlp in TLP2_MARKINGS})
    origins = sorted({e.record.origin for e in items})
    objects: list[Any] = _gcn_objects() + [tlp_marking(t) for t in tlps]
    objects += [_node_identity(o, names) for o in origins]
    for e in items:
        objects += incident_objects(e) if e.seizure is not None else [indicator_object(e)]
    bundle_id = stix_id("bundle", *sorted(str(o.id) for o in objects))
    return Bundle(objects=objects, id=bundle_id, allow_custom=True)


def stix_json(records: Iterable[npb.StoredRecord], node_names: Mapping[str, str] | None = None) -> str:
    """`stix_bundle` as JSON text (indented, keys sorted, UTF-8 kept), ending in a
    newline. Sorted keys make it byte-stable: stix2's own pretty order is not."""
    tree = json.loads(str(stix_bundle(records, node_names).serialize()))
    return json.dumps(tree, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
