"""Red team: /metrics (node/metrics.py).

A five-node federation (SQLite) with metrics on the port KE-MBA and the hub
RINEX-ESA. Checks:
  1. leaks: the scrape body against the officer token, key files (hex/base64/raw
     substrings), record content the port recorded (notes, container numbers).
  2. labels: every distinct label value, series count vs streams held.
  3. flood: 16 threads scraping the hub for 20 s; officer API health-check latency
     and the time for 200 port records to reach the global hub, with and without.
  4. idle connections: 300 open TCP connections that send nothing; does a scrape answer?
  5. a taken metrics port at start; metrics_listen on 0.0.0.0 (no TLS, no auth).

Run: cd /work/wt-redteam3 && PYTHONPATH=/work/wt-redteam3:/work/wt-redteam3/protos \
     .venv/bin/python -m tests.redteam_ops.attack_metrics
"""

from __future__ import annotations

import base64
import re
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.testing.local_federation import free_port
from tests.fault.accounting import holdings, records_at, wait_converged
from tests.fault.harness import GCN, federation_from, make_template, seizures_jsonl, wait_for
from tests.redteam_ops.common import dump


def scrape(port: int, path: str = "/metrics", timeout: float = 10.0) -> tuple[float, str]:
    t = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        body = r.read().decode()
    return time.monotonic() - t, body


def health_latency(node: Any, n: int = 40) -> list[float]:
    ca = (node.directory / "api-tls" / "ca.pem").read_bytes()
    ch = grpc.secure_channel(f"127.0.0.1:{node.officer_port}", grpc.ssl_channel_credentials(ca))
    stub = health_pb2_grpc.HealthStub(ch)
    out = []
    for _ in range(n):
        t = time.monotonic()
        stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        out.append(time.monotonic() - t)
        time.sleep(0.05)
    ch.close()
    return out


def at_global(fed: Any) -> int:
    return len(records_at(holdings(fed["WCO-GLOBAL"]), "KE-MBA", "global"))


def main() -> None:
    out: dict[str, Any] = {}
    base = Path(tempfile.mkdtemp(prefix="rt3-met-", dir="/tmp"))
    make_template(base / "template")
    fed = federation_from(base / "template", base / "federation")
    mport, mhub = free_port(), free_port()
    fed["KE-MBA"].env["GCN_SERVER_METRICS_LISTEN"] = f"127.0.0.1:{mport}"
    fed["RINEX-ESA"].env["GCN_SERVER_METRICS_LISTEN"] = f"127.0.0.1:{mhub}"
    port, hub = fed["KE-MBA"], fed["RINEX-ESA"]
    try:
        fed.start_all()
        stream = seizures_jsonl(base / "s.jsonl", 300, seed=5)
        port.gcn("seizure", "import", str(stream), "--batch", "100")
        wait_converged(fed, timeout=120)
        # 1. leaks
        _, body = scrape(mport)
        _, hbody = scrape(mhub)
        secrets: dict[str, bytes] = {"token": port.token.encode()}
        for f in (port.directory / "keys").rglob("*"):
            if f.is_file():
                secrets[f"keys/{f.name}"] = f.read_bytes()
        for f in (port.directory / "tls").glob("*key*"):
            secrets[f"tls/{f.name}"] = f.read_bytes()
        leaks = []
        for name, raw in secrets.items():
            forms = {raw.decode(errors="ignore").strip(), raw.hex(), base64.b64encode(raw).decode()}
            for form in forms:
                for i in range(0, max(1, len(form) - 16), 8):
                    piece = form[i : i + 16]
                    if len(piece) == 16 and (piece in body or piece in hbody):
                        leaks.append((name, piece))
                        break
        content = set()
        for line in stream.read_text().splitlines()[:300]:
            for m in re.finditer(
                r'"(?:notes|containerNumber|description|name|imo)"\s*:\s*"([^"]{6,})"', line
            ):
                content.add(m.group(1))
        out["content_strings_checked"] = len(content)
        out["content_in_scrape"] = sorted(c for c in content if c in body or c in hbody)[:10]
        out["secret_fragments_in_scrape"] = leaks[:10]
        labels = set(re.findall(r'(\w+)="([^"]*)"', body + hbody))
        out["label_values"] = sorted({f"{k}={v}" for k, v in labels if k != "le"})
        series = [ln for ln in hbody.splitlines() if ln and not ln.startswith("#")]
        out["hub_series"] = len(series)
        out["hub_scrape_bytes"] = len(hbody)
        out["port_series"] = len([ln for ln in body.splitlines() if ln and not ln.startswith("#")])
        out["other_path_status"] = scrape(mhub, "/anything?x=1")[1][:60]

        # 3. flood: baseline, then 16 scraping threads.
        base_lat = health_latency(hub)
        out["baseline_scrape_s"] = round(statistics.median([scrape(mhub)[0] for _ in range(10)]), 4)
        s2 = seizures_jsonl(base / "s2.jsonl", 200, seed=6)
        before = at_global(fed)
        t = time.monotonic()
        port.gcn("seizure", "import", str(s2), "--batch", "100")
        wait_for("200 at global", lambda: at_global(fed) >= before + 200, 120)
        out["baseline_200_to_global_s"] = round(time.monotonic() - t, 2)

        stop = threading.Event()
        count = [0, 0]

        def flood() -> None:
            while not stop.is_set():
                try:
                    scrape(mhub, timeout=30)
                    count[0] += 1
                except Exception:
                    count[1] += 1

        threads = [threading.Thread(target=flood, daemon=True) for _ in range(16)]
        for th in threads:
            th.start()
        time.sleep(2)
        flood_lat = health_latency(hub)
        s3 = seizures_jsonl(base / "s3.jsonl", 200, seed=7)
        before = at_global(fed)
        t = time.monotonic()
        port.gcn("seizure", "import", str(s3), "--batch", "100")
        wait_for("200 more at global", lambda: at_global(fed) >= before + 200, 180)
        out["flood_200_to_global_s"] = round(time.monotonic() - t, 2)
        stop.set()
        for th in threads:
            th.join(timeout=40)
        out["flood_scrapes_ok_err"] = count
        out["health_ms_median_p95_baseline"] = [
            round(1000 * statistics.median(base_lat), 1),
            round(1000 * sorted(base_lat)[int(0.95 * len(base_lat))], 1),
        ]
        out["health_ms_median_p95_flood"] = [
            round(1000 * statistics.median(flood_lat), 1),
            round(1000 * sorted(flood_lat)[int(0.95 * len(flood_lat))], 1),
        ]

        # 4. idle connections
        socks = []
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", mhub), timeout=5)
            socks.append(s)
        try:
            out["scrape_with_300_idle_conns_s"] = round(scrape(mhub, timeout=15)[0], 3)
        except Exception as e:
            out["scrape_with_300_idle_conns_s"] = f"failed: {e}"
        assert hub.proc is not None
        status = Path(f"/proc/{hub.proc.pid}/status").read_text().splitlines()
        out["hub_threads_with_idle_conns"] = int(
            next(ln for ln in status if ln.startswith("Threads")).split()[1]
        )
        for s in socks:
            s.close()

        # 5. a taken metrics port at start (TZ restarted with KE-MBA's metrics port)
        tz = fed["TZ"]
        tz.stop()
        tz.env["GCN_SERVER_METRICS_LISTEN"] = f"127.0.0.1:{mport}"
        t = time.monotonic()
        done = subprocess.run(
            [GCN, "serve", "--config", str(tz.config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**__import__("os").environ, "GCN_LOGGING_FORMAT": "json", **tz.env},
        )
        out["taken_port_exit"] = [
            done.returncode,
            round(time.monotonic() - t, 1),
            done.stderr.strip().splitlines()[-1][:300] if done.stderr.strip() else "",
        ]
        tz.env["GCN_SERVER_METRICS_LISTEN"] = f"0.0.0.0:{free_port()}"
        tz.start()
        out["metrics_on_0.0.0.0_accepted"] = tz.running
    finally:
        fed.close()
        dump(base / "figures.json", out)
        print("base:", base)


if __name__ == "__main__":
    main()
