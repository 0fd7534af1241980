"""Catch-up after an outage (§3 of `bench.replication`): the port's own
`PeerSync` with its national node, made by the product's
`Replication.peer_sync` exactly as the port's scheduler would get it (its
channel, its state in the port's database), run by hand while KE is down and
once it is back."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.common import count_envelopes, make_seizures, share_to, step
from bench.repl_push import HOME, NATIONAL, PORT, TIMEOUT, Options, Transfer, import_at
from federation.scheduler import SyncSettings
from node.clock import system_clock
from node.replication import Replication
from node.testing.local_federation import LocalFederation


@dataclass
class Catchup:
    records: int
    import_s: float
    failed_attempt: str
    transfer: Transfer
    arrived: int = 0
    error: str = ""  # the timed round's, if it failed


def catchup(fed: LocalFederation, o: Options) -> Catchup:
    port, ke = fed.nodes[PORT], fed.nodes[NATIONAL]
    port.app.records.policy = share_to(HOME)
    step(f"catch-up: {PORT} takes what {NATIONAL} holds for it first (not timed)")
    fed.sync(PORT, NATIONAL)
    settings = SyncSettings(interval=30, backoff_initial=1, backoff_max=60, timeout=TIMEOUT)
    replication = Replication(port.app, port.tls, settings)
    try:
        upstream = next(p for p in replication.peers() if p.node_id == NATIONAL)
        ps = replication.peer_sync(upstream)
        ke.stop()
        step(f"catch-up: {NATIONAL} stopped; {PORT} records {o.catchup:,} seizures")
        failed = ps.run(system_clock())
        imported = import_at(port, make_seizures(o.seed + 2, o.catchup))
        before = count_envelopes(ke, PORT, HOME)
        ke.start()
        step(f"catch-up: {NATIONAL} back; one PeerSync.run")
        was = ps.state()
        cpu0, start = time.process_time(), time.perf_counter()
        state = ps.run(system_clock())
        seconds = time.perf_counter() - start
    finally:
        replication.stop()
    transfer = Transfer(
        f"catch-up {PORT} → {NATIONAL}: one PeerSync.run",
        state.envelopes_sent - was.envelopes_sent,
        seconds,
        bytes_sent=state.bytes_sent - was.bytes_sent,
        cpu_s=time.process_time() - cpu0,
    )
    arrived = count_envelopes(ke, PORT, HOME) - before
    error = state.last_error if state.failures else ""
    return Catchup(o.catchup, imported.seconds, failed.last_error.split(":")[0], transfer, arrived, error)
