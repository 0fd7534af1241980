"""Configuration: the TOML file, environment overrides, and clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from node.config import config_from, load_config, render_config
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


# --- lists, old files and the environment -------------------------------------------


def test_lists_are_toml_lists_and_an_old_comma_separated_string_still_loads(tmp_path: Path) -> None:
    listed = GOOD + '\n[federation]\nupstreams = ["RINEX-ESA", "WCO-GLOBAL"]\n'
    old = GOOD.replace(
        'listen = "127.0.0.1:7402"', 'listen = "127.0.0.1:7402"\ntls_names = "a.example, 10.0.0.1"'
    )
    old += '\n[federation]\nupstreams = "RINEX-ESA, WCO-GLOBAL,"\n'

    assert load_config(_write(tmp_path, listed), env={}).federation.upstream_ids == [
        "RINEX-ESA",
        "WCO-GLOBAL",
    ]
    config = load_config(_write(tmp_path, old), env={})
    assert config.federation.upstream_ids == ["RINEX-ESA", "WCO-GLOBAL"]
    assert config.server.tls_name_list == ["a.example", "10.0.0.1"]
    assert load_config(_write(tmp_path, GOOD), env={}).federation.upstream_ids == []


def test_a_list_is_overridden_by_a_comma_separated_environment_variable(tmp_path: Path) -> None:
    text = GOOD + '\n[federation]\nupstreams = ["RINEX-ESA"]\n'
    env = {"GCN_FEDERATION_UPSTREAMS": "WCO-GLOBAL,RINEX-SEA", "GCN_SERVER_TLS_NAMES": ""}

    config = load_config(_write(tmp_path, text), env=env)

    assert config.federation.upstream_ids == ["WCO-GLOBAL", "RINEX-SEA"]
    assert config.server.tls_name_list == []


def test_the_environment_wins_over_the_file_and_the_file_over_the_defaults(tmp_path: Path) -> None:
    text = GOOD + "\n[federation]\nsync_interval_seconds = 5\nscrub_envelopes_per_step = 9\n"
    env = {"GCN_FEDERATION_SYNC_INTERVAL_SECONDS": "2.5", "GCN_NODE_DATA_DIR": "elsewhere"}

    config = load_config(_write(tmp_path, text), env=env)

    assert config.federation.sync_interval_seconds == 2.5  # environment
    assert config.federation.scrub_envelopes_per_step == 9  # file
    assert config.federation.backoff_max_seconds == 600.0  # default
    assert config.data_dir == (tmp_path / "elsewhere").resolve()
    assert config.node.id == "KE-MBA"  # the rest of [node] still from the file


def test_the_environment_can_supply_a_required_key(tmp_path: Path) -> None:
    text = GOOD.replace('name = "Mombasa port"\n', "")

    assert load_config(_write(tmp_path, text), env={"GCN_NODE_NAME": "Bandari"}).node.name == "Bandari"


def test_the_clis_own_variables_are_not_configuration(tmp_path: Path) -> None:
    """GCN_NODE (an address), GCN_NODE_CA, GCN_TOKEN, GCN_CONFIG are the CLI's: never read as keys."""
    env = {
        "GCN_NODE": "10.0.0.9:7401",
        "GCN_NODE_CA": "/tmp/ca.pem",
        "GCN_TOKEN": "t0k3n",
        "GCN_CONFIG": "/etc/gcn.toml",
        "GCN_SERVER": "x",
        "GCN_SERVER_COLOUR": "blue",
        "gcn_server_listen": "10.0.0.1:1",  # only the upper-case names count, as before
    }

    config = load_config(_write(tmp_path, GOOD), env=env)

    assert config.node.id == "KE-MBA" and config.server.listen == "127.0.0.1:7402"


# --- refusals name the section, the key and the rule ----------------------------------


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        pytest.param(
            "[server]\nworkers = 2\n",
            {},
            r"^\[node\] is missing required keys: id, name, role$",
            id="no-node",
        ),
        pytest.param(
            GOOD.replace('"Mombasa port"', "5"), {}, r"^\[node\] name must be a string \(got 5\)$", id="str"
        ),
        pytest.param(
            GOOD + "\n[logging]\nformat = 'xml'\n", {}, r"^\[logging\] format must be one of", id="log-fmt"
        ),
        pytest.param(
            GOOD, {"GCN_LOGGING_LEVEL": "loud"}, r"^\[logging\] level must be one of", id="log-level"
        ),
        pytest.param(
            GOOD,
            {"GCN_SERVER_TLS": "maybe"},
            r"^\[server\] tls must be one of on, off \(got 'maybe'\)$",
            id="tls",
        ),
        pytest.param(
            GOOD,
            {"GCN_SERVER_TLS_NAMES": "ok.example,bad_name"},
            r"^\[server\] tls_names: 'bad_name' is neither",
            id="name",
        ),
        pytest.param(
            GOOD, {"GCN_SERVER_MAX_MESSAGE_BYTES": "10"}, r"^\[server\] max_message_bytes must be", id="size"
        ),
        pytest.param(
            GOOD, {"GCN_SERVER_LISTEN": "7401"}, r"^\[server\] listen '7401' must be HOST:PORT$", id="listen"
        ),
        pytest.param(
            GOOD + '\n[federation]\nlisten = "here"\n',
            {},
            r"^\[federation\] listen 'here' must be HOST:PORT$",
            id="fed",
        ),
        pytest.param(
            GOOD + '\n[federation]\nupstreams = ["RINEX-ESA", "rinex sea"]\n',
            {},
            r"^\[federation\] upstreams: 'rinex sea' is not a node id",
            id="upstream",
        ),
        pytest.param(
            GOOD + "\n[federation]\nupstreams = [1]\n",
            {},
            r"^\[federation\] upstreams must be a list",
            id="list-item",
        ),
        pytest.param(
            GOOD, {"GCN_DATABASE_URL": "not a url"}, r"^\[database\] url is not a database URL", id="db-url"
        ),
        pytest.param(
            GOOD, {"GCN_DATABASE_URL": "mysql://u@h/db"}, r"^\[database\] url: 'mysql' databases", id="db"
        ),
        pytest.param(
            GOOD.replace('"port"', '"regional"'),
            {"GCN_NODE_REGION": "esa"},
            r"region 'esa' must",
            id="region",
        ),
        pytest.param("logging = 3\n" + GOOD, {}, r"^\[logging\] must be a table", id="not-a-table"),
        pytest.param(
            GOOD + "\n[extra]\n[more]\n", {}, r"gcn.toml: unknown sections: extra, more$", id="sections"
        ),
    ],
)
def test_each_rule_is_named_when_it_refuses(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text), env=env)


def test_a_refused_database_url_never_repeats_its_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(_write(tmp_path, GOOD), env={"GCN_DATABASE_URL": "mysql://gcn:s3cret@db/gcn"})

    assert "s3cret" not in str(refused.value)


# --- writing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        'Port "Lamu"',
        "C:\\customs\\lamu",
        "Lamu\nport",
        "Bandari ya Lamu — ميناء لامو",
        "# not a comment",
        "'",
    ],
)
def test_what_render_config_writes_reads_back_the_same(tmp_path: Path, name: str) -> None:
    config = config_from(
        {
            "node": {"id": "KE-LAU", "name": name, "role": "port", "country": "KE"},
            "server": {"tls_names": ["lamu.kra.go.ke"]},
            "federation": {"listen": "127.0.0.1:7501", "upstreams": ["KE", "RINEX-ESA"]},
        },
        tmp_path.resolve(),
    )

    text = render_config(config)

    assert load_config(_write(tmp_path, text), env={}) == config
    assert tomllib.loads(text)["federation"]["upstreams"] == ["KE", "RINEX-ESA"]
    assert tomllib.loads(text)["node"]["name"] == name
