"""Attack: a hostile hub. It takes a hub's own TLS files and database (what a
compromised hub holds), runs its own gRPC server speaking SyncService.HubSearch,
and the hub's endpoint proxy is pointed at it. Then an officer searches at a
national node below it and we look at what the node shows and how long it takes.

    .venv/bin/python -m tests.redteam_search.attack_hostile_hub HUB NODE MODE [MODE...]
e.g. attack_hostile_hub RINEX-ESA TZ replay_retracted replay_corrected flood_dup flood_badsig giant slow
"""

from __future__ import annotations

import base64
import json
import sqlite3
import sys
import threading
import time
from concurrent import futures
from typing import Any

import grpc

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from gcn.v1 import search_pb2 as spb
from gcn.v1 import sync_pb2_grpc
from tests.redteam_search.rt_client import BASE, ctl, meta, officer

MODE = {"mode": "honest_empty"}


def envelopes(hub: str) -> list[tuple[epb.Envelope, epb.EnvelopeHeader]]:
    db = sqlite3.connect(f"file:{BASE / hub / 'gcn.sqlite'}?mode=ro", uri=True)
    # the hub's own index says which envelope holds which record (v2 headers hide it from relays)
    rows = db.execute(
        "select coalesce(r.record_id, e.record_id), e.header, e.ciphertext, e.signature"
        " from envelopes e left join records r on r.envelope_id = e.id"
        " order by r.event_date desc, r.origin desc, r.record_id desc"
    ).fetchall()
    out = []
    for rid, h, c, s in rows:
        e = epb.Envelope(header=h, ciphertext=c, signature=s)
        hd = epb.EnvelopeHeader.FromString(h)
        hd.record_id = rid  # for our lookup only
        out.append((e, hd))
    return out


def hair_below(after: str) -> str:
    """A page token for the position just below `after` (the top of all positions for '')."""
    if not after:
        raw = "p2:9999-12:ffffffff-ffff-ffff-ffff-ffffffffffff:ZZ"
    else:
        dec = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode()
        _, month, rid, origin = dec.split(":")
        n = int(rid.replace("-", ""), 16) - 1
        h = f"{n:032x}"
        raw = f"p2:{month}:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}:{origin}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def retraction_of(hub: str, target: str) -> epb.Envelope:
    """The origin's signed retraction of `target`, as the hub holds it."""
    db = sqlite3.connect(f"file:{BASE / hub / 'gcn.sqlite'}?mode=ro", uri=True)
    h, c, s = db.execute(
        "select e.header, e.ciphertext, e.signature from records r join envelopes e on e.id = r.envelope_id"
        " where r.target_record_id = ? and r.kind = ?",
        (target, epb.RECORD_KIND_RETRACTION),
    ).fetchone()
    return epb.Envelope(header=h, ciphertext=c, signature=s)


class FakeHub(sync_pb2_grpc.SyncServiceServicer):
    def __init__(self, hub: str) -> None:
        self.hub = hub
        self.calls: list[tuple[str, spb.HubSearchRequest]] = []

    def HubSearch(self, request: spb.HubSearchRequest, context: Any) -> spb.HubSearchResponse:
        caller = bytes((context.auth_context().get("x509_common_name") or [b"?"])[0]).decode()
        self.calls.append((caller, request))
        m = MODE["mode"]
        envs = envelopes(self.hub)
        r = spb.HubSearchResponse()
        if m == "honest_empty":
            return r
        if m.startswith("records:"):  # every envelope of these record ids, in the given order
            wanted = m.split(":", 1)[1].split(",")
            for rid in wanted:
                for e, h in envs:
                    if h.record_id == rid:
                        r.hits.add(envelope=e)
            return r
        if m.startswith("flood_dup:"):  # one genuine envelope repeated up to ~N bytes
            rid, size = m.split(":")[1], int(m.split(":")[2])
            e = next(e for e, h in envs if h.record_id == rid)
            n = size // (e.ByteSize() + 8)
            r.hits.extend([spb.HubSearchHit(envelope=e)] * n)
            return r
        if m.startswith("flood_badsig:"):
            rid, size = m.split(":")[1], int(m.split(":")[2])
            e = epb.Envelope()
            e.CopyFrom(next(e for e, h in envs if h.record_id == rid))
            e.signature = bytes(64)
            n = size // (e.ByteSize() + 8)
            r.hits.extend([spb.HubSearchHit(envelope=e)] * n)
            return r
        if m.startswith("all"):  # every envelope the hub holds (the first N)
            limit = int(m.split(":")[1]) if ":" in m else len(envs)
            r.hits.extend([spb.HubSearchHit(envelope=e) for e, _ in envs[:limit]])
            return r
        if m.startswith("giant:"):
            r.hits.add(envelope=epb.Envelope(header=b"x" * int(m.split(":")[1])))
            return r
        if m.startswith("sleep:"):
            time.sleep(float(m.split(":")[1]))
            return r
        if m.startswith("error:"):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, m.split(":", 1)[1] * 2000)
        if m == "more_empty":
            r.more = True
            return r
        if m == "frontier_stall":  # more, no hits, "examined" only a hair below the page's start
            r.more = True
            r.examined_to = hair_below(request.after)
            return r
        if m.startswith("proof:"):  # a genuine hit with the given envelopes as its retraction proofs
            _, rid, proofs = m.split(":", 2)
            e = next(e for e, h in envs if h.record_id == rid)
            hit = r.hits.add(envelope=e)
            for p in proofs.split(","):
                if p == "badsig":
                    bad = epb.Envelope()
                    bad.CopyFrom(retraction_of(self.hub, meta()["ids"]["ke_retracted"]))
                    bad.signature = bytes(64)
                    hit.superseded_by.append(bad)
                elif p:
                    hit.superseded_by.append(retraction_of(self.hub, p))
            return r
        if m.startswith("views:"):
            rid = m.split(":")[1]
            for e, h in envs:
                if h.record_id == rid:
                    r.hits.add(envelope=e, other_views=[0, 1, 2, 3, 7, 999])
                    break
            return r
        return r


def serve(hub: str) -> tuple[grpc.Server, int, FakeHub]:
    tls = BASE / hub / "tls"
    creds = grpc.ssl_server_credentials(
        [((tls / "key.pem").read_bytes(), (tls / "cert.pem").read_bytes())],
        root_certificates=(tls / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(16), options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    )
    fake = FakeHub(hub)  # type: ignore[abstract]  # only HubSearch is spoken
    sync_pb2_grpc.add_SyncServiceServicer_to_server(fake, server)
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    return server, port, fake


def search(
    node: str, deadline_ms: int = 3000, **q: Any
) -> tuple[npb.SearchResponse | None, str | None, float]:
    stub, md = officer(node)
    t0 = time.perf_counter()
    try:
        r = stub.Search(
            npb.SearchRequest(query=spb.SearchQuery(**q), deadline_ms=deadline_ms, page_size=100),
            metadata=md,
            timeout=60,
        )
        return r, None, time.perf_counter() - t0
    except grpc.RpcError as e:
        return None, f"{e.code().name}: {e.details()}", time.perf_counter() - t0


def summary(r: npb.SearchResponse | None) -> dict[str, Any]:
    if r is None:
        return {}
    return {
        "hits": [
            (
                h.record.record_id[:8],
                h.record.audience,
                npb.RecordStatus.Name(h.record.status),
                list(h.sources),
                list(h.other_views),
            )
            for h in r.hits
        ][:12],
        "n": len(r.hits),
        "sources": [
            (s.source, npb.SourceStatus.State.Name(s.state), s.count, s.rejected, s.millis, s.detail[:120])
            for s in r.sources
        ],
        "token": bool(r.next_page_token),
    }


def pages(node: str, q: dict[str, Any], n: int = 20) -> None:
    """Page through `q` at `node` n times: results seen, and the same with the hub honest."""
    for mode in ("honest_empty", "frontier_stall"):
        MODE["mode"] = mode
        stub, md = officer(node)
        token, seen, t0, empty = "", 0, time.perf_counter(), 0
        for _ in range(n):
            r = stub.Search(
                npb.SearchRequest(query=spb.SearchQuery(**q), page_size=20, page_token=token),
                metadata=md,
                timeout=60,
            )
            seen += len(r.hits)
            empty += not r.hits
            token = r.next_page_token
            if not token:
                break
        print(
            json.dumps(
                {
                    "mode": f"pages with hub {mode}",
                    "pages": _ + 1,
                    "empty_pages": empty,
                    "results_seen": seen,
                    "still_more": bool(token),
                    "secs": round(time.perf_counter() - t0, 2),
                    "sources_last": summary(r)["sources"],
                }
            ),
            flush=True,
        )


def main() -> None:
    hub, node, modes = sys.argv[1], sys.argv[2], sys.argv[3:]
    server, port, _fake = serve(hub)
    ids = meta()["ids"]
    ctl(hub, mode="pass", target=port, gen=int(time.time()))
    search(node, origin="KE")  # the node's channel reconnects to us
    search(node, origin="KE")
    MODE["mode"] = "honest_empty"
    r, err, t = search(node, origin="KE", container_number="CSQU3054383", hide_retracted=True)
    print(
        json.dumps({"mode": "baseline (hub answers nothing)", "secs": round(t, 3), **summary(r)}), flush=True
    )
    for m in modes:
        q: dict[str, Any] = {"origin": "KE", "container_number": "CSQU3054383"}  # the marker records only
        deadline = 3000
        if m == "replay_retracted":
            MODE["mode"] = f"records:{ids['ke_retracted']}"
            q = {"origin": "KE", "container_number": "CSQU3054383", "hide_retracted": True}
        elif m == "replay_retracted_shown":
            MODE["mode"] = f"records:{ids['ke_retracted']}"
        elif m == "replay_corrected":
            MODE["mode"] = f"records:{ids['ke_corrected']}"
        elif m.startswith("all"):
            MODE["mode"] = m
        elif m.startswith("flood_dup"):
            MODE["mode"] = f"flood_dup:{ids['ke_green']}:{m.split(':')[1] if ':' in m else 15_000_000}"
        elif m.startswith("flood_badsig"):
            MODE["mode"] = f"flood_badsig:{ids['ke_green']}:{m.split(':')[1] if ':' in m else 15_000_000}"
        elif m.startswith("giant"):
            MODE["mode"] = f"giant:{m.split(':')[1] if ':' in m else 20_000_000}"
        elif m.startswith("slow"):
            MODE["mode"] = "sleep:30"
        elif m == "error":
            MODE["mode"] = 'error:secret\n{"event":"forged"}'
        elif m == "more_empty":
            MODE["mode"] = "more_empty"
        elif m == "frontier_stall":  # the officer pages on: what does it see?
            MODE["mode"] = m
            pages(node, q)
            continue
        elif m == "proof_other":  # the genuine retraction of ANOTHER record of the same origin
            MODE["mode"] = f"proof:{ids['ke_green']}:{ids['ke_retracted']}"
        elif m == "proof_badsig":
            MODE["mode"] = f"proof:{ids['ke_green']}:badsig"
        elif m == "proof_self":  # control: the retracted record with its own retraction
            MODE["mode"] = f"proof:{ids['ke_retracted']}:{ids['ke_retracted']}"
            q = {"origin": "KE", "container_number": "CSQU3054383", "hide_retracted": True}
        elif m == "views":
            MODE["mode"] = f"views:{ids['ke_green']}"
        side: list[float] = []
        if m.startswith("flood"):  # meanwhile another officer at the node runs local-only searches
            stop = [False]

            def other(stop: list[bool] = stop, side: list[float] = side) -> None:
                stub, md = officer(node)
                while not stop[0]:
                    t1 = time.perf_counter()
                    stub.Search(
                        npb.SearchRequest(query=spb.SearchQuery(origin="TZ"), local_only=True),
                        metadata=md,
                        timeout=60,
                    )
                    side.append(time.perf_counter() - t1)
                    time.sleep(0.1)

            th = threading.Thread(target=other, daemon=True)
            th.start()
        r, err, t = search(node, deadline_ms=deadline, **q)
        if m.startswith("flood"):
            stop[0] = True
            th.join()
            print(
                json.dumps(
                    {
                        "mode": m,
                        "other officer local_only searches meanwhile": len(side),
                        "max_s": round(max(side), 3) if side else None,
                        "median_s": round(sorted(side)[len(side) // 2], 3) if side else None,
                    }
                )
            )
        print(
            json.dumps({"mode": m, "secs": round(t, 3), "deadline_ms": deadline, "error": err, **summary(r)}),
            flush=True,
        )
    MODE["mode"] = "honest_empty"
    ctl(hub, mode="pass", gen=int(time.time()) + 1)
    server.stop(0)


if __name__ == "__main__":
    main()
