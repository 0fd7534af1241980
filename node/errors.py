"""Domain errors of the node. The gRPC layer maps each class to one status code
(see `node.api.interceptors`); the message is a sentence an officer can act on."""

from __future__ import annotations


class NodeError(Exception):
    """Base of every error the node raises on purpose."""


class ValidationError(NodeError):
    """Input breaks a rule. `field` is the path of the offending field
    (e.g. ``goods[0].hs_code``) and `rule` says what the rule is."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class NotFoundError(NodeError):
    """The record (or other object) asked for does not exist here."""


class ConflictError(NodeError):
    """The request is valid but conflicts with what is stored (e.g. retracting a
    record twice, or retracting another origin's record)."""


class FailedPreconditionError(NodeError):
    """The node is not in a state to do this now (e.g. its trust is stale)."""


class PermissionDeniedError(NodeError):
    """The caller is known but may not do this."""


class UnauthenticatedError(NodeError):
    """The caller did not prove who it is."""


class ConfigError(NodeError):
    """The node's configuration is missing, malformed or inconsistent."""


class ResourceExhaustedError(NodeError):
    """The caller has its share of something running here already (RESOURCE_EXHAUSTED)."""


class DuplicateRecordError(NodeError):
    """A new record looks like one this node already holds (ALREADY_EXISTS);
    `record_id` is the earlier one. Asking again with `allow_duplicate` records it."""

    def __init__(self, message: str, record_id: str) -> None:
        super().__init__(message)
        self.record_id = record_id
