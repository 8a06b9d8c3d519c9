"""Invariant 3: limits hold under concurrency, across signer processes sharing one database."""

import contextlib
import re
import threading
from collections import Counter

import base58
import nacl.signing
import psycopg2
import pytest

from jarvis_wallet.client import SignerClient
from jarvis_wallet.db import session
from jarvis_wallet.errors import DatabaseUnavailable, JarvisWalletError, PolicyDenied
from jarvis_wallet.ledger import spent_in_window
from jarvis_wallet.models import WalletTransaction, utc_now

from accounting import AccountedClient, Journal, check_accounting
from conftest import SignerFixture, initialise, terminate_sessions, transfer_message

FEE = 5000
CLIENTS = 16
REQUESTS_PER_CLIENT = 3
AMOUNT = 1000
SPEND = AMOUNT + FEE
FITS = 10  # the daily ceiling holds exactly this many transfers


def _sixteen_agents(handles, messages):
    """CLIENTS agents, alternating between the signers, each sends its messages at once:
    ([(message, SignedTransaction)], [refusal reasons]); any other failure fails the test."""
    signed, refused, other = [], [], []
    start = threading.Barrier(CLIENTS)

    def agent(index):
        with SignerClient(handles[index % len(handles)].socket_path, timeout=60) as client:
            client.ping()
            start.wait()
            for message in messages[index]:
                try:
                    signed.append((message, client.sign_transaction(message, purpose=f"agent {index}")))
                except PolicyDenied as exc:
                    refused.append(exc.reason)
                except Exception as exc:  # noqa: BLE001 - collected and asserted below
                    other.append(repr(exc))

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not other
    return signed, refused


def test_two_signers_sixteen_clients_never_exceed_the_daily_ceiling(signers):
    keypair = signers.keypair()
    daily = FITS * SPEND
    signers.set_limits(per_tx=SPEND, daily=daily)
    handles = [signers.start(), signers.start()]  # two processes, one key, one database
    assert handles[0].pid != handles[1].pid
    messages = [
        [transfer_message(from_key=keypair.public_key, lamports=AMOUNT) for _ in range(REQUESTS_PER_CLIENT)]
        for _ in range(CLIENTS)
    ]
    signed, refused = _sixteen_agents(handles, messages)
    assert len(signed) == FITS, "exactly as many are signed as fit under the ceiling"
    assert refused == ["daily_limit_exceeded"] * (CLIENTS * REQUESTS_PER_CLIENT - FITS)
    verify = nacl.signing.VerifyKey(keypair.public_key).verify
    for message, result in signed:
        verify(message, base58.b58decode(result.signature))

    with session(signers.database_url):
        rows = list(WalletTransaction.select().dicts())
    assert len(rows) == CLIENTS * REQUESTS_PER_CLIENT, "every request has exactly one row"
    assert len({row["request_id"] for row in rows}) == len(rows)
    signed_rows = [row for row in rows if row["status"] == "signed"]
    assert sorted(row["signature"] for row in signed_rows) == sorted(r.signature for _, r in signed)
    assert sum(row["lamports"] for row in signed_rows) == FITS * SPEND <= daily
    assert len({r.transaction_id for _, r in signed}) == FITS
    # Both signer processes took part in the decisions.
    for handle in handles:
        with SignerClient(handle.socket_path) as client:
            status = client.status()
        assert status["signed"] + status["refused"] == CLIENTS * REQUESTS_PER_CLIENT // 2


# -- whatever isolation level the operator's database defaults to --------------------------------

ISOLATION_LEVELS = ["read committed", "repeatable read", "serializable"]
SOL = 1_000_000_000
SOL_SPEND = SOL + FEE
RACERS = 48
SIGNERS = 3
DAILY_FITS = 5


@pytest.fixture(params=ISOLATION_LEVELS)
def signers_on_role_default(request, tmp_path, postgres_role_url):
    """Signers whose database role defaults to an isolation level, as an operator may set it."""
    url = initialise(postgres_role_url(default_transaction_isolation=request.param))
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute("SHOW default_transaction_isolation")
        assert cur.fetchone()[0] == request.param, "the role's default is what this case is about"
    fixture = SignerFixture(tmp_path, url)
    yield fixture
    fixture.stop_all()


def _spent_figure(refusal: PolicyDenied) -> int:
    """The signer's own 24-hour total, as its daily_limit_exceeded refusal states it."""
    found = re.search(r"with ([\d,]+) lamports \(.*?\) already spent in the last 24 hours", refusal.message)
    assert found, refusal.message
    return int(found.group(1).replace(",", ""))


def _race(handles, keypair, journal) -> Counter:
    """RACERS clients spread over the signers ask for 1 SOL each at once: the answers' codes."""
    first = len(journal.attempts())
    start = threading.Barrier(RACERS)

    def agent(index):
        with AccountedClient(handles[index % len(handles)].socket_path, journal=journal, timeout=60) as client:
            client.ping()
            start.wait()
            try:
                client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=SOL))
            except JarvisWalletError:
                pass  # the journal has every answer

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return journal.counts(since=first)


def _assert_every_kept_total_is_the_recount(signers, handles, keypair, wallet, journal) -> int:
    """Each signer's incrementally kept 24-hour total equals a recount of the ledger from scratch:
    with the ceiling reached, a further request is refused by every signer, and each says it
    counts exactly what the ledger holds."""
    with session(signers.database_url):
        recount = spent_in_window(wallet, now=utc_now())
    for handle in handles:
        with AccountedClient(handle.socket_path, journal=journal, timeout=60) as client:
            with pytest.raises(PolicyDenied) as refused:
                client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=SOL))
        assert refused.value.reason == "daily_limit_exceeded"
        assert _spent_figure(refused.value) == recount, f"signer pid {handle.pid}"
    return recount


def test_limits_hold_whatever_isolation_level_the_database_role_defaults_to(signers_on_role_default):
    """Issue 10, finding 2: under a REPEATABLE READ default a signer that waited for the lock
    read the total from before the other signer committed (8 signed against 5), and the kept
    total stayed wrong; SERIALIZABLE must not answer ordinary contention database_unavailable.
    The level is pinned on every connection: the race runs again after each signer reconnected."""
    signers = signers_on_role_default
    keypair = signers.keypair()
    wallet = signers.set_limits(per_tx=SOL_SPEND, daily=DAILY_FITS * SOL_SPEND)
    handles = [signers.start() for _ in range(SIGNERS)]
    journal = Journal()
    # Every request decided (none database_unavailable), exactly as many signed as fit.
    each_round = Counter({"ok": RACERS + DAILY_FITS, "daily_limit_exceeded": RACERS - DAILY_FITS})
    assert _race(handles, keypair, journal) == each_round
    assert _assert_every_kept_total_is_the_recount(signers, handles, keypair, wallet, journal) == DAILY_FITS * SOL_SPEND

    # The server drops every signer's session; each reconnects on its next request.
    assert terminate_sessions(signers.database_url) >= SIGNERS
    for handle in handles:
        first = len(journal.attempts())
        with AccountedClient(handle.socket_path, journal=journal, timeout=60) as client:
            for _ in range(3):
                try:
                    client.sign_message(f"reconnect {handle.pid}")  # one message per signer: no duplicates
                    break
                except DatabaseUnavailable:
                    continue
        codes = [attempt.code for attempt in journal.attempts()[first:]]
        assert codes[-1] == "ok" and "database_unavailable" in codes, codes
    signers.set_limits(per_tx=SOL_SPEND, daily=2 * DAILY_FITS * SOL_SPEND)  # the operator allows 5 more
    assert _race(handles, keypair, journal) == each_round
    assert _assert_every_kept_total_is_the_recount(signers, handles, keypair, wallet, journal) == 2 * DAILY_FITS * SOL_SPEND
    check_accounting(signers.database_url, journal).assert_ok()


# -- one mint's daily ceiling ------------------------------------------------------------------

TOKEN_AMOUNT = 2_500_000  # 2.5 USDC


def _usdc_transfer(wallet: bytes, mint: bytes) -> bytes:
    """A fresh TransferChecked of TOKEN_AMOUNT from the wallet's USDC account (random blockhash)."""
    import os

    from jarvis_wallet.solana.associated_token import associated_token_address
    from jarvis_wallet.solana.build import AccountMeta, Instruction, compile_message
    from jarvis_wallet.solana.token import TOKEN_PROGRAM_ID

    source = associated_token_address(wallet, mint, TOKEN_PROGRAM_ID)
    instruction = Instruction(
        TOKEN_PROGRAM_ID,
        (AccountMeta(source, False, True), AccountMeta(mint, False, False), AccountMeta(os.urandom(32), False, True),
         AccountMeta(wallet, True, False)),
        bytes([12]) + TOKEN_AMOUNT.to_bytes(8, "little") + bytes([6]),
    )
    return compile_message(payer=wallet, instructions=[instruction], recent_blockhash=os.urandom(32))


def test_two_signers_sixteen_clients_never_exceed_a_mints_daily_ceiling(signers):
    from jarvis_wallet.models import TokenSpend
    from jarvis_wallet.tokens import add_token, set_token_limits, token_spent_in_window
    from jarvis_wallet.ledger import DAILY_WINDOW

    keypair = signers.keypair()
    wallet = signers.set_limits(per_tx=SOL, daily=1000 * SOL)  # SOL is not what runs out
    mint = bytes(range(1, 33))
    mint_text = base58.b58encode(mint).decode()
    with session(signers.database_url):
        add_token("USDC", mint=mint_text, decimals=6, program="token")
        set_token_limits(wallet, "USDC", per_tx=TOKEN_AMOUNT, daily=FITS * TOKEN_AMOUNT)
    handles = [signers.start(), signers.start()]
    messages = [[_usdc_transfer(keypair.public_key, mint) for _ in range(REQUESTS_PER_CLIENT)] for _ in range(CLIENTS)]
    signed, refused = _sixteen_agents(handles, messages)
    signed = [result for _, result in signed]
    assert len(signed) == FITS
    assert refused == ["token_daily_limit_exceeded"] * (CLIENTS * REQUESTS_PER_CLIENT - FITS)
    assert all([(t.mint, t.amount) for t in result.tokens] == [(mint_text, TOKEN_AMOUNT)] for result in signed)
    with session(signers.database_url):
        assert token_spent_in_window(wallet, mint_text, now=utc_now(), window=DAILY_WINDOW) == FITS * TOKEN_AMOUNT
        rows = list(TokenSpend.select())
        # Every decision recorded its per-mint spend; only the signed ones count.
        assert len(rows) == CLIENTS * REQUESTS_PER_CLIENT
        assert sorted(r.transaction_id for r in rows if r.transaction_id in {s.transaction_id for s in signed}) == sorted(
            s.transaction_id for s in signed
        )
