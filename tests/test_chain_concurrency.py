"""Releases racing signings never let the daily window be overspent (invariant 3 with the chain).

Two forked signers share one database (SQLite and PostgreSQL); clients race to sign (SOL
payments, or token payments against one mint's daily limit) while a sync keeps proving earlier
transactions expired and releasing them. Every release records the
highest row of the wallet when it was made (it is made under the wallet's lock, so every row up
to that id was decided without it and every later one with it); that order lets the test
recompute, for every signature, what the window held when it was decided.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from solders.keypair import Keypair

from jarvis_wallet.chain import blockhashes
from jarvis_wallet.chain.rpc import LatestBlockhash, RpcClient
from jarvis_wallet.chain.sync import sync
from jarvis_wallet.client import SignerClient
from jarvis_wallet.db import session
from jarvis_wallet.errors import PolicyDenied
from jarvis_wallet.ledger import DAILY_WINDOW, SPENDING_STATUSES, spent_in_window
from jarvis_wallet.models import SpendRelease, TokenSpend, WalletTransaction, utc_now
from jarvis_wallet.solana import build_transfer_message
from jarvis_wallet.solana.build import build_token_transfer_message
from jarvis_wallet.solana.pubkey import decode_pubkey, encode_pubkey
from jarvis_wallet.solana.token import TOKEN_PROGRAM_ID
from jarvis_wallet.tokens import add_token, set_token_limits, token_spent_in_window

from accounting import AccountedClient, Journal, check_accounting
from rpc_server import RpcServer

FEE = 5000
AMOUNT = 1000
SPEND = AMOUNT + FEE
FITS = 6
CLIENTS = 8
TARGET = 4 * FITS  # signatures in all: three times the ceiling must come back through releases
MINT = encode_pubkey(bytes([91]) * 32)
TOKEN_AMOUNT = 2_500_000  # 2.5 of a 6-decimal token per payment


def _message(wallet: str, blockhash: str, lamports: int = AMOUNT) -> bytes:
    return build_transfer_message(
        from_pubkey=decode_pubkey(wallet), to_pubkey=bytes(Keypair().pubkey()), lamports=lamports,
        recent_blockhash=decode_pubkey(blockhash),
    )


def _token_message(wallet: str, blockhash: str, amount: int = TOKEN_AMOUNT) -> bytes:
    return build_token_transfer_message(
        wallet=decode_pubkey(wallet), owner=bytes(Keypair().pubkey()), mint=decode_pubkey(MINT), decimals=6,
        token_program=TOKEN_PROGRAM_ID, amount_base_units=amount, recent_blockhash=decode_pubkey(blockhash),
        create=False,
    )


@pytest.mark.parametrize("asset", ["sol", "token"])
def test_releases_racing_signings_never_overspend_the_window(signers, asset):
    tokens = asset == "token"
    daily = FITS * (TOKEN_AMOUNT if tokens else SPEND)
    # Token payments: the mint's daily limit is the one that fills; SOL (fees only) never does.
    wallet = signers.set_limits(per_tx=10**9, daily=10**9) if tokens else signers.set_limits(per_tx=daily, daily=daily)
    if tokens:
        with session(signers.database_url):
            add_token("USDC", mint=MINT, decimals=6, program="token")
            set_token_limits(wallet, "USDC", per_tx=daily, daily=daily)
    message_of = _token_message if tokens else _message
    refusal = "token_daily_limit_exceeded" if tokens else "daily_limit_exceeded"
    # Refusals are free decisions: unbudgeted here, the agents retry until headroom comes back.
    handles = [signers.start(free_decisions_per_second=None), signers.start(free_decisions_per_second=None)]
    rpc = RpcServer().start()  # after the forks: no signer holds its socket
    url = signers.database_url
    done = threading.Event()
    deadline = time.monotonic() + 240
    errors: list[str] = []
    outcomes = {"signed": 0, "refused": 0}
    journal = Journal()
    lock = threading.Lock()

    def fresh_blockhash() -> str:
        return rpc.latest()[0]

    def remember_blockhashes() -> None:
        """What `blockhash`/`send` record when they fetch one (models are bound per process:
        only the releaser's thread opens the database)."""
        with rpc._lock:
            handed_out = dict(rpc.valid)
        for blockhash, last_valid in handed_out.items():
            blockhashes.remember(LatestBlockhash(blockhash, last_valid, 0))

    def agent(index: int) -> None:
        """Sign until the wallet has signed TARGET in all: only released headroom gets it there."""
        try:
            with AccountedClient(handles[index % 2].socket_path, timeout=60, journal=journal) as client:
                while outcomes["signed"] < TARGET and time.monotonic() < deadline:
                    try:
                        client.sign_transaction(message_of(wallet, fresh_blockhash()))
                        key = "signed"
                    except PolicyDenied as exc:
                        assert exc.reason == refusal, exc.reason
                        key = "refused"
                    with lock:
                        outcomes[key] += 1
                    if key == "refused":
                        time.sleep(0.01)
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(repr(exc))

    def releaser() -> None:
        try:
            with session(url) as db:
                client = RpcClient(rpc.url)
                while not done.is_set():
                    remember_blockhashes()
                    rpc.advance(151)  # every blockhash handed out so far is past its last valid height
                    sync(db, client)
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(CLIENTS)]
    release_thread = threading.Thread(target=releaser)
    release_thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    done.set()
    release_thread.join(timeout=300)
    try:
        assert not errors, errors
        assert outcomes["signed"] >= TARGET and outcomes["refused"] > 0
        with session(url):
            rows = list(WalletTransaction.select().where(WalletTransaction.wallet == wallet).order_by(WalletTransaction.id))
            asset_name = MINT if tokens else "SOL"
            releases = list(SpendRelease.select().where((SpendRelease.wallet == wallet) & (SpendRelease.asset == asset_name)))
            token_spend = {t.transaction_id: t.amount_base_units for t in TokenSpend.select().where(TokenSpend.mint == MINT)}
        counted = [row for row in rows if row.status in SPENDING_STATUSES]
        spend = {row.id: token_spend.get(row.id, 0) if tokens else row.lamports for row in counted}
        assert len(counted) == outcomes["signed"]
        assert releases, "the race released something"
        assert len({r.transaction_id for r in releases}) == len(releases), "one release per transaction"
        after = [
            (json.loads(r.evidence)["after_transaction_id"], r.amount_base_units if tokens else r.amount) for r in releases
        ]
        for row in counted:  # what the window held when this one was decided, and it
            before = sum(spend[q.id] for q in counted if q.id < row.id)
            released = sum(amount for after_id, amount in after if after_id < row.id)
            assert before - released + spend[row.id] <= daily, f"row {row.id} overspent the window"
        # The shared audit check agrees: its 24-hour windows subtract the releases each row had seen
        # (gross, the wallet signed about four times its daily ceiling in SOL mode).
        check_accounting(url, journal).assert_ok()
        # Every signer's kept sum saw every release: after a last sync each signs a full day's spend.
        for handle in handles:
            rpc.advance(151)
            with session(url) as db:
                remember_blockhashes()
                sync(db, RpcClient(rpc.url))
                assert spent_in_window(wallet, now=utc_now()) == 0
                if tokens:
                    assert token_spent_in_window(wallet, MINT, now=utc_now(), window=DAILY_WINDOW) == 0
            with SignerClient(handle.socket_path) as client:
                if tokens:
                    client.sign_transaction(_token_message(wallet, fresh_blockhash(), amount=daily))
                else:
                    client.sign_transaction(_message(wallet, fresh_blockhash(), lamports=daily - FEE))
                with pytest.raises(PolicyDenied):
                    client.sign_transaction(message_of(wallet, fresh_blockhash()))
    finally:
        rpc.stop()
