"""`gcn api`: the officer API's TLS on the node's machine — make it for a node
made before TLS (`init`), hand its CA to officers (`ca`), re-issue the server
certificate (`rotate`), show what officers will see (`show`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from node.cli.options import config_option, load
from node.clock import system_clock

if TYPE_CHECKING:
    from node.api.tls import ApiCertificate


def say(text: str) -> None:
    from node.cli import render

    render.say(text)


def _describe(cert: ApiCertificate) -> None:
    say(
        f"certificate {cert.path}, valid until {cert.not_after:%Y-%m-%d %H:%M} UTC, "
        f"for: {', '.join(cert.names)}"
    )


@click.group()
def api() -> None:
    pass


@api.command("init")
@config_option()
def api_init(config: str | None) -> int:
    """Make the API CA and certificate (a node made before TLS)."""
    from node.api.tls import create_api_tls

    node = load(config)
    cert = create_api_tls(node, system_clock())
    _describe(cert)
    ca = node.api_tls_dir / "ca.pem"
    say(f"officers' CLIs trust {ca} (`gcn api ca` prints it); now `gcn serve` starts")
    return 0


@api.command("ca")
@config_option()
def api_ca(config: str | None) -> int:
    """Print the API CA certificate officers' CLIs trust (PEM): the PEM alone
    on stdout (`gcn api ca > ke-api-ca.pem`), its fingerprint on stderr."""
    from crypto.certs import certificate_fingerprint
    from node.api.tls import api_ca_pem

    ca = api_ca_pem(load(config))
    sys.stdout.write(ca.decode())
    print(
        f"gcn: SHA-256 fingerprint {certificate_fingerprint(ca)}: read it to the officer over another "
        "channel; they save the PEM and set GCN_NODE_CA to it",
        file=sys.stderr,
    )
    return 0


@api.command("rotate")
@config_option()
def api_rotate(config: str | None) -> int:
    """A new API key and certificate from the same CA."""
    from node.api.tls import rotate_api_certificate

    cert = rotate_api_certificate(load(config), system_clock())
    _describe(cert)
    say("same CA: officers change nothing; a running node serves it from its next connection on")
    return 0


@api.command("show")
@config_option()
def api_show(config: str | None) -> int:
    """The API certificate's names and expiry, the CA's fingerprint."""
    from crypto.certs import certificate_fingerprint
    from node.api.tls import api_ca_pem, api_certificate

    node = load(config)
    _describe(api_certificate(node))
    say(f"CA {node.api_tls_dir / 'ca.pem'}, SHA-256 {certificate_fingerprint(api_ca_pem(node))}")
    return 0
