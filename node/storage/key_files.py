"""The node's key directory on disk: `signing/<key_id>.pem`, `encryption.pem`
(private, 0600, in 0700 directories) and the public manifest `keys.json`
naming the current signing key and the windows of retired ones.

Invariants:
- a private key file is written once, with mode 0600 from its creation, and
  never replaced; loading refuses one that group or others can read;
- `keys.json` is the commit point: it is replaced atomically after the key
  files it names are on disk, so an interrupted rotation leaves the old key
  current;
- the serialized forms are `crypto.keys`'s; this module only reads and writes.
"""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

from crypto.errors import KeyStoreError
from crypto.keys import (
    EncryptionKey,
    NodeKeys,
    PrivateKey,
    RetiredKey,
    SigningKey,
    manifest_json,
    node_keys,
    parse_manifest,
    parse_private_pem,
    private_pem,
)
from node.storage.files import PUBLIC, private_directory, write_file

SIGNING_DIR = "signing"
ENCRYPTION_FILE = "encryption.pem"
MANIFEST_FILE = "keys.json"


def read_private_file(path: Path) -> bytes:
    """The bytes of a private key file, refused if group or others can read it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as e:
        raise KeyStoreError(f"key file {path} does not exist (run `gcn init`)") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(
            f"key file {path} is readable by group or others (mode {stat.S_IMODE(mode):o}); it must be 0600"
        )
    return path.read_bytes()


def _write_private(path: Path, private: PrivateKey) -> None:
    write_file(path, private_pem(private), overwrite=False)


class KeyDirectory:
    """The node's key directory (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return (self.path / MANIFEST_FILE).exists()

    def create(self, now: datetime) -> NodeKeys:
        if self.exists():
            raise KeyStoreError(f"keys already exist in {self.path}; refusing to overwrite them")
        private_directory(self.path)
        private_directory(self.path / SIGNING_DIR)
        keys = NodeKeys(SigningKey.generate(now), EncryptionKey.generate())
        _write_private(self.path / SIGNING_DIR / f"{keys.signing.key_id}.pem", keys.signing.private)
        _write_private(self.path / ENCRYPTION_FILE, keys.encryption.private)
        self._write_manifest(keys)
        return keys

    def rotate_signing(self, now: datetime) -> NodeKeys:
        """Make a new current signing key; the old one is retired at `now`."""
        old = self.load()
        new = SigningKey.generate(now)
        _write_private(self.path / SIGNING_DIR / f"{new.key_id}.pem", new.private)
        retired = RetiredKey(old.signing.key_id, old.signing.public_raw, old.signing.not_before, now)
        keys = NodeKeys(new, old.encryption, (*old.retired, retired))
        self._write_manifest(keys)
        return keys

    def load(self) -> NodeKeys:
        manifest_path = self.path / MANIFEST_FILE
        try:
            data = manifest_path.read_bytes()
        except FileNotFoundError as e:
            raise KeyStoreError(f"no keys in {self.path} (run `gcn init`)") from e
        try:
            manifest = parse_manifest(data)
        except KeyStoreError as e:
            raise KeyStoreError(f"{manifest_path} {e}") from e
        signing = self._load_private(self.path / SIGNING_DIR / f"{manifest.signing_key_id}.pem")
        encryption = self._load_private(self.path / ENCRYPTION_FILE)
        return node_keys(manifest, signing, encryption)

    @staticmethod
    def _load_private(path: Path) -> PrivateKey:
        pem = read_private_file(path)
        try:
            return parse_private_pem(pem)
        except KeyStoreError as e:
            raise KeyStoreError(f"{path} {e}") from e

    def _write_manifest(self, keys: NodeKeys) -> None:
        write_file(self.path / MANIFEST_FILE, manifest_json(keys, datetime.now(UTC)), mode=PUBLIC)
