"""The federation CA and the nodes' TLS certificates (every `cryptography`
x509 call lives here).

Invariants:
- every TLS key, the CA's included, is ECDSA P-256; signatures are SHA-256;
- the CA is self-signed, a CA with path length 0: it issues node certificates
  only, never another CA;
- a node certificate names its node three ways that agree: CN=<node id>, a DNS
  SAN `server_name(node_id)` (what clients check, through
  `grpc.ssl_target_name_override`) and a URI SAN `gcn:node:<node id>` (what
  `node_id_from_certificate` reads: a peer's identity is its certificate, never
  a field it claims in a message);
- it is issued only for a CSR whose own signature verifies and whose CN is the
  node id being admitted, and never outlives the CA;
- `not_before` is backdated 5 minutes so a peer whose clock runs a little
  behind accepts a certificate issued just now.

The officer API has its own, smaller PKI, apart from the federation's: each
node makes a local API CA at `gcn init` (`create_api_ca`) and issues its own
API server certificate from it (`issue_api_certificate`, server auth only, its
SANs the names and addresses officers reach the node by). Officers trust that
CA, not the federation CA, so the API certificate can be re-issued without
touching an officer's workstation.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from crypto.errors import CertificateError

NODE_URI_PREFIX = "gcn:node:"
CLOCK_SKEW = timedelta(minutes=5)


def server_name(node_id: str) -> str:
    """The DNS name in a node's certificate; clients use it as the TLS target name."""
    return f"{node_id.lower()}.gcn"


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise CertificateError("the TLS key PEM does not hold a valid unencrypted private key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CertificateError("TLS keys must be ECDSA P-256")
    return key


def _load_cert(cert_pem: bytes, what: str = "certificate") -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        raise CertificateError(f"the {what} PEM does not parse: {e}") from e


def _common_name(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def generate_tls_key() -> bytes:
    """A new ECDSA P-256 private key, PEM PKCS8 unencrypted."""
    return _key_pem(ec.generate_private_key(ec.SECP256R1()))


def create_ca(federation: str, now: datetime, valid_days: int = 3650) -> tuple[bytes, bytes]:
    """A self-signed federation CA: (certificate PEM, private key PEM)."""
    return _self_signed_ca(f"{federation} federation CA", federation, now, valid_days)


def create_api_ca(node_id: str, now: datetime, valid_days: int = 3650) -> tuple[bytes, bytes]:
    """A node's own officer-API CA: (certificate PEM, private key PEM)."""
    return _self_signed_ca(f"{node_id} officer API CA", f"gcn node {node_id}", now, valid_days)


def _self_signed_ca(
    common_name: str, organisation: str, now: datetime, valid_days: int
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_csr(node_id: str, key_pem: bytes) -> bytes:
    """A CSR for `node_id`: CN=node_id and the DNS SAN `server_name(node_id)`."""
    key = _load_key(key_pem)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_name(node_id))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def check_csr(csr_pem: bytes, node_id: str) -> x509.CertificateSigningRequest:
    """Parse a CSR and check its signature, its CN and its key type."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as e:
        raise CertificateError(f"the CSR of {node_id} does not parse: {e}") from e
    if not csr.is_signature_valid:
        raise CertificateError(f"the CSR of {node_id} is not signed by its own key")
    cn = _common_name(csr.subject)
    if cn != node_id:
        raise CertificateError(f"the CSR names CN={cn}, not the node being admitted ({node_id})")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CertificateError(f"the CSR of {node_id} has a key that is not ECDSA P-256")
    return csr


def issue_node_certificate(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    csr_pem: bytes,
    node_id: str,
    now: datetime,
    valid_days: int = 365,
) -> bytes:
    """Issue `node_id`'s TLS certificate (server and client auth) for its CSR."""
    csr = check_csr(csr_pem, node_id)
    ca_cert = _load_cert(ca_cert_pem, "CA certificate")
    ca_key = _load_key(ca_key_pem)
    if ca_key.public_key() != ca_cert.public_key():
        raise CertificateError("the CA key does not belong to the CA certificate")
    not_after = min(now + timedelta(days=valid_days), ca_cert.not_valid_after_utc)
    san = x509.SubjectAlternativeName(
        [x509.DNSName(server_name(node_id)), x509.UniformResourceIdentifier(NODE_URI_PREFIX + node_id)]
    )
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)]))
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(eku, critical=False)
        .add_extension(san, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _check_issuer(cert: x509.Certificate, ca: x509.Certificate) -> None:
    issuer = f"CN={_common_name(cert.issuer)}"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as e:
        raise CertificateError(f"certificate not issued by this federation (issuer {issuer})") from e


def _node_uri_id(cert: x509.Certificate) -> str:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as e:
        raise CertificateError("certificate has no subject alternative names (no gcn:node: URI)") from e
    ids = [u[len(NODE_URI_PREFIX) :] for u in san.get_values_for_type(x509.UniformResourceIdentifier)]
    ids = [i for i in ids if i]
    if len(ids) != 1:
        raise CertificateError(f"certificate must carry exactly one {NODE_URI_PREFIX} URI (has {len(ids)})")
    return ids[0]


def node_id_from_certificate(cert_pem: bytes, ca_cert_pem: bytes, now: datetime) -> str:
    """The node id a peer's certificate proves, after checking it was issued by
    this federation's CA, is valid at `now`, and names one node."""
    cert = _load_cert(cert_pem)
    _check_issuer(cert, _load_cert(ca_cert_pem, "CA certificate"))
    node_id = _node_uri_id(cert)
    if now < cert.not_valid_before_utc:
        raise CertificateError(
            f"certificate of {node_id} not valid before {cert.not_valid_before_utc.isoformat()}"
        )
    if now >= cert.not_valid_after_utc:
        raise CertificateError(f"certificate of {node_id} expired at {cert.not_valid_after_utc.isoformat()}")
    cn = _common_name(cert.subject)
    if cn != node_id:
        raise CertificateError(f"certificate names CN={cn} but URI {NODE_URI_PREFIX}{node_id}")
    return node_id


def certificate_not_after(cert_pem: bytes) -> datetime:
    return _load_cert(cert_pem).not_valid_after_utc


def needs_renewal(cert_pem: bytes, now: datetime, before: timedelta = timedelta(days=30)) -> bool:
    """True once `now` is within `before` of the certificate's expiry (or past it)."""
    return now >= certificate_not_after(cert_pem) - before


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    try:
        return x509.DNSName(name)
    except ValueError as e:  # not ASCII (an IDN must be given in its xn-- form)
        raise CertificateError(f"{name!r} is neither an IP address nor an ASCII DNS name") from e


def issue_api_certificate(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    key_pem: bytes,
    node_id: str,
    names: Sequence[str],
    now: datetime,
    valid_days: int = 365,
) -> bytes:
    """The officer-API server certificate of `node_id` for the key `key_pem`,
    issued by the node's API CA; `names` (DNS names and IP addresses) become
    its SANs, which is what a client checks."""
    if not names:
        raise CertificateError("an API certificate needs at least one name")
    ca_cert = _load_cert(ca_cert_pem, "API CA certificate")
    ca_key = _load_key(ca_key_pem)
    if ca_key.public_key() != ca_cert.public_key():
        raise CertificateError("the API CA key does not belong to the API CA certificate")
    public = _load_key(key_pem).public_key()
    san = x509.SubjectAlternativeName([_general_name(n) for n in dict.fromkeys(names)])
    not_after = min(now + timedelta(days=valid_days), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_id} officer API")]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(san, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def certificate_names(cert_pem: bytes) -> list[str]:
    """The DNS names and IP addresses a certificate is valid for (its SANs)."""
    try:
        san = _load_cert(cert_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    addresses = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    return [*san.get_values_for_type(x509.DNSName), *addresses]


def check_issued_by(cert_pem: bytes, ca_cert_pem: bytes) -> None:
    """Raise unless `cert_pem` was signed by the CA of `ca_cert_pem`."""
    cert, ca = _load_cert(cert_pem), _load_cert(ca_cert_pem, "CA certificate")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as e:
        raise CertificateError(
            f"certificate (issuer CN={_common_name(cert.issuer)}) not issued by CA "
            f"CN={_common_name(ca.subject)}"
        ) from e


def certificate_key_matches(cert_pem: bytes, key_pem: bytes) -> bool:
    """True when the private key `key_pem` belongs to the certificate."""
    return _load_cert(cert_pem).public_key() == _load_key(key_pem).public_key()


def certificate_fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate's DER in colon-separated hex, as `openssl x509 -fingerprint -sha256`."""
    digest = _load_cert(cert_pem).fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)
