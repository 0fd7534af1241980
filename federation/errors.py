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
