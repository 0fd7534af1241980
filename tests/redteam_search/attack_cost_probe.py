"""Attack helper: is a hub's federation listener answering? Times GetVector and a cheap
HubSearch from TZ every few seconds (use while/after `attack_member cost`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import grpc

from gcn.v1 import search_pb2 as spb
from gcn.v1 import sync_pb2
from tests.redteam_search.rt_client import member

hub = sys.argv[1] if len(sys.argv) > 1 else "RINEX-ESA"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
s = member("TZ", hub)
for _ in range(rounds):
    calls: tuple[tuple[str, Callable[[], object]], ...] = (
        ("GetVector", lambda: s.GetVector(sync_pb2.GetVectorRequest(), timeout=10)),
        (
            "cheap HubSearch",
            lambda: s.HubSearch(
                spb.HubSearchRequest(query=spb.SearchQuery(container_number="CSQU3054383"), page_size=5),
                timeout=10,
            ),
        ),
    )
    for what, f in calls:
        t0 = time.perf_counter()
        try:
            f()
            print(time.strftime("%H:%M:%S"), hub, what, "ok", round(time.perf_counter() - t0, 3), flush=True)
        except grpc.RpcError as e:
            print(
                time.strftime("%H:%M:%S"),
                hub,
                what,
                e.code().name,
                round(time.perf_counter() - t0, 3),
                flush=True,
            )
    time.sleep(3)
