"""`gcn root …`: the federation root administrator's commands.

All of them are local file operations on the root's directory (`--dir`, see
`federation.root.RootStore`); nothing here talks to a node. The root hands
out three kinds of files: `root-keys.json` (once, to every new node, to pin),
a node certificate with `ca.pem` (after `admit`), and the signed directory
(after `publish`; nodes take it with `gcn directory import` or fetch it from a
peer that holds it).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from google.protobuf import json_format
from rich.table import Table

from crypto.certs import certificate_not_after
from crypto.directory import from_timestamp, parse_directory
from federation.root import CA_CERT_FILE, RootStore
from gcn.v1 import directory_pb2 as dir_pb
from node.cli import render
from node.cli.client import CliError
from node.cli.render import say
from node.cli.words import plural
from node.clock import system_clock
from node.joining import read_join_request, write_root_keys
from node.storage.files import PUBLIC, write_file

ROOT_KEYS_FILE = "root-keys.json"
LATEST_DIRECTORY_FILE = "directory-latest.pb"
LATEST_TIMESTAMP_FILE = "timestamp-latest.pb"


def _store(root_dir: str) -> RootStore:
    return RootStore.open(Path(root_dir), write=write_file)


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


# -- the commands ----------------------------------------------------------------------------


@click.group()
def root() -> None:
    pass


def _dir_option(f: Any) -> Any:
    return click.option("--dir", "root_dir", required=True, help="the federation root's directory")(f)


@root.command("init")
@_dir_option
@click.option("--federation", required=True, help="federation name, e.g. gcn-wco")
def root_init(root_dir: str, federation: str) -> int:
    """Create the root: root key, CA, root-keys.json for nodes."""
    path = Path(root_dir)
    store = RootStore.init(path, federation, system_clock(), write=write_file)
    keys = store.root_public_keys()
    write_root_keys(path / ROOT_KEYS_FILE, keys)
    say(f"federation {store.federation}: root created in {path} (root key {keys[0].key_id})")
    say(
        f"hand {path / ROOT_KEYS_FILE} to every new node: "
        f"gcn init … --root-keys {ROOT_KEYS_FILE} --federation-listen HOST:PORT"
    )
    say(f"keep {path} private: it holds the root signing keys and the CA key")
    return 0


@root.command("admit")
@_dir_option
@click.argument("request")
@click.option("--out", help="certificate file (default: <node id>.cert.pem next to the request)")
@click.option("--ca-out", help="also write a copy of the federation CA certificate here")
def root_admit(root_dir: str, request: str, out: str | None, ca_out: str | None) -> int:
    """Verify a node's join request (REQUEST: its join-request.json) and issue its certificate."""
    request_path = Path(request)
    join = read_join_request(request_path)
    store = _store(root_dir)
    readmitted = any(n.id == join.node_id for n in store.nodes())
    cert = store.admit(join, system_clock())
    cert_path = Path(out) if out else request_path.parent / f"{join.node_id}.cert.pem"
    write_file(cert_path, cert, mode=PUBLIC)
    ca_path = store.path / CA_CERT_FILE
    if ca_out:
        ca_path = Path(ca_out)
        write_file(ca_path, store.ca_certificate(), mode=PUBLIC)
    where = f", {join.country}" if join.country else ""
    if readmitted:
        say(f"{join.node_id} is already admitted with these keys: its certificate is re-issued")
    else:
        say(f"admitted {join.node_id} ({join.role}{where}) to federation {store.federation}")
    say(f"certificate: {cert_path} (valid until {certificate_not_after(cert):%Y-%m-%d})")
    say(f"federation CA: {ca_path}")
    say(
        f"hand both to {join.node_id}: "
        f"gcn federation install --cert {cert_path.name} --ca {ca_path.name}"
        + ("" if readmitted else "; it is listed from the next `gcn root publish`")
    )
    return 0


@root.command("publish")
@_dir_option
@click.option("--valid-days", type=int, default=30, show_default=True, help="days until it expires")
@click.option("--out", help=f"where to write it (default: ROOT/{LATEST_DIRECTORY_FILE})")
def root_publish(root_dir: str, valid_days: int, out: str | None) -> int:
    """Sign and write the next directory version."""
    if valid_days < 1:
        raise CliError("--valid-days must be at least 1")
    store = _store(root_dir)
    signed = store.publish(system_clock(), valid_days)
    path = Path(out) if out else store.path / LATEST_DIRECTORY_FILE
    write_file(path, signed.SerializeToString(), mode=PUBLIC)
    directory = parse_directory(signed)
    say(
        f"published directory version {directory.version} of {directory.federation}: "
        f"{plural(len(directory.nodes), 'node')}, {plural(len(directory.audiences), 'audience')}, "
        f"valid until {from_timestamp(directory.expires_at):%Y-%m-%d %H:%M} UTC → {path}"
    )
    for audience in directory.audiences:
        say(f"  {audience.name}: held by {audience.holder}; members {', '.join(audience.members)}")
    say("hand it to every node: gcn directory import FILE (or they fetch it from a peer that holds it)")
    return 0


@root.command("timestamp")
@_dir_option
@click.option("--out", help=f"where to write it (default: ROOT/{LATEST_TIMESTAMP_FILE})")
def root_timestamp(root_dir: str, out: str | None) -> int:
    """Sign a fresh timestamp: 'the last published version is the newest' (run daily)."""
    store = _store(root_dir)
    stamp = store.timestamp(system_clock())
    path = Path(out) if out else store.path / LATEST_TIMESTAMP_FILE
    write_file(path, dir_pb.SignedDirectory(timestamp=stamp).SerializeToString(), mode=PUBLIC)
    latest = store.latest()
    assert latest is not None
    version = parse_directory(latest).version
    say(f"timestamp for directory version {version} of {store.federation} → {path}")
    say("hand it to the global hub (gcn directory import FILE); it flows down the tree by itself")
    return 0


@root.command("revoke")
@_dir_option
@click.argument("node_id")
@click.option(
    "--compromised-since",
    metavar="TIME",
    help="ISO 8601 time its keys may have been stolen from (default: now); "
    "what it signed counts only with custody from before then",
)
def root_revoke(root_dir: str, node_id: str, compromised_since: str | None) -> int:
    """Revoke a node from now."""
    store = _store(root_dir)
    now = system_clock()
    since = None
    if compromised_since:
        try:
            since = datetime.fromisoformat(compromised_since)
        except ValueError as e:
            raise CliError(f"--compromised-since: {compromised_since!r} is not an ISO 8601 time") from e
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    store.revoke(node_id, now, since)
    cut = since or now
    say(
        f"{node_id} revoked at {now:%Y-%m-%d %H:%M:%S} UTC: what it signed counts only if another node "
        f"held it before {cut:%Y-%m-%d %H:%M:%S} UTC; "
        "publish a directory (gcn root publish) to tell the federation"
    )
    return 0


@root.command("bilateral")
@_dir_option
@click.argument("a")
@click.argument("b")
def root_bilateral(root_dir: str, a: str, b: str) -> int:
    """Share an audience between two countries: A holds the audience keys,
    B is the other (ISO 3166-1 alpha-2)."""
    first, second = a.upper(), b.upper()
    _store(root_dir).add_bilateral(first, second)
    say(
        f"bilateral audience {first}+{second}, held by {first}'s national node; "
        "it exists from the next `gcn root publish`"
    )
    return 0


@root.command("rotate")
@_dir_option
def root_rotate(root_dir: str) -> int:
    """Replace the root signing key."""
    store = _store(root_dir)
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


@root.command("update-keys")
@_dir_option
@click.argument("keys")
@click.option("--node", metavar="NODE_ID", help="the node id (default: the node these keys belong to)")
def root_update_keys(root_dir: str, keys: str, node: str | None) -> int:
    """Take a node's signing keys after it rotated (KEYS: its signing-keys.json, from `gcn keys rotate`)."""
    listed = read_signing_keys(Path(keys))
    store = _store(root_dir)
    node_id = node or _node_of_keys(store, listed)
    store.update_keys(node_id, listed, system_clock())
    current = [k.key_id for k in listed if not k.HasField("not_after")]
    say(
        f"{node_id} now lists {len(listed)} signing keys (current {', '.join(current)}); "
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


@root.command("nodes")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")
def root_nodes(root_dir: str, as_json: bool) -> int:
    """List the admitted nodes."""
    store = _store(root_dir)
    nodes = store.nodes()
    if as_json:
        json.dump([render.as_dict(n) for n in nodes], sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    render.console.print(nodes_table(nodes, f"federation {store.federation}: {plural(len(nodes), 'node')}"))
    return 0
