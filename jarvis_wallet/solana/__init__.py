"""Strict, offline understanding of Solana transactions and messages.

Nothing here does I/O. Every failure to understand input is
``jarvis_wallet.errors.InvalidTransaction``.
"""

from .build import build_transfer_message, compile_message
from .message import (
    AddressTableLookup,
    CompiledInstruction,
    LoadedAddress,
    Message,
    encode_message,
    parse_message,
)
from .offchain import OffchainMessage, build_offchain_message, parse_offchain_message
from .programs import (
    COMPUTE_BUDGET_PROGRAM_ID,
    MEMO_V1_PROGRAM_ID,
    MEMO_V2_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    DecodedInstruction,
    decode_instructions,
    describe_instruction,
    format_sol,
)
from .pubkey import decode_pubkey, encode_pubkey, normalize_pubkey
from .shortvec import decode_shortvec, encode_shortvec
from .spend import OwnershipChange, Payment, SpendSummary, compute_spend, describe
from .transaction import ParsedInput, decode_base64_input, parse_transaction_input

__all__ = [
    "COMPUTE_BUDGET_PROGRAM_ID",
    "MEMO_V1_PROGRAM_ID",
    "MEMO_V2_PROGRAM_ID",
    "SYSTEM_PROGRAM_ID",
    "AddressTableLookup",
    "CompiledInstruction",
    "DecodedInstruction",
    "LoadedAddress",
    "Message",
    "OffchainMessage",
    "OwnershipChange",
    "ParsedInput",
    "Payment",
    "SpendSummary",
    "build_offchain_message",
    "build_transfer_message",
    "compile_message",
    "compute_spend",
    "decode_base64_input",
    "decode_instructions",
    "decode_pubkey",
    "decode_shortvec",
    "describe",
    "describe_instruction",
    "encode_message",
    "encode_pubkey",
    "encode_shortvec",
    "format_sol",
    "normalize_pubkey",
    "parse_message",
    "parse_offchain_message",
    "parse_transaction_input",
]
