"""Solana public keys: base58 text for exactly 32 bytes."""

from __future__ import annotations

import functools

from ..b58 import b58decode, b58encode
from ..errors import InvalidPublicKey

PUBKEY_LENGTH = 32


# Pure functions of their arguments; the signer meets the same few keys (its wallet, the
# allow-listed programs, frequent destinations) on every request, and base58 is slow in Python.
@functools.lru_cache(maxsize=4096)
def decode_pubkey(text: str, *, what: str = "public key") -> bytes:
    """Return the 32 bytes of a base58 public key, or raise InvalidPublicKey."""
    if not isinstance(text, str):
        raise InvalidPublicKey(f"invalid {what}: expected base58 text")
    stripped = text.strip()
    shown = stripped if len(stripped) <= 60 else stripped[:57] + "..."
    try:
        raw = b58decode(stripped)
    except (ValueError, UnicodeEncodeError):
        raise InvalidPublicKey(f"invalid {what} {shown!r}: not base58") from None
    if len(raw) != PUBKEY_LENGTH or not stripped:
        raise InvalidPublicKey(
            f"invalid {what} {shown!r}: decodes to {len(raw)} bytes, expected {PUBKEY_LENGTH}"
        )
    return raw


@functools.lru_cache(maxsize=4096)
def encode_pubkey(raw: bytes) -> str:
    """Base58 text of a 32-byte public key."""
    if len(raw) != PUBKEY_LENGTH:
        raise InvalidPublicKey(f"a public key is {PUBKEY_LENGTH} bytes, got {len(raw)}")
    return b58encode(raw)


def normalize_pubkey(text: str, *, what: str = "public key") -> str:
    """Validate base58 public key text and return it in canonical form."""
    return encode_pubkey(decode_pubkey(text, what=what))
