"""A federation of real `gcn serve` processes on loopback, for fault stories.

It is made the way an operator makes one (deploy/demo.sh), with the real CLI:
`gcn root init`, `gcn init` with a join request, `gcn root admit`,
`gcn federation install`, `gcn users add`, `gcn root publish`,
`gcn directory import`. Five nodes: the global hub, one RINEX hub (ESA), two
national nodes (KE, TZ) and KE's port of Mombasa.

Every node's federation endpoint, as the directory names it, is a loopback TCP
proxy run by the test (`LinkProxy`): its peers reach it only through the
proxy, so a test cuts a node off and restores it. The officer API is reached
only through `Node.gcn` (one place for the CLI's connection settings).

The federation is made once per test session (`make_template`) and copied for
each story, so a story starts from nodes that have never run.

The link proxy is `tests.fault.link`; what each node holds, and when the
federation has converged, `tests.fault.accounting`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from gcn.v1 import records_pb2 as rec
from node.domain.generator import Generator
from node.testing.local_federation import free_port
from tests.fault.link import LinkProxy

GCN = str(Path(sys.executable).with_name("gcn"))
LIBFAKETIME = next(
    (
        p
        for p in (
            Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
            Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
            Path("/usr/lib/faketime/libfaketime.so.1"),
        )
        if p.exists()
    ),
    None,
)
# The template federation is made two days in the past (when libfaketime is
# there), so its certificates and directory are valid for a node whose clock
# is a day behind.
TEMPLATE_OFFSET = "-2d"


def faketime_env(spec: str | None = None, file: Path | None = None) -> dict[str, str]:
    """Environment that runs a process under libfaketime: a fixed offset
    (`spec`, e.g. "+1d"), or an offset read from `file`, which the test
    rewrites to move the running process's wall clock. The monotonic clock is
    left alone (what an NTP step does)."""
    assert LIBFAKETIME is not None, "libfaketime is not installed (deploy/setup.sh installs it)"
    env = {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    if file is not None:
        env |= {"FAKETIME_TIMESTAMP_FILE": str(file), "FAKETIME_CACHE_DURATION": "1"}
    else:
        env["FAKETIME"] = spec or "+0"
    return env


FEDERATION = "gcn-fault"
SYNC_INTERVAL = 2.0

# id, role, country, region, upstreams
TOPOLOGY: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("WCO-GLOBAL", "global", "", "", ()),
    ("RINEX-ESA", "regional", "", "ESA", ("WCO-GLOBAL",)),
    ("KE", "national", "KE", "ESA", ("RINEX-ESA",)),
    ("KE-MBA", "port", "KE", "ESA", ("KE",)),
    ("TZ", "national", "TZ", "ESA", ("RINEX-ESA",)),
)
NODE_IDS = tuple(t[0] for t in TOPOLOGY)


def _run(args: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 120.0) -> str:
    """Run a command, return its stdout; fail with its stderr."""
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=dict(env) if env else None, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def wait_for(what: str, condition: Callable[[], bool], timeout: float, poll: float = 0.2) -> float:
    """Poll `condition` until it holds; return the seconds it took. Fail after `timeout`."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


# -- nodes and their processes -------------------------------------------------------------------


@dataclass
class Node:
    node_id: str
    role: str
    directory: Path
    officer_port: int
    listen_port: int  # the federation listener
    endpoint_port: int  # what the directory names: the proxy in front of the listener
    token: str
    env: dict[str, str] = field(default_factory=dict)  # extra environment of `gcn serve`
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    database_url: str = ""  # a PostgreSQL hub's; empty: the node's SQLite file
    log_name: str = "node.log"  # a second replica of a node logs beside the first

    @property
    def config(self) -> Path:
        return self.directory / "gcn.toml"

    @property
    def log_path(self) -> Path:
        return self.directory / self.log_name

    @property
    def database(self) -> Path:
        return self.directory / "gcn.sqlite"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # The officer API: every CLI call that talks to the running node goes through here.
    def gcn(self, *args: str, timeout: float = 300.0) -> str:
        env = {
            **os.environ,
            "GCN_NODE": f"127.0.0.1:{self.officer_port}",
            "GCN_TOKEN": self.token,
            "GCN_NODE_CA": str(self.directory / "api-tls" / "ca.pem"),  # the node's API CA
        }
        return _run([GCN, *args], env=env, timeout=timeout)

    # Commands on the node's own files (they work while it runs or is stopped).
    def local(self, *args: str, timeout: float = 120.0) -> str:
        return _run([GCN, *args, "--config", str(self.config)], timeout=timeout)

    def sync_status(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.local("sync", "status", "--json"))
        return out

    def peer_status(self, peer: str) -> dict[str, Any]:
        for row in self.sync_status()["peers"]:
            if row["peer"] == peer:
                return dict(row)
        raise AssertionError(f"{self.node_id} has no peer {peer} in `gcn sync status`")

    def alarms(self) -> list[dict[str, Any]]:
        return list(json.loads(self.local("alarms", "--json", "--limit", "500"))["alarms"])

    def log_lines(self, since: int = 0) -> list[dict[str, Any]]:
        """The JSON log lines of every run, from line `since` on (see `log_mark`)."""
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines()[since:]:
            with suppress(ValueError):
                lines.append(json.loads(raw))
        return lines

    def log_mark(self) -> int:
        return len(self.log_path.read_text(errors="replace").splitlines()) if self.log_path.exists() else 0

    def log_events(self, event: str, since: int = 0, **fields: object) -> list[dict[str, Any]]:
        return [
            line
            for line in self.log_lines(since)
            if line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
        ]

    def start(self, wait: bool = True, timeout: float = 90.0) -> None:
        assert not self.running, f"{self.node_id} is already running"
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = {
            **os.environ,
            "GCN_LOGGING_FORMAT": "json",
            "GCN_FEDERATION_SYNC_INTERVAL_SECONDS": str(SYNC_INTERVAL),
            **self.env,
        }
        with self.log_path.open("ab") as log:
            log.write(f'{{"event": "harness: start #{self.starts + 1}"}}\n'.encode())
            log.flush()
            self.proc = subprocess.Popen(
                [GCN, "serve", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
                start_new_session=True,  # its own process group, killed whole
            )
        self.starts += 1
        if wait:
            self.wait_serving(offset, timeout)

    def wait_serving(self, offset: int = 0, timeout: float = 90.0) -> None:
        def serving() -> bool:
            if not self.running:
                raise AssertionError(f"{self.node_id} exited: {self.tail()}")
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return b'"node serving"' in f.read()

        wait_for(f"{self.node_id} serving", serving, timeout)

    def kill(self) -> None:
        """SIGKILL the node's whole process group."""
        if self.proc is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def terminate(self) -> None:
        """SIGTERM, once (what systemd or an operator sends)."""
        if self.proc is not None:
            with suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)

    def wait_stopped(self, timeout: float = 60.0) -> int:
        """Wait for the exit after `terminate`; return the exit code."""
        if self.proc is None:
            return 0
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.node_id} did not stop within {timeout:.0f}s of SIGTERM") from None
        self.kill()  # whatever of its process group is left
        return code

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for a clean exit; return the exit code."""
        self.terminate()
        return self.wait_stopped(timeout)

    def peak_rss_mib(self) -> float:
        """The peak resident set of the running `gcn serve` (VmHWM)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Federation:
    def __init__(self, base: Path, nodes: dict[str, Node]) -> None:
        self.base = base
        self.nodes = nodes
        self.proxies: dict[str, LinkProxy] = {
            n.node_id: LinkProxy(n.endpoint_port, n.listen_port) for n in nodes.values()
        }

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def start_all(self, timeout: float = 120.0) -> None:
        offsets = {}
        for node in self.nodes.values():
            offsets[node.node_id] = node.log_path.stat().st_size if node.log_path.exists() else 0
            node.start(wait=False)
        for node in self.nodes.values():
            node.wait_serving(offsets[node.node_id], timeout)

    def stop_all(self) -> dict[str, int]:
        for node in self.nodes.values():
            node.terminate()
        return {node.node_id: node.wait_stopped() for node in self.nodes.values()}

    def kill_all(self) -> None:
        for node in self.nodes.values():
            node.kill()

    def close(self) -> None:
        self.kill_all()
        for proxy in self.proxies.values():
            proxy.close()

    def logs(self) -> str:
        return "\n".join(
            f"===== {n.node_id} (last lines of {n.log_path})\n{n.tail()}" for n in self.nodes.values()
        )


# -- making the federation with the real CLI -----------------------------------------------------


def make_template(base: Path, database_urls: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Root, five nodes, admission, directory: what deploy/demo.sh does.
    Returns each node's ports and token (also written to `nodes.json`).
    `database_urls` puts some nodes on PostgreSQL (such a template is used as
    it is, not copied: the database is not in the directory)."""
    urls = dict(database_urls or {})
    root = base / "root"
    env = {**os.environ, **(faketime_env(TEMPLATE_OFFSET) if LIBFAKETIME else {})}

    def run(args: list[str]) -> str:
        return _run(args, env=env)

    run([GCN, "root", "init", "--dir", str(root), "--federation", FEDERATION])
    meta: dict[str, dict[str, Any]] = {}
    for node_id, role, *_ in TOPOLOGY:
        meta[node_id] = {"role": role, "officer": free_port(), "listen": free_port(), "endpoint": free_port()}

    def init(node_id: str, role: str, country: str, region: str, ups: tuple[str, ...]) -> None:
        m, d = meta[node_id], base / node_id
        args = [GCN, "init", "--dir", str(d), "--id", node_id, "--name", f"{node_id} customs", "--role", role]
        args += ["--listen", f"127.0.0.1:{m['officer']}", "--root-keys", str(root / "root-keys.json")]
        args += ["--federation-listen", f"127.0.0.1:{m['listen']}"]
        args += ["--federation-endpoint", f"127.0.0.1:{m['endpoint']}"]
        if node_id in urls:
            args += ["--database-url", urls[node_id]]
            m["database_url"] = urls[node_id]
        args += ["--country", country] if country else []
        args += ["--region", region] if region else []
        for up in ups:
            args += ["--upstream", up]
        run(args)

    def install(node_id: str) -> None:
        d = base / node_id
        cert, cfg = str(d / "node.cert.pem"), str(d / "gcn.toml")
        run([GCN, "federation", "install", "--cert", cert, "--ca", str(root / "ca.pem"), "--config", cfg])
        token = run([GCN, "users", "add", "officer", "--role", "officer", "--config", cfg])
        meta[node_id]["token"] = token.strip().splitlines()[-1]

    def take_directory(node_id: str) -> None:
        cfg = str(base / node_id / "gcn.toml")
        run([GCN, "directory", "import", str(root / "directory.pb"), "--config", cfg])

    # What each node does on its own runs side by side; the root's steps one at a time.
    with ThreadPoolExecutor(max_workers=len(TOPOLOGY)) as pool:
        list(pool.map(lambda t: init(*t), TOPOLOGY))
        for node_id in NODE_IDS:
            d = base / node_id
            admit = [GCN, "root", "admit", str(d / "join-request.json"), "--dir", str(root)]
            run([*admit, "--out", str(d / "node.cert.pem")])
        list(pool.map(install, NODE_IDS))
        run([GCN, "root", "publish", "--dir", str(root), "--out", str(root / "directory.pb")])
        list(pool.map(take_directory, NODE_IDS))
    (base / "nodes.json").write_text(json.dumps(meta, indent=2))
    return meta


def federation_from(template: Path, base: Path) -> Federation:
    """A fresh copy of the template federation under `base` (no node has run yet).
    The listeners get ports picked now (the config's are overridden by the
    environment): only the endpoints, which the directory names, are the
    template's, and the proxies hold them for the story's whole life."""
    shutil.copytree(template, base, dirs_exist_ok=True)
    meta = json.loads((base / "nodes.json").read_text())
    nodes = {}
    for node_id, m in meta.items():
        officer, listen = free_port(), free_port()
        node = Node(node_id, m["role"], base / node_id, officer, listen, m["endpoint"], m["token"])
        node.database_url = m.get("database_url", "")
        node.env |= {
            "GCN_SERVER_LISTEN": f"127.0.0.1:{officer}",
            "GCN_FEDERATION_LISTEN": f"127.0.0.1:{listen}",
        }
        nodes[node_id] = node
    return Federation(base, nodes)


# -- records -------------------------------------------------------------------------------------


def seizures_jsonl(path: Path, count: int, seed: int) -> Path:
    """`count` generated seizures (`gcn generate seizures`' generator), one
    gcn.v1.Seizure JSON per line, all made in Kenya and TLP:GREEN."""
    gen = Generator(seed=seed, today=date(2026, 12, 1), countries=("KE",))
    with path.open("w") as f:
        for seizure in gen.seizures(count):
            seizure.tlp = rec.TLP_GREEN  # national (full), region (redacted), global (statistical)
            f.write(json_format.MessageToJson(seizure, indent=None) + "\n")
    return path
