"""`gcn users`: the node's officers, analysts and admins and their tokens.
Local: opens the node's database through the operator facade (`node.admin`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import click

from node.cli.options import config_option, json_option, load

if TYPE_CHECKING:
    from node.admin import UserStore

# `node.admin.Role`'s values (a test checks they agree): the choices of --role without importing node.admin.
ROLES = ("analyst", "officer", "admin")


@contextmanager
def _users(config: str | None) -> Iterator[UserStore]:
    """The users of the node of `--config`, straight from its database."""
    from node.admin import open_users

    with open_users(load(config)) as users:
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


@click.group()
def users() -> None:
    pass


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES), help="what the user may do on the node")
@config_option()
def users_add(name: str, role: str, config: str | None) -> int:
    """Add a user and print its token, once. NAME: 2-64 of a-z 0-9 . _ -"""
    from node.admin import Role
    from node.clock import system_clock

    parsed = Role.parse(role)
    with _users(config) as store:
        token = store.add(name, parsed, system_clock())
    return _issued(name, parsed.value, token, "added")


@users.command("rotate")
@click.argument("name")
@config_option()
def users_rotate(name: str, config: str | None) -> int:
    """Give a user a new token; the old one stops working."""
    from node.clock import system_clock

    with _users(config) as store:
        token = store.rotate(name, system_clock())
        role = store.get(name).role
    return _issued(name, role.value, token, "has a new token (the old one no longer works)")


@users.command("remove")
@click.argument("name")
@config_option()
def users_remove(name: str, config: str | None) -> int:
    """Remove a user; its token stops working."""
    from node.cli import render

    with _users(config) as store:
        store.remove(name)
    render.console.print(f"user {name} removed; its token no longer works")
    return 0


@users.command("list")
@config_option()
@json_option()
def users_list(config: str | None, as_json: bool) -> int:
    """List users (never their tokens)."""
    from rich.table import Table

    from node.cli import render

    with _users(config) as store:
        listed = store.list()

    if as_json:

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
