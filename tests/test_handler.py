"""RequestHandler without sockets: one line in, one line out, with an injected fake ``sign``.

The fake stands in for the signing worker (the database and the key), so these tests pin down
what the handler itself owns: the order of the checks, that nothing reaches ``sign`` unless it
is well formed, authenticated, fresh and unused, that every line gets exactly one reply line,
and the legacy envelope.
"""

from __future__ import annotations

import base64
import json
import os

import base58
import pytest

from jarvis_wallet import protocol
from jarvis_wallet.errors import DatabaseUnavailable, InvalidTransaction, PolicyDenied
from jarvis_wallet.handler import RequestHandler
from jarvis_wallet.keys import Keypair, SharedSecret
from jarvis_wallet.decision_budget import DecisionBudget
from jarvis_wallet.signing import Peer, SignJob, SignOutcome

SECRET = b"handler-test-shared-secret-0123456789"
NOW_MS = 1_767_225_600_000
WINDOW_MS = 30_000
KEYPAIR = Keypair.from_seed(bytes(range(1, 33)))
TX_BYTES = b"\x01" + bytes(64) + b"a message the fake signer never parses"
TX_BASE64 = base64.b64encode(TX_BYTES).decode("ascii")


class FakeSigner:
    """The ``sign`` callable: records each job, answers with a real signature or raises."""

    def __init__(self) -> None:
        self.jobs: list[SignJob] = []
        self.raise_next: BaseException | None = None
        self.lamports = 12_345  # the spend each signature counts against the limits, fee included
        self.duplicate = False

    def __call__(self, job: SignJob) -> SignOutcome:
        self.jobs.append(job)
        if self.raise_next is not None:
            error, self.raise_next = self.raise_next, None
            raise error
        payload = job.tx_bytes if job.tx_bytes is not None else job.text.encode()
        signature = KEYPAIR.sign(payload)
        return SignOutcome(
            transaction_id=len(self.jobs),
            wallet=KEYPAIR.public_key_base58,
            signature=signature,
            signed_bytes=payload + b"|signed",
            lamports=self.lamports,
            fee_lamports=min(self.lamports, 5000),
            duplicate=self.duplicate,
        )


class Clock:
    def __init__(self, now_ms: int = NOW_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def fake():
    return FakeSigner()


@pytest.fixture
def clock():
    return Clock()


def make_handler(fake, clock, **kwargs) -> RequestHandler:
    return RequestHandler(
        secret=SharedSecret(SECRET),
        public_key=KEYPAIR.public_key,
        sign=fake,
        freshness_window_ms=WINDOW_MS,
        clock_ms=clock,
        **kwargs,
    )


@pytest.fixture
def handler(fake, clock):
    return make_handler(fake, clock)


def line_of(obj) -> bytes:
    return json.dumps(obj).encode("utf-8")


def reply(handler: RequestHandler, line: bytes, peer: Peer = Peer(uid=1000, pid=4242)) -> dict:
    out = handler.handle_line(line, peer)
    # Exactly one ASCII line, newline-terminated, holding one JSON object.
    assert out.endswith(b"\n") and out.count(b"\n") == 1
    assert out.isascii()
    return json.loads(out)


def sign_request(**overrides) -> dict:
    fields = dict(op="sign", timestamp_ms=NOW_MS, tx_base64=TX_BASE64)
    fields.update(overrides)
    return protocol.build_request(SECRET, **fields)


def error_code(response: dict) -> str:
    assert response["ok"] is False, response
    return response["error"]["code"]


# --- ops that need no key --------------------------------------------------------------------


def test_ping_and_pubkey_need_no_secret_and_never_reach_sign(handler, fake):
    ping = reply(handler, line_of({"op": "ping", "requestId": protocol.new_request_id()}))
    assert ping["ok"] is True and ping["pong"] is True and ping["version"] == protocol.PROTOCOL_VERSION
    pubkey = reply(handler, line_of({"op": "pubkey", "requestId": protocol.new_request_id()}))
    assert pubkey["publicKey"] == KEYPAIR.public_key_base58
    assert fake.jobs == []


def test_a_ping_that_carries_an_hmac_is_checked_like_a_signing_request(handler):
    good = protocol.build_request(SECRET, op="ping", timestamp_ms=NOW_MS)
    assert reply(handler, line_of(good))["ok"] is True
    forged = protocol.build_request(b"x" * 32, op="ping", timestamp_ms=NOW_MS)
    assert error_code(reply(handler, line_of(forged))) == "auth_failed"


def test_status_requires_authentication_and_reports_counters(handler, fake):
    unauthenticated = {"op": "status", "requestId": protocol.new_request_id()}
    assert error_code(reply(handler, line_of(unauthenticated))) == "bad_request"
    assert reply(handler, line_of(sign_request()))["ok"] is True
    fake.raise_next = PolicyDenied("over the limit", reason="per_tx_limit_exceeded")
    assert error_code(reply(handler, line_of(sign_request()))) == "per_tx_limit_exceeded"
    status = reply(handler, line_of(protocol.build_request(SECRET, op="status", timestamp_ms=NOW_MS)))
    assert status["ok"] is True
    assert (status["signed"], status["refused"]) == (1, 1)
    assert status["publicKey"] == KEYPAIR.public_key_base58 and status["pid"] == os.getpid()


# --- the sign path ---------------------------------------------------------------------------


def test_sign_hands_the_worker_exactly_what_was_authenticated(handler, fake):
    request = sign_request(purpose="pay invoice 42")
    peer = Peer(uid=1000, pid=4242)
    response = reply(handler, line_of(request), peer)
    (job,) = fake.jobs
    assert job == SignJob(request_id=request["requestId"], tx_bytes=TX_BYTES, purpose="pay invoice 42", peer=peer)
    assert response["ok"] is True and response["requestId"] == request["requestId"]
    signature = base58.b58decode(response["signature"])
    assert KEYPAIR.verify(TX_BYTES, signature)
    assert base64.b64decode(response["signedTxBase64"]) == TX_BYTES + b"|signed"
    assert (response["lamports"], response["feeLamports"], response["transactionId"]) == (12_345, 5000, 1)
    assert response["wallet"] == KEYPAIR.public_key_base58 and response["duplicate"] is False


def test_sign_message_builds_a_text_job(handler, fake):
    request = protocol.build_request(SECRET, op="sign_message", timestamp_ms=NOW_MS, message="hello agent")
    response = reply(handler, line_of(request))
    (job,) = fake.jobs
    assert job.text == "hello agent" and job.tx_bytes is None
    assert response["ok"] is True and "signedMessageBase64" in response


def test_a_wrong_hmac_is_auth_failed_and_reaches_nothing(handler, fake):
    wrong_secret = b"not-the-shared-secret-but-32-bytes!"
    forged = protocol.build_request(wrong_secret, op="sign", timestamp_ms=NOW_MS, tx_base64=TX_BASE64)
    assert error_code(reply(handler, line_of(forged))) == "auth_failed"
    tampered = dict(sign_request(), purpose="added after signing")
    assert error_code(reply(handler, line_of(tampered))) == "auth_failed"
    assert fake.jobs == []


@pytest.mark.parametrize("offset_ms", [-WINDOW_MS - 1, WINDOW_MS + 1, -10**9, 10**9])
def test_a_stale_timestamp_either_side_is_refused(handler, fake, offset_ms):
    response = reply(handler, line_of(sign_request(timestamp_ms=NOW_MS + offset_ms)))
    assert error_code(response) == "stale_request"
    assert fake.jobs == []


@pytest.mark.parametrize("offset_ms", [-WINDOW_MS, WINDOW_MS, 0])
def test_the_window_edges_are_fresh(handler, fake, offset_ms):
    assert reply(handler, line_of(sign_request(timestamp_ms=NOW_MS + offset_ms)))["ok"] is True
    assert len(fake.jobs) == 1


def test_the_same_request_twice_is_replayed_and_signed_once(handler, fake):
    line = line_of(sign_request())
    assert reply(handler, line)["ok"] is True
    second = reply(handler, line)
    assert error_code(second) == "replayed_request"
    assert len(fake.jobs) == 1


def test_a_forged_request_cannot_burn_a_request_id(handler, fake):
    """HMAC first: a forgery carrying someone's id must not make the signer remember that id."""
    genuine = sign_request()
    forged = dict(genuine, hmac="0" * 64)
    assert error_code(reply(handler, line_of(forged))) == "auth_failed"
    assert reply(handler, line_of(genuine))["ok"] is True


def test_a_replay_after_the_window_is_stale_not_signed(handler, fake, clock):
    line = line_of(sign_request())
    assert reply(handler, line)["ok"] is True
    clock.now_ms += WINDOW_MS + 1
    assert error_code(reply(handler, line)) == "stale_request"
    assert len(fake.jobs) == 1


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (PolicyDenied("daily ceiling", reason="daily_limit_exceeded"), "daily_limit_exceeded"),
        (PolicyDenied("no limits", reason="no_limits"), "no_limits"),
        (InvalidTransaction("trailing bytes"), "invalid_tx"),
        (DatabaseUnavailable("database is down"), "database_unavailable"),
    ],
)
def test_worker_refusals_keep_their_codes_and_are_counted(handler, fake, error, code):
    fake.raise_next = error
    request = sign_request()
    response = reply(handler, line_of(request))
    assert error_code(response) == code
    assert response["requestId"] == request["requestId"]
    assert "signature" not in response and "signedTxBase64" not in response
    assert (handler.stats.signed, handler.stats.refused) == (0, 1)


def test_an_unexpected_worker_failure_is_internal_error_and_says_nothing_more(handler, fake):
    fake.raise_next = RuntimeError("/secret/path and other internals")
    request = sign_request()
    response = reply(handler, line_of(request))
    assert error_code(response) == "internal_error"
    assert response["requestId"] == request["requestId"]
    assert "internals" not in json.dumps(response)
    # ...and the handler keeps working.
    assert reply(handler, line_of(sign_request()))["ok"] is True


# --- bad input -------------------------------------------------------------------------------

BAD_LINES = {
    "empty": (b"", "bad_request"),
    "garbage": (b"\x00\x01garbage\xfe", "bad_request"),
    "non-utf8": (b'{"op":"ping","requestId":"\xff"}', "bad_request"),
    "not-json": (b"op=sign&tx=1", "bad_request"),
    "json-array": (b'["op","ping"]', "bad_request"),
    "json-string": (b'"ping"', "bad_request"),
    "deep-nesting": (b'{"op":' + b"[" * 30_000 + b"]" * 30_000 + b"}", "bad_request"),
    "duplicate-keys": (b'{"op":"ping","op":"sign","requestId":"3f1c9a52-7b4e-4d0a-9c6f-2e8b5d7a1f03"}', "bad_request"),
    "unknown-op": (b'{"op":"export_key","requestId":"3f1c9a52-7b4e-4d0a-9c6f-2e8b5d7a1f03"}', "unknown_op"),
    "op-not-a-string": (b'{"op":1,"requestId":"3f1c9a52-7b4e-4d0a-9c6f-2e8b5d7a1f03"}', "bad_request"),
    "unknown-field": (b'{"op":"ping","requestId":"3f1c9a52-7b4e-4d0a-9c6f-2e8b5d7a1f03","key":1}', "bad_request"),
    "huge-integer": (b'{"op":"ping","timestamp":' + b"9" * 5000 + b"}", "bad_request"),
    "nan": (b'{"op":"ping","timestamp":NaN}', "bad_request"),
    "too-long": (b'{"a":"' + b"x" * protocol.MAX_LINE_BYTES + b'"}', "line_too_long"),
}


@pytest.mark.parametrize(("line", "code"), BAD_LINES.values(), ids=BAD_LINES.keys())
def test_bad_lines_get_one_error_line_and_never_reach_sign(handler, fake, line, code):
    response = reply(handler, line)
    assert error_code(response) == code
    assert fake.jobs == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timestamp", True),
        ("timestamp", float(NOW_MS)),
        ("timestamp", str(NOW_MS)),
        ("timestamp", -1),
        ("txBase64", 12),
        ("txBase64", None),
        ("requestId", 7),
        ("requestId", "not-a-uuid"),
        ("hmac", "A" * 64),
        ("purpose", ["a list"]),
    ],
)
def test_wrongly_typed_fields_are_bad_request_before_authentication(handler, fake, field, value):
    request = dict(sign_request(), **{field: value})
    response = reply(handler, line_of(request))
    assert error_code(response) == "bad_request"
    assert fake.jobs == []


def test_malformed_base64_is_invalid_tx_and_reaches_nothing(handler, fake):
    fields = {"op": "sign", "requestId": protocol.new_request_id(), "timestamp": NOW_MS, "txBase64": "AQ"}
    request = protocol.sign_request(SECRET, fields)
    assert error_code(reply(handler, line_of(request))) == "invalid_tx"
    assert fake.jobs == []


def test_a_malformed_request_id_is_not_echoed(handler):
    response = reply(handler, b'{"op":"ping","requestId":"<script>"}')
    assert response["requestId"] is None


# --- the budget of free decisions ------------------------------------------------------------------------


class MonotonicClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def status_of(handler: RequestHandler) -> dict:
    return reply(handler, line_of(protocol.build_request(SECRET, op="status", timestamp_ms=NOW_MS)))


def test_past_its_budget_of_refusals_a_uid_is_rate_limited_and_nothing_is_decided(fake, clock):
    seconds = MonotonicClock()
    handler = make_handler(fake, clock, decision_budget=DecisionBudget(per_second=1, burst=2, clock=seconds))
    agent, other_agent = Peer(uid=1000, pid=1), Peer(uid=1001, pid=2)
    for _ in range(2):
        fake.raise_next = PolicyDenied("over the limit", reason="per_tx_limit_exceeded")
        assert error_code(reply(handler, line_of(sign_request()), agent)) == "per_tx_limit_exceeded"
    decided = len(fake.jobs)
    limited = reply(handler, line_of(sign_request()), agent)
    assert error_code(limited) == "rate_limited"
    assert limited["error"]["message"].startswith("too many free decisions for uid 1000 (refusals")
    assert len(fake.jobs) == decided  # turned away before the worker: not decided, not recorded
    # Signatures that spend cost nothing; another uid has its own budget.
    assert reply(handler, line_of(sign_request()), other_agent)["ok"] is True
    seconds.now += 1.0
    assert reply(handler, line_of(sign_request()), agent)["ok"] is True
    assert reply(handler, line_of(sign_request()), agent)["ok"] is True
    # Parse failures the worker records count too; one more refusal empties the budget again.
    fake.raise_next = InvalidTransaction("trailing bytes")
    assert error_code(reply(handler, line_of(sign_request()), agent)) == "invalid_tx"
    assert error_code(reply(handler, line_of(sign_request()), agent)) == "rate_limited"
    status = status_of(handler)
    assert (status["signed"], status["refused"], status["rateLimited"]) == (3, 3, 2)


def test_signatures_that_spend_next_to_nothing_cost_budget_like_refusals(fake, clock):
    """A zero-spend signature (an off-chain message, a transaction another account pays for) is
    recorded but counted against no limit: it draws on the same budget as a refusal, and so does
    one spending less than a signature's fee, which only another account's fee makes possible."""
    seconds = MonotonicClock()
    handler = make_handler(fake, clock, decision_budget=DecisionBudget(per_second=1, burst=3, clock=seconds))
    fake.lamports = 4_999
    assert reply(handler, line_of(sign_request()))["ok"] is True
    fake.lamports = 0
    message = protocol.build_request(SECRET, op="sign_message", timestamp_ms=NOW_MS, message="hello agent")
    assert reply(handler, line_of(message))["ok"] is True
    assert reply(handler, line_of(sign_request()))["ok"] is True  # the third new row: budget spent
    decided = len(fake.jobs)
    for request in (sign_request(), protocol.build_request(SECRET, op="sign_message", timestamp_ms=NOW_MS, message="hi")):
        limited = reply(handler, line_of(request))
        assert error_code(limited) == "rate_limited"
        assert "retry in 1.0 s" in limited["error"]["message"]
    assert len(fake.jobs) == decided  # turned away before the worker: not decided, not recorded
    seconds.now += 1.0
    assert reply(handler, line_of(sign_request()))["ok"] is True
    status = status_of(handler)
    assert (status["signed"], status["refused"], status["rateLimited"]) == (4, 0, 2)


def test_re_signs_cost_budget_like_refusals(fake, clock):
    """A re-sign (a message signed before, asked for again) is answered with the recorded
    signature and gets a `duplicate` row of its own that counts nothing: asked for in a loop
    under new request ids, it would grow the audit trail for free, like refusals."""
    handler = make_handler(fake, clock, decision_budget=DecisionBudget(per_second=1, burst=3, clock=MonotonicClock()))
    fake.lamports, fake.duplicate = 6_000, True
    for _ in range(3):
        assert reply(handler, line_of(sign_request()))["ok"] is True
    decided = len(fake.jobs)
    assert error_code(reply(handler, line_of(sign_request()))) == "rate_limited"
    assert len(fake.jobs) == decided


def test_signatures_that_spend_cost_no_budget(fake, clock):
    handler = make_handler(fake, clock, decision_budget=DecisionBudget(per_second=1, burst=1, clock=MonotonicClock()))
    fake.lamports = 5_000  # one signature's fee, the least the wallet pays when it pays the fee
    for _ in range(5):
        assert reply(handler, line_of(sign_request()))["ok"] is True


def test_refusals_that_leave_no_row_cost_no_budget(fake, clock):
    handler = make_handler(fake, clock, decision_budget=DecisionBudget(per_second=1, burst=1, clock=MonotonicClock()))
    for _ in range(3):  # the database could not record them: nothing was recorded, nothing charged
        fake.raise_next = DatabaseUnavailable("database is locked")
        assert error_code(reply(handler, line_of(sign_request()))) == "database_unavailable"
    forged = protocol.build_request(b"w" * 32, op="sign", timestamp_ms=NOW_MS, tx_base64=TX_BASE64)
    assert error_code(reply(handler, line_of(forged))) == "auth_failed"
    assert reply(handler, line_of(sign_request()))["ok"] is True


def test_a_legacy_request_past_the_budget_is_a_sign_error_with_the_reason(fake, clock):
    handler = make_handler(
        fake, clock, legacy_protocol=True, decision_budget=DecisionBudget(per_second=1, burst=1, clock=MonotonicClock())
    )
    fake.raise_next = PolicyDenied("over the limit", reason="per_tx_limit_exceeded")
    assert reply(handler, line_of(legacy_request("order-1")))["reason"] == "per_tx_limit_exceeded"
    response = reply(handler, line_of(legacy_request("order-2")))
    assert (response["error"], response["reason"]) == ("sign_error", "rate_limited")
    assert len(fake.jobs) == 1
    status = status_of(handler)
    assert (status["refused"], status["rateLimited"]) == (1, 1)


# --- legacy mode -----------------------------------------------------------------------------


def legacy_request(request_id: str = "order-1", *, tx_base64: str = TX_BASE64, secret: bytes = SECRET) -> dict:
    return {"hmac": protocol.compute_legacy_hmac(secret, tx_base64), "txBase64": tx_base64, "requestId": request_id}


@pytest.fixture
def legacy_handler(fake, clock):
    return make_handler(fake, clock, legacy_protocol=True)


def test_legacy_request_is_signed_with_the_original_envelope(legacy_handler, fake):
    response = reply(legacy_handler, line_of(legacy_request("order-1")))
    assert set(response) == {"ok", "signedTxBase64", "requestId"}
    assert response["ok"] is True and response["requestId"] == "order-1"
    assert KEYPAIR.verify(TX_BYTES, base64.b64decode(response["signedTxBase64"]))
    (job,) = fake.jobs
    assert job.tx_bytes == TX_BYTES and job.request_id.startswith("legacy")


@pytest.mark.parametrize(
    ("request_obj", "error", "reason"),
    [
        (legacy_request(secret=b"w" * 32), "auth_failed", "auth_failed"),
        (legacy_request(tx_base64="AQ"), "invalid_tx", "invalid_tx"),
        ({"hmac": "0" * 64, "txBase64": TX_BASE64, "requestId": "x", "extra": 1}, "invalid_tx", "bad_request"),
    ],
)
def test_legacy_refusals_use_the_three_original_codes(legacy_handler, fake, request_obj, error, reason):
    response = reply(legacy_handler, line_of(request_obj))
    assert response["ok"] is False and response["error"] == error and response["reason"] == reason
    assert fake.jobs == []


def test_legacy_policy_refusal_is_sign_error_with_the_reason(legacy_handler, fake):
    fake.raise_next = PolicyDenied("over the per-transaction ceiling", reason="per_tx_limit_exceeded")
    response = reply(legacy_handler, line_of(legacy_request()))
    assert response["ok"] is False and response["error"] == "sign_error"
    assert response["reason"] == "per_tx_limit_exceeded" and response["requestId"] == "order-1"


def test_legacy_unexpected_failure_keeps_the_legacy_envelope(legacy_handler, fake):
    """Original clients read ``error`` as a string; a v1 error object would break them."""
    fake.raise_next = TimeoutError("the worker did not answer")
    response = reply(legacy_handler, line_of(legacy_request()))
    assert response["ok"] is False
    assert response["error"] == "sign_error" and response["reason"] == "internal_error"
    assert response["requestId"] == "order-1"


def test_legacy_ids_fit_the_audit_trail_and_stay_distinct(legacy_handler, fake):
    """wallet_transactions.request_id is VARCHAR(64); a 64-character legacy id must still fit."""
    ids = ["a", "b" * 57, "c" * 58, "d" * 64, "d" * 63 + "e", "sha256:" + "0" * 50]
    for request_id in ids:
        assert reply(legacy_handler, line_of(legacy_request(request_id)))["ok"] is True
    job_ids = [job.request_id for job in fake.jobs]
    assert all(len(job_id) <= 64 for job_id in job_ids), job_ids
    assert len(set(job_ids)) == len(ids)
    # Never the same as a version 1 id, which is a bare UUID.
    assert not any(protocol.is_request_id(job_id) for job_id in job_ids)


def test_legacy_requests_are_refused_as_v1_when_legacy_mode_is_off(handler, fake):
    response = reply(handler, line_of(legacy_request("order-1")))
    assert error_code(response) == "bad_request"
    assert "op" in response["error"]["message"]
    assert fake.jobs == []


def test_legacy_mode_still_serves_v1_requests(legacy_handler, fake):
    assert reply(legacy_handler, line_of(sign_request()))["ok"] is True
    assert fake.jobs[0].request_id and protocol.is_request_id(fake.jobs[0].request_id)


def test_a_uid_flooding_its_replay_cache_with_future_ids_locks_out_only_itself(fake, clock):
    """Second review of #10: one cache for every uid, filled with ids dated near the end of the
    freshness window, raised its low-water mark into the future and refused every other
    client's fresh requests as stale. Each uid now has its own cache."""
    handler = make_handler(fake, clock, replay_cache_entries=50)
    flooder, other = Peer(uid=1000, pid=1), Peer(uid=1001, pid=2)
    future = NOW_MS + WINDOW_MS - 500
    answers = [  # more than the cache holds: its oldest second is forgotten early, the mark moves up
        reply(handler, line_of(protocol.build_request(SECRET, op="status", timestamp_ms=future)), peer=flooder)
        for _ in range(60)
    ]
    assert [answer["ok"] for answer in answers[:50]] == [True] * 50
    fresh = protocol.build_request(SECRET, op="status", timestamp_ms=NOW_MS)
    assert error_code(reply(handler, line_of(fresh), peer=flooder)) == "stale_request"
    assert reply(handler, line_of(fresh), peer=other)["ok"] is True


# --- lock and unlock --------------------------------------------------------------------------


def _guarded_handler(fake, clock, **kwargs):
    from jarvis_wallet.errors import KeyMaterialError
    from jarvis_wallet.key_lock import KeyGuard, LockableKey

    def unlock_with(passphrase):
        if passphrase != "open sesame":
            raise KeyMaterialError("cannot decrypt keystore k: wrong passphrase (or the keystore was altered)")
        return KEYPAIR

    guard = KeyGuard(LockableKey(KEYPAIR), unlock_with=unlock_with, sleep=lambda seconds: None)
    return make_handler(fake, clock, key_guard=guard, **kwargs), guard


def test_lock_needs_no_secret_and_unlock_needs_both_the_secret_and_the_passphrase(fake, clock):
    handler, guard = _guarded_handler(fake, clock)
    locked = reply(handler, line_of({"op": "lock", "requestId": protocol.new_request_id()}))
    assert locked["ok"] is True and locked["locked"] is True and locked["wasUnlocked"] is True
    assert guard.locked and guard.key.secret_is_zero()
    status = reply(handler, line_of(protocol.build_request(SECRET, op="status", timestamp_ms=NOW_MS)))
    assert (status["locked"], status["lockedReason"], status["keyTtlSecondsLeft"]) == (True, "requested", None)

    unsigned = {"op": "unlock", "requestId": protocol.new_request_id(), "passphrase": "open sesame"}
    assert error_code(reply(handler, line_of(unsigned))) == "bad_request"  # no hmac, no timestamp
    wrong = reply(handler, line_of(protocol.build_request(SECRET, op="unlock", timestamp_ms=NOW_MS,
                                                          passphrase="open sesame!")))
    assert error_code(wrong) == "bad_passphrase" and "open sesame" not in json.dumps(wrong)
    forged = protocol.build_request(b"another-secret-of-at-least-32-bytes!!", op="unlock", timestamp_ms=NOW_MS,
                                    passphrase="open sesame")
    assert error_code(reply(handler, line_of(forged))) == "auth_failed"
    assert guard.failed_unlocks == 1  # a forged request never reached the passphrase check
    opened = reply(handler, line_of(protocol.build_request(SECRET, op="unlock", timestamp_ms=NOW_MS,
                                                           passphrase="open sesame")))
    assert opened["ok"] is True and opened["wasLocked"] is True and not guard.locked
    assert handler.stats.errors_by_code() == {"auth_failed": 1, "bad_passphrase": 1, "bad_request": 1}


def test_a_passphrase_field_is_only_for_unlock_and_is_never_quoted(handler):
    request = {"op": "lock", "requestId": protocol.new_request_id(), "passphrase": "hunter2 hunter2"}
    response = reply(handler, line_of(request))
    assert error_code(response) == "bad_request" and "hunter2" not in json.dumps(response)
    too_long = protocol.sign_request(SECRET, {"op": "unlock", "requestId": protocol.new_request_id(),
                                              "timestamp": NOW_MS, "passphrase": "p" * 4097})
    response = reply(handler, line_of(too_long))
    assert error_code(response) == "bad_request" and "ppp" not in json.dumps(response)


def test_a_locked_signer_answers_legacy_clients_with_sign_error_and_the_reason(fake, clock):
    from jarvis_wallet.key_lock import locked_error

    handler, _ = _guarded_handler(fake, clock, legacy_protocol=True)
    fake.raise_next = locked_error()  # what the signing worker answers while the key is locked
    response = reply(handler, line_of(legacy_request("order-9")))
    assert (response["ok"], response["error"], response["reason"]) == (False, "sign_error", "locked")
    assert response["requestId"] == "order-9"


# -- approvals -------------------------------------------------------------------------------------


def _approval_state(status: str, approval_id: int = 7):
    from jarvis_wallet.approvals import ApprovalState

    return ApprovalState(approval_id, KEYPAIR.public_key_base58, status, "2026-01-01T00:15:00.000000Z", None, None, None)


def _wait_request(clock, **fields) -> bytes:
    obj = {"op": "wait_for_approval", "requestId": protocol.new_request_id(), "timestamp": clock.now_ms,
           "approvalId": 7, **fields}
    return line_of(protocol.sign_request(SECRET, obj))


def test_wait_for_approval_answers_once_the_request_is_decided(fake, clock):
    states = iter(["pending", "pending", "approved"])
    asked, slept = [], []

    def state(approval_id, wallet):
        asked.append((approval_id, wallet))
        return _approval_state(next(states))

    handler = make_handler(fake, clock, approval_state=state, sleep=slept.append)
    response = reply(handler, _wait_request(clock, waitMs=10_000))
    assert (response["ok"], response["state"], response["approvalId"]) == (True, "approved", 7)
    assert asked == [(7, KEYPAIR.public_key_base58)] * 3 and len(slept) == 2
    assert fake.jobs == []  # it asks the database, never the signing path


def test_wait_for_approval_without_wait_answers_at_once_and_never_signs(fake, clock):
    slept = []
    handler = make_handler(fake, clock, approval_state=lambda i, w: _approval_state("pending"), sleep=slept.append)
    assert reply(handler, _wait_request(clock))["state"] == "pending"
    assert slept == [] and fake.jobs == []


def test_wait_for_approval_is_authenticated_and_bounded(fake, clock):
    handler = make_handler(fake, clock, approval_state=lambda i, w: _approval_state("approved"))
    unsigned = {"op": "wait_for_approval", "requestId": protocol.new_request_id(), "timestamp": clock.now_ms,
                "approvalId": 7, "hmac": "0" * 64}
    assert reply(handler, line_of(unsigned))["error"]["code"] == "auth_failed"
    assert reply(handler, _wait_request(clock, waitMs=60_001))["error"]["code"] == "bad_request"
    assert reply(handler, _wait_request(clock, approvalId=0))["error"]["code"] == "bad_request"
    as_bool = {"op": "wait_for_approval", "requestId": protocol.new_request_id(), "timestamp": clock.now_ms,
               "approvalId": True, "hmac": "0" * 64}
    assert reply(handler, line_of(as_bool))["error"]["code"] == "bad_request"
    without = make_handler(fake, clock)  # no database: nothing to report
    assert reply(without, _wait_request(clock))["error"]["code"] == "not_found"


def test_approval_required_carries_the_held_request_and_notifies_once(fake, clock):
    from jarvis_wallet.errors import ApprovalRequired

    notified = []
    handler = make_handler(fake, clock, notify_approval=notified.append)
    payments = [{"instruction_index": 0, "kind": "transfer", "destination": "D", "destination_label": "D", "lamports": 9}]
    for new in (True, False):
        fake.raise_next = ApprovalRequired(
            "held", approval_id=7, expires_at="2026-01-01T00:15:00.000000Z", new=new,
            details={"lamports": 5009, "fee_lamports": 5000, "payments": payments, "purpose": "rent"},
        )
        response = reply(handler, line_of(sign_request()))
        assert response["error"]["code"] == "approval_required"
        assert response["approval"]["approvalId"] == 7 and response["approval"]["destinations"] == ["D"]
    assert [doc["approval_id"] for doc in notified] == [7]  # only the request that opened it
    assert handler.stats.refused == 2 and handler.stats.signed == 0


# --- the two halves a serving loop uses: begin_line, then the decision or the call ------------


def test_begin_line_answers_ping_at_once_and_hands_a_sign_over_undecided(handler, fake):
    from jarvis_wallet.handler import PendingDecision

    ping = handler.begin_line(line_of({"op": "ping", "requestId": protocol.new_request_id()}), Peer(uid=1000))
    assert isinstance(ping, bytes) and json.loads(ping)["pong"] is True
    request = sign_request()
    pending = handler.begin_line(line_of(request), Peer(uid=1000, pid=4242))
    assert isinstance(pending, PendingDecision)
    assert fake.jobs == [] and handler.stats.signed == 0  # nothing decided, nothing counted yet
    assert pending.job.request_id == request["requestId"] and pending.job.tx_bytes == TX_BYTES
    assert pending.job.peer == Peer(uid=1000, pid=4242)
    signed = json.loads(pending.finish(fake(pending.job)))
    assert signed["ok"] is True and signed["requestId"] == request["requestId"]
    assert handler.stats.signed == 1
    # Authenticated and remembered in begin_line: the same line again is a replay, answered at once.
    assert error_code(json.loads(handler.begin_line(line_of(request), Peer(uid=1000)))) == "replayed_request"


@pytest.mark.parametrize(
    ("result", "code"),
    [
        (PolicyDenied("daily ceiling", reason="daily_limit_exceeded"), "daily_limit_exceeded"),
        (DatabaseUnavailable("no decision within 30 s"), "database_unavailable"),
        (RuntimeError("internals"), "internal_error"),
    ],
)
def test_finish_answers_a_refused_or_failed_decision_like_handle_line(handler, result, code):
    request = sign_request()
    pending = handler.begin_line(line_of(request), Peer(uid=1000))
    response = json.loads(pending.finish(result))
    assert error_code(response) == code and response["requestId"] == request["requestId"]
    assert "internals" not in json.dumps(response)
    assert handler.stats.signed == 0 and handler.stats.refused == (0 if code == "internal_error" else 1)


def test_the_ops_that_may_wait_are_handed_over_as_calls_and_never_run_in_begin_line(fake, clock):
    from jarvis_wallet.handler import PendingCall

    looked = []
    handler = make_handler(fake, clock, approval_state=lambda i, w: looked.append(i) or _approval_state("approved"),
                           live_status=lambda: looked.append("status") or {})
    for line in (line_of(protocol.build_request(SECRET, op="status", timestamp_ms=NOW_MS)), _wait_request(clock)):
        call = handler.begin_line(line, Peer(uid=1000))
        assert isinstance(call, PendingCall) and looked == []
        assert json.loads(call.run())["ok"] is True
        looked.clear()
    lock = handler.begin_line(line_of({"op": "lock", "requestId": protocol.new_request_id()}), Peer(uid=1000))
    assert isinstance(lock, PendingCall)
    assert json.loads(lock.run())["error"]["code"] == "bad_request"  # this handler has no lockable key
