"""An envelope a receiver did not store, named, with the reason (pure).

A refusal costs only its own stream: the receiver stores the rest of the batch,
the sender moves past what was stored and keeps the refused envelope's stream
waiting (with backoff and an alarm) while every other stream flows.
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.vectors import Stream
from gcn.v1 import sync_pb2

# Codes, from "the bytes are bad" to "not now":
MALFORMED = "malformed"  # the header does not parse or breaks the envelope grammar
FORGED = "forged"  # the signature does not verify over these bytes
UNKNOWN_KEY = "unknown_key"  # no such signing key of the origin is known here (yet)
KEY_WINDOW = "key_window"  # the signing key was not valid when the envelope says it was made
NOT_PERMITTED = "not_permitted"  # the caller may not hand over this origin's envelopes of this audience
NOT_MEMBER = "not_member"  # the origin may not write into this audience
FUTURE = "future"  # created_at beyond the receiver's clock plus slack
CUSTODY = "custody"  # signed by a retired or revoked key, with no custody before it was
STALE_DIRECTORY = "stale_directory"  # created after the receiver's directory expired
STORAGE = "storage"  # the receiver could not store it (its own trouble)

# Refusals that mean the bytes themselves are bad: the holder's copy may be
# corrupted, and an intact copy is to be fetched from another holder.
DAMAGED = frozenset({MALFORMED, FORGED})
# Which side of a link refused: the peer refused ours (BY_PEER), or we refused the peer's (FROM_PEER).
BY_PEER, FROM_PEER = "by_peer", "from_peer"


@dataclass(frozen=True)
class Refused:
    index: int
    origin: str
    audience: str
    seq: int
    hash: bytes
    code: str
    reason: str

    @property
    def stream(self) -> Stream:
        return (self.origin, self.audience)

    def to_proto(self) -> sync_pb2.Refusal:
        return sync_pb2.Refusal(
            index=self.index,
            origin=self.origin,
            audience=self.audience,
            seq=self.seq,
            hash=self.hash,
            code=self.code,
            reason=self.reason,
        )

    @classmethod
    def from_proto(cls, r: sync_pb2.Refusal) -> Refused:
        return cls(int(r.index), r.origin, r.audience, int(r.seq), bytes(r.hash), r.code, r.reason)

    def describe(self) -> str:
        return f"{self.origin} {self.audience} seq {self.seq}: {self.code}: {self.reason}"
