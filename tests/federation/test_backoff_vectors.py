"""Two pure helpers of replication: the backoff (`federation.backoff`) and
version vectors (`federation.vectors`)."""

from __future__ import annotations

import random

from federation.backoff import backoff_delay
from federation.vectors import behind, from_proto, lacking, to_proto
from gcn.v1 import sync_pb2


def test_no_failure_no_wait() -> None:
    assert backoff_delay(0, 1, 600) == 0.0
    assert backoff_delay(-3, 1, 600) == 0.0


def test_the_delay_doubles_within_half_to_whole_of_its_ceiling_and_stops_at_the_cap() -> None:
    rng = random.Random(7)
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (10, 512.0), (11, 600.0), (500, 600.0)]:
        for _ in range(50):
            d = backoff_delay(failures, 1, 600, rng)
            assert ceiling / 2 <= d <= ceiling, (failures, d)


def test_peers_that_failed_together_do_not_retry_in_lockstep() -> None:
    rng = random.Random(3)
    delays = {round(backoff_delay(5, 1, 600, rng), 6) for _ in range(20)}
    assert len(delays) > 15


def test_the_same_seed_gives_the_same_delays() -> None:
    a, b = random.Random(11), random.Random(11)
    assert [backoff_delay(n, 2, 60, a) for n in range(1, 9)] == [
        backoff_delay(n, 2, 60, b) for n in range(1, 9)
    ]


def test_lacking_says_where_each_stream_the_peer_is_behind_on_starts() -> None:
    mine = {("KE", "a"): 5, ("KE", "b"): 2, ("TZ", "a"): 9}
    theirs = {("KE", "a"): 5, ("KE", "b"): 1, ("UG", "a"): 4}
    assert lacking(mine, theirs) == {("KE", "b"): 1, ("TZ", "a"): 0}
    assert lacking(mine, mine) == {}
    assert lacking({}, theirs) == {}


def test_behind_counts_envelopes_by_contiguous_heads() -> None:
    mine = {("KE", "a"): 5, ("KE", "b"): 2, ("TZ", "a"): 9}
    theirs = {("KE", "a"): 7, ("KE", "b"): 1}
    assert behind(mine, theirs) == 1 + 9  # their extra KE/a is not ours to count
    assert behind(theirs, mine) == 2
    assert behind(mine, mine) == 0


def test_a_vector_round_trips_its_wire_form_and_keeps_a_streams_highest_seq() -> None:
    proto = to_proto([("KE", "a", 5, b"h5"), ("TZ", "b", 2, b"")])
    assert [(h.origin, h.audience, h.seq, h.hash) for h in proto.heads] == [
        ("KE", "a", 5, b"h5"),
        ("TZ", "b", 2, b""),
    ]
    assert from_proto(proto) == {("KE", "a"): 5, ("TZ", "b"): 2}
    twice = sync_pb2.VersionVector(
        heads=[sync_pb2.StreamHead(origin="KE", audience="a", seq=q) for q in (3, 8, 6)]
    )
    assert from_proto(twice) == {("KE", "a"): 8}
    assert from_proto(sync_pb2.VersionVector()) == {}
