"""The pure outbox (`federation.outbox`) over an in-memory store: what a peer
lacks of the streams it is entitled to, urgent kinds first but at most half a
batch of them, within the count and byte budgets, refused streams held back,
damaged envelopes quarantined (never sent), custody receipts attached; and a
sync with nothing to send costs one read of the heads."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

from crypto.envelope import envelope_hash
from federation.outbox import BatchCaps, EnvelopeReader, Head, Ranges, Stored, SyncSource
from federation.refusal import FORGED, Refused
from federation.routing import Topology
from federation.vectors import Stream, Vector
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import sync_pb2

ME, PEER = "KE", "HUB"
SHARED, PRIVATE = "esa", "node:KE"
T0 = datetime(2026, 12, 1, tzinfo=UTC)
TOPOLOGY = Topology.build({ME: [PEER]}, {SHARED: [ME, PEER]})


def envelope(
    origin: str, audience: str, seq: int, kind: int = epb.RECORD_KIND_SEIZURE, size: int = 10
) -> Stored:
    header = f"{origin}/{audience}/{seq}".encode()
    body = bytes(size)
    env = epb.Envelope(header=header, ciphertext=body, signature=b"s")
    return Stored(0, origin, audience, seq, kind, envelope_hash(env), header, body, b"s", T0)


def seqs(envelopes: Iterable[epb.Envelope]) -> list[int]:
    return [int(e.header.decode().rsplit("/", 1)[1]) for e in envelopes]


class MemoryStore:
    """The log as a list; counts what the outbox reads."""

    def __init__(self, rows: Sequence[Stored] = ()) -> None:
        self.rows: list[Stored] = []
        self.reads: list[str] = []
        for row in rows:
            self.add(row)

    def add(self, row: Stored) -> None:
        self.rows.append(replace(row, id=len(self.rows) + 1))

    def heads(self, origin: str = "") -> list[Head]:
        self.reads.append("heads")
        top: dict[Stream, Stored] = {}
        for r in self.rows:
            if not origin or r.origin == origin:
                key = (r.origin, r.audience)
                if key not in top or r.seq > top[key].seq:
                    top[key] = r
        return [Head(o, a, r.seq, r.hash) for (o, a), r in sorted(top.items())]

    @contextmanager
    def reading(self) -> Iterator[EnvelopeReader]:
        self.reads.append("log")

        def read(ranges: Ranges, *, kinds: Collection[int] = (), limit: int) -> Iterable[Stored]:
            self.reads.append(f"range kinds={bool(kinds)} limit={limit}")
            hits = [
                r
                for r in self.rows
                if (r.origin, r.audience) in ranges
                and ranges[(r.origin, r.audience)][0] < r.seq <= ranges[(r.origin, r.audience)][1]
                and (not kinds or r.kind in kinds)
            ]
            return sorted(hits, key=lambda r: (r.origin, r.audience, r.seq, r.id))[:limit]

        yield read

    def ids_of(self, keys: Sequence[tuple[str, str, int]]) -> list[int]:
        return [r.id for r in self.rows if (r.origin, r.audience, r.seq) in keys]


class MemoryRefusals:
    def __init__(self, held: set[Stream] | None = None) -> None:
        self.held = held or set()
        self.noted: list[tuple[str, list[Refused]]] = []

    def waiting(self, peer: str, theirs: Vector) -> set[Stream]:
        return set(self.held)

    def note(self, peer: str, refusals: Sequence[Refused]) -> object:
        self.noted.append((peer, list(refusals)))
        return None


def source(
    store: MemoryStore, caps: BatchCaps | None = None, refusals: MemoryRefusals | None = None
) -> SyncSource:
    return SyncSource(ME, store, lambda: TOPOLOGY, refusals, (lambda: caps) if caps else BatchCaps)


def test_nothing_to_send_costs_one_read_of_the_heads() -> None:
    store = MemoryStore([envelope(ME, SHARED, q) for q in range(1, 6)])
    batch = source(store).batch_for(PEER, {(ME, SHARED): 5})
    assert (batch.envelopes, batch.more, store.reads) == ([], False, ["heads"])


def test_a_peer_gets_what_it_lacks_of_the_streams_it_is_entitled_to() -> None:
    store = MemoryStore(
        [envelope(ME, SHARED, q) for q in range(1, 6)] + [envelope(ME, PRIVATE, q) for q in range(1, 3)]
    )
    out = source(store)
    assert [(h.audience, h.seq) for h in out.vector(PEER)] == [(SHARED, 5)]
    assert [(h.audience, h.seq) for h in out.vector()] == [(SHARED, 5), (PRIVATE, 2)]
    batch = out.batch_for(PEER, {(ME, SHARED): 2})
    assert seqs(batch.envelopes) == [3, 4, 5] and not batch.more
    assert batch.size == sum(len(e.header) + len(e.ciphertext) + len(e.signature) for e in batch.envelopes)


def test_urgent_kinds_go_first_but_never_more_than_half_a_batch() -> None:
    rows = [envelope(ME, SHARED, q) for q in range(1, 9)]
    rows += [envelope(ME, SHARED, q, epb.RECORD_KIND_ALERT) for q in range(9, 15)]
    store = MemoryStore(rows)
    batch = source(store).batch_for(PEER, {}, max_envelopes=6)
    # Three alerts (half of six), then the stream's run from its start.
    assert seqs(batch.envelopes) == [9, 10, 11, 1, 2, 3] and batch.more
    assert store.reads[-2:] == ["range kinds=True limit=3", "range kinds=False limit=7"]


def test_without_urgent_first_a_batch_is_each_streams_run_in_order() -> None:
    rows = [envelope(ME, SHARED, 1), envelope(ME, SHARED, 2, epb.RECORD_KIND_ALERT), envelope(ME, SHARED, 3)]
    store = MemoryStore(rows)
    batch = source(store).batch_for(PEER, {}, urgent_first=False)
    assert seqs(batch.envelopes) == [1, 2, 3]
    assert store.reads == ["heads", "log", "range kinds=False limit=2001"]


def test_an_urgent_envelope_is_sent_once_even_when_both_passes_read_it() -> None:
    rows = [envelope(ME, SHARED, 1, epb.RECORD_KIND_KEY), envelope(ME, SHARED, 2)]
    batch = source(MemoryStore(rows)).batch_for(PEER, {})
    assert seqs(batch.envelopes) == [1, 2] and not batch.more


def test_the_byte_budget_cuts_a_batch_but_one_envelope_always_goes() -> None:
    store = MemoryStore([envelope(ME, SHARED, q, size=100) for q in range(1, 6)])
    out = source(store)
    one = envelope(ME, SHARED, 1, size=100).size
    batch = out.batch_for(PEER, {}, max_bytes=2 * one + 1)
    assert seqs(batch.envelopes) == [1, 2] and batch.more and batch.size == 2 * one
    alone = out.batch_for(PEER, {}, max_bytes=1)
    assert seqs(alone.envelopes) == [1] and alone.more


def test_caps_hold_whatever_the_caller_asks_and_zero_means_the_default() -> None:
    store = MemoryStore([envelope(ME, SHARED, q) for q in range(1, 11)])
    caps = BatchCaps(default_envelopes=3, default_bytes=10_000, max_envelopes=4, max_bytes=10_000)
    out = source(store, caps)
    assert len(out.batch_for(PEER, {}).envelopes) == 3
    assert len(out.batch_for(PEER, {}, max_envelopes=2**32).envelopes) == 4
    assert len(out.batch_for(PEER, {}, max_envelopes=2).envelopes) == 2


def test_excluded_and_refused_streams_are_held_back() -> None:
    other = (PEER, SHARED)
    store = MemoryStore([envelope(ME, SHARED, 1), envelope(PEER, SHARED, 1)])
    refusals = MemoryRefusals({(ME, SHARED)})
    out = source(store, refusals=refusals)
    held = out.waiting(PEER, {})
    assert held == {(ME, SHARED)}
    batch = out.batch_for(PEER, {}, exclude=held)
    assert [e.header for e in batch.envelopes] == [b"HUB/esa/1"]
    assert out.batch_for(PEER, {}, exclude={other, (ME, SHARED)}).envelopes == []
    assert source(store).waiting(PEER, {}) == set()  # no refusals kept: nothing waits


def test_a_refusal_is_noted_and_a_damaged_one_has_our_copy_checked() -> None:
    store = MemoryStore([envelope(ME, SHARED, 1), envelope(ME, SHARED, 2)])
    refusals = MemoryRefusals()
    out = source(store, refusals=refusals)
    suspects: list[tuple[list[int], str]] = []
    out.on_suspect = lambda ids, by: suspects.append((list(ids), by))
    forged = Refused(0, ME, SHARED, 1, b"", FORGED, "bad signature")
    stale = Refused(1, ME, SHARED, 2, b"", "stale_trust", "not now")
    out.refused(PEER, [forged, stale])
    assert refusals.noted == [(PEER, [forged, stale])]
    assert suspects == [([1], "refusal")]


def test_a_damaged_envelope_is_quarantined_never_sent_and_its_stream_stops() -> None:
    good = [envelope(ME, SHARED, q) for q in (1, 3)]
    broken = replace(envelope(ME, SHARED, 2), ciphertext=b"rotted")
    store = MemoryStore([good[0], broken, good[1], envelope(PEER, SHARED, 1)])
    out = source(store)
    damaged: list[tuple[dict[int, str], str]] = []
    out.on_damaged = lambda d, by: damaged.append((d, by))
    batch = out.batch_for(PEER, {})
    assert [e.header for e in batch.envelopes] == [b"HUB/esa/1", b"KE/esa/1"]
    assert list(damaged[0][0]) == [2] and damaged[0][1] == "send"


class Voucher:
    def __init__(self, cut_at: int | None = None) -> None:
        self.cut_at = cut_at
        self.runs: dict[Stream, list[int]] = {}

    def ended(self) -> dict[tuple[str, str], datetime]:
        return {(ME, "old-key"): T0}

    def vouch(
        self, runs: dict[Stream, list[Stored]], ended: dict[tuple[str, str], datetime], now: datetime
    ) -> tuple[list[sync_pb2.SignedReceipt], dict[Stream, int]]:
        self.runs = {s: [r.seq for r in rows] for s, rows in runs.items()}
        cuts = {(ME, SHARED): self.cut_at} if self.cut_at is not None else {}
        return [sync_pb2.SignedReceipt(key_id="r")], cuts


def test_custody_receipts_go_with_the_batch_and_a_cut_leaves_more() -> None:
    rows = [envelope(ME, SHARED, q) for q in range(1, 5)] + [envelope(ME, SHARED, 5, epb.RECORD_KIND_ALERT)]
    out = source(MemoryStore(rows))
    out.custody = voucher = Voucher()
    batch = out.batch_for(PEER, {})
    assert voucher.runs == {(ME, SHARED): [1, 2, 3, 4, 5]}  # in seq order, urgent ones too
    assert len(batch.receipts) == 1 and not batch.more
    out.custody = Voucher(cut_at=2)
    cut = out.batch_for(PEER, {})
    assert sorted(seqs(cut.envelopes)) == [1, 2] and cut.more
    assert cut.size == sum(envelope(ME, SHARED, q).size for q in (1, 2))


def test_no_custody_read_when_no_key_has_ended() -> None:
    class Nothing(Voucher):
        def ended(self) -> dict[tuple[str, str], datetime]:
            return {}

    out = source(MemoryStore([envelope(ME, SHARED, 1)]))
    out.custody = voucher = Nothing()
    batch = out.batch_for(PEER, {})
    assert seqs(batch.envelopes) == [1] and batch.receipts == [] and voucher.runs == {}


def test_an_origin_asks_only_for_that_origins_streams() -> None:
    store = MemoryStore([envelope(ME, SHARED, 1), envelope(PEER, SHARED, 1)])
    out = source(store)
    assert [h.origin for h in out.vector(PEER, origin=ME)] == [ME]
    assert [e.header for e in out.batch_for(PEER, {}, origin=ME).envelopes] == [b"KE/esa/1"]
