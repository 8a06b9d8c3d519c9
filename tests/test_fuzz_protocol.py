"""A bounded slice of the wire protocol campaign (campaigns/fuzz_protocol.py) against live signers.

Two real forked signers share the test database: one whose wallet has limits and one whose
wallet has none. Cases of every category, then cases and JSON objects chosen by hypothesis,
are sent over real sockets; every reply is checked against the campaign's model of
docs/protocol.md, and the database is audited at the end (see the campaign's docstring). The
bugs the campaign found in signing.py keep a regression test each at the end.
test_signer_robustness.py holds the hand-written hostile inputs; this file adds volume and
the audit.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jarvis_wallet import protocol
from jarvis_wallet.solana import build_transfer_message
from jarvis_wallet.solana.build import AccountMeta, Instruction, compile_message
from jarvis_wallet.solana.programs import SYSTEM_PROGRAM_ID

CAMPAIGNS = Path(__file__).resolve().parents[1] / "campaigns"
sys.path.insert(0, str(CAMPAIGNS))
import fuzz_protocol as campaign  # noqa: E402

HYPOTHESIS = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def no_tracebacks(capfd):
    """The signers share this process's stderr: a crashed thread would print here."""
    yield
    _, err = capfd.readouterr()
    assert "Traceback" not in err and "Exception in thread" not in err, err


def secret_of(handle) -> bytes:
    return Path(handle.info.secret_path).read_bytes().rstrip(b"\n")


@pytest.fixture
def fuzz(signers):
    handles = {name: signers.start(name=f"{name}.json", free_decisions_per_second=None) for name in ("limited", "no_limits")}
    wallets = {
        name: campaign.Wallet(
            name, handle, signers.keypair(f"{name}.json").public_key, secret_of(handle), name == "limited"
        )
        for name, handle in handles.items()
    }
    fuzzer = campaign.ProtocolCampaign(
        limited=wallets["limited"],
        unlimited=wallets["no_limits"],
        database_url=signers.database_url,
        rng=random.Random(7),
        check_every=5,
    )
    yield fuzzer
    fuzzer.close()


def audited(fuzzer) -> dict:
    """The final health check and audit; no violation, no restart, only known deviations."""
    fuzzer.health()
    audit = fuzzer.audit()
    assert fuzzer.violation_count == 0, fuzzer.examples
    assert fuzzer.restarts == 0
    assert set(fuzzer.known_deviations) <= set(campaign.KNOWN_DEVIATIONS)
    return audit


def test_every_category_against_live_signers(fuzz):
    for category in campaign.CATEGORY_NAMES:
        for _ in range(12):
            fuzz.run_case(category)
            assert fuzz.violation_count == 0, fuzz.examples
    audit = audited(fuzz)
    assert set(fuzz.by_category) == set(campaign.CATEGORY_NAMES)
    assert audit["signed_rows"] >= 30 and audit["spent_lamports"] > 0
    expected_codes = {
        "ok",
        "bad_request",
        "invalid_tx",
        "auth_failed",
        "stale_request",
        "replayed_request",
        "no_limits",
        "not_a_signer",
        "program_not_allowed",
        "ownership_change",
        "per_tx_limit_exceeded",
        "daily_limit_exceeded",
        "line_too_long",
    }
    assert expected_codes <= set(fuzz.responses), fuzz.responses


def test_cases_chosen_by_hypothesis(fuzz):
    # The campaign draws from its generator according to its state (budget left, frames to
    # replay), so hypothesis chooses the category and the seed, not each draw.
    @HYPOTHESIS
    @given(seed=st.integers(0, 2**64 - 1), category=st.sampled_from(campaign.CATEGORY_NAMES))
    def one_case(seed, category):
        fuzz.run_case(category, rng=random.Random(seed))
        assert fuzz.violation_count == 0, fuzz.examples

    one_case()
    audited(fuzz)
    assert fuzz.cases >= 50


NOW = "<now>"  # replaced by the current time when the frame is built
json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)
field_values = {
    "op": st.sampled_from(sorted(protocol.OPS)) | json_values,
    "requestId": st.uuids().map(str) | json_values,
    "timestamp": st.just(NOW) | st.integers(-(2**64), 2**64) | json_values,
    "txBase64": st.sampled_from(["", "AA==", "AQID", "not base64"]) | json_values,
    "message": st.text(max_size=40) | json_values,
    "purpose": st.text(max_size=40) | json_values,
    "hmac": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64) | json_values,
}
requests = st.fixed_dictionaries({}, optional={**field_values, "extra": json_values})


def test_json_objects_chosen_by_hypothesis(fuzz):
    """Objects shaped like requests, some with a valid HMAC, so every check gets reached."""

    @HYPOTHESIS
    @given(obj=requests, to_limited=st.booleans(), authentic=st.booleans())
    def one_object(obj, to_limited, authentic):
        wallet = fuzz.limited if to_limited else fuzz.unlimited
        obj = {name: campaign.now_ms() if value == NOW else value for name, value in obj.items()}
        if authentic:
            try:
                obj["hmac"] = campaign.campaign_hmac(wallet.secret, obj)
            except (TypeError, UnicodeEncodeError):
                pass  # values of other types have no HMAC encoding; the signer refuses them anyway
        line = json.dumps(obj).encode() + b"\n"
        fuzz.execute(campaign.Case("hypothesis_json", wallet, [campaign.Sent(line, wallet, "hypothesis_json")]))
        fuzz.after_case()
        assert fuzz.violation_count == 0, fuzz.examples

    one_object()
    audited(fuzz)


def test_the_audit_catches_what_it_is_there_to_catch(fuzz):
    """A row nobody authenticated and a signature that does not verify are both reported."""
    from jarvis_wallet.db import session
    from jarvis_wallet.models import WalletTransaction

    for _ in range(4):
        fuzz.run_case("valid_sign")
    with session(fuzz.database_url):
        row = WalletTransaction.select().where(WalletTransaction.status == "signed").first()
        WalletTransaction.update(signature="1" * 88).where(WalletTransaction.id == row.id).execute()
        WalletTransaction.create(
            request_id=protocol.new_request_id(),
            wallet=fuzz.limited.address,
            status="signed",
            lamports=1,
            message_sha256="0" * 64,
            signature="2" * 88,
        )
    fuzz.audit()
    assert fuzz.violations["row_for_request_refused_before_signing"] == 1
    assert fuzz.violations["signed_row_signature_invalid"] == 1
    assert fuzz.violations["visible_signature_without_row"] == 1


# -- regressions: what the campaign found in signing.py (fixed in 3903ad5) ------------------------


def ask(handle, secret: bytes, tx: bytes) -> dict:
    link = campaign.Link(handle.socket_path)
    try:
        link.send(
            protocol.encode_frame(protocol.build_request(secret, op="sign", tx_base64=base64.b64encode(tx).decode()))
        )
        return link.reply()
    finally:
        link.close()


def rows(url: str) -> list[dict]:
    from jarvis_wallet.db import session
    from jarvis_wallet.models import WalletTransaction

    with session(url):
        return list(WalletTransaction.select().dicts())


@pytest.fixture
def limited_signer(signers):
    signers.set_limits(per_tx=10**9, daily=10**15)
    handle = signers.start(free_decisions_per_second=None)  # 120 refusals at once: all decided
    return handle, signers.keypair().public_key, secret_of(handle)


def undecodable_transfer(wallet: bytes) -> bytes:
    """Parses as a message, but its System transfer carries 11 bytes of data instead of 12."""
    transfer = Instruction(
        SYSTEM_PROGRAM_ID,
        (AccountMeta(wallet, True, True), AccountMeta(os.urandom(32), False, True)),
        b"\x02\x00\x00\x00" + b"\x01" * 7,
    )
    return compile_message(payer=wallet, instructions=[transfer], recent_blockhash=os.urandom(32))


def test_an_undecodable_instruction_is_refused_as_invalid_tx_and_recorded(signers, limited_signer):
    handle, wallet, secret = limited_signer
    reply = ask(handle, secret, undecodable_transfer(wallet))
    assert reply["error"]["code"] == "invalid_tx", reply
    assert [row["status"] for row in rows(signers.database_url)] == ["rejected"]


def test_a_refused_spend_beyond_int64_is_a_recorded_policy_refusal(signers, limited_signer):
    handle, wallet, secret = limited_signer
    message = build_transfer_message(
        from_pubkey=wallet, to_pubkey=os.urandom(32), lamports=2**64 - 1, recent_blockhash=os.urandom(32)
    )
    reply = ask(handle, secret, message)
    assert reply["error"]["code"] == "per_tx_limit_exceeded", reply
    (row,) = rows(signers.database_url)
    assert row["status"] == "rejected" and row["lamports"] > 10**9  # as much as the column holds


def huge_transfer(wallet: bytes) -> bytes:
    return build_transfer_message(
        from_pubkey=wallet, to_pubkey=os.urandom(32), lamports=2**64 - 1, recent_blockhash=os.urandom(32)
    )


def test_a_bad_request_does_not_spoil_the_requests_decided_with_it(limited_signer):
    """Requests from several connections are decided in one batch; before 3903ad5 one
    undecodable or unrecordable request failed all of them as database_unavailable."""
    handle, wallet, secret = limited_signer
    codes: dict[str, list[str]] = {"good": [], "bad": []}
    lock = threading.Lock()

    def client(kind: str, count: int, make) -> None:
        link = campaign.Link(handle.socket_path)
        try:
            for _ in range(count):
                tx_base64 = base64.b64encode(make()).decode()
                link.send(protocol.encode_frame(protocol.build_request(secret, op="sign", tx_base64=tx_base64)))
                reply = link.reply()
                with lock:
                    codes[kind].append("ok" if reply["ok"] else reply["error"]["code"])
        finally:
            link.close()

    def good() -> bytes:
        return build_transfer_message(
            from_pubkey=wallet, to_pubkey=os.urandom(32), lamports=1000, recent_blockhash=os.urandom(32)
        )

    threads = [threading.Thread(target=client, args=("good", 25, good)) for _ in range(6)]
    threads += [threading.Thread(target=client, args=("bad", 60, lambda: undecodable_transfer(wallet)))]
    threads += [threading.Thread(target=client, args=("bad", 60, lambda: huge_transfer(wallet)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes["good"] == ["ok"] * 150, {code: codes["good"].count(code) for code in set(codes["good"])}
    assert sorted(set(codes["bad"])) == ["invalid_tx", "per_tx_limit_exceeded"] and len(codes["bad"]) == 120


# -- the campaign command ----------------------------------------------------------------------


def test_the_campaign_command_runs_for_three_seconds_without_a_violation():
    result = subprocess.run(
        [sys.executable, str(CAMPAIGNS / "fuzz_protocol.py"), "--seconds", "3", "--seed", "11", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads(result.stdout)
    assert report["violations"] == 0 and report["violations_by_kind"] == {}
    assert report["signer_restarts"] == 0 and len(report["signer_pids"]) == 2
    assert report["elapsed_seconds"] >= 3 and report["frames_sent"] > 300
    assert report["signed_rows"] > 10 and report["rows"] >= report["signed_rows"]
    assert len(report["cases_by_category"]) >= 15
    assert set(report["known_deviations"]) <= set(campaign.KNOWN_DEVIATIONS)


# --- the straight-line paths against the full parsers -----------------------------------------
# decode_frame reads the frames our clients send with one regular expression, and parse_request
# checks the common shapes straight through; anything else goes to the JSON parser and the full
# request parser. Both shortcuts must be invisible: the same object (types and key order
# included) or the same refusal, on every input.

FAST_PATH = settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
SHORTCUT_SECRET = bytes(range(32))


def _client_frame(op: str, purpose: str | None, tx: bytes, authenticated: bool) -> bytes:
    """A line exactly as SignerClient sends it (protocol.build_request, then encode_frame)."""
    fields: dict = {}
    if op == protocol.OP_SIGN:
        fields = {"tx_base64": base64.b64encode(tx).decode("ascii"), "purpose": purpose}
    elif op == protocol.OP_SIGN_MESSAGE:
        fields = {"message": "hello\nworld", "purpose": purpose}
    secret = SHORTCUT_SECRET if authenticated or op in protocol.AUTHENTICATED_OPS else None
    if op in (protocol.OP_UNLOCK, protocol.OP_WAIT_FOR_APPROVAL):
        fields = {"passphrase": "pass"} if op == protocol.OP_UNLOCK else {"approval_id": 7, "wait_ms": 10}
    try:
        request = protocol.build_request(secret, op=op, **fields)
    except protocol.ProtocolError:  # a purpose the client itself refuses to send
        request = protocol.build_request(secret, op=op, **{**fields, "purpose": None})
    return protocol.encode_frame(request)[:-1]


client_frames = st.builds(
    _client_frame,
    op=st.sampled_from(sorted(protocol.OPS)),
    purpose=st.none() | st.sampled_from(["", "rent", "pay \u00e9", "a\"b", "back\\slash"]) | st.text(max_size=8),
    tx=st.binary(min_size=1, max_size=40),
    authenticated=st.booleans(),
)
INTERESTING_BYTES = b'"\\ {}[],:0-.eE+19aftnul\x00\x1f\x7f\x80\xc3\xff'


@st.composite
def mutated_frames(draw) -> bytes:
    line = bytearray(draw(client_frames))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.integers(0, len(line)))
        action = draw(st.sampled_from(["insert", "replace", "delete", "truncate", "duplicate", "bump digit"]))
        byte = draw(st.sampled_from(INTERESTING_BYTES))
        if action == "insert":
            line[where:where] = bytes([byte])
        elif action == "replace" and where < len(line):
            line[where] = byte
        elif action == "delete" and where < len(line):
            del line[where]
        elif action == "truncate":
            del line[where:]
        elif action == "duplicate":  # a repeated ,"key":value run: a duplicate key
            start = line.rfind(b',"', 0, where)
            end = line.find(b',"', where)
            if 0 <= start < end:
                line[end:end] = line[start:end]
        elif action == "bump digit":  # timestamps and ids near their bounds
            line = bytearray(line.replace(b'"timestamp":', b'"timestamp":' + bytes([byte]), 1))
    return bytes(line)


@st.composite
def reshaped_objects(draw) -> dict:
    """A client's request as an object, a field replaced, removed, added or moved."""
    obj = protocol.decode_frame(draw(client_frames))
    names = list(obj)
    for _ in range(draw(st.integers(0, 2))):
        action = draw(st.sampled_from(["replace", "remove", "add", "move"]))
        name = draw(st.sampled_from(names + ["extra", "message", "purpose", "timestamp", "hmac"]))
        if action == "replace":
            obj[name] = draw(
                json_values
                | st.integers(-1, 2**53 + 1)
                | st.sampled_from(["", "AA==", "AA=", "A===", "AB==", "+/==", "a" * 1645, "ping", "sign"])
                | st.uuids().map(str).map(str.upper)
                | st.text(alphabet="0123456789abcdefABCDEF", min_size=63, max_size=65)
            )
        elif action == "remove":
            obj.pop(name, None)
        elif action == "add":
            obj.setdefault(name, draw(json_values))
        elif name in obj:
            obj[name] = obj.pop(name)
    return obj


def _decoded(decode, line: bytes):
    try:
        return "ok", repr(list(decode(line).items()))  # repr tells 1 from True and 1.0
    except protocol.ProtocolError as exc:
        return "refused", exc.wire_code, exc.message


def _parsed(parse, obj):
    try:
        return "ok", parse(obj)
    except protocol.ProtocolError as exc:
        return "refused", exc.wire_code, exc.message


def _json_path(line: bytes) -> dict:
    return protocol._decode_json_frame(line[:-1] if line.endswith(b"\n") else line)


def _check_both_paths(line: bytes) -> None:
    decoded = _decoded(protocol.decode_frame, line)
    assert decoded == _decoded(_json_path, line), line
    if decoded[0] == "ok":
        obj = protocol.decode_frame(line)
        assert _parsed(protocol.parse_request, obj) == _parsed(protocol._parse_request_in_full, obj), line


@FAST_PATH
@given(line=client_frames | mutated_frames() | st.binary(max_size=80))
def test_decode_frame_reads_every_line_as_the_json_parser_does(line):
    _check_both_paths(line)


@FAST_PATH
@given(obj=reshaped_objects())
def test_parse_request_checks_every_object_as_the_full_parser_does(obj):
    assert _parsed(protocol.parse_request, obj) == _parsed(protocol._parse_request_in_full, obj), obj


def test_the_straight_line_paths_are_taken_for_what_clients_send():
    """Each shortcut really runs for the client's frames (else the tests above prove nothing)."""
    for op, purpose in [("sign", None), ("sign", "rent"), ("ping", None), ("status", None)]:
        line = _client_frame(op, purpose, b"\x01\x02", authenticated=False)
        assert protocol._COMMON_FRAME.fullmatch(line) is not None
        assert protocol._parse_common_request(protocol.decode_frame(line)) is not None


def test_mutated_client_frames_agree_on_a_fixed_sample():
    """A deterministic slice too (hypothesis shrinks toward short frames): 20,000 mutants."""
    rng = random.Random(16)
    ops = sorted(protocol.OPS)
    for _ in range(20_000):
        line = bytearray(_client_frame(rng.choice(ops), rng.choice([None, "rent", "caf\u00e9"]), rng.randbytes(20), rng.random() < 0.5))
        for _ in range(rng.randrange(1, 3)):
            where = rng.randrange(len(line) + 1)
            roll = rng.random()
            if roll < 0.4:
                line[where:where] = bytes([rng.choice(INTERESTING_BYTES)])
            elif roll < 0.8 and where < len(line):
                line[where] = rng.choice(INTERESTING_BYTES)
            elif where < len(line):
                del line[where]
        _check_both_paths(bytes(line))
