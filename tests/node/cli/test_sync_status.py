"""`gcn sync status`: per link ok / down / stalled / never, the held directory's
freshness, and the node's own alarms — what an operator reads while a link or
the trust is in trouble. Real federation on loopback (mutual TLS, SQLite)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from federation.refusal import FROM_PEER, Refused
from federation.scheduler import PeerSync
from node.bootstrap import CONFIG_FILE
from node.cli.main import main
from node.cli.sync_cmds import node_alarm_rows, status_rows, trust_row
from node.clock import system_clock
from node.replication import Replication
from node.storage.alarms import recent_alarms
from node.storage.peer_state import STALLED_INTERVALS
from node.storage.refusals import ALARMS_PER_ORIGIN_HOUR
from node.testing.clock import ManualClock
from node.testing.local_federation import LocalFederation

pytestmark = pytest.mark.slow


def _federation(base: Path, clock: ManualClock | None = None) -> LocalFederation:
    f = LocalFederation(base, clock or system_clock)
    f.add("WCO-GLOBAL", "global")
    f.add("KE", "national", country="KE", region="ESA", upstreams=["WCO-GLOBAL"])
    f.publish()
    f.start()
    return f


@pytest.fixture
def fed(tmp_path: Path, clock: ManualClock) -> Iterator[LocalFederation]:
    f = _federation(tmp_path, clock)
    yield f
    f.close()


def _to_hub(replication: Replication) -> PeerSync:
    return replication.peer_sync(next(p for p in replication.peers() if p.node_id == "WCO-GLOBAL"))


def _state(fed: LocalFederation) -> str:
    [row] = status_rows(fed.nodes["KE"].app)
    return str(row["state"])


def test_a_link_is_never_then_ok_then_down_then_stalled(fed: LocalFederation, clock: ManualClock) -> None:
    ke = fed.nodes["KE"]
    replication = Replication(ke.app, ke.tls)
    to_hub = _to_hub(replication)
    try:
        assert _state(fed) == "never"
        to_hub.run(clock())
        assert _state(fed) == "ok"
        fed.nodes["WCO-GLOBAL"].stop()
        to_hub.run(clock())
        [row] = status_rows(ke.app)
        assert (row["state"], row["failures"]) == ("down", 1)
        assert row["last_error"].startswith("UNAVAILABLE")
        fed.nodes["WCO-GLOBAL"].start()
        to_hub.run(clock())
        assert _state(fed) == "ok"
        # No failure, but no success for several intervals: its rounds are not running.
        clock.advance((STALLED_INTERVALS + 1) * ke.app.config.federation.sync_interval_seconds)
        assert _state(fed) == "stalled"
    finally:
        replication.stop()


def test_stale_trust_and_the_alarm_it_raised_are_shown(fed: LocalFederation, clock: ManualClock) -> None:
    ke = fed.nodes["KE"].app
    assert trust_row(ke)["state"] == "fresh"
    clock.advance(timedelta(days=31).total_seconds())  # the directory has expired; nothing newer came
    replication = Replication(ke, fed.nodes["KE"].tls)
    try:
        replication.periodic()  # what the running node does every few seconds
    finally:
        replication.stop()
    trust = trust_row(ke)
    assert trust["state"] == "stale" and "no fresh timestamp" in trust["stale"]
    [alarm] = node_alarm_rows(ke)
    assert alarm["kind"] == "directory_stale"


def test_the_command_prints_trust_links_and_alarms_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = _federation(tmp_path)  # the command reads the real clock
    try:
        config = tmp_path / "KE" / CONFIG_FILE
        assert main(["sync", "status", "--json", "--config", str(config)]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["trust"]["state"] == "fresh" and shown["trust"]["directory_version"] == 1
        assert [(p["peer"], p["state"]) for p in shown["peers"]] == [("WCO-GLOBAL", "never")]
        assert shown["streams_waiting"] == [] and shown["node_alarms"] == []
        assert main(["sync", "status", "--config", str(config)]) == 0
        table = capsys.readouterr().out
        assert "directory version 1, fresh until" in table and "sync status of KE" in table
    finally:
        fed.close()


def test_a_flood_of_refusals_from_one_origin_raises_a_bounded_number_of_alarms(
    fed: LocalFederation, clock: ManualClock
) -> None:
    """Red team F9: one Push with 3,000 bad envelopes of 3,000 streams left
    3,000 alarms. Every refusal is still kept (its stream waits); the alarms of
    one origin stop at ALARMS_PER_ORIGIN_HOUR an hour, the last one saying so."""
    ke = fed.nodes["KE"].app
    refused = [
        Refused(i, "TZ", f"node:TZ{i:04d}", 1, bytes(32), "not_member", "TZ may not write there")
        for i in range(120)
    ]
    ke.refusals.note("WCO-GLOBAL", FROM_PEER, refused)
    assert len(ke.refusals.all_rows()) == 120
    alarms = recent_alarms(ke.db, 500, kind="refused_from_peer")
    assert len(alarms) == ALARMS_PER_ORIGIN_HOUR
    assert "further ones are not alarmed" in alarms[0].detail
    # The origin a refused envelope names may be a lie: another peer's refusals
    # naming the same origin have a budget of their own (red team retest).
    ke.refusals.note("KE-MBA", FROM_PEER, [Refused(0, "TZ", "node:TZ9998", 1, bytes(32), "x", "y")])
    assert len(recent_alarms(ke.db, 500, kind="refused_from_peer")) == ALARMS_PER_ORIGIN_HOUR + 1
    clock.advance(3601)  # the next hour alarms again
    ke.refusals.note("WCO-GLOBAL", FROM_PEER, [Refused(0, "TZ", "node:TZ9999", 1, bytes(32), "x", "y")])
    assert len(recent_alarms(ke.db, 500, kind="refused_from_peer")) == ALARMS_PER_ORIGIN_HOUR + 2
