"""A record made before its node holds an audience's key is shared when the key
arrives (`node.domain.waiting_shares`), never silently kept back.

Seen from outside before the fix: a port's first seizure, recorded before the
national node's key message reached it, stayed on the port for good ("share
skipped: no key for its audience yet" in its log, once); every later record went.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from federation.policy import Share
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from node.domain import samples
from node.storage.models import AlarmRow, RecordRow
from node.testing.clock import ManualClock
from node.testing.local_federation import LocalFederation
from tests.federation.policy_fixtures import FixedPolicy

pytestmark = pytest.mark.slow

SHARES = [Share("national:KE", epb.VIEW_FULL), Share("region:ESA", epb.VIEW_STATISTICAL)]


@pytest.fixture
def fresh(tmp_path: Path, clock: ManualClock) -> Iterator[LocalFederation]:
    """port KE-MBA → KE → RINEX-ESA, started but never synced: the port holds
    no key but its own."""
    f = LocalFederation(tmp_path, clock)
    f.add("RINEX-ESA", "regional", region="ESA")
    f.add("KE", "national", country="KE", region="ESA", upstreams=["RINEX-ESA"])
    f.add("KE-MBA", "port", country="KE", region="ESA", upstreams=["KE"])
    f.add("TZ", "national", country="TZ", region="ESA", upstreams=["RINEX-ESA"])
    f.publish()
    f.start()
    f.nodes["KE-MBA"].app.records.policy = FixedPolicy(SHARES)  # type: ignore[assignment]
    yield f
    f.close()


def _views(fed: LocalFederation, node: str, record_id: str) -> dict[str, int]:
    with fed.nodes[node].app.db.read() as s:
        rows = s.scalars(select(RecordRow).where(RecordRow.record_id == record_id))
        return {r.audience: r.view for r in rows}


def _settle(fed: LocalFederation) -> None:
    """What a served node does on its own: sync rounds, and at each check the
    waiting shares whose key arrived are sealed."""
    for _ in range(3):
        fed.sync_all(rounds=2)
        for node in fed.nodes.values():
            node.app.records.seal_waiting()


def test_a_seizure_recorded_before_any_key_reaches_its_audiences_once_the_keys_arrive(
    fresh: LocalFederation, clock: ManualClock
) -> None:
    port = fresh.nodes["KE-MBA"].app
    assert port.audience_keys.current("national:KE") is None
    first = port.records.record_seizure(samples.ivory_seizure(clock().date()))
    # Kept on the port, in full, for the port itself; the shares wait, and say so.
    assert [e.audience for e in first.envelopes] == ["node:KE-MBA"]
    assert port.reader.get(first.record_id).WhichOneof("body") == "seizure"
    waiting = {w.audience: w.shares for w in port.records.waiting.summary()}
    assert waiting == {"national:KE": 1, "region:ESA": 1}

    _settle(fresh)

    assert port.records.waiting.summary() == []
    assert _views(fresh, "KE", first.record_id) == {
        "national:KE": epb.VIEW_FULL,
        "region:ESA": epb.VIEW_STATISTICAL,
    }
    assert _views(fresh, "RINEX-ESA", first.record_id) == {"region:ESA": epb.VIEW_STATISTICAL}
    assert _views(fresh, "TZ", first.record_id) == {"region:ESA": epb.VIEW_STATISTICAL}
    got = fresh.nodes["KE"].app.reader.get(first.record_id)
    assert got.seizure == port.reader.get(first.record_id).seizure  # the record as it was made
    assert _views(fresh, "KE-MBA", first.record_id) == {
        "node:KE-MBA": epb.VIEW_FULL,
        "national:KE": epb.VIEW_FULL,
        "region:ESA": epb.VIEW_STATISTICAL,
    }


def test_a_record_retracted_before_its_key_came_never_reaches_that_audience(
    fresh: LocalFederation, clock: ManualClock
) -> None:
    port = fresh.nodes["KE-MBA"].app
    kept = port.records.record_seizure(samples.ivory_seizure(clock().date()))
    gone = port.records.record_seizure(samples.hcfc_seizure(clock().date()))
    port.records.retract(gone.record_id, "recorded in error")
    assert {w.audience: w.shares for w in port.records.waiting.summary()} == {
        "national:KE": 1,
        "region:ESA": 1,
    }

    _settle(fresh)

    assert _views(fresh, "KE", kept.record_id)["national:KE"] == epb.VIEW_FULL
    assert _views(fresh, "KE", gone.record_id) == {}
    assert port.reader.get(gone.record_id).status == npb.RECORD_STATUS_RETRACTED


def test_a_correction_made_while_waiting_is_what_the_audience_gets(
    fresh: LocalFederation, clock: ManualClock
) -> None:
    port = fresh.nodes["KE-MBA"].app
    original = port.records.record_seizure(samples.ivory_seizure(clock().date()))
    fixed = samples.ivory_seizure(clock().date())
    fixed.concealment = "false floor under sesame sacks (recount)"
    correction = port.records.correct(original.record_id, "recount", fixed)

    _settle(fresh)

    assert _views(fresh, "KE", original.record_id) == {}
    assert _views(fresh, "KE", correction.record_id)["national:KE"] == epb.VIEW_FULL
    assert fresh.nodes["KE"].app.reader.get(correction.record_id).correction.seizure.concealment == (
        "false floor under sesame sacks (recount)"
    )


def test_records_made_after_the_keys_arrived_go_at_once_and_nothing_waits(
    fresh: LocalFederation, clock: ManualClock
) -> None:
    _settle(fresh)
    port = fresh.nodes["KE-MBA"].app
    later = port.records.record_seizure(samples.ivory_seizure(clock().date()))
    assert sorted(e.audience for e in later.envelopes) == ["national:KE", "region:ESA"]
    assert port.records.waiting.summary() == []
    with port.db.read() as s:
        assert not list(s.scalars(select(AlarmRow).where(AlarmRow.kind == "waiting_share_lost")))


def test_a_national_record_waits_only_for_the_region_and_keeps_no_second_copy(
    fresh: LocalFederation, clock: ManualClock
) -> None:
    ke = fresh.nodes["KE"].app
    ke.records.policy = FixedPolicy(  # type: ignore[assignment]
        [Share("national:KE", epb.VIEW_FULL), Share("region:ESA", epb.VIEW_REDACTED)]
    )
    made = ke.records.record_seizure(samples.hcfc_seizure(clock().date()))
    # Its own national audience's key is held: that full copy is the one the region's share comes from.
    assert [e.audience for e in made.envelopes] == ["national:KE"]
    assert {w.audience for w in ke.records.waiting.summary()} == {"region:ESA"}

    _settle(fresh)

    assert _views(fresh, "KE", made.record_id) == {
        "national:KE": epb.VIEW_FULL,
        "region:ESA": epb.VIEW_REDACTED,
    }
    assert _views(fresh, "TZ", made.record_id) == {"region:ESA": epb.VIEW_REDACTED}
