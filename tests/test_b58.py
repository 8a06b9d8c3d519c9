"""jarvis_wallet.b58 against the base58 package: the same text and bytes, the same refusals."""

from __future__ import annotations

import base58
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jarvis_wallet import b58


@given(st.binary(max_size=128), st.integers(min_value=0, max_value=4))
def test_encoding_matches_the_base58_package(data: bytes, zeros: int) -> None:
    data = b"\0" * zeros + data
    assert b58.b58encode(data) == base58.b58encode(data).decode("ascii")


@given(st.binary(max_size=128), st.integers(min_value=0, max_value=4), st.sampled_from(["", " ", "\n", " \t\r\n"]))
def test_decoding_round_trips_like_the_base58_package(data: bytes, zeros: int, tail: str) -> None:
    text = base58.b58encode(b"\0" * zeros + data).decode("ascii") + tail
    assert b58.b58decode(text) == base58.b58decode(text) == b"\0" * zeros + data
    assert b58.b58decode(text.encode("ascii")) == base58.b58decode(text.encode("ascii"))


@given(st.text(max_size=60))
def test_decoding_any_text_agrees_with_the_base58_package(text: str) -> None:
    try:
        expected = base58.b58decode(text)
    except ValueError:
        with pytest.raises(ValueError):
            b58.b58decode(text)
    else:
        assert b58.b58decode(text) == expected


@given(st.binary(max_size=60))
def test_decoding_any_bytes_agrees_with_the_base58_package(raw: bytes) -> None:
    try:
        expected = base58.b58decode(raw)
    except ValueError:
        with pytest.raises(ValueError):
            b58.b58decode(raw)
    else:
        assert b58.b58decode(raw) == expected


@pytest.mark.parametrize("text", ["0", "O", "I", "l", "+", "1 1", "\u00e9", "11\x00"])
def test_characters_outside_the_alphabet_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        b58.b58decode(text)


def test_known_vectors() -> None:
    assert b58.b58encode(b"") == "" and b58.b58decode("") == b""
    assert b58.b58encode(b"\0\0") == "11" and b58.b58decode("11") == b"\0\0"
    assert b58.b58encode(bytes(32)) == "1" * 32
    assert b58.b58encode(b"hello world") == "StV1DL6CwTryKyV"
    assert b58.b58decode("11111111111111111111111111111111") == bytes(32)
