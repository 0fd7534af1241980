"""Keys, headers and sealed envelopes the envelope tests start from (and then tamper with)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from hypothesis import settings

from crypto.audience import new_epoch_key
from crypto.envelope import (
    ENVELOPE_VERSION,
    VerifiedEnvelope,
    seal,
    signed_bytes,
)
from crypto.keys import SigningKey
from crypto.signing import KeyRing, PublicSigningKey
from gcn.v1 import envelope_pb2 as pb

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
KEYS_FROM = datetime(2026, 3, 1, tzinfo=UTC)
RECORD_ID = "123e4567-e89b-12d3-a456-426614174000"
BODY = b"212 raw ivory tusks under groundnut sacks, Kilindini CFS 3"
PREV_HASH = hashlib.sha256(b"envelope 41").digest()

KE = SigningKey.generate(KEYS_FROM)
TZ = SigningKey.generate(KEYS_FROM)
RING = KeyRing(
    [
        PublicSigningKey("KE", KE.key_id, KE.public_raw, KEYS_FROM),
        PublicSigningKey("TZ", TZ.key_id, TZ.public_raw, KEYS_FROM),
    ]
)
ESA_KEY = new_epoch_key()
OTHER_KEY = new_epoch_key()

RECORD_KINDS = [
    pb.RECORD_KIND_SEIZURE,
    pb.RECORD_KIND_ALERT,
    pb.RECORD_KIND_RETRACTION,
    pb.RECORD_KIND_CORRECTION,
]
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, database=None)


def seizure_header(**fields: object) -> pb.EnvelopeHeader:
    """The 42nd envelope of KE's region:ESA stream, sealed under epoch 3 (version 2:
    the record's kind and view are inside the ciphertext)."""
    header = pb.EnvelopeHeader(
        record_id=RECORD_ID,
        origin="KE",
        audience="region:ESA",
        seq=42,
        prev_hash=PREV_HASH,
        epoch=3,
        kind=pb.RECORD_KIND_SEALED,
    )
    header.created_at.FromDatetime(NOW)
    for name, value in fields.items():
        setattr(header, name, value)
    return header


def sealed(body: bytes = BODY) -> VerifiedEnvelope:
    return seal(seizure_header(), body, KE, ESA_KEY)


def copy(envelope: pb.Envelope, **parts: bytes) -> pb.Envelope:
    out = pb.Envelope()
    out.CopyFrom(envelope)
    for name, value in parts.items():
        setattr(out, name, value)
    return out


def flip_bit(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def signed_as(
    edit: Callable[[pb.EnvelopeHeader], object], signer: SigningKey = KE, ciphertext: bytes | None = None
) -> pb.Envelope:
    """An envelope whose origin signed a header it edited after `seal` filled it in:
    what a buggy or hostile origin could send. The signature is genuine."""
    header = seizure_header(version=ENVELOPE_VERSION, key_id=signer.key_id)
    edit(header)
    header_bytes = header.SerializeToString(deterministic=True)
    if ciphertext is None:
        ciphertext = seal(seizure_header(), BODY, signer, ESA_KEY).envelope.ciphertext
    return pb.Envelope(
        header=header_bytes,
        ciphertext=ciphertext,
        signature=signer.sign(signed_bytes(header_bytes, ciphertext)),
    )
