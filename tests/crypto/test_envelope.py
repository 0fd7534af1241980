"""Tests of crypto.envelope: sealing, verifying and opening envelopes.

Kenya (KE) seals a seizure for the region:ESA audience; any node that holds
Kenya's signing key can verify it byte for byte, and a member holding the
audience key can open it. Every way an envelope can be tampered with on the
wire, or sealed wrongly by a buggy or hostile origin, is refused with its own
error class and a message that says why.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from crypto.audience import MemberKey, build_key_message, new_epoch_key, unwrap_for
from crypto.envelope import (
    ENVELOPE_VERSION,
    NONCE_BYTES,
    VerifiedEnvelope,
    envelope_hash,
    open_body,
    seal,
    verify,
)
from crypto.errors import (
    CryptoError,
    DecryptionError,
    KeyWindowError,
    MalformedEnvelopeError,
    SignatureError,
    UnknownKeyError,
)
from crypto.keys import EncryptionKey
from gcn.v1 import envelope_pb2 as pb
from tests.crypto.envelope_fixtures import (
    BODY,
    ESA_KEY,
    KE,
    OTHER_KEY,
    PREV_HASH,
    RECORD_ID,
    RING,
    TZ,
    copy,
    flip_bit,
    sealed,
    seizure_header,
    signed_as,
)

# --- round trips ----------------------------------------------------------------------


def test_seal_verify_open_round_trip() -> None:
    v = sealed()

    wire = pb.Envelope.FromString(v.envelope.SerializeToString())
    checked = verify(wire, RING)

    assert open_body(wire, checked.header, ESA_KEY) == BODY
    assert checked.hash == v.hash == envelope_hash(wire)
    assert checked.header == v.header
    assert (checked.header.version, checked.header.key_id) == (ENVELOPE_VERSION, KE.key_id)
    assert (checked.signer.node_id, checked.signer.key_id) == ("KE", KE.key_id)
    assert BODY not in wire.SerializeToString()


def test_a_version_1_envelope_still_verifies_and_opens() -> None:
    """Stored envelopes are immutable: those written before version 2 (the
    record's id, kind and view in clear) keep verifying."""
    v = seal(seizure_header(kind=pb.RECORD_KIND_SEIZURE, view=pb.VIEW_FULL), BODY, KE, ESA_KEY)
    checked = verify(pb.Envelope.FromString(v.envelope.SerializeToString()), RING)

    assert (checked.header.version, checked.header.kind, checked.header.view) == (
        1,
        pb.RECORD_KIND_SEIZURE,
        pb.VIEW_FULL,
    )
    assert open_body(v.envelope, checked.header, ESA_KEY) == BODY


def test_each_seal_uses_a_fresh_nonce() -> None:
    a, b = sealed(), sealed()

    assert a.envelope.header == b.envelope.header
    assert a.envelope.ciphertext[:NONCE_BYTES] != b.envelope.ciphertext[:NONCE_BYTES]
    assert a.hash != b.hash


def test_key_message_round_trip() -> None:
    """KE announces epoch 4 of region:ESA: the key message travels in clear
    (each wrap is sealed to one member), is signed like any envelope, and the
    key it carries opens the records of that epoch."""
    tz_enc = EncryptionKey.generate()
    epoch_key = new_epoch_key()
    msg = build_key_message("region:ESA", 4, epoch_key, {"TZ": MemberKey(tz_enc.key_id, tz_enc.public_raw)})
    header = seizure_header(kind=pb.RECORD_KIND_KEY, epoch=0, view=pb.VIEW_UNSPECIFIED)

    v = seal(header, msg.SerializeToString(), KE, None)
    checked = verify(pb.Envelope.FromString(v.envelope.SerializeToString()), RING)

    assert checked.header.kind == pb.RECORD_KIND_KEY
    assert checked.header.epoch == 0
    received = pb.KeyMessage.FromString(checked.envelope.ciphertext)
    assert received == msg
    assert unwrap_for(received, "TZ", tz_enc) == epoch_key
    record = seal(seizure_header(epoch=4), BODY, KE, epoch_key)
    assert open_body(record.envelope, verify(record.envelope, RING).header, epoch_key) == BODY


SEAL_MISUSES = [
    pytest.param(seizure_header(), None, id="record-without-audience-key"),
    pytest.param(seizure_header(epoch=0), ESA_KEY, id="record-in-epoch-0"),
    pytest.param(
        seizure_header(kind=pb.RECORD_KIND_KEY, epoch=0), ESA_KEY, id="key-message-with-audience-key"
    ),
    pytest.param(seizure_header(kind=pb.RECORD_KIND_KEY, epoch=3), None, id="key-message-in-epoch-3"),
]


@pytest.mark.parametrize(("header", "audience_key"), SEAL_MISUSES)
def test_seal_refuses_a_kind_and_key_that_do_not_match(
    header: pb.EnvelopeHeader, audience_key: bytes | None
) -> None:
    with pytest.raises(ValueError, match="epoch"):
        seal(header, BODY, KE, audience_key)


# --- tampering ------------------------------------------------------------------------


def _flip_in_record_id(v: VerifiedEnvelope) -> pb.Envelope:
    at = v.envelope.header.index(RECORD_ID.encode())
    return copy(v.envelope, header=flip_bit(v.envelope.header, at * 8))


def _reorder_header(v: VerifiedEnvelope) -> pb.Envelope:
    """The same header fields, serialized in another order: a relay that
    re-serializes instead of forwarding bytes breaks the signature."""
    header = pb.EnvelopeHeader.FromString(v.envelope.header)
    kind = pb.EnvelopeHeader(kind=header.kind).SerializeToString()
    header.ClearField("kind")
    return copy(v.envelope, header=kind + header.SerializeToString())


def _claim_tz_and_its_key(header: pb.EnvelopeHeader) -> None:
    header.origin = "TZ"
    header.key_id = TZ.key_id


def _break_origin_and_seq(header: pb.EnvelopeHeader) -> None:
    header.origin = ""
    header.seq = 0


TAMPERED: list[object] = [
    pytest.param(_flip_in_record_id, SignatureError, "does not verify", id="bit-flipped-in-header"),
    pytest.param(
        _reorder_header, SignatureError, "does not verify", id="header-re-serialized-in-another-order"
    ),
    pytest.param(
        lambda v: copy(v.envelope, ciphertext=flip_bit(v.envelope.ciphertext, 200)),
        SignatureError,
        "does not verify",
        id="bit-flipped-in-ciphertext",
    ),
    pytest.param(
        lambda v: copy(v.envelope, ciphertext=v.envelope.ciphertext + b"\x00"),
        SignatureError,
        "does not verify",
        id="byte-appended-to-ciphertext",
    ),
    pytest.param(
        lambda v: copy(v.envelope, signature=flip_bit(v.envelope.signature, 77)),
        SignatureError,
        "does not verify",
        id="bit-flipped-in-signature",
    ),
    pytest.param(
        lambda v: copy(v.envelope, signature=v.envelope.signature[:63]),
        MalformedEnvelopeError,
        "signature must be 64 bytes",
        id="signature-truncated",
    ),
    pytest.param(
        lambda v: copy(v.envelope, signature=b""),
        MalformedEnvelopeError,
        "signature must be 64 bytes",
        id="signature-missing",
    ),
    pytest.param(
        lambda v: copy(v.envelope, header=v.envelope.header[:-1]),
        MalformedEnvelopeError,
        "header does not parse",
        id="header-truncated",
    ),
    pytest.param(
        lambda v: copy(v.envelope, header=v.envelope.header.replace(b"KE", b"\xff\xfe")),
        MalformedEnvelopeError,
        "header does not parse",
        id="header-origin-not-utf8",
    ),
    pytest.param(
        lambda v: copy(v.envelope, ciphertext=v.envelope.ciphertext[: NONCE_BYTES + 15]),
        MalformedEnvelopeError,
        "ciphertext is shorter than a nonce and a tag",
        id="ciphertext-shorter-than-nonce-and-tag",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "origin", "")),
        MalformedEnvelopeError,
        "origin is empty",
        id="origin-missing",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "record_id", "")),
        MalformedEnvelopeError,
        "record_id is empty",
        id="record-id-missing",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "audience", "")),
        MalformedEnvelopeError,
        "audience is empty",
        id="audience-missing",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "key_id", "")),
        MalformedEnvelopeError,
        "key_id is empty",
        id="key-id-missing",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "version", 3)),
        MalformedEnvelopeError,
        "version 3 is not one of [1, 2]",
        id="future-version",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "kind", pb.RECORD_KIND_ALERT)),
        MalformedEnvelopeError,
        "kind 2 is not a header kind of version 2",
        id="v2-header-naming-the-records-kind",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "view", pb.VIEW_FULL)),
        MalformedEnvelopeError,
        "a version 2 header carries no view",
        id="v2-header-naming-the-view",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: h.MergeFrom(pb.EnvelopeHeader(version=1, view=pb.VIEW_FULL))),
        MalformedEnvelopeError,
        "kind 6 is not a header kind of version 1",
        id="v1-header-with-a-class",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "seq", 0)),
        MalformedEnvelopeError,
        "seq must be >= 1",
        id="seq-0",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: h.ClearField("prev_hash")),
        MalformedEnvelopeError,
        "prev_hash must be 32 bytes",
        id="seq-42-without-prev-hash",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "prev_hash", PREV_HASH[:20])),
        MalformedEnvelopeError,
        "prev_hash must be 32 bytes",
        id="prev-hash-short",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "seq", 1)),
        MalformedEnvelopeError,
        "the first envelope of a stream has no prev_hash",
        id="seq-1-with-prev-hash",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "kind", 99)),
        MalformedEnvelopeError,
        "kind 99 is not a header kind of version 2",
        id="kind-unknown",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "kind", pb.RECORD_KIND_UNSPECIFIED)),
        MalformedEnvelopeError,
        "kind 0 is not a header kind of version 2",
        id="kind-unspecified",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "epoch", 0)),
        MalformedEnvelopeError,
        "epoch 0 is for key messages only",
        id="record-in-epoch-0",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "kind", pb.RECORD_KIND_KEY)),
        MalformedEnvelopeError,
        "epoch 0 is for key messages only",
        id="key-message-in-epoch-3",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: h.ClearField("created_at")),
        MalformedEnvelopeError,
        "created_at is missing",
        id="created-at-missing",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: setattr(h, "origin", "TZ")),
        UnknownKeyError,
        f"no signing key {KE.key_id} is known for node TZ",
        id="claims-another-origin-with-own-key-id",
    ),
    pytest.param(
        lambda v: signed_as(_claim_tz_and_its_key),
        SignatureError,
        f"signature by key {TZ.key_id} of TZ does not verify",
        id="claims-another-origin-and-its-key-id",
    ),
    pytest.param(
        lambda v: signed_as(lambda h: h.created_at.FromDatetime(datetime(2026, 1, 1, tzinfo=UTC))),
        KeyWindowError,
        f"signature by key {KE.key_id} of KE not valid at 2026-01-01",
        id="backdated-before-the-signing-key-existed",
    ),
]


@pytest.mark.parametrize(("tamper", "error", "why"), TAMPERED)
def test_verify_refuses(
    tamper: Callable[[VerifiedEnvelope], pb.Envelope], error: type[CryptoError], why: str
) -> None:
    envelope = tamper(sealed())

    with pytest.raises(error) as err:
        verify(envelope, RING)

    assert type(err.value) is error
    assert why in str(err.value)


def test_malformed_header_names_every_broken_rule() -> None:
    envelope = signed_as(_break_origin_and_seq)

    with pytest.raises(MalformedEnvelopeError) as err:
        verify(envelope, RING)

    assert "origin is empty" in str(err.value)
    assert "seq must be >= 1" in str(err.value)


def test_verify_refuses_a_created_at_no_calendar_can_hold() -> None:
    """No key is needed: the header is parsed and its time converted before the
    signature is checked, so any peer can send this."""
    envelope = signed_as(lambda h: setattr(h.created_at, "seconds", 253402300800))  # 10000-01-01
    envelope.signature = bytes(64)

    with pytest.raises(MalformedEnvelopeError, match="created_at"):
        verify(envelope, RING)


def test_open_with_the_wrong_audience_key_is_refused() -> None:
    v = sealed()
    checked = verify(v.envelope, RING)

    with pytest.raises(DecryptionError) as err:
        open_body(v.envelope, checked.header, OTHER_KEY)

    assert str(err.value) == (f"envelope {RECORD_ID} of KE does not open under region:ESA epoch 3 key")


def test_open_alone_refuses_a_flipped_ciphertext_bit() -> None:
    """Even a reader that skips `verify` (it trusts its own log) cannot be fed an altered body."""
    v = sealed()
    tampered = copy(v.envelope, ciphertext=flip_bit(v.envelope.ciphertext, 8 * NONCE_BYTES + 3))

    with pytest.raises(DecryptionError, match="does not open"):
        open_body(tampered, v.header, ESA_KEY)


def test_body_is_bound_to_its_header() -> None:
    """The ciphertext of record A, re-signed by the origin under the header of
    record B, does not open: the header bytes are the AES-GCM associated data."""
    a = sealed()
    moved = signed_as(
        lambda h: setattr(h, "record_id", "00000000-0000-4000-8000-000000000000"),
        ciphertext=a.envelope.ciphertext,
    )
    checked = verify(moved, RING)

    with pytest.raises(DecryptionError, match="00000000-0000-4000-8000-000000000000 of KE does not open"):
        open_body(moved, checked.header, ESA_KEY)


def test_every_single_bit_flip_of_an_envelope_is_refused() -> None:
    """Exhaustive over one small envelope: each of its bits, flipped alone."""
    v = sealed(b"ivory")
    for part in ("header", "ciphertext", "signature"):
        data: bytes = getattr(v.envelope, part)
        for bit in range(len(data) * 8):
            tampered = copy(v.envelope, **{part: flip_bit(data, bit)})
            with pytest.raises(CryptoError):
                open_body(tampered, verify(tampered, RING).header, ESA_KEY)


# --- envelope hash --------------------------------------------------------------------


def test_envelope_hash_is_stable() -> None:
    v = sealed()
    wire = pb.Envelope.FromString(v.envelope.SerializeToString())

    assert envelope_hash(wire) == envelope_hash(v.envelope) == v.hash
    assert len(v.hash) == 32


@pytest.mark.parametrize("part", ["header", "ciphertext", "signature"])
def test_envelope_hash_changes_with_any_part(part: str) -> None:
    v = sealed()
    data: bytes = getattr(v.envelope, part)

    for changed in (flip_bit(data, 0), flip_bit(data, len(data) * 8 - 1), data + b"\x00", data[:-1]):
        assert envelope_hash(copy(v.envelope, **{part: changed})) != v.hash


def test_envelope_hash_separates_parts() -> None:
    """Moving a byte across the boundary of two parts changes the hash (length prefixes)."""
    e = sealed().envelope

    moved = copy(e, header=e.header + e.ciphertext[:1], ciphertext=e.ciphertext[1:])

    assert envelope_hash(moved) != envelope_hash(e)
