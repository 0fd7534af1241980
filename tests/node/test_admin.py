"""The operator facade (`node.admin`) on a node's own files: what it hands the
CLI are plain values and narrow stores, and it opens and closes what it uses."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from node import admin
from node.app import NodeApp
from node.storage.alarms import record_alarm
from node.storage.peer_state import DbPeerStateStore
from node.testing.clock import ManualClock


def test_alarms_are_plain_values_newest_first_filtered_by_kind_and_time(
    app: NodeApp, clock: ManualClock
) -> None:
    record_alarm(app.db, "directory_stale", clock(), "the directory expired")
    clock.advance(60)
    record_alarm(app.db, "equivocation", clock(), "two envelopes at seq 3", origin="TZ", audience="ke", seq=3)
    newest, oldest = admin.alarms(app)
    assert (newest.kind, newest.origin, newest.audience, newest.seq) == ("equivocation", "TZ", "ke", 3)
    assert (oldest.kind, oldest.detail, oldest.created_at) == (
        "directory_stale",
        "the directory expired",
        clock() - timedelta(seconds=60),
    )
    assert dataclasses.is_dataclass(newest)
    assert [a.kind for a in admin.alarms(app, kind="directory_stale")] == ["directory_stale"]
    assert [a.kind for a in admin.alarms(app, since=clock())] == ["equivocation"]
    assert len(admin.alarms(app, 1)) == 1


def test_peer_states_by_peer(app: NodeApp) -> None:
    assert admin.peer_states(app) == {}
    DbPeerStateStore(app.db).save(admin.PeerState("TZ", "tz.example:7443", failures=2))
    states = admin.peer_states(app)
    assert list(states) == ["TZ"] and states["TZ"].failures == 2


def test_open_node_closes_the_node_even_when_the_command_fails(app: NodeApp) -> None:
    with pytest.raises(RuntimeError), admin.open_node(app.config) as opened:
        assert opened.config.node.id == "KE"
        raise RuntimeError("the command failed")
    with admin.open_node(app.config) as again:  # the database is usable again after the close
        assert again.trust.version() == app.trust.version()


def test_open_users_migrates_and_reads_the_nodes_users(app: NodeApp, clock: ManualClock) -> None:
    with admin.open_users(app.config) as users:
        token = users.add("kamau", admin.Role.OFFICER, clock())
    with admin.open_users(app.config) as users:
        assert [(u.name, u.role) for u in users.list()] == [("kamau", admin.Role.OFFICER)]
        assert users.authenticate(token).name == "kamau"
