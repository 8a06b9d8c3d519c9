"""Human approval above a threshold: pending requests, intent digests, grants and their one-time use.

A transaction the policy allows but that spends more than the wallet's approval threshold is not
signed: the signer records a pending request for its *intent* and answers ``approval_required``.
The operator approves or denies it by writing to the database with the CLI (no socket operation
approves). The agent then sends the same intent again, with a fresh blockhash, and the grant is
consumed in the same locked transaction as the signature it allows (invariant 11).

This module signs nothing. It holds:

- ``intent_digest``: what a grant covers (pure);
- ``approval_reasons``: whether a spend needs a person's yes (pure; the threshold rule in one
  place, so per-mint thresholds plug in beside the lamport one);
- ``judge``: what the latest request for an intent means for a new signing request (pure);
- ``GrantBook``: the rows, read and written inside the signer's locked transaction;
- ``ApprovalReader``: the state of one request, for the ``wait_for_approval`` op;
- ``ApprovalNotifier``: runs the operator's notify command off the signing path;
- the operator's side (``list_approvals``, ``approve``, ``deny``, ``approval_report``).

Lifecycle of a request (``status`` column)::

    pending ──approve──▶ approved ──signature──▶ consumed
       │                    │
       ├──deny──▶ denied ◀──┘ deny (revokes a grant not used yet)
       └─(expires_at passes; marked when next asked)──▶ expired

A pending request lives ``approval_ttl_seconds`` (default 900) from its creation; an approval is
good for, and a denial holds the intent for, ``approval_ttl_seconds`` from the moment it is given.
A denied or consumed request keeps answering its refusal until its ``expires_at``; after that,
the same intent opens a new request.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import queue
import shlex
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .errors import ApprovalRefused, ApprovalRequired, InvalidConfig, InvalidInput, NotFound
from .models import naive_utc
from .solana.message import HASH_LENGTH, PUBKEY_LENGTH, Message
from .solana.shortvec import encode_shortvec

#: The first bytes of every intent digest's input: an intent can never equal a message hash.
INTENT_DOMAIN = b"jarvis-wallet/intent/v1\n"
DEFAULT_APPROVAL_TTL_SECONDS = 900
#: Open (pending, unexpired) requests a wallet may have at once; beyond, a new one is refused, so
#: an agent cannot bury the real request under junk in `approvals list` and the notify queue.
DEFAULT_APPROVAL_MAX_PENDING = 20
MAX_APPROVAL_MAX_PENDING = 1000
MIN_APPROVAL_TTL_SECONDS = 60
MAX_APPROVAL_TTL_SECONDS = 7 * 24 * 3600
#: Longest --note / --reason an operator may record.
MAX_NOTE_CHARS = 512

STATUSES = ("pending", "approved", "denied", "consumed", "expired")

# Refusal codes of a signing request covered by a request that cannot be used (wire codes).
APPROVAL_REQUIRED = "approval_required"
APPROVAL_DENIED = "approval_denied"
APPROVAL_EXPIRED = "approval_expired"
APPROVAL_CONSUMED = "approval_consumed"
TOO_MANY_PENDING = "too_many_pending_approvals"


# -- the intent ------------------------------------------------------------------------------


def blockhash_offset(message: Message) -> int:
    """Where the recent blockhash starts in ``message.serialized`` (legacy and v0)."""
    prefix = 0 if message.version == "legacy" else 1
    offset = prefix + 3 + len(encode_shortvec(len(message.account_keys))) + PUBKEY_LENGTH * len(message.account_keys)
    if message.serialized[offset:offset + HASH_LENGTH] != message.recent_blockhash:
        raise AssertionError("blockhash not where the layout puts it")  # the parser and this disagree
    return offset


def intent_digest(message: Message, *, durable_nonce: bool) -> str:
    """SHA-256 (hex) of the domain and the message with its recent blockhash zeroed.

    Every other byte counts: the version, header, each account and its order, each program,
    instruction order and data (so each lamport), and the lookup tables of a v0 message. A
    re-sign with a fresh blockhash has the same intent; anything else does not.

    A durable-nonce transaction keeps its blockhash (there, the nonce value) in the digest: it
    does not expire, so the agent sends the very bytes that were approved again, and an approval
    never covers the same payment against another nonce value.
    """
    raw = message.serialized
    if not durable_nonce:
        start = blockhash_offset(message)
        raw = raw[:start] + bytes(HASH_LENGTH) + raw[start + HASH_LENGTH:]
    return hashlib.sha256(INTENT_DOMAIN + raw).hexdigest()


# -- the threshold ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalThresholds:
    """Above these, a person approves. ``lamports``: the SOL spend counted by the policy (fee
    included); ``per_mint``: a token's base units by raw mint key, for per-mint limits."""

    lamports: int | None = None
    per_mint: Mapping[bytes, int] = field(default_factory=dict)


def approval_reasons(
    thresholds: ApprovalThresholds, *, spend_lamports: int, token_spend: Mapping[bytes, int] | None = None
) -> list[str]:
    """Why this spend needs approval (empty: it does not). Strictly above a threshold needs it;
    exactly at it does not, as with the ceilings."""
    from .policy import format_lamports
    from .solana.pubkey import encode_pubkey

    reasons = []
    if thresholds.lamports is not None and spend_lamports > thresholds.lamports:
        reasons.append(
            f"spends {format_lamports(spend_lamports)}, above the approval threshold of {format_lamports(thresholds.lamports)}"
        )
    for mint, amount in sorted((token_spend or {}).items()):
        limit = thresholds.per_mint.get(mint)
        if limit is not None and amount > limit:
            reasons.append(
                f"moves {amount} base units of mint {encode_pubkey(mint)}, above its approval threshold of {limit}"
            )
    return reasons


# -- what a request means for a new signing request -------------------------------------------


@dataclass(frozen=True)
class ApprovalRow:
    """The fields of ``approval_requests`` the decision needs."""

    id: int
    status: str
    expires_at: datetime.datetime
    decision_note: str | None = None
    signed_transaction_id: int | None = None
    purpose: str | None = None  # the agent's purpose when the request was opened: what the operator saw


OPEN, WAIT, USE, DENIED, EXPIRED, CONSUMED = "open", "wait", "use", "denied", "expired", "consumed"


def judge(latest: ApprovalRow | None, now: datetime.datetime) -> str:
    """What the latest request for an intent means for a new signing request of it:

    open      no live request: open one, answer approval_required
    wait      pending and not expired: answer approval_required with the same id
    use       approved and not expired: sign, consuming it
    expired   pending or approved, expired: answer approval_expired (and mark it expired)
    denied    denied, before its expiry: answer approval_denied
    consumed  used, before its expiry: answer approval_consumed
    """
    if latest is None or latest.status == "expired":
        return OPEN
    live = now < latest.expires_at
    if latest.status in ("pending", "approved"):
        if not live:
            return EXPIRED
        return WAIT if latest.status == "pending" else USE
    if not live:
        return OPEN
    return DENIED if latest.status == "denied" else CONSUMED


def effective_status(status: str, expires_at: datetime.datetime, now: datetime.datetime) -> str:
    """The status as the operator should read it: a pending or approved request past its expiry
    is expired, whether or not a signing request has marked it so yet."""
    if status in ("pending", "approved") and now >= expires_at:
        return "expired"
    return status


def iso(moment: datetime.datetime | None) -> str | None:
    """UTC to the microsecond, the shape the wire uses: ``2026-01-01T00:00:00.000000Z``."""
    return None if moment is None else naive_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- the rows, inside the signer's locked transaction -----------------------------------------

_COLUMNS = (
    "wallet", "intent_sha256", "status", "request_id", "purpose", "lamports", "fee_lamports", "payments",
    "message_bytes", "peer_uid", "peer_pid", "created_at", "expires_at",
)


class GrantBook:
    """Reads and writes ``approval_requests`` in the caller's open transaction (the signer's, which
    holds the wallet's lock: nothing else decides for the wallet meanwhile)."""

    def __init__(self, db) -> None:
        from .db import is_sqlite

        self._db = db
        p = db.param
        self._postgres = not is_sqlite(db)
        self._latest = (
            "SELECT id, status, expires_at, decision_note, signed_transaction_id, purpose FROM approval_requests "
            f"WHERE wallet = {p} AND intent_sha256 = {p} ORDER BY id DESC LIMIT 1"
        )
        self._insert = (
            f"INSERT INTO approval_requests ({', '.join(_COLUMNS)}) VALUES ({', '.join([p] * len(_COLUMNS))})"
            + (" RETURNING id" if self._postgres else "")
        )
        self._set_status = f"UPDATE approval_requests SET status = {p} WHERE id = {p} AND status = {p}"
        self._consume = (
            f"UPDATE approval_requests SET status = 'consumed', consumed_at = {p} WHERE id = {p} AND status = 'approved'"
        )
        self._unconsume = "UPDATE approval_requests SET status = 'approved', consumed_at = NULL WHERE id = {p}".format(p=p)
        self._pending = (
            f"SELECT COUNT(*) FROM approval_requests WHERE wallet = {p} AND status = 'pending' AND expires_at > {p}"
        )
        self._link = f"UPDATE approval_requests SET signed_transaction_id = {p} WHERE id = {p}"

    def latest(self, wallet: str, intent: str) -> ApprovalRow | None:
        row = self._db.execute_sql(self._latest, (wallet, intent)).fetchone()
        if row is None:
            return None
        return ApprovalRow(int(row[0]), row[1], naive_utc(row[2]), row[3], row[4], row[5])

    def pending_count(self, wallet: str, now: datetime.datetime) -> int:
        """The wallet's open requests: pending and not expired."""
        return int(self._db.execute_sql(self._pending, (wallet, now)).fetchone()[0])

    def open(self, values: Sequence) -> int:
        """Insert a pending request (values in ``_COLUMNS`` order); its id."""
        cursor = self._db.execute_sql(self._insert, tuple(values))
        return int(cursor.fetchone()[0]) if self._postgres else int(cursor.lastrowid)

    def mark_expired(self, approval_id: int, status: str) -> None:
        self._db.execute_sql(self._set_status, ("expired", approval_id, status))

    def consume(self, approval_id: int, now: datetime.datetime) -> bool:
        return self._db.execute_sql(self._consume, (now, approval_id)).rowcount == 1

    def unconsume(self, approval_id: int) -> None:
        self._db.execute_sql(self._unconsume, (approval_id,))

    def link_signature(self, approval_id: int, transaction_id: int) -> None:
        self._db.execute_sql(self._link, (transaction_id, approval_id))


# -- the wait_for_approval op ------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalState:
    """What an agent may learn about a request: never who decided, only what and when."""

    approval_id: int
    wallet: str
    status: str  # effective: pending, approved, denied, consumed, expired
    expires_at: str
    decided_at: str | None
    reason: str | None  # the operator's --reason of a denial
    signed_transaction_id: int | None

    def to_wire(self) -> dict:
        return {
            "approvalId": self.approval_id,
            "wallet": self.wallet,
            "state": self.status,
            "expiresAt": self.expires_at,
            "decidedAt": self.decided_at,
            "reason": self.reason,
            "transactionId": self.signed_transaction_id,
        }


class ApprovalReader:
    """Reads one request's state on a connection of its own (the signing worker's stays free),
    from any connection thread, one at a time."""

    def __init__(self, database_url: str, *, clock: Callable[[], datetime.datetime] | None = None) -> None:
        from .models import utc_now

        self._url = database_url
        self._db = None
        self._lock = threading.Lock()
        self._clock = clock or utc_now

    def state(self, approval_id: int, wallet: str) -> ApprovalState:
        from .db import close_database, open_database, translate_errors
        from .errors import DatabaseUnavailable, JarvisWalletError

        with self._lock:
            try:
                if self._db is None:
                    self._db = open_database(self._url, bind=False, thread_safe=False)
                db = self._db
                with translate_errors(db):
                    db.connect(reuse_if_open=True)
                    row = db.execute_sql(
                        "SELECT id, wallet, status, expires_at, decided_at, decision_note, signed_transaction_id "
                        f"FROM approval_requests WHERE id = {db.param}",
                        (approval_id,),
                    ).fetchone()
            except JarvisWalletError as exc:
                if self._db is not None:
                    close_database(self._db)
                raise exc if isinstance(exc, DatabaseUnavailable) else DatabaseUnavailable(exc.message) from None
        if row is None or row[1] != wallet:  # another wallet's requests are not this signer's to tell
            raise NotFound(f"approval request {approval_id} does not exist for wallet {wallet}")
        status = effective_status(row[2], naive_utc(row[3]), self._clock())
        return ApprovalState(
            approval_id=int(row[0]), wallet=row[1], status=status, expires_at=iso(row[3]),
            decided_at=iso(row[4]) if row[4] is not None else None,
            reason=row[5] if status == "denied" else None,
            signed_transaction_id=row[6],
        )

    def close(self) -> None:
        from .db import close_database

        with self._lock:
            if self._db is not None:
                close_database(self._db)


# -- telling someone ---------------------------------------------------------------------------

#: How long the notify command may run before it is killed.
NOTIFY_TIMEOUT_SECONDS = 30
#: Notifications waiting for the command; beyond this they are dropped (and logged).
NOTIFY_QUEUE_SIZE = 100
# Never handed to the notify command, whatever the signer was started with.
_SECRET_ENVIRONMENT = ("SOLANA_PRIVATE_KEY", "SIGNER_SHARED_SECRET")


def notification_document(error: ApprovalRequired, *, wallet: str, peer_uid, peer_pid) -> dict:
    """What the notify command reads on stdin: public facts only (no key, secret or bytes)."""
    details = error.details
    return {
        "event": "approval_requested",
        "approval_id": error.approval_id,
        "wallet": wallet,
        "lamports": details.get("lamports"),
        "fee_lamports": details.get("fee_lamports"),
        "payments": details.get("payments", []),
        "purpose": details.get("purpose"),
        "peer_uid": peer_uid,
        "peer_pid": peer_pid,
        "expires_at": error.expires_at,
        "approve": f"jarvis-wallet approvals approve {error.approval_id}",
        "deny": f"jarvis-wallet approvals deny {error.approval_id}",
    }


def parse_notify_command(command: str) -> list[str]:
    """The notify command as argv (shell words, no shell: use `sh -c '...'` for a pipeline)."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise InvalidConfig(f"approval notify command: {exc}") from None
    if not argv:
        raise InvalidConfig("approval notify command is empty")
    return argv


class ApprovalNotifier:
    """Runs the notify command once per new pending request, on a thread of its own: ``notify``
    only queues, so a slow or failing command never delays or breaks a decision. Failures (exit
    status, time-out, cannot start, queue full) go to ``log(event, **fields)``."""

    def __init__(self, command: str, log: Callable[..., None], *, timeout: float = NOTIFY_TIMEOUT_SECONDS) -> None:
        self._argv = parse_notify_command(command)
        self._log = log
        self._timeout = timeout
        self._queue: queue.Queue = queue.Queue(maxsize=NOTIFY_QUEUE_SIZE)
        self._thread = threading.Thread(target=self._run, name="approval-notifier", daemon=True)
        self._thread.start()

    def notify(self, document: dict) -> None:
        try:
            self._queue.put_nowait(document)
        except queue.Full:
            # Dropped, not lost: the request is in `approvals list`, which shows every pending one.
            self._log(
                "approval_notify_failed", approval_id=document.get("approval_id"),
                reason=f"queue full ({NOTIFY_QUEUE_SIZE} waiting): notification dropped",
            )

    def stop(self, timeout: float = 1.0) -> None:
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        env = {name: value for name, value in os.environ.items() if name not in _SECRET_ENVIRONMENT}
        while True:
            document = self._queue.get()
            if document is None:
                return
            approval_id = document.get("approval_id")
            try:
                result = subprocess.run(
                    self._argv, input=json.dumps(document).encode("utf-8"), stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, env=env, timeout=self._timeout, close_fds=True, start_new_session=True,
                )
            except subprocess.TimeoutExpired:
                self._log("approval_notify_failed", approval_id=approval_id, reason=f"timed out after {self._timeout:g} s")
                continue
            except OSError as exc:
                self._log("approval_notify_failed", approval_id=approval_id, reason=f"cannot run: {exc.strerror or exc}")
                continue
            if result.returncode != 0:
                stderr = result.stderr.decode("utf-8", "replace").strip().splitlines()
                self._log(
                    "approval_notify_failed", approval_id=approval_id, exit_code=result.returncode,
                    stderr=(stderr[-1][:200] if stderr else ""),
                )
            else:
                self._log("approval_notified", approval_id=approval_id)


def signer_approval_hooks(database_url: str, notify_command: str | None, log: Callable[..., None]) -> dict:
    """The RequestHandler's approval arguments for a signer: its reader, and its notifier when
    a notify command is configured (an unusable command fails the start)."""
    reader = ApprovalReader(database_url)
    notifier = ApprovalNotifier(notify_command, log) if notify_command else None
    return {"approval_state": reader.state, "notify_approval": notifier.notify if notifier else None}


# -- the operator's side -----------------------------------------------------------------------


def operator_identity() -> tuple[str, int]:
    """The OS user running the CLI and its uid: who approved or denied, for the audit trail."""
    import pwd

    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return name, uid


def _check_note(text: str | None, what: str) -> str | None:
    if text is None:
        return None
    from .protocol import has_refused_character

    if len(text) > MAX_NOTE_CHARS:
        raise InvalidInput(f"{what} is longer than {MAX_NOTE_CHARS} characters")
    if has_refused_character(text):
        raise InvalidInput(f"{what} contains control, line-separator or bidi characters")
    return text


def get_request(approval_id: int):
    from .models import ApprovalRequest

    row = ApprovalRequest.get_or_none(ApprovalRequest.id == approval_id)
    if row is None:
        raise NotFound(f"approval request {approval_id} does not exist")
    return row


def list_approvals(*, wallet: str | None = None, everything: bool = False, limit: int = 100) -> list:
    """Every open request (pending, not yet expired), newest first; ``everything``: then the
    ``limit`` newest others (any status). Open requests are never cut by ``limit``: the one that
    matters must not be pushed out by newer junk (their number is capped per wallet)."""
    from .models import ApprovalRequest, utc_now
    from .solana.pubkey import normalize_pubkey

    scope = ApprovalRequest.select().order_by(ApprovalRequest.id.desc())
    if wallet is not None:
        scope = scope.where(ApprovalRequest.wallet == normalize_pubkey(wallet, what="wallet"))
    is_open = (ApprovalRequest.status == "pending") & (ApprovalRequest.expires_at > utc_now())
    rows = list(scope.where(is_open))
    if everything:
        rows += list(scope.where(~is_open).limit(limit))
    return rows


def _decide(approval_id: int, *, status: str, note: str | None, ttl_seconds: int) -> object:
    """Approve a pending request, or deny a pending or approved one (revoking an unused grant).

    Race-safe against a signer using the grant: both sides change the row only from the status
    they read (the signer consumes ``WHERE status = 'approved'`` inside its locked transaction),
    so exactly one of a revocation and a signature wins.
    """
    from .models import ApprovalRequest, utc_now

    db = ApprovalRequest._meta.database.obj  # the proxy's database, as the CLI's session bound it
    name, uid = operator_identity()
    decidable = ("pending", "approved") if status == "denied" else ("pending",)
    with _locked(db):
        row = get_request(approval_id)
        now = utc_now()
        current = effective_status(row.status, row.expires_at, now)
        if current not in decidable:
            raise InvalidInput(_not_decidable(row, current), wire_code="approval_not_pending")
        fields = {
            ApprovalRequest.status: status,
            ApprovalRequest.decided_at: now,
            ApprovalRequest.decided_by: name[:64],
            ApprovalRequest.decided_by_uid: uid,
            ApprovalRequest.decision_note: note,
            # An approval is good for, and a denial holds the intent for, a full period from now.
            ApprovalRequest.expires_at: now + datetime.timedelta(seconds=ttl_seconds),
        }
        updated = (
            ApprovalRequest.update(fields)
            .where((ApprovalRequest.id == approval_id) & (ApprovalRequest.status == row.status))
            .execute()
        )
        if updated != 1:
            raise InvalidInput(f"approval request {approval_id} was decided or used meanwhile", wire_code="approval_not_pending")
    return get_request(approval_id)


def _not_decidable(row, current: str) -> str:
    message = f"approval request {row.id} is {current}"
    if current == "expired":
        return message + (
            f" (expired at {iso(row.expires_at)}); the agent's next request of the same payment opens a new one"
        )
    if current == "consumed":
        return message + (
            f": it already signed transaction {row.signed_transaction_id}, and a released signature cannot be "
            "revoked" if row.signed_transaction_id else ": it already signed, and a released signature cannot be revoked"
        )
    return message


def approve(approval_id: int, *, note: str | None = None):
    """Grant a pending request: the agent's next request of the same intent is signed, once."""
    note = _check_note(note, "--note")
    return _decide(approval_id, status="approved", note=note, ttl_seconds=_configured_ttl())


def deny(approval_id: int, *, reason: str | None = None):
    """Refuse a pending request, or revoke an approved one not used yet: the intent is refused
    (approval_denied) for ``approval_ttl_seconds`` from now. A consumed grant cannot be revoked."""
    reason = _check_note(reason, "--reason")
    return _decide(approval_id, status="denied", note=reason, ttl_seconds=_configured_ttl())


def _configured_ttl() -> int:
    from .settings import get_setting

    return approval_ttl_seconds(get_setting("approval_ttl_seconds"))


def approval_ttl_seconds(value: str | None) -> int:
    """The configured lifetime (``approval_ttl_seconds``), or the default."""
    if value is None:
        return DEFAULT_APPROVAL_TTL_SECONDS
    return int(validate_ttl(value))


def approval_max_pending(value: str | None) -> int:
    """The configured cap on a wallet's open requests (``approval_max_pending``), or the default."""
    if value is None:
        return DEFAULT_APPROVAL_MAX_PENDING
    return int(validate_max_pending(value))


def validate_max_pending(value: str) -> str:
    """``approval_max_pending`` as stored: a whole number from 1 to MAX_APPROVAL_MAX_PENDING."""
    try:
        count = int(value.strip())
    except ValueError:
        raise InvalidConfig(f"invalid value {value!r}: expected a whole number of requests") from None
    if not 1 <= count <= MAX_APPROVAL_MAX_PENDING:
        raise InvalidConfig(f"invalid value {value!r}: approval_max_pending must be between 1 and {MAX_APPROVAL_MAX_PENDING}")
    return str(count)


def validate_ttl(value: str) -> str:
    """``approval_ttl_seconds`` as stored: whole seconds within the bounds."""
    try:
        seconds = int(value.strip())
    except ValueError:
        raise InvalidConfig(f"invalid value {value!r}: expected a whole number of seconds") from None
    if not MIN_APPROVAL_TTL_SECONDS <= seconds <= MAX_APPROVAL_TTL_SECONDS:
        raise InvalidConfig(
            f"invalid value {value!r}: approval_ttl_seconds must be between {MIN_APPROVAL_TTL_SECONDS} "
            f"and {MAX_APPROVAL_TTL_SECONDS}"
        )
    return str(seconds)


def _locked(db):
    from .db import is_sqlite

    return db.atomic("IMMEDIATE") if is_sqlite(db) else db.atomic()


def approval_report(row, *, now: datetime.datetime | None = None) -> dict:
    """One request as `approvals show --json` prints it: stable snake_case keys."""
    from .models import WalletTransaction, utc_now

    now = now or utc_now()
    status = effective_status(row.status, row.expires_at, now)
    payments = json.loads(row.payments) if row.payments else []
    linked = list(
        WalletTransaction.select(
            WalletTransaction.id, WalletTransaction.request_id, WalletTransaction.status,
            WalletTransaction.signature, WalletTransaction.rejection_reason, WalletTransaction.created_at,
        ).where(WalletTransaction.approval_id == row.id).order_by(WalletTransaction.id)
    )
    return {
        "approval_id": row.id,
        "wallet": row.wallet,
        "status": status,
        "intent_sha256": row.intent_sha256,
        "lamports": row.lamports,
        "fee_lamports": row.fee_lamports,
        "payments": payments,
        "destinations": list(dict.fromkeys(p.get("destination_label") or p.get("destination") for p in payments)),
        "purpose": row.purpose,
        "request_id": row.request_id,
        "peer_uid": row.peer_uid,
        "peer_pid": row.peer_pid,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
        "age_seconds": max(0, int((now - row.created_at).total_seconds())),
        "seconds_left": max(0, int((row.expires_at - now).total_seconds())) if status in ("pending", "approved") else 0,
        "decided_at": iso(row.decided_at),
        "decided_by": row.decided_by,
        "decided_by_uid": row.decided_by_uid,
        "note": row.decision_note,
        "consumed_at": iso(row.consumed_at),
        "signed_transaction_id": row.signed_transaction_id,
        "transactions": [
            {
                "transaction_id": tx.id,
                "request_id": tx.request_id,
                "status": tx.status,
                "signature": tx.signature,
                "reason": tx.rejection_reason.split(":", 1)[0] if tx.rejection_reason else None,
                "created_at": iso(tx.created_at),
            }
            for tx in linked
        ],
    }
