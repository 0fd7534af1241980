"""Red team: a membership change that reaches the hub while its duties-lease
holder is frozen, and that holder then dies. The standing-by replica takes the
new directory at its next check *without* the duties lease, so it makes no
epoch; when it takes the lease over (the frozen one SIGKILLed) nothing makes it
look again. Is region:ESA re-keyed after TZ is revoked?

Run: cd /work/wt-redteam3 && PYTHONPATH=/work/wt-redteam3:/work/wt-redteam3/protos \
     .venv/bin/python -m tests.redteam_ops.attack_rekey_missed
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.fault.accounting import wait_converged
from tests.fault.harness import GCN, _run, wait_for
from tests.redteam_ops.common import (
    drop_schema,
    dump,
    lease_owner,
    leases_in_log,
    new_schema,
    replicated_federation,
    sql,
)


def epochs(node: Any, since: int = 0) -> list[tuple[Any, Any]]:
    return [(e.get("audience"), e.get("epoch")) for e in node.log_events("audience epoch started", since)]


def main() -> None:
    out: dict[str, Any] = {}
    base = Path(tempfile.mkdtemp(prefix="rt3-rekey-", dir="/tmp"))
    schema = new_schema()
    fed, twin = replicated_federation(base, {"RINEX-ESA": schema})
    hub = fed["RINEX-ESA"]
    by = {"rt3-r1": hub, "rt3-r2": twin}
    head = f"SELECT head_seq FROM \"{schema}\".streams WHERE origin='RINEX-ESA' AND audience='region:ESA'"
    try:
        fed.start_all()
        twin.start()
        wait_converged(fed, timeout=120)
        time.sleep(3)
        owners = lease_owner("duties")
        out["duties_owner_pg_locks"] = owners
        assert len(owners) == 1, owners
        holder = by[owners[0]]
        other = twin if holder is hub else hub
        out["region_esa_head_before"] = sql(head)[0][0]
        marks = {id(r): r.log_mark() for r in (hub, twin)}
        assert holder.proc is not None
        os.killpg(holder.proc.pid, signal.SIGSTOP)
        root = base / "template" / "root"
        _run([GCN, "root", "revoke", "TZ", "--dir", str(root)])
        _run([GCN, "root", "publish", "--dir", str(root), "--out", str(root / "directory-2.pb")])
        _run([GCN, "directory", "import", str(root / "directory-2.pb"), "--config", str(hub.config)])
        time.sleep(6)  # the standing-by replica's checks (every 2 s) take the file
        holder.kill()  # the frozen machine is lost
        t = time.monotonic()
        out["duties_takeover_s"] = round(
            wait_for("duties taken", lambda: "duties" in leases_in_log(other, marks[id(other)]), 30), 2
        )
        time.sleep(12)
        out["epochs_on_survivor_after_takeover"] = epochs(other, marks[id(other)])
        out["region_esa_head_after_12s"] = sql(head)[0][0]
        out["survivor_directory_version_lines"] = [
            e.get("event") for e in other.log_lines(marks[id(other)]) if "directory" in str(e.get("event"))
        ][:5]
        out["waited_s"] = round(time.monotonic() - t, 1)
        # Control: a restart of the survivor does the duty (start_federation calls refresh_epochs).
        m = other.log_mark()
        other.kill()
        other.start()
        time.sleep(3)
        out["epochs_after_restart"] = epochs(other, m)
        out["region_esa_head_after_restart"] = sql(head)[0][0]
    finally:
        twin.kill()
        fed.close()
        dump(base / "figures.json", out)
        drop_schema(schema)
        print("base:", base)


if __name__ == "__main__":
    main()
