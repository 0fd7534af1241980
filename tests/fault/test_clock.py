"""Story 5: clocks that jump a day. Each skewed node runs under libfaketime
with its offset in a file the test rewrites, so the wall clock of a running
`gcn serve` jumps (as an NTP step does) while its monotonic clock runs on.

- TZ's clock goes a day ahead, then is corrected, once while it runs and once
  across a restart (its persisted next attempt then saved a day ahead): its
  next round with its hub is never 24 h away, and its records flow.
- The port's clock goes a day behind: what KE sends it is a day in the port's
  future and is refused as `future`, with the reason visible at both ends in
  `gcn sync status` and `gcn alarms`; what the port records meanwhile still
  reaches the global hub. Once corrected, the refused stream is delivered.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fault.accounting import (
    assert_exact,
    holdings,
    records_at,
    wait_converged,
    write_figures,
)
from tests.fault.harness import (
    LIBFAKETIME,
    Federation,
    Node,
    faketime_env,
    seizures_jsonl,
    wait_for,
)

if LIBFAKETIME is None:
    pytestmark = pytest.mark.skipif(not os.environ.get("CI"), reason="libfaketime is not installed")

DAY = timedelta(days=1)


def set_clock(path: Path, offset: str, settle: bool = True) -> None:
    """Move the wall clock of the node reading `path` (libfaketime re-reads it
    every second: with `settle`, wait until it surely has)."""
    path.write_text(offset + "\n")
    if settle:
        time.sleep(2.5)


def parse(at: str) -> datetime:
    return datetime.strptime(at, "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=UTC)


def hub_round(node: Node) -> tuple[datetime, datetime]:
    """(last success, next attempt) of `node`'s link to its hub, as `gcn sync status` shows them."""
    row = node.peer_status("RINEX-ESA")
    return parse(row["last_success"]), parse(row["next_attempt"])


def rounds_on_the_real_clock(node: Node, since: datetime) -> bool:
    """A round with the hub succeeded after `since` by the real clock, and the next is minutes away."""
    last, nxt = hub_round(node)
    now = datetime.now(UTC)
    return since - timedelta(seconds=2) <= last <= now + timedelta(minutes=1) and nxt < now + timedelta(
        minutes=5
    )


def test_a_day_ahead_and_a_day_behind(fed: Federation, tmp_path: Path, figures_dir: Path) -> None:
    clocks = {"TZ": tmp_path / "tz.faketime", "KE-MBA": tmp_path / "port.faketime"}
    for node_id, path in clocks.items():
        path.write_text("+0\n")
        fed[node_id].env |= faketime_env(file=path)
    fed.start_all()
    wait_converged(fed, timeout=120)
    tz, port, national, world = fed["TZ"], fed["KE-MBA"], fed["KE"], fed["WCO-GLOBAL"]
    figures: dict[str, object] = {}

    # TZ's clock jumps a day ahead while it runs: its rounds are now stamped a day ahead.
    set_clock(clocks["TZ"], "+1d")
    wait_for(
        "a round of TZ under the skewed clock", lambda: hub_round(tz)[0] > datetime.now(UTC) + DAY / 2, 60
    )
    # Corrected while it runs: the next round comes on the real clock, not 24 h later.
    corrected = datetime.now(UTC)
    set_clock(clocks["TZ"], "+0")
    figures["ahead_corrected_running_next_round_seconds"] = round(
        wait_for("TZ's rounds back on the real clock", lambda: rounds_on_the_real_clock(tz, corrected), 60), 1
    )
    tz.gcn("seizure", "import", str(seizures_jsonl(tmp_path / "tz-1.jsonl", 20, seed=8)))
    figures["ahead_corrected_running_records_at_global_seconds"] = round(
        wait_for(
            "TZ's records at the global hub", lambda: holdings(world).heads.get(("TZ", "global"), 0) == 20, 60
        ),
        1,
    )

    # A day ahead again, stopped so: the peer states it saved are a day ahead. Corrected, restarted.
    set_clock(clocks["TZ"], "+1d")
    ahead = datetime.now(UTC)
    wait_for("another skewed round", lambda: hub_round(tz)[1] > ahead + DAY / 2, 60)
    assert tz.stop() == 0
    saved_next = hub_round(tz)[1]
    assert saved_next > datetime.now(UTC) + DAY / 2, "the next attempt was saved under the skewed clock"
    clocks["TZ"].write_text("+0\n")
    restarted = datetime.now(UTC)
    tz.start()
    figures["ahead_saved_next_attempt"] = saved_next.isoformat()
    figures["ahead_corrected_restart_next_round_seconds"] = round(
        wait_for("TZ's first round after the restart", lambda: rounds_on_the_real_clock(tz, restarted), 60), 1
    )
    tz.gcn("seizure", "import", str(seizures_jsonl(tmp_path / "tz-2.jsonl", 20, seed=9)))
    wait_for(
        "TZ's new records at the global hub", lambda: holdings(world).heads.get(("TZ", "global"), 0) == 40, 60
    )

    # The port's clock goes a day behind. KE records: to the port that is a day in its future.
    mark_port, mark_ke = port.log_mark(), national.log_mark()
    set_clock(clocks["KE-MBA"], "-1d")
    national.gcn("seizure", "import", str(seizures_jsonl(tmp_path / "ke.jsonl", 10, seed=10)))
    port.gcn("seizure", "import", str(seizures_jsonl(tmp_path / "port.jsonl", 10, seed=11)))

    def refused_as_future() -> bool:
        waiting = port.sync_status()["streams_waiting"]
        return any(w["code"] == "future" and w["origin"] == "KE" for w in waiting)

    wait_for("the port to refuse KE's envelopes as future", refused_as_future, 60)
    waiting = [w for w in port.sync_status()["streams_waiting"] if w["code"] == "future"]
    # KE's three streams reach the port (it is in KE's nation, region and the world): each waits.
    assert {(w["origin"], w["audience"], w["direction"]) for w in waiting} == {
        ("KE", a, "refused from peer") for a in ("national:KE", "region:ESA", "global")
    }, waiting
    assert "beyond" in waiting[0]["reason"] or "future" in waiting[0]["reason"], waiting[0]
    wait_for(
        "KE to see the refusal",
        lambda: any(w["code"] == "future" for w in national.sync_status()["streams_waiting"]),
        60,
    )
    port_alarms = [a for a in port.alarms() if a["kind"] == "refused_from_peer"]
    ke_alarms = [a for a in national.alarms() if a["kind"] == "refused_by_peer"]
    assert port_alarms and ke_alarms, (port_alarms, ke_alarms)
    assert port.log_events("envelope refused: its stream waits", mark_port, code="future")
    assert national.log_events("envelope refused by peer: its stream waits", mark_ke, code="future")
    # What the port records a day behind still flows: the past is no one's future.
    wait_for(
        "the port's records at the global hub",
        lambda: holdings(world).heads.get(("KE-MBA", "global"), 0) == 10,
        60,
    )

    # The port's clock is corrected: the refused streams are delivered.
    set_clock(clocks["KE-MBA"], "+0", settle=False)
    figures["behind_corrected_delivered_seconds"] = round(wait_converged(fed, timeout=180), 1)
    assert fed.stop_all() == dict.fromkeys(fed.nodes, 0)
    counts = assert_exact(fed)
    assert len(records_at(holdings(port), "KE", "national:KE")) == 10
    assert len(records_at(holdings(world), "TZ", "global")) == 40
    figures |= {
        "refusal": waiting[0],
        "alarm_at_port": port_alarms[0],
        "alarm_at_ke": ke_alarms[0],
        "held": counts,
    }
    write_figures(figures_dir, "clock", figures)
