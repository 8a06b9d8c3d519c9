"""`jarvis-wallet tx list|show|mark`: the audit trail."""

from __future__ import annotations

import base64
from typing import Optional

import typer

from ._common import (
    JsonOption,
    bounded_option,
    database_url,
    escape,
    is_narrow,
    lamports_cell,
    print_fields,
    print_json,
    print_table,
    say,
    short_key,
    sol_cell,
)

MAX_LIST_LIMIT = 10_000

app = typer.Typer(help="The audit trail: every signing decision, signed or rejected.", no_args_is_help=True)


def _notify_thresholds() -> dict[str, int]:
    from ..limits import list_limits

    return {row.wallet: row.notify_above_lamports for row in list_limits() if row.notify_above_lamports is not None}


@app.command("list")
def tx_list(
    ctx: typer.Context,
    wallet: Optional[str] = typer.Option(None, "--wallet", help="Only this wallet."),
    status: Optional[str] = typer.Option(
        None, "--status", help="signed, submitted, confirmed, failed, expired, rejected or duplicate (a re-sign request)."
    ),
    since: Optional[str] = typer.Option(None, "--since", help="A duration back from now (30m, 24h, 7d) or an ISO time."),
    limit: int = bounded_option(50, "--limit", help="At most this many rows, newest first (1 to 10000).", low=1, high=MAX_LIST_LIMIT),
    before_id: Optional[int] = bounded_option(
        None, "--before-id", help="Only rows older than this id: the next page after the last id shown.", low=1, high=2**63 - 1
    ),
    json_output: bool = JsonOption,
) -> None:
    """List recorded transactions, newest first; '!' flags those above the notify threshold.

    Example: jarvis-wallet tx list --status rejected --since 24h
    """
    from ..db import session
    from ..ledger import count_transactions, list_transactions, token_spend_of, transaction_to_dict
    from ..models import utc_now
    from ..solana.pubkey import normalize_pubkey

    since_at = None
    if since is not None:
        from ._common import parse_since

        since_at = parse_since(since, now=utc_now())
    wallet_key = normalize_pubkey(wallet, what="wallet") if wallet else None
    filters = {"wallet": wallet_key, "status": status, "since": since_at, "before_id": before_id}
    with session(database_url(ctx)):
        thresholds = _notify_thresholds()
        listed = list_transactions(**filters, limit=limit)
        tokens = token_spend_of(row.id for row in listed)
        rows = [
            transaction_to_dict(row, notify_above_lamports=thresholds.get(row.wallet), tokens=tokens[row.id])
            for row in listed
        ]
        more = count_transactions(**filters) - len(rows) if len(rows) == limit else 0
    if more:
        say(f"{more} more row(s) older than id {rows[-1]['id']}: add --before-id {rows[-1]['id']} for the next page, "
            "or a larger --limit")
    if json_output:
        print_json(rows)
        return
    _render_list(rows, one_wallet=wallet_key is not None or len({r["wallet"] for r in rows}) <= 1)


#: Columns the full layout needs (two whole keys, amounts in lamports and SOL, a kind column),
#: and the medium one (whole keys, amounts in lamports only, times to the minute).
FULL_LIST_COLUMNS = 240
MEDIUM_LIST_COLUMNS = 180


def _render_list(rows: list[dict], *, one_wallet: bool) -> None:
    """Full, medium or compact, whichever fits: keys and amounts never wrap, only the purpose
    does. Compact: abbreviated keys, amounts in SOL, the wallet column only when rows of several
    wallets are shown."""
    if not is_narrow(FULL_LIST_COLUMNS):
        print_table(
            "Transactions",
            ["", "id", "created (UTC)", "kind", "status", "wallet", "spend (lamports)", "destination", "purpose"],
            [
                ["!" if r["above_notify_threshold"] else "", str(r["id"]), r["created_at"][:19].replace("T", " "),
                 r["kind"], r["status"], r["wallet"], _spend_cell(r, lamports_cell), escape(_destination_cell(r)),
                 escape(_purpose_cell(r))]
                for r in rows
            ],
            wrap=("purpose",),
        )
        return
    if not is_narrow(MEDIUM_LIST_COLUMNS):
        print_table(
            "Transactions",
            ["", "id", "created (UTC)", "status", "wallet", "spend (lamports)", "destination", "purpose"],
            [
                ["!" if r["above_notify_threshold"] else "", str(r["id"]), r["created_at"][:16].replace("T", " "),
                 r["status"], r["wallet"], _spend_cell(r, lambda v: f"{v:,}"), escape(_destination_cell(r)),
                 escape(_purpose_cell(r))]
                for r in rows
            ],
            wrap=("purpose",),
        )
        return
    columns = ["id", "UTC", "status"] + ([] if one_wallet else ["wallet"]) + ["spend", "to", "purpose"]
    print_table(
        "Transactions" + (f" of {short_key(rows[0]['wallet'])}" if one_wallet and rows else ""),
        columns,
        [
            [("!" if r["above_notify_threshold"] else "") + str(r["id"]), r["created_at"][5:16].replace("T", " "),
             r["status"]] + ([] if one_wallet else [short_key(r["wallet"])])
            + [_spend_cell(r, sol_cell), short_key(_destination_cell(r)), escape(_purpose_cell(r))]
            for r in rows
        ],
        wrap=("purpose",),
    )


def _destination_cell(row: dict) -> str | None:
    """The first destination, and how many more payments there are (each one is in `tx show`)."""
    payments = row["payments"]
    if not payments:  # none, or not recorded (an older row): the column recorded before
        return row["destination_address"]
    first = payments[0]["destination"] or payments[0]["destination_label"]
    return first if len(payments) == 1 else f"{first} +{len(payments) - 1} more"


def _payments_cell(payments: list | None) -> str:
    """One line per payment, in instruction order."""
    if payments is None:
        return "not recorded"
    if not payments:
        return "none"
    return "\n".join(
        f"{lamports_cell(p['lamports'])} to {p['destination'] or p['destination_label']} "
        f"(instruction {p['instruction_index']}, {p['kind']})"
        for p in payments
    )


def _message_cell(message_base64: str | None) -> str:
    if message_base64 is None:
        return "not recorded"
    size = len(base64.b64decode(message_base64))
    return f"{size} bytes (message_base64 in --json)"


def _spend_cell(row: dict, amount) -> str:
    """An off-chain message moves nothing: it says so instead of showing a zero spend."""
    return "message" if row["kind"] == "message" else amount(row["lamports"])


def _purpose_cell(row: dict) -> str:
    """The purpose, and for a refusal its reason code (the full sentence is in `tx show`)."""
    purpose = row["purpose"] or ""
    if row["status"] == "rejected" and row["rejection_reason"]:
        return f"{purpose} [{row['rejection_reason'].split(':', 1)[0]}]".strip()
    if row["status"] == "duplicate":
        return f"{purpose} [re-sign of {row['duplicate_of']}]".strip()
    return purpose or "-"


@app.command("show")
def tx_show(ctx: typer.Context, id_or_signature: str = typer.Argument(..., metavar="ID|SIGNATURE"), json_output: bool = JsonOption) -> None:
    """Show one transaction by its id or its base58 signature, with every payment it makes.

    Example: jarvis-wallet tx show 42
    """
    from ..chain.settle import releases_of
    from ..db import session
    from ..ledger import get_transaction, transaction_to_dict

    with session(database_url(ctx)):
        row = get_transaction(id_or_signature)
        data = transaction_to_dict(row, notify_above_lamports=_notify_thresholds().get(row.wallet))
        data["releases"] = releases_of(row.id)
    if json_output:
        print_json(data)
        return
    fields = []
    for key, value in data.items():
        if key in ("lamports", "fee_lamports"):
            fields.append((key, lamports_cell(value)))
        elif key == "payments":
            fields.append((key, escape(_payments_cell(value))))
        elif key == "tokens":
            fields.append((key, escape("\n".join(
                f"{t['amount']} base units of {t['symbol'] or '?'} ({t['mint']})" for t in value
            ) or "none")))
        elif key == "message_base64":  # too long to read here; --json gives it whole
            fields.append(("message", _message_cell(value)))
        elif key == "releases":
            fields.append((key, escape(_releases_cell(value))))
        else:
            fields.append((key, escape(value)))
    print_fields(f"Transaction {data['id']}", fields)


def _releases_cell(releases: list[dict]) -> str:
    if not releases:
        return "none"
    return "\n".join(
        (lamports_cell(r["amount"]) if r["asset"] == "SOL" else f"{r['amount']} of mint {r['asset']}")
        + f" ({r['reason']}) at {r['released_at']} by {r['released_by']}"
        for r in releases
    )


@app.command("sync")
def tx_sync(
    ctx: typer.Context,
    wallet: Optional[str] = typer.Option(None, "--wallet", help="Only this wallet's transactions."),
    rpc_url: Optional[str] = typer.Option(None, "--rpc-url", help="Solana JSON-RPC endpoint. Default: the rpc_url setting."),
    rpc_timeout: float = bounded_option(
        10.0, "--rpc-timeout", help="Seconds to wait for each RPC answer (above 0, at most 3600).", low=0.0, high=3600.0, low_open=True
    ),
    commitment: str = typer.Option("confirmed", "--commitment", help="What confirmed means: confirmed or finalized (failures and expiry always need finalized)."),
    batch_size: int = bounded_option(
        256, "--batch-size", help="Signatures per getSignatureStatuses call (1 to 256).", low=1, high=256
    ),
    json_output: bool = JsonOption,
) -> None:
    """Settle every signed or submitted transaction the chain has proven confirmed, failed or expired.

    Safe from cron or a systemd timer (contrib/systemd/), and twice at once: an outcome is recorded
    once, under the wallet's lock. Failed and expired transactions give back to the daily window
    what they did not spend (docs/policy.md).

    Example: jarvis-wallet tx sync --json
    """
    from ..chain.sync import sync
    from ..solana.pubkey import normalize_pubkey
    from .chain import chain_session, check_commitment, tokens_given_back

    check_commitment(commitment)
    wallet_key = normalize_pubkey(wallet, what="wallet") if wallet else None
    with chain_session(ctx, rpc_url, rpc_timeout) as (db, rpc):
        report = sync(db, rpc, wallet=wallet_key, commitment=commitment, batch_size=batch_size)
    if json_output:
        print_json(report.to_dict())
        return
    typer.echo(
        f"Checked {report.checked}: {report.confirmed} confirmed, {report.failed} failed, {report.expired} expired, "
        f"{report.pending} not proven yet; {lamports_cell(report.released_lamports)}"
        f"{tokens_given_back(report.released_tokens)} given back to the daily window"
    )
    if report.no_expiry_height:
        say(
            f"Note: {report.no_expiry_height} unproven transaction(s) cannot be proven expired: their blockhash was not "
            "fetched through jarvis-wallet (`blockhash`, `build-transfer --blockhash auto`, `send`) or they use a "
            "durable nonce; they count in full until they land or age out"
        )


@app.command("mark")
def tx_mark(
    ctx: typer.Context,
    id_or_signature: str = typer.Argument(..., metavar="ID|SIGNATURE"),
    status: str = typer.Option(
        ..., "--status", help="submitted, confirmed or failed (forward moves only; expired only by `tx sync`, on proof)."
    ),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why it failed (recorded)."),
    json_output: bool = typer.Option(False, "--json", help="Print the transaction as `tx show --json` does."),
) -> None:
    """Move a signed transaction forward: signed -> submitted -> confirmed or failed.

    By hand nothing is given back to the daily window (a failed mark keeps counting in full);
    `tx sync` records outcomes with their proof and releases.

    Example: jarvis-wallet tx mark 42 --status confirmed
    """
    from ..db import session
    from ..ledger import mark_transaction, transaction_to_dict

    with session(database_url(ctx)):
        row = mark_transaction(id_or_signature, status=status, reason=reason)
        data = transaction_to_dict(row, notify_above_lamports=_notify_thresholds().get(row.wallet))
    if json_output:
        print_json(data)
    else:
        typer.echo(f"Transaction {row.id} is now {row.status}")
