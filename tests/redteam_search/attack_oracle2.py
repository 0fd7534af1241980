"""Attack (pass 2): F1's timing oracle against a hub, now that only hubs answer.
VN (region SEA) asks RINEX-ESA, whose region:ESA records VN may not read: do
probe words present only in region:ESA records take longer than absent ones?
Min and median of N samples, probes interleaved.

    .venv/bin/python -m tests.redteam_search.attack_oracle2 [N] [CALLER HUB]
"""

from __future__ import annotations

import json
import statistics
import sys

from gcn.v1 import search_pb2 as spb
from tests.redteam_search.attack_member import call
from tests.redteam_search.rt_client import member

n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
caller, hub = (sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else ("VN", "RINEX-ESA")
stub = member(caller, hub)
words = "a b c d e f g h"
probes = {
    "hidden zzgreenm (region:ESA only)": "zzgreenm",
    "hidden zzretrac (region:ESA only)": "zzretrac",
    "hidden zzcorre (region:ESA only)": "zzcorre",
    "absent zzgreenx": "zzgreenx",
    "absent zzretrax": "zzretrax",
    "absent zzqq": "zzqq",
}


def q(p: str) -> spb.SearchQuery:
    return spb.SearchQuery(text=f"{p} a b c d e f g", company=words, person=words, species=words)


for p in probes.values():
    call(stub, q(p), 20)
res: dict[str, list[float]] = {k: [] for k in probes}
hits: dict[str, object] = {}
for _ in range(n):
    for k, p in probes.items():
        r, err, t = call(stub, q(p), 20)
        res[k].append(t * 1000)
        hits[k] = err if r is None else len(r.hits)
for k, v in res.items():
    s = sorted(v)
    print(
        json.dumps(
            {
                "caller": caller,
                "hub": hub,
                "case": k,
                "hits": hits[k],
                "min_ms": round(s[0], 2),
                "p10_ms": round(s[len(s) // 10], 2),
                "median_ms": round(statistics.median(v), 2),
            }
        ),
        flush=True,
    )
