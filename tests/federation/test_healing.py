"""A damaged or refused envelope costs its own stream, never the link, and the
stream heals from another holder. Real federation on loopback (mutual TLS,
SQLite), the damage done to the hub's database from outside the code path.

port-less chain: KE, TZ → RINEX-ESA → WCO-GLOBAL."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from crypto import envelope as env_crypto
from federation.policy import Share
from federation.transport import sync_stub
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import sync_pb2
from node.bootstrap import CONFIG_FILE
from node.cli.main import main
from node.domain import samples
from node.replication import Replication
from node.storage.envelope_log import as_envelope
from node.storage.models import AlarmRow, EnvelopeRow, QuarantineRow, StreamRow
from node.storage.scrub import Scrubber
from node.testing.clock import ManualClock
from node.testing.local_federation import LocalFederation

pytestmark = pytest.mark.slow
GLOBAL = "global"


@pytest.fixture
def fed(tmp_path: Path, clock: ManualClock) -> Iterator[LocalFederation]:
    f = LocalFederation(tmp_path, clock)
    f.add("WCO-GLOBAL", "global")
    f.add("RINEX-ESA", "regional", region="ESA", upstreams=["WCO-GLOBAL"])
    f.add("KE", "national", country="KE", region="ESA", upstreams=["RINEX-ESA"])
    f.add("TZ", "national", country="TZ", region="ESA", upstreams=["RINEX-ESA"])
    f.publish()
    f.start()
    f.sync_all(rounds=3)  # key messages reach every member
    yield f
    f.close()


@dataclass(frozen=True)
class EverythingShared:
    def shares(self, kind: int, body: object) -> list[Share]:
        return [Share(GLOBAL, epb.VIEW_STATISTICAL), Share("region:ESA", epb.VIEW_REDACTED)]


def _record(fed: LocalFederation, node: str, n: int, clock: ManualClock) -> None:
    rng = random.Random(n)
    records = fed.nodes[node].app.records
    records.policy = EverythingShared()  # type: ignore[assignment]
    records.import_seizures(samples.random_seizure(rng, clock().date()) for _ in range(n))


def _head(fed: LocalFederation, node: str, origin: str, audience: str) -> int:
    with fed.nodes[node].app.db.read() as s:
        row = s.get(StreamRow, (origin, audience))
        return row.head_seq if row else 0


def _seqs(fed: LocalFederation, node: str, origin: str, audience: str) -> list[int]:
    with fed.nodes[node].app.db.read() as s:
        return sorted(
            s.scalars(
                select(EnvelopeRow.seq).where(EnvelopeRow.origin == origin, EnvelopeRow.audience == audience)
            )
        )


def _alarms(fed: LocalFederation, node: str) -> list[AlarmRow]:
    with fed.nodes[node].app.db.read() as s:
        return list(s.scalars(select(AlarmRow).order_by(AlarmRow.id)))


def _damage(
    fed: LocalFederation, node: str, origin: str, audience: str, seq: int, *, rehash: bool = False
) -> None:
    """Flip one byte of a stored envelope's ciphertext; with `rehash`, also rewrite
    its hash column to match (a careful hand: only the signature tells)."""
    with fed.nodes[node].app.db.begin() as s:
        row = s.scalars(
            select(EnvelopeRow).where(
                EnvelopeRow.origin == origin, EnvelopeRow.audience == audience, EnvelopeRow.seq == seq
            )
        ).one()
        data = bytearray(row.ciphertext)
        data[len(data) // 2] ^= 0xFF
        values: dict[str, object] = {"ciphertext": bytes(data)}
        if rehash:
            damaged = as_envelope(row)
            damaged.ciphertext = bytes(data)
            values["hash"] = env_crypto.envelope_hash(damaged)
        s.execute(update(EnvelopeRow).where(EnvelopeRow.id == row.id).values(**values))


def _fully_delivered(fed: LocalFederation, node: str, origin: str, audience: str, n: int) -> None:
    assert _seqs(fed, node, origin, audience) == list(range(1, n + 1))
    assert _head(fed, node, origin, audience) == n


def test_a_damaged_envelope_at_the_hub_is_never_sent_and_heals_from_its_origin(
    fed: LocalFederation, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(fed, "KE", 30, clock)
    _record(fed, "TZ", 10, clock)
    fed.sync("KE", "RINEX-ESA")
    fed.sync("TZ", "RINEX-ESA")
    n_ke = _head(fed, "RINEX-ESA", "KE", GLOBAL)
    n_tz = _head(fed, "RINEX-ESA", "TZ", GLOBAL)
    _damage(fed, "RINEX-ESA", "KE", GLOBAL, 10)

    result = fed.sync("RINEX-ESA", "WCO-GLOBAL")
    # The hub found it damaged as it read it to send, quarantined it, and sent everything else.
    assert result.refused == 0
    assert _seqs(fed, "WCO-GLOBAL", "KE", GLOBAL) == list(range(1, 10))
    _fully_delivered(fed, "WCO-GLOBAL", "TZ", GLOBAL, n_tz)  # the other streams flow
    assert _head(fed, "RINEX-ESA", "KE", GLOBAL) == 9  # the hub's vector says what it lacks now
    with fed.nodes["RINEX-ESA"].app.db.read() as s:
        [q] = s.scalars(select(QuarantineRow))
    assert (q.origin, q.audience, q.seq, q.found_by) == ("KE", GLOBAL, 10, "send")
    assert [a.kind for a in _alarms(fed, "RINEX-ESA")] == ["corrupt_envelope"]
    # ... and an operator sees it with `gcn alarms`, naming the stream.
    config = fed.base / "RINEX-ESA" / CONFIG_FILE
    assert main(["alarms", "--json", "--config", str(config)]) == 0
    [shown] = json.loads(capsys.readouterr().out)["alarms"]
    assert (shown["kind"], shown["origin"], shown["audience"], shown["seq"]) == (
        "corrupt_envelope",
        "KE",
        GLOBAL,
        10,
    )

    # The origin's next round finds the hub lacking seq 10 and sends it again.
    fed.sync("KE", "RINEX-ESA")
    assert _head(fed, "RINEX-ESA", "KE", GLOBAL) == n_ke
    fed.sync("RINEX-ESA", "WCO-GLOBAL")
    _fully_delivered(fed, "WCO-GLOBAL", "KE", GLOBAL, n_ke)


def test_a_copy_damaged_with_a_matching_hash_is_refused_by_the_peer_and_quarantined_by_the_sender(
    fed: LocalFederation, clock: ManualClock
) -> None:
    _record(fed, "KE", 20, clock)
    _record(fed, "TZ", 5, clock)
    fed.sync("KE", "RINEX-ESA")
    fed.sync("TZ", "RINEX-ESA")
    n_ke = _head(fed, "RINEX-ESA", "KE", GLOBAL)
    _damage(fed, "RINEX-ESA", "KE", GLOBAL, 7, rehash=True)

    result = fed.sync("RINEX-ESA", "WCO-GLOBAL")
    assert result.refused == 1
    assert _seqs(fed, "WCO-GLOBAL", "KE", GLOBAL)[:7] == [1, 2, 3, 4, 5, 6, 8]  # stored around the gap
    assert _head(fed, "WCO-GLOBAL", "KE", GLOBAL) == 6
    assert _head(fed, "WCO-GLOBAL", "TZ", GLOBAL) == _head(fed, "RINEX-ESA", "TZ", GLOBAL)
    kinds = [a.kind for a in _alarms(fed, "WCO-GLOBAL")]
    assert kinds == ["refused_from_peer"]
    assert [a.kind for a in _alarms(fed, "RINEX-ESA")] == ["refused_by_peer", "corrupt_envelope"]
    assert _head(fed, "RINEX-ESA", "KE", GLOBAL) == 6

    # Healing, without waiting for KE's round: the hub fetches from KE, whose
    # vector it knows from its last round with it.
    esa = fed.nodes["RINEX-ESA"]
    replication = Replication(esa.app, esa.tls)
    try:
        ke_peer = next(p for p in replication.peers() if p.node_id == "KE")
        replication.peer_sync(ke_peer).run(clock())  # a round learns KE's vector
        assert replication.heal({("KE", GLOBAL)}, avoid="WCO-GLOBAL") >= 1
    finally:
        replication.stop()
    assert _head(fed, "RINEX-ESA", "KE", GLOBAL) == n_ke
    fed.sync("RINEX-ESA", "WCO-GLOBAL")
    _fully_delivered(fed, "WCO-GLOBAL", "KE", GLOBAL, n_ke)


def test_pulls_do_not_ask_again_for_a_stream_refused_from_that_peer(
    fed: LocalFederation, clock: ManualClock
) -> None:
    """TZ refused KE's seq 3 of `global` from ESA; until the retry is due it does
    not ask ESA for that stream again, and still gets everything else from it."""
    _record(fed, "KE", 5, clock)
    fed.sync("KE", "RINEX-ESA")
    esa, tz = fed.nodes["RINEX-ESA"], fed.nodes["TZ"]
    with esa.app.db.read() as s:
        rows = list(
            s.scalars(
                select(EnvelopeRow)
                .where(EnvelopeRow.origin == "KE", EnvelopeRow.audience == GLOBAL)
                .order_by(EnvelopeRow.seq)
            )
        )
    bad = as_envelope(rows[2])
    bad.signature = bytes(64)
    stub = sync_stub(esa.channel(tz))
    reply = stub.Push(sync_pb2.PushRequest(envelopes=[as_envelope(r) for r in rows[:2]] + [bad]), timeout=10)
    assert [(r.code, r.seq) for r in reply.refused] == [("forged", 3)]
    assert tz.app.receiver.waiting_from("RINEX-ESA") == {("KE", GLOBAL)}
    regional = _head(fed, "RINEX-ESA", "KE", "region:ESA")
    fed.sync("TZ", "RINEX-ESA")
    assert _head(fed, "TZ", "KE", GLOBAL) == 2  # not asked for
    assert _head(fed, "TZ", "KE", "region:ESA") == regional  # everything else came
    clock.advance(3600)  # the retry is due
    fed.sync("TZ", "RINEX-ESA")
    _fully_delivered(fed, "TZ", "KE", GLOBAL, len(rows))
    assert tz.app.receiver.waiting_from("RINEX-ESA") == set()  # healed, forgotten


def test_the_verification_pass_finds_a_damaged_envelope_nobody_asked_for(
    fed: LocalFederation, clock: ManualClock
) -> None:
    _record(fed, "KE", 10, clock)
    fed.sync("KE", "RINEX-ESA")
    _damage(fed, "RINEX-ESA", "KE", GLOBAL, 4, rehash=True)
    esa = fed.nodes["RINEX-ESA"].app
    scrubber = Scrubber(esa.db, esa.quarantine, per_step=7)
    found = 0
    while scrubber.passes == 0:
        found += scrubber.step()
    assert found == 1
    with esa.db.read() as s:
        assert s.scalar(select(func.count()).select_from(QuarantineRow)) == 1
    assert _head(fed, "RINEX-ESA", "KE", GLOBAL) == 3
    assert [a.kind for a in _alarms(fed, "RINEX-ESA")] == ["corrupt_envelope"]


def test_a_damaged_envelope_found_by_an_officer_reading_it_is_quarantined_and_heals(
    fed: LocalFederation, clock: ManualClock
) -> None:
    """The hub reads the region's redacted view: a damaged copy does not open when
    an officer lists records; the reader answers without its body, the node
    quarantines it, and the origin's next round sends it again."""
    _record(fed, "KE", 6, clock)
    fed.sync("KE", "RINEX-ESA")
    region = "region:ESA"
    n = _head(fed, "RINEX-ESA", "KE", region)
    _damage(fed, "RINEX-ESA", "KE", region, 3)
    esa = fed.nodes["RINEX-ESA"].app

    listed = [
        r for r in esa.reader.list(npb.ListRecordsRequest(page_size=50)).records if r.audience == region
    ]
    assert len(listed) == n  # the page is answered whole
    assert sum(1 for r in listed if r.WhichOneof("body") is None) == 1  # one without its body
    with esa.db.read() as s:
        [q] = s.scalars(select(QuarantineRow))
    assert (q.origin, q.audience, q.seq, q.found_by) == ("KE", region, 3, "read")
    assert [a.kind for a in _alarms(fed, "RINEX-ESA")] == ["corrupt_envelope"]
    assert _head(fed, "RINEX-ESA", "KE", region) == 2

    fed.sync("KE", "RINEX-ESA")
    _fully_delivered(fed, "RINEX-ESA", "KE", region, n)
    assert all(r.WhichOneof("body") for r in esa.reader.list(npb.ListRecordsRequest(page_size=50)).records)


def test_a_row_moved_to_another_stream_position_is_found_by_the_verification_pass_and_heals(
    fed: LocalFederation, clock: ManualClock
) -> None:
    """Red team F4: a hand changed a stored envelope's seq column (its bytes, so
    its hash and signature, intact): the stream never healed and status said ok.
    The verification pass now checks the columns against the signed header."""
    _record(fed, "KE", 10, clock)
    fed.sync("KE", "RINEX-ESA")
    esa = fed.nodes["RINEX-ESA"].app
    with esa.db.begin() as s:
        s.execute(
            update(EnvelopeRow)
            .where(EnvelopeRow.origin == "KE", EnvelopeRow.audience == GLOBAL, EnvelopeRow.seq == 4)
            .values(seq=400)
        )
    scrubber = Scrubber(esa.db, esa.quarantine, per_step=50)
    found = 0
    while scrubber.passes == 0:
        found += scrubber.step()
    assert found == 1
    with esa.db.read() as s:
        [q] = s.scalars(select(QuarantineRow))
    assert "do not match its signed header" in q.reason
    assert _head(fed, "RINEX-ESA", "KE", GLOBAL) == 3
    fed.sync("KE", "RINEX-ESA")
    _fully_delivered(fed, "RINEX-ESA", "KE", GLOBAL, 10)
