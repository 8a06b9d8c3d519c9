"""`jarvis-wallet init-db`."""

from __future__ import annotations

import typer

from ._common import database_url, print_json


def init_db(
    ctx: typer.Context,
    json_output: bool = typer.Option(False, "--json", help="Print what was done as JSON."),
) -> None:
    """Create the schema, or upgrade it to this version; running it again changes nothing.

    Example: jarvis-wallet init-db
    """
    from ..db import describe, session
    from ..migrations import MIGRATIONS, apply_migrations

    with session(database_url(ctx), create=True, require_schema=False) as db:
        applied = apply_migrations(db)
        where = describe(db)
    if json_output:
        print_json({"database": where, "applied": list(applied), "schema_version": MIGRATIONS[-1].name})
    elif applied:
        typer.echo(f"Initialised {where}: applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        typer.echo(f"{where} is already up to date (schema {MIGRATIONS[-1].name}); nothing changed")
