"""The signer's wire protocol, version 1: framing, requests, HMAC, freshness, responses.

This module is shared by the signer and every client, so it holds only pure functions of
bytes, values and ``now``; it never imports the server, the database or the key. The normative
text (with a worked example that the tests check against this code) is ``docs/protocol.md``.

Reading a request, in the order the signer applies the checks::

    FrameBuffer.feed(chunk)          -> complete lines       (line_too_long)
    decode_frame(line)               -> dict                 (bad_request, line_too_long)
    is_legacy_request(obj)?          -> the legacy path below
    parse_request(obj)               -> Request              (bad_request, unknown_op, invalid_tx)
    authenticate_request(request,..) -> None                 (auth_failed, stale_request,
                                                              replayed_request)

Errors are ``ProtocolError`` (shape) or ``AuthenticationFailed`` (content); their ``wire_code``
is one of ``ERROR_CODES``. HMAC is checked before freshness and the replay cache, so only a
holder of the secret can make the signer remember anything.

Legacy requests (``{"hmac", "txBase64", "requestId"}`` from the original ``@jarvis/wallet``
agents) are parsed by ``parse_legacy_request`` and answered with ``legacy_ok_response`` /
``legacy_error_response``; they carry no timestamp, so they get no freshness check.
"""

from __future__ import annotations

import base64
import binascii
import hmac as _hmac
import heapq
import json
import math
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import AuthenticationFailed, JarvisWalletError, ProtocolError
from .keys import SharedSecret

PROTOCOL_VERSION = 1

# --- limits ----------------------------------------------------------------------------------

#: Longest line accepted in either direction, in bytes, not counting the terminating b"\n".
#: A maximal request (1,644 base64 characters of transaction plus a 512-character purpose of
#: 4-byte characters, escaped) is under 8 KiB; 64 KiB leaves room without being unbounded.
MAX_LINE_BYTES = 64 * 1024

#: Largest serialized transaction (or message) in bytes: Solana's PACKET_DATA_SIZE.
MAX_TX_BYTES = 1232
MAX_TX_BASE64_CHARS = 4 * ((MAX_TX_BYTES + 2) // 3)

#: Longest ``purpose`` in characters (Unicode code points).
MAX_PURPOSE_CHARS = 512

#: Longest ``message`` for sign_message, in UTF-8 bytes: the most an off-chain message of
#: format 0 or 1 holds (1232-byte packet less the 20-byte header), so Ledger devices can show it.
MAX_MESSAGE_BYTES = 1212

#: Largest timestamp: JavaScript's Number.MAX_SAFE_INTEGER, so JS clients hold it exactly.
MAX_TIMESTAMP_MS = 2**53 - 1

#: How much of an undecodable line is looked at to tell a legacy client from a version 1 one.
_SNIFF_BYTES = 4096

#: Requests are fresh when |now - timestamp| <= this many milliseconds.
DEFAULT_FRESHNESS_WINDOW_MS = 30_000

#: Request ids remembered at once by a ReplayCache before the oldest are forgotten.
DEFAULT_REPLAY_CACHE_ENTRIES = 100_000

#: The first bytes of every HMAC input; binds the MAC to this protocol and version.
HMAC_DOMAIN_PREFIX = b"jarvis-wallet/v1\n"

# --- operations and fields -------------------------------------------------------------------

OP_PING = "ping"
OP_PUBKEY = "pubkey"
OP_STATUS = "status"
OP_SIGN = "sign"
OP_SIGN_MESSAGE = "sign_message"
OP_LOCK = "lock"
OP_UNLOCK = "unlock"
OP_WAIT_FOR_APPROVAL = "wait_for_approval"

OPS = frozenset({OP_PING, OP_PUBKEY, OP_STATUS, OP_SIGN, OP_SIGN_MESSAGE, OP_LOCK, OP_UNLOCK, OP_WAIT_FOR_APPROVAL})
#: Ops that must carry ``hmac`` and ``timestamp``. Others are authenticated when they carry one.
#: ``lock`` needs no secret: anyone allowed on the socket may take the signer's power away.
AUTHENTICATED_OPS = frozenset({OP_STATUS, OP_SIGN, OP_SIGN_MESSAGE, OP_UNLOCK, OP_WAIT_FOR_APPROVAL})

FIELD_OP = "op"
FIELD_REQUEST_ID = "requestId"
FIELD_TIMESTAMP = "timestamp"
FIELD_TX_BASE64 = "txBase64"
FIELD_MESSAGE = "message"
FIELD_PURPOSE = "purpose"
FIELD_HMAC = "hmac"
FIELD_PASSPHRASE = "passphrase"

FIELD_APPROVAL_ID = "approvalId"
FIELD_WAIT_MS = "waitMs"

#: Longest a wait_for_approval request may hold its connection before it is answered.
MAX_WAIT_MS = 60_000

_COMMON_FIELDS = frozenset({FIELD_OP, FIELD_REQUEST_ID, FIELD_TIMESTAMP, FIELD_HMAC})
#: Fields each op accepts; anything else is bad_request.
ALLOWED_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        OP_PING: _COMMON_FIELDS,
        OP_PUBKEY: _COMMON_FIELDS,
        OP_STATUS: _COMMON_FIELDS,
        OP_SIGN: _COMMON_FIELDS | {FIELD_TX_BASE64, FIELD_PURPOSE},
        OP_SIGN_MESSAGE: _COMMON_FIELDS | {FIELD_MESSAGE, FIELD_PURPOSE},
        OP_LOCK: _COMMON_FIELDS,
        OP_UNLOCK: _COMMON_FIELDS | {FIELD_PASSPHRASE},
        OP_WAIT_FOR_APPROVAL: _COMMON_FIELDS | {FIELD_APPROVAL_ID, FIELD_WAIT_MS},
    }
)
#: Fields each op requires (``timestamp`` and ``hmac`` also whenever ``hmac`` is present).
REQUIRED_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        OP_PING: frozenset({FIELD_OP, FIELD_REQUEST_ID}),
        OP_PUBKEY: frozenset({FIELD_OP, FIELD_REQUEST_ID}),
        OP_STATUS: _COMMON_FIELDS,
        OP_SIGN: _COMMON_FIELDS | {FIELD_TX_BASE64},
        OP_SIGN_MESSAGE: _COMMON_FIELDS | {FIELD_MESSAGE},
        OP_LOCK: frozenset({FIELD_OP, FIELD_REQUEST_ID}),
        OP_UNLOCK: _COMMON_FIELDS | {FIELD_PASSPHRASE},
        OP_WAIT_FOR_APPROVAL: _COMMON_FIELDS | {FIELD_APPROVAL_ID},
    }
)
KNOWN_FIELDS = frozenset().union(*ALLOWED_FIELDS.values())

LEGACY_FIELDS = frozenset({FIELD_HMAC, FIELD_TX_BASE64, FIELD_REQUEST_ID})

# --- error codes -----------------------------------------------------------------------------

BAD_REQUEST = "bad_request"
UNKNOWN_OP = "unknown_op"
LINE_TOO_LONG = "line_too_long"
INVALID_TX = "invalid_tx"
AUTH_FAILED = "auth_failed"
STALE_REQUEST = "stale_request"
REPLAYED_REQUEST = "replayed_request"
PEER_NOT_ALLOWED = "peer_not_allowed"
NO_LIMITS = "no_limits"
NOT_A_SIGNER = "not_a_signer"
PROGRAM_NOT_ALLOWED = "program_not_allowed"
OWNERSHIP_CHANGE = "ownership_change"
DURABLE_NONCE_NOT_ALLOWED = "durable_nonce_not_allowed"
PER_TX_LIMIT_EXCEEDED = "per_tx_limit_exceeded"
DAILY_LIMIT_EXCEEDED = "daily_limit_exceeded"
DESTINATION_NOT_ALLOWED = "destination_not_allowed"
# Token refusals (policy.REASONS; solana/token_spend.py decides them). Each message names the mint.
TOKEN_REFUSALS: Mapping[str, str] = MappingProxyType(
    {
        "token_not_registered": "a token instruction moves a mint the operator has not registered "
        "(or names it through a lookup table)",
        "token_mismatch": "a token instruction's program or decimals differ from the registered mint's",
        "token_unchecked_transfer": "a plain Transfer (no mint, no decimals) from an account that is not the "
        "wallet's associated token account of a registered mint, or of a mint registered offline",
        "token_delegation": "Approve/ApproveChecked: a delegate could move the wallet's tokens later",
        "token_authority_change": "SetAuthority: hands control of a token account or mint to another key",
        "token_close_to_other": "closes a token account (or withdraws its lamports) to someone other than the wallet",
        "token_burn": "burns the wallet's tokens",
        "token_mint_to": "uses the wallet as a mint authority",
        "token_freeze": "uses the wallet as a freeze authority",
        "token_multisig": "the wallet is one of a multisig token authority's signers",
        "token_instruction_not_allowed": "any other token instruction in which the wallet is an authority or payer",
        "token_no_limits": "the wallet has no limits for a mint the transaction moves",
        "token_per_tx_limit_exceeded": "the transaction moves more of a mint than its per-transaction ceiling",
        "token_daily_limit_exceeded": "the transaction would exceed a mint's rolling 24-hour ceiling",
    }
)
DATABASE_UNAVAILABLE = "database_unavailable"
BUSY = "busy"
RATE_LIMITED = "rate_limited"
LOCKED = "locked"
BAD_PASSPHRASE = "bad_passphrase"
NOT_FOUND = "not_found"
APPROVAL_REQUIRED = "approval_required"
APPROVAL_DENIED = "approval_denied"
APPROVAL_EXPIRED = "approval_expired"
APPROVAL_CONSUMED = "approval_consumed"
TOO_MANY_PENDING_APPROVALS = "too_many_pending_approvals"
INTERNAL_ERROR = "internal_error"

#: Refusals of a transaction above the wallet's approval threshold (recorded like the policy's).
APPROVAL_REFUSAL_CODES = frozenset(
    {APPROVAL_REQUIRED, APPROVAL_DENIED, APPROVAL_EXPIRED, APPROVAL_CONSUMED, TOO_MANY_PENDING_APPROVALS}
)

#: Every error code the signer may send, with its one-line meaning. Codes are stable: new ones
#: may be added, existing ones never change meaning. Clients treat an unknown code as a refusal.
#: The refusals the spend policy decides (and records), as policy.REASONS names them.
POLICY_REFUSAL_CODES = frozenset(
    {
        NO_LIMITS,
        NOT_A_SIGNER,
        PROGRAM_NOT_ALLOWED,
        OWNERSHIP_CHANGE,
        DURABLE_NONCE_NOT_ALLOWED,
        DESTINATION_NOT_ALLOWED,
        PER_TX_LIMIT_EXCEEDED,
        DAILY_LIMIT_EXCEEDED,
        *TOKEN_REFUSALS,
    }
)

ERROR_CODES: Mapping[str, str] = MappingProxyType(
    {
        BAD_REQUEST: "the frame or request is malformed: not UTF-8/JSON/an object, duplicate "
        "keys, a missing, unknown or wrongly typed field, or a value out of range",
        UNKNOWN_OP: "the op is not one this signer knows",
        LINE_TOO_LONG: "a line exceeded MAX_LINE_BYTES; the signer closes the connection",
        INVALID_TX: "txBase64 is not canonical base64 of 1..1232 bytes, or the bytes are not "
        "a transaction or message the signer can parse completely",
        AUTH_FAILED: "the hmac does not match the request under the shared secret",
        STALE_REQUEST: "the timestamp is outside the freshness window around the signer's clock",
        REPLAYED_REQUEST: "this requestId was already used",
        PEER_NOT_ALLOWED: "the connecting process's uid may not use this signer; sent before "
        "closing the connection",
        NO_LIMITS: "the wallet has no spend limits configured, so nothing new is signed",
        NOT_A_SIGNER: "the transaction does not list the signer's key as a required signer",
        PROGRAM_NOT_ALLOWED: "an instruction passes the wallet to a program outside the allow-list",
        OWNERSHIP_CHANGE: "an instruction would hand the wallet's account, or an account it "
        "controls, to another owner or authority",
        DURABLE_NONCE_NOT_ALLOWED: "the transaction uses a durable nonce (it never expires) whose "
        "account the operator has not registered, or its nonce may answer to a signer other than the wallet",
        PER_TX_LIMIT_EXCEEDED: "the transaction spends more than the per-transaction ceiling",
        DAILY_LIMIT_EXCEEDED: "the transaction would exceed the rolling 24-hour ceiling",
        DESTINATION_NOT_ALLOWED: "a transfer goes to a destination outside the allow-list",
        **TOKEN_REFUSALS,
        DATABASE_UNAVAILABLE: "the database cannot record the decision, so the signer refuses",
        BUSY: "no connection slot freed up within the connection wait; nothing was decided: retry later",
        RATE_LIMITED: "too many of this uid's requests were refused lately; this one was not "
        "decided or recorded; retry later with a new requestId",
        LOCKED: "the signer is locked (its key is not in memory): nothing was decided or recorded; "
        "an operator unlocks it with the keystore's passphrase",
        BAD_PASSPHRASE: "unlock: the passphrase does not open the signer's keystore, or the signer "
        "has no keystore to unlock with",
        NOT_FOUND: "wait_for_approval: no approval request with that approvalId for this signer's wallet",
        APPROVAL_REQUIRED: "the transaction is within the limits but above the approval threshold: it is "
        "held as the pending request in `approval` until an operator approves it; then send the same "
        "intent again (a fresh blockhash is fine)",
        APPROVAL_DENIED: "the operator denied the approval request covering this transaction",
        APPROVAL_EXPIRED: "the approval request covering this transaction expired; send it again to open a new one",
        APPROVAL_CONSUMED: "the approval covering this transaction was already used for a signature; each approval signs once",
        TOO_MANY_PENDING_APPROVALS: "the wallet already has approval_max_pending requests waiting for the operator; "
        "this one was not held: retry once the operator decided some, or they expired",
        INTERNAL_ERROR: "an unexpected failure inside the signer; nothing was signed",
    }
)

#: The three codes an original ``@jarvis/wallet`` client understands.
LEGACY_AUTH_FAILED = "auth_failed"
LEGACY_INVALID_TX = "invalid_tx"
LEGACY_SIGN_ERROR = "sign_error"
_LEGACY_CODE_FOR: Mapping[str, str] = MappingProxyType(
    {
        AUTH_FAILED: LEGACY_AUTH_FAILED,
        STALE_REQUEST: LEGACY_AUTH_FAILED,
        REPLAYED_REQUEST: LEGACY_AUTH_FAILED,
        PEER_NOT_ALLOWED: LEGACY_AUTH_FAILED,
        INVALID_TX: LEGACY_INVALID_TX,
        BAD_REQUEST: LEGACY_INVALID_TX,
        UNKNOWN_OP: LEGACY_INVALID_TX,
        LINE_TOO_LONG: LEGACY_INVALID_TX,
    }
)

Secret = bytes | SharedSecret

# --- framing ---------------------------------------------------------------------------------


# Built once: json.dumps and json.loads with any option build a new encoder or decoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def encode_frame(obj: Mapping[str, Any]) -> bytes:
    """One compact JSON line: ASCII-only (non-ASCII escaped), so encoding can never fail."""
    line = _ENCODER.encode(obj).encode("ascii")
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(
            f"frame of {len(line)} bytes exceeds the {MAX_LINE_BYTES}-byte line limit",
            wire_code=LINE_TOO_LONG,
        )
    return line + b"\n"


class _DuplicateKey(Exception):
    """Raised inside json.loads; turned into ProtocolError outside it."""


class _NonFiniteNumber(Exception):
    """Raised inside json.loads for NaN, Infinity and overflowing floats like 1e999."""


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which duplicate wins; a MAC checked by one and a field read by another
    # would be an attack, so an object with a repeated key means nothing and is refused.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey
    return obj


def _refuse_constant(name: str) -> Any:
    raise _NonFiniteNumber


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NonFiniteNumber
    return number


_DECODER = json.JSONDecoder(
    object_pairs_hook=_refuse_duplicate_keys, parse_constant=_refuse_constant, parse_float=_finite_float
)


def _json_object(text: str) -> tuple[Any, str | None]:
    """Parse JSON text; returns (value, None) or (None, reason) without chaining exceptions."""
    try:
        if text.startswith("\ufeff"):  # json.loads refuses a BOM; JSONDecoder.decode alone would not
            return json.loads(text), None
        return _DECODER.decode(text), None
    except _DuplicateKey:
        return None, "frame has a duplicate key"
    except _NonFiniteNumber:
        return None, "frame has a non-finite number (NaN, Infinity or an overflowing float)"
    except RecursionError:
        return None, "frame is nested too deeply"
    except json.JSONDecodeError as exc:
        return None, f"frame is not valid JSON (line {exc.lineno}, column {exc.colno})"
    except ValueError:  # int() refusing a number of more than 4300 digits
        return None, "frame has a number too large to parse"


def decode_frame(line: bytes) -> dict[str, Any]:
    """The JSON object in one line (its trailing b"\\n" optional), or ProtocolError."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(
            f"line of {len(line)} bytes exceeds the {MAX_LINE_BYTES}-byte limit",
            wire_code=LINE_TOO_LONG,
        )
    common = _COMMON_FRAME.fullmatch(line)
    if common is not None:
        return _common_frame_object(common)
    return _decode_json_frame(line)


def _decode_json_frame(line: bytes) -> dict[str, Any]:
    """decode_frame's JSON parser, for a line within the limit (without its newline)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None:
        raise ProtocolError("frame is not valid UTF-8", wire_code=BAD_REQUEST)
    value, reason = _json_object(text)
    if reason is not None:
        raise ProtocolError(reason, wire_code=BAD_REQUEST)
    if not isinstance(value, dict):
        raise ProtocolError("frame is not a JSON object", wire_code=BAD_REQUEST)
    return value


# The frames our own clients send (build_request's key order, no whitespace, no escapes) read in
# one regular expression instead of the JSON parser. It accepts only text the JSON parser reads
# the same way: each key at most once, strings of printable ASCII other than '"' and '\\' (so
# every character stands for itself), integers in JSON's own spelling. Anything else, valid or
# not, goes to the JSON parser; tests/test_fuzz_protocol.py checks the two agree on every input.
_PLAIN_STRING = rb'"([ !#-\[\]-~]*)"'
_COMMON_FRAME = re.compile(
    rb'\{"op":' + _PLAIN_STRING
    + rb',"requestId":' + _PLAIN_STRING
    + rb'(?:,"timestamp":(0|[1-9][0-9]{0,15}))?'
    + rb'(?:,"txBase64":' + _PLAIN_STRING + rb')?'
    + rb'(?:,"message":' + _PLAIN_STRING + rb')?'
    + rb'(?:,"purpose":' + _PLAIN_STRING + rb')?'
    + rb'(?:,"hmac":' + _PLAIN_STRING + rb')?'
    + rb'\}'
)
_COMMON_FRAME_FIELDS = (
    FIELD_OP, FIELD_REQUEST_ID, FIELD_TIMESTAMP, FIELD_TX_BASE64, FIELD_MESSAGE, FIELD_PURPOSE, FIELD_HMAC
)


def _common_frame_object(match: re.Match[bytes]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, value in zip(_COMMON_FRAME_FIELDS, match.groups()):
        if value is not None:
            obj[name] = int(value) if name == FIELD_TIMESTAMP else value.decode("ascii")
    return obj


class FrameBuffer:
    """Split a byte stream into lines, holding at most MAX_LINE_BYTES of an unfinished one.

    ``feed`` returns the complete lines (without b"\\n") in order. A line longer than the limit,
    finished or not, raises ProtocolError(line_too_long); the stream cannot be resynchronised
    after that, so the connection should be answered once and closed (lines that preceded it in
    the same chunk are dropped with it).
    """

    def __init__(self, *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._max_line_bytes = max_line_bytes
        self._pending = bytearray()
        #: The first bytes of the line that was too long, to tell which dialect to answer in.
        self.overlong_prefix = b""

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unfinished line held so far."""
        return len(self._pending)

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add received bytes; return the lines they complete."""
        # Search only the new bytes: rescanning a long unfinished line on every small chunk
        # would make a client trickling one byte at a time cost quadratic CPU.
        search_from = len(self._pending)
        self._pending += chunk
        lines: list[bytes] = []
        start = 0
        while True:
            end = self._pending.find(b"\n", search_from)
            if end < 0:
                break
            self._check_length(start, end)
            lines.append(bytes(self._pending[start:end]))
            start = search_from = end + 1
        del self._pending[:start]
        self._check_length(0, len(self._pending))
        return lines

    def _check_length(self, start: int, end: int) -> None:
        if end - start > self._max_line_bytes:
            self.overlong_prefix = bytes(self._pending[start:start + _SNIFF_BYTES])
            self._pending.clear()
            raise ProtocolError(
                f"line exceeds the {self._max_line_bytes}-byte limit",
                wire_code=LINE_TOO_LONG,
            )


# --- requests --------------------------------------------------------------------------------

_REQUEST_ID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_LEGACY_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_HMAC_PATTERN = re.compile(r"[0-9a-f]{64}")
# Characters that would let text rewrite a terminal line or reorder what an operator reads.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_MESSAGE_ALLOWED_CONTROLS = frozenset("\n\t")


@dataclass(frozen=True)
class Request:
    """A well-formed v1 request. Presence of optional fields matters: it is part of the HMAC."""

    op: str
    request_id: str
    timestamp_ms: int | None = None
    hmac: str | None = None
    tx_base64: str | None = None
    tx_bytes: bytes | None = field(default=None, repr=False)
    message: str | None = None
    purpose: str | None = None
    passphrase: str | None = field(default=None, repr=False)
    approval_id: int | None = None
    wait_ms: int | None = None

    @property
    def requires_authentication(self) -> bool:
        """Whether the signer must run authenticate_request before acting on it."""
        return self.op in AUTHENTICATED_OPS or self.hmac is not None

    def signed_fields(self) -> dict[str, str | int]:
        """The wire fields the HMAC covers: every field present except ``hmac``."""
        fields: dict[str, str | int] = {FIELD_OP: self.op, FIELD_REQUEST_ID: self.request_id}
        optional = (
            (FIELD_TIMESTAMP, self.timestamp_ms),
            (FIELD_TX_BASE64, self.tx_base64),
            (FIELD_MESSAGE, self.message),
            (FIELD_PURPOSE, self.purpose),
            (FIELD_PASSPHRASE, self.passphrase),
            (FIELD_APPROVAL_ID, self.approval_id),
            (FIELD_WAIT_MS, self.wait_ms),
        )
        for name, value in optional:
            if value is not None:
                fields[name] = value
        return fields

    def to_wire(self) -> dict[str, str | int]:
        """The request as a JSON object, as a client sends it."""
        fields = self.signed_fields()
        if self.hmac is not None:
            fields[FIELD_HMAC] = self.hmac
        return fields


def _shown(value: Any, *, limit: int = 40) -> str:
    """A short, escaped rendering of client-supplied text for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bad_request(message: str) -> ProtocolError:
    return ProtocolError(message, wire_code=BAD_REQUEST)


def is_request_id(value: object) -> bool:
    """Whether ``value`` is a canonical lowercase UUID string (8-4-4-4-12 hex digits)."""
    return isinstance(value, str) and _REQUEST_ID_PATTERN.fullmatch(value) is not None


def _require_str(obj: Mapping[str, Any], name: str) -> str:
    value = obj[name]
    if not isinstance(value, str):
        raise _bad_request(f"field {name!r} must be a string")
    return value


def _parse_request_id(obj: Mapping[str, Any]) -> str:
    value = _require_str(obj, FIELD_REQUEST_ID)
    if not is_request_id(value):
        raise _bad_request(
            "field 'requestId' must be a lowercase UUID like "
            "'3f1c9a52-7b4e-4d0a-9c6f-2e8b5d7a1f03'"
        )
    return value


def _parse_timestamp(obj: Mapping[str, Any]) -> int:
    value = obj[FIELD_TIMESTAMP]
    # bool is a subclass of int in Python; JSON true is not a timestamp.
    if type(value) is not int:
        raise _bad_request("field 'timestamp' must be an integer (milliseconds since the epoch)")
    if not 0 <= value <= MAX_TIMESTAMP_MS:
        raise _bad_request(f"field 'timestamp' must be between 0 and {MAX_TIMESTAMP_MS}")
    return value


def _parse_bounded_int(obj: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = obj[name]
    if type(value) is not int or not low <= value <= high:
        raise _bad_request(f"field {name!r} must be an integer from {low} to {high}")
    return value


def _parse_hmac(obj: Mapping[str, Any]) -> str:
    value = _require_str(obj, FIELD_HMAC)
    if _HMAC_PATTERN.fullmatch(value) is None:
        raise _bad_request("field 'hmac' must be 64 lowercase hexadecimal digits")
    return value


def decode_tx_base64(value: str) -> bytes:
    """The bytes of canonical standard base64 (RFC 4648, padded) of 1..MAX_TX_BYTES bytes.

    Non-canonical spellings (bad padding, stray bits, whitespace, URL-safe alphabet) are refused,
    so one transaction has exactly one txBase64 and the HMAC input is unambiguous.
    """
    if len(value) > MAX_TX_BASE64_CHARS:
        raise ProtocolError(
            f"txBase64 is longer than {MAX_TX_BASE64_CHARS} characters "
            f"({MAX_TX_BYTES} bytes, the largest Solana transaction)",
            wire_code=INVALID_TX,
        )
    raw = _strict_base64(value)
    if raw is None:
        raise ProtocolError("txBase64 is not canonical standard base64", wire_code=INVALID_TX)
    if not raw:
        raise ProtocolError("txBase64 is empty", wire_code=INVALID_TX)
    if len(raw) > MAX_TX_BYTES:
        raise ProtocolError(
            f"txBase64 decodes to {len(raw)} bytes; the largest Solana transaction is "
            f"{MAX_TX_BYTES} bytes",
            wire_code=INVALID_TX,
        )
    return raw


def _strict_base64(value: str) -> bytes | None:
    if not value.isascii():
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if base64.b64encode(raw).decode("ascii") != value:
        return None
    return raw


def _utf8_encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def has_refused_character(value: str, *, allowed: frozenset[str] = frozenset()) -> bool:
    if value.isascii() and value.isprintable():  # U+0020..U+007E: none of them is refused
        return False
    for character in value:
        if character in allowed:
            continue
        if character in _BIDI_CONTROLS:
            return True
        if unicodedata.category(character) in _REFUSED_CATEGORIES:
            return True
    return False


def _parse_purpose(obj: Mapping[str, Any]) -> str:
    value = _require_str(obj, FIELD_PURPOSE)
    if len(value) > MAX_PURPOSE_CHARS:
        raise _bad_request(f"field 'purpose' is longer than {MAX_PURPOSE_CHARS} characters")
    if has_refused_character(value):
        raise _bad_request(
            "field 'purpose' contains control, surrogate, line-separator or bidi characters"
        )
    return value


def _parse_message(obj: Mapping[str, Any]) -> str:
    value = _require_str(obj, FIELD_MESSAGE)
    if not value:
        raise _bad_request("field 'message' is empty")
    if has_refused_character(value, allowed=_MESSAGE_ALLOWED_CONTROLS):
        raise _bad_request(
            "field 'message' contains control (other than tab and newline), surrogate, "
            "line-separator or bidi characters"
        )
    size = len(value.encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        raise _bad_request(f"field 'message' is {size} bytes of UTF-8; at most {MAX_MESSAGE_BYTES}")
    return value


#: Longest ``passphrase`` in UTF-8 bytes (keystore.MAX_PASSPHRASE_BYTES).
MAX_PASSPHRASE_BYTES = 4096


def _parse_passphrase(obj: Mapping[str, Any]) -> str:
    value = _require_str(obj, FIELD_PASSPHRASE)  # never quoted in an error: it is a secret
    if not value or not _utf8_encodable(value) or len(value.encode("utf-8")) > MAX_PASSPHRASE_BYTES:
        raise _bad_request(f"field 'passphrase' must be 1 to {MAX_PASSPHRASE_BYTES} bytes of UTF-8 text")
    return value


def _parse_op(obj: Mapping[str, Any]) -> str:
    if FIELD_OP not in obj:
        raise _bad_request("missing field 'op'")
    op = obj[FIELD_OP]
    if not isinstance(op, str):
        raise _bad_request("field 'op' must be a string")
    if op not in OPS:
        raise ProtocolError(
            f"unknown op {_shown(op)}; known ops: {', '.join(sorted(OPS))}",
            wire_code=UNKNOWN_OP,
        )
    return op


def _check_field_names(obj: Mapping[str, Any], op: str) -> None:
    names = set(obj)
    unknown = sorted(names - KNOWN_FIELDS)
    if unknown:
        shown = ", ".join(_shown(name) for name in unknown[:5])
        raise _bad_request(f"unknown field(s): {shown}")
    not_allowed = sorted(names - ALLOWED_FIELDS[op])
    if not_allowed:
        raise _bad_request(f"field {not_allowed[0]!r} is not allowed for op {op!r}")
    required = set(REQUIRED_FIELDS[op])
    if FIELD_HMAC in names:
        required.add(FIELD_TIMESTAMP)
    missing = sorted(required - names)
    if missing:
        raise _bad_request(f"missing field {missing[0]!r} for op {op!r}")


#: The field lists (in build_request's order) that _parse_common_request reads, and their ops.
_COMMON_SHAPES: Mapping[tuple[str, ...], frozenset[str]] = MappingProxyType(
    {
        (FIELD_OP, FIELD_REQUEST_ID, FIELD_TIMESTAMP, FIELD_TX_BASE64, FIELD_HMAC): frozenset({OP_SIGN}),
        (FIELD_OP, FIELD_REQUEST_ID, FIELD_TIMESTAMP, FIELD_TX_BASE64, FIELD_PURPOSE, FIELD_HMAC): frozenset({OP_SIGN}),
        (FIELD_OP, FIELD_REQUEST_ID, FIELD_TIMESTAMP, FIELD_HMAC): frozenset({OP_PING, OP_PUBKEY, OP_STATUS, OP_LOCK}),
        (FIELD_OP, FIELD_REQUEST_ID): frozenset({OP_PING, OP_PUBKEY, OP_LOCK}),
    }
)


def _parse_common_request(obj: dict[str, Any]) -> Request | None:
    """The requests our own clients send, checked straight through: the Request parse_request
    would return, or None for anything else (another shape, or any check failing), which
    parse_request then reads in full, so every refusal and its message come from one place.
    tests/test_fuzz_protocol.py checks that this never accepts what parse_request would not."""
    ops = _COMMON_SHAPES.get(tuple(obj))
    if ops is None:
        return None
    op = obj[FIELD_OP]
    request_id = obj[FIELD_REQUEST_ID]
    if (
        type(op) is not str or op not in ops
        or type(request_id) is not str or _REQUEST_ID_PATTERN.fullmatch(request_id) is None
    ):
        return None
    if FIELD_HMAC not in obj:
        return Request(op=op, request_id=request_id)
    timestamp_ms = obj[FIELD_TIMESTAMP]
    hmac_hex = obj[FIELD_HMAC]
    if (
        type(timestamp_ms) is not int or not 0 <= timestamp_ms <= MAX_TIMESTAMP_MS
        or type(hmac_hex) is not str or _HMAC_PATTERN.fullmatch(hmac_hex) is None
    ):
        return None
    if op != OP_SIGN:
        return Request(op=op, request_id=request_id, timestamp_ms=timestamp_ms, hmac=hmac_hex)
    purpose = obj.get(FIELD_PURPOSE)
    if FIELD_PURPOSE in obj and (
        type(purpose) is not str or len(purpose) > MAX_PURPOSE_CHARS or has_refused_character(purpose)
    ):
        return None
    tx_base64 = obj[FIELD_TX_BASE64]
    if type(tx_base64) is not str or len(tx_base64) > MAX_TX_BASE64_CHARS:
        return None
    tx_bytes = _strict_base64(tx_base64)
    if not tx_bytes or len(tx_bytes) > MAX_TX_BYTES:
        return None
    return Request(
        op=op, request_id=request_id, timestamp_ms=timestamp_ms, hmac=hmac_hex, tx_base64=tx_base64,
        tx_bytes=tx_bytes, purpose=purpose,
    )


def parse_request(obj: Mapping[str, Any]) -> Request:
    """Validate a decoded v1 request completely and return it typed; ProtocolError otherwise."""
    if type(obj) is dict:
        request = _parse_common_request(obj)
        if request is not None:
            return request
    return _parse_request_in_full(obj)


def _parse_request_in_full(obj: Mapping[str, Any]) -> Request:
    """parse_request for any shape: every check, each refusal with its own message."""
    if not isinstance(obj, Mapping):
        raise _bad_request("request is not a JSON object")
    op = _parse_op(obj)
    _check_field_names(obj, op)
    request_id = _parse_request_id(obj)
    timestamp_ms = _parse_timestamp(obj) if FIELD_TIMESTAMP in obj else None
    hmac_hex = _parse_hmac(obj) if FIELD_HMAC in obj else None
    purpose = _parse_purpose(obj) if FIELD_PURPOSE in obj else None
    tx_base64 = tx_bytes = message = None
    if op == OP_SIGN:
        tx_base64 = _require_str(obj, FIELD_TX_BASE64)
        tx_bytes = decode_tx_base64(tx_base64)
    elif op == OP_SIGN_MESSAGE:
        message = _parse_message(obj)
    passphrase = _parse_passphrase(obj) if op == OP_UNLOCK else None
    approval_id = wait_ms = None
    if op == OP_WAIT_FOR_APPROVAL:
        approval_id = _parse_bounded_int(obj, FIELD_APPROVAL_ID, 1, MAX_TIMESTAMP_MS)
        if FIELD_WAIT_MS in obj:
            wait_ms = _parse_bounded_int(obj, FIELD_WAIT_MS, 0, MAX_WAIT_MS)
    return Request(
        op=op,
        request_id=request_id,
        timestamp_ms=timestamp_ms,
        hmac=hmac_hex,
        tx_base64=tx_base64,
        tx_bytes=tx_bytes,
        message=message,
        purpose=purpose,
        passphrase=passphrase,
        approval_id=approval_id,
        wait_ms=wait_ms,
    )


def request_id_for_reply(obj: object) -> str | None:
    """The requestId to echo in a reply to ``obj``, if it has a well-formed one, else None.

    Used for error replies to requests that failed validation: a malformed id is not echoed.
    """
    if not isinstance(obj, Mapping):
        return None
    value = obj.get(FIELD_REQUEST_ID)
    if is_request_id(value):
        return value
    if is_legacy_request(obj) and isinstance(value, str):
        if _LEGACY_REQUEST_ID_PATTERN.fullmatch(value):
            return value
    return None


def new_request_id() -> str:
    """A fresh random requestId (UUID version 4, canonical lowercase)."""
    return str(uuid.uuid4())


def current_time_ms() -> int:
    """Milliseconds since the Unix epoch, the unit of ``timestamp``."""
    return time.time_ns() // 1_000_000


# --- HMAC ------------------------------------------------------------------------------------


def _secret_bytes(secret: Secret) -> bytes:
    if isinstance(secret, SharedSecret):
        return secret.value
    if isinstance(secret, (bytes, bytearray)):
        return bytes(secret)
    raise TypeError("the shared secret must be bytes or a SharedSecret")


def _netstring(data: bytes) -> bytes:
    return str(len(data)).encode("ascii") + b":" + data + b","


def _field_value_bytes(name: str, value: object) -> bytes:
    if type(value) is int:
        return str(value).encode("ascii")
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            pass
        raise _bad_request(f"field {name!r} is not valid Unicode text")
    raise _bad_request(f"field {name!r} must be a string or an integer")


# The request's own field names, in the canonical order (ascending UTF-8 bytes), as netstrings.
_NAME_NETSTRINGS = {name: _netstring(name.encode("utf-8")) for name in sorted(KNOWN_FIELDS - {FIELD_HMAC})}
_KNOWN_NAMES = frozenset(KNOWN_FIELDS)


def canonical_hmac_input(fields: Mapping[str, Any]) -> bytes:
    """The bytes the request HMAC covers.

    ``b"jarvis-wallet/v1\\n"`` then, for each field except ``hmac`` in ascending byte order
    of its UTF-8 name, ``<len>:<name>,<len>:<value>,`` where lengths are decimal byte counts and
    a value is its UTF-8 text (strings) or decimal digits (integers). Length prefixes make
    every field boundary explicit, so no two different requests share an input.
    """
    parts = [HMAC_DOMAIN_PREFIX]
    if fields.keys() <= _KNOWN_NAMES:  # every name is one of ours: their order is known
        for name, encoded_name in _NAME_NETSTRINGS.items():
            if name in fields:
                value = _field_value_bytes(name, fields[name])
                parts.append(encoded_name)
                parts.append(b"%d:%b," % (len(value), value))
        return b"".join(parts)
    encoded_names = []
    for name in fields:
        if name == FIELD_HMAC:
            continue
        if not isinstance(name, str) or not _utf8_encodable(name):
            raise _bad_request("field names must be valid Unicode text")
        encoded_names.append((name.encode("utf-8"), name))
    for encoded_name, name in sorted(encoded_names):
        parts.append(_netstring(encoded_name))
        parts.append(_netstring(_field_value_bytes(name, fields[name])))
    return b"".join(parts)


def compute_hmac(secret: Secret, fields: Mapping[str, Any]) -> str:
    """Lowercase hex HMAC-SHA256 of ``canonical_hmac_input(fields)`` (``hmac`` is ignored)."""
    return _hmac.digest(_secret_bytes(secret), canonical_hmac_input(fields), "sha256").hex()


def sign_request(secret: Secret, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``fields`` with its ``hmac`` added (replacing any already there)."""
    signed = {name: value for name, value in fields.items() if name != FIELD_HMAC}
    signed[FIELD_HMAC] = compute_hmac(secret, signed)
    return signed


def build_request(
    secret: Secret | None,
    *,
    op: str,
    request_id: str | None = None,
    timestamp_ms: int | None = None,
    tx_base64: str | None = None,
    message: str | None = None,
    purpose: str | None = None,
    passphrase: str | None = None,
    approval_id: int | None = None,
    wait_ms: int | None = None,
) -> dict[str, Any]:
    """A complete request object for a client to send: id, timestamp and hmac filled in.

    With ``secret=None`` (only sensible for ping and pubkey) no timestamp or hmac is added.
    The result is checked with parse_request, so a client cannot send what the signer refuses.
    """
    if secret is not None and timestamp_ms is None:
        timestamp_ms = current_time_ms()
    candidates = (
        (FIELD_OP, op),
        (FIELD_REQUEST_ID, request_id if request_id is not None else new_request_id()),
        (FIELD_TIMESTAMP, timestamp_ms),
        (FIELD_TX_BASE64, tx_base64),
        (FIELD_MESSAGE, message),
        (FIELD_PURPOSE, purpose),
        (FIELD_PASSPHRASE, passphrase),
        (FIELD_APPROVAL_ID, approval_id),
        (FIELD_WAIT_MS, wait_ms),
    )
    fields: dict[str, Any] = {name: value for name, value in candidates if value is not None}
    if secret is not None:
        fields = sign_request(secret, fields)
    parse_request(fields)
    return fields


def verify_request_hmac(secret: Secret, request: Request | Mapping[str, Any]) -> None:
    """Check the request's hmac in constant time; AuthenticationFailed if absent or wrong."""
    if isinstance(request, Request):
        given, fields = request.hmac, request.signed_fields()
    else:
        given, fields = request.get(FIELD_HMAC), request
    if not isinstance(given, str) or _HMAC_PATTERN.fullmatch(given) is None:
        raise AuthenticationFailed("request has no valid hmac", wire_code=AUTH_FAILED)
    expected = _hmac.digest(_secret_bytes(secret), canonical_hmac_input(fields), "sha256")
    if not _hmac.compare_digest(expected, bytes.fromhex(given)):
        raise AuthenticationFailed(
            "hmac does not match the request; check the shared secret", wire_code=AUTH_FAILED
        )


# --- freshness and replay --------------------------------------------------------------------


def check_freshness(
    timestamp_ms: int, now_ms: int, window_ms: int = DEFAULT_FRESHNESS_WINDOW_MS
) -> None:
    """Refuse (stale_request) a timestamp more than ``window_ms`` before or after ``now_ms``."""
    skew_ms = now_ms - timestamp_ms
    if abs(skew_ms) <= window_ms:
        return
    direction = "behind" if skew_ms > 0 else "ahead of"
    raise AuthenticationFailed(
        f"request timestamp is {abs(skew_ms) / 1000:.1f} s {direction} the signer's clock "
        f"(allowed: {window_ms / 1000:g} s); check the client's clock",
        wire_code=STALE_REQUEST,
    )


class ReplayCache:
    """Remembers request ids so each is accepted once; bounded in time and in memory.

    An id is kept while its request's timestamp is within ``window_ms`` of now. After that,
    freshness refuses the timestamp anyway, so forgetting the id is safe.

    Ids are kept in one small set per second of timestamp, and a second's set is dropped whole
    once every timestamp it could hold is stale (so an id may be kept up to a second longer).
    One large table resized and freed over and over fragmented the heap: the signer's resident
    memory crept up under sustained load (docs/reliability.md, finding 9). A lookup asks each
    second's set, about ``window_ms / 500`` of them at most.

    Memory is capped at ``max_entries``. When full, the oldest second is forgotten early.
    Whenever a second is forgotten (expired or evicted) the cache raises its *low-water mark*
    to that second's last millisecond and from then on refuses, as stale, any request whose
    timestamp is not above the mark. So a forgotten id can never be accepted again, whatever
    the clock does (a step forward then back expires ids early; the mark still refuses them).
    Under a flood the effective window shrinks instead of the signer stopping, and only
    holders of the secret can fill the cache (HMAC is checked first). The signer keeps one
    cache per peer uid, so a flood of far-future ids moves only that uid's mark. The
    database's unique request id is the durable second line (and holds across uids).
    """

    def __init__(
        self,
        window_ms: int = DEFAULT_FRESHNESS_WINDOW_MS,
        *,
        max_entries: int = DEFAULT_REPLAY_CACHE_ENTRIES,
    ) -> None:
        if window_ms < 0 or max_entries < 1:
            raise ValueError("window_ms must be >= 0 and max_entries >= 1")
        self.window_ms = window_ms
        self.max_entries = max_entries
        self._ids_by_second: dict[int, set[str]] = {}
        self._seconds: list[int] = []  # min-heap of the keys of _ids_by_second
        self._size = 0
        self._low_water_ms = -1  # timestamps <= this are refused
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    @property
    def low_water_ms(self) -> int:
        """Timestamps at or below this are refused: ids that old may have been forgotten."""
        return self._low_water_ms

    @property
    def seconds_held(self) -> int:
        """How many one-second sets the cache holds now."""
        return len(self._seconds)

    def check_and_remember(self, request_id: str, timestamp_ms: int, now_ms: int) -> None:
        """Accept ``request_id`` once; stale_request or replayed_request otherwise."""
        second = timestamp_ms // 1000
        with self._lock:
            self._expire(now_ms)
            if timestamp_ms <= self._low_water_ms:
                raise self._too_old()
            for ids in self._ids_by_second.values():  # a loop, not any(...): no generator per request
                if request_id in ids:
                    raise AuthenticationFailed(
                        "requestId was already used; send a new one", wire_code=REPLAYED_REQUEST
                    )
            if self._size >= self.max_entries:
                if second <= self._seconds[0]:  # room only by forgetting this very second
                    raise self._too_old()
                self._forget_oldest_second()
            ids = self._ids_by_second.get(second)
            if ids is None:
                ids = self._ids_by_second[second] = set()
                heapq.heappush(self._seconds, second)
            ids.add(request_id)
            self._size += 1

    def _expire(self, now_ms: int) -> None:
        horizon_ms = now_ms - self.window_ms
        while self._seconds and _last_ms_of(self._seconds[0]) < horizon_ms:
            self._forget_oldest_second()

    def _forget_oldest_second(self) -> None:
        second = heapq.heappop(self._seconds)
        self._size -= len(self._ids_by_second.pop(second))
        self._low_water_ms = max(self._low_water_ms, _last_ms_of(second))

    @staticmethod
    def _too_old() -> AuthenticationFailed:
        return AuthenticationFailed(
            "request timestamp is older than the signer's replay memory; retry with a new "
            "requestId and the current time",
            wire_code=STALE_REQUEST,
        )


def _last_ms_of(second: int) -> int:
    return second * 1000 + 999


def authenticate_request(
    request: Request, *, secret: Secret, now_ms: int, replay_cache: ReplayCache
) -> None:
    """All checks invariant 6 asks for, in a safe order: HMAC, then freshness, then replay.

    The freshness window is the replay cache's, so the two can never disagree.
    """
    verify_request_hmac(secret, request)
    if request.timestamp_ms is None:
        raise AuthenticationFailed("request has no timestamp", wire_code=AUTH_FAILED)
    check_freshness(request.timestamp_ms, now_ms, replay_cache.window_ms)
    replay_cache.check_and_remember(request.request_id, request.timestamp_ms, now_ms)


# --- responses -------------------------------------------------------------------------------

_RESERVED_RESPONSE_FIELDS = frozenset({FIELD_REQUEST_ID, "ok", "error"})


def ok_response(request_id: str | None, **fields: Any) -> dict[str, Any]:
    """``{"requestId", "ok": true, **fields}``; field names are camelCase wire names."""
    reserved = _RESERVED_RESPONSE_FIELDS.intersection(fields)
    if reserved:
        raise ValueError(f"response fields may not be named {sorted(reserved)}")
    return {FIELD_REQUEST_ID: request_id, "ok": True, **fields}


def error_response(request_id: str | None, code: str, message: str) -> dict[str, Any]:
    """``{"requestId", "ok": false, "error": {"code", "message"}}``."""
    return {FIELD_REQUEST_ID: request_id, "ok": False, "error": {"code": code, "message": message}}


def error_response_for(request_id: str | None, error: JarvisWalletError) -> dict[str, Any]:
    """The error response for one of our exceptions: its wire code and user-facing message."""
    return error_response(request_id, error.wire_code, error.message)


def approval_required_response(
    request_id: str | None, message: str, *, approval_id: int, expires_at: str, wallet: str,
    lamports: int, fee_lamports: int, payments: list, purpose: str | None,
) -> dict[str, Any]:
    """An ``approval_required`` refusal: the error, and the held request in ``approval`` (what
    was decoded, so an agent can tell its user what waits for the operator)."""
    response = error_response(request_id, APPROVAL_REQUIRED, message)
    response["approval"] = {
        "approvalId": approval_id,
        "expiresAt": expires_at,
        "wallet": wallet,
        "lamports": lamports,
        "feeLamports": fee_lamports,
        "destinations": list(dict.fromkeys(p["destination_label"] for p in payments)),
        "payments": [
            {"instructionIndex": p["instruction_index"], "kind": p["kind"], "destination": p["destination_label"],
             "lamports": p["lamports"]}
            for p in payments
        ],
        "purpose": purpose,
    }
    return response


# --- legacy mode (the original @jarvis/wallet agents) ----------------------------------------


@dataclass(frozen=True)
class LegacyRequest:
    """``{"hmac", "txBase64", "requestId"}``: HMAC over txBase64 only, no timestamp, no op."""

    request_id: str
    tx_base64: str
    tx_bytes: bytes = field(repr=False)
    hmac: str


def is_legacy_request(obj: object) -> bool:
    """Whether ``obj`` is shaped like an original-design request (no ``op``, has ``txBase64``)."""
    return isinstance(obj, Mapping) and FIELD_OP not in obj and FIELD_TX_BASE64 in obj


def legacy_shaped(line: bytes) -> bool:
    """Whether a line, even one that does not decode, comes from an original-design client.

    A line that decodes is legacy-shaped exactly when ``is_legacy_request`` says so. One that
    does not (too long, not UTF-8, not JSON) is judged by its bytes: it names ``txBase64`` and
    never ``op``. A legacy request's values (base64, hex, ``[A-Za-z0-9._:-]``) cannot hold a
    quote, so neither name can appear inside one.
    """
    try:
        return is_legacy_request(decode_frame(line))
    except ProtocolError:
        head = line[:_SNIFF_BYTES]
        return b'"txBase64"' in head and b'"op"' not in head


def connection_refusal(
    first_line: bytes, code: str, message: str, *, legacy_mode: bool, echo_request_id: bool
) -> dict[str, Any]:
    """The one reply to a connection the signer turns away (busy, peer_not_allowed) or cuts
    off (line_too_long), after reading its first line: in the legacy envelope when legacy mode
    is on and that line is legacy-shaped, else in the version 1 envelope.

    ``echo_request_id``: answer with the line's requestId when it is well formed (a refusal of
    an allowed peer); otherwise ``null``.
    """
    request_id = None
    if echo_request_id:
        try:
            request_id = request_id_for_reply(decode_frame(first_line))
        except ProtocolError:
            request_id = None
    if legacy_mode and legacy_shaped(first_line):
        return legacy_error_response(request_id, code, message)
    return error_response(request_id, code, message)


def parse_legacy_request(obj: Mapping[str, Any]) -> LegacyRequest:
    """Validate a legacy request: exactly hmac, txBase64 and requestId, strictly typed."""
    names = set(obj)
    if names != LEGACY_FIELDS:
        extra, missing = sorted(names - LEGACY_FIELDS), sorted(LEGACY_FIELDS - names)
        problem = f"unknown field {_shown(extra[0])}" if extra else f"missing field {missing[0]!r}"
        raise _bad_request(f"legacy request: {problem}")
    request_id = _require_str(obj, FIELD_REQUEST_ID)
    if _LEGACY_REQUEST_ID_PATTERN.fullmatch(request_id) is None:
        raise _bad_request(
            "legacy request: 'requestId' must be 1 to 64 characters of A-Z a-z 0-9 . _ : -"
        )
    hmac_hex = _parse_hmac(obj)
    tx_base64 = _require_str(obj, FIELD_TX_BASE64)
    tx_bytes = decode_tx_base64(tx_base64)
    return LegacyRequest(
        request_id=request_id, tx_base64=tx_base64, tx_bytes=tx_bytes, hmac=hmac_hex
    )


def compute_legacy_hmac(secret: Secret, tx_base64: str) -> str:
    """Hex HMAC-SHA256 of the txBase64 text, keyed by the secret: the original design's MAC."""
    return _hmac.digest(_secret_bytes(secret), tx_base64.encode("utf-8"), "sha256").hex()


def verify_legacy_hmac(secret: Secret, request: LegacyRequest) -> None:
    """Check a legacy request's hmac in constant time; AuthenticationFailed if wrong."""
    expected = compute_legacy_hmac(secret, request.tx_base64)
    if not _hmac.compare_digest(expected.encode("ascii"), request.hmac.encode("ascii")):
        raise AuthenticationFailed(
            "hmac does not match txBase64; check the shared secret", wire_code=AUTH_FAILED
        )


def legacy_error_code(code: str) -> str:
    """The one of auth_failed / invalid_tx / sign_error an original client understands."""
    return _LEGACY_CODE_FOR.get(code, LEGACY_SIGN_ERROR)


def legacy_ok_response(request_id: str | None, signature: bytes) -> dict[str, Any]:
    """``{"ok": true, "signedTxBase64": <base64 of the 64-byte signature>, "requestId"}``."""
    if len(signature) != 64:
        raise ValueError("an Ed25519 signature is 64 bytes")
    return {
        "ok": True,
        "signedTxBase64": base64.b64encode(signature).decode("ascii"),
        FIELD_REQUEST_ID: request_id,
    }


def legacy_error_response(request_id: str | None, code: str, message: str) -> dict[str, Any]:
    """A legacy refusal: the legacy code in ``error``, ours in ``reason``, and the message."""
    return {
        "ok": False,
        "error": legacy_error_code(code),
        FIELD_REQUEST_ID: request_id,
        "reason": code,
        "message": message,
    }
