"""Is a new seizure one this node recorded already? The same day, the same
place (port, or country without a port) and one of the same containers or the
same vessel: what an officer who records a seizure twice (two shifts, a form
sent again after a timeout) produces. The check reads only the node's own
active seizures of that day (the event_date index), then their terms
through the (envelope_id, field, value) index, in one query: its cost does not
grow with the store."""

from __future__ import annotations

from datetime import date

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

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
    same, at_place = aliased(RecordTermRow), aliased(RecordTermRow)
    # The day's own active seizures first (the event_date index), fenced with
    # OFFSET 0 so that no planner starts from a common term instead (a port's
    # every record), then the two term lookups per candidate.
    day_s = (
        select(RecordRow.record_id, RecordRow.envelope_id)
        .where(
            RecordRow.event_date == day,
            RecordRow.origin.op("||")("") == origin,
            RecordRow.kind.in_([epb.RECORD_KIND_SEIZURE, epb.RECORD_KIND_CORRECTION]),
            (RecordRow.status + 0) == npb.RECORD_STATUS_ACTIVE,
        )
        .offset(0)
        .subquery()
    )
    row = s.execute(
        select(day_s.c.record_id, day_s.c.envelope_id)
        .where(
            exists().where(
                at_place.envelope_id == day_s.c.envelope_id,
                at_place.field == place[0],
                at_place.value == place[1],
            ),
            exists().where(
                same.envelope_id == day_s.c.envelope_id,
                same.field.in_(sorted({f for f, _ in keys})),
                same.value.in_(sorted({v for _, v in keys})),
            ),
        )
        .limit(1)
    ).first()
    if row is None:
        return None
    held = {
        (f, v)
        for f, v in s.execute(
            select(RecordTermRow.field, RecordTermRow.value).where(
                RecordTermRow.envelope_id == row[1], RecordTermRow.field.in_([CONTAINER, IMO])
            )
        )
    }
    matched = [v for f, v in keys if (f, v) in held]
    if not matched:  # a container number that is another record's IMO: not the same
        return None
    return row[0], matched[0]
