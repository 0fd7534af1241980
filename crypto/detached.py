"""Detached Ed25519 signatures over domain-separated bytes, and the PEM form of
a signing key held outside a node's key directory (the federation root's keys).

`verify_detached` is for signatures that are not made by a node's key ring
(root signatures over the directory, a join request's proof of possession):
the caller names the public key it trusts, never a key id read from the wire.

The PEM is `crypto.keys.private_pem`'s: PKCS8, unencrypted, Ed25519.
"""

from __future__ import annotations

from datetime import datetime

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crypto.errors import KeyStoreError
from crypto.keys import SigningKey, key_id_for, raw_public

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


def verify_detached(public_raw: bytes, message: bytes, signature: bytes) -> bool:
    """True if `signature` is Ed25519 by `public_raw` over `message`; False for
    a bad signature or a malformed key or signature (never raises)."""
    if len(public_raw) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def signing_key_to_pem(key: SigningKey) -> bytes:
    return key.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def signing_key_from_pem(pem: bytes, not_before: datetime) -> SigningKey:
    """Load an Ed25519 private key; its id is derived from its public key."""
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyStoreError("the PEM does not hold a valid unencrypted private key") from e
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyStoreError("the PEM holds a private key that is not Ed25519")
    return SigningKey(key_id_for(raw_public(private.public_key())), private, not_before)
