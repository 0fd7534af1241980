"""The `gcn` command tree itself: quick to answer `--help` (no grpc, database
or protobuf code loaded for it), every option explained, usage errors about
the command they concern, exit codes by error class, version, completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version

import click
import pytest

from node.cli.errors import CliError, NodeUnreachableError
from node.cli.main import COMMANDS, EXIT_CODES, cli, exit_code, main

HEAVY = (
    "grpc",
    "sqlalchemy",
    "rich",
    "google.protobuf",
    "gcn.v1",
    "node.app",
    "node.admin",
    "node.bootstrap",
)


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )


def test_the_top_level_help_loads_no_heavy_module() -> None:
    done = _python(
        "import json, sys\n"
        "from node.cli.main import main\n"
        "code = main(['--help'])\n"
        f"print(json.dumps([code, [m for m in {HEAVY!r} if m in sys.modules]]))\n"
    )
    assert done.returncode == 0, done.stderr
    *help_lines, last = done.stdout.splitlines()
    assert json.loads(last) == [0, []]
    assert "Usage: gcn" in help_lines[0]
    listed = "\n".join(help_lines)
    assert all(f"  {name} " in listed for name in COMMANDS)


@pytest.mark.parametrize(
    "command",
    [
        "search",
        "alerts",
        "records list",
        "seizure add",
        "export csv",
        "users add",
        "init",
        "serve",
        "node info",
        "alarms",
        "audit verify",
        "api ca",
        "stats",
        "demo",
    ],
)
def test_a_command_s_help_loads_no_grpc_database_or_logging(command: str) -> None:
    """Their modules import those inside the command (the enum choices in
    officers' flags' help come from the protos, which are light)."""
    not_for_help = ("grpc", "sqlalchemy", "node.app", "node.admin", "rich", "structlog")
    done = _python(
        "import sys\n"
        "from node.cli.main import main\n"
        f"assert main({[*command.split(), '--help']!r}) == 0\n"
        f"print('LOADED', [m for m in {not_for_help!r} if m in sys.modules])\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Usage: gcn {command} ")
    assert "LOADED []" in done.stdout.splitlines()


def test_completing_a_command_name_loads_no_heavy_module() -> None:
    done = _python(
        "import sys\n"
        "from node.cli.main import main\n"
        "try:\n"
        "    main([])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])\n",
        _GCN_COMPLETE="bash_complete",
        COMP_WORDS="gcn rec",
        COMP_CWORD="1",
    )
    assert done.returncode == 0, done.stderr
    assert "plain,records" in done.stdout.splitlines()
    assert "HEAVY []" in done.stdout


def test_completion_of_a_subcommand_option() -> None:
    done = _python(
        "from node.cli.main import main\nmain([])\n",
        _GCN_COMPLETE="bash_complete",
        COMP_WORDS="gcn records list --li",
        COMP_CWORD="3",
    )
    assert "plain,--limit" in done.stdout.splitlines(), done.stdout + done.stderr


def _commands(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command]]:
    out = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = f"{ctx.command_path} {name}"
        if isinstance(command, click.Group):
            out += _commands(command, click.Context(command, info_name=name, parent=ctx))
        else:
            out.append((path, command))
    return out


def test_every_command_and_option_is_explained() -> None:
    root = click.Context(cli, info_name="gcn")
    commands = _commands(cli, root)
    assert len(commands) >= 42
    missing = [
        f"{path} {param.opts[0]}"
        for path, command in commands
        for param in command.params
        if isinstance(param, click.Option) and not param.help
    ]
    assert missing == []
    assert [path for path, command in commands if not command.help] == []


def test_each_table_entry_is_the_command_it_names() -> None:
    ctx = click.Context(cli, info_name="gcn")
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name, name


def test_an_unknown_option_shows_the_usage_of_its_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["records", "list", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Usage: gcn records list [OPTIONS]"), err
    assert "No such option '--bogus'" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"gcn {version('gcn')}\n"


def test_exit_codes_go_by_class_and_a_subclass_is_listed_before_its_base() -> None:
    classes = [cls for cls, _, _ in EXIT_CODES]
    for i, cls in enumerate(classes):
        assert not any(issubclass(cls, earlier) for earlier in classes[:i]), cls
    assert exit_code(NodeUnreachableError("internal: boom")) == 1
    assert exit_code(CliError("node unavailable: looks like one, is not")) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["records", "list"],
        ["search", "ivory"],
        ["alerts"],
        ["export", "csv"],
    ],
)
def test_an_unreachable_node_exits_1_from_every_officer_command(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """`search` re-raised the node's error as a plain CliError: by class that was exit 2."""
    monkeypatch.chdir(str(tmp_path))  # no ./gcn.toml to take a node from
    monkeypatch.setenv("GCN_NODE", "127.0.0.1:1")
    monkeypatch.setenv("GCN_TOKEN", "gcn_x")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("gcn: node unavailable") and err.count("\n") == 1, err


def test_the_environment_defaults_are_the_options_of_one_declaration() -> None:
    from node.admin import Role
    from node.bootstrap import CONFIG_FILE
    from node.cli import options, user_cmds

    assert options.CONFIG_FILE == CONFIG_FILE
    assert tuple(r.value for r in Role) == user_cmds.ROLES
    assert all(
        name in (cli.epilog or "") for name in (options.ENV_NODE, options.ENV_CONFIG, options.ENV_TOKEN)
    )
