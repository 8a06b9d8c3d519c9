"""Amounts: integer lamports everywhere; SOL only at the edges, for people.

``parse_amount`` accepts ``1500000`` (lamports), ``1.5SOL``, ``0.002 SOL`` or
``250 lamports``, and never goes through floats.
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
