"""Story 4: one byte of one stored envelope rots at the ESA hub while the
global hub is away. When both are back, every other stream flows to the global
hub at once, the hub quarantines the damaged envelope with an alarm an
operator sees in `gcn alarms`, and the stream heals from an intact copy at KE."""

from __future__ import annotations

import sqlite3
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
    Node,
    seizures_jsonl,
    wait_for,
)

RECORDS = 50
DAMAGED = ("KE", "global", 19)


def flip_one_byte(node: Node, origin: str, audience: str, seq: int) -> None:
    """What a rotting disk does: one bit pattern of the stored ciphertext changes."""
    assert not node.running
    con = sqlite3.connect(node.database)
    try:
        (rowid, ciphertext) = con.execute(
            "SELECT id, ciphertext FROM envelopes WHERE origin = ? AND audience = ? AND seq = ?",
            (origin, audience, seq),
        ).fetchone()
        damaged = bytearray(ciphertext)
        damaged[len(damaged) // 2] ^= 0xFF
        con.execute("UPDATE envelopes SET ciphertext = ? WHERE id = ?", (bytes(damaged), rowid))
        con.commit()
    finally:
        con.close()


def test_a_flipped_byte_at_a_hub_costs_one_stream_which_heals_from_another_holder(
    fed: Federation, tmp_path: Path, figures_dir: Path
) -> None:
    fed.start_all()
    wait_converged(fed, timeout=120)
    hub, world = fed["RINEX-ESA"], fed["WCO-GLOBAL"]
    world.stop()

    # KE and TZ record while the global hub is away: the ESA hub holds what it lacks.
    fed["KE"].gcn("seizure", "import", str(seizures_jsonl(tmp_path / "ke.jsonl", RECORDS, seed=4)))
    fed["TZ"].gcn("seizure", "import", str(seizures_jsonl(tmp_path / "tz.jsonl", RECORDS, seed=5)))
    wait_for(
        "the ESA hub to hold KE's and TZ's records",
        lambda: all(holdings(hub).heads.get((o, "global"), 0) == RECORDS for o in ("KE", "TZ")),
        timeout=120,
    )
    hub.stop()
    flip_one_byte(hub, *DAMAGED)

    mark = hub.log_mark()
    hub.start()
    world.start()
    back_at = time.monotonic()
    # Every other stream flows at once: TZ's records all reach the global hub.
    tz_seconds = wait_for(
        "TZ's records at the global hub",
        lambda: holdings(world).heads.get(("TZ", "global"), 0) == RECORDS,
        timeout=120,
    )
    # The damaged envelope is found, quarantined with an alarm, and the stream heals from KE.
    wait_converged(fed, timeout=180)
    healed_seconds = time.monotonic() - back_at

    alarms = [a for a in hub.alarms() if a["kind"] == "corrupt_envelope"]
    assert [(a["origin"], a["audience"], a["seq"]) for a in alarms] == [DAMAGED], alarms
    quarantined = hub.log_events("damaged envelope quarantined: fetching an intact copy", mark)
    assert quarantined, "no log line about the quarantine"
    assert fed.stop_all() == dict.fromkeys(fed.nodes, 0)
    assert holdings(hub).quarantined == [DAMAGED]
    counts = assert_exact(fed)  # the hub holds the intact copy, once; so does the global hub
    assert len(records_at(holdings(world), "KE", "global")) == RECORDS
    assert len(records_at(holdings(world), "TZ", "global")) == RECORDS
    write_figures(
        figures_dir,
        "corrupt_envelope",
        {
            "damaged": DAMAGED,
            "other_stream_complete_at_global_seconds": round(tz_seconds, 1),
            "healed_and_converged_seconds": round(healed_seconds, 1),
            "alarm": alarms[0],
            "log": quarantined[0],
            "held": counts,
        },
    )
