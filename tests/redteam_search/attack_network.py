"""Attack: a failing network between a national node and its hubs. The hubs'
endpoint proxies stall (black hole), delay every reply chunk, drop a connection
mid-reply, or reset; an officer at TZ searches with several deadlines and we time
the answer and read the sources.

    .venv/bin/python -m tests.redteam_search.attack_network
"""

from __future__ import annotations

import json
import time
from typing import Any

import grpc

from gcn.v1 import node_pb2 as npb
from gcn.v1 import search_pb2 as spb
from tests.redteam_search.rt_client import ctl, officer

HUBS = ("RINEX-ESA", "WCO-GLOBAL")


def search(node: str, deadline_ms: int, **q: Any) -> dict[str, Any]:
    stub, md = officer(node)
    t0 = time.perf_counter()
    try:
        r = stub.Search(
            npb.SearchRequest(query=spb.SearchQuery(**q), deadline_ms=deadline_ms, page_size=100),
            metadata=md,
            timeout=60,
        )
        err = None
    except grpc.RpcError as e:
        r, err = None, f"{e.code().name}: {e.details()}"
    secs = time.perf_counter() - t0
    return {
        "secs": round(secs, 3),
        "over_ms": round(secs * 1000 - deadline_ms),
        "error": err,
        "hits": None if r is None else len(r.hits),
        "sources": None
        if r is None
        else [
            (s.source, npb.SourceStatus.State.Name(s.state)[6:], s.count, s.millis, s.detail[:90])
            for s in r.sources
        ],
    }


def run(
    label: str,
    setting: dict[str, Any],
    hubs: tuple[str, ...] = HUBS,
    deadlines: tuple[int, ...] = (100, 500, 3000),
    node: str = "TZ",
    **q: Any,
) -> None:
    q = q or {"origin": "KE"}
    for d in deadlines:
        for h in HUBS:
            ctl(h, mode="pass", gen=GEN[0])
        search(node, 3000, **q)  # warm, connected
        GEN[0] += 0
        for h in hubs:
            ctl(h, **{**setting, "gen": GEN[0]})
        out = search(node, d, **q)
        print(json.dumps({"case": label, "deadline_ms": d, **out}), flush=True)
    for h in HUBS:
        GEN[0] += 1
        ctl(h, mode="pass", gen=GEN[0])
    time.sleep(0.2)
    after = search(node, 3000, **q)
    print(json.dumps({"case": label + " / then restored", "deadline_ms": 3000, **after}), flush=True)


GEN = [int(time.time())]

if __name__ == "__main__":
    run("baseline", {"mode": "pass"})
    run("RINEX-ESA stalls (black hole on the open connection)", {"mode": "stall"}, hubs=("RINEX-ESA",))
    run("both hubs stall", {"mode": "stall"})
    run("RINEX-ESA replies 5 s late (every chunk)", {"mode": "delay", "seconds": 5}, hubs=("RINEX-ESA",))
    run(
        "RINEX-ESA drops mid-reply (after 20 kB)",
        {"mode": "drop_after", "bytes": 20000},
        hubs=("RINEX-ESA",),
        deadlines=(3000,),
    )
    run("RINEX-ESA resets", {"mode": "reset"}, hubs=("RINEX-ESA",), deadlines=(500, 3000))
