"""The `jarvis-wallet` command: Typer app, global options, and the one place errors become exit codes.

Commands live in ``commands/``, one module per group, each a few lines of
glue over the library. Expected failures (``JarvisWalletError``) end as
``Error: <message>`` on stderr with the error's exit code; tracebacks never
show local variables, which could hold key material.
"""

from __future__ import annotations

import functools
import sys
from typing import Optional

import click
import typer
from click import exceptions as click_exceptions
from typer.core import TyperCommand, TyperGroup

from . import __version__
from .errors import JarvisWalletError, PolicyDenied


class _ExplicitValues:
    """Option checks every command shares, made while parsing (so before anything runs).

    An option or argument given an empty value (``--wallet ""``, what ``--wallet "$(failing
    command)"`` gives; ``pubkey ""``, which would read ``.``) is an error, never a silent fall
    back to the default; a NaN or infinite number is refused (range checks alone let NaN
    through). Also notes ``--json``, so that even an error in parsing is answered in JSON.
    """

    def parse_args(self, ctx, args):  # type: ignore[override]
        raw, _, _ = self.make_parser(ctx).parse_args(args=list(args))
        if raw.get("json_output"):
            ctx.find_root().meta["json_errors"] = True
        for param in self.get_params(ctx):
            if param.name not in raw or getattr(param, "is_flag", False) or param.name in _MAY_BE_EMPTY:
                continue
            values = raw[param.name] if isinstance(raw[param.name], (list, tuple)) else [raw[param.name]]
            for value in values:
                if isinstance(value, str) and not value.strip():
                    hint = "; give one, or leave the option out" if isinstance(param, click.Option) else ""
                    raise click.BadParameter(f"the value is empty{hint}", ctx, param)
                if isinstance(param.type, click.types.FloatParamType) and not _finite(value):
                    raise click.BadParameter(f"{value} is not a finite number", ctx, param)
        return super().parse_args(ctx, args)  # type: ignore[misc]


# Arguments that are data, where an empty string is a value: `config set x.note ""`, and the
# text of `sign-message` (refused with its own reason).
_MAY_BE_EMPTY = frozenset({"value", "text"})


def _finite(text) -> bool:
    import math

    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError):
        return True  # not a number at all: the option's own type says so


class JarvisCommand(_ExplicitValues, TyperCommand):
    """Every leaf command (given to each by ``JarvisGroup``)."""


class _JarvisSubGroup(_ExplicitValues, TyperGroup):
    """Every command group below the root."""


class JarvisGroup(_ExplicitValues, TyperGroup):
    """The root: maps every JarvisWalletError (and usage error) raised by any command to one
    line on stderr and its exit code; with --json, to one JSON object on stdout as well."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Typer builds each command with its own class; give every one below the root the
        # shared checks, so that a command added later cannot miss them.
        _adopt(self)

    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[override]
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click_exceptions.UsageError as exc:  # a bad root option (--database-url "")
            if isinstance(exc, click_exceptions.NoArgsIsHelpError):
                raise
            _fail(None, "bad_request", _usage_message(exc), 2, json_errors="--json" in args)

    def invoke(self, ctx):  # type: ignore[override]
        json_errors = lambda: bool(ctx.meta.get("json_errors"))  # noqa: E731 - set while parsing
        try:
            return super().invoke(ctx)
        except PolicyDenied as exc:
            # The stable reason code is for scripts; the sentence is for people.
            _fail(f"refused ({exc.reason}): ", exc.reason, exc.message, exc.exit_code, json_errors(), exc.details)
        except JarvisWalletError as exc:
            _fail(None, exc.wire_code, exc.message, exc.exit_code, json_errors(), exc.details)
        except click_exceptions.UsageError as exc:
            if isinstance(exc, click_exceptions.NoArgsIsHelpError):
                raise
            _fail(None, "bad_request", _usage_message(exc), 2, json_errors())


def _adopt(group) -> None:
    for command in group.commands.values():
        if isinstance(command, TyperGroup):
            command.__class__ = _JarvisSubGroup
            _adopt(command)
        elif isinstance(command, TyperCommand):
            command.__class__ = JarvisCommand


def _usage_message(exc) -> str:
    where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
    return exc.format_message() + where


def _fail(prefix, reason, message, exit_code, json_errors, details=None):
    """One line on stderr; with --json also one object on stdout. Never returns."""
    if json_errors:
        from .commands._common import print_json

        print_json({**(details or {}), "ok": False, "reason": reason, "message": message, "exit_code": exit_code})
    typer.echo(f"Error: {prefix or ''}{message}", err=True)
    raise typer.Exit(exit_code)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"jarvis-wallet {__version__}")
        raise typer.Exit()


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


def _new_app() -> typer.Typer:
    """The root group with its options and no commands yet."""
    application = typer.Typer(
        cls=JarvisGroup,
        name="jarvis-wallet",
        help="Let an agent spend from a Solana wallet without ever holding the key.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    application.callback()(root)
    return application


@functools.cache
def _full_app() -> typer.Typer:
    """The app with every command (built on first use: see ``main``)."""
    from .commands import approvals as approvals_commands
    from .commands import chain as chain_commands
    from .commands import config as config_commands
    from .commands import database as database_commands
    from .commands import inspect as inspect_commands
    from .commands import keys as keys_commands
    from .commands import limits as limits_commands
    from .commands import mcp as mcp_commands
    from .commands import nonce as nonce_commands
    from .commands import sign as sign_commands
    from .commands import signer as signer_commands
    from .commands import tokens as tokens_commands
    from .commands import tx as tx_commands

    application = _new_app()
    application.command("init-db")(database_commands.init_db)
    application.add_typer(database_commands.app, name="db")
    application.add_typer(config_commands.app, name="config")
    application.add_typer(limits_commands.app, name="limits")
    application.add_typer(tokens_commands.app, name="tokens")
    application.add_typer(tx_commands.app, name="tx")
    application.add_typer(signer_commands.app, name="signer")
    application.add_typer(nonce_commands.app, name="nonce")
    application.add_typer(approvals_commands.app, name="approvals")
    application.command("sign")(sign_commands.sign)
    application.command("sign-message")(sign_commands.sign_message)
    application.command("keygen")(keys_commands.keygen)
    application.command("pubkey")(keys_commands.pubkey)
    application.add_typer(keys_commands.app, name="keys")
    application.command("inspect")(inspect_commands.inspect)
    application.command("build-transfer")(inspect_commands.build_transfer)
    application.command("balance")(chain_commands.balance)
    application.command("blockhash")(chain_commands.blockhash)
    application.command("send")(chain_commands.send)
    application.command("mcp")(mcp_commands.mcp)
    return application


def __getattr__(name: str):
    # `from jarvis_wallet.cli import app` (tests, scripts) gets the whole app; importing this
    # module alone loads no command, so `jarvis-wallet sign` loads only its own.
    if name == "app":
        return _full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    if sys.argv[1:2] == ["sign"]:
        # Agents run `sign` once per payment. Typer turns every command of the app into a Click
        # command before it parses anything (16-23 ms here), and the command modules cost their
        # imports: `sign` runs from a root that holds only it. Same root, options and errors;
        # tests/test_cli_sign.py compares the two.
        from .commands import sign as sign_commands

        sign_only = _new_app()
        sign_only.command("sign")(sign_commands.sign)
        sign_only(prog_name="jarvis-wallet")
    else:
        _full_app()(prog_name="jarvis-wallet")
