"""A seizure recorded twice (two shifts, a form sent again after a timeout) is
refused through the officer API, naming the earlier record; asked again with
`allow_duplicate`, it is recorded. Seen from outside before: the same seizure
recorded twice stood as two records everywhere it went."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import grpc
import pytest

from gcn.v1 import node_pb2 as npb
from gcn.v1 import node_pb2_grpc
from node.api.server import build_server
from node.app import NodeApp
from node.domain import samples
from node.errors import DuplicateRecordError
from node.testing.clock import ManualClock


@pytest.fixture
def stub(app: NodeApp, officer_token: str) -> Iterator[Any]:
    running = build_server(app, "127.0.0.1:0", max_message_bytes=4 << 20, workers=4, tls=None)
    channel = grpc.intercept_channel(grpc.insecure_channel(f"127.0.0.1:{running.port}"))
    yield node_pb2_grpc.NodeServiceStub(channel), (("authorization", f"Bearer {officer_token}"),)
    channel.close()
    running.stop(None)


def test_the_same_seizure_twice_is_refused_naming_the_first_and_allowed_when_asked(
    stub: Any, clock: ManualClock
) -> None:
    node, auth = stub
    seizure = samples.ivory_seizure(clock().date())
    first = node.RecordSeizure(npb.RecordSeizureRequest(seizure=seizure), metadata=auth, timeout=10)
    with pytest.raises(grpc.RpcError) as e:
        node.RecordSeizure(npb.RecordSeizureRequest(seizure=seizure), metadata=auth, timeout=10)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    details = e.value.details() or ""
    assert first.record_id[:8] in details and "KEMBA" in details and "CSQU3054383" in details
    again = node.RecordSeizure(
        npb.RecordSeizureRequest(seizure=seizure, allow_duplicate=True), metadata=auth, timeout=10
    )
    assert again.record_id != first.record_id


@pytest.mark.parametrize(
    "change",
    [
        "another day",
        "another container and vessel",
        "another port",
        "the first retracted",
    ],
)
def test_what_is_not_a_duplicate(app: NodeApp, clock: ManualClock, change: str) -> None:
    today = clock().date()
    first = app.records.record_seizure(samples.ivory_seizure(today), refuse_duplicate=True)
    second = samples.ivory_seizure(today)
    if change == "another day":
        second.incident_date = (today - timedelta(days=1)).isoformat()
    elif change == "another container and vessel":
        second.conveyance.container_numbers[:] = ["MSKU7012349"]
        second.conveyance.vessel_imo = "9321483"
    elif change == "another port":
        second.place.port_locode = "KELAU"
    else:
        app.records.retract(first.record_id, "recorded in error")
    app.records.record_seizure(second, refuse_duplicate=True)


def test_one_shared_container_is_enough_and_the_error_carries_the_record_id(
    app: NodeApp, clock: ManualClock
) -> None:
    today = clock().date()
    first = app.records.record_seizure(samples.ivory_seizure(today), refuse_duplicate=True)
    second = samples.ivory_seizure(today)
    second.conveyance.vessel_imo = ""
    second.conveyance.container_numbers.append("MSKU7012349")
    with pytest.raises(DuplicateRecordError) as e:
        app.records.record_seizure(second, refuse_duplicate=True)
    assert e.value.record_id == first.record_id
    assert str(e.value).startswith(f"seizure: this node recorded {first.record_id[:8]} on the same day")
