"""The Associated Token Account program: instruction decoding and address derivation.

Layouts follow solana-program/associated-token-account
``interface/src/instruction.rs``: Create is empty data (the original form) or
[0], CreateIdempotent [1], RecoverNested [2]; nothing may follow the tag.
"""

from __future__ import annotations

from ..errors import InvalidTransaction
from .pda import find_program_address
from .pubkey import decode_pubkey
from .reader import DataReader
from .token import Decoded, Spec, decode_with_spec

ASSOCIATED_TOKEN_PROGRAM_ID = decode_pubkey("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")

_CREATE_ROLES = ("funder", "associated_account", "wallet", "mint", "system_program", "token_program")
_INSTRUCTIONS = {
    # solana-py still passes the rent sysvar that the first program version required.
    0: Spec("create", (), _CREATE_ROLES, optional=("rent_sysvar",)),
    1: Spec("create_idempotent", (), _CREATE_ROLES),
    2: Spec(
        "recover_nested",
        (),
        (
            "nested_account",
            "nested_mint",
            "destination",
            "owner_account",
            "owner_mint",
            "wallet",
            "token_program",
        ),
    ),
}


def decode_associated_token(position: int, data: bytes, accounts: tuple[int, ...]) -> Decoded:
    """Decode one ATA instruction or raise InvalidTransaction."""
    what = f"instruction {position} (Associated Token Account)"
    reader = DataReader(data, what)
    tag = reader.u8() if data else 0
    spec = _INSTRUCTIONS.get(tag)
    if spec is None:
        raise InvalidTransaction(f"{what}: unknown instruction tag {tag}")
    return decode_with_spec(f"instruction {position} (Associated Token Account {spec.kind})", reader, spec, accounts)


def associated_token_address(owner: bytes, mint: bytes, token_program: bytes) -> bytes:
    """The associated token account of ``owner`` for ``mint`` under ``token_program``."""
    return find_program_address([owner, token_program, mint], ASSOCIATED_TOKEN_PROGRAM_ID)[0]
