"""Red team: two `gcn serve` replicas of the ESA hub over one PostgreSQL schema.

Phases (one federation, ~3-4 minutes on a shared 2-core machine):
  P0 both replicas started at once on a fresh database: each lease on one replica,
     one key message per held audience.
  P1 pg_terminate_backend of the lease session of the replica running sync:WCO-GLOBAL
     while the port streams records: takeover time; does the old holder keep going?
  P2 SIGSTOP of the replica running sync:WCO-GLOBAL (its PG sessions stay open):
     does anyone take the job over? do the port's records reach the global hub?
  P3 SIGCONT, then quick SIGKILL/restart of the replicas in turn; exact accounting.
  (P4, a directory change while the duties holder is frozen: attack_rekey_missed.py)

Run: cd /work/wt-redteam3 && PYTHONPATH=/work/wt-redteam3:/work/wt-redteam3/protos \
     .venv/bin/python -m tests.redteam_ops.attack_replicas
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.fault.accounting import assert_exact, holdings, records_at, wait_converged
from tests.fault.harness import seizures_jsonl, wait_for
from tests.redteam_ops.common import (
    drop_schema,
    dump,
    lease_backends,
    lease_owner,
    leases_in_log,
    new_schema,
    replicated_federation,
    sql,
)

TAKEN_OVER = "sync job taken over by this replica"


def at_global(fed: Any) -> int:
    return len(records_at(holdings(fed["WCO-GLOBAL"]), "KE-MBA", "global"))


def main() -> None:
    out: dict[str, Any] = {}
    base = Path(tempfile.mkdtemp(prefix="rt3-rep-", dir="/tmp"))
    schema = new_schema()
    fed, twin = replicated_federation(base, {"RINEX-ESA": schema})
    hub, port = fed["RINEX-ESA"], fed["KE-MBA"]
    replicas = (hub, twin)
    name = {id(hub): "rt3-r1", id(twin): "rt3-r2"}
    try:
        # P0: everything, both replicas at once.
        for n in fed.nodes.values():
            n.start(wait=False)
        twin.start(wait=False)
        for n in [*fed.nodes.values(), twin]:
            n.wait_serving(0, 120)
        out["p0_converge_s"] = round(wait_converged(fed, timeout=120), 2)
        out["p0_leases"] = {name[id(r)]: sorted(leases_in_log(r)) for r in replicas}
        out["p0_own_streams"] = [
            tuple(x)
            for x in sql(f"SELECT audience, head_seq FROM \"{schema}\".streams WHERE origin='RINEX-ESA'")
        ]
        out["p0_lease_owners_pg_locks"] = {
            n: lease_owner(n) for n in ("duties", "sync:WCO-GLOBAL", "sync:KE", "sync:TZ")
        }
        out["p0_epochs_started"] = {
            name[id(r)]: [(e.get("audience"), e.get("epoch")) for e in r.log_events("audience epoch started")]
            for r in replicas
        }

        # P1: kill the lease session of the sync:WCO-GLOBAL holder mid-stream.
        stream = seizures_jsonl(base / "s1.jsonl", 600, seed=31)
        errors: list[BaseException] = []

        def officer(path: Path) -> None:
            try:
                port.gcn("seizure", "import", str(path), "--batch", "50")
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=officer, args=(stream,))
        t.start()
        wait_for("some at global", lambda: at_global(fed) >= 30, 120)
        victim = [r for r in replicas if "sync:WCO-GLOBAL" in leases_in_log(r)][-1]
        other = twin if victim is hub else hub
        marks = {id(r): r.log_mark() for r in replicas}
        backends = lease_backends(name[id(victim)])
        out["p1_victim"] = name[id(victim)]
        out["p1_victim_lease_backends"] = backends
        for pid, _n in backends:
            sql("SELECT pg_terminate_backend(:p)", p=pid)
        try:
            out["p1_takeover_s"] = round(
                wait_for(
                    "takeover",
                    lambda: bool(other.log_events(TAKEN_OVER, marks[id(other)], peer="WCO-GLOBAL")),
                    30,
                ),
                2,
            )
        except AssertionError as e:
            out["p1_takeover_s"] = f"none: {e}"
        t.join()
        time.sleep(3)
        # Did the victim keep running rounds with WCO-GLOBAL after losing its lease?
        out["p1_victim_lost_log"] = len(
            victim.log_events("leases lost with their database connection", marks[id(victim)])
        )
        out["p1_victim_rounds_with_global_after"] = len(
            victim.log_events("sync round", marks[id(victim)], peer="WCO-GLOBAL")
        )
        out["p1_other_rounds_with_global_after"] = len(
            other.log_events("sync round", marks[id(other)], peer="WCO-GLOBAL")
        )
        out["p1_victim_retook"] = [x for x in leases_in_log(victim, marks[id(victim)])]
        out["p1_import_errors"] = [str(e)[:300] for e in errors]
        out["p1_converge_s"] = round(wait_converged(fed, timeout=120), 2)

        # P2: freeze the replica running sync:WCO-GLOBAL now (found in pg_locks).
        by_name = {"rt3-r1": hub, "rt3-r2": twin}
        owner = lease_owner("sync:WCO-GLOBAL")
        out["p2_owner_pg_locks"] = owner
        frozen = by_name[owner[0]]
        survivor = twin if frozen is hub else hub
        before = at_global(fed)
        assert frozen.proc is not None
        os.killpg(frozen.proc.pid, signal.SIGSTOP)
        t_stop = time.monotonic()
        marks = {id(r): r.log_mark() for r in replicas}
        s2 = seizures_jsonl(base / "s2.jsonl", 100, seed=32)
        t = threading.Thread(target=officer, args=(s2,))
        t.start()
        time.sleep(25)
        out["p2_frozen"] = name[id(frozen)]
        out["p2_global_new_records_after_25s"] = at_global(fed) - before
        out["p2_hub_db_new_records_after_25s"] = (
            len(records_at(holdings(hub), "KE-MBA", "region:ESA")) - before
        )
        out["p2_survivor_takeovers"] = [
            e.get("peer") for e in survivor.log_events(TAKEN_OVER, marks[id(survivor)])
        ]
        out["p2_frozen_sessions"] = [
            tuple(x)
            for x in sql(
                "SELECT a.state, count(*) FROM pg_stat_activity a "
                "WHERE a.application_name=:n GROUP BY a.state",
                n=name[id(frozen)],
            )
        ]
        out["p2_frozen_lease_backends"] = lease_backends(name[id(frozen)])
        out["p2_ke_mba_peer_ke"] = {k: port.peer_status("KE").get(k) for k in ("state", "failures")}
        out["p2_ke_peer_hub"] = {
            k: fed["KE"].peer_status("RINEX-ESA").get(k) for k in ("state", "failures", "last_error")
        }
        os.killpg(frozen.proc.pid, signal.SIGCONT)
        out["p2_frozen_for_s"] = round(time.monotonic() - t_stop, 1)
        t.join()
        out["p2_after_cont_converge_s"] = round(wait_converged(fed, timeout=120), 2)

        # P3: quick SIGKILL/restart in turn.
        for r in (hub, twin, hub, twin):
            r.kill()
            r.start(wait=False)
            time.sleep(1.0)
        for r in replicas:
            r.wait_serving(max(0, r.log_path.stat().st_size - 200_000), 120)
        out["p3_converge_s"] = round(wait_converged(fed, timeout=180), 2)
        out["p3_exact"] = assert_exact(fed).get("WCO-GLOBAL", {})
        out["p3_global_records"] = at_global(fed)
        out["import_errors"] = [str(e)[:300] for e in errors]

    finally:
        twin.kill()
        fed.close()
        dump(base / "figures.json", out)
        drop_schema(schema)
        print("base:", base)


if __name__ == "__main__":
    main()
