"""Story 2: the link between the port of Mombasa and KE is cut while the port's
officers go on recording, long enough for the port's backoff to grow; `gcn sync
status` says the link is down the whole time. When the link is restored, the
port's backlog is complete at the global hub within seconds, whatever the
backoff had grown to."""

from __future__ import annotations

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
    wait_for,
)

CUT_SECONDS = 30.0
BACKLOG = 300
# The figure is 5 s from restore to the whole backlog at the global hub;
# two shared cores get slack on top (the figure is reported either way).
RESTORED_DEADLINE = 10.0


def test_cut_link_shows_down_and_the_backlog_reaches_the_global_hub_soon_after_restore(
    fed: Federation, tmp_path: Path, figures_dir: Path
) -> None:
    for node in fed.nodes.values():
        node.env["GCN_FEDERATION_BACKOFF_INITIAL_SECONDS"] = "0.5"
    fed.start_all()
    wait_converged(fed, timeout=120)  # every audience key reaches every member first
    port, national, hub = fed["KE-MBA"], fed["KE"], fed["WCO-GLOBAL"]
    port.gcn("seizure", "import", str(seizures_jsonl(tmp_path / "before.jsonl", 20, seed=2)))
    wait_converged(fed, timeout=120)

    # The link goes: neither side reaches the other (both endpoints reset every connection).
    mark = port.log_mark()
    fed.proxies["KE-MBA"].cut()
    fed.proxies["KE"].cut()
    cut_at = time.monotonic()
    port.gcn("seizure", "import", str(seizures_jsonl(tmp_path / "backlog.jsonl", BACKLOG, seed=3)))

    # While it is cut, the port says so: the link to KE is down, with an error, backing off.
    wait_for("the port to see KE down", lambda: port.peer_status("KE")["state"] == "down", timeout=60)
    wait_for(
        "the link to stay cut for a while", lambda: time.monotonic() - cut_at > CUT_SECONDS, CUT_SECONDS + 5
    )
    during = port.peer_status("KE")
    assert during["state"] == "down" and during["failures"] >= 3 and during["last_error"], during
    assert during["peer_behind"] >= BACKLOG, during
    backoff_grown = during["backoff_seconds"]
    assert backoff_grown >= 4, f"the backoff did not grow: {during}"
    at_hub = len(records_at(holdings(hub), "KE-MBA", "global"))
    assert at_hub == 20, "nothing of the backlog can have crossed a cut link"
    # One warning on the transition, not one per retry.
    went_down = port.log_events("peer unreachable", mark, peer="KE")
    assert len(went_down) == 1, went_down

    # Restored: from that moment, the port's whole backlog is at the global hub within seconds.
    fed.proxies["KE"].restore()
    fed.proxies["KE-MBA"].restore()
    restored_at = time.monotonic()
    want = 20 + BACKLOG
    wait_for(
        "the port's backlog at the global hub",
        lambda: holdings(hub).heads.get(("KE-MBA", "global"), 0) >= want,
        timeout=120,
        poll=0.1,
    )
    restored_seconds = time.monotonic() - restored_at
    wait_for("the port to see KE ok", lambda: port.peer_status("KE")["state"] == "ok", timeout=60)
    recovered = port.log_events("peer reachable again", mark, peer="KE")
    assert len(recovered) == 1, recovered

    wait_converged(fed, timeout=120)
    assert fed.stop_all() == dict.fromkeys(fed.nodes, 0)
    counts = assert_exact(fed)
    assert len(records_at(holdings(hub), "KE-MBA", "global")) == want
    assert len(records_at(holdings(national), "KE-MBA", "national:KE")) == want
    write_figures(
        figures_dir,
        "link_cut",
        {
            "cut_seconds": round(restored_at - cut_at, 1),
            "backlog_records": BACKLOG,
            "port_backoff_seconds_when_restored": backoff_grown,
            "port_failures_when_restored": during["failures"],
            "restore_to_backlog_at_global_seconds": round(restored_seconds, 2),
            "down_log": went_down[0],
            "recovery_log": recovered[0],
            "held": counts,
        },
    )
    assert restored_seconds <= RESTORED_DEADLINE, f"{restored_seconds:.1f}s from restore to the global hub"
