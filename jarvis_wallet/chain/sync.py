"""Reconcile the audit trail with the chain: ``tx sync`` and waiting for one transaction.

``sync`` walks every ``signed``/``submitted`` transaction in id order, in batches of at most 256
(getSignatureStatuses' limit), asks the endpoint about each batch and records what is proven
(settle.py). Safe from cron or a timer and twice at once: each outcome is recorded by a
conditional update under the wallet's lock, so the second run finds it settled and releases
nothing. ``wait_for`` follows one signature until it is proven or the time is up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import peewee

from ..models import WalletTransaction
from . import blockhashes
from .rpc import MAX_SIGNATURES_PER_STATUS_CALL, RpcClient, SignatureStatus
from .settle import UNSETTLED_STATUSES, Outcome, judge, record_last_valid_block_height, record_outcome, released_by


@dataclass
class SyncReport:
    checked: int = 0
    confirmed: int = 0
    failed: int = 0
    expired: int = 0
    pending: int = 0  # not proven yet
    no_expiry_height: int = 0  # pending, and cannot expire: its blockhash's height is unknown (or a nonce)
    settled_elsewhere: int = 0  # settled meanwhile by another sync, `send --wait` or by hand
    released_lamports: int = 0
    released_tokens: dict = field(default_factory=dict)  # mint -> base units (shown as decimal strings)
    batches: int = 0
    settled: list = field(default_factory=list)  # [{"id", "signature", "status", "released_lamports", "released_tokens"}]

    def to_dict(self) -> dict:
        return {
            "checked": self.checked, "confirmed": self.confirmed, "failed": self.failed, "expired": self.expired,
            "pending": self.pending, "no_expiry_height": self.no_expiry_height,
            "settled_elsewhere": self.settled_elsewhere, "released_lamports": self.released_lamports,
            "released_tokens": {mint: str(amount) for mint, amount in sorted(self.released_tokens.items())},
            "batches": self.batches, "settled": self.settled,
        }


def sync(
    db: peewee.Database,
    rpc: RpcClient,
    *,
    wallet: str | None = None,
    commitment: str = "confirmed",
    batch_size: int = MAX_SIGNATURES_PER_STATUS_CALL,
    tool: str = "tx sync",
) -> SyncReport:
    """Settle every unsettled transaction (of ``wallet``, or all) the chain has proven."""
    if not 1 <= batch_size <= MAX_SIGNATURES_PER_STATUS_CALL:
        raise ValueError(f"batch_size must be 1 to {MAX_SIGNATURES_PER_STATUS_CALL}")
    report = SyncReport()
    who = released_by(tool)
    after_id = 0
    # Asked even when nothing is unsettled: a timer's run says when the endpoint is unreachable.
    finalized_height = rpc.get_block_height(commitment="finalized")
    while True:
        query = WalletTransaction.select().where(
            (WalletTransaction.status.in_(UNSETTLED_STATUSES))
            & (WalletTransaction.kind == "transaction")
            & (WalletTransaction.signature.is_null(False))
            & (WalletTransaction.id > after_id)
        )
        if wallet is not None:
            query = query.where(WalletTransaction.wallet == wallet)
        rows = list(query.order_by(WalletTransaction.id).limit(batch_size))
        if not rows:
            return report
        if report.batches:  # the height before each batch's statuses: an unknown signature past it never lands
            finalized_height = rpc.get_block_height(commitment="finalized")
        after_id = rows[-1].id
        report.batches += 1
        statuses = rpc.get_signature_statuses([row.signature for row in rows])
        for row, status in zip(rows, statuses):
            report.checked += 1
            outcome = settle_one(db, rpc, row, status, finalized_height, commitment=commitment, who=who, report=report)
            if outcome is None:
                report.pending += 1


def settle_one(
    db, rpc: RpcClient, row: WalletTransaction, status: SignatureStatus | None, finalized_height: int, *,
    commitment: str, who: str, report: SyncReport | None = None,
) -> Outcome | None:
    """Judge one row from its status and record what is proven; the outcome, or None."""
    height = row.last_valid_block_height
    if height is None and status is None:
        blockhash = blockhashes.expiry_blockhash(row)
        height = None if blockhash is None else blockhashes.last_valid_block_height_of(blockhash)
        if height is not None:
            record_last_valid_block_height(row.id, height)
        elif report is not None:
            report.no_expiry_height += 1
    outcome = prove(
        rpc, row.signature, status, wallet=row.wallet, counted_lamports=row.lamports,
        finalized_height=finalized_height, last_valid_block_height=height, commitment=commitment,
    )
    if outcome is None:
        return None
    recorded = record_outcome(db, row.id, outcome, endpoint=rpc.label, who=who)
    if report is not None:
        if recorded is None:
            report.settled_elsewhere += 1
        else:
            setattr(report, outcome.status, getattr(report, outcome.status) + 1)
            report.released_lamports += outcome.released_lamports
            for mint, amount in recorded.tokens.items():
                report.released_tokens[mint] = report.released_tokens.get(mint, 0) + amount
            report.settled.append(
                {"id": row.id, "signature": row.signature, "status": outcome.status,
                 "released_lamports": outcome.released_lamports,
                 "released_tokens": {mint: str(amount) for mint, amount in recorded.tokens.items()}}
            )
    return outcome


def prove(
    rpc: RpcClient, signature: str, status: SignatureStatus | None, *, wallet: str, counted_lamports: int,
    finalized_height: int, last_valid_block_height: int | None, commitment: str,
) -> Outcome | None:
    """``judge`` with the block of a failure finalized fetched (what it cost is read from it)."""
    landed = None
    if status is not None and status.err is not None and status.reached("finalized"):
        landed = rpc.get_transaction(signature, commitment="finalized")
    return judge(
        wallet=wallet, counted_lamports=counted_lamports, status=status, landed=landed,
        finalized_height=finalized_height, last_valid_block_height=last_valid_block_height, commitment=commitment,
    )


@dataclass(frozen=True)
class Waited:
    """Where one transaction stands after waiting."""

    status: str  # confirmed, failed, expired, or still submitted (time ran out)
    outcome: Outcome | None
    slot: int | None = None


def wait_for(
    rpc: RpcClient,
    signature: str,
    *,
    wallet: str,
    counted_lamports: int,
    last_valid_block_height: int | None,
    commitment: str = "confirmed",
    timeout: float = 90.0,
    poll_interval: float = 1.0,
    on_progress: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Waited:
    """Poll until the chain proves the transaction's outcome or ``timeout`` seconds pass.
    Records nothing: the caller does (``record_outcome``), if it has the database."""
    deadline = clock() + timeout
    while True:
        finalized_height = rpc.get_block_height(commitment="finalized")
        (status,) = rpc.get_signature_statuses([signature])
        outcome = prove(
            rpc, signature, status, wallet=wallet, counted_lamports=counted_lamports,
            finalized_height=finalized_height, last_valid_block_height=last_valid_block_height,
            commitment=commitment,
        )
        if outcome is not None:
            return Waited(outcome.status, outcome, None if status is None else status.slot)
        if on_progress is not None:
            on_progress(_progress_text(status, finalized_height, last_valid_block_height))
        if clock() >= deadline:
            return Waited("submitted", None, None if status is None else status.slot)
        sleep(poll_interval)


def _progress_text(status: SignatureStatus | None, height: int, last_valid: int | None) -> str:
    if status is None:
        left = f", {last_valid - height} blocks before its blockhash expires" if last_valid is not None else ""
        return f"not seen yet (finalized block height {height}{left})"
    seen = status.confirmation_status or "seen"
    if status.err is not None:
        return f"failed at {seen} in slot {status.slot}; waiting for finalized to count its fee"
    return f"{seen} in slot {status.slot}"
