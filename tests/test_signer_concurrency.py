"""Invariant 3: limits hold under concurrency, across signer processes sharing one database."""

import threading

import base58
import nacl.signing

from jarvis_wallet.client import SignerClient
from jarvis_wallet.db import session
from jarvis_wallet.errors import PolicyDenied
from jarvis_wallet.models import WalletTransaction

from conftest import transfer_message

FEE = 5000
CLIENTS = 16
REQUESTS_PER_CLIENT = 3
AMOUNT = 1000
SPEND = AMOUNT + FEE
FITS = 10  # the daily ceiling holds exactly this many transfers


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
    signed, refused, other = [], [], []
    start = threading.Barrier(CLIENTS)

    def agent(index):
        with SignerClient(handles[index % 2].socket_path, timeout=60) as client:
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
