"""Human approval above a threshold (issue 13, invariant 11): hold, ask the operator, sign once.

Pure parts first (the intent digest, the threshold, what a request means), then end to end with
real forked signers, real sockets and the CLI in separate processes, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import pwd
import shlex
import socket
import subprocess
import sys
import threading
from collections import Counter

import base58
import nacl.signing
import pytest
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.hash import Hash
from solders.instruction import AccountMeta as SAccountMeta
from solders.instruction import Instruction as SInstruction
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey

from jarvis_wallet import approvals, protocol
from jarvis_wallet.approvals import ApprovalRow, ApprovalThresholds, approval_reasons, intent_digest, judge
from jarvis_wallet.client import SignerClient
from jarvis_wallet.db import session
from jarvis_wallet.errors import ApprovalRefused, ApprovalRequired, SignerTimeout
from jarvis_wallet.limits import set_limits
from jarvis_wallet.models import ApprovalRequest, WalletTransaction, utc_now
from jarvis_wallet.solana import SYSTEM_PROGRAM_ID, build_transfer_message, parse_message
from jarvis_wallet.solana.build import AccountMeta, Instruction, compile_message

from conftest import payments_message

FEE = 5_000
THRESHOLD = 100_000
BIG = 500_000  # above the threshold, within the ceilings
DESTINATION = bytes(range(100, 132))
NOW = datetime.datetime(2026, 1, 1, 12, 0, 0)


def transfer(wallet: bytes, lamports: int = BIG, *, to: bytes = DESTINATION, blockhash: bytes | None = None, v0=False) -> bytes:
    return build_transfer_message(
        from_pubkey=wallet, to_pubkey=to, lamports=lamports, recent_blockhash=blockhash or os.urandom(32), v0=v0,
    )


def intent_of(message_bytes: bytes) -> str:
    return intent_digest(parse_message(message_bytes), durable_nonce=False)


# -- the intent --------------------------------------------------------------------------------


@pytest.mark.parametrize("v0", [False, True])
def test_a_fresh_blockhash_keeps_the_intent(v0):
    wallet = os.urandom(32)
    first, second = transfer(wallet, blockhash=bytes(32), v0=v0), transfer(wallet, blockhash=b"\x07" * 32, v0=v0)
    assert first != second
    assert intent_of(first) == intent_of(second)
    assert intent_of(first) != approvals.hashlib.sha256(first).hexdigest()  # domain-separated from a message hash


@pytest.mark.parametrize("v0", [False, True])
def test_one_lamport_one_account_or_the_version_is_another_intent(v0):
    wallet, blockhash = os.urandom(32), os.urandom(32)
    base = intent_of(transfer(wallet, blockhash=blockhash, v0=v0))
    assert intent_of(transfer(wallet, BIG + 1, blockhash=blockhash, v0=v0)) != base
    assert intent_of(transfer(wallet, to=bytes(range(101, 133)), blockhash=blockhash, v0=v0)) != base
    assert intent_of(transfer(wallet, blockhash=blockhash, v0=not v0)) != base


def test_instruction_order_and_program_change_the_intent():
    wallet, a, b = os.urandom(32), os.urandom(32), os.urandom(32)
    ab = payments_message(from_key=wallet, payments=[(a, 1), (b, 2)])
    ba = payments_message(from_key=wallet, payments=[(b, 2), (a, 1)])
    assert intent_of(ab) != intent_of(ba)
    memo = Instruction(bytes(range(1, 33)), (AccountMeta(wallet, True, True),), b"x")
    pay = Instruction(SYSTEM_PROGRAM_ID, (AccountMeta(wallet, True, True), AccountMeta(a, False, True)),
                      (2).to_bytes(4, "little") + (1).to_bytes(8, "little"))
    blockhash = os.urandom(32)
    plain = compile_message(payer=wallet, instructions=[pay], recent_blockhash=blockhash)
    with_program = compile_message(payer=wallet, instructions=[pay, memo], recent_blockhash=blockhash)
    assert intent_of(plain) != intent_of(with_program)


def test_a_lookup_table_is_part_of_the_intent():
    payer = Pubkey(os.urandom(32))
    target = Pubkey(os.urandom(32))
    ix = SInstruction(Pubkey(bytes(SYSTEM_PROGRAM_ID)), (2).to_bytes(4, "little") + (7).to_bytes(8, "little"),
                      [SAccountMeta(payer, True, True), SAccountMeta(target, False, True)])

    def compiled(table_key: Pubkey, blockhash: bytes) -> bytes:
        table = AddressLookupTableAccount(table_key, [target])
        return to_bytes_versioned(MessageV0.try_compile(payer, [ix], [table], Hash(blockhash)))

    one, other = Pubkey(os.urandom(32)), Pubkey(os.urandom(32))
    assert intent_of(compiled(one, bytes(32))) == intent_of(compiled(one, b"\x01" * 32))
    assert intent_of(compiled(one, bytes(32))) != intent_of(compiled(other, bytes(32)))


def test_a_durable_nonce_keeps_its_nonce_value_in_the_intent():
    message = parse_message(transfer(os.urandom(32), blockhash=b"\x05" * 32))
    other = parse_message(transfer(message.account_keys[0], blockhash=b"\x06" * 32))
    assert intent_digest(message, durable_nonce=True) != intent_digest(other, durable_nonce=True)
    assert intent_digest(message, durable_nonce=False) == intent_digest(other, durable_nonce=False)


# -- the threshold and the verdicts --------------------------------------------------------------


def test_the_threshold_is_strictly_above_like_the_ceilings():
    thresholds = ApprovalThresholds(lamports=THRESHOLD)
    assert approval_reasons(thresholds, spend_lamports=THRESHOLD) == []
    assert approval_reasons(thresholds, spend_lamports=THRESHOLD + 1)
    assert approval_reasons(ApprovalThresholds(), spend_lamports=10**18) == []
    mint = b"\x09" * 32
    per_mint = ApprovalThresholds(per_mint={mint: 10})
    assert approval_reasons(per_mint, spend_lamports=0, token_spend={mint: 10}) == []
    assert approval_reasons(per_mint, spend_lamports=0, token_spend={mint: 11})


LATER = NOW + datetime.timedelta(minutes=5)


@pytest.mark.parametrize(
    ("status", "expires_at", "verdict"),
    [
        (None, None, approvals.OPEN),
        ("pending", LATER, approvals.WAIT),
        ("pending", NOW, approvals.EXPIRED),
        ("approved", LATER, approvals.USE),
        ("approved", NOW, approvals.EXPIRED),
        ("denied", LATER, approvals.DENIED),
        ("denied", NOW, approvals.OPEN),
        ("consumed", LATER, approvals.CONSUMED),
        ("consumed", NOW, approvals.OPEN),
        ("expired", LATER, approvals.OPEN),
    ],
)
def test_what_the_latest_request_means(status, expires_at, verdict):
    row = None if status is None else ApprovalRow(1, status, expires_at)
    assert judge(row, NOW) == verdict


# -- end to end: helpers -----------------------------------------------------------------------


def hold(client, message: bytes, **kwargs) -> ApprovalRequired:
    """Sign ``message``, which must be held for approval; the refusal."""
    with pytest.raises(ApprovalRequired) as held:
        client.sign_transaction(message, **kwargs)
    return held.value


def started(signers, url: str, **settings):
    """The signer's keypair and a started signer whose wallet holds what is above THRESHOLD."""
    keypair = signers.keypair()
    limits_with_threshold(url, keypair.public_key_base58)
    return keypair, signers.start(**settings)


def limits_with_threshold(url: str, wallet: str, *, threshold: int = THRESHOLD) -> None:
    with session(url):
        set_limits(wallet, per_tx_lamports=10 * BIG, daily_lamports=100 * BIG, approve_above_lamports=threshold)


def cli_process(url: str, *args: str) -> subprocess.CompletedProcess:
    """The operator: the real CLI, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "jarvis_wallet", "--database-url", url, *args],
        capture_output=True, text=True, timeout=120,
    )


def rows(url: str, wallet: str) -> list[WalletTransaction]:
    with session(url):
        return list(WalletTransaction.select().where(WalletTransaction.wallet == wallet).order_by(WalletTransaction.id))


def request_row(url: str, approval_id: int) -> ApprovalRequest:
    with session(url):
        return ApprovalRequest.get_by_id(approval_id)


AGENT = r"""
import json, os, sys
import base58
from jarvis_wallet.client import SignerClient
from jarvis_wallet.errors import ApprovalRequired
from jarvis_wallet.solana import build_transfer_message

socket_path, wallet, destination, lamports = sys.argv[1], base58.b58decode(sys.argv[2]), base58.b58decode(sys.argv[3]), int(sys.argv[4])

def build():
    return build_transfer_message(from_pubkey=wallet, to_pubkey=destination, lamports=lamports, recent_blockhash=os.urandom(32))

with SignerClient(socket_path) as client:
    first = build()
    try:
        client.sign_transaction(first, purpose="pay invoice 42")
        print(json.dumps({"unexpected": "signed without approval"}), flush=True)
        sys.exit(1)
    except ApprovalRequired as held:
        print(json.dumps({"held": held.approval_id, "expires_at": held.expires_at, "details": held.details}), flush=True)
        client.wait_for_approval(held.approval_id, 120)
    again = build()  # the first blockhash may have expired: the same payment, a fresh one
    signed = client.sign_transaction(again, purpose="pay invoice 42")
    print(json.dumps({"signature": signed.signature, "transaction_id": signed.transaction_id,
                      "message": again.hex(), "first": first.hex()}), flush=True)
"""


# -- end to end --------------------------------------------------------------------------------


def test_an_agent_waits_the_operator_approves_from_the_cli_and_one_signature_is_released(signers, initialised_url):
    keypair, handle = started(signers, initialised_url)
    wallet = keypair.public_key_base58
    destination = base58.b58encode(DESTINATION).decode()
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT, str(handle.socket_path), wallet, destination, str(BIG)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        held = json.loads(agent.stdout.readline())
        approval_id = held["held"]
        assert held["details"]["lamports"] == BIG + FEE and held["details"]["purpose"] == "pay invoice 42"
        assert held["details"]["destinations"] == [destination]
        # The operator sees it, then approves it from another process.
        listed = cli_process(initialised_url, "approvals", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        (pending,) = json.loads(listed.stdout)
        assert (pending["approval_id"], pending["status"], pending["lamports"]) == (approval_id, "pending", BIG + FEE)
        assert pending["peer_uid"] == os.getuid() and pending["peer_pid"] == agent.pid
        assert rows(initialised_url, wallet)[-1].status == "rejected"  # nothing signed while it waits
        approved = cli_process(initialised_url, "approvals", "approve", str(approval_id), "--note", "invoice 42 checked")
        assert approved.returncode == 0, approved.stderr
        assert f"Approval request {approval_id} approved by {pwd.getpwuid(os.getuid()).pw_name}" in approved.stdout
        result = json.loads(agent.stdout.readline())
        assert agent.wait(timeout=60) == 0, agent.stderr.read()
    finally:
        if agent.poll() is None:
            agent.kill()
    message = bytes.fromhex(result["message"])
    assert message != bytes.fromhex(result["first"])  # signed with another blockhash than the one held
    nacl.signing.VerifyKey(keypair.public_key).verify(message, base58.b58decode(result["signature"]))
    # The audit trail: request (held), approval (who, when, note), signature, linked.
    trail = rows(initialised_url, wallet)
    signed = [row for row in trail if row.signature is not None]
    assert [row.signature for row in signed] == [result["signature"]]
    assert signed[0].approval_id == approval_id and signed[0].id == result["transaction_id"]
    held_row = trail[0]
    assert (held_row.status, held_row.approval_id) == ("rejected", approval_id)
    assert held_row.rejection_reason.startswith("approval_required: ")
    grant = request_row(initialised_url, approval_id)
    assert (grant.status, grant.signed_transaction_id, grant.request_id) == ("consumed", signed[0].id, held_row.request_id)
    assert (grant.decided_by, grant.decided_by_uid, grant.decision_note) == (pwd.getpwuid(os.getuid()).pw_name, os.getuid(), "invoice 42 checked")
    assert grant.decided_at <= grant.consumed_at
    shown = cli_process(initialised_url, "approvals", "show", str(approval_id), "--json")
    report = json.loads(shown.stdout)
    assert [(t["transaction_id"], t["status"]) for t in report["transactions"]] == [(held_row.id, "rejected"), (signed[0].id, "signed")]
    assert report["transactions"][1]["signature"] == result["signature"]
    tx = cli_process(initialised_url, "tx", "show", str(signed[0].id), "--json")
    assert json.loads(tx.stdout)["approval_id"] == approval_id


def test_replay_returns_the_same_signature_and_another_blockhash_finds_the_grant_used(signers, initialised_url):
    keypair, handle = started(signers, initialised_url)
    wallet = keypair.public_key_base58
    with signers.client(handle) as client:
        held = hold(client, transfer(keypair.public_key))
        approve(initialised_url, held.approval_id)
        message = transfer(keypair.public_key)
        first = client.sign_transaction(message)
        again = client.sign_transaction(message)  # a retry after a lost answer: the same bytes
        assert (again.signature, again.duplicate, first.duplicate) == (first.signature, True, False)
        with pytest.raises(ApprovalRefused) as used:
            client.sign_transaction(transfer(keypair.public_key))  # the same payment, one more time
    assert used.value.reason == "approval_consumed" and used.value.approval_id == held.approval_id
    assert f"transaction {first.transaction_id}" in used.value.message
    assert [row.signature for row in rows(initialised_url, wallet) if row.signature] == [first.signature]
    assert [row.status for row in rows(initialised_url, wallet)] == ["rejected", "signed", "duplicate", "rejected"]


def approve(url: str, approval_id: int, note: str | None = None) -> None:
    with session(url):
        approvals.approve(approval_id, note=note)


def test_an_approval_covers_its_intent_only_not_one_lamport_or_one_account_more(signers, initialised_url):
    keypair, handle = started(signers, initialised_url)
    with signers.client(handle) as client:
        held = hold(client, transfer(keypair.public_key))
        approve(initialised_url, held.approval_id)
        with pytest.raises(ApprovalRequired) as more:
            client.sign_transaction(transfer(keypair.public_key, BIG + 1))
        with pytest.raises(ApprovalRequired) as elsewhere:
            client.sign_transaction(transfer(keypair.public_key, to=bytes(range(1, 33))))
        ids = {held.approval_id, more.value.approval_id, elsewhere.value.approval_id}
        assert len(ids) == 3  # each is a request of its own, pending
        signed = client.sign_transaction(transfer(keypair.public_key))  # the approved one still signs
    assert request_row(initialised_url, held.approval_id).signed_transaction_id == signed.transaction_id
    assert {request_row(initialised_url, i).status for i in ids - {held.approval_id}} == {"pending"}


def test_the_same_intent_asked_again_while_pending_gets_the_same_request(signers, initialised_url):
    keypair, handle = started(signers, initialised_url)
    with signers.client(handle) as client:
        answers = []
        for _ in range(3):
            held = hold(client, transfer(keypair.public_key))
            answers.append((held.approval_id, held.expires_at))
        assert len(set(answers)) == 1
        small = client.sign_transaction(transfer(keypair.public_key, THRESHOLD - FEE))  # at the threshold: no person
    assert small.lamports == THRESHOLD
    with session(initialised_url):
        assert ApprovalRequest.select().count() == 1


def test_deny_is_told_to_the_waiting_agent_and_refuses_the_intent(signers, initialised_url, cli):
    keypair, handle = started(signers, initialised_url)
    with signers.client(handle) as client:
        held = hold(client, transfer(keypair.public_key))
        approval_id = held.approval_id
        with pytest.raises(SignerTimeout):  # nobody decided yet
            client.wait_for_approval(approval_id, 0.3)
        denied = cli("approvals", "deny", str(approval_id), "--reason", "not our invoice", url=initialised_url)
        assert denied.exit_code == 0, denied.stderr
        with pytest.raises(ApprovalRefused) as told:
            client.wait_for_approval(approval_id, 5)
        assert told.value.reason == "approval_denied" and "not our invoice" in told.value.message
        with pytest.raises(ApprovalRefused) as refused:
            client.sign_transaction(transfer(keypair.public_key))
    assert refused.value.reason == "approval_denied" and "not our invoice" in refused.value.message
    again = cli("approvals", "approve", str(approval_id), url=initialised_url)
    assert again.exit_code == 2 and f"approval request {approval_id} is denied" in again.stderr
    assert not [row for row in rows(initialised_url, keypair.public_key_base58) if row.signature]


def expire(url: str, approval_id: int) -> None:
    """Time passes: the request's expiry is moved into the past (the signer and CLI read the clock)."""
    with session(url):
        ApprovalRequest.update(expires_at=utc_now() - datetime.timedelta(seconds=1)).where(ApprovalRequest.id == approval_id).execute()


def test_an_expired_request_cannot_be_approved_and_an_expired_grant_does_not_sign(signers, initialised_url, cli):
    keypair, handle = started(signers, initialised_url)
    with signers.client(handle) as client:
        with pytest.raises(ApprovalRequired) as first:
            client.sign_transaction(transfer(keypair.public_key))
        expire(initialised_url, first.value.approval_id)
        late = cli("approvals", "approve", str(first.value.approval_id), url=initialised_url)
        assert late.exit_code == 2 and "is expired" in late.stderr
        with pytest.raises(ApprovalRefused) as expired:
            client.sign_transaction(transfer(keypair.public_key))
        assert expired.value.reason == "approval_expired"
        with pytest.raises(ApprovalRequired) as second:  # asked again: a new request
            client.sign_transaction(transfer(keypair.public_key))
        assert second.value.approval_id != first.value.approval_id
        approve(initialised_url, second.value.approval_id)
        expire(initialised_url, second.value.approval_id)  # approved, but not used in time
        assert client.approval_status(second.value.approval_id).state == "expired"
        with pytest.raises(ApprovalRefused) as unused:
            client.sign_transaction(transfer(keypair.public_key))
    assert unused.value.reason == "approval_expired"
    assert not [row for row in rows(initialised_url, keypair.public_key_base58) if row.signature]


def test_limits_are_checked_again_when_the_grant_is_used(signers, initialised_url):
    keypair, handle = started(signers, initialised_url)
    wallet = keypair.public_key_base58
    with signers.client(handle) as client:
        held = hold(client, transfer(keypair.public_key))
        approve(initialised_url, held.approval_id)
        with session(initialised_url):
            set_limits(wallet, per_tx_lamports=BIG, daily_lamports=100 * BIG)  # lowered meanwhile
        with pytest.raises(Exception) as refused:
            client.sign_transaction(transfer(keypair.public_key))
    assert getattr(refused.value, "reason", None) == "per_tx_limit_exceeded"
    assert request_row(initialised_url, held.approval_id).status == "approved"  # not used up by a refusal


def test_two_agents_on_two_signers_racing_one_grant_get_exactly_one_signature(signers, initialised_url):
    keypair = signers.keypair()
    limits_with_threshold(initialised_url, keypair.public_key_base58)
    handles = [signers.start(), signers.start()]
    with signers.client(handles[0]) as client:
        held = hold(client, transfer(keypair.public_key))
    approve(initialised_url, held.approval_id)
    agents = 8
    barrier = threading.Barrier(agents)
    outcomes: list = []

    def agent(index: int) -> None:
        with SignerClient(handles[index % 2].socket_path, timeout=60) as c:
            c.ping()
            message = transfer(keypair.public_key)  # each with its own blockhash
            barrier.wait()
            try:
                outcomes.append(c.sign_transaction(message).signature)
            except ApprovalRefused as exc:
                outcomes.append(exc.reason)
            except Exception as exc:  # noqa: BLE001 - asserted below
                outcomes.append(repr(exc))

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    counts = Counter(o if o.startswith("approval_") else "signature" for o in outcomes)
    assert counts == {"signature": 1, "approval_consumed": agents - 1}, outcomes
    signed = [row for row in rows(initialised_url, keypair.public_key_base58) if row.signature]
    assert len(signed) == 1
    assert request_row(initialised_url, held.approval_id).signed_transaction_id == signed[0].id


def test_a_request_pending_across_a_signer_restart_is_honoured_by_the_new_signer(signers, initialised_url):
    keypair = signers.keypair()
    limits_with_threshold(initialised_url, keypair.public_key_base58)
    first = signers.start()
    with signers.client(first) as client:
        held = hold(client, transfer(keypair.public_key))
    first.stop()
    approve(initialised_url, held.approval_id, note="after the restart")
    second = signers.start()
    with signers.client(second) as client:
        assert client.wait_for_approval(held.approval_id, 5).state == "approved"
        signed = client.sign_with_approval(lambda: transfer(keypair.public_key), timeout=5)
    assert signed.duplicate is False
    assert request_row(initialised_url, held.approval_id).signed_transaction_id == signed.transaction_id


def test_sign_with_approval_waits_for_an_approval_given_meanwhile(signers, initialised_url):
    keypair, handle = started(signers, initialised_url)
    built = []

    def build() -> bytes:
        built.append(transfer(keypair.public_key))
        return built[-1]

    def operator() -> None:  # waits for the request to exist, then approves it
        def pending():
            with session(initialised_url):
                return approvals.list_approvals()

        eventually(pending, "the request to be held")
        approve(initialised_url, pending()[0].id)

    thread = threading.Thread(target=operator)
    thread.start()
    with signers.client(handle) as client:
        signed = client.sign_with_approval(build, purpose="rent", timeout=60)
    thread.join(timeout=60)
    assert len(built) == 2 and built[0] != built[1]
    nacl.signing.VerifyKey(keypair.public_key).verify(built[1], base58.b58decode(signed.signature))


def test_wait_for_approval_is_authenticated_and_tells_only_this_wallets_requests(signers, initialised_url):
    keypair, handle = started(signers, initialised_url)
    other = signers.start(name="other.json")
    limits_with_threshold(initialised_url, signers.keypair("other.json").public_key_base58)
    with signers.client(handle) as client:
        held = hold(client, transfer(keypair.public_key))
    with signers.client(other) as client:
        with pytest.raises(Exception) as unknown:
            client.approval_status(held.approval_id)
    assert getattr(unknown.value, "wire_code", None) == "not_found"
    unsigned = {"op": "wait_for_approval", "requestId": protocol.new_request_id(), "approvalId": held.approval_id}
    reply = exchange(handle.socket_path, protocol.encode_frame(unsigned))
    assert reply["error"]["code"] == "bad_request"  # no timestamp nor hmac: refused before anything is read
    forged = protocol.sign_request(b"a wrong secret of thirty-two bytes!!", {**unsigned, "timestamp": protocol.current_time_ms()})
    assert exchange(handle.socket_path, protocol.encode_frame(forged))["error"]["code"] == "auth_failed"


def eventually(condition, what: str, *, limit: float = 60.0) -> None:
    """Wait for something another process does; a guard against hanging, not a timing check."""
    import time

    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def exchange(path, frame: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(frame)
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def test_the_legacy_protocol_answers_sign_error_with_the_reason(signers, initialised_url):
    keypair = signers.keypair()
    limits_with_threshold(initialised_url, keypair.public_key_base58)
    handle = signers.start(legacy_protocol=True)
    secret = (handle.socket_path.parent / "secret").read_bytes().strip()
    from jarvis_wallet.keys import load_shared_secret

    shared = load_shared_secret(env_value=None, path=handle.socket_path.parent / "secret")
    tx_base64 = base64.b64encode(transfer(keypair.public_key)).decode()
    request = {"hmac": protocol.compute_legacy_hmac(shared, tx_base64), "txBase64": tx_base64, "requestId": "order-7"}
    reply = exchange(handle.socket_path, protocol.encode_frame(request))
    assert (reply["ok"], reply["error"], reply["reason"]) == (False, "sign_error", "approval_required")
    assert "approvals approve" in reply["message"] and secret  # the operator's command is in the message
    with session(initialised_url):
        assert ApprovalRequest.select().count() == 1


def test_the_notify_command_gets_a_json_document_off_the_signing_path(signers, initialised_url, tmp_path):
    keypair = signers.keypair()
    limits_with_threshold(initialised_url, keypair.public_key_base58)
    out = tmp_path / "notified.json"
    gate = tmp_path / "gate"
    # Writes what it read, then blocks until the test opens the gate: a notifier inside the
    # signing path would hold the second request's answer until then (the client gives up first).
    script = f"import sys, os, time\nopen({str(out)!r}, 'w').write(sys.stdin.read())\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.05)\n"
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"
    handle = signers.start(approval_notify_command=command)
    with signers.client(handle, timeout=10) as client:
        with pytest.raises(ApprovalRequired) as first:
            client.sign_transaction(transfer(keypair.public_key), purpose="rent for May")
        with pytest.raises(ApprovalRequired):
            client.sign_transaction(transfer(keypair.public_key, BIG + 1))  # answered while the command blocks
        small = client.sign_transaction(transfer(keypair.public_key, 1))
    assert small.signature
    eventually(lambda: out.exists() and out.read_text(), "the notify command to run")
    gate.touch()
    document = json.loads(out.read_text())
    assert document["approval_id"] == first.value.approval_id and document["event"] == "approval_requested"
    assert (document["lamports"], document["purpose"], document["wallet"]) == (BIG + FEE, "rent for May", keypair.public_key_base58)
    assert document["approve"] == f"jarvis-wallet approvals approve {first.value.approval_id}"
    secret = (handle.socket_path.parent / "secret").read_text().strip()
    assert secret not in out.read_text() and "secret" not in document


def test_a_failing_notify_command_is_logged_and_signing_goes_on(signers, initialised_url):
    keypair = signers.keypair()
    limits_with_threshold(initialised_url, keypair.public_key_base58)
    handle = signers.start(approval_notify_command=f"{sys.executable} -c 'import sys; sys.exit(3)'")
    with signers.client(handle) as client:
        held = hold(client, transfer(keypair.public_key))
        assert client.sign_transaction(transfer(keypair.public_key, 1)).signature
    log = handle.info.log_path
    eventually(lambda: "approval_notify_failed" in open(log).read(), "the failure to be logged")
    (line,) = [json.loads(x) for x in open(log) if "approval_notify_failed" in x]
    assert (line["approval_id"], line["exit_code"]) == (held.approval_id, 3)


def test_an_unusable_notify_command_fails_the_start(signers):
    from jarvis_wallet.errors import SignerStartError

    with pytest.raises(SignerStartError) as failed:
        signers.start(approval_notify_command="'unbalanced")
    assert "approval notify command" in failed.value.message


def test_the_approved_payment_re_signed_with_a_fresh_blockhash_lands_and_moves_what_was_shown(signers, initialised_url):
    """In LiteSVM: the held transaction's blockhash has expired by the time the operator says yes;
    the same payment with the chain's next blockhash is signed, executes, and moves exactly the
    spend the request showed the operator and the signed row counted."""
    from solders.pubkey import Pubkey as SPubkey

    from runtime import SOL, Chain

    keypair = signers.keypair()
    limits_with_threshold(initialised_url, keypair.public_key_base58)
    wallet = SPubkey(keypair.public_key)
    chain = Chain()
    chain.fund(wallet, 10 * SOL)
    chain.fund(SPubkey(DESTINATION), SOL)  # rent-exempt already: 500,000 lamports alone would not be
    handle = signers.start()
    with signers.client(handle) as client:
        old = transfer(keypair.public_key, blockhash=bytes(chain.blockhash))
        held = hold(client, old)
        approve(initialised_url, held.approval_id)
        fresh = bytes(chain.next_blockhash())
        signed = client.sign_transaction(transfer(keypair.public_key, blockhash=fresh))
    before = chain.balance(wallet)
    assert chain.execute(signed.signed_transaction).ok
    moved = before - chain.balance(wallet)
    shown = request_row(initialised_url, held.approval_id)
    assert moved == signed.lamports == shown.lamports == held.details["lamports"] == BIG + FEE
    assert chain.balance(SPubkey(DESTINATION)) == SOL + BIG


# -- what the operator can take back, and what an agent cannot flood -------------------------


def test_an_approval_revoked_before_use_signs_nothing_and_a_used_one_cannot_be_revoked(signers, initialised_url, cli):
    keypair, handle = started(signers, initialised_url)
    with signers.client(handle) as client:
        held = hold(client, transfer(keypair.public_key))
        approve(initialised_url, held.approval_id)
        revoked = cli("approvals", "deny", str(held.approval_id), "--reason", "changed my mind", url=initialised_url)
        assert revoked.exit_code == 0, revoked.stderr
        with pytest.raises(ApprovalRefused) as refused:
            client.sign_transaction(transfer(keypair.public_key))
        assert refused.value.reason == "approval_denied" and "changed my mind" in refused.value.message
        assert client.approval_status(held.approval_id).state == "denied"
        # Another payment, approved and used: that one stays used.
        used = hold(client, transfer(keypair.public_key, BIG + 1))
        approve(initialised_url, used.approval_id)
        signed = client.sign_transaction(transfer(keypair.public_key, BIG + 1))
    late = cli("approvals", "deny", str(used.approval_id), url=initialised_url)
    assert late.exit_code == 2 and late.stderr.count("\n") == 1
    assert f"approval request {used.approval_id} is consumed" in late.stderr and "cannot be revoked" in late.stderr
    assert request_row(initialised_url, used.approval_id).status == "consumed"
    assert request_row(initialised_url, held.approval_id).status == "denied"
    assert [row.signature for row in rows(initialised_url, keypair.public_key_base58) if row.signature] == [signed.signature]


def test_a_late_denial_holds_the_intent_for_a_full_lifetime_from_when_it_was_given(signers, initialised_url, cli):
    keypair, handle = started(signers, initialised_url)
    with signers.client(handle) as client:
        held = hold(client, transfer(keypair.public_key))
        with session(initialised_url):  # the operator decides with seconds left on the request
            ApprovalRequest.update(expires_at=utc_now() + datetime.timedelta(seconds=2)).where(
                ApprovalRequest.id == held.approval_id
            ).execute()
        assert cli("approvals", "deny", str(held.approval_id), url=initialised_url).exit_code == 0
        denied = request_row(initialised_url, held.approval_id)
        assert denied.expires_at - denied.decided_at == datetime.timedelta(seconds=approvals.DEFAULT_APPROVAL_TTL_SECONDS)
        with pytest.raises(ApprovalRefused) as refused:
            client.sign_transaction(transfer(keypair.public_key))
    assert refused.value.reason == "approval_denied"


def test_the_signed_row_records_the_purpose_the_operator_approved(signers, initialised_url):
    keypair, handle = started(signers, initialised_url)
    with signers.client(handle) as client:
        held = hold(client, transfer(keypair.public_key), purpose="rent for May")
        approve(initialised_url, held.approval_id)
        signed = client.sign_transaction(transfer(keypair.public_key), purpose="something the operator never saw")
    (row,) = [row for row in rows(initialised_url, keypair.public_key_base58) if row.signature]
    assert row.id == signed.transaction_id
    assert row.purpose == "rent for May (re-sign: something the operator never saw)"
    assert row.purpose.startswith(request_row(initialised_url, held.approval_id).purpose)


def test_a_wallet_holds_at_most_approval_max_pending_requests_and_lists_them_all(signers, initialised_url, cli):
    assert cli("config", "set", "approval_max_pending", "0", url=initialised_url).exit_code == 2
    assert cli("config", "set", "approval_max_pending", "3", url=initialised_url).exit_code == 0
    keypair, handle = started(signers, initialised_url)
    with signers.client(handle) as client:
        real = hold(client, transfer(keypair.public_key), purpose="the real one")
        junk = [hold(client, transfer(keypair.public_key, BIG + n)).approval_id for n in (1, 2)]
        with pytest.raises(ApprovalRefused) as flooded:
            client.sign_transaction(transfer(keypair.public_key, BIG + 3))
        assert flooded.value.reason == "too_many_pending_approvals" and flooded.value.approval_id is None
        assert hold(client, transfer(keypair.public_key)).approval_id == real.approval_id  # still answered
        # Decided ones do not count: a denial frees a place.
        assert cli("approvals", "deny", str(junk[0]), url=initialised_url).exit_code == 0
        assert hold(client, transfer(keypair.public_key, BIG + 3)).approval_id > junk[1]
    with session(initialised_url):
        assert ApprovalRequest.select().count() == 4
    refusal = [row for row in rows(initialised_url, keypair.public_key_base58) if row.rejection_reason
               and row.rejection_reason.startswith("too_many_pending_approvals")]
    assert len(refusal) == 1 and refusal[0].approval_id is None
    # Every pending request is listed before any other, whatever --limit says.
    listed = cli("approvals", "list", "--all", "--limit", "1", "--json", url=initialised_url).json()
    assert [r["status"] for r in listed] == ["pending", "pending", "pending", "denied"]
    assert real.approval_id in [r["approval_id"] for r in listed]


WAITS_PER_UID = 2  # handler.MAX_APPROVAL_WAITS_PER_UID


def test_waits_for_approval_leave_connection_slots_for_the_operators_lock(signers, initialised_url, cli):
    from jarvis_wallet.errors import SignerUnavailable

    slots = WAITS_PER_UID + 2
    keypair, handle = started(signers, initialised_url, max_connections=slots, connection_wait_seconds=0.5)
    with signers.client(handle) as client:
        held = hold(client, transfer(keypair.public_key))
    answers: list = []

    def wait() -> None:
        with signers.client(handle) as waiter:
            try:
                answers.append(waiter.approval_status(held.approval_id, wait=60).state)
            except SignerUnavailable as exc:
                answers.append(exc.wire_code)

    threads = [threading.Thread(target=wait) for _ in range(slots)]
    for thread in threads:
        thread.start()
    try:
        eventually(lambda: answers.count("busy") == slots - WAITS_PER_UID, "the waits beyond the cap refused")
        locked = cli("signer", "lock", "--socket", str(handle.socket_path), "--json")
        assert locked.exit_code == 0, locked.stderr
        assert locked.json()["locked"] is True
    finally:
        with session(initialised_url):  # let the waits end
            approvals.deny(held.approval_id)
        for thread in threads:
            thread.join(90)
    assert Counter(answers) == {"busy": slots - WAITS_PER_UID, "denied": WAITS_PER_UID}
