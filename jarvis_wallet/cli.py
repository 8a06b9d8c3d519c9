"""The `jarvis-wallet` command: Typer app, global options, and the one place errors become exit codes.

Commands live in ``commands/``, one module per group, each a few lines of
glue over the library. Expected failures (``JarvisWalletError``) end as
``Error: <message>`` on stderr with the error's exit code; tracebacks never
show local variables, which could hold key material.
"""

from __future__ import annotations

from typing import Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .commands import config as config_commands
from .commands import database as database_commands
from .commands import inspect as inspect_commands
from .commands import keys as keys_commands
from .commands import limits as limits_commands
from .commands import nonce as nonce_commands
from .commands import sign as sign_commands
from .commands import signer as signer_commands
from .commands import tx as tx_commands
from .errors import JarvisWalletError, PolicyDenied


class JarvisGroup(TyperGroup):
    """Maps every JarvisWalletError raised by any command to its message and exit code."""

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except PolicyDenied as exc:
            # The stable reason code is for scripts; the sentence is for people.
            typer.echo(f"Error: refused ({exc.reason}): {exc.message}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except JarvisWalletError as exc:
            typer.echo(f"Error: {exc.message}", err=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=JarvisGroup,
    name="jarvis-wallet",
    help="Let an agent spend from a Solana wallet without ever holding the key.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"jarvis-wallet {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Optional[str] = typer.Option(
        None,
        "--database-url",
        help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB. "
        "Default: $JARVIS_WALLET_DATABASE_URL, else a SQLite file in the user's data directory.",
        show_default=False,
    ),
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."),
) -> None:
    """Let an agent spend from a Solana wallet without ever holding the key."""
    ctx.obj = {"database_url": database_url}


app.command("init-db")(database_commands.init_db)
app.add_typer(config_commands.app, name="config")
app.add_typer(limits_commands.app, name="limits")
app.add_typer(tx_commands.app, name="tx")
app.add_typer(signer_commands.app, name="signer")
app.add_typer(nonce_commands.app, name="nonce")
app.command("sign")(sign_commands.sign)
app.command("sign-message")(sign_commands.sign_message)
app.command("keygen")(keys_commands.keygen)
app.command("pubkey")(keys_commands.pubkey)
app.command("inspect")(inspect_commands.inspect)
app.command("build-transfer")(inspect_commands.build_transfer)


def main() -> None:
    app(prog_name="jarvis-wallet")
