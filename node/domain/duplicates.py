"""Is a new seizure one this node recorded already? The same day, the same
place (port, or country without a port) and one of the same containers or the
same vessel: what an officer who records a seizure twice (two shifts, a form
sent again after a timeout) produces. The check reads only the node's own
active seizures of that day, then their terms through the (envelope_id,
field, value) index: its cost does not grow with the store."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.domain.index import CONTAINER, COUNTRY_ROLE, IMO, PORT, SEIZING
from node.storage.models import RecordRow, RecordTermRow


def same_seizure(s: Session, origin: str, seizure: rec.Seizure) -> tuple[str, str] | None:
    """(record id, what matched) of an own active seizure this one repeats, or None.
    `seizure` is validated (normalised container and IMO numbers, LOCODE)."""
    keys = [(CONTAINER, c) for c in seizure.conveyance.container_numbers]
    if seizure.conveyance.vessel_imo:
        keys.append((IMO, seizure.conveyance.vessel_imo))
    if not keys:
        return None
    place = (
        (PORT, seizure.place.port_locode)
        if seizure.place.port_locode
        else (COUNTRY_ROLE, f"{SEIZING}:{seizure.place.country}")
    )
    day = date.fromisoformat(seizure.incident_date)
    candidates = s.execute(
        select(RecordRow.envelope_id, RecordRow.record_id).where(
            RecordRow.origin == origin,
            RecordRow.event_date == day,
            RecordRow.kind.in_([epb.RECORD_KIND_SEIZURE, epb.RECORD_KIND_CORRECTION]),
            RecordRow.status == npb.RECORD_STATUS_ACTIVE,
        )
    ).all()
    for envelope_id, record_id in candidates:
        terms: set[tuple[str, str]] = {
            (field, value)
            for field, value in s.execute(
                select(RecordTermRow.field, RecordTermRow.value).where(
                    RecordTermRow.envelope_id == envelope_id,
                    RecordTermRow.field.in_([CONTAINER, IMO, place[0]]),
                )
            )
        }
        if place not in terms:
            continue
        matched = [value for field, value in keys if (field, value) in terms]
        if matched:
            return record_id, matched[0]
    return None
