"""SIGKILL in the middle of a replication batch, on either side: after a
restart nothing is lost and nothing is stored twice (checked by counting and
by comparing vectors)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import create_engine, text

from federation.sync import RoundResult, push
from federation.transport import sync_stub
from node.clock import system_clock
from node.domain import samples
from node.testing.local_federation import LocalFederation

pytestmark = pytest.mark.slow
N = 4000


def _serve(config: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GCN_LOGGING_FORMAT": "json",
        "GCN_FEDERATION_SYNC_INTERVAL_SECONDS": "0.5",
        "GCN_FEDERATION_BACKOFF_MAX_SECONDS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "node.cli.main", "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def _count(db_file: Path, origin: str) -> tuple[int, int]:
    """(envelopes of origin, distinct stream positions of origin) read from outside the process."""
    engine = create_engine(f"sqlite:///{db_file}")
    try:
        with engine.connect() as c:
            total = c.execute(
                text("SELECT count(*) FROM envelopes WHERE origin = :o"), {"o": origin}
            ).scalar()
            distinct = c.execute(
                text("SELECT count(*) FROM (SELECT DISTINCT audience, seq FROM envelopes WHERE origin = :o)"),
                {"o": origin},
            ).scalar()
    finally:
        engine.dispose()
    return int(total or 0), int(distinct or 0)


def _vector(db_file: Path) -> dict[tuple[str, str], int]:
    engine = create_engine(f"sqlite:///{db_file}")
    try:
        with engine.connect() as c:
            return {
                (o, a): int(q)
                for o, a, q in c.execute(text("SELECT origin, audience, head_seq FROM streams"))
            }
    finally:
        engine.dispose()


def _wait(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[LocalFederation]:
    f = LocalFederation(tmp_path, system_clock)
    f.add("KE", "national", country="KE", region="ESA")
    f.add("KE-MBA", "port", country="KE", region="ESA", upstreams=["KE"])
    f.publish()
    f.start()
    f.sync("KE-MBA", "KE")
    rng = random.Random(3)
    f.nodes["KE-MBA"].app.records.import_seizures(
        samples.random_seizure(rng, system_clock().date()) for _ in range(N)
    )
    yield f
    f.close()


def test_the_receiver_killed_mid_batch_loses_nothing_and_stores_nothing_twice(fed: LocalFederation) -> None:
    ke, port = fed.nodes["KE"], fed.nodes["KE-MBA"]
    ke.close()  # KE runs as a real process from here on
    ke_db = ke.directory / "gcn.sqlite"
    proc = _serve(ke.directory / "gcn.toml")
    try:
        stub = sync_stub(port.channel(ke))
        result = RoundResult()
        errors: list[grpc.RpcError] = []

        def pusher() -> None:
            try:
                push(stub, "KE", port.app.sync_source, result, timeout=10, max_envelopes=10)
            except grpc.RpcError as e:
                errors.append(e)

        _wait(lambda: _try_vector(stub))
        t = threading.Thread(target=pusher)
        t.start()
        _wait(lambda: _count(ke_db, "KE-MBA")[0] > 100)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        t.join(timeout=30)
        partial, _ = _count(ke_db, "KE-MBA")
        assert 0 < partial < N + 1 and errors  # killed mid-way
        proc = _serve(ke.directory / "gcn.toml")
        port.drop_channel("KE")
        stub = sync_stub(port.channel(ke))
        _wait(lambda: _try_vector(stub))
        push(stub, "KE", port.app.sync_source, RoundResult(), timeout=30, max_envelopes=500)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    total, distinct = _count(ke_db, "KE-MBA")
    assert total == distinct == N
    shared = ("KE-MBA", "national:KE")  # node:KE-MBA (TLP:RED) never leaves the port
    mine = {k: v for k, v in port.app.receiver.local_vector().items() if k == shared}
    theirs = {k: v for k, v in _vector(ke_db).items() if k == shared}
    assert mine == theirs


def test_the_sender_killed_mid_batch_loses_nothing_and_stores_nothing_twice(fed: LocalFederation) -> None:
    ke, port = fed.nodes["KE"], fed.nodes["KE-MBA"]
    port_db = port.directory / "gcn.sqlite"
    port.close()  # the port runs as a real process; its scheduler pushes at start
    proc = _serve(port.directory / "gcn.toml")
    try:
        _wait(lambda: _ke_count(fed) > 0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        partial = _ke_count(fed)
        assert partial < N
        proc = _serve(port.directory / "gcn.toml")
        _wait(lambda: _ke_count(fed) == N, timeout=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    with ke.app.db.begin() as s:
        rows = s.execute(
            text(
                "SELECT count(*), count(DISTINCT seq) FROM envelopes WHERE origin = 'KE-MBA' "
                "AND audience = 'national:KE'"
            )
        ).one()
    assert rows[0] == rows[1] == N
    shared = ("KE-MBA", "national:KE")
    theirs = {k: v for k, v in ke.app.receiver.local_vector().items() if k == shared}
    mine = {k: v for k, v in _vector(port_db).items() if k == shared}
    assert mine == theirs


def _ke_count(fed: LocalFederation) -> int:
    with fed.nodes["KE"].app.db.begin() as s:
        return int(s.execute(text("SELECT count(*) FROM records WHERE origin = 'KE-MBA'")).scalar() or 0)


def _try_vector(stub: object) -> bool:
    from gcn.v1 import sync_pb2

    try:
        stub.GetVector(sync_pb2.GetVectorRequest(), timeout=2)  # type: ignore[attr-defined]
        return True
    except grpc.RpcError:
        return False
