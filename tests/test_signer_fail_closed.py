"""Invariant 2: no signature without a durable record; with the database gone, nothing is signed."""

import sqlite3
from urllib.parse import urlsplit, urlunsplit

import pytest

from jarvis_wallet.db import session
from jarvis_wallet.errors import DatabaseUnavailable
from jarvis_wallet.models import WalletTransaction

from conftest import transfer_message
from tcp_proxy import TcpProxy


def _count_rows(url):
    with session(url):
        return WalletTransaction.select().count(), WalletTransaction.select().where(WalletTransaction.signature.is_null(False)).count()


def test_postgres_cut_then_back_without_restarting_the_signer(signers):
    if not signers.database_url.startswith("postgresql"):
        pytest.skip("the TCP cut applies to PostgreSQL; SQLite is covered by the lock test")
    parts = urlsplit(signers.database_url)
    proxy = TcpProxy(parts.hostname, parts.port or 5432)
    proxy.start()
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    proxied_url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    keypair = signers.keypair()
    signers.set_limits(per_tx=10**9, daily=10**9)
    handle = signers.start(database_url=proxied_url)
    try:
        with signers.client(handle) as client:
            client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1))
            proxy.stop()
            for _ in range(3):
                with pytest.raises(DatabaseUnavailable):
                    client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1))
            assert client.ping()["pong"] is True  # still serving, just refusing to sign
            assert _count_rows(signers.database_url) == (1, 1), "nothing was signed or recorded while cut off"
            proxy.start()
            resumed = client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1))
            assert resumed.transaction_id
            assert _count_rows(signers.database_url) == (2, 2)
    finally:
        handle.stop()
        proxy.stop()


def test_sqlite_locked_beyond_the_timeout_refuses_then_recovers(signers):
    if not signers.database_url.startswith("sqlite"):
        pytest.skip("SQLite lock")
    keypair = signers.keypair()
    signers.set_limits(per_tx=10**9, daily=10**9)
    handle = signers.start()
    path = urlsplit(signers.database_url).path
    with signers.client(handle, timeout=30) as client:
        client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1))
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the lock past the busy timeout
        try:
            with pytest.raises(DatabaseUnavailable) as info:
                client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1))
            assert "locked" in str(info.value)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1))
    assert _count_rows(signers.database_url) == (2, 2)


def test_signer_refuses_to_start_without_its_database(signers, tmp_path):
    from jarvis_wallet.errors import SignerStartError

    with pytest.raises(SignerStartError, match="unavailable"):
        signers.start(database_url="postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")
    with pytest.raises(SignerStartError, match="run `jarvis-wallet init-db`"):
        signers.start(database_url=f"sqlite://{tmp_path}/never-initialised.db")
