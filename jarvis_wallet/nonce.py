"""Revoking durable-nonce transactions: advance the nonce, signed through the signer and its policy.

A transaction whose first instruction advances a nonce never expires; it stays valid until that
nonce moves on. Advancing the nonce is therefore how every transaction signed against its current
value is voided. The advance is an ordinary transaction (see ``build_nonce_advance_message``),
decided, recorded and counted like any other: the operator holds no key either.
"""

from __future__ import annotations

from .client import SignedTransaction, SignerClient
from .solana.build import build_nonce_advance_message
from .solana.pubkey import decode_pubkey


def sign_nonce_advance(
    client: SignerClient, *, nonce_account: str, recent_blockhash: str, purpose: str | None = None
) -> SignedTransaction:
    """Have the signer sign the advance of ``nonce_account`` (its wallet being the nonce authority).

    The result still has to be submitted before ``recent_blockhash`` expires.
    """
    message = build_nonce_advance_message(
        authority=decode_pubkey(client.pubkey(), what="signer public key"),
        nonce_account=decode_pubkey(nonce_account, what="nonce account"),
        recent_blockhash=decode_pubkey(recent_blockhash, what="recent blockhash"),
    )
    return client.sign_transaction(
        message, purpose=purpose if purpose is not None else f"advance nonce {nonce_account}: revoke its transactions"
    )
