"""The node's place in the federation: the root keys it pinned, the directory
it holds, the trust derived from it, and the duties of a key holder.

On disk, under `<data_dir>/trust/` (`node.storage.trust_files`): the pinned
root public keys and the newest verified signed directory. A directory is
accepted only through `crypto.directory.TrustedDirectory` (newer, unexpired,
signed by the trusted root), then written atomically.

`FederationState` is itself a `Trust`: the receiver and the sync source ask it,
and it answers from the current directory, or from the node's own keys alone
while it has none.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from crypto.audience import MemberKey
from crypto.directory import Freshness, TrustedDirectory, encryption_keys, find_node, parse_directory
from crypto.errors import DirectoryError
from crypto.signing import KeyRing
from federation.routing import Topology
from federation.trust import DirectoryTrust, LocalTrust, Trust
from gcn.v1 import directory_pb2 as dir_pb
from node.logging import get_logger
from node.storage.trust_files import TrustFiles

log = get_logger(__name__)


class FederationState:
    def __init__(
        self, node_id: str, role: str, country: str, own_keys: KeyRing, files: TrustFiles, now: datetime
    ) -> None:
        self.node_id = node_id
        self.own_keys = own_keys
        self.files = files
        self._lock = threading.Lock()
        self._local = LocalTrust(node_id, role, country, own_keys)
        self._trusted: TrustedDirectory | None = None
        self._current: Trust = self._local
        self._file_mtime = files.changed_since(-1.0) or -1.0
        self._stale = ""  # the last freshness verdict (for transitions)
        pinned = files.pinned()
        if pinned:
            self._trusted = TrustedDirectory(pinned, files.held(), now)
            directory = self._trusted.current
            if directory is not None:
                self._current = DirectoryTrust.build(node_id, directory, own_keys)

    # -- Trust, by delegation ---------------------------------------------------------------

    def keyring(self) -> KeyRing:
        return self._current.keyring()

    def holder_of(self, audience: str) -> str | None:
        return self._current.holder_of(audience)

    def may_relay(self, caller: str, origin: str, audience: str) -> bool:
        return self._current.may_relay(caller, origin, audience)

    def may_issue_keys(self, origin: str, audience: str) -> bool:
        return self._current.may_issue_keys(origin, audience)

    def may_write(self, origin: str, audience: str) -> bool:
        return self._current.may_write(origin, audience)

    def is_active(self, node_id: str) -> bool:
        return self._current.is_active(node_id)

    def topology(self) -> Topology | None:
        return self._current.topology()

    def members_of(self, audience: str) -> list[str]:
        return self._current.members_of(audience)

    # -- the directory ------------------------------------------------------------------------

    @property
    def joined(self) -> bool:
        return self._trusted is not None

    def directory(self) -> dir_pb.Directory | None:
        return self._current.directory if isinstance(self._current, DirectoryTrust) else None

    def signed_directory(self) -> dir_pb.SignedDirectory | None:
        """The held directory, with the newest timestamp held."""
        if self._trusted is None:
            return None
        signed = self._trusted.current_signed
        stamp = self._trusted.timestamp
        if signed is not None and stamp is not None:
            signed.timestamp.CopyFrom(stamp)
        return signed

    def timestamp(self) -> dir_pb.SignedTimestamp | None:
        return None if self._trusted is None else self._trusted.timestamp

    def freshness(self, now: datetime) -> Freshness:
        """Is the view of the federation still to be trusted for new envelopes?"""
        if self._trusted is None:
            return Freshness(now + timedelta(days=36500), "")  # not federated: nothing to judge
        return self._trusted.freshness(now)

    def check_freshness(self, now: datetime) -> Freshness:
        """`freshness`, logging the transitions: a warning when the view turns
        stale, an info line when it is fresh again. Returns the verdict."""
        verdict = self.freshness(now)
        if verdict.stale and verdict.stale != self._stale:
            log.warning(
                "directory stale: refusing envelopes created after its horizon and not relaying",
                reason=verdict.stale,
                horizon=verdict.until.isoformat(),
                hint="at the root: gcn root publish, or gcn root timestamp",
            )
        elif self._stale and not verdict.stale:
            log.info("directory fresh again: relaying resumes", version=self.version())
        self._stale = verdict.stale
        return verdict

    def accept_timestamp(self, signed: dir_pb.SignedTimestamp, now: datetime) -> bool:
        """Take a newer root-signed timestamp (persisted with the directory)."""
        if self._trusted is None:
            raise DirectoryError("this node has pinned no federation root key (gcn init --root-key)")
        with self._lock:
            newer = self._trusted.update_timestamp(signed, now)
            if newer:
                self._store_held()
        return newer

    def _store_held(self) -> None:
        signed = self.signed_directory()
        if signed is not None:
            self.files.store(signed)
            self._file_mtime = self.files.changed_since(-1.0) or -1.0

    def reload_if_changed(self, now: datetime) -> bool:
        """A directory or timestamp written beside the running node (`gcn directory
        import`): take it, if it is newer. True if anything changed."""
        mtime = self.files.changed_since(self._file_mtime)
        if mtime is None or self._trusted is None:
            return False
        self._file_mtime = mtime
        held = self.files.held()
        if held is None:
            return False
        changed = False
        if held.directory and parse_directory(held).version > self.version():
            self.accept(held, now)
            changed = True
        elif held.HasField("timestamp"):
            changed = self.accept_timestamp(held.timestamp, now)
        return changed

    def version(self) -> int:
        d = self.directory()
        return int(d.version) if d is not None else 0

    def accept(self, signed: dir_pb.SignedDirectory, now: datetime) -> dir_pb.Directory:
        """Verify and adopt a newer directory; raises DirectoryError otherwise."""
        if self._trusted is None:
            raise DirectoryError("this node has pinned no federation root key (gcn init --root-key)")
        with self._lock:
            directory = self._trusted.update(signed, now)
            self._current = DirectoryTrust.build(self.node_id, directory, self.own_keys)
            self._store_held()
        me = find_node(directory, self.node_id)
        log.info(
            "directory accepted",
            version=directory.version,
            nodes=len(directory.nodes),
            audiences=len(directory.audiences),
            listed=me is not None,
        )
        return directory

    def rebuild(self, own_keys: KeyRing) -> None:
        """After this node rotated its signing key: trust its new key at once."""
        self.own_keys = own_keys
        d = self.directory()
        if d is not None:
            self._current = DirectoryTrust.build(self.node_id, d, own_keys)

    def held_audiences(self) -> list[str]:
        d = self.directory()
        if d is None:
            return []
        return sorted(a.name for a in d.audiences if a.holder == self.node_id)

    def member_keys(self, audience: str) -> dict[str, MemberKey]:
        d = self.directory()
        if d is None:
            return {}
        keys = encryption_keys(d)
        return {m: keys[m] for m in self.members_of(audience) if m in keys}
