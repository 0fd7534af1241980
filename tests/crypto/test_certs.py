"""Tests of crypto.certs: the federation CA and the nodes' TLS certificates.

The gcn-wco root runs a CA; Mombasa port (KE-MBA) sends a CSR and gets a
certificate that proves "KE-MBA" to every peer of the federation. A certificate
from another CA, an expired one, or a CSR naming another node is refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from crypto.certs import (
    certificate_not_after,
    create_ca,
    generate_tls_key,
    issue_node_certificate,
    make_csr,
    needs_renewal,
    node_id_from_certificate,
    server_name,
)
from crypto.detached import signing_key_to_pem
from crypto.errors import CertificateError, CryptoError
from crypto.keys import SigningKey

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CA_CERT, CA_KEY = create_ca("gcn-wco", NOW)
OTHER_CA_CERT, OTHER_CA_KEY = create_ca("other", NOW)
MBA_KEY = generate_tls_key()
MBA_CSR = make_csr("KE-MBA", MBA_KEY)
MBA_CERT = issue_node_certificate(CA_CERT, CA_KEY, MBA_CSR, "KE-MBA", NOW)
ISSUED_ELSEWHERE = issue_node_certificate(OTHER_CA_CERT, OTHER_CA_KEY, MBA_CSR, "KE-MBA", NOW)
EXPIRES = NOW + timedelta(days=365)


def test_server_name_is_the_lower_case_node_id_under_gcn() -> None:
    assert server_name("KE-MBA") == "ke-mba.gcn"


def test_an_issued_certificate_proves_its_node_id() -> None:
    assert node_id_from_certificate(MBA_CERT, CA_CERT, NOW) == "KE-MBA"
    assert certificate_not_after(MBA_CERT) == EXPIRES


def test_a_certificate_is_valid_from_five_minutes_before_issue() -> None:
    assert node_id_from_certificate(MBA_CERT, CA_CERT, NOW - timedelta(minutes=4)) == "KE-MBA"


def test_a_certificate_never_outlives_its_ca() -> None:
    short_ca, short_key = create_ca("gcn-wco", NOW, valid_days=10)
    cert = issue_node_certificate(short_ca, short_key, MBA_CSR, "KE-MBA", NOW, valid_days=365)
    assert certificate_not_after(cert) == certificate_not_after(short_ca)


REFUSED = [
    pytest.param(
        ISSUED_ELSEWHERE,
        CA_CERT,
        NOW,
        "not issued by this federation (issuer CN=other federation CA)",
        id="other-ca",
    ),
    pytest.param(
        MBA_CERT, OTHER_CA_CERT, NOW, "not issued by this federation", id="checked-against-other-ca"
    ),
    pytest.param(MBA_CERT, CA_CERT, EXPIRES, "certificate of KE-MBA expired at 2027-11-28", id="expired"),
    pytest.param(MBA_CERT, CA_CERT, NOW - timedelta(minutes=6), "not valid before", id="not-yet-valid"),
    pytest.param(b"not a certificate", CA_CERT, NOW, "does not parse", id="garbage"),
    pytest.param(CA_CERT, CA_CERT, NOW, "no subject alternative names", id="the-ca-itself"),
]


@pytest.mark.parametrize(("cert", "ca", "at", "reason"), REFUSED)
def test_refused_certificates_say_why(cert: bytes, ca: bytes, at: datetime, reason: str) -> None:
    with pytest.raises(CertificateError, match=re.escape(reason)):
        node_id_from_certificate(cert, ca, at)


BAD_ISSUES = [
    pytest.param(CA_CERT, CA_KEY, make_csr("TZ", MBA_KEY), "CSR names CN=TZ", id="csr-for-another-node"),
    pytest.param(CA_CERT, CA_KEY, b"-----BEGIN CERTIFICATE REQUEST-----", "does not parse", id="garbage-csr"),
    pytest.param(CA_CERT, OTHER_CA_KEY, MBA_CSR, "CA key does not belong", id="ca-key-of-another-ca"),
]


@pytest.mark.parametrize(("ca", "ca_key", "csr", "reason"), BAD_ISSUES)
def test_the_ca_refuses_to_issue(ca: bytes, ca_key: bytes, csr: bytes, reason: str) -> None:
    with pytest.raises(CertificateError, match=reason):
        issue_node_certificate(ca, ca_key, csr, "KE-MBA", NOW)


def test_tls_keys_must_be_ecdsa_p256() -> None:
    ed25519_pem = signing_key_to_pem(SigningKey.generate(NOW))
    with pytest.raises(CertificateError, match="ECDSA P-256"):
        make_csr("KE-MBA", ed25519_pem)


def test_certificate_errors_are_crypto_errors() -> None:
    assert issubclass(CertificateError, CryptoError)


RENEWAL = [
    pytest.param(NOW, timedelta(days=30), False, id="just-issued"),
    pytest.param(EXPIRES - timedelta(days=31), timedelta(days=30), False, id="31-days-left"),
    pytest.param(EXPIRES - timedelta(days=30), timedelta(days=30), True, id="30-days-left"),
    pytest.param(EXPIRES - timedelta(days=60), timedelta(days=90), True, id="inside-a-longer-margin"),
    pytest.param(EXPIRES + timedelta(days=1), timedelta(days=30), True, id="already-expired"),
]


@pytest.mark.parametrize(("at", "before", "expected"), RENEWAL)
def test_needs_renewal(at: datetime, before: timedelta, expected: bool) -> None:
    assert needs_renewal(MBA_CERT, at, before) is expected
