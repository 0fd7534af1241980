"""Which envelopes of a record a node holds. A relay cannot tell (envelope
version 2 headers carry no record id), so the tests ask the origin, which
reads its own records, for the envelopes' hashes, and look those up."""

from __future__ import annotations

from sqlalchemy import select

from node.app import NodeApp
from node.storage.models import EnvelopeRow, RecordRow


def record_hashes(origin: NodeApp, record_id: str) -> set[bytes]:
    with origin.db.read() as s:
        stmt = (
            select(EnvelopeRow.hash)
            .join(RecordRow, RecordRow.envelope_id == EnvelopeRow.id)
            .where(RecordRow.record_id == record_id, RecordRow.origin == origin.config.node.id)
        )
        return set(s.scalars(stmt))


def envelopes_of_record(origin: NodeApp, holder: NodeApp, record_id: str) -> list[EnvelopeRow]:
    hashes = record_hashes(origin, record_id)
    assert hashes, f"{record_id} is not a record of {origin.config.node.id}"
    with holder.db.read() as s:
        return list(s.scalars(select(EnvelopeRow).where(EnvelopeRow.hash.in_(sorted(hashes)))))
