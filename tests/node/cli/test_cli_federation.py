"""The federation trust flow through `gcn`, as operators run it: a root and two
national nodes (KE, VN) in tmp dirs, every step a command, files handed over
by path. Real keys, certificates, signed directories and, for `directory
fetch`, a real mutual-TLS listener on loopback."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from federation.transport import TlsMaterial
from node.api.federation_server import build_federation_server
from node.api.sync_servicer import SyncServicer
from node.app import NodeApp
from node.cli.main import main
from node.config import load_config
from node.testing.local_federation import free_port


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return out


def refused(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 2) -> str:
    """The command fails with one `gcn: …` line on stderr; that line."""
    got, out, err = run(capsys, *argv)
    assert got == code, (out, err)
    assert err.startswith("gcn: ")
    assert err.strip().count("\n") == 0, err
    return err.strip()


@dataclass
class Fed:
    base: Path

    @property
    def root(self) -> str:
        return str(self.base / "root")

    def config(self, node_id: str) -> str:
        return str(self.base / node_id.lower() / "gcn.toml")

    def path(self, *parts: str) -> Path:
        return self.base.joinpath(*parts)


def init_node(
    capsys: pytest.CaptureFixture[str], fed: Fed, node_id: str, *extra: str, root_keys: bool = True
) -> None:
    keys = ["--root-keys", str(fed.path("root", "root-keys.json"))] if root_keys else []
    ok(
        capsys,
        "init",
        "--dir",
        str(fed.path(node_id.lower())),
        "--id",
        node_id,
        "--country",
        node_id,
        "--listen",
        "127.0.0.1:0",
        "--federation-listen",
        f"127.0.0.1:{free_port()}",
        *keys,
        *extra,
    )


def directory_json(capsys: pytest.CaptureFixture[str], fed: Fed, node_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        ok(capsys, "directory", "show", "--config", fed.config(node_id), "--json")
    )
    return data


def node_entry(directory: dict[str, Any], node_id: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [n for n in directory["nodes"] if n["id"] == node_id]
    [entry] = entries
    return entry


def publish(capsys: pytest.CaptureFixture[str], fed: Fed) -> str:
    return ok(capsys, "root", "publish", "--dir", fed.root)


def import_latest(capsys: pytest.CaptureFixture[str], fed: Fed, node_id: str) -> str:
    latest = str(fed.path("root", "directory-latest.pb"))
    return ok(capsys, "directory", "import", latest, "--config", fed.config(node_id))


@pytest.fixture
def fed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Fed:
    """root init → two nodes pinning its keys → admitted → certificates installed
    → a bilateral audience → directory version 1 taken by both."""
    f = Fed(tmp_path)
    out = ok(capsys, "root", "init", "--dir", f.root, "--federation", "gcn-test")
    assert "root-keys.json" in out
    assert json.loads(f.path("root", "root-keys.json").read_text())[0]["keyId"]
    init_node(capsys, f, "KE", "--region", "ESA", "--upstream", "VN")
    init_node(capsys, f, "VN", "--region", "SEA", "--upstream", "ke")
    for node_id in ("KE", "VN"):
        request = f.path(node_id.lower(), "join-request.json")
        out = ok(capsys, "root", "admit", str(request), "--dir", f.root)
        assert f"admitted {node_id} (national, {node_id})" in out
        cert = f.path(node_id.lower(), f"{node_id}.cert.pem")
        assert cert.exists()
        ca = f.path("root", "ca.pem")
        ok(
            capsys,
            "federation",
            "install",
            "--cert",
            str(cert),
            "--ca",
            str(ca),
            "--config",
            f.config(node_id),
        )
    ok(capsys, "root", "bilateral", "ke", "vn", "--dir", f.root)
    out = publish(capsys, f)
    assert "version 1" in out
    assert "2 nodes" in out
    assert "bilateral:KE+VN: held by KE" in out
    out = import_latest(capsys, f, "KE")
    assert "version 1" in out
    assert "KE holds the keys of: bilateral:KE+VN, national:KE" in out
    out = import_latest(capsys, f, "VN")
    assert "VN holds the keys of: national:VN" in out
    return f


# -- the whole flow --------------------------------------------------------------------------


def test_the_operator_flow_from_root_init_to_revocation(fed: Fed, capsys: pytest.CaptureFixture[str]) -> None:
    # What the nodes hold: version 1, its audiences, who holds which.
    shown = directory_json(capsys, fed, "KE")
    assert shown["version"] == 1
    assert shown["federation"] == "gcn-test"
    assert [a["name"] for a in shown["audiences"]] == ["bilateral:KE+VN", "national:KE", "national:VN"]
    assert shown["held_audiences"] == ["bilateral:KE+VN", "national:KE"]
    assert node_entry(shown, "KE")["upstreams"] == ["VN"]
    table = ok(capsys, "directory", "show", "--config", fed.config("VN"))
    assert "directory version 1 of gcn-test" in table
    assert "bilateral:KE+VN" in table
    nodes = json.loads(ok(capsys, "root", "nodes", "--dir", fed.root, "--json"))
    assert [(n["id"], n["status"]) for n in nodes] == [
        ("KE", "NODE_STATUS_ACTIVE"),
        ("VN", "NODE_STATUS_ACTIVE"),
    ]
    assert "active" in ok(capsys, "root", "nodes", "--dir", fed.root)

    # KE rotates its signing key; the root lists both keys in version 2. Its
    # bilateral key message has reached no peer yet: the CLI says so and waits
    # for --force (after the rotation, no peer would take it).
    err = refused(capsys, "keys", "rotate", "--config", fed.config("KE"))
    assert "bilateral:KE+VN: 1 of 1 envelopes held by no peer yet" in err
    out = ok(capsys, "keys", "rotate", "--config", fed.config("KE"), "--force")
    assert "gcn root update-keys" in out
    assert "restarted" in out
    keys_file = fed.path("ke", "signing-keys.json")
    listed = json.loads(keys_file.read_text())
    assert len(listed) == 2
    assert ["notAfter" in k for k in listed] == [True, False]
    out = ok(capsys, "root", "update-keys", str(keys_file), "--dir", fed.root)
    assert "KE now lists 2 signing keys" in out
    assert "version 2" in publish(capsys, fed)
    assert "version 2" in import_latest(capsys, fed, "KE")
    shown = directory_json(capsys, fed, "KE")
    assert shown["version"] == 2
    assert [k["key_id"] for k in node_entry(shown, "KE")["signing_keys"]] == [k["keyId"] for k in listed]

    # The root revokes VN; version 3 says so.
    ok(capsys, "root", "revoke", "VN", "--dir", fed.root)
    assert "version 3" in publish(capsys, fed)
    import_latest(capsys, fed, "KE")
    shown = directory_json(capsys, fed, "KE")
    assert shown["version"] == 3
    assert node_entry(shown, "VN")["status"] == "NODE_STATUS_REVOKED"
    # VN, skipping version 2, takes version 3 and is told it is revoked.
    assert "VN is REVOKED" in import_latest(capsys, fed, "VN")
    # A revoked node is never admitted again.
    err = refused(capsys, "root", "admit", str(fed.path("vn", "join-request.json")), "--dir", fed.root)
    assert "never admitted again" in err


def test_root_rotation_is_followed_through_the_directory_chain(
    fed: Fed, capsys: pytest.CaptureFixture[str]
) -> None:
    before = fed.path("root", "root-keys.json").read_text()
    out = ok(capsys, "root", "rotate", "--dir", fed.root)
    assert "only NEW nodes pin it" in out
    assert fed.path("root", "root-keys.json").read_text() != before
    publish(capsys, fed)
    assert "version 2" in import_latest(capsys, fed, "KE")
    publish(capsys, fed)
    assert "version 3" in import_latest(capsys, fed, "KE")
    new_root_key = json.loads(fed.path("root", "root-keys.json").read_text())[0]["keyId"]
    assert directory_json(capsys, fed, "KE")["root_keys"] == [new_root_key]


def test_directory_fetch_from_a_peer_over_mutual_tls(fed: Fed, capsys: pytest.CaptureFixture[str]) -> None:
    publish(capsys, fed)
    import_latest(capsys, fed, "KE")  # KE holds version 2, VN still version 1
    ke = NodeApp.open(load_config(Path(fed.config("KE"))))
    config = ke.config
    server = build_federation_server(
        SyncServicer(ke.trust, ke.sync_source, ke.receiver, ke.clock),
        config.federation.listen,
        TlsMaterial.load(config.tls_dir),
    )
    try:
        # The endpoint comes from VN's directory, where KE listed its listener.
        out = ok(capsys, "directory", "fetch", "--from", "KE", "--config", fed.config("VN"))
        assert f"fetched the directory from KE at {config.federation.listen}" in out
        assert "version 2" in out
        assert directory_json(capsys, fed, "VN")["version"] == 2
        out = ok(capsys, "directory", "fetch", "--from", "KE", "--config", fed.config("VN"))
        assert "already holds directory version 2" in out
    finally:
        server.stop(None)
        ke.close()
    dead = f"127.0.0.1:{free_port()}"
    err = refused(
        capsys, "directory", "fetch", "--from", "KE", "--endpoint", dead, "--config", fed.config("VN"), code=1
    )
    assert "node unavailable" in err


def test_certificate_renewal_re_admits_the_same_keys(fed: Fed, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "federation", "renew", "--config", fed.config("KE"))
    assert "use --force" in out
    request = fed.path("ke", "join-request.json")
    request.unlink()
    out = ok(capsys, "federation", "renew", "--force", "--config", fed.config("KE"))
    assert request.exists()
    cert = fed.path("ke", "renewed.pem")
    out = ok(capsys, "root", "admit", str(request), "--dir", fed.root, "--out", str(cert))
    assert "re-issued" in out
    ok(
        capsys,
        "federation",
        "install",
        "--cert",
        str(cert),
        "--ca",
        str(fed.path("root", "ca.pem")),
        "--config",
        fed.config("KE"),
    )
    assert fed.path("ke", "tls", "cert.pem").read_bytes() == cert.read_bytes()


# -- refusals: one line, exit 2 --------------------------------------------------------------


def test_a_tampered_join_request_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fed = Fed(tmp_path)
    ok(capsys, "root", "init", "--dir", fed.root, "--federation", "gcn-test")
    init_node(capsys, fed, "KE")
    request = fed.path("ke", "join-request.json")
    doc = json.loads(request.read_text())
    doc["name"] = "Not the KE customs"
    request.write_text(json.dumps(doc))
    err = refused(capsys, "root", "admit", str(request), "--dir", fed.root)
    assert "join request of 'KE' refused" in err
    assert "signature does not verify" in err
    assert not fed.path("ke", "KE.cert.pem").exists()
    nodes = json.loads(ok(capsys, "root", "nodes", "--dir", fed.root, "--json"))
    assert nodes == []


def test_an_older_directory_is_refused(fed: Fed, capsys: pytest.CaptureFixture[str]) -> None:
    publish(capsys, fed)
    import_latest(capsys, fed, "KE")
    old = str(fed.path("root", "directory-1.pb"))
    err = refused(capsys, "directory", "import", old, "--config", fed.config("KE"))
    assert "directory version 1 older than held version 2" in err
    assert directory_json(capsys, fed, "KE")["version"] == 2


def test_importing_without_pinned_root_keys_is_refused_until_the_node_joins(
    fed: Fed, capsys: pytest.CaptureFixture[str]
) -> None:
    init_node(capsys, fed, "TZ", root_keys=False)
    assert not fed.path("tz", "join-request.json").exists()
    latest = str(fed.path("root", "directory-latest.pb"))
    err = refused(capsys, "directory", "import", latest, "--config", fed.config("TZ"))
    assert "pinned no federation root keys" in err
    out = ok(
        capsys,
        "federation",
        "join",
        "--root-keys",
        str(fed.path("root", "root-keys.json")),
        "--config",
        fed.config("TZ"),
    )
    assert "join-request.json" in out
    out = ok(capsys, "directory", "import", latest, "--config", fed.config("TZ"))
    assert "TZ is not listed in it" in out


def test_root_init_refuses_a_non_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "notes.txt").write_text("mine")
    err = refused(capsys, "root", "init", "--dir", str(tmp_path / "root"), "--federation", "gcn-test")
    assert "is not empty" in err
    assert not (tmp_path / "root" / "root-keys.json").exists()


def test_init_with_root_keys_needs_a_federation_listener(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok(capsys, "root", "init", "--dir", str(tmp_path / "root"), "--federation", "gcn-test")
    args = ["init", "--dir", str(tmp_path / "ke"), "--id", "KE", "--country", "KE"]
    err = refused(capsys, *args, "--root-keys", str(tmp_path / "root" / "root-keys.json"))
    assert "--federation-listen" in err
    assert not (tmp_path / "ke" / "gcn.toml").exists()
    err = refused(capsys, *args, "--root-keys", str(tmp_path / "missing.json"))
    assert "is not a root key file" in err


def test_a_certificate_for_another_node_is_not_installed(
    fed: Fed, capsys: pytest.CaptureFixture[str]
) -> None:
    before = fed.path("ke", "tls", "cert.pem").read_bytes()
    err = refused(
        capsys,
        "federation",
        "install",
        "--cert",
        str(fed.path("vn", "VN.cert.pem")),
        "--ca",
        str(fed.path("root", "ca.pem")),
        "--config",
        fed.config("KE"),
    )
    assert "the certificate is for node VN, not KE" in err
    assert fed.path("ke", "tls", "cert.pem").read_bytes() == before


def test_update_keys_refuses_a_list_that_drops_a_key(fed: Fed, capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "keys", "rotate", "--config", fed.config("KE"), "--force")
    keys_file = fed.path("ke", "signing-keys.json")
    keys_file.write_text(json.dumps(json.loads(keys_file.read_text())[1:]))
    err = refused(capsys, "root", "update-keys", str(keys_file), "--dir", fed.root, "--node", "KE")
    assert "would be dropped" in err
