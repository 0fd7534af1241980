"""Federated search on a federation on loopback with mutual TLS: two regions,
the global hub, national nodes. What each node may find (audiences judged by
the hub from the caller's certificate), one deadline over hubs that are down
or black-holed, and hubs that alter, forge or pad results."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.policy import Share
from federation.transport import peer_channel, sync_stub
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from gcn.v1 import search_pb2 as spb
from node.api.federation_server import build_federation_server
from node.domain import samples
from node.domain.page_token import parse_page_token
from node.testing.clock import ManualClock
from node.testing.local_federation import LocalFederation
from tests.conftest import NOW
from tests.federation.policy_fixtures import FixedPolicy

pytestmark = pytest.mark.slow
OK, TIMEOUT, UNAVAILABLE, REFUSED = (
    npb.SourceStatus.STATE_OK,
    npb.SourceStatus.STATE_TIMEOUT,
    npb.SourceStatus.STATE_UNAVAILABLE,
    npb.SourceStatus.STATE_REFUSED,
)
BILATERAL = "bilateral:KE+VN"


@dataclass
class World:
    fed: LocalFederation
    green: str  # KE's TLP:GREEN seizure, default policy: national full, region redacted, global statistical
    bilateral: str  # KE's seizure for bilateral:KE+VN only
    green_container: str
    bilateral_container: str


def _seizure(clock: ManualClock, container: str, tlp: rec.TLP.ValueType) -> rec.Seizure:
    s = samples.ivory_seizure(clock().date())
    s.tlp = tlp
    s.conveyance.container_numbers[:] = [container]
    return s


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    clock = ManualClock(NOW)
    f = LocalFederation(tmp_path_factory.mktemp("fed"), clock)
    f.add("WCO-GLOBAL", "global")
    f.add("RINEX-ESA", "regional", region="ESA", upstreams=["WCO-GLOBAL"])
    f.add("RINEX-SEA", "regional", region="SEA", upstreams=["WCO-GLOBAL"])
    f.add("KE", "national", country="KE", region="ESA", upstreams=["RINEX-ESA"])
    f.add("TZ", "national", country="TZ", region="ESA", upstreams=["RINEX-ESA"])
    f.add("VN", "national", country="VN", region="SEA", upstreams=["RINEX-SEA"])
    f.root.add_bilateral("KE", "VN")
    f.publish()
    f.start()
    f.sync_all(rounds=3)  # key messages reach every member
    ke = f.nodes["KE"].app
    green = ke.records.record_seizure(_seizure(clock, "CSQU3054383", rec.TLP_GREEN)).record_id
    default = ke.records.policy
    ke.records.policy = FixedPolicy([Share(BILATERAL, epb.VIEW_FULL)])  # type: ignore[assignment]
    bilateral = ke.records.record_seizure(_seizure(clock, "MSKU7012349", rec.TLP_AMBER)).record_id
    ke.records.policy = default
    f.sync_all(rounds=4)
    yield World(f, green, bilateral, "CSQU3054383", "MSKU7012349")
    f.close()


def _search(
    world: World, node: str, deadline_ms: int = 5000, page_size: int = 0, **fields: object
) -> npb.SearchResponse:
    q = spb.SearchQuery(**fields)  # type: ignore[arg-type]
    app = world.fed.nodes[node].app
    return app.search.search(npb.SearchRequest(query=q, deadline_ms=deadline_ms, page_size=page_size))


def _states(reply: npb.SearchResponse) -> dict[str, int]:
    return {s.source: s.state for s in reply.sources}


def _assert_no_leak(world: World, node: str, reply: npb.SearchResponse) -> None:
    """Every result, count and token at `node` is of a record it may read."""
    topo = world.fed.nodes[node].app.trust.topology()
    assert topo is not None
    for hit in reply.hits:
        assert topo.is_member(node, hit.record.audience), (node, hit.record.audience)
        assert hit.record.envelope.header  # every result carries its signed envelope
        for view in hit.other_views:
            assert view != hit.record.view
    if reply.next_page_token:
        token = parse_page_token(reply.next_page_token)
        if token.after is not None:  # the last record shown, never another
            last = reply.hits[-1].record
            assert (token.after.origin, token.after.record_id) == (last.origin, last.record_id)


def test_a_regional_record_is_found_in_the_region_only_in_the_views_each_may_read(world: World) -> None:
    tz = _search(world, "TZ", container_number="CSQU 305438-3")
    assert [h.record.record_id for h in tz.hits] == [world.green]
    hit = tz.hits[0]
    assert hit.record.view == epb.VIEW_REDACTED and hit.record.audience == "region:ESA" and hit.verified
    assert all(p.kind != rec.PARTY_KIND_PERSON for p in hit.record.seizure.parties)  # redacted: no persons
    assert "RINEX-ESA" in hit.sources
    assert _states(tz) == {"local": OK, "RINEX-ESA": OK, "WCO-GLOBAL": OK}
    _assert_no_leak(world, "TZ", tz)

    # VN (another region) reaches only CEN's statistical view: no container in it,
    # so the container finds nothing, and the HS code finds the statistical view.
    assert list(_search(world, "VN", container_number="CSQU3054383").hits) == []
    vn = _search(world, "VN", hs_code_prefix="0507", country="VN")
    views = {(h.record.record_id, h.record.view) for h in vn.hits}
    assert (world.green, epb.VIEW_STATISTICAL) in views
    assert all(v == epb.VIEW_STATISTICAL for rid, v in views if rid == world.green)
    _assert_no_leak(world, "VN", vn)

    # At TZ the same record by HS code: the redacted view, the statistical one folded in.
    tz_hs = _search(world, "TZ", hs_code_prefix="0507")
    mine = [h for h in tz_hs.hits if h.record.record_id == world.green]
    assert len(mine) == 1 and mine[0].record.view == epb.VIEW_REDACTED
    assert epb.VIEW_STATISTICAL in mine[0].other_views and "WCO-GLOBAL" in mine[0].sources


def test_a_bilateral_record_is_never_revealed_to_a_third_party(world: World) -> None:
    for node in ("TZ", "RINEX-ESA", "RINEX-SEA", "WCO-GLOBAL"):
        reply = _search(world, node, container_number=world.bilateral_container)
        assert list(reply.hits) == [] and not reply.next_page_token, node
        assert all(s.count == 0 and not s.rejected for s in reply.sources), node
    vn = _search(world, "VN", container_number=world.bilateral_container)
    assert [(h.record.record_id, h.record.view) for h in vn.hits] == [(world.bilateral, epb.VIEW_FULL)]
    _assert_no_leak(world, "VN", vn)


def test_a_hub_judges_the_audience_from_the_callers_certificate(world: World) -> None:
    """VN asks the ESA hub directly: it holds the region's records but VN is not a member."""
    vn, esa = world.fed.nodes["VN"], world.fed.nodes["RINEX-ESA"]
    channel = peer_channel(vn.tls, esa.node_id, esa.endpoint)
    try:
        ask = spb.HubSearchRequest(
            query=spb.SearchQuery(container_number=world.green_container), page_size=10
        )
        reply = sync_stub(channel).HubSearch(ask, timeout=10)
        assert list(reply.hits) == []
        tz, tz_channel = world.fed.nodes["TZ"], None
        tz_channel = peer_channel(tz.tls, esa.node_id, esa.endpoint)
        tz_reply = sync_stub(tz_channel).HubSearch(ask, timeout=10)
        assert len(tz_reply.hits) == 1
        tz_channel.close()
        with pytest.raises(grpc.RpcError) as e:
            bad = spb.HubSearchRequest(query=spb.SearchQuery(container_number="CSQU3054384"), page_size=10)
            sync_stub(channel).HubSearch(bad, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "query.container_number" in (e.value.details() or "")
    finally:
        channel.close()


st_query = st.fixed_dictionaries(
    {},
    optional={
        "container_number": st.sampled_from(["CSQU3054383", "MSKU7012349", "CSQU305438"]),
        "hs_code_prefix": st.sampled_from(["05", "0507", "4403"]),
        "country": st.sampled_from(["KE", "VN", "UG", "MY"]),
        "company": st.sampled_from(["sesame", "traders", "cool"]),
        "person": st.sampled_from(["john", "mwangi"]),
        "species": st.sampled_from(["pangolin", "loxodonta"]),
        "text": st.sampled_from(["ivory", "sesame", "scanner"]),
    },
)
AUDIENCES = ["national:KE", "region:ESA", "global", BILATERAL]


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    shares=st.lists(
        st.tuples(
            st.sampled_from(AUDIENCES),
            st.sampled_from([epb.VIEW_FULL, epb.VIEW_REDACTED, epb.VIEW_STATISTICAL]),
        ),
        min_size=1,
        max_size=3,
        unique_by=lambda s: s[0],
    ),
    queries=st.lists(
        st.tuples(st.sampled_from(["KE", "TZ", "VN", "RINEX-ESA", "WCO-GLOBAL"]), st_query),
        min_size=3,
        max_size=6,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_zero_leaks_over_random_policies_and_queries(
    world: World, shares: list[tuple[str, int]], queries: list[tuple[str, dict[str, str]]], seed: int
) -> None:
    ke = world.fed.nodes["KE"].app
    default = ke.records.policy
    ke.records.policy = FixedPolicy([Share(a, epb.View.ValueType(v)) for a, v in shares])  # type: ignore[assignment]
    try:
        s = samples.random_seizure(random.Random(seed), ke.clock().date())
        s.conveyance.container_numbers.append(world.green_container)
        s.tlp = rec.TLP_GREEN
        rid = ke.records.record_seizure(s).record_id
    finally:
        ke.records.policy = default
    world.fed.sync_all(rounds=2)
    for node, fields in queries:
        reply = _search(world, node, **fields)  # type: ignore[arg-type]
        _assert_no_leak(world, node, reply)
        topo = world.fed.nodes[node].app.trust.topology()
        assert topo is not None
        if any(h.record.record_id == rid for h in reply.hits):
            assert any(topo.is_member(node, a) for a, _ in shares), (node, shares)
        assert all(s.rejected == 0 for s in reply.sources)


class _BlackHole:
    """A TCP listener that accepts connections and never says a word."""

    def __init__(self, endpoint: str) -> None:
        host, port = endpoint.rsplit(":", 1)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, int(port)))
        self.sock.listen(16)
        self.held: list[socket.socket] = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.open:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.open = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept
        self.sock.close()
        for c in self.held:
            c.close()


def test_one_hub_down_and_one_black_holed_answer_within_the_deadline(world: World) -> None:
    esa, top = world.fed.nodes["RINEX-ESA"], world.fed.nodes["WCO-GLOBAL"]
    esa.stop()
    top.stop()
    hole = _BlackHole(top.endpoint)
    links = world.fed.nodes["KE"].hub_links
    assert links is not None
    links.close()  # new channels: the global hub is black-holed from their first attempt
    try:
        started = time.monotonic()
        reply = _search(world, "KE", deadline_ms=1500, container_number=world.green_container)
        elapsed = time.monotonic() - started
        assert elapsed < 1.5 + 0.1, elapsed  # the deadline plus 100 ms, whatever the hubs do
        states = _states(reply)
        assert (
            states["local"] == OK and states["RINEX-ESA"] == UNAVAILABLE and states["WCO-GLOBAL"] == TIMEOUT
        )
        assert world.green in [h.record.record_id for h in reply.hits]  # the local results still come back
        detail = {s.source: s.detail for s in reply.sources}
        assert detail["WCO-GLOBAL"] and detail["RINEX-ESA"]
    finally:
        hole.close()
        esa.start()
        top.start()


def test_a_hub_that_alters_forges_or_pads_results_is_caught_and_named(world: World) -> None:
    esa = world.fed.nodes["RINEX-ESA"]
    other = world.fed.nodes["VN"].app.records.record_seizure(
        _seizure(world.fed.clock, "TGHU1234567", rec.TLP_GREEN)  # type: ignore[arg-type]
    )
    world.fed.sync_all(rounds=2)
    servicer = esa.servicer()
    honest = esa.app.hub_search.answer

    def crooked(caller: str, req: spb.HubSearchRequest, time_left: float | None) -> spb.HubSearchResponse:
        out = honest(caller, req, time_left)
        for hit in out.hits:
            body = bytearray(hit.envelope.ciphertext)
            body[len(body) // 2] ^= 0x01  # one bit of a genuine result
            hit.envelope.ciphertext = bytes(body)
        padded = honest(
            caller, spb.HubSearchRequest(query=spb.SearchQuery(container_number="TGHU1234567"), page_size=5)
        )
        out.hits.extend(padded.hits)  # genuine, but not what was asked
        out.hits.extend([out.hits[0]] * (req.page_size + 5) if out.hits else [])  # more than asked for
        return out

    servicer.hub_search = crooked
    esa.stop()
    server = build_federation_server(servicer, esa.endpoint, esa.tls)
    try:
        reply = _search(world, "TZ", container_number=world.green_container)
        status = next(s for s in reply.sources if s.source == "RINEX-ESA")
        assert status.state == OK and status.rejected >= 2 + 5 and status.count == 0
        assert "does not verify" in status.detail or "does not open" in status.detail
        assert other.record_id not in {h.record.record_id for h in reply.hits}
        for hit in reply.hits:  # what is shown came from the honest sources, verified
            assert "RINEX-ESA" not in hit.sources and hit.verified
    finally:
        server.stop(None)
        esa.start()


def test_pages_across_sources_find_every_record_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Short pages from bounded walks at every source, merged: following the
    tokens finds exactly what one large page finds."""
    from node.domain import search

    everything = _search(world, "TZ", page_size=100, hs_code_prefix="05")
    expected = [h.record.record_id for h in everything.hits]
    assert len(expected) >= 2 and not everything.next_page_token
    monkeypatch.setattr(search, "WINDOW", 3)
    monkeypatch.setattr(search, "WALK_LIMIT", 6)
    monkeypatch.setattr(search, "DRIVE_LIMIT", 1)
    seen: list[str] = []
    token = ""
    for _ in range(200):
        app = world.fed.nodes["TZ"].app
        q = spb.SearchQuery(hs_code_prefix="05")
        reply = app.search.search(npb.SearchRequest(query=q, page_size=2, page_token=token, deadline_ms=5000))
        _assert_no_leak(world, "TZ", reply)
        seen += [h.record.record_id for h in reply.hits]
        token = reply.next_page_token
        if not token:
            break
    assert seen == expected


def test_only_hubs_answer_hub_searches(world: World) -> None:
    """Red team F1's reach: a national node refuses HubSearch from anyone."""
    tz, ke = world.fed.nodes["TZ"], world.fed.nodes["KE"]
    channel = peer_channel(tz.tls, ke.node_id, ke.endpoint)
    try:
        ask = spb.HubSearchRequest(query=spb.SearchQuery(text="ivory"), page_size=5)
        with pytest.raises(grpc.RpcError) as e:
            sync_stub(channel).HubSearch(ask, timeout=10)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "only hubs" in (e.value.details() or "")
    finally:
        channel.close()


def test_a_member_has_at_most_two_searches_running_at_a_hub(world: World) -> None:
    """Red team F4 and N2: one member's flood cannot take every worker of the
    listener, and its officers take turns rather than being refused."""
    from node.errors import ResourceExhaustedError

    answer = world.fed.nodes["RINEX-ESA"].app.hub_search
    with answer._slot("TZ"), answer._slot("TZ"):
        with pytest.raises(ResourceExhaustedError):
            answer._slot("TZ").__enter__()  # no wait: refused at once
        with answer._slot("KE"):  # another member is not held back
            pass
        got: list[str] = []

        def third() -> None:
            with answer._slot("TZ", wait=5):
                got.append("ran")

        waiter = threading.Thread(target=third)
        waiter.start()
        time.sleep(0.2)
        assert got == []  # waiting its turn
    waiter.join(5)
    assert got == ["ran"]
    with answer._slot("TZ"):
        pass


def test_a_retraction_reaches_the_searcher_with_the_hub_result(world: World) -> None:
    """Red team F3: a hub result the origin retracted is shown as retracted
    (the hub sends the signed retraction), and hidden when asked."""
    ke = world.fed.nodes["KE"].app
    s = _seizure(world.fed.clock, "TGHU7654320", rec.TLP_GREEN)  # type: ignore[arg-type]
    rid = ke.records.record_seizure(s).record_id
    world.fed.sync_all(rounds=2)
    ke.records.retract(rid, "wrong container")
    world.fed.sync_all(rounds=2)
    esa = world.fed.nodes["RINEX-ESA"].app
    reply = esa.hub_search.answer(
        "TZ", spb.HubSearchRequest(query=spb.SearchQuery(container_number="TGHU7654320"), page_size=5), None
    )
    assert [len(h.superseded_by) for h in reply.hits] == [1]
    for node in ("TZ", "VN"):
        shown = _search(world, node, hs_code_prefix="0507", container_number="TGHU7654320")
        assert all(h.record.status == npb.RECORD_STATUS_RETRACTED for h in shown.hits), node
        hidden = _search(world, node, container_number="TGHU7654320", hide_retracted=True)
        assert list(hidden.hits) == [], node


def test_a_hub_that_claims_to_have_looked_at_nothing_holds_back_no_one_else(world: World) -> None:
    """Red team N1: a hub answering `more` with no hits and a frontier just
    below the page's start stalls only its own part: this node's and the
    other hubs' results still come, page after page, each once."""
    from node.domain.search import Position, parse_position

    expected = {h.record.record_id for h in _search(world, "TZ", page_size=100, hs_code_prefix="05").hits}
    esa = world.fed.nodes["RINEX-ESA"]
    servicer = esa.servicer()

    def stalling(caller: str, req: spb.HubSearchRequest, time_left: float | None) -> spb.HubSearchResponse:
        start = parse_position(req.after, "after")
        top = start or Position.at(date(9999, 12, 1), "f" * 8 + "-ffff-ffff-ffff-" + "f" * 12, "ZZ")
        below = Position(top.event_month, top.record_id[:-1] + "0", top.origin)
        return spb.HubSearchResponse(more=True, examined_to=below.token())

    servicer.hub_search = stalling
    esa.stop()
    server = build_federation_server(servicer, esa.endpoint, esa.tls)
    try:
        seen: list[str] = []
        token = ""
        for _ in range(60):
            app = world.fed.nodes["TZ"].app
            q = spb.SearchQuery(hs_code_prefix="05")
            reply = app.search.search(
                npb.SearchRequest(query=q, page_size=2, page_token=token, deadline_ms=5000)
            )
            seen += [h.record.record_id for h in reply.hits]
            token = reply.next_page_token
            if not token:
                break
        assert len(seen) == len(set(seen))  # each once
        assert set(seen) == expected  # the stalling hub held back nothing of the others'
        status = {x.source: x for x in reply.sources}
        assert "local" in status
    finally:
        server.stop(None)
        esa.start()
