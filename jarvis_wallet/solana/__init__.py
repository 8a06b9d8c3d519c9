"""Strict, offline understanding of Solana transactions and messages.

Nothing here does I/O. Every failure to understand input is
``jarvis_wallet.errors.InvalidTransaction``.

Names are resolved on first use, so importing one submodule (the `sign`
command needs only base64 decoding) does not load the whole package.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ASSOCIATED_TOKEN_PROGRAM_ID": "associated_token",
    "associated_token_address": "associated_token",
    "build_nonce_advance_message": "build",
    "build_token_transfer_message": "build",
    "build_transfer_message": "build",
    "compile_message": "build",
    "AddressTableLookup": "message",
    "CompiledInstruction": "message",
    "LoadedAddress": "message",
    "Message": "message",
    "MintExtension": "mint_account",
    "ParsedMint": "mint_account",
    "check_registration": "mint_account",
    "parse_mint_account": "mint_account",
    "encode_message": "message",
    "parse_message": "message",
    "OffchainMessage": "offchain",
    "build_offchain_message": "offchain",
    "parse_offchain_message": "offchain",
    "COMPUTE_BUDGET_PROGRAM_ID": "programs",
    "MEMO_V1_PROGRAM_ID": "programs",
    "MEMO_V2_PROGRAM_ID": "programs",
    "SYSTEM_PROGRAM_ID": "programs",
    "DecodedInstruction": "programs",
    "decode_instructions": "programs",
    "describe_instruction": "programs",
    "format_sol": "programs",
    "find_program_address": "pda",
    "decode_pubkey": "pubkey",
    "encode_pubkey": "pubkey",
    "normalize_pubkey": "pubkey",
    "decode_shortvec": "shortvec",
    "TOKEN_PROGRAM_ID": "token",
    "TOKEN_2022_PROGRAM_ID": "token_2022",
    "encode_shortvec": "shortvec",
    "OwnershipChange": "spend",
    "Payment": "spend",
    "SpendSummary": "spend",
    "compute_spend": "spend",
    "describe": "spend",
    "ParsedInput": "transaction",
    "decode_base64_input": "base64_text",
    "parse_transaction_input": "transaction",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jarvis_wallet.solana' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
