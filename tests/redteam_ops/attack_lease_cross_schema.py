"""Red team: leases are PostgreSQL advisory locks, and advisory locks belong to
the whole *database*, not to a schema. Two different gcn nodes whose tables sit
in two schemas of one database (what the test suite and the fault harness do:
one schema per test) share the lease names `duties` and `sync:<peer>`.

Node A (schema a) serves; node B (schema b) is then initialised and started in
the same database. Does B make its own audience keys, and can its officers record?

Run: cd /work/wt-redteam3 && PYTHONPATH=/work/wt-redteam3:/work/wt-redteam3/protos \
     .venv/bin/python -m tests.redteam_ops.attack_lease_cross_schema
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from node.testing.local_federation import free_port
from tests.fault.harness import GCN, seizures_jsonl
from tests.redteam_ops.common import drop_schema, dump, new_schema, sql, url


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GCN, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def make(base: Path, node_id: str, schema: str) -> tuple[Path, int, str]:
    d = base / node_id
    port = free_port()
    r = run(
        "init",
        "--dir",
        str(d),
        "--id",
        node_id,
        "--name",
        f"{node_id} customs",
        "--role",
        "national",
        "--country",
        node_id[:2],
        "--listen",
        f"127.0.0.1:{port}",
        "--database-url",
        url(schema),
    )
    assert r.returncode == 0, r.stderr
    tok = (
        run("users", "add", "officer", "--role", "officer", "--config", str(d / "gcn.toml"))
        .stdout.strip()
        .splitlines()[-1]
    )
    return d, port, tok


def serve(d: Path) -> subprocess.Popen[bytes]:
    log = (d / "node.log").open("ab")
    return subprocess.Popen(
        [GCN, "serve", "--config", str(d / "gcn.toml")],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, "GCN_LOGGING_FORMAT": "json"},
        start_new_session=True,
    )


def events(d: Path, event: str) -> list[dict[str, Any]]:
    out = []
    for line in (d / "node.log").read_text().splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("event") == event:
            out.append(j)
    return out


def wait_serving(d: Path, timeout: float = 60) -> None:
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        if events(d, "node serving"):
            return
        time.sleep(0.3)
    raise AssertionError((d / "node.log").read_text()[-2000:])


def main() -> None:
    out: dict[str, Any] = {}
    base = Path(tempfile.mkdtemp(prefix="rt3-xs-", dir="/tmp"))
    sa, sb = new_schema("rt3a"), new_schema("rt3b")
    procs = []
    try:
        da, _pa, _ta = make(base, "UG", sa)
        procs.append(serve(da))
        wait_serving(da)
        out["A_leases"] = [e.get("lease") for e in events(da, "lease taken: this replica runs it")]
        db, pb, tb = make(base, "RW", sb)
        out["B_own_envelopes_after_init"] = sql(
            f'SELECT audience, count(*) FROM "{sb}".envelopes GROUP BY audience'
        )
        procs.append(serve(db))
        wait_serving(db)
        time.sleep(3)
        out["B_leases"] = [e.get("lease") for e in events(db, "lease taken: this replica runs it")]
        s = seizures_jsonl(base / "s.jsonl", 3, seed=1)
        env = {"GCN_NODE": f"127.0.0.1:{pb}", "GCN_TOKEN": tb, "GCN_NODE_CA": str(db / "api-tls" / "ca.pem")}
        r = run("seizure", "import", str(s), env=env)
        out["B_record"] = [r.returncode, (r.stdout + r.stderr).strip()[-400:]]
        out["B_own_envelopes_after_record"] = sql(
            f'SELECT audience, count(*) FROM "{sb}".envelopes GROUP BY audience'
        )
        out["B_waiting_shares"] = sql(
            f'SELECT audience, count(*) FROM "{sb}".waiting_shares GROUP BY audience'
        )
        # Control: stop A; does B take duties and heal?
        procs[0].terminate()
        procs[0].wait(30)
        time.sleep(5)
        out["B_leases_after_A_stopped"] = [
            e.get("lease") for e in events(db, "lease taken: this replica runs it")
        ]
        out["B_own_envelopes_after_A_stopped"] = sql(
            f'SELECT audience, count(*) FROM "{sb}".envelopes GROUP BY audience'
        )
        r = run("seizure", "import", str(s), env=env)
        out["B_record_after_A_stopped"] = [r.returncode, (r.stdout + r.stderr).strip()[-300:]]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        dump(base / "figures.json", out)
        drop_schema(sa)
        drop_schema(sb)


if __name__ == "__main__":
    main()
