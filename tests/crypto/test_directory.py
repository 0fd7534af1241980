"""Tests of crypto.directory: the root-signed directory and the rules a node
applies before trusting a new version.

The gcn-wco root signs with key R1 until it rotates to R2. A Kenyan node pins
R1 and holds version 9; it is then offered newer, older, expired, forged and
rotated versions. Each refusal names its rule.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from crypto.directory import (
    SIGNING_DOMAIN,
    TrustedDirectory,
    directory_key,
    find_node,
    sign_directory,
    signing_keyring,
    to_timestamp,
)
from crypto.errors import DirectoryError, SignatureError
from crypto.keys import EncryptionKey, SigningKey
from gcn.v1 import directory_pb2 as pb

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
R1 = SigningKey.generate(T0)
R2 = SigningKey.generate(NOW - timedelta(days=1))
STRANGER = SigningKey.generate(T0)
KE_OLD = SigningKey.generate(T0)
KE_NEW = SigningKey.generate(datetime(2026, 6, 1, tzinfo=UTC))
KE_ENC = EncryptionKey.generate()
TZ_KEY = SigningKey.generate(T0)
TZ_ENC = EncryptionKey.generate()


def root_key(key: SigningKey, not_after: datetime | None = None) -> pb.DirectoryKey:
    return directory_key(key.key_id, key.public_raw, key.not_before, not_after)


def node(node_id: str, signing: list[SigningKey], enc: EncryptionKey) -> pb.DirectoryNode:
    keys = [
        directory_key(k.key_id, k.public_raw, k.not_before, nxt.not_before)
        for k, nxt in itertools.pairwise(signing)
    ]
    keys.append(directory_key(signing[-1].key_id, signing[-1].public_raw, signing[-1].not_before))
    return pb.DirectoryNode(
        id=node_id,
        role="national",
        country=node_id,
        signing_keys=keys,
        encryption_key=directory_key(enc.key_id, enc.public_raw, T0),
        status=pb.NODE_STATUS_ACTIVE,
    )


NODES = [node("KE", [KE_OLD, KE_NEW], KE_ENC), node("TZ", [TZ_KEY], TZ_ENC)]


def directory(
    version: int,
    *,
    roots: tuple[pb.DirectoryKey, ...] = (root_key(R1),),
    federation: str = "gcn-wco",
    issued_at: datetime = NOW - timedelta(hours=1),
    expires_at: datetime = NOW + timedelta(days=30),
    nodes: tuple[pb.DirectoryNode, ...] = tuple(NODES),
) -> pb.Directory:
    return pb.Directory(
        federation=federation,
        version=version,
        issued_at=to_timestamp(issued_at),
        expires_at=to_timestamp(expires_at),
        root_keys=roots,
        nodes=nodes,
    )


def signed(d: pb.Directory, *signers: SigningKey) -> pb.SignedDirectory:
    return sign_directory(d, signers)


PINNED = [root_key(R1)]
V9 = signed(directory(9), R1)
ROTATED = (root_key(R2),)


def holding_v9() -> TrustedDirectory:
    trust = TrustedDirectory(PINNED)
    trust.update(V9, NOW)
    return trust


def tampered() -> pb.SignedDirectory:
    out = signed(directory(10), R1)
    d = pb.Directory.FromString(out.directory)
    d.nodes[0].name = "forged"
    out.directory = d.SerializeToString()
    return out


def holding_two_root_keys() -> TrustedDirectory:
    trust = TrustedDirectory(PINNED)
    trust.update(signed(directory(9, roots=(root_key(R1), root_key(R2))), R1, R2), NOW)
    return trust


def node_with_a_chosen_key_id() -> pb.DirectoryNode:
    ke = node("KE", [KE_NEW], KE_ENC)
    ke.signing_keys[0].key_id = "k1"
    return ke


def root_key_retired_before_issue() -> TrustedDirectory:
    retired = (root_key(R1, not_after=NOW - timedelta(days=2)),)
    held = signed(directory(9, roots=retired, issued_at=NOW - timedelta(days=3)), R1)
    trust = TrustedDirectory(PINNED)
    trust.update(held, NOW)
    return trust


@dataclass(frozen=True)
class Offer:
    """A node in state `trust` is offered `offered`; it must refuse with `reason`."""

    trust: TrustedDirectory
    offered: pb.SignedDirectory
    reason: str


def empty() -> TrustedDirectory:
    return TrustedDirectory(PINNED)


R1_ID, R2_ID, STRANGER_ID = R1.key_id, R2.key_id, STRANGER.key_id

REFUSED = [
    pytest.param(
        Offer(holding_v9(), signed(directory(7), R1), "directory version 7 older than held version 9"),
        id="rollback",
    ),
    pytest.param(
        Offer(holding_v9(), signed(directory(9), R1), "directory version 9 is the version already held"),
        id="same-version",
    ),
    pytest.param(
        Offer(
            holding_v9(),
            signed(directory(10, expires_at=NOW - timedelta(seconds=1)), R1),
            "directory version 10 expired at 2026-11-28T11:59:59+00:00",
        ),
        id="expired",
    ),
    pytest.param(
        Offer(
            holding_v9(),
            signed(directory(10, expires_at=NOW), R1),
            "directory version 10 expired at 2026-11-28T12:00:00+00:00",
        ),
        id="expires-this-instant",
    ),
    pytest.param(
        Offer(
            holding_v9(),
            signed(directory(10, issued_at=NOW + timedelta(minutes=6)), R1),
            "issued at 2026-11-28T12:06:00+00:00, more than 5 minutes after now",
        ),
        id="issued-in-the-future",
    ),
    pytest.param(
        Offer(
            holding_v9(),
            signed(directory(10), STRANGER),
            f"directory version 10 not signed by the federation root (signed by {STRANGER_ID}; "
            f"trusted: {R1_ID})",
        ),
        id="signed-by-an-unknown-key",
    ),
    pytest.param(
        Offer(holding_v9(), signed(directory(10)), "not signed by the federation root (signed by none;"),
        id="unsigned",
    ),
    pytest.param(
        Offer(holding_v9(), tampered(), f"not signed by the federation root (signed by {R1_ID};"),
        id="altered-after-signing",
    ),
    pytest.param(
        Offer(
            empty(), signed(directory(1), STRANGER), "directory version 1 not signed by the federation root"
        ),
        id="first-directory-not-signed-by-the-pinned-key",
    ),
    pytest.param(
        Offer(
            holding_v9(),
            signed(directory(10, issued_at=T0 - timedelta(days=1)), R1),
            "not signed by the federation root",
        ),
        id="root-key-not-yet-valid-at-issue",
    ),
    pytest.param(
        Offer(
            root_key_retired_before_issue(), signed(directory(10), R1), "not signed by the federation root"
        ),
        id="root-key-retired-before-issue",
    ),
    pytest.param(
        Offer(
            holding_v9(),
            signed(directory(10, roots=ROTATED), R2),
            f"not signed by the federation root (signed by {R2_ID}; trusted: {R1_ID})",
        ),
        id="rotation-signed-only-by-the-new-key",
    ),
    pytest.param(
        Offer(
            holding_v9(),
            signed(directory(10, roots=ROTATED), R1),
            "new root keys must sign the directory that introduces them",
        ),
        id="rotation-signed-only-by-the-old-key",
    ),
    pytest.param(
        Offer(
            holding_v9(),
            signed(directory(10, roots=(root_key(R1), root_key(STRANGER))), R1),
            "new root keys must sign the directory that introduces them",
        ),
        id="old-key-adds-a-second-root-key-alone",
    ),
    pytest.param(
        Offer(
            holding_two_root_keys(),
            signed(directory(10, roots=ROTATED), R1),
            "but none of its own root keys signed it",
        ),
        id="dropping-a-root-key-signed-only-by-the-dropped-key",
    ),
    pytest.param(
        Offer(
            empty(),
            signed(directory(1, roots=ROTATED), R2),
            "directory version 1 not signed by the federation root",
        ),
        id="first-directory-already-rotated-away-from-the-pin",
    ),
    pytest.param(
        Offer(
            holding_v9(),
            signed(directory(10, federation="gcn-other"), R1),
            "directory version 10 is of federation 'gcn-other', not 'gcn-wco'",
        ),
        id="federation-mismatch",
    ),
    pytest.param(
        Offer(
            holding_v9(),
            signed(directory(10, nodes=(*NODES, NODES[0])), R1),
            "directory version 10 lists node KE more than once",
        ),
        id="duplicate-node-id",
    ),
    pytest.param(
        Offer(holding_v9(), pb.SignedDirectory(directory=b"\xff\xff"), "directory bytes do not parse"),
        id="bytes-do-not-parse",
    ),
    pytest.param(
        Offer(holding_v9(), signed(directory(10, roots=()), R1), "directory version 10 is malformed"),
        id="no-root-keys",
    ),
    pytest.param(
        Offer(
            holding_v9(),
            signed(directory(10, nodes=(node_with_a_chosen_key_id(),)), R1),
            "node KE key 'k1' does not match its public key",
        ),
        id="node-key-id-not-derived-from-its-key",
    ),
]


@pytest.mark.parametrize("offer", REFUSED)
def test_refused_directories_name_the_rule(offer: Offer) -> None:
    before = offer.trust.current
    with pytest.raises(DirectoryError, match=re.escape(offer.reason)):
        offer.trust.update(offer.offered, NOW)
    assert offer.trust.current == before


ACCEPTED = [
    pytest.param(empty(), signed(directory(1), R1), 1, id="first-directory-signed-by-the-pinned-key"),
    pytest.param(holding_v9(), signed(directory(10), R1), 10, id="next-version"),
    pytest.param(holding_v9(), signed(directory(12), R1), 12, id="versions-may-skip"),
    pytest.param(holding_v9(), signed(directory(10), STRANGER, R1), 10, id="extra-unknown-signature"),
    pytest.param(
        holding_v9(),
        signed(directory(10, issued_at=NOW + timedelta(minutes=4)), R1),
        10,
        id="issued-within-the-clock-skew",
    ),
    pytest.param(
        holding_v9(), signed(directory(10, roots=ROTATED), R1, R2), 10, id="rotation-signed-by-old-and-new"
    ),
]


@pytest.mark.parametrize(("trust", "offered", "version"), ACCEPTED)
def test_accepted_directories(trust: TrustedDirectory, offered: pb.SignedDirectory, version: int) -> None:
    accepted = trust.update(offered, NOW)
    assert accepted.version == version
    assert trust.current == accepted
    assert trust.current_signed == offered


def test_after_a_rotation_only_the_new_key_is_trusted() -> None:
    trust = holding_v9()
    trust.update(signed(directory(10, roots=ROTATED), R1, R2), NOW)
    trust.update(signed(directory(11, roots=ROTATED), R2), NOW)
    with pytest.raises(DirectoryError, match=f"not signed by the federation root .*trusted: {R2_ID}"):
        trust.update(signed(directory(12), R1), NOW)
    assert [k.key_id for k in trust.trusted_root_keys] == [R2_ID]


def test_a_held_directory_is_reverified_under_its_own_root_keys() -> None:
    held = signed(directory(11, roots=ROTATED), R2)
    trust = TrustedDirectory(PINNED, held=held, now=NOW)
    assert trust.current is not None and trust.current.version == 11
    trust.update(signed(directory(12, roots=ROTATED), R2), NOW)


HELD_REFUSED = [
    pytest.param(
        signed(directory(11, roots=ROTATED), R1),
        "held directory version 11 is not signed by its own",
        id="not-self-signed",
    ),
    pytest.param(
        signed(directory(11, issued_at=NOW + timedelta(hours=1)), R1), "after now", id="issued-after-now"
    ),
    pytest.param(pb.SignedDirectory(directory=b"\x08"), "do not parse", id="garbage"),
]


@pytest.mark.parametrize(("held", "reason"), HELD_REFUSED)
def test_a_bad_held_directory_is_refused(held: pb.SignedDirectory, reason: str) -> None:
    with pytest.raises(DirectoryError, match=reason):
        TrustedDirectory(PINNED, held=held, now=NOW)


def test_a_node_must_pin_a_root_key() -> None:
    with pytest.raises(DirectoryError, match="no pinned root keys"):
        TrustedDirectory([])


def test_current_is_a_copy() -> None:
    trust = holding_v9()
    current = trust.current
    assert current is not None
    current.version = 99
    assert trust.current is not None and trust.current.version == 9


def test_each_signer_signs_the_same_bytes_once() -> None:
    out = sign_directory(directory(3), [R1, R2])
    assert [s.key_id for s in out.signatures] == [R1_ID, R2_ID]
    assert out.directory == directory(3).SerializeToString(deterministic=True)
    assert SIGNING_DOMAIN == b"gcn-directory-v1\x00"


def test_find_node() -> None:
    d = directory(1)
    found = find_node(d, "TZ")
    assert found is not None and found.id == "TZ"
    assert find_node(d, "VN") is None


REVOKED_AT = datetime(2026, 9, 1, tzinfo=UTC)


def revoked_directory() -> pb.Directory:
    ke = node("KE", [KE_OLD, KE_NEW], KE_ENC)
    ke.status = pb.NODE_STATUS_REVOKED
    ke.revoked_at.CopyFrom(to_timestamp(REVOKED_AT))
    return directory(1, nodes=(ke, NODES[1]))


WINDOWS = [
    pytest.param(KE_NEW, "KE", REVOKED_AT - timedelta(seconds=1), True, id="revoked-node-before-revocation"),
    pytest.param(KE_NEW, "KE", REVOKED_AT, False, id="revoked-node-at-revocation"),
    pytest.param(KE_NEW, "KE", NOW, False, id="revoked-node-after-revocation"),
    pytest.param(
        KE_OLD, "KE", datetime(2026, 3, 1, tzinfo=UTC), True, id="revoked-node-retired-key-in-window"
    ),
    pytest.param(KE_OLD, "KE", datetime(2026, 7, 1, tzinfo=UTC), False, id="retired-key-after-its-own-end"),
    pytest.param(TZ_KEY, "TZ", NOW, True, id="active-node-unaffected"),
]


@pytest.mark.parametrize(("key", "node_id", "at", "valid"), WINDOWS)
def test_a_revoked_nodes_keys_stop_at_revoked_at(
    key: SigningKey, node_id: str, at: datetime, valid: bool
) -> None:
    ring = signing_keyring(revoked_directory())
    message = b"gcn-envelope-v1\x00 seizure"
    if valid:
        assert ring.verify(node_id, key.key_id, message, key.sign(message), at).key_id == key.key_id
    else:
        with pytest.raises(SignatureError, match="not valid at"):
            ring.verify(node_id, key.key_id, message, key.sign(message), at)


def test_the_keyring_keeps_windows_of_active_nodes() -> None:
    ring = signing_keyring(directory(1))
    old = next(k for k in ring.keys_of("KE") if k.key_id == KE_OLD.key_id)
    assert (old.not_before, old.not_after) == (T0, KE_NEW.not_before)
