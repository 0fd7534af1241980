"""The key holder's duty, which the directory gives to hubs (a RINEX hub holds
its region's audience, the ENVIRONET/CEN hub the global one) and to each
national node for its own audiences: every audience a node holds gets a new
epoch when its members, or their encryption keys, differ from those the
current epoch was wrapped for. A removed member cannot read what is sealed
after that. Pure: the directory and the key store are Protocols; the node
starts the epochs this module says are due (`node.app.NodeApp.refresh_epochs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from crypto.audience import MemberKey


class HeldAudiences(Protocol):
    def held_audiences(self) -> list[str]:
        """The audiences the directory makes this node the key holder of."""
        ...

    def member_keys(self, audience: str) -> Mapping[str, MemberKey]:
        """Each member's current encryption key (as the directory lists it)."""
        ...


class EpochMembers(Protocol):
    def current_members(self, audience: str) -> frozenset[tuple[str, str]] | None:
        """(member, encryption key id) pairs of the current epoch (None: no epoch yet)."""
        ...


def epochs_due(directory: HeldAudiences, keys: EpochMembers) -> list[tuple[str, Mapping[str, MemberKey]]]:
    """The held audiences that need a new epoch, each with the members to wrap it for."""
    due = []
    for audience in directory.held_audiences():
        members = directory.member_keys(audience)
        wanted = frozenset((n, m.key_id) for n, m in members.items())
        if keys.current_members(audience) != wanted:
            due.append((audience, members))
    return due
