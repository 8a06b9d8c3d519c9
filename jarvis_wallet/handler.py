"""Bytes in, bytes out: one request line becomes exactly one response line.

The socket loop (``signer/server.py``) reads lines and writes what this returns;
tests can drive it with no socket at all. Checks that apply to every request
(framing, field validation, authentication) run once, before the dispatch
table picks the op's handler. The sign path reads top to bottom: parse,
authenticate, check the peer's budget of free decisions (refusals and
signatures of next to no spend, decision_budget.py), hand to the signing
worker (which checks, records and signs atomically), charge the budget if
the decision was free, reply. ``lock`` and ``unlock`` go to the key guard
(``key_lock.py``); while the key is locked the signing worker answers every
signing request ``locked``. A transaction held for approval is answered
``approval_required`` with the held request, and the operator's notify command
is told after the decision is committed; ``wait_for_approval`` reports a held
request's state and never changes it (only the operator approves, in the
database).

``handle_line`` does all of that in one call. A serving loop that must not wait
uses its two halves instead: ``begin_line`` does the cheap part at once (parse,
authenticate, the budget; ping and pubkey are answered there) and returns either
the reply, a ``PendingDecision`` (a job to decide with the others of its batch,
then ``finish(result)`` gives the reply), or a ``PendingCall`` (``run()`` may
block: unlock's key derivation, a lock waiting for the batch in flight,
``status`` and ``wait_for_approval`` reading the database), which the loop runs
on a thread of its own. ``handle_line`` is exactly ``begin_line`` followed by
``sign`` or ``run`` and ``finish``.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


from . import protocol
from .approvals import notification_document
from .b58 import b58encode
from .errors import (
    ApprovalRequired,
    AuthenticationFailed,
    InvalidInput,
    InvalidTransaction,
    JarvisWalletError,
    KeyMaterialError,
    PolicyDenied,
    RateLimited,
)
from .keys import SharedSecret
from .key_lock import KeyGuard
from .decision_budget import DecisionBudget, is_free_signature
from .signing import Peer, SignJob, SignOutcome


@dataclass
class SignerStats:
    """Counters for the `status` op, since the signer started."""

    started_at: float
    signed: int = 0
    refused: int = 0  # signing requests whose decision refused them, or could not be made
    rate_limited: int = 0  # turned away before any decision: nothing recorded
    errors: Counter = field(default_factory=Counter)  # every error reply sent, by its code

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def count_error(self, code: str) -> None:
        with self._lock:
            self.errors[code] += 1

    def errors_by_code(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.errors.items()))

    def count_reply(self, response: dict) -> None:
        """Count an error reply by its code (a legacy reply keeps ours in ``reason``)."""
        if response.get("ok") is not True:
            error = response.get("error")
            self.count_error(error["code"] if isinstance(error, dict) else response.get("reason"))

    def count(self, *, signed: bool) -> None:
        with self._lock:
            if signed:
                self.signed += 1
            else:
                self.refused += 1

    def count_rate_limited(self) -> None:
        with self._lock:
            self.rate_limited += 1


@dataclass(frozen=True, slots=True)
class PendingDecision:
    """A signing request that passed every check before the decision: decide ``job`` (with
    the others of its batch, in one locked transaction), then ``finish(result)``, with the
    job's ``SignOutcome`` or the exception that refused it, gives the reply frame."""

    job: SignJob
    finish: Callable[[object], bytes]


@dataclass(frozen=True, slots=True)
class PendingCall:
    """A request whose answer may take a while: ``run()`` gives the reply frame. Never raises."""

    run: Callable[[], bytes]


class RequestHandler:
    """Turns one request frame into one response frame; safe to call from many threads."""

    def __init__(
        self,
        *,
        secret: SharedSecret,
        public_key: bytes,
        sign: Callable[[SignJob], SignOutcome],
        legacy_protocol: bool = False,
        freshness_window_ms: int = protocol.DEFAULT_FRESHNESS_WINDOW_MS,
        replay_cache_entries: int = protocol.DEFAULT_REPLAY_CACHE_ENTRIES,
        decision_budget: DecisionBudget | None = None,
        clock_ms: Callable[[], int] = protocol.current_time_ms,
        status_fields: Mapping[str, object] | None = None,
        live_status: Callable[[], Mapping[str, object]] | None = None,
        key_guard: KeyGuard | None = None,
        approval_state: Callable[[int, str], object] | None = None,
        notify_approval: Callable[[dict], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # Public facts the `status` op reports besides the counters (database, version, log),
        # and the ones checked on each `status` (the database's health).
        self._status_fields = dict(status_fields or {})
        self._live_status = live_status
        self._key_guard = key_guard  # None: a handler without a lockable key (tests)
        self._secret = secret
        self._public_key = public_key
        self._public_key_text = b58encode(public_key)
        self._sign_job = sign
        # approval_state(id, wallet) -> approvals.ApprovalState, read from the database; None:
        # this handler has no database (wait_for_approval answers not_found).
        self._approval_state = approval_state
        self._notify_approval = notify_approval
        self._sleep = sleep
        # Waits in progress per peer uid: each holds a connection slot up to a minute.
        self._waits: Counter = Counter()
        self._waits_lock = threading.Lock()
        self._decision_budget = decision_budget  # None: every decision is recorded, however many
        self._legacy_protocol = legacy_protocol
        self._clock_ms = clock_ms
        self._freshness_window_ms = freshness_window_ms
        self._replay_cache_entries = replay_cache_entries
        # One cache per peer uid: a uid that floods its cache with far-future request ids raises
        # only its own low-water mark (locking itself out), not everyone's. Peers are the
        # signer's own uid and the --allow-uid list, so the caches are few.
        self._replay_caches: dict[int | None, protocol.ReplayCache] = {}
        self._replay_caches_lock = threading.Lock()
        self.stats = SignerStats(started_at=time.monotonic())
        # Each op's handler returns its reply, or a _Decision / _Blocking to complete later.
        self._dispatch = {
            protocol.OP_PING: self._ping,
            protocol.OP_PUBKEY: self._pubkey,
            protocol.OP_STATUS: self._blocking(self._status),  # reads the database's health
            protocol.OP_SIGN: self._sign_transaction,
            protocol.OP_SIGN_MESSAGE: self._sign_message,
            protocol.OP_LOCK: self._blocking(self._lock),  # waits for the batch in flight
            protocol.OP_UNLOCK: self._blocking(self._unlock),  # derives a key: seconds
            protocol.OP_WAIT_FOR_APPROVAL: self._blocking(self._wait_for_approval),
        }

    def handle_line(self, line: bytes, peer: Peer = Peer()) -> bytes:
        """One line (without its newline) in, one encoded response frame out. Never raises."""
        begun = self.begin_line(line, peer)
        if isinstance(begun, PendingDecision):
            try:
                result = self._sign_job(begun.job)
            except Exception as exc:  # noqa: BLE001 - finish() answers it as the decision's failure
                result = exc
            return begun.finish(result)
        if isinstance(begun, PendingCall):
            return begun.run()
        return begun

    def begin_line(self, line: bytes, peer: Peer = Peer()) -> bytes | PendingDecision | PendingCall:
        """The part of ``handle_line`` that never waits. Never raises."""
        obj: object = None
        try:
            obj = protocol.decode_frame(line)
            if self._legacy_protocol and protocol.is_legacy_request(obj):
                response = self._legacy(obj, peer)
            else:
                request = protocol.parse_request(obj)
                if request.requires_authentication:
                    protocol.authenticate_request(
                        request, secret=self._secret, now_ms=self._clock_ms(), replay_cache=self._replay_cache(peer.uid)
                    )
                response = self._dispatch[request.op](request, peer)
        except Exception as exc:  # noqa: BLE001 - invariant 8: bad input never crashes the signer
            return self._frame(self._error_reply(exc, obj, line))
        if isinstance(response, _Decision):
            return PendingDecision(response.job, lambda result: self._frame(self._settle(response, result, obj, line)))
        if isinstance(response, _Blocking):
            return PendingCall(lambda: self._frame(self._run_blocking(response, obj, line)))
        return self._frame(response)

    def _frame(self, response: dict) -> bytes:
        self.stats.count_reply(response)
        return protocol.encode_frame(response)

    def _error_reply(self, exc: Exception, obj: object, line: bytes) -> dict:
        if not isinstance(exc, JarvisWalletError):
            return protocol.error_response(
                protocol.request_id_for_reply(obj), protocol.INTERNAL_ERROR, "internal error; no signature was released"
            )
        if _is_refused_decision(exc):
            self.stats.count(signed=False)
        if obj is None and self._legacy_protocol and protocol.legacy_shaped(line):
            # An original client cannot read the version 1 envelope, even for a framing error.
            return protocol.legacy_error_response(None, exc.wire_code, exc.message)
        return protocol.error_response_for(protocol.request_id_for_reply(obj), exc)

    def _settle(self, decision: _Decision, result: object, obj: object, line: bytes) -> dict:
        """The reply to a decided job: ``result`` is its SignOutcome or the exception that refused it."""
        if decision.settles_itself:
            return decision.reply(result)
        try:
            return decision.reply(self._charged(decision.job, result))
        except ApprovalRequired as exc:
            if decision.held is None:
                return self._error_reply(exc, obj, line)
            return decision.held(exc)
        except Exception as exc:  # noqa: BLE001 - as in begin_line: one reply, whatever happened
            return self._error_reply(exc, obj, line)

    def _run_blocking(self, blocking: _Blocking, obj: object, line: bytes) -> dict:
        try:
            return blocking.call()
        except Exception as exc:  # noqa: BLE001 - as in begin_line: one reply, whatever happened
            return self._error_reply(exc, obj, line)

    @staticmethod
    def _blocking(op: Callable[[protocol.Request, Peer], dict]) -> Callable[[protocol.Request, Peer], _Blocking]:
        return lambda request, peer: _Blocking(lambda: op(request, peer))

    # -- ops ---------------------------------------------------------------------------------

    def _replay_cache(self, uid: int | None) -> protocol.ReplayCache:
        with self._replay_caches_lock:
            cache = self._replay_caches.get(uid)
            if cache is None:
                cache = self._replay_caches[uid] = protocol.ReplayCache(
                    self._freshness_window_ms, max_entries=self._replay_cache_entries
                )
            return cache

    def _ping(self, request: protocol.Request, peer: Peer) -> dict:
        return protocol.ok_response(request.request_id, pong=True, version=protocol.PROTOCOL_VERSION)

    def _pubkey(self, request: protocol.Request, peer: Peer) -> dict:
        return protocol.ok_response(request.request_id, publicKey=self._public_key_text)

    def _status(self, request: protocol.Request, peer: Peer) -> dict:
        return protocol.ok_response(
            request.request_id,
            publicKey=self._public_key_text,
            pid=os.getpid(),
            uptimeSeconds=int(time.monotonic() - self.stats.started_at),
            signed=self.stats.signed,
            refused=self.stats.refused,
            rateLimited=self.stats.rate_limited,
            errors=self.stats.errors_by_code(),
            **self._key_status(),
            **self._status_fields,
            **(self._live_status() if self._live_status is not None else {}),
        )

    def _key_status(self) -> dict:
        guard = self._key_guard
        if guard is None:
            return {"locked": False}
        seconds_left = guard.seconds_left()
        return {
            "locked": guard.locked,
            "lockedReason": guard.locked_reason,
            "keyTtlSecondsLeft": None if seconds_left is None else int(seconds_left),
            "failedUnlocks": guard.failed_unlocks,
        }

    def _require_guard(self) -> KeyGuard:
        if self._key_guard is None:
            raise InvalidInput("this signer has no lockable key")
        return self._key_guard

    def _lock(self, request: protocol.Request, peer: Peer) -> dict:
        was_unlocked = self._require_guard().lock(reason="requested", peer_uid=peer.uid)
        return protocol.ok_response(request.request_id, locked=True, wasUnlocked=was_unlocked)

    def _unlock(self, request: protocol.Request, peer: Peer) -> dict:
        try:
            was_locked = self._require_guard().unlock(request.passphrase, peer_uid=peer.uid)
        except KeyMaterialError as exc:
            raise AuthenticationFailed(exc.message, wire_code=protocol.BAD_PASSPHRASE) from None
        return protocol.ok_response(request.request_id, locked=False, wasLocked=was_locked)

    def _check_budget(self, job: SignJob) -> None:
        """Raise RateLimited if the peer has used up its budget of free decisions."""
        budget = self._decision_budget
        if budget is not None:
            try:
                budget.check(job.peer.uid)
            except RateLimited:
                self.stats.count_rate_limited()
                raise

    def _charged(self, job: SignJob, result: object) -> SignOutcome:
        """The decision's outcome (or its refusal raised), charged to the budget if it was free."""
        budget = self._decision_budget
        if isinstance(result, BaseException):
            if budget is not None and isinstance(result, (PolicyDenied, InvalidTransaction)):
                budget.charge(job.peer.uid)  # exactly the refusals that leave a row
            raise result
        # A new row the limits hardly count: a signature of next to no spend, or a re-sign (a row of
        # its own since 0007, counting nothing, however often the same message is asked for).
        if budget is not None and (result.duplicate or is_free_signature(result.lamports)):
            budget.charge(job.peer.uid)
        return result

    def _sign_transaction(self, request: protocol.Request, peer: Peer) -> _Decision:
        def reply(outcome: SignOutcome) -> dict:
            self.stats.count(signed=True)
            return protocol.ok_response(
                request.request_id,
                signature=b58encode(outcome.signature),
                signedTxBase64=base64.b64encode(outcome.signed_bytes).decode("ascii"),
                wallet=outcome.wallet,
                lamports=outcome.lamports,
                feeLamports=outcome.fee_lamports,
                transactionId=outcome.transaction_id,
                duplicate=outcome.duplicate,
                signedAt=_wire_time(outcome.signed_at),
                # Base units as decimal strings: a u64 exceeds what JSON readers keep exact.
                tokens=[{"mint": mint, "symbol": symbol, "amount": str(amount)} for mint, symbol, amount in outcome.tokens],
            )

        job = SignJob(request_id=request.request_id, tx_bytes=request.tx_bytes, purpose=request.purpose, peer=peer)
        self._check_budget(job)
        return _Decision(job, reply, held=lambda exc: self._held_for_approval(request.request_id, exc, peer))

    def _held_for_approval(self, request_id: str | None, exc: ApprovalRequired, peer: Peer) -> dict:
        """The approval_required reply; a request this one opened is announced (committed by now)."""
        self.stats.count(signed=False)
        details = exc.details
        if exc.new and self._notify_approval is not None:
            self._notify_approval(
                notification_document(exc, wallet=self._public_key_text, peer_uid=peer.uid, peer_pid=peer.pid)
            )
        return protocol.approval_required_response(
            request_id, exc.message, approval_id=exc.approval_id, expires_at=exc.expires_at,
            wallet=self._public_key_text, lamports=details["lamports"], fee_lamports=details["fee_lamports"],
            payments=details["payments"], purpose=details["purpose"],
        )

    def _wait_for_approval(self, request: protocol.Request, peer: Peer) -> dict:
        """The request's state once it is no longer pending, or after ``waitMs`` (default 0: now)."""
        from .errors import NotFound

        if self._approval_state is None:
            raise NotFound("this signer keeps no approval requests", wire_code=protocol.NOT_FOUND)
        if not request.wait_ms:  # a look, not a wait: holds no slot
            return self._approval_answer(request, time.monotonic())
        # A uid may hold only a few connection slots waiting, so waits never starve the
        # operator's `signer lock` or other agents of slots.
        with self._waits_lock:
            if self._waits[peer.uid] >= MAX_APPROVAL_WAITS_PER_UID:
                raise JarvisWalletError(
                    f"uid {peer.uid} already has {MAX_APPROVAL_WAITS_PER_UID} wait_for_approval calls waiting; "
                    "wait on one connection at a time, or send waitMs 0 to look without waiting",
                    wire_code=protocol.BUSY,
                )
            self._waits[peer.uid] += 1
        try:
            return self._approval_answer(request, time.monotonic() + request.wait_ms / 1000)
        finally:
            with self._waits_lock:
                self._waits[peer.uid] -= 1
                if not self._waits[peer.uid]:
                    del self._waits[peer.uid]

    def _approval_answer(self, request: protocol.Request, deadline: float) -> dict:
        while True:
            state = self._approval_state(request.approval_id, self._public_key_text)
            left = deadline - time.monotonic()
            if state.status != "pending" or left <= 0:
                return protocol.ok_response(request.request_id, **state.to_wire())
            self._sleep(min(APPROVAL_POLL_SECONDS, left))

    def _sign_message(self, request: protocol.Request, peer: Peer) -> _Decision:
        def reply(outcome: SignOutcome) -> dict:
            self.stats.count(signed=True)
            return protocol.ok_response(
                request.request_id,
                signature=b58encode(outcome.signature),
                signedMessageBase64=base64.b64encode(outcome.signed_bytes).decode("ascii"),
                wallet=outcome.wallet,
                transactionId=outcome.transaction_id,
                duplicate=outcome.duplicate,
                signedAt=_wire_time(outcome.signed_at),
            )

        job = SignJob(request_id=request.request_id, text=request.message, purpose=request.purpose, peer=peer)
        self._check_budget(job)
        return _Decision(job, reply)

    # -- the original design's agents ----------------------------------------------------------

    def _legacy(self, obj: dict, peer: Peer) -> dict | _Decision:
        """Same parse, policy, record and single-use rules; only the envelope differs."""
        request_id = protocol.request_id_for_reply(obj)
        try:
            request = protocol.parse_legacy_request(obj)
            protocol.verify_legacy_hmac(self._secret, request)
            job = SignJob(request_id=_legacy_audit_request_id(request.request_id), tx_bytes=request.tx_bytes, peer=peer)
            self._check_budget(job)
        except Exception as exc:  # noqa: BLE001 - an original client reads `error` as a string
            return self._legacy_error(request_id, exc, peer)

        def reply(outcome: SignOutcome) -> dict:
            self.stats.count(signed=True)
            return protocol.legacy_ok_response(request_id, outcome.signature)

        def settle(outcome_or_error: object) -> dict:
            try:
                return reply(self._charged(job, outcome_or_error))
            except Exception as exc:  # noqa: BLE001 - keep its envelope, whatever happened
                return self._legacy_error(request_id, exc, peer)

        return _Decision(job, settle, settles_itself=True)

    def _legacy_error(self, request_id: str | None, exc: Exception, peer: Peer) -> dict:
        if isinstance(exc, ApprovalRequired):  # an original client knows no approvals: sign_error, with ours in reason
            held = self._held_for_approval(request_id, exc, peer)
            return protocol.legacy_error_response(request_id, exc.wire_code, held["error"]["message"])
        if isinstance(exc, JarvisWalletError):
            if _is_refused_decision(exc):
                self.stats.count(signed=False)
            return protocol.legacy_error_response(request_id, exc.wire_code, exc.message)
        return protocol.legacy_error_response(request_id, protocol.INTERNAL_ERROR, "internal error; no signature was released")


@dataclass(frozen=True, slots=True)
class _Decision:
    """What a signing op hands back: the job to decide and how its outcome becomes the reply.
    ``held`` answers an ApprovalRequired (only ``sign`` knows approvals); a legacy decision
    ``settles_itself``: ``reply`` takes the raw result and keeps the legacy envelope."""

    job: SignJob
    reply: Callable[[object], dict]
    held: Callable[[ApprovalRequired], dict] | None = None
    settles_itself: bool = False


@dataclass(frozen=True, slots=True)
class _Blocking:
    """What an op that may wait hands back: the call that answers it, to run off the loop."""

    call: Callable[[], dict]


#: How often a waiting wait_for_approval looks at the database again.
APPROVAL_POLL_SECONDS = 0.25
#: wait_for_approval calls (waitMs > 0) one peer uid may have waiting at once; beyond: busy.
MAX_APPROVAL_WAITS_PER_UID = 2


def _wire_time(moment: datetime.datetime | None) -> str | None:
    """UTC to the microsecond, always the same shape: ``2026-01-01T00:00:00.000000Z``."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _is_refused_decision(exc: JarvisWalletError) -> bool:
    """What `status` counts as `refused`: a decision that refused (policy, or a transaction the
    signer could not parse, both recorded) or that could not be made (the database)."""
    return isinstance(exc, (PolicyDenied, InvalidTransaction)) or exc.wire_code == protocol.DATABASE_UNAVAILABLE


# The audit trail's request_id column holds 64 characters, and a legacy id may itself be 64.
_MAX_RECORDED_REQUEST_ID = 64
_LEGACY_PREFIX = "legacy:"


def _legacy_audit_request_id(legacy_id: str) -> str:
    """The audit-trail id of a legacy request: ``legacy:<id>``, or a digest when that is too long.

    The prefix keeps legacy ids apart from version 1 UUIDs. ``#`` cannot occur in a legacy id,
    so a digested id can never equal the plain form of another one.
    """
    plain = _LEGACY_PREFIX + legacy_id
    if len(plain) <= _MAX_RECORDED_REQUEST_ID:
        return plain
    digest = hashlib.sha256(legacy_id.encode("ascii")).hexdigest()
    return ("legacy#" + digest)[:_MAX_RECORDED_REQUEST_ID]
