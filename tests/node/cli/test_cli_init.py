"""`gcn init`: a node's directory is made whole or not at all.

The story: an administrator sets up the Lamu port node. A typo (a bad node id,
a listen address without a port, an upstream that is no node id, a database
URL gcn cannot use) is refused before anything is written, so correcting the
command and running it again just works; a name with quotes is kept as typed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from node.bootstrap import CONFIG_FILE
from node.cli.main import main
from node.config import load_config


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _init_args(directory: Path, db: Path) -> list[str]:
    return [
        "init",
        "--dir",
        str(directory),
        "--id",
        "KE-LAU",
        "--role",
        "port",
        "--country",
        "ke",
        "--database-url",
        f"sqlite:///{db}",
    ]


def test_a_name_with_quotes_survives_the_real_cli(tmp_path: Path) -> None:
    directory = tmp_path / "lamu"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCN_")}
    gcn = [sys.executable, "-m", "node.cli.main"]
    args = [*_init_args(directory, tmp_path / "lamu.sqlite"), "--name", 'Port "Lamu"', "--upstream", "ke"]

    made = subprocess.run([*gcn, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    shown = subprocess.run(
        [*gcn, "api", "show", "--config", str(directory / CONFIG_FILE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr

    config = load_config(directory / CONFIG_FILE, env={})
    assert config.node.name == 'Port "Lamu"'
    assert config.node.country == "KE"
    assert config.federation.upstream_ids == ["KE"]


REFUSALS = [
    pytest.param(["--id", "ke lau"], "[node] id 'ke lau' must be 2-63 upper-case letters", id="node-id"),
    pytest.param(["--country", "XX"], "[node] country 'XX' is not an ISO 3166-1 alpha-2 code", id="country"),
    pytest.param(["--listen", "127.0.0.1"], "[server] listen '127.0.0.1' must be HOST:PORT", id="listen"),
    pytest.param(
        ["--upstream", "rinex esa"], "[federation] upstreams: 'RINEX ESA' is not a node id", id="upstream"
    ),
    pytest.param(["--database-url", "mysql://u@h/gcn"], "[database] url: 'mysql' databases", id="database"),
    pytest.param(["--database-url", "::"], "[database] url is not a database URL", id="database-url"),
    pytest.param(["--region", "east africa"], "[node] region 'EAST AFRICA' must be", id="region"),
]


@pytest.mark.parametrize(("wrong", "message"), REFUSALS)
@pytest.mark.parametrize("exists", [False, True], ids=["new-dir", "empty-dir"])
def test_a_refused_init_writes_nothing_and_the_corrected_one_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], wrong: list[str], message: str, exists: bool
) -> None:
    directory = tmp_path / "lamu"
    if exists:
        directory.mkdir()
    args = _init_args(directory, tmp_path / "lamu.sqlite")

    code, out, err = run(capsys, *args, *wrong)

    assert (code, out) == (2, "")
    assert err.startswith(f"gcn: {message}") and err.count("\n") == 1, err
    assert list(directory.iterdir()) == [] if exists else not directory.exists()
    assert not (tmp_path / "lamu.sqlite").exists()
    code, out, err = run(capsys, *args, "--name", "Lamu port")
    assert code == 0 and "created" in out, err
    assert load_config(directory / CONFIG_FILE, env={}).node.name == "Lamu port"


def test_an_invalid_environment_override_refuses_init_before_it_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "lamu"
    monkeypatch.setenv("GCN_SERVER_WORKERS", "many")

    code, _, err = run(capsys, *_init_args(directory, tmp_path / "lamu.sqlite"))

    assert code == 2 and "[server] workers must be a number (got 'many')" in err
    assert not directory.exists()
    monkeypatch.delenv("GCN_SERVER_WORKERS")
    assert run(capsys, *_init_args(directory, tmp_path / "lamu.sqlite"))[0] == 0


def test_a_database_that_cannot_be_reached_leaves_no_half_made_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "lamu"
    args = _init_args(directory, tmp_path / "lamu.sqlite")
    unreachable = "postgresql+psycopg://gcn@127.0.0.1:1/gcn?connect_timeout=2"

    with pytest.raises(Exception, match=r"127\.0\.0\.1"):
        main([*args, "--database-url", unreachable])

    assert not directory.exists()
    capsys.readouterr()
    code, out, err = run(capsys, *args)
    assert code == 0 and "created" in out, err


def test_init_refuses_keys_left_in_the_directory_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "lamu"
    (directory / "keys").mkdir(parents=True)
    (directory / "keys" / "keys.json").write_text("{}")

    code, _, err = run(capsys, *_init_args(directory, tmp_path / "lamu.sqlite"))

    assert code == 2 and "keys already exist" in err
    assert sorted(p.name for p in directory.iterdir()) == ["keys"]
    assert not (directory / "api-tls").exists()
