"""The audience epoch keys this node can use, unwrapped from key messages.

Key messages are envelopes in the log (kind KEY, epoch 0). At start-up the node
reads them and unwraps the ones addressed to it with its X25519 key; keys then
live only in memory. A node that holds an audience (its own national audience,
its local `node:` audience) makes new epochs with `create_epoch`, which
appends the key message to its stream in the caller's transaction.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime

from google.protobuf.message import DecodeError
from sqlalchemy.orm import Session

from crypto import audience as aud
from crypto import envelope as env_crypto
from crypto.errors import CryptoError
from crypto.keys import EncryptionKey
from gcn.v1 import envelope_pb2 as epb
from node.log import EnvelopeLog, OwnEnvelope, as_envelope
from node.logging import get_logger

log = get_logger(__name__)


class AudienceKeys:
    def __init__(self, node_id: str, encryption: EncryptionKey) -> None:
        self.node_id = node_id
        self._encryption = encryption
        # Written by the receiver's and the recorders' threads: copy-on-write
        # under a lock, so readers iterate a dict nobody changes.
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, int], bytes] = {}
        self._members: dict[tuple[str, int], frozenset[tuple[str, str]]] = {}
        # The highest epoch of each audience seen in any verified key message,
        # so a new holder (after the old one was revoked) never reuses a number.
        self._seen: dict[str, int] = {}

    def get(self, audience: str, epoch: int) -> bytes | None:
        return self._keys.get((audience, epoch))

    def current(self, audience: str) -> tuple[int, bytes] | None:
        keys = self._keys  # a snapshot: writers replace the dict, never change it
        epochs = [e for (a, e) in keys if a == audience]
        if not epochs:
            return None
        epoch = max(epochs)
        return epoch, keys[(audience, epoch)]

    def learn(self, header: epb.EnvelopeHeader, body: bytes) -> tuple[str, int] | None:
        """Take the key from a verified key message if it has a wrap for us.
        The caller checks that the message's origin holds the audience."""
        msg = epb.KeyMessage()
        try:
            msg.ParseFromString(body)
        except DecodeError:
            log.warning("key message does not parse", record_id=header.record_id, origin=header.origin)
            return None
        if msg.audience != header.audience:
            log.warning(
                "key message audience mismatch",
                record_id=header.record_id,
                origin=header.origin,
                audience=header.audience,
            )
            return None
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
        if held is not None and held != key:
            log.warning(
                "a second key for one audience epoch ignored",
                audience=msg.audience,
                epoch=msg.epoch,
                origin=header.origin,
                record_id=header.record_id,
            )
            return None
        self._put(msg.audience, msg.epoch, key, _wrapped_for(msg))
        return msg.audience, msg.epoch

    def saw(self, audience: str, epoch: int) -> None:
        with self._lock:
            if epoch > self._seen.get(audience, 0):
                self._seen = {**self._seen, audience: epoch}

    def saw_message(self, body: bytes) -> None:
        """Note the epoch of a verified key message we may not be able to open."""
        msg = epb.KeyMessage()
        try:
            msg.ParseFromString(body)
        except DecodeError:
            return
        self.saw(msg.audience, msg.epoch)

    def load(self, session: Session, envelope_log: EnvelopeLog, may_issue: Callable[[str, str], bool]) -> int:
        """Unwrap every key message in the log addressed to this node by a node
        that may issue its audience's keys (`may_issue(origin, audience)`)."""
        learned = 0
        for row in envelope_log.key_envelopes(session):
            header = env_crypto.parse_header(as_envelope(row))
            self.saw_message(row.ciphertext)
            if may_issue(header.origin, header.audience) and self.learn(header, row.ciphertext):
                learned += 1
        return learned

    def remember(self, audience: str, epoch: int, key: bytes, members: Mapping[str, aud.MemberKey]) -> None:
        """Add a key this node made, once its key message has committed."""
        self._put(audience, epoch, key, frozenset((n, m.key_id) for n, m in members.items()))

    def _put(self, audience: str, epoch: int, key: bytes, members: frozenset[tuple[str, str]]) -> None:
        with self._lock:
            self._keys = {**self._keys, (audience, epoch): key}
            self._members = {**self._members, (audience, epoch): members}

    def current_members(self, audience: str) -> frozenset[tuple[str, str]] | None:
        """(member, encryption key id) pairs the current epoch was wrapped for."""
        current = self.current(audience)
        return None if current is None else self._members.get((audience, current[0]))

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
        current = self.current(audience)
        # Epoch numbers only grow, and carry a floor of minutes since 1970: a
        # holder that replaces a revoked one (and may not have seen all of its
        # key messages yet) still never reuses its predecessor's numbers.
        floor = int(now.timestamp() // 60)
        epoch = max(current[0] if current else 0, self._seen.get(audience, 0), floor - 1) + 1
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
