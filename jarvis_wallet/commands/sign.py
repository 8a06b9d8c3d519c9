"""`jarvis-wallet sign` and `jarvis-wallet sign-message`: ask the signer, print the result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import OutputNotWritten
from ._common import MAX_TIMEOUT_SECONDS, bounded_option, print_json, say

SocketOption = typer.Option(None, "--socket", help="Signer socket. Default: $SIGNER_SOCKET_PATH, else the runtime default.")
SecretFileOption = typer.Option(
    None, "--secret-file",
    help="Shared secret FILE (0600). Default: $SIGNER_SHARED_SECRET, which holds the secret itself (not a path), else the `secret` file beside the socket.",
)
PurposeOption = typer.Option(None, "--purpose", help="Why: recorded with the transaction.")
TimeoutOption = bounded_option(
    10.0, "--timeout", help="Seconds to wait for the signer (above 0, at most 3600).", low=0.0, high=MAX_TIMEOUT_SECONDS, low_open=True
)


#: Most a transaction file or message may hold: base64 of the largest transaction, wrapped, is
#: under 2 KiB; this refuses /dev/zero or a wrong file instead of reading it all.
MAX_INPUT_BYTES = 64 * 1024


def _read_input(source: str, *, what: str) -> str:
    from ..errors import InvalidInput

    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with open(source, "rb") as handle:
                data = handle.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise InvalidInput(f"{what} {source} is larger than {MAX_INPUT_BYTES // 1024} KiB")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise InvalidInput(f"cannot read {what} {source}: {reason}") from None


def sign(
    source: str = typer.Argument(..., metavar="FILE|-", help="Base64 of a transaction or message; - reads stdin."),
    purpose: Optional[str] = PurposeOption,
    socket: Optional[Path] = SocketOption,
    secret_file: Optional[Path] = SecretFileOption,
    out: Optional[Path] = typer.Option(None, "--out", help="Write the signed transaction (base64) here."),
    timeout: float = TimeoutOption,
    wait_approval: bool = typer.Option(
        False, "--wait-approval",
        help="If the transaction is held for approval, wait for the operator, then sign it again: the output of "
        "--rebuild, else FILE read again (rebuilt meanwhile with a fresh blockhash), else the same bytes.",
    ),
    approval_timeout: float = bounded_option(
        900.0, "--approval-timeout", low=0.0, high=7 * 86400.0, low_open=True,
        help="With --wait-approval: seconds to wait for the operator (above 0, at most 604800).",
    ),
    rebuild: Optional[str] = typer.Option(
        None, "--rebuild",
        help="With --wait-approval: a command (shell words, no shell) that prints the same payment's transaction, "
        "base64, with a fresh blockhash; run once approved.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print signature, signed_transaction, request_id, wallet, lamports, ..."),
) -> None:
    """Ask the signer to sign a transaction; print the base58 signature.

    A refusal prints the reason and exits 5 (approval_required: held for the operator, with its
    approval id); an unreachable signer exits 6; bad input exits 2; signed but --out not written
    exits 10 (the signature is printed all the same).

    Example: jarvis-wallet sign tx.b64 --purpose "pay invoice 42" --out signed.b64 --wait-approval
    """
    import base64

    from ..client import SignerClient, check_request
    from ..errors import ApprovalRequired, InvalidInput, PolicyDenied
    from ..protocol import OP_SIGN
    from ..solana.base64_text import decode_base64_input

    if rebuild is not None and not wait_approval:
        raise InvalidInput("--rebuild is used only with --wait-approval")
    tx_bytes = decode_base64_input(_read_input(source, what="transaction file"))
    check_request(OP_SIGN, tx_base64=base64.b64encode(tx_bytes).decode("ascii"), purpose=purpose)
    if out is not None:
        _check_writable(out)  # before signing: a released signature must not be lost to a bad path
    with SignerClient(socket, secret_file=secret_file, timeout=timeout) as client:
        client.ping()  # no signer is exit 6, even when there is no secret file to find yet
        try:
            try:
                signed = client.sign_transaction(tx_bytes, purpose=purpose)
            except ApprovalRequired as held:
                if not wait_approval:
                    raise
                say(
                    f"Held for approval: request {held.approval_id}, until {held.expires_at}; waiting for "
                    f"`jarvis-wallet approvals approve {held.approval_id}` (up to {approval_timeout:g} s)"
                )
                client.wait_for_approval(held.approval_id, approval_timeout)
                tx_bytes = _transaction_after_approval(source, rebuild, tx_bytes)
                say(f"Approved: request {held.approval_id}; signing")
                signed = client.sign_transaction(tx_bytes, purpose=purpose)
        except PolicyDenied as exc:
            exc.details.update(_refused_spend(client, tx_bytes))
            raise
    if signed.duplicate:
        when = f" at {signed.signed_at}" if signed.signed_at else ""
        say(
            f"Note: already signed{when} (transaction {signed.transaction_id}): this is the recorded signature, "
            f"and nothing more was counted against the limits; see `jarvis-wallet tx show {signed.transaction_id}`"
        )
    deliver_signed_transaction(signed, out=out, json_output=json_output)
    if not json_output:
        typer.echo(signed.signature)


def _transaction_after_approval(source: str, rebuild: Optional[str], previous: bytes) -> bytes:
    """What to sign once approved: --rebuild's output, else FILE read again, else the same bytes.

    The approval covers the payment, not the blockhash: a rebuilt transaction of the same payment
    with a fresh blockhash is signed; one that differs in anything else is held again.
    """
    from ..solana.base64_text import decode_base64_input

    if rebuild is not None:
        import subprocess

        from ..approvals import parse_notify_command
        from ..errors import InvalidInput

        try:
            result = subprocess.run(parse_notify_command(rebuild), capture_output=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InvalidInput(f"--rebuild could not run: {getattr(exc, 'strerror', None) or type(exc).__name__}") from None
        if result.returncode != 0:
            raise InvalidInput(f"--rebuild exited {result.returncode}; nothing was signed after the approval")
        if len(result.stdout) > MAX_INPUT_BYTES:
            raise InvalidInput(f"--rebuild printed more than {MAX_INPUT_BYTES // 1024} KiB")
        try:
            text = result.stdout.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("--rebuild printed something that is not UTF-8 text") from None
        return decode_base64_input(text)
    if source != "-":
        return decode_base64_input(_read_input(source, what="transaction file"))
    return previous


def deliver_signed_transaction(signed, *, out: Optional[Path], json_output: bool, extra: dict | None = None) -> dict:
    """Write a signed transaction to ``out`` and, with --json, print its fields; return them.

    Once signed, the spend is counted: a failure to write ``out`` must not lose the signature,
    so it goes to stdout instead and the command exits 10 (OutputNotWritten).
    """
    import base64

    signed_b64 = base64.b64encode(signed.signed_transaction).decode("ascii")
    result = {
        "signature": signed.signature,
        "signed_transaction": signed_b64,
        "request_id": signed.request_id,
        "wallet": signed.wallet,
        "lamports": signed.lamports,
        "fee_lamports": signed.fee_lamports,
        "transaction_id": signed.transaction_id,
        "duplicate": signed.duplicate,
        # Base units as decimal strings (a u64 is above what JSON readers keep exact).
        "tokens": [{"mint": t.mint, "symbol": t.symbol, "amount": str(t.amount)} for t in signed.tokens],
        **(extra or {}),
    }
    if out is not None:
        try:
            Path(out).write_text(signed_b64 + "\n")
        except OSError as exc:
            if not json_output:
                typer.echo(signed.signature)
                typer.echo(signed_b64)
            raise OutputNotWritten(
                f"signed (transaction {signed.transaction_id}), but cannot write --out {out}: "
                f"{exc.strerror or type(exc).__name__}; the signature and the signed transaction are on stdout, "
                "and signing the same transaction again returns them without counting it twice",
                details=result,
            ) from None
    if json_output:
        print_json(result)
    return result


def _refused_spend(client, tx_bytes: bytes) -> dict:
    """For a --json refusal: the wallet and what this transaction spends from it, counted offline
    by the same parser the signer uses (the limits themselves live in the signer's database)."""
    from ..errors import JarvisWalletError
    from ..solana import describe, parse_transaction_input
    from ..solana.pubkey import decode_pubkey

    try:
        wallet = client.pubkey()
        report = describe(parse_transaction_input(tx_bytes), wallet=decode_pubkey(wallet, what="wallet"))
    except JarvisWalletError:
        return {}
    return {"wallet": wallet, "lamports": report["spend_lamports"], "fee_lamports": report["fee_lamports"]}


def sign_message(
    text: Optional[str] = typer.Argument(None, help="The text to sign."),
    file: Optional[Path] = typer.Option(None, "--file", help="Read the text from a file instead."),
    purpose: Optional[str] = PurposeOption,
    socket: Optional[Path] = SocketOption,
    secret_file: Optional[Path] = SecretFileOption,
    timeout: float = TimeoutOption,
    json_output: bool = typer.Option(False, "--json", help="Print signature, signed_message (base64), request_id, wallet."),
) -> None:
    """Sign a text as a Solana off-chain message; print the base58 signature.

    Example: jarvis-wallet sign-message "I control this wallet"
    """
    import base64

    from ..client import SignerClient, check_request
    from ..errors import InvalidInput
    from ..protocol import OP_SIGN_MESSAGE

    if text is None and file is None:
        raise InvalidInput("give the text to sign, or --file PATH")
    if text is not None and file is not None:
        raise InvalidInput("give the text or --file, not both")
    if file is not None:
        text = _read_input(str(file), what="message file")
    check_request(OP_SIGN_MESSAGE, message=text, purpose=purpose)
    with SignerClient(socket, secret_file=secret_file, timeout=timeout) as client:
        client.ping()  # no signer is exit 6, even when there is no secret file to find yet
        signed = client.sign_message(text, purpose=purpose)
    if json_output:
        print_json(
            {
                "signature": signed.signature,
                "signed_message": base64.b64encode(signed.signed_message).decode("ascii"),
                "request_id": signed.request_id,
                "wallet": signed.wallet,
                "transaction_id": signed.transaction_id,
            }
        )
    else:
        typer.echo(signed.signature)


def _check_writable(path: Path) -> None:
    """Open --out for writing now, so that a path the write would fail on is refused before signing.

    Permission bits are not enough (root passes os.access on /proc and /sys files it cannot
    write). A file created by the check is removed again; an existing one is left untouched.
    O_NONBLOCK: a FIFO without a reader is refused instead of blocking.
    """
    import os

    from ..errors import InvalidInput

    existed = os.path.lexists(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise InvalidInput(f"cannot write --out {path}: {exc.strerror or type(exc).__name__}") from None
    os.close(fd)
    if not existed:
        os.unlink(path)
