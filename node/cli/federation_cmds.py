"""A node's side of the federation: `gcn federation …`, `gcn directory …`, `gcn keys …`.

Local file operations on the node of `--config` (or GCN_CONFIG, default
./gcn.toml), except `gcn directory fetch`, which asks a peer over mutual TLS.
The flow (see `node.joining`): `gcn init --root-keys …` writes the join
request → the root admits it → `gcn federation install` → `gcn directory
import` (or `fetch`). A running `gcn serve` reads its keys and directory at
start: restart it after `gcn keys rotate` (it would go on signing with the
retired key) and after it takes a directory.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import click
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from rich.table import Table

from crypto.certs import certificate_not_after, needs_renewal
from crypto.directory import find_node, from_timestamp, parse_directory
from federation.peers import peers_of
from federation.transport import TlsMaterial, peer_channel, sync_stub
from gcn.v1 import directory_pb2 as dir_pb
from gcn.v1 import sync_pb2
from node.admin import TrustFiles, last_known_vector, open_node
from node.app import NodeApp
from node.cli import render
from node.cli.client import CliError, call
from node.cli.options import config_option, json_option, load
from node.cli.render import say
from node.cli.root_cmds import nodes_table
from node.cli.words import plural
from node.clock import system_clock
from node.config import Config
from node.joining import JOIN_REQUEST_FILE, install_certificate, prepare_join, read_root_keys
from node.storage.files import PUBLIC, write_file

SIGNING_KEYS_FILE = "signing-keys.json"
NO_ROOT = (
    "this node has pinned no federation root keys: join first with "
    "`gcn federation join --root-keys root-keys.json` (or create it with `gcn init --root-keys …`)"
)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CliError(f"cannot read the {what} {path}: {e.strerror or e}") from e


def _at(ts: Any) -> str:
    return f"{from_timestamp(ts):%Y-%m-%d %H:%M} UTC"


# -- gcn federation ------------------------------------------------------------------------


@click.group()
def federation() -> None:
    pass


@federation.command("install")
@config_option()
@click.option("--cert", "cert_file", required=True, help="this node's certificate (from `gcn root admit`)")
@click.option("--ca", "ca_file", required=True, help="the federation CA certificate (ca.pem)")
def federation_install(config: str | None, cert_file: str, ca_file: str) -> int:
    """Install the certificate the root issued."""
    node = load(config)
    cert, ca = _read(Path(cert_file), "certificate"), _read(Path(ca_file), "CA certificate")
    held = TrustFiles(node.trust_dir).held()
    if held is not None and parse_directory(held).ca_certificate.strip() != ca.strip():
        raise CliError(f"{ca_file} is not the federation CA named in the directory this node holds")
    install_certificate(node, cert, ca, system_clock())
    say(
        f"certificate of {node.node.id} installed in {node.tls_dir} "
        f"(valid until {certificate_not_after(cert):%Y-%m-%d})"
    )
    say(
        f"the federation listener ({node.federation.listen or 'not configured'}) starts with `gcn serve`; "
        "next: take the directory (gcn directory import FILE, or gcn directory fetch --from NODE_ID)"
    )
    return 0


@federation.command("join")
@config_option()
@click.option("--root-keys", required=True, help="the root-keys.json the federation root handed out")
def federation_join(config: str | None, root_keys: str) -> int:
    """Pin the root keys and write a join request."""
    node = load(config)
    if TrustFiles(node.trust_dir).pinned():
        raise CliError(
            "this node already pinned the federation root keys; to renew its certificate run "
            "`gcn federation renew`"
        )
    if not node.federation.listen:
        raise CliError("set [federation] listen (and upstreams) in the node's config before joining")
    prepare_join(node, read_root_keys(Path(root_keys)), system_clock())
    _join_request_written(node)
    return 0


def _join_request_written(config: Config) -> None:
    path = config.base_dir / JOIN_REQUEST_FILE
    say(f"join request written to {path}: send it to the federation root (gcn root admit {path.name})")


@federation.command("renew")
@config_option()
@click.option("--force", is_flag=True, help="renew even if not within 30 days of expiry")
def federation_renew(config: str | None, force: bool) -> int:
    """Write a join request to renew the TLS certificate."""
    node = load(config)
    cert_path = node.tls_dir / "cert.pem"
    if not cert_path.exists():
        raise CliError(f"no certificate in {node.tls_dir}: run `gcn federation install` first")
    cert = _read(cert_path, "certificate")
    now = system_clock()
    until = certificate_not_after(cert)
    if not (force or needs_renewal(cert, now)):
        say(
            f"the certificate is valid until {until:%Y-%m-%d}; renewal is due from 30 days before "
            "(use --force to renew now)"
        )
        return 0
    pinned = TrustFiles(node.trust_dir).pinned()
    if not pinned:
        raise CliError(NO_ROOT)
    prepare_join(node, pinned, now)
    say(f"the certificate expires {until:%Y-%m-%d}; a new join request re-admits the node with its keys")
    _join_request_written(node)
    say("then install the new certificate: gcn federation install --cert CERT.pem --ca ca.pem")
    return 0


# -- gcn directory ---------------------------------------------------------------------------


def _accept(config: Config, signed: dir_pb.SignedDirectory) -> int:
    """Verify and adopt `signed` (as the running node would), then report."""
    files = TrustFiles(config.trust_dir)
    if not files.pinned():
        raise CliError(NO_ROOT)
    held = files.held()
    if held is not None and held.SerializeToString() == signed.SerializeToString():
        say(f"this node already holds directory version {parse_directory(held).version}")
        return 0
    serving = _serving(config)
    with open_node(config) as app:
        # A running `gcn serve` is the node's one writer of epochs: it takes the
        # file and rekeys itself. A stopped node's epochs start here, so that its
        # members can have them as soon as it serves.
        directory = app.accept_directory(signed, rekey=not serving)
        holds = app.trust.held_audiences()
        freshness = app.trust.freshness(app.clock())
    if directory is None:
        if freshness.stale:
            say(f"timestamp not newer than the one held, or not for the held version: {freshness.stale}")
        else:
            say(
                f"timestamp taken: directory version {app.trust.version()} "
                f"is current until {freshness.until:%Y-%m-%d %H:%M} UTC"
            )
        return 0
    me = config.node.id
    say(
        f"directory version {directory.version} of {directory.federation} accepted: "
        f"{plural(len(directory.nodes), 'node')}, {plural(len(directory.audiences), 'audience')}, "
        f"valid until {_at(directory.expires_at)}"
    )
    member_of = [x.name for x in directory.audiences if me in x.members]
    say(f"{me} holds the keys of: {', '.join(holds) or 'no audience'}")
    say(f"{me} is a member of: {', '.join(member_of) or 'no audience'}")
    _warn_about_self(config, directory)
    if serving:
        say("the running `gcn serve` of this node takes it within seconds (and starts any new epoch)")
    return 0


def _serving(config: Config) -> bool:
    """Does a `gcn serve` of this node answer on its federation listener now?"""
    listen = config.federation.listen
    if not listen:
        return False
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    wildcard = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - we connect, not bind
    host = wildcard.get(host, host)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


def _warn_about_self(config: Config, directory: dir_pb.Directory) -> None:
    node = find_node(directory, config.node.id)
    if node is None:
        say(f"note: {config.node.id} is not listed in it (admitted after this version was published?)")
    elif node.status == dir_pb.NODE_STATUS_REVOKED:
        say(f"note: {config.node.id} is REVOKED in it since {_at(node.revoked_at)}")
    ca_path = config.tls_dir / "ca.pem"
    if ca_path.exists() and ca_path.read_bytes().strip() != directory.ca_certificate.strip():
        say(f"warning: {ca_path} is not the federation CA this directory names")


def _signed_from_bytes(data: bytes, source: str) -> dir_pb.SignedDirectory:
    try:
        return dir_pb.SignedDirectory.FromString(data)
    except DecodeError as e:
        raise CliError(f"{source} is not a signed directory: {e}") from e


@click.group()
def directory() -> None:
    pass


@directory.command("import")
@config_option()
@click.argument("file")
def directory_import(config: str | None, file: str) -> int:
    """Verify and take a directory file (FILE: a signed directory, from `gcn root publish`)."""
    path = Path(file)
    return _accept(load(config), _signed_from_bytes(_read(path, "directory file"), str(path)))


def _held_directory(config: Config) -> dir_pb.Directory:
    held = TrustFiles(config.trust_dir).held()
    if held is None:
        raise CliError(
            "this node holds no directory yet: "
            "gcn directory import FILE, or gcn directory fetch --from NODE_ID"
        )
    return parse_directory(held)


def _directory_json(config: Config, d: dir_pb.Directory) -> dict[str, Any]:
    me = config.node.id
    return {
        "federation": d.federation,
        "version": int(d.version),
        "issued_at": from_timestamp(d.issued_at).isoformat(),
        "expires_at": from_timestamp(d.expires_at).isoformat(),
        "root_keys": [k.key_id for k in d.root_keys],
        "nodes": [render.as_dict(n) for n in d.nodes],
        "audiences": [render.as_dict(x) for x in d.audiences],
        "held_audiences": sorted(x.name for x in d.audiences if x.holder == me),
    }


def _audiences_table(config: Config, d: dir_pb.Directory) -> Table:
    table = Table(title=f"{len(d.audiences)} audiences")
    for column in ("audience", "holder", "members", config.node.id):
        table.add_column(column, overflow="fold")
    for x in d.audiences:
        mine = "holder" if x.holder == config.node.id else "member" if config.node.id in x.members else ""
        table.add_row(x.name, x.holder, ", ".join(x.members), mine)
    return table


@directory.command("show")
@config_option()
@json_option()
def directory_show(config: str | None, as_json: bool) -> int:
    """Show the directory this node holds."""
    node = load(config)
    d = _held_directory(node)
    if as_json:
        json.dump(_directory_json(node, d), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    say(
        f"directory version {d.version} of {d.federation}: issued {_at(d.issued_at)}, "
        f"expires {_at(d.expires_at)}; root keys {', '.join(k.key_id for k in d.root_keys)}"
    )
    render.console.print(nodes_table(list(d.nodes), plural(len(d.nodes), "node")))
    render.console.print(_audiences_table(node, d))
    return 0


def _peer_endpoint(config: Config, peer: str) -> str:
    held = TrustFiles(config.trust_dir).held()
    node = find_node(parse_directory(held), peer) if held is not None else None
    if node is None or not node.endpoints:
        raise CliError(f"no known endpoint for {peer} (the directory here does not list it): pass --endpoint")
    return str(node.endpoints[0])


def _tls(config: Config) -> TlsMaterial:
    try:
        return TlsMaterial.load(config.tls_dir)
    except OSError as e:
        raise CliError(
            f"no TLS certificate in {config.tls_dir} ({e.strerror}): run `gcn federation install` first"
        ) from e


@directory.command("fetch")
@config_option()
@click.option("--from", "from_node", required=True, metavar="NODE_ID", help="the peer's node id")
@click.option(
    "--endpoint", metavar="HOST:PORT", help="the peer's address (default: its endpoint in the held directory)"
)
def directory_fetch(config: str | None, from_node: str, endpoint: str | None) -> int:
    """Fetch a newer directory from a peer (mutual TLS)."""
    node = load(config)
    peer = from_node.upper()
    endpoint = endpoint or _peer_endpoint(node, peer)
    tls = _tls(node)
    held = TrustFiles(node.trust_dir).held()
    have = parse_directory(held).version if held is not None else 0
    with peer_channel(tls, peer, endpoint) as channel:
        signed = call(sync_stub(channel).GetDirectory, sync_pb2.GetDirectoryRequest(have_version=have))
    if not signed.directory:  # the peer holds nothing newer than our version
        say(f"this node already holds directory version {have}; {peer} has nothing newer")
        return 0
    say(f"fetched the directory from {peer} at {endpoint}")
    return _accept(node, signed)


# -- gcn keys --------------------------------------------------------------------------------


def undelivered(app: NodeApp) -> list[str]:
    """This node's own streams that some peer may hold but, as far as the peers
    last said, none holds all of: after a rotation their envelopes signed by the
    old key would be refused everywhere (no custody from before the rotation)."""
    me = app.config.node.id
    directory = app.trust.directory()
    if directory is None:
        return []
    peers = [p.node_id for p in peers_of(directory, me, app.config.federation.upstream_ids)]
    known = {p: last_known_vector(app, p) for p in peers}
    out = []
    for (origin, audience), head in sorted(app.receiver.local_vector().items()):
        if origin != me or not any(app.sync_source.entitled(p, audience) for p in peers):
            continue
        best = max((known[p].get((origin, audience), 0) for p in peers), default=0)
        if best < head:
            out.append(f"{audience}: {head - best} of {head} envelopes held by no peer yet")
    return out


@click.group()
def keys() -> None:
    pass


@keys.command("rotate")
@config_option()
@click.option(
    "--force",
    is_flag=True,
    help="rotate although own envelopes are not yet held by any peer (they will be refused)",
)
def keys_rotate(config: str | None, force: bool) -> int:
    """Make a new signing key (the root must publish it)."""
    node = load(config)
    with open_node(node) as app:
        waiting = undelivered(app)
        if waiting and not force:
            raise CliError(
                "refusing to rotate: envelopes signed by the current key are not yet held by any peer "
                f"({'; '.join(waiting)}). After a rotation they would be refused everywhere (custody: "
                "docs/trust.md). Let them replicate first (gcn sync status), or pass --force"
            )
        made = app.rotate_signing_key()
        listed = app.signing_keys_for_directory()
    path = node.base_dir / SIGNING_KEYS_FILE
    data = [json_format.MessageToDict(k) for k in listed]
    write_file(path, (json.dumps(data, indent=2) + "\n").encode(), mode=PUBLIC)
    say(f"new signing key {made.signing.key_id}; {len(made.retired)} retired key(s) kept; list in {path}")
    say(
        f"send {SIGNING_KEYS_FILE} to the federation root (gcn root update-keys) — until the new "
        "directory is published, peers refuse envelopes signed with the new key"
    )
    say("a running `gcn serve` of this node must be restarted to sign with the new key")
    return 0
