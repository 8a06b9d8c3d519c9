"""A signer run for months: a keystore, lock, unlock, key lifetime and the health check, through
the real CLI on live forked signers over real sockets and real databases.

The key is a known dummy (seed 0x01..0x20) and the passphrase a known string: every output,
log line and file the test leaves is searched for either.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
from urllib.parse import urlsplit

import base58
import pytest

from conftest import transfer_message
from tcp_proxy import TcpProxy
from test_cli_signer import commands, one_error_line, wait_until  # noqa: F401 - fixtures too
from test_keystore import DUMMY, PASSPHRASE, assert_no_secret
from jarvis_wallet.client import SignerClient
from jarvis_wallet.errors import SignerLocked
from jarvis_wallet.keystore import Passphrase, write_keystore


@pytest.fixture
def keystore(tmp_path):
    path = tmp_path / "signer.keystore"
    write_keystore(path, DUMMY, Passphrase(PASSPHRASE), strength="interactive")
    return path


class Outputs:
    """Every stdout and stderr a test saw, to search for secrets at the end."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, result):
        self.texts += [result.stdout or "", result.stderr or ""]
        return result

    def assert_no_secret(self, *paths) -> None:
        assert_no_secret("\n".join(self.texts).encode())
        for path in paths:
            assert_no_secret(path.read_bytes())


def _start(commands, url, socket, keystore, *extra, passphrase=PASSPHRASE):  # noqa: F811
    return commands.run(
        "signer", "start", "--keypair", keystore, "--socket", socket, "--detach", "--json",
        "--passphrase-fd", "0", *extra, url=url, input=passphrase + "\n", timeout=60,
    )


def _limits(commands, url, out, per_tx="1SOL", daily="10SOL"):  # noqa: F811
    result = out.add(commands.run("limits", "set", "--wallet", DUMMY.public_key_base58, "--per-tx", per_tx,
                                  "--daily", daily, url=url))
    assert result.returncode == 0, result.stderr


def _sign(commands, url, socket, tmp_path, lamports=1000):  # noqa: F811
    message = transfer_message(from_key=DUMMY.public_key, lamports=lamports)
    path = tmp_path / f"tx-{os.urandom(4).hex()}.b64"
    path.write_text(base64.b64encode(message).decode())
    return commands.run("sign", path, "--socket", socket, "--json", url=url)


def _status(commands, url, socket):  # noqa: F811
    result = commands.run("signer", "status", "--socket", socket, "--json", url=url)
    return result, json.loads(result.stdout) if result.stdout else None


def _rows(url) -> list[tuple[str, str, str | None]]:
    from jarvis_wallet.db import session
    from jarvis_wallet.models import WalletTransaction

    with session(url):
        return [(row.request_id, row.status, row.signature) for row in WalletTransaction.select()]


def test_lock_unlock_through_the_cli_on_a_live_signer(commands, initialised_url, keystore, tmp_path):  # noqa: F811
    url, out = initialised_url, Outputs()
    socket = tmp_path / "run" / "signer.sock"
    _limits(commands, url, out)
    metrics = tmp_path / "metrics.prom"
    started = out.add(_start(commands, url, socket, keystore, "--metrics-file", metrics))
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert info["keystore"] is True and info["public_key"] == DUMMY.public_key_base58
    try:
        signed = out.add(_sign(commands, url, socket, tmp_path))
        assert signed.returncode == 0, signed.stderr
        result, status = _status(commands, url, socket)
        assert result.returncode == 0 and status["healthy"] is True and status["locked"] is False

        locked = out.add(commands.run("signer", "lock", "--socket", socket, "--json"))
        assert locked.returncode == 0, locked.stderr
        assert json.loads(locked.stdout) == {"locked": True, "was_unlocked": True, "socket_path": str(socket)}
        again = out.add(commands.run("signer", "lock", "--socket", socket))
        assert again.stdout == f"Signer was already locked ({socket})\n"

        rows_before = _rows(url)
        refused = out.add(_sign(commands, url, socket, tmp_path))
        assert refused.returncode == 14
        assert json.loads(refused.stdout)["reason"] == "locked"
        assert one_error_line(refused.stderr).startswith("Error: the signer is locked: its key is not in memory")
        assert _rows(url) == rows_before, "a locked signer records nothing"

        # Status and pubkey still answer; status says unhealthy with exit 14.
        result, status = _status(commands, url, socket)
        assert result.returncode == 14 and status["locked"] is True and status["locked_reason"] == "requested"
        assert status["healthy"] is False and result.stderr.startswith("Unhealthy: the signer is locked")
        with SignerClient(socket) as client:
            assert client.pubkey() == DUMMY.public_key_base58

        wrong = out.add(commands.run("signer", "unlock", "--socket", socket, "--passphrase-fd", "0", "--json",
                                     input="not the passphrase\n"))
        assert wrong.returncode == 7
        assert json.loads(wrong.stdout)["reason"] == "bad_passphrase"
        assert "wrong passphrase" in one_error_line(wrong.stderr)
        assert _status(commands, url, socket)[1]["failed_unlocks"] == 1

        unlocked = out.add(commands.run("signer", "unlock", "--socket", socket, "--passphrase-fd", "0", "--json",
                                        input=PASSPHRASE + "\n"))
        assert unlocked.returncode == 0, unlocked.stderr
        assert json.loads(unlocked.stdout)["was_locked"] is True
        after = out.add(_sign(commands, url, socket, tmp_path))
        assert after.returncode == 0, after.stderr
        result, status = _status(commands, url, socket)
        assert result.returncode == 0 and status["failed_unlocks"] == 0 and status["locked"] is False

        log = out.add(commands.run("signer", "logs", "--socket", socket, "--lines", "100"))
        events = [json.loads(line)["event"] for line in log.stdout.splitlines()]
        assert [e for e in events if e.startswith("key_")] == ["key_locked", "key_unlock_failed", "key_unlocked"]
    finally:
        out.add(commands.run("signer", "stop", "--socket", socket))
    database_files = [p for p in tmp_path.iterdir() if p.name.startswith("wallet.db")]  # SQLite: the file and WAL
    out.assert_no_secret(socket.parent / "signer.log", keystore, metrics, socket.parent / "secret", *database_files)
    assert 'jarvis_wallet_decisions_total{outcome="not_decided",reason="locked"} 1.0' in metrics.read_text()


def test_a_wrong_passphrase_fails_the_start_with_one_error(commands, initialised_url, keystore, tmp_path):  # noqa: F811
    socket = tmp_path / "run" / "signer.sock"
    result = _start(commands, initialised_url, socket, keystore, passphrase="nope")
    assert result.returncode == 9
    assert one_error_line(result.stderr) == (
        f"Error: cannot decrypt keystore {keystore}: wrong passphrase (or the keystore was altered)\n"
    )
    assert not socket.exists()


def test_the_passphrase_never_comes_from_the_environment_or_argv(commands, initialised_url, keystore, tmp_path):  # noqa: F811
    """Without a descriptor, credential or terminal the start is refused, whatever the environment holds."""
    socket = tmp_path / "run" / "signer.sock"
    result = commands.run("signer", "start", "--keypair", keystore, "--socket", socket, "--detach",
                          url=initialised_url, env={"JARVIS_WALLET_PASSPHRASE": PASSPHRASE, "PASSPHRASE": PASSPHRASE},
                          input="")
    assert result.returncode == 2
    assert one_error_line(result.stderr).startswith("Error: no passphrase: give it on a descriptor (--passphrase-fd N)")
    assert not socket.exists()


def test_a_systemd_credential_gives_the_passphrase(commands, initialised_url, keystore, tmp_path):  # noqa: F811
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    (credentials / "jarvis-wallet-passphrase").write_text(PASSPHRASE + "\n")
    socket = tmp_path / "run" / "signer.sock"
    result = commands.run("signer", "start", "--keypair", keystore, "--socket", socket, "--detach", "--json",
                          url=initialised_url, env={"CREDENTIALS_DIRECTORY": str(credentials)}, input="")
    assert result.returncode == 0, result.stderr
    try:
        assert json.loads(result.stdout)["keystore"] is True
    finally:
        commands.run("signer", "stop", "--socket", socket)


def test_the_key_ttl_locks_the_signer_by_itself(commands, initialised_url, keystore, tmp_path):  # noqa: F811
    url, out = initialised_url, Outputs()
    socket = tmp_path / "run" / "signer.sock"
    _limits(commands, url, out)
    started = out.add(_start(commands, url, socket, keystore, "--key-ttl", "2s"))
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["key_ttl_seconds"] == 2
    try:
        wait_until(lambda: _status(commands, url, socket)[1]["locked"], timeout=30, what="the key to lock itself")
        result, status = _status(commands, url, socket)
        assert result.returncode == 14 and status["locked_reason"] == "key_ttl" and status["key_ttl_seconds_left"] is None
        assert "its --key-ttl ran out" in result.stderr
        refused = out.add(_sign(commands, url, socket, tmp_path))
        assert refused.returncode == 14
        unlocked = out.add(commands.run("signer", "unlock", "--socket", socket, "--passphrase-fd", "0",
                                        input=PASSPHRASE))
        assert unlocked.returncode == 0, unlocked.stderr
        assert _status(commands, url, socket)[1]["key_ttl_seconds_left"] in (0, 1, 2)
    finally:
        out.add(commands.run("signer", "stop", "--socket", socket))
    out.assert_no_secret(socket.parent / "signer.log")


@pytest.mark.parametrize("bad", ["0s", "31d", "8x", "-1h", "nan"])
def test_key_ttl_is_bounded(cli, keystore, bad, tmp_path):
    result = cli("signer", "start", "--keypair", keystore, "--socket", tmp_path / "s" / "s.sock", "--key-ttl", bad)
    assert result.exit_code == 2
    assert "is not a duration from 1 s to 30 days" in result.stderr


def test_a_plaintext_signer_locks_but_cannot_be_unlocked(commands, initialised_url, tmp_path):  # noqa: F811
    from jarvis_wallet.keys import generate_keypair_file

    key = tmp_path / "plain.json"
    generate_keypair_file(key)
    socket = tmp_path / "run" / "signer.sock"
    started = commands.run("signer", "start", "--keypair", key, "--socket", socket, "--detach", url=initialised_url)
    assert started.returncode == 0, started.stderr
    try:
        assert commands.run("signer", "lock", "--socket", socket).returncode == 0
        result = commands.run("signer", "unlock", "--socket", socket, "--passphrase-fd", "0", input="x")
        assert result.returncode == 7
        assert "started from a plaintext key file" in one_error_line(result.stderr)
    finally:
        commands.run("signer", "stop", "--socket", socket)


def test_signing_in_parallel_while_locking_never_releases_an_unrecorded_signature(
    commands, initialised_url, keystore, tmp_path  # noqa: F811
):
    """Every request is either signed with its committed row, or refused `locked` with no row."""
    url, out = initialised_url, Outputs()
    socket = tmp_path / "run" / "signer.sock"
    _limits(commands, url, out, per_tx="1SOL", daily="100SOL")
    started = out.add(_start(commands, url, socket, keystore, "--free-decision-rate", "1000",
                             "--free-decision-burst", "1000"))
    assert started.returncode == 0, started.stderr
    results: dict[str, object] = {}

    def agent(index: int) -> None:
        """Signs until it has been refused `locked` three times (or 400 requests)."""
        refusals = 0
        with SignerClient(socket, timeout=60) as client:
            for _ in range(400):
                message = transfer_message(from_key=DUMMY.public_key, lamports=1000 + index)
                try:
                    signed = client.sign_transaction(message)
                    results[signed.request_id] = signed
                except SignerLocked:
                    results[os.urandom(8).hex()] = "locked"
                    refusals += 1
                    if refusals == 3:
                        return

    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(agent, index) for index in range(8)]
            wait_until(lambda: len(results) >= 20, timeout=60, what="some signatures before the lock")
            locked = out.add(commands.run("signer", "lock", "--socket", socket))
            assert locked.returncode == 0, locked.stderr
            for future in futures:
                future.result(timeout=120)
    finally:
        out.add(commands.run("signer", "stop", "--socket", socket))
    signed = {rid: r for rid, r in results.items() if r != "locked"}
    refused = [r for r in results.values() if r == "locked"]
    assert len(signed) >= 20 and len(refused) == 8 * 3, (len(signed), len(refused))
    rows = {request_id: (status, signature) for request_id, status, signature in _rows(url)}
    # Exactly the signed answers have rows, each with the signature that was released.
    assert set(rows) == set(signed)
    for request_id, answer in signed.items():
        assert rows[request_id] == ("signed", answer.signature)
        DUMMY.verify(answer.signed_transaction[1 + 64:], base58.b58decode(answer.signature))


# -- the health check ------------------------------------------------------------------------------


def _assert_health_follows_the_database(commands, url, socket, keystore, make_read_only, *, tmp_path=None):  # noqa: F811
    out = Outputs()
    _limits(commands, url, out)
    started = _start(commands, url, socket, keystore)
    assert started.returncode == 0, started.stderr
    try:
        assert _sign(commands, url, socket, socket.parent).returncode == 0  # the WAL exists, and is in use
        result, status = _status(commands, url, socket)
        assert result.returncode == 0 and status["database_writable"] is True and status["healthy"] is True
        with make_read_only():
            result, status = _status(commands, url, socket)
            if tmp_path is not None:  # the running signer itself cannot record either: status tells the truth
                assert _sign(commands, url, socket, socket.parent).returncode == 3
        assert result.returncode == 3, result.stderr
        assert status["database_writable"] is False and status["healthy"] is False
        assert "read-only" in status["database_error"] or "readonly" in status["database_error"]
        assert result.stderr.startswith("Unhealthy: the signer cannot write to its database: cannot write to database")
        result, status = _status(commands, url, socket)
        assert result.returncode == 0 and status["database_error"] is None
    finally:
        commands.run("signer", "stop", "--socket", socket)


def test_health_fails_when_the_sqlite_file_turns_read_only(commands, initialised_url, keystore, tmp_path):  # noqa: F811
    if not initialised_url.startswith("sqlite"):
        pytest.skip("SQLite file; PostgreSQL has its own test")
    import contextlib
    import subprocess

    @contextlib.contextmanager
    def immutable():
        """The database file and its WAL immutable (chattr +i binds root too): a running signer,
        which keeps its files open, can write neither, as its health check must then say."""
        files = [str(tmp_path / "wallet.db"), str(tmp_path / "wallet.db-wal")]
        if subprocess.run(["chattr", "+i", *files], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", *files], check=True)

    _assert_health_follows_the_database(
        commands, initialised_url, tmp_path / "run" / "signer.sock", keystore, immutable, tmp_path=tmp_path,
    )


def test_health_fails_when_the_postgresql_role_turns_read_only(commands, postgres_role_url, keystore, tmp_path):  # noqa: F811
    """A throw-away role whose new sessions default to read-only, as on a replica after failover."""
    import contextlib

    import psycopg2

    from conftest import POSTGRES_URL, initialise

    url = initialise(postgres_role_url())
    role = urlsplit(url).username

    @contextlib.contextmanager
    def role_read_only():
        conn = psycopg2.connect(POSTGRES_URL)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f'ALTER ROLE "{role}" SET default_transaction_read_only = on')
            yield
        finally:
            with conn.cursor() as cur:
                cur.execute(f'ALTER ROLE "{role}" RESET default_transaction_read_only')
            conn.close()

    _assert_health_follows_the_database(commands, url, tmp_path / "run" / "signer.sock", keystore, role_read_only)


def test_health_fails_when_postgresql_is_cut_and_recovers(commands, initialised_url, keystore, tmp_path):  # noqa: F811
    if not initialised_url.startswith("postgresql"):
        pytest.skip("the TCP cut applies to PostgreSQL; SQLite's read-only case is above")
    parts = urlsplit(initialised_url)
    proxy = TcpProxy(parts.hostname, parts.port or 5432)
    proxy.start()
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    proxied = parts._replace(netloc=netloc).geturl()
    socket = tmp_path / "run" / "signer.sock"
    started = _start(commands, proxied, socket, keystore)
    assert started.returncode == 0, started.stderr
    try:
        assert _status(commands, proxied, socket)[0].returncode == 0
        proxy.stop()
        result, status = _status(commands, proxied, socket)
        assert result.returncode == 3 and status["database_writable"] is False
        assert "unavailable" in status["database_error"]
        proxy.start()
        result, status = _status(commands, proxied, socket)
        assert result.returncode == 0 and status["healthy"] is True
    finally:
        commands.run("signer", "stop", "--socket", socket)
        proxy.stop()
