"""Reading records back: one record by id, or a filtered, paged list.

Bodies are opened from the signed envelopes in the log (never stored
decrypted); the reply carries the envelope too, so a client can verify it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, MutableSequence, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, and_, exists, select
from sqlalchemy.orm import Session

from crypto import envelope as env_crypto
from crypto.errors import CryptoError
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node import index, validation
from node.audience_keys import AudienceKeys
from node.db import Database
from node.errors import NotFoundError, ValidationError
from node.log import as_envelope
from node.logging import get_logger
from node.models import EnvelopeRow, RecordRow, RecordTermRow

log = get_logger(__name__)
DEFAULT_PAGE, MAX_PAGE = 50, 500


@dataclass(frozen=True)
class ListFilter:
    kind: int = 0
    origin: str = ""
    country: str = ""
    operation: str = ""
    commodity: str = ""
    container: str = ""
    imo: str = ""
    hs_prefix: str = ""
    date_from: date | None = None
    date_to: date | None = None
    include_inactive: bool = False


def filter_from_request(req: npb.ListRecordsRequest) -> tuple[ListFilter, int, int | None]:
    """Validate a ListRecords request: (filter, page size, cursor)."""
    if req.kind and req.kind not in epb.RecordKind.values():
        raise ValidationError("kind", f"{req.kind} is not a known record kind")
    if req.commodity and req.commodity not in rec.Commodity.values():
        raise ValidationError("commodity", f"{req.commodity} is not a known commodity")
    if req.page_size < 0 or req.page_size > MAX_PAGE:
        raise ValidationError("page_size", f"must be between 1 and {MAX_PAGE} (0 means {DEFAULT_PAGE})")
    f = ListFilter(
        kind=req.kind,
        origin=req.origin.strip().upper(),
        country=validation.check_country(req.country, "country") if req.country else "",
        operation=index.operation_base(req.operation_code.strip()),
        commodity=rec.Commodity.Name(req.commodity) if req.commodity else "",
        container=(
            validation.check_container_number(req.container_number, "container_number")
            if req.container_number
            else ""
        ),
        imo=validation.check_imo(req.vessel_imo, "vessel_imo") if req.vessel_imo else "",
        hs_prefix=(
            validation.check_hs_code(req.hs_code_prefix, "hs_code_prefix", prefix=True)
            if req.hs_code_prefix
            else ""
        ),
        date_from=validation.check_date(req.date_from, "date_from") if req.date_from else None,
        date_to=validation.check_date(req.date_to, "date_to") if req.date_to else None,
        include_inactive=req.include_inactive,
    )
    if f.date_from and f.date_to and f.date_from > f.date_to:
        raise ValidationError("date_to", f"must not be before date_from ({f.date_from})")
    return f, req.page_size or DEFAULT_PAGE, _decode_cursor(req.page_token)


def _decode_cursor(token: str) -> int | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token.encode() + b"==").decode()
        kind, value = raw.split(":", 1)
        if kind != "e":
            raise ValueError(kind)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise ValidationError("page_token", "is not a page token this node issued") from e


def _encode_cursor(envelope_id: int) -> str:
    return base64.urlsafe_b64encode(f"e:{envelope_id}".encode()).decode().rstrip("=")


def _term(field: str, value: str, *, prefix: bool = False) -> object:
    cond = RecordTermRow.value.startswith(value) if prefix else RecordTermRow.value == value
    return exists().where(
        RecordTermRow.envelope_id == RecordRow.envelope_id, RecordTermRow.field == field, cond
    )


def _query(f: ListFilter) -> Select[RecordRow]:
    q = select(RecordRow).where(RecordRow.kind != epb.RECORD_KIND_KEY)
    conds: list[object] = []
    if not f.include_inactive:
        conds.append(RecordRow.status == npb.RECORD_STATUS_ACTIVE)
        conds.append(
            RecordRow.kind.in_((epb.RECORD_KIND_SEIZURE, epb.RECORD_KIND_ALERT, epb.RECORD_KIND_CORRECTION))
        )
    if f.kind:
        conds.append(RecordRow.kind == f.kind)
    if f.origin:
        conds.append(RecordRow.origin == f.origin)
    if f.date_from:
        conds.append(RecordRow.event_date >= f.date_from)
    if f.date_to:
        conds.append(RecordRow.event_date <= f.date_to)
    for field, value in (
        (index.COUNTRY, f.country),
        (index.OPERATION, f.operation),
        (index.COMMODITY, f.commodity),
        (index.CONTAINER, f.container),
        (index.IMO, f.imo),
    ):
        if value:
            conds.append(_term(field, value))
    if f.hs_prefix:
        conds.append(_term(index.HS, f.hs_prefix, prefix=True))
    return q.where(and_(*conds)) if conds else q  # type: ignore[arg-type,unused-ignore]


class RecordReader:
    def __init__(self, db: Database, keys: AudienceKeys, is_active: Callable[[str], bool]) -> None:
        self.db = db
        self.keys = keys
        self.is_active = is_active
        # Called, after the read, with the stored envelopes that did not open:
        # the node checks them and quarantines the damaged ones (`node.quarantine`).
        self.on_suspect: Callable[[Sequence[int], str], object] | None = None

    def get(self, record_id: str) -> npb.StoredRecord:
        rid = validation.check_record_id(record_id)
        with self.db.read() as s:
            rows = list(
                s.scalars(
                    select(RecordRow)
                    .where(RecordRow.record_id == rid)
                    .order_by(RecordRow.view, RecordRow.envelope_id)
                )
            )
            if not rows:
                raise NotFoundError(f"no record {rid} on this node")
            suspects: list[int] = []
            out = self._stored(s, rows[0], suspects)
        self._check(suspects)
        return out

    def list(self, req: npb.ListRecordsRequest) -> npb.ListRecordsResponse:
        f, size, cursor = filter_from_request(req)
        q = _query(f)
        if cursor is not None:
            q = q.where(RecordRow.envelope_id < cursor)
        q = q.order_by(RecordRow.envelope_id.desc()).limit(size + 1)
        suspects: list[int] = []
        with self.db.read() as s:
            rows = list(s.scalars(q))
            out = npb.ListRecordsResponse(records=[self._stored(s, r, suspects) for r in rows[:size]])
        self._check(suspects)
        if len(rows) > size:
            out.next_page_token = _encode_cursor(rows[size - 1].envelope_id)
        return out

    def _check(self, suspects: Sequence[int]) -> None:
        if suspects and self.on_suspect is not None:
            try:
                self.on_suspect(suspects, "read")
            except Exception as e:  # the reader answers anyway; the scrubber finds it later
                log.exception("stored envelopes not checked", error=str(e))

    def _stored(self, s: Session, row: RecordRow, suspects: MutableSequence[int]) -> npb.StoredRecord:
        env_row = s.get(EnvelopeRow, row.envelope_id)
        assert env_row is not None
        envelope = as_envelope(env_row)
        header = env_crypto.parse_header(envelope)
        out = npb.StoredRecord(
            record_id=row.record_id,
            kind=row.kind,  # type: ignore[arg-type]
            origin=row.origin,
            audience=row.audience,
            view=row.view,  # type: ignore[arg-type]
            status=row.status,  # type: ignore[arg-type]
            superseded_by=row.superseded_by or "",
            envelope=envelope,
        )
        out.created_at.CopyFrom(header.created_at)
        out.origin_revoked = not self.is_active(row.origin)
        key = self.keys.get(header.audience, header.epoch)
        if key is not None:
            try:
                body = rec.RecordBody.FromString(env_crypto.open_body(envelope, header, key))
            except CryptoError as e:  # one unreadable row must not fail a whole page
                log.warning(
                    "stored envelope does not open",
                    record_id=row.record_id,
                    origin=row.origin,
                    audience=row.audience,
                    reason=str(e),
                )
                suspects.append(row.envelope_id)
                return out
            which = body.WhichOneof("body")
            if which:
                getattr(out, which).CopyFrom(getattr(body, which))
        return out
