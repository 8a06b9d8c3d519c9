"""Base64 text of a transaction or message, as files and pipes carry it, to bytes.

Apart from the parser so that `jarvis-wallet sign`, which needs only this, starts without
loading the parser (tests/test_exported_members.py keeps it so).
"""

from __future__ import annotations

import base64
import binascii

from ..errors import InvalidTransaction


def decode_base64_input(text: str | bytes) -> bytes:
    """Strict base64 to bytes; whitespace and line breaks anywhere are ignored, so the output of
    `base64` (wrapped at 76 columns) and `base64 -w0` read the same. Non-canonical encodings
    (padding inside, extra padding, stray bits) are still refused."""
    if isinstance(text, str):
        try:
            encoded = text.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidTransaction("base64 input contains non-ASCII characters") from None
    elif isinstance(text, (bytes, bytearray)):
        encoded = bytes(text)
    else:
        raise InvalidTransaction("base64 input must be text")
    encoded = encoded.translate(None, delete=b" \t\r\n\v\f")
    if not encoded:
        raise InvalidTransaction("empty base64 input")
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidTransaction("input is not valid base64") from None
    # One transaction has one spelling: excess padding or non-zero unused bits are refused.
    if base64.b64encode(decoded) != encoded:
        raise InvalidTransaction("input is not canonical base64 (extra padding or stray bits)")
    return decoded
