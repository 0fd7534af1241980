"""The node's composition root: config → keys, database, log, audience keys,
policy → the record and read services. `NodeApp.open` is what `gcn serve` and
the tests call; nothing else wires these pieces."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from functools import partial

from google.protobuf.timestamp_pb2 import Timestamp

from crypto.audience import MemberKey
from crypto.directory import directory_key
from crypto.keys import NodeKeys
from crypto.signing import KeyRing, PublicSigningKey
from federation.audiences import node_audience
from federation.outbox import SyncSource
from federation.policy import load_policy
from federation.receive import Receiver
from gcn.v1 import directory_pb2 as dir_pb
from gcn.v1 import node_pb2 as npb
from node.clock import Clock, system_clock
from node.config import Config
from node.domain import limits
from node.domain.reading import RecordReader
from node.domain.records import RecordService
from node.domain.reindex import refresh_terms
from node.domain.replica import Replica
from node.federation_state import FederationState
from node.hub_search import HubSearchAnswer
from node.logging import get_logger
from node.searching import FederatedSearch
from node.storage.alarms import record_alarm
from node.storage.audience_keys import AudienceKeys, EpochKey
from node.storage.audit import AuditLog
from node.storage.custody import CustodyJudge, CustodyVouch
from node.storage.db import Database
from node.storage.envelope_log import EnvelopeLog
from node.storage.key_files import KeyDirectory
from node.storage.leases import DUTIES, Leases
from node.storage.outbox_store import OutboxCustody, RefusedByPeer, SqlOutboxStore
from node.storage.quarantine import Quarantine
from node.storage.refusals import StreamRefusals
from node.storage.trust_files import TrustFiles
from rinex.holding import epochs_due

log = get_logger(__name__)
VERSION = "0.1.0"


def own_keyring(node_id: str, keys: NodeKeys) -> KeyRing:
    """The node's own signing keys, current and retired, with their windows."""
    ring = [PublicSigningKey(node_id, keys.signing.key_id, keys.signing.public_raw, keys.signing.not_before)]
    ring += [
        PublicSigningKey(node_id, r.key_id, r.public_raw, r.not_before, r.not_after) for r in keys.retired
    ]
    return KeyRing(ring)


def sealable(node_id: str, trust: FederationState, audience: str, key: EpochKey) -> bool:
    """May new records of `audience` be sealed under this epoch key? Only under
    an epoch of the audience's current holder, carried by a key message signed
    with a key still valid, or held here before that key ended (retired or
    revoked): a key message that turns up signed by a retired or stolen key
    never becomes the epoch records are sealed under, and the epochs of a
    revoked holder are left behind the moment the directory says so."""
    if trust.holder_of(audience) != key.issuer:
        return False
    if key.issuer == node_id:
        return True  # made (or restored) here
    signer = trust.keyring().find(key.issuer, key.signer_key_id)
    if signer is None:
        return False
    if signer.not_after is None:
        return True
    return key.received_at is not None and key.received_at < signer.not_after


def own_audiences(config: Config) -> list[str]:
    """Audiences this node holds the keys of from the start."""
    audiences = [node_audience(config.node.id)]
    if config.node.role == "national":
        audiences.append(config.national_audience)
    return audiences


@dataclass
class NodeApp:
    config: Config
    keys: NodeKeys
    db: Database
    envelope_log: EnvelopeLog
    audience_keys: AudienceKeys
    records: RecordService
    reader: RecordReader
    keyring: KeyRing
    receiver: Receiver
    trust: FederationState
    sync_source: SyncSource
    clock: Clock
    refusals: StreamRefusals
    quarantine: Quarantine
    audit: AuditLog
    search: FederatedSearch
    hub_search: HubSearchAnswer
    rekey_pending: bool = False
    # What one replica of the node does at a time (`node.storage.leases`); set by `open`.
    leases: Leases = field(init=False)
    replica: Replica = field(init=False)

    @classmethod
    def open(cls, config: Config, clock: Clock = system_clock) -> NodeApp:
        keys = KeyDirectory(config.keys_dir).load()
        db = Database(config.database_url, sqlite_synchronous=config.database.sqlite_synchronous)
        db.migrate()
        envelope_log = EnvelopeLog(config.node.id, keys.signing)
        audience_keys = AudienceKeys(config.node.id, keys.encryption)
        keyring = own_keyring(config.node.id, keys)
        trust = FederationState(
            config.node.id,
            config.node.role,
            config.node.country,
            keyring,
            TrustFiles(config.trust_dir),
            clock(),
        )
        audience_keys.sealable = partial(sealable, config.node.id, trust)
        with db.begin() as s:
            learned = audience_keys.load(s, envelope_log, trust.may_issue_keys)
        refresh_terms(db, audience_keys)
        n = config.node
        policy = load_policy(
            config.sharing.path(config.base_dir),
            node_id=n.id,
            country=n.country,
            region=n.region,
            role=n.role,
        )
        log.info(
            "node opened",
            node_id=config.node.id,
            role=config.node.role,
            audience_keys=learned,
            database=db.engine.url.render_as_string(hide_password=True),
        )
        f = config.federation
        refusals = StreamRefusals(
            db, clock, backoff_initial=f.backoff_initial_seconds, backoff_max=f.backoff_max_seconds
        )
        quarantine = Quarantine(db, clock, trust.keyring, refusals)
        source = SyncSource(
            config.node.id, SqlOutboxStore(db), trust.topology, RefusedByPeer(refusals), limits.batch_caps
        )
        source.on_damaged = quarantine.quarantine
        source.on_suspect = quarantine.check
        source.clock = clock
        reader = RecordReader(db, audience_keys, trust.is_active)
        reader.on_suspect = quarantine.check
        audit = AuditLog(db, clock)
        reader.audit = audit
        replica = Replica(db, envelope_log, audience_keys, clock)
        source.custody = OutboxCustody(CustodyVouch(config.node.id, db, trust, lambda: envelope_log.signer))
        app = cls(
            config,
            keys,
            db,
            envelope_log,
            audience_keys,
            RecordService(db, envelope_log, audience_keys, policy, clock),
            reader,
            keyring,
            Receiver(
                config.node.id,
                replica,
                trust,
                refusals,
                CustodyJudge(db, trust),
                clock=clock,
                horizon=lambda now: trust.freshness(now).until if trust.joined else None,
            ),
            trust,
            source,
            clock,
            refusals,
            quarantine,
            audit,
            FederatedSearch(reader, audience_keys, lambda: trust),
            HubSearchAnswer(db, trust.topology, audit, config.node.role),
        )
        app.leases = Leases(db, config.node.id)
        app.replica = replica
        return app

    def ensure_own_audiences(self, clock: Clock = system_clock) -> list[str]:
        """Create epoch 1 of every audience this node holds that has no key yet
        (on the replica that holds the duties lease)."""
        if not self.leases.hold(DUTIES):
            return []
        me = {self.config.node.id: MemberKey(self.keys.encryption.key_id, self.keys.encryption.public_raw)}
        created = []
        for audience in own_audiences(self.config):
            if self.audience_keys.current(audience) is not None:
                continue
            with self.envelope_log.writing_own(), self.db.begin() as s:
                epoch, key = self.audience_keys.create_epoch(s, self.envelope_log, audience, me, clock())
            self.audience_keys.remember(audience, epoch, key, me)
            created.append(audience)
        return created

    def accept_directory(
        self, signed: dir_pb.SignedDirectory, *, rekey: bool = True
    ) -> dir_pb.Directory | None:
        """Adopt a newer verified directory, then do the key holder's duties
        (unless `rekey` is False: `gcn directory import` leaves them to the
        serving process, the node's one writer of epochs, which takes the file
        at its next check or at start); or, for an answer that carries only a
        timestamp, take the timestamp. Returns the new directory (None: only a
        timestamp, or nothing new)."""
        if not signed.directory:
            if signed.HasField("timestamp") and self.trust.accept_timestamp(signed.timestamp, self.clock()):
                log.info("newer directory timestamp taken", version=self.trust.version())
            return None
        directory = self.trust.accept(signed, self.clock())
        if rekey:
            self.refresh_epochs()
        return directory

    def refresh_epochs(self) -> list[str]:
        """The key holder's duty (`rinex.holding`): a new epoch for each held
        audience whose members changed. A failure is an alarm and a log line,
        never a crash: `rekey_pending` makes the next call retry. Only the
        replica holding the duties lease makes epochs."""
        if not self.leases.hold(DUTIES):
            return []
        try:
            started = [
                self.audience_keys.start_epoch(self.db, self.envelope_log, audience, members, self.clock())
                for audience, members in epochs_due(self.trust, self.audience_keys)
            ]
        except Exception as e:
            log.exception("could not start a new audience epoch: retrying at the next check", error=str(e))
            with contextlib.suppress(Exception):
                record_alarm(self.db, "rekey_failed", self.clock(), f"new audience epoch failed: {e}")
            self.rekey_pending = True
            return []
        self.rekey_pending = False
        return started

    def rotate_signing_key(self) -> NodeKeys:
        """A new current signing key; the old one is retired now but stays in the
        key ring (and, once the root publishes it, in the directory) so the
        node's older envelopes keep verifying everywhere."""
        self.keys = KeyDirectory(self.config.keys_dir).rotate_signing(self.clock())
        self.envelope_log.signer = self.keys.signing
        self.keyring = own_keyring(self.config.node.id, self.keys)
        self.trust.rebuild(self.keyring)
        log.info("signing key rotated", node_id=self.config.node.id, key_id=self.keys.signing.key_id)
        return self.keys

    def signing_keys_for_directory(self) -> list[dir_pb.DirectoryKey]:
        """This node's signing keys, current and retired, as the root lists them."""
        k = self.keys
        out = [directory_key(r.key_id, r.public_raw, r.not_before, r.not_after) for r in k.retired]
        out.append(directory_key(k.signing.key_id, k.signing.public_raw, k.signing.not_before))
        return out

    def node_info(self) -> npb.NodeInfo:
        n, k = self.config.node, self.keys
        info = npb.NodeInfo(
            node_id=n.id, name=n.name, role=n.role, country=n.country, region=n.region, version=VERSION
        )
        info.signing_keys.append(
            npb.PublicKey(
                key_id=k.signing.key_id, public_key=k.signing.public_raw, not_before=_ts(k.signing.not_before)
            )
        )
        for r in k.retired:
            info.signing_keys.append(
                npb.PublicKey(
                    key_id=r.key_id,
                    public_key=r.public_raw,
                    not_before=_ts(r.not_before),
                    not_after=_ts(r.not_after),
                )
            )
        info.encryption_key.CopyFrom(
            npb.PublicKey(key_id=k.encryption.key_id, public_key=k.encryption.public_raw)
        )
        return info

    def reload_keys(self) -> int:
        """Take the key messages another replica of this node stored (one
        PostgreSQL database, several `gcn serve`): returns how many keys were new."""
        before = self.audience_keys.known()
        with self.db.read() as s:
            self.audience_keys.load(s, self.envelope_log, self.trust.may_issue_keys, skip_held=True)
        new = self.audience_keys.known() - before
        if new:
            indexed = self.replica.index_readable(new, self.trust.keyring)
            log.info("audience keys another replica stored taken", keys=len(new), indexed=indexed)
        return len(new)

    def close(self) -> None:
        self.leases.release_all()
        self.records.close()
        self.db.dispose()


def _ts(at: object) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at)  # type: ignore[arg-type]
    return ts
