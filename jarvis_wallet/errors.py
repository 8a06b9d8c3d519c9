"""Every expected failure in jarvis-wallet is a ``JarvisWalletError``.

Each class carries a user-facing message, the process exit code the CLI uses
and the error code sent over the wire. The CLI maps them in one place
(``cli.main``); the signer maps them in one place (the request handler).

    JarvisWalletError                       exit 1   internal_error
    ├── InvalidInput                        exit 2   bad_request
    │   ├── InvalidAmount                   exit 2   bad_request
    │   ├── InvalidPublicKey                exit 2   bad_request
    │   ├── InvalidLimits                   exit 2   bad_request
    │   ├── InvalidConfig                   exit 2   bad_request
    │   ├── InvalidStatusTransition         exit 2   bad_request
    │   ├── InvalidTransaction              exit 2   invalid_tx
    │   ├── InvalidMintAccount              exit 2   bad_request
    │   ├── MintNotAccepted                 exit 2   bad_request
    │   └── KeyMaterialError                exit 2   bad_request
    ├── DatabaseError                       exit 3   database_unavailable
    │   ├── DatabaseUnavailable             exit 3   database_unavailable
    │   ├── SchemaNotInitialised            exit 3   database_unavailable
    │   └── SchemaTooNew                    exit 3   database_unavailable
    ├── NotFound                            exit 4   not_found
    ├── PolicyDenied                        exit 5   <reason code, e.g. daily_limit_exceeded>
    │   ├── ApprovalRequired                exit 5   approval_required
    │   └── ApprovalRefused                 exit 5   approval_denied | approval_expired | approval_consumed
    │                                              | too_many_pending_approvals
    ├── SignerUnavailable                   exit 6   (client side only)
    │   ├── SignerTimeout                   exit 6
    │   └── RateLimited                     exit 6   rate_limited
    ├── AuthenticationFailed                exit 7   auth_failed
    ├── ProtocolError                       exit 8   bad_request
    ├── SignerStartError                    exit 9   (start-up failures reported by the child)
    ├── OutputNotWritten                    exit 10  (client side only: signed, but --out not written)
    ├── ChainError                          exit 11  rpc_error (CLI and library only: the signer is offline)
    │   ├── RpcUnavailable                  exit 11  rpc_unavailable
    │   ├── RpcBadResponse                  exit 11  rpc_bad_response
    │   ├── TransactionRefused              exit 12  transaction_refused
    │   └── TransactionNotConfirmed         exit 13  not_confirmed (send --wait: failed, expired or still pending)
    └── SignerLocked                        exit 14  locked

Messages never contain secret material: callers build them from public values.
"""

from __future__ import annotations


class JarvisWalletError(Exception):
    """Base of every expected jarvis-wallet failure."""

    exit_code: int = 1
    wire_code: str = "internal_error"

    def __init__(self, message: str, *, wire_code: str | None = None, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Public numbers behind the message (amounts, ids), for `--json` errors.
        self.details = dict(details or {})
        if wire_code is not None:
            self.wire_code = wire_code

    def __str__(self) -> str:
        return self.message


class InvalidInput(JarvisWalletError):
    """Input from a user, a file or a request is malformed or out of range."""

    exit_code = 2
    wire_code = "bad_request"


class InvalidAmount(InvalidInput):
    """An amount is negative, too large, too precise or not a number."""


class InvalidPublicKey(InvalidInput):
    """A public key is not base58 text for exactly 32 bytes."""


class InvalidLimits(InvalidInput):
    """Spend limits are inconsistent (for example per-transaction above daily)."""


class InvalidConfig(InvalidInput):
    """A configuration key or value, or a database URL, is not acceptable."""


class InvalidStatusTransition(InvalidInput):
    """A transaction status change that would move backwards or out of a final state."""


class InvalidTransaction(InvalidInput):
    """A transaction, message or off-chain message could not be parsed completely."""

    wire_code = "invalid_tx"


class InvalidMintAccount(InvalidInput):
    """A mint account's owner or data could not be parsed completely as a mint."""


class MintNotAccepted(InvalidInput):
    """A mint disagrees with what the operator typed, or has an extension not allowed by name."""


class KeyMaterialError(InvalidInput):
    """A keypair or shared secret is unreadable, malformed, mismatched or too exposed."""


class DatabaseError(JarvisWalletError):
    """The database cannot be used right now."""

    exit_code = 3
    wire_code = "database_unavailable"


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached, or its lock could not be taken in time."""


class SchemaNotInitialised(DatabaseError):
    """The database has no jarvis-wallet schema yet (run `jarvis-wallet init-db`)."""


class SchemaTooNew(DatabaseError):
    """The database schema was written by a newer jarvis-wallet than this one."""


class NotFound(JarvisWalletError):
    """A transaction, wallet or configuration key does not exist."""

    exit_code = 4
    wire_code = "not_found"


class PolicyDenied(JarvisWalletError):
    """The spend policy refused to sign; ``reason`` is a stable code."""

    exit_code = 5

    def __init__(self, message: str, *, reason: str, details: dict | None = None) -> None:
        super().__init__(message, wire_code=reason, details=details)
        self.reason = reason


class ApprovalRequired(PolicyDenied):
    """The transaction is within the limits but above the approval threshold: an operator must
    approve request ``approval_id`` before ``expires_at``; then send the same intent again."""

    def __init__(
        self, message: str, *, approval_id: int, expires_at: str, details: dict | None = None, new: bool = False
    ) -> None:
        details = {"approval_id": approval_id, "expires_at": expires_at, **(details or {})}
        super().__init__(message, reason="approval_required", details=details)
        self.approval_id = approval_id
        self.expires_at = expires_at
        self.new = new  # this request opened it (the signer notifies the operator)


class ApprovalRefused(PolicyDenied):
    """The approval covering this intent cannot be used: denied, expired or already consumed."""

    def __init__(self, message: str, *, reason: str, approval_id: int | None) -> None:
        super().__init__(message, reason=reason, details={"approval_id": approval_id})
        self.approval_id = approval_id


class SignerUnavailable(JarvisWalletError):
    """No signer answers on the socket, or it went away mid-request."""

    exit_code = 6
    wire_code = "signer_unavailable"


class SignerTimeout(SignerUnavailable):
    """The signer did not answer within the client's timeout."""

    wire_code = "timeout"


class RateLimited(SignerUnavailable):
    """The signer decides no more requests from this uid for now: too many were recorded
    without spending (refused, or signed at zero spend)."""

    wire_code = "rate_limited"


class AuthenticationFailed(JarvisWalletError):
    """The request's HMAC, timestamp or request id was refused."""

    exit_code = 7
    wire_code = "auth_failed"


class ProtocolError(JarvisWalletError):
    """A frame on the socket broke the wire protocol."""

    exit_code = 8
    wire_code = "bad_request"


class SignerStartError(JarvisWalletError):
    """The signer process could not start; the message says why."""

    exit_code = 9
    wire_code = "internal_error"


class OutputNotWritten(JarvisWalletError):
    """A signature was released (and counted), but writing it where asked failed."""

    exit_code = 10
    wire_code = "output_not_written"


class ChainError(JarvisWalletError):
    """The Solana JSON-RPC endpoint answered with an error (only the CLI and library talk to it)."""

    exit_code = 11
    wire_code = "rpc_error"


class RpcUnavailable(ChainError):
    """The endpoint could not be reached, timed out, or kept answering 429/5xx after retries."""

    wire_code = "rpc_unavailable"


class RpcBadResponse(ChainError):
    """The endpoint answered something that is not the JSON-RPC response the method has."""

    wire_code = "rpc_bad_response"


class TransactionRefused(ChainError):
    """The endpoint refused to take the transaction (preflight simulation failed, blockhash unknown)."""

    exit_code = 12
    wire_code = "transaction_refused"


class TransactionNotConfirmed(ChainError):
    """Waited for a transaction that then failed, expired, or was not proven either way in time."""

    exit_code = 13
    wire_code = "not_confirmed"


class SignerLocked(JarvisWalletError):
    """The signer's key is locked (not in memory): nothing is signed until it is unlocked."""

    exit_code = 14
    wire_code = "locked"
