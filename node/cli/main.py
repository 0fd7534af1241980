"""`gcn`: set up and run a node; record, list and show records.

The command tree is click's; each group lives in its own module (COMMANDS
names them) and is imported only when it runs, so `gcn --help` loads no
grpc, database or protobuf code. The options many commands share, and the
environment variables they fall back to (GCN_NODE, GCN_CONFIG, GCN_TOKEN,
GCN_NODE_CA), are declared once in `node.cli.options`. Errors are one line on
stderr and an exit code chosen by the error's class (EXIT_CODES).
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from crypto.errors import CryptoError
from federation.errors import FederationError
from node.cli.errors import CliError, NodeUnreachableError
from node.cli.options import ENV_CONFIG, ENV_NODE, ENV_NODE_CA, ENV_TOKEN
from node.errors import NodeError

# name: (module, attribute, one line for `gcn --help`), in the order `gcn --help` lists them.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("node.cli.node_cmds", "init", "create a node: config, keys, database, audience keys"),
    "serve": ("node.cli.node_cmds", "serve", "run the node until SIGTERM/SIGINT"),
    "seizure": ("node.cli.record_cmds", "seizure", "seizure records"),
    "alert": ("node.cli.record_cmds", "alert", "alerts"),
    "records": ("node.cli.record_cmds", "records", "read records"),
    "retract": ("node.cli.record_cmds", "retract", "retract one of this node's records"),
    "correct": (
        "node.cli.record_cmds",
        "correct",
        "replace one of this node's records by a corrected version",
    ),
    "users": (
        "node.cli.user_cmds",
        "users",
        "the node's users and their tokens (local: opens the node's database)",
    ),
    "search": ("node.cli.search_cmds", "search", "search this node and its hubs for seizures and alerts"),
    "alerts": ("node.cli.search_cmds", "alerts", "the alerts in force today, highest priority first"),
    "node": ("node.cli.node_cmds", "node", "node information"),
    "root": ("node.cli.root_cmds", "root", "the federation root: admit nodes, publish the signed directory"),
    "federation": (
        "node.cli.federation_cmds",
        "federation",
        "this node's membership: certificate, join, renewal",
    ),
    "directory": ("node.cli.federation_cmds", "directory", "the signed federation directory this node holds"),
    "keys": ("node.cli.federation_cmds", "keys", "this node's signing keys"),
    "sync": ("node.cli.sync_cmds", "sync", "replication with peers"),
    "bundle": ("node.cli.sync_cmds", "bundle", "hand-carried envelopes for a node with no link"),
    "alarms": ("node.cli.alarm_cmds", "alarms_cmd", "what the node flagged for an operator, newest first"),
    "audit": (
        "node.cli.audit_cmds",
        "audit",
        "the node's trail of officer reads (who read or searched what)",
    ),
    "api": ("node.cli.api_cmds", "api", "the officer API's TLS: its CA and certificate (local)"),
    "stats": ("node.cli.hub_cmds", "stats", "CEN-style statistics of the seizures this node can read"),
    "demo": (
        "node.cli.demo_cmds",
        "demo",
        "the main job: run a small federation on this machine and report what reached whom",
    ),
    "export": ("node.cli.export_cmds", "export", "records this node holds as CSV or a STIX 2.1 bundle"),
    "generate": (
        "node.cli.generate_cmds",
        "generate",
        "realistic seizures and alerts as JSON lines (for demos, load tests, training)",
    ),
}

# The exit code of each error class; the first class that matches wins (so a
# subclass comes before its base). Besides these: 0 success, 1 a command's own
# check failed (`audit verify`, `bundle import`), 2 a usage error (an unknown
# option, a missing argument), 130 an interrupt (Ctrl-C).
EXIT_CODES: tuple[tuple[type[Exception], int, str], ...] = (
    (NodeUnreachableError, 1, "the node is unreachable, did not answer in time, or failed inside"),
    (CliError, 2, "bad input, a missing or refused token, or the node refused the request"),
    (NodeError, 2, "the node's files or database refuse the operation"),
    (FederationError, 2, "the federation's rules or files refuse the operation"),
    (CryptoError, 2, "a key, signature or certificate does not check"),
)
ERRORS = tuple(cls for cls, _, _ in EXIT_CODES)
INTERRUPTED = 130


def exit_code(error: Exception) -> int:
    """The exit code of `error`, by its class (never by its text)."""
    return next(code for cls, code, _ in EXIT_CODES if isinstance(error, cls))


EPILOG = f"""\b
Environment (the option wins over the variable):
  {ENV_NODE}      the node's officer API, HOST:PORT (--node)
  {ENV_TOKEN}     the officer's bearer token (--token)
  {ENV_NODE_CA}   the node's API CA certificate to trust (--ca)
  {ENV_CONFIG}    the node's config file (--config; default ./gcn.toml)

\b
Exit codes:
  0    done
  1    the node is unreachable, did not answer in time, or failed inside;
       or the command's own check failed (audit verify, bundle import)
  2    bad input or usage, a missing or refused token, or the node, the
       federation's rules or a key check refused the operation
  130  interrupted (Ctrl-C)

\b
Shell completion (bash; zsh and fish alike):
  eval "$(_GCN_COMPLETE=bash_source gcn)"
"""


def _log_warnings_only(command: click.Command) -> None:
    """Each command of `command` sets up the CLI's logging (warnings only) as it
    starts, once its options are parsed: its `--help` loads no logging code."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _log_warnings_only(sub)
        return
    callback = command.callback
    if callback is None or getattr(callback, "gcn_logging", False):
        return

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        from node.logging import configure_logging

        configure_logging("auto", "warning")
        return callback(*args, **kwargs)

    run.gcn_logging = True  # type: ignore[attr-defined]
    command.callback = run


class Gcn(click.Group):
    """The root group: commands from COMMANDS, imported on first use; errors
    turned into one line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, line = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attribute)
        command.help = command.help or line
        if cmd_name != "serve":  # `serve` sets up its logging from its config
            _log_warnings_only(command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # From the table, so that `gcn --help` imports no command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, line) for name, (_, _, line) in COMMANDS.items()])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        if incomplete.startswith("-"):
            return super().shell_complete(ctx, incomplete)
        return [
            CompletionItem(name, help=line)
            for name, (_, _, line) in COMMANDS.items()
            if name.startswith(incomplete)
        ]

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ERRORS as e:
            print(f"gcn: {e}", file=sys.stderr)
            raise click.exceptions.Exit(exit_code(e)) from e
        except KeyboardInterrupt as e:
            raise click.exceptions.Exit(INTERRUPTED) from e
        except BrokenPipeError as e:
            # The reader (e.g. `head`) went away; stop quietly like other Unix tools.
            sys.stderr.close()
            raise click.exceptions.Exit(0) from e


@click.group(
    cls=Gcn,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.version_option(package_name="gcn", prog_name="gcn", message="%(prog)s %(version)s")
def cli() -> None:
    """Green Customs intelligence network node."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run `gcn` with `argv` (default: the process's arguments); the exit code."""
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="gcn", standalone_mode=False)
    except click.ClickException as e:  # a usage error: the usage of the command it is about
        e.show()
        return e.exit_code
    except click.Abort:
        return INTERRUPTED
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
