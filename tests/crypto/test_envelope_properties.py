"""Property tests of crypto.envelope: any header round trips, any single bit flip is refused,
any header text parses or is malformed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.envelope import (
    open_body,
    parse_header,
    seal,
    verify,
)
from crypto.errors import (
    CryptoError,
    MalformedEnvelopeError,
)
from gcn.v1 import envelope_pb2 as pb
from tests.crypto.envelope_fixtures import (
    ESA_KEY,
    KE,
    NOW,
    PROPERTY_SETTINGS,
    RECORD_KINDS,
    RING,
    copy,
    flip_bit,
    seizure_header,
)

# --- properties -----------------------------------------------------------------------


@st.composite
def headers(draw: st.DrawFn) -> pb.EnvelopeHeader:
    seq = draw(st.integers(min_value=1, max_value=2**63 - 1))
    header = pb.EnvelopeHeader(
        record_id=str(draw(st.uuids())),
        origin="KE",
        audience=draw(st.from_regex(r"[a-zA-Z0-9:+-]{1,40}", fullmatch=True)),
        seq=seq,
        prev_hash=draw(st.binary(min_size=32, max_size=32)) if seq > 1 else b"",
        epoch=draw(st.integers(min_value=1, max_value=2**31 - 1)),
    )
    if draw(st.booleans()):  # version 1: the record's kind and view in clear
        header.kind = draw(st.sampled_from(RECORD_KINDS))
        header.view = draw(st.sampled_from([pb.VIEW_FULL, pb.VIEW_REDACTED, pb.VIEW_STATISTICAL]))
    else:  # version 2: a class only
        header.kind = draw(st.sampled_from([pb.RECORD_KIND_SEALED, pb.RECORD_KIND_SEALED_URGENT]))
    header.created_at.FromDatetime(NOW)
    return header


bodies = st.binary(max_size=4096)


@PROPERTY_SETTINGS
@given(header=headers(), body=bodies)
def test_property_seal_verify_open_round_trips(header: pb.EnvelopeHeader, body: bytes) -> None:
    v = seal(header, body, KE, ESA_KEY)

    wire = pb.Envelope.FromString(v.envelope.SerializeToString())
    checked = verify(wire, RING)

    assert open_body(wire, checked.header, ESA_KEY) == body
    assert checked.header == header
    assert checked.hash == v.hash


@PROPERTY_SETTINGS
@given(
    header=headers(), body=bodies, part=st.sampled_from(["header", "ciphertext", "signature"]), data=st.data()
)
def test_property_any_single_bit_flip_is_refused(
    header: pb.EnvelopeHeader, body: bytes, part: str, data: st.DataObject
) -> None:
    envelope = seal(header, body, KE, ESA_KEY).envelope
    original: bytes = getattr(envelope, part)
    bit = data.draw(st.integers(min_value=0, max_value=len(original) * 8 - 1), label="bit")
    tampered = copy(envelope, **{part: flip_bit(original, bit)})

    # only a CryptoError may escape; anything else fails the test
    with pytest.raises(CryptoError):
        open_body(tampered, verify(tampered, RING).header, ESA_KEY)


OUT_OF_BOUNDS = [
    pytest.param(
        {"record_id": "e3e70682-c209-4cac-629f-6fbed82c07cd-0000"}, "record_id", id="record-id-40-chars"
    ),
    pytest.param(
        {"record_id": "E3E70682-C209-4CAC-629F-6FBED82C07CD"}, "record_id", id="record-id-upper-case"
    ),
    pytest.param(
        {"record_id": "e3e70682-c209-4cac-629f-6fbed82c07cd\n"}, "record_id", id="record-id-newline"
    ),
    pytest.param({"origin": "ke"}, "origin", id="origin-lower-case"),
    pytest.param({"origin": "KE\n"}, "origin", id="origin-newline"),
    pytest.param({"origin": "K" * 64}, "origin", id="origin-too-long"),
    pytest.param({"audience": "global\x1b[2J"}, "audience", id="audience-escape"),
    pytest.param({"audience": "a" * 129}, "audience", id="audience-too-long"),
    pytest.param({"seq": 2**63}, "seq", id="seq-beyond-bigint"),
    pytest.param({"epoch": 2**31}, "epoch", id="epoch-beyond-integer"),
]


@pytest.mark.parametrize(("fields", "named"), OUT_OF_BOUNDS)
def test_a_header_field_out_of_its_grammar_or_column_is_malformed(
    fields: dict[str, object], named: str
) -> None:
    header = seizure_header(**fields)
    env = seal(header, b"body", KE, ESA_KEY).envelope
    with pytest.raises(MalformedEnvelopeError, match=named):
        parse_header(env)


@PROPERTY_SETTINGS
@given(record_id=st.text(max_size=50), origin=st.text(max_size=70), key_id=st.text(max_size=20))
def test_property_any_header_text_parses_or_is_malformed(record_id: str, origin: str, key_id: str) -> None:
    header = seizure_header(record_id=record_id, origin=origin, key_id=key_id)
    env = pb.Envelope(header=header.SerializeToString(), ciphertext=bytes(40), signature=bytes(64))
    try:
        parsed = parse_header(env)
    except MalformedEnvelopeError:
        return
    assert len(parsed.record_id) == 36 and parsed.origin.isupper()
