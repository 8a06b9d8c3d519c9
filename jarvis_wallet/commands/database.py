"""`jarvis-wallet init-db` and `jarvis-wallet db backup`."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import JsonOption, database_url, print_json

app = typer.Typer(help="Look after the database: backups.", no_args_is_help=True)


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


@app.command("backup")
def db_backup(
    ctx: typer.Context,
    to: Path = typer.Option(..., "--to", help="Where to write the copy (mode 0600)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
    json_output: bool = JsonOption,
) -> None:
    """Copy a SQLite database with SQLite's online backup API, safe while a signer writes to it.

    The copy is consistent (the WAL included), checked, and renamed into place. PostgreSQL:
    use pg_dump.

    Example: jarvis-wallet db backup --to /var/backups/jarvis-wallet/wallet.db
    """
    from ..backup import backup_sqlite

    done = backup_sqlite(database_url(ctx), to, force=force)
    if json_output:
        print_json(done)
    else:
        typer.echo(f"Backed up {done['database']} to {done['path']}: {done['transactions']} audit rows, {done['bytes']} bytes")
