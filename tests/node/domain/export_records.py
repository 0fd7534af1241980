"""Stored records for the export tests: seizures and alerts as a search hit
carries them, in any view and status (`mixed()` has one of each case)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from federation.views import project
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.domain import samples

RECORDED = datetime(2026, 11, 21, 9, 30, 15, 250000, tzinfo=UTC)
DAY = date(2026, 11, 20)


def stored(
    body: rec.RecordBody,
    record_id: str,
    *,
    origin: str = "KE",
    view: epb.View.ValueType = epb.VIEW_FULL,
    status: npb.RecordStatus.ValueType = npb.RECORD_STATUS_ACTIVE,
    superseded_by: str = "",
    at: datetime = RECORDED,
) -> npb.StoredRecord:
    """A search hit's record as the node hands it out, `body` seen in `view`."""
    seen = project(body, view)
    which = seen.WhichOneof("body")
    kinds = {"seizure": epb.RECORD_KIND_SEIZURE, "alert": epb.RECORD_KIND_ALERT}
    created = Timestamp()
    created.FromDatetime(at)
    r = npb.StoredRecord(
        record_id=record_id,
        kind=kinds.get(str(which), epb.RECORD_KIND_CORRECTION),
        origin=origin,
        audience=f"{origin.lower()}-national",
        view=view,
        created_at=created,
        status=status,
        superseded_by=superseded_by,
    )
    getattr(r, str(which)).CopyFrom(getattr(seen, str(which)))
    return r


def seizure(s: rec.Seizure, record_id: str, **kw: Any) -> npb.StoredRecord:
    return stored(rec.RecordBody(seizure=s), record_id, **kw)


def alert(a: rec.Alert, record_id: str, **kw: Any) -> npb.StoredRecord:
    return stored(rec.RecordBody(alert=a), record_id, **kw)


def mixed() -> list[npb.StoredRecord]:
    """Seizures and alerts in every view, retracted and corrected ones, every TLP."""
    ivory = samples.ivory_seizure(DAY)
    strict = samples.hcfc_seizure(DAY)
    strict.tlp = rec.TLP_AMBER_STRICT
    strict.goods[0].co2e_tonnes = 24616.0
    red = samples.rosewood_seizure(DAY)
    red.tlp = rec.TLP_RED
    clear = samples.permit_alert(DAY + timedelta(days=40))
    clear.tlp = rec.TLP_CLEAR
    fixed = samples.rosewood_seizure(DAY)
    fixed.goods[0].hs_code = "440799"
    fixed.parties.add(kind=rec.PARTY_KIND_COMPANY, role=rec.PARTY_ROLE_OWNER, name="Bois d'Ébène SARL")
    correction = rec.Correction(target_record_id="old-rosewood", reason="HS code was 4407.99", seizure=fixed)
    air = samples.hcfc_seizure(DAY)
    air.conveyance.CopyFrom(
        rec.Conveyance(mode=rec.TRANSPORT_MODE_AIR, flight="KQ310", vehicle_registration="KCA 123A")
    )
    air.documents.air_waybill = "706-12345675"
    air.parties[0].personal_data = True  # a sole trader
    revoked = seizure(air, "air", origin="NL")
    revoked.origin_revoked = True
    return [
        revoked,
        seizure(ivory, "ivory-full"),
        seizure(ivory, "ivory-redacted", origin="TZ", view=epb.VIEW_REDACTED),
        seizure(ivory, "ivory-statistical", origin="UG", view=epb.VIEW_STATISTICAL),
        seizure(strict, "hcfc", status=npb.RECORD_STATUS_RETRACTED, superseded_by="retraction-1"),
        seizure(red, "rosewood"),
        stored(rec.RecordBody(correction=correction), "rosewood-fixed"),
        alert(samples.vessel_alert(DAY + timedelta(days=30)), "vessel"),
        alert(samples.vessel_alert(DAY + timedelta(days=30)), "vessel-stat", view=epb.VIEW_STATISTICAL),
        alert(clear, "permits", status=npb.RECORD_STATUS_RETRACTED),
    ]
