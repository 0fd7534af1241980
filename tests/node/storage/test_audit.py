"""The audit trail over a real server on loopback: officer reads append rows,
the chain verifies, survives a reopen, and tampering is named."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import grpc
import pytest
from sqlalchemy import delete, select, update

from gcn.v1 import node_pb2 as npb
from gcn.v1 import node_pb2_grpc
from node.api.server import build_server
from node.api.tls import api_ca_pem, server_credentials
from node.app import NodeApp
from node.cli.client import ClientTls, open_channel, with_token
from node.domain import samples
from node.storage.audit import AuditLog, canonical_query
from node.storage.models import AuditRow
from node.storage.users import Role, User
from node.testing.clock import ManualClock


@pytest.fixture
def stub(app: NodeApp, officer_token: str) -> Iterator[node_pb2_grpc.NodeServiceStub]:
    running = build_server(
        app, "127.0.0.1:0", max_message_bytes=1 << 20, workers=4, tls=server_credentials(app.config)
    )
    channel = with_token(
        open_channel(f"127.0.0.1:{running.port}", ClientTls(api_ca_pem(app.config))), officer_token
    )
    yield node_pb2_grpc.NodeServiceStub(channel)
    channel.close()
    running.stop(None)


def test_get_and_list_append_rows_and_tampering_is_named(
    app: NodeApp, stub: node_pb2_grpc.NodeServiceStub, clock: ManualClock, officer_token: str
) -> None:
    seizure = samples.ivory_seizure(clock().date() - timedelta(days=1))
    rid = stub.RecordSeizure(npb.RecordSeizureRequest(seizure=seizure), timeout=10).record_id
    stub.GetRecord(npb.GetRecordRequest(record_id=rid), timeout=10)
    listed = stub.ListRecords(npb.ListRecordsRequest(container_number="MSKU7012349"), timeout=10)
    with pytest.raises(grpc.RpcError):
        stub.GetRecord(npb.GetRecordRequest(record_id="00000000-0000-4000-8000-000000000000"), timeout=10)
    rows = list(reversed(app.audit.entries()))
    assert [(r.seq, r.officer, r.role, r.action, r.results) for r in rows] == [
        (1, "officer", "officer", "get", 1),
        (2, "officer", "officer", "list", len(listed.records)),
        (3, "officer", "officer", "get", 0),
    ]
    assert rows[0].query_fields() == {"record_id": rid}
    assert rows[1].query_fields() == {"container_number": "MSKU7012349"}
    with app.db.read() as s:
        dumped = repr([(r.query, r.officer, r.hash) for r in s.scalars(select(AuditRow))])
    assert officer_token not in dumped and officer_token[4:] not in dumped
    assert app.audit.verify().ok and app.audit.verify().rows == 3

    with app.db.begin() as s:
        s.execute(update(AuditRow).where(AuditRow.seq == 2).values(results=99))
    check = app.audit.verify()
    assert (check.broken_seq, check.reason.split(":")[0]) == (2, "hash mismatch")


@pytest.mark.parametrize("tamper", ["query", "delete", "reorder"])
def test_verify_names_the_first_broken_row(app: NodeApp, clock: ManualClock, tamper: str) -> None:
    who = User("alice", Role.OFFICER, clock(), clock(), None)
    for i in range(5):
        app.audit.record(who, "search", {"text": f"rosewood {i}"}, i)
    with app.db.begin() as s:
        if tamper == "query":
            s.execute(update(AuditRow).where(AuditRow.seq == 3).values(query='{"text":"nothing"}'))
        elif tamper == "delete":
            s.execute(delete(AuditRow).where(AuditRow.seq == 3))
        else:
            s.execute(update(AuditRow).where(AuditRow.seq == 3).values(seq=100))
            s.execute(update(AuditRow).where(AuditRow.seq == 4).values(seq=3))
            s.execute(update(AuditRow).where(AuditRow.seq == 100).values(seq=4))
    check = app.audit.verify()
    assert not check.ok and check.broken_seq == 3 and check.rows == 2
    assert check.reason.startswith("gap" if tamper == "delete" else "hash mismatch")


def test_a_rehashed_row_breaks_the_chain_at_the_next(app: NodeApp, clock: ManualClock) -> None:
    from node.storage.audit import row_hash

    who = User("alice", Role.ANALYST, clock(), clock(), None)
    for i in range(3):
        app.audit.record(who, "list", {"page_size": i}, i)
    with app.db.begin() as s:
        row = s.get(AuditRow, 2)
        assert row is not None
        row.query = canonical_query({"page_size": 7})
        row.hash = row_hash(
            row.seq, row.at, row.officer, row.role, row.action, row.query, row.results, row.prev_hash
        )
    check = app.audit.verify()
    assert (check.broken_seq, check.reason.split(":")[0]) == (3, "broken chain")


def test_rows_survive_a_reopen_and_concurrent_appends_are_gapless(app: NodeApp, clock: ManualClock) -> None:
    who = User("bob", Role.OFFICER, clock(), clock(), None)
    threads = [
        threading.Thread(
            target=lambda: [app.audit.record(who, "get", {"record_id": "x"}, 1) for _ in range(10)]
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reopened = NodeApp.open(app.config, clock)
    try:
        check = reopened.audit.verify()
        assert check.ok and check.rows == 40 and check.head_seq == 40
        reopened.audit.record(who, "get", {"record_id": "y"}, 0)
        assert AuditLog(reopened.db).verify().rows == 41
    finally:
        reopened.close()


def test_queries_are_bounded() -> None:
    assert canonical_query({"b": 1, "a": "x"}) == '{"a":"x","b":1}'
    long = canonical_query({"text": "z" * 5000})
    assert len(long) < 700 and "[+4488 chars]" in long
    assert "_oversize" in canonical_query({f"k{i}": "v" * 500 for i in range(20)})
