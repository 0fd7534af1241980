"""Public signing keys with validity windows, and signature verification.

Sign with the key that is current now; verify with the key that was valid when
the signature was made (the envelope's `created_at`). A key id read from the
wire is an unauthenticated hint: it only selects which known key to try.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crypto.errors import KeyWindowError, SignatureError, UnknownKeyError


@dataclass(frozen=True)
class PublicSigningKey:
    """One signing key of one node, valid in [not_before, not_after)."""

    node_id: str
    key_id: str
    public_raw: bytes
    not_before: datetime
    not_after: datetime | None = None

    def valid_at(self, at: datetime) -> bool:
        return self.not_before <= at and (self.not_after is None or at < self.not_after)


class KeyRing:
    """The signing keys this node trusts, per node id.

    Filled from the node's own keys (and, once the node is in a federation, from
    the root-signed directory). Immutable once built: a new directory builds a
    new ring.
    """

    def __init__(self, keys: Iterable[PublicSigningKey] = ()) -> None:
        self._keys: dict[tuple[str, str], PublicSigningKey] = {}
        for k in keys:
            self._keys[(k.node_id, k.key_id)] = k

    def __contains__(self, node_key: tuple[str, str]) -> bool:
        return node_key in self._keys

    def find(self, node_id: str, key_id: str) -> PublicSigningKey | None:
        return self._keys.get((node_id, key_id))

    def ended(self) -> dict[tuple[str, str], datetime]:
        """(node id, key id) -> end of window, for every key that has one."""
        return {k: key.not_after for k, key in self._keys.items() if key.not_after is not None}

    def keys_of(self, node_id: str) -> list[PublicSigningKey]:
        return [k for (n, _), k in self._keys.items() if n == node_id]

    def verify(
        self, node_id: str, key_id: str, message: bytes, signature: bytes, at: datetime
    ) -> PublicSigningKey:
        """Check `signature` over `message` by `node_id`'s key `key_id`, which
        must have been valid at `at`. Returns the key; raises `SignatureError`
        saying which rule failed."""
        key = self._key(node_id, key_id)
        if not key.valid_at(at):
            until = key.not_after.isoformat() if key.not_after else "now"
            window = f"{key.not_before.isoformat()} .. {until}"
            raise KeyWindowError(
                f"signature by key {key_id} of {node_id} not valid at {at.isoformat()} (key valid {window})"
            )
        return self.check_signature(node_id, key_id, message, signature)

    def check_signature(
        self, node_id: str, key_id: str, message: bytes, signature: bytes
    ) -> PublicSigningKey:
        """Only the mathematics: do these bytes carry this key's signature?
        (Integrity checks of what is already stored; no validity window.)"""
        key = self._key(node_id, key_id)
        try:
            Ed25519PublicKey.from_public_bytes(key.public_raw).verify(signature, message)
        except InvalidSignature as e:
            raise SignatureError(
                f"signature by key {key_id} of {node_id} does not verify "
                "(the signed bytes or the signature were altered)"
            ) from e
        return key

    def _key(self, node_id: str, key_id: str) -> PublicSigningKey:
        key = self._keys.get((node_id, key_id))
        if key is None:
            raise UnknownKeyError(f"no signing key {key_id} is known for node {node_id}")
        return key
