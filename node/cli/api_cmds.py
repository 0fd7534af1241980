"""`gcn api`: the officer API's TLS on the node's machine — make it for a node
made before TLS (`init`), hand its CA to officers (`ca`), re-issue the server
certificate (`rotate`), show what officers will see (`show`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from crypto.certs import certificate_fingerprint
from node.api.tls import ApiCertificate, api_ca_pem, api_certificate, create_api_tls, rotate_api_certificate
from node.cli.federation_cmds import _add, _config
from node.cli.root_cmds import say
from node.clock import system_clock


def _describe(cert: ApiCertificate) -> None:
    say(
        f"certificate {cert.path}, valid until {cert.not_after:%Y-%m-%d %H:%M} UTC, "
        f"for: {', '.join(cert.names)}"
    )


def cmd_api_init(a: argparse.Namespace) -> int:
    config = _config(a)
    cert = create_api_tls(config, system_clock())
    _describe(cert)
    ca = config.api_tls_dir / "ca.pem"
    say(f"officers' CLIs trust {ca} (`gcn api ca` prints it); now `gcn serve` starts")
    return 0


def cmd_api_ca(a: argparse.Namespace) -> int:
    """The CA PEM alone on stdout (`gcn api ca > ke-api-ca.pem`), its fingerprint on stderr."""
    ca = api_ca_pem(_config(a))
    sys.stdout.write(ca.decode())
    print(
        f"gcn: SHA-256 fingerprint {certificate_fingerprint(ca)}: read it to the officer over another "
        "channel; they save the PEM and set GCN_NODE_CA to it",
        file=sys.stderr,
    )
    return 0


def cmd_api_rotate(a: argparse.Namespace) -> int:
    cert = rotate_api_certificate(_config(a), system_clock())
    _describe(cert)
    say("same CA: officers change nothing; a running node serves it from its next connection on")
    return 0


def cmd_api_show(a: argparse.Namespace) -> int:
    config = _config(a)
    _describe(api_certificate(config))
    say(f"CA {config.api_tls_dir / 'ca.pem'}, SHA-256 {certificate_fingerprint(api_ca_pem(config))}")
    return 0


def register(sub: Any) -> None:
    api = sub.add_parser("api", help="the officer API's TLS: its CA and certificate (local)")
    actions = api.add_subparsers(dest="action", required=True)
    _add(actions, "init", "make the API CA and certificate (a node made before TLS)", cmd_api_init)
    _add(actions, "ca", "print the API CA certificate officers' CLIs trust (PEM)", cmd_api_ca)
    _add(actions, "rotate", "a new API key and certificate from the same CA", cmd_api_rotate)
    _add(actions, "show", "the API certificate's names and expiry, the CA's fingerprint", cmd_api_show)
