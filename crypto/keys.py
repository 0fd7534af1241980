"""A node's own private keys, on its disk: an Ed25519 signing key and an X25519
encryption key.

Invariants:
- private keys exist only in files under the node's key directory, created with
  mode 0600 (the directory 0700); loading refuses a key file that group or
  others can read;
- key ids are derived from the public key (never chosen), so a key id names
  exactly one key;
- nothing here logs, and no repr of a key object shows private material.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from crypto.errors import KeyStoreError

SIGNING_DIR = "signing"
ENCRYPTION_FILE = "encryption.pem"
MANIFEST_FILE = "keys.json"


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


def _write_private(path: Path, pem: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())


def _read_private(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as e:
        raise KeyStoreError(f"key file {path} does not exist (run `gcn init`)") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(
            f"key file {path} is readable by group or others (mode {stat.S_IMODE(mode):o}); it must be 0600"
        )
    return path.read_bytes()


def _pem(private: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class KeyDirectory:
    """The node's key directory: `signing/<key_id>.pem`, `encryption.pem` and a
    public manifest `keys.json` naming the current signing key and the windows
    of retired ones."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return (self.path / MANIFEST_FILE).exists()

    def create(self, now: datetime) -> NodeKeys:
        if self.exists():
            raise KeyStoreError(f"keys already exist in {self.path}; refusing to overwrite them")
        (self.path / SIGNING_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path, 0o700)
        os.chmod(self.path / SIGNING_DIR, 0o700)
        keys = NodeKeys(SigningKey.generate(now), EncryptionKey.generate())
        _write_private(self.path / SIGNING_DIR / f"{keys.signing.key_id}.pem", _pem(keys.signing.private))
        _write_private(self.path / ENCRYPTION_FILE, _pem(keys.encryption.private))
        self._write_manifest(keys)
        return keys

    def rotate_signing(self, now: datetime) -> NodeKeys:
        """Make a new current signing key; the old one is retired at `now`."""
        old = self.load()
        new = SigningKey.generate(now)
        _write_private(self.path / SIGNING_DIR / f"{new.key_id}.pem", _pem(new.private))
        retired = RetiredKey(old.signing.key_id, old.signing.public_raw, old.signing.not_before, now)
        keys = NodeKeys(new, old.encryption, (*old.retired, retired))
        self._write_manifest(keys)
        return keys

    def load(self) -> NodeKeys:
        try:
            manifest = json.loads((self.path / MANIFEST_FILE).read_text())
        except FileNotFoundError as e:
            raise KeyStoreError(f"no keys in {self.path} (run `gcn init`)") from e
        except ValueError as e:
            raise KeyStoreError(f"{self.path / MANIFEST_FILE} is not valid JSON: {e}") from e
        try:
            current = manifest["signing"]["current"]
            key_id, not_before = current["key_id"], current["not_before"]
        except (KeyError, TypeError) as e:
            raise KeyStoreError(f"{self.path / MANIFEST_FILE} has no current signing key") from e
        signing_private = self._load_private(self.path / SIGNING_DIR / f"{key_id}.pem")
        encryption_private = self._load_private(self.path / ENCRYPTION_FILE)
        if not isinstance(signing_private, Ed25519PrivateKey):
            raise KeyStoreError("the current signing key is not an Ed25519 key")
        if not isinstance(encryption_private, X25519PrivateKey):
            raise KeyStoreError("the encryption key is not an X25519 key")
        signing = SigningKey(
            key_id_for(raw_public(signing_private.public_key())),
            signing_private,
            datetime.fromisoformat(not_before),
        )
        if signing.key_id != key_id:
            raise KeyStoreError(f"signing key file does not match key id {key_id}")
        encryption = EncryptionKey(
            key_id_for(raw_public(encryption_private.public_key())), encryption_private
        )
        retired = tuple(
            RetiredKey(
                r["key_id"],
                bytes.fromhex(r["public"]),
                datetime.fromisoformat(r["not_before"]),
                datetime.fromisoformat(r["not_after"]),
            )
            for r in manifest["signing"].get("retired", [])
        )
        return NodeKeys(signing, encryption, retired)

    @staticmethod
    def _load_private(path: Path) -> Ed25519PrivateKey | X25519PrivateKey:
        try:
            key = serialization.load_pem_private_key(_read_private(path), password=None)
        except ValueError as e:
            raise KeyStoreError(f"{path} does not hold a valid private key") from e
        if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
            raise KeyStoreError(f"{path} holds an unsupported key type")
        return key

    def _write_manifest(self, keys: NodeKeys) -> None:
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
            "written_at": datetime.now(UTC).isoformat(),
        }
        tmp = self.path / (MANIFEST_FILE + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp, self.path / MANIFEST_FILE)
