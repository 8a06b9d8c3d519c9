"""Amounts: integer base units everywhere; SOL and token units only at the edges, for people.

``parse_amount`` accepts ``1500000`` (lamports), ``1.5SOL``, ``0.002 SOL`` or
``250 lamports``; ``parse_token_amount`` accepts ``12.5`` (token units, at most the
mint's decimals) or ``12500000base`` (base units). Neither goes through floats.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .errors import InvalidAmount

LAMPORTS_PER_SOL = 1_000_000_000
# Amounts are stored in signed 64-bit columns; Solana's own u64 never matters above this.
MAX_LAMPORTS = 2**63 - 1
SOL_DECIMALS = 9

_AMOUNT_RE = re.compile(
    r"^\s*(?P<number>[+-]?[0-9][0-9_]*(?:\.[0-9]*)?|[+-]?\.[0-9]+)\s*(?P<unit>[a-zA-Z]*)\s*$"
)


def parse_amount(text: str | int, *, what: str = "amount") -> int:
    """Return the lamports an amount names, or raise InvalidAmount with a one-line reason."""
    if isinstance(text, bool):
        raise InvalidAmount(f"invalid {what}: expected a number")
    if isinstance(text, int):
        return _checked(text, what=what, shown=str(text))
    shown = text.strip()
    match = _AMOUNT_RE.match(text)
    if not match:
        raise InvalidAmount(
            f"invalid {what} {shown!r}: use integer lamports (1500000) or SOL with a unit (1.5SOL)"
        )
    number, unit = match.group("number").replace("_", ""), match.group("unit").lower()
    if len(number) > 40:  # far above any 64-bit amount; also keeps int() away from huge strings
        raise InvalidAmount(f"invalid {what}: larger than the maximum of {MAX_LAMPORTS} lamports")
    if unit == "sol":
        lamports = scaled_units(
            number, SOL_DECIMALS, what=what, shown=shown, too_precise=f"SOL has at most {SOL_DECIMALS} decimals (1 lamport)"
        )
        return _checked(lamports, what=what, shown=shown)
    if unit in ("", "lamport", "lamports"):
        if "." in number:
            raise InvalidAmount(
                f"invalid {what} {shown!r}: lamports are whole numbers; write SOL for fractions (0.5SOL)"
            )
        return _checked(int(number), what=what, shown=shown)
    raise InvalidAmount(f"invalid {what} {shown!r}: unknown unit {match.group('unit')!r} (use SOL or lamports)")


def scaled_units(number: str, decimals: int, *, what: str, shown: str, too_precise: str) -> int:
    """Decimal text times 10**decimals, exactly (no floats); more places than ``decimals`` is an error."""
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise InvalidAmount(f"invalid {what} {shown!r}: not a number") from None
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > decimals:
        raise InvalidAmount(f"invalid {what} {shown!r}: {too_precise}")
    return int(value.scaleb(decimals))


def _checked(lamports: int, *, what: str, shown: str, negative: bool = False) -> int:
    if lamports < 0 or negative:
        raise InvalidAmount(f"invalid {what} {shown!r}: must not be negative")
    if lamports > MAX_LAMPORTS:
        raise InvalidAmount(f"invalid {what} {shown!r}: larger than the maximum of {MAX_LAMPORTS} lamports")
    return lamports


def format_sol(lamports: int) -> str:
    """``1500000000`` -> ``"1.5 SOL"``; exact, with no trailing zeros."""
    whole, fraction = divmod(abs(lamports), LAMPORTS_PER_SOL)
    sign = "-" if lamports < 0 else ""
    if not fraction:
        return f"{sign}{whole} SOL"
    digits = f"{fraction:09d}".rstrip("0")
    return f"{sign}{whole}.{digits} SOL"


def format_lamports(lamports: int) -> str:
    """``500000000`` -> ``"500,000,000 lamports (0.5 SOL)"`` for people."""
    return f"{lamports:,} lamports ({format_sol(lamports)})"


# Token amounts travel in u64 instruction fields.
MAX_TOKEN_BASE_UNITS = 2**64 - 1
_TOKEN_AMOUNT_RE = re.compile(
    r"^\s*(?P<whole>[0-9][0-9_]*)?(?:\.(?P<fraction>[0-9][0-9_]*)?)?\s*(?P<unit>[a-zA-Z][a-zA-Z0-9._-]*)?\s*$"
)
_MAX_DIGITS = 40  # far above any u64 amount; keeps int() away from huge strings


def parse_token_amount(
    text: str,
    decimals: int,
    *,
    symbol: str | None = None,
    what: str = "amount",
    maximum: int = MAX_TOKEN_BASE_UNITS,
) -> int:
    """The base units an amount of a token names, exactly, or InvalidAmount with a one-line reason.

    ``12.5`` is token units (at most ``decimals`` places; a trailing ``symbol`` is allowed:
    ``12.5USDC``); ``12500000base`` is base units. Nothing above ``maximum`` (u64 by default).
    """
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 255:
        raise InvalidAmount(f"invalid {what}: decimals must be an integer from 0 to 255")
    if not isinstance(text, str):
        raise InvalidAmount(f"invalid {what}: expected text")
    shown = text.strip()
    name = symbol or "the token"
    match = _TOKEN_AMOUNT_RE.match(text)
    if not shown or not match or (match.group("whole") is None and match.group("fraction") is None):
        if shown.startswith("-"):
            raise InvalidAmount(f"invalid {what} {shown!r}: must not be negative")
        raise InvalidAmount(
            f"invalid {what} {shown!r}: use token units (12.5) or base units with a suffix (12500000base)"
        )
    whole = (match.group("whole") or "0").replace("_", "")
    fraction = (match.group("fraction") or "").replace("_", "").rstrip("0")
    unit = match.group("unit")
    if unit is not None and unit.lower() == "base":
        if "." in shown:
            raise InvalidAmount(f"invalid {what} {shown!r}: base units are whole numbers")
        fraction_places = None
    elif unit is None or (symbol is not None and unit.lower() == symbol.lower()):
        fraction_places = len(fraction)
    else:
        expected = f"{symbol} or base" if symbol else "base"
        raise InvalidAmount(f"invalid {what} {shown!r}: unknown unit {unit!r} (use {expected})")
    too_large = f"invalid {what} {shown!r}: larger than the maximum of {maximum} base units"
    if len(whole.lstrip("0")) > _MAX_DIGITS:
        raise InvalidAmount(too_large)
    if fraction_places is None:
        units = int(whole)
    else:
        if fraction_places > decimals:
            raise InvalidAmount(
                f"invalid {what} {shown!r}: {name} has {decimals} decimals; "
                f"write at most {decimals} places, or base units (12500000base)"
            )
        units = int(whole) * 10**decimals + (int(fraction.ljust(decimals, "0")) if decimals else 0)
    if units > maximum:
        raise InvalidAmount(too_large)
    return units


def format_token_amount(base_units: int, decimals: int, *, symbol: str | None = None) -> str:
    """``12500000, 6`` -> ``"12.5"`` (``"12.5 USDC"`` with a symbol); exact, no trailing zeros."""
    whole, fraction = divmod(abs(base_units), 10**decimals)
    sign = "-" if base_units < 0 else ""
    text = f"{sign}{whole}"
    if fraction:
        text += "." + f"{fraction:0{decimals}d}".rstrip("0")
    return f"{text} {symbol}" if symbol else text
