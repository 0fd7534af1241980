"""The root-signed federation directory: signing it, and deciding whether to
trust a new version (after python-tuf's `TrustedMetadataSet`; no I/O here).

A `SignedDirectory` carries the serialized `Directory` as bytes, never
re-serialized, and one Ed25519 `RootSignature` per root key over
`SIGNING_DOMAIN + bytes`.

Invariants `TrustedDirectory` keeps (each broken rule raises `DirectoryError`
with a sentence naming it):
- the trusted root keys are the held directory's `root_keys`, or the pinned
  keys while nothing is held; pinned keys matter only for the first directory;
- a new directory verifies under at least one trusted root key, usable at the
  directory's `issued_at` (a key is usable when `not_before <= issued_at` and,
  if it has a `not_after`, `issued_at < not_after`). Signature key ids are
  unauthenticated hints: they only pick which trusted key to try;
- a directory whose `root_keys` differ from the trusted ones (root rotation)
  must also verify under its own keys: every key it introduces signs it (new
  root keys sign the directory that introduces them), and so does at least one
  of the keys it keeps or introduces. A node that held version n thus accepts
  n+1 signed by old and new keys, and n+2 signed by the new keys only;
- versions only go up (no rollback, no replay of the held version); the
  directory is not expired at `now`, not issued more than 5 minutes after
  `now`, belongs to the held directory's federation, and lists each node once
  with key ids that match their public keys;
- `now` is passed in by the caller, fixed once per update.

A held directory given to the constructor is one this node accepted before (it
comes from the node's own storage, written only after `update` accepted it).
As python-tuf does with its local root, it is re-verified under its own root
keys only: after a root rotation the pinned keys no longer sign anything, and
an attacker able to rewrite the node's storage could rewrite the pin too. An
expired held directory is kept (it is still the best knowledge the node has);
expiry matters for the versions `update` accepts.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from crypto.audience import MemberKey
from crypto.detached import verify_detached
from crypto.errors import DirectoryError
from crypto.keys import SigningKey, key_id_for
from crypto.signing import KeyRing, PublicSigningKey
from gcn.v1 import directory_pb2 as pb

SIGNING_DOMAIN = b"gcn-directory-v1\x00"
TIMESTAMP_DOMAIN = b"gcn-timestamp-v1\x00"
MAX_CLOCK_SKEW = timedelta(minutes=5)
_M = TypeVar("_M", pb.Directory, pb.SignedDirectory, pb.DirectoryKey, pb.SignedTimestamp)


def to_timestamp(at: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


def from_timestamp(ts: Timestamp) -> datetime:
    at: datetime = ts.ToDatetime(tzinfo=UTC)
    return at


def directory_key(
    key_id: str, public_raw: bytes, not_before: datetime, not_after: datetime | None = None
) -> pb.DirectoryKey:
    key = pb.DirectoryKey(key_id=key_id, public_key=public_raw, not_before=to_timestamp(not_before))
    if not_after is not None:
        key.not_after.CopyFrom(to_timestamp(not_after))
    return key


def key_usable(key: pb.DirectoryKey, at: datetime) -> bool:
    """True if `key` may have made a signature at `at`."""
    if from_timestamp(key.not_before) > at:
        return False
    return not key.HasField("not_after") or at < from_timestamp(key.not_after)


def signed_bytes(directory_bytes: bytes) -> bytes:
    return SIGNING_DOMAIN + directory_bytes


def sign_directory(directory: pb.Directory, signers: Sequence[SigningKey]) -> pb.SignedDirectory:
    """Serialize `directory` once and sign those bytes with every signer."""
    data = directory.SerializeToString(deterministic=True)
    signed = pb.SignedDirectory(directory=data)
    for signer in signers:
        signed.signatures.add(key_id=signer.key_id, signature=signer.sign(signed_bytes(data)))
    return signed


def sign_timestamp(
    signed: pb.SignedDirectory, directory: pb.Directory, at: datetime, signers: Sequence[SigningKey]
) -> pb.SignedTimestamp:
    """ "`directory` (inside `signed`) is the newest version", as of `at`."""
    stamp = pb.DirectoryTimestamp(
        federation=directory.federation,
        version=directory.version,
        directory_sha256=hashlib.sha256(signed.directory).digest(),
        issued_at=to_timestamp(at),
    )
    data = stamp.SerializeToString(deterministic=True)
    out = pb.SignedTimestamp(timestamp=data)
    for signer in signers:
        out.signatures.add(key_id=signer.key_id, signature=signer.sign(TIMESTAMP_DOMAIN + data))
    return out


@dataclass(frozen=True)
class Freshness:
    """Whether a node's view of the federation may still be trusted for new
    envelopes: `until` is the horizon (envelopes created after it are refused
    while the node holds nothing fresher); `stale` says why not, or is empty."""

    until: datetime
    stale: str

    @property
    def fresh(self) -> bool:
        return not self.stale


def find_node(directory: pb.Directory, node_id: str) -> pb.DirectoryNode | None:
    for node in directory.nodes:
        if node.id == node_id:
            return node
    return None


def _window_end(node: pb.DirectoryNode, key: pb.DirectoryKey) -> datetime | None:
    """A key's `not_after`, capped for a revoked node at `revoked_at`, or at
    `compromised_since` when its keys were stolen earlier (a revoked node
    without `revoked_at` counts as revoked since the epoch)."""
    end = from_timestamp(key.not_after) if key.HasField("not_after") else None
    if node.status != pb.NODE_STATUS_REVOKED:
        return end
    cut = from_timestamp(node.revoked_at)
    if node.HasField("compromised_since"):
        cut = min(cut, from_timestamp(node.compromised_since))
    return cut if end is None else min(end, cut)


def signing_keyring(directory: pb.Directory) -> KeyRing:
    """Every node's signing keys with their windows; a revoked node's keys stop
    at `revoked_at`, so what it signed before still verifies and nothing after."""
    return KeyRing(
        PublicSigningKey(
            node.id, key.key_id, key.public_key, from_timestamp(key.not_before), _window_end(node, key)
        )
        for node in directory.nodes
        for key in node.signing_keys
    )


def encryption_keys(directory: pb.Directory) -> dict[str, MemberKey]:
    """The X25519 keys of the active nodes, by node id (audience keys are wrapped to them)."""
    return {
        node.id: MemberKey(node.encryption_key.key_id, node.encryption_key.public_key)
        for node in directory.nodes
        if node.status == pb.NODE_STATUS_ACTIVE
    }


def _valid_timestamp(ts: Timestamp) -> bool:
    try:
        from_timestamp(ts)
    except (ValueError, OverflowError):
        return False
    return True


def _key_problems(owner: str, key: pb.DirectoryKey) -> list[str]:
    problems = []
    if key.key_id != key_id_for(key.public_key):
        problems.append(f"{owner} key {key.key_id!r} does not match its public key")
    stamps = [key.not_before, *([key.not_after] if key.HasField("not_after") else [])]
    if not all(_valid_timestamp(ts) for ts in stamps):
        problems.append(f"{owner} key {key.key_id!r} has an invalid validity window")
    return problems


def _structure_problems(d: pb.Directory) -> list[str]:
    problems = []
    if d.version < 1:
        problems.append("version must be >= 1")
    if not d.federation:
        problems.append("federation is empty")
    for name in ("issued_at", "expires_at"):
        if not d.HasField(name) or not _valid_timestamp(getattr(d, name)):
            problems.append(f"{name} is missing or invalid")
    if not d.root_keys:
        problems.append("it lists no root keys")
    for key in d.root_keys:
        problems += _key_problems("root", key)
    for node in d.nodes:
        for key in [*node.signing_keys, node.encryption_key]:
            problems += _key_problems(f"node {node.id}", key)
        if node.status == pb.NODE_STATUS_REVOKED and not _valid_timestamp(node.revoked_at):
            problems.append(f"node {node.id} has an invalid revoked_at")
    return problems


def parse_directory(signed: pb.SignedDirectory) -> pb.Directory:
    """The directory inside `signed`, checked for structure (not for trust)."""
    directory = pb.Directory()
    try:
        directory.ParseFromString(signed.directory)
    except DecodeError as e:
        raise DirectoryError(f"directory bytes do not parse: {e}") from e
    problems = _structure_problems(directory)
    if problems:
        raise DirectoryError(f"directory version {directory.version} is malformed: " + "; ".join(problems))
    return directory


def _verified_signers(signed: pb.SignedDirectory, keys: Iterable[pb.DirectoryKey], at: datetime) -> list[str]:
    """Ids of the `keys` usable at `at` that made a valid signature of `signed`."""
    by_id = {k.key_id: k for k in keys}
    message = signed_bytes(signed.directory)
    found = []
    for sig in signed.signatures:
        key = by_id.get(sig.key_id)
        if key is None or not key_usable(key, at):
            continue
        if verify_detached(key.public_key, message, sig.signature):
            found.append(key.key_id)
    return found


def _key_set(keys: Iterable[pb.DirectoryKey]) -> frozenset[bytes]:
    return frozenset(k.SerializeToString(deterministic=True) for k in keys)


def _ids(ids: Iterable[str]) -> str:
    return ", ".join(sorted(set(ids))) or "none"


def _rotation_problem(
    signed: pb.SignedDirectory, directory: pb.Directory, trusted: Sequence[pb.DirectoryKey], at: datetime
) -> str | None:
    """If `directory` changes the root keys: every key it introduces, and at
    least one of its keys, must have signed it."""
    if _key_set(directory.root_keys) == _key_set(trusted):
        return None
    own = set(_verified_signers(signed, directory.root_keys, at))
    missing = {k.key_id for k in directory.root_keys} - {k.key_id for k in trusted} - own
    if missing:
        return f"new root keys must sign the directory that introduces them (unsigned: {_ids(missing)})"
    if not own:
        return "none of its own root keys signed it"
    return None


class TrustedDirectory:
    """Holds the directory a node trusts. No I/O.

    `current` and `current_signed` return copies: the trusted state changes
    only through `update`.
    """

    def __init__(
        self,
        pinned_root_keys: Sequence[pb.DirectoryKey],
        held: pb.SignedDirectory | None = None,
        now: datetime | None = None,
    ) -> None:
        if not pinned_root_keys:
            raise DirectoryError("no pinned root keys: a node must pin the federation root's public key")
        self._pinned = [_copy(k) for k in pinned_root_keys]
        self._signed: pb.SignedDirectory | None = None
        self._current: pb.Directory | None = None
        self._stamp: pb.DirectoryTimestamp | None = None
        self._signed_stamp: pb.SignedTimestamp | None = None
        if held is not None:
            self._load_held(held, now)
            if held.HasField("timestamp") and now is not None:
                # an old or bad timestamp beside a held directory: as if none
                with contextlib.suppress(DirectoryError):
                    self.update_timestamp(held.timestamp, now)

    @property
    def current(self) -> pb.Directory | None:
        return None if self._current is None else _copy(self._current)

    @property
    def current_signed(self) -> pb.SignedDirectory | None:
        return None if self._signed is None else _copy(self._signed)

    @property
    def trusted_root_keys(self) -> list[pb.DirectoryKey]:
        keys = self._pinned if self._current is None else self._current.root_keys
        return [_copy(k) for k in keys]

    @property
    def timestamp(self) -> pb.SignedTimestamp | None:
        return None if self._signed_stamp is None else _copy(self._signed_stamp)

    def update(self, signed: pb.SignedDirectory, now: datetime) -> pb.Directory:
        """Accept `signed` as the new trusted directory, or raise `DirectoryError`."""
        directory = parse_directory(signed)
        self._check_signatures(signed, directory)
        self._check_freshness(directory, now)
        _check_unique_nodes(directory)
        bare = pb.SignedDirectory(directory=signed.directory, signatures=signed.signatures)
        self._signed, self._current = bare, directory
        if signed.HasField("timestamp"):
            with contextlib.suppress(DirectoryError):
                self.update_timestamp(signed.timestamp, now)
        return _copy(directory)

    def update_timestamp(self, signed: pb.SignedTimestamp, now: datetime) -> bool:
        """Take a newer root-signed timestamp; False if it is not newer than the
        one held. Raises `DirectoryError` for one that does not verify."""
        stamp = pb.DirectoryTimestamp()
        try:
            stamp.ParseFromString(signed.timestamp)
        except DecodeError as e:
            raise DirectoryError(f"timestamp bytes do not parse: {e}") from e
        if not _valid_timestamp(stamp.issued_at):
            raise DirectoryError("timestamp has an invalid issued_at")
        issued_at = from_timestamp(stamp.issued_at)
        held = self._current
        if held is None:
            raise DirectoryError("no directory held: a timestamp alone proves nothing")
        if stamp.federation != held.federation:
            raise DirectoryError(f"timestamp is of federation {stamp.federation!r}, not {held.federation!r}")
        if issued_at > now + MAX_CLOCK_SKEW:
            raise DirectoryError(
                f"timestamp issued at {issued_at.isoformat()}, after now ({now.isoformat()})"
            )
        by_id = {k.key_id: k for k in self.trusted_root_keys}
        good = [
            sig.key_id
            for sig in signed.signatures
            if sig.key_id in by_id
            and key_usable(by_id[sig.key_id], issued_at)
            and verify_detached(
                by_id[sig.key_id].public_key, TIMESTAMP_DOMAIN + signed.timestamp, sig.signature
            )
        ]
        if not good:
            raise DirectoryError("timestamp not signed by a trusted root key")
        same = stamp.version == held.version and self._signed is not None
        if same and stamp.directory_sha256 != hashlib.sha256(self._signed.directory).digest():  # type: ignore[union-attr]
            raise DirectoryError(f"timestamp names another directory as version {stamp.version}")
        if stamp.version < held.version:
            return False  # about an older version: the directory we hold is newer news
        if self._stamp is not None and from_timestamp(self._stamp.issued_at) >= issued_at:
            return False
        self._stamp, self._signed_stamp = stamp, _copy(signed)
        return True

    def freshness(self, now: datetime) -> Freshness:
        """How long the held directory may be trusted for new envelopes."""
        d = self._current
        if d is None:
            return Freshness(now, "no directory held")
        expires = from_timestamp(d.expires_at)
        until = expires
        if d.timestamp_max_age_seconds:
            vouched = from_timestamp(d.issued_at)
            if self._stamp is not None and self._stamp.version >= d.version:
                vouched = max(vouched, from_timestamp(self._stamp.issued_at))
            until = min(expires, vouched + timedelta(seconds=d.timestamp_max_age_seconds))
        if self._stamp is not None and self._stamp.version > d.version:
            return Freshness(
                min(until, from_timestamp(self._stamp.issued_at)),
                f"directory version {self._stamp.version} exists (timestamp of "
                f"{from_timestamp(self._stamp.issued_at).isoformat()}); this node holds version {d.version}",
            )
        if now >= until:
            what = "expired" if until == expires else "has had no fresh timestamp since"
            return Freshness(until, f"directory version {d.version} {what} {until.isoformat()}")
        return Freshness(until, "")

    def _load_held(self, held: pb.SignedDirectory, now: datetime | None) -> None:
        directory = parse_directory(held)
        issued_at = from_timestamp(directory.issued_at)
        if not _verified_signers(held, directory.root_keys, issued_at):
            raise DirectoryError(
                f"held directory version {directory.version} is not signed by its own root keys"
            )
        if now is not None and issued_at > now + MAX_CLOCK_SKEW:
            raise DirectoryError(
                f"held directory version {directory.version} was issued at {issued_at.isoformat()}, "
                f"after now ({now.isoformat()}): is the clock wrong?"
            )
        _check_unique_nodes(directory)
        self._signed, self._current = _copy(held), directory

    def _check_signatures(self, signed: pb.SignedDirectory, directory: pb.Directory) -> None:
        trusted = self.trusted_root_keys
        issued_at = from_timestamp(directory.issued_at)
        if not _verified_signers(signed, trusted, issued_at):
            raise DirectoryError(
                f"directory version {directory.version} not signed by the federation root "
                f"(signed by {_ids(s.key_id for s in signed.signatures)}; "
                f"trusted: {_ids(k.key_id for k in trusted)})"
            )
        problem = _rotation_problem(signed, directory, trusted, issued_at)
        if problem:
            raise DirectoryError(
                f"directory version {directory.version} changes the root keys to "
                f"{_ids(k.key_id for k in directory.root_keys)}, but {problem}"
            )

    def _check_freshness(self, directory: pb.Directory, now: datetime) -> None:
        version = directory.version
        held = self._current
        if held is not None and version < held.version:
            raise DirectoryError(f"directory version {version} older than held version {held.version}")
        if held is not None and version == held.version:
            raise DirectoryError(f"directory version {version} is the version already held")
        expires_at = from_timestamp(directory.expires_at)
        if expires_at <= now:
            raise DirectoryError(f"directory version {version} expired at {expires_at.isoformat()}")
        issued_at = from_timestamp(directory.issued_at)
        if issued_at > now + MAX_CLOCK_SKEW:
            raise DirectoryError(
                f"directory version {version} issued at {issued_at.isoformat()}, more than "
                f"5 minutes after now ({now.isoformat()})"
            )
        if held is not None and directory.federation != held.federation:
            raise DirectoryError(
                f"directory version {version} is of federation {directory.federation!r}, "
                f"not {held.federation!r}"
            )


def _check_unique_nodes(directory: pb.Directory) -> None:
    twice = sorted(node_id for node_id, n in Counter(n.id for n in directory.nodes).items() if n > 1)
    if twice:
        raise DirectoryError(
            f"directory version {directory.version} lists node {', '.join(twice)} more than once"
        )


def _copy(message: _M) -> _M:
    out = type(message)()
    out.CopyFrom(message)
    return out
