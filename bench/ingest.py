"""Ingest benchmark: how many seizures per second a node stores, in process and
through gRPC, set against the measured limit: the core of the same work
(validate, seal, insert) as the product's own commit does it, timed by its
phase hooks (`node.timing`).

    .venv/bin/python -m bench.ingest [--quick] [--records N] [--database-url URL] [--json PATH]

In process: `bench.ingest_inproc`; through gRPC: `bench.ingest_grpc`.
bench/README.md says what each figure means. This is a report: nothing here
fails on timing.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.common import (
    CpuSample,
    add_common_options,
    console,
    finish_machine,
    fmt,
    header_line,
    machine_facts,
    make_seizures,
    mib,
    noise_note,
    peak_rss_bytes,
    prepare_process,
    safe_options,
    verdict,
    warn_unknown,
    write_json,
)
from bench.ingest_grpc import through_grpc
from bench.ingest_inproc import WARMUP, Limit, Options, Run, Sizes, Workspace, body_bytes, in_process

QUICK_RECORDS, QUICK_CLIENTS = 1000, 4


@dataclass
class Report:
    options: Options
    machine: dict[str, Any]
    limit: Limit  # batched, as the bulk ingest: the measured limit
    per_record: Limit  # one record per transaction, as each RecordSeizure call
    runs: list[Run]
    sizes: Sizes
    bench_rss_bytes: int = 0


def run_all(o: Options) -> Report:
    machine = machine_facts(o.database_url)
    cpu_start = CpuSample.now()
    today = datetime.now(UTC).date()
    sizes = Sizes()
    warmup = make_seizures(o.seed - 1, WARMUP, today)
    seizures = make_seizures(o.seed, o.records, today)
    sizes.body = body_bytes(seizures, today)
    with tempfile.TemporaryDirectory(prefix="gcn-bench-") as tmp:
        ws = Workspace(Path(tmp), o.database_url)
        try:
            limit, per_record, bulk = in_process(ws, o, seizures, warmup, sizes)
            runs = [bulk, *through_grpc(ws, o, today, sizes)]
        finally:
            ws.close()
    finish_machine(machine, cpu_start)
    return Report(o, machine, limit, per_record, runs, sizes, peak_rss_bytes())


# -- the report ------------------------------------------------------------------------------


_COMPONENTS = (
    ("validate", "validation.check_seizure", "validate_s"),
    ("seal", "views + serialize + seal (AES-256-GCM, Ed25519, SHA-256)", "seal_s"),
    ("insert", "the commit's transaction, less the seal (append_own, index, commit)", "insert_s"),
)


def limit_table(r: Report) -> Table:
    limits = (r.limit, r.per_record)
    t = Table(title="1. Measured limit: the product's commit, its phases timed", title_justify="left")
    t.add_column("component")
    t.add_column("what", style="dim")
    for lim in limits:
        t.add_column(f"µs/record ({lim.batch}/txn)", justify="right")
        t.add_column("share", justify="right")
    for name, what, attr in _COMPONENTS:
        cells = [(lim.us(getattr(lim, attr)), getattr(lim, attr) / lim.seconds) for lim in limits]
        t.add_row(name, what, *[c for us, share in cells for c in (fmt(us), f"{share:.0%}")])
    totals = [c for lim in limits for c in (f"[b]{fmt(lim.us(lim.seconds))}[/b]", "100%")]
    t.add_row("[b]total[/b]", "", *totals)
    t.add_row("", "records/s", *[c for lim in limits for c in (f"[b]{lim.rate:,.0f}[/b]", "")])
    return t


def throughput_table(r: Report) -> Table:
    t = Table(title="2-4. Throughput", title_justify="left")
    t.add_column("scenario", no_wrap=True)
    for col in ("records", "seconds", "records/s", "target", "result", "vs limit", "vs 1/txn"):
        t.add_column(col, justify="right", no_wrap=True)
    for col in ("p50 ms", "p95 ms", "p99 ms", "errors"):
        t.add_column(col, justify="right", no_wrap=True)
    lim, one = r.limit, r.per_record
    for label, x in ((f"limit, phases ({lim.batch}/txn)", lim), ("limit, phases (1/txn)", one)):
        ratios = (f"{x.rate / lim.rate:.2f}", f"{x.rate / one.rate:.2f}")
        t.add_row(label, f"{x.records:,}", fmt(x.seconds, 2), f"{x.rate:,.0f}", "—", "—", *ratios, *["—"] * 4)
    for run in r.runs:
        t.add_row(
            run.name,
            f"{run.records:,}",
            fmt(run.seconds, 2),
            f"{run.rate:,.0f}",
            "—" if run.target is None else f"≥ {run.target:,.0f}",
            verdict(run.passed),
            f"{run.rate / lim.rate:.2f}",
            f"{run.rate / one.rate:.2f}",
            *[fmt(run.percentile_ms(q), 2) for q in (50, 95, 99)],
            str(run.errors),
        )
    return t


def bytes_table(r: Report) -> Table:
    s = r.sizes
    t = Table(title="5. Bytes per record and memory", title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("RecordSeizureRequest, serialized (gRPC payload in)", f"{s.request:,.0f} B")
    t.add_row("RecordReply, serialized (gRPC payload out)", f"{s.reply:,.0f} B")
    t.add_row("RecordBody plaintext", f"{s.body:,.0f} B")
    t.add_row(
        "envelope = header + ciphertext + signature",
        f"{s.header:,.0f} + {s.ciphertext:,.0f} + {s.signature:,.0f} = {s.envelope:,.0f} B",
    )
    t.add_row(
        "envelopes sealed per record by the bulk ingest (the limit: the same policy)",
        f"{s.envelopes_per_record:.2f}",
    )
    t.add_row("peak RSS, bench process (clients, in-process nodes)", mib(r.bench_rss_bytes))
    server_rss = max((run.server_rss_bytes for run in r.runs), default=0)
    t.add_row("peak RSS, server process (largest over the gRPC runs)", mib(server_rss))
    return t


def print_report(r: Report) -> None:
    console.print(header_line("gcn ingest benchmark", r.machine, r.options.log_level))
    for table in (limit_table(r), throughput_table(r), bytes_table(r)):
        console.print()
        console.print(table)
    console.print(f"\n{contention_note(r)}")
    console.print(
        "[dim]The limit's phases are the product's own (node.timing hooks in RecordService._commit and "
        "EnvelopeLog.append_own); what the service does around them (policy, record ids, the reply, "
        "logging) is left out. gRPC servers run in a process of their own and authenticate every call "
        "(bearer token); 'threads' clients share the bench process (one GIL), 'processes' clients each "
        "have one (and compete with the server for the cores). RecordSeizures rows count records (100 per "
        "call); their latencies are those of whole calls.[/dim]"
    )


def contention_note(r: Report) -> str:
    """CPU time over wall time of the single-threaded in-process runs: well below 1,
    the process waited (for the disk, or for a core that other processes held)."""
    bulk = next(run for run in r.runs if run.cpu_s is not None)
    shares = (
        ("limit", r.limit.cpu_s / r.limit.wall_s if r.limit.wall_s else 0.0),
        ("1/txn limit", r.per_record.cpu_s / r.per_record.wall_s if r.per_record.wall_s else 0.0),
        ("bulk", (bulk.cpu_s or 0.0) / bulk.seconds if bulk.seconds else 0.0),
    )
    listed = ", ".join(f"{name} {share:.2f}" for name, share in shares)
    return (
        f"CPU/wall of the in-process runs: {listed} (below ~0.9: waiting on the disk or on a busy core).\n"
        + noise_note(r.machine)
    )


def _limit_json(lim: Limit) -> dict[str, Any]:
    return {
        "records": lim.records,
        "records_per_transaction": lim.batch,
        "validate_us": round(lim.us(lim.validate_s), 2),
        "seal_us": round(lim.us(lim.seal_s), 2),
        "insert_us": round(lim.us(lim.insert_s), 2),
        "total_us": round(lim.us(lim.seconds), 2),
        "records_per_s": round(lim.rate, 1),
        "cpu_per_wall": round(lim.cpu_s / lim.wall_s, 3) if lim.wall_s else None,
    }


def _run_json(run: Run, r: Report) -> dict[str, Any]:
    return {
        "name": run.name,
        "records": run.records,
        "seconds": round(run.seconds, 4),
        "records_per_s": round(run.rate, 1),
        "target_records_per_s": run.target,
        "pass": run.passed,
        "ratio_to_limit": round(run.rate / r.limit.rate, 3),
        "ratio_to_limit_1_per_txn": round(run.rate / r.per_record.rate, 3),
        **{f"p{q}_ms": run.percentile_ms(q) for q in (50, 95, 99)},
        "errors": run.errors,
        "server_peak_rss_bytes": run.server_rss_bytes or None,
        "cpu_per_wall": None if run.cpu_s is None else round(run.cpu_s / run.seconds, 3),
    }


def report_json(r: Report) -> dict[str, Any]:
    return {
        "machine": r.machine,
        "options": safe_options(r.options),
        "limit": _limit_json(r.limit),
        "limit_1_per_txn": _limit_json(r.per_record),
        "runs": [_run_json(run, r) for run in r.runs],
        "bytes_per_record": {**asdict(r.sizes), "envelope": r.sizes.envelope},
        "bench_peak_rss_bytes": r.bench_rss_bytes,
    }


# -- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, list[str]]:
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=(__doc__ or "").split("\n\n")[0])
    add_common_options(p)
    p.add_argument(
        "--records", type=int, help="records for the limit and bulk runs (default 5,000; quick 1,000)"
    )
    p.add_argument("--rpc-records", type=int, help="calls per gRPC run, over all clients (default records/4)")
    p.add_argument("--clients", type=int, help="concurrent gRPC clients (default 8; quick 4)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument(
        "--no-processes", dest="processes", action="store_false", help="skip multi-process clients"
    )
    a, unknown = p.parse_known_args(argv)
    records = a.records or (QUICK_RECORDS if a.quick else 5000)
    clients = a.clients or (QUICK_CLIENTS if a.quick else 8)
    if min(records, clients, a.batch_size) < 1:
        p.error("--records, --clients and --batch-size must be at least 1")
    rpc_records = a.rpc_records if a.rpc_records is not None else max(clients, records // 4)
    options = Options(
        records,
        rpc_records,
        clients,
        a.batch_size,
        a.database_url,
        a.json_path,
        a.seed,
        a.log_level,
        a.processes,
        a.quick,
    )
    return options, unknown


def main(argv: Sequence[str] | None = None) -> int:
    options, unknown = parse_args(argv)
    warn_unknown(unknown)
    prepare_process(options.log_level)
    report = run_all(options)
    print_report(report)
    if options.json_path is not None:
        written = write_json(options.json_path, report_json(report), "ingest")
        console.print(f"figures written to {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
