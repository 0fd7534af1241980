"""The node's side of joining a federation.

gcn init … --root-keys root-keys.json --federation-listen 127.0.0.1:7501 --upstream RINEX-ESA
    pins the root's public keys, makes the node's TLS key and certificate request,
    and writes `join-request.json` for the federation root;
gcn root admit join-request.json   (at the root)  → the node's certificate;
gcn federation install --cert node.pem --ca ca.pem   installs it;
gcn directory import directory.pb / gcn directory fetch   takes the signed directory.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from google.protobuf import json_format

from crypto.certs import generate_tls_key, make_csr, node_id_from_certificate
from federation.join import make_join_request
from gcn.v1 import directory_pb2 as dir_pb
from node.config import Config
from node.errors import ConfigError
from node.storage.files import PUBLIC, private_directory, write_file
from node.storage.key_files import KeyDirectory
from node.storage.trust_files import TrustFiles

JOIN_REQUEST_FILE = "join-request.json"


def read_root_keys(path: Path) -> list[dir_pb.DirectoryKey]:
    """The root public keys a node pins: a JSON list of DirectoryKey (written by `gcn root init`)."""
    try:
        raw = json.loads(path.read_text())
        return [json_format.ParseDict(k, dir_pb.DirectoryKey()) for k in raw]
    except (OSError, ValueError, json_format.ParseError) as e:
        raise ConfigError(f"{path} is not a root key file (a JSON list of root public keys): {e}") from e


def write_root_keys(path: Path, keys: list[dir_pb.DirectoryKey]) -> None:
    data = [json_format.MessageToDict(k) for k in keys]
    write_file(path, (json.dumps(data, indent=2) + "\n").encode(), mode=PUBLIC)


def prepare_join(config: Config, root_keys: list[dir_pb.DirectoryKey], now: datetime) -> dir_pb.JoinRequest:
    """Pin the root keys, create the TLS key and CSR, write the join request."""
    if not config.federation.listen:
        raise ConfigError("[federation] listen must be set to join a federation")
    TrustFiles(config.trust_dir).pin(root_keys)
    private_directory(config.tls_dir)
    key_path = config.tls_dir / "key.pem"
    if not key_path.exists():
        write_file(key_path, generate_tls_key(), overwrite=False)
    keys = KeyDirectory(config.keys_dir).load()
    n = config.node
    request = make_join_request(
        node_id=n.id,
        name=n.name,
        role=n.role,
        country=n.country,
        region=n.region,
        endpoints=[config.federation.endpoint or config.federation.listen],
        upstreams=config.federation.upstream_ids,
        signing=keys.signing,
        encryption=keys.encryption,
        csr_pem=make_csr(n.id, key_path.read_bytes()),
        now=now,
    )
    request_json = json_format.MessageToJson(request) + "\n"
    write_file(config.base_dir / JOIN_REQUEST_FILE, request_json.encode(), mode=PUBLIC)
    return request


def read_join_request(path: Path) -> dir_pb.JoinRequest:
    try:
        return json_format.Parse(path.read_text(), dir_pb.JoinRequest())
    except (OSError, json_format.ParseError) as e:
        raise ConfigError(f"{path} is not a join request: {e}") from e


def install_certificate(config: Config, cert_pem: bytes, ca_pem: bytes, now: datetime) -> None:
    """Install the certificate the root issued (checked: this node's, by this CA)."""
    node_id = node_id_from_certificate(cert_pem, ca_pem, now)
    if node_id != config.node.id:
        raise ConfigError(f"the certificate is for node {node_id}, not {config.node.id}")
    private_directory(config.tls_dir)
    write_file(config.tls_dir / "cert.pem", cert_pem, mode=PUBLIC)
    write_file(config.tls_dir / "ca.pem", ca_pem, mode=PUBLIC)
