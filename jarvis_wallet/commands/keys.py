"""`jarvis-wallet keygen`, `jarvis-wallet pubkey` and `jarvis-wallet keys encrypt|decrypt`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer

from ._common import JsonOption, bounded_option, print_json, say

app = typer.Typer(help="Encrypted keystores: encrypt a keypair file, decrypt one back.", no_args_is_help=True)

# A descriptor number: what the kernel allows a process at most, comfortably.
MAX_FD = 1_048_576
PassphraseFdOption = bounded_option(
    None, "--passphrase-fd", low=0, high=MAX_FD,
    help="Read the keystore passphrase from this file descriptor (to EOF), e.g. --passphrase-fd 3 3<FILE.",
)
PassphraseCredentialOption = typer.Option(
    None, "--passphrase-credential",
    help="Read the passphrase from this systemd credential ($CREDENTIALS_DIRECTORY/NAME). "
    "Default: jarvis-wallet-passphrase when that credential exists, else a prompt on the terminal.",
)
KdfOption = typer.Option(
    "moderate", "--kdf",
    help="argon2id strength: interactive (64 MiB), moderate (256 MiB) or sensitive (1 GiB, slow).",
)


@contextlib.contextmanager
def _passphrase(fd, credential, *, confirm: bool, prompt: str = "Keystore passphrase: "):
    """The passphrase for the block, its bytes wiped after."""
    from ..passphrase_input import read_passphrase

    passphrase = read_passphrase(fd=fd, credential=credential, prompt=prompt, confirm=confirm)
    try:
        yield passphrase
    finally:
        passphrase.wipe()


def _strength(kdf: str) -> str:
    from ..errors import InvalidInput
    from ..keystore import KDF_STRENGTHS

    if kdf not in KDF_STRENGTHS:
        raise InvalidInput(f"--kdf {kdf!r}: one of {', '.join(KDF_STRENGTHS)}")
    return kdf


def keygen(
    outfile: Path = typer.Option(..., "--outfile", "-o", help="Where to write the keypair (solana-keygen JSON, mode 0600)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
    encrypt: bool = typer.Option(False, "--encrypt", help="Write an encrypted keystore instead (asks for a passphrase)."),
    passphrase_fd: Optional[int] = PassphraseFdOption,
    passphrase_credential: Optional[str] = PassphraseCredentialOption,
    kdf: str = KdfOption,
    json_output: bool = JsonOption,
) -> None:
    """Generate a keypair file compatible with solana-keygen, or an encrypted keystore; prints the public key.

    With --encrypt the key is never written in plaintext: it goes straight into a keystore
    (docs/operations.md describes the format).

    Example: jarvis-wallet keygen --outfile ~/.config/jarvis-wallet/signer.json
    """
    if encrypt:
        from ..keys import Keypair
        from ..keystore import write_keystore

        strength = _strength(kdf)
        keypair = Keypair.generate()
        with _passphrase(passphrase_fd, passphrase_credential, confirm=True) as passphrase:
            write_keystore(outfile, keypair, passphrase, strength=strength, force=force)
    else:
        from ..keys import generate_keypair_file

        keypair = generate_keypair_file(outfile, force=force)
    if json_output:
        print_json({"public_key": keypair.public_key_base58, "path": str(outfile), "encrypted": encrypt})
    else:
        typer.echo(keypair.public_key_base58)


def pubkey(
    path: Path = typer.Argument(..., help="A keypair file (solana-keygen JSON, base58 secret key or seed) or a keystore."),
    json_output: bool = JsonOption,
) -> None:
    """Print the public key of a keypair file or keystore (refused if the file is readable by others).

    A keystore's public key is stored in clear: no passphrase is needed.

    Example: jarvis-wallet pubkey ~/.config/jarvis-wallet/signer.json
    """
    from ..keys import read_public_key
    from ..keystore import read_keystore_if_any

    header = read_keystore_if_any(path)
    public_key = header.public_key if header is not None else read_public_key(path)
    if json_output:
        print_json({"public_key": public_key, "path": str(path), "encrypted": header is not None})
    else:
        typer.echo(public_key)


@app.command("encrypt")
def keys_encrypt(
    keypair_file: Path = typer.Argument(..., help="A plaintext keypair file (solana-keygen JSON, base58 or seed)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the keystore (mode 0600)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing keystore file."),
    passphrase_fd: Optional[int] = PassphraseFdOption,
    passphrase_credential: Optional[str] = PassphraseCredentialOption,
    kdf: str = KdfOption,
    json_output: bool = JsonOption,
) -> None:
    """Encrypt a keypair file into a keystore (the plaintext file is left for you to remove).

    Example: jarvis-wallet keys encrypt signer.json --out signer.keystore
    """
    from ..keystore import encrypt_keypair_file

    strength = _strength(kdf)
    with _passphrase(passphrase_fd, passphrase_credential, confirm=True) as passphrase:
        keypair = encrypt_keypair_file(keypair_file, out, passphrase, strength=strength, force=force)
    if json_output:
        print_json({"public_key": keypair.public_key_base58, "path": str(out), "source": str(keypair_file)})
    else:
        typer.echo(keypair.public_key_base58)
        say(f"Wrote keystore {out}; the plaintext {keypair_file} is still there: shred it once the keystore works")


@app.command("decrypt")
def keys_decrypt(
    keystore_file: Path = typer.Argument(..., help="A keystore written by `keygen --encrypt` or `keys encrypt`."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the plaintext keypair (solana-keygen JSON, 0600)."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation before writing the key in plaintext."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
    passphrase_fd: Optional[int] = PassphraseFdOption,
    passphrase_credential: Optional[str] = PassphraseCredentialOption,
    json_output: bool = JsonOption,
) -> None:
    """Export a keystore back to a plaintext solana-keygen file, after a confirmation.

    Example: jarvis-wallet keys decrypt signer.keystore --out signer.json
    """
    from ..errors import InvalidInput
    from ..keystore import decrypt_keystore_file, read_keystore_file

    header = read_keystore_file(keystore_file)  # a bad file is refused before anything is asked
    if not yes:
        import sys

        if not sys.stdin.isatty():
            raise InvalidInput("decrypting writes the key in plaintext: confirm with --yes (no terminal to ask on)")
        if not typer.confirm(f"Write the secret key of {header.public_key} in plaintext to {out}?", err=True):
            raise InvalidInput("not confirmed; nothing written")
    with _passphrase(passphrase_fd, passphrase_credential, confirm=False) as passphrase:
        keypair = decrypt_keystore_file(keystore_file, out, passphrase, force=force)
    if json_output:
        print_json({"public_key": keypair.public_key_base58, "path": str(out), "source": str(keystore_file)})
    else:
        typer.echo(keypair.public_key_base58)
