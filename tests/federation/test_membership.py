"""Tests of federation.membership: audiences derived from the directory's nodes.

A small federation: Kenya (national KE, port KE-MBA) and Tanzania (TZ) in the
Eastern and Southern Africa region with hub RINEX-ESA; the Netherlands (NL) in
Europe with hub RINEX-EUR; the global hub WCO-GLOBAL; and a bilateral channel
between Kenya and Viet Nam, which has not joined yet.
"""

from __future__ import annotations

import pytest

from federation.membership import derive_audiences
from gcn.v1 import directory_pb2 as pb

ACTIVE = pb.NODE_STATUS_ACTIVE


def node(node_id: str, role: str, country: str = "", region: str = "") -> pb.DirectoryNode:
    return pb.DirectoryNode(id=node_id, role=role, country=country, region=region, status=ACTIVE)


FEDERATION = [
    node("KE", "national", "KE", "ESA"),
    node("KE-MBA", "port", "KE", "ESA"),
    node("TZ", "national", "TZ", "ESA"),
    node("RINEX-ESA", "regional", region="ESA"),
    node("NL", "national", "NL", "EUR"),
    node("RINEX-EUR", "regional", region="EUR"),
    node("WCO-GLOBAL", "global"),
]
ALL = sorted(n.id for n in FEDERATION)


def audiences(
    nodes: list[pb.DirectoryNode], bilateral: list[tuple[str, str]]
) -> dict[str, tuple[str, list[str]]]:
    return {a.name: (a.holder, list(a.members)) for a in derive_audiences(nodes, bilateral)}


def test_the_audiences_of_a_small_federation() -> None:
    assert audiences(FEDERATION, [("KE", "VN")]) == {
        "bilateral:KE+VN": ("KE", ["KE", "KE-MBA"]),
        "global": ("WCO-GLOBAL", ALL),
        "national:KE": ("KE", ["KE", "KE-MBA"]),
        "national:NL": ("NL", ["NL"]),
        "national:TZ": ("TZ", ["TZ"]),
        "region:ESA": ("RINEX-ESA", ["KE", "KE-MBA", "RINEX-ESA", "TZ"]),
        "region:EUR": ("RINEX-EUR", ["NL", "RINEX-EUR"]),
    }


def test_output_is_sorted_by_name() -> None:
    names = [a.name for a in derive_audiences(FEDERATION, [("KE", "VN")])]
    assert names == sorted(names)


def revoked(node_id: str) -> list[pb.DirectoryNode]:
    out = []
    for n in FEDERATION:
        copy = pb.DirectoryNode()
        copy.CopyFrom(n)
        if n.id == node_id:
            copy.status = pb.NODE_STATUS_REVOKED
        out.append(copy)
    return out


CHANGES = [
    pytest.param(
        revoked("KE-MBA"), [], "national:KE", ("KE", ["KE"]), id="revoked-port-leaves-its-administration"
    ),
    pytest.param(
        revoked("KE-MBA"),
        [],
        "region:ESA",
        ("RINEX-ESA", ["KE", "RINEX-ESA", "TZ"]),
        id="revoked-port-leaves-its-region",
    ),
    # A revoked holder stays the holder (its earlier key messages still open what it
    # shared) but is no longer a member, and can start no new epoch.
    pytest.param(revoked("KE"), [], "national:KE", ("KE", ["KE-MBA"]), id="revoked-holder-keeps-its-history"),
    pytest.param(
        revoked("RINEX-ESA"),
        [],
        "region:ESA",
        ("RINEX-ESA", ["KE", "KE-MBA", "TZ"]),
        id="revoked-hub-is-no-member",
    ),
    pytest.param(
        revoked("WCO-GLOBAL"),
        [],
        "global",
        ("WCO-GLOBAL", ["KE", "KE-MBA", "NL", "RINEX-ESA", "RINEX-EUR", "TZ"]),
        id="revoked-global-hub-is-no-member",
    ),
    pytest.param(
        FEDERATION,
        [("TZ", "KE")],
        "bilateral:KE+TZ",
        ("TZ", ["KE", "KE-MBA", "TZ"]),
        id="bilateral-held-by-first-given",
    ),
    pytest.param(
        FEDERATION, [("VN", "KE")], "bilateral:KE+VN", None, id="bilateral-whose-holder-has-not-joined"
    ),
    pytest.param(
        FEDERATION,
        [("KE", "TZ"), ("TZ", "KE")],
        "bilateral:KE+TZ",
        ("KE", ["KE", "KE-MBA", "TZ"]),
        id="first-orientation-wins",
    ),
    pytest.param(FEDERATION, [("KE", "KE")], "bilateral:KE+KE", None, id="a-country-with-itself-is-ignored"),
]


@pytest.mark.parametrize(("nodes", "bilateral", "name", "expected"), CHANGES)
def test_membership_follows_the_nodes(
    nodes: list[pb.DirectoryNode],
    bilateral: list[tuple[str, str]],
    name: str,
    expected: tuple[str, list[str]] | None,
) -> None:
    assert audiences(nodes, bilateral).get(name) == expected


def test_a_revoked_node_is_a_member_of_nothing() -> None:
    for audience in derive_audiences(revoked("TZ"), [("KE", "TZ")]):
        assert "TZ" not in audience.members, audience.name


def test_node_audiences_are_implicit() -> None:
    assert not [a for a in derive_audiences(FEDERATION) if a.name.startswith("node:")]
