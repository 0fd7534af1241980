"""Custody of envelopes signed by keys that have ended (see `crypto.custody`).

The rule (docs/trust.md, "Custody"): an envelope signed by a key whose window
has ended by now (a retired key, or a revoked node's keys, cut at its
"compromised since" time) is accepted only if this node already holds it, or if
a custody receipt from an active node other than its origin shows that node
held it, or a later envelope of the same stream chaining back to it, before
the key ended. The envelope's own `created_at` never decides.

`CustodyJudge` is the receiving side: which envelopes of a batch that need
custody have it (the receipts that came with the batch, and those stored
here, linked through the `prev_hash` chain of the batch and the log).
`CustodyVouch` is the sending side: for each stream of a batch holding such
envelopes, a receipt of this node's own (when it held them before the end) or
one it stored, with the stream's run cut at the receipt so the receiver can
link every envelope it sends.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from crypto import envelope as env_crypto
from crypto.custody import Receipt, open_receipt, sign_receipt
from crypto.errors import CryptoError
from crypto.keys import SigningKey
from federation.receive import Judged
from federation.trust import Trust
from federation.vectors import Stream
from gcn.v1 import sync_pb2
from node.logging import get_logger
from node.storage.db import Database
from node.storage.envelope_log import as_envelope
from node.storage.models import CustodyReceiptRow, EnvelopeRow

log = get_logger(__name__)
_Link = tuple[bytes, bytes]  # (hash, prev_hash)


def needs_custody(v: env_crypto.VerifiedEnvelope, now: datetime) -> datetime | None:
    """The end of the signer's window if it has ended by `now` (None: no custody needed)."""
    end = v.signer.not_after
    return end if end is not None and end <= now else None


# A receipt may claim a time this much before the envelope's own (clocks differ).
RECEIPT_SKEW = timedelta(minutes=5)


class CustodyJudge:
    def __init__(self, db: Database, trust: Trust) -> None:
        self.db = db
        self.trust = trust

    def judge(
        self,
        batch: Sequence[tuple[int, env_crypto.VerifiedEnvelope]],
        receipts: Sequence[sync_pb2.SignedReceipt],
        now: datetime,
    ) -> Judged:
        out = Judged()
        needy = [(i, v, end) for i, v in batch if (end := needs_custody(v, now)) is not None]
        if not needy:
            return out
        streams = {(v.header.origin, v.header.audience) for _, v, _ in needy}
        given = self._open(receipts, streams, now)
        with self.db.read() as s:
            all_receipts = given + _stored(s, streams)
            links = self._links(s, batch, streams, all_receipts, min(v.header.seq for _, v, _ in needy))
        vouched, by = _vouch(all_receipts, links)
        for i, v, end in needy:
            held_at = vouched.get(v.hash)
            # Held before the key ended, and not before the envelope says it was
            # made (give or take the clocks' difference).
            made = env_crypto.header_created_at(v.header)
            if held_at is not None and made - RECEIPT_SKEW <= held_at < end:
                if by[v.hash] in given and by[v.hash] not in out.used:
                    out.used.append(by[v.hash])
                continue
            out.refused[i] = (
                f"signed by key {v.header.key_id} of {v.header.origin}, which ended at {end.isoformat()}; "
                "no custody receipt from another active node shows it was held before then"
            )
        return out

    def _open(
        self, receipts: Sequence[sync_pb2.SignedReceipt], streams: set[Stream], now: datetime
    ) -> list[Receipt]:
        ring = self.trust.keyring()
        out = []
        for signed in receipts:
            try:
                r = open_receipt(signed, ring, now)
            except CryptoError as e:
                log.warning("custody receipt refused", reason=str(e))
                continue
            if (r.origin, r.audience) in streams and self.trust.is_active(r.holder):
                out.append(r)
        return out

    def _links(
        self,
        s: Session,
        batch: Sequence[tuple[int, env_crypto.VerifiedEnvelope]],
        streams: set[Stream],
        receipts: Sequence[Receipt],
        lowest: int,
    ) -> dict[tuple[str, str, int], list[_Link]]:
        """(origin, audience, seq) -> the (hash, prev_hash) of each envelope there,
        from the batch and, between the lowest seq needing custody and the
        highest receipt, from the log."""
        links: dict[tuple[str, str, int], list[_Link]] = defaultdict(list)
        for _, v in batch:
            if (v.header.origin, v.header.audience) in streams:
                links[(v.header.origin, v.header.audience, v.header.seq)].append((v.hash, v.header.prev_hash))
        top = {
            st: max((r.seq for r in receipts if (r.origin, r.audience) == st), default=0) for st in streams
        }
        ranges = [
            and_(
                EnvelopeRow.origin == o,
                EnvelopeRow.audience == a,
                EnvelopeRow.seq >= lowest,
                EnvelopeRow.seq <= top[(o, a)],
            )
            for o, a in streams
            if top[(o, a)]
        ]
        if ranges:
            rows = s.execute(
                select(
                    EnvelopeRow.origin,
                    EnvelopeRow.audience,
                    EnvelopeRow.seq,
                    EnvelopeRow.hash,
                    EnvelopeRow.prev_hash,
                ).where(or_(*ranges))
            )
            for o, a, q, h, prev in rows:
                if (h, prev) not in links[(o, a, q)]:
                    links[(o, a, q)].append((h, prev))
        return links


def _stored(s: Session, streams: set[Stream]) -> list[Receipt]:
    rows = s.scalars(
        select(CustodyReceiptRow).where(
            or_(*(and_(CustodyReceiptRow.origin == o, CustodyReceiptRow.audience == a) for o, a in streams))
        )
    )
    return [_from_row(r) for r in rows]


def _vouch(
    receipts: Sequence[Receipt], links: dict[tuple[str, str, int], list[_Link]]
) -> tuple[dict[bytes, datetime], dict[bytes, Receipt]]:
    """Envelope hash -> the earliest custody time any receipt gives it (walking
    each receipt's chain down as far as the links go), and which receipt."""
    vouched: dict[bytes, datetime] = {}
    by: dict[bytes, Receipt] = {}
    for r in sorted(receipts, key=lambda r: r.held_at):
        want, seq = r.hash, r.seq
        while seq >= 1:
            here = [link for link in links.get((r.origin, r.audience, seq), []) if link[0] == want]
            if not here:
                break
            if want not in vouched:
                vouched[want], by[want] = r.held_at, r
            want, seq = here[0][1], seq - 1
    return vouched, by


def _from_row(row: CustodyReceiptRow) -> Receipt:
    signed = sync_pb2.SignedReceipt(receipt=row.receipt, key_id=row.key_id, signature=row.signature)
    return Receipt(row.holder, row.origin, row.audience, row.seq, row.hash, row.held_at, signed)


def store_receipts(s: Session, receipts: Sequence[Receipt]) -> None:
    for r in receipts:
        if s.get(CustodyReceiptRow, (r.origin, r.audience, r.seq, r.holder)) is None:
            s.add(
                CustodyReceiptRow(
                    origin=r.origin,
                    audience=r.audience,
                    seq=r.seq,
                    holder=r.holder,
                    hash=r.hash,
                    held_at=r.held_at,
                    receipt=r.signed.receipt,
                    key_id=r.signed.key_id,
                    signature=r.signed.signature,
                )
            )


class CustodyVouch:
    """The sending side: receipts for the streams of a batch that need them."""

    def __init__(self, node_id: str, db: Database, trust: Trust, signer: Callable[[], SigningKey]) -> None:
        self.node_id = node_id
        self.db = db
        self.trust = trust
        self.signer = signer

    def ended(self) -> dict[tuple[str, str], datetime]:
        return self.trust.keyring().ended()

    def vouch(
        self, runs: dict[Stream, list[EnvelopeRow]], ended: dict[tuple[str, str], datetime], now: datetime
    ) -> tuple[list[sync_pb2.SignedReceipt], dict[Stream, int]]:
        """Receipts for `runs` (per stream, the rows about to be sent, in seq
        order), and where to cut a run so its last envelope is vouched for."""
        receipts: list[sync_pb2.SignedReceipt] = []
        cuts: dict[Stream, int] = {}
        origins = {o for o, _ in ended}
        for stream, rows in runs.items():
            if stream[0] not in origins:
                continue
            needy = [(r, end) for r in rows if (end := _end_of(r, ended, now)) is not None]
            if not needy:
                continue
            last, end = needy[-1][0], min(e for _, e in needy)
            if stream[0] != self.node_id and last.received_at < end:
                receipts.append(
                    sign_receipt(
                        self.signer(),
                        self.node_id,
                        last.origin,
                        last.audience,
                        last.seq,
                        last.hash,
                        last.received_at,
                    )
                )
                continue
            stored = self._stored_at_or_below(stream, needy[0][0].seq, rows[-1].seq)
            if stored is None:
                log.warning(
                    "no custody to hand on: the peer will refuse these envelopes",
                    origin=stream[0],
                    audience=stream[1],
                    seq=needy[0][0].seq,
                )
                continue
            receipts.append(stored.signed)
            cuts[stream] = stored.seq
        return receipts, cuts

    def _stored_at_or_below(self, stream: Stream, lowest: int, highest: int) -> Receipt | None:
        with self.db.read() as s:
            row = s.scalars(
                select(CustodyReceiptRow)
                .where(
                    CustodyReceiptRow.origin == stream[0],
                    CustodyReceiptRow.audience == stream[1],
                    CustodyReceiptRow.seq >= lowest,
                    CustodyReceiptRow.seq <= highest,
                )
                .order_by(CustodyReceiptRow.seq.desc(), CustodyReceiptRow.held_at)
                .limit(1)
            ).first()
        return None if row is None else _from_row(row)


def _end_of(row: EnvelopeRow, ended: dict[tuple[str, str], datetime], now: datetime) -> datetime | None:
    key_id = env_crypto.parse_header(as_envelope(row)).key_id
    end = ended.get((row.origin, key_id))
    return end if end is not None and end <= now else None
