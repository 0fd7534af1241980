"""Tests of node.storage.key_files: a node's key directory on disk.

The story: a node runs `gcn init` once (create), restarts many times (load),
and now and then rotates its signing key; its old envelopes must keep
verifying, its private keys never leave 0600 files, and no log line that
prints a key object can leak one.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from crypto.errors import KeyStoreError
from crypto.keys import EncryptionKey, NodeKeys, RetiredKey, SigningKey, key_id_for
from node.storage.key_files import ENCRYPTION_FILE, MANIFEST_FILE, SIGNING_DIR, KeyDirectory

INIT_AT = datetime(2026, 3, 1, 9, tzinfo=UTC)
ROTATED_AT = datetime(2026, 11, 28, 12, tzinfo=UTC)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def private_secrets(private: Ed25519PrivateKey | X25519PrivateKey) -> list[str]:
    """Every rendering of a private key that must never appear in a repr:
    the PKCS#8 PEM, its base64 body, and the raw private bytes in hex."""
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    return [pem, body, raw.hex(), raw.hex().upper(), repr(raw)]


@pytest.fixture
def key_dir(tmp_path: Path) -> KeyDirectory:
    return KeyDirectory(tmp_path / "keys")


# --- create ---------------------------------------------------------------------


def test_create_writes_private_keys_0600_in_a_0700_directory(key_dir: KeyDirectory) -> None:
    keys = key_dir.create(INIT_AT)

    signing_file = key_dir.path / SIGNING_DIR / f"{keys.signing.key_id}.pem"
    assert mode_of(key_dir.path) == 0o700
    assert mode_of(key_dir.path / SIGNING_DIR) == 0o700
    assert mode_of(signing_file) == 0o600
    assert mode_of(key_dir.path / ENCRYPTION_FILE) == 0o600
    assert key_dir.exists()
    assert keys.signing.not_before == INIT_AT
    assert keys.retired == ()


def test_create_tightens_an_existing_open_directory(key_dir: KeyDirectory) -> None:
    key_dir.path.mkdir(mode=0o755)
    key_dir.path.chmod(0o755)

    key_dir.create(INIT_AT)

    assert mode_of(key_dir.path) == 0o700


def test_manifest_is_public_and_holds_no_private_key(key_dir: KeyDirectory) -> None:
    keys = key_dir.create(INIT_AT)

    text = (key_dir.path / MANIFEST_FILE).read_text()
    manifest = json.loads(text)
    assert manifest["signing"]["current"]["key_id"] == keys.signing.key_id
    assert manifest["signing"]["current"]["public"] == keys.signing.public_raw.hex()
    assert manifest["encryption"]["public"] == keys.encryption.public_raw.hex()
    for secret in private_secrets(keys.signing.private) + private_secrets(keys.encryption.private):
        assert secret not in text


def test_create_refuses_to_overwrite_existing_keys(key_dir: KeyDirectory) -> None:
    first = key_dir.create(INIT_AT)

    with pytest.raises(KeyStoreError, match="refusing to overwrite"):
        key_dir.create(ROTATED_AT)

    again = key_dir.load()
    assert again.signing.key_id == first.signing.key_id
    assert again.encryption.key_id == first.encryption.key_id
    assert list((key_dir.path / SIGNING_DIR).iterdir()) == [
        key_dir.path / SIGNING_DIR / f"{first.signing.key_id}.pem"
    ]


# --- load -------------------------------------------------------------------------


def test_load_round_trips_what_create_wrote(key_dir: KeyDirectory) -> None:
    created = key_dir.create(INIT_AT)

    loaded = key_dir.load()

    assert loaded.signing.key_id == created.signing.key_id
    assert loaded.signing.public_raw == created.signing.public_raw
    assert loaded.signing.not_before == INIT_AT
    assert loaded.encryption.key_id == created.encryption.key_id
    assert loaded.encryption.public_raw == created.encryption.public_raw
    assert loaded.retired == ()
    # the loaded private key is the created one: its signature verifies under the old public key
    created.signing.private.public_key().verify(loaded.signing.sign(b"restart"), b"restart")


@pytest.mark.parametrize(
    ("file", "mode"),
    [
        pytest.param("signing", 0o644, id="signing-key-world-readable"),
        pytest.param("signing", 0o640, id="signing-key-group-readable"),
        pytest.param("signing", 0o604, id="signing-key-others-readable"),
        pytest.param("signing", 0o620, id="signing-key-group-writable"),
        pytest.param("encryption", 0o644, id="encryption-key-world-readable"),
        pytest.param("encryption", 0o660, id="encryption-key-group-read-write"),
    ],
)
def test_load_refuses_a_key_file_others_can_read(key_dir: KeyDirectory, file: str, mode: int) -> None:
    keys = key_dir.create(INIT_AT)
    path = (
        key_dir.path / SIGNING_DIR / f"{keys.signing.key_id}.pem"
        if file == "signing"
        else key_dir.path / ENCRYPTION_FILE
    )
    path.chmod(mode)

    with pytest.raises(KeyStoreError) as err:
        key_dir.load()

    message = str(err.value)
    assert f"mode {mode:o}" in message
    assert str(path) in message
    assert "0600" in message


def test_load_accepts_a_key_file_tightened_to_0400(key_dir: KeyDirectory) -> None:
    keys = key_dir.create(INIT_AT)
    (key_dir.path / ENCRYPTION_FILE).chmod(0o400)

    assert key_dir.load().encryption.key_id == keys.encryption.key_id


def _no_manifest(d: KeyDirectory, keys: NodeKeys) -> None:
    (d.path / MANIFEST_FILE).unlink()


def _manifest_not_json(d: KeyDirectory, keys: NodeKeys) -> None:
    (d.path / MANIFEST_FILE).write_text("{ not json")


def _signing_file_gone(d: KeyDirectory, keys: NodeKeys) -> None:
    (d.path / SIGNING_DIR / f"{keys.signing.key_id}.pem").unlink()


def _encryption_file_gone(d: KeyDirectory, keys: NodeKeys) -> None:
    (d.path / ENCRYPTION_FILE).unlink()


def _signing_file_garbage(d: KeyDirectory, keys: NodeKeys) -> None:
    (d.path / SIGNING_DIR / f"{keys.signing.key_id}.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nxx\n")


def _files_swapped(d: KeyDirectory, keys: NodeKeys) -> None:
    signing = d.path / SIGNING_DIR / f"{keys.signing.key_id}.pem"
    encryption = d.path / ENCRYPTION_FILE
    a, b = signing.read_bytes(), encryption.read_bytes()
    signing.write_bytes(b)
    encryption.write_bytes(a)


def _signing_file_of_another_key(d: KeyDirectory, keys: NodeKeys) -> None:
    other = SigningKey.generate(INIT_AT).private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (d.path / SIGNING_DIR / f"{keys.signing.key_id}.pem").write_bytes(other)


BROKEN_DIRECTORIES = [
    pytest.param(_no_manifest, "no keys in", id="manifest-missing"),
    pytest.param(_manifest_not_json, "is not valid JSON", id="manifest-not-json"),
    pytest.param(_signing_file_gone, "does not exist", id="signing-key-file-missing"),
    pytest.param(_encryption_file_gone, "does not exist", id="encryption-key-file-missing"),
    pytest.param(_signing_file_garbage, "does not hold a valid private key", id="signing-key-file-garbage"),
    pytest.param(_files_swapped, "is not an Ed25519 key", id="signing-and-encryption-files-swapped"),
    pytest.param(_signing_file_of_another_key, "does not match key id", id="signing-key-file-of-another-key"),
]


@pytest.mark.parametrize(("damage", "why"), BROKEN_DIRECTORIES)
def test_load_refuses_a_broken_directory(
    key_dir: KeyDirectory, damage: Callable[[KeyDirectory, NodeKeys], None], why: str
) -> None:
    damage(key_dir, key_dir.create(INIT_AT))

    with pytest.raises(KeyStoreError, match=why):
        key_dir.load()


def test_load_refuses_a_manifest_without_a_current_key(key_dir: KeyDirectory) -> None:
    key_dir.create(INIT_AT)
    (key_dir.path / MANIFEST_FILE).write_text("{}\n")

    with pytest.raises(KeyStoreError):
        key_dir.load()


# --- rotation and key ids -----------------------------------------------------------


def test_rotate_signing_retires_the_old_key_at_the_rotation_time(key_dir: KeyDirectory) -> None:
    old = key_dir.create(INIT_AT)

    rotated = key_dir.rotate_signing(ROTATED_AT)

    assert rotated.signing.key_id != old.signing.key_id
    assert rotated.signing.not_before == ROTATED_AT
    assert rotated.encryption.key_id == old.encryption.key_id
    assert rotated.retired == (RetiredKey(old.signing.key_id, old.signing.public_raw, INIT_AT, ROTATED_AT),)
    assert mode_of(key_dir.path / SIGNING_DIR / f"{rotated.signing.key_id}.pem") == 0o600
    loaded = key_dir.load()
    assert loaded.signing.key_id == rotated.signing.key_id
    assert loaded.retired == rotated.retired


def test_second_rotation_keeps_both_retired_windows_in_order(key_dir: KeyDirectory) -> None:
    first = key_dir.create(INIT_AT)
    middle_at = datetime(2026, 7, 1, tzinfo=UTC)
    second = key_dir.rotate_signing(middle_at)

    third = key_dir.rotate_signing(ROTATED_AT)

    assert [(r.key_id, r.not_before, r.not_after) for r in third.retired] == [
        (first.signing.key_id, INIT_AT, middle_at),
        (second.signing.key_id, middle_at, ROTATED_AT),
    ]
    assert key_dir.load().retired == third.retired


def test_key_ids_are_derived_from_public_keys(key_dir: KeyDirectory) -> None:
    key_dir.create(INIT_AT)
    keys = key_dir.rotate_signing(ROTATED_AT)

    assert keys.signing.key_id == key_id_for(keys.signing.public_raw)
    assert keys.encryption.key_id == key_id_for(keys.encryption.public_raw)
    assert all(r.key_id == key_id_for(r.public_raw) for r in keys.retired)
    assert len(keys.signing.key_id) == 16
    int(keys.signing.key_id, 16)


def test_generated_keys_have_ids_of_their_public_halves() -> None:
    signing, encryption = SigningKey.generate(INIT_AT), EncryptionKey.generate()

    assert signing.key_id == key_id_for(signing.public_raw)
    assert encryption.key_id == key_id_for(encryption.public_raw)
    assert SigningKey.generate(INIT_AT).key_id != signing.key_id


# --- no private material in reprs ---------------------------------------------------


def test_repr_of_keys_never_shows_private_material(key_dir: KeyDirectory) -> None:
    keys = key_dir.create(INIT_AT)
    secrets = private_secrets(keys.signing.private) + private_secrets(keys.encryption.private)

    for shown in (
        repr(keys.signing),
        str(keys.signing),
        repr(keys.encryption),
        str(keys.encryption),
        repr(keys),
        repr(key_dir.load()),
    ):
        for secret in secrets:
            assert secret not in shown
    assert keys.signing.key_id in repr(keys.signing)
    assert keys.encryption.key_id in repr(keys.encryption)
