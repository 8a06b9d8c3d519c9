"""`jarvis-wallet balance`, `blockhash` and `send`: the CLI's side of the chain (the signer stays offline)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer

from ._common import MAX_TIMEOUT_SECONDS, bounded_option, database_url, print_json, say
from .sign import SecretFileOption, SocketOption, TimeoutOption, PurposeOption, _read_input

RpcUrlOption = typer.Option(
    None, "--rpc-url", help="Solana JSON-RPC endpoint (http or https). Default: the rpc_url setting (`config set rpc_url URL`)."
)
RpcTimeoutOption = bounded_option(
    10.0, "--rpc-timeout", help="Seconds to wait for each RPC answer (above 0, at most 3600).",
    low=0.0, high=MAX_TIMEOUT_SECONDS, low_open=True,
)
CommitmentOption = typer.Option(
    "confirmed", "--commitment", help="processed, confirmed or finalized: how settled an answer must be."
)


def check_commitment(commitment: str) -> str:
    from ..chain.rpc import COMMITMENTS
    from ..errors import InvalidInput

    if commitment not in COMMITMENTS:
        raise InvalidInput(f"invalid --commitment {commitment!r}: expected {', '.join(COMMITMENTS)}")
    return commitment


@contextlib.contextmanager
def chain_session(ctx: typer.Context, rpc_url: Optional[str], rpc_timeout: float, *, need_database: bool = True):
    """(database or None, RpcClient): the endpoint from --rpc-url, else the rpc_url setting.

    Without ``need_database`` an unusable database is a note, not an error, when --rpc-url
    says where to go: what would have been recorded is left to `tx sync`.
    """
    from ..chain.rpc import RpcClient, resolve_rpc_url
    from ..db import session
    from ..errors import DatabaseError
    from ..settings import get_setting

    with contextlib.ExitStack() as stack:
        try:
            db = stack.enter_context(session(database_url(ctx)))
            configured = get_setting("rpc_url")
        except DatabaseError as exc:
            if need_database or rpc_url is None:
                raise
            say(f"Note: nothing recorded in the database ({exc.message})")
            db, configured = None, None
        yield db, RpcClient(resolve_rpc_url(rpc_url, configured), timeout=rpc_timeout)


def balance(
    ctx: typer.Context,
    wallet: Optional[str] = typer.Option(None, "--wallet", help="Wallet public key (base58). Default: the configured wallet_public_key."),
    rpc_url: Optional[str] = RpcUrlOption,
    rpc_timeout: float = RpcTimeoutOption,
    commitment: str = CommitmentOption,
    json_output: bool = typer.Option(
        False, "--json", help="Print wallet, lamports, sol, endpoint, commitment and tokens (u64 amounts as decimal strings)."
    ),
) -> None:
    """Show a wallet's SOL balance, and its balance of each registered token (in the wallet's
    associated token account of the mint), as the endpoint sees them.

    Example: jarvis-wallet balance --wallet <PUBKEY> --json
    """
    from ..amounts import format_sol
    from ..chain.balances import token_balances
    from ._common import default_wallet, lamports_cell

    check_commitment(commitment)
    with chain_session(ctx, rpc_url, rpc_timeout) as (_, rpc):
        address = default_wallet(wallet)
        lamports = rpc.get_balance(address, commitment=commitment)
        tokens = token_balances(rpc, address, commitment=commitment)
    if json_output:
        print_json({"wallet": address, "lamports": lamports, "sol": format_sol(lamports).removesuffix(" SOL"),
                    "endpoint": rpc.label, "commitment": commitment, "tokens": tokens})
        return
    typer.echo(f"{address}: {lamports_cell(lamports)}")
    for token in tokens:
        held = f"{token['amount']} {token['symbol']} ({token['amount_base_units']} base units)"
        if not token["account_exists"]:
            held += f"; no associated token account {token['associated_account']} yet"
        typer.echo(f"  {held}")
        if token["decimals_on_chain"] is not None:
            say(f"Note: {token['symbol']} has {token['decimals_on_chain']} decimals on the chain but is registered with "
                f"{token['decimals']}: remove it and register it again with an endpoint")


def blockhash(
    ctx: typer.Context,
    rpc_url: Optional[str] = RpcUrlOption,
    rpc_timeout: float = RpcTimeoutOption,
    commitment: str = CommitmentOption,
    json_output: bool = typer.Option(False, "--json", help="Print blockhash, last_valid_block_height, slot."),
) -> None:
    """Fetch a recent blockhash (recorded with its last valid block height, so `tx sync` can
    prove a transaction built on it expired).

    Example: jarvis-wallet blockhash --json
    """
    from ..chain.blockhashes import remember

    check_commitment(commitment)
    with chain_session(ctx, rpc_url, rpc_timeout, need_database=False) as (db, rpc):
        latest = rpc.get_latest_blockhash(commitment=commitment)
        if db is not None:
            remember(latest)
    if json_output:
        print_json({"blockhash": latest.blockhash, "last_valid_block_height": latest.last_valid_block_height, "slot": latest.slot})
        return
    typer.echo(latest.blockhash)


def fetch_blockhash(ctx: typer.Context, rpc_url: Optional[str], rpc_timeout: float):
    """For `build-transfer --blockhash auto`: the latest blockhash, recorded where possible."""
    from ..chain.blockhashes import remember

    with chain_session(ctx, rpc_url, rpc_timeout, need_database=False) as (db, rpc):
        latest = rpc.get_latest_blockhash(commitment="confirmed")
        if db is not None:
            remember(latest)
    return latest


def endpoint_configured(ctx: typer.Context, rpc_url: Optional[str]) -> bool:
    """Whether --rpc-url is given or rpc_url is set (an unusable database: not configured)."""
    from ..db import session
    from ..errors import DatabaseError
    from ..settings import get_setting

    if rpc_url is not None:
        return True
    try:
        with session(database_url(ctx)):
            return get_setting("rpc_url") is not None
    except DatabaseError:
        return False


def send(
    ctx: typer.Context,
    source: str = typer.Argument(..., metavar="FILE|-", help="Base64 of a transaction or message; - reads stdin."),
    purpose: Optional[str] = PurposeOption,
    wait: bool = typer.Option(False, "--wait", help="Follow it to confirmed, failed or expired (exit 13 unless confirmed)."),
    skip_preflight: bool = typer.Option(False, "--skip-preflight", help="Submit without the endpoint's simulation."),
    commitment: str = CommitmentOption,
    wait_timeout: float = bounded_option(
        90.0, "--wait-timeout", help="With --wait: give up waiting after this many seconds (above 0, at most 3600).",
        low=0.0, high=MAX_TIMEOUT_SECONDS, low_open=True,
    ),
    rpc_url: Optional[str] = RpcUrlOption,
    rpc_timeout: float = RpcTimeoutOption,
    socket: Optional[Path] = SocketOption,
    secret_file: Optional[Path] = SecretFileOption,
    timeout: float = TimeoutOption,
    json_output: bool = typer.Option(False, "--json", help="Print signature, transaction_id, status, last_valid_block_height, ..."),
) -> None:
    """Sign through the signer, submit to the endpoint, and with --wait follow it to the end.

    The endpoint is asked first, so one that is down costs no signature. Recorded: submitted
    with the last valid block height of its blockhash, then confirmed, failed (with the on-chain
    error and the fee charged) or expired; a failed or expired one gives back to the daily window
    what it did not spend (docs/policy.md).

    Example: jarvis-wallet send tx.b64 --purpose "pay invoice 42" --wait
    """
    from ..chain.send import send_transaction
    from ..client import SignerClient, check_request
    from ..errors import TransactionNotConfirmed
    from ..protocol import OP_SIGN
    from ..solana.transaction import decode_base64_input

    import base64

    check_commitment(commitment)
    tx_bytes = decode_base64_input(_read_input(source, what="transaction file"))
    check_request(OP_SIGN, tx_base64=base64.b64encode(tx_bytes).decode("ascii"), purpose=purpose)
    with chain_session(ctx, rpc_url, rpc_timeout, need_database=False) as (db, rpc):
        with SignerClient(socket, secret_file=secret_file, timeout=timeout) as client, _progress(json_output) as progress:
            client.ping()  # no signer is exit 6 before the endpoint is asked anything
            result = send_transaction(
                client, rpc, tx_bytes, purpose=purpose, skip_preflight=skip_preflight, wait=wait,
                commitment=commitment, timeout=wait_timeout, database=db, on_progress=progress,
            )
    data = result.to_dict()
    if wait and result.status != "confirmed":
        raise TransactionNotConfirmed(_verdict(result), details=data)
    if json_output:
        print_json(data)
        return
    if result.duplicate:
        say(f"Note: already signed (transaction {result.transaction_id}): nothing more was counted")
    say(_verdict(result))
    typer.echo(result.signature)


def tokens_given_back(released: dict) -> str:
    """`` and 10000000 base units of <mint>`` per mint released (amounts as decimal strings or ints)."""
    return "".join(f" and {amount} base units of {mint}" for mint, amount in sorted(released.items()))


def _verdict(result) -> str:
    from ..amounts import format_sol

    where = f"transaction {result.transaction_id}"
    back = f"{format_sol(result.released_lamports)}{tokens_given_back(result.released_tokens)} given back to the daily window"
    if result.status == "confirmed":
        return f"{where} confirmed in slot {result.slot}"
    if result.status == "failed":
        return f"{where} failed on chain ({result.error}); fee charged {result.chain_fee_lamports} lamports, {back}"
    if result.status == "expired":
        return f"{where} expired: it never landed; {back}"
    return (f"{where} submitted; not proven yet (see `jarvis-wallet tx sync`)"
            + (f", last valid block height {result.last_valid_block_height}" if result.last_valid_block_height else ""))


@contextlib.contextmanager
def _progress(quiet: bool):
    """A spinner on stderr saying where the transaction stands; nothing with --json."""
    if quiet:
        yield None
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("submitting…") as status:
        yield lambda text: status.update(f"waiting: {text}")
