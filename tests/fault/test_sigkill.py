"""Story 1: the port of Mombasa records 3,000 seizures while its national node
(KE, the relay of the port's streams) and the ESA hub (the relay towards the
global hub) are SIGKILLed again and again. After the last restart everything
converges, and every holder holds every envelope of every stream exactly once."""

from __future__ import annotations

import threading
import time
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
    seizures_jsonl,
)

RECORDS = 3000
KILLS_EACH = 3


def test_repeated_sigkill_of_hub_and_national_node_during_a_3000_record_stream(
    fed: Federation, tmp_path: Path, figures_dir: Path
) -> None:
    fed.start_all()
    wait_converged(fed, timeout=120)  # every audience key reaches every member first
    port, national, hub = fed["KE-MBA"], fed["KE"], fed["RINEX-ESA"]
    stream = seizures_jsonl(tmp_path / "seizures.jsonl", RECORDS, seed=1)

    # The port's officers import 3,000 seizures, 100 per call.
    imported: list[str] = []
    errors: list[BaseException] = []

    def officer() -> None:
        try:
            imported.append(port.gcn("seizure", "import", str(stream), "--batch", "100"))
        except BaseException as e:
            errors.append(e)

    started = time.monotonic()
    importer = threading.Thread(target=officer)
    importer.start()

    # Meanwhile the hub and the national node die by SIGKILL, in turn, every ~3 s.
    kills = {"RINEX-ESA": 0, "KE": 0}
    while importer.is_alive() or min(kills.values()) < KILLS_EACH:
        for victim in (hub, national):
            time.sleep(2.0)
            victim.kill()
            kills[victim.node_id] += 1
            time.sleep(0.5)
            victim.start()
    importer.join()
    import_seconds = time.monotonic() - started
    assert not errors, f"the port's import failed: {errors}"

    # After the last restart, everything converges: every stream at every holder at its origin's head.
    converge_seconds = wait_converged(fed, timeout=240)
    assert fed.stop_all() == dict.fromkeys(fed.nodes, 0)

    counts = assert_exact(fed)
    port_streams = {
        a: len(records_at(holdings(port), "KE-MBA", a)) for a in ("national:KE", "region:ESA", "global")
    }
    assert port_streams == dict.fromkeys(("national:KE", "region:ESA", "global"), RECORDS)
    # Each view reached the nodes that read it, once: full at KE, redacted at the hub, statistical globally.
    assert len(records_at(holdings(national), "KE-MBA", "national:KE")) == RECORDS
    assert len(records_at(holdings(hub), "KE-MBA", "region:ESA")) == RECORDS
    assert len(records_at(holdings(fed["WCO-GLOBAL"]), "KE-MBA", "global")) == RECORDS
    write_figures(
        figures_dir,
        "sigkill",
        {
            "records": RECORDS,
            "kills": kills,
            "import_seconds": round(import_seconds, 1),
            "converged_seconds_after_last_restart": round(converge_seconds, 1),
            "held": counts,
        },
    )
