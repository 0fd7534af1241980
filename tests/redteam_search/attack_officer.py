"""Attack: an officer with a valid token at their own node (TZ, KE-MBA): page tokens
of other queries, deadline and page_size at and beyond their bounds, and a scan of
everything reachable for a record of an audience the node is not a member of.

    .venv/bin/python -m tests.redteam_search.attack_officer
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import grpc

from gcn.v1 import node_pb2 as npb
from gcn.v1 import search_pb2 as spb
from tests.redteam_search.attack_member import allowed
from tests.redteam_search.rt_client import officer


def s(node: str, **kw: Any) -> tuple[Any, str | None, float]:
    stub, md = officer(node)
    q = kw.pop("q", {})
    t0 = time.perf_counter()
    try:
        r = stub.Search(npb.SearchRequest(query=spb.SearchQuery(**q), **kw), metadata=md, timeout=40)
        return r, None, time.perf_counter() - t0
    except grpc.RpcError as e:
        return None, f"{e.code().name}: {e.details()}", time.perf_counter() - t0


def out(**kw: object) -> None:
    print(json.dumps(kw), flush=True)


def main() -> None:
    for kw in (
        {"deadline_ms": 99},
        {"deadline_ms": 30001},
        {"deadline_ms": 2**32 - 1},
        {"page_size": 101},
        {"page_size": -1},
        {"page_size": 2**31 - 1},
        {"deadline_ms": 100},
        {"deadline_ms": 30000},
    ):
        r, err, t = s("TZ", **kw)
        out(test="bounds", req=kw, error=err, secs=round(t, 3), hits=None if r is None else len(r.hits))
    # a token from another query: the position only, so it pages any query from there
    r, _, _ = s("TZ", q={"origin": "KE"}, page_size=5)
    token = r.next_page_token
    r2, err, _ = s("TZ", q={"species": "pangolin"}, page_size=5, page_token=token)
    out(
        test="foreign token",
        error=err,
        hits=None if r2 is None else len(r2.hits),
        token=base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode(),
    )
    # everything reachable, paged to the end, at each node: any audience outside the node's?
    for node in ("TZ", "KE-MBA", "VN", "KE"):
        ok = allowed(node)
        token, n, pages, bad, auds = "", 0, 0, [], set()
        while True:
            r, err, _ = s(node, page_size=100, page_token=token, deadline_ms=10000)
            if err:
                out(node=node, error=err)
                break
            pages += 1
            for h in r.hits:
                auds.add(h.record.audience)
                if h.record.audience not in ok:
                    bad.append((h.record.audience, h.record.record_id))
            n += len(r.hits)
            token = r.next_page_token
            if not token or pages > 40:
                break
        out(test="scan", node=node, records=n, pages=pages, audiences=sorted(auds), LEAK=bad[:5])


if __name__ == "__main__":
    main()
