"""Off-chain messages in the envelope of ``solana sign-offchain-message``.

Layout (version 0, as in the Solana SDK ``offchain_message`` module)::

    b"\\xffsolana offchain"   16-byte signing domain
    0x00                     header version
    format                   0 restricted ASCII, 1 limited UTF-8, 2 extended UTF-8
    length                   u16 little-endian, the body's length in bytes
    body                     1..length bytes, nothing after it

Formats 0 and 1 are limited to 1212 bytes (what fits a 1232-byte packet with
the 20-byte header, so Ledger devices can show it); format 2 to 65515 bytes
(u16 maximum less the header). Restricted ASCII means printable 0x20..0x7e.

The leading 0xff can never start a transaction or a message this package
accepts: as a signature count it reads ``0xff 0x73`` = 14847 slots (more than
the 255 a header can require), and as a message it is a version prefix for
version 127. So off-chain messages and transactions cannot be mistaken for
each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InvalidTransaction
from .message import _as_bytes

SIGNING_DOMAIN = b"\xffsolana offchain"
HEADER_VERSION = 0
FORMAT_RESTRICTED_ASCII = 0
FORMAT_LIMITED_UTF8 = 1
FORMAT_EXTENDED_UTF8 = 2
FORMAT_NAMES = {
    FORMAT_RESTRICTED_ASCII: "restricted_ascii",
    FORMAT_LIMITED_UTF8: "limited_utf8",
    FORMAT_EXTENDED_UTF8: "extended_utf8",
}
HEADER_LENGTH = len(SIGNING_DOMAIN) + 1 + 1 + 2  # domain, version, format, length
MAX_LENGTH = 0xFFFF - len(SIGNING_DOMAIN) - 1 - 3  # 65515
MAX_LENGTH_LEDGER = 1232 - len(SIGNING_DOMAIN) - 1 - 3  # 1212


@dataclass(frozen=True)
class OffchainMessage:
    """A parsed off-chain message; ``serialized`` is what gets signed."""

    version: int
    format: int
    body: bytes
    serialized: bytes = field(repr=False)

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES[self.format]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def to_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "format": self.format_name,
            "length": len(self.body),
            "text": self.text,
        }


def _is_printable_ascii(body: bytes) -> bool:
    return all(0x20 <= byte <= 0x7E for byte in body)


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_offchain_message(data: bytes) -> OffchainMessage:
    """Parse a complete serialized off-chain message, or raise InvalidTransaction."""
    raw = _as_bytes(data)
    if not raw.startswith(SIGNING_DOMAIN):
        raise InvalidTransaction("not an off-chain message: missing the '\\xffsolana offchain' signing domain")
    if len(raw) <= HEADER_LENGTH:
        raise InvalidTransaction("off-chain message is truncated or has an empty body")
    version = raw[len(SIGNING_DOMAIN)]
    if version != HEADER_VERSION:
        raise InvalidTransaction(f"unsupported off-chain message version {version}")
    message_format = raw[len(SIGNING_DOMAIN) + 1]
    if message_format not in FORMAT_NAMES:
        raise InvalidTransaction(f"unknown off-chain message format {message_format}")
    length = int.from_bytes(raw[len(SIGNING_DOMAIN) + 2 : HEADER_LENGTH], "little")
    body = raw[HEADER_LENGTH:]
    if length != len(body):
        raise InvalidTransaction(f"off-chain message header says {length} bytes but the body has {len(body)}")
    if message_format == FORMAT_RESTRICTED_ASCII:
        valid = len(body) <= MAX_LENGTH_LEDGER and _is_printable_ascii(body)
    elif message_format == FORMAT_LIMITED_UTF8:
        valid = len(body) <= MAX_LENGTH_LEDGER and _is_utf8(body)
    else:
        valid = len(body) <= MAX_LENGTH and _is_utf8(body)
    if not valid:
        raise InvalidTransaction(
            f"off-chain message body does not fit format {FORMAT_NAMES[message_format]} "
            f"({len(body)} bytes)"
        )
    return OffchainMessage(version=version, format=message_format, body=body, serialized=raw)


def build_offchain_message(text: str) -> bytes:
    """Serialize ``text`` in the smallest format that holds it."""
    if not isinstance(text, str):
        raise InvalidTransaction("off-chain message text must be a string")
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidTransaction("off-chain message text is not valid Unicode") from None
    if not body:
        raise InvalidTransaction("off-chain message must not be empty")
    if len(body) <= MAX_LENGTH_LEDGER:
        message_format = FORMAT_RESTRICTED_ASCII if _is_printable_ascii(body) else FORMAT_LIMITED_UTF8
    elif len(body) <= MAX_LENGTH:
        message_format = FORMAT_EXTENDED_UTF8
    else:
        raise InvalidTransaction(f"off-chain message is {len(body)} bytes, more than {MAX_LENGTH}")
    return (
        SIGNING_DOMAIN
        + bytes([HEADER_VERSION, message_format])
        + len(body).to_bytes(2, "little")
        + body
    )
