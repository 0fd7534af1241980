"""`gcn init`: a new node's directory — its config, its keys, the officer
API's CA and TLS certificate, its database, and the first epoch of the
audiences it holds.

Everything is checked before anything is written: a refused init leaves no
directory, no key and no file behind, and if making the node fails part way
(a database that cannot be reached) what this init made is removed again, so
the corrected command can simply be run again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from node.api.tls import CA_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE, create_api_tls
from node.app import NodeApp
from node.clock import Clock, system_clock
from node.config import Config, config_from, load_config, parse_config, render_config
from node.errors import ConfigError
from node.storage.files import PUBLIC, write_file
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
    federation_listen: str = "",
    federation_endpoint: str = "",
    upstreams: Sequence[str] = (),
    tls_names: Sequence[str] = (),
) -> Config:
    """Create a node in `directory`; refuses to touch an existing one."""
    config_path = directory / CONFIG_FILE
    if config_path.exists():
        raise ConfigError(f"{config_path} already exists; refusing to overwrite a node")
    config = config_from(
        {
            "node": {
                "id": node_id,
                "name": name,
                "role": role,
                "country": country.upper(),
                "region": region.upper(),
            },
            "server": {"listen": listen, "tls_names": list(tls_names)},
            "database": {"url": database_url},
            "federation": {
                "listen": federation_listen,
                "endpoint": federation_endpoint,
                "upstreams": list(upstreams),
            },
        },
        directory.resolve(),
    )
    text = render_config(config)
    if parse_config(text, config_path, env={}) != config:
        raise ConfigError(f"the config for {config_path} does not read back as written; nothing was made")
    parse_config(text, config_path)  # and the GCN_ environment variables in force are valid with it
    _refuse_existing(config)
    with _undone_on_failure(directory, config):
        directory.mkdir(parents=True, exist_ok=True)
        create_api_tls(config, clock())
        KeyDirectory(config.keys_dir).create(clock())
        write_file(config_path, text.encode(), mode=PUBLIC, make_parents_mode=None)
        config = load_config(config_path)
        app = NodeApp.open(config, clock)
        try:
            app.ensure_own_audiences(clock)
        finally:
            app.close()
    return config


def _refuse_existing(config: Config) -> None:
    """Keys or API TLS files left in the directory (another node's): refuse before making any."""
    if KeyDirectory(config.keys_dir).exists():
        raise ConfigError(f"keys already exist in {config.keys_dir}; refusing to overwrite them")
    for name in (CA_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE):
        if (config.api_tls_dir / name).exists():
            raise ConfigError(
                f"{config.api_tls_dir / name} already exists; refusing to replace the officer API's TLS "
                "(`gcn api rotate` re-issues the certificate)"
            )


@contextmanager
def _undone_on_failure(directory: Path, config: Config) -> Iterator[None]:
    """If the body fails, remove what it made: the paths that did not exist before it."""
    made = [
        p
        for p in (
            directory,
            config.data_dir,
            config.keys_dir,
            config.api_tls_dir,
            directory / CONFIG_FILE,
            *_sqlite_files(config.database_url),
        )
        if not os.path.lexists(p)
    ]
    try:
        yield
    except BaseException:
        for path in made:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                path.unlink()
        raise


def _sqlite_files(url: str) -> list[Path]:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite://":
        return []
    database = Path(url[len(prefix) :])
    return [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm", "-journal"))]
