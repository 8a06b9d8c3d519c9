"""The per-uid budget of uncounted decisions (jarvis_wallet/decision_budget.py), on a fake clock."""

from __future__ import annotations

import pytest

from jarvis_wallet.decision_budget import DecisionBudget, is_free_signature
from jarvis_wallet.errors import RateLimited, SignerUnavailable


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def spend(budget: DecisionBudget, uid: int | None, count: int) -> None:
    for _ in range(count):
        budget.check(uid)
        budget.charge(uid)


def test_a_burst_is_allowed_then_the_uid_is_rate_limited():
    budget = DecisionBudget(per_second=2, burst=5, clock=FakeClock())
    spend(budget, 1000, 5)
    with pytest.raises(RateLimited) as refused:
        budget.check(1000)
    assert refused.value.wire_code == "rate_limited"
    assert isinstance(refused.value, SignerUnavailable) and refused.value.exit_code == 6
    assert str(refused.value) == (
        "too many free decisions for uid 1000 (refusals, and signatures spending under 5,000 lamports): "
        "at most 2 a second are recorded; this request was not decided or recorded, retry in 0.5 s"
    )


def test_the_budget_refills_at_the_rate_and_never_above_the_burst():
    clock = FakeClock()
    budget = DecisionBudget(per_second=2, burst=5, clock=clock)
    spend(budget, 1000, 5)
    clock.now += 0.49
    with pytest.raises(RateLimited):
        budget.check(1000)
    clock.now += 0.01  # one refusal earned
    spend(budget, 1000, 1)
    with pytest.raises(RateLimited):
        budget.check(1000)
    clock.now += 3_600  # an hour idle earns the burst, not 7,200
    spend(budget, 1000, 5)
    with pytest.raises(RateLimited):
        budget.check(1000)


def test_each_uid_has_its_own_budget():
    budget = DecisionBudget(per_second=1, burst=3, clock=FakeClock())
    spend(budget, 1000, 3)
    with pytest.raises(RateLimited):
        budget.check(1000)
    spend(budget, 1001, 3)  # another agent's uid is not held back by the first one's refusals
    spend(budget, None, 3)  # peers without credentials (in-process callers) share one budget


def test_requests_decided_at_once_may_overdraw_and_the_debt_is_paid_back():
    clock = FakeClock()
    budget = DecisionBudget(per_second=10, burst=2, clock=clock)
    for _ in range(6):  # six requests passed the check before any was decided
        budget.check(7)
    for _ in range(6):
        budget.charge(7)  # balance -4
    clock.now += 0.45  # 0.5: still short of one refusal
    with pytest.raises(RateLimited) as refused:
        budget.check(7)
    assert "retry in 0.1 s" in str(refused.value)  # 0.05 s, rounded up to a tenth
    clock.now += 0.06
    budget.check(7)


def test_a_long_flood_records_no_more_than_the_burst_plus_the_rate():
    clock = FakeClock()
    budget = DecisionBudget(per_second=10, burst=100, clock=clock)
    recorded = turned_away = 0
    for _ in range(600 * 1_000):  # ten minutes of 1,000 refusable requests a second
        clock.now += 0.001
        try:
            budget.check(1000)
        except RateLimited:
            turned_away += 1
            continue
        budget.charge(1000)
        recorded += 1
    assert 100 + 10 * 600 - 1 <= recorded <= 100 + 10 * 600  # (the fake clock's float steps)
    assert turned_away == 600_000 - recorded


@pytest.mark.parametrize("per_second, burst", [(0, 10), (-1, 10), (1, 0)])
def test_a_budget_must_allow_something(per_second, burst):
    with pytest.raises(ValueError):
        DecisionBudget(per_second=per_second, burst=burst)


def test_a_signature_is_free_below_one_signatures_fee():
    # Whatever the wallet pays the fee for costs at least 5,000 lamports: never free.
    assert is_free_signature(0) and is_free_signature(4_999)
    assert not is_free_signature(5_000) and not is_free_signature(10**9)
