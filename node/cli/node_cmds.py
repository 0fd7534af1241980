"""`gcn init`, `gcn serve` and `gcn node info`: make a node, run it, ask it who it is."""

from __future__ import annotations

import re
from pathlib import Path

import click

from node.cli.errors import CliError
from node.cli.options import CONFIG_FILE, Client, client_options, config_option, load

ROLES = ("national", "port", "regional", "global")


def host_port(value: str) -> str:
    """`value` if it is HOST:PORT with an ASCII port in 1-65535."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{value!r} is not HOST:PORT")
    return value


def _host_port(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else host_port(value)


@click.command()
@click.option("--dir", "directory", default=".", help="the node's directory (default: here)")
@click.option("--id", "node_id", required=True, help="node id, e.g. KE or KE-MBA")
@click.option("--name", help="human name of the administration or port (default: the id)")
@click.option(
    "--role", type=click.Choice(ROLES), default="national", show_default=True, help="the node's role"
)
@click.option("--country", help="ISO 3166-1 alpha-2 (national and port nodes)")
@click.option("--region", help="RINEX region, e.g. ESA")
@click.option(
    "--listen",
    default="127.0.0.1:7401",
    show_default=True,
    metavar="HOST:PORT",
    help="where the officer API listens (officers' `--node`)",
)
@click.option(
    "--api-name",
    multiple=True,
    help="a DNS name or IP address officers reach the node by, put in its API certificate "
    "(repeatable; localhost, 127.0.0.1, ::1 and the --listen host are always there)",
)
@click.option(
    "--database-url",
    default="sqlite:///gcn.sqlite",
    show_default=True,
    help="SQLAlchemy URL of the node's database: sqlite:///FILE (a relative FILE is in the node's "
    "data directory) or postgresql+psycopg://USER@HOST/DB",
)
@click.option(
    "--root-keys", metavar="FILE", help="the federation's root-keys.json: pin it and write join-request.json"
)
@click.option(
    "--federation-listen",
    metavar="HOST:PORT",
    callback=_host_port,
    help="HOST:PORT of the mutual-TLS listener",
)
@click.option(
    "--federation-endpoint",
    metavar="HOST:PORT",
    callback=_host_port,
    help="HOST:PORT peers use to reach it (default: listen)",
)
@click.option(
    "--upstream", multiple=True, metavar="NODE_ID", help="node id this node replicates with (repeatable)"
)
def init(
    directory: str,
    node_id: str,
    name: str | None,
    role: str,
    country: str | None,
    region: str | None,
    listen: str,
    api_name: tuple[str, ...],
    database_url: str,
    root_keys: str | None,
    federation_listen: str | None,
    federation_endpoint: str | None,
    upstream: tuple[str, ...],
) -> int:
    """Create a node: config, keys, database, audience keys."""
    from node.bootstrap import init_node
    from node.cli.render import say
    from node.clock import system_clock
    from node.joining import JOIN_REQUEST_FILE, prepare_join, read_root_keys

    # Check the federation flags before creating anything, so a mistake leaves no half-made node.
    pinned = read_root_keys(Path(root_keys)) if root_keys else None
    if pinned is not None and not federation_listen:
        raise CliError("--root-keys needs --federation-listen HOST:PORT (this node's mutual-TLS listener)")
    config = init_node(
        Path(directory),
        node_id=node_id,
        name=name or node_id,
        role=role,
        country=country or "",
        region=region or "",
        listen=listen,
        database_url=database_url,
        tls_names=[n.strip() for n in api_name if n.strip()],
        federation_listen=federation_listen or "",
        federation_endpoint=federation_endpoint or "",
        upstreams=[u.strip().upper() for u in upstream],
    )
    say(
        f"node {config.node.id} ({config.node.role}) created in {config.base_dir}; "
        f"start it with: gcn serve --config {config.base_dir / CONFIG_FILE}"
    )
    say(
        f"officers' CLIs trust its API CA {config.api_tls_dir / 'ca.pem'} "
        "(hand it over with `gcn api ca`; set GCN_NODE_CA to it)"
    )
    if pinned is not None:
        prepare_join(config, pinned, system_clock())
        say(
            f"root keys pinned; join request written to {config.base_dir / JOIN_REQUEST_FILE}: "
            f"send it to the federation root (gcn root admit {JOIN_REQUEST_FILE})"
        )
    return 0


@click.command()
@config_option()
def serve(config: str | None) -> int:
    """Run the node until SIGTERM/SIGINT."""
    from node.api.server import serve as serve_node
    from node.logging import configure_logging

    loaded = load(config)
    configure_logging(loaded.logging.format, loaded.logging.level)
    try:
        serve_node(loaded)
    except OSError as e:  # a taken or forbidden port: one line, not a traceback
        cause = e.__cause__
        detail = getattr(cause, "strerror", None) or (str(cause) if cause else "")
        raise CliError(f"{e}: {detail}" if detail and detail not in str(e) else str(e)) from e
    return 0


@click.group()
def node() -> None:
    pass


@node.command("info")
@client_options
def node_info(client: Client) -> int:
    """The node's id, role and public keys (JSON)."""
    from gcn.v1 import node_pb2 as npb
    from node.cli import render
    from node.cli.client import call

    render.print_json(call(client.stub().GetNodeInfo, npb.GetNodeInfoRequest()))
    return 0
