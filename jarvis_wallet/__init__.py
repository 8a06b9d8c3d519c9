"""jarvis-wallet: let an agent spend from a Solana wallet without holding the key.

The public API is what ``__all__`` lists; everything else is internal. Names
are resolved lazily, so ``import jarvis_wallet`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # errors
    "JarvisWalletError": "errors",
    "InvalidInput": "errors",
    "InvalidAmount": "errors",
    "InvalidPublicKey": "errors",
    "InvalidLimits": "errors",
    "InvalidConfig": "errors",
    "InvalidStatusTransition": "errors",
    "InvalidTransaction": "errors",
    "InvalidMintAccount": "errors",
    "MintNotAccepted": "errors",
    "KeyMaterialError": "errors",
    "DatabaseError": "errors",
    "DatabaseUnavailable": "errors",
    "SchemaNotInitialised": "errors",
    "SchemaTooNew": "errors",
    "NotFound": "errors",
    "PolicyDenied": "errors",
    "ApprovalRequired": "errors",
    "ApprovalRefused": "errors",
    "SignerUnavailable": "errors",
    "SignerTimeout": "errors",
    "RateLimited": "errors",
    "AuthenticationFailed": "errors",
    "ProtocolError": "errors",
    "SignerStartError": "errors",
    "ChainError": "errors",
    "RpcUnavailable": "errors",
    "RpcBadResponse": "errors",
    "TransactionRefused": "errors",
    "TransactionNotConfirmed": "errors",
    "SignerLocked": "errors",
    # amounts
    "parse_amount": "amounts",
    "format_sol": "amounts",
    "LAMPORTS_PER_SOL": "amounts",
    # database
    "open_database": "db",
    "session": "db",
    "apply_migrations": "migrations",
    "check_schema": "migrations",
    # operator library
    "set_limits": "limits",
    "get_limits": "limits",
    "remove_limits": "limits",
    "limits_report": "limits",
    "set_setting": "settings",
    "get_setting": "settings",
    "list_transactions": "ledger",
    "get_transaction": "ledger",
    "mark_transaction": "ledger",
    "spent_in_window": "ledger",
    "add_token": "tokens",
    "get_token": "tokens",
    "list_tokens": "tokens",
    "remove_token": "tokens",
    "set_token_limits": "tokens",
    "remove_token_limits": "tokens",
    "token_limits_report": "tokens",
    "parse_token_amount": "amounts",
    "read_mint_account": "tokens",
    # approvals: the operator's yes or no
    "list_approvals": "approvals",
    "approve": "approvals",
    "deny": "approvals",
    "intent_digest": "approvals",
    # the signer and its client
    "SignerClient": "client",
    "SignedTransaction": "client",
    "ApprovalStatus": "client",
    "SignedMessage": "client",
    "TokenAmount": "client",
    "SignerSettings": "signer",
    "SignerHandle": "signer",
    "SignerInfo": "signer",
    "start_signer": "signer",
    "serve": "signer",
    "stop_signer": "signer",
    "sign_nonce_advance": "nonce",
    # the chain (the CLI's and the library's business; the signer stays offline)
    "RpcClient": "chain.rpc",
    "SendResult": "chain.send",
    "Keypair": "keys",
    "generate_keypair_file": "keys",
    # the encrypted keystore
    "Passphrase": "keystore",
    "write_keystore": "keystore",
    "load_keystore": "keystore",
    "encrypt_keypair_file": "keystore",
    "decrypt_keystore_file": "keystore",
    "backup_sqlite": "backup",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jarvis_wallet' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
