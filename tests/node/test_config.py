"""Configuration: the TOML file, environment overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import load_config
from node.errors import ConfigError

GOOD = """
[node]
id = "KE-MBA"
name = "Mombasa port"
role = "port"
country = "ke"
data_dir = "data"

[server]
listen = "127.0.0.1:7402"

[database]
url = "sqlite:///port.sqlite"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gcn.toml"
    path.write_text(text)
    return path


def test_a_config_file_loads_with_defaults_and_resolved_paths(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD), env={})
    assert config.node.country == "KE"
    assert config.server.max_message_bytes == 4 * 1024 * 1024
    assert config.data_dir == (tmp_path / "data").resolve()
    assert config.database_url == f"sqlite:///{tmp_path.resolve() / 'data' / 'port.sqlite'}"


def test_environment_overrides_win(tmp_path: Path) -> None:
    env = {
        "GCN_DATABASE_URL": "postgresql+psycopg://u@h/db",
        "GCN_SERVER_WORKERS": "4",
        "GCN_LOGGING_FORMAT": "json",
    }
    config = load_config(_write(tmp_path, GOOD), env=env)
    assert config.database_url == "postgresql+psycopg://u@h/db"
    assert config.server.workers == 4
    assert config.logging.format == "json"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        pytest.param("[node\nid=", {}, "not valid TOML", id="bad-toml"),
        pytest.param(GOOD + "\n[nodes]\n", {}, "unknown sections: nodes", id="unknown-section"),
        pytest.param(GOOD.replace('role = "port"', 'role = "hub"'), {}, "role 'hub'", id="unknown-role"),
        pytest.param(GOOD.replace('country = "ke"', 'country = "XX"'), {}, "country 'XX'", id="bad-country"),
        pytest.param(GOOD.replace('id = "KE-MBA"', 'id = "ke mba"'), {}, "id 'ke mba'", id="bad-node-id"),
        pytest.param(
            GOOD.replace('name = "Mombasa port"\n', ""), {}, "missing required keys: name", id="missing-name"
        ),
        pytest.param(GOOD, {"GCN_SERVER_WORKERS": "many"}, "workers must be a number", id="env-not-number"),
        pytest.param(GOOD + '\n[logging]\ncolour = "yes"\n', {}, "unknown keys: colour", id="unknown-key"),
    ],
)
def test_bad_configuration_is_refused_with_the_reason(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text), env=env)


def test_a_missing_file_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="gcn init"):
        load_config(tmp_path / "absent.toml", env={})
