"""Ingest benchmark: how many seizures per second a node stores, in process and
through gRPC, set against the measured limit of the same work done by hand in
the same run.

    .venv/bin/python -m bench.ingest [--records N] [--database-url URL] [--json PATH]

bench/README.md says what each figure means. This is a report: nothing here
fails on timing.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.internal import api_implementation
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, make_url, select

import crypto.envelope
from bench.schemas import PostgresSchemas
from crypto.keys import SigningKey
from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import node_pb2_grpc
from gcn.v1 import records_pb2 as rec
from node.api.server import build_server
from node.api.tls import api_ca_pem, server_credentials
from node.app import NodeApp
from node.bootstrap import CONFIG_FILE, init_node
from node.cli.client import ClientTls, open_channel
from node.config import Config, load_config
from node.domain import validation
from node.domain.index import Opened, index_records
from node.domain.samples import random_seizure
from node.logging import configure_logging
from node.storage.envelope_log import OwnEnvelope
from node.storage.models import EnvelopeRow
from node.storage.users import Role, UserStore

BULK_TARGET = 3_000.0  # records/s, in-process bulk ingest
RPC_TARGET = 1_000.0  # records/s, through gRPC
WARMUP = 50  # records through every fresh node before its timing starts
NODE_ID, COUNTRY = "KE-BENCH", "KE"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
SERVER_WORKERS = 16
CALL_TIMEOUT = 30.0  # seconds, one call
START_TIMEOUT = 120.0  # seconds, a server or a client process getting ready

console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
T = TypeVar("T")


# -- figures ---------------------------------------------------------------------------------


@dataclass
class Limit:
    """The same work as an ingest, done by hand: seconds per component."""

    records: int
    batch: int
    validate_s: float = 0.0
    seal_s: float = 0.0
    insert_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time over the same spans

    @property
    def seconds(self) -> float:
        return self.validate_s + self.seal_s + self.insert_s

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def us(self, seconds: float) -> float:
        return seconds / self.records * 1e6


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
        cuts = statistics.quantiles(self.latencies_s, n=100, method="inclusive")
        return cuts[q - 1] * 1e3


@dataclass
class Sizes:
    """Mean bytes per record."""

    request: float = 0.0
    reply: float = 0.0
    body: float = 0.0
    header: float = 0.0
    ciphertext: float = 0.0
    signature: float = 0.0
    envelopes_per_record: float = 0.0  # what the bulk ingest sealed (the limit seals 1)

    @property
    def envelope(self) -> float:
        return self.header + self.ciphertext + self.signature


@dataclass
class ClientRun:
    """What one client saw (perf_counter is CLOCK_MONOTONIC: comparable across processes)."""

    start: float
    end: float
    latencies_s: list[float]
    errors: int
    reply_bytes: int


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


@dataclass
class Report:
    options: Options
    machine: dict[str, Any]
    limit: Limit  # batched, as the bulk ingest: the measured limit
    per_record: Limit  # one record per transaction, as each RecordSeizure call
    runs: list[Run]
    sizes: Sizes
    bench_rss_bytes: int = 0


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
        capacity = (os.cpu_count() or 1) * (self.wall - start.wall)
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


# -- nodes -----------------------------------------------------------------------------------


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


def quiet_logging(level: str) -> None:
    """Log as a served node does (JSON lines at `level`), into /dev/null."""
    configure_logging("json", level, open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process


def make_seizures(seed: int, count: int, today: date) -> list[rec.Seizure]:
    rng = random.Random(seed)
    return [random_seizure(rng, today) for _ in range(count)]


def make_requests(seed: int, count: int, today: date) -> list[npb.RecordSeizureRequest]:
    return [npb.RecordSeizureRequest(seizure=s) for s in make_seizures(seed, count, today)]


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def opened(config: Config) -> Iterator[NodeApp]:
    app = NodeApp.open(config)
    try:
        yield app
    finally:
        app.close()


# -- 1. the measured limit -------------------------------------------------------------------


@contextmanager
def seal_timer() -> Iterator[list[float]]:
    """Add up the time of every `crypto.envelope.seal` call (`append_own` makes them)."""
    original = crypto.envelope.seal
    spent = [0.0]

    def timed(
        header: epb.EnvelopeHeader, body: bytes, signer: SigningKey, audience_key: bytes | None
    ) -> crypto.envelope.VerifiedEnvelope:
        start = time.perf_counter()
        try:
            return original(header, body, signer, audience_key)
        finally:
            spent[0] += time.perf_counter() - start

    crypto.envelope.seal = timed
    try:
        yield spent
    finally:
        crypto.envelope.seal = original


def _serialize(
    checked: list[rec.Seizure], audience: str, epoch: int, key: bytes, now: datetime
) -> tuple[list[OwnEnvelope], list[rec.RecordBody]]:
    items, bodies = [], []
    for seizure in checked:
        body = rec.RecordBody(seizure=seizure)
        body.recorded_at.FromDatetime(now)
        record_id = str(uuid.uuid4())
        kind, view = epb.RECORD_KIND_SEIZURE, epb.VIEW_FULL
        items.append(OwnEnvelope(audience, kind, view, record_id, body.SerializeToString(), epoch, key))
        bodies.append(body)
    return items, bodies


def _store(
    app: NodeApp, items: list[OwnEnvelope], bodies: list[rec.RecordBody], now: datetime
) -> list[epb.Envelope]:
    with app.envelope_log.writing_own(), app.db.begin() as s:
        appended = app.envelope_log.append_own(s, items, now)
        pairs = zip(appended, bodies, strict=True)
        index_records(s, [Opened(a.envelope_id, a.verified.header, b, now) for a, b in pairs])
    return [a.verified.envelope for a in appended]


def _by_hand(
    app: NodeApp, batch: Sequence[rec.Seizure], limit: Limit, sealed: list[float]
) -> list[epb.Envelope]:
    audience = app.config.national_audience
    current = app.audience_keys.current(audience)
    assert current is not None, f"the bench node holds no key for {audience}"
    now = datetime.now(UTC)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    checked = [validation.check_seizure(s, now.date()) for s in batch]
    t1 = time.perf_counter()
    items, bodies = _serialize(checked, audience, current[0], current[1], now)
    t2 = time.perf_counter()
    sealed_before = sealed[0]
    envelopes = _store(app, items, bodies, now)
    t3 = time.perf_counter()
    limit.cpu_s += time.process_time() - cpu0
    in_store = sealed[0] - sealed_before
    limit.validate_s += t1 - t0
    limit.seal_s += (t2 - t1) + in_store
    limit.insert_s += (t3 - t2) - in_store
    return envelopes


def measure_limit(
    app: NodeApp, warmup: Sequence[rec.Seizure], seizures: Sequence[rec.Seizure], batch: int
) -> tuple[Limit, list[epb.Envelope]]:
    """validate → serialize → seal → append_own + index_records, one transaction per `batch`."""
    limit = Limit(len(seizures), batch)
    envelopes: list[epb.Envelope] = []
    with seal_timer() as sealed:
        for part in chunks(warmup, batch):
            _by_hand(app, part, Limit(len(part), batch), sealed)
        for part in chunks(seizures, batch):
            envelopes += _by_hand(app, part, limit, sealed)
    if sealed[0] == 0.0:
        console.print("[yellow]append_own did not call crypto.envelope.seal: seal time is in insert[/yellow]")
    return limit, envelopes


def envelope_sizes(envelopes: Sequence[epb.Envelope], sizes: Sizes) -> None:
    sizes.header = statistics.fmean(len(e.header) for e in envelopes)
    sizes.ciphertext = statistics.fmean(len(e.ciphertext) for e in envelopes)
    sizes.signature = statistics.fmean(len(e.signature) for e in envelopes)


# -- 2. in-process bulk ingest ---------------------------------------------------------------


def measure_bulk(
    app: NodeApp, warmup: Sequence[rec.Seizure], seizures: Sequence[rec.Seizure], batch_size: int
) -> Run:
    app.records.import_seizures(warmup, batch_size=batch_size)
    cpu0, start = time.process_time(), time.perf_counter()
    stored = app.records.import_seizures(seizures, batch_size=batch_size)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return Run(f"bulk import_seizures ({batch_size}/txn)", stored, seconds, BULK_TARGET, cpu_s=cpu)


def seizure_envelopes(app: NodeApp) -> int:
    """How many seizure envelopes the node stored (the policy may seal several per record)."""
    with app.db.begin() as s:
        seizures = (epb.RECORD_KIND_SEIZURE, epb.RECORD_KIND_SEALED)
        stmt = select(func.count()).select_from(EnvelopeRow).where(EnvelopeRow.kind.in_(seizures))
        return int(s.scalar(stmt) or 0)


# -- 3, 4. through gRPC ----------------------------------------------------------------------


@dataclass
class ServedNode:
    address: str
    token: str
    ca_pem: bytes  # the node's API CA: clients call it over TLS, as officers do
    peak_rss_bytes: int = 0

    def channel(self) -> grpc.Channel:
        return open_channel(self.address, ClientTls(self.ca_pem))


def _serve(config_path: str, log_level: str, conn: Connection) -> None:
    """A server process: serve the node until told to stop, then report its peak RSS."""
    quiet_logging(log_level)
    app = NodeApp.open(load_config(Path(config_path)))
    token = UserStore(app.db).add("bench", Role.OFFICER, datetime.now(UTC))
    running = build_server(
        app,
        "127.0.0.1:0",
        max_message_bytes=MAX_MESSAGE_BYTES,
        workers=SERVER_WORKERS,
        tls=server_credentials(app.config),
    )
    conn.send((running.port, token))
    conn.recv()
    running.stop(1.0)
    app.close()
    conn.send(peak_rss_bytes())


def _wait_for(conn: Connection, proc: Any, what: str) -> Any:
    deadline = time.monotonic() + START_TIMEOUT
    while not conn.poll(0.2):
        if not proc.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the bench server died or hung before {what} (exit code {proc.exitcode})")
    return conn.recv()


@contextmanager
def served(config: Config, log_level: str) -> Iterator[ServedNode]:
    """The node of `config` served by `build_server` in a process of its own,
    over TLS, with an officer user whose token the clients send."""
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    args = (str(config.base_dir / CONFIG_FILE), log_level, theirs)
    proc = ctx.Process(target=_serve, args=args, daemon=True)
    proc.start()
    try:
        port, token = _wait_for(ours, proc, "serving")
        node = ServedNode(f"127.0.0.1:{port}", token, api_ca_pem(config))
        yield node
        ours.send("stop")
        node.peak_rss_bytes = _wait_for(ours, proc, "stopping")
    finally:
        proc.join(START_TIMEOUT)
        if proc.is_alive():
            proc.terminate()


def call_all(
    node: ServedNode,
    requests: Sequence[Message],
    ready: Callable[[], object] | None = None,
    method: str = "RecordSeizure",
    stub: Callable[[grpc.Channel], Any] = node_pb2_grpc.NodeServiceStub,
) -> ClientRun:
    """One client: its own channel, sequential calls of `stub`'s `method`."""
    metadata = (("authorization", f"Bearer {node.token}"),)
    with node.channel() as channel:
        grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT)
        rpc = getattr(stub(channel), method)
        if ready is not None:
            ready()
        latencies: list[float] = []
        errors = reply_bytes = 0
        start = time.perf_counter()
        for request in requests:
            sent = time.perf_counter()
            try:
                reply = rpc(request, timeout=CALL_TIMEOUT, metadata=metadata)
            except grpc.RpcError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - sent)
            reply_bytes += reply.ByteSize()
        return ClientRun(start, time.perf_counter(), latencies, errors, reply_bytes)


PIPELINE_DEPTH = 16
BATCH_PER_CALL = 100


def call_pipelined(node: ServedNode, requests: Sequence[Message], depth: int = PIPELINE_DEPTH) -> ClientRun:
    """One client, one channel, up to `depth` RecordSeizure calls in flight (as an
    importing tool would send them): the node commits them together."""
    metadata = (("authorization", f"Bearer {node.token}"),)
    latencies: list[float] = []
    counts = {"errors": 0, "reply_bytes": 0}
    lock = threading.Lock()
    slots = threading.Semaphore(depth)

    def finished(future: Any, sent: float) -> None:
        with lock:
            try:
                reply = future.result()
                latencies.append(time.perf_counter() - sent)
                counts["reply_bytes"] += reply.ByteSize()
            except grpc.RpcError:
                counts["errors"] += 1
        slots.release()

    with node.channel() as channel:
        grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT)
        rpc = node_pb2_grpc.NodeServiceStub(channel).RecordSeizure
        start = time.perf_counter()
        for request in requests:
            slots.acquire()
            sent = time.perf_counter()
            future = rpc.future(request, timeout=CALL_TIMEOUT, metadata=metadata)
            future.add_done_callback(functools.partial(finished, sent=sent))
        for _ in range(depth):
            slots.acquire()
        end = time.perf_counter()
    return ClientRun(start, end, latencies, counts["errors"], counts["reply_bytes"])


def combine(name: str, runs: Sequence[ClientRun], target: float | None = RPC_TARGET) -> Run:
    start, end = min(r.start for r in runs), max(r.end for r in runs)
    latencies = [x for r in runs for x in r.latencies_s]
    return Run(
        name,
        len(latencies),
        end - start,
        target,
        latencies,
        errors=sum(r.errors for r in runs),
        reply_bytes=sum(r.reply_bytes for r in runs),
    )


def batched(requests: Sequence[npb.RecordSeizureRequest], size: int) -> list[npb.RecordSeizuresRequest]:
    """The same seizures in `RecordSeizures` calls of `size`."""
    return [
        npb.RecordSeizuresRequest(seizures=[r.seizure for r in requests[i : i + size]])
        for i in range(0, len(requests), size)
    ]


def combine_batched(name: str, runs: Sequence[ClientRun], size: int) -> Run:
    """Like `combine`, counting records (each successful call carried `size`);
    the latencies stay those of the calls."""
    run = combine(name, runs)
    return replace(run, records=run.records * size)


def client_threads(
    node: ServedNode, request_sets: Sequence[Sequence[Message]], method: str = "RecordSeizure"
) -> list[ClientRun]:
    barrier = threading.Barrier(len(request_sets))
    with ThreadPoolExecutor(len(request_sets)) as pool:
        return list(pool.map(lambda rs: call_all(node, rs, barrier.wait, method), request_sets))


def _client_process(
    node: ServedNode, seed: int, count: int, today: str, batch: int, barrier: Any, queue: Any
) -> None:
    singles = make_requests(seed, count, date.fromisoformat(today))
    requests: Sequence[Message] = batched(singles, batch) if batch > 1 else singles
    method = "RecordSeizures" if batch > 1 else "RecordSeizure"
    queue.put(call_all(node, requests, functools.partial(barrier.wait, START_TIMEOUT), method))


def client_processes(
    node: ServedNode, seeds: Sequence[int], count: int, today: date, batch: int = 1
) -> list[ClientRun]:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(len(seeds)), ctx.Queue()
    procs = [
        ctx.Process(
            target=_client_process, args=(node, seed, count, today.isoformat(), batch, barrier, queue)
        )
        for seed in seeds
    ]
    for p in procs:
        p.start()
    try:
        return [queue.get(timeout=START_TIMEOUT + count * CALL_TIMEOUT) for _ in procs]
    finally:
        for p in procs:
            p.join(START_TIMEOUT)


Drive = Callable[[ServedNode], Run]


def rpc_scenario(
    ws: Workspace, label: str, log_level: str, warmup: Sequence[Message], drives: Sequence[Drive]
) -> list[Run]:
    """Serve a fresh node, warm it up, then run each drive against it in turn."""
    with served(ws.new_node(label), log_level) as node:
        call_all(node, warmup)
        runs = [drive(node) for drive in drives]
    for run in runs:
        run.server_rss_bytes = node.peak_rss_bytes
    return runs


# -- the run ---------------------------------------------------------------------------------


def machine_facts(options: Options) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "protobuf_backend": api_implementation.Type(),
        "grpc": grpc.__version__,
        "database": "postgresql" if options.database_url else "sqlite (temp dir)",
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def step(message: str) -> None:
    console.print(f"[dim]… {message}[/dim]")


def in_process(ws: Workspace, o: Options, today: date, sizes: Sizes) -> tuple[Limit, Limit, Run]:
    warmup = make_seizures(o.seed - 1, WARMUP, today)
    seizures = make_seizures(o.seed, o.records, today)
    sizes.body = statistics.fmean(
        rec.RecordBody(seizure=validation.check_seizure(s, today)).ByteSize() for s in seizures[:500]
    )
    step(f"measured limit: {o.records} records by hand, {o.batch_size} per transaction")
    with opened(ws.new_node("limit")) as app:
        limit, envelopes = measure_limit(app, warmup, seizures, o.batch_size)
    envelope_sizes(envelopes, sizes)
    single = seizures[: max(1, o.records // 5)]
    step(f"measured limit: {len(single)} records by hand, 1 per transaction")
    with opened(ws.new_node("limit1")) as app:
        per_record, _ = measure_limit(app, warmup, single, 1)
    step(f"in-process bulk ingest: {o.records} records")
    with opened(ws.new_node("bulk")) as app:
        bulk = measure_bulk(app, warmup, seizures, o.batch_size)
        sizes.envelopes_per_record = seizure_envelopes(app) / (len(warmup) + bulk.records)
    return limit, per_record, bulk


def single_client(o: Options, today: date, sizes: Sizes) -> list[Drive]:
    requests = make_requests(o.seed + 1, o.rpc_records, today)
    # Whole calls only: each RecordSeizures call carries exactly BATCH_PER_CALL seizures.
    batch_requests = make_requests(o.seed + 3, max(1, o.records // BATCH_PER_CALL) * BATCH_PER_CALL, today)
    sizes.request = statistics.fmean(r.ByteSize() for r in requests)
    floor_calls = max(1, o.rpc_records // 4)

    def record(node: ServedNode) -> Run:
        step(f"gRPC, 1 client: {len(requests)} RecordSeizure calls")
        run = combine("gRPC 1 client", [call_all(node, requests)])
        sizes.reply = run.reply_bytes / max(1, run.records)
        return run

    def pipelined(node: ServedNode) -> Run:
        step(f"gRPC, 1 client, {PIPELINE_DEPTH} calls in flight: {len(requests)} RecordSeizure calls")
        return combine(f"gRPC 1 client, {PIPELINE_DEPTH} in flight", [call_pipelined(node, requests)])

    def batch(node: ServedNode) -> Run:
        size = BATCH_PER_CALL
        step(f"gRPC, 1 client: {len(batch_requests)} seizures in RecordSeizures calls of {size}")
        run = call_all(node, batched(batch_requests, size), method="RecordSeizures")
        return combine_batched(f"gRPC 1 client, RecordSeizures x{size}", [run], size)

    def info(node: ServedNode) -> Run:
        step(f"gRPC, 1 client: {floor_calls} GetNodeInfo calls (floor with authentication)")
        calls = [npb.GetNodeInfoRequest()] * floor_calls
        return combine("gRPC floor: GetNodeInfo", [call_all(node, calls, method="GetNodeInfo")], None)

    def health(node: ServedNode) -> Run:
        step(f"gRPC, 1 client: {floor_calls} Health/Check calls (floor of grpcio alone)")
        calls = [health_pb2.HealthCheckRequest()] * floor_calls
        run = call_all(node, calls, method="Check", stub=health_pb2_grpc.HealthStub)
        return combine("gRPC floor: Health/Check", [run], None)

    return [record, pipelined, batch, info, health]


def through_grpc(ws: Workspace, o: Options, today: date, sizes: Sizes) -> list[Run]:
    warmup = make_requests(o.seed - 2, WARMUP, today)
    runs = rpc_scenario(ws, "rpc1", o.log_level, warmup, single_client(o, today, sizes))
    per_client = max(1, o.rpc_records // o.clients)
    sets = [make_requests(o.seed + 10 + i, per_client, today) for i in range(o.clients)]
    step(f"gRPC, {o.clients} client threads: {per_client} calls each")
    threads = functools.partial(client_threads, request_sets=sets)
    runs += rpc_scenario(
        ws, "rpct", o.log_level, warmup, [lambda n: combine(f"gRPC {o.clients} threads", threads(n))]
    )
    if o.processes:
        seeds = [o.seed + 100 + i for i in range(o.clients)]
        step(f"gRPC, {o.clients} client processes: {per_client} calls each")
        procs = functools.partial(client_processes, seeds=seeds, count=per_client, today=today)
        runs += rpc_scenario(
            ws, "rpcp", o.log_level, warmup, [lambda n: combine(f"gRPC {o.clients} processes", procs(n))]
        )
    # The same clients, each sending its seizures in RecordSeizures calls (what
    # an importing tool or a busy port's system does).
    size = BATCH_PER_CALL
    per_batch_client = max(1, o.records // o.clients // size) * size  # whole calls
    batch_sets = [
        batched(make_requests(o.seed + 200 + i, per_batch_client, today), size) for i in range(o.clients)
    ]
    step(f"gRPC, {o.clients} client threads: {per_batch_client} seizures each, RecordSeizures x{size}")
    batch_threads = functools.partial(client_threads, request_sets=batch_sets, method="RecordSeizures")
    name = f"gRPC {o.clients} threads, RecordSeizures x{size}"
    runs += rpc_scenario(
        ws, "rpcbt", o.log_level, warmup, [lambda n: combine_batched(name, batch_threads(n), size)]
    )
    if o.processes:
        seeds = [o.seed + 300 + i for i in range(o.clients)]
        step(f"gRPC, {o.clients} client processes: {per_batch_client} seizures each, RecordSeizures x{size}")
        batch_procs = functools.partial(
            client_processes, seeds=seeds, count=per_batch_client, today=today, batch=size
        )
        pname = f"gRPC {o.clients} processes, RecordSeizures x{size}"
        runs += rpc_scenario(
            ws, "rpcbp", o.log_level, warmup, [lambda n: combine_batched(pname, batch_procs(n), size)]
        )
    return runs


def run_all(o: Options) -> Report:
    machine = machine_facts(o)
    cpu_start = CpuSample.now()
    today = datetime.now(UTC).date()
    sizes = Sizes()
    with tempfile.TemporaryDirectory(prefix="gcn-bench-") as tmp:
        ws = Workspace(Path(tmp), o.database_url)
        try:
            limit, per_record, bulk = in_process(ws, o, today, sizes)
            runs = [bulk, *through_grpc(ws, o, today, sizes)]
        finally:
            ws.close()
    machine["load_average_at_end"] = round(os.getloadavg()[0], 2)
    machine.update(CpuSample.now().since(cpu_start))
    return Report(o, machine, limit, per_record, runs, sizes, peak_rss_bytes())


# -- the report ------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


_COMPONENTS = (
    ("validate", "validation.check_seizure", "validate_s"),
    ("seal", "serialize + seal (AES-256-GCM, Ed25519, SHA-256)", "seal_s"),
    ("insert", "append_own + index_records + commit, less the seal", "insert_s"),
)


def limit_table(r: Report) -> Table:
    limits = (r.limit, r.per_record)
    t = Table(title="1. Measured limit: the same work done by hand", title_justify="left")
    t.add_column("component")
    t.add_column("what", style="dim")
    for lim in limits:
        t.add_column(f"µs/record ({lim.batch}/txn)", justify="right")
        t.add_column("share", justify="right")
    for name, what, attr in _COMPONENTS:
        cells = [(lim.us(getattr(lim, attr)), getattr(lim, attr) / lim.seconds) for lim in limits]
        t.add_row(name, what, *[c for us, share in cells for c in (_fmt(us), f"{share:.0%}")])
    totals = [c for lim in limits for c in (f"[b]{_fmt(lim.us(lim.seconds))}[/b]", "100%")]
    t.add_row("[b]total[/b]", "", *totals)
    t.add_row("", "records/s", *[c for lim in limits for c in (f"[b]{lim.rate:,.0f}[/b]", "")])
    return t


def _verdict(run: Run) -> str:
    if run.passed is None:
        return "—"
    return "[green]PASS[/green]" if run.passed else "[red]BELOW[/red]"


def throughput_table(r: Report) -> Table:
    t = Table(title="2-4. Throughput", title_justify="left")
    t.add_column("scenario", no_wrap=True)
    for col in ("records", "seconds", "records/s", "target", "result", "vs limit", "vs 1/txn"):
        t.add_column(col, justify="right", no_wrap=True)
    for col in ("p50 ms", "p95 ms", "p99 ms", "errors"):
        t.add_column(col, justify="right", no_wrap=True)
    lim, one = r.limit, r.per_record
    for label, x in ((f"limit, by hand ({lim.batch}/txn)", lim), ("limit, by hand (1/txn)", one)):
        ratios = (f"{x.rate / lim.rate:.2f}", f"{x.rate / one.rate:.2f}")
        t.add_row(
            label, f"{x.records:,}", _fmt(x.seconds, 2), f"{x.rate:,.0f}", "—", "—", *ratios, *["—"] * 4
        )
    for run in r.runs:
        t.add_row(
            run.name,
            f"{run.records:,}",
            _fmt(run.seconds, 2),
            f"{run.rate:,.0f}",
            "—" if run.target is None else f"≥ {run.target:,.0f}",
            _verdict(run),
            f"{run.rate / lim.rate:.2f}",
            f"{run.rate / one.rate:.2f}",
            *[_fmt(run.percentile_ms(q), 2) for q in (50, 95, 99)],
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
        "envelopes sealed per record by the bulk ingest (the limit: 1)", f"{s.envelopes_per_record:.2f}"
    )
    t.add_row("peak RSS, bench process (clients, in-process nodes)", _mib(r.bench_rss_bytes))
    server_rss = max((run.server_rss_bytes for run in r.runs), default=0)
    t.add_row("peak RSS, server process (largest over the gRPC runs)", _mib(server_rss))
    return t


def print_report(r: Report) -> None:
    m = r.machine
    console.print(
        f"\n[b]gcn ingest benchmark[/b] — {m['cores']} cores, Python {m['python']}, "
        f"protobuf {m['protobuf_backend']}, grpcio {m['grpc']}, database {m['database']}, "
        f"log level {r.options.log_level}, load average at start {m['load_average_at_start']}"
    )
    for table in (limit_table(r), throughput_table(r), bytes_table(r)):
        console.print()
        console.print(table)
    console.print(f"\n{contention_note(r)}")
    console.print(
        "[dim]gRPC servers run in a process of their own and authenticate every call (bearer "
        "token); 'threads' clients share the bench process (one GIL), 'processes' clients each "
        "have one (and compete with the server for the cores). RecordSeizures rows count "
        "records (100 per call); their latencies are those of whole calls.[/dim]"
    )


def contention_note(r: Report) -> str:
    """CPU time over wall time of the single-threaded in-process runs: well below 1,
    the process waited (for the disk, or for a core that other processes held)."""
    bulk = next(run for run in r.runs if run.cpu_s is not None)
    shares = (
        ("limit", r.limit.cpu_s / r.limit.seconds),
        ("1/txn limit", r.per_record.cpu_s / r.per_record.seconds),
        ("bulk", (bulk.cpu_s or 0.0) / bulk.seconds),
    )
    listed = ", ".join(f"{name} {share:.2f}" for name, share in shares)
    m = r.machine
    return (
        f"CPU/wall of the in-process runs: {listed} (below ~0.9: waiting on the disk or on a busy core).\n"
        f"Other processes used {m['others_cpu_share']:.0%} of the machine during the run, the hypervisor "
        f"stole {m['steal_share']:.0%}; load average {m['load_average_at_start']} at start, "
        f"{m['load_average_at_end']} at end. Figures taken on a busy machine are low."
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
        "cpu_per_wall": round(lim.cpu_s / lim.seconds, 3),
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
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(r.options).items()}
    if r.options.database_url:
        options["database_url"] = make_url(r.options.database_url).render_as_string(hide_password=True)
    return {
        "machine": r.machine,
        "options": options,
        "limit": _limit_json(r.limit),
        "limit_1_per_txn": _limit_json(r.per_record),
        "runs": [_run_json(run, r) for run in r.runs],
        "bytes_per_record": {**asdict(r.sizes), "envelope": r.sizes.envelope},
        "bench_peak_rss_bytes": r.bench_rss_bytes,
    }


# -- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=5000, help="records for the limit and bulk runs")
    p.add_argument("--rpc-records", type=int, help="calls per gRPC run, over all clients (default records/4)")
    p.add_argument("--clients", type=int, default=8, help="concurrent gRPC clients (default 8)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--database-url", help="PostgreSQL URL (one temporary schema per node); default SQLite")
    p.add_argument("--json", type=Path, dest="json_path", help="also write the figures as JSON to this file")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument(
        "--no-processes", dest="processes", action="store_false", help="skip multi-process clients"
    )
    a = p.parse_args(argv)
    if min(a.records, a.clients, a.batch_size) < 1:
        p.error("--records, --clients and --batch-size must be at least 1")
    rpc_records = a.rpc_records if a.rpc_records is not None else max(a.clients, a.records // 4)
    return Options(
        a.records,
        rpc_records,
        a.clients,
        a.batch_size,
        a.database_url,
        a.json_path,
        a.seed,
        a.log_level,
        a.processes,
    )


def ignore_node_env() -> list[str]:
    """GCN_* variables would override the bench nodes' config (e.g. their database)."""
    names = sorted(k for k in os.environ if k.startswith("GCN_"))
    for name in names:
        del os.environ[name]
    return names


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    ignored = ignore_node_env()
    if ignored:
        console.print(f"[yellow]ignoring {', '.join(ignored)} for the bench nodes[/yellow]")
    quiet_logging(options.log_level)
    report = run_all(options)
    print_report(report)
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(report_json(report), indent=2) + "\n")
        console.print(f"figures written to {options.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
