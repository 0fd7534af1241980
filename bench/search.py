"""Search benchmark (issue #11): query shapes over a store of N records, and
end-to-end federated search through the hubs on loopback.

    .venv/bin/python -m bench.search --records N [--backend sqlite|postgresql] [--reuse DIR]

The store is one node's, its records made by its own code (`bench.search_build`;
`--reuse DIR` keeps it, and tops it up to N, for the next run); each query
shape (`bench.search_shapes`) is timed as the store's cost (`search_store`)
and as the node's whole local search (`FederatedSearch.search`, local_only,
the page's envelopes opened); then a small federation (`bench.search_fed`)
times KE's search through RINEX-ESA and WCO-GLOBAL. bench/README.md says what
each figure means. This is a report: nothing here fails on timing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    CpuSample,
    add_common_options,
    console,
    finish_machine,
    machine_facts,
    mib,
    noise_note,
    peak_rss_bytes,
    prepare_process,
    step,
    warn_unknown,
    write_json,
)
from bench.search_build import analyze, search_store
from bench.search_fed import P50_MS, P99_MS, FedResult, federated
from bench.search_shapes import ANY_MS, Timing, time_shapes

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _cell(t: Timing, which: str) -> str:
    ps = [t.p(which, q) for q in (50, 95, 99, 100)]
    return " / ".join("—" if v is None else f"{v:,.1f}" for v in ps)


def _mark(ok: bool | None) -> str:
    return "—" if ok is None else "[green]✓[/green]" if ok else "[red]✗[/red]"


def print_shapes(timings: Sequence[Timing]) -> None:
    console.print(
        f"\n[b]Query shapes[/b] (ms, p50 / p95 / p99 / max; target p99, and every percentile ≤ {ANY_MS:.0f})"
    )
    console.print(f"{'shape':32} {'hits':>5}  {'search_store':>28}   {'FederatedSearch local':>28}  target")
    for t in timings:
        target = f"≤ {t.shape.p99_target_ms:.0f}" if t.shape.p99_target_ms else f"≤ {ANY_MS:.0f} max"
        hits = sum(t.hits) / max(1, len(t.hits))
        console.print(
            f"{t.shape.name:32} {hits:5.1f}  {_cell(t, 'store'):>28} {_mark(t.passed('store'))} "
            f"{_cell(t, 'full'):>28} {_mark(t.passed('full'))}  {target}"
        )


def print_fed(f: FedResult) -> None:
    console.print(
        f"\n[b]Federated[/b] KE → local + RINEX-ESA + WCO-GLOBAL, mutual TLS on loopback; "
        f"{f.records_per_node:,} seizures recorded at KE and at TZ; envelopes held: "
        + ", ".join(f"{k} {v:,}" for k, v in f.held.items())
    )
    console.print(
        f"all shapes ({len(f.latencies_s)} searches): p50 / p95 / p99 / max "
        f"{f.p(50):,.1f} / {f.p(95):,.1f} / {f.p(99):,.1f} / {f.p(100):,.1f} ms; "
        f"target p50 ≤ {P50_MS:.0f}, p99 ≤ {P99_MS:.0f}: {_mark(f.passed)}; "
        f"sources not ok: {f.sources_not_ok}; mean hits {f.hits / max(1, len(f.latencies_s)):.1f}"
    )
    for name, (p50, p99) in f.per_shape_ms.items():
        console.print(f"  {name:32} p50 {p50:7.1f}  p99 {p99:7.1f} ms")


def _timing_json(t: Timing) -> dict[str, Any]:
    return {
        "shape": t.shape.name,
        "p99_target_ms": t.shape.p99_target_ms,
        "mean_hits": sum(t.hits) / max(1, len(t.hits)),
        **{f"{w}_p{q}_ms": t.p(w, q) for w in ("store", "full") for q in (50, 95, 99, 100)},
        "store_passed": t.passed("store"),
        "full_passed": t.passed("full"),
    }


def run(o: argparse.Namespace) -> dict[str, Any]:
    database_url = o.database_url or (DEFAULT_PG if o.backend == "postgresql" else None)
    machine = machine_facts(database_url)
    cpu_start = CpuSample.now()
    out: dict[str, Any] = {"machine": machine, "records": o.records, "backend": o.backend}
    if o.records:
        with search_store(o.records, database_url, o.reuse, o.seed) as store:
            counts = store.counts()
            size = store.size_bytes() or 0
            out["store"] = {**counts, "bytes": size, "built": store.built}
            console.print(
                f"\n[b]Store[/b] ({o.backend}): {counts['records']:,} records rows, "
                f"{counts['envelopes']:,} envelopes, {counts['record_terms']:,} record_terms rows "
                f"({counts['record_terms'] / max(1, counts['records']):.1f} per record); "
                f"{mib(size)} ({size / max(1, counts['records']):,.0f} B per record)"
            )
            for b in store.built.get("builds", []):
                console.print(
                    f"built {b['records']:,} onto {b['onto']:,} in {b['seconds']:,.0f} s: "
                    f"{b['records_per_s']:,} records/s"
                )
            if o.analyze:
                step("ANALYZE")
                out["analyze_s"] = analyze(store)
            timings = time_shapes(store.app, store.probes, o.queries, o.seed, o.only)
            print_shapes(timings)
            out["shapes"] = [_timing_json(t) for t in timings]
    if o.fed_records:
        fed = federated(o.fed_records, o.fed_queries, database_url, o.seed)
        print_fed(fed)
        out["federated"] = {
            "records_per_node": fed.records_per_node,
            "held": fed.held,
            **{f"p{q}_ms": fed.p(q) for q in (50, 95, 99, 100)},
            "passed": fed.passed,
            "sources_not_ok": fed.sources_not_ok,
            "per_shape_ms": fed.per_shape_ms,
        }
    finish_machine(machine, cpu_start)
    machine["bench_rss_bytes"] = peak_rss_bytes()
    console.print("\n" + noise_note(machine))
    return out


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="python -m bench.search", description=(__doc__ or "").split("\n\n")[0])
    add_common_options(p)
    p.add_argument("--records", type=int, help="records in the store (default 20,000; quick 5,000; 0: none)")
    p.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--reuse", type=Path, help="keep the store in this directory (built or topped up to N)")
    p.add_argument("--queries", type=int, default=200, help="timed queries per shape (default 200)")
    p.add_argument("--only", nargs="*", default=(), help="only the shapes whose names contain one of these")
    p.add_argument(
        "--analyze", action="store_true", help="ANALYZE the store before timing (the node does not)"
    )
    p.add_argument(
        "--fed-records", type=int, help="seizures KE and TZ each record (default 5,000; quick 1,000)"
    )
    p.add_argument("--fed-queries", type=int, default=50, help="federated searches per shape (default 50)")
    o, unknown = p.parse_known_args(argv)
    if o.records is None:
        o.records = 5_000 if o.quick else 20_000
    if o.fed_records is None:
        o.fed_records = 1_000 if o.quick else 5_000
    return o, unknown


def main(argv: Sequence[str] | None = None) -> None:
    o, unknown = parse_args(argv)
    prepare_process(o.log_level)
    warn_unknown(unknown)
    start = time.perf_counter()
    out = run(o)
    out["seconds"] = round(time.perf_counter() - start, 1)
    if o.json_path:
        written = write_json(
            o.json_path, {"options": {k: str(v) for k, v in vars(o).items()}, **out}, "search"
        )
        console.print(f"figures written to {written}")


if __name__ == "__main__":
    main()
