"""What the clients saw, checked against what the database recorded.

Every fault test and campaign ends with the same question: after kills, cuts, full disks and
hostile clients, does the audit trail still account for every signature that left the signer,
exactly once, within the limits? This module answers it.

    journal = Journal()
    with AccountedClient(socket_path, journal=journal) as client:   # a SignerClient that
        client.sign_transaction(message)                             # journals every attempt
    report = check_accounting(database_url, journal)
    report.assert_ok()                                               # or report.problems

``Journal`` records every request a client put on the wire (its id, op and payload) and what
came back: a reply, nothing (``lost``: the connection dropped or timed out after the request
may have reached the signer) or nothing because the client never connected (``unsent``).
Raw-socket clients journal through ``Journal.begin``/``finish`` directly.

``check_accounting`` compares the journal with ``wallet_transactions`` (invariants 2, 3, 4 of
docs/design.md, and 8's "one reply per request"):

1. every signature a client received has its spending row: same signature, same wallet, same
   message hash, same lamports; a first signature's row carries that request's id, a duplicate's
   row an earlier request's, and a duplicate reply's own request has a ``duplicate`` row naming
   that spending row (``duplicate_of``, the reply's ``transactionId``); the signature verifies
   over the message with the wallet's key;
2. every decision a client was told of (a policy refusal, ``invalid_tx`` for a transaction that
   could not be parsed) has exactly one row with its request id, status ``rejected``, and the
   refusal's code as the reason;
3. every row is explained by a request the signer may have decided: one answered with a
   decision, or lost, or refused as ``database_unavailable``/``internal_error`` (a commit whose
   acknowledgement was lost: recorded, never released). A request refused before the decision
   (authentication, freshness, framing, busy) or that never reached the signer has no row;
4. no two spending rows for one message of one wallet (a retry counts once); every
   ``duplicate`` row (a re-sign request) names a spending row of its wallet and message, holds
   no signature and counts nothing;
5. per wallet: no spending row above the per-transaction ceiling, no rolling 24-hour window
   above the daily ceiling (the window a row was decided in: rows of the 24 hours up to it,
   less the releases recorded before it of transactions in those 24 hours), no spending row at
   all for a wallet without limits;
6. every recorded signature whose message the journal knows verifies over it;
7. every decision's row carries the bytes it decided (a re-sign row carries none: the signed row
   it names does), which re-check it: they hash to its message_sha256,
   its signature (if any) verifies over them, and, where the row records its payments, parsing
   them again gives the same payments and the same lamports.

The signature can only be in a client's hands after its row committed: a signer that replied
first and committed afterwards would, killed in between, leave a received signature without a
row, and check 1 would say so.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime
import hashlib
import json
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import base58
import nacl.exceptions
import nacl.signing

from jarvis_wallet import protocol
from jarvis_wallet.client import SignerClient
from jarvis_wallet.errors import InvalidTransaction, SignerTimeout, SignerUnavailable

# Refusals that are decisions: taken inside the locked transaction and recorded.
DECISION_CODES = protocol.POLICY_REFUSAL_CODES | {protocol.INVALID_TX}
# Failures after the request may have reached the decision: a row may exist, no signature left.
AMBIGUOUS_CODES = frozenset({protocol.DATABASE_UNAVAILABLE, protocol.INTERNAL_ERROR})
SIGNING_OPS = frozenset({protocol.OP_SIGN, protocol.OP_SIGN_MESSAGE})
# Every status a released signature can reach. Check 5 sums them and subtracts the SOL releases
# (spend_releases) each decision had seen: those recorded under the lock before it (by the
# release's after_transaction_id) whose transaction is in the same window.
SPENDING_STATUSES = ("signed", "submitted", "confirmed", "failed", "expired")
DAILY_WINDOW = datetime.timedelta(hours=24)

SENT, REPLIED, LOST, UNSENT = "sent", "replied", "lost", "unsent"


@dataclass
class Attempt:
    """One request on the wire and what came back."""

    request_id: str | None
    op: str | None
    request: dict[str, Any] = field(repr=False)
    sent_at: float
    state: str = SENT
    reply: dict[str, Any] | None = field(default=None, repr=False)
    finished_at: float | None = None

    @property
    def code(self) -> str | None:
        """``ok``, the error code of the reply, or None without a reply."""
        if self.reply is None:
            return None
        if self.reply.get("ok") is True:
            return "ok"
        error = self.reply.get("error")
        return str(error.get("code")) if isinstance(error, dict) else "malformed"

    @property
    def signature(self) -> str | None:
        if self.reply is not None and self.reply.get("ok") is True and self.op in SIGNING_OPS:
            return self.reply.get("signature")
        return None


class Journal:
    """Every attempt every client made; safe to use from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: list[Attempt] = []

    def begin(self, request: dict[str, Any]) -> Attempt:
        request_id = request.get("requestId")
        attempt = Attempt(
            request_id=request_id if isinstance(request_id, str) else None,
            op=request.get("op") if isinstance(request.get("op"), str) else None,
            request=dict(request),
            sent_at=time.monotonic(),
        )
        with self._lock:
            self._attempts.append(attempt)
        return attempt

    def finish(self, attempt: Attempt, *, reply: dict[str, Any] | None = None, state: str | None = None) -> None:
        attempt.reply = reply
        attempt.state = state or (REPLIED if reply is not None else LOST)
        attempt.finished_at = time.monotonic()

    def attempts(self) -> list[Attempt]:
        with self._lock:
            return list(self._attempts)

    def counts(self, *, since: int = 0) -> Counter:
        """Attempts (from the ``since``-th on) by what came back: the reply's code, ``lost`` or ``unsent``."""
        return Counter(a.code if a.state == REPLIED else a.state for a in self.attempts()[since:])


class AccountedClient(SignerClient):
    """A SignerClient that journals every attempt, its automatic retry after a drop included."""

    def __init__(self, *args, journal: Journal, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.journal = journal

    def _round_trip(self, frame: bytes, timeout: float) -> dict[str, Any]:
        attempt = self.journal.begin(json.loads(frame))
        try:
            reply = super()._round_trip(frame, timeout)
        except SignerTimeout:
            self.journal.finish(attempt, state=LOST)
            raise
        except SignerUnavailable:  # only connecting raises it here: nothing was sent
            self.journal.finish(attempt, state=UNSENT)
            raise
        except BaseException:  # dropped mid-request: it may have been decided
            self.journal.finish(attempt, state=LOST)
            raise
        self.journal.finish(attempt, reply=reply)
        return reply


# -- the check -----------------------------------------------------------------------------------


@dataclass
class AccountingReport:
    """The figures of one check and every discrepancy found (``problems`` empty when sound)."""

    attempts: int = 0
    replies: int = 0
    signatures_received: int = 0  # distinct signatures in the clients' hands
    first_signatures: int = 0  # replies that were a new signature
    duplicate_replies: int = 0  # replies that returned an earlier recorded signature
    refusals_recorded: int = 0  # decisions told to clients, each with its rejected row
    refused_before_decision: int = 0  # auth, freshness, framing, busy: no row
    lost: int = 0  # sent, no reply (dropped, timed out)
    lost_recorded: int = 0  # of those, decided and recorded anyway
    unsent: int = 0
    ambiguous: int = 0  # database_unavailable / internal_error replies
    ambiguous_recorded: int = 0  # of those, recorded anyway (commit acknowledgement lost)
    rows: int = 0
    spending_rows: int = 0
    duplicate_rows: int = 0  # re-sign requests: each names a spending row, counts nothing
    signatures_accounted: int = 0  # received signatures with their row
    signatures_missing: int = 0  # received signatures without a row: must be 0
    spent_lamports: dict[str, int] = field(default_factory=dict)
    daily_lamports: dict[str, int | None] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def assert_ok(self) -> None:
        shown = "\n  ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        assert self.ok, f"accounting check failed ({len(self.problems)} problems):\n  {shown}{more}"

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["ok"] = self.ok
        data["problems"] = self.problems[:50]
        data["problem_count"] = len(self.problems)
        return data

    def summary(self) -> str:
        spent = ", ".join(
            f"{wallet[:8]}: {lamports} of {self.daily_lamports.get(wallet)}"
            for wallet, lamports in self.spent_lamports.items()
        )
        return (
            f"{self.attempts} requests, {self.replies} replies; {self.signatures_received} signatures received, "
            f"{self.signatures_accounted} accounted for, {self.signatures_missing} missing; "
            f"{self.duplicate_replies} duplicate replies; {self.refusals_recorded} refusals recorded; "
            f"{self.lost} lost in flight ({self.lost_recorded} recorded), {self.unsent} unsent, "
            f"{self.ambiguous} database_unavailable/internal_error ({self.ambiguous_recorded} recorded); "
            f"{self.rows} rows, {self.spending_rows} spending; spent {spent or '-'}; "
            f"{len(self.problems)} problems"
        )


def read_rows(database_url: str) -> tuple[list[dict], dict[str, tuple[int, int]]]:
    """Every wallet_transactions row, and each wallet's (per_tx, daily) limits."""
    from jarvis_wallet.db import session
    from jarvis_wallet.models import SpendLimit, WalletTransaction

    with session(database_url):
        rows = list(WalletTransaction.select().order_by(WalletTransaction.id).dicts())
        limits = {row.wallet: (row.per_tx_lamports, row.daily_lamports) for row in SpendLimit.select()}
    for row in rows:  # PostgreSQL's driver returns a memoryview
        if row["message_bytes"] is not None:
            row["message_bytes"] = bytes(row["message_bytes"])
    return rows, limits


def read_releases(database_url: str) -> dict[str, list[tuple[int, datetime.datetime, int]]]:
    """Each wallet's SOL releases: (after_transaction_id, the released transaction's created_at,
    lamports). A decision with a higher id was taken with the release, a lower one without."""
    from jarvis_wallet.db import session
    from jarvis_wallet.models import SpendRelease

    releases: dict[str, list[tuple[int, datetime.datetime, int]]] = defaultdict(list)
    with session(database_url):
        for release in SpendRelease.select().where(SpendRelease.asset == "SOL").order_by(SpendRelease.id):
            after = json.loads(release.evidence)["after_transaction_id"]
            releases[release.wallet].append((after, release.tx_created_at, release.amount))
    return releases


def signing_bytes_of(request: dict[str, Any]) -> tuple[bytes | None, str | None]:
    """What the signer signs (and hashes into message_sha256) for this request, as it would.

    (None, None) when the request could not have reached a decision at all (no transaction, or
    a txBase64 that is not canonical base64 of 1 to 1,232 bytes, which the signer refuses first).
    """
    from jarvis_wallet.solana import build_offchain_message, parse_transaction_input

    op = request.get("op")
    if op == protocol.OP_SIGN:
        text = request.get("txBase64")
        if not isinstance(text, str):
            return None, None
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return None, None
        if not 1 <= len(raw) <= protocol.MAX_TX_BYTES or base64.b64encode(raw).decode("ascii") != text:
            return None, None  # not canonical: refused as invalid_tx before any decision
        try:
            signing = parse_transaction_input(raw).signing_bytes()
        except InvalidTransaction:
            return raw, hashlib.sha256(raw).hexdigest()  # recorded as invalid_tx over the raw bytes
        return signing, hashlib.sha256(signing).hexdigest()
    if op == protocol.OP_SIGN_MESSAGE:
        text = request.get("message")
        if not isinstance(text, str):
            return None, None
        try:
            envelope = build_offchain_message(text)
        except InvalidTransaction:
            raw = text.encode("utf-8", "replace")
            return raw, hashlib.sha256(raw).hexdigest()
        return envelope, hashlib.sha256(envelope).hexdigest()
    return None, None


def _may_be_recorded(attempt: Attempt) -> bool:
    """A reply after which a row for the request may exist."""
    if attempt.signature is not None or attempt.code in AMBIGUOUS_CODES:
        return True
    return attempt.code in DECISION_CODES and signing_bytes_of(attempt.request)[1] is not None


def recheck_recorded_message(row: dict) -> list[str]:
    """Check 7 for one row: what its recorded bytes say, decided again."""
    from jarvis_wallet.amounts import MAX_LAMPORTS
    from jarvis_wallet.solana import compute_spend, parse_transaction_input
    from jarvis_wallet.solana.offchain import SIGNING_DOMAIN

    raw, name = row["message_bytes"], f"row {row['id']}"
    if raw is None:
        return [f"{name} has no recorded message bytes"]
    if hashlib.sha256(raw).hexdigest() != row["message_sha256"]:
        return [f"{name}: its recorded message does not hash to its message_sha256"]
    found = []
    if row["signature"] is not None and not _verifies(row["wallet"], raw, row["signature"]):
        found.append(f"{name}: its signature does not verify over its recorded message")
    if row["payments"] is None:
        return found  # bytes that did not parse: nothing more to re-check
    recorded = json.loads(row["payments"])
    if raw.startswith(SIGNING_DOMAIN):  # an off-chain message pays nobody
        return found + ([] if recorded == [] else [f"{name}: an off-chain message recorded with payments"])
    try:
        spend = compute_spend(parse_transaction_input(raw).message, base58.b58decode(row["wallet"]))
    except InvalidTransaction as exc:
        return found + [f"{name}: its recorded message does not parse again ({exc})"]
    if [payment.to_dict() for payment in spend.payments] != recorded:
        found.append(f"{name}: its recorded payments are not those of its message")
    if min(spend.spend_lamports, MAX_LAMPORTS) != row["lamports"]:
        found.append(f"{name}: records {row['lamports']} lamports, its message spends {spend.spend_lamports}")
    return found


def _verifies(wallet: str, message: bytes, signature: str) -> bool:
    try:
        nacl.signing.VerifyKey(base58.b58decode(wallet)).verify(message, base58.b58decode(signature))
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def check_accounting(
    database_url: str,
    journal: Journal,
    *,
    limits: dict[str, tuple[int, int]] | None = None,
    foreign_request_ids: frozenset[str] = frozenset(),
) -> AccountingReport:
    """Compare the journal with the database; see the module docstring for the checks.

    ``limits`` (wallet -> (per_tx, daily)) overrides the limits read from the database, for a
    test that changed them on the way. Rows whose request id is in ``foreign_request_ids`` were
    made by clients outside the journal and are only held to checks 4 to 6.
    """
    rows, db_limits = read_rows(database_url)
    releases = read_releases(database_url)
    limits = db_limits if limits is None else limits
    attempts = journal.attempts()
    report = AccountingReport(attempts=len(attempts), rows=len(rows))
    problems = report.problems

    by_id: dict[str, dict] = {}
    for row in rows:
        if row["request_id"] in by_id:
            problems.append(f"request id {row['request_id']} has two rows")
        by_id[row["request_id"]] = row
    by_signature = {row["signature"]: row for row in rows if row["signature"] is not None}

    # What the signer would sign, by message hash: to verify recorded signatures.
    messages: dict[str, bytes] = {}
    attempts_by_id: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        if attempt.request_id is not None:
            attempts_by_id[attempt.request_id].append(attempt)
        signing, digest = signing_bytes_of(attempt.request)
        if digest is not None:
            messages[digest] = signing

    codes: Counter = Counter()
    received: set[str] = set()
    missing: set[str] = set()
    for attempt in attempts:
        rid = attempt.request_id
        row = by_id.get(rid) if rid is not None else None
        if attempt.state == UNSENT:
            report.unsent += 1
            codes["unsent"] += 1
            continue
        if attempt.state == LOST:
            report.lost += 1
            codes["lost"] += 1
            report.lost_recorded += row is not None
            continue
        report.replies += 1
        code = attempt.code
        codes[code] += 1
        if attempt.reply.get("requestId") not in (rid, None):
            problems.append(f"request {rid} was answered with another request id {attempt.reply.get('requestId')}")
        _, digest = signing_bytes_of(attempt.request)
        signature = attempt.signature
        if signature is not None:
            received.add(signature)
            duplicate = bool(attempt.reply.get("duplicate", False))
            report.duplicate_replies += duplicate
            report.first_signatures += not duplicate
            recorded = by_signature.get(signature)
            if recorded is None:
                missing.add(signature)
                problems.append(f"signature {signature} (request {rid}) was received but has no row")
                continue
            if recorded["status"] not in SPENDING_STATUSES:
                problems.append(f"signature {signature} is recorded with status {recorded['status']}")
            if digest is not None and recorded["message_sha256"] != digest:
                problems.append(f"signature {signature} is recorded for another message ({recorded['message_sha256']})")
            wallet = attempt.reply.get("wallet")
            if recorded["wallet"] != wallet:
                problems.append(f"signature {signature} is recorded for wallet {recorded['wallet']}, not {wallet}")
            if "lamports" in attempt.reply and recorded["lamports"] != attempt.reply["lamports"]:
                problems.append(
                    f"signature {signature}: reply says {attempt.reply['lamports']} lamports, "
                    f"row {recorded['lamports']}"
                )
            if not duplicate and recorded["request_id"] != rid:
                problems.append(
                    f"first signature {signature} is recorded under request {recorded['request_id']}, not {rid}"
                )
            if duplicate and recorded["request_id"] == rid:
                problems.append(f"duplicate reply {rid} points at its own row")
            if duplicate and row is not None and row["status"] in SPENDING_STATUSES:
                problems.append(f"duplicate request {rid} has a spending row of its own")
            elif duplicate and "transactionId" in attempt.reply:  # a version 1 reply (legacy has none)
                if row is None or row["status"] != "duplicate" or row["duplicate_of"] != recorded["id"]:
                    seen = None if row is None else (row["status"], row["duplicate_of"])
                    problems.append(
                        f"duplicate request {rid} has no duplicate row naming row {recorded['id']} (found {seen})"
                    )
                if attempt.reply["transactionId"] != recorded["id"]:
                    problems.append(f"duplicate reply {rid} names transaction {attempt.reply['transactionId']}, "
                                    f"the signature's row is {recorded['id']}")
            if digest is not None and not _verifies(recorded["wallet"], messages[digest], signature):
                problems.append(f"signature {signature} does not verify over its message")
        elif code in DECISION_CODES and digest is not None:
            if row is None:
                problems.append(f"refusal {code} of request {rid} has no row")
            elif row["status"] != "rejected" or not (row["rejection_reason"] or "").startswith(f"{code}:"):
                problems.append(
                    f"refusal {code} of request {rid} is recorded as {row['status']} ({row['rejection_reason']!r})"
                )
            else:
                report.refusals_recorded += 1
        elif code in AMBIGUOUS_CODES:
            report.ambiguous += 1
            report.ambiguous_recorded += row is not None
        elif code == "ok":
            pass  # ping, pubkey, status
        else:
            report.refused_before_decision += 1

    # 3. Every row is explained by an attempt that may have reached the decision.
    for rid, row in by_id.items():
        if rid in foreign_request_ids:
            continue
        tries = attempts_by_id.get(rid, [])
        explained = any(a.state == LOST or (a.state == REPLIED and _may_be_recorded(a)) for a in tries)
        if not explained:
            seen = ", ".join(f"{a.state}/{a.code}" for a in tries) or "never sent by a journaled client"
            problems.append(f"row {row['id']} (request {rid}, {row['status']}) is not explained: {seen}")

    # 4. One spending row per message of a wallet; spending rows carry a signature.
    spending = [row for row in rows if row["status"] in SPENDING_STATUSES]
    report.spending_rows = len(spending)
    per_message = Counter((row["wallet"], row["message_sha256"]) for row in spending)
    for (wallet, digest), count in per_message.items():
        if count > 1:
            problems.append(f"message {digest} of wallet {wallet} has {count} spending rows")
    for row in rows:
        if (row["status"] in SPENDING_STATUSES) != (row["signature"] is not None):
            problems.append(f"row {row['id']} is {row['status']} with signature {row['signature']}")
    by_row_id = {row["id"]: row for row in rows}
    for row in rows:
        if row["status"] != "duplicate":
            continue
        report.duplicate_rows += 1
        signed = by_row_id.get(row["duplicate_of"])
        if signed is None or signed["status"] not in SPENDING_STATUSES:
            problems.append(f"duplicate row {row['id']} names row {row['duplicate_of']}, not a spending row")
        elif (signed["wallet"], signed["message_sha256"]) != (row["wallet"], row["message_sha256"]):
            problems.append(f"duplicate row {row['id']} names row {signed['id']} of another message or wallet")
        if row["lamports"] or row["fee_lamports"]:
            problems.append(f"duplicate row {row['id']} counts {row['lamports']} lamports")

    # 5. Limits per wallet, over rolling 24-hour windows.
    by_wallet: dict[str, list[dict]] = defaultdict(list)
    for row in spending:
        by_wallet[row["wallet"]].append(row)
    for wallet in sorted(set(by_wallet) | set(limits)):
        wallet_rows = sorted(by_wallet.get(wallet, []), key=lambda r: r["created_at"])
        wallet_releases = releases.get(wallet, [])
        report.spent_lamports[wallet] = sum(r["lamports"] for r in wallet_rows) - sum(a for _, _, a in wallet_releases)
        if wallet not in limits:
            report.daily_lamports[wallet] = None
            if wallet_rows:
                problems.append(f"wallet {wallet} has no limits but {len(wallet_rows)} spending rows")
            continue
        per_tx, daily = limits[wallet]
        report.daily_lamports[wallet] = daily
        for row in wallet_rows:
            if row["lamports"] > per_tx:
                problems.append(f"row {row['id']} spends {row['lamports']} > per-tx ceiling {per_tx}")
        times = [r["created_at"] for r in wallet_rows]
        prefix = [0]
        for r in wallet_rows:
            prefix.append(prefix[-1] + r["lamports"])
        worst = 0
        for index, moment in enumerate(times):
            start = bisect.bisect_right(times, moment - DAILY_WINDOW)
            row_id = wallet_rows[index]["id"]
            released = sum(
                amount for after, created, amount in wallet_releases
                if after < row_id and moment - DAILY_WINDOW < created <= moment
            )
            worst = max(worst, prefix[index + 1] - prefix[start] - released)
        if worst > daily:
            problems.append(f"wallet {wallet} spent {worst} lamports in 24 hours > daily ceiling {daily}")

    # 6. Every recorded signature over a known message is genuine.
    for row in spending:
        message = messages.get(row["message_sha256"])
        if message is not None and row["signature"] not in received:
            if not _verifies(row["wallet"], message, row["signature"]):
                problems.append(f"recorded signature of row {row['id']} does not verify")

    # 7. Every decision's row re-checks from the bytes it recorded. A re-sign row records none:
    # the signed row it names holds them (check 8 ties the two together).
    for row in rows:
        if row["status"] != "duplicate":
            problems.extend(recheck_recorded_message(row))

    report.signatures_received = len(received)
    report.signatures_missing = len(missing)
    report.signatures_accounted = len(received) - len(missing)
    report.codes = dict(sorted(codes.items(), key=lambda item: str(item[0])))
    return report
