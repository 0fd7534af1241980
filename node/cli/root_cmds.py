"""`gcn root …`: the federation root administrator's commands.

All of them are local file operations on the root's directory (`--dir`, see
`federation.root.RootStore`); nothing here talks to a node. The root hands
out three kinds of files: `root-keys.json` (once, to every new node, to pin),
a node certificate with `ca.pem` (after `admit`), and the signed directory
(after `publish`; nodes take it with `gcn directory import` or fetch it from a
peer that holds it).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from rich.table import Table

from crypto.certs import certificate_not_after
from crypto.directory import from_timestamp, parse_directory
from federation.root import CA_CERT_FILE, RootStore
from gcn.v1 import directory_pb2 as dir_pb
from node.cli import render
from node.cli.client import CliError
from node.clock import system_clock
from node.joining import read_join_request, write_root_keys
from node.storage.files import PUBLIC, write_file

ROOT_KEYS_FILE = "root-keys.json"
LATEST_DIRECTORY_FILE = "directory-latest.pb"
LATEST_TIMESTAMP_FILE = "timestamp-latest.pb"


def say(text: str) -> None:
    """One plain line for people: no markup (paths may hold brackets), no wrapping."""
    render.console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)


def _store(a: argparse.Namespace) -> RootStore:
    return RootStore.open(Path(a.dir), write=write_file)


def _status(node: dir_pb.DirectoryNode) -> str:
    name = dir_pb.NodeStatus.Name(node.status)
    return name.removeprefix("NODE_STATUS_").lower()


def read_signing_keys(path: Path) -> list[dir_pb.DirectoryKey]:
    """A node's signing-key list: a JSON list of DirectoryKey (`gcn keys rotate` writes it)."""
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, list):
            raise ValueError("not a JSON list")
        return [json_format.ParseDict(k, dir_pb.DirectoryKey()) for k in raw]
    except (OSError, ValueError, json_format.ParseError) as e:
        raise CliError(f"{path} is not a signing-key file (a JSON list of keys): {e}") from e


# -- handlers --------------------------------------------------------------------------------


def cmd_root_init(a: argparse.Namespace) -> int:
    path = Path(a.dir)
    store = RootStore.init(path, a.federation, system_clock(), write=write_file)
    keys = store.root_public_keys()
    write_root_keys(path / ROOT_KEYS_FILE, keys)
    say(f"federation {store.federation}: root created in {path} (root key {keys[0].key_id})")
    say(
        f"hand {path / ROOT_KEYS_FILE} to every new node: "
        f"gcn init … --root-keys {ROOT_KEYS_FILE} --federation-listen HOST:PORT"
    )
    say(f"keep {path} private: it holds the root signing keys and the CA key")
    return 0


def cmd_root_admit(a: argparse.Namespace) -> int:
    request_path = Path(a.request)
    request = read_join_request(request_path)
    store = _store(a)
    readmitted = any(n.id == request.node_id for n in store.nodes())
    cert = store.admit(request, system_clock())
    cert_path = Path(a.out) if a.out else request_path.parent / f"{request.node_id}.cert.pem"
    write_file(cert_path, cert, mode=PUBLIC)
    ca_path = store.path / CA_CERT_FILE
    if a.ca_out:
        ca_path = Path(a.ca_out)
        write_file(ca_path, store.ca_certificate(), mode=PUBLIC)
    where = f", {request.country}" if request.country else ""
    if readmitted:
        say(f"{request.node_id} is already admitted with these keys: its certificate is re-issued")
    else:
        say(f"admitted {request.node_id} ({request.role}{where}) to federation {store.federation}")
    say(f"certificate: {cert_path} (valid until {certificate_not_after(cert):%Y-%m-%d})")
    say(f"federation CA: {ca_path}")
    say(
        f"hand both to {request.node_id}: "
        f"gcn federation install --cert {cert_path.name} --ca {ca_path.name}"
        + ("" if readmitted else "; it is listed from the next `gcn root publish`")
    )
    return 0


def cmd_root_publish(a: argparse.Namespace) -> int:
    if a.valid_days < 1:
        raise CliError("--valid-days must be at least 1")
    store = _store(a)
    signed = store.publish(system_clock(), a.valid_days)
    out = Path(a.out) if a.out else store.path / LATEST_DIRECTORY_FILE
    write_file(out, signed.SerializeToString(), mode=PUBLIC)
    directory = parse_directory(signed)
    say(
        f"published directory version {directory.version} of {directory.federation}: "
        f"{len(directory.nodes)} nodes, {len(directory.audiences)} audiences, "
        f"valid until {from_timestamp(directory.expires_at):%Y-%m-%d %H:%M} UTC → {out}"
    )
    for audience in directory.audiences:
        say(f"  {audience.name}: held by {audience.holder}; members {', '.join(audience.members)}")
    say("hand it to every node: gcn directory import FILE (or they fetch it from a peer that holds it)")
    return 0


def cmd_root_timestamp(a: argparse.Namespace) -> int:
    store = _store(a)
    stamp = store.timestamp(system_clock())
    out = Path(a.out) if a.out else store.path / LATEST_TIMESTAMP_FILE
    write_file(out, dir_pb.SignedDirectory(timestamp=stamp).SerializeToString(), mode=PUBLIC)
    latest = store.latest()
    assert latest is not None
    version = parse_directory(latest).version
    say(f"timestamp for directory version {version} of {store.federation} → {out}")
    say("hand it to the global hub (gcn directory import FILE); it flows down the tree by itself")
    return 0


def cmd_root_revoke(a: argparse.Namespace) -> int:
    store = _store(a)
    now = system_clock()
    since = None
    if a.compromised_since:
        try:
            since = datetime.fromisoformat(a.compromised_since)
        except ValueError as e:
            raise CliError(f"--compromised-since: {a.compromised_since!r} is not an ISO 8601 time") from e
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    store.revoke(a.node_id, now, since)
    cut = since or now
    say(
        f"{a.node_id} revoked at {now:%Y-%m-%d %H:%M:%S} UTC: what it signed counts only if another node "
        f"held it before {cut:%Y-%m-%d %H:%M:%S} UTC; "
        "publish a directory (gcn root publish) to tell the federation"
    )
    return 0


def cmd_root_bilateral(a: argparse.Namespace) -> int:
    first, second = a.a.upper(), a.b.upper()
    _store(a).add_bilateral(first, second)
    say(
        f"bilateral audience {first}+{second}, held by {first}'s national node; "
        "it exists from the next `gcn root publish`"
    )
    return 0


def cmd_root_rotate(a: argparse.Namespace) -> int:
    store = _store(a)
    store.rotate_root(system_clock())
    keys = store.root_public_keys()
    write_root_keys(store.path / ROOT_KEYS_FILE, keys)
    say(f"new root key {', '.join(k.key_id for k in keys)}; the old one signs the next directory too")
    say(
        "publish now (gcn root publish): existing nodes follow the rotation through that version, "
        "which every node must take before the one after it"
    )
    say(f"{store.path / ROOT_KEYS_FILE} rewritten: only NEW nodes pin it")
    return 0


def _node_of_keys(store: RootStore, keys: list[dir_pb.DirectoryKey]) -> str:
    """The admitted node whose listed signing keys are in `keys`."""
    ids = {k.key_id for k in keys}
    owners = [n.id for n in store.nodes() if ids & {k.key_id for k in n.signing_keys}]
    if len(owners) != 1:
        found = f"nodes {', '.join(owners)}" if owners else "no admitted node"
        raise CliError(f"the keys match {found}; name the node with --node ID")
    return owners[0]


def cmd_root_update_keys(a: argparse.Namespace) -> int:
    keys = read_signing_keys(Path(a.keys))
    store = _store(a)
    node_id = a.node or _node_of_keys(store, keys)
    store.update_keys(node_id, keys, system_clock())
    current = [k.key_id for k in keys if not k.HasField("not_after")]
    say(
        f"{node_id} now lists {len(keys)} signing keys (current {', '.join(current)}); "
        "peers accept its new signatures from the next `gcn root publish`"
    )
    return 0


def _node_row(node: dir_pb.DirectoryNode) -> list[str]:
    return [
        node.id,
        node.role,
        node.country,
        node.region,
        _status(node),
        ", ".join(node.endpoints),
        ", ".join(node.upstreams),
    ]


def nodes_table(nodes: list[dir_pb.DirectoryNode], title: str) -> Table:
    table = Table(title=title)
    for column in ("id", "role", "country", "region", "status", "endpoints", "upstreams"):
        table.add_column(column, overflow="fold")
    for node in nodes:
        table.add_row(*_node_row(node))
    return table


def cmd_root_nodes(a: argparse.Namespace) -> int:
    store = _store(a)
    nodes = store.nodes()
    if a.json:
        json.dump([render.as_dict(n) for n in nodes], sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    render.console.print(nodes_table(nodes, f"federation {store.federation}: {len(nodes)} nodes"))
    return 0


# -- the parser ------------------------------------------------------------------------------


def _dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", required=True, help="the federation root's directory")


def _add(actions: Any, name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
    _dir_arg(p)
    p.set_defaults(handler=handler)
    return p


def register(sub: Any) -> None:
    """Add `gcn root …` to the top-level sub-parsers."""
    root = sub.add_parser("root", help="the federation root: admit nodes, publish the signed directory")
    actions = root.add_subparsers(dest="action", required=True)

    p = _add(actions, "init", "create the root: root key, CA, root-keys.json for nodes", cmd_root_init)
    p.add_argument("--federation", required=True, help="federation name, e.g. gcn-wco")

    p = _add(actions, "admit", "verify a node's join request and issue its certificate", cmd_root_admit)
    p.add_argument("request", help="the node's join-request.json")
    p.add_argument("--out", help="certificate file (default: <node id>.cert.pem next to the request)")
    p.add_argument("--ca-out", help="also write a copy of the federation CA certificate here")

    p = _add(actions, "publish", "sign and write the next directory version", cmd_root_publish)
    p.add_argument("--valid-days", type=int, default=30, help="days until it expires (default 30)")
    p.add_argument("--out", help=f"where to write it (default: ROOT/{LATEST_DIRECTORY_FILE})")

    p = _add(
        actions,
        "timestamp",
        "sign a fresh timestamp: 'the last published version is the newest' (run daily)",
        cmd_root_timestamp,
    )
    p.add_argument("--out", help=f"where to write it (default: ROOT/{LATEST_TIMESTAMP_FILE})")

    p = _add(actions, "revoke", "revoke a node from now", cmd_root_revoke)
    p.add_argument("node_id")
    p.add_argument(
        "--compromised-since",
        help="ISO 8601 time its keys may have been stolen from (default: now); "
        "what it signed counts only with custody from before then",
    )

    p = _add(actions, "bilateral", "share an audience between two countries", cmd_root_bilateral)
    p.add_argument("a", help="country holding the audience keys (ISO 3166-1 alpha-2)")
    p.add_argument("b", help="the other country")

    _add(actions, "rotate", "replace the root signing key", cmd_root_rotate)

    p = _add(actions, "update-keys", "take a node's signing keys after it rotated", cmd_root_update_keys)
    p.add_argument("keys", help="the node's signing-keys.json (from `gcn keys rotate`)")
    p.add_argument("--node", help="the node id (default: the node these keys belong to)")

    p = _add(actions, "nodes", "list the admitted nodes", cmd_root_nodes)
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
