"""What a client hands the signer: a full transaction or a bare message.

Two shapes are accepted, as bytes:

* a serialized transaction: compact-u16 signature count, 64 bytes per
  signature slot, then the message. This is what web3.js
  ``serialize({requireAllSignatures: false})`` and solders ``bytes(tx)``
  produce. The count must equal the message's ``num_required_signatures``.
* a bare message: what web3.js ``compileMessage().serialize()`` and solders
  ``bytes(message)`` produce.

Shape detection is deterministic: the input is parsed both ways. Exactly one
must succeed; if both do, the input is refused as ambiguous. Both succeeding
needs bytes built for the purpose (a test builds one), and refusing means that
what the signer signs is never a matter of interpretation: the bytes signed are
always ``message.serialized`` of the one parse that the policy checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InvalidTransaction
from .base64_text import decode_base64_input  # noqa: F401 - its home before base64_text
from .message import Message, _as_bytes, _parse_message_at, parse_message
from .shortvec import decode_shortvec, encode_shortvec

SIGNATURE_LENGTH = 64
# A signature count is at most 127, one compact-u16 byte: a first byte with the high bit set
# is a version prefix (SIMD-0385 v1 transactions start with their message), as the Solana SDK
# reads it. 128 slots (8,192 bytes) could never fit a packet anyway.
MAX_SIGNATURES = 127
PACKET_DATA_SIZE = 1232  # largest transaction the cluster accepts


@dataclass(frozen=True)
class ParsedInput:
    """A parsed transaction or bare message, ready to be checked and signed."""

    message: Message
    signatures: tuple[bytes, ...] = field(repr=False)
    is_full_transaction: bool

    def signing_bytes(self) -> bytes:
        """The exact bytes an Ed25519 signature covers."""
        return self.message.serialized

    def with_signature(self, pubkey: bytes, signature: bytes) -> bytes:
        """The serialized full transaction with ``signature`` in ``pubkey``'s slot.

        Other slots keep what the input carried (all zero for a bare message).
        """
        key = bytes(pubkey) if isinstance(pubkey, (bytes, bytearray)) else None
        if key is None or len(key) != 32:
            raise InvalidTransaction("signer public key must be 32 bytes")
        if not isinstance(signature, (bytes, bytearray)) or len(signature) != SIGNATURE_LENGTH:
            raise InvalidTransaction(f"signature must be {SIGNATURE_LENGTH} bytes")
        signers = self.message.signer_keys
        if key not in signers:
            raise InvalidTransaction("that key is not a required signer of this transaction")
        slot = signers.index(key)
        slots = list(self.signatures) if self.is_full_transaction else [bytes(SIGNATURE_LENGTH)] * len(signers)
        slots[slot] = bytes(signature)
        return encode_shortvec(len(slots)) + b"".join(slots) + self.message.serialized


def _parse_full_transaction(raw: bytes) -> ParsedInput:
    count, offset = decode_shortvec(raw, 0)
    if count == 0:
        raise InvalidTransaction("transaction carries no signature slots")
    if count > MAX_SIGNATURES:
        raise InvalidTransaction(
            f"transaction carries {count} signature slots, more than {MAX_SIGNATURES} "
            "(a first byte of 0x80 or more is a version prefix, not a signature count)"
        )
    end = offset + count * SIGNATURE_LENGTH
    if end > len(raw):
        raise InvalidTransaction(f"truncated transaction: {count} signature slots need {count * SIGNATURE_LENGTH} bytes")
    signatures = tuple(raw[offset + i * SIGNATURE_LENGTH : offset + (i + 1) * SIGNATURE_LENGTH] for i in range(count))
    message, message_end = _parse_message_at(raw, end)
    if message_end != len(raw):
        raise InvalidTransaction(f"{len(raw) - message_end} trailing bytes after the transaction")
    if count != message.num_required_signatures:
        raise InvalidTransaction(
            f"transaction carries {count} signature slots but its message requires "
            f"{message.num_required_signatures}"
        )
    return ParsedInput(message=message, signatures=signatures, is_full_transaction=True)


def parse_transaction_input(data: bytes) -> ParsedInput:
    """Parse a full serialized transaction or a bare message (see the module docstring)."""
    raw = _as_bytes(data)
    if not raw:
        raise InvalidTransaction("empty transaction input")
    full: ParsedInput | None = None
    bare: ParsedInput | None = None
    try:
        full = _parse_full_transaction(raw)
    except InvalidTransaction as exc:
        full_error = exc
    try:
        bare = ParsedInput(message=parse_message(raw), signatures=(), is_full_transaction=False)
    except InvalidTransaction as exc:
        bare_error = exc
    if full is not None and bare is not None:
        raise InvalidTransaction(
            "ambiguous input: it parses both as a transaction and as a bare message; refusing"
        )
    if full is not None:
        return full
    if bare is not None:
        return bare
    raise InvalidTransaction(f"not a transaction ({full_error}) nor a message ({bare_error})")
