"""Blockhashes fetched through jarvis-wallet and their last valid block height.

A transaction can be proven expired only against the last valid block height of its own
blockhash, which only ``getLatestBlockhash`` tells, and only when it hands that blockhash out.
So every blockhash jarvis-wallet fetches is kept here (``blockhash``, ``build-transfer
--blockhash auto``, ``send``), and ``tx sync`` finds a transaction's height by the blockhash
in its recorded message, whoever signed or submitted it.
"""

from __future__ import annotations

import base58

from ..models import ChainBlockhash, WalletTransaction, utc_now
from ..solana import parse_transaction_input
from ..solana.spend import compute_spend
from .rpc import LatestBlockhash


def remember(latest: LatestBlockhash) -> None:
    """Keep a fetched blockhash (the first height recorded for it stays)."""
    ChainBlockhash.insert(
        blockhash=latest.blockhash, last_valid_block_height=latest.last_valid_block_height, fetched_at=utc_now()
    ).on_conflict_ignore().execute()


def last_valid_block_height_of(blockhash: str) -> int | None:
    row = ChainBlockhash.get_or_none(ChainBlockhash.blockhash == blockhash)
    return None if row is None else row.last_valid_block_height


def expiry_blockhash(row: WalletTransaction) -> str | None:
    """The blockhash whose height bounds this transaction's life, or None: a durable-nonce
    transaction (its "blockhash" is the nonce's value and never expires by height), or bytes
    that cannot be read."""
    if row.message_bytes is None:
        return None
    try:
        message = parse_transaction_input(bytes(row.message_bytes)).message
        if compute_spend(message, base58.b58decode(row.wallet)).uses_durable_nonce:
            return None
    except Exception:  # noqa: BLE001 - unreadable recorded bytes: no proof of expiry from them
        return None
    return base58.b58encode(message.recent_blockhash).decode("ascii")
