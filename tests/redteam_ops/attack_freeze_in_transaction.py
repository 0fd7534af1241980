"""Red team: a replica frozen (SIGSTOP) in the middle of a database transaction.

The second replica (the balancer's backup, so peers' pushes go to the first)
starts first and takes the sync leases; the port streams records. The second
replica is SIGSTOPped until it is caught with a session 'idle in transaction'
(holding the transaction's advisory locks and row locks); then, for 20 s, do the
port's records still reach the hub's database through the *first* replica?

Run: cd /work/wt-redteam3 && PYTHONPATH=/work/wt-redteam3:/work/wt-redteam3/protos \
     .venv/bin/python -m tests.redteam_ops.attack_freeze_in_transaction
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.fault.accounting import holdings, records_at, wait_converged
from tests.fault.harness import seizures_jsonl
from tests.redteam_ops.common import drop_schema, dump, lease_owner, new_schema, replicated_federation, sql


def main() -> None:
    out: dict[str, Any] = {}
    base = Path(tempfile.mkdtemp(prefix="rt3-ftx-", dir="/tmp"))
    schema = new_schema()
    fed, twin = replicated_federation(base, {"RINEX-ESA": schema})
    hub, port = fed["RINEX-ESA"], fed["KE-MBA"]
    try:
        twin.start()
        fed.start_all()
        wait_converged(fed, timeout=120)
        out["owners"] = {n: lease_owner(n) for n in ("duties", "sync:WCO-GLOBAL", "sync:KE", "sync:TZ")}
        stream = seizures_jsonl(base / "s.jsonl", 3000, seed=9)
        t = threading.Thread(target=lambda: port.gcn("seizure", "import", str(stream), "--batch", "50"))
        t.start()
        time.sleep(3)
        assert twin.proc is not None
        caught = None
        for attempt in range(60):
            os.killpg(twin.proc.pid, signal.SIGSTOP)
            rows = sql(
                "SELECT state, count(*) FROM pg_stat_activity WHERE application_name='rt3-r2' GROUP BY state"
            )
            states = {s: n for s, n in rows}
            if states.get("idle in transaction") or states.get("active"):
                caught = (attempt, states)
                break
            os.killpg(twin.proc.pid, signal.SIGCONT)
            time.sleep(0.15)
        out["caught"] = caught
        if caught:
            locks = sql(
                "SELECT l.locktype, l.mode, count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid=l.pid "
                "WHERE a.application_name='rt3-r2' AND l.granted GROUP BY 1,2"
            )
            out["frozen_locks"] = [tuple(r) for r in locks]
            hub_before = len(records_at(holdings(hub), "KE-MBA", "region:ESA"))
            time.sleep(20)
            out["hub_db_new_region_records_in_20s_frozen"] = (
                len(records_at(holdings(hub), "KE-MBA", "region:ESA")) - hub_before
            )
            out["waiting_on_locks_r1"] = [
                tuple(r)
                for r in sql(
                    "SELECT wait_event_type, wait_event, count(*) FROM pg_stat_activity "
                    "WHERE application_name='rt3-r1' AND state='active' GROUP BY 1,2"
                )
            ]
            out["ke_peer_hub"] = {
                k: fed["KE"].peer_status("RINEX-ESA").get(k) for k in ("state", "failures", "last_error")
            }
            os.killpg(twin.proc.pid, signal.SIGCONT)
        t.join()
        out["converge_after_cont_s"] = round(wait_converged(fed, timeout=240), 1)
        out["global_records"] = len(records_at(holdings(fed["WCO-GLOBAL"]), "KE-MBA", "global"))
    finally:
        if twin.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(twin.proc.pid, signal.SIGCONT)
        twin.kill()
        fed.close()
        dump(base / "figures.json", out)
        drop_schema(schema)
        print("base:", base)


if __name__ == "__main__":
    main()
