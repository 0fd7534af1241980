"""The options many `gcn` commands share, declared once, with the environment
variable each falls back to (click's `envvar=`), and where they lead: the
node's config file, and a NodeService stub for the node they name.

Light on purpose: building `gcn --help` imports this module, so grpc, the
generated protos, the node's config and bootstrap code are imported only
inside the functions that need them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from node.cli.errors import CliError

if TYPE_CHECKING:
    from node.cli.client import ClientTls
    from node.config import Config

F = TypeVar("F", bound=Callable[..., Any])

# `node.bootstrap.CONFIG_FILE`, which is not light to import (a test checks they agree).
CONFIG_FILE = "gcn.toml"
DEFAULT_NODE = "127.0.0.1:7401"

# The environment variables of the CLI (never read as node configuration, see node.config).
ENV_CONFIG = "GCN_CONFIG"
ENV_NODE = "GCN_NODE"
ENV_TOKEN = "GCN_TOKEN"
ENV_NODE_CA = "GCN_NODE_CA"


def config_path(config: str | None) -> Path:
    """The node config file: `--config` (or GCN_CONFIG), else ./gcn.toml."""
    return Path(config or CONFIG_FILE)


def load(config: str | None) -> Config:
    """The checked config of the node of `--config` (GCN_CONFIG, ./gcn.toml)."""
    from node.config import load_config

    return load_config(config_path(config))


def config_option(help_text: str = f"node config file (default: ./{CONFIG_FILE})") -> Callable[[F], F]:
    """`--config FILE`, or GCN_CONFIG; the handler gets it as `config` (None when neither is set)."""
    return click.option("--config", metavar="FILE", envvar=ENV_CONFIG, show_envvar=True, help=help_text)


def json_option(help_text: str = "print JSON for scripts") -> Callable[[F], F]:
    """`--json`; the handler gets it as `as_json`."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


@dataclass(frozen=True)
class Client:
    """Where the officer's commands go and how: the client options of one call."""

    node: str | None = None
    config: str | None = None
    token: str | None = None
    ca: str | None = None
    tls_name: str | None = None
    plaintext: bool = False

    def __repr__(self) -> str:  # never the token
        return f"Client(node={self.node!r}, config={self.config!r}, ca={self.ca!r})"

    def address(self) -> str:
        """`--node` (GCN_NODE), else the `[server] listen` of the config file, else 127.0.0.1:7401."""
        if self.node:
            return self.node
        path = config_path(self.config)
        if path.exists():
            return load(self.config).server.listen
        return DEFAULT_NODE

    def known_config(self) -> Config | None:
        """The config of the node the CLI is pointed at: `--config` / GCN_CONFIG
        (which must load), else ./gcn.toml when it loads."""
        from node.errors import NodeError

        if self.config:
            return load(self.config)
        if not Path(CONFIG_FILE).exists():
            return None
        try:
            return load(None)
        except NodeError:
            return None  # someone else's file here: the CLI then trusts no node CA and says so

    def tls(self, address: str) -> ClientTls | None:
        """What the CLI trusts: `--ca` / GCN_NODE_CA, else the API CA of the node
        of `--config` (GCN_CONFIG, ./gcn.toml), else gRPC's default roots; None
        (plaintext) with `--plaintext` or a node configured so, to loopback only."""
        from node.api.tls import api_ca_pem, is_loopback, listen_host
        from node.cli.client import ClientTls

        config = None if self.ca else self.known_config()
        if self.plaintext or (config is not None and config.server.tls == "off"):
            if not is_loopback(listen_host(address)):
                raise CliError(f"plaintext is only for a node on loopback, not {address}: drop --plaintext")
            return None
        if self.ca:
            try:
                ca_pem = Path(self.ca).read_bytes()
            except OSError as e:
                raise CliError(f"--ca / {ENV_NODE_CA}: cannot read {self.ca}: {e.strerror or e}") from e
            if b"-----BEGIN CERTIFICATE-----" not in ca_pem:
                raise CliError(f"--ca / {ENV_NODE_CA}: {self.ca} holds no PEM certificate")
            return ClientTls(ca_pem, self.tls_name or "")
        return ClientTls(api_ca_pem(config) if config is not None else None, self.tls_name or "")

    def stub(self) -> Any:
        """A NodeService stub for this node, carrying `--token` (or GCN_TOKEN)."""
        from node.cli.client import connect

        address = self.address()
        return connect(address, self.token, self.tls(address))


_CLIENT_OPTIONS = (
    click.option(
        "--node",
        metavar="HOST:PORT",
        envvar=ENV_NODE,
        show_envvar=True,
        help=f"the node's officer API (default: --config's [server] listen, else {DEFAULT_NODE})",
    ),
    config_option(f"node config file: its listen address and API CA (default: ./{CONFIG_FILE})"),
    click.option(
        "--token",
        metavar="TOKEN",
        envvar=ENV_TOKEN,
        show_envvar=True,
        help="your bearer token (prefer the variable: a flag shows in `ps`)",
    ),
    click.option(
        "--ca",
        metavar="FILE",
        envvar=ENV_NODE_CA,
        show_envvar=True,
        help="the node's API CA certificate to trust (default: --config's node's own; "
        "the node's admin prints it with `gcn api ca`)",
    ),
    click.option(
        "--tls-name",
        metavar="NAME",
        help="the name the node's certificate must carry, if not the --node host",
    ),
    click.option(
        "--plaintext", is_flag=True, help="no TLS (only to a loopback node with [server] tls = off)"
    ),
)


def client_options(f: F) -> F:
    """The client options (--node, --config, --token, --ca, --tls-name,
    --plaintext), handed to the command as one `client: Client`."""

    @functools.wraps(f)
    def command(
        *args: Any,
        node: str | None,
        config: str | None,
        token: str | None,
        ca: str | None,
        tls_name: str | None,
        plaintext: bool,
        **kwargs: Any,
    ) -> Any:
        return f(*args, client=Client(node, config, token, ca, tls_name, plaintext), **kwargs)

    decorated: Any = command
    for option in reversed(_CLIENT_OPTIONS):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]
