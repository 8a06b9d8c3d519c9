"""Binding the models to a database chosen at start-up, from a URL.

``sqlite:///ABSOLUTE/PATH`` selects an embedded SQLite file (WAL, foreign
keys on, fully synchronous commits so the audit trail survives a power cut);
``postgresql://user[:password]@host[:port]/dbname[?param=value]`` selects
PostgreSQL through psycopg2. Driver exceptions are translated here so no
caller ever has to import ``sqlite3`` or ``psycopg2``.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from pathlib import Path

import peewee

# The URL half is re-exported: callers have always found it here.
from .db_url import (  # noqa: F401
    POSTGRES_CONNECT_TIMEOUT_SECONDS,
    POSTGRES_DEFAULT_PARAMS,
    POSTGRES_QUERY_PARAMS,
    DatabaseTarget,
    parse_database_url,
)
from .errors import DatabaseUnavailable, InvalidConfig, JarvisWalletError, SchemaNotInitialised

# How long a writer waits for another writer's lock before the request is refused.
SQLITE_BUSY_TIMEOUT_SECONDS = 5.0


def open_database(url: str, *, create: bool = False, bind: bool = True, thread_safe: bool = True) -> peewee.Database:
    """Connect to the database a URL names and bind the models to it.

    A SQLite file is created only when ``create`` is set (``init-db``), so a
    mistyped path is reported instead of leaving an empty database behind.
    ``bind=False`` leaves the models where they are: for a connection of its own
    inside a running signer (health check, metrics, the approval reader), which uses raw SQL only.
    ``thread_safe=False``: one connection shared by the threads that use it (under their lock).
    """
    from .models import bind_models

    target = parse_database_url(url)
    if target.backend == "sqlite":
        if not create and not target.sqlite_path.exists():
            raise SchemaNotInitialised(
                f"no database at {target.sqlite_path}; run `jarvis-wallet init-db` first"
            )
        db = _open_sqlite(target, create=create, thread_safe=thread_safe)
    else:
        db = _open_postgres(target, thread_safe=thread_safe)
    db.jarvis_target = target  # what to call it in messages
    with translate_errors(db):
        db.connect(reuse_if_open=True)
    if bind:
        bind_models(db)
    return db


def _open_sqlite(target: DatabaseTarget, *, create: bool, thread_safe: bool = True) -> peewee.SqliteDatabase:
    from .config import data_dir, ensure_private_dir

    path = target.sqlite_path
    assert path is not None
    if path.parent == data_dir():
        ensure_private_dir(path.parent)  # the default location is ours to create, 0700
    elif not path.parent.is_dir():
        raise InvalidConfig(f"directory {path.parent} for the SQLite database does not exist")
    if create:
        _create_private_file(path)
    return peewee.SqliteDatabase(
        str(path),
        timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
        thread_safe=thread_safe,
        check_same_thread=thread_safe,
        pragmas={
            "journal_mode": "wal",
            "foreign_keys": 1,
            # FULL syncs the WAL on every commit: a signed row survives a power cut.
            "synchronous": "full",
            "busy_timeout": int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000),
        },
    )


def _create_private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite would create it 0644 (the umask's default):
    the audit trail is no other user's to read, wherever it lives, and SQLite gives its -wal
    and -shm files the mode of the database file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # SQLite will say what is wrong when it opens the path
    os.close(fd)


def _open_postgres(target: DatabaseTarget, *, thread_safe: bool = True) -> peewee.PostgresqlDatabase:
    params = dict(target.postgres_params or {})
    dbname = params.pop("dbname")
    return peewee.PostgresqlDatabase(dbname, thread_safe=thread_safe, **params)


def is_sqlite(db: peewee.Database) -> bool:
    return isinstance(db, peewee.SqliteDatabase)


def describe(db: peewee.Database) -> str:
    target = getattr(db, "jarvis_target", None)
    return target.display if target else repr(db.database)


@contextlib.contextmanager
def translate_errors(db: peewee.Database) -> Iterator[None]:
    """Turn driver failures into DatabaseUnavailable with a one-line message."""
    try:
        yield
    except JarvisWalletError:
        raise
    except (peewee.OperationalError, peewee.InterfaceError) as exc:
        reason = _first_line(_first_failure(exc))
        raise DatabaseUnavailable(f"database {describe(db)} is unavailable: {reason}") from None
    except peewee.DatabaseError as exc:
        raise DatabaseUnavailable(f"database {describe(db)} failed: {_first_line(_first_failure(exc))}") from None


def _first_failure(exc: BaseException) -> BaseException:
    """The database error that started it: a commit that fails (disk full, read-only file system,
    connection lost) is followed by a rollback that fails too, and only the first says why."""
    first, context = exc, exc.__context__
    for _ in range(10):  # peewee error -> driver error -> peewee error -> ...
        if context is None or not _is_database_error(context):
            break
        first, context = context, context.__context__
    return first


def _is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, peewee.PeeweeException) or type(exc).__module__.split(".")[0] in ("sqlite3", "psycopg2")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def close_database(db: peewee.Database) -> None:
    with contextlib.suppress(Exception):
        if not db.is_closed():
            db.close()




def check_writable(db: peewee.Database) -> None:
    """DatabaseUnavailable unless this connection can write: a row is written and rolled back.

    A read-only file, role or server (a replica, default_transaction_read_only) otherwise lets
    a signer start and then refuse every request.
    """
    from .models import WalletConfig, utc_now

    try:
        with translate_errors(db), db.atomic() as transaction:
            WalletConfig.insert(key="x.jarvis-wallet.write-check", value="", updated_at=utc_now()).on_conflict_ignore().execute()
            transaction.rollback()
    except DatabaseUnavailable as exc:
        reason = exc.message.split(": ", 1)[-1]
        raise DatabaseUnavailable(f"cannot write to database {describe(db)} ({reason}); a signer that cannot record cannot sign") from None


def probe_writable(url: str) -> None:
    """DatabaseUnavailable unless a new connection to ``url`` can write now: a row is written
    and rolled back, in raw SQL on a connection of its own (the models stay bound where they
    are, so a running signer's threads are not disturbed)."""
    db = open_database(url, bind=False)
    try:
        p = db.param
        try:
            with translate_errors(db), db.atomic() as transaction:
                db.execute_sql(
                    f"INSERT INTO wallet_config (key, value, updated_at) VALUES ({p}, {p}, {p}) "
                    "ON CONFLICT (key) DO NOTHING",
                    ("x.jarvis-wallet.write-check", "", datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)),
                )
                transaction.rollback()
        except DatabaseUnavailable as exc:
            reason = exc.message.split(": ", 1)[-1]
            raise DatabaseUnavailable(
                f"cannot write to database {describe(db)} ({reason}); a signer that cannot record cannot sign"
            ) from None
    finally:
        close_database(db)


@contextlib.contextmanager
def session(url: str, *, create: bool = False, require_schema: bool = True) -> Iterator[peewee.Database]:
    """Open the database, check its schema, translate driver errors, close at the end."""
    from .migrations import check_schema

    db = open_database(url, create=create)
    try:
        if require_schema:
            check_schema(db)
        with translate_errors(db):
            yield db
    finally:
        close_database(db)
