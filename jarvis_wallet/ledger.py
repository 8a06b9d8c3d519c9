"""The audit trail: reading ``wallet_transactions``, the 24-hour spend and status changes.

The signer writes rows (one per decision, inside its locked transaction);
operators and agents read them and move a signed transaction forward as it
is submitted and confirmed.
"""

from __future__ import annotations

import base64
import datetime
import json

import peewee

from .errors import DatabaseError, InvalidInput, InvalidStatusTransition, NotFound
from .models import (
    TX_STATUS_TRANSITIONS, TX_STATUSES, SpendRelease, WalletTransaction, iso_utc, signature_key, text_key, utc_now,
)

DAILY_WINDOW = datetime.timedelta(hours=24)
# Rows whose spend was counted when signed: every signature released, whatever happened after.
# What the chain later proves unspent is subtracted by a release (spend_releases), never by a
# status: a row's contribution to the window must not change (spend_window.py).
SPENDING_STATUSES = ("signed", "submitted", "confirmed", "failed", "expired")
SOL_ASSET = "SOL"  # spend_releases.asset of lamports; a token release names its mint
MAX_REASON_LENGTH = 1000
# What each entry of wallet_transactions.payments holds (solana.spend.Payment.to_dict).
PAYMENT_KEYS = ("instruction_index", "kind", "destination", "destination_label", "lamports")


def spent_in_window(wallet: str, *, now: datetime.datetime, window: datetime.timedelta = DAILY_WINDOW) -> int:
    """Lamports the wallet has had signed in the rolling window ending at ``now``, less what the
    chain proved was never spent (releases of expired and failed transactions)."""
    total = (
        WalletTransaction.select(peewee.fn.COALESCE(peewee.fn.SUM(WalletTransaction.lamports), 0))
        .where(
            (WalletTransaction.wallet == wallet)
            & (WalletTransaction.created_at > now - window)
            & (WalletTransaction.status.in_(SPENDING_STATUSES))
        )
        .scalar()
    )
    released = (
        SpendRelease.select(peewee.fn.COALESCE(peewee.fn.SUM(SpendRelease.amount), 0))
        .where(
            (SpendRelease.wallet == wallet)
            & (SpendRelease.asset == SOL_ASSET)
            & (SpendRelease.tx_created_at > now - window)
        )
        .scalar()
    )
    return int(total or 0) - int(released or 0)


def count_above_in_window(
    wallet: str, threshold_lamports: int, *, now: datetime.datetime, window: datetime.timedelta = DAILY_WINDOW
) -> int:
    """How many signed transactions of the window spent more than ``threshold_lamports``."""
    return (
        WalletTransaction.select()
        .where(
            (WalletTransaction.wallet == wallet)
            & (WalletTransaction.created_at > now - window)
            & (WalletTransaction.status.in_(SPENDING_STATUSES))
            & (WalletTransaction.lamports > threshold_lamports)
        )
        .count()
    )


def list_transactions(
    *,
    wallet: str | None = None,
    status: str | None = None,
    since: datetime.datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[WalletTransaction]:
    """Newest first; ``before_id`` pages back (rows with a smaller id)."""
    if limit < 1:
        raise InvalidInput("--limit must be at least 1")
    query = _filtered(wallet=wallet, status=status, since=since, before_id=before_id)
    return list(query.order_by(WalletTransaction.id.desc()).limit(limit))


def count_transactions(
    *,
    wallet: str | None = None,
    status: str | None = None,
    since: datetime.datetime | None = None,
    before_id: int | None = None,
) -> int:
    """How many rows ``list_transactions`` would give without a limit."""
    return _filtered(wallet=wallet, status=status, since=since, before_id=before_id).count()


def _filtered(*, wallet, status, since, before_id):
    if status is not None and status not in TX_STATUSES:
        raise InvalidInput(f"unknown status {status!r}: expected one of {', '.join(TX_STATUSES)}")
    query = WalletTransaction.select()
    if wallet is not None:
        query = query.where(WalletTransaction.wallet == wallet)
    if status is not None:
        query = query.where(WalletTransaction.status == status)
    if since is not None:
        query = query.where(WalletTransaction.created_at >= since)
    if before_id is not None:
        query = query.where(WalletTransaction.id < before_id)
    return query


def get_transaction(id_or_signature: str | int) -> WalletTransaction:
    """Find a row by its numeric id or its base58 signature."""
    text = str(id_or_signature).strip()
    if text.isdigit() and len(text) <= 19:
        # Ids are 64-bit: a larger number names no row (and would overflow the driver).
        row = WalletTransaction.get_or_none(WalletTransaction.id == int(text)) if int(text) < 2**63 else None
    else:
        row = WalletTransaction.get_or_none(by_signature(WalletTransaction._meta.database, text))
    if row is None:
        raise NotFound(f"no transaction with id or signature {text[:100]!r}")
    return row


def by_signature(db, signature: str) -> peewee.Node:
    """The condition that finds a row by its signature through the signature's index: its key
    (a prefix), then the whole text. Not ``signature = ?``: SQLite would put that value into the
    key's expression (constant propagation) and scan the table instead."""
    return peewee.SQL(f"{signature_key(db)} = {db.param} AND signature || '' = {db.param}", [text_key(signature), signature])


def mark_transaction(id_or_signature: str | int, *, status: str, reason: str | None = None) -> WalletTransaction:
    """Move a transaction forward by hand: signed -> submitted -> confirmed or failed.

    Nothing is released to the daily window by hand: a transaction marked failed here keeps
    counting in full. ``expired`` is only ever recorded on proof from the chain (``tx sync``).
    """
    if status == "expired":
        raise InvalidStatusTransition(
            "a transaction becomes expired only on proof from the chain: run `jarvis-wallet tx sync`"
        )
    if status not in ("submitted", "confirmed", "failed"):
        raise InvalidStatusTransition(
            f"cannot mark a transaction {status!r}: use submitted, confirmed or failed"
        )
    if reason is not None and len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"--reason is longer than {MAX_REASON_LENGTH} characters")
    row = get_transaction(id_or_signature)
    if row.kind == "message":
        raise InvalidStatusTransition(
            f"transaction {row.id} is an off-chain message: it never goes to the chain, so it cannot become {status}"
        )
    allowed_from = tuple(prev for prev, nexts in TX_STATUS_TRANSITIONS.items() if status in nexts)
    now = utc_now()
    changes = {WalletTransaction.status: status, WalletTransaction.updated_at: now}
    if status == "confirmed":
        changes[WalletTransaction.confirmed_at] = now
    if reason is not None:
        changes[WalletTransaction.rejection_reason] = reason
    # The WHERE clause makes the check and the change one step: no race with another marker.
    updated = (
        WalletTransaction.update(changes)
        .where((WalletTransaction.id == row.id) & (WalletTransaction.status.in_(allowed_from)))
        .execute()
    )
    if not updated:
        current = WalletTransaction.get_by_id(row.id).status
        raise InvalidStatusTransition(
            f"transaction {row.id} is {current}; it cannot become {status} "
            "(allowed: signed -> submitted -> confirmed or failed; rejected, confirmed, failed and expired are final)"
        )
    return WalletTransaction.get_by_id(row.id)


def _payments_of(row: WalletTransaction) -> list[dict] | None:
    """The recorded payments, each with every key ``Payment.to_dict`` gives (None where absent)."""
    if row.payments is None:
        return None
    try:
        payments = json.loads(row.payments)
        if not isinstance(payments, list) or not all(isinstance(p, dict) for p in payments):
            raise ValueError
    except ValueError:
        raise DatabaseError(f"transaction {row.id} has unreadable payments in the database") from None
    return [{key: payment.get(key) for key in PAYMENT_KEYS} for payment in payments]


def token_spend_of(transaction_ids) -> dict[int, list[dict]]:
    """The per-mint spend recorded with each transaction (one query): id -> [{mint, symbol,
    amount}], amounts in base units as decimal strings (u64)."""
    from .models import TokenSpend

    ids = list(transaction_ids)
    result: dict[int, list[dict]] = {transaction_id: [] for transaction_id in ids}
    if ids:
        rows = TokenSpend.select().where(TokenSpend.transaction_id.in_(ids)).order_by(TokenSpend.id)
        for spend in rows:
            result[spend.transaction_id].append(
                {"mint": spend.mint, "symbol": spend.symbol, "amount": str(spend.amount_base_units)}
            )
    return result


def transaction_to_dict(
    row: WalletTransaction, *, notify_above_lamports: int | None = None, tokens: list[dict] | None = None
) -> dict:
    """A row as JSON-able data. ``payments`` and ``message_base64`` are None where not recorded
    (unparsable bytes; rows from before they were). ``tokens``: its per-mint spend (read here
    when not given; ``token_spend_of`` reads many rows' at once)."""
    if tokens is None:
        tokens = token_spend_of([row.id])[row.id]
    return {
        "id": row.id,
        "request_id": row.request_id,
        "wallet": row.wallet,
        "status": row.status,
        "purpose": row.purpose,
        "lamports": row.lamports,
        "fee_lamports": row.fee_lamports,
        "destination_address": row.destination_address,
        "payments": _payments_of(row),
        "message_sha256": row.message_sha256,
        # bytes() first: PostgreSQL's driver returns a memoryview.
        "message_base64": None if row.message_bytes is None else base64.b64encode(bytes(row.message_bytes)).decode(),
        "signature": row.signature,
        "rejection_reason": row.rejection_reason,
        "peer_uid": row.peer_uid,
        "peer_pid": row.peer_pid,
        "created_at": iso_utc(row.created_at),
        "updated_at": iso_utc(row.updated_at),
        "confirmed_at": iso_utc(row.confirmed_at),
        "duplicate_of": row.duplicate_of,
        "kind": row.kind,
        "message_text": row.message_text,
        "approval_id": row.approval_id,  # the approval request it asked for (held, refused) or used (signed)
        "last_valid_block_height": row.last_valid_block_height,
        "chain_fee_lamports": row.chain_fee_lamports,
        "above_notify_threshold": (
            notify_above_lamports is not None and row.lamports > notify_above_lamports
        ),
        "tokens": tokens,
    }
