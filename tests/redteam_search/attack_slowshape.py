"""Attack (pass 2): is any accepted HubSearch slow even with windowed walks?
Common prefixes that nearly every record has, then two common criteria whose
intersection is empty, so the walk checks many criteria per row to the store's end.
Run after `setup_bulk 9000` (RINEX-ESA then holds ~19.6k rows).

    .venv/bin/python -m tests.redteam_search.attack_slowshape [N]
"""

from __future__ import annotations

import json
import statistics
import sys

from gcn.v1 import search_pb2 as spb
from tests.redteam_search.attack_member import call
from tests.redteam_search.rt_client import member

n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
stub = member("KE", "RINEX-ESA")
shapes = {
    "text d i r + species a (wildlife only) + text p (ODS only)": spb.SearchQuery(
        text="d i r p", species="a"
    ),
    "text d i r (all) + 6 species prefixes + text p s a h c": spb.SearchQuery(
        text="d i r p s a h c", species="a s p g d r e m"
    ),
    "8 text + 8 species + 8 company + 8 person one-letter": spb.SearchQuery(
        text="d i r p s a h c", species="a s p g d r e m", company="a b c d e f g h", person="a b c d e f g h"
    ),
    "text d i r only (matches nearly all; page fills)": spb.SearchQuery(text="d i r"),
}
for name, q in shapes.items():
    lat, res = [], None
    for _ in range(n):
        r, err, t = call(stub, q, 100, timeout=15)
        lat.append(t * 1000)
        res = err if r is None else {"hits": len(r.hits), "more": r.more, "examined_to": bool(r.examined_to)}
    print(
        json.dumps(
            {
                "shape": name,
                "result": res,
                "median_ms": round(statistics.median(lat), 1),
                "max_ms": round(max(lat), 1),
            }
        ),
        flush=True,
    )
