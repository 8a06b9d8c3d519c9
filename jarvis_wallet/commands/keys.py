"""`jarvis-wallet keygen` and `jarvis-wallet pubkey`."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import JsonOption, print_json


def keygen(
    outfile: Path = typer.Option(..., "--outfile", "-o", help="Where to write the keypair (solana-keygen JSON, mode 0600)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
    json_output: bool = JsonOption,
) -> None:
    """Generate a keypair file compatible with solana-keygen; prints the public key.

    Example: jarvis-wallet keygen --outfile ~/.config/jarvis-wallet/signer.json
    """
    from ..keys import generate_keypair_file

    keypair = generate_keypair_file(outfile, force=force)
    if json_output:
        print_json({"public_key": keypair.public_key_base58, "path": str(outfile)})
    else:
        typer.echo(keypair.public_key_base58)


def pubkey(
    path: Path = typer.Argument(..., help="A keypair file (solana-keygen JSON, base58 secret key or seed)."),
    json_output: bool = JsonOption,
) -> None:
    """Print the public key of a keypair file (refused if the file is readable by others).

    Example: jarvis-wallet pubkey ~/.config/jarvis-wallet/signer.json
    """
    from ..keys import read_public_key

    public_key = read_public_key(path)
    if json_output:
        print_json({"public_key": public_key, "path": str(path)})
    else:
        typer.echo(public_key)
