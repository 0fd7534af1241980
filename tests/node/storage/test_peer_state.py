"""A running node's peer states (`WriteBehindPeerStates`): written at once when
no other write is going on; while one is, the round goes on and the state is
written as soon as the writer's turn comes, and reads see it meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from federation.peer_machine import PeerState
from node.storage.db import Database
from node.storage.peer_state import DbPeerStateStore, WriteBehindPeerStates


def _wait(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def _db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'node.sqlite'}")
    db.migrate()
    return db


def test_a_state_saved_while_nothing_else_writes_is_written_at_once(tmp_path: Path) -> None:
    db = _db(tmp_path)
    store = WriteBehindPeerStates(db)
    store.save(PeerState("HUB", "hub:7443", failures=3))
    assert DbPeerStateStore(db).load("HUB", "hub:7443").failures == 3
    store.close()


def test_a_state_saved_during_a_long_write_does_not_wait_for_it(tmp_path: Path) -> None:
    db = _db(tmp_path)
    store = WriteBehindPeerStates(db)
    inside, release = threading.Event(), threading.Event()

    def long_write() -> None:  # a large apply's chunk
        with db.begin():
            inside.set()
            release.wait(5)

    writer = threading.Thread(target=long_write)
    writer.start()
    assert inside.wait(5)
    store.save(PeerState("HUB", "hub:7443", envelopes_sent=10))  # returns while the write holds the turn
    store.save(PeerState("HUB", "hub:7443", envelopes_sent=20))
    assert store.load("HUB", "other:7443").envelopes_sent == 20  # the newest, not written yet
    assert store.load("HUB", "other:7443").endpoint == "other:7443"
    assert [s.envelopes_sent for s in store.all()] == [20]
    assert DbPeerStateStore(db).all() == []
    release.set()
    writer.join(timeout=5)
    _wait(lambda: [s.envelopes_sent for s in DbPeerStateStore(db).all()] == [20])
    store.close()


def test_close_writes_what_is_left(tmp_path: Path) -> None:
    db = _db(tmp_path)
    store = WriteBehindPeerStates(db)
    inside, release = threading.Event(), threading.Event()

    def long_write() -> None:
        with db.begin():
            inside.set()
            release.wait(5)

    writer = threading.Thread(target=long_write)
    writer.start()
    assert inside.wait(5)
    store.save(PeerState("TZ", "tz:7443", failures=1))
    threading.Timer(0.2, release.set).start()
    store.close()
    writer.join(timeout=5)
    assert DbPeerStateStore(db).load("TZ", "tz:7443").failures == 1
