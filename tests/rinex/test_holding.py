"""The key holder's duty, without a node: which held audiences need a new epoch."""

from __future__ import annotations

from collections.abc import Mapping

from crypto.audience import MemberKey
from rinex.holding import epochs_due


class Directory:
    def __init__(self, held: dict[str, dict[str, MemberKey]]) -> None:
        self.held = held

    def held_audiences(self) -> list[str]:
        return sorted(self.held)

    def member_keys(self, audience: str) -> Mapping[str, MemberKey]:
        return self.held[audience]


class Keys:
    def __init__(self, current: dict[str, frozenset[tuple[str, str]]]) -> None:
        self.current = current

    def current_members(self, audience: str) -> frozenset[tuple[str, str]] | None:
        return self.current.get(audience)


KE, TZ = MemberKey("enc-ke-1", b"k" * 32), MemberKey("enc-tz-1", b"t" * 32)


def test_an_audience_without_an_epoch_needs_one() -> None:
    due = epochs_due(Directory({"regional:ESA": {"KE": KE}}), Keys({}))
    assert due == [("regional:ESA", {"KE": KE})]


def test_unchanged_members_need_no_new_epoch() -> None:
    keys = Keys({"regional:ESA": frozenset({("KE", "enc-ke-1"), ("TZ", "enc-tz-1")})})
    assert epochs_due(Directory({"regional:ESA": {"KE": KE, "TZ": TZ}}), keys) == []


def test_a_removed_member_or_a_new_encryption_key_starts_an_epoch() -> None:
    keys = Keys({"regional:ESA": frozenset({("KE", "enc-ke-1"), ("TZ", "enc-tz-1")})})
    removed = epochs_due(Directory({"regional:ESA": {"KE": KE}}), keys)
    assert [a for a, _ in removed] == ["regional:ESA"]
    new_tz = MemberKey("enc-tz-2", b"u" * 32)
    rotated = epochs_due(Directory({"regional:ESA": {"KE": KE, "TZ": new_tz}}), keys)
    assert [a for a, _ in rotated] == ["regional:ESA"]


def test_only_held_audiences_are_considered() -> None:
    assert epochs_due(Directory({}), Keys({"regional:ESA": frozenset()})) == []
