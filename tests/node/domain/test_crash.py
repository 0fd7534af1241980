"""A node killed with SIGKILL keeps every record it acknowledged, and its
streams continue after restart without a gap or a reused sequence number."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gcn.v1 import node_pb2 as npb
from gcn.v1 import node_pb2_grpc
from node.api.tls import api_ca_pem
from node.bootstrap import init_node
from node.cli.client import ClientTls, open_channel, with_token
from node.clock import system_clock
from node.config import load_config
from node.domain import samples
from node.storage.db import Database
from node.storage.users import Role, UserStore

pytestmark = pytest.mark.slow


class NodeProcess:
    """`gcn serve` in a child process, its address read from its JSON log."""

    def __init__(self, config_path: Path, token: str) -> None:
        self.config_path = config_path
        self.token = token
        self.tls = ClientTls(api_ca_pem(load_config(config_path)))
        self.proc: subprocess.Popen[str] | None = None
        self.address = ""

    def start(self) -> None:
        env = {**os.environ, "GCN_LOGGING_FORMAT": "json"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli.main", "serve", "--config", str(self.config_path)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        for line in self.proc.stderr:
            if time.monotonic() > deadline:
                break
            if '"node serving"' in line:
                self.address = json.loads(line)["address"]
                threading.Thread(target=self._drain, daemon=True).start()
                self._wait_healthy()
                return
        raise AssertionError(f"node did not start (exit code {self.proc.poll()})")

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for _ in self.proc.stderr:
            pass

    def _wait_healthy(self) -> None:
        # Health is open: no token on this channel.
        with open_channel(self.address, self.tls) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def stub(self) -> node_pb2_grpc.NodeServiceStub:
        return node_pb2_grpc.NodeServiceStub(with_token(open_channel(self.address, self.tls), self.token))


@pytest.fixture
def node_process(tmp_path: Path, db_url: str) -> Iterator[NodeProcess]:
    config = init_node(
        tmp_path / "ke",
        node_id="KE",
        name="Kenya",
        role="national",
        country="KE",
        listen="127.0.0.1:0",
        database_url=db_url,
    )
    db = Database(config.database_url)
    try:
        token = UserStore(db).add("officer", Role.OFFICER, system_clock())
    finally:
        db.dispose()
    proc = NodeProcess(tmp_path / "ke" / "gcn.toml", token)
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.kill()


def _seizure_request() -> npb.RecordSeizureRequest:
    # The same seizure again and again, on purpose: not a duplicate to refuse here.
    seizure = samples.ivory_seizure(system_clock().date())
    return npb.RecordSeizureRequest(seizure=seizure, allow_duplicate=True)


def test_an_acknowledged_record_survives_sigkill_and_the_stream_continues(node_process: NodeProcess) -> None:
    node_process.start()
    reply = node_process.stub().RecordSeizure(_seizure_request(), timeout=10)
    node_process.kill()  # right after the acknowledgement

    node_process.start()
    stub = node_process.stub()
    got = stub.GetRecord(npb.GetRecordRequest(record_id=reply.record_id), timeout=10)
    assert got.seizure.place.port_locode == "KEMBA"
    after = stub.RecordSeizure(_seizure_request(), timeout=10)
    assert after.envelopes[0].seq == reply.envelopes[0].seq + 1
    assert node_process.terminate() == 0


def test_sigkill_under_load_loses_no_acknowledged_record(node_process: NodeProcess) -> None:
    node_process.start()
    acked: list[npb.RecordReply] = []
    stop = threading.Event()

    def writer() -> None:
        stub = node_process.stub()
        while not stop.is_set():
            try:
                acked.append(stub.RecordSeizure(_seizure_request(), timeout=5))
            except grpc.RpcError:
                return

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    node_process.kill()
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(acked) > 10

    node_process.start()
    stub = node_process.stub()
    stored: set[str] = set()
    token = ""
    while True:
        page = stub.ListRecords(npb.ListRecordsRequest(page_size=500, page_token=token), timeout=10)
        stored |= {r.record_id for r in page.records}
        token = page.next_page_token
        if not token:
            break
    assert {r.record_id for r in acked} <= stored
    seqs = sorted(r.envelopes[0].seq for r in acked)
    assert len(seqs) == len(set(seqs))
    nxt = stub.RecordSeizure(_seizure_request(), timeout=10)
    # The stream continues right after the highest seq committed (acknowledged or not).
    assert nxt.envelopes[0].seq == len(stored) + 2  # +1 for the key message, +1 for the next
    assert load_config(node_process.config_path).node.id == "KE"
