"""RollingSpend keeps the 24-hour spend exact while adjusting it incrementally."""

import datetime
import random

from jarvis_wallet.db import session
from jarvis_wallet.ledger import spent_in_window
from jarvis_wallet.models import SpendRelease, WalletTransaction, utc_now
from jarvis_wallet.spend_window import RollingSpend

from conftest import random_pubkey

STATUSES = ["signed", "submitted", "confirmed", "failed", "expired", "rejected"]


def _release(rng, counter):
    """The chain proved a signed or submitted row expired (all released) or failed (all but a fee):
    its status moves and a release row is appended, keyed by the row's own created_at."""
    candidates = list(WalletTransaction.select().where(WalletTransaction.status.in_(("signed", "submitted"))))
    if not candidates:
        return
    row = rng.choice(candidates)
    expired = rng.random() < 0.5
    amount = row.lamports if expired else max(0, row.lamports - 5000)
    WalletTransaction.update(status="expired" if expired else "failed").where(WalletTransaction.id == row.id).execute()
    if amount:
        counter[0] += 1
        SpendRelease.create(
            transaction_id=row.id, wallet=row.wallet, asset="SOL", amount=amount,
            reason="expired" if expired else "failed", tx_created_at=row.created_at, evidence="{}",
            released_by="test", created_at=utc_now(),
        )


def _insert(wallet, created_at, lamports, status, counter):
    counter[0] += 1
    row = WalletTransaction.create(
        request_id=f"r{counter[0]}", wallet=wallet, status=status, lamports=lamports,
        message_sha256="0" * 64, signature=None if status == "rejected" else f"s{counter[0]}",
        created_at=created_at, updated_at=created_at,
    )
    return row.id


def test_incremental_sum_equals_the_full_sum_through_random_histories(initialised_url):
    rng = random.Random(7)
    wallet, other_wallet = random_pubkey(), random_pubkey()
    counter = [0]
    with session(initialised_url) as db:
        rolling = RollingSpend(db, wallet)
        now = utc_now()
        for step in range(400):
            action = rng.random()
            if action < 0.45:  # another signer (or this one) records a decision
                age = datetime.timedelta(minutes=rng.choice([0, 1, 5, 60, 23 * 60, 24 * 60 + 1]))
                _insert(rng.choice([wallet, wallet, other_wallet]), now - age, rng.randrange(10**6), rng.choice(STATUSES), counter)
            elif action < 0.55:  # this signer records one and tells the tracker
                lamports = rng.randrange(10**6)
                with db.atomic():
                    rolling.current(now)
                    row_id = _insert(wallet, now, lamports, "signed", counter)
                    rolling.recorded(row_id, lamports)
            elif action < 0.7:  # a sync proves one expired or failed
                with db.atomic():
                    _release(rng, counter)
            elif action < 0.9:  # time passes, sometimes by hours
                now += datetime.timedelta(minutes=rng.choice([1, 7, 90, 600]))
            else:  # the clock steps back
                now -= datetime.timedelta(minutes=rng.choice([1, 30]))
            with db.atomic():
                expected = spent_in_window(wallet, now=now)
                assert rolling.current(now) == expected, f"step {step}"
                assert RollingSpend(db, wallet).current(now) == expected, f"step {step}: full recount"


def test_forget_recounts_after_a_failed_transaction(initialised_url):
    wallet = random_pubkey()
    counter = [0]
    with session(initialised_url) as db:
        rolling = RollingSpend(db, wallet)
        now = utc_now()
        _insert(wallet, now, 100, "signed", counter)
        assert rolling.current(now) == 100
        rolling.recorded(10**9, 5)  # a row that was rolled back: the kept sum is now wrong
        assert rolling.current(now) == 105
        rolling.forget()
        assert rolling.current(now) == 100


# -- per mint: RollingTokenSpend ----------------------------------------------------------------

from jarvis_wallet.ledger import DAILY_WINDOW  # noqa: E402
from jarvis_wallet.models import TokenSpend  # noqa: E402
from jarvis_wallet.spend_window import RollingTokenSpend  # noqa: E402
from jarvis_wallet.tokens import token_spent_in_window  # noqa: E402

MINTS = [random_pubkey() for _ in range(3)]


def _insert_with_tokens(wallet, created_at, status, counter, amounts):
    transaction_id = _insert(wallet, created_at, 0, status, counter)
    for mint, amount in amounts.items():
        TokenSpend.create(
            transaction_id=transaction_id, wallet=wallet, mint=mint, symbol="T", amount_base_units=amount,
            created_at=created_at,
        )
    return transaction_id


def _release_tokens(db, rng, counter):
    """The chain proved a signed or submitted row expired or failed: through the real
    settle.record_outcome, which releases every mint it counted (and its lamports, if any)."""
    from jarvis_wallet.chain.settle import Outcome, record_outcome

    candidates = list(WalletTransaction.select().where(WalletTransaction.status.in_(("signed", "submitted"))))
    if not candidates:
        return
    row = rng.choice(candidates)
    outcome = Outcome("expired", row.lamports) if rng.random() < 0.5 else Outcome("failed", 0, chain_fee_lamports=0, error="x")
    assert record_outcome(db, row.id, outcome, endpoint="test", who="test")
    counter[0] += 1


def _reference(wallet, now):
    return {mint: token_spent_in_window(wallet, mint, now=now, window=DAILY_WINDOW) for mint in MINTS}


def test_per_mint_incremental_sums_equal_the_full_sums_through_random_histories(initialised_url):
    """Amounts up to 2**64 - 1, summed far beyond a signed 64-bit integer: exact on both backends."""
    rng = random.Random(11)
    wallet, other_wallet = random_pubkey(), random_pubkey()
    counter = [0]

    def amounts():
        return {mint: rng.choice([1, rng.randrange(10**6), 2**64 - 1]) for mint in rng.sample(MINTS, rng.randrange(1, 3))}

    with session(initialised_url) as db:
        rolling = RollingTokenSpend(db, wallet)
        now = utc_now()
        for step in range(250):
            action = rng.random()
            if action < 0.45:
                age = datetime.timedelta(minutes=rng.choice([0, 1, 60, 23 * 60, 24 * 60 + 1]))
                _insert_with_tokens(rng.choice([wallet, wallet, other_wallet]), now - age, rng.choice(STATUSES), counter, amounts())
            elif action < 0.55:
                spend = amounts()
                with db.atomic():
                    rolling.current(now)
                    transaction_id = _insert_with_tokens(wallet, now, "signed", counter, spend)
                    rolling.recorded(transaction_id, spend)
            elif action < 0.65:  # a sync proves one expired or failed: its tokens come back
                _release_tokens(db, rng, counter)
            elif action < 0.9:
                now += datetime.timedelta(minutes=rng.choice([1, 7, 90, 600]))
            else:
                now -= datetime.timedelta(minutes=rng.choice([1, 30]))
            with db.atomic():
                current = rolling.current(now)
            reference = _reference(wallet, now)
            assert {mint: current.get(mint, 0) for mint in MINTS} == reference, f"step {step}"
            assert {mint: RollingTokenSpend(db, wallet).current(now).get(mint, 0) for mint in MINTS} == reference
        assert max(reference.values()) > 2**63  # the window did go past a signed 64-bit integer
        with db.atomic():
            released = SpendRelease.select().where((SpendRelease.wallet == wallet) & (SpendRelease.asset != "SOL")).count()
        assert released > 10  # releases were picked up, and aged out, along the way


def test_per_mint_forget_recounts(initialised_url):
    wallet, mint = random_pubkey(), MINTS[0]
    counter = [0]
    with session(initialised_url) as db:
        rolling = RollingTokenSpend(db, wallet)
        now = utc_now()
        _insert_with_tokens(wallet, now, "signed", counter, {mint: 2**64 - 1})
        _insert_with_tokens(wallet, now, "signed", counter, {mint: 2**64 - 1})
        assert rolling.current(now) == {mint: 2 * (2**64 - 1)}
        rolling.recorded(10**9, {mint: 5})  # a row that was rolled back
        assert rolling.current(now)[mint] == 2 * (2**64 - 1) + 5
        rolling.forget()
        assert rolling.current(now) == {mint: 2 * (2**64 - 1)}


def test_per_mint_recorded_without_amounts_does_not_step_past_unseen_rows(initialised_url):
    """A batch that read nothing (the wallet had no token limits then) records a SOL-only row:
    rows another signer inserted before it must still be picked up."""
    wallet, mint = random_pubkey(), MINTS[0]
    counter = [0]
    with session(initialised_url) as db:
        rolling = RollingTokenSpend(db, wallet)
        now = utc_now()
        assert rolling.current(now) == {}
        _insert_with_tokens(wallet, now, "signed", counter, {mint: 7})  # another signer
        sol_only = _insert_with_tokens(wallet, now, "signed", counter, {})
        rolling.recorded(sol_only, {})
        assert rolling.current(now) == {mint: 7}
