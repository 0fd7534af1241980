"""Story 7: the ESA hub runs as two `gcn serve` replicas over one PostgreSQL
database, behind one endpoint (a loopback TCP balancer that sends each new
connection to the first replica that accepts it). Kenya's national node records
3,000 seizures; meanwhile the replica that runs the hub's sync job with the
global hub is SIGKILLed. The other takes the job over within seconds, and every
holder ends with every envelope of every stream exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.testing.local_federation import free_port
from tests.conftest import _postgres_schema_url
from tests.fault.accounting import assert_exact, holdings, records_at, wait_converged, write_figures
from tests.fault.harness import Federation, Node, federation_from, make_template, seizures_jsonl, wait_for

pytestmark = pytest.mark.postgres

RECORDS = 3000
LEASE = "sync:WCO-GLOBAL"
TAKEN = "lease taken: this replica runs it"
TAKEN_OVER = "sync job taken over by this replica"


@pytest.fixture
def hub_url() -> Iterator[str]:
    yield from _postgres_schema_url()


@pytest.fixture
def replicated(tmp_path: Path, hub_url: str) -> Iterator[tuple[Federation, Node]]:
    make_template(tmp_path / "template", {"RINEX-ESA": hub_url})
    fed = federation_from(tmp_path / "template", tmp_path / "federation")
    hub = fed["RINEX-ESA"]
    twin = Node(
        "RINEX-ESA",
        hub.role,
        hub.directory,
        free_port(),
        free_port(),
        hub.endpoint_port,
        hub.token,
        database_url=hub_url,
        log_name="replica-2.log",
    )
    twin.env |= {
        "GCN_SERVER_LISTEN": f"127.0.0.1:{twin.officer_port}",
        "GCN_FEDERATION_LISTEN": f"127.0.0.1:{twin.listen_port}",
    }
    fed.proxies["RINEX-ESA"].backups.append(twin.listen_port)
    try:
        yield fed, twin
    finally:
        twin.kill()
        fed.close()


def test_a_replica_of_the_hub_dies_mid_stream_and_the_other_takes_its_jobs_over(
    replicated: tuple[Federation, Node], tmp_path: Path, figures_dir: Path
) -> None:
    fed, twin = replicated
    hub, national = fed["RINEX-ESA"], fed["KE"]
    fed.start_all()
    twin.start()
    wait_converged(fed, timeout=120)
    replicas = (hub, twin)
    holders = [r for r in replicas if r.log_events(TAKEN, lease=LEASE)]
    assert len(holders) == 1, "exactly one replica runs the job with the global hub"
    victim = holders[0]
    survivor = twin if victim is hub else hub
    mark = survivor.log_mark()

    stream = seizures_jsonl(tmp_path / "seizures.jsonl", RECORDS, seed=7)
    errors: list[BaseException] = []

    def officer() -> None:
        try:
            national.gcn("seizure", "import", str(stream), "--batch", "100")
        except BaseException as e:
            errors.append(e)

    importer = threading.Thread(target=officer)
    importer.start()
    wait_for(
        "the global hub holding some of KE's records",
        lambda: len(records_at(holdings(fed["WCO-GLOBAL"]), "KE", "global")) >= 100,
        timeout=120,
    )
    killed_at = time.monotonic()
    victim.kill()
    wait_for(
        "the surviving replica taking the job over",
        lambda: bool(survivor.log_events(TAKEN_OVER, since=mark, peer="WCO-GLOBAL")),
        timeout=30,
    )
    takeover_seconds = time.monotonic() - killed_at
    importer.join()
    assert not errors, f"KE's import failed: {errors}"

    converge_seconds = wait_converged(fed, timeout=240)
    counts = assert_exact(fed)
    assert len(records_at(holdings(fed["WCO-GLOBAL"]), "KE", "global")) == RECORDS
    assert len(records_at(holdings(hub), "KE", "region:ESA")) == RECORDS
    assert takeover_seconds <= 10, f"the job was taken over {takeover_seconds:.1f} s after the SIGKILL"
    write_figures(
        figures_dir,
        "hub_replicas",
        {
            "records": RECORDS,
            "takeover_seconds": round(takeover_seconds, 2),
            "converge_seconds": round(converge_seconds, 2),
            "envelopes_at_global": counts.get("WCO-GLOBAL", {}),
        },
    )
