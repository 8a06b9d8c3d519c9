"""Spend limits per wallet: set, read with the 24-hour spend, remove."""

from __future__ import annotations

import datetime

from .errors import InvalidLimits, NotFound
from .ledger import count_above_in_window, spent_in_window
from .models import SpendLimit, iso_utc, utc_now
from .solana.pubkey import normalize_pubkey


KEEP = "keep"  # set_limits: leave this ceiling as it is


def set_limits(
    wallet: str,
    *,
    per_tx_lamports: int | str = KEEP,
    daily_lamports: int | str = KEEP,
    notify_above_lamports: int | str | None = KEEP,
    approve_above_lamports: int | str | None = KEEP,
) -> SpendLimit:
    """Create or change a wallet's ceilings (amounts already parsed to lamports).

    A value left as ``KEEP`` keeps what the wallet has; ``None`` clears the notify threshold
    (which only flags rows) or the approval threshold (above which a transaction waits for the
    operator's `approvals approve`). A wallet without limits needs both ceilings.
    """
    wallet = normalize_pubkey(wallet, what="wallet")
    existing = SpendLimit.get_or_none(SpendLimit.wallet == wallet)
    if existing is None and KEEP in (per_tx_lamports, daily_lamports):
        raise InvalidLimits(f"wallet {wallet} has no limits yet: give both --per-tx and --daily")
    if existing is not None:
        per_tx_lamports = existing.per_tx_lamports if per_tx_lamports == KEEP else per_tx_lamports
        daily_lamports = existing.daily_lamports if daily_lamports == KEEP else daily_lamports
    if notify_above_lamports == KEEP:
        notify_above_lamports = existing.notify_above_lamports if existing is not None else None
    if approve_above_lamports == KEEP:
        approve_above_lamports = existing.approve_above_lamports if existing is not None else None
    for name, value in (
        ("per-tx", per_tx_lamports), ("daily", daily_lamports), ("notify-above", notify_above_lamports),
        ("approve-above", approve_above_lamports),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidLimits(f"the {name} limit must be a non-negative number of lamports")
    if per_tx_lamports > daily_lamports:
        raise InvalidLimits(
            f"the per-transaction limit ({per_tx_lamports} lamports) is above the daily limit "
            f"({daily_lamports} lamports)"
        )
    now = utc_now()
    fields = {
        SpendLimit.per_tx_lamports: per_tx_lamports,
        SpendLimit.daily_lamports: daily_lamports,
        SpendLimit.notify_above_lamports: notify_above_lamports,
        SpendLimit.approve_above_lamports: approve_above_lamports,
        SpendLimit.updated_at: now,
    }
    (
        SpendLimit.insert({SpendLimit.wallet: wallet, **fields})
        .on_conflict(conflict_target=[SpendLimit.wallet], update=fields)
        .execute()
    )
    return SpendLimit.get(SpendLimit.wallet == wallet)


def get_limits(wallet: str) -> SpendLimit | None:
    return SpendLimit.get_or_none(SpendLimit.wallet == normalize_pubkey(wallet, what="wallet"))


def require_limits(wallet: str) -> SpendLimit:
    row = get_limits(wallet)
    if row is None:
        raise NotFound(f"wallet {wallet} has no spend limits")
    return row


def list_limits() -> list[SpendLimit]:
    return list(SpendLimit.select().order_by(SpendLimit.wallet))


def remove_limits(wallet: str) -> None:
    """Remove a wallet's ceilings: from then on the signer refuses it every new signature (a
    message it already signed is still answered with the recorded signature: nothing new)."""
    wallet = normalize_pubkey(wallet, what="wallet")
    if not SpendLimit.delete().where(SpendLimit.wallet == wallet).execute():
        raise NotFound(f"wallet {wallet} has no spend limits")


def limits_report(row: SpendLimit, *, now: datetime.datetime | None = None) -> dict:
    """The ceilings with the spend of the last 24 hours and what remains; ``tokens``: the same
    per mint the wallet has limits for (tokens.token_limits_report)."""
    from .tokens import token_limits_report

    now = now or utc_now()
    spent = spent_in_window(row.wallet, now=now)
    notify = row.notify_above_lamports
    return {
        "wallet": row.wallet,
        "per_tx_lamports": row.per_tx_lamports,
        "daily_lamports": row.daily_lamports,
        "notify_above_lamports": notify,
        "above_notify_24h": 0 if notify is None else count_above_in_window(row.wallet, notify, now=now),
        "approve_above_lamports": row.approve_above_lamports,
        "spent_24h_lamports": spent,
        "remaining_24h_lamports": max(row.daily_lamports - spent, 0),
        "updated_at": iso_utc(row.updated_at),
        "tokens": token_limits_report(row.wallet, now=now),
    }
