"""The audience epoch keys this node can use, unwrapped from key messages.

Key messages are envelopes in the log (kind KEY, epoch 0). At start-up the node
reads them and unwraps the ones addressed to it with its X25519 key; keys then
live only in memory. A node that holds an audience (its own national audience,
its local `node:` audience) makes new epochs with `create_epoch`, which
appends the key message to its stream in the caller's transaction.

Invariants:
- epoch state (keys, the highest epoch seen, the next epoch a holder makes)
  changes only through `learn`, which its callers reach only with a key
  message that passed `federation.key_messages.judge` (issued by the audience's key
  holder, body and header naming the same audience, epoch in range), or
  through the node's own `remember`. An unauthorised key message changes
  nothing here;
- `get` opens any epoch the node has learned (old records stay readable);
  `current`, the epoch new records are sealed under, is the highest epoch the
  `sealable` rule allows (the node wires: issued by the audience's current
  holder, under a signing key still valid or held here before it ended);
- a new epoch number is always available: it is above every epoch known, and
  the bounds on what is learned keep it far below the column's limit.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from crypto import audience as aud
from crypto import envelope as env_crypto
from crypto.errors import CryptoError
from crypto.keys import EncryptionKey
from federation.key_messages import MAX_EPOCH, judge_body
from gcn.v1 import envelope_pb2 as epb
from node.errors import NodeError
from node.logging import get_logger
from node.storage.db import Database
from node.storage.envelope_log import EnvelopeLog, OwnEnvelope, as_envelope

log = get_logger(__name__)


class RekeyError(NodeError):
    """A new epoch could not be made (reported as an alarm; retried)."""


@dataclass(frozen=True)
class EpochKey:
    """One epoch key this node can use, and where it came from."""

    key: bytes
    members: frozenset[tuple[str, str]]  # (member, encryption key id) it was wrapped for
    issuer: str  # the node whose key message carried it
    signer_key_id: str  # the signing key of that key message
    received_at: datetime | None  # when this node first held it; None: made here


class AudienceKeys:
    def __init__(self, node_id: str, encryption: EncryptionKey) -> None:
        self.node_id = node_id
        self._encryption = encryption
        # Written by the receiver's and the recorders' threads: copy-on-write
        # under a lock, so readers iterate a dict nobody changes.
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, int], EpochKey] = {}
        # The highest epoch of each audience seen in an authorised key message
        # (also those we cannot open), so a new holder never reuses a number.
        self._seen: dict[str, int] = {}
        # May new records be sealed under this epoch? (wired by the node to its trust)
        self.sealable: Callable[[str, EpochKey], bool] = lambda audience, key: True

    def get(self, audience: str, epoch: int) -> bytes | None:
        held = self._keys.get((audience, epoch))
        return None if held is None else held.key

    def current(self, audience: str) -> tuple[int, bytes] | None:
        """The epoch new records of `audience` are sealed under (None: none usable)."""
        keys = self._keys  # a snapshot: writers replace the dict, never change it
        usable = [e for (a, e), k in keys.items() if a == audience and self.sealable(audience, k)]
        if not usable:
            return None
        epoch = max(usable)
        return epoch, keys[(audience, epoch)].key

    def learn(
        self, header: epb.EnvelopeHeader, msg: epb.KeyMessage, received_at: datetime | None
    ) -> tuple[str, int] | None:
        """Take the key of an authorised key message (judged by the caller) if it
        has a wrap for us; note its epoch either way."""
        self.saw(msg.audience, msg.epoch)
        try:
            key = aud.unwrap_for(msg, self.node_id, self._encryption)
        except CryptoError as e:
            log.debug(
                "key message not for us",
                record_id=header.record_id,
                origin=header.origin,
                audience=msg.audience,
                epoch=msg.epoch,
                reason=str(e),
            )
            return None
        held = self._keys.get((msg.audience, msg.epoch))
        if held is not None:
            if held.key != key:
                log.warning(
                    "a second key for one audience epoch ignored",
                    audience=msg.audience,
                    epoch=msg.epoch,
                    origin=header.origin,
                    record_id=header.record_id,
                )
            return None
        epoch_key = EpochKey(key, _wrapped_for(msg), header.origin, header.key_id, received_at)
        self._put(msg.audience, msg.epoch, epoch_key)
        return msg.audience, msg.epoch

    def known(self) -> set[tuple[str, int]]:
        """Every (audience, epoch) whose key this node holds."""
        return set(self._keys)

    def saw(self, audience: str, epoch: int) -> None:
        with self._lock:
            if epoch > self._seen.get(audience, 0):
                self._seen = {**self._seen, audience: epoch}

    def load(
        self,
        session: Session,
        envelope_log: EnvelopeLog,
        may_issue: Callable[[str, str], bool],
        *,
        skip_held: bool = False,
    ) -> int:
        """Unwrap every key message in the log addressed to this node that passes
        the same judgement as on receipt (issuer, audience, epoch range at the
        time it was received). Never raises on a bad message: it is skipped.
        `skip_held`: no unwrap (an HPKE decapsulation) for an epoch already held
        — what a replica's reload at every check does."""
        learned = 0
        for row in envelope_log.key_envelopes(session):
            header = env_crypto.parse_header(as_envelope(row))
            msg, _why = judge_body(header, row.ciphertext, may_issue, row.received_at)
            if msg is None:
                continue
            if skip_held and (msg.audience, msg.epoch) in self._keys:
                continue
            own = header.origin == self.node_id
            if self.learn(header, msg, None if own else row.received_at):
                learned += 1
        return learned

    def remember(self, audience: str, epoch: int, key: bytes, members: Mapping[str, aud.MemberKey]) -> None:
        """Add a key this node made, once its key message has committed."""
        made = EpochKey(key, frozenset((n, m.key_id) for n, m in members.items()), self.node_id, "", None)
        self._put(audience, epoch, made)
        self.saw(audience, epoch)

    def _put(self, audience: str, epoch: int, key: EpochKey) -> None:
        with self._lock:
            self._keys = {**self._keys, (audience, epoch): key}

    def current_members(self, audience: str) -> frozenset[tuple[str, str]] | None:
        """(member, encryption key id) pairs the current epoch was wrapped for."""
        current = self.current(audience)
        return None if current is None else self._keys[(audience, current[0])].members

    def next_epoch(self, audience: str, now: datetime) -> int:
        """A number above every epoch known for `audience`, with a floor of
        minutes since 1970: a holder that replaces a revoked one (and may not
        have seen all of its key messages yet) never reuses its numbers."""
        known = [e for (a, e) in self._keys if a == audience]
        floor = int(now.timestamp() // 60)
        epoch = max(max(known, default=0), self._seen.get(audience, 0), floor - 1) + 1
        if epoch > MAX_EPOCH:  # unreachable while learned epochs are bounded; never a crash
            raise RekeyError(f"no epoch number left for {audience} (highest known {epoch - 1})")
        return epoch

    def start_epoch(
        self,
        db: Database,
        envelope_log: EnvelopeLog,
        audience: str,
        members: Mapping[str, aud.MemberKey],
        now: datetime,
    ) -> str:
        """Make, store and take a new epoch key for `audience` (its key message
        commits first); returns "audience#epoch"."""
        with envelope_log.writing_own(), db.begin() as s:
            epoch, key = self.create_epoch(s, envelope_log, audience, members, now)
        self.remember(audience, epoch, key, members)
        log.info("audience epoch started", audience=audience, epoch=epoch, members=len(members))
        return f"{audience}#{epoch}"

    def create_epoch(
        self,
        session: Session,
        envelope_log: EnvelopeLog,
        audience: str,
        members: Mapping[str, aud.MemberKey],
        now: datetime,
    ) -> tuple[int, bytes]:
        """Append the key message of a new epoch of `audience` (held by this
        node) in the caller's transaction. The caller `remember`s the returned
        key after the commit, so no record is ever sealed under a key whose key
        message could still roll back."""
        epoch = max(self.next_epoch(audience, now), envelope_log.last_own_epoch(session, audience) + 1)
        key = aud.new_epoch_key()
        msg = aud.build_key_message(audience, epoch, key, members)
        msg.not_before.FromDatetime(now)
        item = OwnEnvelope(
            audience=audience,
            kind=epb.RECORD_KIND_KEY,
            view=epb.VIEW_UNSPECIFIED,
            record_id=str(uuid.uuid4()),
            body=msg.SerializeToString(),
            epoch=0,
            audience_key=None,
        )
        envelope_log.append_own(session, [item], now)
        return epoch, key


def _wrapped_for(msg: epb.KeyMessage) -> frozenset[tuple[str, str]]:
    return frozenset((w.member, w.encryption_key_id) for w in msg.wraps)
