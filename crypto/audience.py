"""Audience epoch keys and their wraps.

An audience key is 32 random bytes (AES-256). Its holder wraps it for each
member with HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
AES-256-GCM), binding the audience and epoch into the HPKE `info`, so a wrap
cannot be replayed as the key of another audience or epoch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from crypto.errors import DecryptionError, KeyUnavailableError
from crypto.keys import EncryptionKey
from gcn.v1 import envelope_pb2 as pb

KEY_BYTES = 32
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def new_epoch_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _info(audience: str, epoch: int) -> bytes:
    return f"gcn-audience-key-v1|{audience}|{epoch}".encode()


@dataclass(frozen=True)
class MemberKey:
    """A member's public X25519 encryption key."""

    key_id: str
    public_raw: bytes


def build_key_message(
    audience: str, epoch: int, key: bytes, members: Mapping[str, MemberKey]
) -> pb.KeyMessage:
    """Wrap `key` for every member (node id -> its encryption key)."""
    msg = pb.KeyMessage(audience=audience, epoch=epoch)
    for node_id in sorted(members):
        member = members[node_id]
        sealed = _SUITE.encrypt(
            key, X25519PublicKey.from_public_bytes(member.public_raw), info=_info(audience, epoch)
        )
        msg.wraps.add(member=node_id, encryption_key_id=member.key_id, sealed_key=sealed)
    return msg


def unwrap_for(msg: pb.KeyMessage, node_id: str, own: EncryptionKey) -> bytes:
    """The epoch key from the wrap addressed to `node_id`."""
    for wrap in msg.wraps:
        if wrap.member == node_id and wrap.encryption_key_id == own.key_id:
            try:
                key = _SUITE.decrypt(wrap.sealed_key, own.private, info=_info(msg.audience, msg.epoch))
            except (InvalidTag, ValueError) as e:
                raise DecryptionError(
                    f"key wrap for {node_id} in {msg.audience} epoch {msg.epoch} does not open"
                ) from e
            if len(key) != KEY_BYTES:
                raise DecryptionError(f"{msg.audience} epoch {msg.epoch} key has the wrong length")
            return key
    raise KeyUnavailableError(f"{msg.audience} epoch {msg.epoch} has no wrap for {node_id} key {own.key_id}")
