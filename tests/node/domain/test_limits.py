"""The bounds of node/domain/limits.py: what validation refuses (naming the field and
the rule), and that what it accepts can always be read back (GetRecord and
ListRecords over real gRPC on loopback, on SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import grpc
import pytest

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import node_pb2_grpc
from gcn.v1 import records_pb2 as rec
from node.api.server import build_server
from node.app import NodeApp
from node.cli.client import with_token
from node.config import load_config
from node.domain import limits, samples
from node.domain.validation import check_alert, check_seizure, co2e_tonnes
from node.domain.validation_pool import check_inline
from node.errors import ConfigError, ValidationError
from node.testing.clock import ManualClock

TODAY = date(2026, 11, 28)
Mutator = Callable[[rec.Seizure], None]
AlertMutator = Callable[[rec.Alert], None]


def _goods(s: rec.Seizure, n: int) -> None:
    item = rec.GoodsItem()
    item.CopyFrom(s.goods[0])
    del s.goods[:]
    s.goods.extend([item] * n)


def _parties(s: rec.Seizure, n: int) -> None:
    party = rec.Party()
    party.CopyFrom(s.parties[0])
    del s.parties[:]
    s.parties.extend([party] * n)


def _permits(s: rec.Seizure, n: int) -> None:
    del s.documents.permits[:]
    s.documents.permits.extend([rec.Permit(type=rec.PERMIT_TYPE_CITES, number="KE-1")] * n)


def _transit(s: rec.Seizure, n: int) -> None:
    s.route.transit_countries[:] = ["MY"] * n


def _ods(s: rec.Seizure, value: float, unit: rec.Unit.ValueType = rec.UNIT_TONNE) -> None:
    s.CopyFrom(samples.hcfc_seizure(TODAY))
    s.goods[0].quantity.value = value
    s.goods[0].quantity.unit = unit


def _set(path: str, value: str) -> Mutator:
    def mutate(s: rec.Seizure) -> None:
        *parents, name = path.split(".")
        target = s
        for p in parents:
            target = getattr(target, p[:-3])[int(p[-2])] if p.endswith("]") else getattr(target, p)
        setattr(target, name, value)

    return mutate


SEIZURE_BOUNDS = [
    pytest.param(
        lambda s: _goods(s, 60_000), "goods", "must list at most 1000 items (got 60000)", id="goods"
    ),
    pytest.param(lambda s: _parties(s, 40_000), "parties", "at most 200 parties (got 40000)", id="parties"),
    pytest.param(lambda s: _permits(s, 201), "documents.permits", "at most 200 permits", id="permits"),
    pytest.param(lambda s: _transit(s, 31), "route.transit_countries", "at most 30", id="transit"),
    pytest.param(
        lambda s: _ods(s, 1e308), "goods[0].quantity.value", "at most 1e+12 (got 1e+308)", id="1e308-t"
    ),
    pytest.param(
        lambda s: setattr(s.goods[1].declared_value, "amount", 1e300),
        "goods[1].declared_value.amount",
        "at most 1e+15",
        id="declared-value",
    ),
    pytest.param(_set("notes", "seized\x00"), "notes", "U+0000 at character 6", id="nul-in-notes"),
    pytest.param(_set("notes", "\x1b[2Jgone"), "notes", "control characters", id="escape-in-notes"),
    pytest.param(_set("notes", "a\rb"), "notes", "U+000D", id="bare-cr-in-notes"),
    pytest.param(_set("notes", "a\u202eb"), "notes", "U+202E", id="bidi-override-in-notes"),
    pytest.param(
        _set("parties[0].name", "Sesame\nTraders"), "parties[0].name", "U+000A", id="newline-in-name"
    ),
    pytest.param(_set("parties[0].name", "Sesame\tTraders"), "parties[0].name", "U+0009", id="tab-in-name"),
    pytest.param(_set("conveyance.vessel_name", "MSC\x7f"), "conveyance.vessel_name", "U+007F", id="del"),
    pytest.param(_set("concealment", "x\x85y"), "concealment", "U+0085", id="c1-in-concealment"),
    pytest.param(
        _set("goods[0].description", "tusks\x07"), "goods[0].description", "U+0007", id="bell-in-description"
    ),
    pytest.param(
        _set("documents.bill_of_lading", "ME\u2028DU"), "documents.bill_of_lading", "U+2028", id="line-sep"
    ),
]


@pytest.mark.parametrize(("mutate", "field", "rule"), SEIZURE_BOUNDS)
def test_a_seizure_beyond_a_bound_is_refused_naming_the_field(mutate: Mutator, field: str, rule: str) -> None:
    seizure = samples.ivory_seizure(TODAY)
    mutate(seizure)
    with pytest.raises(ValidationError) as err:
        check_seizure(seizure, TODAY)
    assert err.value.field == field
    assert rule in err.value.rule


def _subjects(a: rec.Alert, n: int) -> None:
    subject = rec.AlertSubject()
    subject.CopyFrom(a.subjects[0])
    del a.subjects[:]
    a.subjects.extend([subject] * n)


def _route(a: rec.Alert, hops: int) -> None:
    del a.subjects[:]
    a.subjects.add(kind=rec.SUBJECT_KIND_ROUTE, value=">".join(["CN"] * hops))


ALERT_BOUNDS = [
    pytest.param(
        lambda a: _subjects(a, 20_000), "subjects", "at most 200 subjects (got 20000)", id="subjects"
    ),
    pytest.param(lambda a: _route(a, 33), "subjects[0].value", "at most 32 countries", id="route-hops"),
    pytest.param(
        lambda a: setattr(a, "title", "MSC\x1b]0;pwned\x07"), "title", "U+001B", id="escape-in-title"
    ),
    pytest.param(lambda a: setattr(a, "title", "two\nlines"), "title", "U+000A", id="newline-in-title"),
    pytest.param(lambda a: a.indicators.append("x\x00"), "indicators[2]", "U+0000", id="nul-in-indicator"),
    pytest.param(lambda a: setattr(a, "notes", "\x00"), "notes", "U+0000", id="nul-in-notes"),
]


@pytest.mark.parametrize(("mutate", "field", "rule"), ALERT_BOUNDS)
def test_an_alert_beyond_a_bound_is_refused_naming_the_field(
    mutate: AlertMutator, field: str, rule: str
) -> None:
    alert = samples.vessel_alert(TODAY)
    mutate(alert)
    with pytest.raises(ValidationError) as err:
        check_alert(alert, TODAY)
    assert err.value.field == field
    assert rule in err.value.rule


def test_the_largest_quantities_give_finite_figures_and_co2e_refuses_an_overflow() -> None:
    seizure = samples.ivory_seizure(TODAY)
    _ods(seizure, limits.MAX_QUANTITY)
    _goods(seizure, limits.MAX_GOODS)
    checked = check_seizure(seizure, TODAY)
    assert math.isfinite(sum(g.co2e_tonnes for g in checked.goods))
    with pytest.raises(ValidationError) as err:
        co2e_tonnes("HCFC-22", rec.Quantity(value=1e308, unit=rec.UNIT_TONNE), "goods[3].quantity")
    assert err.value.field == "goods[3].quantity.value" and "not a finite number" in err.value.rule


def test_tabs_and_newlines_stay_in_multi_line_text_and_crlf_becomes_a_newline() -> None:
    seizure = samples.ivory_seizure(TODAY)
    seizure.notes = "line one\r\n\tline two\nline three"
    seizure.place.description = "shed 3\nbay 4"
    seizure.goods[0].description = "tusks:\n\t12 whole"
    checked = check_seizure(seizure, TODAY)
    assert checked.notes == "line one\n\tline two\nline three"
    assert checked.place.description == "shed 3\nbay 4"
    assert checked.goods[0].description == "tusks:\n\t12 whole"


def test_names_in_other_scripts_are_text_not_control_characters() -> None:
    seizure = samples.ivory_seizure(TODAY)
    persian = "\u0634\u0631\u06a9\u062a\u200c\u062a\u062c\u0627\u0631\u06cc Ltd"  # with a ZWNJ
    seizure.parties[0].name = persian
    seizure.notes = "象牙 — 452,5 kg"
    assert check_seizure(seizure, TODAY).parties[0].name == persian


def _largest_seizure() -> rec.Seizure:
    """A seizure just within MAX_RECORD_BYTES: the notes and many goods lines at
    their longest in 4-byte characters, then lines of ASCII up to the bound."""
    seizure = samples.ivory_seizure(TODAY)
    seizure.notes = "\U0001d535" * 10_000
    item = seizure.goods[0]
    item.description = "\U0001d535" * 500
    seizure.goods.extend([item] * 399)
    filler = rec.GoodsItem()
    filler.CopyFrom(item)
    filler.description = "x" * 500
    while seizure.ByteSize() + filler.ByteSize() + 3 <= limits.MAX_RECORD_BYTES:
        seizure.goods.append(filler)
    return seizure


def test_a_record_beyond_the_byte_bound_is_refused_as_a_whole() -> None:
    seizure = _largest_seizure()
    assert check_seizure(seizure, TODAY).ByteSize() <= limits.MAX_RECORD_BYTES
    seizure.goods.append(seizure.goods[0])
    with pytest.raises(ValidationError) as err:
        check_seizure(seizure, TODAY)
    assert err.value.field == "seizure"
    assert f"at most {limits.MAX_RECORD_BYTES} bytes serialized" in err.value.rule
    with pytest.raises(ValidationError) as in_batch:
        check_inline([samples.ivory_seizure(TODAY), seizure], TODAY, 0)
    assert in_batch.value.field == "seizures[1]"


def test_max_message_bytes_cannot_be_set_below_a_maximal_reply(tmp_path: Path) -> None:
    path = tmp_path / "gcn.toml"
    path.write_text('[node]\nid = "KE"\nname = "KE"\nrole = "national"\ncountry = "KE"\n')
    assert load_config(path, env={}).server.max_message_bytes >= limits.MIN_MESSAGE_BYTES
    with pytest.raises(ConfigError, match=f"at least {limits.MIN_MESSAGE_BYTES}"):
        load_config(path, env={"GCN_SERVER_MAX_MESSAGE_BYTES": str(limits.MIN_MESSAGE_BYTES - 1)})
    assert load_config(path, env={"GCN_SERVER_MAX_MESSAGE_BYTES": str(limits.MIN_MESSAGE_BYTES)})


# --- reading back, over gRPC -------------------------------------------------------------


@pytest.fixture
def served(app: NodeApp, officer_token: str) -> Iterator[node_pb2_grpc.NodeServiceStub]:
    """The node at the smallest message limit its config allows, and a client
    with gRPC's default receive limit (as the CLI has)."""
    running = build_server(
        app, "127.0.0.1:0", max_message_bytes=limits.MIN_MESSAGE_BYTES, workers=4, tls=None
    )
    channel = with_token(grpc.insecure_channel(f"127.0.0.1:{running.port}"), officer_token)
    yield node_pb2_grpc.NodeServiceStub(channel)
    channel.close()
    running.stop(None)


def _list_all(stub: node_pb2_grpc.NodeServiceStub, **kw: Any) -> list[npb.ListRecordsResponse]:
    pages = [stub.ListRecords(npb.ListRecordsRequest(**kw), timeout=30)]
    while pages[-1].next_page_token:
        req = npb.ListRecordsRequest(page_token=pages[-1].next_page_token, **kw)
        pages.append(stub.ListRecords(req, timeout=30))
    return pages


@pytest.mark.usefixtures("db_url")
def test_a_seizure_of_60000_goods_is_refused_and_listing_keeps_working(
    app: NodeApp, officer_token: str, clock: ManualClock
) -> None:
    running = build_server(app, "127.0.0.1:0", max_message_bytes=4 * limits.MIB, workers=2, tls=None)
    channel = with_token(grpc.insecure_channel(f"127.0.0.1:{running.port}"), officer_token)
    stub = node_pb2_grpc.NodeServiceStub(channel)
    try:
        seizure = samples.ivory_seizure(clock().date())
        line = rec.GoodsItem(
            commodity=rec.COMMODITY_WILDLIFE,
            description="raw ivory, one tusk of the consignment",
            hs_code="050710",
            quantity=rec.Quantity(value=1, unit=rec.UNIT_PIECE),
        )
        del seizure.goods[:]
        seizure.goods.extend([line] * 60_000)
        assert 3_500_000 < seizure.ByteSize() < 4 * limits.MIB  # the 3.8 MB
        with pytest.raises(grpc.RpcError) as err:
            stub.RecordSeizure(npb.RecordSeizureRequest(seizure=seizure), timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details() == "goods: must list at most 1000 items (got 60000)"
        assert list(stub.ListRecords(npb.ListRecordsRequest(), timeout=10).records) == []
    finally:
        channel.close()
        running.stop(None)


@pytest.mark.usefixtures("db_url")
def test_the_largest_record_reads_back_and_lists_within_the_reply_limit(
    app: NodeApp, served: node_pb2_grpc.NodeServiceStub, clock: ManualClock
) -> None:
    largest = _largest_seizure()
    largest.incident_date = clock().date().isoformat()
    first = served.RecordSeizure(npb.RecordSeizureRequest(seizure=largest), timeout=60)
    # A correction carries the record and a reason of 2,000 four-byte characters: the largest body.
    correction = served.Correct(
        npb.CorrectRequest(record_id=first.record_id, reason="\U0001d535" * 2000, seizure=largest), timeout=60
    )
    got = served.GetRecord(npb.GetRecordRequest(record_id=correction.record_id), timeout=30)
    assert got.correction.seizure.ByteSize() > limits.MAX_RECORD_BYTES - 1024
    assert not got.too_large
    assert got.ByteSize() <= limits.MAX_STORED_RECORD_BYTES
    assert got.envelope.ByteSize() <= limits.MAX_ENVELOPE_BYTES
    pages = _list_all(served, include_inactive=True)
    assert [len(p.records) for p in pages] == [1, 1]  # each alone fills most of a page
    assert {r.record_id for p in pages for r in p.records} == {first.record_id, correction.record_id}
    assert max(p.ByteSize() for p in pages) <= limits.MAX_REPLY_BYTES


@pytest.mark.usefixtures("db_url")
def test_pages_are_bounded_by_bytes_a_short_page_carries_a_token(
    app: NodeApp, served: node_pb2_grpc.NodeServiceStub, clock: ManualClock
) -> None:
    seizures = []
    for i in range(220):
        s = samples.ivory_seizure(clock().date())
        s.notes = f"{i:03d}" + "n" * 9_997
        seizures.append(s)
    app.records.record_seizures(seizures)
    pages = _list_all(served, page_size=500)
    sizes = [len(p.records) for p in pages]
    assert len(pages) > 1 and sum(sizes) == 220 and sizes[0] < 220
    assert all(p.ByteSize() <= limits.MAX_PAGE_BYTES for p in pages)
    notes = [r.seizure.notes[:3] for p in pages for r in p.records]
    assert notes == [f"{i:03d}" for i in reversed(range(220))]  # newest first, each once


def _token(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(_token("e:" + "9" * 30), id="beyond-64-bits"),
        pytest.param(_token(f"e:{2**63}"), id="just-beyond-int64"),
        pytest.param(_token("e:-5"), id="negative"),
        pytest.param(_token("e:0"), id="zero"),
        pytest.param(_token("e:+5"), id="plus-sign"),
        pytest.param(_token("e:5\n"), id="trailing-newline"),
        pytest.param(_token("e:\u0665"), id="arabic-digit"),
        pytest.param(_token("x:5"), id="other-kind"),
        pytest.param("a" * 65, id="too-long"),
        pytest.param("e:5", id="not-base64"),
        pytest.param(_token("e:5") + "\n", id="base64-then-newline"),
    ],
)
@pytest.mark.usefixtures("db_url")
def test_a_forged_page_token_is_invalid_argument_naming_page_token(
    served: node_pb2_grpc.NodeServiceStub, token: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        served.ListRecords(npb.ListRecordsRequest(page_token=token), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith("page_token: ")


@pytest.mark.usefixtures("db_url")
def test_a_record_stored_before_the_bounds_is_listed_without_body_nor_envelope(
    app: NodeApp, served: node_pb2_grpc.NodeServiceStub, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = app.records.record_seizure(samples.ivory_seizure(clock().date()))
    with monkeypatch.context() as old_node:  # a node from before the bounds
        old_node.setattr(limits, "MAX_GOODS", 100_000)
        old_node.setattr(limits, "MAX_RECORD_BYTES", 64 * limits.MIB)
        huge = samples.ivory_seizure(clock().date())
        _goods(huge, 60_000)
        big = app.records.record_seizure(huge)
    got = served.GetRecord(npb.GetRecordRequest(record_id=big.record_id), timeout=30)
    assert got.too_large and got.WhichOneof("body") is None and not got.HasField("envelope")
    assert (got.origin, got.kind) == ("KE", epb.RECORD_KIND_SEIZURE)
    listed = served.ListRecords(npb.ListRecordsRequest(), timeout=30).records
    assert [r.too_large for r in listed] == [True, False]
    assert listed[1].record_id == small.record_id and listed[1].seizure.goods
