"""Base58 (Bitcoin alphabet, as Solana uses it) without the per-digit loop of the ``base58`` package.

Every signature the signer releases is shown in base58, and every address the policy names;
the ``base58`` package divides a big integer by 58 once per output digit (88 times for a
signature) and prepends to a bytes object each time. Here the integer is divided by 58**10
(a machine word) instead, and each word becomes ten digits through a table of two-digit
strings, so a 64-byte signature costs nine big divisions and a few lookups.

Same results as ``base58.b58encode(data).decode("ascii")`` and ``base58.b58decode(text)``,
including their corner cases (leading zero bytes as ``1``, the empty input, trailing whitespace
ignored on decoding); tests/test_b58.py checks both on random inputs.
"""

from __future__ import annotations

import functools

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

_WORD = 58**10  # ten digits; < 2**63
_PAIR = 58 * 58
_DIGIT_VALUES = {digit: index for index, digit in enumerate(ALPHABET)}


@functools.cache
def _pair_tables() -> tuple[tuple[str, ...], dict[str, int]]:
    """Two-digit strings by value (0..3363) and back; built on first use, not at import
    (`jarvis-wallet sign` imports this module and never needs them)."""
    pairs = tuple(a + b for a in ALPHABET for b in ALPHABET)
    return pairs, {pair: value for value, pair in enumerate(pairs)}


def b58encode(data: bytes) -> str:
    """Base58 text of ``data``: each leading zero byte is one ``1``, the rest the number's digits."""
    stripped = data.lstrip(b"\0")
    zeros = len(data) - len(stripped)
    number = int.from_bytes(stripped, "big")
    if not number:
        return "1" * zeros
    pairs = _pair_tables()[0]
    words = []
    while number:
        number, word = divmod(number, _WORD)
        word, p4 = divmod(word, _PAIR)
        word, p3 = divmod(word, _PAIR)
        word, p2 = divmod(word, _PAIR)
        p0, p1 = divmod(word, _PAIR)
        words.append(pairs[p0] + pairs[p1] + pairs[p2] + pairs[p3] + pairs[p4])
    words.reverse()
    return "1" * zeros + "".join(words).lstrip("1")


def b58decode(text: str | bytes) -> bytes:
    """The bytes of base58 ``text`` (trailing whitespace ignored); ValueError on any other character."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).rstrip().decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("Invalid character in base58 text") from None
    else:
        text = text.rstrip()
    digits = text.lstrip("1")
    zeros = len(text) - len(digits)
    number = 0
    pair_values = _pair_tables()[1]
    try:
        start = len(digits) % 2
        if start:
            number = _DIGIT_VALUES[digits[0]]
        for position in range(start, len(digits), 2):
            number = number * _PAIR + pair_values[digits[position : position + 2]]
    except KeyError:
        raise ValueError("Invalid character in base58 text") from None
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")
