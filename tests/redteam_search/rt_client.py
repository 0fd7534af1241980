"""Clients an attacker holds: an officer's token, a member node's own TLS files.
Generated protos and grpc only (no node.* / federation.* imports)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import grpc

from gcn.v1 import node_pb2_grpc, sync_pb2_grpc

RT = Path(os.environ.get("RT_DIR", "/tmp/rt"))
BASE = RT / "run"
MAX = 64 * 1024 * 1024


def meta() -> dict[str, Any]:
    return dict(json.loads((BASE / "state.json").read_text()))


def officer(node: str) -> tuple[node_pb2_grpc.NodeServiceStub, list[tuple[str, str]]]:
    m = meta()[node]
    ca = (BASE / node / "api-tls" / "ca.pem").read_bytes()
    ch = grpc.secure_channel(
        f"127.0.0.1:{m['officer']}",
        grpc.ssl_channel_credentials(root_certificates=ca),
        options=[("grpc.max_receive_message_length", MAX)],
    )
    return node_pb2_grpc.NodeServiceStub(ch), [("authorization", f"Bearer {m['token']}")]


def member_creds(me: str) -> grpc.ChannelCredentials:
    tls = BASE / me / "tls"
    return grpc.ssl_channel_credentials(
        root_certificates=(tls / "ca.pem").read_bytes(),
        private_key=(tls / "key.pem").read_bytes(),
        certificate_chain=(tls / "cert.pem").read_bytes(),
    )


def member(me: str, hub: str, direct: bool = True) -> sync_pb2_grpc.SyncServiceStub:
    """`me`'s own mutual-TLS channel to `hub` (direct: its listener, else its endpoint proxy)."""
    m = meta()[hub]
    port = m["listen"] if direct else m["endpoint"]
    ch = grpc.secure_channel(
        f"127.0.0.1:{port}",
        member_creds(me),
        options=[
            ("grpc.ssl_target_name_override", f"{hub.lower()}.gcn"),
            ("grpc.max_receive_message_length", MAX),
        ],
    )
    return sync_pb2_grpc.SyncServiceStub(ch)


def ctl(node: str, **c: Any) -> None:
    """Set the endpoint proxy of `node` (rt_proxy modes)."""
    (BASE.parent / "ctl" / f"{node}.json").write_text(json.dumps(c))
