"""Node configuration: a TOML file, with environment overrides.

Every key can be overridden by an environment variable named
``GCN_<SECTION>_<KEY>`` in upper case, e.g. ``GCN_DATABASE_URL`` or
``GCN_SERVER_LISTEN``; the environment wins over the file, the file over the
defaults. Lists (``[federation] upstreams``, ``[server] tls_names``) are TOML
lists; a comma-separated string (what gcn wrote before, and the form an
environment variable takes) is read as the same list. Relative paths resolve
against the node's `data_dir`, which itself resolves against the directory of
the config file.

The sections are pydantic dataclasses checked as they are made; the file and
the environment are read by pydantic-settings (`load_config`), and the file
is written by tomli-w (`render_config`). Every refusal is one `ConfigError`
naming the section, the key and the rule.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, field, fields
from pathlib import Path
from typing import Annotated, Any

import pycountry
import tomli_w
from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic.dataclasses import dataclass
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from node.domain import limits
from node.errors import ConfigError

ROLES = ("national", "port", "regional", "global")
NODE_ID_RE = re.compile(r"[A-Z0-9][A-Z0-9-]{1,62}")
REGION_RE = re.compile(r"[A-Z]{2,8}")
LOG_FORMATS = ("auto", "console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
TLS_MODES = ("on", "off")
DATABASE_BACKENDS = ("sqlite", "postgresql")
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")
HOST_PORT_RE = re.compile(r"(?P<host>.*):(?P<port>[0-9]{1,5})")  # an empty host: every interface

_SECTION = ConfigDict(extra="forbid")
# A list of names: a TOML list, or a comma-separated string (older files, environment variables).
NameList = Annotated[list[str], NoDecode]


def _names(value: Any) -> Any:
    """A comma-separated string as a list; each name stripped, empty ones dropped."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list | tuple):
        return [v.strip() if isinstance(v, str) else v for v in value if not isinstance(v, str) or v.strip()]
    return value


def _host_port(key: str, value: str, *, optional: bool = False) -> str:
    if optional and value == "":
        return value
    match = HOST_PORT_RE.fullmatch(value)
    if match is None or int(match["port"]) > 65535:
        raise ValueError(f"{key} {value!r} must be HOST:PORT")
    return value


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, config=_SECTION)
class NodeSection:
    id: str
    name: str
    role: str
    country: str = ""
    region: str = ""
    data_dir: str = "."

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not NODE_ID_RE.fullmatch(value):
            raise ValueError(f"id {value!r} must be 2-63 upper-case letters, digits or '-'")
        return value

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if value not in ROLES:
            raise ValueError(f"role {value!r} must be one of {', '.join(ROLES)}")
        return value

    @field_validator("country")
    @classmethod
    def _country(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("role") not in ("national", "port"):
            return value
        if pycountry.countries.get(alpha_2=value.upper()) is None:
            raise ValueError(f"country {value!r} is not an ISO 3166-1 alpha-2 code")
        return value.upper()

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value and not REGION_RE.fullmatch(value):
            raise ValueError(f"region {value!r} must be 2-8 upper-case letters")
        return value


@dataclass(frozen=True, config=_SECTION)
class ServerSection:
    listen: str = "127.0.0.1:7401"
    max_message_bytes: int = 4 * 1024 * 1024
    workers: int = 16
    grace_seconds: float = 10.0
    # The officer API over TLS ("on") or plaintext ("off": loopback listen addresses only).
    tls: str = "on"
    tls_dir: str = "api-tls"  # ca.pem (what officers trust), cert.pem, key.pem, ca-key.pem; under data_dir
    # Extra names (DNS or IP) officers reach the node by, put in the certificate.
    tls_names: NameList = field(default_factory=list)
    # Prometheus `/metrics` over plain HTTP, e.g. "127.0.0.1:9464"; empty: off.
    metrics_listen: str = ""

    @property
    def tls_name_list(self) -> list[str]:
        return list(self.tls_names)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _host_port("listen", value)

    @field_validator("metrics_listen")
    @classmethod
    def _metrics_listen(cls, value: str) -> str:
        _host_port("metrics_listen", value, optional=True)
        if value.startswith(":"):
            raise ValueError(
                f"metrics_listen {value!r} must name its host (e.g. 127.0.0.1:9464): "
                "the metrics endpoint has no authentication"
            )
        return value

    @field_validator("tls")
    @classmethod
    def _tls(cls, value: str) -> str:
        if value not in TLS_MODES:
            raise ValueError(f"tls must be one of {', '.join(TLS_MODES)} (got {value!r})")
        return value

    @field_validator("tls_names", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        return _names(value)

    @field_validator("tls_names")
    @classmethod
    def _tls_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _is_ip(name) and not HOSTNAME_RE.fullmatch(name):
                raise ValueError(
                    f"tls_names: {name!r} is neither an IP address nor a DNS name "
                    "(give an internationalised name in its xn-- form)"
                )
        return value

    @field_validator("max_message_bytes")
    @classmethod
    def _max_message_bytes(cls, value: int) -> int:
        if value < limits.MIN_MESSAGE_BYTES:
            raise ValueError(
                f"max_message_bytes must be at least {limits.MIN_MESSAGE_BYTES} "
                f"(got {value}): the reply carrying the largest record "
                "the node accepts needs that much (docs/operations.md, Limits)"
            )
        return value


@dataclass(frozen=True, config=_SECTION)
class DatabaseSection:
    url: str = "sqlite:///gcn.sqlite"
    sqlite_synchronous: str = "NORMAL"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        # The URL may hold a password: the messages never repeat it.
        try:
            backend = make_url(value).get_backend_name()
        except (ArgumentError, ValueError) as e:
            raise ValueError(
                "url is not a database URL (e.g. sqlite:///gcn.sqlite or postgresql+psycopg://user@host/db)"
            ) from e
        if backend not in DATABASE_BACKENDS:
            raise ValueError(f"url: {backend!r} databases are not supported ({', '.join(DATABASE_BACKENDS)})")
        return value


@dataclass(frozen=True, config=_SECTION)
class FederationSection:
    listen: str = ""  # the mutual-TLS listener for other nodes; empty: not federated
    endpoint: str = ""  # the address other nodes use to reach it (default: listen)
    upstreams: NameList = field(default_factory=list)  # node ids it replicates with, e.g. ["RINEX-ESA"]
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
        return list(self.upstreams)

    @field_validator("listen", "endpoint")
    @classmethod
    def _address(cls, value: str, info: ValidationInfo) -> str:
        return _host_port(str(info.field_name), value, optional=True)

    @field_validator("upstreams", mode="before")
    @classmethod
    def _split_upstreams(cls, value: Any) -> Any:
        return _names(value)

    @field_validator("upstreams")
    @classmethod
    def _upstreams(cls, value: list[str]) -> list[str]:
        for node_id in value:
            if not NODE_ID_RE.fullmatch(node_id):
                raise ValueError(
                    f"upstreams: {node_id!r} is not a node id (2-63 upper-case letters, digits or '-')"
                )
        return value


@dataclass(frozen=True, config=_SECTION)
class SharingSection:
    policy_file: str = ""  # the sharing policy (TOML); empty: the default shipped with gcn

    def path(self, base: Path) -> Path | None:
        return (base / self.policy_file).resolve() if self.policy_file else None


@dataclass(frozen=True, config=_SECTION)
class LoggingSection:
    format: str = "auto"
    level: str = "info"

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value not in LOG_FORMATS:
            raise ValueError(f"format must be one of {', '.join(LOG_FORMATS)}")
        return value

    @field_validator("level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}")
        return value


@dataclass(frozen=True, config=ConfigDict(extra="forbid", arbitrary_types_allowed=True))
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
# The environment variables read: exactly GCN_<SECTION>_<KEY> (GCN_NODE, GCN_NODE_CA, GCN_TOKEN,
# GCN_CONFIG… belong to the CLI and are never taken for configuration).
ENV_NAMES = frozenset(
    f"GCN_{s.upper()}_{f.name.upper()}" for s, cls in _SECTIONS.items() for f in fields(cls)
)


class _Sections(BaseSettings):
    """The six sections, as pydantic-settings reads them (see `load_config`)."""

    model_config = SettingsConfigDict(
        extra="forbid",
        env_prefix="GCN_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        case_sensitive=False,
    )

    node: NodeSection
    server: ServerSection = Field(default_factory=ServerSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    federation: FederationSection = Field(default_factory=FederationSection)
    sharing: SharingSection = Field(default_factory=SharingSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)


class _Environment(EnvSettingsSource):
    """`GCN_<SECTION>_<KEY>` from a given mapping (the process environment, or a test's)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._given.items() if name in ENV_NAMES}


# pydantic's error types for a key that is not allowed, and for one that is missing.
_KINDS = {
    "extra_forbidden": "unknown",
    "unexpected_keyword_argument": "unknown",
    "missing": "missing",
    "missing_argument": "missing",
}


def _first_problem(e: ValidationError, path: Path | None) -> str:
    """One line naming the section, the key and the rule, as gcn always said it."""
    errors = e.errors()
    by_kind: dict[str, list[tuple[str, ...]]] = {}
    for err in errors:
        by_kind.setdefault(_KINDS.get(err["type"], err["type"]), []).append(tuple(str(p) for p in err["loc"]))
    unknown_sections = sorted(loc[0] for loc in by_kind.get("unknown", []) if len(loc) == 1)
    if unknown_sections:
        return f"{path}: unknown sections: {', '.join(unknown_sections)}"
    for section, cls in _SECTIONS.items():
        unknown = sorted(loc[1] for loc in by_kind.get("unknown", []) if loc[:1] == (section,))
        if unknown:
            return f"[{section}] has unknown keys: {', '.join(unknown)}"
        missing = [loc[1] if len(loc) > 1 else "" for loc in by_kind.get("missing", []) if loc[0] == section]
        if missing == [""]:  # the whole section: every key without a default
            missing = [f.name for f in fields(cls) if f.default is f.default_factory]
        if missing:
            return f"[{section}] is missing required keys: {', '.join(missing)}"
    return _describe(errors[0])


def _describe(err: Any) -> str:
    loc = [str(p) for p in err["loc"]]
    section, key = loc[0], ".".join(loc[1:2])
    kind, got = err["type"], err.get("input")
    if kind == "value_error":
        return f"[{section}] {err['ctx']['error']}"
    if kind.startswith(("int_", "float_")):
        return f"[{section}] {key} must be a number (got {got!r})"
    if kind == "list_type" or len(loc) > 2:
        return f"[{section}] {key} must be a list of strings or a comma-separated string (got {got!r})"
    if kind == "string_type":
        return f"[{section}] {key} must be a string (got {got!r})"
    if len(loc) == 1:
        return f"[{section}] must be a table (got {got!r})"
    return f"[{section}] {key}: {err['msg']}"


def config_from(sections: Mapping[str, Mapping[str, Any]], base_dir: Path) -> Config:
    """A checked `Config` from section tables, without the environment (what `gcn init` makes)."""
    try:
        values = _Sections.model_validate(dict(sections))
    except ValidationError as e:
        raise ConfigError(_first_problem(e, None)) from e
    return _config(values, base_dir)


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """The config in `path`, each key overridden by its GCN_<SECTION>_<KEY> in `env`
    (default: the process environment)."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist (run `gcn init` first)")
    try:
        file = TomlConfigSettingsSource(_Sections, toml_file=path)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from e
    return _resolve(file, env, path)


def parse_config(text: str, path: Path, env: Mapping[str, str] | None = None) -> Config:
    """What `load_config(path, env)` would return if `path` held `text` (nothing is read)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from e
    return _resolve(InitSettingsSource(_Sections, data), env, path)


def _resolve(file: PydanticBaseSettingsSource, env: Mapping[str, str] | None, path: Path) -> Config:
    environment = _Environment(_Sections, os.environ if env is None else env)
    try:
        # `_build_sources`: pydantic-settings' own argument (its sources, highest first); mypy
        # sees only the fields in the generated __init__.
        values = _Sections(_build_sources=((environment, file), {}))  # type: ignore[call-arg]
    except ValidationError as e:
        raise ConfigError(_first_problem(e, path)) from e
    return _config(values, path.resolve().parent)


def _config(values: _Sections, base_dir: Path) -> Config:
    return Config(**{name: getattr(values, name) for name in _SECTIONS}, base_dir=base_dir)


def render_config(config: Config) -> str:
    """The TOML text of a config (what `gcn init` writes)."""
    header = "# gcn node configuration; every key can be overridden by GCN_<SECTION>_<KEY>.\n\n"
    return header + tomli_w.dumps({name: asdict(getattr(config, name)) for name in _SECTIONS})
