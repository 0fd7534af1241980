"""The node over real gRPC on loopback: health, reflection, round trips, and a
table of bad inputs that each get a clear error while nothing is stored. Calls
carry an officer's bearer token (authentication itself: test_auth.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from sqlalchemy import func, select

from crypto import envelope as env_crypto
from crypto.signing import KeyRing, PublicSigningKey
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import node_pb2_grpc
from gcn.v1 import records_pb2 as rec
from node.api.grpc_server import RunningServer
from node.api.server import build_server
from node.api.tls import api_ca_pem, server_credentials
from node.app import NodeApp
from node.cli.client import ClientTls, open_channel, with_token
from node.domain import samples
from node.storage.models import EnvelopeRow
from node.testing.clock import ManualClock

MAX_MESSAGE = 256 * 1024


@pytest.fixture
def served(app: NodeApp, officer_token: str) -> Iterator[tuple[RunningServer, grpc.Channel]]:
    tls = server_credentials(app.config)
    running = build_server(app, "127.0.0.1:0", max_message_bytes=MAX_MESSAGE, workers=4, tls=tls)
    client_tls = ClientTls(api_ca_pem(app.config))
    channel = with_token(open_channel(f"127.0.0.1:{running.port}", client_tls), officer_token)
    yield running, channel
    channel.close()
    running.stop(None)


@pytest.fixture
def stub(served: tuple[RunningServer, grpc.Channel]) -> node_pb2_grpc.NodeServiceStub:
    return node_pb2_grpc.NodeServiceStub(served[1])


def _stored(app: NodeApp) -> int:
    with app.db.begin() as s:
        return int(s.scalar(select(func.count()).select_from(EnvelopeRow)) or 0)


def test_health_is_serving_and_reflection_lists_the_node_service(
    served: tuple[RunningServer, grpc.Channel],
) -> None:
    _, channel = served
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "gcn.v1.NodeService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "gcn.v1.NodeService" in services
    assert "grpc.health.v1.Health" in services


def test_a_seizure_recorded_over_grpc_reads_back_with_every_field_and_verifies(
    stub: node_pb2_grpc.NodeServiceStub, clock: ManualClock
) -> None:
    seizure = samples.ivory_seizure(clock().date() - timedelta(days=1))
    reply = stub.RecordSeizure(npb.RecordSeizureRequest(seizure=seizure), timeout=10)
    got = stub.GetRecord(npb.GetRecordRequest(record_id=reply.record_id), timeout=10)
    # Every field the officer sent comes back; the node only adds what it derives.
    expected = rec.Seizure()
    expected.CopyFrom(seizure)
    for p in expected.parties:
        p.personal_data = p.kind == rec.PARTY_KIND_PERSON
    assert got.seizure == expected
    # The envelope verifies with the key the node publishes, independently of the node.
    info = stub.GetNodeInfo(npb.GetNodeInfoRequest(), timeout=10)
    key = info.signing_keys[0]
    ring = KeyRing(
        [
            PublicSigningKey(
                info.node_id,
                key.key_id,
                key.public_key,
                key.not_before.ToDatetime().replace(tzinfo=clock().tzinfo),
            )
        ]
    )
    verified = env_crypto.verify(got.envelope, ring)
    assert verified.hash == reply.envelopes[0].envelope_hash
    # What a relay sees names neither the record nor its kind nor its view (envelope version 2).
    assert verified.header.version == 2
    assert verified.header.record_id != reply.record_id
    assert (verified.header.kind, verified.header.view) == (epb.RECORD_KIND_SEALED, epb.VIEW_UNSPECIFIED)
    assert (got.record_id, got.kind, got.view) == (reply.record_id, epb.RECORD_KIND_SEIZURE, epb.VIEW_FULL)


Mutator = Callable[[Any], None]
TODAY_PLUS = timedelta(days=30)


def _seizure(clock: ManualClock, mutate: Mutator) -> npb.RecordSeizureRequest:
    s = samples.ivory_seizure(clock().date() - timedelta(days=1))
    mutate(s)
    return npb.RecordSeizureRequest(seizure=s)


def _alert(clock: ManualClock, mutate: Mutator) -> npb.RecordAlertRequest:
    a = samples.vessel_alert(clock().date() + TODAY_PLUS)
    mutate(a)
    return npb.RecordAlertRequest(alert=a)


def _set(path: str, value: Any) -> Mutator:
    def mutate(msg: Any) -> None:
        *parents, leaf = path.split(".")
        for p in parents:
            msg = msg[int(p)] if p.isdigit() else getattr(msg, p)
        if leaf.isdigit():
            msg[int(leaf)] = value
        else:
            setattr(msg, leaf, value)

    return mutate


def _clear(field: str) -> Mutator:
    return lambda msg: msg.ClearField(field)


S, A = "seizure", "alert"
BAD_INPUTS = [
    pytest.param(S, _set("place.country", "XX"), "place.country", "ISO 3166", id="unknown-country"),
    pytest.param(S, _set("place.port_locode", "KE-MB1"), "place.port_locode", "LOCODE", id="locode-shape"),
    pytest.param(S, _set("place.port_locode", "TZDAR"), "place.port_locode", "KE", id="locode-other-country"),
    pytest.param(
        S,
        _set("conveyance.container_numbers.0", "CSQU3054384"),
        "conveyance.container_numbers[0]",
        "check digit",
        id="container-check-digit",
    ),
    pytest.param(
        S,
        _set("conveyance.container_numbers.0", "CSQ305438"),
        "conveyance.container_numbers[0]",
        "ISO 6346",
        id="container-shape",
    ),
    pytest.param(
        S,
        _set("conveyance.vessel_imo", "9074728"),
        "conveyance.vessel_imo",
        "check digit",
        id="imo-check-digit",
    ),
    pytest.param(S, _set("goods.0.hs_code", "0507"), "goods[0].hs_code", "6", id="hs-too-short"),
    pytest.param(S, _set("goods.0.hs_code", "770000"), "goods[0].hs_code", "77", id="hs-reserved-chapter"),
    pytest.param(S, _set("goods.0.cites_appendix", 7), "goods[0].cites_appendix", "7", id="cites-unknown"),
    pytest.param(
        S,
        _set("goods.0.quantity.value", -3.0),
        "goods[0].quantity.value",
        "greater than 0",
        id="quantity-negative",
    ),
    pytest.param(
        S,
        _set("goods.0.quantity.value", 0.0),
        "goods[0].quantity.value",
        "greater than 0",
        id="quantity-zero",
    ),
    pytest.param(
        S, _set("goods.0.quantity.unit", 0), "goods[0].quantity.unit", "required", id="unit-missing"
    ),
    pytest.param(S, _set("incident_date", "2026-12-25"), "incident_date", "future", id="date-in-future"),
    pytest.param(
        S, _set("incident_date", "2026-13-01"), "incident_date", "calendar date", id="date-malformed"
    ),
    pytest.param(
        S, _set("goods.0.ods_substance", "HCFC-22"), "goods[0].ods_substance", "ODS", id="ods-on-wildlife"
    ),
    pytest.param(
        S,
        lambda s: (
            s.goods[0].__setattr__("commodity", rec.COMMODITY_ODS_HFC),
            s.goods[0].__setattr__("ods_substance", "HFC-999"),
        ),
        "goods[0].ods_substance",
        "HFC-999",
        id="ods-unknown-substance",
    ),
    pytest.param(S, _clear("goods"), "goods", "at least one", id="no-goods"),
    pytest.param(S, _set("direction", 0), "direction", "required", id="direction-missing"),
    pytest.param(S, _set("detection_method", 99), "detection_method", "99", id="detection-unknown-enum"),
    pytest.param(
        S,
        _set("goods.0.declared_value.currency", "XYZ"),
        "goods[0].declared_value.currency",
        "ISO 4217",
        id="currency-unknown",
    ),
    pytest.param(
        S,
        lambda s: s.route.transit_countries.append("ZZ"),
        "route.transit_countries[1]",
        "ISO 3166",
        id="transit-country-unknown",
    ),
    pytest.param(S, _set("parties.0.role", 0), "parties[0].role", "required", id="party-without-role"),
    pytest.param(S, _set("operation_code", "FOOBAR"), "operation_code", "known", id="operation-unknown"),
    pytest.param(S, _set("tlp", 0), "tlp", "required", id="tlp-missing"),
    pytest.param(
        S, _set("goods.0.species", "elephant"), "goods[0].species", "scientific", id="species-not-scientific"
    ),
    pytest.param(A, _set("valid_until", "2026-01-01"), "valid_until", "past", id="alert-expired"),
    pytest.param(A, _clear("subjects"), "subjects", "at least one", id="alert-without-subject"),
    pytest.param(
        A,
        _set("subjects.0.value", "9074728"),
        "subjects[0].value",
        "check digit",
        id="alert-vessel-check-digit",
    ),
    pytest.param(A, _set("priority", 42), "priority", "42", id="alert-priority-unknown-enum"),
    pytest.param(A, _set("title", ""), "title", "required", id="alert-without-title"),
]


@pytest.mark.parametrize(("kind", "mutate", "field", "phrase"), BAD_INPUTS)
def test_bad_input_gets_invalid_argument_naming_field_and_rule(
    app: NodeApp,
    stub: node_pb2_grpc.NodeServiceStub,
    clock: ManualClock,
    kind: str,
    mutate: Mutator,
    field: str,
    phrase: str,
) -> None:
    before = _stored(app)
    with pytest.raises(grpc.RpcError) as err:
        if kind == S:
            stub.RecordSeizure(_seizure(clock, mutate), timeout=10)
        else:
            stub.RecordAlert(_alert(clock, mutate), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details() or ""
    assert details.startswith(f"{field}: "), details
    assert phrase.lower() in details.lower(), details
    assert _stored(app) == before
    # ... and the node keeps serving.
    ok = stub.RecordSeizure(_seizure(clock, lambda s: None), timeout=10)
    assert ok.record_id


def _raw(channel: grpc.Channel, method: str) -> Any:
    return channel.unary_unary(
        f"/gcn.v1.NodeService/{method}", request_serializer=None, response_deserializer=None
    )


TRANSPORT_CASES = [
    pytest.param("malformed-protobuf", grpc.StatusCode.INVALID_ARGUMENT, "request", id="malformed-protobuf"),
    pytest.param("oversized", grpc.StatusCode.RESOURCE_EXHAUSTED, "", id="oversized-message"),
    pytest.param("retract-not-uuid", grpc.StatusCode.INVALID_ARGUMENT, "record_id", id="retract-not-uuid"),
    pytest.param("retract-unknown", grpc.StatusCode.NOT_FOUND, "not a record", id="retract-unknown"),
    pytest.param("get-unknown", grpc.StatusCode.NOT_FOUND, "no record", id="get-unknown"),
    pytest.param(
        "list-bad-container", grpc.StatusCode.INVALID_ARGUMENT, "container_number", id="list-bad-container"
    ),
    pytest.param("list-huge-page", grpc.StatusCode.INVALID_ARGUMENT, "page_size", id="list-huge-page"),
    pytest.param(
        "correct-without-replacement",
        grpc.StatusCode.INVALID_ARGUMENT,
        "replacement",
        id="correct-without-replacement",
    ),
]


@pytest.mark.parametrize(("case", "code", "phrase"), TRANSPORT_CASES)
def test_malformed_oversized_and_impossible_requests(
    app: NodeApp,
    served: tuple[RunningServer, grpc.Channel],
    stub: node_pb2_grpc.NodeServiceStub,
    clock: ManualClock,
    case: str,
    code: grpc.StatusCode,
    phrase: str,
) -> None:
    _, channel = served
    before = _stored(app)
    with pytest.raises(grpc.RpcError) as err:
        if case == "malformed-protobuf":
            _raw(channel, "RecordSeizure")(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)
        elif case == "oversized":
            stub.RecordSeizure(_seizure(clock, _set("notes", "x" * (MAX_MESSAGE + 1))), timeout=10)
        elif case == "retract-not-uuid":
            stub.Retract(npb.RetractRequest(record_id="1234", reason="dup"), timeout=10)
        elif case == "retract-unknown":
            stub.Retract(
                npb.RetractRequest(record_id="3f0c1b9e-0000-4000-8000-000000000000", reason="x"), timeout=10
            )
        elif case == "get-unknown":
            stub.GetRecord(npb.GetRecordRequest(record_id="3f0c1b9e-0000-4000-8000-000000000000"), timeout=10)
        elif case == "list-bad-container":
            stub.ListRecords(npb.ListRecordsRequest(container_number="ABCD1234567"), timeout=10)
        elif case == "list-huge-page":
            stub.ListRecords(npb.ListRecordsRequest(page_size=10_000), timeout=10)
        else:
            stub.Correct(
                npb.CorrectRequest(record_id="3f0c1b9e-0000-4000-8000-000000000000", reason="x"), timeout=10
            )
    assert err.value.code() == code
    assert phrase in (err.value.details() or "")
    assert _stored(app) == before
    assert stub.ListRecords(npb.ListRecordsRequest(), timeout=10) is not None


def test_concurrent_clients_never_share_a_sequence_number(
    app: NodeApp, served: tuple[RunningServer, grpc.Channel], clock: ManualClock
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    _, channel = served

    def record(i: int) -> int:
        stub = node_pb2_grpc.NodeServiceStub(channel)
        request = _seizure(clock, lambda s: None)
        request.allow_duplicate = True  # the same seizure 40 times, on purpose
        reply = stub.RecordSeizure(request, timeout=30)
        return int(reply.envelopes[0].seq)

    with ThreadPoolExecutor(8) as pool:
        seqs = list(pool.map(record, range(40)))
    assert sorted(seqs) == list(range(2, 42))


def test_several_seizures_in_one_call_are_stored_together_in_order(
    app: NodeApp, stub: node_pb2_grpc.NodeServiceStub, clock: ManualClock
) -> None:
    seizures = samples.sample_seizures(clock().date())
    amber = [s for s in seizures if s.tlp == rec.TLP_AMBER]  # national only: one envelope each
    reply = stub.RecordSeizures(npb.RecordSeizuresRequest(seizures=amber), timeout=10)
    assert len(reply.records) == len(amber)
    seqs = [r.envelopes[0].seq for r in reply.records]
    assert seqs == list(range(seqs[0], seqs[0] + len(amber)))
    for r, sent in zip(reply.records, amber, strict=True):
        got = stub.GetRecord(npb.GetRecordRequest(record_id=r.record_id), timeout=10)
        assert got.seizure.incident_date == sent.incident_date


@pytest.mark.parametrize(
    ("count", "bad_index", "phrase"),
    [
        pytest.param(
            3, 1, "seizures[1].conveyance.container_numbers[0]: ", id="one-bad-seizure-named-by-index"
        ),
        pytest.param(0, None, "seizures: at least one", id="empty-batch"),
        pytest.param(1001, None, "seizures: at most 1000", id="too-many"),
    ],
)
def test_a_batch_with_a_bad_seizure_stores_nothing(
    app: NodeApp,
    stub: node_pb2_grpc.NodeServiceStub,
    clock: ManualClock,
    count: int,
    bad_index: int | None,
    phrase: str,
) -> None:
    if count > 100:  # small messages: the count is checked before anything else
        seizures = [rec.Seizure(incident_date="2026-11-01") for _ in range(count)]
    else:
        seizures = [samples.ivory_seizure(clock().date()) for _ in range(count)]
    if bad_index is not None:
        seizures[bad_index].conveyance.container_numbers[0] = "CSQU3054384"
    before = _stored(app)
    with pytest.raises(grpc.RpcError) as err:
        stub.RecordSeizures(npb.RecordSeizuresRequest(seizures=seizures), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith(phrase)
    assert _stored(app) == before
