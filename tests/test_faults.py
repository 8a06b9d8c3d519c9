"""Fault injection against real signers under concurrent load, each ending with the accounting
check of tests/accounting.py (invariants 2, 3 and 8 of docs/design.md).

- kill -9 of the signer at random points while 8 clients sign, restarted on the same socket and
  database each time (as a supervisor would);
- PostgreSQL cut away mid-load (a TCP proxy stopped and started again), a network partition
  (every packet dropped) in the middle of a transaction, and a SQLite database locked by
  another process past the busy timeout: refusals, then recovery, same signer process;
- clients that connect and never send, stall half-way through a line, or crowd the connection
  cap: a well-behaved client is still served within its own timeout;
- a full disk, a file system the kernel forces read-only under the running signer, a database
  on a read-only mount: refused cleanly, nothing signed, and recovery once the storage is back.

Longer runs of the first two are campaigns/faults.py; figures in docs/reliability.md.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from jarvis_wallet import protocol
from jarvis_wallet.client import SignerClient
from jarvis_wallet.errors import DatabaseUnavailable, SignerStartError, SignerUnavailable
from jarvis_wallet.keys import Keypair, generate_keypair_file, load_keypair_file

from accounting import AccountedClient, Journal, check_accounting
from conftest import SignerFixture, transfer_message
from faultkit import (
    MountUnavailable,
    NetworkUnavailable,
    ServedSigner,
    SigningLoad,
    ext4_loop,
    fill,
    initialise,
    partitionable_link,
    proxied_url,
    read_only_bind,
    set_wallet_limits,
    tmpfs,
)
from tcp_proxy import TcpProxy

FEE = 5000
AMOUNT = 1000
SPEND = AMOUNT + FEE
CLIENTS = 8


def secret_of(path: Path) -> bytes:
    return Path(path).read_bytes().rstrip(b"\n")


@pytest.fixture
def wallet(tmp_path):
    """A keypair file and its loaded keypair."""
    path = tmp_path / "signer.json"
    generate_keypair_file(path)
    return path, load_keypair_file(path)


@pytest.fixture
def sqlite_signers(tmp_path):
    """Signers on a SQLite database only: for faults of the file or of the connections themselves."""
    fixture = SignerFixture(tmp_path, initialise(f"sqlite://{tmp_path}/wallet.db"))
    yield fixture
    fixture.stop_all()


@pytest.fixture
def postgres_signers(tmp_path, fresh_postgres_url):
    fixture = SignerFixture(tmp_path, initialise(fresh_postgres_url))
    yield fixture
    fixture.stop_all()


@pytest.fixture
def served(tmp_path, initialised_url, wallet):
    """Signers run by `jarvis-wallet signer serve`; each is stopped and checked at teardown."""
    started: list[ServedSigner] = []

    def make(**options) -> ServedSigner:
        signer = ServedSigner(
            socket_path=tmp_path / "run" / "signer.sock",
            database_url=options.pop("database_url", initialised_url),
            keypair_path=wallet[0],
            **options,
        )
        started.append(signer)
        return signer

    yield make
    for signer in started:
        assert signer.stop() in (0, -9), signer.stderr_lines  # a clean exit, or killed by the test
        assert not signer.tracebacks(), signer.stderr_lines
    for signer in started:
        assert not signer.socket_path.exists(), "the last signer's clean stop removes the socket"


# -- kill -9 -----------------------------------------------------------------------------------------

KILLS = 3
CEILING_HEADROOM = 100  # transfers left under the daily ceiling when it is lowered at the end


def spent_today(database_url: str, wallet: str) -> int:
    from jarvis_wallet.db import session
    from jarvis_wallet.ledger import spent_in_window
    from jarvis_wallet.models import utc_now

    with session(database_url):
        return spent_in_window(wallet, now=utc_now())


def wait_for_answers(load: SigningLoad, count: int, *, timeout: float = 20.0) -> None:
    target = load.decisions() + count
    assert load.wait_for("decisions", target, timeout=timeout), f"the signer answered too little: {load.snapshot()}"


def test_kill_9_under_load_then_restart_loses_and_doubles_nothing(served, wallet, initialised_url):
    """Every round: the signer decides under load, dies by SIGKILL at a random point, and a new
    one serves the same socket and database. Then the daily ceiling is lowered to just above the
    spend so far (with the load paused: the check holds every row to the final ceiling), and the
    signer is killed once more around the moment the ceiling is met: the restarted signer must
    see the whole day's spend in the database, and nothing is lost or counted twice."""
    _, keypair = wallet
    wallet_address = keypair.public_key_base58
    set_wallet_limits(initialised_url, wallet_address, per_tx=SPEND, daily=10**15)
    signer = served().start()
    journal = Journal()
    rng = random.Random()
    pids = [signer.pid]

    def new_load() -> SigningLoad:
        return SigningLoad(
            signer.socket_path, journal, secret=secret_of(signer.secret_path), wallet_key=keypair.public_key,
            threads=CLIENTS, lamports=AMOUNT, resend_probability=0.5,
        ).start()

    def kill_and_restart() -> None:
        time.sleep(rng.uniform(0, 0.3))  # a random point in the stream of decisions
        signer.kill9()
        assert signer.socket_path.exists(), "kill -9 runs no clean-up: the stale socket stays"
        time.sleep(rng.uniform(0, 0.2))  # clients meet a dead socket for a while
        signer.start()
        pids.append(signer.pid)

    loads = [new_load()]
    try:
        for _ in range(KILLS):
            wait_for_answers(loads[-1], 50)
            kill_and_restart()
        wait_for_answers(loads[-1], 50)
        loads[-1].stop()
        daily = spent_today(initialised_url, wallet_address) + CEILING_HEADROOM * SPEND
        set_wallet_limits(initialised_url, wallet_address, per_tx=SPEND, daily=daily)
        loads.append(new_load())
        wait_for_answers(loads[-1], CEILING_HEADROOM // 2)
        kill_and_restart()
        assert loads[-1].wait_for("refused:daily_limit_exceeded", 20, timeout=30), loads[-1].snapshot()
    finally:
        for load in loads:
            load.stop()
    assert len(set(pids)) == KILLS + 2
    for load in loads:
        assert not load.unexpected, load.unexpected[:5]
    assert sum(load.count("unavailable") for load in loads) > 0, "no client noticed the kills"
    report = check_accounting(initialised_url, journal)
    report.assert_ok()
    assert report.lost + report.unsent > 0
    assert report.spent_lamports[wallet_address] == daily, "the ceiling was met exactly, across a restart"
    assert report.first_signatures > 0 and report.refusals_recorded > 0


# -- the database goes away mid-load -----------------------------------------------------------------

CUTS = 3


def database_unavailable_messages(journal: Journal) -> list[str]:
    return [
        a.reply["error"]["message"] for a in journal.attempts() if a.code == protocol.DATABASE_UNAVAILABLE
    ]


def test_postgres_cut_mid_load_refuses_then_recovers_without_a_restart(postgres_signers, wallet):
    signers = postgres_signers
    _, keypair = wallet
    parts = urlsplit(signers.database_url)
    proxy = TcpProxy(parts.hostname, parts.port or 5432)
    proxy.start()
    signers.set_limits(per_tx=SPEND, daily=10**15, wallet=keypair.public_key_base58)
    handle = signers.start(database_url=proxied_url(signers.database_url, proxy.port), keypair_path=wallet[0])
    journal = Journal()
    load = SigningLoad(
        handle.socket_path, journal, secret=secret_of(handle.info.secret_path), wallet_key=keypair.public_key,
        threads=CLIENTS, lamports=AMOUNT,
    ).start()
    try:
        for _ in range(CUTS):
            assert load.wait_for("signed", load.count("signed") + 30, timeout=20), load.snapshot()
            proxy.stop()
            refused = load.count("database_unavailable")
            assert load.wait_for("database_unavailable", refused + CLIENTS, timeout=20), load.snapshot()
            time.sleep(0.2)
            proxy.start()
        assert load.wait_for("signed", load.count("signed") + 30, timeout=20), "no recovery after the last cut"
    finally:
        load.stop()
        proxy.stop()
    assert handle.is_alive(), "the same signer process served throughout"
    assert not load.unexpected, load.unexpected[:5]
    assert all("unavailable" in m or "failed" in m for m in database_unavailable_messages(journal))
    report = check_accounting(signers.database_url, journal)
    report.assert_ok()
    assert report.ambiguous >= CUTS * CLIENTS
    assert report.first_signatures >= (CUTS + 1) * 30


@pytest.fixture
def link():
    """A network namespace for the signer, joined by a link the test can cut silently."""
    try:
        with partitionable_link() as made:
            yield made
    except NetworkUnavailable as exc:
        pytest.skip(str(exc))


def backend_waiting_for(admin, statement_part: str, *, timeout: float = 10.0) -> int:
    """The pid of the server session whose current statement contains ``statement_part``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s "
                "AND pid <> pg_backend_pid()", (f"%{statement_part}%",),
            )
            row = cursor.fetchone()
        if row:
            return row[0]
        time.sleep(0.05)
    raise AssertionError(f"no session came to wait on the lock ({statement_part!r})")


def session_state(admin, pid: int) -> str | None:
    with admin.cursor() as cursor:
        cursor.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,))
        row = cursor.fetchone()
    return row[0] if row else None


def test_a_partition_mid_transaction_fails_closed_then_frees_the_wallet_lock(link, wallet, fresh_postgres_url, tmp_path):
    """The network between the signer and PostgreSQL drops every packet while the signer's
    transaction holds the wallet's lock. Without libpq keepalives the signer would wait for
    TCP's retransmissions (about 15 minutes) and answer only when its 30 s decision timeout
    expired; without idle_in_transaction_session_timeout its orphaned server session would
    hold the wallet's lock until the server noticed (hours), refusing every signer sharing it.
    """
    import psycopg2

    keypair_path, keypair = wallet
    url = initialise(fresh_postgres_url)
    set_wallet_limits(url, keypair.public_key_base58, per_tx=SPEND, daily=10**15)
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname, parts.port or 5432, listen_host=link.host_address)
    proxy.start()
    signer = ServedSigner(
        socket_path=tmp_path / "run" / "signer.sock", keypair_path=keypair_path,
        database_url=proxied_url(url, proxy.port, host=link.host_address), command_prefix=link.exec_prefix,
    )
    admin = psycopg2.connect(url, connect_timeout=5)
    holder = psycopg2.connect(url, connect_timeout=5)
    journal = Journal()
    try:
        signer.start()
        client = AccountedClient(
            signer.socket_path, secret=secret_of(signer.secret_path), timeout=60, journal=journal
        )
        assert client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=AMOUNT)).signature
        admin.autocommit = True
        # Another session holds the wallet's lock, so the signer's transaction is open and
        # waiting on the server when the partition starts.
        with holder.cursor() as cursor:
            cursor.execute("SELECT 1 FROM spend_limits WHERE wallet = %s FOR UPDATE", (keypair.public_key_base58,))
        answers: list[object] = []

        def ask() -> None:
            try:
                answers.append(client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=AMOUNT)))
            except Exception as exc:  # noqa: BLE001 - the answer is what the test looks at
                answers.append(exc)

        asking = threading.Thread(target=ask)
        asking.start()
        signer_session = backend_waiting_for(admin, "FOR UPDATE OF spend_limits")
        link.partition()
        holder.commit()  # the signer's session now takes the lock, and its answer is lost

        asking.join(timeout=45)
        assert not asking.is_alive(), "no answer within 45 s"
        (answer,) = answers
        assert isinstance(answer, DatabaseUnavailable), answer
        # libpq itself gave up on the dead link; the decision timeout would say "no decision".
        assert "no decision within" not in str(answer), answer

        # The orphaned server session is ended and the wallet's lock freed, with the link still down.
        deadline = time.monotonic() + 20
        while session_state(admin, signer_session) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert session_state(admin, signer_session) is None, "the cut-off session still holds the lock"
        with holder.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")
            cursor.execute("SELECT 1 FROM spend_limits WHERE wallet = %s FOR UPDATE", (keypair.public_key_base58,))
        holder.rollback()

        # While partitioned, a new connection cannot be made: refused within the connect timeout.
        with pytest.raises(DatabaseUnavailable):
            client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=AMOUNT))

        link.heal()
        deadline = time.monotonic() + 30
        while True:  # the same signer process signs again once the link is back
            try:
                client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=AMOUNT))
                break
            except DatabaseUnavailable:
                assert time.monotonic() < deadline, "no recovery within 30 s of the link's return"
                time.sleep(0.5)
        assert signer.is_alive()
    finally:
        link.heal()
        signer.stop()
        proxy.stop()
        holder.close()
        admin.close()
    assert not signer.tracebacks(), signer.stderr_lines
    report = check_accounting(url, journal)
    report.assert_ok()
    assert report.first_signatures == 2 and report.ambiguous_recorded == 0


def test_a_decision_timed_out_on_a_hung_server_releases_nothing_and_the_retry_gets_the_recorded_one(
    postgres_signers, wallet
):
    """The server serving the signer stops answering (SIGSTOP) past the decision timeout. The
    reply must not promise "not signed": the worker commits the decision once the server is
    back. It says no signature was released and how to get it; the retry returns it, once."""
    import uuid

    import psycopg2

    if os.geteuid() != 0:
        pytest.skip("stopping the PostgreSQL server process needs root")
    signers = postgres_signers
    keypair_path, keypair = wallet
    name = f"jw-hang-{uuid.uuid4().hex[:12]}"
    signers.set_limits(per_tx=SPEND, daily=10**15, wallet=keypair.public_key_base58)
    handle = signers.start(
        database_url=f"{signers.database_url}&application_name={name}", keypair_path=keypair_path,
        decision_timeout_seconds=2.0,
    )
    journal = Journal()
    client = AccountedClient(handle.socket_path, secret=secret_of(handle.info.secret_path), timeout=30, journal=journal)
    assert client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=AMOUNT)).signature
    admin = psycopg2.connect(signers.database_url, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,))
        backends = [row[0] for row in cursor.fetchall()]
    admin.close()
    assert backends, "the signer's server session was not found"
    message = transfer_message(from_key=keypair.public_key, lamports=AMOUNT)
    pinged_meanwhile: list[bool] = []

    def ping_while_the_decision_waits() -> None:
        time.sleep(0.5)  # the sign below is waiting on the stopped server by now
        with SignerClient(handle.socket_path, timeout=1.5) as other:  # a stalled loop fails this
            pinged_meanwhile.append(other.ping()["pong"])

    pinger = threading.Thread(target=ping_while_the_decision_waits)
    for pid in backends:
        os.kill(pid, signal.SIGSTOP)
    try:
        pinger.start()
        with pytest.raises(DatabaseUnavailable) as timed_out:
            client.sign_transaction(message)
        pinger.join()
        time.sleep(0.5)
    finally:
        for pid in backends:
            os.kill(pid, signal.SIGCONT)
    assert pinged_meanwhile == [True]  # the signer kept serving while its decision hung
    assert str(timed_out.value) == (
        "no decision within 2 s: the database is not answering. No signature was released; send the same "
        "transaction again to get the recorded signature if it was signed"
    )
    retry = client.sign_transaction(message)
    assert retry.duplicate is True  # committed after the timeout, counted once
    report = check_accounting(signers.database_url, journal)
    report.assert_ok()
    assert (report.ambiguous, report.ambiguous_recorded, report.duplicate_replies) == (1, 1, 1)


def test_sqlite_locked_by_another_process_mid_load_refuses_then_recovers(sqlite_signers, wallet):
    signers = sqlite_signers
    _, keypair = wallet
    signers.set_limits(per_tx=SPEND, daily=10**15, wallet=keypair.public_key_base58)
    handle = signers.start(keypair_path=wallet[0])
    journal = Journal()
    load = SigningLoad(
        handle.socket_path, journal, secret=secret_of(handle.info.secret_path), wallet_key=keypair.public_key,
        threads=CLIENTS, lamports=AMOUNT, timeout=30,  # a decision may wait out the 5 s busy timeout
    ).start()
    hold_seconds = 5.5  # just past the 5 s busy timeout
    locker = (
        "import sqlite3, sys, time\n"
        "db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "db.execute('ROLLBACK')\n"
    )
    try:
        assert load.wait_for("signed", 30, timeout=20)
        blocker = subprocess.Popen(
            [sys.executable, "-c", locker, urlsplit(signers.database_url).path, str(hold_seconds)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert blocker.stdout.readline().strip() == "locked"
            assert load.wait_for("database_unavailable", 1, timeout=20), load.snapshot()
            signed_when_refused = load.count("signed")
            assert blocker.wait(timeout=20) == 0
        finally:
            if blocker.poll() is None:
                blocker.kill()
                blocker.wait()
        assert load.wait_for("signed", signed_when_refused + 30, timeout=20), "no recovery after the lock"
    finally:
        load.stop()
    assert handle.is_alive()
    assert not load.unexpected, load.unexpected[:5]
    messages = database_unavailable_messages(journal)
    assert messages and all("locked" in message for message in messages), messages[:3]
    report = check_accounting(signers.database_url, journal)
    report.assert_ok()
    assert report.ambiguous_recorded == 0, "a refusal for a lock never taken recorded nothing"


# -- clients that stall, crowd, or churn ---------------------------------------------------------------


def open_raw(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(path))
    return sock


def turned_away(*socks: socket.socket, wait: float = 0.2) -> list[bool]:
    """For each connection: True if the signer answered it `busy` (and closed it), False if it
    was accepted and is waiting for a request."""
    time.sleep(wait)
    verdicts = []
    for sock in socks:
        sock.settimeout(0)  # with a timeout, Python would wait for data instead of saying "none yet"
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            verdicts.append(False)
        except ConnectionResetError:
            verdicts.append(True)
        else:
            verdicts.append(data == b"" or b'"busy"' in data)
        finally:
            sock.settimeout(5)
    return verdicts


def closed_by_signer(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while chunk := sock.recv(4096):
            if b'"busy"' in chunk:
                continue
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def sign_despite_crowding(client: AccountedClient, message: bytes, *, within: float) -> tuple[object, float, int]:
    """Sign, retrying while the signer turns the connection away; (result, seconds, attempts).

    Turned away is SignerUnavailable: `busy`, or the connection closed under a request sent
    just as the signer closed it after its `busy` line.
    """
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        try:
            return client.sign_transaction(message), time.monotonic() - started, attempts
        except SignerUnavailable:
            client.close()
            if time.monotonic() - started > within:
                raise
            time.sleep(0.05)


def test_stalled_and_crowding_clients_leave_a_good_client_served_within_its_timeout(sqlite_signers, wallet):
    signers = sqlite_signers
    from faultkit import proc_fd_count

    _, keypair = wallet
    signers.set_limits(per_tx=SPEND, daily=10**15, wallet=keypair.public_key_base58)
    cap, idle = 4, 2.0
    handle = signers.start(keypair_path=wallet[0], max_connections=cap, idle_timeout_seconds=idle)
    journal = Journal()
    client = AccountedClient(handle.socket_path, journal=journal, timeout=10)
    client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=AMOUNT))
    client.close()
    time.sleep(0.2)
    baseline_fds = proc_fd_count(handle.pid)
    assert baseline_fds is not None

    # Up to the cap minus one: a connection that never sends, and one stalled half-way through a line.
    silent = open_raw(handle.socket_path)
    half = open_raw(handle.socket_path)
    half.sendall(b'{"op":"sign","requestId":"3f1c9a52-7b4e-4d0a-9c6f-2e8b5d7a1f03","txBa')
    third = open_raw(handle.socket_path)
    assert turned_away(silent, half, third) == [False] * 3
    # One slot left: served at once, first time, while the others stall.
    message = transfer_message(from_key=keypair.public_key, lamports=AMOUNT)
    result, _, attempts = sign_despite_crowding(client, message, within=10)
    assert attempts == 1 and not result.duplicate
    client.close()

    # Now up to the cap and past it, with a client churning connections the whole time.
    deadline = time.monotonic() + 5
    while turned_away(fourth := open_raw(handle.socket_path))[0]:  # the good client's slot frees up
        fourth.close()
        assert time.monotonic() < deadline, "a closed connection's slot was never released"
    past = [open_raw(handle.socket_path) for _ in range(4)]
    assert turned_away(*past) == [False] * len(past), "connections past the cap wait for a slot"
    stop_churn = threading.Event()
    churned = []

    def churn() -> None:
        while not stop_churn.is_set():
            try:
                sock = open_raw(handle.socket_path)
                sock.sendall(b"garbage\n")
                sock.close()
                churned.append(1)
            except OSError:
                pass
            time.sleep(0.005)

    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    try:
        message = transfer_message(from_key=keypair.public_key, lamports=AMOUNT)
        result, seconds, attempts = sign_despite_crowding(client, message, within=client.timeout)
    finally:
        stop_churn.set()
        churner.join(5)
        client.close()
    assert seconds < client.timeout, f"served only after {seconds:.1f} s"
    assert len(churned) > 10
    # The stalled connections were closed by the idle timeout, not by anything they did.
    for sock in (silent, half, third, fourth):
        assert closed_by_signer(sock, within=5 * idle)
        sock.close()
    for sock in past:
        sock.close()
    deadline = time.monotonic() + 5
    while proc_fd_count(handle.pid) > baseline_fds:  # every connection's descriptor is released
        assert time.monotonic() < deadline, f"{proc_fd_count(handle.pid)} fds, {baseline_fds} at the start"
        time.sleep(0.05)
    assert handle.is_alive()
    report = check_accounting(signers.database_url, journal)
    report.assert_ok()
    assert report.first_signatures == 3


def test_clients_trickling_a_line_cannot_hold_the_connection_cap(sqlite_signers, wallet):
    """The idle timeout bounds a whole line, not each read: otherwise a client trickling a line a
    byte at a time (64 KiB at a byte a second is 18 hours) keeps its slot, and a few of them hold
    the connection cap so that nobody else is served."""
    signers = sqlite_signers
    _, keypair = wallet
    signers.set_limits(per_tx=SPEND, daily=10**15, wallet=keypair.public_key_base58)
    idle = 0.5
    handle = signers.start(keypair_path=wallet[0], max_connections=2, idle_timeout_seconds=idle)
    stop = threading.Event()

    def trickle() -> None:
        sock = open_raw(handle.socket_path)
        try:
            sock.sendall(b'{"op":"ping","requestId":"')
            while not stop.wait(idle / 3):  # never idle for a whole timeout, never finishing the line
                sock.sendall(b"0")
        except OSError:
            pass  # closed by the signer: what a per-line deadline would do
        finally:
            sock.close()

    tricklers = [threading.Thread(target=trickle, daemon=True) for _ in range(2)]
    for thread in tricklers:
        thread.start()
    time.sleep(0.2)
    client = AccountedClient(handle.socket_path, journal=Journal(), timeout=10)
    try:
        result, seconds, _ = sign_despite_crowding(
            client, transfer_message(from_key=keypair.public_key, lamports=AMOUNT), within=6 * idle
        )
    finally:
        stop.set()
        for thread in tricklers:
            thread.join(5)
        client.close()
    assert seconds < 6 * idle and not result.duplicate


# -- storage: full, forced read-only, mounted read-only ------------------------------------------------


@contextlib.contextmanager
def mounted(context):
    """Enter a faultkit mount, or skip the test with the reason this machine cannot mount it."""
    with contextlib.ExitStack() as stack:
        try:
            value = stack.enter_context(context)
        except MountUnavailable as exc:
            pytest.skip(str(exc))
        yield value


def sign_until(client: AccountedClient, wallet_key: bytes, count: int) -> list[str]:
    """``count`` sequential sign attempts; each outcome: "signed" or the refusal's message."""
    outcomes = []
    for _ in range(count):
        try:
            client.sign_transaction(transfer_message(from_key=wallet_key, lamports=AMOUNT))
        except DatabaseUnavailable as exc:
            outcomes.append(exc.message)
        else:
            outcomes.append("signed")
    return outcomes


def integrity(database_url: str) -> str:
    path = urlsplit(database_url).path
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def test_a_full_disk_refuses_cleanly_and_signing_resumes_once_space_is_freed(sqlite_signers, wallet, tmp_path):
    signers = sqlite_signers
    _, keypair = wallet
    with mounted(tmpfs(tmp_path / "small", size_bytes=1 << 20)) as mount:
        url = initialise(f"sqlite://{mount}/wallet.db")
        set_wallet_limits(url, keypair.public_key_base58, per_tx=SPEND, daily=10**15)
        handle = signers.start(keypair_path=wallet[0], database_url=url)
        journal = Journal()
        try:
            with AccountedClient(handle.socket_path, journal=journal) as client:
                assert sign_until(client, keypair.public_key, 3) == ["signed"] * 3
                filler = fill(mount)
                # SQLite may still commit into WAL pages it already holds; whatever it cannot
                # write durably is refused, and that signature never leaves.
                while_full = sign_until(client, keypair.public_key, 20)
                refusals = [outcome for outcome in while_full if outcome != "signed"]
                assert refusals, "nothing was refused on a full disk"
                assert all("database or disk is full" in message for message in refusals), refusals[:3]
                assert handle.is_alive() and client.ping()["pong"] is True
                filler.unlink()
                assert sign_until(client, keypair.public_key, 5) == ["signed"] * 5
        finally:
            handle.stop()  # before the unmount
        assert integrity(url) == "ok"
        report = check_accounting(url, journal)
    report.assert_ok()
    assert report.ambiguous == len(refusals) and report.ambiguous_recorded == 0, "a refused commit left no row"
    assert report.first_signatures == 3 + (20 - len(refusals)) + 5


def test_a_file_system_forced_read_only_under_the_signer_refuses_cleanly(sqlite_signers, wallet, tmp_path):
    """ext4 with errors=remount-ro meets an error: the kernel makes it read-only at once, open
    files or not. The signer refuses; the operator stops it, repairs, starts it again."""
    signers = sqlite_signers
    _, keypair = wallet
    socket_path = tmp_path / "run-ro" / "signer.sock"
    journal = Journal()
    with mounted(ext4_loop(tmp_path / "ext4")) as disk:
        url = initialise(f"sqlite://{disk.path}/wallet.db")
        set_wallet_limits(url, keypair.public_key_base58, per_tx=SPEND, daily=10**15)
        handle = signers.start(keypair_path=wallet[0], database_url=url, socket_path=socket_path)
        try:
            with AccountedClient(socket_path, journal=journal) as client:
                assert sign_until(client, keypair.public_key, 3) == ["signed"] * 3
                disk.trigger_error()
                assert disk.is_read_only()
                refused = sign_until(client, keypair.public_key, 5)
                assert all(outcome != "signed" for outcome in refused), refused
                assert any("disk I/O error" in m or "readonly" in m for m in refused), refused
                assert client.ping()["pong"] is True
        finally:
            handle.stop()  # it must let go of the files before the file system can be repaired
        disk.repair()
        assert not disk.is_read_only()
        handle = signers.start(keypair_path=wallet[0], database_url=url, socket_path=socket_path)
        try:
            with AccountedClient(socket_path, journal=journal) as client:
                assert sign_until(client, keypair.public_key, 3) == ["signed"] * 3
        finally:
            handle.stop()
        assert integrity(url) == "ok"
        report = check_accounting(url, journal)
    report.assert_ok()  # the three signed before the error survived it
    assert report.first_signatures == 6 and report.ambiguous == 5 and report.ambiguous_recorded == 0


def test_a_database_on_a_read_only_mount_is_refused_at_start_and_after_a_remount_serves(
    sqlite_signers, wallet, tmp_path
):
    signers = sqlite_signers
    _, keypair = wallet
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    url = initialise(f"sqlite://{data}/wallet.db")
    set_wallet_limits(url, keypair.public_key_base58, per_tx=SPEND, daily=10**15)
    journal = Journal()
    with mounted(read_only_bind(data, tmp_path / "ro-view")) as view:
        read_only_url = f"sqlite://{view}/wallet.db"
        with pytest.raises(SignerStartError, match="unable to open database file"):
            signers.start(keypair_path=wallet[0], database_url=read_only_url)
        assert subprocess.run(["mount", "-o", "remount,bind,rw", str(view)]).returncode == 0
        handle = signers.start(keypair_path=wallet[0], database_url=read_only_url)
        try:
            with AccountedClient(handle.socket_path, journal=journal) as client:
                assert sign_until(client, keypair.public_key, 2) == ["signed"] * 2
        finally:
            handle.stop()
    report = check_accounting(url, journal)
    report.assert_ok()
    assert report.rows == 2


# -- the accounting check itself ----------------------------------------------------------------------


def plant(database_url: str, keypair, journal: Journal, defect: str) -> None:
    """One honest signature and one honest refusal, plus the named defect, in journal and table."""
    import hashlib

    import base58

    from jarvis_wallet.db import session
    from jarvis_wallet.models import WalletTransaction, utc_now
    from jarvis_wallet.solana import compute_spend, parse_message

    def request(message: bytes) -> dict:
        return protocol.build_request(b"s" * 32, op="sign", tx_base64=base64.b64encode(message).decode())

    def error_reply(req: dict, code: str) -> dict:
        return {"requestId": req["requestId"], "ok": False, "error": {"code": code, "message": "no"}}

    def row(req: dict, message: bytes, *, status="signed", signature=None, lamports=SPEND, wallet=None, reason=None,
            recorded=..., payments: list | None = None, duplicate_of=None) -> int:
        """A row as the signer writes it; ``recorded`` (the message bytes) defaults to ``message``."""
        payments = payments if payments is not None else [
            payment.to_dict() for payment in compute_spend(parse_message(message), keypair.public_key).payments
        ]
        with session(database_url):
            return WalletTransaction.create(
                request_id=req["requestId"], wallet=wallet or keypair.public_key_base58, status=status,
                lamports=lamports, fee_lamports=FEE if lamports else 0, message_sha256=hashlib.sha256(message).hexdigest(),
                signature=signature, rejection_reason=reason, created_at=utc_now(), updated_at=utc_now(),
                message_bytes=message if recorded is ... else recorded, payments=json.dumps(payments),
                duplicate_of=duplicate_of,
            ).id

    def signed(message: bytes, *, record=True, signature=None) -> str:
        req = request(message)
        signature = signature or base58.b58encode(keypair.sign(message)).decode()
        journal.finish(journal.begin(req), reply={
            "requestId": req["requestId"], "ok": True, "signature": signature, "wallet": keypair.public_key_base58,
            "lamports": SPEND, "duplicate": False,
        })
        if record:
            row(req, message, signature=signature)
        return signature

    def refused(message: bytes, code: str, *, record=True) -> None:
        req = request(message)
        journal.finish(journal.begin(req), reply=error_reply(req, code))
        if record:
            row(req, message, status="rejected", reason=f"{code}: no")

    def message() -> bytes:
        return transfer_message(from_key=keypair.public_key, lamports=AMOUNT)

    signed(message())
    refused(message(), "per_tx_limit_exceeded")
    if defect == "signature without its row":
        signed(message(), record=False)
    elif defect == "a message counted twice":
        doubled = message()
        signed(doubled)
        row(request(doubled), doubled, signature=base58.b58encode(b"\x01" * 64).decode())
    elif defect == "a row nobody asked for":
        row(request(message()), message(), status="rejected", reason="invalid_tx: no")
    elif defect == "over the daily ceiling":
        for _ in range(3):
            signed(message())
    elif defect == "spending without limits":
        stranger = message()
        row(request(stranger), stranger, signature=base58.b58encode(b"\x02" * 64).decode(), wallet="1" * 32)
    elif defect == "a refusal not recorded":
        refused(message(), "daily_limit_exceeded", record=False)
    elif defect == "an authentication failure recorded":
        bad = message()
        req = request(bad)
        journal.finish(journal.begin(req), reply=error_reply(req, "auth_failed"))
        row(req, bad, status="rejected", reason="invalid_tx: no")
    elif defect == "a signature that does not verify":
        signed(message(), signature=base58.b58encode(b"\x03" * 64).decode())
    elif defect == "a row without its message":
        refused_message = message()
        req = request(refused_message)
        journal.finish(journal.begin(req), reply=error_reply(req, "per_tx_limit_exceeded"))
        row(req, refused_message, status="rejected", reason="per_tx_limit_exceeded: no", recorded=None)
    elif defect == "recorded bytes that are another message":
        refused_message = message()
        req = request(refused_message)
        journal.finish(journal.begin(req), reply=error_reply(req, "per_tx_limit_exceeded"))
        row(req, refused_message, status="rejected", reason="per_tx_limit_exceeded: no", recorded=message())
    elif defect == "a payment left out":  # the recipient hidden
        paying = message()
        req = request(paying)
        journal.finish(journal.begin(req), reply=error_reply(req, "per_tx_limit_exceeded"))
        row(req, paying, status="rejected", reason="per_tx_limit_exceeded: no", payments=[])
    elif defect in ("a re-sign not recorded", "a re-sign that names another row"):
        again = message()
        signature = signed(again)
        with session(database_url):
            original = WalletTransaction.get(WalletTransaction.signature == signature).id
        req = request(again)
        journal.finish(journal.begin(req), reply={
            "requestId": req["requestId"], "ok": True, "signature": signature, "wallet": keypair.public_key_base58,
            "lamports": SPEND, "duplicate": True, "transactionId": original,
        })
        if defect == "a re-sign that names another row":
            row(req, again, status="duplicate", lamports=0, duplicate_of=1)


DEFECTS = {
    "none": None,
    "signature without its row": "was received but has no row",
    "a message counted twice": "has 2 spending rows",
    "a row nobody asked for": "is not explained",
    "over the daily ceiling": "> daily ceiling",
    "spending without limits": "has no limits but 1 spending rows",
    "a refusal not recorded": "refusal daily_limit_exceeded of request",
    "an authentication failure recorded": "is not explained: replied/auth_failed",
    "a signature that does not verify": "does not verify over its message",
    "a row without its message": "has no recorded message bytes",
    "recorded bytes that are another message": "does not hash to its message_sha256",
    "a payment left out": "its recorded payments are not those of its message",
    "a re-sign not recorded": "has no duplicate row naming row",
    "a re-sign that names another row": "of another message or wallet",
}


@pytest.mark.parametrize(("defect", "expected"), DEFECTS.items(), ids=DEFECTS.keys())
def test_the_accounting_check_finds_each_kind_of_discrepancy(tmp_path, defect, expected):
    """The oracle of every test above must be able to say no: each planted defect is reported."""
    url = initialise(f"sqlite://{tmp_path}/wallet.db")
    keypair = Keypair.from_seed(bytes(range(32)))
    set_wallet_limits(url, keypair.public_key_base58, per_tx=SPEND, daily=3 * SPEND)
    journal = Journal()
    plant(url, keypair, journal, defect)
    report = check_accounting(url, journal)
    if expected is None:
        report.assert_ok()
        assert (report.signatures_accounted, report.refusals_recorded, report.rows) == (1, 1, 2)
    else:
        assert not report.ok
        assert any(expected in problem for problem in report.problems), report.problems


# -- the campaign command ----------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["kill", "lock", "cut", "partition"])
def test_the_fault_campaign_command_runs_each_scenario_with_clean_accounting(scenario):
    from conftest import POSTGRES_URL

    argv = [sys.executable, str(Path(__file__).parent.parent / "campaigns" / "faults.py"), "--seconds", "3",
            "--scenario", scenario, "--seed", "3", "--json"]
    if scenario in ("cut", "partition"):
        if not POSTGRES_URL:
            pytest.skip("the scenario needs PostgreSQL")
        if scenario == "partition" and os.geteuid() != 0:
            pytest.skip("a network namespace needs root")
        argv += ["--database-url", POSTGRES_URL]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (report,) = json.loads(result.stdout)["scenarios"]
    assert report["scenario"] == scenario and report["ok"] and report["failures"] == []
    assert report["faults_injected"] >= 1 and report["signatures_received"] > 0
    assert report["signatures_missing"] == 0 and report["problems"] == []
