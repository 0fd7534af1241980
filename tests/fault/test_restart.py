"""Story 6: the whole federation is stopped by SIGTERM in the middle of
replicating, and started again: every node exits cleanly, and after the start
everything converges, exactly. (The global hub's link is cut while the records
are made, so there is surely a backlog in flight when SIGTERM comes.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.fault.accounting import (
    assert_exact,
    behind,
    holdings,
    records_at,
    wait_converged,
    write_figures,
)
from tests.fault.harness import (
    Federation,
    seizures_jsonl,
)

RECORDS = 500


def test_whole_federation_sigterm_and_restart_converges(
    fed: Federation, tmp_path: Path, figures_dir: Path
) -> None:
    fed.start_all()
    wait_converged(fed, timeout=120)
    files = {
        "KE-MBA": seizures_jsonl(tmp_path / "port.jsonl", RECORDS, seed=6),
        "TZ": seizures_jsonl(tmp_path / "tz.jsonl", RECORDS, seed=7),
    }
    fed.proxies["WCO-GLOBAL"].cut()
    officers = [
        threading.Thread(target=fed[n].gcn, args=("seizure", "import", str(f), "--batch", "100"))
        for n, f in files.items()
    ]
    for t in officers:
        t.start()
    for t in officers:
        t.join()

    # Every node gets SIGTERM at once, while envelopes are still on their way.
    lagging = behind(fed)
    stopped = fed.stop_all()
    assert stopped == dict.fromkeys(fed.nodes, 0), stopped
    for node in fed.nodes.values():
        assert node.log_events("node stopped"), f"{node.node_id} logged no clean stop"
    in_flight = sum(have < want for streams in behind(fed).values() for have, want in streams.values())
    assert "WCO-GLOBAL" in lagging and in_flight > 0
    fed.proxies["WCO-GLOBAL"].restore()

    started = time.monotonic()
    fed.start_all()
    serving_seconds = time.monotonic() - started
    wait_converged(fed, timeout=180)
    converged_seconds = time.monotonic() - started
    assert fed.stop_all() == dict.fromkeys(fed.nodes, 0)

    counts = assert_exact(fed)
    world = holdings(fed["WCO-GLOBAL"])
    assert len(records_at(world, "KE-MBA", "global")) == RECORDS
    assert len(records_at(world, "TZ", "global")) == RECORDS
    write_figures(
        figures_dir,
        "restart",
        {
            "records": 2 * RECORDS,
            "streams_behind_at_sigterm": in_flight,
            "lagging_holders_just_before_sigterm": sorted(lagging),
            "all_serving_seconds": round(serving_seconds, 1),
            "converged_seconds_after_start": round(converged_seconds, 1),
            "held": counts,
        },
    )
