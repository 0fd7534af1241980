"""The report of `bench.replication`: its tables, notes and JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table

from bench.common import console, fmt, header_line, mib, ms, noise_note, safe_options, verdict
from bench.repl_catchup import Catchup
from bench.repl_latency import P50_TARGET_S, P99_TARGET_S, Latency
from bench.repl_push import (
    EMPTY_TARGET_MS,
    FLAT_TARGET,
    GLOBAL_HUB,
    HUB,
    NATIONAL,
    PORT,
    SIDE_LIMIT,
    EmptyRound,
    Limit,
    Options,
    Transfer,
)
from federation.outbox import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENVELOPES


@dataclass
class Report:
    options: Options
    machine: dict[str, Any]
    pushes: list[Transfer] = field(default_factory=list)
    limit: Limit = field(default_factory=Limit)
    latency: Latency | None = None
    catchup: Catchup | None = None
    empty: list[EmptyRound] = field(default_factory=list)
    imports: list[Transfer] = field(default_factory=list)  # import_seizures, informative
    bench_rss_bytes: int = 0


def _cpu(x: Transfer) -> str:
    return f"{x.cpu_s / x.seconds:.2f}" if x.seconds > 0 else "—"


def throughput_table(r: Report) -> Table:
    lim = r.limit
    t = Table(title="1, 3. Replication throughput (envelopes/s)", title_justify="left")
    t.add_column("transfer", no_wrap=True)
    for col in (
        "envelopes",
        "calls",
        "seconds",
        "env/s",
        "µs/env",
        "target",
        "result",
        "vs limit",
        "CPU/wall",
    ):
        t.add_column(col, justify="right", no_wrap=True)
    rows = [*r.pushes, *([r.catchup.transfer] if r.catchup else [])]
    for x in rows:
        t.add_row(
            x.name,
            f"{x.envelopes:,}",
            str(x.calls or "—"),
            fmt(x.seconds, 2),
            f"{x.rate:,.0f}",
            fmt(x.us),
            "—" if x.target is None else f"≥ {x.target:,.0f}",
            verdict(x.passed),
            f"{x.rate / lim.rate:.2f}" if lim.rate else "—",
            _cpu(x),
        )
    cpu = f"{lim.cpu_s / lim.apply_s:.2f}" if lim.apply_s else "—"
    t.add_row(
        f"[b]limit[/b]: verify_batch + apply at {SIDE_LIMIT} (no gRPC)",
        f"{lim.envelopes:,}",
        str(lim.batches),
        fmt(lim.apply_s, 2),
        f"[b]{lim.rate:,.0f}[/b]",
        fmt(lim.us(lim.apply_s)),
        "—",
        "—",
        "1.00",
        cpu,
    )
    return t


def limit_table(r: Report) -> Table:
    lim = r.limit
    push = r.pushes[0] if r.pushes else None
    t = Table(title="1. Where a push's time goes (µs per envelope)", title_justify="left")
    t.add_column("component")
    t.add_column("what", style="dim")
    t.add_column("µs/env", justify="right")
    t.add_column("share of the push", justify="right")
    parts = [
        ("read", f"sender: SyncSource.batch_for at {NATIONAL}", lim.read_s),
        ("verify", "receiver: Receiver.verify_batch called alone (Ed25519, hash, relay rule)", lim.verify_s),
        (
            "store",
            "receiver: Receiver.apply less verify (dedupe, insert, heads, open + index, commit)",
            lim.store_s,
        ),
    ]
    push_us = push.us if push else 0.0
    for name, what, seconds in parts:
        us = lim.us(seconds)
        t.add_row(name, what, fmt(us), f"{us / push_us:.0%}" if push_us else "—")
    done = lim.us(lim.read_s + lim.apply_s)
    t.add_row("[b]read + verify + store[/b]", "all the in-process work of a push", f"[b]{fmt(done)}[/b]", "")
    if push:
        rest = push_us - done
        t.add_row(
            "rest",
            "gRPC, protobuf (de)serialization, TLS, GetVector, the GIL between threads",
            fmt(rest),
            f"{rest / push_us:.0%}" if push_us else "—",
        )
        t.add_row(f"[b]push[/b] ({push.name})", "measured", f"[b]{fmt(push_us)}[/b]", "100%")
    return t


def latency_table(lat: Latency) -> Table:
    t = Table(
        title=f"2. Commit → readable ({lat.records} records, one every {lat.spacing_s * 1e3:.0f} ms, "
        f"sync interval {lat.interval_s:g} s)",
        title_justify="left",
    )
    t.add_column("hop", no_wrap=True)
    for col in ("records", "p50 ms", "p95 ms", "p99 ms", "max ms", "target", "result"):
        t.add_column(col, justify="right", no_wrap=True)
    for hop in lat.hops:
        last = hop is lat.end_to_end
        target = f"p50 ≤ {P50_TARGET_S * 1e3:.0f}, p99 ≤ {P99_TARGET_S * 1e3:,.0f}" if last else "—"
        t.add_row(
            f"[b]{hop.name}[/b]" if last else hop.name,
            f"{len(hop.seconds)}",
            *[ms(hop.percentile(q)) for q in (50, 95, 99, 100)],
            target,
            verdict(lat.passed) if last else "—",
        )
    return t


def latency_notes(lat: Latency) -> str:
    rounds = "; ".join(
        f"{name}: " + ", ".join(f"{n} {k}" for k, n in sorted(c.items())) for name, c in lat.rounds.items()
    )
    during = ", ".join(f"{name} {n}" for name, n in lat.pokes_in_rounds.items())
    took = ", ".join(f"{name} {med:.0f} / {top:.0f}" for name, (med, top) in lat.round_ms.items())
    carried = ", ".join(f"{n} by {k}" for k, n in sorted(lat.carried.items(), key=lambda kv: -kv[1]))
    return (
        f"arrived at {GLOBAL_HUB}: {lat.arrived}/{lat.records}, readable there (reader.get): "
        f"{lat.readable}/{lat.records}; record_seizure at {NATIONAL} took {lat.record_s * 1e3:.1f} ms each.\n"
        f"Path — records carried on both hops by rounds a commit brought forward (push-on-commit) or "
        f"not: {carried}.\n"
        f"Rounds by trigger — {rounds}. (commit: poked while idle; rerun: at once after a round that "
        "was poked while it ran; timer: the interval, or a dropped poke.)\n"
        f"Pokes that came while a round with that peer ran — {during}.\n"
        f"Round duration, median / max ms — {took}."
        + (
            f"\n[yellow]{lat.unshared} records stayed at {NATIONAL} (no key for global)[/yellow]"
            if lat.unshared
            else ""
        )
    )


def empty_table(r: Report) -> Table:
    t = Table(title=f"4. A sync round with nothing to send ({NATIONAL} ↔ {HUB})", title_justify="left")
    for col in (f"history at {NATIONAL}", f"at {HUB}", "rounds", "median ms", "p90 ms", "calls"):
        t.add_column(col, justify="right", no_wrap=True)
    for col in ("sent / received B", "vectors B", "moved"):
        t.add_column(col, justify="right", no_wrap=True)
    for e in r.empty:
        t.add_row(
            f"{e.history_national:,}",
            f"{e.history_hub:,}",
            str(len(e.seconds)),
            fmt(e.median_ms, 2),
            fmt(e.p90_ms, 2),
            str(e.calls),
            f"{e.bytes_sent} / {e.bytes_received}",
            f"{e.vector_bytes} + {e.pull_request_bytes}",
            str(e.moved),
        )
    return t


@dataclass(frozen=True)
class EmptySummary:
    ratio: float  # largest / smallest median over the history sizes
    worst_ms: float  # the largest median

    @property
    def flat(self) -> bool:
        return 0 < self.ratio <= FLAT_TARGET

    @property
    def cheap(self) -> bool:
        return 0 < self.worst_ms <= EMPTY_TARGET_MS


def empty_summary(r: Report) -> EmptySummary:
    medians = [e.median_ms for e in r.empty]
    if not medians or min(medians) <= 0:
        return EmptySummary(0.0, 0.0)
    return EmptySummary(max(medians) / min(medians), max(medians))


def bytes_table(r: Report) -> Table:
    t = Table(title="5. Bytes on the wire and memory", title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for x in [*r.pushes, *([r.catchup.transfer] if r.catchup else [])]:
        if x.envelopes:
            t.add_row(f"PushRequest bytes per envelope: {x.name}", f"{x.bytes_sent / x.envelopes:,.0f} B")
    t.add_row("envelope = header + ciphertext + signature (mean)", f"{r.limit.envelope_bytes:,.0f} B")
    t.add_row("peak RSS, bench process (all six nodes, their servers)", mib(r.bench_rss_bytes))
    return t


def print_report(r: Report) -> None:
    m, o = r.machine, r.options
    console.print(header_line("gcn replication benchmark", m, o.log_level))
    console.print()
    console.print(throughput_table(r))
    console.print()
    console.print(limit_table(r))
    if r.catchup:
        c = r.catchup
        console.print(
            f"catch-up: while {NATIONAL} was down the round failed ({c.failed_attempt}); {PORT} recorded "
            f"{c.records:,} seizures in {c.import_s:.1f} s; arrived: {c.arrived:,}/{c.records:,}"
            + (f"; [yellow]the timed round failed: {c.error}[/yellow]" if c.error else "")
        )
    if r.latency:
        console.print()
        console.print(latency_table(r.latency))
        console.print(latency_notes(r.latency))
    console.print()
    console.print(empty_table(r))
    e = empty_summary(r)
    console.print(
        f"flat: largest / smallest median {e.ratio:.2f} (target ≤ {FLAT_TARGET}) {verdict(e.flat)}; "
        f"a few ms: largest median {e.worst_ms:.2f} ms (target ≤ {EMPTY_TARGET_MS:g}) {verdict(e.cheap)}.\n"
        "'sent / received' is RoundResult.bytes_sent / bytes_received (push and pull payloads); 'vectors' "
        "are the GetVector reply and the PullRequest, which RoundResult does not count."
    )
    console.print()
    console.print(bytes_table(r))
    imports = ", ".join(f"{x.envelopes:,} in {x.seconds:.1f} s" for x in r.imports)
    console.print(
        f"\n[dim]Setup (not measured above): import_seizures at {NATIONAL}: {imports}. All nodes run in this "
        "process: a push's sender, receiver and both gRPC stacks share one GIL.[/dim]"
    )
    console.print(f"{noise_note(m)} The run took {m['seconds']:.0f} s.")


def _transfer_json(x: Transfer, lim: Limit) -> dict[str, Any]:
    return {
        **asdict(x),
        "envelopes_per_s": round(x.rate, 1),
        "us_per_envelope": round(x.us, 1),
        "pass": x.passed,
        "ratio_to_limit": round(x.rate / lim.rate, 3) if lim.rate else None,
        "push_bytes_per_envelope": round(x.bytes_sent / x.envelopes, 1) if x.envelopes else None,
    }


def report_json(r: Report) -> dict[str, Any]:
    lim = r.limit
    lat = r.latency
    summary = empty_summary(r)
    return {
        "machine": r.machine,
        "options": safe_options(r.options),
        "default_batch": {"max_envelopes": DEFAULT_MAX_ENVELOPES, "max_bytes": DEFAULT_MAX_BYTES},
        "throughput": [_transfer_json(x, lim) for x in r.pushes],
        "limit": {
            **asdict(lim),
            "envelopes_per_s": round(lim.rate, 1),
            "read_us": round(lim.us(lim.read_s), 1),
            "verify_us": round(lim.us(lim.verify_s), 1),
            "store_us": round(lim.us(lim.store_s), 1),
        },
        "latency": None
        if lat is None
        else {
            **{k: v for k, v in asdict(lat).items() if k != "hops"},
            "pass": lat.passed,
            "hops": {
                h.name: {f"p{q}_ms": _roundms(h.percentile(q)) for q in (50, 95, 99, 100)} for h in lat.hops
            },
        },
        "catchup": None
        if r.catchup is None
        else {**asdict(r.catchup), "transfer": _transfer_json(r.catchup.transfer, lim)},
        "empty_rounds": [
            {**asdict(e), "seconds": None, "median_ms": round(e.median_ms, 3), "p90_ms": round(e.p90_ms, 3)}
            for e in r.empty
        ],
        "empty_rounds_largest_over_smallest": round(summary.ratio, 3),
        "empty_rounds_flat": summary.flat,
        "empty_rounds_few_ms": summary.cheap,
        "imports": [asdict(x) for x in r.imports],
        "bench_peak_rss_bytes": r.bench_rss_bytes,
    }


def _roundms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 2)
