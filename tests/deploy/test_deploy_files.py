"""The deployment files (deploy/): what can be checked without a Docker daemon
or a systemd manager, checked with the real tools.

- every sample config (deploy/config/*.toml) loads with the node's own loader
  and sets every key it knows;
- the systemd unit passes `systemd-analyze verify` (its ExecStart pointed at
  this venv's gcn, in a temporary copy) and keeps its hardening;
  `gcn serve` runs under the kernel's MemoryDenyWriteExecute (PR_SET_MDWE);
- the Dockerfile is well-formed (FROM first, pinned tags, a non-root USER,
  ENTRYPOINT in JSON form) and exposes the samples' ports;
- the compose file parses (a strict YAML subset, tests/deploy/yaml_subset.py;
  cross-checked with PyYAML when an interpreter on this machine has it) and
  hangs together: volumes, networks, dependencies, the init script's nodes;
- deploy/compose-init.sh makes and joins the federation, for real, in a
  temporary directory; a node it made serves from its container path;
- every `gcn` command named in these files and in docs/operations.md
  ("Deploying") exists (`gcn CMD [SUB] --help` exits 0).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_type_hints

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from node.config import Config, load_config
from node.testing.local_federation import free_port
from tests.deploy import yaml_subset

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
GCN = str(Path(sys.executable).with_name("gcn"))
ROLES = ("national", "port", "regional", "global")
UNIT = DEPLOY / "systemd" / "gcn-node@.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
POSTGRES_URL = os.environ.get("GCN_TEST_POSTGRES_URL", "")
# The compose services that are gcn nodes, and their node ids (deploy/compose-init.sh).
NODES = {"wco-global": "WCO-GLOBAL", "rinex-esa": "RINEX-ESA", "ke": "KE", "ke-mba": "KE-MBA", "tz": "TZ"}
# The loader's sections and the dataclass of each.
SECTIONS = {f.name: get_type_hints(Config)[f.name] for f in fields(Config) if f.name != "base_dir"}


def run(
    args: list[str], *, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout, check=False)


# -- sample configurations -------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_sample_config_loads_with_the_node_loader_and_sets_every_key(role: str) -> None:
    path = DEPLOY / "config" / f"{role}.toml"
    config = load_config(path, env={})
    assert config.node.role == role
    assert config.server.tls == "on"
    assert config.server.listen.endswith(":7401")
    assert config.federation.listen.endswith(":7501")
    assert config.federation.endpoint.endswith(":7501")
    backend = config.database_url.split(":", 1)[0]
    assert backend == ("postgresql+psycopg" if role in ("regional", "global") else "sqlite")
    assert make_url(config.database_url).password is None, "no password in a sample: libpq reads PGPASSWORD"
    # Every key the loader knows is written out, so a sample documents them all.
    data = tomllib.loads(path.read_text())
    for section, cls in SECTIONS.items():
        assert sorted(data[section]) == sorted(f.name for f in fields(cls)), f"{path.name} [{section}]"


def test_the_sample_upstreams_make_one_chain_port_national_regional_global() -> None:
    configs = {role: load_config(DEPLOY / "config" / f"{role}.toml", env={}) for role in ROLES}
    ids = {role: c.node.id for role, c in configs.items()}
    assert configs["port"].federation.upstream_ids == [ids["national"]]
    assert configs["national"].federation.upstream_ids == [ids["regional"]]
    assert configs["regional"].federation.upstream_ids == [ids["global"]]
    assert configs["global"].federation.upstream_ids == []


# -- the systemd unit ------------------------------------------------------------------------


def unit_settings(text_: str) -> dict[str, list[str]]:
    """`Key=value` lines of the unit's [Service] section, every value of each key."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in text_.splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return run([SYSTEMD_ANALYZE, "verify", "--man=no", str(unit)], timeout=60)


@pytest.fixture
def unit_copy(tmp_path: Path) -> Iterator[Path]:
    """The unit, its ExecStart pointed at this venv's gcn (verify checks that it is executable)."""
    if not Path(SYSTEMD_ANALYZE).exists():
        pytest.skip(f"{SYSTEMD_ANALYZE} is not installed")
    text_ = UNIT.read_text()
    assert "ExecStart=/opt/gcn/venv/bin/gcn serve" in text_
    copy = tmp_path / UNIT.name
    copy.write_text(text_.replace("/opt/gcn/venv/bin/gcn", GCN))
    yield copy


def test_the_systemd_unit_passes_systemd_analyze_verify(unit_copy: Path, tmp_path: Path) -> None:
    instance = tmp_path / "gcn-node@ke.service"
    instance.write_text(unit_copy.read_text())
    for unit in (unit_copy, instance):
        done = verify(unit)
        # verify exits 0 on an unknown key, but says so: nothing on stderr is the bar
        assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    # ... and it does check: a misspelt key and a missing binary are reported.
    broken = tmp_path / "broken@ke.service"
    broken.write_text(
        instance.read_text().replace("NoNewPrivileges=", "NoNewPrivilege=").replace(GCN, "/nope/gcn")
    )
    done = verify(broken)
    assert "Unknown key" in done.stderr
    assert done.returncode != 0 and "/nope/gcn" in done.stderr
    security = run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", str(instance)],
        timeout=60,
    )
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+ \w+)", security.stdout)
    assert score, security.stdout + security.stderr
    print(f"systemd-analyze security: {score[1]}")
    assert float(score[1].split()[0]) <= 2.0, security.stdout


def test_the_systemd_unit_is_hardened_and_restarts_on_failure() -> None:
    s = unit_settings(UNIT.read_text())
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ReadWritePaths": "/srv/gcn/%i",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "MemoryDenyWriteExecute": "yes",
        "LockPersonality": "yes",
        "RestrictRealtime": "yes",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
        "User": "gcn",
    }
    for key, value in expected.items():
        assert s.get(key) == [value], key
    assert s["SystemCallFilter"][0] == "@system-service"
    assert s["ExecStart"] == ["/opt/gcn/venv/bin/gcn serve --config /srv/gcn/%i/gcn.toml"]


# -- the Dockerfile --------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; comments skipped, `\\` continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        assert word.isupper() and word.isalpha(), f"not an instruction: {line!r}"
        out.append((word, rest.strip()))
    assert not pending, "the last line continues"
    return out


def test_the_dockerfile_is_well_formed() -> None:
    known = {"FROM", "WORKDIR", "COPY", "RUN", "ENV", "USER", "VOLUME", "EXPOSE", "ENTRYPOINT", "CMD", "ARG"}
    steps = dockerfile_instructions(DEPLOY / "Dockerfile")
    assert steps[0][0] == "FROM"
    assert {word for word, _ in steps} <= known
    stages: list[list[tuple[str, str]]] = []
    for word, args in steps:
        if word == "FROM":
            image = args.split()[0]
            name, _, tag = image.rpartition(":")
            assert name and tag and tag != "latest", f"FROM {image}: pin a tag"
            assert tag.startswith("3.11-slim"), image
            stages.append([])
        stages[-1].append((word, args))
    final = dict(stages[-1])
    users = [args for word, args in stages[-1] if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert json.loads(final["ENTRYPOINT"]) == ["gcn"]
    assert json.loads(final["CMD"])[0] == "serve"
    assert json.loads(final["VOLUME"]) == ["/srv/gcn/node"]
    assert "pip install" in final["RUN"]
    for word, args in steps:
        if word == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: not in the source tree"
    # The ports the samples name.
    configs = [sample(role) for role in ROLES]
    ports = {c.server.listen.rsplit(":", 1)[1] for c in configs}
    ports |= {c.federation.listen.rsplit(":", 1)[1] for c in configs}
    assert set(final["EXPOSE"].split()) == ports
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def sample(role: str) -> Any:
    return load_config(DEPLOY / "config" / f"{role}.toml", env={})


# -- the compose file ------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml_subset.parse((DEPLOY / "compose.yaml").read_text())
    return data


def test_the_compose_file_parses_and_hangs_together() -> None:
    c = compose()
    assert set(c) <= {"name", "services", "volumes", "networks"}
    services: dict[str, Any] = c["services"]
    volumes, networks = set(c["volumes"]), set(c["networks"])
    used_volumes: set[str] = set()
    for name, s in services.items():
        assert isinstance(s.get("image"), str) and s["image"].rpartition(":")[2] not in ("", "latest"), name
        if s["image"].startswith("gcn:"):
            assert s["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
        for mount in s.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
            else:
                assert source in volumes, f"{name}: volume {source} is not declared"
                used_volumes.add(source)
        if "network_mode" in s:
            assert s["network_mode"] == "none" and "networks" not in s
        else:
            assert set(s["networks"]) <= networks, name
        for dep, how in s.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on {dep}"
            assert how["condition"] in ("service_healthy", "service_completed_successfully"), name
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], dep
        assert s["restart"] in ("no", "unless-stopped"), name
    assert used_volumes == volumes
    assert c["networks"]["db-global"] == {"internal": True}
    assert c["networks"]["db-esa"] == {"internal": True}
    # Hubs on PostgreSQL, national nodes on SQLite (the init script's URLs).
    init = services["gcn-init"]
    assert init["environment"]["WCO_DATABASE_URL"].startswith("postgresql+psycopg://gcn@postgres-global:")
    assert init["environment"]["ESA_DATABASE_URL"].startswith("postgresql+psycopg://gcn@postgres-esa:")
    # Each node: its own volume at the image's VOLUME, `gcn serve`, the officer API on loopback.
    for name, node_id in NODES.items():
        s = services[name]
        assert s["volumes"] == [f"{name}:/srv/gcn/node"], name
        assert s["command"] == ["serve", "--config", "/srv/gcn/node/gcn.toml"], name
        assert all(p.startswith("127.0.0.1:") and p.endswith(":7401") for p in s["ports"]), name
        assert "federation" in s["networks"]
        assert s["depends_on"]["gcn-init"] == {"condition": "service_completed_successfully"}
        assert f"{name}:/srv/gcn/{name}" in init["volumes"], name
        assert f"/srv/gcn/{name}" in services["gcn-volumes"]["entrypoint"], name
        assert f"{name} {node_id} " in (DEPLOY / "compose-init.sh").read_text(), name
    # Interpolation: one variable, required.
    variables = set(re.findall(r"\$\{([A-Z_]+)", (DEPLOY / "compose.yaml").read_text()))
    assert variables == {"GCN_POSTGRES_PASSWORD"}


def pyyaml_interpreter() -> str | None:
    """A Python on this machine that has PyYAML (the project's venv has none)."""
    for candidate in (shutil.which("python3"), "/usr/bin/python3", "/usr/local/bin/python3"):
        if candidate and Path(candidate).exists():
            done = run([candidate, "-c", "import yaml"], timeout=30)
            if done.returncode == 0:
                return candidate
    return None


def test_the_compose_subset_reads_as_pyyaml_reads_it() -> None:
    python = pyyaml_interpreter()
    if python is None:
        pytest.skip("no Python on this machine has PyYAML (the strict subset parser was used alone)")
    script = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
    done = run([python, "-c", script, str(DEPLOY / "compose.yaml")], timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == compose()


def test_the_subset_parser_refuses_what_it_does_not_read() -> None:
    for bad in ("a: yes", "a:\n- x", "a: &x 1", "a: 1\na: 2", "a: |\n  x", "a: {b: 1}", "a:\n  - b: 1"):
        with pytest.raises(yaml_subset.YamlSubsetError):
            yaml_subset.parse(bad)
    assert yaml_subset.parse('a:\n  b: "x # y" # z\n  c: ["1"]\n  d: 5s') == {
        "a": {"b": "x # y", "c": ["1"], "d": "5s"}
    }


# -- the init script, run for real -----------------------------------------------------------


@contextmanager
def postgres_schemas(count: int) -> Iterator[list[str]]:
    """`count` fresh schemas in the test database, as URLs; SQLite files when there is no server
    (under CI=true, a missing server fails instead)."""
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: set GCN_TEST_POSTGRES_URL")
        yield ["sqlite:///gcn.sqlite"] * count
        return
    names = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        for name in names:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield [f"{POSTGRES_URL}{sep}options=-csearch_path%3D{name}" for name in names]
    finally:
        with admin.begin() as conn:
            for name in names:
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def compose_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """deploy/compose-init.sh run once, as gcn-init runs it, in a temporary directory (each
    volume an empty directory, as Docker mounts it); the hubs on PostgreSQL when there is one.
    Its output lines."""
    state = tmp_path_factory.mktemp("compose") / "srv-gcn"
    for name in ("root", *NODES):
        (state / name).mkdir(parents=True)
    with postgres_schemas(2) as urls:
        env = {
            **os.environ,
            "GCN_BIN": GCN,
            "STATE_DIR": str(state),
            "WCO_DATABASE_URL": urls[0],
            "ESA_DATABASE_URL": urls[1],
        }
        done = run(["sh", str(DEPLOY / "compose-init.sh")], env=env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stderr == "", done.stderr
        rerun = run(["sh", str(DEPLOY / "compose-init.sh")], env=env, timeout=300)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        yield state, [*done.stdout.splitlines(), "--- rerun", *rerun.stdout.splitlines()]


@pytest.mark.slow
def test_compose_init_makes_and_joins_the_federation_and_a_rerun_refreshes_it(
    compose_state: tuple[Path, list[str]],
) -> None:
    state, out = compose_state
    first, rerun = out[: out.index("--- rerun")], out[out.index("--- rerun") + 1 :]
    assert all(line.startswith("gcn-init: ") for line in first + rerun)
    assert "the root admitted WCO-GLOBAL,RINEX-ESA,KE,KE-MBA,TZ" in "\n".join(first)
    assert "the root published a new directory" in "\n".join(first)
    # A rerun makes nothing twice: it signs a fresh timestamp.
    assert rerun[0] == "gcn-init: the root signed a fresh timestamp of its directory"
    assert not any("made" in line or "admitted" in line for line in rerun)
    roles = {
        "WCO-GLOBAL": "global",
        "RINEX-ESA": "regional",
        "KE": "national",
        "KE-MBA": "port",
        "TZ": "national",
    }
    for name, node_id in NODES.items():
        config = load_config(state / name / "gcn.toml", env={})
        assert (config.node.id, config.node.role) == (node_id, roles[node_id])
        assert config.federation.endpoint == f"{name}:7501"
        assert config.server.listen == "0.0.0.0:7401"
        if POSTGRES_URL:
            assert config.database_url.startswith("postgresql") == (node_id in ("WCO-GLOBAL", "RINEX-ESA"))
        shown = run(
            [GCN, "directory", "show", "--json", "--config", str(state / name / "gcn.toml")],
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        directory = json.loads(shown.stdout)
        assert directory["version"] == 1
        assert sorted(n["id"] for n in directory["nodes"]) == sorted(NODES.values())


MDWE_EXEC = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
# PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN: what systemd's MemoryDenyWriteExecute= enforces
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_MDWE): " + os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
"""


def mdwe_supported() -> bool:
    """PR_SET_MDWE (Linux 6.3+), tried in a child process (it cannot be undone)."""
    check = MDWE_EXEC.replace("os.execv(sys.argv[1], sys.argv[1:])", "")
    return run([sys.executable, "-c", check], timeout=30).returncode == 0


SEIZURE = ["--country", "KE", "--port", "KEMBA", "--direction", "export", "--detection", "nii-scan"]
SEIZURE += [
    "--commodity",
    "wildlife",
    "--description",
    "raw ivory tusks",
    "--hs",
    "0507.10",
    "--quantity",
    "450 kg",
]


def health(address: str, ca: bytes) -> str:
    with grpc.secure_channel(address, grpc.ssl_channel_credentials(ca)) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


@pytest.mark.slow
def test_a_node_compose_init_made_serves_from_its_container_path_without_write_execute_memory(
    compose_state: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """KE's volume, mounted where its container mounts it (a copy at another path), runs
    `gcn serve` under PR_SET_MDWE (the unit's MemoryDenyWriteExecute=yes): it serves, records
    a seizure (signs, encrypts, commits), answers health, and exits 0 on SIGTERM."""
    if not mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+): MemoryDenyWriteExecute was not tried")
    state, _ = compose_state
    node = tmp_path / "srv-gcn" / "node"
    shutil.copytree(state / "ke", node)
    config = str(node / "gcn.toml")
    api = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "GCN_SERVER_LISTEN": api,
        "GCN_FEDERATION_LISTEN": f"127.0.0.1:{free_port()}",
        "GCN_LOGGING_FORMAT": "json",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-c", MDWE_EXEC, GCN, "serve", "--config", config],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while b'"node serving"' not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert health(api, (node / "api-tls" / "ca.pem").read_bytes()) == "SERVING"
        added = run(
            [GCN, "users", "add", "wanjiru", "--role", "officer", "--config", config],
            env=env,
            timeout=60,
        )
        assert added.returncode == 0, added.stderr
        token = added.stdout.strip().splitlines()[-1]
        day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
        recorded = run(
            [
                GCN,
                "seizure",
                "add",
                "--node",
                api,
                "--config",
                config,
                "--token",
                token,
                *SEIZURE,
                "--date",
                day,
            ],
            env=env,
            timeout=60,
        )
        assert recorded.returncode == 0, recorded.stderr
        assert recorded.stdout.startswith("recorded seizure ")
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
        assert b'"node stopped"' in log.read_bytes()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


# -- every gcn command named exists ----------------------------------------------------------

COMMAND_RE = re.compile(
    r"(?:^|(?<=[\s`\"'(=]))"  # at a word's start (or a setting's value)
    r"(?:\$GCN|(?:/[\w.-]+)*/gcn|gcn|gcn:[\w.]+)"  # the command, a path to it, or the image
    r"[ \t]+([a-z][a-z-]*)(?:[ \t]+([a-z][a-z-]*))?"  # its subcommand, and the next word
)


def command_texts(path: Path) -> list[str]:
    """The parts of a deploy file that are commands: code lines, example lines in comments
    (`#` and at least two spaces) and `backtick` spans."""
    out: list[str] = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment = stripped[1:]
            if comment.startswith("  "):
                out.append(comment)
            out.extend(re.findall(r"`([^`]+)`", comment))
        else:
            out.append(line)
    return out


def deploying_section() -> list[str]:
    """docs/operations.md, "Deploying": fenced code lines and backtick spans."""
    text_ = (REPO / "docs" / "operations.md").read_text()
    assert "\n## Deploying\n" in text_
    section = text_.split("\n## Deploying\n", 1)[1].split("\n## ", 1)[0]
    out: list[str] = []
    fenced = False
    for line in section.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced:
            out.append(line)
        else:
            out.extend(re.findall(r"`([^`]+)`", line))
    return out


def named_commands(texts: list[str]) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for t in texts:
        for m in COMMAND_RE.finditer(t):
            if m[1] == "gcn":  # `sudo -u gcn gcn users …`: the next match is the command
                continue
            found.add((m[1], m[2]) if m[2] else (m[1],))
    return found


def test_every_gcn_command_the_deploy_files_and_docs_name_exists() -> None:
    files = [
        DEPLOY / "Dockerfile",
        DEPLOY / "compose.yaml",
        DEPLOY / "compose-init.sh",
        UNIT,
        *sorted((DEPLOY / "config").glob("*.toml")),
    ]
    commands = set().union(*(named_commands(command_texts(f)) for f in files))
    commands |= named_commands(deploying_section())
    # What the image runs: ENTRYPOINT gcn with CMD / compose's command.
    final = dict(dockerfile_instructions(DEPLOY / "Dockerfile"))
    commands.add((json.loads(final["CMD"])[0],))
    for s in compose()["services"].values():
        if s["image"].startswith("gcn:") and "command" in s:
            commands.add((s["command"][0],))
    # The commands the lead asked to be shown are among them.
    for expected in [
        ("serve",),
        ("init",),
        ("root", "admit"),
        ("federation", "install"),
        ("directory", "import"),
    ]:
        assert any(c[: len(expected)] == expected for c in commands), expected
    missing = []
    for command in sorted(commands):
        done = run([GCN, *command, "--help"], timeout=60)
        if done.returncode != 0:
            missing.append(f"gcn {' '.join(command)}: {done.stderr.strip().splitlines()[-1:]}")
    assert not missing, missing
