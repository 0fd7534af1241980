"""`gcn demo` end to end, as a user runs it: the whole story with its report,
a rerun that records nothing twice and keeps the federation running, `--stop`,
a node that fails, and a port that is taken."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from node.cli.demo_federation import plan, taken_ports

pytestmark = pytest.mark.slow


def _free_base() -> int:
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(20000, 40000, 10)
        if not taken_ports(plan(base)):
            return base
    raise AssertionError("no free range of 400 ports")


def _demo(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "node.cli.main", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of a process we did not start is reaped by init; /proc tells us which state it is in
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


def test_the_story_runs_reruns_without_duplicates_keeps_and_stops(tmp_path: Path) -> None:
    state, base = tmp_path / "federation", _free_base()
    try:
        _story_reruns_and_fails_cleanly(state, base)
    finally:
        _demo("--stop", "--dir", str(state), timeout=60)  # whatever happened: nothing left running


def _story_reruns_and_fails_cleanly(state: Path, base: int) -> None:
    first = _demo("--dir", str(state), "--base-port", str(base))
    assert first.returncode == 0, first.stdout + first.stderr
    out = " ".join(first.stdout.split())  # the report's words, whatever the wrapping
    for text in (
        "What was recorded where",
        "What reached whom",
        "The port cut off and back",
        "How long it took",
    ):
        assert text in out, out
    assert "officers recorded 6 new records" in out, out
    assert "said KE down; at the global hub: no." in out, out
    assert "restored: its records at the global hub in" in out, out
    # TZ finds the port's container (redacted, through its region); KE finds the accented company.
    assert "ivory + pangolin scales KE-MBA redacted from local, ESA" in out, out
    assert "e-waste (while cut) KE-MBA full from local, ESA" in out, out
    assert "not arrived" not in out, out
    assert all(len(line) <= 80 for line in first.stdout.splitlines()), "the report fits 80 columns"
    assert not (state / "pids.json").exists(), "a clean stop leaves nothing running"
    recorded = json.loads((state / "demo.json").read_text())["records"]
    assert len(recorded) == 7

    _rerun_keep_stop(state, base, recorded)

    # A node that cannot start: the demo stops what it started and names the node and its log.
    config = state / "TZ" / "gcn.toml"
    config.write_text(config.read_text() + "\nbogus = 1\n")
    failed = _demo("--dir", str(state), "--base-port", str(base))
    assert failed.returncode != 0, failed.stdout
    assert "node TZ exited" in failed.stderr and str(state / "TZ" / "node.log") in failed.stderr, (
        failed.stderr
    )
    assert not (state / "pids.json").exists()
    assert not taken_ports(plan(base)), "every process it started is stopped"


def _rerun_keep_stop(state: Path, base: int, recorded: dict[str, str]) -> None:
    again = _demo("--dir", str(state), "--base-port", str(base), "--keep")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "officers recorded 0 new records" in again.stdout, again.stdout
    assert " new\n" not in again.stdout, "a rerun records nothing twice"
    assert json.loads((state / "demo.json").read_text())["records"] == recorded
    assert f"gcn demo --stop --dir {state}" in again.stdout, again.stdout
    pids = json.loads((state / "pids.json").read_text())
    assert len(pids) == 9 and all(_alive(p) for p in pids.values()), pids
    tz = next(n for n in plan(base) if n.node_id == "TZ")
    assert f"curl -s 127.0.0.1:{tz.metrics}/metrics" in again.stdout, again.stdout
    with urllib.request.urlopen(f"http://127.0.0.1:{tz.metrics}/metrics", timeout=10) as reply:
        scraped = reply.read().decode()
    assert 'gcn_peer_link_state{peer="RINEX-ESA",state="ok"} 1.0' in scraped, scraped[:2000]

    refused = _demo("--dir", str(state), "--base-port", str(base))
    assert refused.returncode != 0 and "already running" in refused.stderr, refused.stderr

    stopped = _demo("--stop", "--dir", str(state))
    assert stopped.returncode == 0, stopped.stderr
    assert not any(_alive(p) for p in pids.values()), "--stop stops every process"


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    state, base = tmp_path / "federation", _free_base()
    ke_officer = plan(base)[3]
    assert ke_officer.node_id == "KE"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", ke_officer.officer))
        s.listen(1)
        refused = _demo("--dir", str(state), "--base-port", str(base), timeout=60)
    assert refused.returncode != 0
    assert f"port {ke_officer.officer} (KE's officer API) is taken" in refused.stderr, refused.stderr
    assert not state.exists(), "nothing is made before the ports are checked"
