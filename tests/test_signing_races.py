"""Races on the decision's database path (#16): what the signer keeps between batches, the
PostgreSQL read after the lock, request ids without ON CONFLICT, 0012 over duplicate keys."""

import os
import threading
import time

import pytest

from jarvis_wallet.db import close_database, open_database, session
from jarvis_wallet.errors import ApprovalRequired, PolicyDenied
from jarvis_wallet.keys import Keypair
from jarvis_wallet.limits import set_limits
from jarvis_wallet.models import utc_now
from jarvis_wallet.signing import SignJob, SigningService

from conftest import transfer_message

FEE = 5000


def _job(message, request_id=None):
    return SignJob(request_id=request_id or os.urandom(8).hex(), tx_bytes=message)


@pytest.mark.parametrize("warm", [False, True])
def test_spend_committed_while_the_signer_waits_for_the_lock_is_counted(initialised_url, warm):
    """The 24-hour spend is read after the wallet's lock is granted (PostgreSQL: a statement after
    the FOR UPDATE, at READ COMMITTED), so another signer's decision committed while this one
    waited counts, whether the sum is recounted (cold) or brought forward from what was kept."""
    keypair = Keypair.generate()
    wallet = keypair.public_key_base58
    with session(initialised_url):
        set_limits(wallet, per_tx_lamports=10**6, daily_lamports=10**6)
    service = SigningService(keypair=keypair, database_url=initialised_url)
    service.connect()
    try:
        if warm:  # the kept sums exist: the next read is the adjustment, not the full count
            service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=1000)))
        other = _other_signer_inserts(initialised_url, wallet, "other-signer", lamports=995000)
        result = _sign_while_another_finishes(
            service, _job(transfer_message(from_key=keypair.public_key, lamports=1000)), other, "COMMIT"
        )
        assert isinstance(result.get("error"), PolicyDenied), result
    finally:
        service.close()


def _other_signer_inserts(url, wallet, request_id, *, lamports=1):
    """Another signer's decision, recorded and not yet committed (holding the wallet's lock)."""
    other = open_database(url, bind=False, thread_safe=False)
    sqlite = "sqlite" in url
    p = "?" if sqlite else "%s"
    other.execute_sql("BEGIN IMMEDIATE" if sqlite else "BEGIN")
    if not sqlite:
        other.execute_sql("SELECT 1 FROM spend_limits WHERE wallet = %s FOR UPDATE", (wallet,))
    now = utc_now()
    other.execute_sql(
        "INSERT INTO wallet_transactions (request_id, wallet, status, lamports, fee_lamports, message_sha256, "
        f"signature, kind, created_at, updated_at) VALUES ({p}, {p}, 'signed', {p}, 5000, {p}, {p}, "
        f"'transaction', {p}, {p})",
        (request_id, wallet, lamports, os.urandom(32).hex(), os.urandom(40).hex(), now, now),
    )
    return other


def _sign_while_another_finishes(service, job, other, end):
    """Sign in this thread (the service's connection is this thread's) while another thread ends
    the other transaction once the signer waits for the lock; the outcome or the error."""

    def finish():
        time.sleep(0.5)  # the signer is now waiting for the lock
        other.execute_sql(end)
        close_database(other)

    threading.Thread(target=finish).start()
    result = {}
    try:
        result["outcome"] = service.sign(job)
    except Exception as exc:  # noqa: BLE001
        result["error"] = exc
    return result


@pytest.mark.parametrize("same_wallet", [True, False])
@pytest.mark.parametrize("commit", [True, False])
def test_a_request_id_recorded_meanwhile_by_another_signer_is_never_signed_twice(initialised_url, same_wallet, commit):
    """No ON CONFLICT on PostgreSQL: the same wallet's signer is ordered by the lock (a replay);
    another wallet's signer recording the id meanwhile fails this batch closed; a rolled-back one
    takes nothing; the signer serves the next request either way."""
    if "sqlite" in initialised_url:
        pytest.skip("SQLite: one writer at a time")
    keypair = Keypair.generate()
    wallet = keypair.public_key_base58
    other_wallet = wallet if same_wallet else Keypair.generate().public_key_base58
    with session(initialised_url):
        set_limits(wallet, per_tx_lamports=10**6, daily_lamports=10**7)
        set_limits(other_wallet, per_tx_lamports=10**6, daily_lamports=10**7)
    service = SigningService(keypair=keypair, database_url=initialised_url)
    service.connect()
    try:
        service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=1000)))  # prepared statements made
        other = _other_signer_inserts(initialised_url, other_wallet, "shared-id")
        result = _sign_while_another_finishes(
            service, _job(transfer_message(from_key=keypair.public_key, lamports=1000), request_id="shared-id"),
            other, "COMMIT" if commit else "ROLLBACK",
        )
        if commit:
            assert "outcome" not in result, result
            expected = "AuthenticationFailed" if same_wallet else "DatabaseUnavailable"  # fails closed
            assert type(result["error"]).__name__ == expected, result
        else:
            assert "outcome" in result, result
        # the next request is served
        service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=1001)))
    finally:
        service.close()


def _cli(url, *args):
    import subprocess
    import sys

    exe = os.path.join(os.path.dirname(sys.executable), "jarvis-wallet")
    done = subprocess.run([exe, "--database-url", url, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cli_changes_from_another_process_apply_to_the_next_batch(initialised_url):
    """The kept limits (SQLite: until data_version moves) follow the CLI run as another process:
    remove, set again, the same values twice, an approval threshold, after a WAL checkpoint."""
    keypair = Keypair.generate()
    wallet = keypair.public_key_base58
    service = SigningService(keypair=keypair, database_url=initialised_url)
    service.connect()
    sign = lambda lamports: service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=lamports)))  # noqa: E731
    try:
        _cli(initialised_url, "limits", "set", "--wallet", wallet, "--per-tx", "100000", "--daily", "1000000")
        sign(1000)
        _cli(initialised_url, "limits", "remove", "--wallet", wallet)
        with pytest.raises(PolicyDenied, match="no spend limits"):
            sign(1000)
        _cli(initialised_url, "limits", "set", "--wallet", wallet, "--per-tx", "100000", "--daily", "1000000")
        sign(1000)
        _cli(initialised_url, "limits", "set", "--wallet", wallet, "--per-tx", "100000", "--daily", "1000000")
        sign(1000)
        _cli(initialised_url, "limits", "set", "--wallet", wallet, "--approve-above", "2000")
        if "sqlite" in initialised_url:
            checkpoint = open_database(initialised_url, bind=False)
            checkpoint.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            close_database(checkpoint)
        with pytest.raises(ApprovalRequired):
            sign(3000)
        _cli(initialised_url, "limits", "set", "--wallet", wallet, "--clear-approve-above", "--per-tx", "2000")
        with pytest.raises(PolicyDenied) as info:
            sign(3000)
        assert info.value.reason == "per_tx_limit_exceeded"
    finally:
        service.close()


def test_0012_on_a_0011_trail_with_a_shared_prefix_refuses_in_one_line(database_url):
    """Two signatures sharing a 16-character key (never two real ones) stop init-db with one line,
    and the 0011 indexes are left as they were (the migration's transaction rolls back)."""
    from jarvis_wallet.migrations import apply_migrations

    with session(database_url, create=True, require_schema=False) as db:
        apply_migrations(db, upto="0011_chain")
        for i, sig in enumerate(("A" * 16 + "x" * 72, "A" * 16 + "y" * 72)):
            db.execute_sql(
                "INSERT INTO wallet_transactions (request_id, wallet, status, lamports, fee_lamports, message_sha256, "
                "signature, kind, created_at, updated_at) VALUES "
                f"({db.param}, 'W', 'signed', 1, 0, {db.param}, {db.param}, 'transaction', "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')",
                (f"r{i}", f"{i}" * 64, sig),
            )
    import subprocess
    import sys

    exe = os.path.join(os.path.dirname(sys.executable), "jarvis-wallet")
    done = subprocess.run([exe, "--database-url", database_url, "init-db"], capture_output=True, text=True, timeout=60)
    with session(database_url, require_schema=False) as db:
        names = {index.name for index in db.get_indexes("wallet_transactions")}
    assert done.returncode != 0 and "Traceback" not in done.stderr and "wallet_transactions_signature" in names


def test_one_service_used_from_two_threads_never_decides_on_stale_limits(initialised_url):
    """Each thread has its own connection (peewee); what one thread's connection kept must not be
    taken for what another's read (data_version and prepared statements are per connection)."""
    from concurrent.futures import ThreadPoolExecutor

    keypair = Keypair.generate()
    wallet = keypair.public_key_base58
    with session(initialised_url):
        set_limits(wallet, per_tx_lamports=100000, daily_lamports=10**7)
    service = SigningService(keypair=keypair, database_url=initialised_url)
    a, b = ThreadPoolExecutor(1), ThreadPoolExecutor(1)

    def sign(pool, lamports):
        job = _job(transfer_message(from_key=keypair.public_key, lamports=lamports))
        return pool.submit(lambda: service.sign_batch([job])[0]).result()

    try:
        assert not isinstance(sign(a, 1000), Exception)
        assert not isinstance(sign(b, 1000), Exception)
        with session(initialised_url):
            set_limits(wallet, per_tx_lamports=90000, daily_lamports=10**7)
        assert not isinstance(sign(a, 1000), Exception)
        with session(initialised_url):
            set_limits(wallet, per_tx_lamports=10000, daily_lamports=10**7)
        result = sign(b, 50000)
        assert isinstance(result, PolicyDenied) and result.reason == "per_tx_limit_exceeded", result
        assert not isinstance(sign(a, 1), Exception)
        assert not isinstance(sign(b, 1), Exception)
    finally:
        a.submit(service.close).result()
        b.submit(service.close).result()
        a.shutdown()
        b.shutdown()
