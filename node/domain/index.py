"""The queryable index of the records this node can read.

`index_record` turns one opened record envelope into a `records` row and its
`record_terms`; retractions and corrections also change the status of the
record they target (when it is here; if it arrives later, `index_record` finds
the retraction first and marks it at once). The same code indexes the node's
own records and those it receives, so search behaves the same for both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crypto import envelope as env_crypto
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.domain import normalise, species_names
from node.storage.bulk_insert import RowInserter
from node.storage.models import RECORD_TERMS, RECORDS, RecordRow

# Term fields (the `field` column of record_terms).
CONTAINER, IMO, FLIGHT, HS, SPECIES, COMPANY, PERSON = (
    "container",
    "imo",
    "flight",
    "hs",
    "species",
    "company",
    "person",
)
COUNTRY, COMMODITY, OPERATION, PORT, PERMIT, TEXT = (
    "country",
    "commodity",
    "operation",
    "port",
    "permit",
    "text",
)
# Search words (`node.domain.normalise`): one term per distinct word.
COMPANY_WORD, PERSON_WORD, VESSEL_WORD, SPECIES_WORD, TEXT_WORD = (
    "company_w",
    "person_w",
    "vessel_w",
    "species_w",
    "text_w",
)
# A country in one role: "origin:MG", "transit:KE", "destination:CN",
# "export:MG", "seizing:KE" (where the seizure was made), "party:KE".
COUNTRY_ROLE = "country_role"
ORIGIN, EXPORT, TRANSIT, DESTINATION, SEIZING, PARTY = (
    "origin",
    "export",
    "transit",
    "destination",
    "seizing",
    "party",
)
KIND = "kind"  # "seizure" or "alert": what a record (or a correction) is
VALID_UNTIL = "until"  # an alert's valid_until, ISO date (compares as text)
MAX_TERM = 256
# The terms `terms_of` yields changed: a node whose index was built by an
# older version re-derives its terms at start-up (`node.domain.reindex`).
INDEX_VERSION = 2

_RECORD_INSERT = RowInserter(
    RECORDS,
    (
        "envelope_id",
        "record_id",
        "kind",
        "origin",
        "audience",
        "view",
        "created_at",
        "event_date",
        "event_month",
        "status",
        "superseded_by",
        "tlp",
        "target_record_id",
    ),
)
_TERM_INSERT = RowInserter(RECORD_TERMS, ("envelope_id", "audience", "field", "value"))


def _norm(value: str) -> str:
    return " ".join(value.split()).casefold()[:MAX_TERM]


def operation_base(code: str) -> str:
    """ "DEMETER-IX" and "DEMETER 2026" are both operation DEMETER."""
    return code.replace("-", " ").split(" ")[0].upper() if code else ""


def _words(field: str, *texts: str) -> Iterator[tuple[str, str]]:
    return ((field, w) for w in normalise.words(" ".join(texts)))


def _seizure_terms(s: rec.Seizure) -> Iterator[tuple[str, str]]:
    yield COUNTRY, s.place.country
    if s.place.country:
        yield COUNTRY_ROLE, f"{SEIZING}:{s.place.country}"
    if s.place.port_locode:
        yield PORT, s.place.port_locode
    for role, countries in (
        (ORIGIN, (s.route.origin_country,)),
        (EXPORT, (s.route.export_country,)),
        (DESTINATION, (s.route.destination_country,)),
        (TRANSIT, tuple(s.route.transit_countries)),
    ):
        for c in countries:
            if c:
                yield COUNTRY, c
                yield COUNTRY_ROLE, f"{role}:{c}"
    for g in s.goods:
        yield COMMODITY, rec.Commodity.Name(g.commodity)
        if g.hs_code:
            yield HS, g.hs_code
        if g.species:
            yield SPECIES, _norm(g.species)
            yield from _words(SPECIES_WORD, g.species, *species_names.common_names(g.species))
    yield from ((CONTAINER, c) for c in s.conveyance.container_numbers)
    if s.conveyance.vessel_imo:
        yield IMO, s.conveyance.vessel_imo
    if s.conveyance.vessel_name:
        yield from _words(VESSEL_WORD, s.conveyance.vessel_name)
    if s.conveyance.flight:
        yield FLIGHT, s.conveyance.flight
    yield from ((PERMIT, _norm(p.number)) for p in s.documents.permits)
    for p in s.parties:
        person = p.kind == rec.PARTY_KIND_PERSON
        yield (PERSON if person else COMPANY), _norm(p.name)
        yield from _words(PERSON_WORD if person else COMPANY_WORD, p.name)
        if p.country:
            yield COUNTRY, p.country
            yield COUNTRY_ROLE, f"{PARTY}:{p.country}"
    if s.operation_code:
        yield OPERATION, operation_base(s.operation_code)
    yield from _words(
        TEXT_WORD,
        s.place.description,
        *(g.description for g in s.goods),
        s.concealment,
        s.notes,
    )


_SUBJECT_FIELDS = {
    rec.SUBJECT_KIND_VESSEL: IMO,
    rec.SUBJECT_KIND_CONTAINER: CONTAINER,
    rec.SUBJECT_KIND_COMPANY: COMPANY,
    rec.SUBJECT_KIND_PERSON: PERSON,
    rec.SUBJECT_KIND_PERMIT_SERIES: PERMIT,
    rec.SUBJECT_KIND_FLIGHT: FLIGHT,
}


def _alert_terms(a: rec.Alert) -> Iterator[tuple[str, str]]:
    for subject in a.subjects:
        if subject.kind == rec.SUBJECT_KIND_ROUTE:
            yield from ((COUNTRY, c) for c in subject.value.split(">"))
        elif subject.kind in _SUBJECT_FIELDS:
            field = _SUBJECT_FIELDS[subject.kind]
            yield field, subject.value if field in (IMO, CONTAINER, FLIGHT) else _norm(subject.value)
            if field in (COMPANY, PERSON):
                yield from _words(COMPANY_WORD if field == COMPANY else PERSON_WORD, subject.value)
    yield COMMODITY, rec.Commodity.Name(a.commodity)
    if a.operation_code:
        yield OPERATION, operation_base(a.operation_code)
    if a.valid_until:
        yield VALID_UNTIL, a.valid_until
    yield from _words(TEXT_WORD, a.title, *a.indicators, a.recommended_action, a.notes)


def terms_of(body: rec.RecordBody) -> set[tuple[str, str]]:
    which = body.WhichOneof("body")
    if which == "seizure":
        terms: Iterable[tuple[str, str]] = _seizure_terms(body.seizure)
    elif which == "alert":
        terms = _alert_terms(body.alert)
    elif which == "correction":
        which = body.correction.WhichOneof("replacement")
        terms = (
            _seizure_terms(body.correction.seizure)
            if which == "seizure"
            else _alert_terms(body.correction.alert)
        )
    else:
        terms = ()
    out = {(f, v) for f, v in terms if v}
    if which in ("seizure", "alert"):
        out.add((KIND, which))
    return out


def event_date(body: rec.RecordBody, created_at: datetime) -> date:
    s = (
        body.seizure
        if body.HasField("seizure")
        else (body.correction.seizure if body.correction.HasField("seizure") else None)
    )
    if s is not None and s.incident_date:
        return date.fromisoformat(s.incident_date)
    return created_at.date()


def tlp_of(body: rec.RecordBody) -> int:
    for msg in (body.seizure, body.alert, body.correction.seizure, body.correction.alert):
        if msg.tlp:
            return msg.tlp
    return rec.TLP_UNSPECIFIED


_KIND_OF_BODY = {
    "seizure": epb.RECORD_KIND_SEIZURE,
    "alert": epb.RECORD_KIND_ALERT,
    "retraction": epb.RECORD_KIND_RETRACTION,
    "correction": epb.RECORD_KIND_CORRECTION,
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def record_header(header: epb.EnvelopeHeader, body: rec.RecordBody) -> epb.EnvelopeHeader:
    """The header as the record sees it: a version 1 header as it is; for
    version 2, the wire header with the record's id, kind and view taken from
    inside the ciphertext. Raises ValueError when a version 2 body lacks them
    (the origin sealed something no node can index)."""
    if not env_crypto.is_sealed(header):
        return header
    which = body.WhichOneof("body")
    if which is None or not _UUID.fullmatch(body.record_id) or body.view == epb.VIEW_UNSPECIFIED:
        raise ValueError("the sealed body lacks its record id, kind or view")
    out = epb.EnvelopeHeader()
    out.CopyFrom(header)
    out.record_id, out.kind, out.view = body.record_id, _KIND_OF_BODY[which], body.view
    return out


@dataclass(frozen=True)
class Opened:
    """A record envelope in the log, opened: what `index_records` indexes.
    `header` is the record's view of it (`record_header`)."""

    envelope_id: int
    header: epb.EnvelopeHeader
    body: rec.RecordBody
    created_at: datetime

    @classmethod
    def of(
        cls, envelope_id: int, wire: epb.EnvelopeHeader, body: rec.RecordBody, created_at: datetime
    ) -> Opened:
        return cls(envelope_id, record_header(wire, body), body, created_at)


def unindexable(o: Opened) -> str | None:
    """Why this opened record cannot be indexed (a body another node sealed that
    breaks the record rules: a date that is not a date, an enum value no version
    knows, a target that is not a record id), or None. A signed, well-formed
    envelope with such a body is kept as ciphertext; only its index is skipped."""
    body = o.body
    try:
        event_date(body, o.created_at)
        terms_of(body)
        tlp_of(body)
    except (ValueError, TypeError, OverflowError) as e:
        return f"{type(e).__name__}: {e}"[:200]
    target = _target(body)
    if target is not None and not _UUID.fullmatch(target):
        return "retraction/correction target is not a record id"
    if len(o.header.record_id) > 36:
        return "record id is not a UUID"
    return None


def index_records(session: Session, opened: list[Opened], *, fresh: bool = False) -> None:
    """Index readable record envelopes (not key messages) in one go. `fresh`:
    records this node just created, which no retraction can target yet."""
    if not opened:
        return
    earlier = {} if fresh else _earlier_superseders(session, opened)
    record_rows: list[tuple[object, ...]] = []
    term_rows: list[tuple[int, str, str, str]] = []
    for o in opened:
        h, body = o.header, o.body
        superseder = earlier.get((h.origin, h.record_id))
        day = event_date(body, o.created_at)
        record_rows.append(
            (
                o.envelope_id,
                h.record_id,
                h.kind,
                h.origin,
                h.audience,
                h.view,
                o.created_at,
                day,
                day.replace(day=1),
                _status_for(superseder[1]) if superseder else npb.RECORD_STATUS_ACTIVE,
                superseder[0] if superseder else None,
                tlp_of(body),
                _target(body),
            )
        )
        envelope_id = o.envelope_id
        term_rows.extend((envelope_id, h.audience, f, v) for f, v in terms_of(body))
    conn = session.connection()
    _RECORD_INSERT.execute(conn, record_rows)
    _TERM_INSERT.execute(conn, term_rows)
    for o in opened:
        target = _target(o.body)
        if target:
            supersede(session, o.header.origin, target, o.header.record_id, o.header.kind)


def _target(body: rec.RecordBody) -> str | None:
    return body.retraction.target_record_id or body.correction.target_record_id or None


def _earlier_superseders(session: Session, opened: list[Opened]) -> dict[tuple[str, str], tuple[str, int]]:
    """Retractions and corrections already here whose target is being indexed now
    (a retraction can arrive before the record it targets)."""
    wanted = {(o.header.origin, o.header.record_id) for o in opened}
    ids = sorted({rid for _, rid in wanted})
    found: dict[tuple[str, str], tuple[str, int]] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(RecordRow.origin, RecordRow.target_record_id, RecordRow.record_id, RecordRow.kind).where(
                RecordRow.target_record_id.in_(ids[start : start + 500])
            )
        )
        for origin, target, record_id, kind in rows:
            if target is not None and (origin, target) in wanted:
                found[(origin, target)] = (record_id, kind)
    return found


def _status_for(kind: int) -> int:
    return npb.RECORD_STATUS_RETRACTED if kind == epb.RECORD_KIND_RETRACTION else npb.RECORD_STATUS_CORRECTED


def supersede(session: Session, origin: str, target: str, by: str, kind: int) -> int:
    """Mark `origin`'s record `target` as retracted or corrected by `by`.
    Only the origin of a record may supersede it."""
    result = session.execute(
        update(RecordRow)
        .where(
            RecordRow.origin == origin,
            RecordRow.record_id == target,
            RecordRow.status == npb.RECORD_STATUS_ACTIVE,
        )
        .values(status=_status_for(kind), superseded_by=by)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
