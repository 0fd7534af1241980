"""Hand-carried bundles: envelopes on a USB stick for a port with no link.

`export_bundle` writes what a recipient lacks (from the vector it last stated,
or an explicit one) as `SignedBundle` files signed by this node, each at most
`limits.MAX_BUNDLE_BYTES`: the file asked for, and when more is lacking than
fits, further parts ``FILE.2``, ``FILE.3``, … each starting where the one
before ended (import them all, in any order: a stream's head waits for a gap
to fill). The recipient must be another active node of the federation.

`import_bundle` reads at most `limits.MAX_BUNDLE_BYTES`, checks the exporter's
signature with the federation's key ring and that the bundle names this node
as its recipient, then applies the envelopes exactly like a sync batch: each
one verified on its own, what fails refused by name (reported, never stored),
duplicates no-ops. An import commits as it goes (the receiver's chunks, each
its own transaction, heads moving only over contiguous runs), so an interrupted
import leaves a consistent node and resumes when run again: what is held
already is counted as such and skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

from google.protobuf.message import DecodeError

from crypto.detached import verify_detached
from crypto.envelope import MAX_CIPHERTEXT_BYTES, MAX_HEADER_BYTES, parse_header
from federation import vectors
from federation.receive import ApplyResult
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import sync_pb2
from node.app import NodeApp
from node.config import NODE_ID_RE
from node.domain import limits
from node.errors import NotFoundError, PermissionDeniedError, ValidationError
from node.storage.models import PeerRow

_DOMAIN = b"gcn-bundle-v1\x00"
# The most one envelope can take in a bundle; every envelope fits a part.
_LARGEST_ENVELOPE = MAX_CIPHERTEXT_BYTES + MAX_HEADER_BYTES + 1024
assert limits.MAX_BUNDLE_BYTES > 2 * _LARGEST_ENVELOPE
# What an envelope costs in a Bundle besides its raw bytes (header, ciphertext
# and signature): its fields' tags and lengths, and its own in the list. An
# envelope has at least this many raw bytes (a header, a signature).
_PER_ENVELOPE = 20
_SMALLEST_ENVELOPE = 128
# The SignedBundle around the Bundle: key id, signature, framing.
_SIGNED_OVERHEAD = 256


@dataclass(frozen=True)
class Exported:
    """The files written (the first is the path asked for) and what they hold."""

    paths: list[Path]
    envelopes: int
    bytes: int


@dataclass
class Imported:
    """What an import did with the bundle's `total` envelopes."""

    total: int
    result: ApplyResult = field(default_factory=ApplyResult)


def last_known_vector(app: NodeApp, peer: str) -> vectors.Vector:
    with app.db.read() as s:
        row = s.get(PeerRow, peer)
        raw = json.loads(row.their_vector) if row is not None else []
    return {(o, a): int(q) for o, a, q in raw}


def check_recipient(app: NodeApp, recipient: str) -> str:
    """The node id a bundle is for: another active member of the federation."""
    node_id = recipient.strip().upper()
    if not node_id:
        raise ValidationError("recipient", "is required: the node id the bundle is for")
    if not NODE_ID_RE.fullmatch(node_id):
        raise ValidationError("recipient", f"must be a node id like KE or KE-MBA (got {node_id[:64]!r})")
    if node_id == app.config.node.id:
        raise ValidationError("recipient", f"is this node ({node_id}); a bundle is for another node")
    if not app.trust.is_active(node_id):
        raise ValidationError("recipient", f"{node_id} is not an active member of the federation")
    return node_id


def _part_path(path: Path, index: int) -> Path:
    return path if index == 1 else path.with_name(f"{path.name}.{index}")


def _advance(have: dict[vectors.Stream, int], envelopes: list[epb.Envelope]) -> None:
    """Move `have` over the contiguous runs these envelopes continue."""
    seqs: dict[vectors.Stream, set[int]] = {}
    for e in envelopes:
        h = parse_header(e)
        seqs.setdefault((h.origin, h.audience), set()).add(h.seq)
    for stream, taken in seqs.items():
        at = have.get(stream, 0)
        while at + 1 in taken:
            at += 1
        have[stream] = at


def export_bundle(app: NodeApp, recipient: str, path: Path, base: vectors.Vector | None = None) -> Exported:
    """Write everything `recipient` lacks (and may hold) to `path` and, when it
    does not fit one bundle, to further parts; returns what was written."""
    to = check_recipient(app, recipient)
    have: dict[vectors.Stream, int] = dict(base) if base is not None else last_known_vector(app, to)
    paths: list[Path] = []
    count = size = 0
    more = True
    while more:
        part_base = dict(have)
        bundle = sync_pb2.Bundle(
            exporter=app.config.node.id,
            recipient=to,
            base=vectors.to_proto((o, a, q, b"") for (o, a), q in sorted(part_base.items())),
        )
        bundle.created_at.FromDatetime(app.clock())
        room = limits.MAX_BUNDLE_BYTES - bundle.ByteSize() - _SIGNED_OVERHEAD
        while more:
            most = max(1, min(limits.PULL_MAX_ENVELOPES, room // _SMALLEST_ENVELOPE))
            batch = app.sync_source.batch_for(
                to,
                have,
                max_envelopes=most,
                max_bytes=max(1, room - most * _PER_ENVELOPE),
                urgent_first=False,
            )
            cost = sum(e.ByteSize() + 5 for e in batch.envelopes)
            if cost > room and bundle.envelopes:
                break  # a batch's first envelope is taken whatever its size: it opens the next part
            before = dict(have)
            _advance(have, batch.envelopes)
            bundle.envelopes.extend(batch.envelopes)
            room -= cost
            more = batch.more and have != before  # a damaged envelope stops its stream here
        data = bundle.SerializeToString()
        signed = sync_pb2.SignedBundle(
            bundle=data, key_id=app.keys.signing.key_id, signature=app.keys.signing.sign(_DOMAIN + data)
        )
        out = _part_path(path, len(paths) + 1)
        out.write_bytes(signed.SerializeToString())
        paths.append(out)
        count += len(bundle.envelopes)
        size += signed.ByteSize()
    return Exported(paths, count, size)


def _read_capped(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(limits.MAX_BUNDLE_BYTES + 1)
    except OSError as e:
        raise ValidationError("bundle", f"{path} cannot be read ({e})") from e
    if len(data) > limits.MAX_BUNDLE_BYTES:
        raise ValidationError(
            "bundle",
            f"{path} is larger than {limits.MAX_BUNDLE_BYTES} bytes, the most one bundle may be "
            "(gcn bundle export writes more in parts FILE.2, FILE.3, ...)",
        )
    return data


def import_bundle(app: NodeApp, path: Path) -> Imported:
    """Verify the bundle's signature (by an active exporter, with a key valid when
    the bundle was made) and its recipient (this node), then apply its envelopes
    like a sync batch; the result names every envelope refused."""
    data = _read_capped(path)
    try:
        signed = sync_pb2.SignedBundle.FromString(data)
        bundle = sync_pb2.Bundle.FromString(signed.bundle)
    except (ValueError, DecodeError) as e:
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
    me = app.config.node.id
    if not bundle.recipient:
        raise ValidationError("bundle.recipient", f"is empty: a bundle must name the node it is for ({me})")
    if bundle.recipient != me:
        raise ValidationError(
            "bundle.recipient", f"is {bundle.recipient[:64]}: the bundle is not meant for {me}"
        )
    envelopes = list(bundle.envelopes)
    return Imported(len(envelopes), app.receiver.apply(envelopes, exporter, app.clock()))
