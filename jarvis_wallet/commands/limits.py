"""`jarvis-wallet limits set|show|remove`."""

from __future__ import annotations

from typing import Optional

import typer

from ._common import JsonOption, database_url, default_wallet, lamports_cell, print_json, print_table

app = typer.Typer(help="Spend limits per wallet: without them the signer makes no new signature.", no_args_is_help=True)

WalletOption = typer.Option(
    None, "--wallet", help="Wallet public key (base58). Default: the configured wallet_public_key."
)


@app.command("set")
def limits_set(
    ctx: typer.Context,
    per_tx: str = typer.Option(..., "--per-tx", help="Ceiling for one transaction: lamports (1500000) or SOL (1.5SOL)."),
    daily: str = typer.Option(..., "--daily", help="Ceiling for any rolling 24 hours: lamports or SOL."),
    notify_above: Optional[str] = typer.Option(
        None, "--notify-above", help="Flag transactions above this amount in `tx list` and `limits show`."
    ),
    wallet: Optional[str] = WalletOption,
) -> None:
    """Set a wallet's per-transaction and daily ceilings.

    Example: jarvis-wallet limits set --wallet <PUBKEY> --per-tx 0.5SOL --daily 2SOL
    """
    from ..amounts import parse_amount
    from ..db import session
    from ..limits import limits_report, set_limits

    per_tx_lamports = parse_amount(per_tx, what="--per-tx")
    daily_lamports = parse_amount(daily, what="--daily")
    notify_lamports = None if notify_above is None else parse_amount(notify_above, what="--notify-above")
    with session(database_url(ctx)):
        row = set_limits(
            default_wallet(wallet),
            per_tx_lamports=per_tx_lamports,
            daily_lamports=daily_lamports,
            notify_above_lamports=notify_lamports,
        )
        report = limits_report(row)
    typer.echo(
        f"Limits for {report['wallet']}: per transaction {lamports_cell(report['per_tx_lamports'])}, "
        f"daily {lamports_cell(report['daily_lamports'])}"
    )


@app.command("show")
def limits_show(ctx: typer.Context, wallet: Optional[str] = typer.Option(None, "--wallet", help="Only this wallet."), json_output: bool = JsonOption) -> None:
    """Show ceilings, the spend of the last 24 hours and what remains.

    With --json: one object for --wallet, else a list of objects.

    Example: jarvis-wallet limits show --wallet <PUBKEY> --json
    """
    from ..db import session
    from ..limits import limits_report, list_limits, require_limits

    with session(database_url(ctx)):
        if wallet is not None:
            reports = [limits_report(require_limits(wallet))]
        else:
            reports = [limits_report(row) for row in list_limits()]
    if json_output:
        print_json(reports[0] if wallet is not None else reports)
        return
    rows = []
    for r in reports:
        notify = r["notify_above_lamports"]
        flag = f" ! {r['above_notify_24h']} above notify" if r["above_notify_24h"] else ""
        rows.append(
            [
                r["wallet"],
                lamports_cell(r["per_tx_lamports"]),
                lamports_cell(r["daily_lamports"]),
                lamports_cell(r["spent_24h_lamports"]) + flag,
                lamports_cell(r["remaining_24h_lamports"]),
                lamports_cell(notify),
            ]
        )
    print_table(
        "Spend limits (lamports)",
        ["wallet", "per tx", "daily", "spent 24h", "remaining 24h", "notify above"],
        rows,
    )
    if not rows:
        typer.echo("No wallet has limits; set them with `jarvis-wallet limits set`.", err=True)


@app.command("remove")
def limits_remove(ctx: typer.Context, wallet: str = typer.Option(..., "--wallet", help="Wallet public key.")) -> None:
    """Remove a wallet's limits: the signer then makes it no new signature.

    A message it signed before is still answered with that recorded signature (a retry
    releases nothing new and is recorded as a duplicate); every other request is refused
    with no_limits.

    Example: jarvis-wallet limits remove --wallet <PUBKEY>
    """
    from ..db import session
    from ..limits import remove_limits

    with session(database_url(ctx)):
        remove_limits(wallet)
    typer.echo(
        f"Limits removed for {wallet}; the signer now refuses it every new signature "
        "(a message it already signed is answered with the recorded signature: nothing new is spent)"
    )
