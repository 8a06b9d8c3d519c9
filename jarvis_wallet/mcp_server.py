"""`jarvis-wallet mcp`: a governed wallet as Model Context Protocol tools, served on stdio.

This is the agent's side of the wall. It asks the signer for signatures with the
shared secret (``SignerClient``), and reads the wallet's limits and audit trail
from the database; no tool writes there but to record what it sent. With an RPC
endpoint (``--rpc-url``) it also reads balances and sends transfers: the chain is
the agent side's business, never the signer's. It never loads the key, and nothing a
tool accepts or returns can change limits or approve anything: the signer
decides every signature under its lock, as it does for any other client.

Two halves:

- ``WalletTools``: the tools themselves, plain and synchronous, no MCP import.
  Each tool has a static description and a strict JSON schema; arguments are
  checked against it (unknown names, wrong types, out of range: refused) and
  then by the same library checks the CLI runs. Amounts go out as strings with
  units (``"0.0015 SOL"``) and as lamports in strings, never as floats.
  A refusal is a ``ToolError`` whose payload carries the stable reason code
  and the numbers behind it, so that a model can explain it.
- ``serve_stdio``: the official SDK's low-level server on stdin/stdout. The SDK
  is imported only there (it costs far more than the rest of the package), in a
  thread, while ``mcp_front`` answers the handshake and `tools/list`;
  `tools/list` is answered from the static table (all tools, or those named
  with ``--tools``), without the signer, the database or the network.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .amounts import format_sol
from .config import PRIVATE_KEY_ENV
from .errors import (
    ApprovalRefused,
    ApprovalRequired,
    DatabaseError,
    InvalidConfig,
    JarvisWalletError,
    KeyMaterialError,
    PolicyDenied,
    SignerTimeout,
    SignerUnavailable,
)

SERVER_NAME = "jarvis-wallet"
SERVER_TITLE = "jarvis-wallet"
#: What the server tells the model once, at the handshake.
INSTRUCTIONS = (
    "A Solana wallet whose key is held by a separate signer process. The signer checks every "
    "request against spend limits set by a person (per transaction and per rolling 24 hours) and "
    "records it. Call wallet_status to see the address, the limits and what can still be spent; "
    "inspect_transaction to see what a transaction does and whether it would be signed; "
    "sign_transaction or sign_message to get a signature; where they are served, balance and "
    "transfer read the chain and pay SOL or a registered token. A refusal comes back as an error with "
    "a reason code and the numbers: explain it to the user, do not try to work around it. A payment "
    "above the approval threshold is held (approval_required) until a person approves it with the "
    "command the error names: tell the user, call wait_for_approval, then ask once more. Amounts "
    "are strings such as \"0.5 SOL\", \"1500000 lamports\" or \"12.5 USDC\"."
)

MAX_RECENT = 50
#: base64 of the largest transaction (1,232 bytes) is 1,644 characters; a little room for
#: line breaks, which are ignored as the CLI ignores them.
MAX_TRANSACTION_BASE64_CHARS = 2048
MAX_PURPOSE_CHARS = 512
MAX_MESSAGE_CHARS = 1212
# A wait is one tool call: many MCP clients give up on a call after about a minute or a few.
DEFAULT_APPROVAL_WAIT_SECONDS = 50
MAX_APPROVAL_WAIT_SECONDS = 300
MAX_APPROVAL_ID = 2**53 - 1  # exact in every JSON reader
MAX_TOKEN_CHARS = 44  # a symbol, or a mint's base58 address


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_schema: dict
    read_only: bool


def _object(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_TX_ARGUMENT = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_TRANSACTION_BASE64_CHARS,
    "description": "The serialized Solana transaction (legacy or v0) or its message alone, in standard base64, "
    "as web3.js `serialize()` or solders `bytes()` give it. The wallet must be a required signer.",
}
_PURPOSE_ARGUMENT = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_PURPOSE_CHARS,
    "description": "Why, in a few words a person reading the audit trail will understand "
    "(\"pay invoice 42 to Acme\"). Recorded with the decision. No control characters.",
}

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="wallet_status",
        title="Wallet status",
        description=(
            "The wallet's address, whether its signer is running, and its spend limits: the most one "
            "transaction may spend, the most all transactions may spend in any rolling 24 hours, what "
            "was spent in the last 24 hours and what remains; the same per registered token (mint) that has "
            "limits; the approval threshold above which a person must approve a payment, and the "
            "approval requests waiting for that person. Amounts are strings with units (\"0.5 SOL\", "
            "\"12.5 USDC\") and the same in base units (1 SOL = 1,000,000,000 lamports). Call this "
            "before planning a payment. Changes nothing."
        ),
        input_schema=_object({}),
        read_only=True,
    ),
    ToolSpec(
        name="inspect_transaction",
        title="Inspect a transaction",
        description=(
            "Decode a Solana transaction offline and say what it does, in plain words: each instruction, "
            "the network fee, what it would spend from this wallet and to whom, and whether the signer "
            "would sign it now under the wallet's limits (a preview: the signer decides again when asked). "
            "Signs nothing, records nothing."
        ),
        input_schema=_object({"transaction_base64": _TX_ARGUMENT}, ("transaction_base64",)),
        read_only=True,
    ),
    ToolSpec(
        name="sign_transaction",
        title="Sign a transaction",
        description=(
            "Ask the signer to sign a Solana transaction with this wallet. The signer parses it, checks "
            "the spend (transfers, fees and rent paid by the wallet) against the per-transaction and "
            "24-hour limits and the allowed programs, records the decision, and only then signs. "
            "Returns the signature and the signed transaction in base64; it does NOT send it to the "
            "network. Asking again for the same transaction returns the same signature and counts "
            "nothing twice (duplicate: true). A refusal is an error with a reason code (for example "
            "daily_limit_exceeded) and the amounts involved. approval_required means a person must "
            "approve it first: the error has the approval_id and the operator's command; do not ask "
            "again until wait_for_approval says approved, then sign the same payment (a freshly "
            "built transaction with a new blockhash is fine)."
        ),
        input_schema=_object({"transaction_base64": _TX_ARGUMENT, "purpose": _PURPOSE_ARGUMENT},
                             ("transaction_base64", "purpose")),
        read_only=False,
    ),
    ToolSpec(
        name="sign_message",
        title="Sign a message",
        description=(
            "Sign a text as a Solana off-chain message (the format of `solana sign-offchain-message`), "
            "for example to prove control of this wallet when logging in to a service. It can never be "
            "used as a transaction and spends nothing. Returns the signature and the exact signed "
            "envelope in base64. The request is recorded."
        ),
        input_schema=_object(
            {
                "message": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_MESSAGE_CHARS,
                    "description": "The text to sign: at most 1,212 bytes of UTF-8; newlines and tabs are allowed, "
                    "other control characters are not.",
                },
                "purpose": {**_PURPOSE_ARGUMENT, "description": "Optional: why, recorded with the signature."},
            },
            ("message",),
        ),
        read_only=False,
    ),
    ToolSpec(
        name="recent_transactions",
        title="Recent transactions",
        description=(
            "This wallet's most recent signing decisions from the audit trail, newest first: signed, "
            "refused (with the reason), re-signs of an earlier transaction, and signed messages, each "
            "with its amount, destination, purpose and signature. Changes nothing."
        ),
        input_schema=_object(
            {
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_RECENT, "default": 10,
                          "description": f"How many, 1 to {MAX_RECENT}. Default 10."},
                "status": {
                    "type": "string",
                    "enum": ["signed", "submitted", "confirmed", "failed", "rejected", "duplicate"],
                    "description": "Only decisions in this state (rejected: refused by the signer).",
                },
            },
        ),
        read_only=True,
    ),
    ToolSpec(
        name="wait_for_approval",
        title="Wait for a person's approval",
        description=(
            "Wait, up to timeout_seconds, for a person to approve or deny a payment the signer held "
            "(an approval_required error gives its approval_id). Returns state approved once it is: then "
            "ask for the same payment once more (sign_transaction with a freshly built transaction, or "
            "transfer with the same arguments) and it is signed, once. An error approval_denied, "
            "approval_expired or approval_consumed means it will not be signed: tell the user, do not "
            "retry. approval_pending means nobody has decided yet: tell the user what waits, and wait "
            "again or stop. Approves nothing itself: only the person can."
        ),
        input_schema=_object(
            {
                "approval_id": {"type": "integer", "minimum": 1, "maximum": MAX_APPROVAL_ID,
                                "description": "The approval_id of the approval_required error."},
                "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_APPROVAL_WAIT_SECONDS,
                                    "default": DEFAULT_APPROVAL_WAIT_SECONDS,
                                    "description": f"How long to wait, 1 to {MAX_APPROVAL_WAIT_SECONDS} seconds. "
                                    f"Default {DEFAULT_APPROVAL_WAIT_SECONDS}."},
            },
            ("approval_id",),
        ),
        read_only=True,
    ),
)
#: Served only with an RPC endpoint (--rpc-url): the chain is the agent side's business, never
#: the signer's.
CHAIN_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="balance",
        title="Balance",
        description=(
            "The wallet's SOL balance on chain, as the configured RPC endpoint reports it (confirmed "
            "commitment), as a string with units and in lamports. Changes nothing."
        ),
        input_schema=_object({}),
        read_only=True,
    ),
    ToolSpec(
        name="transfer",
        title="Transfer SOL or a token",
        description=(
            "Pay SOL, or a token the operator registered (give token), from this wallet: builds the "
            "transfer with a fresh blockhash (for a token: a TransferChecked between the associated "
            "token accounts, creating the recipient's when the chain has none, its rent paid in SOL), "
            "has the signer check it against the limits and sign it, sends it, and waits up to 60 "
            "seconds for the outcome. Returns the signature and the status (confirmed, failed, expired, "
            "or submitted if not yet proven). The amount plus the 0.000005 SOL fee counts against the "
            "limits (a token's amount against that token's limits). A refusal is an error with a reason "
            "code and the amounts involved; nothing is sent then. approval_required: a person must "
            "approve it (the error says how); after wait_for_approval says approved, call transfer "
            "again with the same arguments."
        ),
        input_schema=_object(
            {
                "to": {"type": "string", "minLength": 32, "maxLength": 44,
                       "description": "The recipient's address (base58 public key)."},
                "amount": {"type": "string", "minLength": 1, "maxLength": 64,
                           "description": "How much, with its unit: \"0.25 SOL\" or \"250000000 lamports\" "
                           "(a bare integer is lamports); with token: \"12.5 USDC\" (token units, at most the "
                           "token's decimals) or \"12500000base\" (base units)."},
                "token": {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_CHARS,
                          "description": "Optional: the registered token to pay, by symbol (\"USDC\") or mint "
                          "address; wallet_status lists those with limits. Without it, SOL."},
                "purpose": _PURPOSE_ARGUMENT,
                "memo": {"type": "string", "minLength": 1, "maxLength": 256,
                         "description": "Optional text put on chain with the payment (a Memo instruction); public."},
            },
            ("to", "amount", "purpose"),
        ),
        read_only=False,
    ),
)
TOOLS_BY_NAME = {tool.name: tool for tool in TOOLS + CHAIN_TOOLS}
TRANSFER_WAIT_SECONDS = 60.0


class ToolError(Exception):
    """A tool's refusal or failure, as data for the model: ``reason`` plus numbers."""

    def __init__(self, reason: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.payload = {"ok": False, "reason": reason, "message": message, **details}


class UnknownTool(Exception):
    """No tool of that name: a protocol error, not a tool result."""


@dataclass(frozen=True)
class McpSettings:
    socket_path: Path | None = None  # None: as `sign` finds it
    secret_file: Path | None = None
    database_url: str | None = None  # None: as the CLI finds it
    timeout_seconds: float = 10.0
    tools: tuple[str, ...] | None = None  # None: every tool; else only these are listed and callable
    rpc_url: str | None = None  # with one, balance and transfer are served too


def check_environment(environ: dict[str, str] | None = None) -> None:
    """Refuse to serve a model from a process that has the wallet's key in its environment."""
    environ = os.environ if environ is None else environ
    if environ.get(PRIVATE_KEY_ENV):
        raise KeyMaterialError(
            f"{PRIVATE_KEY_ENV} is set in the environment of `jarvis-wallet mcp`: the MCP server is the "
            "agent's side and must never hold the key. Remove it from the MCP client's configuration; "
            "only the signer reads it"
        )


class WalletTools:
    """The tools, callable from any thread: one signer connection per call, database reads one
    at a time (the models are bound to one database per process)."""

    def __init__(self, settings: McpSettings = McpSettings()) -> None:
        from .config import resolve_database_url, resolve_socket_path
        from .db_url import parse_database_url

        self.settings = settings
        self._socket_path = resolve_socket_path(settings.socket_path)
        self._database_url = resolve_database_url(settings.database_url)
        parse_database_url(self._database_url)  # a malformed URL is the operator's error, said at start-up
        self._rpc_url = None if settings.rpc_url is None else _checked_rpc_url(settings.rpc_url)
        self.specs = served_tools(settings.tools, chain=self._rpc_url is not None)
        self._served = {spec.name: spec for spec in self.specs}
        self._db_lock = threading.Lock()
        self._handlers: dict[str, Callable[[dict], dict]] = {
            "wallet_status": self.wallet_status,
            "inspect_transaction": self.inspect_transaction,
            "sign_transaction": self.sign_transaction,
            "sign_message": self.sign_message,
            "recent_transactions": self.recent_transactions,
            "wait_for_approval": self.wait_for_approval,
            "balance": self.balance,
            "transfer": self.transfer,
        }

    def call(self, name: str, arguments: dict | None) -> dict:
        """The tool's result; raises ToolError for a refusal or bad arguments, UnknownTool."""
        spec = self._served.get(name)
        if spec is None:
            raise UnknownTool(f"unknown tool {name!r}; the tools are: {', '.join(self._served)}")
        arguments = check_arguments(spec, arguments)
        try:
            return self._handlers[name](arguments)
        except ToolError:
            raise
        except KeyMaterialError as exc:  # no usable shared secret: the set-up, not the model's input
            raise ToolError("not_configured", exc.message) from None
        except JarvisWalletError as exc:
            raise ToolError(exc.wire_code, exc.message, **_public_details(exc.details)) from None

    # -- tools ---------------------------------------------------------------------------------

    def wallet_status(self, arguments: dict) -> dict:
        with self._client() as client:
            status = client.status()
        wallet = status["publicKey"]
        result: dict[str, Any] = {
            "wallet": wallet,
            "signer": {
                "running": True,
                "version": status.get("version"),
                "uptime_seconds": status.get("uptimeSeconds"),
                "signed_since_start": status.get("signed"),
                "refused_since_start": status.get("refused"),
            },
        }
        limits, note = self._limits(wallet)
        result["limits"] = limits
        if note:
            result["limits_note"] = note
        pending, note = self._pending_approvals(wallet)
        result["pending_approvals"] = pending
        if note:
            result["pending_approvals_note"] = note
        return result

    def inspect_transaction(self, arguments: dict) -> dict:
        from .solana import describe, parse_transaction_input
        from .solana.pubkey import decode_pubkey

        parsed = parse_transaction_input(_decode_transaction(arguments["transaction_base64"]))
        wallet = self._wallet_address()
        report = describe(parsed, wallet=decode_pubkey(wallet, what="wallet"))
        spend = report["spend"]
        result: dict[str, Any] = {
            "wallet": wallet,
            "version": report["version"],
            "fee_payer": report["fee_payer"],
            "wallet_is_fee_payer": spend["wallet_is_fee_payer"],
            "wallet_must_sign": spend["wallet_is_signer"],
            "signers": report["signers"],
            "programs": report["programs"],
            "instructions": [
                {"index": ins["index"], "program": ins["program"], "kind": ins["kind"], "description": ins["description"]}
                for ins in report["instructions"]
            ],
            **amount_fields("network_fee", report["fee_lamports"]),
            **amount_fields("spend_from_wallet", report["spend_lamports"]),
            "payments": [
                {"to": p["destination"] or p["destination_label"], "kind": p["kind"], **amount_fields("amount", p["lamports"])}
                for p in spend["payments"]
            ],
        }
        decision, note = self._preview(parsed, wallet)
        result["signer_would_sign"] = None if decision is None else decision["allowed"]
        if decision is not None:
            result["decision"] = {"reason": decision["reason"], "message": decision["message"]}
        if note:
            result["decision_note"] = note
        return result

    def sign_transaction(self, arguments: dict) -> dict:
        from .client import check_request
        from .protocol import OP_SIGN

        tx_bytes = _decode_transaction(arguments["transaction_base64"])
        purpose = arguments["purpose"]
        check_request(OP_SIGN, tx_base64=base64.b64encode(tx_bytes).decode("ascii"), purpose=purpose)
        with self._client() as client:
            try:
                signed = client.sign_transaction(tx_bytes, purpose=purpose)
            except (ApprovalRequired, ApprovalRefused) as exc:
                raise approval_tool_error(exc, again="call sign_transaction once more with the same payment "
                                          "(a freshly built transaction with a new blockhash is fine)") from None
            except PolicyDenied as exc:
                numbers = {**self._refusal_numbers(client, tx_bytes), **_public_details(exc.details)}
                raise ToolError(exc.reason, exc.message, **numbers) from None
            except SignerTimeout as exc:  # sent, unanswered: the signer may yet sign it
                raise ToolError(
                    exc.wire_code,
                    f"{exc.message}; it may still be signed: call sign_transaction again with the same "
                    "transaction, and a signed one comes back with duplicate: true, counted once",
                ) from None
        return {
            "signature": signed.signature,
            "signed_transaction_base64": base64.b64encode(signed.signed_transaction).decode("ascii"),
            "wallet": signed.wallet,
            **amount_fields("spend", signed.lamports),
            **amount_fields("fee", signed.fee_lamports),
            "tokens": self._token_spend(signed.tokens),
            "transaction_id": signed.transaction_id,
            "duplicate": signed.duplicate,
            "signed_at": signed.signed_at,
            "sent": False,
            "next_step": "The transaction is signed, not sent: submit signed_transaction_base64 to a Solana RPC "
            "node (sendTransaction) before its blockhash expires.",
        }

    def sign_message(self, arguments: dict) -> dict:
        from .client import check_request
        from .protocol import OP_SIGN_MESSAGE

        text, purpose = arguments["message"], arguments.get("purpose")
        check_request(OP_SIGN_MESSAGE, message=text, purpose=purpose)
        with self._client() as client:
            signed = client.sign_message(text, purpose=purpose)
        return {
            "signature": signed.signature,
            "signed_message_base64": base64.b64encode(signed.signed_message).decode("ascii"),
            "wallet": signed.wallet,
            "transaction_id": signed.transaction_id,
            "duplicate": signed.duplicate,
            "signed_at": signed.signed_at,
        }

    def recent_transactions(self, arguments: dict) -> dict:
        from .ledger import list_transactions, transaction_to_dict

        wallet = self._wallet_address()
        limit = arguments.get("limit", 10)
        with self._database():
            rows = [
                transaction_to_dict(row)
                for row in list_transactions(wallet=wallet, status=arguments.get("status"), limit=limit)
            ]
        return {"wallet": wallet, "transactions": [_recent_row(row) for row in rows]}

    def wait_for_approval(self, arguments: dict) -> dict:
        approval_id = arguments["approval_id"]
        timeout = arguments.get("timeout_seconds", DEFAULT_APPROVAL_WAIT_SECONDS)
        with self._client() as client:
            try:
                status = client.wait_for_approval(approval_id, timeout)
            except ApprovalRefused as exc:
                raise approval_tool_error(exc, again="") from None
            except SignerTimeout:
                raise ToolError(
                    "approval_pending",
                    f"approval request {approval_id} is still waiting for a person after {timeout} s. Tell the user "
                    f"the payment waits for `jarvis-wallet approvals approve {approval_id}`; call wait_for_approval "
                    "again to keep waiting, or stop. Do not ask for the payment again meanwhile.",
                    approval_id=approval_id, approve_command=approve_command(approval_id),
                ) from None
        return {
            "approval_id": status.approval_id,
            "state": status.state,
            "expires_at": status.expires_at,
            "decided_at": status.decided_at,
            "next_step": "Approved, once: ask for the same payment again now (sign_transaction with a freshly built "
            "transaction of it, or transfer with the same arguments), before expires_at. It is signed once; "
            "any other payment needs its own approval.",
        }

    def balance(self, arguments: dict) -> dict:
        wallet = self._wallet_address()
        rpc = self._rpc()
        lamports = rpc.get_balance(wallet, commitment="confirmed")
        return {"wallet": wallet, **amount_fields("balance", lamports), "endpoint": rpc.label, "commitment": "confirmed"}

    def transfer(self, arguments: dict) -> dict:
        from .chain.send import send_transaction
        from .solana.pubkey import decode_pubkey

        to_key = decode_pubkey(arguments["to"], what="recipient")
        token = self._registered_token(arguments["token"]) if "token" in arguments else None
        amount = _transfer_amount(arguments["amount"], token)
        purpose, memo = arguments["purpose"], arguments.get("memo")
        rpc = self._rpc()
        with self._client() as client:
            wallet = client.pubkey()
            latest = rpc.get_latest_blockhash(commitment="confirmed")
            message = _transfer_message(
                rpc, wallet=decode_pubkey(wallet, what="wallet"), to=to_key, amount=amount, token=token,
                blockhash=decode_pubkey(latest.blockhash, what="blockhash"), memo=memo,
            )
            self._check_sign_request(message, purpose)
            try:
                # The database records the submission and the outcome (what a failed or expired
                # one gives back to the window); without one, `tx sync` does it later.
                with self._optional_database() as database:
                    result = send_transaction(
                        client, rpc, message, purpose=purpose, wait=True, commitment="confirmed",
                        timeout=TRANSFER_WAIT_SECONDS, database=database, tool="jarvis-wallet mcp",
                    )
            except (ApprovalRequired, ApprovalRefused) as exc:
                raise approval_tool_error(exc, again="call transfer again with the same arguments") from None
            except PolicyDenied as exc:
                numbers = {**self._refusal_numbers(client, message), **_public_details(exc.details)}
                raise ToolError(exc.reason, exc.message, **numbers) from None
        paid = amount_fields("amount", amount) if token is None else token.amount_fields("amount", amount)
        return {
            "signature": result.signature,
            "status": result.status,
            "wallet": result.wallet,
            "to": arguments["to"],
            **({} if token is None else {"token": {"symbol": token.symbol, "mint": token.mint}}),
            **paid,
            **amount_fields("spend", result.lamports),
            "transaction_id": result.transaction_id,
            "duplicate": result.duplicate,
            "slot": result.slot,
            "error": result.error,
            **amount_fields("given_back_to_daily_window", result.released_lamports),
        }

    # -- the signer, the database and the chain ------------------------------------------------

    def _rpc(self):
        from .chain.rpc import RpcClient

        return RpcClient(self._rpc_url, timeout=self.settings.timeout_seconds)

    @contextlib.contextmanager
    def _optional_database(self):
        """The database session if it can be opened, else None (held, like every session, one
        at a time)."""
        from .db import session

        with self._db_lock, contextlib.ExitStack() as stack:
            try:
                database = stack.enter_context(session(self._database_url))
            except DatabaseError:
                database = None
            yield database

    def _check_sign_request(self, tx_bytes: bytes, purpose: str | None) -> None:
        from .client import check_request
        from .protocol import OP_SIGN

        check_request(OP_SIGN, tx_base64=base64.b64encode(tx_bytes).decode("ascii"), purpose=purpose)

    def _client(self):
        """A connection to the signer, checked with a ping: no signer running is said as such
        (signer_unavailable), even before a missing secret file would be."""
        from .client import SignerClient

        settings = self.settings
        client = SignerClient(self._socket_path, secret_file=settings.secret_file, timeout=settings.timeout_seconds)
        try:
            client.ping()
        except BaseException:
            client.close()
            raise
        return client

    def _wallet_address(self) -> str:
        """The signer's public key (no secret needed to ask), else the configured wallet."""
        try:
            with self._client() as client:
                return client.pubkey()
        except SignerUnavailable as exc:
            try:
                from .settings import get_setting

                with self._database():
                    configured = get_setting("wallet_public_key")
            except DatabaseError:
                configured = None
            if not configured:
                raise ToolError(exc.wire_code, exc.message) from None
            return configured

    @contextlib.contextmanager
    def _database(self):
        """A session, one at a time; DatabaseError when it cannot be opened."""
        from .db import session

        with self._db_lock, session(self._database_url) as database:
            yield database

    def _limits(self, wallet: str) -> tuple[dict | None, str | None]:
        from .limits import get_limits, limits_report

        try:
            with self._database():
                row = get_limits(wallet)
                report = None if row is None else limits_report(row)
        except DatabaseError as exc:
            return None, f"the limits could not be read from the database: {exc.message}"
        if report is None:
            return None, (
                "this wallet has no spend limits, so the signer refuses every transaction until a person "
                f"sets them (`jarvis-wallet limits set --wallet {wallet} --per-tx AMOUNT --daily AMOUNT`)"
            )
        return limits_fields(report), None

    def _pending_approvals(self, wallet: str) -> tuple[list | None, str | None]:
        """The wallet's requests waiting for a person (not yet expired), newest first."""
        from .approvals import approval_report, list_approvals

        try:
            with self._database():
                reports = [approval_report(row) for row in list_approvals(wallet=wallet, limit=MAX_RECENT)]
        except DatabaseError as exc:
            return None, f"the pending approvals could not be read from the database: {exc.message}"
        return [
            {
                "approval_id": report["approval_id"],
                "purpose": report["purpose"],
                **amount_fields("spend", report["lamports"]),
                "destinations": report["destinations"],
                "created_at": report["created_at"],
                "expires_at": report["expires_at"],
                "approve_command": approve_command(report["approval_id"]),
            }
            for report in reports
        ], None

    def _registered_token(self, name: str) -> RegisteredToken:
        """The registry's entry for a symbol or mint (NotFound: not registered)."""
        from .tokens import get_token

        with self._database():
            row = get_token(name)
            return RegisteredToken(symbol=row.symbol, mint=row.mint, decimals=int(row.decimals), program=row.program)

    def _token_spend(self, tokens) -> list[dict]:
        """A signature's per-mint spend with its amount in token units where the registry says
        the decimals (the base units always)."""
        decimals: dict[str, int] = {}
        if tokens:
            from .models import TokenMint

            with contextlib.suppress(DatabaseError), self._database():
                decimals = {row.mint: int(row.decimals) for row in TokenMint.select()}
        return [
            {
                "mint": token.mint,
                "symbol": token.symbol,
                **(RegisteredToken(token.symbol, token.mint, decimals[token.mint], "").amount_fields("amount", token.amount)
                   if token.mint in decimals else {"amount": None, "amount_base_units": str(token.amount)}),
            }
            for token in tokens
        ]

    def _preview(self, parsed, wallet: str) -> tuple[dict | None, str | None]:
        from .preview import would_decide

        try:
            with self._database():
                return would_decide(parsed, wallet), None
        except DatabaseError as exc:
            return None, f"no preview of the signer's decision: {exc.message}"

    def _refusal_numbers(self, client, tx_bytes: bytes) -> dict:
        """What the refused transaction spends (counted offline by the signer's parser) and the
        wallet's limits and 24-hour spend, where they can be read."""
        from .solana import describe, parse_transaction_input
        from .solana.pubkey import decode_pubkey

        numbers: dict[str, Any] = {}
        try:
            wallet = client.pubkey()
            report = describe(parse_transaction_input(tx_bytes), wallet=decode_pubkey(wallet, what="wallet"))
        except JarvisWalletError:
            return numbers
        numbers["wallet"] = wallet
        numbers.update(amount_fields("spend", report["spend_lamports"]))
        numbers.update(amount_fields("fee", report["fee_lamports"]))
        limits, _ = self._limits(wallet)
        if limits is not None:
            numbers["limits"] = limits
        return numbers


def served_tools(names: tuple[str, ...] | None, *, chain: bool = False) -> tuple[ToolSpec, ...]:
    """The tools to serve, in the table's order: all (the chain's too with an endpoint), or the
    ones named (InvalidConfig for a name that is not a tool, or a chain tool without --rpc-url)."""
    available = TOOLS + (CHAIN_TOOLS if chain else ())
    if names is None:
        return available
    unknown = [name for name in names if name not in TOOLS_BY_NAME]
    if unknown:
        raise InvalidConfig(f"unknown tool {unknown[0]!r} in --tools; the tools are: {', '.join(TOOLS_BY_NAME)}")
    if not names:
        raise InvalidConfig("--tools names no tool")
    offline = [name for name in names if name not in {spec.name for spec in available}]
    if offline:
        raise InvalidConfig(f"the tool {offline[0]!r} needs an RPC endpoint: pass --rpc-url URL")
    return tuple(spec for spec in available if spec.name in names)


def _checked_rpc_url(url: str) -> str:
    from .chain.rpc import resolve_rpc_url

    return resolve_rpc_url(url, None)


@dataclass(frozen=True)
class RegisteredToken:
    """A token of the operator's registry, as a transfer needs it."""

    symbol: str
    mint: str
    decimals: int
    program: str  # "token" or "token-2022"

    def amount_fields(self, name: str, base_units: int | None) -> dict[str, str | None]:
        """``{name: "12.5 USDC", name_base_units: "12500000"}``: exact strings, never floats."""
        from .amounts import format_token_amount

        if base_units is None:
            return {name: None, f"{name}_base_units": None}
        return {name: format_token_amount(base_units, self.decimals, symbol=self.symbol),
                f"{name}_base_units": str(base_units)}


def _transfer_amount(text: str, token: RegisteredToken | None) -> int:
    """Lamports, or the token's base units, that ``text`` names; more than 0."""
    from .amounts import parse_amount, parse_token_amount

    if token is None:
        amount = parse_amount(text, what="amount")
    else:
        amount = parse_token_amount(text, token.decimals, symbol=token.symbol, what="amount")
    if amount == 0:
        raise ToolError("bad_request", "argument 'amount' must be more than 0")
    return amount


def _transfer_message(rpc, *, wallet: bytes, to: bytes, amount: int, token: RegisteredToken | None,
                      blockhash: bytes, memo: str | None) -> bytes:
    """The payment's message: a System transfer, or a TransferChecked between associated token
    accounts that creates the recipient's only when the chain has none (no rent spent else)."""
    from .solana import associated_token_address, build_token_transfer_message, build_transfer_message
    from .solana.build import TOKEN_PROGRAMS
    from .solana.pubkey import decode_pubkey, encode_pubkey

    if token is None:
        return build_transfer_message(from_pubkey=wallet, to_pubkey=to, lamports=amount, recent_blockhash=blockhash,
                                      memo=memo)
    program = {name: program_id for program_id, name in TOKEN_PROGRAMS.items()}[token.program]
    mint = decode_pubkey(token.mint, what="registered mint")
    destination = encode_pubkey(associated_token_address(to, mint, program))
    exists = rpc.get_account_info(destination, commitment="confirmed") is not None
    return build_token_transfer_message(
        wallet=wallet, owner=to, mint=mint, decimals=token.decimals, token_program=program, amount_base_units=amount,
        recent_blockhash=blockhash, create=not exists, memo=memo,
    )


def approve_command(approval_id: int) -> str:
    return f"jarvis-wallet approvals approve {approval_id}"


def approval_tool_error(exc: ApprovalRequired | ApprovalRefused, *, again: str) -> ToolError:
    """An approval refusal for a model: the request's id and expiry, what is held, the
    operator's exact command, and what (not) to do next. ``again``: how to ask once approved."""
    if isinstance(exc, ApprovalRequired):
        details = exc.details
        approval_id = exc.approval_id
        return ToolError(
            exc.reason,
            f"held for a person's approval (request {approval_id}, until {exc.expires_at}): {exc.message}. "
            "Nothing was signed. Do not ask again and do not split or change the payment to get around it: tell "
            f"the user that an operator must run `{approve_command(approval_id)}`, then call wait_for_approval "
            f"with approval_id {approval_id}; once it says approved, {again}.",
            approval_id=approval_id,
            expires_at=exc.expires_at,
            held={
                **amount_fields("spend", details.get("lamports")),
                **amount_fields("fee", details.get("fee_lamports")),
                "destinations": details.get("destinations") or [],
                "purpose": details.get("purpose"),
            },
            approve_command=approve_command(approval_id),
            deny_command=f"jarvis-wallet approvals deny {exc.approval_id}",
            retry=False,
        )
    what_next = {
        "approval_denied": "A person refused this payment: tell the user, do not retry it.",
        "approval_expired": "Nobody approved it in time: ask the user whether it is still wanted; asking again "
        "opens a new request for a person to approve.",
        "approval_consumed": "That approval was already used for a signature; each approval signs once. A new "
        "payment needs a new approval.",
    }.get(exc.reason, "")
    return ToolError(exc.reason, f"{exc.message}. {what_next}".strip(), approval_id=exc.approval_id, retry=False)


# -- arguments -----------------------------------------------------------------------------------


def check_arguments(spec: ToolSpec, arguments: dict | None) -> dict:
    """The arguments as the schema allows them, or ToolError(bad_request) saying what is wrong.

    Checks every keyword the schemas use (type, required, additionalProperties, minLength,
    maxLength, minimum, maximum, enum); a schema using another one fails the test that walks them.
    """
    arguments = {} if arguments is None else arguments
    if not isinstance(arguments, dict):
        raise ToolError("bad_request", f"{spec.name} takes an object of named arguments")
    schema = spec.input_schema
    properties = schema["properties"]
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        takes = ", ".join(properties) or "no arguments"
        raise ToolError("bad_request", f"unknown argument {unknown[0]!r}; {spec.name} takes: {takes}")
    for name in schema["required"]:
        if name not in arguments:
            raise ToolError("bad_request", f"{spec.name} needs the argument {name!r}")
    for name, value in arguments.items():
        _check_value(name, value, properties[name])
    return dict(arguments)


def _check_value(name: str, value: Any, rule: dict) -> None:
    def bad(text: str) -> ToolError:
        return ToolError("bad_request", f"argument {name!r} {text}")

    kind = rule["type"]
    if kind == "string":
        if not isinstance(value, str):
            raise bad("must be a string")
        if len(value) < rule.get("minLength", 0):
            raise bad("must not be empty")
        if len(value) > rule.get("maxLength", len(value)):
            raise bad(f"is longer than {rule['maxLength']} characters")
    elif kind == "integer":
        # JSON has one number type: 10.0 and true are not integers here.
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("must be a whole number")
        if not rule.get("minimum", value) <= value <= rule.get("maximum", value):
            raise bad(f"must be between {rule['minimum']} and {rule['maximum']}")
    else:  # pragma: no cover - the schemas above use no other type
        raise AssertionError(f"unchecked schema type {kind!r}")
    if "enum" in rule and value not in rule["enum"]:
        raise bad(f"must be one of: {', '.join(rule['enum'])}")


def _decode_transaction(text: str) -> bytes:
    from .solana.transaction import decode_base64_input

    return decode_base64_input(text)


# -- results -------------------------------------------------------------------------------------


def amount_fields(name: str, lamports: int | None) -> dict[str, str | None]:
    """``{name: "0.0015 SOL", name_lamports: "1500000"}``: exact strings, never floats (a JSON
    number above 2^53 loses digits in most model toolchains)."""
    if lamports is None:
        return {name: None, f"{name}_lamports": None}
    return {name: format_sol(lamports), f"{name}_lamports": str(lamports)}


def limits_fields(report: dict) -> dict:
    """A `limits_report` for a model: each amount as SOL and lamports strings, and what the next
    transaction may spend at most (the smaller of the per-transaction limit and what remains)."""
    remaining = report["remaining_24h_lamports"]
    return {
        **amount_fields("per_transaction_limit", report["per_tx_lamports"]),
        **amount_fields("daily_limit", report["daily_lamports"]),
        **amount_fields("spent_24h", report["spent_24h_lamports"]),
        **amount_fields("remaining_24h", remaining),
        **amount_fields("max_next_transaction", min(report["per_tx_lamports"], remaining)),
        # Above it (SOL spend, fee included) a person approves first; None: no approval needed.
        **amount_fields("approval_threshold", report.get("approve_above_lamports")),
        "tokens": [token_limits_fields(entry) for entry in report.get("tokens", [])],
    }


def token_limits_fields(entry: dict) -> dict:
    """One mint's line of ``token_limits_report`` for a model: token units with the symbol and
    base units, as strings."""
    token = RegisteredToken(entry["symbol"] or entry["mint"], entry["mint"], entry["decimals"], "")

    def units(name: str) -> int | None:
        value = entry[f"{name}_base_units"]
        return None if value is None else int(value)

    per_tx, remaining = units("per_tx"), units("remaining_24h")
    return {
        "symbol": entry["symbol"],
        "mint": entry["mint"],
        "decimals": entry["decimals"],
        **token.amount_fields("per_transaction_limit", per_tx),
        **token.amount_fields("daily_limit", units("daily")),
        **token.amount_fields("spent_24h", units("spent_24h")),
        **token.amount_fields("remaining_24h", remaining),
        **token.amount_fields("max_next_transaction", min(per_tx, remaining)),
        **token.amount_fields("approval_threshold", units("approve_above")),
    }


def _recent_row(row: dict) -> dict:
    payments = row["payments"] or []
    reason = row["rejection_reason"]
    return {
        "id": row["id"],
        "created_at": row["created_at"],
        "kind": row["kind"],
        "status": row["status"],
        "purpose": row["purpose"],
        **amount_fields("spend", None if row["kind"] == "message" else row["lamports"]),
        "to": [p["destination"] or p["destination_label"] for p in payments] or (
            [row["destination_address"]] if row["destination_address"] else []
        ),
        "signature": row["signature"],
        "refusal_reason": reason.split(":", 1)[0] if row["status"] == "rejected" and reason else None,
        "refusal_message": reason if row["status"] == "rejected" else None,
        "duplicate_of": row["duplicate_of"],
        "message_text": row["message_text"],
    }


def _public_details(details: dict) -> dict:
    """An error's numbers for a model: each amount in lamports (``lamports``, ``fee_lamports``)
    as the two strings of ``amount_fields``; ids and the rest as they are."""
    public: dict = {}
    for key, value in details.items():
        if (key == "lamports" or key.endswith("_lamports")) and isinstance(value, int) and not isinstance(value, bool):
            name = "spend" if key == "lamports" else key.removesuffix("_lamports")
            public.update(amount_fields(name, value))
        else:
            public[key] = value
    return public


def log_call(name: str, payload: dict, is_error: bool) -> None:
    """One line per tool call on stderr, which MCP clients keep as the server's log: the tool,
    and the outcome's reason code or signature (public values only)."""
    if is_error:
        outcome = f"error {payload.get('reason')}"
    else:
        outcome = "ok" + (f" signature {payload['signature']}" if "signature" in payload else "")
    sys.stderr.write(f"jarvis-wallet mcp: {name}: {outcome}\n")
    sys.stderr.flush()


def result_text(payload: dict) -> str:
    return json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False)


# -- the MCP server ------------------------------------------------------------------------------


def tool_annotations(spec: ToolSpec) -> dict:
    """A tool's annotations as the wire names them (the SDK's server and the front both list them)."""
    return {
        "title": spec.title,
        "readOnlyHint": spec.read_only,
        "destructiveHint": False,
        # A second sign of the same transaction returns the recorded signature.
        "idempotentHint": True,
        "openWorldHint": False,
    }


def build_server(tools: WalletTools):
    """The SDK's low-level server with our two handlers: list the static table, call a tool."""
    import anyio.to_thread
    import mcp.types as types
    from mcp.server.lowlevel import Server
    from mcp.shared.exceptions import MCPError
    from mcp_types import INVALID_PARAMS

    from . import __version__

    listed = types.ListToolsResult(
        tools=[
            types.Tool(
                name=spec.name,
                title=spec.title,
                description=spec.description,
                input_schema=spec.input_schema,
                annotations=types.ToolAnnotations.model_validate(tool_annotations(spec), by_name=False),
            )
            for spec in tools.specs
        ]
    )

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return listed

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            # Blocking socket and database calls go to a thread: calls run side by side.
            payload = await anyio.to_thread.run_sync(tools.call, params.name, params.arguments)
            is_error = False
        except UnknownTool as exc:
            raise MCPError(INVALID_PARAMS, str(exc)) from None
        except ToolError as exc:
            payload, is_error = exc.payload, True
        except Exception:  # noqa: BLE001 - the model gets a sentence; the log gets the traceback
            traceback.print_exc(file=sys.stderr)
            payload = {
                "ok": False, "reason": "internal_error",
                "message": "internal error in the MCP server (its log has the details); a sign_transaction may still "
                "have been signed: asking again with the same transaction returns it as duplicate, counted once",
            }
            is_error = True
        log_call(params.name, payload, is_error)
        return types.CallToolResult(
            content=[types.TextContent(text=result_text(payload))],
            structured_content=payload,
            is_error=is_error,
        )

    return Server(
        SERVER_NAME,
        version=__version__,
        title=SERVER_TITLE,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def serve_stdio(settings: McpSettings = McpSettings()) -> None:
    """Serve the tools on stdin/stdout until the client closes stdin.

    The key check and the settings come first; then ``mcp_front`` answers the handshake and
    ``tools/list`` while the SDK loads in a thread, and hands the session to the server
    ``build_server`` makes.
    """
    check_environment()
    tools = WalletTools(settings)  # its settings checked before the SDK's long import
    from .mcp_front import serve

    serve(tools)


__all__ = [
    "TOOLS",
    "McpSettings",
    "ToolError",
    "WalletTools",
    "amount_fields",
    "build_server",
    "check_arguments",
    "serve_stdio",
]
