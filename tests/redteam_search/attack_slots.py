"""Attack (pass 2): the hub's per-member limit (2 searches at once, RESOURCE_EXHAUSTED).

    .venv/bin/python -m tests.redteam_search.attack_slots hold|cancel|officers|starve

hold:     TZ keeps 2 heavy HubSearches running at RINEX-ESA; a third from TZ, and
          KE's and VN's cheap ones meanwhile (is another member locked out?).
cancel:   TZ starts 2 heavy calls without a deadline and cancels them after 0.3 s:
          how long until TZ may search again (is the slot held after the caller left?).
officers: one officer at TZ runs 2 heavy Searches; another officer's cheap Search
          at TZ meanwhile: what does RINEX-ESA answer it?
starve:   TZ floods RINEX-ESA with HubSearch from 48 threads (most refused) for 20 s;
          KE's GetVector at RINEX-ESA timed before/during/after.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from gcn.v1 import search_pb2 as spb
from gcn.v1 import sync_pb2
from tests.redteam_search.attack_member import call
from tests.redteam_search.rt_client import member, officer

HUB = "RINEX-ESA"
HEAVY = spb.SearchQuery(
    hs_code_prefix="29", commodity=rec.COMMODITY_TIMBER, species="d"
)  # ~0.55 s at 19.6k rows
CHEAP = spb.SearchQuery(container_number="CSQU3054383")


def out(**kw: Any) -> None:
    print(json.dumps(kw), flush=True)


def hold() -> None:
    stub = member("TZ", HUB)
    res: list[Any] = []

    def heavy() -> None:
        res.append(call(stub, HEAVY, 100, timeout=12))

    ths = [threading.Thread(target=heavy) for _ in range(2)]
    for t in ths:
        t.start()
    time.sleep(0.1)
    for who in ("TZ", "KE", "VN"):
        _r, err, secs = call(member(who, HUB), CHEAP, 5, timeout=10)
        out(test="hold", caller=who, while_="TZ holds 2 heavy", err=err, secs=round(secs, 3))
    for th in ths:
        th.join()
    for r, err, t in res:
        out(
            test="hold",
            heavy_call=True,
            err=err,
            secs=round(t, 2),
            hits=None if r is None else len(r.hits),
            more=None if r is None else r.more,
            examined_to=None if r is None else bool(r.examined_to),
        )


def cancel() -> None:
    stub = member("TZ", HUB)
    futs = [stub.HubSearch.future(spb.HubSearchRequest(query=HEAVY, page_size=100)) for _ in range(2)]
    time.sleep(0.1)
    for f in futs:
        f.cancel()
    t0 = time.perf_counter()
    refused = 0
    while time.perf_counter() - t0 < 30:
        _r, err, _t = call(stub, CHEAP, 5, timeout=10)
        if err is None:
            break
        refused += 1
        time.sleep(0.1)
    out(
        test="cancel",
        cancelled_after_s=0.1,
        refused_meanwhile=refused,
        slot_free_after_cancel_s=round(time.perf_counter() - t0, 2),
    )


def officers() -> None:
    stub, md = officer("TZ")
    res: list[Any] = []

    def heavy() -> None:
        t0 = time.perf_counter()
        try:
            r = stub.Search(npb.SearchRequest(query=HEAVY, deadline_ms=10000), metadata=md, timeout=40)
            res.append(
                (
                    time.perf_counter() - t0,
                    [(s.source, npb.SourceStatus.State.Name(s.state)) for s in r.sources],
                )
            )
        except grpc.RpcError as e:
            res.append((time.perf_counter() - t0, e.code().name))

    ths = [threading.Thread(target=heavy) for _ in range(2)]
    for t in ths:
        t.start()
    time.sleep(0.15)
    for _ in range(3):
        t0 = time.perf_counter()
        r = stub.Search(npb.SearchRequest(query=CHEAP), metadata=md, timeout=40)
        out(
            test="officers",
            other_officer_cheap_search_s=round(time.perf_counter() - t0, 3),
            sources=[(s.source, npb.SourceStatus.State.Name(s.state), s.detail[:90]) for s in r.sources],
        )
        time.sleep(0.1)
    for t in ths:
        t.join()
    for secs, st in res:
        out(test="officers", heavy_officer_search_s=round(secs, 2), sources=st)


def starve(workers: int = 48, seconds: float = 20) -> None:
    victim = member("KE", HUB)

    def probe(label: str, n: int = 15) -> None:
        lat, errs = [], 0
        for _ in range(n):
            t0 = time.perf_counter()
            try:
                victim.GetVector(sync_pb2.GetVectorRequest(), timeout=30)
            except grpc.RpcError:
                errs += 1
            lat.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.2)
        out(
            test="starve",
            phase=label,
            victim=f"KE GetVector at {HUB}",
            median_ms=round(statistics.median(lat), 1),
            max_ms=round(max(lat), 1),
            errors=errs,
        )

    probe("before")
    stop = time.monotonic() + seconds
    codes: dict[str, int] = {}

    def worker() -> None:
        stub = member("TZ", HUB)
        while time.monotonic() < stop:
            _r, err, _t = call(stub, HEAVY, 100, timeout=30)
            k = "OK" if err is None else err.split(":")[0]
            codes[k] = codes.get(k, 0) + 1

    with ThreadPoolExecutor(workers) as pool:
        fs = [pool.submit(worker) for _ in range(workers)]
        time.sleep(2)
        probe("during flood")
        for f in fs:
            f.result()
    out(test="starve", attacker_calls=codes)
    probe("after")


def officers_loop(seconds: float = 10) -> None:
    """One officer at TZ loops 2 heavy Searches; a colleague's cheap Search every 0.25 s."""
    stub, md = officer("TZ")
    stop = time.monotonic() + seconds

    def heavy() -> None:
        while time.monotonic() < stop:
            stub.Search(npb.SearchRequest(query=HEAVY, deadline_ms=10000), metadata=md, timeout=40)

    ths = [threading.Thread(target=heavy) for _ in range(2)]
    for t in ths:
        t.start()
    states: dict[str, int] = {}
    while time.monotonic() < stop:
        r = stub.Search(npb.SearchRequest(query=CHEAP), metadata=md, timeout=40)
        for s in r.sources:
            if s.source == HUB:
                k = npb.SourceStatus.State.Name(s.state)
                states[k] = states.get(k, 0) + 1
        time.sleep(0.25)
    for t in ths:
        t.join()
    out(test="officers_loop", seconds=seconds, colleague_searches_rinex_esa_status=states)


if __name__ == "__main__":
    globals()[sys.argv[1]]()
