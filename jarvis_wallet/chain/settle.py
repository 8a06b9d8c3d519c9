"""What the chain proved about a signed transaction, and what that gives back to the daily window.

The rule (docs/policy.md): a transaction counts in full from its signature until the chain
proves otherwise.

- ``confirmed``: it landed and ran; everything stays counted.
- ``failed``: it landed at ``finalized`` and failed; it moved nothing but the fee, so all but the
  lamports it really took from the wallet (``getTransaction``'s balances) is released.
- ``expired``: the endpoint's block height at ``finalized`` is past the blockhash's last valid
  block height and the signature is unknown to it (history searched): it never landed and
  never can, so all of it is released. A durable-nonce transaction has no such height and
  never expires.
- anything else (not yet seen, seen at a lower commitment, no known last valid block height):
  nothing changes.

Tokens: a failed transaction moved no tokens (the runtime rolls every instruction back) and an
expired one never ran, so both release the transaction's whole per-mint spend (token_spend).

A release is a row of ``spend_releases`` (append-only, one per transaction and asset: "SOL" in
lamports, or a mint in base units), written with the status change in one transaction under the wallet's lock (the lock the signer
takes), with who released it and the evidence. The status change is conditional (only from
``signed`` or ``submitted``), so two syncs at once, or a sync racing ``send --wait``, release once.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
from dataclasses import dataclass, field

import peewee

from ..db import is_sqlite
from ..ledger import SOL_ASSET
from ..models import SpendRelease, WalletTransaction, utc_now
from .rpc import LandedTransaction, SignatureStatus

UNSETTLED_STATUSES = ("signed", "submitted")


@dataclass(frozen=True)
class Outcome:
    """A proven final status and the lamports it gives back to the window."""

    status: str  # confirmed, failed or expired
    released_lamports: int
    chain_fee_lamports: int | None = None  # failed: lamports the chain took from the wallet
    error: str | None = None  # failed: the on-chain error
    evidence: dict = field(default_factory=dict)


def judge(
    *,
    wallet: str,
    counted_lamports: int,
    status: SignatureStatus | None,
    landed: LandedTransaction | None,
    finalized_height: int,
    last_valid_block_height: int | None,
    commitment: str = "confirmed",
) -> Outcome | None:
    """The outcome the chain has proven for one transaction, or None (not proven yet).

    ``finalized_height`` must have been read before ``status``: a signature unknown after the
    height passed its limit can no longer land. ``landed`` is getTransaction at finalized for a
    failed one (None: not fetched or not known yet).
    """
    if status is not None:
        if status.err is None:
            if not status.reached(commitment):
                return None
            return Outcome("confirmed", 0, evidence={"slot": status.slot, "confirmation_status": status.confirmation_status})
        if not status.reached("finalized") or landed is None or landed.err is None:
            return None  # a failure is final only when finalized, and its cost is read from the block
        charged = landed.lamports_lost(wallet)
        return Outcome(
            "failed",
            max(0, counted_lamports - charged),
            chain_fee_lamports=charged,
            error=_error_text(landed.err),
            evidence={"slot": landed.slot, "err": landed.err, "fee": landed.fee, "wallet_lamports_lost": charged},
        )
    if last_valid_block_height is not None and finalized_height > last_valid_block_height:
        return Outcome(
            "expired",
            counted_lamports,
            evidence={
                "finalized_block_height": finalized_height,
                "last_valid_block_height": last_valid_block_height,
                "signature_status": None,
            },
        )
    return None


def _error_text(err) -> str:
    text = err if isinstance(err, str) else json.dumps(err, separators=(",", ":"), sort_keys=True)
    return text[:500]


def released_by(tool: str) -> str:
    """Who releases: the user and uid running the command, and which command."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return f"{user} (uid {os.getuid()}) via {tool}"[:200]


@contextlib.contextmanager
def wallet_locked(db: peewee.Database, wallet: str):
    """One transaction holding the wallet's lock, exactly as the signer takes it (signing.py):
    ``BEGIN IMMEDIATE`` on SQLite; on PostgreSQL READ COMMITTED and ``FOR UPDATE`` on the
    wallet's limits row. A release is then ordered with every decision, so each signer's kept
    24-hour sum sees it by id (spend_window.py). A wallet without a limits row has no row to lock
    on PostgreSQL; it cannot sign either, and a release a signer missed only makes its kept sum
    too high (it refuses early, never late) until it next recounts."""
    if is_sqlite(db):
        with db.atomic("IMMEDIATE"):
            yield
    else:
        with db.atomic(isolation_level="READ COMMITTED"):
            db.execute_sql("SELECT 1 FROM spend_limits WHERE wallet = %s FOR UPDATE", (wallet,))
            yield


@dataclass(frozen=True)
class Released:
    """What one recorded outcome gave back to the windows."""

    lamports: int
    tokens: dict[str, int] = field(default_factory=dict)  # mint (base58) -> base units


def record_outcome(
    db: peewee.Database, transaction_id: int, outcome: Outcome, *, endpoint: str, who: str
) -> Released | None:
    """Record a proven outcome and its releases atomically; what was released, or None if the
    row was settled already (by another sync, or by hand), in which case nothing is written."""
    row = WalletTransaction.get_by_id(transaction_id)
    with wallet_locked(db, row.wallet):
        now = utc_now()
        changes = {WalletTransaction.status: outcome.status, WalletTransaction.updated_at: now}
        if outcome.status == "confirmed":
            changes[WalletTransaction.confirmed_at] = now
        if outcome.status == "failed":
            changes[WalletTransaction.chain_fee_lamports] = outcome.chain_fee_lamports
            changes[WalletTransaction.rejection_reason] = f"on chain: {outcome.error}"
        moved = (
            WalletTransaction.update(changes)
            .where((WalletTransaction.id == row.id) & (WalletTransaction.status.in_(UNSETTLED_STATUSES)))
            .execute()
        )
        if not moved:
            return None
        lamports = min(outcome.released_lamports, row.lamports)
        tokens = token_spend_of(row.id) if outcome.status in ("failed", "expired") else {}
        if lamports > 0 or tokens:
            # Under the lock no decision of the wallet is in flight: every row up to this id was
            # decided without this release, every later one with it (the audit's total order).
            after = WalletTransaction.select(peewee.fn.MAX(WalletTransaction.id)).where(
                WalletTransaction.wallet == row.wallet
            ).scalar()
            evidence = json.dumps(
                {"endpoint": endpoint, **outcome.evidence, "after_transaction_id": after},
                sort_keys=True, separators=(",", ":"),
            )
            common = {
                "transaction_id": row.id, "wallet": row.wallet, "reason": outcome.status,
                "tx_created_at": row.created_at, "evidence": evidence, "released_by": who, "created_at": now,
            }
            if lamports > 0:
                SpendRelease.insert(asset=SOL_ASSET, amount=lamports, **common).execute()
            for mint, base_units in tokens.items():
                SpendRelease.insert(asset=mint, amount_base_units=base_units, **common).execute()
    return Released(max(lamports, 0), tokens)


def token_spend_of(transaction_id: int) -> dict[str, int]:
    """The base units per mint a transaction was counted for (token_spend), in mint order."""
    from ..models import TokenSpend

    spent: dict[str, int] = {}
    rows = TokenSpend.select().where(TokenSpend.transaction_id == transaction_id).order_by(TokenSpend.mint)
    for spend in rows:
        if spend.amount_base_units:
            spent[spend.mint] = spent.get(spend.mint, 0) + spend.amount_base_units
    return spent


def record_submitted(transaction_id: int, *, last_valid_block_height: int | None) -> None:
    """A signed transaction was handed to the endpoint (no lock: nothing counted changes)."""
    changes = {WalletTransaction.status: "submitted", WalletTransaction.updated_at: utc_now()}
    WalletTransaction.update(changes).where(
        (WalletTransaction.id == transaction_id) & (WalletTransaction.status == "signed")
    ).execute()
    if last_valid_block_height is not None:
        record_last_valid_block_height(transaction_id, last_valid_block_height)


def record_last_valid_block_height(transaction_id: int, height: int) -> None:
    """Set once: a later, possibly different answer never moves it."""
    WalletTransaction.update({WalletTransaction.last_valid_block_height: height}).where(
        (WalletTransaction.id == transaction_id) & WalletTransaction.last_valid_block_height.is_null()
    ).execute()


def releases_of(transaction_id: int) -> list[dict]:
    """The releases of one transaction, as JSON-able data."""
    from ..models import iso_utc

    return [
        {
            "asset": r.asset,
            # lamports (a JSON integer) for SOL; u64 base units as a decimal string for a mint
            "amount": r.amount if r.asset == SOL_ASSET else str(r.amount_base_units),
            "reason": r.reason,
            "released_by": r.released_by,
            "released_at": iso_utc(r.created_at),
            "evidence": json.loads(r.evidence),
        }
        for r in SpendRelease.select().where(SpendRelease.transaction_id == transaction_id).order_by(SpendRelease.id)
    ]
