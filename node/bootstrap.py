"""`gcn init`: a new node's directory — its config, its keys, the officer
API's CA and TLS certificate, its database, and the first epoch of the
audiences it holds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from node.api.tls import create_api_tls
from node.app import NodeApp
from node.clock import Clock, system_clock
from node.config import (
    Config,
    DatabaseSection,
    FederationSection,
    NodeSection,
    ServerSection,
    check_config,
    load_config,
    render_config,
)
from node.errors import ConfigError
from node.storage.key_files import KeyDirectory

CONFIG_FILE = "gcn.toml"


def init_node(
    directory: Path,
    *,
    node_id: str,
    name: str,
    role: str,
    country: str = "",
    region: str = "",
    listen: str = "127.0.0.1:7401",
    database_url: str = "sqlite:///gcn.sqlite",
    clock: Clock = system_clock,
    federation: FederationSection | None = None,
    tls_names: Sequence[str] = (),
) -> Config:
    """Create a node in `directory`; refuses to touch an existing one."""
    config_path = directory / CONFIG_FILE
    if config_path.exists():
        raise ConfigError(f"{config_path} already exists; refusing to overwrite a node")
    config = check_config(
        Config(
            node=NodeSection(
                id=node_id, name=name, role=role, country=country.upper(), region=region.upper()
            ),
            server=ServerSection(listen=listen, tls_names=",".join(tls_names)),
            database=DatabaseSection(url=database_url),
            federation=federation or FederationSection(),
            base_dir=directory.resolve(),
        )
    )
    directory.mkdir(parents=True, exist_ok=True)
    create_api_tls(config, clock())
    KeyDirectory(config.keys_dir).create(clock())
    config_path.write_text(render_config(config))
    config = load_config(config_path)
    app = NodeApp.open(config, clock)
    try:
        app.ensure_own_audiences(clock)
    finally:
        app.close()
    return config
