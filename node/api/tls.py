"""TLS on the officer API (`NodeService`): the node's files, made at `gcn init`
(or by `gcn api init` for a node made before), re-issued by `gcn api rotate`,
loaded by `gcn serve`.

`[server] tls_dir` (default `api-tls/` under the data dir, mode 0700) holds:

- `ca.pem`: the node's own API CA, what an officer's CLI trusts (`gcn api ca`
  prints it); apart from the federation CA, which officers never need;
- `ca-key.pem` (0600): its key, used only to issue the server certificate;
- `cert.pem`: the server certificate; its SANs are `localhost`, 127.0.0.1,
  ::1, the listen host (the machine's host names when it listens on every
  interface) and `[server] tls_names`;
- `key.pem` (0600): the server certificate's key.

Rotating the server certificate keeps the CA, so officers change nothing.

Plaintext (`[server] tls = "off"`) is for tests and benchmarks: it is allowed
only on a loopback listen address, and a node refuses to start otherwise.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import grpc

from crypto.certs import (
    certificate_key_matches,
    certificate_names,
    certificate_not_after,
    check_issued_by,
    create_api_ca,
    generate_tls_key,
    issue_api_certificate,
)
from crypto.errors import CertificateError
from node.config import Config
from node.errors import ConfigError
from node.logging import get_logger
from node.storage.files import PUBLIC, private_directory, write_file

log = get_logger(__name__)

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
RENEW_BEFORE = timedelta(days=30)
WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]", "*")  # noqa: S104 (we detect them, we do not bind)


def listen_host(listen: str) -> str:
    """The host of a `HOST:PORT` listen address, without IPv6 brackets."""
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_plaintext_listen(listen: str) -> None:
    """Plaintext is refused anywhere but on loopback: officers' tokens would cross the network in clear."""
    if not is_loopback(listen_host(listen)):
        raise ConfigError(
            f"[server] listen {listen} is not a loopback address and [server] tls is off: "
            'the officer API would send tokens and records in clear; set [server] tls = "on" '
            "(or listen on 127.0.0.1)"
        )


def api_names(config: Config) -> list[str]:
    """The SANs of the node's API certificate."""
    names = list(LOOPBACK_NAMES)
    host = listen_host(config.server.listen)
    if host in WILDCARD_HOSTS:
        names += [n for n in (socket.gethostname(), socket.getfqdn()) if n and n.isascii()]
    else:
        names.append(host)
    names += config.server.tls_name_list
    return list(dict.fromkeys(names))


def _read(config: Config, name: str, what: str, *, private: bool = False) -> bytes:
    path = config.api_tls_dir / name
    try:
        mode = path.stat().st_mode
        if private and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"key file {path} is readable by group or others: chmod 600 it")
        return path.read_bytes()
    except FileNotFoundError as e:
        raise ConfigError(
            f"the officer API has no {what} ({path} is missing): for a node made before TLS on the "
            f"officer API run `gcn api init --config {config.base_dir / 'gcn.toml'}`"
        ) from e
    except OSError as e:
        raise ConfigError(f"cannot read the officer API {what} {path}: {e.strerror or e}") from e


@dataclass(frozen=True)
class ApiCertificate:
    """What `gcn api init|rotate|show` report."""

    path: Path
    names: list[str]
    not_after: datetime


def _issue(config: Config, ca_pem: bytes, ca_key_pem: bytes, now: datetime) -> tuple[bytes, bytes]:
    """A new server key and certificate (in memory)."""
    key = generate_tls_key()
    return key, issue_api_certificate(ca_pem, ca_key_pem, key, config.node.id, api_names(config), now)


def _write(config: Config, key: bytes, cert: bytes) -> ApiCertificate:
    directory = config.api_tls_dir
    write_file(directory / KEY_FILE, key)
    write_file(directory / CERT_FILE, cert, mode=PUBLIC)
    return ApiCertificate(directory / CERT_FILE, certificate_names(cert), certificate_not_after(cert))


def create_api_tls(config: Config, now: datetime) -> ApiCertificate:
    """The node's API CA and its first server certificate; refuses to replace
    existing ones. Everything is made before anything is written."""
    directory = config.api_tls_dir
    for name in (CA_FILE, CERT_FILE, KEY_FILE):
        if (directory / name).exists():
            raise ConfigError(
                f"{directory / name} already exists; refusing to replace the officer API's TLS "
                "(`gcn api rotate` re-issues the certificate)"
            )
    ca_pem, ca_key_pem = create_api_ca(config.node.id, now)
    key, cert = _issue(config, ca_pem, ca_key_pem, now)
    private_directory(directory)
    write_file(directory / CA_KEY_FILE, ca_key_pem)
    write_file(directory / CA_FILE, ca_pem, mode=PUBLIC)
    return _write(config, key, cert)


def rotate_api_certificate(config: Config, now: datetime) -> ApiCertificate:
    """A new key and server certificate from the node's API CA (names from the config as it is now)."""
    directory = config.api_tls_dir
    ca_pem = _read(config, CA_FILE, "CA certificate")
    if not (directory / CA_KEY_FILE).exists():
        raise ConfigError(
            f"no API CA key in {directory} (the certificate came from another CA): "
            f"issue a new one there and replace {CERT_FILE} and {KEY_FILE}"
        )
    key, cert = _issue(config, ca_pem, _read(config, CA_KEY_FILE, "CA key", private=True), now)
    return _write(config, key, cert)


def api_ca_pem(config: Config) -> bytes:
    """The certificate officers' clients trust for this node."""
    return _read(config, CA_FILE, "CA certificate")


def api_certificate(config: Config) -> ApiCertificate:
    cert = _read(config, CERT_FILE, "certificate")
    return ApiCertificate(
        config.api_tls_dir / CERT_FILE, certificate_names(cert), certificate_not_after(cert)
    )


def _load_pair(config: Config) -> tuple[bytes, bytes]:
    """The server certificate and its key, checked to belong together."""
    directory = config.api_tls_dir
    cert = _read(config, CERT_FILE, "certificate")
    key = _read(config, KEY_FILE, "key", private=True)
    try:
        matches = certificate_key_matches(cert, key)
    except CertificateError as e:
        raise ConfigError(f"officer API TLS in {directory}: {e}") from e
    if not matches:
        raise ConfigError(f"{directory / KEY_FILE} is not the key of {directory / CERT_FILE}")
    return cert, key


Stamp = tuple[int, int, int, int]
MISSING: Stamp = (-1, -1, -1, -1)
SETTLE_NS = 2_000_000_000  # a pair on disk younger than this may be half-written: not judged yet


def _stamp(config: Config) -> Stamp:
    cert, key = (os.stat(config.api_tls_dir / name) for name in (CERT_FILE, KEY_FILE))
    return cert.st_mtime_ns, cert.st_size, key.st_mtime_ns, key.st_size


class CertificateReloader:
    """gRPC asks it, at each new TLS handshake, whether the certificate changed:
    a certificate re-issued on disk (`gcn api rotate`) is served from the next
    connection on, without a restart. A pair that does not load (a key that is
    not the certificate's, a file half-replaced) is not taken: the previous one
    stays, and the reason is logged once."""

    def __init__(self, config: Config, stamp: Stamp) -> None:
        self._config = config
        self._stamp = stamp
        self._refused: Stamp | None = None
        self._lock = threading.Lock()

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        with self._lock:
            try:
                stamp = _stamp(self._config)
            except OSError as e:
                self._refuse(MISSING, e)
                return None
            if stamp in (self._stamp, self._refused):
                return None
            try:
                cert, key = _load_pair(self._config)
            except ConfigError as e:
                if time.time_ns() - max(stamp[0], stamp[2]) > SETTLE_NS:
                    self._refuse(stamp, e)
                return None  # (just written: `gcn api rotate` may be between its two renames)
            self._stamp, self._refused = stamp, None
        log.info(
            "officer API certificate reloaded",
            names=certificate_names(cert),
            not_after=certificate_not_after(cert).isoformat(),
        )
        return grpc.ssl_server_certificate_configuration([(key, cert)])

    def _refuse(self, stamp: Stamp, error: Exception) -> None:
        if stamp != self._refused:
            self._refused = stamp
            log.warning(
                "officer API certificate on disk not taken: serving the previous one", error=str(error)
            )


def server_credentials(config: Config) -> grpc.ServerCredentials | None:
    """The officer API's TLS credentials, which take a re-issued certificate at
    the next handshake; None for plaintext, which only a loopback listen address
    may have (ConfigError otherwise)."""
    if config.server.tls == "off":
        check_plaintext_listen(config.server.listen)
        return None
    cert, key = _load_pair(config)  # says which file is missing, and what to run
    stamp = _stamp(config)
    return grpc.dynamic_ssl_server_credentials(
        grpc.ssl_server_certificate_configuration([(key, cert)]), CertificateReloader(config, stamp)
    )


def api_tls_warnings(config: Config, now: datetime, renew_before: timedelta = RENEW_BEFORE) -> list[str]:
    """What an operator should fix soon: a certificate near its end, or one the
    CA officers were given does not vouch for."""
    if config.server.tls == "off":
        return []
    cert, ca = _read(config, CERT_FILE, "certificate"), api_ca_pem(config)
    warnings = []
    not_after = certificate_not_after(cert)
    if now >= not_after - renew_before:
        warnings.append(
            f"the officer API certificate expires at {not_after:%Y-%m-%d %H:%M} UTC: run `gcn api rotate`"
        )
    try:
        check_issued_by(cert, ca)
    except CertificateError as e:
        warnings.append(
            f"officers trust {config.api_tls_dir / CA_FILE}, which does not vouch for the "
            f"officer API certificate: {e}"
        )
    return warnings
