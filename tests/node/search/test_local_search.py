"""Search of one node's own store (NodeService.Search without hubs): every
query field, folding of views, retractions and corrections, paging, bad input,
the re-index of an older store. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import grpc
import pytest
from sqlalchemy import delete, func, select, update

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import node_pb2_grpc
from gcn.v1 import records_pb2 as rec
from gcn.v1 import search_pb2 as spb
from node.api.server import build_server
from node.api.tls import api_ca_pem, server_credentials
from node.app import NodeApp
from node.cli.client import ClientTls, open_channel, with_token
from node.domain import samples
from node.errors import ValidationError
from node.storage.models import NodeMetaRow, RecordRow, RecordTermRow
from node.testing.clock import ManualClock


def _search(app: NodeApp, page_size: int = 50, token: str = "", **fields: object) -> npb.SearchResponse:
    q = spb.SearchQuery(**fields)  # type: ignore[arg-type]
    return app.search.search(
        npb.SearchRequest(query=q, page_size=page_size, page_token=token, local_only=True)
    )


def _ids(reply: npb.SearchResponse) -> list[str]:
    return [h.record.record_id for h in reply.hits]


def _party_seizure(day: date, company: str, person: str, vessel: str = "MSC ALTAIR") -> rec.Seizure:
    s = samples.ivory_seizure(day)
    s.tlp = rec.TLP_GREEN
    del s.parties[:]
    s.parties.add(kind=rec.PARTY_KIND_COMPANY, role=rec.PARTY_ROLE_SHIPPER, name=company, country="TR")
    s.parties.add(kind=rec.PARTY_KIND_PERSON, role=rec.PARTY_ROLE_BROKER, name=person, country="DK")
    s.conveyance.vessel_name = vessel
    s.conveyance.vessel_imo = ""
    del s.conveyance.container_numbers[:]
    return s


@pytest.fixture
def stocked(app: NodeApp, clock: ManualClock) -> dict[str, str]:
    today = clock().date()
    r = app.records
    ids = {
        "ivory": r.record_seizure(samples.ivory_seizure(today - timedelta(days=3))).record_id,
        "hcfc": r.record_seizure(samples.hcfc_seizure(today - timedelta(days=2))).record_id,
        "rosewood": r.record_seizure(samples.rosewood_seizure(today - timedelta(days=1))).record_id,
        "societe": r.record_seizure(
            _party_seizure(today - timedelta(days=5), "Société Générale des Bois SARL", "Søren Østergaard")
        ).record_id,
        "sirket": r.record_seizure(
            _party_seizure(today - timedelta(days=6), "Öztürk Şirketi A.Ş.", "Jürgen Straße", "Çeşme Yıldızı")  # noqa: RUF001
        ).record_id,
        "alert": r.record_alert(samples.vessel_alert(today + timedelta(days=30))).record_id,
        "permit_alert": r.record_alert(samples.permit_alert(today + timedelta(days=2))).record_id,
    }
    return ids


CASES: list[tuple[dict[str, object], set[str]]] = [
    ({"container_number": "CSQU3054383"}, {"ivory"}),
    ({"container_number": "csqu 305438 3"}, {"ivory"}),
    ({"container_number": "CSQU 305438-3"}, {"ivory"}),
    ({"container_number": "CSQU305438/3"}, {"ivory"}),
    ({"container_number": "CSQU 305438"}, {"ivory"}),  # without the check digit
    ({"vessel": "IMO 9074729"}, {"ivory", "alert"}),
    ({"vessel": "9074729", "kind": epb.RECORD_KIND_ALERT}, {"alert"}),
    ({"vessel": "altair"}, {"ivory", "societe"}),
    ({"vessel": "msc alt"}, {"ivory", "societe"}),
    ({"vessel": "cesme yildizi"}, {"sirket"}),
    ({"company": "societe generale"}, {"societe"}),
    ({"company": "SOCIÉTÉ"}, {"societe"}),
    ({"company": "bois generale"}, {"societe"}),  # word order free
    ({"company": "gen"}, {"societe"}),  # partial
    ({"company": "sirketi ozturk"}, {"sirket"}),
    ({"company": "Şirket"}, {"sirket"}),
    ({"company": "sesame"}, {"ivory"}),
    ({"person": "soren ostergaard"}, {"societe"}),
    ({"person": "Østergaard"}, {"societe"}),
    ({"person": "jurgen strasse"}, {"sirket"}),
    ({"person": "john mwangi"}, {"ivory"}),
    ({"person": "sesame"}, set()),  # a company is not a person
    ({"species": "Loxodonta africana"}, {"ivory", "societe", "sirket"}),
    ({"species": "pangolin"}, {"ivory", "societe", "sirket"}),
    ({"species": "elephant"}, {"ivory", "societe", "sirket"}),
    ({"species": "rosewood"}, {"rosewood"}),
    ({"species": "dalbergia"}, {"rosewood"}),
    ({"hs_code_prefix": "44"}, {"rosewood"}),
    ({"hs_code_prefix": "4403.99"}, {"rosewood"}),
    ({"hs_code_prefix": "0507"}, {"ivory", "societe", "sirket"}),
    ({"commodity": rec.COMMODITY_ODS_HFC}, {"hcfc"}),
    ({"country": "MG"}, {"rosewood"}),
    ({"country": "MG", "country_role": spb.COUNTRY_ROLE_ORIGIN}, {"rosewood"}),
    ({"country": "MG", "country_role": spb.COUNTRY_ROLE_DESTINATION}, set()),
    (
        {"country": "VN", "country_role": spb.COUNTRY_ROLE_DESTINATION},
        {"ivory", "rosewood", "societe", "sirket"},
    ),
    ({"country": "VN", "country_role": spb.COUNTRY_ROLE_SEIZING}, {"rosewood"}),
    ({"country": "my", "country_role": spb.COUNTRY_ROLE_TRANSIT}, {"ivory", "societe", "sirket"}),
    ({"country": "TR", "country_role": spb.COUNTRY_ROLE_PARTY}, {"societe", "sirket"}),
    ({"port": "NL RTM"}, {"hcfc"}),
    ({"operation_code": "demeter-ix"}, {"ivory", "alert", "societe", "sirket"}),
    ({"tlp": rec.TLP_AMBER}, {"ivory", "rosewood", "alert"}),
    ({"kind": epb.RECORD_KIND_ALERT}, {"alert", "permit_alert"}),
    ({"text": "groundnuts"}, set()),
    ({"text": "sesame wall"}, {"ivory", "societe", "sirket"}),  # concealment
    ({"text": "cylinders"}, {"hcfc"}),  # goods description
    ({"text": "density anomaly"}, {"ivory", "alert", "societe", "sirket"}),  # notes, indicators
    ({"text": "forged permit"}, {"permit_alert"}),  # alert title
    ({"text": "ivory", "container_number": "CSQU3054383"}, {"ivory"}),  # combined
    ({"text": "ivory", "country": "NL"}, set()),
]


@pytest.mark.parametrize(("fields", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
def test_each_query_field(
    app: NodeApp, stocked: dict[str, str], fields: dict[str, object], expected: set[str]
) -> None:
    names = {v: k for k, v in stocked.items()}
    got = {names[i] for i in _ids(_search(app, **fields))}  # type: ignore[arg-type]
    assert got == expected


def test_dates_and_alerts_in_force(app: NodeApp, stocked: dict[str, str], clock: ManualClock) -> None:
    today = clock().date()
    names = {v: k for k, v in stocked.items()}
    window = _search(
        app,
        date_from=(today - timedelta(days=3)).isoformat(),
        date_to=(today - timedelta(days=2)).isoformat(),
    )
    assert {names[i] for i in _ids(window)} == {"ivory", "hcfc"}
    soon = (today + timedelta(days=10)).isoformat()
    assert {names[i] for i in _ids(_search(app, in_force_on=soon))} == {"alert"}
    assert {names[i] for i in _ids(_search(app, in_force_on=today.isoformat()))} == {"alert", "permit_alert"}


def test_one_result_per_record_in_its_fullest_view_newest_first(
    app: NodeApp, stocked: dict[str, str]
) -> None:
    reply = _search(app)
    assert len(_ids(reply)) == len(set(_ids(reply))) == len(stocked)
    hcfc = next(h for h in reply.hits if h.record.record_id == stocked["hcfc"])
    assert hcfc.record.view == epb.VIEW_FULL and hcfc.record.HasField("seizure")
    with app.db.read() as s:  # this node holds other views of some records: folded into one hit
        rows = s.scalar(
            select(func.count()).select_from(RecordRow).where(RecordRow.kind != epb.RECORD_KIND_KEY)
        )
    assert rows is not None and rows >= len(stocked)
    assert all(epb.VIEW_FULL not in h.other_views for h in reply.hits)
    assert hcfc.sources == ["local"] and hcfc.verified
    assert [s.source for s in reply.sources] == ["local"] and reply.sources[
        0
    ].state == npb.SourceStatus.STATE_OK
    seizures = [h for h in reply.hits if h.record.kind == epb.RECORD_KIND_SEIZURE]
    months = [h.record.seizure.incident_date[:7] for h in seizures]
    assert months == sorted(months, reverse=True)  # newest month first
    ids = [h.record.record_id for h in seizures if h.record.seizure.incident_date[:7] == months[0]]
    assert ids == sorted(ids, reverse=True)  # then by record id: one order at every node


def test_retracted_is_marked_or_hidden_and_corrected_shows_its_latest_version(
    app: NodeApp, stocked: dict[str, str], clock: ManualClock
) -> None:
    app.records.retract(stocked["hcfc"], "duplicate of an earlier report")
    reply = _search(app, container_number="MSKU7012349")
    assert [(h.record.record_id, h.record.status) for h in reply.hits] == [
        (stocked["hcfc"], npb.RECORD_STATUS_RETRACTED)
    ]
    assert _ids(_search(app, container_number="MSKU7012349", hide_retracted=True)) == []

    fixed = samples.rosewood_seizure(clock().date() - timedelta(days=1))
    fixed.goods[0].hs_code = "440799"
    correction = app.records.correct(stocked["rosewood"], "HS code was 4407.99", fixed).record_id
    assert _ids(_search(app, hs_code_prefix="4407.99")) == [correction]
    assert _ids(_search(app, hs_code_prefix="440399")) == []  # the old version is not shown
    assert _ids(_search(app, species="rosewood")) == [correction]


def test_pages_cover_every_record_once(app: NodeApp, clock: ManualClock) -> None:
    today = clock().date()
    seizures = []
    for i in range(23):
        s = samples.hcfc_seizure(today - timedelta(days=i % 4))
        s.parties[0].name = f"Cool Parts {i} BV"
        seizures.append(s)
    made = {r.record_id for r in app.records.record_seizures(seizures)}
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        reply = _search(app, page_size=5, token=token, company="cool parts")
        seen += _ids(reply)
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(made) and pages == 5


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"container_number": "CSQU3054384"}, "query.container_number", "check digit"),
        ({"container_number": "CSQU30"}, "query.container_number", "ISO 6346"),
        ({"vessel": "IMO 9074728"}, "query.vessel", "check digit"),
        ({"hs_code_prefix": "9"}, "query.hs_code_prefix", ""),
        ({"country": "XX"}, "query.country", "ISO 3166"),
        ({"country_role": spb.COUNTRY_ROLE_ORIGIN}, "query.country_role", "needs a country"),
        ({"port": "KEM"}, "query.port", "UN/LOCODE"),
        ({"date_from": "2026-02-30"}, "query.date_from", ""),
        ({"date_from": "2026-11-02", "date_to": "2026-11-01"}, "query.date_to", "before"),
        ({"company": "!!!"}, "query.company", "no letters"),
        ({"text": "x" * 300}, "query.text", "at most"),
        ({"kind": epb.RECORD_KIND_RETRACTION}, "query.kind", "SEIZURE or ALERT"),
        ({"origin": "ke mba!"}, "query.origin", "node id"),
        ({"flight": "not a flight"}, "query.flight", "IATA"),
    ],
)
def test_bad_input_names_the_field_and_the_rule(
    app: NodeApp, fields: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as e:
        _search(app, **fields)  # type: ignore[arg-type]
    assert e.value.field == field and words in str(e.value)


@pytest.mark.parametrize("token", ["bm9wZQ", "!!", "cDE6MjAyNi0xMS0zMDpLRTp4", "x" * 400])
def test_a_page_token_this_node_did_not_issue_is_refused(app: NodeApp, token: str) -> None:
    with pytest.raises(ValidationError) as e:
        _search(app, token=token)
    assert e.value.field == "page_token"


def test_an_older_index_is_rederived_at_start_up(tmp_path: object, clock: ManualClock, db_url: str) -> None:
    from pathlib import Path

    from tests.conftest import make_node

    base = Path(str(tmp_path)) / "old"
    node = make_node(base, clock, db_url)
    rid = node.records.record_seizure(
        _party_seizure(clock().date(), "Société Générale des Bois SARL", "Søren Østergaard")
    ).record_id
    with node.db.begin() as s:  # what a node built before search words looks like
        s.execute(delete(RecordTermRow).where(RecordTermRow.field.in_(["company_w", "person_w", "text_w"])))
        s.execute(update(NodeMetaRow).values(value="1"))
    assert _ids(_search(node, company="societe")) == []
    config = node.config
    node.close()
    reopened = NodeApp.open(config, clock)
    try:
        assert _ids(_search(reopened, company="societe")) == [rid]
        assert _ids(_search(reopened, person="soren")) == [rid]
    finally:
        reopened.close()


@pytest.fixture
def stub(app: NodeApp, analyst_token: str) -> Iterator[node_pb2_grpc.NodeServiceStub]:
    running = build_server(
        app, "127.0.0.1:0", max_message_bytes=1 << 20, workers=4, tls=server_credentials(app.config)
    )
    channel = with_token(
        open_channel(f"127.0.0.1:{running.port}", ClientTls(api_ca_pem(app.config))), analyst_token
    )
    yield node_pb2_grpc.NodeServiceStub(channel)
    channel.close()
    running.stop(None)


def test_search_over_the_api_is_audited_and_bad_input_is_invalid_argument(
    app: NodeApp, stocked: dict[str, str], stub: node_pb2_grpc.NodeServiceStub
) -> None:
    q = spb.SearchQuery(company="société", vessel="altair")
    reply = stub.Search(npb.SearchRequest(query=q), timeout=10)
    assert _ids(reply) == [stocked["societe"]]
    with pytest.raises(grpc.RpcError) as e:
        stub.Search(npb.SearchRequest(query=spb.SearchQuery(container_number="CSQU3054384")), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "query.container_number" in (e.value.details() or "")
    rows = app.audit.entries()
    assert [(r.officer, r.action, r.results) for r in rows] == [("analyst", "search", 1)]
    assert rows[0].query_fields() == {"query": {"company": "société", "vessel": "altair"}}
    assert app.audit.verify().ok


def test_audited_reads_write_no_envelope_and_nothing_to_replicate(
    app: NodeApp, stocked: dict[str, str], stub: node_pb2_grpc.NodeServiceStub
) -> None:
    """The audit trail is the node's own: a search, a get and a list add audit
    rows and not one envelope, stream head or outbox entry."""
    from node.storage.models import EnvelopeRow, StreamRow

    def counts() -> tuple[int, int, list[tuple[str, str, int]]]:
        with app.db.read() as s:
            envelopes = s.scalar(select(func.count()).select_from(EnvelopeRow)) or 0
            streams = s.scalar(select(func.count()).select_from(StreamRow)) or 0
        heads = sorted((h.origin, h.audience, h.seq) for h in app.sync_source.heads())
        return int(envelopes), int(streams), heads

    before = counts()
    stub.Search(npb.SearchRequest(query=spb.SearchQuery(text="ivory")), timeout=10)
    stub.GetRecord(npb.GetRecordRequest(record_id=stocked["ivory"]), timeout=10)
    stub.ListRecords(npb.ListRecordsRequest(), timeout=10)
    assert counts() == before
    assert [r.action for r in reversed(app.audit.entries())] == ["search", "get", "list"]


def test_an_own_envelope_that_no_longer_opens_is_not_shown_as_verified(
    app: NodeApp, stocked: dict[str, str]
) -> None:
    from node.storage.models import EnvelopeRow

    with app.db.read() as s:
        row = s.scalars(
            select(RecordRow).where(RecordRow.record_id == stocked["hcfc"]).order_by(RecordRow.view)
        ).first()
        assert row is not None
        envelope_id = row.envelope_id
    with app.db.begin() as s:
        env = s.get(EnvelopeRow, envelope_id)
        assert env is not None
        damaged = bytearray(env.ciphertext)
        damaged[len(damaged) // 2] ^= 0x01
        env.ciphertext = bytes(damaged)
    reply = _search(app, container_number="MSKU7012349")
    assert [(h.record.record_id, h.verified) for h in reply.hits] == [(stocked["hcfc"], False)]


def test_a_bounded_walk_answers_short_pages_that_still_cover_every_match(
    app: NodeApp, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A walk examines at most WALK_LIMIT rows per call: with common criteria and
    few matches deep in the store, pages come back short (even empty) with a
    token, and following the tokens finds every match exactly once."""
    from node.domain import search

    monkeypatch.setattr(search, "WINDOW", 4)
    monkeypatch.setattr(search, "WALK_LIMIT", 8)
    monkeypatch.setattr(search, "DRIVE_LIMIT", 2)  # every criterion counts as common
    today = clock().date()
    seizures = []
    for i in range(30):
        s = samples.hcfc_seizure(today - timedelta(days=i))
        s.parties[0].name = "Deep Cold BV" if i >= 24 else f"Cool Parts {i} BV"
        seizures.append(s)
    made = [r.record_id for r in app.records.record_seizures(seizures)]
    wanted = set(made[24:])
    seen: list[str] = []
    token, pages, short = "", 0, 0
    while True:
        reply = _search(app, page_size=3, token=token, company="deep cold", commodity=rec.COMMODITY_ODS_HFC)
        seen += _ids(reply)
        pages += 1
        short += len(reply.hits) < 3 and bool(reply.next_page_token)
        token = reply.next_page_token
        if not token:
            break
        assert pages < 50
    assert sorted(seen) == sorted(wanted) and short >= 1
