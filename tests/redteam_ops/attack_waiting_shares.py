"""Red team: shares that wait for an audience key (node/domain/waiting_shares.py).

The port KE-MBA runs alone (no key of national:KE, region:ESA, global yet) and
records N seizures; 3 are retracted and 2 corrected while they wait. Then the
rest of the federation starts; the moment the port's waiting_shares table starts
to shrink (sealing under way) the port is SIGKILLed, then restarted.
Checks: `gcn sync status --json` waiting_for_key matches the table; after
convergence every holder has each record once per view, retracted and corrected
originals never, the corrections once; exact stream accounting.

Run: cd /work/wt-redteam3 && PYTHONPATH=/work/wt-redteam3:/work/wt-redteam3/protos \
     .venv/bin/python -m tests.redteam_ops.attack_waiting_shares [N]
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.fault.accounting import assert_exact, wait_converged
from tests.fault.harness import federation_from, make_template, seizures_jsonl, wait_for
from tests.redteam_ops.common import dump


def q(db: Path, query: str) -> list[Any]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return list(con.execute(query))
    finally:
        con.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
    out: dict[str, Any] = {"records": n}
    base = Path(tempfile.mkdtemp(prefix="rt3-wait-", dir="/tmp"))
    make_template(base / "template")
    fed = federation_from(base / "template", base / "federation")
    port = fed["KE-MBA"]
    try:
        port.start()
        stream = seizures_jsonl(base / "s.jsonl", n, seed=11)
        t0 = time.monotonic()
        port.gcn("seizure", "import", str(stream), "--batch", "250")
        out["import_s"] = round(time.monotonic() - t0, 1)
        listed = json.loads(port.gcn("records", "list", "--json", "--limit", "10"))
        items = listed["records"] if isinstance(listed, dict) else listed
        ids = [r.get("record_id") or r.get("id") for r in items]
        retracted, corrected = ids[:3], ids[3:5]
        for rid in retracted:
            port.gcn("retract", rid, "--reason", "redteam: cleared")
        fix = base / "fix.json"
        fix.write_text(stream.read_text().splitlines()[0])
        for rid in corrected:
            port.gcn("correct", rid, "--reason", "redteam: wrong weight", "--file", str(fix))
        status = port.sync_status()
        out["status_waiting_for_key"] = status.get("waiting_for_key")
        out["db_waiting"] = q(
            port.database, "SELECT audience, count(*) FROM waiting_shares GROUP BY audience"
        )
        initial = sum(c for _, c in out["db_waiting"])

        # The keys come: start the rest; kill the port once sealing has begun.
        for node_id in ("WCO-GLOBAL", "RINEX-ESA", "KE", "TZ"):
            fed[node_id].start(wait=False)
        t1 = time.monotonic()
        left = initial
        while time.monotonic() - t1 < 180:
            left = q(port.database, "SELECT count(*) FROM waiting_shares")[0][0]
            if left < initial:
                break
            time.sleep(0.02)
        port.kill()
        out["killed_after_s"] = round(time.monotonic() - t1, 1)
        out["waiting_at_kill"] = q(
            port.database, "SELECT audience, count(*) FROM waiting_shares GROUP BY audience"
        )
        out["status_after_kill"] = port.sync_status().get("waiting_for_key")
        port.start()
        for node_id in ("WCO-GLOBAL", "RINEX-ESA", "KE", "TZ"):
            fed[node_id].wait_serving(0, 120)
        t2 = time.monotonic()
        wait_for(
            "every waiting share sealed",
            lambda: q(port.database, "SELECT count(*) FROM waiting_shares")[0][0] == 0,
            300,
            poll=0.5,
        )
        out["all_sealed_after_restart_s"] = round(time.monotonic() - t2, 1)
        out["converge_s"] = round(wait_converged(fed, timeout=240), 1)
        time.sleep(2)
        out["waiting_after"] = q(port.database, "SELECT count(*) FROM waiting_shares")[0][0]
        out["status_after"] = port.sync_status().get("waiting_for_key")
        out["exact"] = assert_exact(fed)
        out["alarms_port"] = Counter(a["kind"] for a in port.alarms())
        fed.stop_all()
        # Per holder: each record once per (audience, view); retracted/corrected originals never shared.
        bad = set(retracted + corrected)
        per: dict[str, Any] = {}
        for node_id, node in fed.nodes.items():
            rows = q(
                node.database, "SELECT audience, view, record_id, status FROM records WHERE origin='KE-MBA'"
            )
            c = Counter((a, v, r) for a, v, r, _ in rows)
            per[node_id] = {
                "rows": len(rows),
                "by_audience": dict(Counter(a for a, *_ in rows)),
                "duplicates": sum(1 for k, m in c.items() if m > 1),
                "bad_ids_present": sorted(
                    {(a, r[:8], s) for a, v, r, s in rows if r in bad and a != "node:KE-MBA"}
                ),
            }
        out["holders"] = per
    finally:
        fed.close()
        dump(base / "figures.json", out)
        print("base:", base)


if __name__ == "__main__":
    main()
