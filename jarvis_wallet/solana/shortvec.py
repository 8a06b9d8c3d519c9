"""Compact-u16 ("short-vec") lengths, as Solana encodes them.

Seven bits per byte, least significant group first, high bit set on every byte
but the last. Solana's decoder accepts exactly one encoding per value, so this
one refuses the rest: a trailing zero byte (``0x80 0x00`` for 0), values above
0xffff, more than three bytes, and truncation.
"""

from __future__ import annotations

from ..errors import InvalidTransaction

MAX_SHORTVEC_VALUE = 0xFFFF
MAX_SHORTVEC_BYTES = 3


def decode_shortvec(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Decode the compact-u16 at ``offset``; return ``(value, offset after it)``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidTransaction("compact-u16 input must be bytes")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidTransaction("compact-u16 offset must be a non-negative integer")
    value = 0
    for position in range(MAX_SHORTVEC_BYTES):
        index = offset + position
        if index >= len(data):
            raise InvalidTransaction(f"truncated compact-u16 length at byte {offset}")
        byte = data[index]
        if position == MAX_SHORTVEC_BYTES - 1 and byte > 0x03:
            # The third byte carries bits 14-15 only; anything more is over u16.
            raise InvalidTransaction(f"compact-u16 length at byte {offset} is larger than 65535")
        value |= (byte & 0x7F) << (7 * position)
        if not byte & 0x80:
            if position > 0 and byte == 0:
                raise InvalidTransaction(
                    f"non-canonical compact-u16 length at byte {offset} (trailing zero byte)"
                )
            return value, index + 1
    raise AssertionError("unreachable: the third byte never has its high bit set here")


def encode_shortvec(value: int) -> bytes:
    """The canonical compact-u16 encoding of ``value`` (0..65535)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SHORTVEC_VALUE:
        raise InvalidTransaction(f"cannot encode {value!r} as a compact-u16 length (0..65535)")
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)
