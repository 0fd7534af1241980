"""The CLI's own errors. Light (no grpc): `node.cli.main` maps them to exit
codes by class (`EXIT_CODES` there) without loading a command's module."""

from __future__ import annotations


class CliError(Exception):
    """The caller's input, or the node's refusal of it: one line, exit 2."""


class NodeUnreachableError(CliError):
    """The node did not serve the call: not reachable, no answer in time, or
    an internal error on its side: not the caller's input, exit 1."""


class AlreadyExistsError(CliError):
    """The node refused a record that repeats one it holds (ALREADY_EXISTS): exit 2."""
