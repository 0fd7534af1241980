"""Tests of federation.join: a node's signed request to join the federation.

Mombasa port (KE-MBA) asks to join with its keys and TLS CSR. The request is
signed with its signing key: any field changed afterwards, or a request signed
with another key, is refused; so are malformed or stale requests.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crypto.certs import generate_tls_key, make_csr
from crypto.directory import directory_key, to_timestamp
from crypto.keys import EncryptionKey, SigningKey
from federation.errors import FederationError, JoinError
from federation.join import join_signed_bytes, make_join_request, verify_join_request
from gcn.v1 import directory_pb2 as pb

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SIGNING = SigningKey.generate(NOW - timedelta(days=1))
OTHER = SigningKey.generate(NOW)
ENCRYPTION = EncryptionKey.generate()
TLS_KEY = generate_tls_key()


def request(**overrides: Any) -> pb.JoinRequest:
    fields: dict[str, Any] = {
        "node_id": "KE-MBA",
        "name": "Kenya Revenue Authority, Port of Mombasa",
        "role": "port",
        "country": "KE",
        "region": "ESA",
        "endpoints": ["mba.kra.go.ke:7443"],
        "upstreams": ["KE"],
        "signing": SIGNING,
        "encryption": ENCRYPTION,
        "csr_pem": make_csr(overrides.get("node_id", "KE-MBA"), TLS_KEY),
        "now": NOW,
    }
    fields.update(overrides)
    return make_join_request(**fields)


def test_a_fresh_request_verifies() -> None:
    req = request()
    verify_join_request(req, NOW)
    assert req.signing_key.key_id == SIGNING.key_id
    assert req.encryption_key.key_id == ENCRYPTION.key_id
    assert join_signed_bytes(req).startswith(b"gcn-join-v1\x00")


def test_a_regional_hub_without_country_verifies() -> None:
    verify_join_request(request(node_id="RINEX-ESA", role="regional", country=""), NOW)


def test_a_week_old_request_still_verifies() -> None:
    verify_join_request(request(), NOW + timedelta(days=7))


def set_name(r: pb.JoinRequest) -> None:
    r.name = "Port of Dar es Salaam"


def set_role(r: pb.JoinRequest) -> None:
    r.role = "national"


def add_endpoint(r: pb.JoinRequest) -> None:
    r.endpoints.append("attacker.example:7443")


def swap_csr(r: pb.JoinRequest) -> None:
    r.csr_pem = make_csr("KE-MBA", generate_tls_key())


def swap_encryption_key(r: pb.JoinRequest) -> None:
    other = EncryptionKey.generate()
    r.encryption_key.CopyFrom(directory_key(other.key_id, other.public_raw, NOW))


def backdate(r: pb.JoinRequest) -> None:
    r.created_at.CopyFrom(to_timestamp(NOW - timedelta(hours=1)))


def present_another_signing_key(r: pb.JoinRequest) -> None:
    r.signing_key.CopyFrom(directory_key(OTHER.key_id, OTHER.public_raw, OTHER.not_before))


def resign_with_another_key(r: pb.JoinRequest) -> None:
    r.signature = OTHER.sign(join_signed_bytes(r))


def claim_another_key_id(r: pb.JoinRequest) -> None:
    r.signing_key.key_id = OTHER.key_id


TAMPERED = [
    pytest.param(set_name, "signature does not verify", id="name-changed"),
    pytest.param(set_role, "signature does not verify", id="role-changed"),
    pytest.param(add_endpoint, "signature does not verify", id="endpoint-added"),
    pytest.param(swap_csr, "signature does not verify", id="csr-swapped"),
    pytest.param(swap_encryption_key, "signature does not verify", id="encryption-key-swapped"),
    pytest.param(backdate, "signature does not verify", id="created-at-changed"),
    pytest.param(present_another_signing_key, "signature does not verify", id="wrong-key-presented"),
    pytest.param(resign_with_another_key, "signature does not verify", id="signed-by-another-key"),
    pytest.param(claim_another_key_id, "key id '", id="key-id-not-matching-public-key"),
]


@pytest.mark.parametrize(("tamper", "reason"), TAMPERED)
def test_a_tampered_request_is_refused(tamper: Callable[[pb.JoinRequest], None], reason: str) -> None:
    req = request()
    tamper(req)
    with pytest.raises(JoinError, match=reason):
        verify_join_request(req, NOW)


MALFORMED = [
    pytest.param({"node_id": "ke-mba"}, NOW, "node id 'ke-mba' must be", id="lower-case-node-id"),
    pytest.param({"node_id": "K"}, NOW, "node id 'K' must be", id="one-character-node-id"),
    pytest.param({"role": "customs"}, NOW, "role 'customs' must be one of", id="unknown-role"),
    pytest.param({"country": "XX"}, NOW, "country 'XX' is not an ISO 3166-1", id="not-a-country"),
    pytest.param({"country": "ke"}, NOW, "country 'ke' is not an ISO 3166-1", id="lower-case-country"),
    pytest.param(
        {"role": "national", "country": ""}, NOW, "country '' is not", id="national-without-country"
    ),
    pytest.param(
        {"role": "regional", "region": ""}, NOW, "a regional node must name its region", id="hub-no-region"
    ),
    pytest.param({"region": "east-africa"}, NOW, "region 'east-africa' must be", id="bad-region"),
    pytest.param({"upstreams": ["ke"]}, NOW, "upstreams 'ke' are not node ids", id="bad-upstream"),
    pytest.param({}, NOW + timedelta(days=7, seconds=1), "more than 7 days old", id="stale"),
    pytest.param({}, NOW - timedelta(minutes=6), "is in the future", id="from-the-future"),
    pytest.param({"csr_pem": make_csr("TZ", TLS_KEY)}, NOW, "CSR names CN=TZ", id="csr-for-another-node"),
    pytest.param({"csr_pem": b"garbage"}, NOW, "CSR of KE-MBA does not parse", id="csr-garbage"),
]


@pytest.mark.parametrize(("overrides", "at", "reason"), MALFORMED)
def test_a_malformed_request_is_refused(overrides: dict[str, Any], at: datetime, reason: str) -> None:
    with pytest.raises(JoinError, match=reason):
        verify_join_request(request(**overrides), at)


def test_every_problem_is_reported_at_once() -> None:
    req = request(node_id="x", role="customs")
    req.name = "changed"
    with pytest.raises(JoinError) as caught:
        verify_join_request(req, NOW)
    message = str(caught.value)
    assert "node id 'x'" in message
    assert "role 'customs'" in message
    assert "signature does not verify" in message


def test_join_errors_are_federation_errors() -> None:
    assert issubclass(JoinError, FederationError)
