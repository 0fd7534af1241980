"""Tests of federation.root: the gcn-wco root admits nodes, publishes the
directory, revokes a node and rotates its own key; a Kenyan node that pinned
the root key at set-up follows every version.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crypto.certs import generate_tls_key, make_csr, node_id_from_certificate
from crypto.directory import TrustedDirectory, directory_key, find_node, signing_keyring
from crypto.errors import DirectoryError, SignatureError
from crypto.keys import EncryptionKey, SigningKey
from federation.errors import JoinError, RootError
from federation.join import make_join_request
from federation.root import RootStore
from gcn.v1 import directory_pb2 as pb
from node.storage.files import write_file

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=3)
MESSAGE = b"gcn-envelope-v1\x00 seizure of 212 ivory tusks at Mombasa"


@dataclass(frozen=True)
class Joiner:
    """A node about to join: its keys and its signed request."""

    signing: SigningKey
    encryption: EncryptionKey
    request: pb.JoinRequest


def joiner(
    node_id: str,
    role: str = "national",
    country: str = "",
    region: str = "ESA",
    signing: SigningKey | None = None,
    encryption: EncryptionKey | None = None,
) -> Joiner:
    signing = signing or SigningKey.generate(NOW - timedelta(days=1))
    encryption = encryption or EncryptionKey.generate()
    req = make_join_request(
        node_id=node_id,
        name=f"{node_id} customs",
        role=role,
        country=country,
        region=region,
        endpoints=[f"{node_id.lower()}.example:7443"],
        upstreams=[],
        signing=signing,
        encryption=encryption,
        csr_pem=make_csr(node_id, generate_tls_key()),
        now=NOW,
    )
    return Joiner(signing, encryption, req)


KE = joiner("KE", country="KE")
MBA = joiner("KE-MBA", "port", "KE")
TZ = joiner("TZ", country="TZ")
HUB = joiner("RINEX-ESA", "regional")


@pytest.fixture
def root(tmp_path: Path) -> RootStore:
    store = RootStore.init(tmp_path / "root", "gcn-wco", NOW, write=write_file)
    for j in (KE, MBA, TZ, HUB):
        store.admit(j.request, NOW)
    store.add_bilateral("KE", "VN")
    return store


def follower(root: RootStore) -> TrustedDirectory:
    """A node that pinned the root key and accepted version 1."""
    trust = TrustedDirectory(root.root_public_keys())
    trust.update(root.publish(NOW), NOW)
    return trust


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_private_files_for_the_root_alone(tmp_path: Path) -> None:
    store = RootStore.init(tmp_path / "root", "gcn-wco", NOW, write=write_file)
    (key,) = store.root_public_keys()
    assert mode(store.path) == 0o700
    assert mode(store.path / "root-signing") == 0o700
    assert mode(store.path / "root-signing" / f"{key.key_id}.pem") == 0o600
    assert mode(store.path / "ca.key") == 0o600
    assert store.ca_certificate().startswith(b"-----BEGIN CERTIFICATE-----")
    assert store.latest() is None


def test_init_refuses_an_existing_root(root: RootStore) -> None:
    with pytest.raises(RootError, match="is not empty"):
        RootStore.init(root.path, "gcn-wco", NOW, write=write_file)


def test_open_refuses_a_directory_without_a_root(tmp_path: Path) -> None:
    with pytest.raises(RootError, match="no federation root"):
        RootStore.open(tmp_path, write=write_file)


def test_admit_publish_and_follow(root: RootStore) -> None:
    cert = root.admit(MBA.request, NOW)  # re-admission with the same keys: a new certificate
    trust = follower(root)
    directory = trust.current
    assert directory is not None
    assert (directory.federation, directory.version) == ("gcn-wco", 1)
    assert [n.id for n in directory.nodes] == ["KE", "KE-MBA", "RINEX-ESA", "TZ"]
    audiences = {a.name: (a.holder, list(a.members)) for a in directory.audiences}
    assert audiences["national:KE"] == ("KE", ["KE", "KE-MBA"])
    assert audiences["bilateral:KE+VN"] == ("KE", ["KE", "KE-MBA"])
    assert audiences["region:ESA"] == ("RINEX-ESA", ["KE", "KE-MBA", "RINEX-ESA", "TZ"])
    assert node_id_from_certificate(cert, directory.ca_certificate, NOW) == "KE-MBA"
    ring = signing_keyring(directory)
    assert ring.verify("KE-MBA", MBA.signing.key_id, MESSAGE, MBA.signing.sign(MESSAGE), NOW)


def test_the_state_survives_reopening(root: RootStore) -> None:
    published = root.publish(NOW)
    reopened = RootStore.open(root.path, write=write_file)
    assert reopened.latest() == published
    assert reopened.nodes() == root.nodes()
    assert reopened.root_public_keys() == root.root_public_keys()
    assert reopened.publish(LATER).signatures[0].key_id == published.signatures[0].key_id


def other_keys_for_ke() -> pb.JoinRequest:
    return joiner("KE", country="KE").request


def second_national_for_ke() -> pb.JoinRequest:
    return joiner("KE-HQ", country="KE").request


def second_hub_for_esa() -> pb.JoinRequest:
    return joiner("RINEX-ESA2", "regional").request


def tampered_request() -> pb.JoinRequest:
    req = joiner("VN", country="VN").request
    req.name = "changed after signing"
    return req


ADMIT_REFUSED = [
    pytest.param(
        other_keys_for_ke, RootError, "node KE is already admitted with other keys", id="same-id-other-keys"
    ),
    pytest.param(
        second_national_for_ke, RootError, "KE already has a national node (KE)", id="second-national"
    ),
    pytest.param(second_hub_for_esa, RootError, "region ESA already has a hub (RINEX-ESA)", id="second-hub"),
    pytest.param(tampered_request, JoinError, "signature does not verify", id="tampered-request"),
]


@pytest.mark.parametrize(("make", "error", "reason"), ADMIT_REFUSED)
def test_admission_refusals(
    root: RootStore, make: Callable[[], pb.JoinRequest], error: type[Exception], reason: str
) -> None:
    with pytest.raises(error, match=re.escape(reason)):
        root.admit(make(), NOW)
    assert len(root.nodes()) == 4


def test_a_revoked_node_is_refused_by_its_peers(root: RootStore) -> None:
    trust = follower(root)
    revoked_at = NOW + timedelta(days=1)
    root.revoke("KE-MBA", revoked_at)
    directory = trust.update(root.publish(LATER), LATER)
    mba = find_node(directory, "KE-MBA")
    assert mba is not None and mba.status == pb.NODE_STATUS_REVOKED
    assert {a.name: list(a.members) for a in directory.audiences}["national:KE"] == ["KE"]
    ring = signing_keyring(directory)
    signature = MBA.signing.sign(MESSAGE)
    ring.verify("KE-MBA", MBA.signing.key_id, MESSAGE, signature, revoked_at - timedelta(seconds=1))
    with pytest.raises(SignatureError, match="not valid at"):
        ring.verify("KE-MBA", MBA.signing.key_id, MESSAGE, signature, revoked_at)


REVOKED_REFUSALS = [
    pytest.param(lambda r: r.revoke("KE-MBA", LATER), "node KE-MBA was revoked at", id="revoke-twice"),
    pytest.param(lambda r: r.admit(MBA.request, NOW), "never admitted again", id="readmit"),
    pytest.param(lambda r: r.update_keys("KE-MBA", [], NOW), "node KE-MBA was revoked", id="update-keys"),
    pytest.param(lambda r: r.revoke("VN", NOW), "no node VN", id="unknown-node"),
]


@pytest.mark.parametrize(("action", "reason"), REVOKED_REFUSALS)
def test_a_revoked_node_stays_revoked(
    root: RootStore, action: Callable[[RootStore], object], reason: str
) -> None:
    root.revoke("KE-MBA", NOW)
    with pytest.raises(RootError, match=reason):
        action(root)


def test_root_rotation_followed_by_a_node_that_held_version_1(root: RootStore) -> None:
    trust = follower(root)
    (old,) = root.root_public_keys()
    root.rotate_root(NOW + timedelta(days=1))
    (new,) = root.root_public_keys()

    v2 = root.publish(NOW + timedelta(days=1))
    assert sorted(s.key_id for s in v2.signatures) == sorted([old.key_id, new.key_id])
    assert [k.key_id for k in trust.update(v2, LATER).root_keys] == [new.key_id]

    v3 = root.publish(LATER)
    assert [s.key_id for s in v3.signatures] == [new.key_id]
    assert trust.update(v3, LATER).version == 3


def test_a_node_pinned_to_the_old_key_needs_the_rotation_version(root: RootStore) -> None:
    pinned_old = root.root_public_keys()
    root.rotate_root(NOW)
    root.publish(NOW)
    v2 = root.publish(NOW)
    with pytest.raises(DirectoryError, match="not signed by the federation root"):
        TrustedDirectory(pinned_old).update(v2, NOW)


def test_rotating_twice_before_publishing_still_links_the_versions(root: RootStore) -> None:
    trust = follower(root)
    root.rotate_root(NOW)
    root.rotate_root(NOW)
    assert trust.update(root.publish(NOW), NOW).version == 2


def test_a_node_key_rotation_keeps_the_old_window(root: RootStore) -> None:
    trust = follower(root)
    new = SigningKey.generate(LATER)
    old = directory_key(KE.signing.key_id, KE.signing.public_raw, KE.signing.not_before, LATER)
    root.update_keys("KE", [old, directory_key(new.key_id, new.public_raw, LATER)], LATER)
    ring = signing_keyring(trust.update(root.publish(LATER), LATER))
    ring.verify("KE", new.key_id, MESSAGE, new.sign(MESSAGE), LATER)
    ring.verify("KE", KE.signing.key_id, MESSAGE, KE.signing.sign(MESSAGE), NOW)
    with pytest.raises(SignatureError, match="not valid at"):
        ring.verify("KE", KE.signing.key_id, MESSAGE, KE.signing.sign(MESSAGE), LATER)


NEW_KEY = SigningKey.generate(LATER)
NEW_CURRENT = directory_key(NEW_KEY.key_id, NEW_KEY.public_raw, LATER)
KE_RETIRED = directory_key(KE.signing.key_id, KE.signing.public_raw, KE.signing.not_before, LATER)
KE_CURRENT = directory_key(KE.signing.key_id, KE.signing.public_raw, KE.signing.not_before)
KE_MOVED = directory_key(KE.signing.key_id, KE.signing.public_raw, NOW, LATER)

KEY_UPDATES_REFUSED = [
    pytest.param([NEW_CURRENT], "would be dropped", id="drops-the-old-key"),
    pytest.param([KE_CURRENT, NEW_CURRENT], "exactly one key must be current", id="two-current-keys"),
    pytest.param([KE_RETIRED], "exactly one key must be current", id="no-current-key"),
    pytest.param([KE_MOVED, NEW_CURRENT], "changes its public key or its not_before", id="moves-a-window"),
    pytest.param([KE_RETIRED, NEW_CURRENT, NEW_CURRENT], "listed twice", id="duplicate-key"),
    pytest.param([], "exactly one key must be current", id="empty"),
]


@pytest.mark.parametrize(("keys", "reason"), KEY_UPDATES_REFUSED)
def test_key_updates_that_would_break_verification_are_refused(
    root: RootStore, keys: list[pb.DirectoryKey], reason: str
) -> None:
    with pytest.raises(RootError, match=reason):
        root.update_keys("KE", keys, LATER)


BILATERAL_REFUSED = [
    pytest.param("KE", "XX", "two different ISO 3166-1", id="not-a-country"),
    pytest.param("KE", "KE", "two different ISO 3166-1", id="same-country"),
    pytest.param("VN", "KE", "bilateral KE+VN already exists, held by KE", id="reversed-pair"),
]


@pytest.mark.parametrize(("a", "b", "reason"), BILATERAL_REFUSED)
def test_bilateral_refusals(root: RootStore, a: str, b: str, reason: str) -> None:
    with pytest.raises(RootError, match=re.escape(reason)):
        root.add_bilateral(a, b)


def test_the_root_refuses_to_publish_what_nodes_would_refuse(root: RootStore) -> None:
    with pytest.raises(RootError, match=r"refusing to publish .* expired"):
        root.publish(NOW, valid_days=0)
    assert root.latest() is None
    assert root.publish(NOW).directory


def test_a_readable_ca_key_is_refused(root: RootStore) -> None:
    (root.path / "ca.key").chmod(0o644)
    with pytest.raises(RootError, match="readable by group or others"):
        root.admit(KE.request, NOW)
