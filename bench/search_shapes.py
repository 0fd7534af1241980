"""The query shapes of the search benchmark and their timing over one store.

Each shape makes `--queries` `SearchQuery` messages with values the store
holds (`bench.search_data.Probes`), or common ones; each is run after a
warm-up, two ways: `node.domain.search.search_store` alone in a read session
(the store's cost: the plan, its SQL, the folding of views) and the node's
whole `FederatedSearch.search` with `local_only` (parsing, the store, opening
every envelope of the page, the reply). Targets are the issue's (#11): p99
≤ 50 ms for container, IMO and company lookups, p99 ≤ 150 ms for free text and
prefix queries, and no shape over 300 ms at any percentile.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.common import percentile
from bench.search_data import COUNTRIES, Probes
from gcn.v1 import node_pb2 as npb
from gcn.v1 import search_pb2 as spb
from node.app import NodeApp
from node.domain.page_token import parse_page_token
from node.domain.search import search_store
from node.domain.search_query import parse_query

LOOKUP_P99_MS, TEXT_P99_MS, ANY_MS = 50.0, 150.0, 300.0
PAGE = 20
WARMUP = 10


@dataclass(frozen=True)
class Shape:
    name: str
    p99_target_ms: float | None  # None: only the 300 ms ceiling
    make: Callable[[random.Random], spb.SearchQuery]
    second_page: bool = False  # time the page after the first


@dataclass
class Timing:
    shape: Shape
    store_s: list[float] = field(default_factory=list)
    full_s: list[float] = field(default_factory=list)
    hits: list[int] = field(default_factory=list)
    mismatches: int = 0  # queries where search_store and the local search found different counts

    def p(self, which: str, q: float) -> float | None:
        values = self.store_s if which == "store" else self.full_s
        value = percentile(values, q)
        return None if value is None else value * 1e3

    def passed(self, which: str) -> bool | None:
        p99, worst = self.p(which, 99), self.p(which, 100)
        if p99 is None or worst is None:
            return None
        target = self.shape.p99_target_ms
        return worst <= ANY_MS and (target is None or p99 <= target)


SPECIES_WORDS = (
    "pangolin",
    "elephant",
    "ivory",
    "rosewood",
    "tortoise",
    "rhino",
    "pangolin scales",
    "python",
)


def shapes(probes: Probes) -> list[Shape]:
    p = probes

    def pick(values: Sequence[str]) -> Callable[[random.Random], str]:
        return lambda rng: rng.choice(values)

    def partial(name: str) -> str:
        word = max(name.split(), key=len)
        return word[: max(4, len(word) - 2)]

    def rng_dates(rng: random.Random) -> spb.SearchQuery:
        day = rng.choice(p.dates)
        y, m, _ = day.split("-")
        return spb.SearchQuery(date_from=f"{y}-{m}-01", date_to=f"{y}-{m}-28")

    return [
        Shape(
            "container exact",
            LOOKUP_P99_MS,
            lambda r: spb.SearchQuery(container_number=pick(p.containers)(r)),
        ),
        Shape(
            "container, no check digit",
            TEXT_P99_MS,
            lambda r: spb.SearchQuery(container_number=pick(p.containers)(r)[:10]),
        ),
        Shape("IMO", LOOKUP_P99_MS, lambda r: spb.SearchQuery(vessel=f"IMO {pick(p.imos)(r)}")),
        Shape("vessel name word", TEXT_P99_MS, lambda r: spb.SearchQuery(vessel=pick(p.vessel_words)(r))),
        Shape("company full name", LOOKUP_P99_MS, lambda r: spb.SearchQuery(company=pick(p.companies)(r))),
        Shape(
            "company partial word",
            TEXT_P99_MS,
            lambda r: spb.SearchQuery(company=partial(pick(p.companies)(r))),
        ),
        Shape("person full name", TEXT_P99_MS, lambda r: spb.SearchQuery(person=pick(p.persons)(r))),
        Shape("species common name", TEXT_P99_MS, lambda r: spb.SearchQuery(species=r.choice(SPECIES_WORDS))),
        Shape(
            "HS prefix, 2 digits",
            TEXT_P99_MS,
            lambda r: spb.SearchQuery(hs_code_prefix=r.choice(("44", "05", "29", "03"))),
        ),
        Shape(
            "HS prefix, 6 digits (rare)",
            TEXT_P99_MS,
            lambda r: spb.SearchQuery(hs_code_prefix=pick(_rare_hs(p))(r)),
        ),
        Shape("country (common)", None, lambda r: spb.SearchQuery(country=r.choice(COUNTRIES[:4]))),
        Shape(
            "country + role",
            None,
            lambda r: spb.SearchQuery(
                country=r.choice(COUNTRIES[:12]),
                country_role=r.choice(
                    (spb.COUNTRY_ROLE_ORIGIN, spb.COUNTRY_ROLE_DESTINATION, spb.COUNTRY_ROLE_TRANSIT)
                ),
            ),
        ),
        Shape("free text, common word", TEXT_P99_MS, lambda r: spb.SearchQuery(text=pick(p.common_words)(r))),
        Shape("free text, rare word", TEXT_P99_MS, lambda r: spb.SearchQuery(text=pick(p.rare_words)(r))),
        Shape(
            "text + country",
            TEXT_P99_MS,
            lambda r: spb.SearchQuery(text=pick(p.common_words)(r), country=r.choice(COUNTRIES[4:20])),
        ),
        Shape("date range (a month)", None, rng_dates),
        Shape("empty query (newest)", None, lambda r: spb.SearchQuery()),
        Shape("second page, country", None, lambda r: spb.SearchQuery(country=r.choice(COUNTRIES[:4])), True),
        Shape(
            "second page, text common",
            TEXT_P99_MS,
            lambda r: spb.SearchQuery(text=pick(p.common_words)(r)),
            True,
        ),
    ]


def _rare_hs(p: Probes) -> list[str]:
    """6-digit codes of the long tail (held by a handful of records)."""
    counts: dict[str, int] = {}
    for code in p.hs6:
        counts[code] = counts.get(code, 0) + 1
    rare = [c for c, n in counts.items() if n == 1]
    return rare or list(counts)


def _request(q: spb.SearchQuery, token: str = "") -> npb.SearchRequest:
    return npb.SearchRequest(query=q, page_size=PAGE, page_token=token, local_only=True)


def time_shape(app: NodeApp, shape: Shape, count: int, seed: int) -> Timing:
    rng = random.Random(seed)
    queries = [shape.make(rng) for _ in range(count + WARMUP)]
    tokens = [""] * len(queries)
    if shape.second_page:
        for i, q in enumerate(queries):
            tokens[i] = app.search.search(_request(q)).next_page_token
    out = Timing(shape)
    for i, q in enumerate(queries):
        parsed, after = parse_query(q), parse_page_token(tokens[i]).start("local")
        start = time.perf_counter()
        with app.db.read() as s:
            found = search_store(s, parsed, limit=PAGE, after=after).found
        store_s = time.perf_counter() - start
        start = time.perf_counter()
        reply = app.search.search(_request(q, tokens[i]))
        full_s = time.perf_counter() - start
        if i >= WARMUP:
            out.store_s.append(store_s)
            out.full_s.append(full_s)
            out.hits.append(len(reply.hits))
            out.mismatches += len(found) != len(reply.hits)
    return out


def time_shapes(
    app: NodeApp, probes: Probes, count: int, seed: int, only: Sequence[str] = ()
) -> list[Timing]:
    from bench.common import step

    out = []
    for i, shape in enumerate(shapes(probes)):
        if only and not any(o in shape.name for o in only):
            continue
        step(f"shape {shape.name}: {count} queries")
        out.append(time_shape(app, shape, count, seed + i))
    return out
