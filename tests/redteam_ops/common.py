"""Shared set-up for the red-team scripts (not collected by pytest).

Builds a federation of real `gcn serve` processes with the fault harness (it
only drives the CLI) and, for the hub, two replicas over one PostgreSQL
schema. Each replica gets its own `application_name`, so an operator (and the
attacks) can tell their database sessions apart in `pg_stat_activity`."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from node.testing.local_federation import free_port
from tests.fault.harness import Federation, Node, federation_from, make_template

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ADMIN = create_engine(PG, isolation_level="AUTOCOMMIT")


def new_schema(prefix: str = "rt3") -> str:
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with ADMIN.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    return schema


def drop_schema(schema: str) -> None:
    with ADMIN.connect() as c:
        c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def url(schema: str, app_name: str = "") -> str:
    u = f"{PG}?options=-csearch_path%3D{schema}"
    return u + (f"&application_name={app_name}" if app_name else "")


def sql(query: str, **params: Any) -> list[Any]:
    with ADMIN.connect() as c:
        return list(c.execute(text(query), params))


def replicated_federation(base: Path, pg_nodes: dict[str, str]) -> tuple[Federation, Node]:
    """The five-node fault federation with `pg_nodes` (id -> schema) on
    PostgreSQL, and a second replica of RINEX-ESA (which must be among them)."""
    urls = {n: url(s) for n, s in pg_nodes.items()}
    t0 = time.monotonic()
    make_template(base / "template", urls)
    print(f"template made in {time.monotonic() - t0:.1f}s", flush=True)
    fed = federation_from(base / "template", base / "federation")
    hub = fed["RINEX-ESA"]
    hub.env["GCN_DATABASE_URL"] = url(pg_nodes["RINEX-ESA"], "rt3-r1")
    twin = Node(
        "RINEX-ESA",
        hub.role,
        hub.directory,
        free_port(),
        free_port(),
        hub.endpoint_port,
        hub.token,
        database_url=urls["RINEX-ESA"],
        log_name="replica-2.log",
    )
    twin.env |= {
        "GCN_SERVER_LISTEN": f"127.0.0.1:{twin.officer_port}",
        "GCN_FEDERATION_LISTEN": f"127.0.0.1:{twin.listen_port}",
        "GCN_DATABASE_URL": url(pg_nodes["RINEX-ESA"], "rt3-r2"),
    }
    fed.proxies["RINEX-ESA"].backups.append(twin.listen_port)
    return fed, twin


def lease_backends(app_name: str) -> list[tuple[int, int]]:
    """(pid, advisory locks) of the idle sessions of one replica holding session advisory locks."""
    rows = sql(
        "SELECT a.pid, count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
        "WHERE a.application_name = :n AND l.locktype = 'advisory' AND l.granted GROUP BY a.pid",
        n=app_name,
    )
    return [(int(p), int(n)) for p, n in rows]


def leases_in_log(node: Node, since: int = 0) -> list[str]:
    return [line.get("lease", "") for line in node.log_events("lease taken: this replica runs it", since)]


def dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str))
    print(json.dumps(data, indent=2, default=str), flush=True)


def sh(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=False).stdout


def lease_lock_key(name: str) -> int:
    """The advisory lock number of a lease, as docs/operations.md's lease names
    map to PostgreSQL (sha256 of b"gcn-lease\\0" + name, first 8 bytes, signed):
    an operator's way to find which replica holds a lease in pg_locks."""
    import hashlib

    return int.from_bytes(hashlib.sha256(b"gcn-lease\0" + name.encode()).digest()[:8], "big", signed=True)


def lease_owner(name: str) -> list[str]:
    """application_name of the sessions holding lease `name` (session advisory lock, bigint key)."""
    k = lease_lock_key(name) & 0xFFFFFFFFFFFFFFFF
    hi, lo = k >> 32, k & 0xFFFFFFFF
    rows = sql(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype='advisory' AND l.granted AND l.objsubid=1 "
        "AND l.classid::bigint = :hi AND l.objid::bigint = :lo",
        hi=hi,
        lo=lo,
    )
    return [r[0] for r in rows]
