"""`gcn users`: the node's officers, analysts and admins and their tokens.
Local: opens the node's database through the operator facade (`node.admin`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich.table import Table

from node.admin import Role, UserStore, open_users
from node.bootstrap import CONFIG_FILE
from node.cli import render
from node.cli.federation_cmds import _config
from node.clock import system_clock


@contextmanager
def _users(a: argparse.Namespace) -> Iterator[UserStore]:
    """The users of the node of `--config`, straight from its database."""
    with open_users(_config(a)) as users:
        yield users


def _issued(name: str, role: str, token: str, event: str) -> int:
    # The token alone on stdout (so `export GCN_TOKEN=$(gcn users add …)` works);
    # the warning on stderr.
    print(token)
    print(
        f"gcn: user {name} ({role}) {event}; the token above is shown only this once and "
        "the node keeps only its hash: store it now (e.g. as GCN_TOKEN)",
        file=sys.stderr,
    )
    return 0


def cmd_users_add(a: argparse.Namespace) -> int:
    role = Role.parse(a.role)
    with _users(a) as users:
        token = users.add(a.name, role, system_clock())
    return _issued(a.name, role.value, token, "added")


def cmd_users_rotate(a: argparse.Namespace) -> int:
    with _users(a) as users:
        token = users.rotate(a.name, system_clock())
        role = users.get(a.name).role
    return _issued(a.name, role.value, token, "has a new token (the old one no longer works)")


def cmd_users_remove(a: argparse.Namespace) -> int:
    with _users(a) as users:
        users.remove(a.name)
    render.console.print(f"user {a.name} removed; its token no longer works")
    return 0


def cmd_users_list(a: argparse.Namespace) -> int:
    with _users(a) as users:
        listed = users.list()

    if a.json:

        def at(t: datetime | None) -> str | None:
            return t.isoformat(timespec="seconds") if t is not None else None

        rows = [
            {
                "name": u.name,
                "role": u.role.value,
                "created_at": at(u.created_at),
                "token_issued_at": at(u.token_issued_at),
                "last_used_at": at(u.last_used_at),
            }
            for u in listed
        ]
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0

    def short(t: datetime | None) -> str:
        return t.strftime("%Y-%m-%d %H:%M") if t is not None else "never"

    table = Table(title=f"{len(listed)} user{'' if len(listed) == 1 else 's'} (times UTC)")
    for column in ("name", "role", "created", "token issued", "last used"):
        table.add_column(column, no_wrap=True)
    for u in listed:
        table.add_row(
            u.name, u.role.value, short(u.created_at), short(u.token_issued_at), short(u.last_used_at)
        )
    render.console.print(table)
    return 0


def add_commands(sub: Any) -> None:
    users = sub.add_parser(
        "users", help="the node's users and their tokens (local: opens the node's database)"
    ).add_subparsers(dest="action", required=True)
    config_help = f"node config file (default: GCN_CONFIG or ./{CONFIG_FILE})"
    p = users.add_parser("add", help="add a user and print its token, once")
    p.add_argument("name", help="user name: 2-64 of a-z 0-9 . _ -")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--config", help=config_help)
    p.set_defaults(handler=cmd_users_add)
    p = users.add_parser("list", help="list users (never their tokens)")
    p.add_argument("--config", help=config_help)
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(handler=cmd_users_list)
    p = users.add_parser("remove", help="remove a user; its token stops working")
    p.add_argument("name")
    p.add_argument("--config", help=config_help)
    p.set_defaults(handler=cmd_users_remove)
    p = users.add_parser("rotate", help="give a user a new token; the old one stops working")
    p.add_argument("name")
    p.add_argument("--config", help=config_help)
    p.set_defaults(handler=cmd_users_rotate)
