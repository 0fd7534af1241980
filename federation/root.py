"""The federation root: its keys, its CA and the directory it publishes.

On disk, in one directory (mode 0700):

    root-signing/<key_id>.pem   Ed25519 root keys, PKCS8 PEM (0600), old ones kept
    ca.pem, ca.key              the federation CA (the key 0600)
    state.json                  federation name, versions, admitted nodes (the
                                `DirectoryNode` JSON mapping), bilateral pairs,
                                current root keys
    directory-<version>.pb      every published `SignedDirectory`, as bytes

Invariants:
- `state.json` is the commit point: it is replaced atomically, after the files
  it names are on disk, so an interrupted publish leaves the previous version
  as `latest()` and the next publish reuses the unseen version number;
- the root never publishes a directory its nodes would refuse: each new
  version is first checked with `TrustedDirectory` as a node holding the
  previous version would check it;
- a publish is signed by the current root keys and by the root keys of the
  previously published version, so after `rotate_root` the next version (which
  lists only the new key) carries old and new signatures, and the ones after it
  the new key's only;
- one node id, one set of keys: re-admitting a node with its current keys only
  re-issues its TLS certificate; a revoked node stays in the directory (its old
  envelopes keep verifying) and its id is never admitted again; a key once
  listed for a node stays listed, with its window unchanged;
- one active national node per country, one regional hub per region, one
  global hub, so every audience has exactly one holder.

One administrator process at a time: there is no lock.

Every file is written through the `WriteFile` the caller hands in (the CLI
passes `node.storage.files.write_file`: a temporary file with the final mode,
fsynced, renamed, the directory fsynced); this module only decides what goes
in which file.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from google.protobuf import json_format

from crypto.certs import create_ca, issue_node_certificate
from crypto.detached import signing_key_from_pem, signing_key_to_pem
from crypto.directory import (
    MAX_CLOCK_SKEW,
    TrustedDirectory,
    directory_key,
    from_timestamp,
    parse_directory,
    sign_directory,
    sign_timestamp,
    to_timestamp,
)
from crypto.errors import CryptoError
from crypto.keys import SigningKey, key_id_for
from federation.errors import RootError
from federation.join import is_country, verify_join_request
from federation.membership import derive_audiences
from gcn.v1 import directory_pb2 as pb

STATE_FILE = "state.json"
CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
ROOT_KEYS_DIR = "root-signing"
FEDERATION_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
DEFAULT_TIMESTAMP_MAX_AGE = timedelta(days=7)


@dataclass
class _State:
    federation: str
    next_version: int = 1
    latest_version: int = 0
    root_keys: list[pb.DirectoryKey] = field(default_factory=list)
    nodes: dict[str, pb.DirectoryNode] = field(default_factory=dict)
    bilateral: list[tuple[str, str]] = field(default_factory=list)
    # How old a node's freshest timestamp may be (0: no timestamps; roots made
    # before timestamps existed).
    timestamp_max_age_seconds: int = 0

    def to_json(self) -> str:
        doc = {
            "federation": self.federation,
            "next_version": self.next_version,
            "latest_version": self.latest_version,
            "timestamp_max_age_seconds": self.timestamp_max_age_seconds,
            "root_keys": [_to_dict(k) for k in self.root_keys],
            "nodes": [_to_dict(self.nodes[n]) for n in sorted(self.nodes)],
            "bilateral": [list(p) for p in self.bilateral],
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> _State:
        doc = json.loads(text)
        nodes = [json_format.ParseDict(n, pb.DirectoryNode()) for n in doc["nodes"]]
        return cls(
            federation=doc["federation"],
            next_version=int(doc["next_version"]),
            latest_version=int(doc["latest_version"]),
            root_keys=[json_format.ParseDict(k, pb.DirectoryKey()) for k in doc["root_keys"]],
            nodes={n.id: n for n in nodes},
            bilateral=[(a, b) for a, b in doc["bilateral"]],
            timestamp_max_age_seconds=int(doc.get("timestamp_max_age_seconds", 0)),
        )


def _to_dict(message: pb.DirectoryKey | pb.DirectoryNode) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


class WriteFile(Protocol):
    """Write `data` to `path` atomically and durably, created with `mode`;
    with `overwrite=False`, refuse (FileExistsError) if `path` exists."""

    def __call__(self, path: Path, data: bytes, *, mode: int, overwrite: bool) -> None: ...


def _read_private(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as e:
        raise RootError(f"private key file {path} does not exist") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise RootError(
            f"{path} is readable by group or others (mode {stat.S_IMODE(mode):o}); it must be 0600"
        )
    return path.read_bytes()


class RootStore:
    """The federation root's on-disk state and the operations of its administrator."""

    def __init__(self, path: Path, state: _State, write: WriteFile) -> None:
        """Use `init` or `open`."""
        self.path = path
        self._state = state
        self._write = write

    # -- creating and opening ------------------------------------------------

    @classmethod
    def init(
        cls,
        path: Path,
        federation: str,
        now: datetime,
        timestamp_max_age: timedelta = DEFAULT_TIMESTAMP_MAX_AGE,
        *,
        write: WriteFile,
    ) -> RootStore:
        """Create a root in `path` (absent or empty): a root key, a CA, no nodes.
        Nodes will need a timestamp (`timestamp`) no older than `timestamp_max_age`
        (zero: no timestamps; a frozen view then lasts until the directory expires)."""
        if not FEDERATION_RE.fullmatch(federation):
            raise RootError(f"federation name {federation!r} must be 2-63 lower-case letters, digits or '-'")
        if path.exists() and any(path.iterdir()):
            raise RootError(f"{path} is not empty; refusing to create a federation root over it")
        (path / ROOT_KEYS_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
        os.chmod(path / ROOT_KEYS_DIR, 0o700)
        ca_cert, ca_key = create_ca(federation, now)
        store = cls(
            path, _State(federation, timestamp_max_age_seconds=int(timestamp_max_age.total_seconds())), write
        )
        store._write_new(path / CA_KEY_FILE, ca_key, 0o600)
        store._write_new(path / CA_CERT_FILE, ca_cert, 0o644)
        store._add_root_key(now)
        return store

    @classmethod
    def open(cls, path: Path, *, write: WriteFile) -> RootStore:
        try:
            text = (path / STATE_FILE).read_text()
        except FileNotFoundError as e:
            raise RootError(f"no federation root in {path} (run `gcn root init`)") from e
        try:
            state = _State.from_json(text)
        except (ValueError, KeyError, TypeError, json_format.ParseError) as e:
            raise RootError(f"{path / STATE_FILE} is not a valid root state: {e}") from e
        return cls(path, state, write)

    # -- reading ---------------------------------------------------------------

    @property
    def federation(self) -> str:
        return self._state.federation

    def root_public_keys(self) -> list[pb.DirectoryKey]:
        """The current root keys: what a new node pins."""
        return [_copy_key(k) for k in self._state.root_keys]

    def ca_certificate(self) -> bytes:
        return (self.path / CA_CERT_FILE).read_bytes()

    def nodes(self) -> list[pb.DirectoryNode]:
        return [_copy_node(self._state.nodes[n]) for n in sorted(self._state.nodes)]

    def latest(self) -> pb.SignedDirectory | None:
        """The last published directory, or None before the first publish."""
        if self._state.latest_version == 0:
            return None
        data = self._directory_path(self._state.latest_version).read_bytes()
        return pb.SignedDirectory.FromString(data)

    # -- admitting and changing nodes ------------------------------------------

    def admit(self, request: pb.JoinRequest, now: datetime) -> bytes:
        """Admit the requesting node (ACTIVE) and return its TLS certificate PEM."""
        verify_join_request(request, now)
        existing = self._state.nodes.get(request.node_id)
        if existing is not None:
            _check_readmission(existing, request)
        else:
            self._check_one_holder(request)
        try:
            cert = issue_node_certificate(
                self.ca_certificate(), self._ca_key(), request.csr_pem, request.node_id, now
            )
        except CryptoError as e:
            raise RootError(f"cannot issue a certificate to {request.node_id}: {e}") from e
        if existing is None:
            self._state.nodes[request.node_id] = _node_from_request(request)
            self._save()
        return cert

    def update_keys(self, node_id: str, signing_keys: Sequence[pb.DirectoryKey], now: datetime) -> None:
        """Replace `node_id`'s signing keys with its full list (current and retired)."""
        node = self._active_node(node_id)
        problems = _key_history_problems(node, signing_keys, now)
        if problems:
            raise RootError(f"signing keys of {node_id} refused: " + "; ".join(problems))
        del node.signing_keys[:]
        node.signing_keys.extend(signing_keys)
        self._save()

    def revoke(self, node_id: str, now: datetime, compromised_since: datetime | None = None) -> None:
        """Revoke `node_id` from `now`: envelopes it signs after `now` are refused.
        With `compromised_since` (its keys stolen earlier), everything it signed
        counts only with custody from before that time."""
        if compromised_since is not None and compromised_since > now:
            raise RootError("compromised_since must not be after the revocation")
        node = self._active_node(node_id)
        node.status = pb.NODE_STATUS_REVOKED
        node.revoked_at.CopyFrom(to_timestamp(now))
        if compromised_since is not None:
            node.compromised_since.CopyFrom(to_timestamp(compromised_since))
        self._save()

    def add_bilateral(self, a: str, b: str) -> None:
        """Share `bilateral:A+B`, held by A's national node."""
        if not (is_country(a) and is_country(b)) or a == b:
            raise RootError(f"a bilateral pair needs two different ISO 3166-1 alpha-2 codes, not {a!r} {b!r}")
        for pair in self._state.bilateral:
            if pair == (a, b):
                return
            if pair == (b, a):
                raise RootError(f"bilateral {b}+{a} already exists, held by {b}'s national node")
        self._state.bilateral.append((a, b))
        self._save()

    # -- root keys and publishing ----------------------------------------------

    def rotate_root(self, now: datetime) -> None:
        """Make a new root key the only current one. The next publish lists only
        it and is signed by it and by the keys nodes trust until then."""
        self._state.root_keys = []
        self._add_root_key(now)

    def publish(self, now: datetime, valid_days: int = 30) -> pb.SignedDirectory:
        """Sign and write the next directory version, and return it (with a fresh timestamp)."""
        latest = self.latest()
        directory = self._next_directory(now, valid_days)
        signed = sign_directory(directory, self._signers(latest))
        signed.timestamp.CopyFrom(sign_timestamp(signed, directory, now, self._signers(latest)))
        self._check_nodes_accept(signed, latest, now)
        self._replace(self._directory_path(directory.version), signed.SerializeToString(), 0o644)
        self._state.latest_version = directory.version
        self._state.next_version = directory.version + 1
        self._save()
        return signed

    def timestamp(self, now: datetime) -> pb.SignedTimestamp:
        """ "The last published version is the newest", signed now: run it more
        often than `timestamp_max_age` (e.g. daily from cron) and hand it to any
        node (`gcn directory import`); it flows down the tree like a directory."""
        latest = self.latest()
        if latest is None:
            raise RootError("nothing published yet: run `gcn root publish` first")
        return sign_timestamp(latest, parse_directory(latest), now, self._signers(latest))

    # -- internals -------------------------------------------------------------

    def _next_directory(self, now: datetime, valid_days: int) -> pb.Directory:
        nodes = self.nodes()
        return pb.Directory(
            federation=self._state.federation,
            version=self._state.next_version,
            issued_at=to_timestamp(now),
            expires_at=to_timestamp(now + timedelta(days=valid_days)),
            root_keys=self._state.root_keys,
            nodes=nodes,
            audiences=derive_audiences(nodes, self._state.bilateral),
            ca_certificate=self.ca_certificate(),
            timestamp_max_age_seconds=self._state.timestamp_max_age_seconds,
        )

    def _signers(self, latest: pb.SignedDirectory | None) -> list[SigningKey]:
        """The current root keys, and the keys nodes holding `latest` trust."""
        keys = {k.key_id: k for k in self._state.root_keys}
        if latest is not None:
            for k in parse_directory(latest).root_keys:
                keys.setdefault(k.key_id, k)
        return [self._load_root_key(k) for k in keys.values()]

    def _check_nodes_accept(
        self, signed: pb.SignedDirectory, latest: pb.SignedDirectory | None, now: datetime
    ) -> None:
        try:
            TrustedDirectory(self._state.root_keys, held=latest).update(signed, now)
        except CryptoError as e:
            raise RootError(f"refusing to publish a directory nodes would refuse: {e}") from e

    def _add_root_key(self, now: datetime) -> None:
        key = SigningKey.generate(now)
        self._write_new(self.path / ROOT_KEYS_DIR / f"{key.key_id}.pem", signing_key_to_pem(key), 0o600)
        self._state.root_keys.append(directory_key(key.key_id, key.public_raw, key.not_before))
        self._save()

    def _load_root_key(self, key: pb.DirectoryKey) -> SigningKey:
        pem = _read_private(self.path / ROOT_KEYS_DIR / f"{key.key_id}.pem")
        try:
            loaded = signing_key_from_pem(pem, from_timestamp(key.not_before))
        except CryptoError as e:
            raise RootError(f"root key {key.key_id} does not load: {e}") from e
        if loaded.key_id != key.key_id:
            raise RootError(f"root key file {key.key_id}.pem holds key {loaded.key_id}")
        return loaded

    def _ca_key(self) -> bytes:
        return _read_private(self.path / CA_KEY_FILE)

    def _directory_path(self, version: int) -> Path:
        return self.path / f"directory-{version}.pb"

    def _save(self) -> None:
        self._replace(self.path / STATE_FILE, self._state.to_json().encode(), 0o600)

    def _write_new(self, path: Path, data: bytes, mode: int) -> None:
        """Create `path` (never overwrite an existing one)."""
        self._write(path, data, mode=mode, overwrite=False)

    def _replace(self, path: Path, data: bytes, mode: int) -> None:
        self._write(path, data, mode=mode, overwrite=True)

    def _active_node(self, node_id: str) -> pb.DirectoryNode:
        node = self._state.nodes.get(node_id)
        if node is None:
            raise RootError(f"no node {node_id} in federation {self._state.federation}")
        if node.status == pb.NODE_STATUS_REVOKED:
            raise RootError(f"node {node_id} was revoked at {from_timestamp(node.revoked_at).isoformat()}")
        return node

    def _check_one_holder(self, req: pb.JoinRequest) -> None:
        """One active national node per country, hub per region, global hub."""
        for node in self._state.nodes.values():
            if node.status != pb.NODE_STATUS_ACTIVE or node.role != req.role:
                continue
            if req.role == "national" and node.country == req.country:
                raise RootError(f"{req.country} already has a national node ({node.id})")
            if req.role == "regional" and node.region == req.region:
                raise RootError(f"region {req.region} already has a hub ({node.id})")
            if req.role == "global":
                raise RootError(f"the federation already has a global hub ({node.id})")


def _copy_key(key: pb.DirectoryKey) -> pb.DirectoryKey:
    out = pb.DirectoryKey()
    out.CopyFrom(key)
    return out


def _copy_node(node: pb.DirectoryNode) -> pb.DirectoryNode:
    out = pb.DirectoryNode()
    out.CopyFrom(node)
    return out


def _node_from_request(req: pb.JoinRequest) -> pb.DirectoryNode:
    return pb.DirectoryNode(
        id=req.node_id,
        name=req.name,
        role=req.role,
        country=req.country,
        region=req.region,
        endpoints=req.endpoints,
        signing_keys=[req.signing_key],
        encryption_key=req.encryption_key,
        status=pb.NODE_STATUS_ACTIVE,
        upstreams=req.upstreams,
    )


def _check_readmission(existing: pb.DirectoryNode, req: pb.JoinRequest) -> None:
    """Re-admission is allowed only with the node's current keys (to re-issue its certificate)."""
    if existing.status == pb.NODE_STATUS_REVOKED:
        at = from_timestamp(existing.revoked_at).isoformat()
        raise RootError(f"node {req.node_id} was revoked at {at}; a revoked node id is never admitted again")
    current = {k.key_id for k in existing.signing_keys if not k.HasField("not_after")}
    if req.signing_key.key_id not in current or req.encryption_key.key_id != existing.encryption_key.key_id:
        raise RootError(
            f"node {req.node_id} is already admitted with other keys (signing {', '.join(sorted(current))}, "
            f"encryption {existing.encryption_key.key_id}); rotate keys with update_keys, or revoke it"
        )


def _key_history_problems(
    node: pb.DirectoryNode, keys: Sequence[pb.DirectoryKey], now: datetime
) -> list[str]:
    problems = [p for k in keys for p in _new_key_problems(k, now)]
    ids = [k.key_id for k in keys]
    if len(set(ids)) != len(ids):
        problems.append("a key id is listed twice")
    if sum(1 for k in keys if not k.HasField("not_after")) != 1:
        problems.append("exactly one key must be current (without not_after)")
    by_id = {k.key_id: k for k in keys}
    for old in node.signing_keys:
        problems += _kept_key_problems(old, by_id.get(old.key_id))
    return problems


def _new_key_problems(key: pb.DirectoryKey, now: datetime) -> list[str]:
    if len(key.public_key) != 32 or key.key_id != key_id_for(key.public_key):
        return [f"key {key.key_id!r} is not 32 raw bytes matching its key id"]
    try:
        start = from_timestamp(key.not_before)
        end = from_timestamp(key.not_after) if key.HasField("not_after") else None
    except (ValueError, OverflowError):
        return [f"key {key.key_id} has an invalid validity window"]
    if start > now + MAX_CLOCK_SKEW:
        return [f"key {key.key_id} starts in the future"]
    if end is not None and end <= start:
        return [f"key {key.key_id} ends before it starts"]
    return []


def _kept_key_problems(old: pb.DirectoryKey, new: pb.DirectoryKey | None) -> list[str]:
    """A listed key stays listed: same public key, same start, and an end once set stays."""
    if new is None:
        return [f"key {old.key_id} would be dropped (envelopes it signed would stop verifying)"]
    if new.public_key != old.public_key or new.not_before != old.not_before:
        return [f"key {old.key_id} changes its public key or its not_before"]
    if old.HasField("not_after") and new.not_after != old.not_after:
        return [f"key {old.key_id} changes its not_after"]
    return []
