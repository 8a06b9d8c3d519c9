"""Online backup of a SQLite database with SQLite's backup API, while a signer writes to it.

``sqlite3.Connection.backup`` copies the database page by page as a consistent snapshot
(including what is still in the WAL), in steps, so a signer waits at most for one step's lock,
never for the whole copy. The copy goes to a 0600 temporary file beside the destination, is
checked with ``PRAGMA integrity_check``, and is renamed into place: a destination is either the
old file or a complete, checked copy. PostgreSQL has its own tools (``pg_dump``, WAL archiving).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from pathlib import Path

from .db import parse_database_url
from .errors import DatabaseUnavailable, InvalidConfig, InvalidInput

PAGES_PER_STEP = 256  # about 1 MiB at 4 KiB pages: one short lock per step


def backup_sqlite(database_url: str, destination: str | os.PathLike, *, force: bool = False) -> dict:
    """Copy the SQLite database a URL names to ``destination``; what was written, as public facts."""
    target = parse_database_url(database_url)
    if target.backend != "sqlite":
        raise InvalidConfig(
            f"{target.display} is PostgreSQL: back it up with pg_dump or WAL archiving (docs/operations.md)"
        )
    source = target.sqlite_path
    if not source.exists():
        raise DatabaseUnavailable(f"no database at {source}")
    destination = Path(destination)
    if destination.exists() and not force:
        raise InvalidInput(f"{destination} already exists; use --force to replace it")
    if not destination.parent.is_dir():
        raise InvalidInput(f"directory {destination.parent} does not exist")
    if destination.resolve() == source.resolve():
        raise InvalidInput("the backup would overwrite the database itself")
    temporary = destination.with_name(f".{destination.name}.{secrets.token_hex(6)}.tmp")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # 0600 before SQLite writes
    try:
        with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)) as src, \
                contextlib.closing(sqlite3.connect(temporary)) as dst:
            src.backup(dst, pages=PAGES_PER_STEP)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            (verdict,) = dst.execute("PRAGMA integrity_check").fetchone()
            (pages,) = dst.execute("PRAGMA page_count").fetchone()
            (rows,) = dst.execute("SELECT count(*) FROM wallet_transactions").fetchone()
        if verdict != "ok":
            raise DatabaseUnavailable(f"the copy of {source} failed its integrity check: {verdict}")
        os.replace(temporary, destination)
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(f"cannot back up {source}: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot write the backup {destination}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return {"database": target.display, "path": str(destination), "pages": pages,
            "bytes": destination.stat().st_size, "transactions": rows}
