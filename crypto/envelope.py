"""Sealing, verifying and opening envelopes.

An envelope is (header bytes, ciphertext, signature):
- `header` is the serialized `EnvelopeHeader`; it travels as bytes and is never
  re-serialized, so every hop verifies exactly what the origin signed;
- `ciphertext` is a 12-byte random nonce followed by AES-256-GCM of the record
  body under the audience epoch key, with the header bytes as associated data
  (for key messages, epoch 0, it is the `KeyMessage` itself, whose wraps are
  each sealed to one member);
- `signature` is Ed25519 by the origin over `signed_bytes(header, ciphertext)`.

The envelope's identity is `envelope_hash`, a SHA-256 over the three parts with
length prefixes: it does not depend on protobuf encoding, and it is what the
stream's `prev_hash` chain links.

Version 2 (what nodes write) keeps out of the clear header what routing does
not need: its `record_id` is a random UUID of the envelope alone, its `kind`
only a class (`KEY`, `SEALED`, `SEALED_URGENT`), its `view` unset; the record's
own id, kind and view travel inside the ciphertext. Version 1 envelopes (the
record's id, kind and view in clear) are still accepted: stored envelopes are
immutable and keep verifying.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError

from crypto.errors import DecryptionError, MalformedEnvelopeError, SignatureError, UnknownKeyError
from crypto.keys import SigningKey
from crypto.signing import KeyRing, PublicSigningKey
from gcn.v1 import envelope_pb2 as pb

ENVELOPE_VERSION = 2
VERSIONS = frozenset({1, 2})
# The kinds a header may carry, by version.
SEALED_KINDS = frozenset({pb.RECORD_KIND_SEALED, pb.RECORD_KIND_SEALED_URGENT})
_V1_KINDS = frozenset(
    {
        pb.RECORD_KIND_SEIZURE,
        pb.RECORD_KIND_ALERT,
        pb.RECORD_KIND_RETRACTION,
        pb.RECORD_KIND_CORRECTION,
        pb.RECORD_KIND_KEY,
    }
)
_V2_KINDS = SEALED_KINDS | {pb.RECORD_KIND_KEY}
NONCE_BYTES = 12
HASH_BYTES = 32
# Bounds of what a header may hold, checked when it is parsed, so no field can
# break a store or a relay further on (they match the log's columns).
MAX_HEADER_BYTES = 1024
MAX_CIPHERTEXT_BYTES = 8 * 1024 * 1024
MAX_SEQ = 2**63 - 1  # BIGINT
MAX_EPOCH = 2**31 - 1  # INTEGER
MAX_AUDIENCE_CHARS = 128
_NODE_ID = re.compile(r"[A-Z0-9][A-Z0-9-]{1,62}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_EARLIEST = datetime(2020, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)
_SIGNING_DOMAIN = b"gcn-envelope-v1\x00"
_HASH_DOMAIN = b"gcn-envelope-hash-v1\x00"


def _lp(part: bytes) -> bytes:
    return struct.pack(">I", len(part)) + part


def signed_bytes(header: bytes, ciphertext: bytes) -> bytes:
    """The exact bytes an origin signs: domain, then length-prefixed parts."""
    return _SIGNING_DOMAIN + _lp(header) + _lp(ciphertext)


def envelope_hash(envelope: pb.Envelope) -> bytes:
    return hashlib.sha256(
        _HASH_DOMAIN + _lp(envelope.header) + _lp(envelope.ciphertext) + _lp(envelope.signature)
    ).digest()


def header_created_at(header: pb.EnvelopeHeader) -> datetime:
    created: datetime = header.created_at.ToDatetime(tzinfo=UTC)
    return created


@dataclass(frozen=True)
class VerifiedEnvelope:
    """An envelope whose signature verified, with its parsed header."""

    envelope: pb.Envelope
    header: pb.EnvelopeHeader
    hash: bytes
    signer: PublicSigningKey


def seal(
    header: pb.EnvelopeHeader,
    body: bytes,
    signer: SigningKey,
    audience_key: bytes | None,
) -> VerifiedEnvelope:
    """Encrypt `body` under `audience_key` (None only for key messages, epoch 0)
    and sign. The header's `key_id` and `version` are filled here: version 2
    when its kind is a class (`KEY`, `SEALED*`), else the old version 1 (a
    record's own kind in clear; still accepted, written only by tests)."""
    header.version = ENVELOPE_VERSION if header.kind in _V2_KINDS else 1
    header.key_id = signer.key_id
    header_bytes = header.SerializeToString(deterministic=True)
    if header.kind == pb.RECORD_KIND_KEY:
        if audience_key is not None or header.epoch != 0:
            raise ValueError("key messages are sealed with epoch 0 and no audience key")
        ciphertext = body
    else:
        if audience_key is None or header.epoch == 0:
            raise ValueError("records are sealed under an audience key of an epoch >= 1")
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = nonce + AESGCM(audience_key).encrypt(nonce, body, header_bytes)
    env = pb.Envelope(
        header=header_bytes,
        ciphertext=ciphertext,
        signature=signer.sign(signed_bytes(header_bytes, ciphertext)),
    )
    key = PublicSigningKey(header.origin, signer.key_id, signer.public_raw, signer.not_before)
    return VerifiedEnvelope(env, header, envelope_hash(env), key)


def _valid_timestamp(header: pb.EnvelopeHeader) -> bool:
    try:
        header.created_at.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        return False
    return True


def parse_header(envelope: pb.Envelope) -> pb.EnvelopeHeader:
    """Parse and check the cleartext header; raises `MalformedEnvelopeError`."""
    if len(envelope.header) > MAX_HEADER_BYTES:
        raise MalformedEnvelopeError(
            f"malformed envelope: header of {len(envelope.header)} bytes (at most {MAX_HEADER_BYTES})"
        )
    header = pb.EnvelopeHeader()
    try:
        header.ParseFromString(envelope.header)
    except DecodeError as e:
        raise MalformedEnvelopeError(f"envelope header does not parse: {e}") from e
    problems = []
    if header.version not in VERSIONS:
        problems.append(f"version {header.version} is not one of {sorted(VERSIONS)}")
    for name in ("record_id", "origin", "audience", "key_id"):
        if not getattr(header, name):
            problems.append(f"{name} is empty")
    problems += _grammar(header)
    if len(envelope.ciphertext) > MAX_CIPHERTEXT_BYTES:
        problems.append(f"ciphertext of {len(envelope.ciphertext)} bytes (at most {MAX_CIPHERTEXT_BYTES})")
    if header.seq < 1:
        problems.append("seq must be >= 1")
    if header.seq == 1 and header.prev_hash:
        problems.append("the first envelope of a stream has no prev_hash")
    if header.seq > 1 and len(header.prev_hash) != HASH_BYTES:
        problems.append(f"prev_hash must be {HASH_BYTES} bytes")
    kinds = _V2_KINDS if header.version == 2 else _V1_KINDS
    if header.kind not in kinds:
        problems.append(f"kind {header.kind} is not a header kind of version {header.version}")
    if header.version == 2 and header.view != pb.VIEW_UNSPECIFIED:
        problems.append("a version 2 header carries no view (it travels inside the ciphertext)")
    if (header.kind == pb.RECORD_KIND_KEY) != (header.epoch == 0):
        problems.append("epoch 0 is for key messages only")
    if not header.HasField("created_at"):
        problems.append("created_at is missing")
    elif not _valid_timestamp(header):
        problems.append("created_at is not a valid timestamp")
    if header.kind != pb.RECORD_KIND_KEY and len(envelope.ciphertext) < NONCE_BYTES + 16:
        problems.append("ciphertext is shorter than a nonce and a tag")
    if len(envelope.signature) != 64:
        problems.append("signature must be 64 bytes")
    if problems:
        raise MalformedEnvelopeError("malformed envelope: " + "; ".join(problems))
    return header


def _grammar(header: pb.EnvelopeHeader) -> list[str]:
    """Each field by its grammar and within its column (empty ones are reported apart)."""
    problems = []
    if header.record_id and not _UUID.fullmatch(header.record_id):
        problems.append(f"record_id {header.record_id[:40]!r} is not a lower-case UUID")
    if header.origin and not _NODE_ID.fullmatch(header.origin):
        problems.append(f"origin {header.origin[:70]!r} is not a node id")
    if len(header.audience) > MAX_AUDIENCE_CHARS or not header.audience.isprintable():
        problems.append(f"audience is not an audience name ({len(header.audience)} characters)")
    if header.key_id and not _KEY_ID.fullmatch(header.key_id):
        problems.append(f"key_id {header.key_id[:20]!r} is not 16 hex digits")
    if header.seq > MAX_SEQ:
        problems.append(f"seq {header.seq} is beyond {MAX_SEQ}")
    if header.epoch > MAX_EPOCH:
        problems.append(f"epoch {header.epoch} is beyond {MAX_EPOCH}")
    if header.HasField("created_at") and _valid_timestamp(header):
        at = header_created_at(header)
        if not _EARLIEST <= at < _LATEST:
            problems.append(f"created_at {at.isoformat()} is not a plausible time")
    return problems


def verify(envelope: pb.Envelope, keyring: KeyRing) -> VerifiedEnvelope:
    """Check the envelope is well formed and signed by its origin's key valid
    at its `created_at`. Raises `MalformedEnvelopeError` or `SignatureError`."""
    header = parse_header(envelope)
    signer = keyring.verify(
        header.origin,
        header.key_id,
        signed_bytes(envelope.header, envelope.ciphertext),
        envelope.signature,
        header_created_at(header),
    )
    return VerifiedEnvelope(envelope, header, envelope_hash(envelope), signer)


def damage(envelope: pb.Envelope, stored_hash: bytes, keyring: KeyRing | None = None) -> str | None:
    """Why a stored envelope is no longer what was verified and stored, or None
    if it is intact: its bytes must still hash to the hash it was stored under
    and (given a key ring) still carry its origin's signature. An origin key
    the ring does not know cannot be judged, and counts as intact."""
    if envelope_hash(envelope) != stored_hash:
        return "its bytes no longer match the hash it was stored under"
    if keyring is None:
        return None
    try:
        header = parse_header(envelope)
        keyring.check_signature(
            header.origin,
            header.key_id,
            signed_bytes(envelope.header, envelope.ciphertext),
            envelope.signature,
        )
    except UnknownKeyError:
        return None
    except (MalformedEnvelopeError, SignatureError) as e:
        return str(e)
    return None


URGENT_KINDS = frozenset({pb.RECORD_KIND_ALERT, pb.RECORD_KIND_RETRACTION, pb.RECORD_KIND_CORRECTION})


def header_kind(kind: pb.RecordKind.ValueType) -> pb.RecordKind.ValueType:
    """What a version 2 header says of a record of `kind`: only its class."""
    if kind == pb.RECORD_KIND_KEY:
        return kind
    return pb.RECORD_KIND_SEALED_URGENT if kind in URGENT_KINDS else pb.RECORD_KIND_SEALED


def is_sealed(header: pb.EnvelopeHeader) -> bool:
    """Does the record's id, kind and view travel inside the ciphertext (version 2)?"""
    return header.kind in SEALED_KINDS


def open_body(envelope: pb.Envelope, header: pb.EnvelopeHeader, audience_key: bytes) -> bytes:
    """Decrypt a record envelope's body (verify it first, or read it from a log
    that stores only verified envelopes)."""
    ct = envelope.ciphertext
    try:
        return AESGCM(audience_key).decrypt(ct[:NONCE_BYTES], ct[NONCE_BYTES:], envelope.header)
    except InvalidTag as e:
        raise DecryptionError(
            f"envelope {header.record_id} of {header.origin} does not open under {header.audience} "
            f"epoch {header.epoch} key"
        ) from e
