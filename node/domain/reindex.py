"""Bringing an existing node's search index up to the terms this version
derives (`index.INDEX_VERSION`): at start-up, every readable record's terms
are derived again from its envelope (the plaintext is never stored, so the
envelopes are opened again), a batch per transaction, and the version is
written to `node_meta` last. A node stopped half-way starts again from the
top at its next start; a new node just writes the version."""

from __future__ import annotations

from google.protobuf.message import DecodeError
from sqlalchemy import delete, select

from crypto import envelope as env_crypto
from crypto.errors import CryptoError
from gcn.v1 import records_pb2 as rec
from node.domain import index
from node.logging import get_logger
from node.storage.audience_keys import AudienceKeys
from node.storage.db import Database
from node.storage.envelope_log import as_envelope
from node.storage.models import RECORD_TERMS, EnvelopeRow, NodeMetaRow, RecordRow, RecordTermRow

log = get_logger(__name__)
VERSION_KEY = "index_version"
BATCH = 1000


def index_version(db: Database) -> int:
    with db.read() as s:
        row = s.get(NodeMetaRow, VERSION_KEY)
        return int(row.value) if row is not None else 0


def refresh_terms(db: Database, keys: AudienceKeys) -> int:
    """Re-derive the terms of every indexed record when the index is older than
    this version; the number of records re-indexed (0 when it was current)."""
    if index_version(db) >= index.INDEX_VERSION:
        return 0
    done, last = 0, 0
    while True:
        with db.begin() as s:
            rows = list(
                s.execute(
                    select(RecordRow.envelope_id, EnvelopeRow)
                    .join(EnvelopeRow, EnvelopeRow.id == RecordRow.envelope_id)
                    .where(RecordRow.envelope_id > last)
                    .order_by(RecordRow.envelope_id)
                    .limit(BATCH)
                )
            )
            if not rows:
                break
            ids = [envelope_id for envelope_id, _ in rows]
            s.execute(delete(RecordTermRow).where(RecordTermRow.envelope_id.in_(ids)))
            terms: list[dict[str, object]] = []
            for envelope_id, env_row in rows:
                envelope = as_envelope(env_row)
                header = env_crypto.parse_header(envelope)
                key = keys.get(header.audience, header.epoch)
                if key is None:
                    continue
                try:
                    body = rec.RecordBody.FromString(env_crypto.open_body(envelope, header, key))
                    found = index.terms_of(body)
                except (CryptoError, DecodeError, ValueError) as e:
                    log.warning("record not re-indexed", envelope_id=envelope_id, reason=str(e)[:200])
                    continue
                terms.extend(
                    {"envelope_id": envelope_id, "audience": header.audience, "field": f, "value": v}
                    for f, v in found
                )
            if terms:
                s.execute(RECORD_TERMS.insert(), terms)
            done += len(rows)
            last = ids[-1]
        log.info("search index re-derived", records=done)
    with db.begin() as s:
        row = s.get(NodeMetaRow, VERSION_KEY)
        if row is None:
            s.add(NodeMetaRow(key=VERSION_KEY, value=str(index.INDEX_VERSION)))
        else:
            row.value = str(index.INDEX_VERSION)
    if done:
        log.info("search index up to date", records=done, version=index.INDEX_VERSION)
    return done
