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

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

_WORD_DIGITS = 10
_WORD = 58**_WORD_DIGITS  # < 2**63
_PAIRS = tuple(a + b for a in ALPHABET for b in ALPHABET)  # value 0..3363 -> two digits
_PAIR_VALUES = {pair: index for index, pair in enumerate(_PAIRS)}
_DIGIT_VALUES = {digit: index for index, digit in enumerate(ALPHABET)}
_PAIR = 58 * 58
_WORD_PAIRS = _WORD_DIGITS // 2


def _word_text(word: int) -> str:
    """Exactly ten digits (leading ``1``s included) for 0 <= word < 58**10."""
    pairs = _PAIRS
    word, p4 = divmod(word, _PAIR)
    word, p3 = divmod(word, _PAIR)
    word, p2 = divmod(word, _PAIR)
    p0, p1 = divmod(word, _PAIR)
    return pairs[p0] + pairs[p1] + pairs[p2] + pairs[p3] + pairs[p4]


def b58encode(data: bytes) -> str:
    """Base58 text of ``data``: each leading zero byte is one ``1``, the rest the number's digits."""
    stripped = data.lstrip(b"\0")
    zeros = len(data) - len(stripped)
    number = int.from_bytes(stripped, "big")
    if not number:
        return "1" * zeros
    words = []
    while number:
        number, word = divmod(number, _WORD)
        words.append(word)
    words.reverse()
    text = "".join(map(_word_text, words)).lstrip("1")
    return "1" * zeros + text


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
    pair_values = _PAIR_VALUES
    try:
        start = len(digits) % 2
        if start:
            number = _DIGIT_VALUES[digits[0]]
        for position in range(start, len(digits), 2):
            number = number * _PAIR + pair_values[digits[position : position + 2]]
    except KeyError:
        raise ValueError("Invalid character in base58 text") from None
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")
