"""The atomic check-record-sign step, driven directly (no socket) on each database."""

import datetime
import hashlib
import json
import os

import base58
import nacl.signing
import pytest

from jarvis_wallet.db import session
from jarvis_wallet.errors import AuthenticationFailed, DatabaseUnavailable, InvalidTransaction, PolicyDenied
from jarvis_wallet.keys import Keypair
from jarvis_wallet.limits import set_limits
from jarvis_wallet.models import WalletTransaction, utc_now
from jarvis_wallet.settings import set_setting
from jarvis_wallet.signing import Peer, SignJob, SigningService, require_decision_isolation
from jarvis_wallet.solana import parse_transaction_input

from conftest import payments_message, transfer_message

FEE = 5000


class Clock:
    """An injected clock, so the 24-hour window can be crossed without waiting."""

    def __init__(self):
        self.now = utc_now()

    def __call__(self):
        return self.now


@pytest.fixture
def keypair():
    return Keypair.generate()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def service(initialised_url, keypair, clock):
    svc = SigningService(keypair=keypair, database_url=initialised_url, clock=clock)
    svc.connect()
    yield svc
    svc.close()


def _limits(url, keypair, per_tx, daily):
    with session(url):
        set_limits(keypair.public_key_base58, per_tx_lamports=per_tx, daily_lamports=daily)


def _rows(url):
    with session(url):
        return list(WalletTransaction.select().order_by(WalletTransaction.id).dicts())


def _b58(raw: bytes) -> str:
    return base58.b58encode(raw).decode()


def _job(message, request_id=None, **kwargs):
    return SignJob(request_id=request_id or os.urandom(8).hex(), tx_bytes=message, **kwargs)


def test_signs_records_then_returns(service, keypair, initialised_url):
    _limits(initialised_url, keypair, 10**9, 10**9)
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    outcome = service.sign(_job(message, request_id="r1", purpose="coffee", peer=Peer(uid=1000, pid=42)))
    nacl.signing.VerifyKey(keypair.public_key).verify(message, outcome.signature)
    assert outcome.lamports == 1000 + FEE and outcome.fee_lamports == FEE and not outcome.duplicate
    # The signed transaction carries the signature in the signer's slot.
    assert parse_transaction_input(outcome.signed_bytes).signatures == (outcome.signature,)
    (row,) = _rows(initialised_url)
    assert row["id"] == outcome.transaction_id
    assert row["status"] == "signed" and row["signature"] == base58.b58encode(outcome.signature).decode()
    assert row["request_id"] == "r1" and row["purpose"] == "coffee"
    assert (row["peer_uid"], row["peer_pid"]) == (1000, 42)
    assert row["message_sha256"] == hashlib.sha256(message).hexdigest()
    assert row["lamports"] == 1000 + FEE and row["fee_lamports"] == FEE
    assert row["wallet"] == keypair.public_key_base58


def test_every_payment_and_the_message_bytes_are_recorded(service, keypair, initialised_url):
    """A 1-lamport decoy placed first must not hide the real recipient: every payment is recorded
    with its amount, and the message bytes, so that the decision can be checked again later."""
    from jarvis_wallet.solana import compute_spend

    _limits(initialised_url, keypair, 10**9, 10**9)
    decoy, payee = os.urandom(32), os.urandom(32)
    message = payments_message(from_key=keypair.public_key, payments=[(decoy, 1), (payee, 250_000_000)])
    service.sign(_job(message))
    with pytest.raises(PolicyDenied):  # a refusal records what it would have paid, too
        service.sign(_job(payments_message(from_key=keypair.public_key, payments=[(decoy, 1), (payee, 10**9)])))
    signed, refused = _rows(initialised_url)
    assert json.loads(signed["payments"]) == [
        {"instruction_index": 0, "kind": "transfer", "destination": _b58(decoy), "destination_label": _b58(decoy),
         "lamports": 1},
        {"instruction_index": 1, "kind": "transfer", "destination": _b58(payee), "destination_label": _b58(payee),
         "lamports": 250_000_000},
    ]
    assert [p["lamports"] for p in json.loads(refused["payments"])] == [1, 10**9]
    assert signed["destination_address"] == _b58(decoy)  # the first, as before: kept for older readers
    # The recorded bytes are the message: they hash to message_sha256 and parse to the same spend.
    recorded = bytes(signed["message_bytes"])
    assert recorded == message and hashlib.sha256(recorded).hexdigest() == signed["message_sha256"]
    spend = compute_spend(parse_transaction_input(recorded).message, keypair.public_key)
    assert [p.to_dict() for p in spend.payments] == json.loads(signed["payments"])
    assert spend.spend_lamports == signed["lamports"]


def test_what_is_recorded_of_messages_and_unparsable_bytes(service, keypair, initialised_url):
    from jarvis_wallet.solana import build_offchain_message

    _limits(initialised_url, keypair, 10**6, 10**6)
    service.sign(SignJob(request_id="m", text="hello"))
    garbage = b"\x01" + os.urandom(40)
    with pytest.raises(InvalidTransaction):
        service.sign(_job(garbage))
    message, invalid = _rows(initialised_url)
    # An off-chain message pays nobody; its envelope is what was signed.
    assert (message["payments"], bytes(message["message_bytes"])) == ("[]", build_offchain_message("hello"))
    # Bytes that do not parse: what arrived (the hash is over them), payments unknown.
    assert (invalid["payments"], bytes(invalid["message_bytes"])) == (None, garbage)
    assert hashlib.sha256(garbage).hexdigest() == invalid["message_sha256"]


def test_no_limits_no_signing(service, keypair, initialised_url):
    message = transfer_message(from_key=keypair.public_key, lamports=1)
    with pytest.raises(PolicyDenied) as info:
        service.sign(_job(message))
    assert info.value.reason == "no_limits"
    assert "jarvis-wallet limits set --wallet" in info.value.message
    (row,) = _rows(initialised_url)
    assert row["status"] == "rejected" and row["signature"] is None
    assert row["rejection_reason"].startswith("no_limits:")


@pytest.mark.parametrize("spend_over", [0, 1])
def test_per_tx_boundary(service, keypair, initialised_url, spend_over):
    _limits(initialised_url, keypair, 10_000 + FEE, 10**9)
    message = transfer_message(from_key=keypair.public_key, lamports=10_000 + spend_over)
    if spend_over:
        with pytest.raises(PolicyDenied) as info:
            service.sign(_job(message))
        assert info.value.reason == "per_tx_limit_exceeded"
    else:
        service.sign(_job(message))
    assert [r["status"] for r in _rows(initialised_url)] == ["rejected" if spend_over else "signed"]


def test_daily_ceiling_is_a_rolling_24_hours(service, keypair, initialised_url, clock):
    _limits(initialised_url, keypair, 1000 + FEE, 3 * (1000 + FEE))
    for _ in range(3):
        service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=1000)))
    with pytest.raises(PolicyDenied) as info:
        service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=1000)))
    assert info.value.reason == "daily_limit_exceeded"
    clock.now += datetime.timedelta(hours=23, minutes=59)
    with pytest.raises(PolicyDenied):
        service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=1)))
    clock.now += datetime.timedelta(minutes=2)  # the first three are now older than 24 hours
    service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=1000)))


def test_retry_of_the_same_message_returns_the_recorded_signature(service, keypair, initialised_url):
    _limits(initialised_url, keypair, 10**6, 10**6)
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    first = service.sign(_job(message))
    again = service.sign(_job(message))
    assert again.duplicate and again.signature == first.signature and again.transaction_id == first.transaction_id
    assert again.signed_bytes == first.signed_bytes
    # Counted once: one signed row, and the re-sign request's own row that counts nothing.
    assert [(r["status"], r["lamports"], r["duplicate_of"]) for r in _rows(initialised_url)] == [
        ("signed", 1000 + FEE, None), ("duplicate", 0, first.transaction_id),
    ]
    assert again.signed_at == first.signed_at == _rows(initialised_url)[0]["created_at"]


def test_a_re_sign_is_recorded_with_its_own_request_purpose_and_peer(service, keypair, initialised_url):
    """Issue 11: a duplicate sign's new request id, --purpose and peer were dropped."""
    _limits(initialised_url, keypair, 10**6, 10**6)
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    first = service.sign(_job(message, request_id="first", purpose="coffee", peer=Peer(uid=1000, pid=11)))
    service.sign(_job(message, request_id="again", purpose="coffee, retried", peer=Peer(uid=1001, pid=12)))
    signed, again = _rows(initialised_url)
    assert {k: again[k] for k in ("request_id", "status", "purpose", "peer_uid", "peer_pid", "signature",
                                   "lamports", "fee_lamports", "duplicate_of", "message_sha256")} == {
        "request_id": "again", "status": "duplicate", "purpose": "coffee, retried", "peer_uid": 1001,
        "peer_pid": 12, "signature": None, "lamports": 0, "fee_lamports": 0,
        "duplicate_of": first.transaction_id, "message_sha256": signed["message_sha256"],
    }
    assert (signed["request_id"], signed["purpose"], signed["status"]) == ("first", "coffee", "signed")


@pytest.mark.parametrize("change", ["lowered", "removed"])
def test_a_re_sign_returns_the_released_signature_whatever_the_limits_are_now(service, keypair, initialised_url, change):
    """Issue 18: returning a signature already released releases nothing new, so the limits,
    or their absence, are not checked again; a new message is refused as they say."""
    from jarvis_wallet.limits import remove_limits, set_limits

    _limits(initialised_url, keypair, 10**6, 10**6)
    message = transfer_message(from_key=keypair.public_key, lamports=500_000)
    first = service.sign(_job(message))
    with session(initialised_url):
        if change == "lowered":
            set_limits(keypair.public_key_base58, per_tx_lamports=1, daily_lamports=1)
        else:
            remove_limits(keypair.public_key_base58)
    again = service.sign(_job(message, request_id="after-the-change"))
    assert again.duplicate and again.signature == first.signature
    with pytest.raises(PolicyDenied) as info:
        service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=1000)))
    assert info.value.reason == ("per_tx_limit_exceeded" if change == "lowered" else "no_limits")
    statuses = [(r["request_id"], r["status"]) for r in _rows(initialised_url)]
    assert statuses[1] == ("after-the-change", "duplicate") and [s for _, s in statuses].count("signed") == 1


def test_a_re_sign_with_a_used_request_id_is_a_replay_and_leaves_no_row(service, keypair, initialised_url):
    _limits(initialised_url, keypair, 10**6, 10**6)
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    service.sign(_job(message, request_id="once"))
    service.sign(_job(message, request_id="twice"))
    for request_id in ("once", "twice"):
        with pytest.raises(AuthenticationFailed) as info:
            service.sign(_job(message, request_id=request_id))
        assert info.value.wire_code == "replayed_request"
    assert [r["request_id"] for r in _rows(initialised_url)] == ["once", "twice"]


def test_request_id_is_single_use_in_the_database(service, keypair, initialised_url):
    _limits(initialised_url, keypair, 10**6, 10**6)
    service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=1), request_id="same"))
    with pytest.raises(AuthenticationFailed) as info:
        service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=2), request_id="same"))
    assert info.value.wire_code == "replayed_request"
    assert len(_rows(initialised_url)) == 1


def test_unparseable_input_is_refused_and_recorded(service, keypair, initialised_url):
    _limits(initialised_url, keypair, 10**6, 10**6)
    with pytest.raises(InvalidTransaction):
        service.sign(_job(b"\x01" + os.urandom(40)))
    (row,) = _rows(initialised_url)
    assert row["status"] == "rejected" and row["rejection_reason"].startswith("invalid_tx:")


def test_a_transaction_the_wallet_does_not_sign_is_refused(service, keypair, initialised_url):
    _limits(initialised_url, keypair, 10**6, 10**6)
    other = Keypair.generate()
    with pytest.raises(PolicyDenied) as info:
        service.sign(_job(transfer_message(from_key=other.public_key, lamports=1)))
    assert info.value.reason == "not_a_signer"


def test_configured_destination_allowlist_applies(service, keypair, initialised_url):
    _limits(initialised_url, keypair, 10**6, 10**6)
    allowed = os.urandom(32)
    with session(initialised_url):
        set_setting("allowed_destinations", base58.b58encode(allowed).decode())
    service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=1, to_key=allowed)))
    with pytest.raises(PolicyDenied) as info:
        service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=1)))
    assert info.value.reason == "destination_not_allowed"


def test_what_another_connection_commits_applies_to_the_next_batch(service, keypair, initialised_url):
    """The limits and the configuration may be kept between batches (SQLite: until data_version
    says another connection committed); whatever another connection changes between two batches
    of the same service applies to the second."""
    message = lambda **kw: _job(transfer_message(from_key=keypair.public_key, lamports=1000, **kw))  # noqa: E731
    with pytest.raises(PolicyDenied, match="no spend limits"):
        service.sign(message())
    _limits(initialised_url, keypair, 10**6, 10**7)
    service.sign(message())
    _limits(initialised_url, keypair, 100, 100)
    with pytest.raises(PolicyDenied) as info:
        service.sign(message())
    assert info.value.reason == "per_tx_limit_exceeded"
    _limits(initialised_url, keypair, 10**6, 10**7)
    allowed = os.urandom(32)
    service.sign(message())
    with session(initialised_url):
        set_setting("allowed_destinations", base58.b58encode(allowed).decode())
    with pytest.raises(PolicyDenied) as info:
        service.sign(message())
    assert info.value.reason == "destination_not_allowed"
    service.sign(message(to_key=allowed))


def test_batch_decides_in_order_with_each_seeing_the_last(service, keypair, initialised_url):
    _limits(initialised_url, keypair, 1000 + FEE, 2 * (1000 + FEE))
    jobs = [_job(transfer_message(from_key=keypair.public_key, lamports=1000)) for _ in range(3)]
    jobs.append(_job(b"garbage"))
    results = service.sign_batch(jobs)
    assert [type(r).__name__ for r in results] == ["SignOutcome", "SignOutcome", "PolicyDenied", "InvalidTransaction"]
    assert [r["status"] for r in _rows(initialised_url)] == ["signed", "signed", "rejected", "rejected"]


def test_offchain_message_needs_limits_and_is_recorded(service, keypair, initialised_url):
    from jarvis_wallet.solana import build_offchain_message

    with pytest.raises(PolicyDenied):
        service.sign(SignJob(request_id="m1", text="hello"))
    _limits(initialised_url, keypair, 1, 1)
    outcome = service.sign(SignJob(request_id="m2", text="hello"))
    assert outcome.signed_bytes == build_offchain_message("hello")
    nacl.signing.VerifyKey(keypair.public_key).verify(outcome.signed_bytes, outcome.signature)
    assert [(r["status"], r["lamports"]) for r in _rows(initialised_url)] == [("rejected", 0), ("signed", 0)]


def test_an_offchain_envelope_is_never_signed_as_a_transaction(service, keypair, initialised_url):
    from jarvis_wallet.solana import build_offchain_message

    _limits(initialised_url, keypair, 10**6, 10**6)
    with pytest.raises(InvalidTransaction):
        service.sign(_job(build_offchain_message("transfer everything")))
    assert all(r["signature"] is None for r in _rows(initialised_url))


def test_a_used_request_id_is_refused_even_for_an_already_signed_message(service, keypair, initialised_url):
    _limits(initialised_url, keypair, 10**6, 10**6)
    message = transfer_message(from_key=keypair.public_key, lamports=1)
    service.sign(_job(message, request_id="once"))
    with pytest.raises(AuthenticationFailed) as info:
        service.sign(_job(message, request_id="once"))
    assert info.value.wire_code == "replayed_request"


def test_the_same_message_twice_in_one_batch_is_signed_and_counted_once(service, keypair, initialised_url):
    _limits(initialised_url, keypair, 10**6, 10**6)
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    first, second = service.sign_batch([_job(message), _job(message)])
    assert not first.duplicate and second.duplicate
    assert second.signature == first.signature and second.transaction_id == first.transaction_id
    assert second.signed_at == first.signed_at
    assert [(r["status"], r["duplicate_of"]) for r in _rows(initialised_url)] == [
        ("signed", None), ("duplicate", first.transaction_id),
    ]


def test_a_request_id_twice_in_one_batch_gets_one_decision(service, keypair, initialised_url):
    _limits(initialised_url, keypair, 10**6, 10**6)
    results = service.sign_batch(
        [_job(transfer_message(from_key=keypair.public_key, lamports=n), request_id="twice") for n in (1, 2)]
    )
    assert type(results[0]).__name__ == "SignOutcome"
    assert isinstance(results[1], AuthenticationFailed) and results[1].wire_code == "replayed_request"
    assert [(r["request_id"], r["lamports"]) for r in _rows(initialised_url)] == [("twice", 1 + FEE)]


def test_a_replayed_id_in_a_batch_withholds_only_its_own_signature(service, keypair, initialised_url):
    _limits(initialised_url, keypair, 10**6, 10**6)
    service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=1), request_id="used"))
    results = service.sign_batch(
        [
            _job(transfer_message(from_key=keypair.public_key, lamports=2)),
            _job(transfer_message(from_key=keypair.public_key, lamports=3), request_id="used"),
            _job(transfer_message(from_key=keypair.public_key, lamports=4)),
        ]
    )
    assert [type(r).__name__ for r in results] == ["SignOutcome", "AuthenticationFailed", "SignOutcome"]
    assert results[1].wire_code == "replayed_request"
    rows = _rows(initialised_url)
    assert [r["lamports"] - FEE for r in rows] == [1, 2, 4]
    assert {r["signature"] for r in rows} == {base58.b58encode(s).decode() for s in
                                              [results[0].signature, results[2].signature]} | {rows[0]["signature"]}


def test_a_replayed_id_is_refused_before_it_is_decided_so_its_spend_counts_for_nothing(service, keypair, initialised_url):
    """Third review of #10: a replayed id was decided, and its spend counted against the rest of
    its batch before the insert found the id used, so an honest request was refused (and
    recorded as refused) under a daily limit nothing had used."""
    _limits(initialised_url, keypair, 2 * 10**9, 2 * 10**9)
    service.sign(_job(transfer_message(from_key=keypair.public_key, lamports=1), request_id="old"))
    replay = _job(transfer_message(from_key=keypair.public_key, lamports=19 * 10**8), request_id="old")
    honest = _job(transfer_message(from_key=keypair.public_key, lamports=5 * 10**8), request_id="honest")
    results = service.sign_batch([replay, honest])
    assert isinstance(results[0], AuthenticationFailed) and results[0].wire_code == "replayed_request"
    assert type(results[1]).__name__ == "SignOutcome", results[1]
    assert [(r["request_id"], r["status"]) for r in _rows(initialised_url)] == [("old", "signed"), ("honest", "signed")]


@pytest.mark.parametrize("level", ["repeatable read", "serializable", "read uncommitted"])
def test_a_decision_outside_read_committed_is_refused_in_one_line(db, level):
    """What a server that ignored BEGIN ... READ COMMITTED gets: no decision, one line saying why."""
    require_decision_isolation(db, "read committed")
    with pytest.raises(DatabaseUnavailable) as refused:
        require_decision_isolation(db, level)
    message = str(refused.value)
    assert "\n" not in message
    assert f"transaction_isolation {level!r}" in message and "needs 'read committed'" in message
