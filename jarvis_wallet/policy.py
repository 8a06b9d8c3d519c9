"""The spend policy: a pure decision over a parsed message (docs/policy.md).

``decide`` takes the message, the wallet, its limits and what it has already
spent in the current 24-hour window, and returns a ``Decision``. It touches no
database and no clock; the signer calls it inside the per-wallet lock and
records the result. Checks run in this order, the first failure wins:

    no_limits                the wallet has no limits configured
    not_a_signer             the wallet is not a required signer
    program_not_allowed      an instruction gives the wallet's key to a program
                             outside the allow-list (or calls the wallet as a program)
    ownership_change         a System instruction hands the wallet's account, or an
                             account it controls, to someone else
    durable_nonce_not_allowed the transaction uses a durable nonce (it would never
                             expire) whose nonce account the operator has not
                             registered, or whose advance lists another signer
    token_*                  a token instruction the policy refuses (token_spend.py:
                             unregistered mint, mismatch, unchecked transfer,
                             delegation, authority change, close to another, burn,
                             mint-to, freeze, multisig, anything else)
    destination_not_allowed  a destination allow-list is set and the wallet pays
                             an account outside it (or one loaded from a lookup table),
                             or sends tokens to an account that is neither listed nor
                             the associated token account of a listed owner
    per_tx_limit_exceeded    spend > per-transaction limit
    daily_limit_exceeded     spent in the last 24 hours + spend > daily limit
    token_no_limits          the wallet moves a mint it has no limits for
    token_per_tx_limit_exceeded  a mint's movements > that mint's per-transaction limit
    token_daily_limit_exceeded   that mint's 24-hour spend + movements > its daily limit

Spend exactly at a limit is allowed; one lamport (one base unit) more is not.
SPL Token, Token-2022 and the Associated Token Account program are governed
by the token rules, not by the program allow-list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import InvalidLimits, InvalidPublicKey, PolicyDenied
from .solana.message import Message
from .solana.programs import (
    COMPUTE_BUDGET_PROGRAM_ID,
    MEMO_V1_PROGRAM_ID,
    MEMO_V2_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    format_sol,
)
from .solana.pubkey import decode_pubkey, encode_pubkey
from .solana.spend import SpendSummary, compute_spend
from .solana.token_spend import GOVERNED_PROGRAM_IDS, REFUSAL_CODES as TOKEN_REFUSAL_CODES
from .amounts import format_token_amount
from .solana.token_spend import RegisteredMint, wallet_token_account
from .solana.transaction import ParsedInput

#: Programs that may receive the wallet's key unless the operator configures
#: otherwise: base58 strings, as configuration stores them.
DEFAULT_PROGRAM_ALLOWLIST: frozenset[str] = frozenset(
    encode_pubkey(program)
    for program in (SYSTEM_PROGRAM_ID, COMPUTE_BUDGET_PROGRAM_ID, MEMO_V1_PROGRAM_ID, MEMO_V2_PROGRAM_ID)
)

REASONS = (
    "no_limits",
    "not_a_signer",
    "program_not_allowed",
    "ownership_change",
    "durable_nonce_not_allowed",
    *TOKEN_REFUSAL_CODES,
    "destination_not_allowed",
    "per_tx_limit_exceeded",
    "daily_limit_exceeded",
    "token_no_limits",
    "token_per_tx_limit_exceeded",
    "token_daily_limit_exceeded",
)
MAX_BASE_UNITS = 2**64 - 1


def format_lamports(lamports: int) -> str:
    """``500000000`` -> ``"500000000 lamports (0.5 SOL)"``."""
    return f"{lamports} lamports ({format_sol(lamports)})"


def _non_negative(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidLimits(f"{what} must be a non-negative whole number of lamports")
    return value


@dataclass(frozen=True)
class Limits:
    """A wallet's ceilings, in lamports."""

    per_tx_lamports: int
    daily_lamports: int

    def __post_init__(self) -> None:
        _non_negative(self.per_tx_lamports, "per-transaction limit")
        _non_negative(self.daily_lamports, "daily limit")


@dataclass(frozen=True)
class TokenLimits:
    """A wallet's ceilings for one mint, in base units (u64)."""

    per_tx_base_units: int
    daily_base_units: int

    def __post_init__(self) -> None:
        for what, value in (("per-transaction", self.per_tx_base_units), ("daily", self.daily_base_units)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_BASE_UNITS:
                raise InvalidLimits(f"a token {what} limit must be a whole number of base units in 0..{MAX_BASE_UNITS}")


def format_base_units(amount: int, mint: RegisteredMint) -> str:
    """``12500000`` -> ``"12.5 USDC (12500000 base units)"``."""
    return f"{format_token_amount(amount, mint.decimals)} {mint.symbol} ({amount} base units)"


@dataclass(frozen=True)
class Decision:
    """The outcome: ``reason`` is a stable snake_case code (None when allowed)."""

    allowed: bool
    reason: str | None
    message: str
    spend: SpendSummary

    def raise_if_denied(self) -> None:
        if not self.allowed:
            raise PolicyDenied(self.message, reason=self.reason or "denied")

    def to_dict(self) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "message": self.message,
            "spend": self.spend.to_dict(),
        }


def _key_set(keys: Iterable[str | bytes], what: str) -> frozenset[bytes]:
    if isinstance(keys, (str, bytes)):
        raise InvalidPublicKey(f"{what} must be a collection of public keys, not a single value")
    result = set()
    for key in keys:
        if isinstance(key, str):
            result.add(decode_pubkey(key, what=what))
        elif isinstance(key, (bytes, bytearray)) and len(key) == 32:
            result.add(bytes(key))
        else:
            raise InvalidPublicKey(f"{what} entries must be base58 text or 32 bytes")
    return frozenset(result)


def _token_destination_allowed(movement, entry: RegisteredMint, destinations: frozenset[bytes]) -> bool:
    """A token payment may go to an allow-listed address itself (a token account listed by the
    operator) or to the associated token account of an allow-listed owner, for that mint."""
    destination = movement.destination
    if destination is None:
        return False
    if destination in destinations:
        return True
    return any(wallet_token_account(owner, entry.mint, entry.program_id) == destination for owner in destinations)


def _durable_nonce_refusal(spend: SpendSummary, registered: frozenset[bytes]) -> str | None:
    """Why a durable-nonce transaction may not be signed, or None.

    It never expires, so it must stay revocable: its nonce must be one the operator registered
    (set up with the wallet as its authority), and the wallet the only signer its advance lists
    (the runtime takes the stored authority from any listed signer).
    """
    nonce = spend.durable_nonce_account
    how = (
        "durable-nonce transactions never expire, so they are signed only against nonce accounts the "
        "operator registered, whose authority is this wallet: `jarvis-wallet config set "
        "durable_nonce_accounts NONCE[,NONCE...]` (see docs/policy.md)"
    )
    if nonce is None:
        return f"this transaction's durable nonce is loaded from a lookup table, so it cannot be checked; {how}"
    if nonce not in registered:
        return f"this transaction uses durable nonce account {encode_pubkey(nonce)}, which is not registered; {how}"
    if not spend.durable_nonce_revocable:
        return (
            f"this transaction's advance of nonce account {encode_pubkey(nonce)} lists a signer other than "
            "the wallet, which the runtime could take as the nonce's authority"
        )
    return None


def decide(
    *,
    message: Message | ParsedInput,
    wallet: bytes | str,
    limits: Limits | None,
    spent_24h_lamports: int,
    program_allowlist: Iterable[str | bytes] = DEFAULT_PROGRAM_ALLOWLIST,
    destination_allowlist: Iterable[str | bytes] | None = None,
    durable_nonce_accounts: Iterable[str | bytes] = (),
    token_registry: Mapping[bytes, RegisteredMint] | None = None,
    token_limits: Mapping[bytes, TokenLimits] | None = None,
    token_spent_24h: Mapping[bytes, int] | None = None,
) -> Decision:
    """Allow or deny signing ``message`` with ``wallet``; raises InvalidTransaction
    if the message cannot be understood (that is never a Decision).

    ``token_registry`` maps each registered mint (32 bytes) to its entry, ``token_limits`` the
    wallet's ceilings per mint and ``token_spent_24h`` its base units spent per mint in the
    last 24 hours (a mint left out: nothing)."""
    if isinstance(message, ParsedInput):
        message = message.message
    wallet_key = decode_pubkey(wallet, what="wallet") if isinstance(wallet, str) else wallet
    spent = _non_negative(spent_24h_lamports, "amount spent in the last 24 hours")
    programs = _key_set(program_allowlist, "program allow-list")
    destinations = None if destination_allowlist is None else _key_set(destination_allowlist, "destination allow-list")
    registry = token_registry or {}
    per_mint_limits = token_limits or {}
    per_mint_spent = token_spent_24h or {}
    spend = compute_spend(message, wallet_key, registry)
    wallet_text = encode_pubkey(spend.wallet)

    def deny(reason: str, text: str) -> Decision:
        return Decision(allowed=False, reason=reason, message=text, spend=spend)

    if limits is None:
        return deny(
            "no_limits",
            f"wallet {wallet_text} has no spend limits; set them with "
            f"`jarvis-wallet limits set --wallet {wallet_text} --per-tx AMOUNT --daily AMOUNT`",
        )
    if not spend.wallet_is_signer:
        return deny("not_a_signer", f"wallet {wallet_text} is not a required signer of this transaction")
    for program in spend.programs_receiving_wallet:
        if program not in programs and program not in GOVERNED_PROGRAM_IDS:
            return deny(
                "program_not_allowed",
                f"an instruction gives the wallet's key to program {encode_pubkey(program)}, "
                "which is not in the program allow-list",
            )
    if spend.ownership_changes:
        change = spend.ownership_changes[0]
        return deny("ownership_change", f"instruction {change.instruction_index} ({change.kind}) {change.detail}")
    if spend.uses_durable_nonce:
        refusal = _durable_nonce_refusal(spend, _key_set(durable_nonce_accounts, "durable nonce accounts"))
        if refusal is not None:
            return deny("durable_nonce_not_allowed", refusal)
    if spend.tokens.refusals:
        refusal = spend.tokens.refusals[0]
        return deny(refusal.reason, refusal.detail)
    if destinations is not None:
        for payment in spend.payments:
            if payment.destination == spend.wallet:  # rent into the wallet's own token account
                continue
            if payment.destination is None or payment.destination not in destinations:
                return deny(
                    "destination_not_allowed",
                    f"instruction {payment.instruction_index} pays {payment.destination_label}, "
                    "which is not in the destination allow-list",
                )
        for movement in spend.tokens.movements:
            if not _token_destination_allowed(movement, registry[movement.mint], destinations):
                entry = registry[movement.mint]
                where = encode_pubkey(movement.destination) if movement.destination else "an account from a lookup table"
                return deny(
                    "destination_not_allowed",
                    f"instruction {movement.instruction_index} pays {format_base_units(movement.amount, entry)} "
                    f"(mint {encode_pubkey(movement.mint)}) to token account {where}, which is neither in the "
                    "destination allow-list nor the associated token account of an address in it",
                )
    if spend.spend_lamports > limits.per_tx_lamports:
        return deny(
            "per_tx_limit_exceeded",
            f"this transaction spends {format_lamports(spend.spend_lamports)}, above the "
            f"per-transaction limit of {format_lamports(limits.per_tx_lamports)}",
        )
    if spent + spend.spend_lamports > limits.daily_lamports:
        return deny(
            "daily_limit_exceeded",
            f"this transaction spends {format_lamports(spend.spend_lamports)}; with "
            f"{format_lamports(spent)} already spent in the last 24 hours that is above the daily "
            f"limit of {format_lamports(limits.daily_lamports)}",
        )
    for mint, amount in spend.tokens.per_mint.items():
        entry = registry[mint]
        limit = per_mint_limits.get(mint)
        mint_text = encode_pubkey(mint)
        if limit is None:
            return deny(
                "token_no_limits",
                f"wallet {wallet_text} has no limits for {entry.symbol} (mint {mint_text}); set them with "
                f"`jarvis-wallet limits set --wallet {wallet_text} --token {entry.symbol} --per-tx AMOUNT --daily AMOUNT`",
            )
        if amount > limit.per_tx_base_units:
            return deny(
                "token_per_tx_limit_exceeded",
                f"this transaction moves {format_base_units(amount, entry)} of mint {mint_text}, above the "
                f"per-transaction limit of {format_base_units(limit.per_tx_base_units, entry)}",
            )
        spent_mint = _non_negative(per_mint_spent.get(mint, 0), f"{entry.symbol} spent in the last 24 hours")
        if spent_mint + amount > limit.daily_base_units:
            return deny(
                "token_daily_limit_exceeded",
                f"this transaction moves {format_base_units(amount, entry)} of mint {mint_text}; with "
                f"{format_base_units(spent_mint, entry)} already spent in the last 24 hours that is above the "
                f"daily limit of {format_base_units(limit.daily_base_units, entry)}",
            )
    tokens = "".join(
        f", {format_base_units(amount, registry[mint])}" for mint, amount in spend.tokens.per_mint.items()
    )
    return Decision(
        allowed=True,
        reason=None,
        message=f"allowed: spends {format_lamports(spend.spend_lamports)}{tokens} from wallet {wallet_text}",
        spend=spend,
    )
