"""Tests of crypto.audience: epoch keys wrapped for each member.

The region:ESA keyholder starts epoch 3 and wraps its key for Kenya, Tanzania
and Uganda. Each member unwraps its own copy; South Africa, not a member, has
none; and a wrap cannot be replayed as the key of another audience or epoch,
nor altered, without failing to open.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from crypto.audience import KEY_BYTES, MemberKey, build_key_message, new_epoch_key, unwrap_for
from crypto.errors import CryptoError, DecryptionError, KeyUnavailableError
from crypto.keys import EncryptionKey
from gcn.v1 import envelope_pb2 as pb

AUDIENCE = "region:ESA"
EPOCH = 3
MEMBER_KEYS = {node_id: EncryptionKey.generate() for node_id in ("UG", "KE", "TZ")}
MEMBERS = {node_id: MemberKey(k.key_id, k.public_raw) for node_id, k in MEMBER_KEYS.items()}
EPOCH_KEY = new_epoch_key()


def key_message(key: bytes = EPOCH_KEY) -> pb.KeyMessage:
    return build_key_message(AUDIENCE, EPOCH, key, MEMBERS)


def wrap_of(msg: pb.KeyMessage, node_id: str) -> pb.KeyWrap:
    return next(w for w in msg.wraps if w.member == node_id)


def test_new_epoch_keys_are_random_aes_256_keys() -> None:
    a, b = new_epoch_key(), new_epoch_key()

    assert len(a) == len(b) == KEY_BYTES == 32
    assert a != b


def test_every_member_unwraps_the_same_epoch_key() -> None:
    msg = pb.KeyMessage.FromString(key_message().SerializeToString())

    assert (msg.audience, msg.epoch) == (AUDIENCE, EPOCH)
    assert [(w.member, w.encryption_key_id) for w in msg.wraps] == [
        (node_id, MEMBER_KEYS[node_id].key_id) for node_id in ("KE", "TZ", "UG")
    ]
    for node_id, own in MEMBER_KEYS.items():
        assert unwrap_for(msg, node_id, own) == EPOCH_KEY
    assert EPOCH_KEY not in msg.SerializeToString()


def test_each_wrap_is_sealed_afresh() -> None:
    a, b = key_message(), key_message()

    assert len({w.sealed_key for w in a.wraps}) == 3
    assert wrap_of(a, "KE").sealed_key != wrap_of(b, "KE").sealed_key


def test_a_non_member_has_no_wrap() -> None:
    za = EncryptionKey.generate()

    with pytest.raises(KeyUnavailableError) as err:
        unwrap_for(key_message(), "ZA", za)

    assert str(err.value) == f"{AUDIENCE} epoch {EPOCH} has no wrap for ZA key {za.key_id}"


def test_a_member_with_a_new_encryption_key_has_no_wrap_for_it() -> None:
    """Kenya replaced its encryption key after the wraps were made: it must ask for a re-wrap."""
    with pytest.raises(KeyUnavailableError, match="has no wrap for KE key"):
        unwrap_for(key_message(), "KE", EncryptionKey.generate())


def test_a_non_member_using_a_member_name_has_no_wrap() -> None:
    """The wrap is addressed to a node id and a key id: a name alone is not enough."""
    with pytest.raises(KeyUnavailableError):
        unwrap_for(key_message(), "KE", MEMBER_KEYS["TZ"])


def _replay_as_another_audience(msg: pb.KeyMessage) -> None:
    msg.audience = "global"


def _replay_as_another_epoch(msg: pb.KeyMessage) -> None:
    msg.epoch = EPOCH + 1


def _replay_as_an_audience_sharing_a_prefix(msg: pb.KeyMessage) -> None:
    msg.audience = AUDIENCE + "|3"
    msg.epoch = 0


def _corrupt_sealed_key(msg: pb.KeyMessage) -> None:
    wrap = wrap_of(msg, "KE")
    wrap.sealed_key = wrap.sealed_key[:-1] + bytes([wrap.sealed_key[-1] ^ 1])


def _corrupt_encapsulated_key(msg: pb.KeyMessage) -> None:
    wrap = wrap_of(msg, "KE")
    wrap.sealed_key = bytes([wrap.sealed_key[0] ^ 0x80]) + wrap.sealed_key[1:]


def _truncate_sealed_key(msg: pb.KeyMessage) -> None:
    wrap_of(msg, "KE").sealed_key = wrap_of(msg, "KE").sealed_key[:20]


def _empty_sealed_key(msg: pb.KeyMessage) -> None:
    wrap_of(msg, "KE").sealed_key = b""


def _tz_wrap_relabelled_for_ke(msg: pb.KeyMessage) -> None:
    wrap_of(msg, "KE").sealed_key = wrap_of(msg, "TZ").sealed_key


REFUSED_WRAPS = [
    pytest.param(_replay_as_another_audience, id="wrap-replayed-as-another-audience"),
    pytest.param(_replay_as_another_epoch, id="wrap-replayed-as-another-epoch"),
    pytest.param(_replay_as_an_audience_sharing_a_prefix, id="wrap-replayed-with-audience-and-epoch-shifted"),
    pytest.param(_corrupt_sealed_key, id="sealed-key-bit-flipped-in-ciphertext"),
    pytest.param(_corrupt_encapsulated_key, id="sealed-key-bit-flipped-in-encapsulated-key"),
    pytest.param(_truncate_sealed_key, id="sealed-key-truncated"),
    pytest.param(_empty_sealed_key, id="sealed-key-empty"),
    pytest.param(_tz_wrap_relabelled_for_ke, id="another-members-wrap-relabelled"),
]


@pytest.mark.parametrize("tamper", REFUSED_WRAPS)
def test_a_tampered_or_replayed_wrap_does_not_open(tamper: Callable[[pb.KeyMessage], None]) -> None:
    msg = key_message()
    tamper(msg)

    with pytest.raises(DecryptionError) as err:
        unwrap_for(msg, "KE", MEMBER_KEYS["KE"])

    assert type(err.value) is DecryptionError
    assert str(err.value) == f"key wrap for KE in {msg.audience} epoch {msg.epoch} does not open"


def test_other_members_are_unaffected_by_a_corrupted_wrap() -> None:
    msg = key_message()
    _corrupt_sealed_key(msg)

    assert unwrap_for(msg, "TZ", MEMBER_KEYS["TZ"]) == EPOCH_KEY


def test_a_wrapped_key_of_the_wrong_length_is_refused() -> None:
    msg = key_message(key=EPOCH_KEY[:16])

    with pytest.raises(DecryptionError, match="key has the wrong length"):
        unwrap_for(msg, "KE", MEMBER_KEYS["KE"])


def test_errors_are_crypto_errors() -> None:
    assert issubclass(DecryptionError, CryptoError)
    assert issubclass(KeyUnavailableError, CryptoError)
