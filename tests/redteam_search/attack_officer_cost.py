"""Attack: an officer's own Search with the disjoint-common query (F0's shape) at TZ:
does deadline_ms bound the node's local search too?

    .venv/bin/python -m tests.redteam_search.attack_officer_cost [deadline_ms] [client_timeout_s]
"""

from __future__ import annotations

import json
import sys
import time

import grpc

from gcn.v1 import node_pb2 as npb
from gcn.v1 import records_pb2 as rec
from gcn.v1 import search_pb2 as spb
from tests.redteam_search.rt_client import officer

deadline = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
client_timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 120
stub, md = officer("TZ")
q = spb.SearchQuery(hs_code_prefix="44", commodity=rec.COMMODITY_WILDLIFE)
t0 = time.perf_counter()
try:
    r = stub.Search(
        npb.SearchRequest(query=q, deadline_ms=deadline, local_only=True), metadata=md, timeout=client_timeout
    )
    print(
        json.dumps({"deadline_ms": deadline, "secs": round(time.perf_counter() - t0, 2), "hits": len(r.hits)})
    )
except grpc.RpcError as e:
    print(
        json.dumps(
            {"deadline_ms": deadline, "secs": round(time.perf_counter() - t0, 2), "error": e.code().name}
        )
    )
