"""Invariant 8 against real forked signers: bad input never crashes the signer.

Each case sends something hostile or broken over a real Unix socket, checks the one reply it
gets (or that the connection is closed), and then checks that a fresh client still pings and
signs correctly. Nothing here may leave a traceback on the signer's stderr.
"""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import socket
import time
from pathlib import Path

import base58
import nacl.signing
import pytest

from jarvis_wallet import protocol
from jarvis_wallet.client import SignerClient
from jarvis_wallet.errors import SignerStartError, SignerUnavailable

from conftest import transfer_message

REQUEST_ID = "3f1c9a52-7b4e-4d0a-9c6f-2e8b5d7a1f03"


class Raw:
    """A bare connection: send bytes, read reply lines (None once the signer closed it)."""

    def __init__(self, path: Path, *, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buffer = b""

    def send(self, data: bytes) -> bool:
        """Send; False if the signer had already closed the connection."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def line(self) -> dict | None:
        while b"\n" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def ping(self) -> dict | None:
        request_id = protocol.new_request_id()
        if not self.send(protocol.encode_frame({"op": "ping", "requestId": request_id})):
            return None
        reply = self.line()
        assert reply is None or reply["requestId"] == request_id
        return reply

    def close(self) -> None:
        self.sock.close()


def secret_of(handle) -> bytes:
    return Path(handle.info.secret_path).read_bytes().rstrip(b"\n")


def sign_frame(secret: bytes, message: bytes) -> tuple[dict, bytes]:
    request = protocol.build_request(secret, op="sign", tx_base64=base64.b64encode(message).decode())
    return request, protocol.encode_frame(request)


def rows_by_request_id(url: str) -> dict[str, dict]:
    from jarvis_wallet.db import session
    from jarvis_wallet.models import WalletTransaction

    with session(url):
        return {row["request_id"]: row for row in WalletTransaction.select().dicts()}


def assert_serves(signers, handle) -> None:
    """A fresh, well-behaved client can still ping and get a valid, recorded signature."""
    keypair = signers.keypair()
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    with SignerClient(handle.socket_path, timeout=5) as client:
        assert client.ping()["pong"] is True
        signed = client.sign_transaction(message)
    nacl.signing.VerifyKey(keypair.public_key).verify(message, base58.b58decode(signed.signature))
    row = rows_by_request_id(signers.database_url)[signed.request_id]
    assert (row["status"], row["signature"]) == ("signed", signed.signature)


@pytest.fixture(autouse=True)
def no_tracebacks(capfd):
    """The signers share this process's stderr: a crashed thread would print here."""
    yield
    _, err = capfd.readouterr()
    assert "Traceback" not in err and "Exception in thread" not in err, err


@pytest.fixture
def signer(signers):
    signers.set_limits(per_tx=10**9, daily=10**15)
    return signers.start()


# -- one hostile line at a time --------------------------------------------------------------------

KEEP_OPEN = True
CLOSED = False
ZERO_HMAC = "0" * 64


def json_line(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


BAD_INPUT = {
    "garbage": ([b"\x00\x01\x02 garbage \x7f\n"], ["bad_request"], KEEP_OPEN),
    "non-utf8": ([b'{"op":"ping","requestId":"\xff\xfe"}\n'], ["bad_request"], KEEP_OPEN),
    "lone-surrogate": (
        [json_line({"op": "sign_message", "requestId": REQUEST_ID, "timestamp": 1, "message": "\ud800", "hmac": ZERO_HMAC})],
        ["bad_request"], KEEP_OPEN,
    ),
    "non-json": ([b"op=sign&txBase64=AAAA\n"], ["bad_request"], KEEP_OPEN),
    "empty-line": ([b"\n"], ["bad_request"], KEEP_OPEN),
    "crlf-only": ([b"\r\n"], ["bad_request"], KEEP_OPEN),
    "json-array": ([json_line([{"op": "ping", "requestId": REQUEST_ID}])], ["bad_request"], KEEP_OPEN),
    "json-scalar": ([b"42\n"], ["bad_request"], KEEP_OPEN),
    "deep-nesting": ([b'{"op":' + b"[" * 30_000 + b"]" * 30_000 + b"}\n"], ["bad_request"], KEEP_OPEN),
    "deep-object-nesting": ([b'{"a":' * 6_000 + b"1" + b"}" * 6_000 + b"\n"], ["bad_request"], KEEP_OPEN),
    "duplicate-keys": (
        [b'{"op":"ping","requestId":"' + REQUEST_ID.encode() + b'","op":"sign"}\n'], ["bad_request"], KEEP_OPEN,
    ),
    "bool-timestamp": (
        [json_line({"op": "status", "requestId": REQUEST_ID, "timestamp": True, "hmac": ZERO_HMAC})],
        ["bad_request"], KEEP_OPEN,
    ),
    "string-timestamp": (
        [json_line({"op": "status", "requestId": REQUEST_ID, "timestamp": "1", "hmac": ZERO_HMAC})],
        ["bad_request"], KEEP_OPEN,
    ),
    "number-tx": (
        [json_line({"op": "sign", "requestId": REQUEST_ID, "timestamp": 1, "txBase64": 7, "hmac": ZERO_HMAC})],
        ["bad_request"], KEEP_OPEN,
    ),
    "nan": ([json_line({"op": "ping", "requestId": REQUEST_ID, "timestamp": float("nan")})], ["bad_request"], KEEP_OPEN),
    "huge-integer": ([b'{"op":"ping","timestamp":' + b"9" * 10_000 + b"}\n"], ["bad_request"], KEEP_OPEN),
    "unknown-op": ([json_line({"op": "export_private_key", "requestId": REQUEST_ID})], ["unknown_op"], KEEP_OPEN),
    "missing-op": ([json_line({"requestId": REQUEST_ID})], ["bad_request"], KEEP_OPEN),
    "line-split-across-writes": (
        [b'{"op":"pi', b'ng","requestId":"', REQUEST_ID.encode() + b'"}\n'], [None], KEEP_OPEN,
    ),
    "huge-line": ([b'{"a":"' + b"x" * 70_000 + b'"}\n'], ["line_too_long"], CLOSED),
    "huge-unfinished-line": ([b"[" * 200_000], ["line_too_long"], CLOSED),
    "good-then-huge": (
        [json_line({"op": "ping", "requestId": REQUEST_ID}), b"y" * 70_000 + b"\n"], [None, "line_too_long"], CLOSED,
    ),
}


@pytest.mark.parametrize(("chunks", "codes", "stays_open"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_gets_one_reply_and_the_signer_keeps_serving(signers, signer, chunks, codes, stays_open):
    raw = Raw(signer.socket_path)
    for chunk in chunks:
        if not raw.send(chunk):
            break
        time.sleep(0.01)  # separate writes really arrive separately
    for code in codes:
        reply = raw.line()
        assert reply is not None, "the signer closed the connection without a reply"
        if code is None:
            assert reply["ok"] is True and reply["requestId"] == REQUEST_ID
        else:
            assert reply["ok"] is False and reply["error"]["code"] == code, reply
            assert reply["requestId"] in (None, REQUEST_ID)
    if stays_open:
        assert raw.ping()["pong"] is True  # the same connection carries on
    else:
        assert raw.line() is None  # answered once, then closed
    raw.close()
    assert signer.is_alive()
    assert_serves(signers, signer)


def test_half_a_line_then_a_disconnect(signers, signer):
    raw = Raw(signer.socket_path)
    raw.send(b'{"op":"sign","requestId":"' + REQUEST_ID.encode() + b'","txBa')
    raw.close()
    assert_serves(signers, signer)
    assert REQUEST_ID not in rows_by_request_id(signers.database_url)


def test_a_connection_dropped_mid_request(signers, signer):
    """The reply has nowhere to go; the decision is still whole: recorded and valid, or absent."""
    keypair = signers.keypair()
    dropped = []
    for _ in range(5):
        message = transfer_message(from_key=keypair.public_key, lamports=1000)
        request, frame = sign_frame(secret_of(signer), message)
        raw = Raw(signer.socket_path)
        raw.send(frame)
        raw.sock.shutdown(socket.SHUT_RDWR)
        raw.close()
        dropped.append((request["requestId"], message))
    assert_serves(signers, signer)
    rows = rows_by_request_id(signers.database_url)
    for request_id, message in dropped:
        row = rows.get(request_id)
        if row is not None:
            assert row["status"] == "signed"
            nacl.signing.VerifyKey(keypair.public_key).verify(message, base58.b58decode(row["signature"]))


def test_hanging_up_mid_call_never_puts_more_calls_in_hand_than_slots(signers, tmp_path):
    """A client that hangs up (reply unread: the signer's read fails) while its unlock waits on
    the unlock mutex must not free its slot before the call ends: otherwise each hang-up starts one
    more thread and queues one more guess ahead of the operator's unlock, without bound."""
    from test_keystore import DUMMY, PASSPHRASE
    from jarvis_wallet.keystore import Passphrase, write_keystore

    keystore = tmp_path / "signer.keystore"
    write_keystore(keystore, DUMMY, Passphrase(PASSPHRASE), strength="interactive")
    handle = signers.start(
        keypair_path=keystore, passphrase=Passphrase(PASSPHRASE), max_connections=1, connection_wait_seconds=0.2
    )
    secret = secret_of(handle)
    lock = Raw(handle.socket_path)
    lock.send(protocol.encode_frame(protocol.build_request(secret, op="lock")))
    assert lock.line()["locked"] is True
    lock.close()
    threads = Path(f"/proc/{handle.pid}/task")
    before = len(os.listdir(threads))
    most = 0
    for _ in range(12):
        raw = Raw(handle.socket_path)
        raw.send(protocol.encode_frame(protocol.build_request(None, op="ping"))
                 + protocol.encode_frame(protocol.build_request(secret, op="unlock", passphrase="not it")))
        raw.sock.recv(1, socket.MSG_PEEK)  # answered (ping, or busy): the unlock is in hand or refused
        raw.close()  # with that answer unread
        most = max(most, len(os.listdir(threads)))
    assert most <= before + 1, f"{most - before} calls in hand with one connection slot"


def test_a_failure_turning_a_decision_into_its_reply_costs_that_reply_not_the_signer(signers, monkeypatch):
    """finish() runs on the serving loop: whatever it raises must not stop the loop (before, it
    stopped the signer, and every other client with it)."""
    from jarvis_wallet.handler import SignerStats

    counted = SignerStats.count_reply

    def failing(self, response):  # a bug in the reply path of a signature, in the forked signer too
        if response.get("signature"):
            raise RuntimeError("a bug while framing the reply")
        counted(self, response)

    monkeypatch.setattr(SignerStats, "count_reply", failing)
    signers.set_limits(per_tx=10**9, daily=10**15)
    handle = signers.start()
    raw = Raw(handle.socket_path)
    raw.send(sign_frame(secret_of(handle), transfer_message(from_key=signers.keypair().public_key, lamports=1000))[1])
    reply = raw.line()
    assert reply is not None and reply["error"]["code"] == "internal_error" and "signature" not in reply
    with SignerClient(handle.socket_path, timeout=5) as client:
        assert client.ping()["pong"] is True


def test_many_frames_in_one_write_are_answered_in_order(signers, signer):
    keypair = signers.keypair()
    secret = secret_of(signer)
    expected = []  # (requestId or None, code or None, message or None)
    stream = b""
    for index in range(120):
        if index % 20 == 7:
            stream += b"garbage line\n"
            expected.append((None, "bad_request", None))
        elif index % 20 == 13:
            message = transfer_message(from_key=keypair.public_key, lamports=1000 + index)
            request, frame = sign_frame(secret, message)
            stream += frame
            expected.append((request["requestId"], None, message))
        else:
            request_id = protocol.new_request_id()
            stream += protocol.encode_frame({"op": "ping", "requestId": request_id})
            expected.append((request_id, None, None))
    raw = Raw(signer.socket_path, timeout=10)
    raw.send(stream)
    verify_key = nacl.signing.VerifyKey(keypair.public_key)
    for request_id, code, message in expected:
        reply = raw.line()
        assert reply["requestId"] == request_id
        if code is not None:
            assert reply["error"]["code"] == code
        elif message is not None:
            verify_key.verify(message, base58.b58decode(reply["signature"]))
        else:
            assert reply["pong"] is True
    raw.close()
    assert_serves(signers, signer)


def test_a_request_written_one_byte_at_a_time(signers, signer):
    keypair = signers.keypair()
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    request, frame = sign_frame(secret_of(signer), message)
    raw = Raw(signer.socket_path)
    for byte in frame:
        raw.sock.send(bytes([byte]))
    reply = raw.line()
    assert reply["ok"] is True and reply["requestId"] == request["requestId"]
    nacl.signing.VerifyKey(keypair.public_key).verify(message, base58.b58decode(reply["signature"]))
    raw.close()
    assert_serves(signers, signer)


# -- connections: idle, capacity, clients that never read -------------------------------------------


def _is_open(raw: Raw) -> bool:
    timeout = raw.sock.gettimeout()
    raw.sock.settimeout(0)  # with a timeout, recv would wait for data first
    try:
        return raw.sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True  # nothing to read, not closed
    except ConnectionResetError:
        return False
    finally:
        raw.sock.settimeout(timeout)


def _wait_closed(raw: Raw, limit: float) -> None:
    raw.sock.settimeout(limit)
    assert raw.line() is None


def test_idle_connections_are_closed(signers):
    signers.set_limits(per_tx=10**9, daily=10**15)
    handle = signers.start(idle_timeout_seconds=0.5)
    opened = time.monotonic()
    silent = Raw(handle.socket_path)
    half = Raw(handle.socket_path)
    half.send(b'{"op":"ping","requ')
    time.sleep(0.2)
    assert _is_open(silent) and _is_open(half)
    _wait_closed(silent, 5)
    _wait_closed(half, 5)
    assert 0.4 < time.monotonic() - opened < 5

    talking = Raw(handle.socket_path)
    for _ in range(6):  # 1.2 s of activity, longer than the idle timeout
        assert talking.ping()["pong"] is True
        time.sleep(0.2)
    assert talking.ping()["pong"] is True  # activity keeps a connection open
    talking.close()
    assert_serves(signers, handle)


def test_connections_past_the_cap_wait_for_a_slot_and_are_then_served(signers):
    """Issue 10, finding 7: connections over the cap wait (bounded) instead of being refused."""
    signers.set_limits(per_tx=10**9, daily=10**15)
    handle = signers.start(max_connections=2, connection_wait_seconds=30)
    first, second = Raw(handle.socket_path), Raw(handle.socket_path)
    assert first.ping()["pong"] is True and second.ping()["pong"] is True
    waiting = [Raw(handle.socket_path) for _ in range(3)]
    request_ids = [protocol.new_request_id() for _ in waiting]
    for raw, request_id in zip(waiting, request_ids):  # each writes at once, as a client does
        assert raw.send(protocol.encode_frame({"op": "ping", "requestId": request_id}))
    time.sleep(0.5)
    assert all(_is_open(raw) and not select.select([raw.sock], [], [], 0)[0] for raw in waiting), "not waiting"
    first.close()
    assert waiting[0].line() == {"requestId": request_ids[0], "ok": True, "pong": True, "version": 1}
    assert not select.select([waiting[1].sock], [], [], 0.3)[0], "served past the cap"
    waiting[0].close()  # slots pass on in the order the connections arrived
    assert waiting[1].line()["requestId"] == request_ids[1]
    second.close()
    assert waiting[2].line()["requestId"] == request_ids[2]
    assert waiting[2].ping()["pong"] is True  # a served connection carries more requests
    for raw in waiting[1:]:
        raw.close()
    assert_serves(signers, handle)


def test_a_connection_that_waits_too_long_is_answered_busy_after_its_first_line(signers):
    """Issue 18: `busy` reaches a client that writes straight after connecting, with its
    requestId, and nothing was decided: the request left no row."""
    signers.set_limits(per_tx=10**9, daily=10**15)
    handle = signers.start(max_connections=1, connection_wait_seconds=0.2)
    holder = Raw(handle.socket_path)
    assert holder.ping()["pong"] is True
    secret = secret_of(handle)
    keypair = signers.keypair()
    for _ in range(20):
        request, frame = sign_frame(secret, transfer_message(from_key=keypair.public_key, lamports=1000))
        extra = Raw(handle.socket_path)
        assert extra.send(frame), "EPIPE: the signer closed before reading the request"
        reply = extra.line()
        assert reply == {
            "requestId": request["requestId"], "ok": False,
            "error": {"code": "busy", "message": reply["error"]["message"]},
        }
        assert "retry" in reply["error"]["message"] and "not decided" in reply["error"]["message"]
        assert extra.line() is None  # and closed
        extra.close()
    assert rows_by_request_id(signers.database_url) == {}
    assert holder.send(protocol.encode_frame(protocol.build_request(secret, op="status")))
    assert holder.line()["errors"] == {"busy": 20}  # status counts every error reply by its code
    holder.close()


def test_a_client_that_hangs_up_while_waiting_is_never_acted_on(signers):
    """A request whose client gave up (closed) before a slot freed is dropped unread: no
    signature is made for nobody."""
    signers.set_limits(per_tx=10**9, daily=10**15)
    handle = signers.start(max_connections=1, connection_wait_seconds=30)
    holder = Raw(handle.socket_path)
    assert holder.ping()["pong"] is True
    keypair = signers.keypair()
    request, frame = sign_frame(secret_of(handle), transfer_message(from_key=keypair.public_key, lamports=1000))
    quitter = Raw(handle.socket_path)
    assert quitter.send(frame)
    time.sleep(0.2)
    quitter.close()
    half_closed = Raw(handle.socket_path)  # shut down writing only: still waiting for its answer
    ping_id = protocol.new_request_id()
    assert half_closed.send(protocol.encode_frame({"op": "ping", "requestId": ping_id}))
    half_closed.sock.shutdown(socket.SHUT_WR)
    time.sleep(0.2)
    holder.close()
    assert half_closed.line() == {"requestId": ping_id, "ok": True, "pong": True, "version": 1}
    half_closed.close()
    assert_serves(signers, handle)
    assert request["requestId"] not in rows_by_request_id(signers.database_url)


def test_a_client_that_never_reads_does_not_stall_others(signers, signer):
    keypair = signers.keypair()
    secret = secret_of(signer)
    hog = Raw(signer.socket_path)
    hog.sock.setblocking(False)
    pings = b"".join(
        protocol.encode_frame({"op": "ping", "requestId": protocol.new_request_id()}) for _ in range(100)
    )
    signs = sign_frame(secret, transfer_message(from_key=keypair.public_key, lamports=1000))[1]
    pending = memoryview(signs + pings)
    batches = 1
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not pending:
            pending, batches = memoryview(pings), batches + 1
        try:
            pending = pending[hog.sock.send(pending):]
        except BlockingIOError:
            # Full for now. Stalled for good only if the signer stops reading altogether.
            _, writable, _ = select.select([], [hog.sock], [], 1.0)
            if not writable:
                break
    else:
        pytest.fail("the signer kept reading from a client that never reads its replies")
    assert batches * 100 > 2000  # far more replies than the socket buffers hold
    assert_serves(signers, signer)
    with SignerClient(signer.socket_path, timeout=5) as client:  # several requests on one connection
        for _ in range(3):
            client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1000))
    hog.close()
    assert_serves(signers, signer)


def test_a_client_turned_away_as_busy_sees_signer_unavailable(signers):
    signers.set_limits(per_tx=10**9, daily=10**15)
    handle = signers.start(max_connections=1, connection_wait_seconds=0.1)
    holder = Raw(handle.socket_path)
    assert holder.ping()["pong"] is True
    try:
        with pytest.raises(SignerUnavailable) as excinfo:
            SignerClient(handle.socket_path, timeout=5).ping()
        assert excinfo.value.wire_code == "busy"
    finally:
        holder.close()


def test_many_clients_misbehaving_at_once(signers):
    """Garbage, drops and half lines on many connections at once, then everyone is served."""
    signers.set_limits(per_tx=10**9, daily=10**15)
    handle = signers.start(max_connections=64)
    connections = [Raw(handle.socket_path) for _ in range(40)]
    for index, raw in enumerate(connections):
        raw.send([b"\xff\n", b"[]\n", b'{"op":', b"x" * 70_000 + b"\n"][index % 4])
    for index, raw in enumerate(connections):
        if index % 4 in (0, 1):
            assert raw.line()["error"]["code"] == "bad_request"
        elif index % 4 == 3:
            assert raw.line()["error"]["code"] == "line_too_long"
        raw.close()
    for _ in range(5):
        assert_serves(signers, handle)


# -- stopping ----------------------------------------------------------------------------------


def test_a_signer_stopped_right_after_it_reported_ready_still_cleans_up(signers):
    """'Ready' must mean SIGTERM is handled: a default-action death leaves socket and pid file."""
    signers.set_limits(per_tx=10**9, daily=10**15)
    socket_path = signers.tmp_path / "run" / "signer.sock"
    for _ in range(40):
        handle = signers.start(socket_path=socket_path)
        handle.stop()
        assert not handle.is_alive()
        assert not socket_path.exists(), "socket left behind"
        assert not (socket_path.parent / "signer.pid").exists(), "pid file left behind"
    assert_serves(signers, signers.start(socket_path=socket_path))


def test_a_killed_signer_leaves_a_stale_socket_that_the_next_one_replaces(signers):
    signers.set_limits(per_tx=10**9, daily=10**15)
    socket_path = signers.tmp_path / "run" / "signer.sock"
    killed = signers.start(socket_path=socket_path)
    os.kill(killed.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while killed.is_alive():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert socket_path.exists()  # SIGKILL leaves no chance to clean up
    replacement = signers.start(socket_path=socket_path)
    assert replacement.pid != killed.pid
    assert_serves(signers, replacement)


def test_a_live_signers_socket_is_never_taken_over(signers):
    signers.set_limits(per_tx=10**9, daily=10**15)
    socket_path = signers.tmp_path / "run" / "signer.sock"
    live = signers.start(socket_path=socket_path)
    with pytest.raises(SignerStartError, match=f"already served by a live signer \\(pid {live.pid}\\)"):
        signers.start(socket_path=socket_path)
    assert_serves(signers, live)
    assert SignerClient(socket_path).status()["pid"] == live.pid


# -- memory ------------------------------------------------------------------------------------


def malloc_arenas(pid: int) -> int:
    """glibc malloc arenas besides the main heap: 64 MiB-aligned anonymous regions of 64 MiB."""
    rows = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            start, end = (int(value, 16) for value in fields[0].split("-"))
            rows.append((start, end, fields[1], fields[5] if len(fields) > 5 else ""))
    arenas = 0
    for index, (start, end, perms, name) in enumerate(rows):
        if name or perms != "rw-p" or start % (64 << 20):
            continue
        size = end - start
        following = rows[index + 1] if index + 1 < len(rows) else None
        if following and following[0] == end and following[2] == "---p" and not following[3]:
            size += following[1] - following[0]
        arenas += size == 64 << 20
    return arenas


def test_the_signer_keeps_to_two_malloc_arenas_however_many_connections(signers, tmp_path):
    """One arena per connection thread (glibc's default, up to 8 a core) each kept its own slack,
    and the signer's memory crept up for as long as a soak ran (docs/reliability.md, finding 9).

    The signer runs as `signer serve` in a new process, as the CLI starts it: a signer forked from
    a process that already has many arenas inherits them (and, past 8, glibc's limit with them).
    """
    import threading

    from jarvis_wallet.client import SignerClient

    from faultkit import ServedSigner

    if os.geteuid() != 0:
        pytest.skip("the memory map of a non-dumpable process is readable by root only")
    signers.set_limits(per_tx=10**9, daily=10**15)
    keypair = signers.keypair()
    served = ServedSigner(
        socket_path=tmp_path / "served" / "signer.sock", database_url=signers.database_url,
        keypair_path=signers.keypair_file(),
    ).start()
    failures: list[BaseException] = []

    def sign_many() -> None:
        try:
            with SignerClient(served.socket_path) as client:
                for _ in range(25):
                    client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1000))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    try:
        threads = [threading.Thread(target=sign_many) for _ in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures[:3]
        assert malloc_arenas(served.pid) <= 1  # M_ARENA_MAX 2: the main heap and one more
    finally:
        assert served.stop() == 0
    assert not served.tracebacks(), served.stderr_lines


def test_the_signal_handler_takes_no_lock(tmp_path):
    """A second signal (the foreground parent's SIGTERM right after Ctrl-C's SIGINT) can run the
    handler inside halt()'s own Event.set(), whose lock is not reentrant: the handler must only
    record. It used to call Event.set() and, rarely, deadlocked the signer on its way out."""
    import signal
    import threading

    from jarvis_wallet.signer import SignerSettings
    from jarvis_wallet.signer.server import SignerServer

    server = SignerServer(SignerSettings(socket_path=tmp_path / "s.sock", database_url=""),
                          None, None, None, None, -1, -1, None)
    done = threading.Event()

    def signal_inside_event_set():
        with server._stopping._cond:  # what halt() holds while it runs Event.set()
            server._on_signal(signal.SIGTERM, None)
            server._on_signal(signal.SIGINT, None)
        done.set()

    threading.Thread(target=signal_inside_event_set, daemon=True).start()
    assert done.wait(10), "the signal handler blocked on a lock"
    assert server._stop_signal == signal.SIGTERM  # the first signal is the one logged
