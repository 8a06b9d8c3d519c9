"""A wallet's balances as the endpoint sees them: SOL, and each registered mint in the wallet's
associated token account of it (derived offline under the mint's registered program).

Token amounts are u64 base units: in data they are decimal strings (JSON readers lose integers
above 2**53), beside the amount in token units for people.
"""

from __future__ import annotations

from ..amounts import format_token_amount
from ..solana.pubkey import decode_pubkey, encode_pubkey
from .rpc import RpcClient


def token_balances(rpc: RpcClient, wallet: str, *, commitment: str = "confirmed") -> list[dict]:
    """One entry per registered mint, in symbol order (call with the database open)."""
    from ..solana.token_spend import wallet_token_account
    from ..tokens import PROGRAMS, list_tokens

    balances = []
    for row in list_tokens():
        account = encode_pubkey(
            wallet_token_account(decode_pubkey(wallet, what="wallet"), decode_pubkey(row.mint, what="mint"), PROGRAMS[row.program])
        )
        found = rpc.get_token_account_balance(account, commitment=commitment)
        amount, chain_decimals = found if found is not None else (0, row.decimals)
        balances.append({
            "symbol": row.symbol,
            "mint": row.mint,
            "program": row.program,
            "decimals": row.decimals,
            "associated_account": account,
            "account_exists": found is not None,
            "amount_base_units": str(amount),
            "amount": format_token_amount(amount, row.decimals),
            # The chain's decimals when they differ from the registry's (a wrong offline
            # registration): None when they agree or there is no account.
            "decimals_on_chain": chain_decimals if chain_decimals != row.decimals else None,
        })
    return balances
