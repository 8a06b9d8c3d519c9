"""`jarvis-wallet limits set|show|remove`."""

from __future__ import annotations

from typing import Optional

import typer

from ._common import (
    JsonOption,
    database_url,
    default_wallet,
    is_narrow,
    lamports_cell,
    print_json,
    print_table,
    short_key,
    sol_cell,
)

FULL_LIMITS_COLUMNS = 200  # a whole key and five amounts in lamports and SOL
APPROVE_COLUMN = 32  # one more amount, when some wallet has an approval threshold

app = typer.Typer(help="Spend limits per wallet: without them the signer makes no new signature.", no_args_is_help=True)

WalletOption = typer.Option(
    None, "--wallet", help="Wallet public key (base58). Default: the configured wallet_public_key."
)
TokenOption = typer.Option(
    None, "--token", help="A registered token (symbol or mint): its limits instead of the SOL ones (see `tokens add`)."
)


@app.command("set")
def limits_set(
    ctx: typer.Context,
    per_tx: Optional[str] = typer.Option(
        None, "--per-tx", help="Ceiling for one transaction: lamports (1500000) or SOL (1.5SOL). Left out: kept."
    ),
    daily: Optional[str] = typer.Option(None, "--daily", help="Ceiling for any rolling 24 hours: lamports or SOL. Left out: kept."),
    notify_above: Optional[str] = typer.Option(
        None, "--notify-above", help="Flag transactions above this amount in `tx list` and `limits show`. Left out: kept."
    ),
    clear_notify_above: bool = typer.Option(False, "--clear-notify-above", help="Remove the notify threshold."),
    approve_above: Optional[str] = typer.Option(
        None, "--approve-above",
        help="Hold transactions spending more than this (within the ceilings) until an operator runs "
        "`approvals approve`. Left out: kept.",
    ),
    clear_approve_above: bool = typer.Option(False, "--clear-approve-above", help="Remove the approval threshold."),
    wallet: Optional[str] = WalletOption,
    token: Optional[str] = TokenOption,
    json_output: bool = typer.Option(False, "--json", help="Print the limits now in force, as `limits show --json` does."),
) -> None:
    """Set a wallet's per-transaction and daily ceilings (both needed the first time).

    Options left out keep their values; --clear-notify-above removes the notify threshold (which
    only flags rows) and --clear-approve-above the approval threshold (which holds transactions
    for the operator, see `jarvis-wallet approvals --help`).
    With --token, the ceilings of that registered mint: amounts in token units with at most
    the mint's decimals (25, 12.5, 12.5USDC) or in base units with the suffix base (25000000base).
    A wallet may spend a mint only once it has limits for it.

    Example: jarvis-wallet limits set --wallet <PUBKEY> --per-tx 0.5SOL --daily 2SOL --approve-above 0.1SOL
    """
    from ..amounts import parse_amount
    from ..db import session
    from ..errors import InvalidInput
    from ..limits import KEEP, limits_report, set_limits

    if approve_above is not None and clear_approve_above:
        raise InvalidInput("give --approve-above or --clear-approve-above, not both")
    if token is not None:
        if notify_above is not None or clear_notify_above:
            raise InvalidInput("--notify-above applies to SOL limits, not with --token")
        _set_token_limits(ctx, wallet, token, per_tx, daily, json_output, approve_above, clear_approve_above)
        return
    if notify_above is not None and clear_notify_above:
        raise InvalidInput("give --notify-above or --clear-notify-above, not both")
    amounts = {
        "per_tx_lamports": KEEP if per_tx is None else parse_amount(per_tx, what="--per-tx"),
        "daily_lamports": KEEP if daily is None else parse_amount(daily, what="--daily"),
        "notify_above_lamports": (
            None if clear_notify_above else KEEP if notify_above is None else parse_amount(notify_above, what="--notify-above")
        ),
        "approve_above_lamports": (
            None if clear_approve_above
            else KEEP if approve_above is None else parse_amount(approve_above, what="--approve-above")
        ),
    }
    if all(value == KEEP for value in amounts.values()):
        raise InvalidInput(
            "nothing to set: give --per-tx, --daily, --notify-above, --approve-above or one of the --clear options"
        )
    with session(database_url(ctx)):
        row = set_limits(default_wallet(wallet), **amounts)
        report = limits_report(row)
    if json_output:
        print_json(report)
        return
    notify, approve = report["notify_above_lamports"], report["approve_above_lamports"]
    typer.echo(
        f"Limits for {report['wallet']}: per transaction {lamports_cell(report['per_tx_lamports'])}, "
        f"daily {lamports_cell(report['daily_lamports'])}, "
        + (f"notify above {lamports_cell(notify)}" if notify is not None else "no notify threshold")
        + ", "
        + (f"approval above {lamports_cell(approve)}" if approve is not None else "no approval threshold")
    )


def _set_token_limits(ctx, wallet, token, per_tx, daily, json_output, approve_above=None, clear_approve_above=False) -> None:
    from ..db import session
    from ..errors import InvalidInput
    from ..amounts import parse_token_amount
    from ..tokens import KEEP, get_token, set_token_limits, token_limits_report

    if per_tx is None and daily is None and approve_above is None and not clear_approve_above:
        raise InvalidInput("nothing to set: give --per-tx, --daily, --approve-above or --clear-approve-above")
    with session(database_url(ctx)):
        mint = get_token(token)
        amounts = {
            name: KEEP if text is None else parse_token_amount(text, mint.decimals, symbol=mint.symbol, what=flag)
            for name, text, flag in (
                ("per_tx", per_tx, "--per-tx"), ("daily", daily, "--daily"), ("approve_above", approve_above, "--approve-above"),
            )
        }
        if clear_approve_above:
            amounts["approve_above"] = None
        row = set_token_limits(default_wallet(wallet), mint.symbol, **amounts)
        report = next(r for r in token_limits_report(row.wallet) if r["mint"] == row.mint)
    if json_output:
        print_json(report)
        return
    typer.echo(
        f"{report['symbol']} limits for {row.wallet}: per transaction {_token_cell(report, 'per_tx')}, "
        f"daily {_token_cell(report, 'daily')}, "
        + (f"approval above {_token_cell(report, 'approve_above')}" if report["approve_above"] is not None
           else "no approval threshold")
    )


def _token_cell(report: dict, name: str) -> str:
    return f"{report[name]} {report['symbol']} ({report[name + '_base_units']} base units)"


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
    # The approval column only where some wallet has a threshold: narrow terminals have no room to spare.
    approving = any(r["approve_above_lamports"] is not None for r in reports)
    narrow = is_narrow(FULL_LIMITS_COLUMNS + (APPROVE_COLUMN if approving else 0))  # abbreviated keys and bare SOL amounts; full values in --json
    amount = (lambda lamports: "-" if lamports is None else sol_cell(lamports).removesuffix(" SOL")) if narrow else lamports_cell
    rows = []
    for r in reports:
        above = r["above_notify_24h"]
        flag = (f" !{above}" if narrow else f" ! {above} above notify") if above else ""
        rows.append(
            [
                short_key(r["wallet"]) if narrow else r["wallet"],
                amount(r["per_tx_lamports"]),
                amount(r["daily_lamports"]),
                amount(r["spent_24h_lamports"]) + flag,
                amount(r["remaining_24h_lamports"]),
                amount(r["notify_above_lamports"]),
            ]
            + ([amount(r["approve_above_lamports"])] if approving else [])
        )
    print_table(
        "Spend limits (SOL; !N: N transactions above notify in 24 h)" if narrow else "Spend limits (lamports)",
        ["wallet", "per tx", "daily", "spent 24h", "remaining 24h", "notify above"] + (["approve above"] if approving else []),
        rows,
    )
    if not rows:
        typer.echo("No wallet has limits; set them with `jarvis-wallet limits set`.", err=True)
    token_rows = [
        [
            short_key(r["wallet"]) if narrow else r["wallet"],
            t["symbol"] or short_key(t["mint"]),
            *(t[name] if narrow else f"{t[name]} ({t[name + '_base_units']})" for name in ("per_tx", "daily", "spent_24h", "remaining_24h")),
        ]
        for r in reports for t in r["tokens"]
    ]
    if token_rows:
        print_table(
            "Token limits (token units" + ("" if narrow else "; base units in brackets") + ")",
            ["wallet", "token", "per tx", "daily", "spent 24h", "remaining 24h"],
            token_rows,
        )


@app.command("remove")
def limits_remove(
    ctx: typer.Context,
    wallet: str = typer.Option(..., "--wallet", help="Wallet public key."),
    token: Optional[str] = typer.Option(None, "--token", help="Remove only the limits of this registered token."),
) -> None:
    """Remove a wallet's limits: the signer then makes it no new signature.

    A message it signed before is still answered with that recorded signature (a retry
    releases nothing new and is recorded as a duplicate); every other request is refused
    with no_limits. With --token only that mint's limits go: the wallet may no longer spend
    it (token_no_limits).

    Example: jarvis-wallet limits remove --wallet <PUBKEY>
    """
    from ..db import session
    from ..limits import remove_limits
    from ..tokens import get_token, remove_token_limits

    if token is not None:
        with session(database_url(ctx)):
            symbol = get_token(token).symbol
            remove_token_limits(wallet, symbol)
        typer.echo(f"{symbol} limits removed for {wallet}; the signer now refuses it every movement of {symbol}")
        return
    with session(database_url(ctx)):
        remove_limits(wallet)
    typer.echo(
        f"Limits removed for {wallet}; the signer now refuses it every new signature "
        "(a message it already signed is answered with the recorded signature: nothing new is spent)"
    )
