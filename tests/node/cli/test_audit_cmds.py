"""`gcn audit list` and `gcn audit verify` through the real CLI, on a node
whose officer read records over its API."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from node.api.grpc_server import RunningServer
from node.api.server import build_server
from node.api.tls import server_credentials
from node.app import NodeApp
from node.bootstrap import CONFIG_FILE
from node.cli.main import main
from node.storage.models import AuditRow

pytestmark = pytest.mark.usefixtures("db_url")


@pytest.fixture
def address(app: NodeApp, officer_token: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("GCN_TOKEN", officer_token)
    monkeypatch.setenv("GCN_NODE_CA", str(app.config.api_tls_dir / "ca.pem"))
    running: RunningServer = build_server(
        app, "127.0.0.1:0", max_message_bytes=4 << 20, workers=4, tls=server_credentials(app.config)
    )
    yield f"127.0.0.1:{running.port}"
    running.stop(None)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_reads_are_listed_and_a_tampered_row_is_named(
    app: NodeApp, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(app.config.base_dir / CONFIG_FILE)
    for _ in range(3):
        assert run(capsys, "records", "list", "--node", address)[0] == 0
    code, out, _ = run(capsys, "audit", "list", "--config", config, "--json")
    assert code == 0
    rows = json.loads(out)["audit"]
    assert len(rows) == 3
    assert {r["action"] for r in rows} == {"list"}
    assert {(r["officer"], r["role"]) for r in rows} == {("officer", "officer")}
    code, out, _ = run(capsys, "audit", "verify", "--config", config)
    assert code == 0
    assert "intact: 3 rows" in out

    with app.db.begin() as s:
        s.execute(update(AuditRow).where(AuditRow.seq == 2).values(results=99))
    code, _, err = run(capsys, "audit", "verify", "--config", config)
    assert code == 1
    assert "broken at row 2" in err
