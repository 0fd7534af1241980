"""The demo's story on a running federation: officers record, the records
spread, the port is cut off and comes back, officers search.

Every step talks to the nodes only through the `gcn` CLI
(`Federation.officer`, `Federation.local_json`) and returns plain data for
the report (node.cli.demo_report). What was recorded is kept in the state
file (`demo.json`), so a rerun records nothing twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gcn.v1 import envelope_pb2 as epb
from gcn.v1 import node_pb2 as npb
from node.cli.demo_federation import DemoError, Federation
from node.cli.demo_samples import Sample, samples

STATE_FILE = "demo.json"
STATE_VERSION = 1
VIEW_RANK = {"VIEW_STATISTICAL": 1, "VIEW_REDACTED": 2, "VIEW_FULL": 3}
SPREAD_TIMEOUT = 120.0
RESTORE_TIMEOUT = 60.0
CUT_SECONDS = 5.0  # at least: long enough for the port to see the link down and retry


@dataclass(frozen=True)
class Search:
    at: str
    why: str
    args: tuple[str, ...]


SEARCHES = (
    Search("TZ", "a container Kenya's port reported", ("--container", "CSQU 305438 3")),
    Search("VN", "rosewood declared as HS 4407.99", ("--hs", "4407.99")),
    Search("KE", "a company, typed without its accents", ("--company", "societe generale")),
    Search("TH", "everything of operation DEMETER", ("--operation", "DEMETER", "--limit", "50")),
)


@dataclass
class State:
    """`demo.json`: the base port the federation was made with, and the record
    id of every sample recorded so far (by sample key)."""

    path: Path
    base_port: int
    records: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> State | None:
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            if data.get("version") != STATE_VERSION:
                raise ValueError
            return cls(path, int(data["base_port"]), dict(data.get("records", {})))
        except (ValueError, KeyError, TypeError) as e:
            raise DemoError(f"{path}: not a demo state this version reads; start again with --fresh") from e

    def save(self) -> None:
        data = {"version": STATE_VERSION, "base_port": self.base_port, "records": self.records}
        self.path.write_text(json.dumps(data, indent=2) + "\n")


@dataclass
class Story:
    """What happened, for the report."""

    samples: list[Sample]
    new: list[str] = field(default_factory=list)  # sample keys recorded by this run
    views: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> record id -> widest view
    spread_seconds: float = 0.0
    spread_missing: list[str] = field(default_factory=list)
    cut_seconds: float = 0.0
    port_saw_down: bool = False
    at_hub_while_cut: bool = False
    backlog_seconds: float | None = None  # restore → the cut record at the global hub
    link_back_seconds: float | None = None  # restore → the port sees KE ok again
    searches: list[tuple[Search, dict[str, Any]]] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)


def _record(fed: Federation, state: State, sample: Sample, story: Story) -> None:
    path = fed.state / "samples" / f"{sample.key}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(sample.body, ensure_ascii=False, indent=2) + "\n")
    reply = fed.officer_json(sample.origin, sample.kind, "add", "--file", str(path))
    state.records[sample.key] = reply["record_id"]
    story.new.append(sample.key)


def record(fed: Federation, state: State, story: Story, phase: str) -> None:
    """Record the samples of `phase` not yet recorded; the state file is saved after each."""
    for s in story.samples:
        if s.phase == phase and s.key not in state.records:
            _record(fed, state, s, story)
            state.save()


def holdings(fed: Federation, node_id: str) -> dict[str, str]:
    """record id -> the widest view `node_id` holds of it (what its officer's `gcn records list` shows)."""
    reply = fed.officer_call(node_id, "ListRecords", npb.ListRecordsRequest(page_size=500))
    held: dict[str, str] = {}
    for r in reply.records:
        view = epb.View.Name(r.view)
        if VIEW_RANK.get(view, 0) > VIEW_RANK.get(held.get(r.record_id, ""), 0):
            held[r.record_id] = view
    return held


def expected(fed: Federation, sample: Sample) -> list[str]:
    """The nodes that should hold `sample` under the default policy: TLP:GREEN
    goes to every member (at least as statistics), TLP:AMBER to its country only."""
    if sample.tlp == "green":
        return list(fed.nodes)
    country = fed.nodes[sample.origin].country
    return [n for n, p in fed.nodes.items() if p.country == country]


def _poll(what: str, timeout: float, check: Callable[[], bool], fed: Federation, poll: float = 0.5) -> float:
    start = time.monotonic()
    while not check():
        fed.check_alive()
        if time.monotonic() - start > timeout:
            raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - start


def wait_spread(fed: Federation, state: State, story: Story, phase: str | None = None) -> float:
    """Poll every node until each holds what the policy sends it; the views it holds."""
    want = {
        (node, state.records[s.key])
        for s in story.samples
        if phase in (None, s.phase) and s.key in state.records
        for node in expected(fed, s)
    }
    start = time.monotonic()
    while True:
        fed.check_alive()
        with ThreadPoolExecutor(max_workers=4) as pool:
            held = dict(zip(fed.nodes, pool.map(lambda n: holdings(fed, n), fed.nodes), strict=True))
        story.views = held
        missing = sorted(f"{rid[:8]} at {node}" for node, rid in want if rid not in held[node])
        if not missing:
            break
        if time.monotonic() - start > SPREAD_TIMEOUT:
            story.spread_missing = missing
            break
        time.sleep(0.5)
    return time.monotonic() - start


def _peer_state(fed: Federation, node_id: str, peer: str) -> str:
    for row in fed.local_json(node_id, "sync", "status")["peers"]:
        if row["peer"] == peer:
            return str(row["state"])
    raise DemoError(f"`gcn sync status` of {node_id} lists no peer {peer}")


def cut_and_restore(fed: Federation, state: State, story: Story) -> None:
    """Cut the port's link, record at the port, restore, time the backlog to the global hub."""
    fed.cut()
    cut_at = time.monotonic()
    record(fed, state, story, "cut")
    cut_ids = [state.records[s.key] for s in story.samples if s.phase == "cut"]
    try:
        _poll(
            "the port to see its link to KE down", 30, lambda: _peer_state(fed, "KE-MBA", "KE") == "down", fed
        )
        story.port_saw_down = True
    except DemoError:
        story.port_saw_down = False
    time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
    new_cut = any(s.phase == "cut" for s in story.samples if s.key in story.new)
    story.at_hub_while_cut = new_cut and all(rid in holdings(fed, "WCO-GLOBAL") for rid in cut_ids)
    fed.restore()
    restored = time.monotonic()
    story.cut_seconds = restored - cut_at
    if new_cut:
        story.backlog_seconds = _poll(
            "the port's records to reach the global hub after the link came back",
            RESTORE_TIMEOUT,
            lambda: all(rid in holdings(fed, "WCO-GLOBAL") for rid in cut_ids),
            fed,
            poll=0.2,
        )
    _poll(
        "the port to see its link to KE up again",
        RESTORE_TIMEOUT,
        lambda: _peer_state(fed, "KE-MBA", "KE") == "ok",
        fed,
        poll=0.2,
    )
    story.link_back_seconds = time.monotonic() - restored


def search(fed: Federation, story: Story) -> None:
    """The officers' searches: `gcn search … --json` at each node."""
    story.searches = [(s, fed.officer_json(s.at, "search", *s.args)) for s in SEARCHES]


def run_story(fed: Federation, state: State, say: Callable[[str], None]) -> Story:
    story = Story(samples(datetime.now(UTC).date()))
    t = time.monotonic()
    record(fed, state, story, "first")
    story.timings.append(("recording", time.monotonic() - t))
    took = story.timings[-1][1]
    say(f"officers recorded {len(story.new)} new records at KE-MBA, KE, TZ, VN, TH ({took:.1f} s)")
    story.spread_seconds = wait_spread(fed, state, story, "first")
    story.timings.append(("spreading", story.spread_seconds))
    if story.spread_missing:  # said as it is: the report names what did not arrive
        say(f"{len(story.spread_missing)} copies had not arrived after {story.spread_seconds:.1f} s")
    else:
        say(f"every node holds what the policy sends it ({story.spread_seconds:.1f} s)")
    t = time.monotonic()
    cut_and_restore(fed, state, story)
    wait_spread(fed, state, story)
    story.timings.append(("the cut", time.monotonic() - t))
    say(f"the port was cut off for {story.cut_seconds:.1f} s and is back ({story.timings[-1][1]:.1f} s)")
    t = time.monotonic()
    search(fed, story)
    story.timings.append(("searches", time.monotonic() - t))
    say(f"{len(story.searches)} federated searches ({story.timings[-1][1]:.1f} s)")
    return story
