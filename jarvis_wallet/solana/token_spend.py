"""What a message spends of each token mint, worked out offline (see docs/policy.md, "Tokens").

Given the wallet and the operator's mint registry as values, every instruction
of SPL Token, Token-2022 and the Associated Token Account program that the
wallet takes part in is either counted, left alone (it only credits the
wallet, or cannot act for it), or refused with a stable reason:

    TransferChecked, TransferCheckedWithFee   counted for the mint (gross: a
        with the wallet as authority          Token-2022 fee is part of amount);
                                              the mint must be registered, the
                                              program and decimals must match it
    Transfer (no mint) with the wallet as     counted for the mint whose wallet
        authority                             ATA is the source, else refused
    Approve*, SetAuthority, Burn*, MintTo*,   refused: each moves value or control
        Freeze/Thaw, CloseAccount to another, outside what a limit can count
        lamport withdrawals to another, ...
    the wallet as one of a multisig's signers refused
    ATA Create/CreateIdempotent the wallet    the rent deposit is a SOL payment
        funds                                 (the new account's size from the
                                              registry; an upper bound otherwise)

Instructions the wallet is not part of cannot use its signature: they are not
the wallet's spend (a token account's owner or delegate must sign to move it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..amounts import format_token_amount
from .associated_token import ASSOCIATED_TOKEN_PROGRAM_ID, associated_token_address
from .message import Message
from .programs import DecodedInstruction
from .pubkey import encode_pubkey
from .token import TOKEN_PROGRAM_ID
from .token_2022 import TOKEN_2022_PROGRAM_ID

TOKEN_PROGRAM_IDS = frozenset({TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID})
#: Programs governed by this module rather than by the program allow-list.
GOVERNED_PROGRAM_IDS = TOKEN_PROGRAM_IDS | {ASSOCIATED_TOKEN_PROGRAM_ID}
PROGRAM_NAMES = {TOKEN_PROGRAM_ID: "token", TOKEN_2022_PROGRAM_ID: "token-2022"}

# Rent: (128 bytes of account overhead + data) * 3,480 lamports per byte-year * 2 years.
RENT_LAMPORTS_PER_BYTE = 3_480 * 2
ACCOUNT_STORAGE_OVERHEAD = 128
TOKEN_ACCOUNT_BYTES = 165
# A Token-2022 account with extensions: the 165-byte base, one account-type byte, then one TLV
# entry (2-byte type, 2-byte length, data) per extension. An associated account always has
# ImmutableOwner; a mint's extensions require these on each of its accounts (token-2022
# extension/mod.rs, ExtensionType::get_required_init_account_extensions).
_TLV_HEADER = 4
_IMMUTABLE_OWNER_BYTES = 0
_ACCOUNT_EXTENSION_FOR_MINT = {
    "transfer_fee_config": 8,  # TransferFeeAmount: withheld u64
    "non_transferable": 0,  # NonTransferableAccount
    "transfer_hook": 1,  # TransferHookAccount: transferring bool
    "pausable": 0,  # PausableAccount
}
TOKEN_2022_ACCOUNT_BYTES_UPPER_BOUND = (
    TOKEN_ACCOUNT_BYTES + 1 + _TLV_HEADER + _IMMUTABLE_OWNER_BYTES
    + sum(_TLV_HEADER + size for size in _ACCOUNT_EXTENSION_FOR_MINT.values())
)

# Stable refusal codes, by class (policy.REASONS lists them too).
TOKEN_NOT_REGISTERED = "token_not_registered"
TOKEN_MISMATCH = "token_mismatch"  # program or decimals differ from the registry
TOKEN_UNCHECKED_TRANSFER = "token_unchecked_transfer"
TOKEN_DELEGATION = "token_delegation"
TOKEN_AUTHORITY_CHANGE = "token_authority_change"
TOKEN_CLOSE_TO_OTHER = "token_close_to_other"
TOKEN_BURN = "token_burn"
TOKEN_MINT_TO = "token_mint_to"
TOKEN_FREEZE = "token_freeze"
TOKEN_MULTISIG = "token_multisig"
TOKEN_INSTRUCTION_NOT_ALLOWED = "token_instruction_not_allowed"
REFUSAL_CODES = (
    TOKEN_NOT_REGISTERED,
    TOKEN_MISMATCH,
    TOKEN_UNCHECKED_TRANSFER,
    TOKEN_DELEGATION,
    TOKEN_AUTHORITY_CHANGE,
    TOKEN_CLOSE_TO_OTHER,
    TOKEN_BURN,
    TOKEN_MINT_TO,
    TOKEN_FREEZE,
    TOKEN_MULTISIG,
    TOKEN_INSTRUCTION_NOT_ALLOWED,
)

_COUNTED = frozenset({"transfer_checked", "transfer_checked_with_fee"})
_REFUSED_BY_KIND = {
    "approve": TOKEN_DELEGATION,
    "approve_checked": TOKEN_DELEGATION,
    "set_authority": TOKEN_AUTHORITY_CHANGE,
    "burn": TOKEN_BURN,
    "burn_checked": TOKEN_BURN,
    "permissioned_burn": TOKEN_BURN,
    "permissioned_burn_checked": TOKEN_BURN,
    "mint_to": TOKEN_MINT_TO,
    "mint_to_checked": TOKEN_MINT_TO,
    "freeze_account": TOKEN_FREEZE,
    "thaw_account": TOKEN_FREEZE,
}
# Lamports out of a token account: fine back to the wallet, refused to anyone else.
_LAMPORTS_OUT = frozenset({"close_account", "withdraw_excess_lamports", "unwrap_lamports"})
# The wallet may take part in these: they move nothing and hand no control away.
_HARMLESS = frozenset(
    {
        "revoke",
        "sync_native",
        "initialize_account",  # a token account owned by the wallet
        "initialize_immutable_owner",
        "get_account_data_size",
        "amount_to_ui_amount",
        "ui_amount_to_amount",
        "enable_required_memo_transfers",
        "disable_required_memo_transfers",
        "enable_cpi_guard",
    }
)
# Roles in which the wallet is only credited (or named), never an authority.
_CREDIT_ROLES = frozenset({"destination", "recipient"})


@dataclass(frozen=True)
class RegisteredMint:
    """One registry entry, as the policy needs it."""

    symbol: str
    mint: bytes
    program_id: bytes  # TOKEN_PROGRAM_ID or TOKEN_2022_PROGRAM_ID
    decimals: int
    extensions: tuple[str, ...] | None = None  # None: not read from the chain

    @property
    def program(self) -> str:
        return PROGRAM_NAMES[self.program_id]

    def account_bytes(self) -> tuple[int, bool]:
        """(size of a new associated token account, exact?)."""
        if self.program_id == TOKEN_PROGRAM_ID:
            return TOKEN_ACCOUNT_BYTES, True
        if self.extensions is None:
            return TOKEN_2022_ACCOUNT_BYTES_UPPER_BOUND, False
        size = TOKEN_ACCOUNT_BYTES + 1 + _TLV_HEADER + _IMMUTABLE_OWNER_BYTES
        size += sum(_TLV_HEADER + extra for name, extra in _ACCOUNT_EXTENSION_FOR_MINT.items() if name in self.extensions)
        return size, True


Registry = Mapping[bytes, RegisteredMint]


def rent_exempt_lamports(data_bytes: int) -> int:
    return (ACCOUNT_STORAGE_OVERHEAD + data_bytes) * RENT_LAMPORTS_PER_BYTE


@functools.lru_cache(maxsize=1024)
def wallet_token_account(wallet: bytes, mint: bytes, program_id: bytes) -> bytes:
    """The wallet's associated token account for a mint (cached: derivation costs a curve check)."""
    return associated_token_address(wallet, mint, program_id)


@dataclass(frozen=True)
class TokenMovement:
    """Base units of one mint that one instruction moves out of the wallet's control."""

    instruction_index: int
    kind: str
    mint: bytes
    symbol: str
    decimals: int
    amount: int  # base units, gross (a Token-2022 transfer fee is part of it)
    source: bytes | None
    destination: bytes | None  # a token account; None: loaded from a lookup table

    def to_dict(self) -> dict[str, object]:
        return {
            "instruction_index": self.instruction_index,
            "kind": self.kind,
            "mint": encode_pubkey(self.mint),
            "symbol": self.symbol,
            "decimals": self.decimals,
            "amount_base_units": str(self.amount),
            "amount": format_token_amount(self.amount, self.decimals),
            "source": _key(self.source),
            "destination": _key(self.destination),
        }


@dataclass(frozen=True)
class TokenRefusal:
    """An instruction the policy refuses, with a stable reason code and plain words."""

    instruction_index: int
    kind: str
    reason: str
    detail: str
    mint: bytes | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "instruction_index": self.instruction_index,
            "kind": self.kind,
            "reason": self.reason,
            "detail": self.detail,
            "mint": _key(self.mint),
        }


@dataclass(frozen=True)
class RentDeposit:
    """Lamports the wallet puts into a new associated token account."""

    instruction_index: int
    kind: str
    account: bytes | None
    owner: bytes | None
    mint: bytes | None
    lamports: int
    exact: bool  # False: the size is an upper bound (a Token-2022 mint whose extensions are unknown)


@dataclass(frozen=True)
class TokenSpend:
    movements: tuple[TokenMovement, ...] = ()
    refusals: tuple[TokenRefusal, ...] = ()
    rent_deposits: tuple[RentDeposit, ...] = ()

    @property
    def per_mint(self) -> dict[bytes, int]:
        """Base units per mint, in order of first movement."""
        totals: dict[bytes, int] = {}
        for movement in self.movements:
            totals[movement.mint] = totals.get(movement.mint, 0) + movement.amount
        return totals

    def to_dict(self) -> dict[str, object]:
        symbols = {m.mint: m for m in self.movements}
        return {
            "movements": [movement.to_dict() for movement in self.movements],
            "per_mint": [
                {
                    "mint": encode_pubkey(mint),
                    "symbol": symbols[mint].symbol,
                    "amount_base_units": str(amount),
                    "amount": format_token_amount(amount, symbols[mint].decimals),
                }
                for mint, amount in self.per_mint.items()
            ],
            "refusals": [refusal.to_dict() for refusal in self.refusals],
            "rent_deposits": [
                {
                    "instruction_index": d.instruction_index,
                    "account": _key(d.account),
                    "owner": _key(d.owner),
                    "mint": _key(d.mint),
                    "lamports": d.lamports,
                    "exact": d.exact,
                }
                for d in self.rent_deposits
            ],
        }


def _key(value: bytes | None) -> str | None:
    return None if value is None else encode_pubkey(value)


def compute_token_spend(
    message: Message,
    wallet: bytes,
    decoded: tuple[DecodedInstruction, ...],
    registry: Registry,
) -> TokenSpend:
    """The token movements, refusals and rent deposits of ``wallet`` in ``message``."""
    wallet_index = message.static_index(wallet)
    movements: list[TokenMovement] = []
    refusals: list[TokenRefusal] = []
    deposits: list[RentDeposit] = []

    def is_wallet(index: int | None) -> bool:
        return index is not None and index == wallet_index

    for instruction in decoded:
        if instruction.program_id not in GOVERNED_PROGRAM_IDS:
            continue
        if not any(is_wallet(i) for i in instruction.accounts):
            continue  # it cannot use the wallet's signature: not the wallet's spend
        refuse = functools.partial(_refusal, message, instruction, refusals, registry)
        if instruction.program_id == ASSOCIATED_TOKEN_PROGRAM_ID:
            _associated_token(message, instruction, is_wallet, registry, deposits, refuse)
            continue
        if any(is_wallet(i) for i in instruction.account_lists.get("multisig_signers", ())):
            refuse(TOKEN_MULTISIG, "lists the wallet as one of a multisig authority's signers; the signer does not "
                   "take part in multisig token authorities")
            continue
        roles = {role for role, index in instruction.roles.items() if is_wallet(index)}
        if any(is_wallet(i) for name, lst in instruction.account_lists.items() for i in lst if name != "multisig_signers"):
            roles.add("listed")
        kind = instruction.kind
        if roles <= _CREDIT_ROLES:
            continue  # the wallet is only credited
        if kind in _COUNTED:
            _checked_transfer(message, instruction, registry, movements, refuse)
        elif kind == "transfer":
            _plain_transfer(message, instruction, wallet, registry, movements, refuse)
        elif kind in _LAMPORTS_OUT:
            destination = instruction.roles.get("destination")
            if not is_wallet(destination):
                refuse(TOKEN_CLOSE_TO_OTHER, f"sends the lamports of {message.account_label(instruction.roles['source' if 'source' in instruction.roles else 'account'])} "
                       f"to {message.account_label(destination)}, not to the wallet")
        elif kind in _REFUSED_BY_KIND:
            refuse(_REFUSED_BY_KIND[kind], _refusal_words(kind))
        elif kind in _HARMLESS:
            continue
        else:
            refuse(TOKEN_INSTRUCTION_NOT_ALLOWED, "is not one the signer takes part in (it cannot count what it "
                   "moves or hands over)")
    return TokenSpend(tuple(movements), tuple(refusals), tuple(deposits))


def _refusal_words(kind: str) -> str:
    return {
        "approve": "lets a delegate move the wallet's tokens later, outside any limit",
        "approve_checked": "lets a delegate move the wallet's tokens later, outside any limit",
        "set_authority": "hands an authority over a token account or mint to another key",
        "burn": "destroys the wallet's tokens",
        "burn_checked": "destroys the wallet's tokens",
        "permissioned_burn": "destroys the wallet's tokens",
        "permissioned_burn_checked": "destroys the wallet's tokens",
        "mint_to": "uses the wallet as a mint authority",
        "mint_to_checked": "uses the wallet as a mint authority",
        "freeze_account": "uses the wallet as a freeze authority",
        "thaw_account": "uses the wallet as a freeze authority",
    }[kind]


def _mint_of(message: Message, instruction: DecodedInstruction) -> bytes | None:
    index = instruction.roles.get("mint")
    return None if index is None else message.account_key(index)


def _refusal(message, instruction, refusals, registry, reason: str, detail: str, mint: bytes | None = None) -> None:
    mint = mint if mint is not None else _mint_of(message, instruction)
    entry = registry.get(mint) if mint is not None else None
    name = f" of {entry.symbol} ({encode_pubkey(mint)})" if entry else f" of mint {encode_pubkey(mint)}" if mint else ""
    program = "Token-2022" if instruction.program_id == TOKEN_2022_PROGRAM_ID else (
        "Associated Token Account" if instruction.program_id == ASSOCIATED_TOKEN_PROGRAM_ID else "SPL Token")
    refusals.append(
        TokenRefusal(
            instruction.index, instruction.kind, reason,
            f"instruction {instruction.index} ({program} {instruction.kind.replace('_', ' ')}{name}) {detail}", mint,
        )
    )


def _checked_transfer(message, instruction, registry, movements, refuse) -> None:
    mint = _mint_of(message, instruction)
    if mint is None:
        refuse(TOKEN_NOT_REGISTERED, "names its mint through an address lookup table, so it cannot be checked")
        return
    entry = registry.get(mint)
    if entry is None:
        refuse(TOKEN_NOT_REGISTERED, "moves a mint that is not registered; register it with `jarvis-wallet tokens add`")
        return
    if instruction.program_id != entry.program_id:
        refuse(TOKEN_MISMATCH, f"runs under program {PROGRAM_NAMES[instruction.program_id]}, but {entry.symbol} is "
               f"registered under {entry.program}")
        return
    decimals = instruction.fields["decimals"]
    if decimals != entry.decimals:
        refuse(TOKEN_MISMATCH, f"states {decimals} decimals, but {entry.symbol} is registered with {entry.decimals}")
        return
    movements.append(_movement(message, instruction, entry, instruction.fields["amount"]))


def _plain_transfer(message, instruction, wallet, registry, movements, refuse) -> None:
    source = message.account_key(instruction.roles["source"])
    for entry in registry.values():
        if entry.program_id == instruction.program_id and source == wallet_token_account(wallet, entry.mint, entry.program_id):
            if entry.extensions is None:
                # Counted in the registry's decimals, which the runtime never checks here: a
                # mistyped offline registration would make the limit 10**k times looser.
                refuse(TOKEN_UNCHECKED_TRANSFER, f"is a plain Transfer, which states no decimals, and {entry.symbol} "
                       "was registered offline (decimals not checked against the chain); use TransferChecked, or "
                       "register the mint with an endpoint (`jarvis-wallet tokens add` with --rpc-url)", entry.mint)
                return
            movements.append(_movement(message, instruction, entry, instruction.fields["amount"]))
            return
    refuse(TOKEN_UNCHECKED_TRANSFER, f"moves tokens from {message.account_label(instruction.roles['source'])}, which is not "
           "the wallet's associated token account of a registered mint; a plain Transfer names no mint, so use "
           "TransferChecked")


def _movement(message: Message, instruction: DecodedInstruction, entry: RegisteredMint, amount: int) -> TokenMovement:
    return TokenMovement(
        instruction.index, instruction.kind, entry.mint, entry.symbol, entry.decimals, amount,
        message.account_key(instruction.roles["source"]), message.account_key(instruction.roles["destination"]),
    )


def _associated_token(message, instruction, is_wallet: Callable, registry, deposits, refuse) -> None:
    roles = instruction.roles
    if instruction.kind == "recover_nested":
        # The program moves the nested account's tokens only to the wallet's own associated
        # account of that mint and its lamports to the wallet: nothing leaves the wallet.
        return
    if not is_wallet(roles["funder"]):
        return  # the wallet is the new account's owner (credited) or merely listed
    mint = message.account_key(roles["mint"])
    program = message.account_key(roles["token_program"])
    entry = registry.get(mint) if mint is not None else None
    if entry is not None and entry.program_id == program:
        size, exact = entry.account_bytes()
    elif program == TOKEN_PROGRAM_ID:
        size, exact = TOKEN_ACCOUNT_BYTES, True
    else:
        size, exact = TOKEN_2022_ACCOUNT_BYTES_UPPER_BOUND, False
    deposits.append(
        RentDeposit(
            instruction.index, instruction.kind, message.account_key(roles["associated_account"]),
            message.account_key(roles["wallet"]), mint, rent_exempt_lamports(size), exact,
        )
    )


_TRANSFER_KINDS = frozenset({"transfer", "transfer_checked", "transfer_checked_with_fee"})


def token_movements(message: Message, decoded: tuple[DecodedInstruction, ...], registry: Registry) -> list[dict]:
    """Every token transfer of a message, whoever authorises it, for ``inspect``: mint and
    symbol where known, the amount in token units where the decimals are known (stated by the
    instruction or registered), source, destination and the destination's owner when it is the
    associated account of a key the message names."""
    candidates = [message.account_key(i) for i in range(message.num_static_accounts)]
    result = []
    for instruction in decoded:
        if instruction.program_id not in TOKEN_PROGRAM_IDS or instruction.kind not in _TRANSFER_KINDS:
            continue
        roles = instruction.roles
        mint = _mint_of(message, instruction)
        source = message.account_key(roles["source"])
        if mint is None and instruction.kind == "transfer":  # a plain Transfer: the mint of a registered wallet ATA
            mint = next(
                (
                    entry.mint for entry in registry.values() for owner in candidates
                    if entry.program_id == instruction.program_id
                    and source == wallet_token_account(owner, entry.mint, entry.program_id)
                ),
                None,
            )
        entry = registry.get(mint) if mint is not None else None
        decimals = instruction.fields.get("decimals", entry.decimals if entry else None)
        destination = message.account_key(roles["destination"])
        owner = None
        if mint is not None and destination is not None:
            owner = next(
                (key for key in candidates if wallet_token_account(key, mint, instruction.program_id) == destination), None
            )
        amount = instruction.fields["amount"]
        result.append({
            "instruction_index": instruction.index,
            "kind": instruction.kind,
            "program": PROGRAM_NAMES[instruction.program_id],
            "mint": _key(mint),
            "symbol": entry.symbol if entry else None,
            "registered": entry is not None,
            "amount_base_units": str(amount),
            "amount": format_token_amount(amount, decimals) if isinstance(decimals, int) else None,
            "decimals": decimals,
            "source": message.account_label(roles["source"]),
            "destination": message.account_label(roles["destination"]),
            "destination_owner": _key(owner),
            "authority": message.account_label(roles["authority"]),
        })
    return result
