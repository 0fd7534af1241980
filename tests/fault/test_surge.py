"""Story 3: a surge at two national nodes at once — KE and TZ each record
30 seizures a second for 20 s (in one import call every 5 s: a CLI call costs
seconds of CPU on this machine), several times what they usually do. Every
record is delivered to every holder exactly once; the commit-to-global-hub
latency (p50, p95, p99) and every server's peak RSS are reported (the issue's aim,
p99 ≤ 2 s on this 2-core machine, is measured, not asserted: the machine is
shared)."""

from __future__ import annotations

import os
import sqlite3
import statistics
import threading
import time
from datetime import datetime
from pathlib import Path

from tests.fault.accounting import (
    assert_exact,
    holdings,
    records_at,
    wait_converged,
    write_figures,
)
from tests.fault.harness import (
    Federation,
    Node,
    seizures_jsonl,
)

# CI's size; the issue's own surge (120 a second per node for 60 s) runs with
# GCN_SURGE_PER_SECOND=120 GCN_SURGE_SECONDS=60 pytest tests/fault/test_surge.py -s
SURGE_SECONDS = int(os.environ.get("GCN_SURGE_SECONDS", "20"))
PER_SECOND = int(os.environ.get("GCN_SURGE_PER_SECOND", "30"))  # per node; a record is 3 envelopes
CALL_EVERY = 5  # seconds between the import calls of one node
NATIONALS = ("KE", "TZ")


def _arrivals(node: Node, origin: str) -> dict[bytes, datetime]:
    """Envelope hash -> when `node` stored it (at the origin: its commit)."""
    con = sqlite3.connect(f"file:{node.database}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT hash, received_at FROM envelopes WHERE audience = 'global' AND origin = ?", (origin,)
        ).fetchall()
    finally:
        con.close()
    return {bytes(h): datetime.fromisoformat(r) for h, r in rows}


def latencies(world: Node, origins: list[Node]) -> list[float]:
    """Seconds from each envelope's commit at its origin to its arrival at the
    global hub (both `received_at`, both clocks this machine's; `created_at` is
    not used: each envelope's carries a random sub-second offset)."""
    out = []
    for origin in origins:
        committed = _arrivals(origin, origin.node_id)
        for h, arrived in _arrivals(world, origin.node_id).items():
            out.append((arrived - committed[h]).total_seconds())
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def test_surge_at_two_national_nodes_delivers_every_record(
    fed: Federation, tmp_path: Path, figures_dir: Path
) -> None:
    fed.start_all()
    wait_converged(fed, timeout=120)
    chunks = {
        n: [
            seizures_jsonl(tmp_path / f"{n}-{i}.jsonl", PER_SECOND * CALL_EVERY, seed=1000 * k + i)
            for i in range(SURGE_SECONDS // CALL_EVERY)
        ]
        for k, n in enumerate(NATIONALS)
    }
    sent = dict.fromkeys(NATIONALS, 0)

    def officers(node_id: str) -> None:
        """One import call every CALL_EVERY seconds (one that takes longer delays the next)."""
        start = time.monotonic()
        for i, chunk in enumerate(chunks[node_id]):
            time.sleep(max(0.0, start + i * CALL_EVERY - time.monotonic()))
            fed[node_id].gcn("seizure", "import", str(chunk), "--batch", str(PER_SECOND * CALL_EVERY))
            sent[node_id] += PER_SECOND * CALL_EVERY

    started = time.monotonic()
    threads = [threading.Thread(target=officers, args=(n,)) for n in NATIONALS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    surge_seconds = time.monotonic() - started
    delivered_seconds = wait_converged(fed, timeout=240)
    rss = {n: round(node.peak_rss_mib(), 1) for n, node in fed.nodes.items()}
    assert fed.stop_all() == dict.fromkeys(fed.nodes, 0)

    counts = assert_exact(fed)
    world = fed["WCO-GLOBAL"]
    total = SURGE_SECONDS * PER_SECOND
    for n in NATIONALS:
        assert sent[n] == total
        assert len(records_at(holdings(world), n, "global")) == total
        assert len(records_at(holdings(fed["RINEX-ESA"]), n, "region:ESA")) == total
    lat = latencies(world, [fed[n] for n in NATIONALS])
    assert len(lat) == 2 * total
    figures = {
        "records_per_node": total,
        "target_rate_per_node_per_second": PER_SECOND,
        "achieved_rate_per_node_per_second": round(total / surge_seconds, 1),
        "surge_seconds": round(surge_seconds, 1),
        "delivered_seconds_after_surge": round(delivered_seconds, 1),
        "commit_to_global_p50_seconds": round(statistics.median(lat), 2),
        "commit_to_global_p95_seconds": round(percentile(lat, 95), 2),
        "commit_to_global_p99_seconds": round(percentile(lat, 99), 2),
        "commit_to_global_max_seconds": round(max(lat), 2),
        "peak_rss_mib": rss,
        "held": counts,
    }
    write_figures(figures_dir, "surge", figures)
