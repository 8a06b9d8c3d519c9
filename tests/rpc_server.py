"""A local Solana JSON-RPC endpoint backed by LiteSVM, for tests (this machine has no validator).

    with RpcServer() as rpc:                 # http://127.0.0.1:PORT, a real HTTP server
        rpc.chain.fund(wallet, 10 * SOL)     # tests/runtime.Chain: balances, fees, errors are real
        ...                                  # the CLI and the library talk to rpc.url
        rpc.advance(151)                     # 151 blocks: every blockhash handed out before expires

It implements exactly the methods jarvis-wallet calls, with the shapes of the Solana RPC
documentation (tests/test_rpc_server.py parses every answer with ``solders.rpc.responses``,
the ``solana`` package's own response types): getBalance, getLatestBlockhash,
getBlockHeight, sendTransaction (preflight simulation unless skipPreflight), getSignatureStatuses,
getTransaction (json encoding), getAccountInfo (base64) and getTokenAccountBalance. A blockhash is valid for 150
blocks after the height it was handed out at, as on a cluster; a transaction that landed is
``finalized`` at once (LiteSVM has no forks).

Faults, for the next ``count`` requests (None: until cleared): ``down`` (the socket is closed:
connection refused), ``slow`` (answers after ``slow_seconds``), ``429``, ``500``/``503``,
``garbage`` (not JSON), ``wrong_shape`` (JSON-RPC with a result of the wrong shape).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import base58
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import TransactionConfirmationStatus, TransactionStatus

from runtime import Chain

TOKEN_PROGRAMS = ("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
BLOCKHASH_LIFETIME_BLOCKS = 150  # MAX_PROCESSING_AGE: a blockhash is valid for 150 blocks after its own


class RpcServer:
    def __init__(self, chain: Chain | None = None, *, start_height: int = 1_000) -> None:
        self.chain = chain or Chain()
        self.chain.svm.with_blockhash_check(False)  # the server keeps the 150-block rule itself
        self.block_height = start_height
        self.valid: dict[str, int] = {}  # blockhash -> last valid block height
        self.landed: dict[str, dict] = {}  # signature -> what getSignatureStatuses/getTransaction answer
        self.calls: list[tuple[str, list]] = []  # every method called, with its params
        self.exchanges: list[tuple[bytes, bytes]] = []  # (request body, answer body) of every JSON-RPC answer
        self.fault: str | None = None
        self.fault_count: int | None = None
        self.slow_seconds = 3.0
        self._lock = threading.RLock()
        self._note_latest()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> RpcServer:
        server = ThreadingHTTPServer(("127.0.0.1", self.port or 0), _handler(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> RpcServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_fault(self, fault: str | None, count: int | None = None) -> None:
        with self._lock:
            self.fault, self.fault_count = fault, count
        if fault == "down":
            self.stop()
        elif self._server is None and self.port is not None:
            self.start()

    # -- the chain -----------------------------------------------------------------------------

    @property
    def slot(self) -> int:
        return self.chain.svm.get_clock().slot

    def _note_latest(self) -> None:
        self.valid.setdefault(str(self.chain.blockhash), self.block_height + BLOCKHASH_LIFETIME_BLOCKS)

    def advance(self, blocks: int = 1) -> None:
        """Produce ``blocks`` blocks: block height and slot move on, each with a new blockhash."""
        with self._lock:
            for _ in range(blocks):
                self.block_height += 1
                self.chain.svm.warp_to_slot(self.slot + 1)
                self.chain.svm.expire_blockhash()
                self._note_latest()

    def latest(self) -> tuple[str, int]:
        """The current blockhash and its last valid block height (what getLatestBlockhash says)."""
        with self._lock:
            blockhash = str(self.chain.blockhash)
            return blockhash, self.valid[blockhash]

    def method_calls(self, method: str) -> list[list]:
        return [params for name, params in self.calls if name == method]

    # -- the methods ---------------------------------------------------------------------------

    def dispatch(self, method: str, params: list):
        with self._lock:
            self.calls.append((method, params))
            handler = getattr(self, "_" + method, None)
            if handler is None:
                raise _RpcError(-32601, "Method not found")
            return handler(*params)

    def _context(self, value):
        return {"context": {"apiVersion": "2.2.0", "slot": self.slot}, "value": value}

    def _getBalance(self, address: str, config: dict | None = None):
        return self._context(self.chain.balance(_pubkey(address)))

    def _getLatestBlockhash(self, config: dict | None = None):
        blockhash = str(self.chain.blockhash)
        return self._context({"blockhash": blockhash, "lastValidBlockHeight": self.valid[blockhash]})

    def _getBlockHeight(self, config: dict | None = None):
        return self.block_height

    def _getAccountInfo(self, address: str, config: dict | None = None):
        if (config or {}).get("encoding") != "base64":
            raise _RpcError(-32602, "only base64 encoding is served here")
        account = self.chain.account(_pubkey(address))
        if account is None:
            return self._context(None)
        return self._context({
            "data": [base64.b64encode(bytes(account.data)).decode(), "base64"],
            "executable": account.executable, "lamports": account.lamports, "owner": str(account.owner),
            "rentEpoch": 18446744073709551615, "space": len(account.data),
        })

    def _getTokenAccountBalance(self, address: str, config: dict | None = None):
        """As a validator answers: the amount as decimal text with the mint's decimals, or
        invalid params when there is no token account at the address."""
        account = self.chain.account(_pubkey(address))
        if account is None:
            raise _RpcError(-32602, "Invalid param: could not find account")
        data = bytes(account.data)
        if str(account.owner) not in TOKEN_PROGRAMS or len(data) < 165 or (len(data) > 165 and data[165] != 2):
            raise _RpcError(-32602, "Invalid param: not a Token account")
        mint = self.chain.account(Pubkey(data[:32]))
        if mint is None or len(bytes(mint.data)) < 82:
            raise _RpcError(-32602, "Invalid param: could not find mint")
        amount, decimals = int.from_bytes(data[64:72], "little"), bytes(mint.data)[44]
        whole, fraction = divmod(amount, 10**decimals)
        text = f"{whole}.{fraction:0{decimals}d}".rstrip("0").rstrip(".") if decimals else str(whole)
        return self._context({
            "amount": str(amount), "decimals": decimals, "uiAmount": amount / 10**decimals, "uiAmountString": text,
        })

    def _sendTransaction(self, encoded: str, config: dict | None = None):
        config = config or {}
        if config.get("encoding") != "base64":
            raise _RpcError(-32602, "only base64 encoding is served here")
        try:
            tx = VersionedTransaction.from_bytes(base64.b64decode(encoded))
        except Exception:  # noqa: BLE001
            raise _RpcError(-32602, "failed to deserialize VersionedTransaction: io error") from None
        signature = str(tx.signatures[0])
        blockhash = str(tx.message.recent_blockhash)
        expired = self.valid.get(blockhash, -1) < self.block_height
        if not config.get("skipPreflight"):
            if expired:
                raise _simulation_failed("BlockhashNotFound", [])
            simulated = self.chain.svm.simulate_transaction(tx)
            if isinstance(simulated, FailedTransactionMetadata):
                raise _simulation_failed(_err_json(simulated.err()), simulated.meta().logs())
        if expired or signature in self.landed:
            return signature  # accepted, never lands (as a cluster drops a stale or repeated one)
        keys = [str(key) for key in tx.message.account_keys]
        pre = [self.chain.balance(_pubkey(key)) for key in keys]
        result = self.chain.svm.send_transaction(tx)
        failed = isinstance(result, FailedTransactionMetadata)
        meta = result.meta() if failed else result
        if failed and meta.fee() == 0:
            return signature  # not even the fee could be charged (bad signature, no payer): not landed
        post = [self.chain.balance(_pubkey(key)) for key in keys]
        self.landed[signature] = {
            "slot": self.slot, "err": _err_json(result.err()) if failed else None, "fee": meta.fee(),
            "keys": keys, "pre": pre, "post": post, "logs": list(meta.logs()), "tx": encoded,
        }
        self.advance(1)  # the block it landed in
        return signature

    def _getSignatureStatuses(self, signatures: list, config: dict | None = None):
        if len(signatures) > 256:
            raise _RpcError(-32602, "Too many inputs provided; max 256")
        statuses = []
        for signature in signatures:
            landed = self.landed.get(signature)
            if landed is None:
                statuses.append(None)
                continue
            err = landed["err"]
            statuses.append({
                "slot": landed["slot"], "confirmations": None,
                "status": {"Ok": None} if err is None else {"Err": err}, "err": err,
                "confirmationStatus": "finalized",
            })
        return self._context(statuses)

    def _getTransaction(self, signature: str, config: dict | None = None):
        landed = self.landed.get(signature)
        if landed is None:
            return None
        decoded = VersionedTransaction.from_bytes(base64.b64decode(landed["tx"]))
        message = json.loads(decoded.message.to_json()) if hasattr(decoded.message, "to_json") else {}
        err = landed["err"]
        return {
            "slot": landed["slot"], "blockTime": None, "version": "legacy",
            "transaction": {
                "signatures": [str(s) for s in decoded.signatures],
                "message": {
                    "accountKeys": landed["keys"],
                    "header": message.get("header", {}),
                    "recentBlockhash": str(decoded.message.recent_blockhash),
                    "instructions": [
                        {"programIdIndex": ix.program_id_index, "accounts": list(ix.accounts),
                         "data": base58.b58encode(bytes(ix.data)).decode(), "stackHeight": None}
                        for ix in decoded.message.instructions
                    ],
                },
            },
            "meta": {
                "err": err, "status": {"Ok": None} if err is None else {"Err": err}, "fee": landed["fee"],
                "preBalances": landed["pre"], "postBalances": landed["post"], "innerInstructions": [],
                "logMessages": landed["logs"], "preTokenBalances": [], "postTokenBalances": [], "rewards": [],
                "loadedAddresses": {"writable": [], "readonly": []}, "computeUnitsConsumed": 0,
            },
        }


class _RpcError(Exception):
    def __init__(self, code: int, message: str, data=None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def _simulation_failed(err, logs) -> _RpcError:
    reason = "Blockhash not found" if err == "BlockhashNotFound" else f"Error processing transaction: {json.dumps(err)}"
    return _RpcError(
        -32002, f"Transaction simulation failed: {reason}",
        {"accounts": None, "err": err, "innerInstructions": None, "loadedAccountsDataSize": 0, "logs": list(logs),
         "replacementBlockhash": None, "returnData": None, "unitsConsumed": 0},
    )


def _err_json(err):
    """A TransactionError as the RPC shows it (solders' own serialisation)."""
    return json.loads(TransactionStatus(0, None, None, err, TransactionConfirmationStatus.Finalized).to_json())["err"]


def _pubkey(text: str):
    from solders.pubkey import Pubkey

    try:
        return Pubkey.from_string(text)
    except ValueError:
        raise _RpcError(-32602, f"Invalid param: {text!r}") from None


def _handler(server: RpcServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            fault = self._take_fault()
            if fault == "slow":
                time.sleep(server.slow_seconds)
            elif fault in ("429", "500", "503"):
                self._reply(int(fault), b"busy", "text/plain", {"Retry-After": "0"} if fault == "429" else {})
                return
            elif fault == "garbage":
                self._reply(200, b"<html>502 Bad Gateway</html>", "text/html")
                return
            try:
                request = json.loads(body)
                request_id = request["id"]
            except (ValueError, KeyError, TypeError):
                self._reply(200, json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}).encode())
                return
            if fault == "wrong_shape":
                self._reply(200, json.dumps({"jsonrpc": "2.0", "id": request_id, "result": {"value": "a lot"}}).encode())
                return
            try:
                answer = {"jsonrpc": "2.0", "id": request_id, "result": server.dispatch(request["method"], request.get("params", []))}
            except _RpcError as exc:
                error = {"code": exc.code, "message": exc.message}
                if exc.data is not None:
                    error["data"] = exc.data
                answer = {"jsonrpc": "2.0", "id": request_id, "error": error}
            body_out = json.dumps(answer).encode()
            with server._lock:
                server.exchanges.append((body, body_out))
            self._reply(200, body_out)

        def _take_fault(self):
            with server._lock:
                fault = server.fault
                if fault is None or fault == "down":
                    return None
                if server.fault_count is not None:
                    server.fault_count -= 1
                    if server.fault_count <= 0:
                        server.fault, server.fault_count = None, None
                return fault

        def _reply(self, status: int, body: bytes, content_type: str = "application/json", headers: dict | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (a slow answer after its timeout)

    return Handler


def signature_of(signed_transaction: bytes) -> str:
    return str(Signature.from_bytes(signed_transaction[1:65]))
