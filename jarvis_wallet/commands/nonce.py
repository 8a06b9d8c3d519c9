"""`jarvis-wallet nonce advance`: void every durable-nonce transaction signed against a nonce."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import say
from .sign import PurposeOption, SecretFileOption, SocketOption, TimeoutOption, _check_writable, deliver_signed_transaction

app = typer.Typer(help="Durable nonces: revoke the transactions signed against one.", no_args_is_help=True)


@app.command("advance")
def advance(
    nonce_account: str = typer.Argument(..., help="The nonce account (base58); the signer's wallet must be its authority."),
    blockhash: str = typer.Option(..., "--blockhash", help="A recent blockhash (base58)."),
    purpose: Optional[str] = PurposeOption,
    socket: Optional[Path] = SocketOption,
    secret_file: Optional[Path] = SecretFileOption,
    out: Optional[Path] = typer.Option(None, "--out", help="Write the signed transaction (base64) here instead of stdout."),
    timeout: float = TimeoutOption,
    json_output: bool = typer.Option(False, "--json", help="Print signature, signed_transaction, nonce_account, lamports, ..."),
) -> None:
    """Sign, through the signer and its policy, a transaction that advances NONCE_ACCOUNT.

    Once it lands, no transaction signed against the nonce's current value can execute.

    Submit the signed transaction (printed as base64) before the blockhash expires.

    Example: jarvis-wallet nonce advance <NONCE_ACCOUNT> --blockhash <HASH> --out advance.b64
    """
    from ..client import SignerClient
    from ..nonce import sign_nonce_advance

    if out is not None:
        _check_writable(out)
    with SignerClient(socket, secret_file=secret_file, timeout=timeout) as client:
        client.ping()
        signed = sign_nonce_advance(client, nonce_account=nonce_account, recent_blockhash=blockhash, purpose=purpose)
    result = deliver_signed_transaction(signed, out=out, json_output=json_output, extra={"nonce_account": nonce_account})
    if json_output:
        return
    if out is None:
        typer.echo(result["signed_transaction"])
    say(
        f"Signed the advance of nonce account {nonce_account} (signature {signed.signature}). "
        "Submit it before the blockhash expires; once it lands, every transaction signed against "
        "the nonce's current value is void."
    )
