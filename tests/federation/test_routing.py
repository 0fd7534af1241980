"""Routing: who is entitled to which streams, on the DESIGN's topology."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.routing import Topology
from federation.vectors import behind, lacking

UPSTREAMS = {
    "KE-MBA": ["KE"],
    "KE": ["RINEX-ESA"],
    "TZ": ["RINEX-ESA"],
    "RINEX-ESA": ["WCO-GLOBAL"],
    "VN-HPH": ["VN"],
    "VN": ["RINEX-SEA"],
    "TH": ["RINEX-SEA"],
    "RINEX-SEA": ["WCO-GLOBAL"],
    "NL": ["RINEX-EUR"],
    "RINEX-EUR": ["WCO-GLOBAL"],
    "WCO-GLOBAL": [],
}
MEMBERS = {
    "national:KE": ["KE", "KE-MBA"],
    "bilateral:KE+VN": ["KE", "KE-MBA", "VN", "VN-HPH"],
    "region:ESA": ["KE", "KE-MBA", "TZ", "RINEX-ESA"],
    "global": list(UPSTREAMS),
}
TOPO = Topology.build(UPSTREAMS, MEMBERS)


@pytest.mark.parametrize(
    ("me", "peer", "audience", "entitled"),
    [
        pytest.param("KE-MBA", "KE", "national:KE", True, id="port-to-its-national-node"),
        pytest.param("KE", "RINEX-ESA", "national:KE", False, id="national-stays-home"),
        pytest.param("KE", "RINEX-ESA", "bilateral:KE+VN", True, id="bilateral-goes-up-towards-VN"),
        pytest.param("RINEX-ESA", "WCO-GLOBAL", "bilateral:KE+VN", True, id="hub-relays-up"),
        pytest.param("WCO-GLOBAL", "RINEX-SEA", "bilateral:KE+VN", True, id="global-sends-down-to-VN-region"),
        pytest.param(
            "WCO-GLOBAL", "RINEX-EUR", "bilateral:KE+VN", False, id="not-to-a-region-without-members"
        ),
        pytest.param("RINEX-SEA", "TH", "bilateral:KE+VN", False, id="not-to-a-non-member-leaf"),
        pytest.param("RINEX-SEA", "VN", "bilateral:KE+VN", True, id="down-to-the-member"),
        pytest.param("RINEX-ESA", "TZ", "region:ESA", True, id="region-member"),
        pytest.param("RINEX-ESA", "WCO-GLOBAL", "region:ESA", False, id="region-stays-in-region"),
        pytest.param("KE-MBA", "KE", "node:KE-MBA", False, id="tlp-red-never-leaves"),
        pytest.param("KE", "TZ", "global", True, id="global-member"),
    ],
)
def test_entitlement(me: str, peer: str, audience: str, entitled: bool) -> None:
    assert TOPO.entitled(me, peer, audience) is entitled


def test_the_global_hub_may_relay_a_bilateral_it_cannot_read() -> None:
    assert TOPO.may_hold("WCO-GLOBAL", "bilateral:KE+VN")
    assert not TOPO.is_member("WCO-GLOBAL", "bilateral:KE+VN")
    assert not TOPO.may_hold("RINEX-EUR", "bilateral:KE+VN")


def test_lacking_and_behind() -> None:
    mine = {("KE", "national:KE"): 10, ("TZ", "global"): 3}
    theirs = {("KE", "national:KE"): 7, ("VN", "global"): 2}
    assert lacking(mine, theirs) == {("KE", "national:KE"): 7, ("TZ", "global"): 0}
    assert behind(mine, theirs) == 6


@settings(max_examples=100, database=None)
@given(st.sampled_from(sorted(UPSTREAMS)), st.sampled_from(sorted(MEMBERS)))
def test_every_member_is_reached_by_following_entitled_hops(origin: str, audience: str) -> None:
    """Flooding along entitled edges from any origin reaches every member: nothing is
    stranded, whatever the topology's shape."""
    if not TOPO.is_member(origin, audience):
        return
    reached, frontier = {origin}, [origin]
    while frontier:
        node = frontier.pop()
        for peer in TOPO.edges[node]:
            if peer not in reached and TOPO.entitled(node, peer, audience):
                reached.add(peer)
                frontier.append(peer)
    assert set(MEMBERS[audience]) <= reached
