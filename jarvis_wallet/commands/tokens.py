"""`jarvis-wallet tokens add|list|remove`: the operator's mint registry."""

from __future__ import annotations

from typing import List, Optional

import typer

from ._common import MAX_TIMEOUT_SECONDS, JsonOption, bounded_option, database_url, print_json, print_table, say

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
        help="Accept this Token-2022 extension although, as the mint has it, it can move or freeze holders' tokens (repeatable).",
    ),
    rpc_url: Optional[str] = typer.Option(
        None, "--rpc-url", help="Read the mint from this Solana JSON-RPC endpoint. Default: the rpc_url setting, if set."
    ),
    rpc_timeout: float = bounded_option(
        10.0, "--rpc-timeout", help="Seconds to wait for the endpoint's answer (above 0, at most 3600).",
        low=0.0, high=MAX_TIMEOUT_SECONDS, low_open=True,
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the registered mint as `tokens list --json` does."),
) -> None:
    """Register a mint so that wallets may be given limits for it.

    With an endpoint (--rpc-url, or the rpc_url setting) the mint account is read from the
    chain: decimals and program are taken from it (and must agree with --decimals and
    --program if given), its Token-2022 extensions are recorded, and a mint whose extensions,
    as configured, can move or freeze holders' tokens (permanent delegate, transfer hook,
    confidential transfers, default-frozen accounts, pausable, non-transferable) is refused
    unless each is named with --allow-extension. Without an endpoint give --decimals and
    --program; such a mint can be paid only with TransferChecked, whose decimals the runtime
    checks (a plain Transfer of it is refused).

    Example: jarvis-wallet tokens add USDC --mint EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v --rpc-url https://api.mainnet-beta.solana.com
    """
    from ..db import session
    from ..settings import get_setting
    from ..tokens import add_token, read_mint_account, token_to_dict

    with session(database_url(ctx)):
        url = rpc_url if rpc_url is not None else get_setting("rpc_url")
        parsed = None
        if url or rpc_url is not None:  # an empty --rpc-url is an error, not "offline"
            from ..chain.rpc import RpcClient, resolve_rpc_url

            parsed = read_mint_account(RpcClient(resolve_rpc_url(url, None), timeout=rpc_timeout), mint)
        row = add_token(
            symbol, mint=mint, decimals=decimals, program=program, allowed_extensions=allow_extension or (),
            mint_account=parsed,
        )
        data = token_to_dict(row)
    if parsed is not None:
        for note in parsed.notes():
            say(f"Note: {note}")
    if json_output:
        print_json(data)
        return
    checked = "" if data["extensions"] is None else " (read from the chain" + (
        f"; extensions: {', '.join(data['extensions'])})" if data["extensions"] else ")")
    typer.echo(
        f"Registered {data['symbol']}: mint {data['mint']}, program {data['program']}, {data['decimals']} decimals{checked}. "
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
