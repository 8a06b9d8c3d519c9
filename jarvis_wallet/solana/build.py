"""Building the messages the CLI's ``build-transfer`` produces.

Keys are ordered the way the Solana SDK compiles them (``CompiledKeys``): the
fee payer first, then writable signers, read-only signers, writable
non-signers, read-only non-signers, each group sorted by key bytes. The tests
check the output byte for byte against solders.

Instruction order: set compute unit limit, set compute unit price, transfer
(for tokens: create the recipient's associated token account idempotently, then
TransferChecked), memo (Memo v2, no signer accounts).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidAmount, InvalidPublicKey, InvalidTransaction
from .associated_token import ASSOCIATED_TOKEN_PROGRAM_ID, associated_token_address
from .message import CompiledInstruction, MessageVersion, encode_message
from .offchain import build_offchain_message
from .pda import is_on_curve
from .programs import COMPUTE_BUDGET_PROGRAM_ID, MEMO_V2_PROGRAM_ID, SYSTEM_PROGRAM_ID
from .pubkey import decode_pubkey, encode_pubkey
from .token import TOKEN_PROGRAM_ID
from .token_2022 import TOKEN_2022_PROGRAM_ID
from .transaction import PACKET_DATA_SIZE, SIGNATURE_LENGTH

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1

__all__ = [
    "AccountMeta",
    "Instruction",
    "build_nonce_advance_message",
    "build_offchain_message",
    "build_token_transfer_message",
    "build_transfer_message",
    "compile_message",
]

RECENT_BLOCKHASHES_SYSVAR_ID = decode_pubkey("SysvarRecentB1ockHashes11111111111111111111")
# Programs that can never hold, send or receive tokens as a wallet.
_PROGRAM_IDS = frozenset(
    {SYSTEM_PROGRAM_ID, COMPUTE_BUDGET_PROGRAM_ID, MEMO_V2_PROGRAM_ID, TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID,
     ASSOCIATED_TOKEN_PROGRAM_ID}
)
# Enough for a Compute Budget instruction and an AdvanceNonceAccount, with room to spare; the
# fee of a transaction without a unit price does not depend on it.
NONCE_ADVANCE_COMPUTE_UNIT_LIMIT = 10_000


@dataclass(frozen=True)
class AccountMeta:
    """An account an instruction uses, with the access it needs."""

    pubkey: bytes
    is_signer: bool
    is_writable: bool


@dataclass(frozen=True)
class Instruction:
    """An instruction before compilation: program, account metas, data."""

    program_id: bytes
    accounts: tuple[AccountMeta, ...]
    data: bytes


def compile_message(
    *, payer: bytes, instructions: list[Instruction], recent_blockhash: bytes, v0: bool = False
) -> bytes:
    """Serialize instructions into a message, keys ordered as the Solana SDK orders them."""
    metas: dict[bytes, list[bool]] = {}  # key -> [is_signer, is_writable]
    for instruction in instructions:
        metas.setdefault(instruction.program_id, [False, False])
        for account in instruction.accounts:
            meta = metas.setdefault(account.pubkey, [False, False])
            meta[0] |= account.is_signer
            meta[1] |= account.is_writable
    metas[payer] = [True, True]

    def group(signer: bool, writable: bool) -> list[bytes]:
        return sorted(k for k, (s, w) in metas.items() if s == signer and w == writable and k != payer)

    writable_signers = [payer] + group(True, True)
    readonly_signers = group(True, False)
    writable_unsigned = group(False, True)
    readonly_unsigned = group(False, False)
    keys = writable_signers + readonly_signers + writable_unsigned + readonly_unsigned
    position = {key: index for index, key in enumerate(keys)}
    compiled = [
        CompiledInstruction(
            program_id_index=position[instruction.program_id],
            accounts=tuple(position[account.pubkey] for account in instruction.accounts),
            data=instruction.data,
        )
        for instruction in instructions
    ]
    version: MessageVersion = 0 if v0 else "legacy"
    return encode_message(
        version=version,
        num_required_signatures=len(writable_signers) + len(readonly_signers),
        num_readonly_signed_accounts=len(readonly_signers),
        num_readonly_unsigned_accounts=len(readonly_unsigned),
        account_keys=keys,
        recent_blockhash=recent_blockhash,
        instructions=compiled,
    )


def _key(value: object, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise InvalidPublicKey(f"{what} must be 32 bytes")
    return bytes(value)


def _integer(value: object, maximum: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise InvalidAmount(f"{what} must be an integer from 0 to {maximum}")
    return value


def build_transfer_message(
    *,
    from_pubkey: bytes,
    to_pubkey: bytes,
    lamports: int,
    recent_blockhash: bytes,
    v0: bool = False,
    compute_unit_price: int | None = None,
    compute_unit_limit: int | None = None,
    memo: str | None = None,
) -> bytes:
    """A serialized message paying ``lamports`` from ``from_pubkey`` (also the fee payer)."""
    source = _key(from_pubkey, "sender public key")
    destination = _key(to_pubkey, "recipient public key")
    blockhash = _key(recent_blockhash, "recent blockhash")
    amount = _integer(lamports, U64_MAX, "lamports")
    if source in (SYSTEM_PROGRAM_ID, COMPUTE_BUDGET_PROGRAM_ID, MEMO_V2_PROGRAM_ID):
        raise InvalidPublicKey("the sender cannot be a program id")
    instructions = _compute_budget(compute_unit_limit, compute_unit_price)
    instructions.append(
        Instruction(
            SYSTEM_PROGRAM_ID,
            (AccountMeta(source, True, True), AccountMeta(destination, False, True)),
            (2).to_bytes(4, "little") + amount.to_bytes(8, "little"),
        )
    )
    instructions += _memo(memo)
    return _fits(compile_message(payer=source, instructions=instructions, recent_blockhash=blockhash, v0=v0))


def _compute_budget(compute_unit_limit: int | None, compute_unit_price: int | None) -> list[Instruction]:
    """Set compute unit limit, then price, as solders' compute_budget builders make them."""
    instructions: list[Instruction] = []
    if compute_unit_limit is not None:
        units = _integer(compute_unit_limit, U32_MAX, "compute unit limit")
        instructions.append(Instruction(COMPUTE_BUDGET_PROGRAM_ID, (), bytes([2]) + units.to_bytes(4, "little")))
    if compute_unit_price is not None:
        price = _integer(compute_unit_price, U64_MAX, "compute unit price")
        instructions.append(Instruction(COMPUTE_BUDGET_PROGRAM_ID, (), bytes([3]) + price.to_bytes(8, "little")))
    return instructions


def _memo(memo: str | None) -> list[Instruction]:
    """A Memo v2 instruction with no signer accounts, or nothing."""
    if memo is None:
        return []
    if not isinstance(memo, str):
        raise InvalidTransaction("memo must be text")
    try:
        memo_bytes = memo.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidTransaction("memo is not valid Unicode") from None
    return [Instruction(MEMO_V2_PROGRAM_ID, (), memo_bytes)]


def _fits(message: bytes) -> bytes:
    size = 1 + SIGNATURE_LENGTH + len(message)
    if size > PACKET_DATA_SIZE:
        raise InvalidTransaction(
            f"the signed transaction would be {size} bytes, over Solana's {PACKET_DATA_SIZE}-byte limit"
        )
    return message


TOKEN_PROGRAMS = {TOKEN_PROGRAM_ID: "token", TOKEN_2022_PROGRAM_ID: "token-2022"}
TRANSFER_CHECKED = 12  # the tag of TransferChecked in both token programs
CREATE_IDEMPOTENT = 1  # the tag of CreateIdempotent in the Associated Token Account program


def build_token_transfer_message(
    *,
    wallet: bytes,
    owner: bytes,
    mint: bytes,
    decimals: int,
    token_program: bytes,
    amount_base_units: int,
    recent_blockhash: bytes,
    create: bool = True,
    allow_owner_off_curve: bool = False,
    v0: bool = False,
    compute_unit_price: int | None = None,
    compute_unit_limit: int | None = None,
    memo: str | None = None,
) -> bytes:
    """A message paying ``amount_base_units`` of ``mint`` from the wallet's associated token
    account to ``owner``'s, the wallet signing and paying the fee.

    Instructions: compute budget (if asked), CreateIdempotent of the recipient's associated
    account funded by the wallet (unless ``create`` is False), TransferChecked with
    ``decimals``, memo (if asked); byte for byte what the SPL builders and solders make.

    An owner off the Ed25519 curve is refused unless ``allow_owner_off_curve``: it is a program
    address, often a token account pasted where its owner's wallet belongs, and tokens sent to
    an associated account of a token account are lost.
    """
    source_owner = _key(wallet, "wallet public key")
    recipient = _key(owner, "recipient public key")
    mint_key = _key(mint, "mint")
    blockhash = _key(recent_blockhash, "recent blockhash")
    program = _key(token_program, "token program id")
    if program not in TOKEN_PROGRAMS:
        raise InvalidPublicKey("the token program must be the Token or the Token-2022 program")
    amount = _integer(amount_base_units, U64_MAX, "token amount in base units")
    places = _integer(decimals, 255, "decimals")
    if source_owner in _PROGRAM_IDS:
        raise InvalidPublicKey("the wallet cannot be a program id")
    if recipient in _PROGRAM_IDS or recipient == mint_key:
        raise InvalidPublicKey("the recipient must be a wallet, not a program id or the mint")
    if not allow_owner_off_curve and not is_on_curve(recipient):
        raise InvalidPublicKey(
            f"the recipient {encode_pubkey(recipient)} is not a wallet address (it is off the Ed25519 curve, "
            "like a token account or other program address): give its owner's wallet, "
            "or --allow-owner-off-curve if a program owns it"
        )
    source = associated_token_address(source_owner, mint_key, program)
    destination = associated_token_address(recipient, mint_key, program)
    instructions = _compute_budget(compute_unit_limit, compute_unit_price)
    if create:
        instructions.append(
            Instruction(
                ASSOCIATED_TOKEN_PROGRAM_ID,
                (
                    AccountMeta(source_owner, True, True),
                    AccountMeta(destination, False, True),
                    AccountMeta(recipient, False, False),
                    AccountMeta(mint_key, False, False),
                    AccountMeta(SYSTEM_PROGRAM_ID, False, False),
                    AccountMeta(program, False, False),
                ),
                bytes([CREATE_IDEMPOTENT]),
            )
        )
    instructions.append(
        Instruction(
            program,
            (
                AccountMeta(source, False, True),
                AccountMeta(mint_key, False, False),
                AccountMeta(destination, False, True),
                AccountMeta(source_owner, True, False),
            ),
            bytes([TRANSFER_CHECKED]) + amount.to_bytes(8, "little") + bytes([places]),
        )
    )
    instructions += _memo(memo)
    return _fits(compile_message(payer=source_owner, instructions=instructions, recent_blockhash=blockhash, v0=v0))


def build_nonce_advance_message(*, authority: bytes, nonce_account: bytes, recent_blockhash: bytes) -> bytes:
    """A message that advances ``nonce_account`` (``authority`` signs and pays the fee).

    Advancing the nonce invalidates every transaction signed against its current value: it is
    how an operator revokes stockpiled durable-nonce transactions. The advance is deliberately
    *not* the first instruction (a Compute Budget limit is): the runtime treats a transaction
    as a durable-nonce one only when its first instruction advances a nonce, so this one is an
    ordinary transaction that expires with ``recent_blockhash`` like any other.
    """
    signer = _key(authority, "nonce authority public key")
    nonce = _key(nonce_account, "nonce account public key")
    blockhash = _key(recent_blockhash, "recent blockhash")
    if signer == nonce:
        raise InvalidPublicKey("the nonce account cannot be its own authority")
    instructions = [
        Instruction(COMPUTE_BUDGET_PROGRAM_ID, (), bytes([2]) + NONCE_ADVANCE_COMPUTE_UNIT_LIMIT.to_bytes(4, "little")),
        Instruction(
            SYSTEM_PROGRAM_ID,
            (
                AccountMeta(nonce, False, True),
                AccountMeta(RECENT_BLOCKHASHES_SYSVAR_ID, False, False),
                AccountMeta(signer, True, False),
            ),
            (4).to_bytes(4, "little"),
        ),
    ]
    return compile_message(payer=signer, instructions=instructions, recent_blockhash=blockhash)
