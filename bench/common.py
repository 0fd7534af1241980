"""What every benchmark module shares: the command line's common options, the
nodes' logging and environment, seizures, a federation on loopback
(`node.testing.local_federation`), phase timers on the product's own hooks
(`node.timing.Phases`), percentiles, CPU and memory, and the report's
formatting and JSON file.

Nothing here copies product code: the benches drive the product through its
public entry points and listen to its hooks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.internal import api_implementation
from rich.console import Console
from sqlalchemy import func, make_url, select

from bench.schemas import PostgresSchemas
from federation.policy import Share
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from node.clock import system_clock
from node.domain.samples import random_seizure
from node.logging import configure_logging
from node.storage.models import EnvelopeRow
from node.testing.local_federation import LocalFederation, LocalNode
from node.timing import Phases

console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
T = TypeVar("T")


# -- the command line --------------------------------------------------------------------------


def add_common_options(p: argparse.ArgumentParser) -> None:
    """The options every bench module takes (bench/run.sh passes them all the same)."""
    p.add_argument("--quick", action="store_true", help="small sizes, to iterate")
    p.add_argument("--database-url", help="PostgreSQL URL (one temporary schema per node); default SQLite")
    p.add_argument("--json", type=Path, dest="json_path", help="also write the figures as JSON to this file")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def warn_unknown(unknown: Sequence[str]) -> None:
    if unknown:  # bench/run.sh passes every module the same arguments
        console.print(f"[yellow]ignoring options of other bench modules: {' '.join(unknown)}[/yellow]")


def prepare_process(log_level: str) -> None:
    """Drop GCN_* variables (they would override the bench nodes' configuration,
    e.g. their database) and log as a served node does, into /dev/null."""
    names = sorted(k for k in os.environ if k.startswith("GCN_"))
    for name in names:
        del os.environ[name]
    if names:
        console.print(f"[yellow]ignoring {', '.join(names)} for the bench nodes[/yellow]")
    quiet_logging(log_level)


def quiet_logging(level: str) -> None:
    """Log as a served node does (JSON lines at `level`), into /dev/null."""
    configure_logging("json", level, open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process


def step(message: str) -> None:
    console.print(f"[dim]… {message}[/dim]")


def safe_options(options: Any) -> dict[str, Any]:
    """The options as JSON values, a database password hidden."""
    out = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()}
    if out.get("database_url"):
        out["database_url"] = make_url(out["database_url"]).render_as_string(hide_password=True)
    return out


def write_json(path: Path, data: dict[str, Any], bench: str) -> Path:
    """Write `data` (tagged `"bench": bench`) to `path`, never over another
    module's figures (bench/run.sh gives every module the same --json): next to
    such a file, write `<stem>-<bench><suffix>`."""
    if path.exists():
        try:
            ours = json.loads(path.read_text()).get("bench") == bench
        except (ValueError, AttributeError):
            ours = False
        if not ours:
            path = path.with_name(f"{path.stem}-{bench}{path.suffix}")
    path.write_text(json.dumps({"bench": bench, **data}, indent=2) + "\n")
    return path


# -- seizures ----------------------------------------------------------------------------------


def make_seizures(seed: int, count: int, today: date | None = None) -> list[rec.Seizure]:
    rng = random.Random(seed)
    day = today or system_clock().date()
    return [random_seizure(rng, day) for _ in range(count)]


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- timers and statistics ---------------------------------------------------------------------


@dataclass
class PhaseTotals:
    """Seconds per phase, added up from the product's `node.timing.Phases` hooks."""

    seconds: dict[str, float] = field(default_factory=dict)

    def __call__(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def get(self, phase: str) -> float:
        return self.seconds.get(phase, 0.0)


@contextmanager
def listening(*phases: Phases) -> Iterator[PhaseTotals]:
    """Add up the phases the product reports on each of `phases` during the block."""
    totals = PhaseTotals()
    for p in phases:
        p.listeners.append(totals)
    try:
        yield totals
    finally:
        for p in phases:
            p.listeners.remove(totals)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (inclusive method); q ≥ 100 is the maximum."""
    if not values:
        return None
    if q >= 100:
        return max(values)
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


@dataclass(frozen=True)
class CpuSample:
    """Machine-wide busy and steal CPU seconds (/proc/stat), and this process's
    own with its waited-for children (getrusage), at one moment."""

    wall: float
    busy: float
    steal: float
    ours: float

    @classmethod
    def now(cls) -> CpuSample:
        busy = steal = 0.0
        try:
            ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
            hz = os.sysconf("SC_CLK_TCK")
            user, nice, system, _idle, _iowait, irq, softirq, stolen = ticks
            busy, steal = (user + nice + system + irq + softirq) / hz, stolen / hz
        except (OSError, ValueError):
            pass
        ours = sum(
            u.ru_utime + u.ru_stime
            for u in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
        )
        return cls(time.monotonic(), busy, steal, ours)

    def since(self, start: CpuSample) -> dict[str, float]:
        """Shares of the machine (cores x wall time) between `start` and this sample."""
        capacity = (os.cpu_count() or 1) * max(1e-9, self.wall - start.wall)
        others = (self.busy - start.busy) - (self.ours - start.ours)
        return {
            "others_cpu_share": round(max(0.0, others) / capacity, 3),
            "steal_share": round((self.steal - start.steal) / capacity, 3),
        }


def peak_rss_bytes() -> int:
    """This process's peak resident set size. Linux's VmHWM is this process's own;
    `ru_maxrss` (KiB on Linux) also counts the parent's RSS for a spawned child."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def machine_facts(database_url: str | None) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "protobuf_backend": api_implementation.Type(),
        "grpc": grpc.__version__,
        "database": "postgresql" if database_url else "sqlite (temp dir)",
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def finish_machine(machine: dict[str, Any], cpu_start: CpuSample) -> None:
    machine["load_average_at_end"] = round(os.getloadavg()[0], 2)
    machine.update(CpuSample.now().since(cpu_start))


def noise_note(m: dict[str, Any]) -> str:
    return (
        f"Other processes used {m['others_cpu_share']:.0%} of the machine during the run, the hypervisor "
        f"stole {m['steal_share']:.0%}; load average {m['load_average_at_start']} at start, "
        f"{m['load_average_at_end']} at end. Figures taken on a busy machine are low."
    )


def header_line(title: str, m: dict[str, Any], log_level: str) -> str:
    return (
        f"\n[b]{title}[/b] — {m['cores']} cores, Python {m['python']}, "
        f"protobuf {m['protobuf_backend']}, grpcio {m['grpc']}, database {m['database']}, "
        f"log level {log_level}, load average at start {m['load_average_at_start']}"
    )


# -- formatting --------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def ms(seconds: float | None, digits: int = 1) -> str:
    return "—" if seconds is None else f"{seconds * 1e3:,.{digits}f}"


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "—"


def verdict(passed: bool | None) -> str:
    if passed is None:
        return "—"
    return "[green]PASS[/green]" if passed else "[red]BELOW[/red]"


# -- a federation on loopback ------------------------------------------------------------------


@dataclass(frozen=True)
class FixedPolicy:
    """Every record to the same audiences (a test-style policy, whatever its TLP)."""

    share_list: tuple[Share, ...]

    def shares(self, kind: epb.RecordKind.ValueType, body: rec.RecordBody) -> list[Share]:
        return list(self.share_list)


def share_to(*audiences: str) -> FixedPolicy:
    return FixedPolicy(tuple(Share(a, epb.VIEW_FULL) for a in audiences))


@dataclass(frozen=True)
class NodeSpec:
    node_id: str
    role: str
    country: str = ""
    region: str = ""
    upstreams: tuple[str, ...] = ()


@contextmanager
def federation(base: Path, specs: Sequence[NodeSpec], database_url: str | None) -> Iterator[LocalFederation]:
    """A `LocalFederation` of `specs` in `base`: every node serves (mutual TLS on
    127.0.0.1), the directory is published and three `sync_all` rounds deliver
    the audience keys. Each node's database is a SQLite file in its directory, or
    one PostgreSQL schema per node (dropped at the end)."""
    schemas = PostgresSchemas(database_url, "gcn_bench_repl") if database_url else None
    try:
        fed = LocalFederation(base, system_clock, database_url=schemas.url_for if schemas else None)
        try:
            for s in specs:
                fed.add(s.node_id, s.role, country=s.country, region=s.region, upstreams=s.upstreams)
            fed.publish()
            fed.start()
            fed.sync_all(rounds=3)
            yield fed
        finally:
            fed.close()
    finally:
        if schemas is not None:
            schemas.close()


def count_envelopes(node: LocalNode, origin: str | None = None, audience: str | None = None) -> int:
    stmt = select(func.count()).select_from(EnvelopeRow)
    if origin is not None:
        stmt = stmt.where(EnvelopeRow.origin == origin)
    if audience is not None:
        stmt = stmt.where(EnvelopeRow.audience == audience)
    with node.app.db.read() as s:
        return int(s.scalar(stmt) or 0)
