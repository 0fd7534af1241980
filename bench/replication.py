"""Replication benchmark: how fast envelopes move between nodes over mutual TLS,
how long a new record takes to become readable two hops away, how fast a node
catches up after an outage, and what a sync with nothing to send costs as the
history grows.

    .venv/bin/python -m bench.replication [--quick] [--envelopes N] [--database-url URL] [--json PATH]

A `node.testing.local_federation.LocalFederation` on loopback (real keys, certificates,
mutual-TLS servers, one database per node), all nodes in this process, running
the product's own sync rounds, `Replication` and `PeerSync`; the bench listens
through the product's hooks. Push and empty rounds: `bench.repl_push`;
commit → readable: `bench.repl_latency`; catch-up: `bench.repl_catchup`; the
report: `bench.repl_report`. bench/README.md says what each figure means. This
is a report: nothing here fails on timing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import (
    CpuSample,
    add_common_options,
    console,
    federation,
    finish_machine,
    machine_facts,
    peak_rss_bytes,
    prepare_process,
    step,
    warn_unknown,
    write_json,
)
from bench.repl_catchup import catchup
from bench.repl_latency import latency
from bench.repl_push import FEDERATION, Options, national_to_hub
from bench.repl_report import Report, print_report, report_json


def run_all(o: Options) -> Report:
    report = Report(o, machine_facts(o.database_url))
    cpu_start, wall_start = CpuSample.now(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gcn-bench-repl-") as tmp:
        step(f"federation: {len(FEDERATION)} nodes, mutual TLS on loopback, keys delivered")
        with federation(Path(tmp), FEDERATION, o.database_url) as fed:
            report.latency = latency(fed, o)  # first: the scheduler rounds stay small
            fed.sync_all(rounds=2)
            pushed = national_to_hub(fed, o)  # the empty rounds start from a small history
            report.pushes, report.limit, report.empty, report.imports = (
                pushed.pushes,
                pushed.limit,
                pushed.empty,
                pushed.imports,
            )
            report.catchup = catchup(fed, o)
    report.machine["seconds"] = round(time.perf_counter() - wall_start, 1)
    finish_machine(report.machine, cpu_start)
    report.bench_rss_bytes = peak_rss_bytes()
    return report


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, list[str]]:
    p = argparse.ArgumentParser(
        prog="python -m bench.replication", description=(__doc__ or "").split("\n\n")[0]
    )
    add_common_options(p)
    p.add_argument(
        "--envelopes", type=int, help="envelopes KE pushes to the hub (default 20,000; quick 2,000)"
    )
    p.add_argument("--small-batch", type=int, default=500, help="the other push batch size (default 500)")
    p.add_argument(
        "--latency-records", type=int, help="records timed commit → readable (default 200; quick 50)"
    )
    p.add_argument("--spacing-ms", type=float, default=20.0, help="between two of those records (default 20)")
    p.add_argument("--interval", type=float, default=1.0, help="SyncSettings.interval, seconds (default 1)")
    p.add_argument(
        "--catchup", type=int, help="seizures recorded during the outage (default 20,000; quick 2,000)"
    )
    p.add_argument(
        "--empty-rounds", type=int, help="empty rounds timed per history size (default 50; quick 10)"
    )
    a, unknown = p.parse_known_args(argv)
    size = 2_000 if a.quick else 20_000
    o = Options(
        envelopes=a.envelopes or size,
        small_batch=a.small_batch,
        latency_records=a.latency_records or (50 if a.quick else 200),
        spacing_s=a.spacing_ms / 1e3,
        interval_s=a.interval,
        catchup=a.catchup or size,
        empty_rounds=a.empty_rounds or (10 if a.quick else 50),
        database_url=a.database_url,
        json_path=a.json_path,
        seed=a.seed,
        log_level=a.log_level,
        quick=a.quick,
    )
    if min(o.envelopes, o.small_batch, o.latency_records, o.catchup, o.empty_rounds) < 1 or o.interval_s <= 0:
        p.error("sizes must be at least 1 and --interval positive")
    return o, unknown


def main(argv: Sequence[str] | None = None) -> int:
    options, unknown = parse_args(argv)
    warn_unknown(unknown)
    prepare_process(options.log_level)
    report = run_all(options)
    print_report(report)
    if options.json_path is not None:
        written = write_json(options.json_path, report_json(report), "replication")
        console.print(f"figures written to {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
