"""Record ids as officers type them: the whole UUID, or any unambiguous
prefix of it of at least `MIN_PREFIX` hex digits (what a table shows:
`fc9eac27`; ids are random UUIDs, so eight digits are nearly always enough).
An ambiguous prefix is refused listing the candidates."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.errors import ConflictError, NotFoundError, ValidationError
from node.storage.models import RecordRow

MIN_PREFIX = 6
_SHOWN = 10  # candidates named in an ambiguity error
_PREFIX_RE = re.compile(r"[0-9a-f]{1,8}(-[0-9a-f]{0,4}){0,3}(-[0-9a-f]{0,12})?")
_FULL_RE = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def resolve(s: Session, value: str, field: str = "record_id", origin: str = "") -> str:
    """The record id `value` names (of `origin`, if given), in canonical form."""
    text = value.strip()
    if _FULL_RE.fullmatch(text):
        return str(uuid.UUID(text))
    prefix = text.lower()
    digits = prefix.replace("-", "")
    if not text or not _PREFIX_RE.fullmatch(prefix) or len(digits) < MIN_PREFIX:
        raise ValidationError(
            field,
            f"must be a record id: a UUID, or at least its first {MIN_PREFIX} characters"
            f" as a table shows them (got {text[:64]!r})",
        )
    q = select(RecordRow.record_id).where(
        RecordRow.record_id >= prefix, RecordRow.record_id < prefix[:-1] + chr(ord(prefix[-1]) + 1)
    )
    if origin:
        q = q.where(RecordRow.origin == origin)
    found = sorted(set(s.scalars(q.distinct().limit(_SHOWN + 1))))
    if not found:
        of = f" of {origin}" if origin else ""
        raise NotFoundError(f"no record{of} on this node has an id starting with {prefix}")
    if len(found) > 1:
        more = " …" if len(found) > _SHOWN else ""
        raise ConflictError(
            f"{prefix} is the start of several record ids: {', '.join(found[:_SHOWN])}{more}; type more of it"
        )
    return found[0]
