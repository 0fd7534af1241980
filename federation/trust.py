"""What a node needs to know about the federation to accept an envelope, as a
Protocol: the receiving side (`node.receive`) depends on this, not on how the
directory is fetched or stored.

`LocalTrust` is the trust of a node that has no directory yet: it knows only
its own keys, holds only its own audiences, and accepts nothing from others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from crypto.signing import KeyRing
from federation.audiences import AudienceError, parse_audience


class Trust(Protocol):
    def keyring(self) -> KeyRing:
        """Every node's signing keys with their validity windows."""
        ...

    def holder_of(self, audience: str) -> str | None:
        """The node that may issue epoch keys for `audience` (None: unknown audience)."""
        ...

    def may_relay(self, caller: str, origin: str) -> bool:
        """May `caller` hand us envelopes of `origin`?"""
        ...


@dataclass(frozen=True)
class LocalTrust:
    node_id: str
    role: str
    country: str
    ring: KeyRing

    def keyring(self) -> KeyRing:
        return self.ring

    def holder_of(self, audience: str) -> str | None:
        try:
            parsed = parse_audience(audience)
        except AudienceError:
            return None
        if parsed.kind == "node":
            return parsed.parts[0]
        if parsed.kind == "national" and parsed.parts[0] == self.country and self.role == "national":
            return self.node_id
        return None

    def may_relay(self, caller: str, origin: str) -> bool:
        return caller == origin == self.node_id
