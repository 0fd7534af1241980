"""A node's request to join the federation, and the root's check of it.

The request carries the node's public keys, its TLS CSR and what the directory
will say about it, signed with the node's Ed25519 signing key: the signature
is the proof that the requester holds that key. It is made over
`JOIN_DOMAIN + request serialized deterministically with `signature` cleared`.

`verify_join_request` checks the form (node id, role, country, region, key ids
derived from the keys, CSR naming the node), the age (made within the last 7
days, at most 5 minutes in the future for clock skew) and the signature, and
reports every problem it finds in one `JoinError`. It does not decide whether
the root admits the node: that is `federation.root`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

import pycountry

from crypto.certs import check_csr
from crypto.detached import verify_detached
from crypto.directory import directory_key, from_timestamp, to_timestamp
from crypto.errors import CertificateError
from crypto.keys import EncryptionKey, SigningKey, key_id_for
from federation.errors import JoinError
from gcn.v1 import directory_pb2 as pb

JOIN_DOMAIN = b"gcn-join-v1\x00"
ROLES = ("national", "port", "regional", "global")
NODE_ID_RE = re.compile(r"[A-Z0-9][A-Z0-9-]{1,62}")
REGION_RE = re.compile(r"[A-Z]{2,8}")
MAX_AGE = timedelta(days=7)
MAX_CLOCK_SKEW = timedelta(minutes=5)


def is_country(code: str) -> bool:
    """An upper-case ISO 3166-1 alpha-2 code."""
    return len(code) == 2 and code.isupper() and pycountry.countries.get(alpha_2=code) is not None


def join_signed_bytes(req: pb.JoinRequest) -> bytes:
    """The bytes a join request's signature covers."""
    unsigned = pb.JoinRequest()
    unsigned.CopyFrom(req)
    unsigned.ClearField("signature")
    return JOIN_DOMAIN + unsigned.SerializeToString(deterministic=True)


def make_join_request(
    *,
    node_id: str,
    name: str,
    role: str,
    country: str,
    region: str,
    endpoints: Sequence[str],
    upstreams: Sequence[str],
    signing: SigningKey,
    encryption: EncryptionKey,
    csr_pem: bytes,
    now: datetime,
) -> pb.JoinRequest:
    req = pb.JoinRequest(
        node_id=node_id,
        name=name,
        role=role,
        country=country,
        region=region,
        endpoints=list(endpoints),
        upstreams=list(upstreams),
        signing_key=directory_key(signing.key_id, signing.public_raw, signing.not_before),
        encryption_key=directory_key(encryption.key_id, encryption.public_raw, now),
        csr_pem=csr_pem,
        created_at=to_timestamp(now),
    )
    req.signature = signing.sign(join_signed_bytes(req))
    return req


def _identity_problems(req: pb.JoinRequest) -> list[str]:
    problems = []
    if not NODE_ID_RE.fullmatch(req.node_id):
        problems.append(f"node id {req.node_id!r} must be 2-63 upper-case letters, digits or '-'")
    if req.role not in ROLES:
        problems.append(f"role {req.role!r} must be one of {', '.join(ROLES)}")
    if req.role in ("national", "port") and not is_country(req.country):
        problems.append(f"country {req.country!r} is not an ISO 3166-1 alpha-2 code (upper case)")
    if req.role == "regional" and not req.region:
        problems.append("a regional node must name its region")
    if req.region and not REGION_RE.fullmatch(req.region):
        problems.append(f"region {req.region!r} must be 2-8 upper-case letters")
    bad_upstreams = [u for u in req.upstreams if not NODE_ID_RE.fullmatch(u)]
    if bad_upstreams:
        problems.append(f"upstreams {', '.join(map(repr, bad_upstreams))} are not node ids")
    return problems


def _key_problems(what: str, key: pb.DirectoryKey) -> list[str]:
    if len(key.public_key) != 32:
        return [f"{what} key must be 32 raw bytes"]
    if key.key_id != key_id_for(key.public_key):
        return [f"{what} key id {key.key_id!r} does not match its public key"]
    return []


def _age_problems(req: pb.JoinRequest, now: datetime) -> list[str]:
    if not req.HasField("created_at"):
        return ["created_at is missing"]
    try:
        created = from_timestamp(req.created_at)
    except (ValueError, OverflowError):
        return ["created_at is not a valid timestamp"]
    if created < now - MAX_AGE:
        return [f"request made at {created.isoformat()} is more than 7 days old"]
    if created > now + MAX_CLOCK_SKEW:
        return [f"request made at {created.isoformat()} is in the future (now {now.isoformat()})"]
    return []


def _csr_problems(req: pb.JoinRequest) -> list[str]:
    try:
        check_csr(req.csr_pem, req.node_id)
    except CertificateError as e:
        return [str(e)]
    return []


def _signature_problems(req: pb.JoinRequest) -> list[str]:
    if not verify_detached(req.signing_key.public_key, join_signed_bytes(req), req.signature):
        return ["signature does not verify under the request's signing key (altered, or another key signed)"]
    return []


def verify_join_request(req: pb.JoinRequest, now: datetime) -> None:
    """Raise `JoinError` listing every problem of `req`; return if it is sound."""
    problems = [
        *_identity_problems(req),
        *_key_problems("signing", req.signing_key),
        *_key_problems("encryption", req.encryption_key),
        *_age_problems(req, now),
        *_csr_problems(req),
        *_signature_problems(req),
    ]
    if problems:
        raise JoinError(f"join request of {req.node_id!r} refused: " + "; ".join(problems))
