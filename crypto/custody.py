"""Custody receipts: a holder's signed word that it held an envelope since a time.

An envelope signed by a key that has since ended (retired at a rotation, or cut
off by a revocation's "compromised since" time) proves nothing about when it
was made: its `created_at` is the signer's own claim, and whoever holds the old
key can claim any time. What counts instead is custody: an active node other
than the origin saying, under its own current key, that it held the envelope
(or a later one of the same stream, whose `prev_hash` chain fixes every earlier
one) before the key ended. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import DecodeError

from crypto.detached import verify_detached
from crypto.errors import SignatureError
from crypto.keys import SigningKey
from crypto.signing import KeyRing
from gcn.v1 import sync_pb2 as pb

CUSTODY_DOMAIN = b"gcn-custody-v1\x00"


@dataclass(frozen=True)
class Receipt:
    holder: str
    origin: str
    audience: str
    seq: int
    hash: bytes
    held_at: datetime
    signed: pb.SignedReceipt


def sign_receipt(
    signer: SigningKey, holder: str, origin: str, audience: str, seq: int, hash_: bytes, held_at: datetime
) -> pb.SignedReceipt:
    receipt = pb.CustodyReceipt(holder=holder, origin=origin, audience=audience, seq=seq, hash=hash_)
    receipt.held_at.FromDatetime(held_at)
    data = receipt.SerializeToString(deterministic=True)
    return pb.SignedReceipt(receipt=data, key_id=signer.key_id, signature=signer.sign(CUSTODY_DOMAIN + data))


def open_receipt(signed: pb.SignedReceipt, keyring: KeyRing, now: datetime) -> Receipt:
    """The receipt, if its holder's key (valid now, and at the time the receipt
    claims) signed it and it names another node as origin; raises
    `SignatureError` saying why not."""
    receipt = pb.CustodyReceipt()
    try:
        receipt.ParseFromString(signed.receipt)
        held_at: datetime = receipt.held_at.ToDatetime(tzinfo=UTC)
    except (DecodeError, ValueError, OverflowError) as e:
        raise SignatureError(f"custody receipt does not parse: {e}") from e
    if receipt.holder == receipt.origin:
        raise SignatureError(f"custody receipt by {receipt.holder} for its own envelopes counts for nothing")
    key = keyring.find(receipt.holder, signed.key_id)
    if key is None or not key.valid_at(now):
        raise SignatureError(f"custody receipt by {receipt.holder}: no signing key {signed.key_id} valid now")
    if not key.valid_at(held_at):
        raise SignatureError(
            f"custody receipt by {receipt.holder} claims a time its key {signed.key_id} was not valid at"
        )
    if not verify_detached(key.public_raw, CUSTODY_DOMAIN + signed.receipt, signed.signature):
        raise SignatureError(f"custody receipt by {receipt.holder} does not verify")
    if held_at > now:
        raise SignatureError(f"custody receipt by {receipt.holder} claims a time after now")
    return Receipt(
        receipt.holder,
        receipt.origin,
        receipt.audience,
        int(receipt.seq),
        bytes(receipt.hash),
        held_at,
        signed,
    )
