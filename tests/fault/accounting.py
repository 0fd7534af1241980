"""What each node holds, read from its SQLite database read-only (`holdings`),
while the node runs (WAL readers do not disturb it) or after it stopped; when
the federation has converged; the figures a story writes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fault.harness import NODE_IDS, Federation, Node, wait_for

# -- what each node holds ------------------------------------------------------------------------

Stream = tuple[str, str]  # (origin, audience)


@dataclass
class Holdings:
    node_id: str
    envelopes: dict[Stream, list[tuple[int, bytes]]]  # per stream: (seq, hash) of every row
    heads: dict[Stream, int]
    records: dict[Stream, list[tuple[str, int]]]  # per stream: (record_id, view) of every readable row
    quarantined: list[tuple[str, str, int]]

    def seqs(self, stream: Stream) -> list[int]:
        return sorted(seq for seq, _ in self.envelopes.get(stream, []))


def holdings(node: Node) -> Holdings:
    """Read the node's database read-only (the node may be running)."""
    if node.database_url:
        return _postgres_holdings(node)
    con = sqlite3.connect(f"file:{node.database}?mode=ro", uri=True, timeout=30)
    try:
        envelopes: dict[Stream, list[tuple[int, bytes]]] = {}
        for origin, audience, seq, h in con.execute("SELECT origin, audience, seq, hash FROM envelopes"):
            envelopes.setdefault((origin, audience), []).append((seq, bytes(h)))
        heads = {(o, a): s for o, a, s in con.execute("SELECT origin, audience, head_seq FROM streams")}
        records: dict[Stream, list[tuple[str, int]]] = {}
        for origin, audience, rid, view in con.execute(
            "SELECT origin, audience, record_id, view FROM records"
        ):
            records.setdefault((origin, audience), []).append((rid, view))
        quarantined = list(con.execute("SELECT origin, audience, seq FROM quarantine"))
    finally:
        con.close()
    return Holdings(node.node_id, envelopes, heads, records, quarantined)


def _postgres_holdings(node: Node) -> Holdings:
    from sqlalchemy import create_engine, text

    engine = create_engine(node.database_url)
    try:
        with engine.connect() as con:
            envelopes: dict[Stream, list[tuple[int, bytes]]] = {}
            for origin, audience, seq, h in con.execute(
                text("SELECT origin, audience, seq, hash FROM envelopes")
            ):
                envelopes.setdefault((origin, audience), []).append((seq, bytes(h)))
            heads = {
                (o, a): s for o, a, s in con.execute(text("SELECT origin, audience, head_seq FROM streams"))
            }
            records: dict[Stream, list[tuple[str, int]]] = {}
            for origin, audience, rid, view in con.execute(
                text("SELECT origin, audience, record_id, view FROM records")
            ):
                records.setdefault((origin, audience), []).append((rid, view))
            quarantined = [
                tuple(r) for r in con.execute(text("SELECT origin, audience, seq FROM quarantine"))
            ]
    finally:
        engine.dispose()
    return Holdings(node.node_id, envelopes, heads, records, quarantined)  # type: ignore[arg-type]


def expected_holders(origin: str, audience: str) -> set[str]:
    """Who must end up holding the stream (origin, audience) in this topology:
    the audience's members and the relays on the way to them."""
    everyone = set(NODE_IDS)
    if audience == "national:KE":
        return {"KE", "KE-MBA"}
    if audience == "national:TZ":
        return {"TZ"}
    if audience.startswith("node:"):
        return {audience.removeprefix("node:"), origin}
    if audience == "region:ESA":
        return everyone - {"WCO-GLOBAL"}
    if audience == "global":
        return everyone
    raise AssertionError(f"no expectation for audience {audience!r} (origin {origin})")


def own_streams(h: Holdings) -> dict[Stream, list[tuple[int, bytes]]]:
    return {s: rows for s, rows in h.envelopes.items() if s[0] == h.node_id}


def behind(
    fed: Federation, streams: Iterable[Stream] | None = None
) -> dict[str, dict[Stream, tuple[int, int]]]:
    """Per node, the streams it should hold where its head is short of the
    origin's: {node: {stream: (its head, origin's head)}}. Empty: converged."""
    held = {n: holdings(fed[n]) for n in fed.nodes}
    out: dict[str, dict[Stream, tuple[int, int]]] = {}
    for h in held.values():
        for stream in own_streams(h):
            if streams is not None and stream not in streams:
                continue
            want = h.heads.get(stream, 0)
            for holder in expected_holders(*stream):
                have = held[holder].heads.get(stream, 0)
                if have != want:
                    out.setdefault(holder, {})[stream] = (have, want)
    return out


def wait_converged(fed: Federation, timeout: float, streams: Iterable[Stream] | None = None) -> float:
    wanted = list(streams) if streams is not None else None
    last: list[dict[str, dict[Stream, tuple[int, int]]]] = [{}]

    def done() -> bool:
        last[0] = behind(fed, wanted)
        return not last[0]

    try:
        return wait_for("convergence", done, timeout, poll=0.25)
    except AssertionError as e:
        raise AssertionError(f"{e}; still behind: {last[0]}") from None


def assert_exact(fed: Federation) -> dict[str, dict[str, int]]:
    """Exact accounting at every holder: for every stream of every origin, each
    node that must hold it (and any that holds part of it) holds exactly the
    origin's envelopes — every seq 1..head once, the same hashes, its head at
    the origin's — and, where it can read them, exactly the origin's records
    of that stream, once per view. Returns per node: envelopes and records held."""
    held = {n: holdings(fed[n]) for n in fed.nodes}
    problems: list[str] = []
    for origin, h in held.items():
        for stream, rows in own_streams(h).items():
            hashes = sorted(x for _, x in rows)
            seqs = sorted(s for s, _ in rows)
            if seqs != list(range(1, len(rows) + 1)) or h.heads.get(stream) != len(rows):
                problems.append(
                    f"origin {origin} {stream}: seqs not 1..{len(rows)} or head {h.heads.get(stream)}"
                )
            origin_records = sorted(h.records.get(stream, []))
            holders = expected_holders(*stream) | {n for n, x in held.items() if stream in x.envelopes}
            for holder in sorted(holders):
                x = held[holder]
                got = x.envelopes.get(stream, [])
                if sorted(s for s, _ in got) != seqs:
                    missing = sorted(set(seqs) - {s for s, _ in got})
                    dup = len(got) - len({s for s, _ in got})
                    problems.append(
                        f"{holder} {stream}: {len(got)} rows for {len(seqs)} (missing {missing[:10]}…, "
                        f"{dup} duplicated)"
                    )
                elif sorted(y for _, y in got) != hashes:
                    problems.append(f"{holder} {stream}: hashes differ from the origin's")
                if x.heads.get(stream, 0) != len(rows):
                    problems.append(f"{holder} {stream}: head {x.heads.get(stream, 0)} != {len(rows)}")
                recs = sorted(x.records.get(stream, []))
                if recs and recs != origin_records:
                    problems.append(
                        f"{holder} {stream}: {len(recs)} readable records, origin has {len(origin_records)}"
                    )
    assert not problems, "accounting:\n" + "\n".join(problems[:40])
    return {
        n: {
            "envelopes": sum(len(r) for r in x.envelopes.values()),
            "records": sum(len(r) for r in x.records.values()),
        }
        for n, x in held.items()
    }


def records_at(h: Holdings, origin: str, audience: str) -> set[str]:
    return {rid for rid, _ in h.records.get((origin, audience), [])}


def figures_file(base: Path) -> Path:
    """Where the stories write their figures (one JSON per story under the session's tmp)."""
    base.mkdir(parents=True, exist_ok=True)
    return base


def write_figures(directory: Path, story: str, figures: Mapping[str, Any]) -> None:
    (figures_file(directory) / f"{story}.json").write_text(json.dumps(figures, indent=2, default=str))
    print(f"\nFIGURES {story}: {json.dumps(figures, default=str)}")
