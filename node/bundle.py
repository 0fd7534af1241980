"""Hand-carried bundles: envelopes on a USB stick for a port with no link.

`export_bundle` writes what a recipient lacks (from the vector it last stated,
or an explicit one) as a `SignedBundle` signed by this node. `import_bundle`
checks the exporter's signature with the federation's key ring, then applies
the envelopes exactly like a sync batch: each one verified, nothing stored if
one fails, duplicates are no-ops.
"""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

from google.protobuf.message import DecodeError

from crypto.detached import verify_detached
from federation import vectors
from gcn.v1 import sync_pb2
from node.app import NodeApp
from node.errors import NotFoundError, PermissionDeniedError, ValidationError
from node.models import PeerRow
from node.receive import ApplyResult

_DOMAIN = b"gcn-bundle-v1\x00"
MAX_BUNDLE_ENVELOPES = 1_000_000


def last_known_vector(app: NodeApp, peer: str) -> vectors.Vector:
    with app.db.read() as s:
        row = s.get(PeerRow, peer)
        raw = json.loads(row.their_vector) if row is not None else []
    return {(o, a): int(q) for o, a, q in raw}


def export_bundle(app: NodeApp, recipient: str, path: Path, base: vectors.Vector | None = None) -> int:
    """Write everything `recipient` lacks (and may hold) to `path`; returns the count."""
    have = dict(base) if base is not None else last_known_vector(app, recipient)
    batch = app.sync_source.batch_for(recipient, have, max_envelopes=MAX_BUNDLE_ENVELOPES, max_bytes=2**62)
    bundle = sync_pb2.Bundle(
        exporter=app.config.node.id,
        recipient=recipient,
        envelopes=batch.envelopes,
        base=vectors.to_proto((o, a, q, b"") for (o, a), q in sorted(have.items())),
    )
    bundle.created_at.FromDatetime(app.clock())
    data = bundle.SerializeToString()
    signed = sync_pb2.SignedBundle(
        bundle=data, key_id=app.keys.signing.key_id, signature=app.keys.signing.sign(_DOMAIN + data)
    )
    path.write_bytes(signed.SerializeToString())
    return len(batch.envelopes)


IMPORT_CHUNK = 2000


def import_bundle(app: NodeApp, path: Path) -> ApplyResult:
    """Verify the bundle's signature (by an active exporter, with a key valid when
    the bundle was made), then apply its envelopes in stream order, a chunk per
    transaction, each chunk verified like a sync batch."""
    try:
        signed = sync_pb2.SignedBundle.FromString(path.read_bytes())
        bundle = sync_pb2.Bundle.FromString(signed.bundle)
    except (OSError, ValueError, DecodeError) as e:
        raise ValidationError("bundle", f"{path} is not a gcn bundle ({e})") from e
    exporter = bundle.exporter
    if not app.trust.is_active(exporter):
        raise PermissionDeniedError(
            f"bundle exported by {exporter or '?'}, not an active member of the federation"
        )
    made = bundle.created_at.ToDatetime(tzinfo=UTC)
    keys = [k for k in app.trust.keyring().keys_of(exporter) if k.key_id == signed.key_id]
    if not keys:
        raise NotFoundError(f"bundle signed by unknown key {signed.key_id} of {exporter}")
    if not keys[0].valid_at(made):
        raise PermissionDeniedError(
            f"bundle key {signed.key_id} of {exporter} was not valid at {made.isoformat()}"
        )
    if not verify_detached(keys[0].public_raw, _DOMAIN + signed.bundle, signed.signature):
        raise PermissionDeniedError(f"bundle signature by key {signed.key_id} of {exporter} does not verify")
    if bundle.recipient and bundle.recipient != app.config.node.id:
        raise ValidationError("bundle", f"is meant for {bundle.recipient}, not {app.config.node.id}")
    envelopes = list(bundle.envelopes)
    total = ApplyResult()
    for start in range(0, len(envelopes), IMPORT_CHUNK):
        part = app.receiver.apply(envelopes[start : start + IMPORT_CHUNK], exporter, app.clock())
        total.stored += part.stored
        total.duplicates += part.duplicates
        total.indexed += part.indexed
        total.alarms += part.alarms
    return total
