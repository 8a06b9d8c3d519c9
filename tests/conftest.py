"""Shared fixtures: every database test runs on a fresh SQLite file, and on
PostgreSQL too when JARVIS_WALLET_TEST_DATABASE_URL is set (each test in a
schema of its own, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest

from jarvis_wallet.config import TEST_DATABASE_URL_ENV

POSTGRES_URL = os.environ.get(TEST_DATABASE_URL_ENV, "").strip()
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path_factory):
    """No test reads the developer's own database, socket or key by accident."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home / "run"))
    for name in ("JARVIS_WALLET_DATABASE_URL", "SOLANA_PRIVATE_KEY", "SIGNER_SHARED_SECRET", "SIGNER_SOCKET_PATH"):
        monkeypatch.delenv(name, raising=False)


def _postgres_admin_connection():
    import psycopg2

    conn = psycopg2.connect(POSTGRES_URL, connect_timeout=5)
    conn.autocommit = True
    return conn


def postgres_schema_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def fresh_postgres_url():
    """A URL whose search_path is a new empty schema; the schema is dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip(f"{TEST_DATABASE_URL_ENV} is not set")
    schema = f"jw_test_{uuid.uuid4().hex[:16]}"
    conn = _postgres_admin_connection()
    with conn.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield postgres_schema_url(schema)
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """An empty database (no schema yet) on each configured backend."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path}/wallet.db"
    else:
        yield request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def initialised_url(database_url):
    """A database with the current schema applied."""
    from jarvis_wallet.db import session
    from jarvis_wallet.migrations import apply_migrations

    with session(database_url, create=True, require_schema=False) as db:
        apply_migrations(db)
    return database_url


@pytest.fixture
def db(initialised_url):
    """An open, initialised database bound to the models."""
    from jarvis_wallet.db import session

    with session(initialised_url) as database:
        yield database


def random_pubkey() -> str:
    import base58

    return base58.b58encode(os.urandom(32)).decode()


class CliResult:
    def __init__(self, result):
        self.exit_code = result.exit_code
        self.stdout = result.stdout
        self.stderr = result.stderr
        self.exception = result.exception

    def json(self):
        import json

        return json.loads(self.stdout)


@pytest.fixture
def cli():
    """Run the real CLI in-process: cli(url, "limits", "show") -> result with exit_code/stdout/stderr."""
    from typer.testing import CliRunner

    from jarvis_wallet.cli import app

    runner = CliRunner()

    def invoke(*args, url=None, input=None, env=None):
        argv = (["--database-url", url] if url else []) + [str(a) for a in args]
        result = runner.invoke(app, argv, input=input, env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result)

    return invoke
