"""Off-chain messages, and why they can never be confused with transactions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jarvis_wallet.errors import InvalidTransaction
from jarvis_wallet.solana import (
    build_offchain_message,
    build_transfer_message,
    parse_message,
    parse_offchain_message,
    parse_transaction_input,
)
from jarvis_wallet.solana.offchain import MAX_LENGTH, MAX_LENGTH_LEDGER, SIGNING_DOMAIN

# Vectors from the Solana SDK's own offchain_message tests.
SDK_ASCII = bytes(
    [255, 115, 111, 108, 97, 110, 97, 32, 111, 102, 102, 99, 104, 97, 105, 110, 0, 0, 12, 0]
) + b"Test Message"
SDK_UTF8 = bytes(
    [255, 115, 111, 108, 97, 110, 97, 32, 111, 102, 102, 99, 104, 97, 105, 110, 0, 1, 35, 0]
) + "Тестовое сообщение".encode()


def envelope(body: bytes, message_format: int, *, version: int = 0, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return SIGNING_DOMAIN + bytes([version, message_format]) + size.to_bytes(2, "little") + body


def test_sdk_vectors() -> None:
    assert build_offchain_message("Test Message") == SDK_ASCII
    assert build_offchain_message("Тестовое сообщение") == SDK_UTF8
    ascii_message = parse_offchain_message(SDK_ASCII)
    assert (ascii_message.version, ascii_message.format, ascii_message.text) == (0, 0, "Test Message")
    assert ascii_message.format_name == "restricted_ascii"
    assert ascii_message.serialized == SDK_ASCII
    assert parse_offchain_message(SDK_UTF8).format_name == "limited_utf8"
    assert ascii_message.to_dict() == {"version": 0, "format": "restricted_ascii", "length": 12, "text": "Test Message"}


@pytest.mark.parametrize(
    ("text", "expected_format"),
    [
        ("a", 0),
        (" ~", 0),
        ("x" * MAX_LENGTH_LEDGER, 0),
        ("tab\there", 1),  # control characters are not restricted ASCII
        ("line\n", 1),
        ("é", 1),
        ("é" * (MAX_LENGTH_LEDGER // 2), 1),
        ("x" * (MAX_LENGTH_LEDGER + 1), 2),
        ("x" * MAX_LENGTH, 2),
    ],
)
def test_build_picks_the_smallest_format(text: str, expected_format: int) -> None:
    data = build_offchain_message(text)
    parsed = parse_offchain_message(data)
    assert parsed.format == expected_format
    assert parsed.text == text


@pytest.mark.parametrize("text", ["", "x" * (MAX_LENGTH + 1), "\ud800", b"bytes"])
def test_build_rejects(text: object) -> None:
    with pytest.raises(InvalidTransaction):
        build_offchain_message(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "signing domain"),
        (b"\xffsolana offchaiX\x00\x00\x01\x00a", "signing domain"),
        (SIGNING_DOMAIN, "truncated"),
        (envelope(b"", 0), "truncated or has an empty body"),
        (envelope(b"a", 0, version=1), "version 1"),
        (envelope(b"a", 3), "format 3"),
        (envelope(b"ab", 0, length=1), "says 1 bytes"),
        (envelope(b"a", 0, length=2), "says 2 bytes"),
        (envelope(b"a\x7f", 0), "restricted_ascii"),
        (envelope(b"a\n", 0), "restricted_ascii"),
        (envelope("é".encode(), 0), "restricted_ascii"),
        (envelope(b"x" * (MAX_LENGTH_LEDGER + 1), 0), "restricted_ascii"),
        (envelope(b"x" * (MAX_LENGTH_LEDGER + 1), 1), "limited_utf8"),
        (envelope(b"\xff", 1), "limited_utf8"),
        (envelope(b"\xc3", 2), "extended_utf8"),
        (envelope(b"\xed\xa0\x80", 2), "extended_utf8"),  # an encoded surrogate is not UTF-8
        (envelope(b"x" * (MAX_LENGTH + 1), 2), "extended_utf8"),
        ("text", "bytes"),
    ],
)
def test_parse_rejects(data: bytes, why: str) -> None:
    with pytest.raises(InvalidTransaction, match=why):
        parse_offchain_message(data)


@pytest.mark.parametrize(
    "data",
    [
        envelope(b"ascii in a wider format", 1),
        envelope(b"short", 2),
    ],
)
def test_parse_accepts_wider_formats_as_the_sdk_does(data: bytes) -> None:
    assert parse_offchain_message(data).text.isascii()


def test_limits_match_the_sdk() -> None:
    assert (MAX_LENGTH, MAX_LENGTH_LEDGER) == (65515, 1212)


# -- never confused with transactions ----------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_nothing_with_the_signing_domain_parses_as_a_transaction(tail: bytes) -> None:
    data = SIGNING_DOMAIN + tail
    with pytest.raises(InvalidTransaction):
        parse_transaction_input(data)
    with pytest.raises(InvalidTransaction):
        parse_message(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=600))
def test_any_leading_0xff_is_refused_as_transaction_input(tail: bytes) -> None:
    """The proof in offchain.py: 0xff is never a valid first byte of either shape."""
    with pytest.raises(InvalidTransaction):
        parse_transaction_input(b"\xff" + tail)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_offchain_messages_never_parse_as_transactions(text: str) -> None:
    try:
        data = build_offchain_message(text)
    except InvalidTransaction:
        return
    with pytest.raises(InvalidTransaction):
        parse_transaction_input(data)


def test_transactions_never_parse_as_offchain_messages() -> None:
    key_a, key_b = bytes([1]) * 32, bytes([2]) * 32
    for v0 in (False, True):
        message = build_transfer_message(from_pubkey=key_a, to_pubkey=key_b, lamports=1, recent_blockhash=bytes(32), v0=v0)
        for data in (message, b"\x01" + bytes(64) + message):
            with pytest.raises(InvalidTransaction, match="signing domain"):
                parse_offchain_message(data)
