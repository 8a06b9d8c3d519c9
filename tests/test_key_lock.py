"""The key in one zeroable buffer, and the guard around it: lock, unlock with backoff, lifetime."""

from __future__ import annotations

import threading

import pytest

from jarvis_wallet.errors import KeyMaterialError, SignerLocked
from jarvis_wallet.key_lock import MAX_UNLOCK_DELAY_SECONDS, KeyGuard, LockableKey
from jarvis_wallet.keys import Keypair

DUMMY = Keypair.from_seed(bytes(range(1, 33)))
OTHER = Keypair.from_seed(bytes(range(101, 133)))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _unlocker(passphrase: str) -> Keypair:
    if passphrase != "right":
        raise KeyMaterialError("cannot decrypt keystore k: wrong passphrase (or the keystore was altered)")
    return Keypair.from_seed(bytes(range(1, 33)))


def _guard(**kwargs):
    sleeps: list[float] = []
    events: list[tuple[str, dict]] = []
    guard = KeyGuard(
        LockableKey(DUMMY), unlock_with=kwargs.pop("unlock_with", _unlocker), sleep=sleeps.append,
        on_change=lambda event, fields: events.append((event, fields)), **kwargs,
    )
    return guard, sleeps, events


def test_signs_like_the_keypair_and_lock_zeroes_the_buffer():
    key = LockableKey(DUMMY)
    for message in (b"", b"x", bytes(1232)):
        assert key.sign(message) == DUMMY.sign(message)
    assert not key.secret_is_zero() and key.public_key == DUMMY.public_key
    key.lock()
    assert key.locked and key.secret_is_zero()
    with pytest.raises(SignerLocked) as caught:
        key.sign(b"x")
    assert caught.value.wire_code == "locked" and caught.value.exit_code == 14
    key.load(DUMMY)
    assert key.sign(b"x") == DUMMY.sign(b"x")


def test_only_the_same_key_can_be_loaded_and_nothing_is_shown():
    key = LockableKey(DUMMY)
    with pytest.raises(KeyMaterialError):
        key.load(OTHER)
    assert repr(key) == f"LockableKey(public_key={DUMMY.public_key_base58}, locked=False)"
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_wrong_passphrases_wait_longer_each_time_and_a_success_resets():
    guard, sleeps, events = _guard()
    assert guard.lock(reason="requested", peer_uid=7) is True
    assert guard.lock() is False  # already locked: nothing to do
    for _ in range(3):
        with pytest.raises(KeyMaterialError):
            guard.unlock("wrong")
    assert sleeps == [0.1, 0.2, pytest.approx(0.3)]
    assert guard.failed_unlocks == 3 and guard.locked
    assert guard.unlock("right") is True
    assert not guard.locked and guard.failed_unlocks == 0 and guard.locked_reason is None
    assert guard.key.sign(b"m") == DUMMY.sign(b"m")
    assert guard.unlock("right") is False  # not locked: nothing done
    assert [event for event, _ in events] == ["locked", "unlock_failed", "unlock_failed", "unlock_failed", "unlocked"]
    assert events[0][1] == {"reason": "requested", "peer_uid": 7}


def test_the_delay_is_capped():
    guard, sleeps, _ = _guard()
    guard.lock()
    for _ in range(150):
        with pytest.raises(KeyMaterialError):
            guard.unlock("wrong")
    assert max(sleeps) == MAX_UNLOCK_DELAY_SECONDS and sleeps[-1] == MAX_UNLOCK_DELAY_SECONDS


def test_a_plaintext_key_cannot_be_unlocked():
    guard, _, _ = _guard(unlock_with=None)
    guard.lock()
    with pytest.raises(KeyMaterialError, match="started from a plaintext key file"):
        guard.unlock("anything")
    assert guard.locked


def test_the_key_locks_itself_when_its_lifetime_ends_and_unlock_restarts_it():
    clock = FakeClock()
    guard, _, events = _guard(ttl_seconds=60, clock=clock)
    assert guard.seconds_left() == 60
    clock.now += 59.5
    assert not guard.locked
    clock.now += 0.5
    assert guard.locked and guard.locked_reason == "key_ttl" and guard.key.secret_is_zero()
    assert guard.seconds_left() is None
    guard.unlock("right")
    assert guard.seconds_left() == 60
    assert events[0] == ("locked", {"reason": "key_ttl", "peer_uid": None})


def test_a_lock_waits_for_the_batch_holding_the_key():
    """The worker holds the key for a whole batch: a lock in between would leave it half signed."""
    guard, _, _ = _guard()
    holding, release, locked = threading.Event(), threading.Event(), threading.Event()

    def batch():
        with guard.key.held() as unlocked:
            assert unlocked
            holding.set()
            release.wait(10)
            assert guard.key.sign(b"last") == DUMMY.sign(b"last")  # still signs: the lock waits

    worker = threading.Thread(target=batch)
    worker.start()
    holding.wait(10)
    locker = threading.Thread(target=lambda: (guard.lock(), locked.set()))
    locker.start()
    assert not locked.wait(0.2)  # blocked behind the batch
    release.set()
    worker.join(10)
    locker.join(10)
    assert locked.is_set() and guard.key.secret_is_zero()
    with guard.key.held() as unlocked:
        assert not unlocked
