"""Moving envelopes at the bounds of node/domain/limits.py. Pull: the server caps its
batch whatever the caller asks. Hand-carried bundles: a size cap on import
(export writes parts instead, and never stops at a batch's cap), a recipient
that must be this node (and someone at export), every refused envelope
reported while the rest is stored, and a second import that resumes.
KE-MBA, a port of KE with no link at all; TZ, another node."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from federation import vectors
from federation.transport import sync_stub
from gcn.v1 import sync_pb2
from node.app import NodeApp
from node.bootstrap import CONFIG_FILE
from node.bundle import _DOMAIN, export_bundle, import_bundle
from node.cli.main import main
from node.domain import limits, samples
from node.errors import ValidationError
from node.storage.models import RecordRow
from node.testing.clock import ManualClock
from node.testing.local_federation import LocalFederation

pytestmark = pytest.mark.slow
SEIZURES = 25


@pytest.fixture
def fed(tmp_path: Path, clock: ManualClock) -> Iterator[LocalFederation]:
    f = LocalFederation(tmp_path, clock)
    f.add("KE", "national", country="KE", region="ESA")
    f.add("KE-MBA", "port", country="KE", region="ESA", upstreams=["KE"])
    f.add("TZ", "national", country="TZ", region="ESA")
    f.publish()
    f.start()
    f.sync_all(rounds=3)  # key messages reach the port
    for node in f.nodes.values():
        node.stop()  # from now on, no link at all
    port = f.nodes["KE-MBA"].app
    rng = random.Random(9)
    port.records.import_seizures(samples.random_seizure(rng, clock().date()) for _ in range(SEIZURES))
    yield f
    f.close()


def _records_from(app: NodeApp, origin: str) -> int:
    with app.db.read() as s:
        count = s.scalar(
            select(func.count(func.distinct(RecordRow.record_id))).where(RecordRow.origin == origin)
        )
    return int(count or 0)


def _resigned(port: NodeApp, bundle: sync_pb2.Bundle) -> bytes:
    """What a member's own code can write: a bundle of its choosing, signed for real."""
    data = bundle.SerializeToString()
    return sync_pb2.SignedBundle(
        bundle=data, key_id=port.keys.signing.key_id, signature=port.keys.signing.sign(_DOMAIN + data)
    ).SerializeToString()


def test_what_does_not_fit_one_bundle_goes_into_parts_that_all_import(
    fed: LocalFederation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, ke = fed.nodes["KE-MBA"].app, fed.nodes["KE"].app
    monkeypatch.setattr(limits, "MAX_BUNDLE_BYTES", 6 * 1024)
    done = export_bundle(port, "ke", tmp_path / "port.gcnb")
    assert len(done.paths) > 2 and done.paths[1] == tmp_path / "port.gcnb.2"
    assert all(p.stat().st_size <= limits.MAX_BUNDLE_BYTES for p in done.paths)
    assert done.envelopes >= SEIZURES
    stored = held = 0
    for path in reversed(done.paths):  # any order: a head waits for its gap to fill
        result = import_bundle(ke, path).result
        assert not result.refused
        stored, held = stored + result.stored, held + result.duplicates
    assert (stored, held) == (SEIZURES, done.envelopes - SEIZURES)  # KE held the key messages
    assert _records_from(ke, "KE-MBA") == SEIZURES
    again = import_bundle(ke, done.paths[0])  # importing again resumes: nothing is missing
    assert (again.result.stored, again.result.duplicates) == (0, again.total)


def test_a_file_beyond_the_cap_is_refused_before_it_is_parsed(
    fed: LocalFederation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ke = fed.nodes["KE"].app
    monkeypatch.setattr(limits, "MAX_BUNDLE_BYTES", 1024 * 1024)
    huge = tmp_path / "huge.gcnb"
    huge.write_bytes(b"\x0a" * (limits.MAX_BUNDLE_BYTES + 1))
    with pytest.raises(ValidationError, match=f"larger than {limits.MAX_BUNDLE_BYTES} bytes") as err:
        import_bundle(ke, huge)
    assert err.value.field == "bundle"


@pytest.mark.parametrize(
    ("recipient", "rule"),
    [
        pytest.param("", "is required", id="empty"),
        pytest.param("   ", "is required", id="blank"),
        pytest.param("KE MBA", "must be a node id", id="not-a-node-id"),
        pytest.param("KE-MBA", "is this node", id="itself"),
        pytest.param("VN", "not an active member", id="unknown"),
    ],
)
def test_export_needs_another_active_node_as_recipient(
    fed: LocalFederation, tmp_path: Path, recipient: str, rule: str
) -> None:
    with pytest.raises(ValidationError, match=rule) as err:
        export_bundle(fed.nodes["KE-MBA"].app, recipient, tmp_path / "x.gcnb")
    assert err.value.field == "recipient"
    assert not (tmp_path / "x.gcnb").exists()


def test_import_refuses_a_bundle_for_another_node_or_for_nobody(fed: LocalFederation, tmp_path: Path) -> None:
    port, ke = fed.nodes["KE-MBA"].app, fed.nodes["KE"].app
    for_tz = tmp_path / "tz.gcnb"
    export_bundle(port, "TZ", for_tz)
    with pytest.raises(ValidationError, match="is TZ: the bundle is not meant for KE"):
        import_bundle(ke, for_tz)
    export_bundle(port, "KE", tmp_path / "ke.gcnb")
    bundle = sync_pb2.Bundle.FromString(
        sync_pb2.SignedBundle.FromString((tmp_path / "ke.gcnb").read_bytes()).bundle
    )
    bundle.recipient = ""  # as exports before this check wrote, or a hostile member's
    nobody = tmp_path / "nobody.gcnb"
    nobody.write_bytes(_resigned(port, bundle))
    with pytest.raises(ValidationError, match="is empty") as err:
        import_bundle(ke, nobody)
    assert err.value.field == "bundle.recipient"
    assert _records_from(ke, "KE-MBA") == 0


def test_import_names_every_refused_envelope_and_stores_the_rest(
    fed: LocalFederation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port, ke = fed.nodes["KE-MBA"].app, fed.nodes["KE"].app
    stick = tmp_path / "port.gcnb"
    export_bundle(port, "KE", stick)
    bundle = sync_pb2.Bundle.FromString(sync_pb2.SignedBundle.FromString(stick.read_bytes()).bundle)
    last = bundle.envelopes[-1]
    last.ciphertext = last.ciphertext[:-1] + bytes([last.ciphertext[-1] ^ 1])  # damaged on the way
    stick.write_bytes(_resigned(port, bundle))

    code = main(["bundle", "import", str(stick), "--config", str(fed.nodes["KE"].directory / CONFIG_FILE)])
    out, err = capsys.readouterr()
    assert code == 1
    line = " ".join(out.split())
    assert f"{len(bundle.envelopes)} envelopes: {SEIZURES - 1} new, 2 already held, 1 refused" in line
    assert f"refused envelope {len(bundle.envelopes) - 1} (KE-MBA " in err and ": forged: " in err
    assert _records_from(ke, "KE-MBA") == SEIZURES - 1


def test_pull_caps_its_batch_whatever_the_caller_asks(
    fed: LocalFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, ke = fed.nodes["KE-MBA"], fed.nodes["KE"]
    port.start()
    stub = sync_stub(ke.channel(port))
    have = vectors.to_proto((o, a, q, b"") for (o, a), q in sorted(ke.app.receiver.local_vector().items()))
    greedy = sync_pb2.PullRequest(have=have, max_envelopes=2**32 - 1, max_bytes=2**64 - 1)
    monkeypatch.setattr(limits, "PULL_MAX_ENVELOPES", 4)
    reply = stub.Pull(greedy, timeout=10)
    assert len(reply.envelopes) == 4 and reply.more
    monkeypatch.setattr(limits, "PULL_MAX_ENVELOPES", 5000)
    monkeypatch.setattr(limits, "PULL_MAX_BYTES", 2000)
    reply = stub.Pull(greedy, timeout=10)
    assert sum(e.ByteSize() for e in reply.envelopes) <= 2000 + 1200 and reply.more
    monkeypatch.undo()
    everything = stub.Pull(greedy, timeout=10)
    assert len(everything.envelopes) == SEIZURES and not everything.more


def test_an_export_is_not_cut_at_a_pull_batch(
    fed: LocalFederation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, ke = fed.nodes["KE-MBA"].app, fed.nodes["KE"].app
    monkeypatch.setattr(limits, "PULL_MAX_ENVELOPES", 4)
    done = export_bundle(port, "KE", tmp_path / "port.gcnb")
    assert len(done.paths) == 1 and done.envelopes >= SEIZURES
    assert import_bundle(ke, done.paths[0]).result.stored == SEIZURES
