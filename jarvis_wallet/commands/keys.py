"""`jarvis-wallet keygen` and `jarvis-wallet pubkey`."""

from __future__ import annotations

from pathlib import Path

import typer


def keygen(
    outfile: Path = typer.Option(..., "--outfile", "-o", help="Where to write the keypair (solana-keygen JSON, mode 0600)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
) -> None:
    """Generate a keypair file compatible with solana-keygen; prints the public key.

    Example: jarvis-wallet keygen --outfile ~/.config/jarvis-wallet/signer.json
    """
    from ..keys import generate_keypair_file

    keypair = generate_keypair_file(outfile, force=force)
    typer.echo(keypair.public_key_base58)


def pubkey(path: Path = typer.Argument(..., help="A keypair file (solana-keygen JSON, base58 secret key or seed).")) -> None:
    """Print the public key of a keypair file (refused if the file is readable by others).

    Example: jarvis-wallet pubkey ~/.config/jarvis-wallet/signer.json
    """
    from ..keys import read_public_key

    typer.echo(read_public_key(path))
