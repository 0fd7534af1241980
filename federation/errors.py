"""The errors of `federation`. Each says which node and which rule."""

from __future__ import annotations


class FederationError(Exception):
    """Base of every error raised by `federation`."""


class JoinError(FederationError):
    """A join request is malformed, stale, or not signed by the key it presents."""


class RootError(FederationError):
    """The federation root refuses an operation, or its on-disk state is unusable."""


class PolicyError(FederationError):
    """A sharing policy file is malformed or would send more than a record's TLP allows."""


# Status names (gRPC's) of a failure that is the link's, not the peer's: it is
# down or did not answer in time. Such peers are probed until they answer.
LINK_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED")


class PeerError(FederationError):
    """A call to a peer failed, on the peer's side or on the link (raised by
    `federation.transport`, which turns status codes into these). `code` is the
    status name (e.g. "UNAVAILABLE"), `details` what the peer or the link said."""

    def __init__(self, code: str, details: str = "") -> None:
        super().__init__(f"{code}: {details}" if details else code)
        self.code = code
        self.details = details

    @property
    def link(self) -> bool:
        """The link's failure (down, timed out), not a refusal by a peer that answered."""
        return self.code in LINK_CODES


class PeerUnreachableError(PeerError):
    """The peer could not be reached, or did not answer in time."""


class PeerNotFoundError(PeerError):
    """The peer answered that it holds no such thing (e.g. no directory yet)."""


def peer_error(code: str, details: str = "") -> PeerError:
    """The domain error for a failed call's status name."""
    if code in LINK_CODES:
        return PeerUnreachableError(code, details)
    if code == "NOT_FOUND":
        return PeerNotFoundError(code, details)
    return PeerError(code, details)
