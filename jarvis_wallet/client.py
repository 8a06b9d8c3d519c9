"""``SignerClient``: how an agent asks the signer for signatures. It never holds key material.

    with SignerClient() as signer:                 # socket and secret found as `sign` finds them
        signed = signer.sign_transaction(tx_bytes, purpose="pay invoice 42")
        signed.signature, signed.signed_transaction

Refusals and failures are exceptions from ``jarvis_wallet.errors``:
``PolicyDenied`` (``.reason`` is the stable code), ``AuthenticationFailed``,
``InvalidTransaction``/``InvalidInput``, ``DatabaseUnavailable``,
``SignerUnavailable`` and ``SignerTimeout``.

Above the wallet's approval threshold, ``sign_transaction`` raises ``ApprovalRequired``
(``.approval_id``, ``.expires_at``); wait for the operator, then sign the same payment again
with a fresh blockhash::

    try:
        signed = signer.sign_transaction(build_tx())
    except ApprovalRequired as held:
        signer.wait_for_approval(held.approval_id, timeout=900)   # ApprovalDenied/ApprovalExpired
        signed = signer.sign_transaction(build_tx())               # a fresh blockhash is fine

or, in one call, ``signer.sign_with_approval(build_tx, timeout=900)``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import time
from collections.abc import Callable

from . import protocol
from .config import SHARED_SECRET_ENV, default_secret_path, resolve_socket_path
from .errors import (
    ApprovalRefused,
    ApprovalRequired,
    AuthenticationFailed,
    DatabaseUnavailable,
    InvalidInput,
    NotFound,
    InvalidTransaction,
    JarvisWalletError,
    KeyMaterialError,
    PolicyDenied,
    ProtocolError,
    RateLimited,
    SignerLocked,
    SignerTimeout,
    SignerUnavailable,
)
from .keys import SharedSecret, load_shared_secret

DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class TokenAmount:
    """Base units of one mint a signed transaction counted against the wallet's limits."""

    mint: str  # base58
    symbol: str | None  # as registered when it was decided
    amount: int  # base units (the wire carries a decimal string)


@dataclass(frozen=True)
class SignedTransaction:
    request_id: str
    signature: str  # base58: the transaction id once it lands
    signed_transaction: bytes = field(repr=False)  # the full serialized transaction
    wallet: str
    lamports: int  # spend counted against the limits, fee included
    fee_lamports: int
    transaction_id: int  # the audit record: `jarvis-wallet tx show <id>`
    duplicate: bool  # this exact message had been signed before: the recorded signature
    signed_at: str | None = None  # when that signature was recorded, UTC ISO 8601 (None: an older signer)
    tokens: tuple[TokenAmount, ...] = ()  # per mint, counted against its limits (empty: no tokens)


@dataclass(frozen=True)
class SignedMessage:
    request_id: str
    signature: str
    signed_message: bytes = field(repr=False)  # the off-chain envelope that was signed
    wallet: str
    transaction_id: int
    duplicate: bool = False  # this text had been signed before: the recorded signature
    signed_at: str | None = None


@dataclass(frozen=True)
class ApprovalStatus:
    """An approval request's state as the signer reports it (``wait_for_approval``)."""

    approval_id: int
    state: str  # pending, approved, denied, expired, consumed
    expires_at: str
    decided_at: str | None = None
    reason: str | None = None  # a denial's reason
    transaction_id: int | None = None  # the signed row, once consumed


def _token_amounts(items: Any) -> tuple[TokenAmount, ...]:
    """The reply's ``tokens`` (absent from older signers); a malformed entry is a protocol error."""
    if items is None:
        return ()
    try:
        return tuple(
            TokenAmount(str(item["mint"]), item.get("symbol"), int(str(item["amount"]), 10)) for item in items
        )
    except (TypeError, KeyError, ValueError, AttributeError):
        raise ProtocolError("the signer's reply has a malformed tokens field") from None


def error_from_response(code: str, message: str, reply: dict | None = None) -> JarvisWalletError:
    """The exception a refusal's wire code stands for (``reply``: the whole response, whose
    ``approval`` object an approval_required refusal carries)."""
    if code == protocol.APPROVAL_REQUIRED:
        held = (reply or {}).get("approval") or {}
        return ApprovalRequired(
            message, approval_id=held.get("approvalId"), expires_at=held.get("expiresAt"),
            details={"lamports": held.get("lamports"), "fee_lamports": held.get("feeLamports"),
                     "destinations": held.get("destinations"), "purpose": held.get("purpose")},
        )
    if code in protocol.APPROVAL_REFUSAL_CODES:
        return ApprovalRefused(message, reason=code, approval_id=_approval_id_in(message))
    if code in protocol.POLICY_REFUSAL_CODES:
        return PolicyDenied(message, reason=code)
    if code in (protocol.AUTH_FAILED, protocol.STALE_REQUEST, protocol.REPLAYED_REQUEST, "peer_not_allowed"):
        return AuthenticationFailed(message, wire_code=code)
    if code == protocol.INVALID_TX:
        return InvalidTransaction(message)
    if code in (protocol.BAD_REQUEST, protocol.UNKNOWN_OP, protocol.LINE_TOO_LONG):
        return InvalidInput(message, wire_code=code)
    if code == protocol.NOT_FOUND:
        return NotFound(message)
    if code == protocol.DATABASE_UNAVAILABLE:
        return DatabaseUnavailable(message)
    if code == protocol.BUSY:
        return SignerUnavailable(message, wire_code=code)
    if code == protocol.RATE_LIMITED:
        return RateLimited(message)
    if code == protocol.LOCKED:
        return SignerLocked(message)
    if code == protocol.BAD_PASSPHRASE:
        return AuthenticationFailed(message, wire_code=code)
    return JarvisWalletError(f"signer error {code}: {message}", wire_code=code)


def _approval_id_in(message: str) -> int | None:
    """The request id an approval refusal names ("approval request 7 ...")."""
    import re

    found = re.search(r"approval request (\d+)", message)
    return int(found.group(1)) if found else None


def find_shared_secret(socket_path: Path, *, secret_file: str | os.PathLike | None = None) -> SharedSecret | None:
    """``secret_file``, else $SIGNER_SHARED_SECRET (the secret itself), else the generated file
    beside the socket."""
    if secret_file:
        return load_shared_secret(env_value=None, path=Path(secret_file))
    env_value = os.environ.get(SHARED_SECRET_ENV)
    if env_value is not None:
        return load_shared_secret(env_value=env_value, path=None)
    path = default_secret_path(socket_path)
    if not path.exists():
        return None
    return load_shared_secret(env_value=None, path=path)


_SHAPE_ONLY_SECRET = SharedSecret(bytes(32))


def check_request(op: str, **fields: Any) -> None:
    """The request's fields checked, or InvalidInput (exit 2) for what the signer would refuse
    as malformed (a purpose over 512 characters or with a newline, an empty message, ...):
    refused here, before anything is sent, it is the caller's bad input, not a protocol break."""
    _build_request(_SHAPE_ONLY_SECRET, op, fields)  # a throwaway key: the result is never sent


def _build_request(secret: SharedSecret | None, op: str, fields: dict[str, Any]) -> dict[str, Any]:
    try:
        return protocol.build_request(secret, op=op, **fields)
    except ProtocolError as exc:  # refused before sending: the caller's bad input
        raise InvalidInput(exc.message, wire_code=exc.wire_code) from None


class SignerClient:
    """A connection to a signer; reconnects once if the connection was dropped."""

    def __init__(
        self,
        socket_path: str | os.PathLike | None = None,
        *,
        secret: bytes | str | SharedSecret | None = None,
        secret_file: str | os.PathLike | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.socket_path = resolve_socket_path(socket_path)
        if isinstance(secret, str):
            secret = load_shared_secret(env_value=secret, path=None)
        elif isinstance(secret, (bytes, bytearray)):
            secret = SharedSecret(bytes(secret))
        self._secret: SharedSecret | None = secret or find_shared_secret(self.socket_path, secret_file=secret_file)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = protocol.FrameBuffer()

    def __repr__(self) -> str:
        return f"SignerClient(socket_path={str(self.socket_path)!r})"

    # -- operations ---------------------------------------------------------------------------

    def ping(self, *, timeout: float | None = None) -> dict[str, Any]:
        return self._call(protocol.OP_PING, authenticate=False, timeout=timeout)

    def pubkey(self, *, timeout: float | None = None) -> str:
        return self._call(protocol.OP_PUBKEY, authenticate=False, timeout=timeout)["publicKey"]

    def status(self, *, timeout: float | None = None) -> dict[str, Any]:
        return self._call(protocol.OP_STATUS, timeout=timeout)

    def lock(self, *, timeout: float | None = None) -> dict[str, Any]:
        """Lock the signer: its key leaves memory and signing requests get ``locked``.
        Needs no shared secret (it only takes power away); ``wasUnlocked`` says if it did anything."""
        return self._call(protocol.OP_LOCK, authenticate=False, timeout=timeout)

    def unlock(self, passphrase: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Unlock with the keystore's passphrase; AuthenticationFailed (``bad_passphrase``) if wrong.
        A wrong passphrase is answered only after a delay that grows with each failure."""
        return self._call(protocol.OP_UNLOCK, passphrase=passphrase, timeout=timeout)

    def sign_transaction(
        self, transaction: bytes, purpose: str | None = None, timeout: float | None = None
    ) -> SignedTransaction:
        """Sign a serialized transaction or message (bytes as web3.js or solders produce)."""
        if not isinstance(transaction, (bytes, bytearray)):
            raise InvalidInput("sign_transaction takes the serialized transaction as bytes")
        reply = self._call(
            protocol.OP_SIGN,
            tx_base64=base64.b64encode(bytes(transaction)).decode("ascii"),
            purpose=purpose,
            timeout=timeout,
        )
        return SignedTransaction(
            request_id=reply["requestId"],
            signature=reply["signature"],
            signed_transaction=base64.b64decode(reply["signedTxBase64"]),
            wallet=reply["wallet"],
            lamports=reply["lamports"],
            fee_lamports=reply["feeLamports"],
            transaction_id=reply["transactionId"],
            duplicate=bool(reply.get("duplicate", False)),
            signed_at=reply.get("signedAt"),
            tokens=_token_amounts(reply.get("tokens")),
        )

    def send_transaction(self, transaction: bytes, *, rpc_url: str, purpose: str | None = None, **options):
        """Sign, submit to ``rpc_url`` and (``wait=True``) follow it to confirmed, failed or expired:
        ``jarvis_wallet.chain.send.send_transaction`` with this client (options are its keywords;
        ``database=`` an open session records the outcome). Returns a ``SendResult``."""
        from .chain.rpc import RpcClient
        from .chain.send import send_transaction

        return send_transaction(self, RpcClient(rpc_url), bytes(transaction), purpose=purpose, **options)

    def sign_message(self, text: str, purpose: str | None = None, timeout: float | None = None) -> SignedMessage:
        """Sign ``text`` as a Solana off-chain message."""
        reply = self._call(protocol.OP_SIGN_MESSAGE, message=text, purpose=purpose, timeout=timeout)
        return SignedMessage(
            request_id=reply["requestId"],
            signature=reply["signature"],
            signed_message=base64.b64decode(reply["signedMessageBase64"]),
            wallet=reply["wallet"],
            transaction_id=reply["transactionId"],
            duplicate=bool(reply.get("duplicate", False)),
            signed_at=reply.get("signedAt"),
        )

    def approval_status(self, approval_id: int, *, wait: float = 0.0, timeout: float | None = None) -> ApprovalStatus:
        """The request's state now, or as soon as it is no longer pending (within ``wait`` seconds,
        at most a minute a call)."""
        wait_ms = int(min(max(wait, 0.0), protocol.MAX_WAIT_MS / 1000) * 1000)
        reply = self._call(
            protocol.OP_WAIT_FOR_APPROVAL, approval_id=approval_id, wait_ms=wait_ms,
            timeout=max(timeout or self.timeout, wait_ms / 1000 + self.timeout),
        )
        return ApprovalStatus(
            approval_id=reply["approvalId"], state=reply["state"], expires_at=reply["expiresAt"],
            decided_at=reply.get("decidedAt"), reason=reply.get("reason"), transaction_id=reply.get("transactionId"),
        )

    def wait_for_approval(self, approval_id: int, timeout: float) -> ApprovalStatus:
        """Block until the operator decides request ``approval_id``; return it once approved.

        Raises ``ApprovalRefused`` (``.reason`` ``approval_denied``, ``approval_expired`` or
        ``approval_consumed``) if it will never sign, and ``SignerTimeout`` if it is still pending
        after ``timeout`` seconds (it may still be approved later).
        """
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            status = self.approval_status(approval_id, wait=max(0.0, min(left, protocol.MAX_WAIT_MS / 1000)))
            if status.state == "approved":
                return status
            if status.state != "pending":
                why = f": {status.reason}" if status.reason else ""
                raise ApprovalRefused(
                    f"approval request {approval_id} is {status.state}{why}",
                    reason=f"approval_{status.state}", approval_id=approval_id,
                )
            if deadline - time.monotonic() <= 0:
                raise SignerTimeout(f"approval request {approval_id} is still pending after {timeout:g} s")

    def sign_with_approval(
        self, build: Callable[[], bytes], *, purpose: str | None = None, timeout: float = 900.0,
    ) -> SignedTransaction:
        """Sign ``build()``; if it is held for approval, wait up to ``timeout`` seconds for the
        operator and sign a freshly built one (same payment, new blockhash)."""
        try:
            return self.sign_transaction(build(), purpose=purpose)
        except ApprovalRequired as held:
            self.wait_for_approval(held.approval_id, timeout)
        return self.sign_transaction(build(), purpose=purpose)

    # -- plumbing -----------------------------------------------------------------------------

    def _call(self, op: str, *, authenticate: bool = True, timeout: float | None = None, **fields) -> dict[str, Any]:
        if authenticate and self._secret is None:
            raise KeyMaterialError(
                f"no shared secret: set {SHARED_SECRET_ENV} or pass a secret file "
                f"(the signer writes one to {default_secret_path(self.socket_path)})"
            )
        for attempt in (1, 2):
            # A fresh id and timestamp on every attempt: a resend is a new request, and the
            # signer returns the recorded signature for a message it already signed.
            request = _build_request(self._secret if authenticate else None, op, fields)
            try:
                reply = self._round_trip(protocol.encode_frame(request), timeout or self.timeout)
            except _Dropped:
                self.close()
                if attempt == 2:
                    raise SignerUnavailable(f"the signer at {self.socket_path} closed the connection") from None
                continue
            error = reply.get("error")
            if reply.get("requestId") is None and reply.get("ok") is False and isinstance(error, dict):
                # A refusal of the connection itself (busy, peer_not_allowed), sent before any
                # request was read: the signer closes the connection after it.
                self.close()
                raise error_from_response(str(error.get("code")), str(error.get("message")))
            if reply.get("requestId") != request["requestId"]:
                self.close()
                raise ProtocolError("the signer answered a different request")
            if reply.get("ok") is True:
                return reply
            if not isinstance(error, dict):
                raise ProtocolError("malformed error response from the signer")
            raise error_from_response(str(error.get("code")), str(error.get("message")), reply)
        raise AssertionError("unreachable")

    def _round_trip(self, frame: bytes, timeout: float) -> dict[str, Any]:
        sock = self._connect(timeout)
        sock.settimeout(timeout)
        try:
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                # The signer may have refused the connection (busy, peer_not_allowed) and closed
                # it before reading: its one-line reason is still waiting to be read.
                pass
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise _Dropped()
                lines = self._buffer.feed(chunk)
                if lines:
                    return protocol.decode_frame(lines[0])
        except TimeoutError:
            self.close()
            raise SignerTimeout(f"the signer did not answer within {timeout:g} s") from None
        except (BrokenPipeError, ConnectionResetError):
            raise _Dropped() from None

    def _connect(self, timeout: float) -> socket.socket:
        if self._sock is not None:
            return self._sock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(self.socket_path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise SignerUnavailable(
                f"no signer is listening on {self.socket_path}; start one with `jarvis-wallet signer start`"
            ) from None
        except PermissionError:
            sock.close()
            raise SignerUnavailable(f"permission denied for {self.socket_path}") from None
        except TimeoutError:
            sock.close()
            raise SignerTimeout(f"connecting to {self.socket_path} timed out") from None
        except OSError as exc:
            sock.close()
            raise SignerUnavailable(f"cannot connect to {self.socket_path}: {exc.strerror}") from None
        self._sock = sock
        self._buffer = protocol.FrameBuffer()
        return sock

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def __enter__(self) -> SignerClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class _Dropped(Exception):
    """The connection closed before the reply arrived."""
