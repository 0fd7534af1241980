"""The demo's federation on loopback: its plan, its ports, how it is made and
run — always with the real `gcn` CLI, as subprocesses, as an operator would.

`plan(base)` names the nodes and their ports; `taken_ports` says which of them
something else holds; `build` makes the root and every node (keys, join
request, admission, certificate, officer token, directory); `Federation`
starts the link proxy (node.cli.demo_link) and every `gcn serve`, waits until
each serves, runs officer commands against a node, and stops them all. The
state lives under one directory (var/federation by default); `pids.json`
there names what runs, so `gcn demo --stop` can stop a kept federation.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcn.v1 import node_pb2_grpc
from node.cli.client import ClientTls, CliError, call, connect

FEDERATION = "gcn-demo"
SYNC_INTERVAL = "1"
BACKOFF_INITIAL = "0.5"
PIDS_FILE = "pids.json"
GCN = [sys.executable, "-m", "node.cli.main"]
# The nodes whose federation endpoints go through the demo's link (the port and its national node).
LINKED = ("KE", "KE-MBA")


class DemoError(Exception):
    """Something the demo cannot go on from; the message says what and where."""


@dataclass(frozen=True)
class NodePlan:
    node_id: str
    role: str
    country: str
    region: str
    upstreams: tuple[str, ...]
    officer: int  # officer API port
    listen: int  # federation (mutual TLS) listener
    endpoint: int  # what the directory names: `listen`, or the link in front of it
    metrics: int  # Prometheus /metrics

    @property
    def ports(self) -> list[tuple[int, str]]:
        named = [
            (self.officer, "officer API"),
            (self.listen, "federation listener"),
            (self.metrics, "metrics"),
        ]
        if self.endpoint != self.listen:
            named.append((self.endpoint, "federation endpoint (the demo's link)"))
        return named


# id, role, country, region, upstreams
TOPOLOGY: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("WCO-GLOBAL", "global", "", "", ()),
    ("RINEX-ESA", "regional", "", "ESA", ("WCO-GLOBAL",)),
    ("RINEX-SEA", "regional", "", "SEA", ("WCO-GLOBAL",)),
    ("KE", "national", "KE", "ESA", ("RINEX-ESA",)),
    ("KE-MBA", "port", "KE", "ESA", ("KE",)),
    ("TZ", "national", "TZ", "ESA", ("RINEX-ESA",)),
    ("VN", "national", "VN", "SEA", ("RINEX-SEA",)),
    ("TH", "national", "TH", "SEA", ("RINEX-SEA",)),
)


def plan(base: int) -> list[NodePlan]:
    """Officer APIs on base+0…, federation listeners on base+100…, the link on
    base+200…, metrics on base+300…."""
    nodes = []
    for i, (node_id, role, country, region, ups) in enumerate(TOPOLOGY):
        listen = base + 100 + i
        endpoint = base + 200 + i if node_id in LINKED else listen
        nodes.append(
            NodePlan(node_id, role, country, region, ups, base + i, listen, endpoint, base + 300 + i)
        )
    return nodes


def taken_ports(nodes: Sequence[NodePlan]) -> list[str]:
    """One line per port of the plan that cannot be bound on 127.0.0.1 now."""
    taken = []
    for node in nodes:
        for port, what in node.ports:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                # as the servers bind: a port left in TIME_WAIT is free, one something listens on is not
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError as e:
                    taken.append(f"port {port} ({node.node_id}'s {what}) is taken: {e.strerror or e}")
    return taken


_IN_PROCESS = threading.Lock()


def run_gcn(args: Sequence[str]) -> str:
    """`gcn ARGS`, run by this process: the same command line, parsed and run by
    the same code, without starting an interpreter for each of the demo's ~50
    commands (on two busy cores, that start costs more than the work). Its
    stdout; a failure is a DemoError with its message. One at a time: stdout
    and stderr are redirected while it runs."""
    from node.cli.main import main  # the command line itself (it registers this module's command)

    out, err = io.StringIO(), io.StringIO()
    with _IN_PROCESS, redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:  # a command that exits the process itself
            code = e.code if isinstance(e.code, int) else 2
    if code != 0:
        detail = err.getvalue().strip().splitlines()[-1:] or ["(no message)"]
        raise DemoError(f"`gcn {' '.join(args[:3])} …` exited {code}: {detail[0]}")
    return out.getvalue()


def build(state: Path, nodes: Sequence[NodePlan], say: Callable[[str], None]) -> None:
    """The federation root and every node, made with the CLI (what deploy/README describe)."""
    root = state / "root"
    run_gcn(["root", "init", "--dir", str(root), "--federation", FEDERATION])
    say(f"federation root {FEDERATION} made in {root}")

    def init(n: NodePlan) -> None:
        d = state / n.node_id
        args = ["init", "--dir", str(d), "--id", n.node_id, "--name", f"{n.node_id} customs"]
        args += ["--role", n.role, "--listen", f"127.0.0.1:{n.officer}"]
        args += ["--root-keys", str(root / "root-keys.json"), "--federation-listen", f"127.0.0.1:{n.listen}"]
        if n.endpoint != n.listen:
            args += ["--federation-endpoint", f"127.0.0.1:{n.endpoint}"]
        args += ["--country", n.country] if n.country else []
        args += ["--region", n.region] if n.region else []
        for up in n.upstreams:
            args += ["--upstream", up]
        run_gcn(args)

    def install(n: NodePlan) -> None:
        d = state / n.node_id
        cfg = str(d / "gcn.toml")
        cert, ca = str(d / "node.cert.pem"), str(root / "ca.pem")
        run_gcn(["federation", "install", "--cert", cert, "--ca", ca, "--config", cfg])
        token = (
            run_gcn(["users", "add", "officer", "--role", "officer", "--config", cfg])
            .strip()
            .splitlines()[-1]
        )
        path = d / "officer.token"
        path.touch(mode=0o600)
        path.write_text(token + "\n")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(init, nodes))
        say(f"{len(nodes)} nodes made their keys and join requests")
        for n in nodes:
            d = state / n.node_id
            run_gcn(
                [
                    "root",
                    "admit",
                    str(d / "join-request.json"),
                    "--dir",
                    str(root),
                    "--out",
                    str(d / "node.cert.pem"),
                ]
            )
        say("the root admitted them and issued their certificates")
        list(pool.map(install, nodes))
        run_gcn(["root", "publish", "--dir", str(root), "--out", str(root / "directory.pb")])
        imp = ["directory", "import", str(root / "directory.pb"), "--config"]
        list(pool.map(lambda n: run_gcn([*imp, str(state / n.node_id / "gcn.toml")]), nodes))
        say("certificates installed, tokens issued, the signed directory published and imported")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_pids(state: Path) -> dict[str, int]:
    """What `pids.json` names that still runs."""
    path = state / PIDS_FILE
    if not path.exists():
        return {}
    try:
        pids: dict[str, int] = json.loads(path.read_text())
    except ValueError:
        return {}
    return {name: pid for name, pid in pids.items() if _alive(pid)}


def stop_pids(pids: dict[str, int], timeout: float = 30.0) -> list[str]:
    """SIGTERM each process group, wait, SIGKILL what is left; the names that needed it."""
    for pid in pids.values():
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
        time.sleep(0.2)
    killed = []
    for name, pid in pids.items():
        if _alive(pid):
            killed.append(name)
            with suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    return killed


class Federation:
    """The running demo: the link proxy and one `gcn serve` per node."""

    def __init__(self, state: Path, nodes: Sequence[NodePlan]) -> None:
        self.state = state
        self.nodes = {n.node_id: n for n in nodes}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._stubs: dict[str, node_pb2_grpc.NodeServiceStub] = {}

    def log(self, node_id: str) -> Path:
        return self.state / node_id / "node.log"

    def _spawn(self, name: str, args: list[str], log: Path, env: dict[str, str]) -> None:
        with log.open("ab") as out:
            self.procs[name] = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env={**os.environ, **env},
                start_new_session=True,  # its own process group: stopped whole, not by the terminal's Ctrl-C
            )
        (self.state / PIDS_FILE).write_text(json.dumps({k: p.pid for k, p in self.procs.items()}))

    def start(self, timeout: float = 120.0) -> None:
        """The link, then every node; returns when all serve. A node that exits
        or does not serve in time is a DemoError naming it and its log."""
        pairs = [f"{n.endpoint}:{n.listen}" for n in self.nodes.values() if n.endpoint != n.listen]
        self._spawn("link", [sys.executable, "-m", "node.cli.demo_link", *pairs], self.state / "link.log", {})
        offsets = {}
        env = {
            "GCN_LOGGING_FORMAT": "json",
            "GCN_FEDERATION_SYNC_INTERVAL_SECONDS": SYNC_INTERVAL,
            "GCN_FEDERATION_BACKOFF_INITIAL_SECONDS": BACKOFF_INITIAL,
        }
        for node_id in self.nodes:
            log = self.log(node_id)
            offsets[node_id] = log.stat().st_size if log.exists() else 0
            cfg = str(self.state / node_id / "gcn.toml")
            metrics = {"GCN_SERVER_METRICS_LISTEN": f"127.0.0.1:{self.nodes[node_id].metrics}"}
            self._spawn(node_id, [*GCN, "serve", "--config", cfg], log, env | metrics)
        deadline = time.monotonic() + timeout
        waiting = dict(offsets)
        while waiting:
            self.check_alive()
            for node_id, offset in list(waiting.items()):
                with self.log(node_id).open("rb") as f:
                    f.seek(offset)
                    if b'"node serving"' in f.read():
                        del waiting[node_id]
            if time.monotonic() > deadline:
                first = next(iter(waiting))
                raise DemoError(
                    f"node {first} did not start serving within {timeout:.0f}s: see {self.log(first)}"
                )
            time.sleep(0.2)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                where = self.log(name) if name in self.nodes else self.state / "link.log"
                last = _last_line(where)
                who = f"node {name}" if name in self.nodes else "the link"
                raise DemoError(f"{who} exited ({code}): {last} — see {where}")

    def cut(self) -> None:
        os.kill(self.procs["link"].pid, signal.SIGUSR1)

    def restore(self) -> None:
        os.kill(self.procs["link"].pid, signal.SIGUSR2)

    def officer(self, node_id: str, *args: str) -> str:
        """`gcn ARGS` as the node's officer, over TLS to its officer API."""
        d = self.state / node_id
        client = ["--node", f"127.0.0.1:{self.nodes[node_id].officer}", "--ca", str(d / "api-tls" / "ca.pem")]
        client += ["--token", (d / "officer.token").read_text().strip()]  # in this process: never in `ps`
        return run_gcn([*args, *client])

    def officer_call(self, node_id: str, method: str, request: Any) -> Any:
        """One officer API call from this process (what the demo polls, where a
        `gcn` process per poll would cost more than the answer)."""
        if node_id not in self._stubs:
            d = self.state / node_id
            tls = ClientTls((d / "api-tls" / "ca.pem").read_bytes())
            token = (d / "officer.token").read_text().strip()
            self._stubs[node_id] = connect(f"127.0.0.1:{self.nodes[node_id].officer}", token, tls)
        try:
            return call(getattr(self._stubs[node_id], method), request, timeout=30)
        except CliError as e:
            raise DemoError(f"{method} at {node_id}: {e}") from e

    def officer_json(self, node_id: str, *args: str) -> Any:
        return json.loads(self.officer(node_id, *args, "--json"))

    def local_json(self, node_id: str, *args: str) -> Any:
        """A node admin's local command (`--config`), as JSON."""
        cfg = str(self.state / node_id / "gcn.toml")
        return json.loads(run_gcn([*args, "--json", "--config", cfg]))

    def stop(self, timeout: float = 30.0) -> list[str]:
        """SIGTERM all, wait; the names of those that had to be killed."""
        for proc in self.procs.values():
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        killed = []
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(name)
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        (self.state / PIDS_FILE).unlink(missing_ok=True)
        return killed

    def detach(self) -> dict[str, int]:
        """Leave everything running (`--keep`); pids.json stays for `gcn demo --stop`."""
        return {k: p.pid for k, p in self.procs.items()}


def _last_line(path: Path) -> str:
    if not path.exists():
        return "(no log)"
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    if not lines:
        return "(empty log)"
    last = lines[-1]
    with suppress(ValueError, AttributeError):
        event = json.loads(last)
        last = str(event.get("event", last)) + (f": {event['error']}" if "error" in event else "")
    return last[:200]
