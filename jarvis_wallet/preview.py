"""What the signer would decide for a transaction now: a preview, not a promise.

Reads the wallet's limits, its 24-hour spend and the allow-lists from the
database without taking the wallet's lock, and runs the same pure policy the
signer runs. Another signature can land between the preview and a real
request; only the signer's locked decision counts. Used by `jarvis-wallet
inspect --wallet` and the MCP server's `inspect_transaction`.
"""

from __future__ import annotations

from .models import utc_now
from .solana.transaction import ParsedInput


def would_decide(parsed: ParsedInput, wallet: str) -> dict:
    """``allowed``, ``reason``, ``message`` and ``spent_24h_lamports``; call inside a database
    session. Raises DatabaseError if the database cannot be read."""
    from .ledger import spent_in_window
    from .limits import get_limits
    from .policy import DEFAULT_PROGRAM_ALLOWLIST, Limits, decide
    from .settings import get_setting
    from .tokens import token_policy_inputs

    row = get_limits(wallet)
    limits = None if row is None else Limits(row.per_tx_lamports, row.daily_lamports)
    spent = spent_in_window(row.wallet, now=utc_now()) if row else 0
    extra_programs = [p for p in (get_setting("allowed_programs") or "").split(",") if p]
    destinations = get_setting("allowed_destinations")
    registry, token_limits, token_spent = token_policy_inputs(wallet, now=utc_now())
    decision = decide(
        message=parsed, wallet=wallet, limits=limits, spent_24h_lamports=spent,
        program_allowlist=set(DEFAULT_PROGRAM_ALLOWLIST) | set(extra_programs),
        destination_allowlist=None if destinations is None else [d for d in destinations.split(",") if d],
        durable_nonce_accounts=[n for n in (get_setting("durable_nonce_accounts") or "").split(",") if n],
        token_registry=registry, token_limits=token_limits, token_spent_24h=token_spent,
    )
    return {"allowed": decision.allowed, "reason": decision.reason, "message": decision.message, "spent_24h_lamports": spent}
