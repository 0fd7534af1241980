"""End-to-end federated search on loopback: a national node (KE) asks its own
store, its regional hub (RINEX-ESA) and the global hub (WCO-GLOBAL) at once,
over mutual TLS, and answers with the merged, verified page.

A `LocalFederation` (real keys, certificates, mutual-TLS `SyncService`
listeners that answer `HubSearch`); KE and TZ record seizures
(`import_seizures`, the product's default sharing policy) and three
`sync_all` rounds replicate them. KE's search is given the hubs above it the
way `gcn serve` does (`node.hub_links.HubLinks` on `FederatedSearch.hubs`).
Every query is `FederatedSearch.search` with `local_only=False`.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import NodeSpec, count_envelopes, federation, percentile, step
from bench.search_data import SeizureSource
from bench.search_shapes import PAGE, WARMUP, shapes
from gcn.v1 import node_pb2 as npb
from node.clock import system_clock
from node.hub_links import HubLinks

P50_MS, P99_MS = 50.0, 200.0
FEDERATION = (
    NodeSpec("WCO-GLOBAL", "global"),
    NodeSpec("RINEX-ESA", "regional", region="ESA", upstreams=("WCO-GLOBAL",)),
    NodeSpec("KE", "national", country="KE", region="ESA", upstreams=("RINEX-ESA",)),
    NodeSpec("TZ", "national", country="TZ", region="ESA", upstreams=("RINEX-ESA",)),
)


@dataclass
class FedResult:
    records_per_node: int
    held: dict[str, int] = field(default_factory=dict)  # envelopes at each node
    latencies_s: list[float] = field(default_factory=list)
    per_shape_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # p50, p99
    sources_not_ok: int = 0
    hits: int = 0

    def p(self, q: float) -> float | None:
        value = percentile(self.latencies_s, q)
        return None if value is None else value * 1e3

    @property
    def passed(self) -> bool | None:
        p50, p99 = self.p(50), self.p(99)
        return None if p50 is None or p99 is None else p50 <= P50_MS and p99 <= P99_MS


def federated(records: int, queries: int, database_url: str | None, seed: int) -> FedResult:
    out = FedResult(records)
    with tempfile.TemporaryDirectory(prefix="gcn-bench-search-fed-") as tmp:
        step(f"federation: {', '.join(s.node_id for s in FEDERATION)}, mutual TLS on loopback")
        with federation(Path(tmp), FEDERATION, database_url) as fed:
            ke, tz = fed.nodes["KE"], fed.nodes["TZ"]
            step(f"KE and TZ record {records:,} seizures each; replicated by sync rounds")
            for i, node in enumerate((ke, tz)):
                source = SeizureSource(seed + i, system_clock().date())
                node.app.records.import_seizures(source.seizures(records), batch_size=1000)
                probes = source.probes
            fed.sync_all(rounds=3)
            out.held = {n: count_envelopes(fed.nodes[n]) for n in fed.nodes}
            links = HubLinks(ke.tls, "KE", ke.app.trust.directory, ke.app.config.federation.upstream_ids)
            ke.app.search.hubs = links
            try:
                rng = random.Random(seed)
                for shape in shapes(probes):
                    if shape.second_page:
                        continue
                    timed: list[float] = []
                    for i in range(queries + WARMUP):
                        req = npb.SearchRequest(query=shape.make(rng), page_size=PAGE, local_only=False)
                        start = time.perf_counter()
                        reply = ke.app.search.search(req)
                        seconds = time.perf_counter() - start
                        if i < WARMUP:
                            continue
                        timed.append(seconds)
                        out.hits += len(reply.hits)
                        out.sources_not_ok += sum(s.state != npb.SourceStatus.STATE_OK for s in reply.sources)
                    out.latencies_s += timed
                    p50, p99 = percentile(timed, 50), percentile(timed, 99)
                    out.per_shape_ms[shape.name] = ((p50 or 0) * 1e3, (p99 or 0) * 1e3)
            finally:
                ke.app.search.hubs = lambda: ()
                links.close()
    return out
