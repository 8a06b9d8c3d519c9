"""`jarvis-wallet config set|get|list|unset`."""

from __future__ import annotations

import typer

from ._common import JsonOption, database_url, escape, is_narrow, print_json, print_table, short_key

app = typer.Typer(help="Read and change wallet configuration (rpc_url, wallet_public_key, ...).", no_args_is_help=True)


@app.command("set")
def config_set(ctx: typer.Context, key: str, value: str, json_output: bool = JsonOption) -> None:
    """Set KEY to VALUE. Known keys are validated; your own keys go under 'x.'.

    Example: jarvis-wallet config set rpc_url https://api.mainnet-beta.solana.com
    """
    from ..db import session
    from ..settings import set_setting, setting_to_dict

    with session(database_url(ctx)):
        row = set_setting(key, value)
        data = setting_to_dict(row)
    if json_output:
        print_json(data)
    else:
        typer.echo(f"{row.key} = {row.value}")


@app.command("get")
def config_get(ctx: typer.Context, key: str, json_output: bool = JsonOption) -> None:
    """Print the value of KEY (exit 4 if it is not set).

    Example: jarvis-wallet config get wallet_public_key
    """
    from ..db import session
    from ..settings import require_setting, setting_to_dict

    with session(database_url(ctx)):
        row = require_setting(key)
    if json_output:
        print_json(setting_to_dict(row))
    else:
        typer.echo(row.value)


@app.command("list")
def config_list(ctx: typer.Context, json_output: bool = JsonOption) -> None:
    """List every configured key with its value.

    Example: jarvis-wallet config list --json
    """
    from ..db import session
    from ..settings import list_settings, setting_to_dict

    with session(database_url(ctx)):
        rows = [setting_to_dict(row) for row in list_settings()]
    if json_output:
        print_json(rows)
        return
    value = (lambda text: escape(short_key(text))) if is_narrow() else escape  # keys abbreviated, not folded
    print_table(
        "Wallet configuration",
        ["key", "value", "description"],
        [[escape(r["key"]), value(r["value"]), escape(r["description"])] for r in rows],
        wrap=("value", "description"),
    )


@app.command("unset")
def config_unset(ctx: typer.Context, key: str, json_output: bool = JsonOption) -> None:
    """Remove KEY (exit 4 if it is not set).

    Example: jarvis-wallet config unset x.team
    """
    from ..db import session
    from ..settings import unset_setting

    with session(database_url(ctx)):
        unset_setting(key)
    if json_output:
        print_json({"key": key, "unset": True})
    else:
        typer.echo(f"{key} unset")
