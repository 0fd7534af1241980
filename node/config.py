"""Node configuration: a TOML file, with environment overrides.

Every key can be overridden by an environment variable named
``GCN_<SECTION>_<KEY>`` in upper case, e.g. ``GCN_DATABASE_URL`` or
``GCN_SERVER_LISTEN``. Relative paths resolve against the node's `data_dir`,
which itself resolves against the directory of the config file.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pycountry

from node.domain import limits
from node.errors import ConfigError

ROLES = ("national", "port", "regional", "global")
NODE_ID_RE = re.compile(r"[A-Z0-9][A-Z0-9-]{1,62}")
LOG_FORMATS = ("auto", "console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
TLS_MODES = ("on", "off")
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")


@dataclass(frozen=True)
class NodeSection:
    id: str
    name: str
    role: str
    country: str = ""
    region: str = ""
    data_dir: str = "."


@dataclass(frozen=True)
class ServerSection:
    listen: str = "127.0.0.1:7401"
    max_message_bytes: int = 4 * 1024 * 1024
    workers: int = 16
    grace_seconds: float = 10.0
    # The officer API over TLS ("on") or plaintext ("off": loopback listen addresses only).
    tls: str = "on"
    tls_dir: str = "api-tls"  # ca.pem (what officers trust), cert.pem, key.pem, ca-key.pem; under data_dir
    # Extra names (DNS or IP, comma-separated) officers reach the node by, put in the certificate.
    tls_names: str = ""

    @property
    def tls_name_list(self) -> list[str]:
        return [n.strip() for n in self.tls_names.split(",") if n.strip()]


@dataclass(frozen=True)
class DatabaseSection:
    url: str = "sqlite:///gcn.sqlite"
    sqlite_synchronous: str = "NORMAL"


@dataclass(frozen=True)
class FederationSection:
    listen: str = ""  # the mutual-TLS listener for other nodes; empty: not federated
    endpoint: str = ""  # the address other nodes use to reach it (default: listen)
    upstreams: str = ""  # comma-separated node ids this node replicates with, e.g. "RINEX-ESA,WCO-GLOBAL"
    sync_interval_seconds: float = 30.0  # periodic pull/push, besides the push right after a commit
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 600.0
    # While a peer is unreachable, a health check this often: a link that comes back is used at once.
    probe_interval_seconds: float = 2.0
    # The verification pass over what the node holds: this many envelopes each period.
    scrub_envelopes_per_step: int = 500
    scrub_period_seconds: float = 10.0

    @property
    def upstream_ids(self) -> list[str]:
        return [u.strip() for u in self.upstreams.split(",") if u.strip()]


@dataclass(frozen=True)
class SharingSection:
    policy_file: str = ""  # the sharing policy (TOML); empty: the default shipped with gcn

    def path(self, base: Path) -> Path | None:
        return (base / self.policy_file).resolve() if self.policy_file else None


@dataclass(frozen=True)
class LoggingSection:
    format: str = "auto"
    level: str = "info"


@dataclass(frozen=True)
class Config:
    node: NodeSection
    server: ServerSection = field(default_factory=ServerSection)
    database: DatabaseSection = field(default_factory=DatabaseSection)
    federation: FederationSection = field(default_factory=FederationSection)
    sharing: SharingSection = field(default_factory=SharingSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def data_dir(self) -> Path:
        return (self.base_dir / self.node.data_dir).resolve()

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path made absolute under data_dir."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            return prefix + str(self.data_dir / url[len(prefix) :])
        return url

    @property
    def trust_dir(self) -> Path:
        return self.data_dir / "trust"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def api_tls_dir(self) -> Path:
        """The officer API's TLS files (its CA, certificate and key)."""
        return (self.data_dir / self.server.tls_dir).resolve()

    @property
    def national_audience(self) -> str:
        return f"national:{self.node.country}"


_SECTIONS: dict[str, type[Any]] = {
    "node": NodeSection,
    "server": ServerSection,
    "database": DatabaseSection,
    "federation": FederationSection,
    "sharing": SharingSection,
    "logging": LoggingSection,
}


def _coerce(section: str, name: str, value: Any, target: type[Any] | str) -> Any:
    kind = target if isinstance(target, str) else target.__name__
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"[{section}] {name} must be a number (got {value!r})") from e
    if not isinstance(value, str):
        raise ConfigError(f"[{section}] {name} must be a string (got {value!r})")
    return value


def _build_section(name: str, raw: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    cls = _SECTIONS[name]
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"[{name}] has unknown keys: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key, f in known.items():
        env_value = env.get(f"GCN_{name.upper()}_{key.upper()}")
        value = env_value if env_value is not None else raw.get(key)
        if value is not None:
            values[key] = _coerce(name, key, value, f.type)
    try:
        return cls(**values)
    except TypeError as e:
        missing = [k for k, f in known.items() if k not in values and f.default is f.default_factory]
        raise ConfigError(f"[{name}] is missing required keys: {', '.join(missing)}") from e


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def check_config(config: Config) -> Config:
    n = config.node
    if not NODE_ID_RE.fullmatch(n.id):
        raise ConfigError(f"[node] id {n.id!r} must be 2-63 upper-case letters, digits or '-'")
    if n.role not in ROLES:
        raise ConfigError(f"[node] role {n.role!r} must be one of {', '.join(ROLES)}")
    if n.role in ("national", "port"):
        if pycountry.countries.get(alpha_2=n.country.upper()) is None:
            raise ConfigError(f"[node] country {n.country!r} is not an ISO 3166-1 alpha-2 code")
        config = replace(config, node=replace(n, country=n.country.upper()))
    if config.logging.format not in LOG_FORMATS:
        raise ConfigError(f"[logging] format must be one of {', '.join(LOG_FORMATS)}")
    if config.logging.level not in LOG_LEVELS:
        raise ConfigError(f"[logging] level must be one of {', '.join(LOG_LEVELS)}")
    if config.server.tls not in TLS_MODES:
        raise ConfigError(f"[server] tls must be one of {', '.join(TLS_MODES)} (got {config.server.tls!r})")
    for name in config.server.tls_name_list:
        if not _is_ip(name) and not HOSTNAME_RE.fullmatch(name):
            raise ConfigError(
                f"[server] tls_names: {name!r} is neither an IP address nor a DNS name "
                "(give an internationalised name in its xn-- form)"
            )
    if config.server.max_message_bytes < limits.MIN_MESSAGE_BYTES:
        raise ConfigError(
            f"[server] max_message_bytes must be at least {limits.MIN_MESSAGE_BYTES} "
            f"(got {config.server.max_message_bytes}): the reply carrying the largest record "
            "the node accepts needs that much (docs/operations.md, Limits)"
        )
    return config


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"config file {path} does not exist (run `gcn init` first)") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from e
    unknown = set(raw) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown sections: {', '.join(sorted(unknown))}")
    sections = {name: _build_section(name, raw.get(name, {}), env) for name in _SECTIONS}
    return check_config(Config(**sections, base_dir=path.resolve().parent))


def render_config(config: Config) -> str:
    """The TOML text of a config (what `gcn init` writes)."""
    out: list[str] = ["# gcn node configuration; every key can be overridden by GCN_<SECTION>_<KEY>.\n"]
    for name in _SECTIONS:
        out.append(f"[{name}]")
        section = getattr(config, name)
        for f in fields(section):
            value = getattr(section, f.name)
            rendered = f'"{value}"' if isinstance(value, str) else str(value)
            out.append(f"{f.name} = {rendered}")
        out.append("")
    return "\n".join(out)
