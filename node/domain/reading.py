"""Reading records back: one record by id, or a filtered, paged list.

Bodies are opened from the signed envelopes in the log (never stored
decrypted); the reply carries the envelope too, so a client can verify it.
A page holds at most `page_size` records and at most `limits.MAX_PAGE_BYTES`:
when the next record would not fit, the page ends early with a token for the
rest. A record too large for any reply (stored before the bounds, or from a
node without them) is listed without its body and envelope (`too_large`).
An officer's read (`get_for`, `list_for`: what the API calls) is written to
the audit trail (`node.storage.audit`) before it is answered.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, MutableSequence, Sequence
from dataclasses import dataclass
from datetime import date

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from sqlalchemy import Select, and_, exists, select
from sqlalchemy.orm import Session

from crypto import envelope as env_crypto
from crypto.errors import CryptoError
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from node.config import NODE_ID_RE
from node.domain import index, limits, record_ids, validation
from node.errors import ConfigError, ConflictError, NotFoundError, ValidationError
from node.logging import get_logger
from node.storage import audit
from node.storage.audience_keys import AudienceKeys
from node.storage.db import Database
from node.storage.envelope_log import as_envelope
from node.storage.models import EnvelopeRow, RecordRow, RecordTermRow

log = get_logger(__name__)
DEFAULT_PAGE, MAX_PAGE = limits.DEFAULT_PAGE, limits.MAX_PAGE
_CURSOR_RE = re.compile(r"e:([1-9][0-9]{0,18})")
_MAX_CURSOR = 2**63 - 1  # envelope ids are signed 64-bit integers
# What a record costs in a ListRecordsResponse besides its own bytes: the
# field's tag and length (at most 5 bytes), and the next page token's field.
_ENTRY_OVERHEAD = 5
_TOKEN_OVERHEAD = 2 + limits.MAX_PAGE_TOKEN_CHARS


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
        origin=_check_origin(req.origin),
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
    """The envelope id a page token continues below; anything this node did not
    issue (another shape, a number beyond 64 bits) is refused naming page_token."""
    if not token:
        return None
    refused = ValidationError("page_token", "is not a page token this node issued")
    if len(token) > limits.MAX_PAGE_TOKEN_CHARS or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        raise refused
    try:
        raw = base64.urlsafe_b64decode(token.encode() + b"==").decode("ascii")
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise refused from e
    match = _CURSOR_RE.fullmatch(raw)
    if match is None or int(match[1]) > _MAX_CURSOR:
        raise refused
    return int(match[1])


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
        # the node checks them and quarantines the damaged ones (`node.storage.quarantine`).
        self.on_suspect: Callable[[Sequence[int], str], object] | None = None
        self.audit: audit.AuditLog | None = None  # where officers' reads are written

    def _audit_log(self) -> audit.AuditLog:
        if self.audit is None:  # a node that cannot audit does not answer officers
            raise ConfigError("the audit log is not wired to the record reader")
        return self.audit

    def get_for(self, officer: audit.Officer, record_id: str, origin: str = "") -> npb.StoredRecord:
        """`get` for an officer, audited: one row with the id (and origin) asked
        for and 1 result, or 0 when the id is not held or names several origins."""
        trail = self._audit_log()
        query = {k: v for k, v in (("record_id", record_id), ("origin", origin)) if v}
        try:
            out = self.get(record_id, origin)
        except (NotFoundError, ConflictError):
            trail.record(officer, audit.GET, query, 0)
            raise
        trail.record(officer, audit.GET, query, 1)
        return out

    def list_for(self, officer: audit.Officer, req: npb.ListRecordsRequest) -> npb.ListRecordsResponse:
        """`list` for an officer, audited: one row with the request's fields and
        the number of records on the page."""
        trail = self._audit_log()
        out = self.list(req)
        trail.record(
            officer, audit.LIST, MessageToDict(req, preserving_proto_field_name=True), len(out.records)
        )
        return out

    def get(self, record_id: str, origin: str = "") -> npb.StoredRecord:
        """The best readable view of record `record_id` of `origin`. Record ids
        are chosen by their origins, so two origins' records may share one: without
        `origin`, an id held from several origins is refused, naming them."""
        wanted = _check_origin(origin)
        with self.db.read() as s:
            rid = record_ids.resolve(s, record_id, origin=wanted)
            q = select(RecordRow).where(RecordRow.record_id == rid)
            if wanted:
                q = q.where(RecordRow.origin == wanted)
            rows = list(s.scalars(q.order_by(RecordRow.view, RecordRow.envelope_id)))
            if not rows:
                of = f" of {wanted}" if wanted else ""
                raise NotFoundError(f"no record {rid}{of} on this node")
            origins = sorted({r.origin for r in rows})
            if len(origins) > 1:
                raise ConflictError(
                    f"record {rid} is held from several origins ({', '.join(origins)}): "
                    "name the one you mean (origin; gcn records show ID --origin XX)"
                )
            suspects: list[int] = []
            out = self.stored(s, rows[0], suspects)
        self.check_suspects(suspects)
        return out

    def list(self, req: npb.ListRecordsRequest) -> npb.ListRecordsResponse:
        f, size, cursor = filter_from_request(req)
        q = _query(f)
        if cursor is not None:
            q = q.where(RecordRow.envelope_id < cursor)
        q = q.order_by(RecordRow.envelope_id.desc()).limit(size + 1)
        out = npb.ListRecordsResponse()
        budget = limits.MAX_PAGE_BYTES - _TOKEN_OVERHEAD
        used = 0
        last: int | None = None
        suspects: list[int] = []
        with self.db.read() as s:
            rows = list(s.scalars(q))
            for row in rows[:size]:
                stored = self.stored(s, row, suspects)
                cost = stored.ByteSize() + _ENTRY_OVERHEAD
                if out.records and used + cost > budget:
                    break  # a short page: the rest comes with the token
                out.records.append(stored)
                used += cost
                last = row.envelope_id
        self.check_suspects(suspects)
        if last is not None and (len(out.records) < len(rows)):
            out.next_page_token = _encode_cursor(last)
        return out

    def check_suspects(self, suspects: Sequence[int]) -> None:
        if suspects and self.on_suspect is not None:
            try:
                self.on_suspect(suspects, "read")
            except Exception as e:  # the reader answers anyway; the scrubber finds it later
                log.exception("stored envelopes not checked", error=str(e))

    def stored(self, s: Session, row: RecordRow, suspects: MutableSequence[int]) -> npb.StoredRecord:
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
        if len(env_row.header) + len(env_row.ciphertext) > limits.MAX_ENVELOPE_BYTES:
            return _too_large(out, row)
        key = self.keys.get(header.audience, header.epoch)
        if key is not None:
            try:
                body = rec.RecordBody.FromString(env_crypto.open_body(envelope, header, key))
            except (CryptoError, DecodeError) as e:  # one unreadable row must not fail a whole page
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
        if out.ByteSize() > limits.MAX_STORED_RECORD_BYTES:
            return _too_large(out, row)
        return out


def _too_large(out: npb.StoredRecord, row: RecordRow) -> npb.StoredRecord:
    """The record without its body and envelope: no reply could carry them."""
    log.warning(
        "stored record too large for a reply: listed without body and envelope",
        record_id=row.record_id,
        origin=row.origin,
        audience=row.audience,
        envelope_id=row.envelope_id,
    )
    out.ClearField("body")
    out.ClearField("envelope")
    out.too_large = True
    return out


def _check_origin(origin: str) -> str:
    """An optional origin node id, upper-cased; '' when unset."""
    wanted = origin.strip().upper()
    if wanted and not NODE_ID_RE.fullmatch(wanted):
        raise ValidationError("origin", f"must be a node id like KE or KE-MBA (got {wanted[:64]!r})")
    return wanted
