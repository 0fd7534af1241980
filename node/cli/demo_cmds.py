"""`gcn demo`: the main job in one command — a federation on this machine,
made and run with the real `gcn` commands, its story, a short report, a
clean stop.

A federation root, the WCO global hub, the ESA and SEA RINEX hubs, four
national nodes (KE, TZ, VN, TH) and Kenya's port of Mombasa, each its own
`gcn serve` on loopback (officer API over TLS, mutual-TLS federation,
embedded SQLite). It checks every port first and refuses naming the one
taken; a node that exits or does not serve stops everything it started, and
the error names the node and its log. State stays in `--dir`
(var/federation): a rerun reuses the federation and records nothing twice.
`--keep` leaves it running and says how to use and stop it (`--stop`).

The federation's plan and processes: node.cli.demo_federation; the story:
node.cli.demo_story; the report: node.cli.demo_report.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from node.cli.errors import CliError

if TYPE_CHECKING:
    from node.cli.demo_federation import Federation
    from node.cli.demo_story import State

DEFAULT_DIR = "var/federation"
DEFAULT_BASE_PORT = 7400


def _stop(state: Path) -> int:
    from node.cli.demo_federation import running_pids, stop_pids
    from node.cli.demo_report import console

    pids = running_pids(state)
    out = console()
    if not pids:
        out.print(f"no demo federation is running from {state}")
        return 0
    killed = stop_pids(pids)
    (state / "pids.json").unlink(missing_ok=True)
    out.print(
        f"stopped {len(pids)} processes of the demo in {state}"
        + (f" (killed: {', '.join(killed)})" if killed else "")
    )
    return 0


def _prepare(base_port: int, fresh: bool, state: Path) -> State | None:
    """Checks before anything starts: nothing of the demo running, the state
    usable, every port free. The state of an earlier run, or None."""
    from node.cli.demo_federation import plan, running_pids, taken_ports
    from node.cli.demo_story import STATE_FILE, State

    if not 1024 <= base_port <= 65535 - 399:
        raise CliError(f"--base-port: must be between 1024 and {65535 - 399} (got {base_port})")
    if running_pids(state):
        raise CliError(
            f"the demo federation in {state} is already running: stop it with `gcn demo --stop --dir {state}`"
        )
    if fresh and state.exists():
        shutil.rmtree(state)
    previous = State.load(state / STATE_FILE)
    if previous is None and state.exists() and any(state.iterdir()):
        raise CliError(f"{state} holds something other than this demo's state: start again with --fresh")
    if previous is not None and previous.base_port != base_port:
        raise CliError(
            f"--base-port: the federation in {state} was made with --base-port {previous.base_port} "
            f"(its directory names those ports); use it, or --fresh"
        )
    taken = taken_ports(plan(base_port))
    if taken:
        raise CliError(
            "; ".join(taken) + " — free it, or run the demo on other ports with --base-port N (and --fresh)"
        )
    return previous


def _keep_hint(out: Any, state: Path, fed: Federation) -> None:
    tz = fed.nodes["TZ"]

    def say(line: str) -> None:  # commands to copy: never wrapped
        out.print(line, soft_wrap=True, markup=False)

    out.print()
    out.rule("[bold]The federation is still running (--keep)", align="left")
    say("Try, as Tanzania's officer (in the repository, after `. .venv/bin/activate`):")
    say(f"  export GCN_NODE=127.0.0.1:{tz.officer} GCN_NODE_CA={state}/TZ/api-tls/ca.pem")
    say(f"  export GCN_TOKEN=$(cat {state}/TZ/officer.token)")
    say("  gcn search --container CSQU3054383      # KE-MBA's seizure, redacted")
    say("  gcn search pangolin --deadline 5        # words, this node and its hub")
    say("  gcn alerts                              # the alerts in force today")
    say(f"  gcn sync status --config {state}/KE-MBA/gcn.toml   # the port's links")
    say(f"  curl -s 127.0.0.1:{tz.metrics}/metrics | grep ^gcn_peer   # TZ's metrics (Prometheus)")
    say(f"Logs: {state}/<node>/node.log")
    where = "" if str(state) == DEFAULT_DIR else f" --dir {state}"
    say(f"Stop it: gcn demo --stop{where}   (or: deploy/demo.sh --stop{where})")


@click.command(
    help="Make (first run) and run a federation of eight nodes on this machine, tell its story "
    "and report what reached whom; then stop it (unless --keep)."
)
@click.option(
    "--dir",
    "directory",
    default=DEFAULT_DIR,
    help=f"the federation's state (default {DEFAULT_DIR}, kept between runs)",
)
@click.option(
    "--base-port",
    metavar="N",
    type=int,
    default=DEFAULT_BASE_PORT,
    help="officer APIs on N…N+7, federation listeners on N+100…, the port's link on N+200… "
    f"(default {DEFAULT_BASE_PORT})",
)
@click.option("--fresh", is_flag=True, help="start again from nothing (removes --dir)")
@click.option("--keep", is_flag=True, help="leave the federation running at the end")
@click.option("--stop", is_flag=True, help="stop a federation left running by --keep")
def demo(directory: str, base_port: int, fresh: bool, keep: bool, stop: bool) -> int:
    state = Path(directory)
    return _stop(state) if stop else _run(state, base_port, fresh, keep)


def _run(state: Path, base_port: int, fresh: bool, keep: bool) -> int:
    from node.cli.demo_federation import DemoError, Federation, build, plan
    from node.cli.demo_report import console, print_report
    from node.cli.demo_story import STATE_FILE, State, run_story

    out = console()
    started = time.monotonic()
    previous = _prepare(base_port, fresh, state)
    nodes = plan(base_port)
    timings: list[tuple[str, float]] = []
    out.rule(
        f"[bold]gcn demo: {len(nodes)} nodes, ports {base_port}-{base_port + 399}, state in {state}",
        align="left",
    )
    try:
        if previous is None:
            state.mkdir(parents=True, exist_ok=True)
            out.print("setting up (first run): the federation root, then every node with its keys …")
            t = time.monotonic()
            build(state, nodes, lambda line: out.print(f"  {line}"))
            previous = State(state / STATE_FILE, base_port)
            previous.save()
            timings.append(("setup", time.monotonic() - t))
        else:
            out.print(f"reusing the federation made earlier in {state} (--fresh starts again)")
    except DemoError as e:
        raise CliError(f"setting up the federation: {e}") from e
    fed = Federation(state, nodes)
    try:
        t = time.monotonic()
        out.print(f"starting {len(nodes)} `gcn serve` processes and the port's link …")
        fed.start()
        timings.append(("start", time.monotonic() - t))
        out.print(
            f"  all serving ({timings[-1][1]:.1f} s); officers record, records spread, the port is cut off …"
        )
        story = run_story(fed, previous, lambda line: out.print(f"  {line}"))
        timings += story.timings
    except DemoError as e:
        fed.stop()
        raise CliError(f"{e} (every process the demo started is stopped)") from e
    except BaseException:
        fed.stop()
        raise
    if keep:
        fed.detach()
    else:
        t = time.monotonic()
        killed = fed.stop()
        timings.append(("clean stop", time.monotonic() - t))
        if killed:
            raise CliError(
                f"{', '.join(killed)} did not stop within 30 s of SIGTERM and was killed: see its node.log"
            )
    timings.append(("total", time.monotonic() - started))
    print_report(out, story, previous.records, timings, list(fed.nodes))
    if keep:
        _keep_hint(out, state, fed)
    return 0
