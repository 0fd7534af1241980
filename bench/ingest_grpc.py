"""Ingest through gRPC: a node served by `node.api.server.build_server` in a
process of its own (TLS, an officer's bearer token), and clients calling it —
one, several threads, several processes; one record per call or 100.
Part of `bench.ingest` (bench/README.md says what each figure means)."""

from __future__ import annotations

import functools
import multiprocessing as mp
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.common import make_seizures, peak_rss_bytes, quiet_logging, step
from bench.ingest_inproc import WARMUP, Options, Run, Sizes, Workspace
from gcn.v1 import node_pb2 as npb
from gcn.v1 import node_pb2_grpc
from node.api.server import build_server
from node.api.tls import api_ca_pem, server_credentials
from node.app import NodeApp
from node.bootstrap import CONFIG_FILE
from node.cli.client import ClientTls, open_channel
from node.config import Config, load_config
from node.storage.users import Role, UserStore

RPC_TARGET = 1_000.0  # records/s, through gRPC
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
SERVER_WORKERS = 16
CALL_TIMEOUT = 30.0  # seconds, one call
START_TIMEOUT = 120.0  # seconds, a server or a client process getting ready
PIPELINE_DEPTH = 16
BATCH_PER_CALL = 100


@dataclass
class ClientRun:
    """What one client saw (perf_counter is CLOCK_MONOTONIC: comparable across processes)."""

    start: float
    end: float
    latencies_s: list[float]
    errors: int
    reply_bytes: int


def make_requests(seed: int, count: int, today: date) -> list[npb.RecordSeizureRequest]:
    return [npb.RecordSeizureRequest(seizure=s) for s in make_seizures(seed, count, today)]


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
