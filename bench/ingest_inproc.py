"""Ingest in process: the measured limit (the product's own commit, timed by its
phase hooks) and the bulk `import_seizures`; the figures both parts of
`bench.ingest` share (`Options`, `Run`, `Sizes`, fresh nodes)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from bench.common import listening, percentile, step
from bench.schemas import PostgresSchemas
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from node.app import NodeApp
from node.bootstrap import init_node
from node.config import Config
from node.domain import validation
from node.domain.records import latest_date
from node.storage.models import EnvelopeRow

BULK_TARGET = 3_000.0  # records/s, in-process bulk ingest
WARMUP = 50  # records through every fresh node before its timing starts
NODE_ID, COUNTRY = "KE-BENCH", "KE"
_SEIZURE_KINDS = (epb.RECORD_KIND_SEIZURE, epb.RECORD_KIND_SEALED)


@dataclass
class Options:
    records: int
    rpc_records: int
    clients: int
    batch_size: int
    database_url: str | None
    json_path: Path | None
    seed: int
    log_level: str
    processes: bool
    quick: bool


@dataclass
class Limit:
    """The core of an ingest, from the product's own phases: `check_seizure`
    (validate), then per commit the views and serialization plus the sealing
    (seal) and the rest of the transaction (insert). Seconds per component."""

    records: int
    batch: int
    validate_s: float = 0.0
    seal_s: float = 0.0
    insert_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time over the same spans
    wall_s: float = 0.0  # the whole run, service around the phases included

    @property
    def seconds(self) -> float:
        return self.validate_s + self.seal_s + self.insert_s

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def us(self, seconds: float) -> float:
        return seconds / self.records * 1e6 if self.records else 0.0


@dataclass
class Run:
    """One throughput measurement (`target` None: informative only)."""

    name: str
    records: int
    seconds: float
    target: float | None
    latencies_s: list[float] = field(default_factory=list, repr=False)
    errors: int = 0
    reply_bytes: int = 0
    server_rss_bytes: int = 0
    cpu_s: float | None = None  # in-process runs: this process's CPU time

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.rate >= self.target

    def percentile_ms(self, q: int) -> float | None:
        if len(self.latencies_s) < 2:
            return None
        value = percentile(self.latencies_s, q)
        return None if value is None else value * 1e3


@dataclass
class Sizes:
    """Mean bytes per record."""

    request: float = 0.0
    reply: float = 0.0
    body: float = 0.0
    header: float = 0.0
    ciphertext: float = 0.0
    signature: float = 0.0
    envelopes_per_record: float = 0.0  # what the bulk ingest sealed (the limit's policy too)

    @property
    def envelope(self) -> float:
        return self.header + self.ciphertext + self.signature


class Workspace:
    """Fresh nodes in a temp dir: SQLite files, or one PostgreSQL schema per node."""

    def __init__(self, root: Path, database_url: str | None) -> None:
        self.root = root
        self.schemas = PostgresSchemas(database_url, "gcn_bench") if database_url else None

    def new_node(self, label: str) -> Config:
        return init_node(
            self.root / label,
            node_id=NODE_ID,
            name=f"bench {label}",
            role="national",
            country=COUNTRY,
            database_url=self.schemas.url_for(label) if self.schemas else "sqlite:///gcn.sqlite",
        )

    def close(self) -> None:
        if self.schemas is not None:
            self.schemas.close()


@contextmanager
def opened(config: Config) -> Iterator[NodeApp]:
    app = NodeApp.open(config)
    try:
        yield app
    finally:
        app.close()


# -- 1. the measured limit -------------------------------------------------------------------


def measure_limit(
    app: NodeApp, warmup: Sequence[rec.Seizure], seizures: Sequence[rec.Seizure], batch: int
) -> Limit:
    """validate: `validation.check_seizure` over the seizures, in a loop; then
    `import_seizures(…, batch_size=batch, parallel=False)`, whose commits report
    their phases (`RecordService.phases`: prepare, store; `EnvelopeLog.phases`:
    seal, inside store). seal = prepare + seal; insert = store - seal."""
    records = app.records
    records.import_seizures(warmup, batch_size=batch, parallel=False)
    limit = Limit(len(seizures), batch)
    cpu0 = time.process_time()
    start = time.perf_counter()
    latest = latest_date(app.clock())
    for seizure in seizures:
        validation.check_seizure(seizure, latest)
    limit.validate_s = time.perf_counter() - start
    with listening(records.phases, app.envelope_log.phases) as phases:
        records.import_seizures(seizures, batch_size=batch, parallel=False)
    limit.wall_s = time.perf_counter() - start
    limit.cpu_s = time.process_time() - cpu0
    sealing = phases.get("seal")
    limit.seal_s = phases.get("prepare") + sealing
    limit.insert_s = phases.get("store") - sealing
    return limit


def envelope_sizes(app: NodeApp, sizes: Sizes) -> None:
    """Mean header, ciphertext and signature of the seizure envelopes `app` stored."""
    with app.db.read() as s:
        row = s.execute(
            select(
                func.avg(func.length(EnvelopeRow.header)),
                func.avg(func.length(EnvelopeRow.ciphertext)),
                func.avg(func.length(EnvelopeRow.signature)),
            ).where(EnvelopeRow.kind.in_(_SEIZURE_KINDS))
        ).one()
    sizes.header, sizes.ciphertext, sizes.signature = (float(x or 0.0) for x in row)


def seizure_envelopes(app: NodeApp) -> int:
    """How many seizure envelopes the node stored (the policy may seal several per record)."""
    with app.db.read() as s:
        stmt = select(func.count()).select_from(EnvelopeRow).where(EnvelopeRow.kind.in_(_SEIZURE_KINDS))
        return int(s.scalar(stmt) or 0)


def body_bytes(seizures: Sequence[rec.Seizure], today: date) -> float:
    return statistics.fmean(
        rec.RecordBody(seizure=validation.check_seizure(s, today)).ByteSize() for s in seizures[:500]
    )


# -- 2. in-process bulk ingest ---------------------------------------------------------------


def measure_bulk(
    app: NodeApp, warmup: Sequence[rec.Seizure], seizures: Sequence[rec.Seizure], batch_size: int
) -> Run:
    app.records.import_seizures(warmup, batch_size=batch_size)
    cpu0, start = time.process_time(), time.perf_counter()
    stored = app.records.import_seizures(seizures, batch_size=batch_size)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return Run(f"bulk import_seizures ({batch_size}/txn)", stored, seconds, BULK_TARGET, cpu_s=cpu)


def in_process(
    ws: Workspace, o: Options, seizures: Sequence[rec.Seizure], warmup: Sequence[rec.Seizure], sizes: Sizes
) -> tuple[Limit, Limit, Run]:
    step(f"measured limit: {len(seizures)} records, {o.batch_size} per transaction (product phases)")
    with opened(ws.new_node("limit")) as app:
        limit = measure_limit(app, warmup, seizures, o.batch_size)
        envelope_sizes(app, sizes)
    single = seizures[: max(1, len(seizures) // 5)]
    step(f"measured limit: {len(single)} records, 1 per transaction (product phases)")
    with opened(ws.new_node("limit1")) as app:
        per_record = measure_limit(app, warmup, single, 1)
    step(f"in-process bulk ingest: {len(seizures)} records")
    with opened(ws.new_node("bulk")) as app:
        bulk = measure_bulk(app, warmup, seizures, o.batch_size)
        sizes.envelopes_per_record = seizure_envelopes(app) / (len(warmup) + bulk.records)
    return limit, per_record, bulk
