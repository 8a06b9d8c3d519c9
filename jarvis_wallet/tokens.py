"""The operator's mint registry, per-mint limits, and token amounts for people.

The signer knows nothing about a mint it was not told: each mint a wallet may
spend is registered with its symbol, token program and decimals (and, for
Token-2022, the extensions the chain reported). A wallet may spend a registered
mint only under limits of its own (``set_token_limits``), in base units.

``tokens add`` works offline (``decimals`` and ``program`` given) or from the
mint account read on the chain (``read_mint_account``): ``add_token`` then takes
decimals and program from it, refuses what the operator typed if it disagrees,
records its extensions, and refuses a mint whose extensions, as configured, can
move or freeze holders' tokens outside their control unless each is named in
``allowed_extensions`` (``--allow-extension``; the one classification is
``solana.mint_account``'s, docs/policy.md says why). A registration read from
the chain (``extensions`` not null) is what lets the signer count a plain
``Transfer``, which carries no decimals for the runtime to check.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable

import peewee

from .amounts import format_token_amount
from .errors import InvalidInput, InvalidLimits, InvalidMintAccount, MintNotAccepted, NotFound
from .models import MAX_U64, SpendRelease, TokenLimit, TokenMint, TokenSpend, WalletTransaction, iso_utc, utc_now
from .solana.pubkey import decode_pubkey, encode_pubkey, normalize_pubkey
from .solana.mint_account import ParsedMint, check_registration, normalize_extension_name, parse_mint_account
from .solana.token import TOKEN_PROGRAM_ID
from .solana.token_2022 import TOKEN_2022_PROGRAM_ID
from .solana.token_spend import RegisteredMint

PROGRAMS = {"token": TOKEN_PROGRAM_ID, "token-2022": TOKEN_2022_PROGRAM_ID}
MAX_DECIMALS = 255
_SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$")


def normalize_symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
        raise InvalidInput(
            f"invalid token symbol {symbol!r}: 1 to 16 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return symbol


def _program(program: str) -> str:
    name = program.strip().lower().replace("_", "-") if isinstance(program, str) else program
    if name not in PROGRAMS:
        raise InvalidInput(f"unknown token program {program!r}: use token or token-2022")
    return name


def read_mint_account(rpc, mint: str) -> ParsedMint:
    """The mint account at ``mint`` as the endpoint has it (``chain.rpc.RpcClient``), parsed."""
    mint = normalize_pubkey(mint, what="mint")
    account = rpc.get_account_info(mint)
    if account is None:
        raise MintNotAccepted(f"no account {mint} on {rpc.label}: not a mint there (wrong address or cluster?)")
    owner, _, data = account
    try:
        return parse_mint_account(owner, data)
    except InvalidMintAccount as exc:
        raise InvalidMintAccount(f"account {mint} on {rpc.label} is not a mint: {exc.message}") from None


def add_token(
    symbol: str,
    *,
    mint: str,
    decimals: int | None = None,
    program: str | None = None,
    allowed_extensions: Iterable[str] = (),
    mint_account: ParsedMint | None = None,
) -> TokenMint:
    """Register a mint. Offline (``mint_account`` None) ``decimals`` and ``program`` are
    required; with the mint account read from the chain, what the operator gave must agree
    with it, and its risky extensions must be allowed by name (``check_registration``)."""
    symbol = normalize_symbol(symbol)
    mint = normalize_pubkey(mint, what="mint")
    allowed = tuple(dict.fromkeys(normalize_extension_name(name) for name in allowed_extensions))
    if program is not None:
        program = _program(program)
    if decimals is not None and (isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS):
        raise InvalidInput(f"--decimals must be a whole number from 0 to {MAX_DECIMALS}")
    extensions: tuple[str, ...] | None = None
    if mint_account is None:
        if decimals is None or program is None:
            raise InvalidInput("without reading the mint from the chain, give both --decimals and --program")
        if allowed:
            raise InvalidInput("--allow-extension needs the mint read from the chain (--rpc-url or the rpc_url setting)")
    else:
        try:
            check_registration(mint_account, program=program, decimals=decimals, allow_extensions=allowed)
        except MintNotAccepted as exc:
            raise MintNotAccepted(f"mint {mint}: {exc.message}") from None
        decimals, program = mint_account.decimals, mint_account.program
        extensions = mint_account.extension_names  # names (text), in the account's order
    taken = TokenMint.get_or_none(peewee.fn.LOWER(TokenMint.symbol) == symbol.lower())
    if taken is not None:
        raise InvalidInput(f"symbol {taken.symbol} is already registered (mint {taken.mint}); remove it first")
    same_mint = TokenMint.get_or_none(TokenMint.mint == mint)
    if same_mint is not None:
        raise InvalidInput(f"mint {mint} is already registered as {same_mint.symbol}")
    now = utc_now()
    return TokenMint.create(
        symbol=symbol, mint=mint, program=program, decimals=decimals,
        extensions=None if extensions is None else json.dumps(list(extensions)),
        allowed_extensions=json.dumps(list(allowed)), created_at=now, updated_at=now,
    )


def list_tokens() -> list[TokenMint]:
    return list(TokenMint.select().order_by(TokenMint.symbol))


def get_token(symbol_or_mint: str) -> TokenMint:
    """A registered mint by symbol (any case) or mint address."""
    text = (symbol_or_mint or "").strip()
    row = TokenMint.get_or_none(peewee.fn.LOWER(TokenMint.symbol) == text.lower()) or TokenMint.get_or_none(
        TokenMint.mint == text
    )
    if row is None:
        raise NotFound(f"no registered token {text[:60]!r}; see `jarvis-wallet tokens list`")
    return row


def remove_token(symbol_or_mint: str, *, force: bool = False) -> tuple[TokenMint, int]:
    """Unregister a mint; (the row, how many wallets' limits went with it).

    Refused while wallets have limits for it, unless ``force``: then their limits go too, and
    from then on every movement of that mint is refused (token_not_registered).
    """
    row = get_token(symbol_or_mint)
    limits = TokenLimit.select().where(TokenLimit.mint == row.mint)
    count = limits.count()
    if count and not force:
        raise InvalidInput(
            f"{count} wallet(s) have limits for {row.symbol}; remove them (`jarvis-wallet limits remove --token "
            f"{row.symbol} --wallet W`) or pass --force to remove them with it"
        )
    TokenLimit.delete().where(TokenLimit.mint == row.mint).execute()
    row.delete_instance()
    return row, count


def token_to_dict(row: TokenMint) -> dict:
    return {
        "symbol": row.symbol,
        "mint": row.mint,
        "program": row.program,
        "decimals": row.decimals,
        "extensions": None if row.extensions is None else json.loads(row.extensions),
        "allowed_extensions": json.loads(row.allowed_extensions or "[]"),
        "created_at": iso_utc(row.created_at),
    }


def registered_mint(row) -> RegisteredMint:
    """A registry row (model or raw tuple fields) as the policy takes it."""
    extensions = None if row.extensions is None else tuple(json.loads(row.extensions))
    return RegisteredMint(row.symbol, decode_pubkey(row.mint, what="mint"), PROGRAMS[row.program], int(row.decimals), extensions)


# -- per-mint limits -------------------------------------------------------------------------

KEEP = "keep"


def set_token_limits(
    wallet: str, token: str, *, per_tx: int | str = KEEP, daily: int | str = KEEP,
    approve_above: int | str | None = KEEP,
) -> TokenLimit:
    """Create or change a wallet's ceilings for one registered mint (base units); ``approve_above``
    holds transactions moving more of it for the operator (None clears it)."""
    wallet = normalize_pubkey(wallet, what="wallet")
    mint = get_token(token)
    existing = TokenLimit.get_or_none((TokenLimit.wallet == wallet) & (TokenLimit.mint == mint.mint))
    if existing is None and KEEP in (per_tx, daily):
        raise InvalidLimits(f"wallet {wallet} has no {mint.symbol} limits yet: give both --per-tx and --daily")
    if existing is not None:
        per_tx = existing.per_tx_base_units if per_tx == KEEP else per_tx
        daily = existing.daily_base_units if daily == KEEP else daily
    if approve_above == KEEP:
        approve_above = existing.approve_above_base_units if existing is not None else None
    if approve_above is not None and (
        isinstance(approve_above, bool) or not isinstance(approve_above, int) or not 0 <= approve_above <= MAX_U64
    ):
        raise InvalidLimits(f"the approve-above threshold must be a whole number of base units from 0 to {MAX_U64}")
    for name, value in (("per-tx", per_tx), ("daily", daily)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_U64:
            raise InvalidLimits(f"the {name} limit must be a whole number of base units from 0 to {MAX_U64}")
    if per_tx > daily:
        raise InvalidLimits(
            f"the per-transaction limit ({format_token_amount(per_tx, mint.decimals)} {mint.symbol}) is above the "
            f"daily limit ({format_token_amount(daily, mint.decimals)} {mint.symbol})"
        )
    fields = {
        TokenLimit.per_tx_base_units: per_tx, TokenLimit.daily_base_units: daily,
        TokenLimit.approve_above_base_units: approve_above, TokenLimit.updated_at: utc_now(),
    }
    (
        TokenLimit.insert({TokenLimit.wallet: wallet, TokenLimit.mint: mint.mint, **fields})
        .on_conflict(conflict_target=[TokenLimit.wallet, TokenLimit.mint], update=fields)
        .execute()
    )
    return TokenLimit.get((TokenLimit.wallet == wallet) & (TokenLimit.mint == mint.mint))


def remove_token_limits(wallet: str, token: str) -> None:
    """From then on the wallet may not spend that mint (token_no_limits)."""
    wallet = normalize_pubkey(wallet, what="wallet")
    mint = get_token(token)
    if not TokenLimit.delete().where((TokenLimit.wallet == wallet) & (TokenLimit.mint == mint.mint)).execute():
        raise NotFound(f"wallet {wallet} has no {mint.symbol} limits")


def token_limits_of(wallet: str) -> list[TokenLimit]:
    return list(TokenLimit.select().where(TokenLimit.wallet == wallet).order_by(TokenLimit.mint))


def token_spent_in_window(wallet: str, mint: str, *, now: datetime.datetime, window: datetime.timedelta) -> int:
    """Base units of ``mint`` the wallet has had signed in the window ending at ``now``, less what
    the chain proved never moved (releases of expired and failed transactions)."""
    from .ledger import SPENDING_STATUSES

    rows = (
        TokenSpend.select(TokenSpend.amount_base_units)
        .join(WalletTransaction, on=(WalletTransaction.id == TokenSpend.transaction_id))
        .where(
            (TokenSpend.wallet == wallet)
            & (TokenSpend.mint == mint)
            & (TokenSpend.created_at > now - window)
            & (WalletTransaction.status.in_(SPENDING_STATUSES))
        )
    )
    released = SpendRelease.select(SpendRelease.amount_base_units).where(
        (SpendRelease.wallet == wallet) & (SpendRelease.asset == mint) & (SpendRelease.tx_created_at > now - window)
    )
    # Python ints: no overflow on either backend
    return sum(row.amount_base_units for row in rows) - sum(row.amount_base_units for row in released)


def token_limits_report(wallet: str, *, now: datetime.datetime | None = None) -> list[dict]:
    """Each mint's ceilings for the wallet, with the spend of the last 24 hours, in base units
    (decimal strings: u64 exceeds what JSON readers keep exact) and token units."""
    from .ledger import DAILY_WINDOW

    now = now or utc_now()
    registry = {row.mint: row for row in TokenMint.select()}
    report = []
    for limit in token_limits_of(normalize_pubkey(wallet, what="wallet")):
        mint = registry.get(limit.mint)
        spent = token_spent_in_window(limit.wallet, limit.mint, now=now, window=DAILY_WINDOW)
        remaining = max(limit.daily_base_units - spent, 0)
        decimals = mint.decimals if mint is not None else 0
        amounts: dict[str, object] = {}
        for name, value in (
            ("per_tx", limit.per_tx_base_units), ("daily", limit.daily_base_units),
            ("spent_24h", spent), ("remaining_24h", remaining), ("approve_above", limit.approve_above_base_units),
        ):
            amounts[f"{name}_base_units"] = None if value is None else str(value)
            amounts[name] = None if value is None else format_token_amount(value, decimals)
        report.append({
            "mint": limit.mint,
            "symbol": mint.symbol if mint is not None else None,
            "decimals": decimals,
            **amounts,
            "updated_at": iso_utc(limit.updated_at),
        })
    return report


def registry_snapshot() -> dict[bytes, RegisteredMint]:
    """The registry as the policy takes it: mint bytes -> RegisteredMint."""
    entries = [registered_mint(row) for row in TokenMint.select()]
    return {entry.mint: entry for entry in entries}


def token_policy_inputs(wallet: str, *, now: datetime.datetime) -> tuple[dict, dict, dict]:
    """What ``policy.decide`` takes about tokens, read from the database as the signer reads
    it: (registry, the wallet's per-mint TokenLimits, its per-mint spend of the last 24 hours),
    each keyed by mint bytes."""
    from .ledger import DAILY_WINDOW
    from .policy import TokenLimits

    wallet = normalize_pubkey(wallet, what="wallet")
    limits = {
        decode_pubkey(row.mint, what="mint"): TokenLimits(row.per_tx_base_units, row.daily_base_units)
        for row in token_limits_of(wallet)
    }
    spent = {
        mint: token_spent_in_window(wallet, encode_pubkey(mint), now=now, window=DAILY_WINDOW) for mint in limits
    }
    return registry_snapshot(), limits, spent
