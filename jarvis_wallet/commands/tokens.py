"""`jarvis-wallet tokens add|list|remove`: the operator's mint registry."""

from __future__ import annotations

from typing import List, Optional

import typer

from ._common import JsonOption, bounded_option, database_url, print_json, print_table

app = typer.Typer(
    help="The mints a wallet may spend: each registered with symbol, program and decimals, then given limits.",
    no_args_is_help=True,
)


@app.command("add")
def tokens_add(
    ctx: typer.Context,
    symbol: str = typer.Argument(..., help="A short name for the mint (USDC): 1-16 letters, digits, '.', '_' or '-'."),
    mint: str = typer.Option(..., "--mint", help="The mint address (base58)."),
    decimals: Optional[int] = bounded_option(None, "--decimals", help="The mint's decimals (0-255).", low=0, high=255),
    program: Optional[str] = typer.Option(None, "--program", help="token (SPL Token) or token-2022."),
    allow_extension: Optional[List[str]] = typer.Option(
        None, "--allow-extension",
        help="Accept this Token-2022 extension although it can move or freeze holders' tokens (repeatable).",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the registered mint as `tokens list --json` does."),
) -> None:
    """Register a mint so that wallets may be given limits for it.

    Offline, give --decimals and --program: the signer checks every transfer's decimals and
    program against them. A Token-2022 mint whose extensions can move, freeze or hide holders'
    tokens (permanent delegate, transfer hook, confidential transfers, default-frozen accounts,
    pausable, permissioned burn) is refused once its extensions are known, unless each such
    extension is named with --allow-extension.

    Example: jarvis-wallet tokens add USDC --mint EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v --decimals 6 --program token
    """
    from ..db import session
    from ..tokens import add_token, token_to_dict

    with session(database_url(ctx)):
        row = add_token(symbol, mint=mint, decimals=decimals, program=program, allowed_extensions=allow_extension or ())
        data = token_to_dict(row)
    if json_output:
        print_json(data)
        return
    typer.echo(
        f"Registered {data['symbol']}: mint {data['mint']}, program {data['program']}, {data['decimals']} decimals. "
        f"Give a wallet limits for it: jarvis-wallet limits set --token {data['symbol']} --per-tx AMOUNT --daily AMOUNT"
    )


@app.command("list")
def tokens_list(ctx: typer.Context, json_output: bool = JsonOption) -> None:
    """List the registered mints.

    Example: jarvis-wallet tokens list --json
    """
    from ..db import session
    from ..tokens import list_tokens, token_to_dict

    with session(database_url(ctx)):
        rows = [token_to_dict(row) for row in list_tokens()]
    if json_output:
        print_json(rows)
        return
    print_table(
        "Registered tokens",
        ["symbol", "mint", "program", "decimals", "extensions", "allowed extensions"],
        [
            [
                r["symbol"], r["mint"], r["program"], str(r["decimals"]),
                "unknown" if r["extensions"] is None else ", ".join(r["extensions"]) or "none",
                ", ".join(r["allowed_extensions"]) or "-",
            ]
            for r in rows
        ],
    )
    if not rows:
        typer.echo("No token is registered; add one with `jarvis-wallet tokens add`.", err=True)


@app.command("remove")
def tokens_remove(
    ctx: typer.Context,
    symbol: str = typer.Argument(..., help="Symbol or mint address of the registered token."),
    force: bool = typer.Option(False, "--force", help="Also remove every wallet's limits for it."),
) -> None:
    """Unregister a mint: from then on the signer refuses every movement of it.

    Refused while a wallet has limits for it, unless --force (which removes those limits too).
    The audit trail keeps what was spent of it.

    Example: jarvis-wallet tokens remove USDC
    """
    from ..db import session
    from ..tokens import remove_token

    with session(database_url(ctx)):
        row, removed_limits = remove_token(symbol, force=force)
    extra = f" and the limits of {removed_limits} wallet(s)" if removed_limits else ""
    typer.echo(f"Removed {row.symbol} (mint {row.mint}){extra}; the signer now refuses every movement of it")
