"""Tests of crypto.keys: key ids, and the serialized forms of a node's keys
(private PEM, public manifest), without any file.

The key directory on disk is tested in tests/node/storage/test_key_files.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization

from crypto.errors import KeyStoreError
from crypto.keys import (
    EncryptionKey,
    KeyManifest,
    NodeKeys,
    RetiredKey,
    SigningKey,
    key_id_for,
    manifest_json,
    node_keys,
    parse_manifest,
    parse_private_pem,
    private_pem,
)

INIT_AT = datetime(2026, 3, 1, 9, tzinfo=UTC)
ROTATED_AT = datetime(2026, 11, 28, 12, tzinfo=UTC)
WRITTEN_AT = datetime(2026, 11, 28, 12, 5, tzinfo=UTC)


def _rotated() -> NodeKeys:
    old = SigningKey.generate(INIT_AT)
    retired = RetiredKey(old.key_id, old.public_raw, INIT_AT, ROTATED_AT)
    return NodeKeys(SigningKey.generate(ROTATED_AT), EncryptionKey.generate(), (retired,))


def test_generated_keys_have_ids_of_their_public_halves() -> None:
    signing, encryption = SigningKey.generate(INIT_AT), EncryptionKey.generate()

    assert signing.key_id == key_id_for(signing.public_raw)
    assert encryption.key_id == key_id_for(encryption.public_raw)
    assert SigningKey.generate(INIT_AT).key_id != signing.key_id


def test_a_private_key_round_trips_through_its_pem() -> None:
    signing, encryption = SigningKey.generate(INIT_AT), EncryptionKey.generate()

    for key in (signing.private, encryption.private):
        pem = private_pem(key)
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        again = parse_private_pem(pem)
        assert private_pem(again) == pem


@pytest.mark.parametrize(
    ("pem", "why"),
    [
        pytest.param(b"-----BEGIN PRIVATE KEY-----\nxx\n", "does not hold a valid private key", id="garbage"),
        pytest.param(b"", "does not hold a valid private key", id="empty"),
    ],
)
def test_a_bad_pem_is_refused_with_the_reason(pem: bytes, why: str) -> None:
    with pytest.raises(KeyStoreError, match=why):
        parse_private_pem(pem)


def test_the_manifest_round_trips_and_holds_public_keys_only() -> None:
    keys = _rotated()

    data = manifest_json(keys, WRITTEN_AT)

    assert parse_manifest(data) == KeyManifest(keys.signing.key_id, ROTATED_AT, keys.retired)
    doc = json.loads(data)
    assert doc["encryption"] == {"key_id": keys.encryption.key_id, "public": keys.encryption.public_raw.hex()}
    assert doc["written_at"] == WRITTEN_AT.isoformat()
    raw_format = (serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    raw = [k.private_bytes(*raw_format) for k in (keys.signing.private, keys.encryption.private)]
    for secret in raw:
        assert secret.hex() not in data.decode()
    assert b"PRIVATE" not in data


@pytest.mark.parametrize(
    ("data", "why"),
    [
        pytest.param(b"{ not json", "is not valid JSON", id="not-json"),
        pytest.param(b"{}", "has no current signing key", id="no-current-key"),
        pytest.param(b'{"signing": []}', "has no current signing key", id="signing-not-a-table"),
    ],
)
def test_a_bad_manifest_is_refused_with_the_reason(data: bytes, why: str) -> None:
    with pytest.raises(KeyStoreError, match=why):
        parse_manifest(data)


def test_node_keys_checks_the_private_keys_belong_to_the_manifest() -> None:
    keys = _rotated()
    manifest = parse_manifest(manifest_json(keys, WRITTEN_AT))

    loaded = node_keys(manifest, keys.signing.private, keys.encryption.private)

    assert loaded.signing.key_id == keys.signing.key_id
    assert loaded.signing.not_before == ROTATED_AT
    assert loaded.retired == keys.retired
    with pytest.raises(KeyStoreError, match="is not an Ed25519 key"):
        node_keys(manifest, keys.encryption.private, keys.signing.private)
    with pytest.raises(KeyStoreError, match="does not match key id"):
        node_keys(manifest, SigningKey.generate(INIT_AT).private, keys.encryption.private)


def test_repr_of_generated_keys_never_shows_private_material() -> None:
    keys = _rotated()
    pems = [private_pem(keys.signing.private).decode(), private_pem(keys.encryption.private).decode()]
    bodies = ["".join(line for line in p.splitlines() if not line.startswith("-----")) for p in pems]

    for shown in (repr(keys.signing), str(keys.encryption), repr(keys)):
        for secret in pems + bodies:
            assert secret not in shown
    assert keys.signing.key_id in repr(keys.signing)
