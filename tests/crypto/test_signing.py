"""Tests of crypto.signing: the key ring and its validity windows.

Kenya's node signed with key k1 from March until it rotated to k2 at the end
of November; Tanzania has its own key. A signature is checked against the key
its envelope names, and only within that key's window [not_before, not_after).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crypto.errors import CryptoError, KeyWindowError, SignatureError, UnknownKeyError
from crypto.keys import SigningKey
from crypto.signing import KeyRing, PublicSigningKey
from node.storage.key_files import KeyDirectory

K1_FROM = datetime(2026, 3, 1, tzinfo=UTC)
ROTATED_AT = datetime(2026, 11, 28, 12, tzinfo=UTC)
NOW = ROTATED_AT
MESSAGE = b"gcn-envelope-v1\x00 seizure of 212 ivory tusks at Mombasa"

KE_K1 = SigningKey.generate(K1_FROM)
KE_K2 = SigningKey.generate(ROTATED_AT)
TZ_K = SigningKey.generate(K1_FROM)

RING = KeyRing(
    [
        PublicSigningKey("KE", KE_K1.key_id, KE_K1.public_raw, K1_FROM, ROTATED_AT),
        PublicSigningKey("KE", KE_K2.key_id, KE_K2.public_raw, ROTATED_AT),
        PublicSigningKey("TZ", TZ_K.key_id, TZ_K.public_raw, K1_FROM),
    ]
)


@dataclass(frozen=True)
class Attempt:
    """One call to `KeyRing.verify`: who is claimed, with which key, over what, when."""

    node_id: str
    key_id: str
    message: bytes
    signature: bytes
    at: datetime


def by(key: SigningKey, node_id: str = "KE", at: datetime = NOW, message: bytes = MESSAGE) -> Attempt:
    return Attempt(node_id, key.key_id, message, key.sign(message), at)


def flip_first_bit(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


VALID = [
    pytest.param(by(KE_K2), KE_K2, id="current-key-now"),
    pytest.param(by(KE_K2, at=ROTATED_AT), KE_K2, id="current-key-at-its-first-instant"),
    pytest.param(by(KE_K1, at=datetime(2026, 6, 1, tzinfo=UTC)), KE_K1, id="retired-key-inside-its-window"),
    pytest.param(by(KE_K1, at=K1_FROM), KE_K1, id="retired-key-at-its-first-instant"),
    pytest.param(
        by(KE_K1, at=ROTATED_AT - timedelta(microseconds=1)), KE_K1, id="retired-key-at-its-last-instant"
    ),
    pytest.param(by(TZ_K, node_id="TZ"), TZ_K, id="another-node-own-key"),
]


@pytest.mark.parametrize(("attempt", "signer"), VALID)
def test_verify_accepts(attempt: Attempt, signer: SigningKey) -> None:
    key = RING.verify(attempt.node_id, attempt.key_id, attempt.message, attempt.signature, attempt.at)

    assert (key.node_id, key.key_id, key.public_raw) == (attempt.node_id, signer.key_id, signer.public_raw)


def _other_key_named_k2() -> Attempt:
    a = by(TZ_K)
    return Attempt("KE", KE_K2.key_id, a.message, a.signature, NOW)


def _altered_message() -> Attempt:
    a = by(KE_K2)
    return Attempt("KE", a.key_id, a.message.replace(b"212", b"213"), a.signature, NOW)


def _altered_signature() -> Attempt:
    a = by(KE_K2)
    return Attempt("KE", a.key_id, a.message, flip_first_bit(a.signature), NOW)


def _truncated_signature() -> Attempt:
    a = by(KE_K2)
    return Attempt("KE", a.key_id, a.message, a.signature[:63], NOW)


REFUSED = [
    pytest.param(
        Attempt("KE", "00000000deadbeef", MESSAGE, KE_K2.sign(MESSAGE), NOW),
        UnknownKeyError,
        "no signing key 00000000deadbeef is known for node KE",
        id="unknown-key-id",
    ),
    pytest.param(
        by(TZ_K, node_id="KE"),
        UnknownKeyError,
        f"no signing key {TZ_K.key_id} is known for node KE",
        id="key-of-another-node-claimed-as-own",
    ),
    pytest.param(by(KE_K2, node_id="UG"), UnknownKeyError, "is known for node UG", id="unknown-node"),
    pytest.param(
        by(KE_K2, at=ROTATED_AT - timedelta(seconds=1)),
        KeyWindowError,
        f"signature by key {KE_K2.key_id} of KE not valid at 2026-11-28T11:59:59",
        id="key-not-yet-valid",
    ),
    pytest.param(
        by(KE_K1, at=ROTATED_AT),
        KeyWindowError,
        f"signature by key {KE_K1.key_id} of KE not valid at 2026-11-28T12:00:00",
        id="retired-key-expired-at-rotation",
    ),
    pytest.param(
        by(KE_K1, at=datetime(2026, 2, 28, tzinfo=UTC)),
        KeyWindowError,
        "not valid at 2026-02-28",
        id="retired-key-before-its-window",
    ),
    pytest.param(_other_key_named_k2(), SignatureError, "does not verify", id="signature-by-another-key"),
    pytest.param(_altered_message(), SignatureError, "does not verify", id="altered-message"),
    pytest.param(_altered_signature(), SignatureError, "does not verify", id="altered-signature"),
    pytest.param(_truncated_signature(), SignatureError, "does not verify", id="truncated-signature"),
]


@pytest.mark.parametrize(("attempt", "error", "why"), REFUSED)
def test_verify_refuses(attempt: Attempt, error: type[CryptoError], why: str) -> None:
    with pytest.raises(error) as err:
        RING.verify(attempt.node_id, attempt.key_id, attempt.message, attempt.signature, attempt.at)

    assert type(err.value) is error
    assert why in str(err.value)


def test_window_is_named_in_the_refusal() -> None:
    a = by(KE_K1, at=NOW)

    with pytest.raises(SignatureError) as err:
        RING.verify(a.node_id, a.key_id, a.message, a.signature, a.at)

    assert f"key valid {K1_FROM.isoformat()} .. {ROTATED_AT.isoformat()}" in str(err.value)


def test_ring_lists_keys_per_node() -> None:
    assert {k.key_id for k in RING.keys_of("KE")} == {KE_K1.key_id, KE_K2.key_id}
    assert [k.key_id for k in RING.keys_of("TZ")] == [TZ_K.key_id]
    assert RING.keys_of("UG") == []
    assert ("KE", KE_K1.key_id) in RING
    assert ("TZ", KE_K1.key_id) not in RING
    assert KeyRing().keys_of("KE") == []


def test_rotation_on_disk_keeps_old_signatures_verifying(tmp_path: Path) -> None:
    """A node signs in June, rotates in November, and builds its ring from its key
    directory: the June signature still verifies; the old key cannot sign for December."""
    directory = KeyDirectory(tmp_path / "keys")
    june = datetime(2026, 6, 1, tzinfo=UTC)
    old = directory.create(K1_FROM)
    june_signature = old.signing.sign(MESSAGE)

    keys = directory.rotate_signing(ROTATED_AT)
    ring = KeyRing(
        [PublicSigningKey("KE", r.key_id, r.public_raw, r.not_before, r.not_after) for r in keys.retired]
        + [PublicSigningKey("KE", keys.signing.key_id, keys.signing.public_raw, keys.signing.not_before)]
    )

    assert ring.verify("KE", old.signing.key_id, MESSAGE, june_signature, june).key_id == old.signing.key_id
    with pytest.raises(SignatureError, match="not valid at 2026-12-01"):
        ring.verify(
            "KE", old.signing.key_id, MESSAGE, old.signing.sign(MESSAGE), datetime(2026, 12, 1, tzinfo=UTC)
        )
    new_signature = keys.signing.sign(MESSAGE)
    assert ring.verify("KE", keys.signing.key_id, MESSAGE, new_signature, NOW).not_after is None
