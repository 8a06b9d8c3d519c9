"""Sign through the signer, submit, and (optionally) wait for the chain's verdict.

    with SignerClient() as signer, session(url) as db:
        result = send_transaction(signer, RpcClient(rpc_url), tx_bytes, database=db, wait=True)
        result.status          # confirmed, failed, expired, or submitted (still unproven)

The endpoint is asked for its latest blockhash before anything is signed, so an endpoint that
is down costs no signature. With a database the row moves to ``submitted`` with the last
valid block height of its blockhash, and the proven outcome is recorded with its release
(settle.py); without one (an agent that cannot reach the operator's database) nothing is
recorded here and ``tx sync`` settles it later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import base58

from ..errors import ChainError, RpcBadResponse
from ..solana import parse_transaction_input
from ..solana.spend import compute_spend
from . import blockhashes
from .rpc import RpcClient
from .settle import record_last_valid_block_height, record_outcome, record_submitted, released_by
from .sync import wait_for


@dataclass(frozen=True)
class SendResult:
    signature: str
    transaction_id: int
    wallet: str
    lamports: int  # counted against the limits when signed
    fee_lamports: int
    duplicate: bool
    status: str  # submitted, confirmed, failed or expired
    last_valid_block_height: int | None
    slot: int | None = None
    released_lamports: int = 0  # given back to the daily window (failed: all but the fee; expired: all)
    # Per mint (base58 -> base units as a decimal string): all of it for failed and expired.
    released_tokens: dict = field(default_factory=dict)
    chain_fee_lamports: int | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def send_transaction(
    signer,
    rpc: RpcClient,
    tx_bytes: bytes,
    *,
    purpose: str | None = None,
    skip_preflight: bool = False,
    wait: bool = False,
    commitment: str = "confirmed",
    timeout: float = 90.0,
    poll_interval: float = 1.0,
    database=None,
    on_progress: Callable[[str], None] | None = None,
    tool: str = "send",
) -> SendResult:
    """Sign ``tx_bytes`` with ``signer`` (a ``SignerClient``), submit it and optionally wait.

    A refused submission (``TransactionRefused``) or an endpoint lost after signing
    (``RpcUnavailable``) carries ``transaction_id`` and ``signature`` in ``details``: the
    signature was counted, and stays counted until ``tx sync`` proves it expired.
    """
    parsed = parse_transaction_input(tx_bytes)
    latest = rpc.get_latest_blockhash(commitment="confirmed")  # reachable before signing
    if database is not None:
        blockhashes.remember(latest)
    signed = signer.sign_transaction(tx_bytes, purpose=purpose)
    last_valid = _last_valid_block_height(parsed, signed.wallet, latest, database)
    if database is not None and last_valid is not None:
        record_last_valid_block_height(signed.transaction_id, last_valid)
    base = {
        "signature": signed.signature, "transaction_id": signed.transaction_id, "wallet": signed.wallet,
        "lamports": signed.lamports, "fee_lamports": signed.fee_lamports, "duplicate": signed.duplicate,
        "last_valid_block_height": last_valid,
    }
    try:
        submitted = rpc.send_transaction(signed.signed_transaction, skip_preflight=skip_preflight, preflight_commitment=commitment)
    except ChainError as exc:
        exc.details.update(base, status="signed")
        exc.message += (
            f"; transaction {signed.transaction_id} is signed and counted against the daily limit "
            "until `jarvis-wallet tx sync` proves it expired"
        )
        raise
    if submitted != signed.signature:
        raise RpcBadResponse(f"RPC endpoint {rpc.label} answered sendTransaction with another signature ({submitted[:20]}…)")
    if database is not None:
        record_submitted(signed.transaction_id, last_valid_block_height=None)
    if not wait:
        return SendResult(**base, status="submitted")
    waited = wait_for(
        rpc, signed.signature, wallet=signed.wallet, counted_lamports=signed.lamports,
        last_valid_block_height=last_valid, commitment=commitment, timeout=timeout,
        poll_interval=poll_interval, on_progress=on_progress,
    )
    outcome = waited.outcome
    if outcome is None:
        return SendResult(**base, status="submitted", slot=waited.slot)
    if database is not None:
        record_outcome(database, signed.transaction_id, outcome, endpoint=rpc.label, who=released_by(tool))
    released_tokens = (
        {token.mint: str(token.amount) for token in signed.tokens if token.amount}
        if outcome.status in ("failed", "expired") else {}
    )
    return SendResult(
        **base, status=outcome.status, slot=waited.slot, released_lamports=outcome.released_lamports,
        released_tokens=released_tokens, chain_fee_lamports=outcome.chain_fee_lamports, error=outcome.error,
    )


def _last_valid_block_height(parsed, wallet: str, latest, database) -> int | None:
    """Of the transaction's own blockhash: the latest one's (if it is that one), else as recorded
    when jarvis-wallet fetched it; None for a durable-nonce transaction or an unknown blockhash."""
    try:
        if compute_spend(parsed.message, base58.b58decode(wallet)).uses_durable_nonce:
            return None
    except Exception:  # noqa: BLE001 - the signer parsed and signed it; no expiry if we cannot tell
        return None
    blockhash = base58.b58encode(parsed.message.recent_blockhash).decode("ascii")
    if blockhash == latest.blockhash:
        return latest.last_valid_block_height
    return blockhashes.last_valid_block_height_of(blockhash) if database is not None else None
