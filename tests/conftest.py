"""Shared fixtures: every database test runs on a fresh SQLite file, and on
PostgreSQL too when JARVIS_WALLET_TEST_DATABASE_URL is set (each test in a
schema of its own, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from jarvis_wallet.config import TEST_DATABASE_URL_ENV

# No example database: a failure stored in .hypothesis/ by one run would otherwise be replayed
# by every later run of this checkout, whatever the code now does. A failure prints its
# `@reproduce_failure` blob instead. CI (HYPOTHESIS_PROFILE=ci) also draws the same examples on
# every run, so a red CI run is a reproducible one.
# No timing checks either (no per-example deadline, no too_slow health check): these machines are
# shared and noisy, and a slow example is not a wrong one.
_UNTIMED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
hypothesis_settings.register_profile("default", database=None, print_blob=True, **_UNTIMED)
hypothesis_settings.register_profile("ci", database=None, print_blob=True, derandomize=True, **_UNTIMED)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

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


@pytest.fixture
def postgres_role_url():
    """A factory: ``make(setting=value, ...)`` -> a URL that logs in as a throw-away role whose
    own defaults are those settings (``ALTER ROLE ... SET``, as an operator would set them on a
    role or database), working in an empty schema the role owns. Role and schema are dropped
    afterwards; the shared database and role ``postgres`` are never altered."""
    if not POSTGRES_URL:
        pytest.skip(f"{TEST_DATABASE_URL_ENV} is not set")
    conn = _postgres_admin_connection()
    made = []

    def make(**settings) -> str:
        name = f"jw_role_{uuid.uuid4().hex[:16]}"
        with conn.cursor() as cur:
            cur.execute(f'CREATE ROLE "{name}" LOGIN')
            made.append(name)
            for setting, value in settings.items():
                cur.execute(f'ALTER ROLE "{name}" SET {setting} = %s', (value,))
            cur.execute(f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"')
        parts = urlsplit(POSTGRES_URL)
        host = parts.netloc.rpartition("@")[2]
        url = urlunsplit((parts.scheme, f"{name}@{host}", parts.path, parts.query, ""))
        separator = "&" if parts.query else "?"
        return f"{url}{separator}options={quote(f'-csearch_path={name}')}"

    try:
        yield make
    finally:
        with conn.cursor() as cur:
            for name in made:
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
                cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
                cur.execute(f'DROP ROLE "{name}"')
        conn.close()


def terminate_sessions(url: str) -> int:
    """End every server session of the role a URL logs in as, as a restart or failover would;
    waits until they are gone. Only for a throw-away role of ``postgres_role_url``."""
    role = urlsplit(url).username
    assert role and role.startswith("jw_role_"), role
    conn = _postgres_admin_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            return cur.fetchone()[0]
    finally:
        conn.close()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """An empty database (no schema yet) on each configured backend."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path}/wallet.db"
    else:
        yield request.getfixturevalue("fresh_postgres_url")


def initialise(url: str) -> str:
    """Apply the current schema to the database a URL names; return the URL."""
    from jarvis_wallet.db import session
    from jarvis_wallet.migrations import apply_migrations

    with session(url, create=True, require_schema=False) as db:
        apply_migrations(db)
    return url


@pytest.fixture
def initialised_url(database_url):
    """A database with the current schema applied."""
    return initialise(database_url)


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


# -- signers -------------------------------------------------------------------------------


class SignerFixture:
    """Starts real forked signers on real sockets; stops every one at teardown."""

    def __init__(self, tmp_path, database_url):
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.handles = []
        self._count = 0

    def keypair_file(self, name="signer.json"):
        from jarvis_wallet.keys import generate_keypair_file

        path = self.tmp_path / name
        if not path.exists():
            generate_keypair_file(path)
        return path

    def keypair(self, name="signer.json"):
        from jarvis_wallet.keys import load_keypair_file

        return load_keypair_file(self.keypair_file(name))

    def set_limits(self, *, per_tx, daily, wallet=None, name="signer.json"):
        from jarvis_wallet.db import session
        from jarvis_wallet.limits import set_limits

        wallet = wallet or self.keypair(name).public_key_base58
        with session(self.database_url):
            set_limits(wallet, per_tx_lamports=per_tx, daily_lamports=daily)
        return wallet

    def start(self, *, name="signer.json", socket_path=None, detach=False, **overrides):
        from jarvis_wallet.signer import SignerSettings, start_signer

        self._count += 1
        if socket_path is None:
            socket_path = self.tmp_path / f"run{self._count}" / "signer.sock"
        settings = SignerSettings(
            socket_path=socket_path,
            database_url=overrides.pop("database_url", self.database_url),
            keypair_path=overrides.pop("keypair_path", self.keypair_file(name)),
            **overrides,
        )
        handle = start_signer(settings, detach=detach)
        self.handles.append(handle)
        return handle

    def client(self, handle, **kwargs):
        from jarvis_wallet.client import SignerClient

        return SignerClient(handle.socket_path, **kwargs)

    def stop_all(self):
        for handle in self.handles:
            if handle.is_alive():
                handle.stop()
        for handle in self.handles:
            assert not handle.is_alive(), f"signer pid {handle.pid} survived its test"
            assert not handle.socket_path.exists(), f"socket {handle.socket_path} left behind"


@pytest.fixture
def signers(tmp_path, initialised_url):
    fixture = SignerFixture(tmp_path, initialised_url)
    yield fixture
    fixture.stop_all()


def transfer_message(*, from_key: bytes, lamports: int, to_key: bytes | None = None, **kwargs) -> bytes:
    """A fresh legacy transfer message (a random blockhash makes each one unique)."""
    from jarvis_wallet.solana import build_transfer_message

    return build_transfer_message(
        from_pubkey=from_key,
        to_pubkey=to_key or os.urandom(32),
        lamports=lamports,
        recent_blockhash=os.urandom(32),
        **kwargs,
    )


def payments_message(*, from_key: bytes, payments: list[tuple[bytes, int]]) -> bytes:
    """A fresh legacy message in which ``from_key`` (the fee payer) makes one System transfer per
    (destination, lamports), in order: e.g. a 1-lamport decoy first and the real payment after."""
    from jarvis_wallet.solana import SYSTEM_PROGRAM_ID
    from jarvis_wallet.solana.build import AccountMeta, Instruction, compile_message

    transfers = [
        Instruction(
            SYSTEM_PROGRAM_ID,
            (AccountMeta(from_key, True, True), AccountMeta(destination, False, True)),
            (2).to_bytes(4, "little") + lamports.to_bytes(8, "little"),
        )
        for destination, lamports in payments
    ]
    return compile_message(payer=from_key, instructions=transfers, recent_blockhash=os.urandom(32))
