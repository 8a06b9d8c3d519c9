"""Wire protocol fuzzing against live signers: real forks, real sockets, SQLite in a temp dir.

    .venv/bin/python campaigns/fuzz_protocol.py --seconds 300 --seed 1 --json

Two signers share one database: one whose wallet has spend limits, and one whose wallet never
gets any. The campaign sends them generated and mutated frames, case after case, by category:
valid requests with one field broken, wrong JSON types, huge numbers, deep nesting, invalid
UTF-8, missing newlines, many frames in one write, byte-at-a-time writes, random bytes, random
JSON objects, valid-HMAC requests carrying mutated transactions (bit flips, truncation,
extension, instruction swaps and duplicates, header and index edits), requests for the wallet
without limits, over-limit and boundary requests, policy refusals, replays, stale and forged
requests, off-chain messages, legacy-shaped requests, over-long lines and connection churn.

Every reply is checked against a model of the documented protocol (docs/protocol.md): the
shape verdict (hand-written for targeted cases), the HMAC (computed here from section 5.1,
not with jarvis_wallet's code), freshness, single use, and the spend policy with the spend
tracked from the replies. Signatures are verified with PyNaCl. After every case the limited
signer must answer a ping; every ``--check-every`` cases a fresh connection must ping and get
a valid, verified signature, and both signers must report their original pid.

At the end the database is audited: every row belongs to a request this campaign sent with a
valid HMAC, no row belongs to a frame that was never completed, every ``signed`` row is a
message the campaign sent whose signature verifies and which passes the policy under the
limits in force at the time (checked again in order, and against a spend floor computed
independently with solders), neither ceiling was ever exceeded, every signature the campaign
saw has its row and every signed row was seen; no signer restarted and neither wrote a
traceback. Any violation makes the exit status 1.

Replies that break the documented protocol without breaching a safety invariant, and that
are known bugs, are counted under ``known_deviations`` (see KNOWN_DEVIATIONS) instead of as
violations, so the campaign stays a regression gate for everything else.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import hashlib
import hmac as hmac_module
import json
import os
import platform
import random
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import base58
import nacl.exceptions
import nacl.signing
from solders.message import MessageV0, from_bytes_versioned

from fuzz_parser import mutate_bytes, mutate_spec, print_report, spec_from_message
from jarvis_wallet import protocol
from jarvis_wallet.errors import InvalidTransaction, JarvisWalletError
from jarvis_wallet.policy import DEFAULT_PROGRAM_ALLOWLIST, Limits, decide
from jarvis_wallet.solana import build_offchain_message, build_transfer_message, parse_transaction_input
from jarvis_wallet.solana.build import AccountMeta, Instruction, compile_message
from jarvis_wallet.solana.programs import MEMO_V2_PROGRAM_ID, SYSTEM_PROGRAM_ID
from jarvis_wallet.solana.shortvec import encode_shortvec

FEE = 5_000  # one signature
DEFAULT_PER_TX = 1_000_000
HEALTH_LAMPORTS = 1_000
REPLY_TIMEOUT_SECONDS = 20.0
FRESH_REPLAY_SECONDS = 15.0  # replays are picked among frames younger than this
MAX_EXAMPLES = 25

# Replies that break docs/protocol.md without breaching a safety invariant and are known bugs:
# name -> what happens. The model marks where each may appear (Outcome.deviation); they are
# counted apart so the campaign stays a regression gate for everything else. Empty since
# 3903ad5 fixed the two this campaign found (see docs/reliability.md).
KNOWN_DEVIATIONS: dict[str, str] = {}


# --- what the campaign knows about each signer ------------------------------------------------


@dataclass
class Wallet:
    """One live signer: its handle, its public key and the shared secret it checks."""

    name: str
    handle: object  # jarvis_wallet.signer.SignerHandle
    public_key: bytes
    secret: bytes
    has_limits: bool

    @property
    def address(self) -> str:
        return base58.b58encode(self.public_key).decode()

    @property
    def socket_path(self) -> Path:
        return Path(self.handle.socket_path)


def campaign_hmac(secret: bytes, fields: dict) -> str:
    """docs/protocol.md section 5.1, written from the text and not from jarvis_wallet's code."""
    parts = [b"jarvis-wallet/v1\n"]
    for name in sorted((name for name in fields if name != "hmac"), key=lambda n: n.encode()):
        value = fields[name]
        raw = (
            str(value).encode()
            if isinstance(value, int) and not isinstance(value, bool)
            else str(value).encode("utf-8")
        )
        key = name.encode()
        parts.append(b"%d:%s,%d:%s," % (len(key), key, len(raw), raw))
    return hmac_module.new(secret, b"".join(parts), hashlib.sha256).hexdigest()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_id() -> str:
    return str(uuid.uuid4())


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def to_line(obj, *, ascii_only: bool = True) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=ascii_only).encode("utf-8", "surrogatepass") + b"\n"


# --- cases -----------------------------------------------------------------------------------


@dataclass
class Sent:
    """One complete line and what the campaign knows about it by construction."""

    line: bytes  # with its b"\n"
    wallet: Wallet
    category: str
    hand_code: str | None = None  # the documented outcome, when the case was built to get it
    hand_codes: frozenset | None = None  # or a set of acceptable codes
    authenticated: bool = False  # set once the model has seen it pass HMAC, freshness and single use
    # How deep JSON may nest depends on the interpreter's recursion limit and stack, which differ
    # between this process (hypothesis raises the limit) and the signer's threads: near the limit
    # the signer may refuse the frame as undecodable and echo no requestId.
    echo_may_be_null: bool = False


@dataclass
class Case:
    category: str
    wallet: Wallet
    sents: list[Sent] = field(default_factory=list)
    chunks: list[bytes] | None = None  # default: all lines in one write
    fresh_connection: bool = False
    signer_closes: str | None = None  # connection-level error code expected last, then EOF
    incomplete_ids: list[str] = field(default_factory=list)  # never completed: must never be recorded
    partial_frames: int = 0
    byte_at_a_time: bool = False

    @property
    def composable(self) -> bool:
        return not (self.fresh_connection or self.signer_closes or self.chunks or self.incomplete_ids)

    def data(self) -> bytes:
        return b"".join(sent.line for sent in self.sents)


# --- the connection ----------------------------------------------------------------------------


class Link:
    """A raw connection: write bytes, read reply lines; None once the signer closed it."""

    def __init__(self, path: Path, timeout: float = REPLY_TIMEOUT_SECONDS) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buffer = bytearray()

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def reply(self):
        """The next reply (a dict), None at EOF, or the raw line if it is not JSON."""
        while b"\n" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk
        end = self.buffer.index(b"\n")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 1]
        try:
            return json.loads(line)
        except ValueError:
            return line

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


# --- the campaign ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the model expects for one line."""

    code: str  # "ok" or an error code
    echo: str | None
    op: str | None = None
    check: Callable[[dict], str | None] | None = None  # extra checks of an ok reply
    on_match: Callable[[dict], None] | None = None  # model update once the reply agrees
    deviation: str | None = None  # a known deviation that may be observed instead
    deviation_code: str | None = None


@dataclass
class SentRecord:
    """A request with a valid HMAC that could reach the signing path."""

    wallet: str
    kind: str  # "tx" or "message"
    signing_bytes: bytes
    category: str


class ProtocolCampaign:
    def __init__(
        self,
        *,
        limited: Wallet,
        unlimited: Wallet,
        database_url: str,
        rng: random.Random,
        check_every: int = 10,
        per_tx: int = DEFAULT_PER_TX,
    ) -> None:
        self.limited, self.unlimited = limited, unlimited
        self.database_url = database_url
        self.rng = rng
        self.check_every = check_every
        self.pids = {limited.name: limited.handle.pid, unlimited.name: unlimited.handle.pid}
        # model
        self.per_tx = self.base_per_tx = per_tx
        self.daily = 0
        self.spent = 0
        self.epochs: list[tuple[int, int, int]] = []  # (rows with id > this use these limits, per_tx, daily)
        self.used_ids: dict[str, set[str]] = {limited.name: set(), unlimited.name: set()}
        self.recorded_ids: set[str] = set()
        self.signed_digests: dict[tuple[str, str], str] = {}  # (wallet, sha256) -> signature
        # records
        self.sent_valid: dict[str, SentRecord] = {}
        self.incomplete_ids: set[str] = set()
        self.visible: list[tuple[str, str, int, bool, str]] = []  # (request id, signature, row id, duplicate, wallet)
        self.recent: collections.deque = collections.deque(maxlen=64)  # (monotonic, Sent)
        # counters
        self.frames = 0
        self.bytes_sent = 0
        self.cases = 0
        self.by_category: collections.Counter = collections.Counter()
        self.responses: collections.Counter = collections.Counter()
        self.violations: collections.Counter = collections.Counter()
        self.known_deviations: collections.Counter = collections.Counter()
        self.examples: list[dict] = []
        self.limit_changes = 0
        self.restarts = 0
        self.health_checks = 0
        self.started = time.monotonic()
        self._links: dict[str, Link] = {}
        self.set_limits(per_tx=per_tx, daily=self._new_daily())

    # -- bookkeeping ------------------------------------------------------------------------

    def violation(self, kind: str, detail: str) -> None:
        self.violations[kind] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"kind": kind, "detail": detail[:600]})

    @property
    def violation_count(self) -> int:
        return sum(self.violations.values())

    def link(self, wallet: Wallet) -> Link:
        if wallet.name not in self._links:
            self._links[wallet.name] = Link(wallet.socket_path)
        return self._links[wallet.name]

    def drop_link(self, wallet: Wallet) -> None:
        link = self._links.pop(wallet.name, None)
        if link is not None:
            link.close()

    def close(self) -> None:
        for name in list(self._links):
            self._links.pop(name).close()

    # -- limits (the operator's side) --------------------------------------------------------

    def _new_daily(self) -> int:
        return self.spent + self.rng.randrange(2 * self.per_tx, 20 * self.per_tx)

    def set_limits(self, *, per_tx: int, daily: int) -> None:
        from jarvis_wallet.db import session
        from jarvis_wallet.limits import set_limits
        from jarvis_wallet.models import WalletTransaction

        with session(self.database_url):
            last = WalletTransaction.select(WalletTransaction.id).order_by(WalletTransaction.id.desc()).first()
            set_limits(self.limited.address, per_tx_lamports=per_tx, daily_lamports=daily)
        self.epochs.append((last.id if last else 0, per_tx, daily))
        self.per_tx, self.daily = per_tx, daily
        self.limit_changes += 1

    def ensure_budget(self, needed: int) -> None:
        if self.daily - self.spent < needed:
            self.per_tx = self.base_per_tx
            self.set_limits(per_tx=self.per_tx, daily=self._new_daily())

    # -- building requests -------------------------------------------------------------------

    def fields(self, wallet: Wallet, op: str, *, secret: bytes | None = None, **values) -> dict:
        """A request with a valid HMAC (under ``secret``, by default the wallet's own)."""
        fields = {
            "op": op,
            "requestId": values.pop("requestId", new_id()),
            "timestamp": values.pop("timestamp", now_ms()),
        }
        fields.update({k: v for k, v in values.items() if v is not None})
        fields["hmac"] = campaign_hmac(secret if secret is not None else wallet.secret, fields)
        return fields

    def sign_fields(self, wallet: Wallet, tx: bytes, **values) -> dict:
        return self.fields(wallet, "sign", txBase64=b64(tx), **values)

    def line(self, obj) -> bytes:
        keys = list(obj)
        if self.rng.random() < 0.3:
            self.rng.shuffle(keys)
        return to_line({k: obj[k] for k in keys}, ascii_only=self.rng.random() < 0.7)

    def transfer(
        self, source: bytes, lamports: int | None = None, *, full: bool | None = None, rich: bool | None = None
    ) -> bytes:
        """A fresh transfer message (or full transaction) from ``source``; rich: fee, memo, v0."""
        rng = self.rng
        if lamports is None:
            lamports = rng.randrange(1, self.per_tx // 8)
        rich = rng.random() < 0.5 if rich is None else rich
        message = build_transfer_message(
            from_pubkey=source,
            to_pubkey=rng.randbytes(32),
            lamports=lamports,
            recent_blockhash=rng.randbytes(32),
            v0=rich and rng.random() < 0.5,
            compute_unit_price=rng.randrange(0, 1000) if rich and rng.random() < 0.5 else None,
            compute_unit_limit=rng.randrange(1000, 400_000) if rich and rng.random() < 0.3 else None,
            memo=rng.choice(["invoice 42", "caf\u00e9", ""]) if rich and rng.random() < 0.3 else None,
        )
        if full if full is not None else rng.random() < 0.4:
            return encode_shortvec(1) + (bytes(64) if rng.random() < 0.5 else rng.randbytes(64)) + message
        return message

    # -- the model ---------------------------------------------------------------------------

    def expected(self, sent: Sent) -> Outcome:
        """The documented reply to one line, given everything answered before it."""
        body = sent.line[:-1]
        obj = None
        try:
            obj = protocol.decode_frame(body)
            request = protocol.parse_request(obj)
        except JarvisWalletError as exc:
            return Outcome(exc.wire_code, protocol.request_id_for_reply(obj))
        wallet = sent.wallet
        echo = request.request_id
        if request.requires_authentication:
            given = obj.get("hmac")
            if not hmac_module.compare_digest(given, campaign_hmac(wallet.secret, obj)):
                return Outcome("auth_failed", echo)
            if abs(now_ms() - request.timestamp_ms) > protocol.DEFAULT_FRESHNESS_WINDOW_MS:
                return Outcome("stale_request", echo)
            if request.request_id in self.used_ids[wallet.name]:
                return Outcome("replayed_request", echo)
            self.used_ids[wallet.name].add(request.request_id)
            sent.authenticated = True
        if request.op == "ping":
            return Outcome(
                "ok",
                echo,
                "ping",
                check=lambda r: None if r.get("pong") is True and r.get("version") == 1 else "bad pong",
            )
        if request.op == "pubkey":
            return Outcome(
                "ok",
                echo,
                "pubkey",
                check=lambda r: None if r.get("publicKey") == wallet.address else "wrong publicKey",
            )
        if request.op == "status":
            return Outcome("ok", echo, "status", check=lambda r: self._check_status(wallet, r))
        if request.op == "sign_message":
            return self._expect_message(sent, request)
        return self._expect_sign(sent, request)

    def _check_status(self, wallet: Wallet, reply: dict) -> str | None:
        if reply.get("pid") != self.pids[wallet.name]:
            self.restarts += 1
            return f"signer pid is {reply.get('pid')}, was {self.pids[wallet.name]}"
        return None if reply.get("publicKey") == wallet.address else "wrong publicKey"

    def _record(self, request, wallet: Wallet, kind: str, signing_bytes: bytes, category: str) -> None:
        self.sent_valid[request.request_id] = SentRecord(wallet.address, kind, signing_bytes, category)

    def _expect_message(self, sent: Sent, request) -> Outcome:
        wallet = sent.wallet
        envelope = build_offchain_message(request.message)
        self._record(request, wallet, "message", envelope, sent.category)
        echo = request.request_id
        if request.request_id in self.recorded_ids:
            return Outcome("replayed_request", echo)
        digest = hashlib.sha256(envelope).hexdigest()
        earlier = self.signed_digests.get((wallet.address, digest))
        if earlier is None and not wallet.has_limits:
            self.recorded_ids.add(request.request_id)
            return Outcome("no_limits", echo)
        if earlier is None:
            self.recorded_ids.add(request.request_id)

        def check(reply: dict) -> str | None:
            if earlier is not None and reply.get("signature") != earlier:
                return "a repeated message got a new signature"
            if reply.get("signedMessageBase64") != b64(envelope) or reply.get("wallet") != wallet.address:
                return "wrong envelope or wallet"
            return self._verify(wallet, envelope, reply.get("signature"))

        def on_match(reply: dict) -> None:
            self.signed_digests[(wallet.address, digest)] = reply["signature"]
            self.visible.append(
                (request.request_id, reply["signature"], reply["transactionId"], earlier is not None, wallet.address)
            )

        return Outcome("ok", echo, "sign_message", check=check, on_match=on_match)

    def _expect_sign(self, sent: Sent, request) -> Outcome:
        wallet = sent.wallet
        echo = request.request_id
        if request.request_id in self.recorded_ids:
            return Outcome("replayed_request", echo)
        try:
            parsed = parse_transaction_input(request.tx_bytes)
        except InvalidTransaction:
            self._record(request, wallet, "tx", request.tx_bytes, sent.category)
            self.recorded_ids.add(request.request_id)
            return Outcome("invalid_tx", echo)
        signing_bytes = parsed.signing_bytes()
        self._record(request, wallet, "tx", signing_bytes, sent.category)
        digest = hashlib.sha256(signing_bytes).hexdigest()
        earlier = self.signed_digests.get((wallet.address, digest))
        decision = None
        if earlier is None:
            limits = Limits(self.per_tx, self.daily) if wallet.has_limits else None
            try:
                decision = decide(
                    message=parsed,
                    wallet=wallet.public_key,
                    limits=limits,
                    spent_24h_lamports=self.spent if wallet.has_limits else 0,
                    program_allowlist=DEFAULT_PROGRAM_ALLOWLIST,
                )
            except InvalidTransaction:  # instruction data that does not decode: refused, recorded
                self.recorded_ids.add(request.request_id)
                return Outcome("invalid_tx", echo)
            if not decision.allowed:
                self.recorded_ids.add(request.request_id)
                return Outcome(decision.reason, echo)
            self.recorded_ids.add(request.request_id)
        lamports = decision.spend.spend_lamports if decision is not None else None

        def check(reply: dict) -> str | None:
            if reply.get("duplicate") is not (earlier is not None):
                return f"duplicate is {reply.get('duplicate')}, expected {earlier is not None}"
            if earlier is not None and reply.get("signature") != earlier:
                return "a duplicate got a different signature"
            if lamports is not None and reply.get("lamports") != lamports:
                return f"lamports {reply.get('lamports')}, expected {lamports}"
            if reply.get("wallet") != wallet.address:
                return "wrong wallet"
            problem = self._verify(wallet, signing_bytes, reply.get("signature"))
            if problem:
                return problem
            try:
                signed = parse_transaction_input(base64.b64decode(reply["signedTxBase64"], validate=True))
            except (InvalidTransaction, ValueError, KeyError):
                return "signedTxBase64 does not parse"
            slot = (
                signed.message.signer_keys.index(wallet.public_key)
                if wallet.public_key in signed.message.signer_keys
                else None
            )
            if (
                signed.signing_bytes() != signing_bytes
                or slot is None
                or base58.b58encode(signed.signatures[slot]).decode() != reply["signature"]
            ):
                return "signedTxBase64 is not the message with the signature in the wallet's slot"
            return None

        def on_match(reply: dict) -> None:
            if earlier is None:
                self.spent += reply["lamports"]
                self.signed_digests[(wallet.address, digest)] = reply["signature"]
            self.visible.append(
                (request.request_id, reply["signature"], reply["transactionId"], earlier is not None, wallet.address)
            )

        return Outcome("ok", echo, "sign", check=check, on_match=on_match)

    @staticmethod
    def _verify(wallet: Wallet, signed_bytes: bytes, signature_text) -> str | None:
        try:
            nacl.signing.VerifyKey(wallet.public_key).verify(signed_bytes, base58.b58decode(signature_text))
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return "the signature does not verify"
        return None

    # -- running a case ----------------------------------------------------------------------

    def check_reply(self, sent: Sent, reply) -> None:
        expected = self.expected(sent)
        wanted = {sent.hand_code} if sent.hand_code else set(sent.hand_codes or ())
        if wanted and expected.code not in wanted:
            self.violation(
                "model_disagrees_with_documented_outcome",
                f"{sent.category}: built for {sorted(wanted)}, the model says {expected.code}: {sent.line[:200]!r}",
            )
        if not isinstance(reply, dict):
            self.violation(
                "no_reply" if reply is None else "reply_not_json", f"{sent.category}: {sent.line[:200]!r} -> {reply!r}"
            )
            return
        code = (
            "ok"
            if reply.get("ok") is True
            else (reply.get("error") or {}).get("code") if isinstance(reply.get("error"), dict) else None
        )
        self.responses[code or "malformed"] += 1
        if reply.get("requestId") != expected.echo and not (sent.echo_may_be_null and reply.get("requestId") is None):
            self.violation(
                "wrong_request_id", f"{sent.category}: expected {expected.echo}, got {reply.get('requestId')}"
            )
        if code == expected.code:
            if code == "ok":
                problem = expected.check(reply) if expected.check else None
                if problem:
                    self.violation("bad_ok_reply", f"{sent.category}: {problem}")
                    return
                if expected.on_match:
                    expected.on_match(reply)
            return
        if expected.deviation and code == expected.deviation_code:
            self.known_deviations[expected.deviation] += 1
            return
        if code == "ok" and "signature" in reply:
            # Signed although the model refuses: the worst case. Keep the model in step.
            self.violation("signed_unexpectedly", f"{sent.category}: expected {expected.code}: {sent.line[:300]!r}")
            if isinstance(reply.get("lamports"), int) and sent.wallet.has_limits and not reply.get("duplicate"):
                self.spent += reply["lamports"]
            self.visible.append(
                (
                    reply.get("requestId"),
                    reply["signature"],
                    reply.get("transactionId"),
                    bool(reply.get("duplicate")),
                    sent.wallet.address,
                )
            )
            return
        self.violation(
            "unexpected_reply",
            f"{sent.category}: expected {expected.code}, got {code}: {reply.get('error')} for {sent.line[:300]!r}",
        )

    def run_case(self, category: str | None = None, rng: random.Random | None = None) -> Case:
        """Build one case of ``category`` (random if None), send it, check every reply."""
        if rng is not None:
            self.rng = rng
        category = category or self.rng.choices(CATEGORY_NAMES, CATEGORY_WEIGHTS)[0]
        if self.rng.random() < 0.25 or self.daily - self.spent < 2 * FEE:
            self.ensure_budget(self.rng.randrange(FEE, 4 * self.per_tx))
        case = CATEGORIES[category](self)
        self.execute(case)
        now = time.monotonic()
        self.recent.extend((now, sent) for sent in case.sents if sent.authenticated and sent.wallet is not None)
        self.cases += 1
        self.by_category[category] += 1
        self.after_case()
        return case

    def execute(self, case: Case) -> None:
        self.incomplete_ids.update(case.incomplete_ids)
        data = case.data()
        if case.byte_at_a_time:
            chunks = [data[i : i + 1] for i in range(len(data))]
        else:
            chunks = case.chunks if case.chunks is not None else [data]
        self.frames += len(case.sents) + case.partial_frames + (1 if case.signer_closes else 0)
        self.bytes_sent += sum(len(chunk) for chunk in chunks if chunk is not PAUSE)
        link = Link(case.wallet.socket_path) if case.fresh_connection else self.link(case.wallet)
        try:
            for chunk in chunks:
                if chunk is PAUSE:
                    time.sleep(0.02)
                    continue
                if not link.send(chunk):
                    break
            for sent in case.sents:
                self.check_reply(sent, self._read(link, case))
            if case.signer_closes:
                reply = self._read(link, case)
                self.responses[
                    (reply or {}).get("error", {}).get("code", "none") if isinstance(reply, dict) else "none"
                ] += 1
                if not (isinstance(reply, dict) and reply.get("error", {}).get("code") == case.signer_closes):
                    self.violation("unexpected_reply", f"{case.category}: expected {case.signer_closes}, got {reply!r}")
                if self._read(link, case) is not None:
                    self.violation("connection_not_closed", f"{case.category}: the signer kept the connection open")
        finally:
            if case.fresh_connection:
                link.close()

    def _read(self, link: Link, case: Case):
        try:
            return link.reply()
        except TimeoutError:
            self.violation("reply_timeout", f"{case.category}: no reply within {REPLY_TIMEOUT_SECONDS:g} s")
            if not case.fresh_connection:
                self.drop_link(case.wallet)
            return None

    # -- health ------------------------------------------------------------------------------

    def after_case(self) -> None:
        """A ping on the kept connection after every case; the full check every few cases."""
        request_id = new_id()
        link = self.link(self.limited)
        link.send(to_line({"op": "ping", "requestId": request_id}))
        self.frames += 1
        reply = self._read(link, Case("health", self.limited))
        if not (isinstance(reply, dict) and reply.get("ok") and reply.get("requestId") == request_id):
            self.violation("ping_failed", f"after a case the kept connection answered {reply!r}")
            self.drop_link(self.limited)
        if self.cases % self.check_every == 0:
            self.health()

    def health(self) -> None:
        """A fresh connection pings and gets a valid signature; both signers kept their pid."""
        self.health_checks += 1
        self.ensure_budget(HEALTH_LAMPORTS + FEE)
        wallet = self.limited
        message = self.transfer(wallet.public_key, HEALTH_LAMPORTS, full=False, rich=False)
        ping_id = new_id()
        sign = Sent(self.line(self.sign_fields(wallet, message)), wallet, "health", hand_code="ok")
        link = Link(wallet.socket_path)
        try:
            link.send(to_line({"op": "ping", "requestId": ping_id}) + sign.line)
            self.frames += 2
            reply = link.reply()
            if not (isinstance(reply, dict) and reply.get("pong") is True and reply.get("requestId") == ping_id):
                self.violation("ping_failed", f"fresh connection ping answered {reply!r}")
            reply = link.reply()
            before = self.violation_count
            self.check_reply(sign, reply)
            if self.violation_count == before and (
                not isinstance(reply, dict) or reply.get("lamports") != HEALTH_LAMPORTS + FEE
            ):
                self.violation(
                    "health_sign_failed", f"a {HEALTH_LAMPORTS}-lamport transfer counted {reply.get('lamports')}"
                )
            elif self.violation_count != before:
                self.violation("health_sign_failed", f"{reply!r}")
        except (OSError, TimeoutError) as exc:
            self.violation("health_sign_failed", f"{type(exc).__name__}: {exc}")
        finally:
            link.close()
        for target in (self.limited, self.unlimited):
            status = Sent(self.line(self.fields(target, "status")), target, "health", hand_code="ok")
            link = self.link(target)
            link.send(status.line)
            self.frames += 1
            self.check_reply(status, self._read(link, Case("health", target)))
            if not target.handle.is_alive():
                self.restarts += 1
                self.violation("signer_died", f"signer {target.name} (pid {target.handle.pid}) is gone")

    # -- the end -----------------------------------------------------------------------------

    def audit(self) -> dict:
        """Check the database against everything the campaign sent and saw."""
        from jarvis_wallet.db import session
        from jarvis_wallet.models import WalletTransaction

        with session(self.database_url):
            rows = list(WalletTransaction.select().order_by(WalletTransaction.id).dicts())
        by_id = {row["id"]: row for row in rows}
        counted = 0
        signed_rows = 0
        seen_rows = {row_id for _, _, row_id, duplicate, _ in self.visible if not duplicate}
        for row in rows:
            record = self.sent_valid.get(row["request_id"])
            if record is None:
                self.violation(
                    "row_for_request_refused_before_signing",
                    f"row {row['id']} ({row['status']}) for {row['request_id']}",
                )
                continue
            if row["request_id"] in self.incomplete_ids:
                self.violation("row_for_incomplete_frame", f"row {row['id']}")
            if row["wallet"] != record.wallet:
                self.violation("row_wallet_mismatch", f"row {row['id']}")
            if row["status"] != "signed":
                continue
            signed_rows += 1
            if row["id"] not in seen_rows:
                self.violation("signed_row_never_seen_by_client", f"row {row['id']} {row['request_id']}")
            wallet = self.limited if row["wallet"] == self.limited.address else self.unlimited
            if not wallet.has_limits:
                self.violation("signed_without_limits", f"row {row['id']}")
            if row["message_sha256"] != hashlib.sha256(record.signing_bytes).hexdigest():
                self.violation("signed_row_digest_mismatch", f"row {row['id']}")
            problem = self._verify(wallet, record.signing_bytes, row["signature"])
            if problem:
                self.violation("signed_row_signature_invalid", f"row {row['id']}: {problem}")
            per_tx, daily = self._limits_for(row["id"])
            if record.kind == "message":
                if row["lamports"] != 0:
                    self.violation("message_row_counts_lamports", f"row {row['id']}")
                continue
            if row["lamports"] > per_tx:
                self.violation("per_tx_ceiling_exceeded", f"row {row['id']}: {row['lamports']} > {per_tx}")
            if counted + row["lamports"] > daily:
                self.violation("daily_ceiling_exceeded", f"row {row['id']}: {counted} + {row['lamports']} > {daily}")
            parsed = parse_transaction_input(record.signing_bytes)
            decision = decide(
                message=parsed, wallet=wallet.public_key, limits=Limits(per_tx, daily), spent_24h_lamports=counted
            )
            if not decision.allowed or decision.spend.spend_lamports != row["lamports"]:
                self.violation(
                    "signed_row_fails_policy",
                    f"row {row['id']}: {decision.reason} {decision.spend.spend_lamports} vs {row['lamports']}",
                )
            floor = spend_floor(record.signing_bytes, wallet.public_key)
            if row["lamports"] < floor:
                self.violation("signed_row_below_spend_floor", f"row {row['id']}: {row['lamports']} < {floor}")
            counted += row["lamports"]
        for request_id, signature, row_id, duplicate, address in self.visible:
            row = by_id.get(row_id)
            if row is None or row["signature"] != signature or row["status"] != "signed" or row["wallet"] != address:
                self.violation("visible_signature_without_row", f"{request_id} -> row {row_id}")
            elif not duplicate and row["request_id"] != request_id:
                self.violation("visible_signature_row_mismatch", f"{request_id} -> row {row_id}")
        for wallet in (self.limited, self.unlimited):
            if not wallet.handle.is_alive():
                self.violation("signer_died", f"{wallet.name}")
            elif wallet.handle.pid != self.pids[wallet.name]:
                self.restarts += 1
                self.violation("signer_restarted", wallet.name)
        return {"rows": len(rows), "signed_rows": signed_rows, "spent_lamports": counted}

    def _limits_for(self, row_id: int) -> tuple[int, int]:
        per_tx, daily = self.epochs[0][1], self.epochs[0][2]
        for after_id, epoch_per_tx, epoch_daily in self.epochs:
            if row_id > after_id:
                per_tx, daily = epoch_per_tx, epoch_daily
        return per_tx, daily

    def report(self, audit: dict, elapsed: float) -> dict:
        return {
            "elapsed_seconds": round(elapsed, 2),
            "frames_sent": self.frames,
            "frames_per_second": round(self.frames / elapsed, 1) if elapsed else None,
            "bytes_sent": self.bytes_sent,
            "cases": self.cases,
            "cases_by_category": dict(sorted(self.by_category.items())),
            "responses_by_code": dict(sorted(self.responses.items())),
            "health_checks": self.health_checks,
            "limit_changes": self.limit_changes,
            "signatures_seen": len(self.visible),
            **audit,
            "signer_restarts": self.restarts,
            "violations": self.violation_count,
            "violations_by_kind": dict(sorted(self.violations.items())),
            "violation_examples": self.examples,
            "known_deviations": dict(sorted(self.known_deviations.items())),
            "known_deviation_notes": {k: KNOWN_DEVIATIONS[k] for k in self.known_deviations},
        }


PAUSE = None  # a marker chunk: sleep briefly so the next write arrives on its own


def spend_floor(message_bytes: bytes, wallet: bytes) -> int:
    """A lower bound of what a message costs ``wallet``, read with solders, not our parser:
    5,000 lamports per required signature when the wallet pays the fee, plus every System
    transfer out of the wallet to another static key."""
    message = from_bytes_versioned(message_bytes)
    keys = [bytes(key) for key in message.account_keys]
    floor = 0
    if keys and keys[0] == wallet:
        floor += FEE * message.header.num_required_signatures
    for instruction in message.instructions:
        data, accounts = bytes(instruction.data), bytes(instruction.accounts)
        if (
            keys[instruction.program_id_index] != SYSTEM_PROGRAM_ID
            or len(data) != 12
            or data[:4] != b"\x02\x00\x00\x00"
        ):
            continue
        if len(accounts) >= 2 and accounts[0] < len(keys) and keys[accounts[0]] == wallet:
            if accounts[1] >= len(keys) or keys[accounts[1]] != wallet:
                floor += int.from_bytes(data[4:], "little")
    return floor


# --- case builders -------------------------------------------------------------------------------


def _valid_sign_fields(c: ProtocolCampaign, wallet: Wallet | None = None, **values) -> dict:
    wallet = wallet or c.limited
    return c.sign_fields(wallet, c.transfer(wallet.public_key), **values)


def case_valid_ops(c: ProtocolCampaign) -> Case:
    wallet = c.rng.choice([c.limited, c.limited, c.unlimited])
    choice = c.rng.randrange(5)
    if choice == 0:
        obj = {"op": "ping", "requestId": new_id()}
    elif choice == 1:
        obj = {"op": "pubkey", "requestId": new_id()}
    elif choice == 2:
        obj = c.fields(wallet, "ping")
    elif choice == 3:
        obj = c.fields(wallet, "pubkey")
    else:
        obj = c.fields(wallet, "status")
    return Case("valid_ops", wallet, [Sent(c.line(obj), wallet, "valid_ops", hand_code="ok")])


def case_valid_sign(c: ProtocolCampaign) -> Case:
    purpose = c.rng.choice([None, "", "pay invoice 42", "caf\u00e9 \u2615", "x" * 512])
    obj = _valid_sign_fields(c, purpose=purpose)
    return Case("valid_sign", c.limited, [Sent(c.line(obj), c.limited, "valid_sign")])


def _noncanonical_base64(rng: random.Random, raw: bytes) -> str:
    text = b64(raw)
    options = [
        text.rstrip("="),  # missing padding (or unchanged when none was needed)
        text + "=",
        text[:4] + "\n" + text[4:],
        text[:8] + " " + text[8:],
        text.replace("+", "-").replace("/", "_") if ("+" in text or "/" in text) else text + "==",
        text[:-1] + "\u00e9",
    ]
    if text.endswith("="):
        # unused bits set: change the last data character within its group of four
        stripped = text.rstrip("=")
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        last = alphabet.index(stripped[-1])
        options.append(
            stripped[:-1] + alphabet[last | 1] + text[len(stripped) :]
            if last | 1 != last
            else stripped[:-1] + alphabet[last + 1] + text[len(stripped) :]
        )
    result = rng.choice(options)
    if result == text:
        result = text + "="
    return result


def case_field_broken(c: ProtocolCampaign) -> Case:
    """A valid sign request with exactly one thing broken, and its documented code."""
    rng = c.rng
    wallet = c.limited
    tx = c.transfer(wallet.public_key)
    base = c.sign_fields(wallet, tx, purpose=rng.choice([None, "rent"]))
    obj = dict(base)
    resign = rng.random() < 0.5  # recompute the hmac after the edit, where the edit allows it
    breakers = [
        ("drop op", lambda o: o.pop("op"), "bad_request"),
        ("drop requestId", lambda o: o.pop("requestId"), "bad_request"),
        ("drop timestamp", lambda o: o.pop("timestamp"), "bad_request"),
        ("drop txBase64", lambda o: o.pop("txBase64"), "bad_request"),
        ("drop hmac", lambda o: o.pop("hmac"), "bad_request"),
        (
            "unknown field",
            lambda o: o.__setitem__(rng.choice(["extra", "RequestId", "TXBASE64", "op ", ""]), "x"),
            "bad_request",
        ),
        ("field of another op", lambda o: o.__setitem__("message", "hello"), "bad_request"),
        (
            "unknown op",
            lambda o: o.__setitem__("op", rng.choice(["SIGN", "sign ", "", "export_key", "sign\u0000"])),
            "unknown_op",
        ),
        (
            "op not a string",
            lambda o: o.__setitem__("op", rng.choice([1, None, ["sign"], {"op": "sign"}, True])),
            "bad_request",
        ),
        ("requestId uppercase", lambda o: o.__setitem__("requestId", o["requestId"].upper()), "bad_request"),
        ("requestId braces", lambda o: o.__setitem__("requestId", "{" + o["requestId"] + "}"), "bad_request"),
        ("requestId no dashes", lambda o: o.__setitem__("requestId", o["requestId"].replace("-", "")), "bad_request"),
        ("requestId too long", lambda o: o.__setitem__("requestId", o["requestId"] + "0"), "bad_request"),
        ("timestamp string", lambda o: o.__setitem__("timestamp", str(o["timestamp"])), "bad_request"),
        ("timestamp float", lambda o: o.__setitem__("timestamp", o["timestamp"] + 0.5), "bad_request"),
        ("timestamp negative", lambda o: o.__setitem__("timestamp", -o["timestamp"]), "bad_request"),
        ("timestamp over 2^53-1", lambda o: o.__setitem__("timestamp", 2**53), "bad_request"),
        ("timestamp bool", lambda o: o.__setitem__("timestamp", True), "bad_request"),
        ("txBase64 not a string", lambda o: o.__setitem__("txBase64", rng.choice([1, None, [], {}])), "bad_request"),
        ("txBase64 non-canonical", lambda o: o.__setitem__("txBase64", _noncanonical_base64(rng, tx)), "invalid_tx"),
        ("txBase64 empty", lambda o: o.__setitem__("txBase64", ""), "invalid_tx"),
        (
            "txBase64 too long",
            lambda o: o.__setitem__("txBase64", b64(tx + bytes(1233 - len(tx) + rng.randrange(100)))),
            "invalid_tx",
        ),
        (
            "hmac uppercase",
            lambda o: o.__setitem__(
                "hmac", o["hmac"].upper() if any(ch.isalpha() for ch in o["hmac"]) else "A" + o["hmac"][1:]
            ),
            "bad_request",
        ),
        ("hmac short", lambda o: o.__setitem__("hmac", o["hmac"][:-1]), "bad_request"),
        ("hmac not hex", lambda o: o.__setitem__("hmac", "g" + o["hmac"][1:]), "bad_request"),
        ("purpose too long", lambda o: o.__setitem__("purpose", "p" * 513), "bad_request"),
        (
            "purpose control",
            lambda o: o.__setitem__(
                "purpose", "a" + rng.choice(["\x00", "\x07", "\n", "\x1b[2J", "\x7f", "\u0085"]) + "b"
            ),
            "bad_request",
        ),
        ("purpose bidi", lambda o: o.__setitem__("purpose", "pay \u202eevil"), "bad_request"),
        ("purpose line separator", lambda o: o.__setitem__("purpose", "a\u2028b"), "bad_request"),
        ("purpose surrogate", lambda o: o.__setitem__("purpose", "\ud800"), "bad_request"),
        (
            "purpose not a string",
            lambda o: o.__setitem__("purpose", rng.choice([1, None, ["x"], False])),
            "bad_request",
        ),
    ]
    name, breaker, code = rng.choice(breakers)
    breaker(obj)
    if resign and "hmac" in obj and name not in ("hmac uppercase", "hmac short", "hmac not hex"):
        with contextlib.suppress(Exception):  # values of the wrong type cannot be signed; leave the old hmac
            obj["hmac"] = campaign_hmac(wallet.secret, obj)
    authentic = [
        ("hmac one digit off", "auth_failed"),
        ("value changed after signing", "auth_failed"),
        ("purpose added after signing", "auth_failed"),
        ("purpose removed after signing", "auth_failed"),
        ("signed with another secret", "auth_failed"),
        ("legacy hmac", "auth_failed"),
        ("stale, signed", "stale_request"),
        ("future, signed", "stale_request"),
    ]
    if rng.random() < 0.3:  # shape intact, content wrong
        obj = dict(base)
        name, code = rng.choice(authentic)
        if name == "hmac one digit off":
            position = rng.randrange(64)
            obj["hmac"] = (
                obj["hmac"][:position]
                + format((int(obj["hmac"][position], 16) + 1) % 16, "x")
                + obj["hmac"][position + 1 :]
            )
        elif name == "value changed after signing":
            obj["timestamp"] += 1
        elif name == "purpose added after signing":
            obj["purpose"] = obj.get("purpose", "") + "!"
        elif name == "purpose removed after signing":
            if "purpose" in obj:
                obj.pop("purpose")
            else:
                obj["purpose"] = ""
        elif name == "signed with another secret":
            obj["hmac"] = campaign_hmac(rng.randbytes(32), obj)
        elif name == "legacy hmac":
            obj["hmac"] = hmac_module.new(wallet.secret, obj["txBase64"].encode(), hashlib.sha256).hexdigest()
        else:
            offset = rng.randrange(35_000, 10**9) * (1 if name.startswith("future") else -1)
            obj["timestamp"] = max(0, obj["timestamp"] + offset)
            obj["hmac"] = campaign_hmac(wallet.secret, obj)
    line = c.line(obj)
    return Case("field_broken", wallet, [Sent(line, wallet, f"field_broken:{name}", hand_code=code)])


def random_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**53, 2**64, -(2**63), rng.randrange(-(10**20), 10**20)])
    if kind == 3:
        return rng.choice([0.0, -0.0, 1.5, 1e308, -1e-308, rng.random()])
    if kind in (4, 5):
        return rng.choice(
            ["", "sign", "ping", new_id(), "\u00e9", "\U0001f600", "a" * rng.randrange(100), rng.randbytes(8).hex()]
        )
    if kind == 6:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(FIELD_POOL): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


FIELD_POOL = [
    "op",
    "requestId",
    "timestamp",
    "txBase64",
    "message",
    "purpose",
    "hmac",
    "x",
    "",
    "OP",
    "__proto__",
    "constructor",
]


def case_wrong_types(c: ProtocolCampaign) -> Case:
    rng = c.rng
    obj = _valid_sign_fields(c)
    name = rng.choice(list(obj))
    while True:
        value = random_json(rng)
        if name == "timestamp" and type(value) is int:
            continue
        if name != "timestamp" and isinstance(value, str):
            continue
        break
    obj[name] = value
    return Case(
        "wrong_types", c.limited, [Sent(c.line(obj), c.limited, f"wrong_types:{name}", hand_code="bad_request")]
    )


def case_huge_numbers(c: ProtocolCampaign) -> Case:
    rng = c.rng
    wallet = c.limited
    obj = _valid_sign_fields(c)
    choice = rng.randrange(7)
    if choice == 0:  # integers past 2^53-1, up to just under the 4,300-digit limit
        digits = rng.choice([17, 20, 40, 309, 1000, 4300])
        raw = b"1" + b"0" * (digits - 1)
        code = "bad_request"
    elif choice == 1:  # past the 4,300-digit limit of int()
        raw = b"9" * rng.randrange(4301, 20_000)
        code = "bad_request"
    elif choice == 2:
        raw = rng.choice([b"1e999", b"-1e999", b"1E400", b"1.7976931348623157e309"])
        code = "bad_request"
    elif choice == 3:
        raw = rng.choice([b"1e3", b"1.0", b"-0.0", b"0.0", b"1767225600000.0", b"17672256e5"])
        code = "bad_request"
    elif choice == 4:  # in range and authentic, but far from now
        obj["timestamp"] = rng.choice([0, 1, 2**53 - 1])
        obj["hmac"] = campaign_hmac(wallet.secret, obj)
        return Case("huge_numbers", wallet, [Sent(c.line(obj), wallet, "huge_numbers:edge", hand_code="stale_request")])
    elif choice == 5:  # a huge number in a field that must not be there
        obj["x"] = 10 ** rng.randrange(20, 4000)
        return Case("huge_numbers", wallet, [Sent(c.line(obj), wallet, "huge_numbers:extra", hand_code="bad_request")])
    else:  # a huge number as the requestId
        raw_line = c.line(obj).replace(f'"{obj["requestId"]}"'.encode(), b"9" * rng.randrange(30, 5000))
        return Case("huge_numbers", wallet, [Sent(raw_line, wallet, "huge_numbers:id", hand_code="bad_request")])
    text = to_line(obj)
    line = text.replace(b'"timestamp":' + str(obj["timestamp"]).encode(), b'"timestamp":' + raw)
    return Case("huge_numbers", wallet, [Sent(line, wallet, "huge_numbers:timestamp", hand_code=code)])


def case_deep_nesting(c: ProtocolCampaign) -> Case:
    rng = c.rng
    depth = rng.choice([10, 100, 900, 1000, 5000, 10_000, 30_000])
    if rng.random() < 0.5:
        nested = b"[" * depth + b"]" * depth
    else:  # six bytes a level: at most 10,000 levels stay under the line limit
        depth = min(depth, 10_000)
        nested = b'{"a":' * depth + b"1" + b"}" * depth
    where = rng.randrange(3)
    if where == 0:
        line = nested + b"\n"
    else:
        obj = _valid_sign_fields(c)
        name = "purpose" if where == 1 else "x"
        line = to_line({**obj, name: 0}).replace(f'"{name}":0'.encode(), f'"{name}":'.encode() + nested)
    return Case(
        "deep_nesting",
        c.limited,
        [Sent(line, c.limited, "deep_nesting", hand_code="bad_request", echo_may_be_null=True)],
    )


INVALID_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\xc0\xaf",
    b"\xe0\x80\xaf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xe2\x82",
    b"\xf8\x88\x80\x80\x80",
    b"\x80",
    b"\xf4\x90\x80\x80",
    b"\xc3",
]


def case_invalid_utf8(c: ProtocolCampaign) -> Case:
    rng = c.rng
    obj = _valid_sign_fields(c, purpose="PURPOSE")
    line = to_line(obj)
    bad = rng.choice(INVALID_UTF8)
    where = rng.randrange(4)
    if where == 0:
        line = line.replace(b"PURPOSE", b"PUR" + bad + b"POSE")
    elif where == 1:
        line = line.replace(b'"op"', b'"o' + bad + b'p"')
    elif where == 2:
        position = rng.randrange(len(line) - 1)
        line = line[:position] + bad + line[position:]
    else:
        line = line.replace(b'"requestId":"', b'"requestId":"' + bad)
    return Case("invalid_utf8", c.limited, [Sent(line, c.limited, "invalid_utf8", hand_code="bad_request")])


def case_missing_newline(c: ProtocolCampaign) -> Case:
    rng = c.rng
    wallet = c.limited
    choice = rng.randrange(3)
    obj = _valid_sign_fields(c)
    line = c.line(obj)
    if choice == 0:  # half a request (or all of it but the newline), then the client leaves
        cut = rng.choice([len(line) - 1, rng.randrange(1, len(line))])
        return Case(
            "missing_newline",
            wallet,
            [],
            chunks=[line[:cut], PAUSE],
            fresh_connection=True,
            incomplete_ids=[obj["requestId"]],
            partial_frames=1,
        )
    if choice == 1:  # the newline arrives in a later write
        cut = rng.randrange(1, len(line))
        return Case(
            "missing_newline",
            wallet,
            [Sent(line, wallet, "missing_newline:late")],
            chunks=[line[:cut], PAUSE, line[cut:]],
        )
    # two requests run together on one line: one bad line, neither is signed
    other = _valid_sign_fields(c)
    joined = line[:-1] + c.line(other)
    case = Case("missing_newline", wallet, [Sent(joined, wallet, "missing_newline:joined", hand_code="bad_request")])
    case.incomplete_ids = [obj["requestId"], other["requestId"]]
    case.chunks = [joined]
    return case


def case_random_bytes(c: ProtocolCampaign) -> Case:
    rng = c.rng
    if rng.random() < 0.5:
        data = rng.randbytes(rng.randrange(1, 3000))
    else:  # JSON-ish noise
        alphabet = b'{}[]":,.-+0123456789eEtruefalsnl \\u\t' + b"abc"
        data = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 600)))
    if not data.endswith(b"\n"):
        data += b"\n"
    sents = [Sent(line + b"\n", c.limited, "random_bytes") for line in data[:-1].split(b"\n")]
    return Case("random_bytes", c.limited, sents)


def case_json_fuzz(c: ProtocolCampaign) -> Case:
    rng = c.rng
    obj = {name: random_json(rng) for name in rng.sample(FIELD_POOL, rng.randrange(1, 6))}
    if rng.random() < 0.5:
        obj["op"] = rng.choice(["ping", "pubkey", "status", "sign", "sign_message", "nope"])
    if rng.random() < 0.5:
        obj["requestId"] = new_id()
    wallet = rng.choice([c.limited, c.unlimited])
    return Case("json_fuzz", wallet, [Sent(c.line(obj), wallet, "json_fuzz")])


def _transfer_spec(c: ProtocolCampaign, wallet: Wallet) -> bytes:
    """A transfer with several instructions, so swaps and duplicates mean something."""
    return build_transfer_message(
        from_pubkey=wallet.public_key,
        to_pubkey=c.rng.randbytes(32),
        lamports=c.rng.randrange(1, c.per_tx // 4),
        recent_blockhash=c.rng.randbytes(32),
        v0=c.rng.random() < 0.5,
        compute_unit_price=c.rng.randrange(1, 500),
        compute_unit_limit=c.rng.randrange(1000, 50_000) if c.rng.random() < 0.7 else None,
        memo=c.rng.choice([None, "m"]),
    )


def case_mutated_tx(c: ProtocolCampaign) -> Case:
    """Valid HMAC, mutated transaction: the model (parse + policy) says what must happen."""
    rng = c.rng
    wallet = c.limited if rng.random() < 0.9 else c.unlimited
    message = _transfer_spec(c, wallet)
    as_transaction = rng.random() < 0.4
    if rng.random() < 0.5:
        spec = spec_from_message(message)
        mutant = mutate_spec(rng, spec)
        choice = rng.randrange(4)
        if choice == 0 and len(mutant.instructions) > 1:  # the transfer moved first, or swapped
            i, j = rng.sample(range(len(mutant.instructions)), 2)
            mutant.instructions[i], mutant.instructions[j] = mutant.instructions[j], mutant.instructions[i]
        elif choice == 1:  # the transfer's amount changed
            for position, (program, accounts, data) in enumerate(mutant.instructions):
                if len(data) == 12 and data[:4] == b"\x02\x00\x00\x00":
                    amount = rng.choice(
                        [0, 1, c.per_tx, c.per_tx - FEE, c.per_tx - FEE + 1, 2**64 - 1, rng.randrange(2**63)]
                    )
                    mutant.instructions[position] = (program, accounts, data[:4] + amount.to_bytes(8, "little"))
        data = mutant.encode()
    else:
        data = message
        for _ in range(rng.choice([1, 1, 2, 3])):
            data = mutate_bytes(rng, data, [message])
    if as_transaction and data:
        count = rng.choice([1, 1, 1, 0, 2])
        data = encode_shortvec(count) + rng.randbytes(64 * count) + data
    if not data:
        data = b"\x00"
    if len(data) > protocol.MAX_TX_BYTES:
        data = data[: protocol.MAX_TX_BYTES]
    obj = c.sign_fields(wallet, data)
    return Case("mutated_tx", wallet, [Sent(c.line(obj), wallet, "mutated_tx")])


def case_no_limits(c: ProtocolCampaign) -> Case:
    rng = c.rng
    wallet = c.unlimited
    choice = rng.randrange(3)
    if choice == 0:
        obj = c.sign_fields(wallet, c.transfer(wallet.public_key))
    elif choice == 1:  # the limited wallet's transaction to the signer without limits
        obj = c.sign_fields(wallet, c.transfer(c.limited.public_key))
    else:
        obj = c.fields(wallet, "sign_message", message=f"sign in {rng.randrange(10**9)}")
    return Case("no_limits", wallet, [Sent(c.line(obj), wallet, "no_limits", hand_code="no_limits")])


def case_over_limit(c: ProtocolCampaign) -> Case:
    """The ceilings and their exact boundaries."""
    rng = c.rng
    wallet = c.limited
    key = wallet.public_key
    sents = []
    choice = rng.randrange(5)
    if choice == 0:
        amount = c.per_tx - FEE + 1 + rng.choice([0, 1, rng.randrange(10**12)])
        sents.append(
            Sent(
                c.line(c.sign_fields(wallet, c.transfer(key, amount, rich=False))),
                wallet,
                "over_limit:per_tx",
                hand_code="per_tx_limit_exceeded",
            )
        )
    elif choice == 1:
        sents.append(
            Sent(
                c.line(c.sign_fields(wallet, c.transfer(key, 2**64 - 1, rich=False))),
                wallet,
                "over_limit:u64",
                hand_code="per_tx_limit_exceeded",
            )
        )
    elif choice == 2:  # two transfers, each under the ceiling, together over it
        half = (c.per_tx - FEE) // 2 + 1
        to = rng.randbytes(32)
        transfer = Instruction(
            SYSTEM_PROGRAM_ID,
            (AccountMeta(key, True, True), AccountMeta(to, False, True)),
            b"\x02\x00\x00\x00" + half.to_bytes(8, "little"),
        )
        message = compile_message(payer=key, instructions=[transfer, transfer], recent_blockhash=rng.randbytes(32))
        sents.append(
            Sent(c.line(c.sign_fields(wallet, message)), wallet, "over_limit:split", hand_code="per_tx_limit_exceeded")
        )
    elif choice == 3:  # exactly the per-transaction ceiling
        c.ensure_budget(c.per_tx)
        sents.append(
            Sent(
                c.line(c.sign_fields(wallet, c.transfer(key, c.per_tx - FEE, rich=False))),
                wallet,
                "over_limit:exact_per_tx",
                hand_code="ok",
            )
        )
    else:  # fill the daily ceiling exactly, then one lamport more
        remaining = c.daily - c.spent
        if not FEE < remaining <= c.per_tx:
            daily = c.spent + rng.randrange(FEE + 1, c.per_tx + 1)
            c.set_limits(per_tx=min(c.per_tx, daily), daily=daily)  # the per-tx ceiling may not exceed the daily one
            remaining = c.daily - c.spent
        sents.append(
            Sent(
                c.line(c.sign_fields(wallet, c.transfer(key, remaining - FEE, rich=False))),
                wallet,
                "over_limit:fill",
                hand_code="ok",
            )
        )
        sents.append(
            Sent(
                c.line(c.sign_fields(wallet, c.transfer(key, 1, rich=False))),
                wallet,
                "over_limit:one_more",
                hand_code="daily_limit_exceeded",
            )
        )
        sents.append(
            Sent(
                c.line(c.fields(wallet, "sign_message", message="still allowed: moves nothing")),
                wallet,
                "over_limit:message",
                hand_code="ok",
            )
        )
    return Case("over_limit", wallet, sents)


def case_policy_refusal(c: ProtocolCampaign) -> Case:
    rng = c.rng
    wallet = c.limited
    key = wallet.public_key
    other = rng.randbytes(32)
    choice = rng.randrange(5)
    if choice == 0:  # the wallet is not in the message at all
        message, code = c.transfer(other), "not_a_signer"
    elif choice == 1:  # the wallet is only the destination
        message = build_transfer_message(
            from_pubkey=other, to_pubkey=key, lamports=5, recent_blockhash=rng.randbytes(32)
        )
        code = "not_a_signer"
    elif choice == 2:  # the wallet handed to a program outside the allow-list
        program = rng.randbytes(32)
        message = compile_message(
            payer=key,
            instructions=[Instruction(program, (AccountMeta(key, True, True),), b"\x01")],
            recent_blockhash=rng.randbytes(32),
        )
        code = "program_not_allowed"
    elif choice == 3:  # assign the wallet to another owner
        owner = rng.randbytes(32)
        message = compile_message(
            payer=key,
            instructions=[Instruction(SYSTEM_PROGRAM_ID, (AccountMeta(key, True, True),), b"\x01\x00\x00\x00" + owner)],
            recent_blockhash=rng.randbytes(32),
        )
        code = "ownership_change"
    else:  # the wallet called as a program is the fee payer as program: not even a valid message
        spec = spec_from_message(c.transfer(key, full=False, rich=False))
        spec.instructions[0] = (0, spec.instructions[0][1], spec.instructions[0][2])
        message, code = spec.encode(), "invalid_tx"
    return Case(
        "policy_refusal",
        wallet,
        [Sent(c.line(c.sign_fields(wallet, message)), wallet, "policy_refusal", hand_code=code)],
    )


def case_replay(c: ProtocolCampaign) -> Case:
    rng = c.rng
    fresh = [sent for at, sent in c.recent if time.monotonic() - at < FRESH_REPLAY_SECONDS]
    if fresh and rng.random() < 0.7:
        sent = rng.choice(fresh)
        return Case(
            "replay",
            sent.wallet,
            [Sent(sent.line, sent.wallet, "replay:verbatim", hand_codes=frozenset({"replayed_request"}))],
        )
    # the same message again under a new id: the recorded signature, counted once
    wallet = c.limited
    message = c.transfer(wallet.public_key)
    first = Sent(c.line(c.sign_fields(wallet, message)), wallet, "replay:first")
    again = Sent(c.line(c.sign_fields(wallet, message, purpose="retry")), wallet, "replay:same_message")
    return Case("replay", wallet, [first, again])


def case_stale(c: ProtocolCampaign) -> Case:
    rng = c.rng
    wallet = rng.choice([c.limited, c.unlimited])
    offset = rng.choice([-1, 1]) * rng.choice([35_000, 60_000, 3_600_000, rng.randrange(35_000, 10**12)])
    obj = c.sign_fields(wallet, c.transfer(wallet.public_key), timestamp=max(0, min(2**53 - 1, now_ms() + offset)))
    return Case("stale", wallet, [Sent(c.line(obj), wallet, "stale", hand_code="stale_request")])


def case_wrong_secret(c: ProtocolCampaign) -> Case:
    rng = c.rng
    wallet = rng.choice([c.limited, c.unlimited])
    other = c.unlimited if wallet is c.limited else c.limited
    secret = rng.choice([rng.randbytes(32), other.secret, wallet.secret + b"\n", wallet.secret[:-1]])
    op = rng.choice(["sign", "sign_message", "status", "ping"])
    if op == "sign":
        obj = c.fields(wallet, op, secret=secret, txBase64=b64(c.transfer(wallet.public_key)))
    elif op == "sign_message":
        obj = c.fields(wallet, op, secret=secret, message="hello")
    else:
        obj = c.fields(wallet, op, secret=secret)
    return Case("wrong_secret", wallet, [Sent(c.line(obj), wallet, "wrong_secret", hand_code="auth_failed")])


def case_sign_message(c: ProtocolCampaign) -> Case:
    rng = c.rng
    wallet = c.limited
    if rng.random() < 0.6:
        text = rng.choice(
            [
                f"Sign in to example.com\nNonce: {rng.randrange(10**12)}",
                "caf\u00e9 \U0001f600 " + rng.randbytes(4).hex(),
                "\t" + "x" * rng.randrange(1, 1100),
                "\u00e9" * 606,  # 1,212 bytes exactly
            ]
        )
        return Case(
            "sign_message",
            wallet,
            [Sent(c.line(c.fields(wallet, "sign_message", message=text)), wallet, "sign_message", hand_code="ok")],
        )
    text = rng.choice(
        ["", "a\x00b", "\x1b[31mred", "a\u202eb", "a\u2029b", "\ud800", "\u00e9" * 607, "x" * 1213, "a\rb"]
    )
    obj = c.fields(wallet, "sign_message", message="placeholder")
    obj["message"] = text
    obj["hmac"] = campaign_hmac(wallet.secret, obj) if "\ud800" not in text else obj["hmac"]
    if rng.random() < 0.2:
        obj = c.fields(wallet, "sign_message", message="hi")
        obj["txBase64"] = b64(c.transfer(wallet.public_key))
    return Case("sign_message", wallet, [Sent(c.line(obj), wallet, "sign_message:broken", hand_code="bad_request")])


def case_legacy_shape(c: ProtocolCampaign) -> Case:
    wallet = c.limited
    tx_base64 = b64(c.transfer(wallet.public_key, full=False))
    obj = {
        "hmac": hmac_module.new(wallet.secret, tx_base64.encode(), hashlib.sha256).hexdigest(),
        "txBase64": tx_base64,
        "requestId": c.rng.choice([new_id(), "agent-1:42", "x" * 64]),
    }
    return Case("legacy_shape", wallet, [Sent(c.line(obj), wallet, "legacy_shape", hand_code="bad_request")])


def case_line_too_long(c: ProtocolCampaign) -> Case:
    rng = c.rng
    size = protocol.MAX_LINE_BYTES + 1 + rng.randrange(10_000)
    if rng.random() < 0.5:
        data = b'{"op":"ping","requestId":"' + b"a" * size + b'"}\n'
    else:
        data = b"[" * size  # never finished
    return Case("line_too_long", c.limited, [], chunks=[data], fresh_connection=True, signer_closes="line_too_long")


def case_connection_churn(c: ProtocolCampaign) -> Case:
    """Connections opened and dropped: empty, mid-frame, after a frame whose reply is unread."""
    rng = c.rng
    for _ in range(rng.randrange(1, 4)):
        link = Link(c.limited.socket_path)
        choice = rng.randrange(3)
        if choice == 1:
            link.send(b'{"op":"sign","requestId":"' + new_id().encode())
            c.frames += 1
        elif choice == 2:
            link.send(to_line({"op": "ping", "requestId": new_id()}))
            c.frames += 1
        with contextlib.suppress(OSError):
            link.sock.shutdown(socket.SHUT_RDWR)
        link.close()
    return Case(
        "connection_churn",
        c.limited,
        [Sent(to_line({"op": "ping", "requestId": new_id()}), c.limited, "connection_churn", hand_code="ok")],
        fresh_connection=True,
    )


def case_multi_frame(c: ProtocolCampaign) -> Case:
    """Many frames of other categories in one write; the replies come back in order."""
    wallet = c.limited
    sents = []
    for _ in range(c.rng.randrange(2, 40)):
        sub = _composable_case(c, wallet)
        sents.extend(sub.sents)
    return Case("multi_frame", wallet, sents)


def case_byte_at_a_time(c: ProtocolCampaign) -> Case:
    wallet = c.limited
    sents = []
    for _ in range(c.rng.randrange(1, 3)):
        sents.extend(_composable_case(c, wallet).sents)
    return Case("byte_at_a_time", wallet, sents, byte_at_a_time=True)


COMPOSABLE = [
    "valid_ops",
    "valid_sign",
    "field_broken",
    "wrong_types",
    "huge_numbers",
    "invalid_utf8",
    "random_bytes",
    "json_fuzz",
    "mutated_tx",
    "policy_refusal",
    "stale",
    "wrong_secret",
    "sign_message",
    "legacy_shape",
]


def _composable_case(c: ProtocolCampaign, wallet: Wallet) -> Case:
    while True:
        case = CATEGORIES[c.rng.choice(COMPOSABLE)](c)
        if case.composable and case.wallet is wallet and len(case.data()) < 4000:
            return case


CATEGORIES: dict[str, Callable[[ProtocolCampaign], Case]] = {
    "valid_ops": case_valid_ops,
    "valid_sign": case_valid_sign,
    "field_broken": case_field_broken,
    "wrong_types": case_wrong_types,
    "huge_numbers": case_huge_numbers,
    "deep_nesting": case_deep_nesting,
    "invalid_utf8": case_invalid_utf8,
    "missing_newline": case_missing_newline,
    "multi_frame": case_multi_frame,
    "byte_at_a_time": case_byte_at_a_time,
    "random_bytes": case_random_bytes,
    "json_fuzz": case_json_fuzz,
    "mutated_tx": case_mutated_tx,
    "no_limits": case_no_limits,
    "over_limit": case_over_limit,
    "policy_refusal": case_policy_refusal,
    "replay": case_replay,
    "stale": case_stale,
    "wrong_secret": case_wrong_secret,
    "sign_message": case_sign_message,
    "legacy_shape": case_legacy_shape,
    "line_too_long": case_line_too_long,
    "connection_churn": case_connection_churn,
}
CATEGORY_NAMES = list(CATEGORIES)
_HEAVY = {
    "mutated_tx": 4,
    "field_broken": 3,
    "multi_frame": 2,
    "valid_sign": 2,
    "json_fuzz": 2,
    "byte_at_a_time": 0.5,
    "line_too_long": 0.5,
}
CATEGORY_WEIGHTS = [_HEAVY.get(name, 1) for name in CATEGORY_NAMES]


# --- running it ----------------------------------------------------------------------------------


def run_for(campaign: ProtocolCampaign, seconds: float, progress=None) -> None:
    deadline = time.monotonic() + seconds
    next_progress = time.monotonic() + 10
    while time.monotonic() < deadline:
        campaign.run_case()
        if progress and time.monotonic() >= next_progress:
            progress(campaign)
            next_progress += 10
    campaign.health()


@contextlib.contextmanager
def signer_stderr_to(path: Path):
    """Signers forked inside this block write their stderr to ``path``."""
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def machine() -> dict:
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


def run_campaign(seconds: float, seed: int, *, check_every: int = 10, progress=None) -> dict:
    from jarvis_wallet.db import session
    from jarvis_wallet.keys import generate_keypair_file, load_keypair_file
    from jarvis_wallet.migrations import apply_migrations
    from jarvis_wallet.signer import SignerSettings, start_signer

    with tempfile.TemporaryDirectory(prefix="jw-fuzz-") as tmp:
        root = Path(tmp)
        url = f"sqlite://{root}/wallet.db"
        with session(url, create=True, require_schema=False) as db:
            apply_migrations(db)
        stderr_path = root / "signers.stderr"
        wallets = []
        with signer_stderr_to(stderr_path):
            for name, has_limits in (("limited", True), ("no_limits", False)):
                keypair_path = root / f"{name}.json"
                generate_keypair_file(keypair_path)
                handle = start_signer(
                    SignerSettings(
                        socket_path=root / name / "signer.sock", database_url=url, keypair_path=keypair_path,
                        free_decisions_per_second=None,  # the model decides every request; no budget to predict
                    )
                )
                secret = Path(handle.info.secret_path).read_bytes().rstrip(b"\n")
                wallets.append(Wallet(name, handle, load_keypair_file(keypair_path).public_key, secret, has_limits))
        campaign = ProtocolCampaign(
            limited=wallets[0], unlimited=wallets[1], database_url=url, rng=random.Random(seed), check_every=check_every
        )
        started = time.monotonic()
        try:
            run_for(campaign, seconds, progress)
            elapsed = time.monotonic() - started
            audit = campaign.audit()
        finally:
            campaign.close()
            for wallet in wallets:
                wallet.handle.stop()
        errors = stderr_path.read_text(errors="replace") if stderr_path.exists() else ""
        if "Traceback" in errors or "Exception in thread" in errors:
            campaign.violation("signer_traceback", errors[-2000:])
        result = campaign.report(audit, elapsed)
        result.update(
            {
                "seconds": seconds,
                "seed": seed,
                "check_every": check_every,
                "signer_pids": list(campaign.pids.values()),
                "machine": machine(),
            }
        )
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, required=True, help="how long to fuzz")
    parser.add_argument("--seed", type=int, default=1, help="seed of the case generator (default 1)")
    parser.add_argument("--check-every", type=int, default=10, help="full health check every K cases (default 10)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    def progress(campaign: ProtocolCampaign) -> None:
        elapsed = time.monotonic() - campaign.started
        counts = f"{campaign.cases:,} cases  {campaign.frames:,} frames  violations {campaign.violation_count}"
        print(f"  {elapsed:6.0f} s  {counts}", file=sys.stderr)

    result = run_campaign(
        args.seconds, args.seed, check_every=args.check_every, progress=None if args.json else progress
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result, skip=("violation_examples", "known_deviation_notes", "machine", "signer_pids"))
        for example in result["violation_examples"]:
            print(f"  {example['kind']}: {example['detail']}")
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
