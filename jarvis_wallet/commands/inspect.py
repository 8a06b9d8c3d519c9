"""`jarvis-wallet inspect` and `jarvis-wallet build-transfer`: offline tools for transactions."""

from __future__ import annotations

from typing import Optional

import typer

from ._common import bounded_option, database_url, escape, lamports_cell, print_fields, print_json, say
from .sign import _read_input


def inspect(
    ctx: typer.Context,
    source: str = typer.Argument(..., metavar="FILE|-", help="Base64 of a transaction or message; - reads stdin."),
    wallet: Optional[str] = typer.Option(
        None, "--wallet", help="Count the spend of this wallet, and show what the signer would decide under its limits."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print version, fee_payer, signers, programs, instructions, fee_lamports, spend_lamports, ..."),
) -> None:
    """Decode a transaction or message offline: instructions in plain words, fees and spend.

    Example: jarvis-wallet inspect tx.b64 --wallet <PUBKEY>
    """
    from ..solana import decode_base64_input, describe, parse_transaction_input
    from ..solana.pubkey import decode_pubkey

    parsed = parse_transaction_input(decode_base64_input(_read_input(source, what="transaction file")))
    wallet_key = decode_pubkey(wallet, what="wallet") if wallet else None
    # Symbols and registered decimals come from the database, read only with --wallet (as the decision is).
    registry = _registry(ctx, parsed) if wallet_key is not None else {}
    report = describe(parsed, wallet=wallet_key, registry=registry)
    if wallet_key is not None:
        report["decision"] = _would_decide(ctx, parsed, wallet)
    if json_output:
        print_json(report)
        return
    _render(report)


def _registry(ctx, parsed) -> dict:
    """The mint registry, when the transaction has token instructions and the database is usable."""
    from ..solana.token_spend import GOVERNED_PROGRAM_IDS

    if not any(message_program in GOVERNED_PROGRAM_IDS for message_program in parsed.message.account_keys):
        return {}
    from ..db import session
    from ..errors import DatabaseError
    from ..tokens import registry_snapshot

    try:
        with session(database_url(ctx)):
            return registry_snapshot()
    except DatabaseError:
        return {}  # the decision's note says why


def _would_decide(ctx, parsed, wallet: str) -> dict | None:
    """The signer's decision under the current limits, or None (with a note) if the database is not usable."""
    from ..db import session
    from ..errors import DatabaseError
    from ..ledger import spent_in_window
    from ..limits import get_limits
    from ..models import utc_now
    from ..policy import DEFAULT_PROGRAM_ALLOWLIST, Limits, decide
    from ..settings import get_setting
    from ..tokens import token_policy_inputs

    try:
        with session(database_url(ctx)):
            row = get_limits(wallet)
            limits = None if row is None else Limits(row.per_tx_lamports, row.daily_lamports)
            spent = spent_in_window(row.wallet, now=utc_now()) if row else 0
            extra_programs = [p for p in (get_setting("allowed_programs") or "").split(",") if p]
            destinations = get_setting("allowed_destinations")
            registry, token_limits, token_spent = token_policy_inputs(wallet, now=utc_now())
            decision = decide(
                message=parsed, wallet=wallet, limits=limits, spent_24h_lamports=spent,
                program_allowlist=set(DEFAULT_PROGRAM_ALLOWLIST) | set(extra_programs),
                destination_allowlist=None if destinations is None else [d for d in destinations.split(",") if d],
                durable_nonce_accounts=[n for n in (get_setting("durable_nonce_accounts") or "").split(",") if n],
                token_registry=registry, token_limits=token_limits, token_spent_24h=token_spent,
            )
    except DatabaseError as exc:
        say(f"Note: no decision shown: {exc.message}")
        return None
    return {"allowed": decision.allowed, "reason": decision.reason, "message": decision.message, "spent_24h_lamports": spent}


def _render(report: dict) -> None:
    fields = [
        ("version", str(report["version"])),
        ("fee payer", report["fee_payer"]),
        ("signers", "\n".join(report["signers"])),
        ("programs", "\n".join(report["programs"])),
        ("instructions", "\n".join(f"{i + 1}. {escape(ins['description'])}" for i, ins in enumerate(report["instructions"]))),
        ("network fee", lamports_cell(report["fee_lamports"])),
        ("wallet", report["wallet"]),
        ("spend of wallet", lamports_cell(report["spend_lamports"])),
    ]
    for move in report["token_movements"]:
        what = f"{move['amount']} {move['symbol'] or ''}".strip() if move["amount"] is not None else f"{move['amount_base_units']} base units"
        mint = move["mint"] or "mint not named (plain Transfer)"
        to = move["destination"] + (f" (owner {move['destination_owner']})" if move["destination_owner"] else "")
        fields.append(("token movement", escape(f"{what} of {mint} from {move['source']} to {to}")))
    if report["token_spend"]:
        fields.append(("token spend of wallet", ", ".join(f"{t['amount']} {t['symbol']}" for t in report["token_spend"])))
    decision = report.get("decision")
    if decision is not None:
        verdict = "would sign" if decision["allowed"] else f"would refuse ({decision['reason']})"
        fields.append(("signer decision", f"{verdict}: {escape(decision['message'])}"))
    print_fields("Transaction", fields)


def build_transfer(
    ctx: typer.Context,
    from_key: str = typer.Option(..., "--from", help="Sender and fee payer (base58)."),
    to_key: str = typer.Option(..., "--to", help="Recipient (base58)."),
    amount: str = typer.Option(..., "--amount", help="Lamports (1500000) or SOL (1.5SOL)."),
    blockhash: Optional[str] = typer.Option(
        None, "--blockhash",
        help="A recent blockhash (base58), or auto: fetch one from the endpoint (recorded with its last valid "
        "block height). Default: auto when an endpoint is configured (--rpc-url or the rpc_url setting).",
    ),
    rpc_url: Optional[str] = typer.Option(None, "--rpc-url", help="Endpoint for --blockhash auto. Default: the rpc_url setting."),
    v0: bool = typer.Option(False, "--v0", help="Build a versioned (v0) message instead of a legacy one."),
    memo: Optional[str] = typer.Option(None, "--memo", help="Add a Memo instruction with this text."),
    compute_unit_price: Optional[int] = bounded_option(
        None, "--compute-unit-price", help="Priority fee in micro-lamports per compute unit (a u64).", low=0, high=2**64 - 1
    ),
    compute_unit_limit: Optional[int] = bounded_option(
        None, "--compute-unit-limit", help="Compute unit limit (a u32).", low=0, high=2**32 - 1
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Print message_base64, its length in bytes, blockhash and last_valid_block_height (auto only)."
    ),
) -> None:
    """Build a System transfer message and print it as base64, ready for `sign` or `inspect`.

    Example: jarvis-wallet build-transfer --from <PUBKEY> --to <PUBKEY> --amount 0.01SOL --blockhash auto
    """
    import base64

    from ..amounts import parse_amount
    from ..errors import InvalidInput
    from ..solana import build_transfer_message
    from ..solana.pubkey import decode_pubkey
    from .chain import endpoint_configured, fetch_blockhash

    last_valid = None
    if blockhash is None and not endpoint_configured(ctx, rpc_url):
        raise InvalidInput("give --blockhash HASH, or --blockhash auto with an endpoint (--rpc-url, or `config set rpc_url URL`)")
    lamports = parse_amount(amount, what="--amount")
    if blockhash is None or blockhash == "auto":
        latest = fetch_blockhash(ctx, rpc_url, 10.0)
        blockhash, last_valid = latest.blockhash, latest.last_valid_block_height

    message = build_transfer_message(
        from_pubkey=decode_pubkey(from_key, what="--from key"),
        to_pubkey=decode_pubkey(to_key, what="--to key"),
        lamports=lamports,
        recent_blockhash=decode_pubkey(blockhash, what="--blockhash"),
        v0=v0,
        compute_unit_price=compute_unit_price,
        compute_unit_limit=compute_unit_limit,
        memo=memo,
    )
    encoded = base64.b64encode(message).decode("ascii")
    if json_output:
        print_json({"message_base64": encoded, "message_bytes": len(message), "blockhash": blockhash,
                    "last_valid_block_height": last_valid})
    else:
        typer.echo(encoded)
