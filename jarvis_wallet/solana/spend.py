"""What a message costs a wallet, worked out offline (see docs/policy.md).

Spend = the network fee, when the wallet is the fee payer
      + lamports that System Program instructions move out of the wallet's
        control to another account.

Fee: 5,000 lamports per signature (the message's required signatures plus
those verified by the Ed25519/secp256k1/secp256r1 precompiles) plus the
priority fee ceil(compute_unit_price * compute_unit_limit / 1,000,000). With no
SetComputeUnitLimit the runtime's default (SIMD-0170) is 3,000 units per
builtin instruction and 200,000 per other instruction, capped at 1,400,000.
The builtins that keep that default on every cluster (System, Compute Budget,
the loaders, the Ed25519 and secp256k1 precompiles) get 3,000 each; every
other program gets 200,000, which is exact for ordinary programs and an upper
bound for builtins that some clusters have migrated (their status is not
visible offline). Over-counting is the safe side of a limit.

System outflows (the destination is the wallet itself: not counted):
transfer from the wallet; create account (all three variants) funded by the
wallet; transfer with seed whose base (or source) is the wallet, because the
derived source account is the wallet's money; nonce withdrawal where the
runtime could take the wallet as the nonce authority (it checks the stored
authority against the instruction's signers, which offline analysis cannot
see). Allocate and Assign of any account the wallet controls are refused as
ownership changes. docs/policy.md goes through the System instruction table.

Token programs (token_spend.py): the rent deposit of an associated token
account the wallet funds is a System outflow too; token movements are counted
per mint, in ``SpendSummary.tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidPublicKey
from .message import Message
from .programs import (
    BUILTIN_DEFAULT_COST_PROGRAM_IDS,
    COMPUTE_BUDGET_PROGRAM_ID,
    PRECOMPILE_PROGRAM_IDS,
    SYSTEM_PROGRAM_ID,
    DecodedInstruction,
    account_to_dict,
    decode_instructions,
    instruction_to_dict,
)
from .pubkey import encode_pubkey
from .token_spend import Registry, TokenSpend, compute_token_spend, token_movements
from .transaction import ParsedInput

LAMPORTS_PER_SIGNATURE = 5_000
MICRO_LAMPORTS_PER_LAMPORT = 1_000_000
DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT = 200_000
MAX_BUILTIN_ALLOCATION_COMPUTE_UNIT_LIMIT = 3_000
MAX_COMPUTE_UNIT_LIMIT = 1_400_000

_CREATE_KINDS = ("create_account", "create_account_with_seed", "create_account_allow_prefund")
_ALLOCATE_OR_ASSIGN = ("allocate", "allocate_with_seed", "assign", "assign_with_seed")


def _describe_allocate_or_assign(instruction: DecodedInstruction, *, derived: bool) -> str:
    fields = instruction.fields
    account = f"an account derived from the wallet (seed {fields['seed']!r})" if derived else "the wallet's own account"
    owner = f" to program {encode_pubkey(fields['owner'])}" if "owner" in fields else ""  # type: ignore[arg-type]
    if instruction.kind.startswith("allocate"):
        return f"allocates {fields['space']} bytes of data in {account}{owner}, which takes it out of the wallet's control"
    return f"assigns {account}{owner}, which takes it out of the wallet's control"


def _plain_system_account(fields) -> bool:
    """An account without data owned by the System Program: the wallet's derived money stays the
    wallet's (only its signature, as base, can move it)."""
    return fields["space"] == 0 and fields["owner"] == SYSTEM_PROGRAM_ID


def _credits_after_a_withdrawal(decoded: tuple[DecodedInstruction, ...], withdrawal: DecodedInstruction) -> bool:
    """Whether anything in the transaction could pay lamports into the nonce account withdrawn from.

    A withdrawal in full leaves the account uninitialised; with no lamports it is removed at the
    end of the transaction. Paid back into (by an instruction listing it: any program can credit
    a writable account it is given), it survives with its 80 bytes, and InitializeNonceAccount,
    which needs no signature, hands it to anyone in a later transaction. Offline we cannot tell
    a withdrawal in full from a partial one, so the account must appear nowhere else.
    """
    nonce = withdrawal.roles["nonce_account"]
    if withdrawal.roles.get("recipient") == nonce:
        return True
    return any(nonce in other.accounts for other in decoded if other is not withdrawal)


# WithdrawNonceAccount's accounts: 0 nonce, 1 recipient, 2 and 3 sysvars (checked by the runtime),
# 4 the authority. The runtime accepts the stored authority among *any* of the instruction's
# signers, the recipient included. Listed as the nonce account (0) the wallet makes the
# instruction fail (it holds no nonce state), and so it does as either sysvar (2, 3).
_NOT_AN_AUTHORITY_POSITIONS = frozenset({0, 2, 3})


def _may_be_nonce_authority(instruction: DecodedInstruction, is_wallet) -> bool:
    """Whether the runtime could take the wallet as this withdrawal's nonce authority."""
    return any(
        is_wallet(index) for position, index in enumerate(instruction.accounts) if position not in _NOT_AN_AUTHORITY_POSITIONS
    )


@dataclass(frozen=True)
class Payment:
    """Lamports one instruction moves from the wallet to another account."""

    instruction_index: int
    kind: str
    destination: bytes | None  # None: loaded from an address lookup table
    destination_label: str
    lamports: int

    def to_dict(self) -> dict[str, object]:
        return {
            "instruction_index": self.instruction_index,
            "kind": self.kind,
            "destination": encode_pubkey(self.destination) if self.destination is not None else None,
            "destination_label": self.destination_label,
            "lamports": self.lamports,
        }


@dataclass(frozen=True)
class OwnershipChange:
    """An instruction that would hand the wallet's account (or money it controls) away."""

    instruction_index: int
    kind: str
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"instruction_index": self.instruction_index, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class SpendSummary:
    """Everything the policy needs to know about one message and one wallet."""

    wallet: bytes
    fee_payer: bytes
    wallet_is_fee_payer: bool
    wallet_is_signer: bool
    signature_count: int
    base_fee_lamports: int
    compute_unit_limit: int
    compute_unit_price_micro_lamports: int
    priority_fee_lamports: int
    fee_lamports: int  # network fee of the whole transaction, paid by the fee payer
    wallet_fee_lamports: int  # fee_lamports if the wallet pays it, else 0
    outflow_lamports: int  # System Program outflows from the wallet
    spend_lamports: int  # wallet_fee_lamports + outflow_lamports: checked against limits
    payments: tuple[Payment, ...]
    programs: tuple[bytes, ...]  # every program invoked, first use first
    programs_receiving_wallet: tuple[bytes, ...]
    ownership_changes: tuple[OwnershipChange, ...]
    # The first instruction advances a nonce: the runtime then takes the message's blockhash as
    # that nonce's value, and the signed transaction stays valid until the nonce moves on.
    uses_durable_nonce: bool = False
    # ... and no signer but the wallet is listed in that advance, so its nonce answers to the
    # wallet alone (the runtime takes the stored authority from any signer listed): the wallet
    # can advance it, and so revoke the transaction.
    durable_nonce_revocable: bool = False
    # The nonce account that advance names (None: not a durable-nonce transaction, or an
    # address loaded from a lookup table, which offline analysis cannot name).
    durable_nonce_account: bytes | None = None
    # Token movements per mint, token refusals and associated-account rent (token_spend.py).
    tokens: TokenSpend = TokenSpend()

    @property
    def destinations(self) -> tuple[bytes | None, ...]:
        return tuple(dict.fromkeys(payment.destination for payment in self.payments))

    def to_dict(self) -> dict[str, object]:
        return {
            "wallet": encode_pubkey(self.wallet),
            "fee_payer": encode_pubkey(self.fee_payer),
            "wallet_is_fee_payer": self.wallet_is_fee_payer,
            "wallet_is_signer": self.wallet_is_signer,
            "signature_count": self.signature_count,
            "base_fee_lamports": self.base_fee_lamports,
            "compute_unit_limit": self.compute_unit_limit,
            "compute_unit_price_micro_lamports": self.compute_unit_price_micro_lamports,
            "priority_fee_lamports": self.priority_fee_lamports,
            "fee_lamports": self.fee_lamports,
            "wallet_fee_lamports": self.wallet_fee_lamports,
            "outflow_lamports": self.outflow_lamports,
            "spend_lamports": self.spend_lamports,
            "payments": [payment.to_dict() for payment in self.payments],
            "programs": [encode_pubkey(program) for program in self.programs],
            "programs_receiving_wallet": [encode_pubkey(program) for program in self.programs_receiving_wallet],
            "ownership_changes": [change.to_dict() for change in self.ownership_changes],
            "uses_durable_nonce": self.uses_durable_nonce,
            "durable_nonce_revocable": self.durable_nonce_revocable,
            "durable_nonce_account": encode_pubkey(self.durable_nonce_account) if self.durable_nonce_account else None,
            "tokens": self.tokens.to_dict(),
        }


def _fees(message: Message, decoded: tuple[DecodedInstruction, ...]) -> tuple[int, int, int, int]:
    """(signature_count, compute_unit_limit, unit_price, priority_fee)."""
    signatures = message.num_required_signatures
    requested_limit: int | None = None
    price = 0
    builtin_count = 0
    for instruction in decoded:
        if instruction.program_id in PRECOMPILE_PROGRAM_IDS:
            signatures += instruction.data[0] if instruction.data else 0
        if instruction.program_id in BUILTIN_DEFAULT_COST_PROGRAM_IDS:
            builtin_count += 1
        if instruction.program_id == COMPUTE_BUDGET_PROGRAM_ID:
            if instruction.kind == "set_compute_unit_limit":
                requested_limit = instruction.fields["units"]  # type: ignore[assignment]
            elif instruction.kind == "set_compute_unit_price":
                price = instruction.fields["micro_lamports"]  # type: ignore[assignment]
    if requested_limit is None:
        other = len(decoded) - builtin_count
        requested_limit = (
            other * DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT
            + builtin_count * MAX_BUILTIN_ALLOCATION_COMPUTE_UNIT_LIMIT
        )
    limit = min(requested_limit, MAX_COMPUTE_UNIT_LIMIT)
    priority = -(-price * limit // MICRO_LAMPORTS_PER_LAMPORT)  # ceiling, integers only
    return signatures, limit, price, priority


def compute_spend(message: Message, wallet: bytes, registry: Registry | None = None) -> SpendSummary:
    """Spend and exposure of ``wallet`` in ``message``; raises InvalidTransaction on bad data.

    ``registry`` (mint -> RegisteredMint) is what the operator registered: token movements of
    other mints are refused, and associated accounts are sized from it."""
    if isinstance(message, ParsedInput):
        message = message.message
    if not isinstance(wallet, (bytes, bytearray)) or len(wallet) != 32:
        raise InvalidPublicKey("wallet public key must be 32 bytes")
    wallet = bytes(wallet)
    decoded = decode_instructions(message)
    wallet_index = message.static_index(wallet)
    wallet_is_signer = wallet_index is not None and wallet_index < message.num_required_signatures

    def is_wallet(index: int | None) -> bool:
        # Lookup-table entries cannot be the wallet: a signer is a static key and the
        # runtime refuses a transaction that loads an address twice.
        return index is not None and index == wallet_index

    payments: list[Payment] = []
    changes: list[OwnershipChange] = []
    programs: dict[bytes, None] = {}
    receiving: dict[bytes, None] = {}

    def pay(instruction: DecodedInstruction, role: str, lamports: int) -> None:
        index = instruction.roles[role]
        if is_wallet(index) or lamports == 0:
            return  # money that stays with the wallet, or none at all
        payments.append(
            Payment(instruction.index, instruction.kind, message.account_key(index), message.account_label(index), lamports)
        )

    def refuse(instruction: DecodedInstruction, detail: str) -> None:
        changes.append(OwnershipChange(instruction.index, instruction.kind, detail))

    for instruction in decoded:
        programs.setdefault(instruction.program_id)
        if instruction.program_id == wallet or any(is_wallet(i) for i in instruction.accounts):
            receiving.setdefault(instruction.program_id)
        if instruction.program_id != SYSTEM_PROGRAM_ID:
            continue
        kind, fields, roles = instruction.kind, instruction.fields, instruction.roles
        if kind == "transfer" and is_wallet(roles["from"]):
            pay(instruction, "to", fields["lamports"])  # type: ignore[arg-type]
        elif kind in _CREATE_KINDS:
            if is_wallet(roles.get("new_account")):
                refuse(instruction, "creates the wallet's own account under another owner")
            elif kind == "create_account_with_seed" and fields["base"] == wallet and not _plain_system_account(fields):
                # The address is the wallet's (only its signature makes it): created with data or
                # another owner it is handed to that program, or to whoever a following
                # InitializeNonceAccount names, with any money sent there later. "Only empty
                # addresses can be created" does not protect it: the same transaction can first
                # empty it into the wallet.
                refuse(
                    instruction,
                    f"creates an account derived from the wallet (seed {fields['seed']!r}) with "
                    f"{fields['space']} bytes of data owned by program {encode_pubkey(fields['owner'])}, "  # type: ignore[arg-type]
                    "which takes the wallet's address out of its control",
                )
            elif is_wallet(roles.get("funder")):
                pay(instruction, "new_account", fields["lamports"])  # type: ignore[arg-type]
        elif kind == "transfer_with_seed" and (is_wallet(roles["base"]) or is_wallet(roles["from"])):
            pay(instruction, "to", fields["lamports"])  # type: ignore[arg-type]
        elif kind == "withdraw_nonce_account" and wallet_is_signer and _may_be_nonce_authority(instruction, is_wallet):
            pay(instruction, "recipient", fields["lamports"])  # type: ignore[arg-type]
            if _credits_after_a_withdrawal(decoded, instruction):
                refuse(
                    instruction,
                    "withdraws from a nonce account the wallet may control while the transaction can pay "
                    "lamports back into it, which would leave it uninitialised and alive for anyone to "
                    "take with InitializeNonceAccount",
                )
        elif kind in _ALLOCATE_OR_ASSIGN and (is_wallet(roles["account"]) or fields.get("base") == wallet):
            # Whatever the new owner, even the System Program: an account with data or another
            # owner leaves the wallet's control (a System-owned account of nonce size can be
            # taken by InitializeNonceAccount, which needs no signature). With the wallet as
            # base the runtime has checked the address against (wallet, seed, owner) and the
            # wallet's signature, so it is an account only the wallet controls.
            refuse(instruction, _describe_allocate_or_assign(instruction, derived=not is_wallet(roles["account"])))
        elif kind == "initialize_nonce_account" and fields["authority"] != wallet:
            # It needs no signature, and any System account of nonce size qualifies, including
            # one of the wallet's that this very transaction emptied (a nonce account withdrawn
            # in full, a derived account): whatever it is, it would answer to someone else.
            refuse(
                instruction,
                f"makes a nonce account with authority {encode_pubkey(fields['authority'])}, not the "  # type: ignore[arg-type]
                "wallet; the account may be one the wallet controls",
            )
        elif (
            kind == "authorize_nonce_account"
            and wallet_is_signer
            and any(is_wallet(i) for i in instruction.accounts)
            and fields["new_authority"] != wallet
        ):
            refuse(
                instruction,
                f"hands authority over a nonce account the wallet may control to {encode_pubkey(fields['new_authority'])}",  # type: ignore[arg-type]
            )

    tokens = compute_token_spend(message, wallet, decoded, registry or {})
    for deposit in tokens.rent_deposits:
        # The rent goes to an account its owner can close and empty: a payment to that owner.
        owner = deposit.owner
        payments.append(
            Payment(
                deposit.instruction_index, deposit.kind, owner,
                f"associated token account of {encode_pubkey(owner) if owner else 'an account from a lookup table'}",
                deposit.lamports,
            )
        )
    payments.sort(key=lambda payment: payment.instruction_index)
    durable = bool(decoded) and decoded[0].program == "system" and decoded[0].kind == "advance_nonce_account"
    signature_count, unit_limit, unit_price, priority_fee = _fees(message, decoded)
    base_fee = signature_count * LAMPORTS_PER_SIGNATURE
    fee = base_fee + priority_fee
    wallet_is_fee_payer = message.fee_payer == wallet
    wallet_fee = fee if wallet_is_fee_payer else 0
    outflow = sum(payment.lamports for payment in payments)
    return SpendSummary(
        wallet=wallet,
        fee_payer=message.fee_payer,
        wallet_is_fee_payer=wallet_is_fee_payer,
        wallet_is_signer=wallet_is_signer,
        signature_count=signature_count,
        base_fee_lamports=base_fee,
        compute_unit_limit=unit_limit,
        compute_unit_price_micro_lamports=unit_price,
        priority_fee_lamports=priority_fee,
        fee_lamports=fee,
        wallet_fee_lamports=wallet_fee,
        outflow_lamports=outflow,
        spend_lamports=wallet_fee + outflow,
        payments=tuple(payments),
        programs=tuple(programs),
        programs_receiving_wallet=tuple(receiving),
        ownership_changes=tuple(changes),
        uses_durable_nonce=durable,
        durable_nonce_revocable=durable and all(is_wallet(i) for i in decoded[0].accounts if message.is_signer(i)),
        durable_nonce_account=message.account_key(decoded[0].roles["nonce_account"]) if durable else None,
        tokens=tokens,
    )


def describe(
    target: Message | ParsedInput, *, wallet: bytes | None = None, registry: Registry | None = None
) -> dict[str, object]:
    """A JSON-able account of a message in plain words, for ``jarvis-wallet inspect``.

    ``spend_lamports`` is for ``wallet``, or for the fee payer when no wallet is given;
    ``token_movements`` lists every token transfer, ``token_spend`` what the wallet spends per
    registered mint (``registry``: mint -> RegisteredMint).
    """
    parsed = target if isinstance(target, ParsedInput) else None
    message = parsed.message if parsed is not None else target
    decoded = decode_instructions(message)
    registry = registry or {}
    summary = compute_spend(message, wallet if wallet is not None else message.fee_payer, registry)
    result: dict[str, object] = {
        "version": message.version,
        "is_full_transaction": parsed.is_full_transaction if parsed is not None else False,
        "fee_payer": encode_pubkey(message.fee_payer),
        "signers": [encode_pubkey(key) for key in message.signer_keys],
        "recent_blockhash": encode_pubkey(message.recent_blockhash),
        "accounts": [account_to_dict(message, index) for index in range(message.num_accounts)],
        "address_table_lookups": [
            {
                "account_key": encode_pubkey(lookup.account_key),
                "writable_indexes": list(lookup.writable_indexes),
                "readonly_indexes": list(lookup.readonly_indexes),
            }
            for lookup in message.address_table_lookups
        ],
        "programs": [encode_pubkey(program) for program in summary.programs],
        "instructions": [instruction_to_dict(message, instruction) for instruction in decoded],
        "fee_lamports": summary.fee_lamports,
        "spend_lamports": summary.spend_lamports,
        "wallet": encode_pubkey(summary.wallet),
        "token_movements": token_movements(message, decoded, registry),
        "token_spend": summary.tokens.to_dict()["per_mint"],
        "spend": summary.to_dict(),
    }
    return result
