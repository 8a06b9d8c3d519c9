"""`jarvis-wallet db backup`: an online SQLite copy taken while a live signer signs."""

from __future__ import annotations

import sqlite3
import stat
import threading

import pytest

from conftest import transfer_message


def test_a_backup_while_signing_is_consistent_and_private(signers, cli, tmp_path):
    if not signers.database_url.startswith("sqlite"):
        pytest.skip("SQLite's backup API; PostgreSQL is refused below")
    signers.set_limits(per_tx=10**9, daily=10**12)
    handle = signers.start()
    keypair = signers.keypair()
    with signers.client(handle) as client:
        for _ in range(5):
            client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1000))
    stop = threading.Event()
    signed = []

    def keep_signing():
        with signers.client(handle) as client:
            while not stop.is_set():
                signed.append(client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1000)))

    worker = threading.Thread(target=keep_signing)
    worker.start()
    try:
        result = cli("db", "backup", "--to", tmp_path / "copy.db", "--json", url=signers.database_url)
    finally:
        stop.set()
        worker.join(30)
    assert result.exit_code == 0, result.stderr
    done = result.json()
    copy = tmp_path / "copy.db"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert done["path"] == str(copy) and done["bytes"] == copy.stat().st_size
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = db.execute("SELECT count(*) FROM wallet_transactions WHERE signature IS NOT NULL").fetchone()[0]
    assert rows == done["transactions"]
    assert 5 <= rows <= 5 + len(signed)  # a snapshot: everything committed before it, nothing torn
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".copy.db")] == []  # no temporary left

    again = cli("db", "backup", "--to", copy, url=signers.database_url)
    assert again.exit_code == 2 and again.stderr == f"Error: {copy} already exists; use --force to replace it\n"
    assert cli("db", "backup", "--to", copy, "--force", url=signers.database_url).exit_code == 0


def test_postgresql_is_pointed_to_pg_dump(cli, tmp_path):
    result = cli("db", "backup", "--to", tmp_path / "x", url="postgresql://someone@127.0.0.1:1/wallet")
    assert result.exit_code == 2
    assert "back it up with pg_dump" in result.stderr and not (tmp_path / "x").exists()
