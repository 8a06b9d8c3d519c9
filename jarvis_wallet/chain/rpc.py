"""A Solana JSON-RPC client for the few methods jarvis-wallet calls, strict about what comes back.

Why not the ``solana`` package's client: its current release (0.41) has only an asyncio client
(the synchronous ``solana.rpc.api`` is gone), importing it costs about 200 ms (the whole CLI
imports in about 60 ms) and pulls pydantic, websockets, aiolimiter and HTTP/2 along, it retries
transport errors only (not 429 or 5xx) and hands back a foreign exception or a raw error
object we would have to translate anyway. Seven methods over ``urllib`` are less code than that
wrapper, and every answer is checked here field by field. ``solana``/``solders`` stay the test
oracle: the tests parse what the test endpoint answers with ``solders.rpc.responses``.

Every failure is a one-line ``ChainError``: the endpoint down, slow (``timeout``), answering 429
or 5xx after ``retries`` retries with exponential backoff (a ``Retry-After`` of a few seconds
is honoured), or answering something that is not the method's JSON-RPC response. Messages name
the endpoint by scheme and host only: the path and query of a provider's URL often hold its API
key.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ChainError, InvalidConfig, RpcBadResponse, RpcUnavailable, TransactionRefused

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_RETRIES = 3
BACKOFF_SECONDS = 0.25  # first wait; doubled on each retry
MAX_RETRY_AFTER_SECONDS = 5.0
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# getSignatureStatuses takes at most 256 signatures per call.
MAX_SIGNATURES_PER_STATUS_CALL = 256
COMMITMENTS = ("processed", "confirmed", "finalized")
_COMMITMENT_RANK = {name: rank for rank, name in enumerate(COMMITMENTS)}
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class LatestBlockhash:
    blockhash: str  # base58
    last_valid_block_height: int
    slot: int  # the context slot it was read at


@dataclass(frozen=True)
class SignatureStatus:
    """One entry of getSignatureStatuses: the transaction landed (in ``slot``) and ran with
    ``err`` (None: it succeeded)."""

    slot: int
    err: object | None
    confirmation_status: str | None  # processed, confirmed, finalized (None: an old node: use confirmations)
    confirmations: int | None  # None once rooted

    def reached(self, commitment: str) -> bool:
        """Whether the status is at least ``commitment``."""
        status = self.confirmation_status
        if status is None:  # nodes before 1.5: confirmations None means rooted (finalized)
            status = "finalized" if self.confirmations is None else "confirmed"
        return _COMMITMENT_RANK[status] >= _COMMITMENT_RANK[commitment]


@dataclass(frozen=True)
class LandedTransaction:
    """What getTransaction says of a landed transaction: enough to count what it cost."""

    slot: int
    err: object | None
    fee: int
    account_keys: tuple[str, ...]  # static keys, in order (the first pays the fee)
    pre_balances: tuple[int, ...]
    post_balances: tuple[int, ...]

    def lamports_lost(self, address: str) -> int:
        """Lamports that left ``address`` (0 if it gained or is not a static key)."""
        if address not in self.account_keys:
            return 0
        index = self.account_keys.index(address)
        if index >= len(self.pre_balances) or index >= len(self.post_balances):
            return 0
        return max(0, self.pre_balances[index] - self.post_balances[index])


def endpoint_label(url: str) -> str:
    """``https://api.example.com``: scheme and host only (the rest may hold an API key)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def resolve_rpc_url(flag: str | None, configured: str | None) -> str:
    """``--rpc-url`` if given, else the ``rpc_url`` setting, else a clear error."""
    from ..settings import validate_setting

    url = flag if flag is not None else configured
    if not url:
        raise InvalidConfig(
            "no Solana RPC endpoint: pass --rpc-url URL or run `jarvis-wallet config set rpc_url URL`"
        )
    return validate_setting("rpc_url", url)[1]


def _answers(method: str):
    """Turn a wrongly shaped answer of ``method`` into one RpcBadResponse naming the endpoint."""

    def wrap(function):
        @functools.wraps(function)
        def checked(self, *args, **kwargs):
            try:
                return function(self, *args, **kwargs)
            except _Shape as exc:
                raise self._garbage(method, str(exc)) from None

        return checked

    return wrap


class RpcClient:
    """Calls one endpoint; safe to share within a thread, not across threads."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retries: int = DEFAULT_RETRIES,
        backoff: float = BACKOFF_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidConfig(f"invalid RPC endpoint {endpoint_label(url)!r}: expected an http or https URL")
        self.url = url
        self.label = endpoint_label(url)
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self._next_id = 1

    # -- the methods ---------------------------------------------------------------------------

    @_answers("getBalance")
    def get_balance(self, address: str, *, commitment: str = "confirmed") -> int:
        value = _context_value(self.call("getBalance", [address, {"commitment": commitment}]), "getBalance")
        return _u64(value, "getBalance value")

    @_answers("getLatestBlockhash")
    def get_latest_blockhash(self, *, commitment: str = "confirmed") -> LatestBlockhash:
        result = self.call("getLatestBlockhash", [{"commitment": commitment}])
        value = _context_value(result, "getLatestBlockhash")
        blockhash = _field(value, "blockhash", str, "getLatestBlockhash")
        _check_base58(blockhash, 32, "getLatestBlockhash blockhash")
        return LatestBlockhash(
            blockhash=blockhash,
            last_valid_block_height=_u64(_field(value, "lastValidBlockHeight", int, "getLatestBlockhash"), "lastValidBlockHeight"),
            slot=_u64(_field(result["context"], "slot", int, "getLatestBlockhash context"), "slot"),
        )

    @_answers("getBlockHeight")
    def get_block_height(self, *, commitment: str = "finalized") -> int:
        return _u64(self.call("getBlockHeight", [{"commitment": commitment}]), "getBlockHeight")

    @_answers("sendTransaction")
    def send_transaction(
        self, transaction: bytes, *, skip_preflight: bool = False, preflight_commitment: str = "confirmed"
    ) -> str:
        """Submit a signed transaction; its base58 signature. A failed preflight simulation (or
        any refusal) is ``TransactionRefused`` with the endpoint's reason."""
        config = {
            "encoding": "base64",
            "skipPreflight": skip_preflight,
            "preflightCommitment": preflight_commitment,
        }
        params = [base64.b64encode(transaction).decode("ascii"), config]
        signature = self.call("sendTransaction", params, refused=TransactionRefused)
        if not isinstance(signature, str):
            raise _Shape("a result that is not a signature")
        _check_base58(signature, 64, "sendTransaction signature")
        return signature

    @_answers("getSignatureStatuses")
    def get_signature_statuses(self, signatures: Sequence[str]) -> list[SignatureStatus | None]:
        """Statuses in the order asked, searching the endpoint's whole history; None: unknown.
        At most 256 signatures (the method's own limit)."""
        if len(signatures) > MAX_SIGNATURES_PER_STATUS_CALL:
            raise ValueError(f"at most {MAX_SIGNATURES_PER_STATUS_CALL} signatures per call")
        if not signatures:
            return []
        result = self.call("getSignatureStatuses", [list(signatures), {"searchTransactionHistory": True}])
        value = _context_value(result, "getSignatureStatuses")
        if not isinstance(value, list) or len(value) != len(signatures):
            raise _Shape(f"{_kind(value)} instead of a list of {len(signatures)} statuses")
        return [None if entry is None else _status(entry) for entry in value]

    @_answers("getTransaction")
    def get_transaction(self, signature: str, *, commitment: str = "finalized") -> LandedTransaction | None:
        config = {"encoding": "json", "commitment": commitment, "maxSupportedTransactionVersion": 0}
        result = self.call("getTransaction", [signature, config])
        if result is None:
            return None
        what = "getTransaction"
        meta = _field(result, "meta", dict, what)
        message = _field(_field(result, "transaction", dict, what), "message", dict, what)
        keys = _field(message, "accountKeys", list, what)
        if not all(isinstance(key, str) for key in keys):
            raise _Shape("account keys that are not strings")
        return LandedTransaction(
            slot=_u64(_field(result, "slot", int, what), "slot"),
            err=meta.get("err"),
            fee=_u64(_field(meta, "fee", int, what), "fee"),
            account_keys=tuple(keys),
            pre_balances=tuple(_u64(v, "preBalances") for v in _field(meta, "preBalances", list, what)),
            post_balances=tuple(_u64(v, "postBalances") for v in _field(meta, "postBalances", list, what)),
        )

    @_answers("getAccountInfo")
    def get_account_info(self, address: str, *, commitment: str = "confirmed") -> tuple[bytes, int, bytes] | None:
        """(owner as 32 bytes, lamports, data) of an account, or None if it does not exist."""
        from ..solana.pubkey import decode_pubkey

        config = {"encoding": "base64", "commitment": commitment}
        value = _context_value(self.call("getAccountInfo", [address, config]), "getAccountInfo")
        if value is None:
            return None
        what = "getAccountInfo"
        owner = _field(value, "owner", str, what)
        data = _field(value, "data", list, what)
        if len(data) != 2 or data[1] != "base64" or not isinstance(data[0], str):
            raise _Shape("data that is not [base64, \"base64\"]")
        try:
            raw = base64.b64decode(data[0], validate=True)
            owner_bytes = decode_pubkey(owner, what="account owner")
        except Exception as exc:  # noqa: BLE001 - any decoding failure is garbage
            raise _Shape(f"an unreadable owner or data ({type(exc).__name__})") from None
        return owner_bytes, _u64(_field(value, "lamports", int, what), "lamports"), raw

    @_answers("getTokenAccountBalance")
    def get_token_account_balance(self, address: str, *, commitment: str = "confirmed") -> tuple[int, int] | None:
        """(base units, decimals) held by a token account, or None when there is no token
        account at ``address`` (the method's invalid-params error: no account, or not a token
        account)."""
        try:
            result = self.call("getTokenAccountBalance", [address, {"commitment": commitment}], refused=_InvalidParams)
        except _InvalidParams as exc:
            if (exc.details or {}).get("rpc_error_code") == INVALID_PARAMS:
                return None
            raise ChainError(exc.message, details=exc.details) from None
        value = _context_value(result, "getTokenAccountBalance")
        amount = _field(value, "amount", str, "getTokenAccountBalance")
        if not amount.isdigit() or len(amount) > 20 or int(amount) >= 2**64:
            raise _Shape("an amount that is not a u64 in decimal text")
        decimals = _field(value, "decimals", int, "getTokenAccountBalance")
        if not 0 <= decimals <= 255:
            raise _Shape("decimals outside 0..255")
        return int(amount), decimals

    # -- the transport -------------------------------------------------------------------------

    def call(self, method: str, params: list, *, refused: type[ChainError] = ChainError):
        """One JSON-RPC call with retries; its ``result``. An ``error`` answer raises ``refused``."""
        request_id = self._next_id
        self._next_id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode()
        text = self._post(method, body)
        try:
            answer = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise self._garbage(method, "the answer is not JSON") from None
        if not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0" or answer.get("id") != request_id:
            raise self._garbage(method, "the answer is not a JSON-RPC 2.0 response to this request")
        if "error" in answer:
            error = answer["error"]
            if not isinstance(error, dict) or not isinstance(error.get("message"), str):
                raise self._garbage(method, "its error has no message")
            raise refused(
                f"RPC endpoint {self.label} refused {method}: {_one_line(error['message'])} "
                f"(code {error.get('code')})",
                details={"rpc_error_code": error.get("code"), "rpc_error_data": error.get("data")},
            )
        if "result" not in answer:
            raise self._garbage(method, "it holds neither a result nor an error")
        return answer["result"]

    def _post(self, method: str, body: bytes) -> bytes:
        import socket
        import urllib.error
        import urllib.request

        attempt = 0
        while True:
            request = urllib.request.Request(
                self.url, data=body, method="POST",
                headers={"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "jarvis-wallet"},
            )
            wait = None
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:
                    data = response.read(MAX_RESPONSE_BYTES + 1)
                if len(data) > MAX_RESPONSE_BYTES:
                    raise self._garbage(method, f"the answer is larger than {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB")
                return data
            except urllib.error.HTTPError as exc:
                status = exc.code
                exc.close()
                if status != 429 and status < 500:
                    raise RpcUnavailable(f"RPC endpoint {self.label} answered {method} with HTTP {status}") from None
                failure = f"answered HTTP {status}" + (" (rate limited)" if status == 429 else "")
                wait = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            except (TimeoutError, socket.timeout):
                raise RpcUnavailable(
                    f"RPC endpoint {self.label} did not answer {method} within {self._timeout:g} s"
                ) from None
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                    raise RpcUnavailable(
                        f"RPC endpoint {self.label} did not answer {method} within {self._timeout:g} s"
                    ) from None
                failure = f"cannot be reached ({_one_line(str(getattr(exc.reason, 'strerror', None) or exc.reason))})"
            except (OSError, ValueError) as exc:  # reset mid-answer, a bad status line, ...
                failure = f"broke off the answer ({type(exc).__name__})"
            if attempt >= self._retries:
                retried = f" after {attempt} retr{'y' if attempt == 1 else 'ies'}" if attempt else ""
                raise RpcUnavailable(f"RPC endpoint {self.label} {failure} for {method}{retried}")
            self._sleep(wait if wait is not None else self._backoff * (2**attempt))
            attempt += 1

    def _garbage(self, method: str, why: str) -> RpcBadResponse:
        return RpcBadResponse(f"RPC endpoint {self.label} answered {method} with garbage: {why}")


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or not 0 <= seconds <= MAX_RETRY_AFTER_SECONDS:
        return None
    return seconds


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _kind(value) -> str:
    return "null" if value is None else type(value).__name__


INVALID_PARAMS = -32602  # JSON-RPC's code; getTokenAccountBalance's answer for "no token account here"


class _InvalidParams(ChainError):
    """An error answer, told apart in get_token_account_balance."""


class _Shape(Exception):
    """An answer of the wrong shape; ``_answers`` names the endpoint and the method."""


def _context_value(result, what: str):
    """The ``value`` of an ``{"context": {"slot": N}, "value": ...}`` result."""
    if not isinstance(result, dict) or not isinstance(result.get("context"), dict) or "value" not in result:
        raise _Shape(f"{_kind(result)} instead of {{context, value}}")
    return result["value"]


def _field(obj, key: str, kind: type, what: str):
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Shape(f"no valid {key!r} ({_kind(value)})")
    return value


def _u64(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise _Shape(f"a {what} that is not a u64 ({_kind(value)})")
    return value


def _check_base58(text: str, length: int, what: str) -> None:
    import base58

    try:
        ok = len(base58.b58decode(text)) == length and len(text) <= 88
    except ValueError:
        ok = False
    if not ok:
        raise _Shape(f"a {what} that is not base58 of {length} bytes")


def _status(entry) -> SignatureStatus:
    what = "getSignatureStatuses"
    if not isinstance(entry, dict):
        raise _Shape(f"a status that is {_kind(entry)}")
    confirmation = entry.get("confirmationStatus")
    if confirmation is not None and confirmation not in COMMITMENTS:
        raise _Shape(f"confirmationStatus {str(confirmation)[:20]!r}")
    confirmations = entry.get("confirmations")
    if confirmations is not None:
        confirmations = _u64(confirmations, "confirmations")
    return SignatureStatus(
        slot=_u64(_field(entry, "slot", int, what), "slot"),
        err=entry.get("err"),
        confirmation_status=confirmation,
        confirmations=confirmations,
    )
