"""A node's own private keys: an Ed25519 signing key and an X25519 encryption
key, and their serialized forms (PKCS8 PEM for the private keys, a public JSON
manifest naming the current signing key and the windows of retired ones).

Nothing here touches a file: `node.storage.key_files` keeps them on disk.

Invariants:
- key ids are derived from the public key (never chosen), so a key id names
  exactly one key;
- the manifest holds public keys only;
- nothing here logs, and no repr of a key object shows private material.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from crypto.errors import KeyStoreError


def key_id_for(public_raw: bytes) -> str:
    """The id of a public key: 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key with its id and the time it became current."""

    key_id: str
    private: Ed25519PrivateKey = field(repr=False)
    not_before: datetime

    @classmethod
    def generate(cls, now: datetime) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        return cls(key_id_for(raw_public(private.public_key())), private, now)

    @property
    def public_raw(self) -> bytes:
        return raw_public(self.private.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


@dataclass(frozen=True)
class EncryptionKey:
    """An X25519 private key: members receive audience keys sealed to it."""

    key_id: str
    private: X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> EncryptionKey:
        private = X25519PrivateKey.generate()
        return cls(key_id_for(raw_public(private.public_key())), private)

    @property
    def public_raw(self) -> bytes:
        return raw_public(self.private.public_key())


@dataclass(frozen=True)
class RetiredKey:
    key_id: str
    public_raw: bytes
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class NodeKeys:
    """The keys a node holds: its current signing key, the public halves of the
    signing keys it retired (so its old envelopes keep verifying), and its
    encryption key."""

    signing: SigningKey
    encryption: EncryptionKey
    retired: tuple[RetiredKey, ...] = ()


PrivateKey = Ed25519PrivateKey | X25519PrivateKey


def private_pem(private: PrivateKey) -> bytes:
    """The PKCS8 PEM of a private key (unencrypted: the file's mode protects it)."""
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def parse_private_pem(pem: bytes) -> PrivateKey:
    """An Ed25519 or X25519 private key from its PEM; `KeyStoreError` says what is wrong."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyStoreError("does not hold a valid private key") from e
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raise KeyStoreError("holds an unsupported key type")
    return key


@dataclass(frozen=True)
class KeyManifest:
    """What the public manifest says: the current signing key and the retired ones."""

    signing_key_id: str
    signing_not_before: datetime
    retired: tuple[RetiredKey, ...]


def manifest_json(keys: NodeKeys, written_at: datetime) -> bytes:
    """The manifest of `keys`: public halves, key ids and windows, no private key."""
    manifest = {
        "signing": {
            "current": {
                "key_id": keys.signing.key_id,
                "public": keys.signing.public_raw.hex(),
                "not_before": keys.signing.not_before.isoformat(),
            },
            "retired": [
                {
                    "key_id": r.key_id,
                    "public": r.public_raw.hex(),
                    "not_before": r.not_before.isoformat(),
                    "not_after": r.not_after.isoformat(),
                }
                for r in keys.retired
            ],
        },
        "encryption": {
            "key_id": keys.encryption.key_id,
            "public": keys.encryption.public_raw.hex(),
        },
        "written_at": written_at.isoformat(),
    }
    return (json.dumps(manifest, indent=2) + "\n").encode()


def parse_manifest(data: bytes) -> KeyManifest:
    """Read a manifest `manifest_json` wrote; `KeyStoreError` says what is wrong."""
    try:
        manifest = json.loads(data)
    except ValueError as e:
        raise KeyStoreError(f"is not valid JSON: {e}") from e
    try:
        current = manifest["signing"]["current"]
        key_id, not_before = current["key_id"], current["not_before"]
    except (KeyError, TypeError) as e:
        raise KeyStoreError("has no current signing key") from e
    retired = tuple(
        RetiredKey(
            r["key_id"],
            bytes.fromhex(r["public"]),
            datetime.fromisoformat(r["not_before"]),
            datetime.fromisoformat(r["not_after"]),
        )
        for r in manifest["signing"].get("retired", [])
    )
    return KeyManifest(key_id, datetime.fromisoformat(not_before), retired)


def node_keys(manifest: KeyManifest, signing_private: PrivateKey, encryption_private: PrivateKey) -> NodeKeys:
    """The keys of a manifest and its two private keys, checked to belong together."""
    if not isinstance(signing_private, Ed25519PrivateKey):
        raise KeyStoreError("the current signing key is not an Ed25519 key")
    if not isinstance(encryption_private, X25519PrivateKey):
        raise KeyStoreError("the encryption key is not an X25519 key")
    signing = SigningKey(
        key_id_for(raw_public(signing_private.public_key())), signing_private, manifest.signing_not_before
    )
    if signing.key_id != manifest.signing_key_id:
        raise KeyStoreError(f"signing key file does not match key id {manifest.signing_key_id}")
    encryption = EncryptionKey(key_id_for(raw_public(encryption_private.public_key())), encryption_private)
    return NodeKeys(signing, encryption, manifest.retired)
