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
    from ..preview import would_decide

    try:
        with session(database_url(ctx)):
            return would_decide(parsed, wallet)
    except DatabaseError as exc:
        say(f"Note: no decision shown: {exc.message}")
        return None


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
    from_key: str = typer.Option(..., "--from", help="Sender and fee payer (base58): the wallet."),
    to_key: str = typer.Option(..., "--to", help="Recipient (base58); with --token, the owner's wallet, not a token account."),
    amount: str = typer.Option(
        ..., "--amount",
        help="Lamports (1500000) or SOL (1.5SOL); with --token, token units (12.5, at most the mint's decimals) or base units (12500000base).",
    ),
    blockhash: Optional[str] = typer.Option(
        None, "--blockhash",
        help="A recent blockhash (base58), or auto: fetch one from the endpoint (recorded with its last valid "
        "block height). Default: auto when an endpoint is configured (--rpc-url or the rpc_url setting).",
    ),
    rpc_url: Optional[str] = typer.Option(None, "--rpc-url", help="Endpoint for --blockhash auto. Default: the rpc_url setting."),
    token: Optional[str] = typer.Option(
        None, "--token", help="Pay this registered token (symbol or mint, see `tokens list`) with TransferChecked instead of SOL."
    ),
    no_create: bool = typer.Option(
        False, "--no-create", help="With --token: do not create the recipient's associated token account (it must exist)."
    ),
    allow_owner_off_curve: bool = typer.Option(
        False, "--allow-owner-off-curve", help="With --token: accept a recipient that is a program address (a PDA), not a wallet."
    ),
    v0: bool = typer.Option(False, "--v0", help="Build a versioned (v0) message instead of a legacy one."),
    memo: Optional[str] = typer.Option(None, "--memo", help="Add a Memo instruction with this text."),
    compute_unit_price: Optional[int] = bounded_option(
        None, "--compute-unit-price", help="Priority fee in micro-lamports per compute unit (a u64).", low=0, high=2**64 - 1
    ),
    compute_unit_limit: Optional[int] = bounded_option(
        None, "--compute-unit-limit", help="Compute unit limit (a u32).", low=0, high=2**32 - 1
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Print message_base64, message_bytes, blockhash and last_valid_block_height (auto only); with --token also token (symbol, mint, program, decimals, amounts, token accounts)."
    ),
) -> None:
    """Build a SOL or token transfer message and print it as base64, ready for `sign` or `inspect`.

    With --token, the message creates the recipient's associated token account if it is missing
    (CreateIdempotent, rent paid by the sender) and pays with TransferChecked from the sender's
    associated token account, under the mint's own program (Token or Token-2022).

    Example: jarvis-wallet build-transfer --from <PUBKEY> --to <PUBKEY> --amount 0.01SOL --blockhash auto

    Example: jarvis-wallet build-transfer --from <WALLET> --to <OWNER> --token USDC --amount 12.5 --blockhash <HASH>
    """
    import base64

    from ..amounts import parse_amount
    from ..errors import InvalidInput
    from ..solana import build_transfer_message
    from ..solana.pubkey import decode_pubkey

    from .chain import endpoint_configured, fetch_blockhash

    sender = decode_pubkey(from_key, what="--from key")
    recipient = decode_pubkey(to_key, what="--to key")
    last_valid = None
    if blockhash is None and not endpoint_configured(ctx, rpc_url):
        raise InvalidInput("give --blockhash HASH, or --blockhash auto with an endpoint (--rpc-url, or `config set rpc_url URL`)")
    if blockhash is None or blockhash == "auto":
        latest = fetch_blockhash(ctx, rpc_url, 10.0)
        blockhash, last_valid = latest.blockhash, latest.last_valid_block_height
    recent_blockhash = decode_pubkey(blockhash, what="--blockhash")
    budget = {"v0": v0, "compute_unit_price": compute_unit_price, "compute_unit_limit": compute_unit_limit, "memo": memo}
    token_report = None
    if token is not None:
        message, token_report = _token_transfer(
            ctx, token, sender=sender, recipient=recipient, amount=amount, recent_blockhash=recent_blockhash,
            create=not no_create, allow_owner_off_curve=allow_owner_off_curve, **budget,
        )
    else:
        for flag, given in (("--no-create", no_create), ("--allow-owner-off-curve", allow_owner_off_curve)):
            if given:
                raise InvalidInput(f"{flag} applies only to token transfers (--token)")
        message = build_transfer_message(
            from_pubkey=sender, to_pubkey=recipient, lamports=parse_amount(amount, what="--amount"),
            recent_blockhash=recent_blockhash, **budget,
        )
    encoded = base64.b64encode(message).decode("ascii")
    if json_output:
        report: dict = {"message_base64": encoded, "message_bytes": len(message), "blockhash": blockhash,
                        "last_valid_block_height": last_valid}
        if token_report is not None:
            report["token"] = token_report
        print_json(report)
    else:
        typer.echo(encoded)


def _token_transfer(ctx, token: str, *, sender: bytes, recipient: bytes, amount: str, **options) -> tuple[bytes, dict]:
    """The message paying a registered token, and what it pays (for --json)."""
    from ..amounts import format_token_amount, parse_token_amount
    from ..solana import associated_token_address, build_token_transfer_message
    from ..solana.build import TOKEN_PROGRAMS
    from ..solana.pubkey import decode_pubkey, encode_pubkey

    entry = _registered_token(ctx, token)
    program_ids = {name: program_id for program_id, name in TOKEN_PROGRAMS.items()}
    mint, program = decode_pubkey(entry.mint, what="registered mint"), program_ids[entry.program]
    base_units = parse_token_amount(amount, entry.decimals, symbol=entry.symbol, what="--amount")
    message = build_token_transfer_message(
        wallet=sender, owner=recipient, mint=mint, decimals=entry.decimals, token_program=program,
        amount_base_units=base_units, **options,
    )
    return message, {
        "symbol": entry.symbol,
        "mint": entry.mint,
        "program": entry.program,
        "decimals": entry.decimals,
        "amount_base_units": str(base_units),  # u64: a decimal string, as everywhere in --json
        "amount": format_token_amount(base_units, entry.decimals),
        "source_token_account": encode_pubkey(associated_token_address(sender, mint, program)),
        "destination_token_account": encode_pubkey(associated_token_address(recipient, mint, program)),
        "creates_destination": options["create"],
    }


def _registered_token(ctx, token: str):
    """The registry's entry for a symbol or mint: ``.symbol .mint .decimals .program``."""
    from ..db import session
    from ..tokens import get_token

    with session(database_url(ctx)):
        return get_token(token)
