"""TLS on the officer API, with real servers on loopback and real handshakes:
what `gcn init` makes, who the CLI trusts, names, plaintext only on loopback,
nodes made before TLS, rotation, and reflection v1 and v1alpha."""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from crypto.certs import certificate_names, create_api_ca, generate_tls_key, issue_api_certificate
from node.api.reflection import V1_SERVICE, V1ALPHA_SERVICE, v1_message
from node.api.server import build_server
from node.api.tls import (
    CA_KEY_FILE,
    CERT_FILE,
    KEY_FILE,
    api_ca_pem,
    api_names,
    api_tls_warnings,
    server_credentials,
)
from node.app import NodeApp
from node.bootstrap import init_node
from node.cli.client import ClientTls, open_channel
from node.cli.main import main
from node.errors import ConfigError
from node.storage.users import Role, UserStore
from node.testing.clock import ManualClock
from tests.conftest import make_node


@pytest.fixture
def node(tmp_path: Path, clock: ManualClock) -> Iterator[NodeApp]:
    app = make_node(tmp_path / "ke", clock, f"sqlite:///{tmp_path / 'ke.sqlite'}")
    yield app
    app.close()


@pytest.fixture
def token(node: NodeApp, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("GCN_NODE", "GCN_NODE_CA", "GCN_CONFIG", "GCN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    value = UserStore(node.db, clock).add("wanjiru", Role.OFFICER, clock())
    monkeypatch.setenv("GCN_TOKEN", value)
    return value


@contextmanager
def serving(app: NodeApp, *, tls: bool = True) -> Iterator[str]:
    credentials = server_credentials(app.config) if tls else None
    running = build_server(app, "127.0.0.1:0", max_message_bytes=1 << 20, workers=2, tls=credentials)
    try:
        yield f"127.0.0.1:{running.port}"
    finally:
        running.stop(None)


def _config_file(app: NodeApp) -> str:
    return str(app.config.base_dir / "gcn.toml")


def _check(channel: grpc.Channel) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return reply.status


def _refused(channel: grpc.Channel) -> str:
    with pytest.raises(grpc.RpcError) as e:
        _check(channel)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    return str(e.value.details())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- what gcn init makes ---------------------------------------------------------------------


def test_init_makes_an_api_certificate_for_loopback_and_the_listen_host_with_private_keys(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = init_node(
        tmp_path / "ke",
        node_id="KE",
        name="Kenya",
        role="national",
        country="KE",
        listen="10.20.30.40:7401",
        database_url=f"sqlite:///{tmp_path / 'ke.sqlite'}",
        clock=clock,
        tls_names=["gcn.kra.go.ke"],
    )
    directory = config.api_tls_dir
    assert directory == (tmp_path / "ke" / "api-tls").resolve()
    names = certificate_names((directory / CERT_FILE).read_bytes())
    assert sorted(names) == sorted(["localhost", "gcn.kra.go.ke", "127.0.0.1", "::1", "10.20.30.40"])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for private in (KEY_FILE, CA_KEY_FILE):
        assert stat.S_IMODE((directory / private).stat().st_mode) == 0o600
    toml = (tmp_path / "ke" / "gcn.toml").read_text()
    assert 'tls = "on"' in toml and tomllib.loads(toml)["server"]["tls_names"] == ["gcn.kra.go.ke"]


def test_a_name_that_is_not_a_dns_name_or_ip_is_refused_before_anything_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["init", "--dir", str(tmp_path / "ke"), "--id", "KE", "--country", "KE"]
    db = f"sqlite:///{tmp_path / 'ke.sqlite'}"
    code, _, err = run(capsys, *args, "--database-url", db, "--api-name", "bücher.example")
    assert code == 2
    assert err == (
        "gcn: [server] tls_names: 'bücher.example' is neither an IP address nor a DNS name "
        "(give an internationalised name in its xn-- form)\n"
    )
    assert not (tmp_path / "ke").exists()
    code, out, _ = run(capsys, *args, "--database-url", db, "--api-name", "xn--bcher-kva.example")
    assert code == 0 and "created" in out
    names = certificate_names((tmp_path / "ke" / "api-tls" / CERT_FILE).read_bytes())
    assert "xn--bcher-kva.example" in names


def test_a_node_listening_on_every_interface_names_this_machine(node: NodeApp) -> None:
    everywhere = replace(node.config, server=replace(node.config.server, listen="0.0.0.0:7401"))
    names = api_names(everywhere)
    assert socket.gethostname() in names and "0.0.0.0" not in names
    assert names[:3] == ["localhost", "127.0.0.1", "::1"]
    ipaddress.ip_address(names[1])


def test_serve_refuses_an_api_key_that_group_or_others_can_read(
    node: NodeApp, capsys: pytest.CaptureFixture[str]
) -> None:
    key = node.config.api_tls_dir / KEY_FILE
    key.chmod(0o640)
    code, _, err = run(capsys, "serve", "--config", _config_file(node))
    assert (code, err) == (2, f"gcn: key file {key} is readable by group or others: chmod 600 it\n")


# -- who the client trusts -------------------------------------------------------------------


def test_the_node_ca_is_trusted_and_a_client_that_does_not_trust_it_is_refused(
    node: NodeApp, tmp_path: Path, clock: ManualClock
) -> None:
    other = make_node(
        tmp_path / "tz", clock, f"sqlite:///{tmp_path / 'tz.sqlite'}", node_id="TZ", country="TZ"
    )
    other.close()
    with serving(node) as address:
        with open_channel(address, ClientTls(api_ca_pem(node.config))) as ch:
            assert _check(ch) == health_pb2.HealthCheckResponse.SERVING
        with open_channel(address, ClientTls(None)) as ch:  # gRPC's public roots
            assert "CERTIFICATE_VERIFY_FAILED" in _refused(ch)
        with open_channel(address, ClientTls(api_ca_pem(other.config))) as ch:  # another node's CA
            assert "CERTIFICATE_VERIFY_FAILED" in _refused(ch)
        with open_channel(address, None) as ch:  # plaintext to a TLS listener
            _refused(ch)


def test_the_cli_trusts_ca_flag_env_or_its_configs_node_and_says_what_to_do_otherwise(
    node: NodeApp,
    token: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ca = str(node.config.api_tls_dir / "ca.pem")
    with serving(node) as address:
        monkeypatch.chdir(node.config.base_dir.parent)  # no ./gcn.toml here
        code, _, err = run(capsys, "node", "info", "--node", address)
        assert code == 2
        assert err.startswith("gcn: the node's TLS certificate is not signed by a CA this CLI trusts")
        assert "--ca FILE or set GCN_NODE_CA" in err and "gcn api ca" in err and err.count("\n") == 1
        code, out, _ = run(capsys, "node", "info", "--node", address, "--ca", ca)
        assert code == 0 and '"node_id": "KE"' in out
        code, out, _ = run(capsys, "node", "info", "--node", address, "--config", _config_file(node))
        assert code == 0 and '"node_id": "KE"' in out
        monkeypatch.chdir(node.config.base_dir)  # ./gcn.toml is the node's: its CA is trusted
        code, out, _ = run(capsys, "node", "info", "--node", address)
        assert code == 0 and '"node_id": "KE"' in out
        monkeypatch.chdir(tmp_path)
        (tmp_path / "gcn.toml").write_text("[nonsense]\n")  # someone else's file does not get in the way
        code, _, err = run(capsys, "node", "info", "--node", address)
        assert code == 2 and "is not signed by a CA this CLI trusts" in err
        monkeypatch.setenv("GCN_NODE_CA", ca)
        code, out, _ = run(capsys, "node", "info", "--node", address)
        assert code == 0 and '"node_id": "KE"' in out
        code, _, err = run(capsys, "node", "info", "--node", address, "--ca", _config_file(node))
        assert (code, err) == (2, f"gcn: --ca / GCN_NODE_CA: {_config_file(node)} holds no PEM certificate\n")


def test_a_name_the_certificate_lacks_is_refused_unless_tls_name_gives_one_it_has(
    node: NodeApp, token: str, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    # An API certificate for one DNS name only, from the node's own CA.
    directory = node.config.api_tls_dir
    key = generate_tls_key()
    ca_key = (directory / CA_KEY_FILE).read_bytes()
    cert = issue_api_certificate(api_ca_pem(node.config), ca_key, key, "KE", ["api.kra.example"], clock())
    (directory / CERT_FILE).write_bytes(cert)
    (directory / KEY_FILE).write_bytes(key)
    ca = str(directory / "ca.pem")
    with serving(node) as address:
        code, _, err = run(capsys, "node", "info", "--node", address, "--ca", ca)
        assert code == 2
        assert err.startswith("gcn: the node's TLS certificate does not carry the name this CLI reached")
        code, _, err = run(
            capsys, "node", "info", "--node", address, "--ca", ca, "--tls-name", "evil.example"
        )
        assert code == 2 and "does not carry the name" in err
        code, out, _ = run(
            capsys, "node", "info", "--node", address, "--ca", ca, "--tls-name", "api.kra.example"
        )
        assert code == 0 and '"node_id": "KE"' in out


# -- plaintext: loopback only, explicitly --------------------------------------------------


def test_plaintext_on_a_non_loopback_address_is_refused_at_start(
    node: NodeApp, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"\[server\] listen 0.0.0.0:0 is not a loopback address"):
        build_server(node, "0.0.0.0:0", max_message_bytes=1 << 20, workers=2, tls=None)
    monkeypatch.setenv("GCN_SERVER_TLS", "off")
    for listen in ("0.0.0.0:7409", "[::]:7409", "192.0.2.10:7409", ":7409", "gcn.example:7409"):
        monkeypatch.setenv("GCN_SERVER_LISTEN", listen)
        code, out, err = run(capsys, "serve", "--config", _config_file(node))
        assert code == 2 and out == ""
        assert err == (
            f"gcn: [server] listen {listen} is not a loopback address and [server] tls is off: the officer "
            'API would send tokens and records in clear; set [server] tls = "on" (or listen on 127.0.0.1)\n'
        )


def test_plaintext_works_on_loopback_when_asked_for_and_only_there(
    node: NodeApp, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving(node, tls=False) as address:
        code, out, _ = run(capsys, "node", "info", "--node", address, "--plaintext")
        assert code == 0 and '"node_id": "KE"' in out
        code, _, err = run(
            capsys, "node", "info", "--node", address, "--ca", str(node.config.api_tls_dir / "ca.pem")
        )
        assert code == 1 and "the TLS handshake failed" in err and "--plaintext" in err
    code, _, err = run(capsys, "node", "info", "--node", "192.0.2.10:7401", "--plaintext")
    assert (code, err) == (
        2,
        "gcn: plaintext is only for a node on loopback, not 192.0.2.10:7401: drop --plaintext\n",
    )


# -- nodes made before TLS on the officer API, rotation, handing over the CA -------------------


def test_a_node_made_before_tls_is_told_to_run_gcn_api_init_and_then_serves_tls(
    node: NodeApp, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = _config_file(node)
    directory = node.config.api_tls_dir
    for name in os.listdir(directory):
        (directory / name).unlink()
    directory.rmdir()
    # The gcn.toml of before: no tls keys in [server].
    toml = Path(config_file).read_text()
    Path(config_file).write_text("\n".join(line for line in toml.splitlines() if not line.startswith("tls")))
    hint = f"run `gcn api init --config {config_file}`"
    code, _, err = run(capsys, "serve", "--config", config_file)
    assert code == 2 and err.startswith("gcn: the officer API has no certificate") and hint in err
    code, _, err = run(capsys, "node", "info", "--node", "127.0.0.1:1", "--config", config_file)
    assert code == 2 and err.startswith("gcn: the officer API has no CA certificate") and hint in err

    code, out, _ = run(capsys, "api", "init", "--config", config_file)
    assert code == 0 and "localhost, 127.0.0.1, ::1" in out
    code, _, err = run(capsys, "api", "init", "--config", config_file)
    assert code == 2 and "refusing to replace" in err
    with serving(node) as address:
        code, out, _ = run(capsys, "node", "info", "--node", address, "--config", config_file)
        assert code == 0 and '"node_id": "KE"' in out


def test_rotation_keeps_the_ca_so_officers_change_nothing(
    node: NodeApp, token: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    directory = node.config.api_tls_dir
    before = (directory / CERT_FILE).read_bytes(), (directory / KEY_FILE).read_bytes()
    code, out, err = run(capsys, "api", "ca", "--config", _config_file(node))
    assert code == 0 and out.encode() == api_ca_pem(node.config)
    assert err.startswith("gcn: SHA-256 fingerprint ") and err.count(":") >= 32
    officer_copy = tmp_path / "ke-api-ca.pem"
    officer_copy.write_text(out)

    code, out, _ = run(capsys, "api", "rotate", "--config", _config_file(node))
    assert code == 0 and "officers change nothing" in out
    after = (directory / CERT_FILE).read_bytes(), (directory / KEY_FILE).read_bytes()
    assert after[0] != before[0] and after[1] != before[1]
    assert stat.S_IMODE((directory / KEY_FILE).stat().st_mode) == 0o600
    with serving(node) as address:
        code, out, _ = run(capsys, "node", "info", "--node", address, "--ca", str(officer_copy))
        assert code == 0 and '"node_id": "KE"' in out


def _fresh_connection(address: str, ca: bytes, name: str) -> grpc.Channel:
    """A channel that makes its own connection (a handshake), whatever other channels hold."""
    options = [("grpc.ssl_target_name_override", name), ("grpc.use_local_subchannel_pool", 1)]
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(ca), options=options)


def test_a_rotated_certificate_is_served_from_the_next_connection_without_a_restart(
    node: NodeApp, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = Path(_config_file(node))
    ca = api_ca_pem(node.config)
    with serving(node) as address:
        with _fresh_connection(address, ca, "api2.kra.example") as ch:
            assert "Hostname Verification" in _refused(ch)
        config_file.write_text(
            config_file.read_text().replace("tls_names = []", 'tls_names = ["api2.kra.example"]')
        )
        code, out, _ = run(capsys, "api", "rotate", "--config", str(config_file))
        assert code == 0 and "api2.kra.example" in out
        with _fresh_connection(address, ca, "api2.kra.example") as ch:
            assert _check(ch) == health_pb2.HealthCheckResponse.SERVING
        # A key on disk that is not the certificate's is not taken: the last good pair stays.
        (node.config.api_tls_dir / KEY_FILE).write_bytes(generate_tls_key())
        with _fresh_connection(address, ca, "api2.kra.example") as ch:
            assert _check(ch) == health_pb2.HealthCheckResponse.SERVING


def test_serve_warns_of_a_certificate_near_its_end_or_not_from_the_officers_ca(
    node: NodeApp, clock: ManualClock
) -> None:
    assert api_tls_warnings(node.config, clock()) == []
    late = clock() + timedelta(days=340)
    assert api_tls_warnings(node.config, late) == [
        f"the officer API certificate expires at {(clock() + timedelta(days=365)):%Y-%m-%d %H:%M} UTC: "
        "run `gcn api rotate`"
    ]
    ca, ca_key = create_api_ca("XX", clock())
    (node.config.api_tls_dir / "ca.pem").write_bytes(ca)
    del ca_key
    [warning] = api_tls_warnings(node.config, clock())
    assert "does not vouch for the officer API certificate" in warning


# -- reflection v1 and v1alpha, over TLS, without a token ---------------------------------------


def test_reflection_v1alpha_and_v1_both_answer_over_tls(node: NodeApp) -> None:
    with serving(node) as address, open_channel(address, ClientTls(api_ca_pem(node.config))) as ch:
        services = set(ProtoReflectionDescriptorDatabase(ch).get_services())
        assert {"gcn.v1.NodeService", "grpc.health.v1.Health", V1_SERVICE, V1ALPHA_SERVICE} <= services

        request, response = v1_message("ServerReflectionRequest"), v1_message("ServerReflectionResponse")
        info = ch.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=request.SerializeToString,
            response_deserializer=response.FromString,
        )
        asks = [
            request(list_services=""),
            request(file_containing_symbol="gcn.v1.NodeService"),
            request(file_containing_symbol=V1_SERVICE),
            request(file_containing_symbol="no.such.Thing"),
        ]
        listed, node_file, v1_file, missing = list(info(iter(asks), timeout=10))
        assert {s.name for s in listed.list_services_response.service} == services
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in node_file.file_descriptor_response.file_descriptor_proto
        ]
        node_proto = next(f for f in files if f.name == "gcn/v1/node.proto")
        [service] = [s for s in node_proto.service if s.name == "NodeService"]
        assert "RecordSeizure" in {m.name for m in service.method}
        [v1] = [
            descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in v1_file.file_descriptor_response.file_descriptor_proto
        ]
        assert (v1.name, v1.package) == ("grpc/reflection/v1/reflection.proto", "grpc.reflection.v1")
        assert v1.service[0].method[0].input_type == ".grpc.reflection.v1.ServerReflectionRequest"
        assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
