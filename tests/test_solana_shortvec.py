"""Compact-u16 lengths: canonical encodings only."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jarvis_wallet.errors import InvalidTransaction
from jarvis_wallet.solana import decode_shortvec, encode_shortvec


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (0x7F, b"\x7f"),
        (0x80, b"\x80\x01"),
        (0xFF, b"\xff\x01"),
        (0x100, b"\x80\x02"),
        (0x3FFF, b"\xff\x7f"),
        (0x4000, b"\x80\x80\x01"),
        (0x7FFF, b"\xff\xff\x01"),
        (0xFFFF, b"\xff\xff\x03"),
    ],
)
def test_known_encodings(value: int, encoded: bytes) -> None:
    assert encode_shortvec(value) == encoded
    assert decode_shortvec(encoded, 0) == (value, len(encoded))
    assert decode_shortvec(b"\xaa" + encoded + b"\xbb", 1) == (value, 1 + len(encoded))


@pytest.mark.parametrize(
    ("encoded", "why"),
    [
        (b"", "truncated"),
        (b"\x80", "truncated"),
        (b"\xff\xff", "truncated"),
        (b"\x80\x00", "non-canonical"),
        (b"\xff\x00", "non-canonical"),
        (b"\x80\x80\x00", "non-canonical"),
        (b"\xff\xff\x04", "larger than 65535"),
        (b"\x80\x80\x80", "larger than 65535"),
        (b"\xff\xff\xff\x01", "larger than 65535"),
        (b"\x80\x80\x80\x00", "larger than 65535"),
    ],
)
def test_rejects(encoded: bytes, why: str) -> None:
    with pytest.raises(InvalidTransaction, match=why):
        decode_shortvec(encoded, 0)


@pytest.mark.parametrize("bad", [-1, 0x10000, True, 1.0, "1"])
def test_encode_rejects_out_of_range(bad: object) -> None:
    with pytest.raises(InvalidTransaction):
        encode_shortvec(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("data", "offset"), [(b"\x00", -1), (b"\x00", 5), ("00", 0), (b"\x00", True)])
def test_bad_arguments_are_invalid_transaction(data: object, offset: object) -> None:
    with pytest.raises(InvalidTransaction):
        decode_shortvec(data, offset)  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 0xFFFF))
def test_round_trip(value: int) -> None:
    encoded = encode_shortvec(value)
    assert decode_shortvec(encoded, 0) == (value, len(encoded))


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=4))
def test_decoding_is_the_inverse_of_encoding(data: bytes) -> None:
    """Whatever decodes re-encodes to exactly the bytes consumed: one encoding per value."""
    try:
        value, end = decode_shortvec(data, 0)
    except InvalidTransaction:
        return
    assert encode_shortvec(value) == data[:end]
