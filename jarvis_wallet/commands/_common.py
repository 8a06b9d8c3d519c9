"""What every command shares: the database URL, JSON output, tables, messages.

Heavy imports (rich, the database layer) happen inside functions so that
commands which do not need them start fast.
"""

from __future__ import annotations

import datetime
import json
import re
import sys
from typing import Any

import typer

from ..errors import InvalidInput

JsonOption = typer.Option(False, "--json", help="Print JSON (stable snake_case keys) instead of a table.")


def bounded_option(default, *flags: str, help: str, low, high, low_open: bool = False):
    """A numeric option with its range checked while parsing (one-line error, exit 2).

    Integers when ``low`` and ``high`` are; seconds and rates otherwise (``low_open``: above
    ``low``, not equal). NaN and infinities are refused for every option (cli.py).
    """
    import click

    if isinstance(low, int) and isinstance(high, int):
        click_type = click.IntRange(low, high, min_open=low_open)
    else:
        click_type = click.FloatRange(low, high, min_open=low_open)
    return typer.Option(default, *flags, help=help, click_type=click_type)


MAX_TIMEOUT_SECONDS = 3600.0

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, *, option: str, low: float, high: float) -> float:
    """``90``, ``90s``, ``30m``, ``8h``, ``1d`` -> seconds, between ``low`` and ``high``."""
    import math

    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*", text or "")
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"] if match else math.nan
    if not low <= seconds <= high:
        raise InvalidInput(
            f"{option} {text!r} is not a duration from {low:g} s to {high / 86400:g} days (like 90s, 30m, 8h or 1d)"
        )
    return seconds


def database_url(ctx: typer.Context) -> str:
    from ..config import resolve_database_url

    root = ctx.find_root()
    flag = (root.obj or {}).get("database_url") if isinstance(root.obj, dict) else None
    return resolve_database_url(flag)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def say(message: str) -> None:
    """A message for the person at the terminal (stderr, so stdout stays data)."""
    typer.echo(message, err=True)


#: Below this many columns tables take their compact layout (abbreviated keys, SOL amounts).
WIDE_COLUMNS = 160
_KEY_RE = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,88}")


def terminal_width() -> int:
    """The terminal's width; piped output is 220 unless COLUMNS says otherwise."""
    import os
    import shutil

    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else 220


def is_narrow(wide_columns: int = WIDE_COLUMNS) -> bool:
    """Whether the full layout (``wide_columns`` wide) would not fit."""
    return terminal_width() < wide_columns


def short_key(text: str | None) -> str:
    """``9WzD…AWWM`` for a base58 key or signature; anything else unchanged."""
    if text is None:
        return "-"
    return _KEY_RE.sub(lambda m: f"{m.group()[:4]}…{m.group()[-4:]}", text)


def print_table(title: str | None, columns: list[str], rows: list[list[str]], *, wrap: tuple[str, ...] = ()) -> None:
    """A table whose cells never break inside a key or an amount: only the ``wrap`` columns
    (free text) fold. Narrow terminals get a borderless layout; callers abbreviate keys."""
    from rich import box
    from rich.table import Table

    narrow = is_narrow()
    table = Table(
        title=title, title_justify="left",
        box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD, show_edge=not narrow, pad_edge=not narrow,
    )
    for column in columns:
        if column in wrap:
            table.add_column(column, overflow="fold", ratio=1, min_width=24)
        else:
            table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    _console().print(table)


def print_fields(title: str | None, fields: list[tuple[str, str]]) -> None:
    """Name and value, one a line; on a narrow terminal keys and signatures are abbreviated
    when they would not fit on the line (the full values are in --json)."""
    from rich.table import Table

    width = terminal_width()
    name_width = max((len(name) for name, _ in fields), default=0)
    room = width - name_width - 7  # borders and padding
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in fields:
        table.add_row(name, " ".join(_fit(token, room) for token in str(value).split(" ")))
    _console().print(table)


def _fit(token: str, room: int) -> str:
    """A token longer than ``room`` keeps its two ends around an ellipsis, never folds."""
    if len(token) <= room or room < 9:
        return token
    keep = (room - 1) // 2
    return f"{token[:keep]}…{token[-keep:]}"


def _console():
    from rich.console import Console

    return Console(width=terminal_width())


def sol_cell(lamports: int | None) -> str:
    """The compact form of an amount: SOL only."""
    from ..amounts import format_sol

    return "-" if lamports is None else format_sol(lamports)


def lamports_cell(lamports: int | None) -> str:
    from ..amounts import format_sol

    return "-" if lamports is None else f"{lamports:,} ({format_sol(lamports)})"


def escape(text: Any) -> str:
    """Agent-supplied text is shown literally, never as rich markup."""
    from rich.markup import escape as rich_escape

    return "-" if text is None else rich_escape(str(text))


_RELATIVE_RE = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, *, now: datetime.datetime) -> datetime.datetime:
    """``24h``, ``30m``, ``7d`` before now, or an ISO date/time (UTC unless it says otherwise)."""
    match = _RELATIVE_RE.match(text)
    if match:
        try:
            return now - datetime.timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
        except OverflowError:  # 999999w: before the year 1
            raise InvalidInput(f"invalid --since {text!r}: that is before the year 1") from None
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"invalid --since {text!r}: use a duration (30m, 24h, 7d) or an ISO time (2026-11-26T09:00)"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment


def default_wallet(wallet: str | None) -> str:
    """The --wallet given, else the configured wallet_public_key (database session open)."""
    from ..errors import InvalidConfig
    from ..settings import get_setting
    from ..solana.pubkey import normalize_pubkey

    if wallet:
        return normalize_pubkey(wallet, what="wallet")
    configured = get_setting("wallet_public_key")
    if not configured:
        raise InvalidConfig(
            "no --wallet given and wallet_public_key is not configured; "
            "pass --wallet PUBKEY or run `jarvis-wallet config set wallet_public_key PUBKEY`"
        )
    return configured
