"""Security of the running signer: real forked signers, real Unix sockets, real databases.

Invariants 1 (the key never leaves), 6 (authenticated and fresh), 7 (only the intended peer
connects) of docs/design.md, plus legacy mode. Every refusal is checked at the two places a
signature could escape: the reply on the wire and the wallet_transactions table.

Tests that need a second user fork a child that drops to nobody (uid/gid 65534); they need root
and a socket directory under a base that nobody can traverse (``open_base``).
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import json
import os
import resource
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import base58
import nacl.signing
import pytest

from jarvis_wallet import protocol
from jarvis_wallet.client import SignerClient
from jarvis_wallet.errors import AuthenticationFailed, PolicyDenied, SignerStartError
from jarvis_wallet.keys import Keypair

from conftest import transfer_message

ROOT = Path(__file__).resolve().parent.parent
NOBODY_UID = NOBODY_GID = 65534
FEE = 5000

# The known dummy key: its seed is the bytes 0..31. It must never show up anywhere.
DUMMY_SEED = bytes(range(32))
DUMMY = Keypair.from_seed(DUMMY_SEED)
DUMMY_SECRET_KEY = DUMMY_SEED + DUMMY.public_key

needs_root = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0,
    reason="needs root on Linux to fork a child that drops to uid nobody",
)


# -- helpers -----------------------------------------------------------------------------------


class Raw:
    """A bare connection to the signer: send bytes, read reply lines, keep a transcript."""

    def __init__(self, path: Path, *, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buffer = b""
        self.transcript = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> dict | None:
        """The next reply, or None at end of stream."""
        while b"\n" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk
            self.transcript += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def request(self, obj: dict) -> dict | None:
        self.send(protocol.encode_frame(obj))
        return self.line()

    def close(self) -> None:
        self.sock.close()


def secret_of(handle) -> bytes:
    """The shared secret the signer generated beside its socket (the key is the text)."""
    return Path(handle.info.secret_path).read_bytes().rstrip(b"\n")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sign_request(secret: bytes, message: bytes, **fields) -> dict:
    return protocol.build_request(secret, op="sign", tx_base64=b64(message), **fields)


def wallet_rows(url: str) -> list[dict]:
    from jarvis_wallet.db import session
    from jarvis_wallet.models import WalletTransaction

    with session(url):
        return list(WalletTransaction.select().order_by(WalletTransaction.id).dicts())


def all_database_text(url: str) -> bytes:
    """Every value of every row of every table, as text."""
    from jarvis_wallet.db import is_sqlite, session

    with session(url) as db:
        if is_sqlite(db):
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            query = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        tables = [row[0] for row in db.execute_sql(query)]
        assert "wallet_transactions" in tables
        dump = []
        for table in tables:
            for row in db.execute_sql(f'SELECT * FROM "{table}"'):
                dump.append(f"{table}: " + " | ".join(repr(value) for value in row))
    return "\n".join(dump).encode("utf-8", "backslashreplace")


def sqlite_files_text(url: str) -> bytes:
    """The raw bytes of a SQLite database and its journal files (freed pages included)."""
    if not url.startswith("sqlite:"):
        return b""
    path = Path("/" + url.removeprefix("sqlite:").lstrip("/"))
    data = b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
    assert b"wallet_transactions" in data, f"no database read at {path}"
    return data


def no_signature_of(message: bytes, keypair: Keypair, *texts: bytes) -> None:
    """Ed25519 is deterministic: the signature a refusal must not release is known in advance."""
    signature = keypair.sign(message)
    for form in (base58.b58encode(signature), base64.b64encode(signature), signature.hex().encode()):
        for text in texts:
            assert form not in text


def write_keypair_file(path: Path, secret_key: bytes, mode: int = 0o600) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(list(secret_key)))
    os.chmod(path, mode)
    return path


def key_needles() -> dict[str, bytes]:
    """The dummy key in every spelling a leak could take."""
    needles: dict[str, bytes] = {}
    for label, raw in (("seed", DUMMY_SEED), ("secret key", DUMMY_SECRET_KEY)):
        needles[f"{label} hex"] = raw.hex().encode()
        needles[f"{label} HEX"] = raw.hex().upper().encode()
        needles[f"{label} base58"] = base58.b58encode(raw)
        needles[f"{label} base64"] = base64.b64encode(raw)
        needles[f"{label} urlsafe base64"] = base64.urlsafe_b64encode(raw)
        needles[f"{label} JSON array"] = ",".join(str(b) for b in raw).encode()
        needles[f"{label} spaced JSON array"] = ", ".join(str(b) for b in raw).encode()
        needles[f"{label} bytes repr"] = repr(raw)[2:-1].encode()
    needles["seed base64 prefix"] = base64.b64encode(DUMMY_SEED[:30])  # inside both encodings
    needles["raw seed"] = DUMMY_SEED
    return needles


def assert_no_key(**texts: bytes | str) -> None:
    needles = key_needles()
    for where, text in texts.items():
        data = text.encode("utf-8", "backslashreplace") if isinstance(text, str) else bytes(text)
        for form, needle in needles.items():
            assert needle not in data, f"the dummy key ({form}) appears in {where}"


def run_cli(*args, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "jarvis_wallet", *(str(a) for a in args)],
        capture_output=True, env=full_env, timeout=timeout, cwd=ROOT,
    )


def run_as_nobody(func, *, timeout: float = 20.0):
    """Run ``func()`` in a forked child with uid/gid nobody; return its JSON-able result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY_GID)
            os.setuid(NOBODY_UID)
            try:
                result = {"value": func()}
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                result = {"exception": type(exc).__name__, "errno": getattr(exc, "errno", None), "message": str(exc)}
            with os.fdopen(write_end, "wb") as out:
                out.write(json.dumps(result).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    data = b""
    finished = False
    deadline = time.monotonic() + timeout
    try:
        while not finished:
            ready, _, _ = select.select([read_end], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                raise AssertionError(f"the nobody child did not finish within {timeout} s")
            chunk = os.read(read_end, 65536)
            finished = not chunk
            data += chunk
    finally:
        os.close(read_end)
        if not finished:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert data, "the nobody child died without reporting"
    return json.loads(data)


@pytest.fixture
def open_base():
    """A directory nobody can traverse (0711), for sockets that a nobody child must reach.

    List it before ``signers`` so the signers stop before it is removed.
    """
    base = Path(tempfile.mkdtemp(prefix="jw-security-", dir="/tmp"))
    os.chmod(base, 0o711)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def limited(signers):
    """A running signer (default settings) whose wallet may spend 1,000,000 lamports per tx."""
    handle = signers.start()
    signers.set_limits(per_tx=1_000_000, daily=10**9)
    return handle


# -- invariant 6: authenticated, fresh, single use -------------------------------------------------


def test_a_wrong_hmac_is_auth_failed_and_nothing_is_signed(signers, limited):
    keypair = signers.keypair()
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    raw = Raw(limited.socket_path)
    forged = sign_request(b"an-attacker-guess-of-the-secret-0123456789", message)
    reply = raw.request(forged)
    assert reply["ok"] is False and reply["error"]["code"] == "auth_failed"
    assert reply["requestId"] == forged["requestId"]
    larger = transfer_message(from_key=keypair.public_key, lamports=999_999)
    tampered = dict(sign_request(secret_of(limited), message), txBase64=b64(larger))
    assert raw.request(tampered)["error"]["code"] == "auth_failed"
    with pytest.raises(AuthenticationFailed) as excinfo:
        SignerClient(limited.socket_path, secret=b"w" * 32).sign_transaction(message)
    assert excinfo.value.wire_code == "auth_failed"
    assert wallet_rows(signers.database_url) == []
    no_signature_of(message, keypair, raw.transcript)


@pytest.mark.parametrize("skew_seconds", [-31, 31, -3600, 86_400])
def test_a_stale_timestamp_is_refused_and_nothing_is_signed(signers, limited, skew_seconds):
    keypair = signers.keypair()
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    request = sign_request(secret_of(limited), message, timestamp_ms=protocol.current_time_ms() + skew_seconds * 1000)
    raw = Raw(limited.socket_path)
    reply = raw.request(request)
    assert reply["ok"] is False and reply["error"]["code"] == "stale_request"
    assert ("behind" if skew_seconds < 0 else "ahead of") in reply["error"]["message"]
    assert wallet_rows(signers.database_url) == []
    no_signature_of(message, keypair, raw.transcript)


def test_a_replayed_request_id_is_refused(signers, limited):
    keypair = signers.keypair()
    secret = secret_of(limited)
    first_message = transfer_message(from_key=keypair.public_key, lamports=1000)
    request = sign_request(secret, first_message)
    raw = Raw(limited.socket_path)
    assert raw.request(request)["ok"] is True
    assert raw.request(request)["error"]["code"] == "replayed_request"
    # Same id, different transaction, valid HMAC: still the same id.
    other_message = transfer_message(from_key=keypair.public_key, lamports=2000)
    reused = sign_request(secret, other_message, request_id=request["requestId"])
    assert Raw(limited.socket_path).request(reused)["error"]["code"] == "replayed_request"
    rows = wallet_rows(signers.database_url)
    assert [(row["request_id"], row["status"]) for row in rows] == [(request["requestId"], "signed")]
    no_signature_of(other_message, keypair, raw.transcript)


def test_a_replay_after_a_restart_is_caught_by_the_database(signers):
    """The replay cache dies with the process; the unique request_id in the table does not."""
    keypair = signers.keypair()
    signers.set_limits(per_tx=1_000_000, daily=10**9)
    first = signers.start()
    secret = secret_of(first)
    signed_request = sign_request(secret, transfer_message(from_key=keypair.public_key, lamports=1000))
    refused_message = transfer_message(from_key=keypair.public_key, lamports=5_000_000)
    refused_request = sign_request(secret, refused_message)
    raw = Raw(first.socket_path)
    assert raw.request(signed_request)["ok"] is True
    assert raw.request(refused_request)["error"]["code"] == "per_tx_limit_exceeded"
    raw.close()
    rows_before = wallet_rows(signers.database_url)
    first.stop()

    second = signers.start(socket_path=first.socket_path)  # same directory, same secret file
    assert second.pid != first.pid and secret_of(second) == secret
    raw = Raw(second.socket_path)
    assert raw.request(signed_request)["error"]["code"] == "replayed_request"
    # A refusal is a decision too: its id cannot be replayed into a new decision either.
    signers.set_limits(per_tx=10_000_000, daily=10**9)
    assert raw.request(refused_request)["error"]["code"] == "replayed_request"
    assert wallet_rows(signers.database_url) == rows_before
    no_signature_of(refused_message, keypair, raw.transcript)
    # The restarted signer is otherwise fine.
    fresh = sign_request(secret, transfer_message(from_key=keypair.public_key, lamports=1000))
    assert raw.request(fresh)["ok"] is True


def test_a_replayed_duplicate_after_a_restart_is_refused(signers):
    """A re-sign request has a row of its own now, so its id is single use in the database too."""
    keypair = signers.keypair()
    signers.set_limits(per_tx=1_000_000, daily=10**9)
    first = signers.start()
    secret = secret_of(first)
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    original, retry = sign_request(secret, message), sign_request(secret, message)
    raw = Raw(first.socket_path)
    assert raw.request(original)["ok"] is True
    assert raw.request(retry)["duplicate"] is True
    raw.close()
    first.stop()
    second = signers.start(socket_path=first.socket_path)
    reply = Raw(second.socket_path).request(retry)
    assert reply["ok"] is False and reply["error"]["code"] == "replayed_request"


# -- start-up refusals: key file, shared secret --------------------------------------------------


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o602])
def test_a_key_file_others_can_access_is_refused_at_start(signers, tmp_path, mode):
    key_file = write_keypair_file(tmp_path / f"key-{mode:o}.json", DUMMY_SECRET_KEY, mode)
    socket_path = tmp_path / "run" / "signer.sock"
    with pytest.raises(SignerStartError) as excinfo:
        signers.start(keypair_path=key_file, socket_path=socket_path)
    assert excinfo.value.message == (
        f"keypair file {key_file} is accessible by group or others (mode {mode:04o}); run chmod 600 {key_file}"
    )
    assert not socket_path.exists()
    assert wallet_rows(signers.database_url) == []
    assert_no_key(error=str(excinfo.value))


def test_a_short_shared_secret_in_the_environment_is_refused(signers, tmp_path, monkeypatch):
    monkeypatch.setenv("SIGNER_SHARED_SECRET", "s" * 31)
    socket_path = tmp_path / "run" / "signer.sock"
    with pytest.raises(SignerStartError) as excinfo:
        signers.start(socket_path=socket_path)
    assert excinfo.value.message == "SIGNER_SHARED_SECRET holds 31 bytes; a shared secret needs at least 32"
    assert not socket_path.exists()
    # 32 bytes is enough, and the client then uses the same variable.
    monkeypatch.setenv("SIGNER_SHARED_SECRET", "s" * 32)
    handle = signers.start(socket_path=socket_path)
    assert handle.info.secret_path is None
    assert SignerClient(handle.socket_path).status()["pid"] == handle.pid


def test_a_short_secret_file_is_refused_by_the_library_and_the_cli(signers, tmp_path):
    secret_file = tmp_path / "short-secret"
    secret_file.write_bytes(b"x" * 31 + b"\n")  # the newline is not part of the key
    secret_file.chmod(0o600)
    socket_path = tmp_path / "run" / "signer.sock"
    with pytest.raises(SignerStartError) as excinfo:
        signers.start(socket_path=socket_path, secret_file=secret_file)
    expected = f"shared secret file {secret_file} holds 31 bytes; a shared secret needs at least 32"
    assert excinfo.value.message == expected
    result = run_cli(
        "--database-url", signers.database_url, "signer", "start",
        "--keypair", signers.keypair_file(), "--socket", socket_path, "--secret-file", secret_file,
    )
    assert result.returncode == SignerStartError.exit_code
    assert result.stdout == b""
    assert result.stderr.decode() == f"Error: {expected}\n"
    assert not socket_path.exists()


def test_a_secret_file_others_can_read_is_refused(signers, tmp_path):
    secret_file = tmp_path / "loose-secret"
    secret_file.write_bytes(b"y" * 64)
    secret_file.chmod(0o640)
    with pytest.raises(SignerStartError) as excinfo:
        signers.start(secret_file=secret_file)
    assert "accessible by group or others (mode 0640)" in excinfo.value.message


# -- invariant 7: who may connect ------------------------------------------------------------------


def _connect_and_read(socket_path: str, send: bytes | None = None) -> dict:
    """In the nobody child: connect, optionally send, read everything until the end."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(socket_path)
    if send is not None:
        try:
            sock.sendall(send)
        except OSError:  # the signer may already have refused and closed
            pass
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    after = None
    try:
        sock.sendall(protocol.encode_frame({"op": "ping", "requestId": protocol.new_request_id()}))
        after = sock.recv(65536).decode()
    except OSError as exc:
        after = type(exc).__name__
    sock.close()
    return {"lines": received.decode().splitlines(), "after": after}


@needs_root
def test_another_uid_cannot_reach_the_default_socket(open_base, signers):
    handle = signers.start(socket_path=open_base / "run" / "signer.sock")

    def probe():
        os.stat(handle.socket_path.parent)  # the directory is visible through the 0711 base...
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(handle.socket_path))  # ...but not enterable
        except OSError as exc:
            return {"errno": exc.errno}
        finally:
            sock.close()
        return {"errno": None}

    assert run_as_nobody(probe) == {"value": {"errno": 13}}  # EACCES
    assert SignerClient(handle.socket_path).ping()["pong"] is True


@needs_root
def test_a_uid_that_can_reach_the_socket_but_is_not_allowed_gets_peer_not_allowed(open_base, signers):
    signers.set_limits(per_tx=1_000_000, daily=10**9)
    keypair = signers.keypair()
    handle = signers.start(
        socket_path=open_base / "run" / "signer.sock", allowed_uids=(65533,), socket_group=NOBODY_GID
    )
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    request = protocol.encode_frame(sign_request(secret_of(handle), message))

    silent = run_as_nobody(lambda: _connect_and_read(str(handle.socket_path)))
    talking = run_as_nobody(lambda: _connect_and_read(str(handle.socket_path), send=request))
    assert "value" in talking, talking
    for result in (silent["value"], talking["value"]):
        (line,) = result["lines"]  # accepted at the socket level, then exactly one line
        reply = json.loads(line)
        assert reply == {
            "requestId": None, "ok": False,
            "error": {"code": "peer_not_allowed", "message": f"uid {NOBODY_UID} may not use this signer"},
        }
        assert result["after"] in ("", "BrokenPipeError", "ConnectionResetError")  # nothing else is served
    assert wallet_rows(signers.database_url) == []
    no_signature_of(message, keypair, json.dumps(talking).encode())
    assert SignerClient(handle.socket_path).ping()["pong"] is True  # its own uid still is


@needs_root
def test_a_refused_peer_sees_why_through_the_client(open_base, signers):
    handle = signers.start(
        socket_path=open_base / "run" / "signer.sock", allowed_uids=(65533,), socket_group=NOBODY_GID
    )

    def agent():
        try:
            SignerClient(handle.socket_path, secret=b"s" * 32, timeout=5).ping()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            return {"type": type(exc).__name__, "code": getattr(exc, "wire_code", None)}
        return {"type": None, "code": None}

    assert run_as_nobody(agent)["value"] == {"type": "AuthenticationFailed", "code": "peer_not_allowed"}


@needs_root
def test_an_allowed_uid_can_ping_and_sign(open_base, signers):
    signers.set_limits(per_tx=1_000_000, daily=10**9)
    keypair = signers.keypair()
    handle = signers.start(
        socket_path=open_base / "run" / "signer.sock", allowed_uids=(NOBODY_UID,), socket_group=NOBODY_GID
    )
    secret = secret_of(handle)
    message = transfer_message(from_key=keypair.public_key, lamports=1000)

    def agent():
        with SignerClient(handle.socket_path, secret=secret) as client:
            pong = client.ping()["pong"]
            signed = client.sign_transaction(message, purpose="from nobody")
        return {"pong": pong, "signature": signed.signature, "uid": os.getuid()}

    result = run_as_nobody(agent)["value"]
    assert result["pong"] is True and result["uid"] == NOBODY_UID
    nacl.signing.VerifyKey(keypair.public_key).verify(message, base58.b58decode(result["signature"]))
    (row,) = wallet_rows(signers.database_url)
    assert (row["status"], row["signature"], row["peer_uid"]) == ("signed", result["signature"], NOBODY_UID)
    assert row["purpose"] == "from nobody"


def test_socket_and_directory_modes_by_default(signers, tmp_path):
    handle = signers.start(socket_path=tmp_path / "run" / "signer.sock")
    socket_stat = handle.socket_path.lstat()
    assert stat.S_ISSOCK(socket_stat.st_mode) and stat.S_IMODE(socket_stat.st_mode) == 0o600
    directory = handle.socket_path.parent.stat()
    assert stat.S_IMODE(directory.st_mode) == 0o700 and directory.st_uid == os.getuid()
    for name in ("secret", "signer.pid"):
        assert stat.S_IMODE((handle.socket_path.parent / name).stat().st_mode) == 0o600


@needs_root
def test_socket_and_directory_modes_with_allowed_uids_and_a_restart(signers, tmp_path):
    socket_path = tmp_path / "run" / "signer.sock"
    settings = dict(socket_path=socket_path, allowed_uids=(NOBODY_UID,), socket_group=NOBODY_GID)
    first = signers.start(**settings)
    for path, mode in ((socket_path, 0o660), (socket_path.parent, 0o710)):
        st = path.lstat()
        assert (stat.S_IMODE(st.st_mode), st.st_gid, st.st_uid) == (mode, NOBODY_GID, os.getuid())
    first.stop()
    # The directory it left (0710, that group) is fine for the next signer with the same settings.
    second = signers.start(**settings)
    assert SignerClient(second.socket_path).ping()["pong"] is True
    assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o710


def test_allowed_uids_need_a_socket_group(signers, tmp_path):
    socket_path = tmp_path / "run" / "signer.sock"
    with pytest.raises(SignerStartError, match="--allow-uid needs --socket-group"):
        signers.start(socket_path=socket_path, allowed_uids=(NOBODY_UID,))
    assert not socket_path.exists()


def test_directories_are_created_private_whatever_the_umask(signers, tmp_path):
    """mkdir under a tightened umask: even intermediate directories never exist world-open."""
    socket_path = tmp_path / "outer" / "inner" / "signer.sock"
    old_umask = os.umask(0)
    try:
        handle = signers.start(socket_path=socket_path)
    finally:
        os.umask(old_umask)
    for directory in (tmp_path / "outer", tmp_path / "outer" / "inner"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for path in (socket_path, socket_path.parent / "secret", socket_path.parent / "signer.pid"):
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600, path
    assert SignerClient(handle.socket_path).ping()["pong"] is True


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o701, 0o711, 0o777])
def test_an_existing_looser_directory_is_refused_not_fixed(signers, tmp_path, mode):
    directory = tmp_path / "run"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(SignerStartError) as excinfo:
        signers.start(socket_path=directory / "signer.sock")
    assert f"is accessible by group or others (mode {mode:04o})" in excinfo.value.message
    assert stat.S_IMODE(directory.stat().st_mode) == mode
    assert list(directory.iterdir()) == []


@needs_root
def test_an_existing_directory_of_another_owner_is_refused(signers, tmp_path):
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    os.chown(directory, NOBODY_UID, NOBODY_GID)
    with pytest.raises(SignerStartError, match=f"belongs to another user \\(uid {NOBODY_UID}\\)"):
        signers.start(socket_path=directory / "signer.sock")
    assert list(directory.iterdir()) == []


@needs_root
@pytest.mark.parametrize(("mode", "group"), [(0o710, 0), (0o750, NOBODY_GID), (0o711, NOBODY_GID)])
def test_with_allowed_uids_only_the_exact_shared_directory_is_reused(signers, tmp_path, mode, group):
    directory = tmp_path / "run"
    directory.mkdir()
    os.chown(directory, -1, group)
    directory.chmod(mode)
    with pytest.raises(SignerStartError, match="accessible by group or others"):
        signers.start(socket_path=directory / "signer.sock", allowed_uids=(NOBODY_UID,), socket_group=NOBODY_GID)
    assert stat.S_IMODE(directory.stat().st_mode) == mode


# -- process hardening: environ, dumpable, core ----------------------------------------------------


def _proc_core_limit(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            soft, hard = line.split()[4:6]
            return soft, hard
    raise AssertionError("no core limit line")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_the_signer_allows_no_core_dumps(signers):
    handle = signers.start()
    assert _proc_core_limit(handle.pid) == ("0", "0")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux")
def test_the_serving_process_dropped_the_key_from_its_environment(signers, tmp_path, monkeypatch):
    """Observed from inside the signer (the same _run_signer path, via serve in a fork)."""
    from jarvis_wallet.signer import SignerSettings, serve

    monkeypatch.setenv("SOLANA_PRIVATE_KEY", base58.b58encode(DUMMY_SECRET_KEY).decode())
    settings = SignerSettings(socket_path=tmp_path / "run" / "signer.sock", database_url=signers.database_url)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)

            def on_ready(info):
                libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
                libc.getenv.restype = ctypes.c_void_p
                facts = {
                    "public_key": info.public_key,
                    "in_os_environ": "SOLANA_PRIVATE_KEY" in os.environ,
                    "in_c_environ": libc.getenv(b"SOLANA_PRIVATE_KEY") is not None,
                    "dumpable": libc.prctl(3, 0, 0, 0, 0),  # PR_GET_DUMPABLE
                    "core_limit": list(resource.getrlimit(resource.RLIMIT_CORE)),
                }
                os.write(write_end, json.dumps(facts).encode())
                os.close(write_end)

            code = serve(settings, on_ready=on_ready)
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 15)
        assert ready, "the signer did not report"
        facts = json.loads(os.read(read_end, 65536))
        # Once it answers, its signal handlers are in place: SIGTERM then stops it cleanly.
        assert SignerClient(settings.socket_path).pubkey() == DUMMY.public_key_base58
    finally:
        os.close(read_end)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    assert facts == {
        "public_key": DUMMY.public_key_base58,
        "in_os_environ": False,
        "in_c_environ": False,
        "dumpable": 0,
        "core_limit": [0, 0],
    }
    assert os.waitstatus_to_exitcode(status) == 0
    assert not settings.socket_path.exists()


@needs_root
def test_a_process_of_the_same_uid_cannot_read_the_signers_environ(open_base, tmp_path):
    """The signer runs as nobody; another nobody process may read its launcher's /proc files
    (the control), but not the signer's: non-dumpable makes them root's."""
    from jarvis_wallet.db import session
    from jarvis_wallet.migrations import apply_migrations

    home = open_base / "nobody"
    home.mkdir(mode=0o700)
    url = f"sqlite://{home}/wallet.db"
    with session(url, create=True, require_schema=False) as db:
        apply_migrations(db)
    for path in [home, *home.iterdir()]:
        os.chown(path, NOBODY_UID, NOBODY_GID)
    socket_path = home / "run" / "signer.sock"

    report_r, report_w = os.pipe()
    hold_r, hold_w = os.pipe()
    launcher = os.fork()
    if launcher == 0:  # a nobody process that starts a signer and holds it until told
        code = 1
        try:
            os.close(report_r)
            os.close(hold_w)
            os.setgroups([])
            os.setgid(NOBODY_GID)
            os.setuid(NOBODY_UID)
            # Changing uid made this process non-dumpable; an ordinary process is dumpable, and
            # the signer forked from it inherits that: it must clear the flag itself.
            ctypes.CDLL(ctypes.util.find_library("c")).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
            from jarvis_wallet.signer import SignerSettings, start_signer

            os.environ["SOLANA_PRIVATE_KEY"] = base58.b58encode(DUMMY_SECRET_KEY).decode()
            handle = start_signer(SignerSettings(socket_path=socket_path, database_url=url))
            os.write(report_w, json.dumps({"pid": handle.pid, "public_key": handle.public_key}).encode())
            os.read(hold_r, 1)  # until the test closes its end
            handle.stop()
            code = 0
        finally:
            os._exit(code)
    os.close(report_w)
    os.close(hold_r)
    try:
        ready, _, _ = select.select([report_r], [], [], 15)
        assert ready, "the nobody launcher did not report"
        started = json.loads(os.read(report_r, 4096))
        signer_pid = started["pid"]
        assert started["public_key"] == DUMMY.public_key_base58
        status = Path(f"/proc/{signer_pid}/status").read_text()
        assert f"Uid:\t{NOBODY_UID}\t" in status  # it really runs as nobody
        assert os.stat(f"/proc/{signer_pid}/environ").st_uid == 0  # non-dumpable: root's
        assert os.stat(f"/proc/{launcher}/environ").st_uid == NOBODY_UID  # an ordinary process: its own

        def read_environ(pid):
            return lambda: len(Path(f"/proc/{pid}/environ").read_bytes())

        control = run_as_nobody(read_environ(launcher))
        assert "value" in control, control
        refused = run_as_nobody(read_environ(signer_pid))
        assert refused.get("exception") == "PermissionError", refused
        assert _proc_core_limit(signer_pid) == ("0", "0")
    finally:
        os.close(hold_w)
        os.close(report_r)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            done, _ = os.waitpid(launcher, os.WNOHANG)
            if done:
                break
            time.sleep(0.02)
        else:
            os.kill(launcher, signal.SIGKILL)
            os.waitpid(launcher, 0)
    assert not socket_path.exists()
    assert not Path(f"/proc/{signer_pid}").exists()


# -- invariant 1: the dummy key never appears ----------------------------------------------------


def test_the_leak_needles_find_the_key_where_it_is(tmp_path):
    """The search below is only as good as its needles: they must find the key where it is."""
    key_file = write_keypair_file(tmp_path / "dummy.json", DUMMY_SECRET_KEY)
    with pytest.raises(AssertionError, match="JSON array"):
        assert_no_key(key_file=key_file.read_bytes())
    with pytest.raises(AssertionError, match="secret key base58"):
        assert_no_key(env=base58.b58encode(DUMMY_SECRET_KEY))
    with pytest.raises(AssertionError, match="seed"):
        assert_no_key(log=f"seed={DUMMY_SEED!r}")
    assert_no_key(public=DUMMY.public_key_base58 + DUMMY.public_key.hex())  # the public key is fine


def test_the_key_is_not_in_replies_records_or_output_of_a_running_signer(signers, tmp_path, capfd):
    key_file = write_keypair_file(tmp_path / "dummy.json", DUMMY_SECRET_KEY)
    handle = signers.start(keypair_path=key_file)
    assert handle.public_key == DUMMY.public_key_base58
    secret = secret_of(handle)
    raw = Raw(handle.socket_path)
    texts: dict[str, bytes | str] = {}

    def refused(request: dict, code: str) -> None:
        reply = raw.request(request)
        assert reply["ok"] is False and reply["error"]["code"] == code, reply

    refused(sign_request(secret, transfer_message(from_key=DUMMY.public_key, lamports=1000)), "no_limits")
    signers.set_limits(per_tx=1_000_000, daily=10**9, wallet=DUMMY.public_key_base58)
    refused(sign_request(secret, transfer_message(from_key=DUMMY.public_key, lamports=5_000_000)), "per_tx_limit_exceeded")
    refused(sign_request(b"z" * 40, transfer_message(from_key=DUMMY.public_key, lamports=1000)), "auth_failed")
    refused(sign_request(secret, b"\x01" + b"\xaa" * 90), "invalid_tx")
    refused(sign_request(secret, transfer_message(from_key=os.urandom(32), lamports=1000)), "not_a_signer")
    too_long_message = {"op": "sign_message", "requestId": protocol.new_request_id(),
                        "timestamp": protocol.current_time_ms(), "message": "x" * 1300}
    refused(protocol.sign_request(secret, too_long_message), "bad_request")
    for line, code in [
        (b"\xff\xfe garbage\n", "bad_request"),
        (b"not json\n", "bad_request"),
        (b"[1,2,3]\n", "bad_request"),
        (b'{"op":"export_key","requestId":"3f1c9a52-7b4e-4d0a-9c6f-2e8b5d7a1f03"}\n', "unknown_op"),
        (b'{"op":"sign","requestId":"3f1c9a52-7b4e-4d0a-9c6f-2e8b5d7a1f03","timestamp":true}\n', "bad_request"),
    ]:
        raw.send(line)
        assert raw.line()["error"]["code"] == code
    assert raw.request(sign_request(secret, transfer_message(from_key=DUMMY.public_key, lamports=1000)))["ok"] is True
    status = SignerClient(handle.socket_path).status()
    assert (status["signed"], status["refused"]) == (1, 4)
    texts["replies"] = raw.transcript
    texts["status"] = json.dumps(status)

    long_line = Raw(handle.socket_path)
    try:
        long_line.send(b"[" * (protocol.MAX_LINE_BYTES + 10))
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert long_line.line()["error"]["code"] == "line_too_long"
    texts["long line reply"] = long_line.transcript

    for client_secret, exc_type in ((b"w" * 32, AuthenticationFailed), (secret, PolicyDenied)):
        with pytest.raises(exc_type) as excinfo:
            SignerClient(handle.socket_path, secret=client_secret).sign_transaction(
                transfer_message(from_key=DUMMY.public_key, lamports=9_000_000)
            )
        texts[f"client {exc_type.__name__}"] = f"{excinfo.value} {excinfo.value!r}"
    texts["handle repr"] = f"{handle!r} {handle.info!r}"
    texts["database rows"] = all_database_text(signers.database_url)
    assert DUMMY.public_key_base58.encode() in texts["database rows"]  # the dump is the real one
    texts["database files"] = sqlite_files_text(signers.database_url)
    handle.stop()
    out, err = capfd.readouterr()
    texts["stdout"], texts["stderr"] = out, err
    assert "Traceback" not in err
    assert_no_key(**texts)
    assert len(wallet_rows(signers.database_url)) == 6  # every decision was recorded


def test_the_key_is_not_in_start_up_errors(signers, tmp_path, monkeypatch, capfd):
    other = Keypair.from_seed(b"\x07" * 32)
    cases = {
        "loose key file": dict(keypair_path=write_keypair_file(tmp_path / "loose.json", DUMMY_SECRET_KEY, 0o644)),
        "mismatched halves": dict(keypair_path=write_keypair_file(tmp_path / "mismatch.json", DUMMY_SEED + other.public_key)),
        "63-byte file": dict(keypair_path=write_keypair_file(tmp_path / "short.json", DUMMY_SECRET_KEY[:63])),
    }
    env_cases = {
        "63-byte base58 env": base58.b58encode(DUMMY_SECRET_KEY[:63]).decode(),
        "65-byte JSON env": json.dumps(list(DUMMY_SECRET_KEY) + [1]),
        "33-byte base58 env": base58.b58encode(DUMMY_SEED + b"\x00").decode(),
        "mismatched env": base58.b58encode(DUMMY_SEED + other.public_key).decode(),
        "not base58 env": base58.b58encode(DUMMY_SECRET_KEY).decode() + "0OIl",
        "broken JSON env": json.dumps(list(DUMMY_SECRET_KEY))[:-1],
    }
    messages = {}
    for name, overrides in cases.items():
        with pytest.raises(SignerStartError) as excinfo:
            signers.start(**overrides)
        messages[name] = f"{excinfo.value} {excinfo.value!r} {excinfo.value.__context__!r} {excinfo.value.__cause__!r}"
    for name, value in env_cases.items():
        monkeypatch.setenv("SOLANA_PRIVATE_KEY", value)
        with pytest.raises(SignerStartError) as excinfo:
            signers.start(keypair_path=None)
        messages[name] = f"{excinfo.value} {excinfo.value!r}"
        assert "SOLANA_PRIVATE_KEY" in str(excinfo.value)
    assert "mode 0644" in messages["loose key file"]
    assert "does not match" in messages["mismatched halves"] and "does not match" in messages["mismatched env"]
    assert "holds 63 bytes" in messages["63-byte base58 env"] and "holds 65 bytes" in messages["65-byte JSON env"]
    out, err = capfd.readouterr()
    assert_no_key(stdout=out, stderr=err, **{name: text for name, text in messages.items()})
    assert wallet_rows(signers.database_url) == []


def test_the_key_is_not_in_cli_output(tmp_path):
    """Output, not storage: one SQLite database is enough (subprocesses are slow to start)."""
    from jarvis_wallet.db import session
    from jarvis_wallet.migrations import apply_migrations

    other = Keypair.from_seed(b"\x07" * 32)
    url = f"sqlite://{tmp_path}/wallet.db"
    with session(url, create=True, require_schema=False) as db:
        apply_migrations(db)
    loose = write_keypair_file(tmp_path / "loose.json", DUMMY_SECRET_KEY, 0o640)
    mismatched = write_keypair_file(tmp_path / "mismatch.json", DUMMY_SEED + other.public_key)
    truncated = tmp_path / "truncated.json"
    truncated.write_text(json.dumps(list(DUMMY_SECRET_KEY))[:-3])
    truncated.chmod(0o600)
    good = write_keypair_file(tmp_path / "good.json", DUMMY_SECRET_KEY)
    socket_path = tmp_path / "cli-run" / "signer.sock"
    start = ("--database-url", url, "signer", "start", "--socket", socket_path)
    failing = {
        "start loose": (start + ("--keypair", loose), {}),
        "start mismatched": (start + ("--keypair", mismatched), {}),
        "start env 63 bytes": (start, {"SOLANA_PRIVATE_KEY": base58.b58encode(DUMMY_SECRET_KEY[:63]).decode()}),
        "start env mismatched": (start, {"SOLANA_PRIVATE_KEY": json.dumps(list(DUMMY_SEED + other.public_key))}),
        "pubkey loose": (("pubkey", loose), {}),
        "pubkey mismatched": (("pubkey", mismatched), {}),
        "pubkey truncated": (("pubkey", truncated), {}),
    }
    outputs: dict[str, bytes] = {}
    for name, (args, env) in failing.items():
        result = run_cli(*args, env=env)
        assert result.returncode != 0, name
        assert result.stderr.startswith(b"Error: ") and b"Traceback" not in result.stderr, (name, result.stderr)
        outputs[f"{name} stdout"], outputs[f"{name} stderr"] = result.stdout, result.stderr
    assert run_cli("pubkey", good).stdout.decode().strip() == DUMMY.public_key_base58

    # The success path too: a detached start prints only public facts, and returns (a daemon
    # that kept the caller's stdout would make `$(jarvis-wallet signer start --detach)` hang).
    try:
        started = run_cli(*start, "--keypair", good, "--detach", "--json", timeout=20)
    except subprocess.TimeoutExpired:
        from jarvis_wallet.signer import read_pid_file, stop_pid

        leftover = read_pid_file(socket_path.parent / "signer.pid")
        if leftover:
            stop_pid(leftover, timeout=5)
        pytest.fail("`signer start --detach` kept the caller's stdout open")
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    try:
        assert info["public_key"] == DUMMY.public_key_base58
        stopped = run_cli("signer", "stop", "--socket", socket_path)
        assert stopped.returncode == 0, stopped.stderr
    finally:
        from jarvis_wallet.signer import stop_pid

        stop_pid(info["pid"], timeout=5)
    outputs["start stdout"], outputs["start stderr"] = started.stdout, started.stderr
    outputs["stop"] = stopped.stdout + stopped.stderr
    assert not socket_path.exists()
    assert_no_key(**outputs)


# -- legacy mode -----------------------------------------------------------------------------------


LEGACY_SECRET = "legacy-agent-shared-secret-0123456789abcdef"


def legacy_request(message: bytes, request_id: str, *, secret: str = LEGACY_SECRET) -> dict:
    tx_base64 = b64(message)
    return {"hmac": protocol.compute_legacy_hmac(secret.encode(), tx_base64), "txBase64": tx_base64, "requestId": request_id}


@pytest.fixture
def legacy_signer(signers, monkeypatch):
    monkeypatch.setenv("SIGNER_SHARED_SECRET", LEGACY_SECRET)
    signers.set_limits(per_tx=1_000_000, daily=10**9)
    return signers.start(legacy_protocol=True)


def test_legacy_request_is_signed_with_the_original_reply(signers, legacy_signer):
    keypair = signers.keypair()
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    reply = Raw(legacy_signer.socket_path).request(legacy_request(message, "order-42"))
    assert list(reply) == ["ok", "signedTxBase64", "requestId"]
    assert reply["ok"] is True and reply["requestId"] == "order-42"
    signature = base64.b64decode(reply["signedTxBase64"], validate=True)
    assert len(signature) == 64
    nacl.signing.VerifyKey(keypair.public_key).verify(message, signature)
    (row,) = wallet_rows(signers.database_url)
    assert (row["status"], row["request_id"]) == ("signed", "legacy:order-42")
    assert row["signature"] == base58.b58encode(signature).decode() and row["lamports"] == 1000 + FEE


def test_legacy_refusals_use_the_original_codes_and_are_recorded(signers, legacy_signer):
    keypair = signers.keypair()
    raw = Raw(legacy_signer.socket_path)
    too_big = transfer_message(from_key=keypair.public_key, lamports=5_000_000)
    reply = raw.request(legacy_request(too_big, "big-1"))
    assert {k: reply[k] for k in ("ok", "error", "reason", "requestId")} == {
        "ok": False, "error": "sign_error", "reason": "per_tx_limit_exceeded", "requestId": "big-1",
    }
    assert "ceiling" in reply["message"] or "limit" in reply["message"]

    small = transfer_message(from_key=keypair.public_key, lamports=1000)
    forged = legacy_request(small, "forged-1", secret="not-the-secret-" * 3)
    reply = raw.request(forged)
    assert (reply["ok"], reply["error"], reply["reason"]) == (False, "auth_failed", "auth_failed")

    garbage = legacy_request(b"\x01\x02 not a transaction", "garbage-1")
    reply = raw.request(garbage)
    assert (reply["ok"], reply["error"], reply["reason"]) == (False, "invalid_tx", "invalid_tx")

    bad_base64 = dict(legacy_request(b"x", "b64-1"), txBase64="not base64!")
    reply = raw.request(bad_base64)
    assert (reply["error"], reply["reason"]) == ("invalid_tx", "invalid_tx")

    rows = {row["request_id"]: row for row in wallet_rows(signers.database_url)}
    assert set(rows) == {"legacy:big-1", "legacy:garbage-1"}  # decisions, not unauthenticated noise
    assert rows["legacy:big-1"]["rejection_reason"].startswith("per_tx_limit_exceeded")
    assert rows["legacy:garbage-1"]["rejection_reason"].startswith("invalid_tx")
    assert all(row["status"] == "rejected" and row["signature"] is None for row in rows.values())
    no_signature_of(too_big, keypair, raw.transcript)


def test_a_legacy_request_id_can_be_used_once(signers, legacy_signer):
    keypair = signers.keypair()
    raw = Raw(legacy_signer.socket_path)
    first = transfer_message(from_key=keypair.public_key, lamports=1000)
    second = transfer_message(from_key=keypair.public_key, lamports=2000)
    assert raw.request(legacy_request(first, "pay-1"))["ok"] is True
    for message in (first, second):
        reply = raw.request(legacy_request(message, "pay-1"))
        assert (reply["ok"], reply["error"], reply["reason"]) == (False, "auth_failed", "replayed_request")
    assert [row["request_id"] for row in wallet_rows(signers.database_url)] == ["legacy:pay-1"]
    no_signature_of(second, keypair, raw.transcript)


def test_legacy_request_ids_of_the_maximum_length_are_recorded(signers, legacy_signer):
    keypair = signers.keypair()
    raw = Raw(legacy_signer.socket_path)
    long_ids = ["L" * 64, "L" * 63 + "M", "x" * 57]
    for request_id in long_ids:
        reply = raw.request(legacy_request(transfer_message(from_key=keypair.public_key, lamports=1000), request_id))
        assert reply["ok"] is True and reply["requestId"] == request_id, reply
    recorded = [row["request_id"] for row in wallet_rows(signers.database_url)]
    assert len(set(recorded)) == 3 and all(len(r) <= 64 for r in recorded)
    assert recorded[2] == "legacy:" + "x" * 57
    # ...and each is still single use.
    reply = raw.request(legacy_request(transfer_message(from_key=keypair.public_key, lamports=1000), "L" * 64))
    assert reply["reason"] == "replayed_request"


def test_legacy_requests_are_refused_when_legacy_mode_is_off(signers, monkeypatch):
    monkeypatch.setenv("SIGNER_SHARED_SECRET", LEGACY_SECRET)
    signers.set_limits(per_tx=1_000_000, daily=10**9)
    handle = signers.start()
    keypair = signers.keypair()
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    raw = Raw(handle.socket_path)
    reply = raw.request(legacy_request(message, "order-1"))
    assert reply["ok"] is False and reply["error"]["code"] == "bad_request"
    assert wallet_rows(signers.database_url) == []
    no_signature_of(message, keypair, raw.transcript)


# -- legacy mode, as the original TypeScript SignerClient sees it -------------------------------------

ORIGINAL_CODES = {"auth_failed", "invalid_tx", "sign_error"}


def original_client_call(path: Path, line: bytes | dict, *, timeout: float = 30.0) -> dict:
    """One call of the original TypeScript ``SignerClient``: a connection of its own, connected
    without blocking (Node's: EAGAIN, not a wait, when the listen queue is full), the request
    line written at once, one reply line read, closed. Fails unless the reply is one the
    original client can parse."""
    if isinstance(line, dict):
        line = json.dumps(line).encode() + b"\n"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.connect(str(path))
        sock.settimeout(timeout)
        sock.sendall(line)
        received = b""
        while b"\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, "closed without a reply"
            received += chunk
    finally:
        sock.close()
    reply = json.loads(received.split(b"\n", 1)[0])
    if reply.get("ok") is True:
        assert set(reply) == {"ok", "signedTxBase64", "requestId"}, reply
    else:
        assert reply.get("ok") is False and isinstance(reply.get("error"), str), f"not the legacy envelope: {reply}"
        assert reply["error"] in ORIGINAL_CODES, reply
    return reply


def test_more_concurrent_original_clients_than_the_cap_are_all_served(signers, legacy_signer):
    """Issue 10, finding 7: past 64 concurrent calls the original client got `busy` (which it
    cannot parse) or EPIPE, and past 128 EAGAIN from the listen queue. Now they wait their turn."""
    import concurrent.futures

    keypair = signers.keypair()
    callers = 200  # over three times the default cap of 64, and past the old backlog of 128
    messages = [transfer_message(from_key=keypair.public_key, lamports=1000) for _ in range(callers)]
    barrier = threading.Barrier(callers)

    def call(index: int) -> dict:
        request = legacy_request(messages[index], f"burst-{index}")
        barrier.wait()
        try:
            return original_client_call(legacy_signer.socket_path, request)
        except OSError as exc:
            return {"failed": f"{type(exc).__name__}: {exc}"}

    with concurrent.futures.ThreadPoolExecutor(callers) as pool:
        replies = list(pool.map(call, range(callers)))
    failures = [reply for reply in replies if reply.get("ok") is not True]
    assert failures == []
    for message, reply in zip(messages, replies):
        nacl.signing.VerifyKey(keypair.public_key).verify(message, base64.b64decode(reply["signedTxBase64"]))
    assert len(wallet_rows(signers.database_url)) == callers


def test_legacy_framing_errors_are_answered_in_the_legacy_envelope(signers, legacy_signer):
    """Issue 10, finding 7: line_too_long and other framing errors of a legacy-shaped line."""
    keypair = signers.keypair()
    good = legacy_request(transfer_message(from_key=keypair.public_key, lamports=1000), "frame-1")
    too_long = json.dumps(dict(good, txBase64="A" * 70_000)).encode() + b"\n"
    duplicate_key = b'{"hmac":"%s","txBase64":"%s","txBase64":"AAAA","requestId":"frame-2"}\n' % (
        good["hmac"].encode(), good["txBase64"].encode())
    trailing_comma = json.dumps(good).encode()[:-1] + b",}\n"
    not_utf8 = json.dumps(dict(good, requestId="frame-3")).encode().replace(b"frame-3", b"fr\xffme") + b"\n"
    cases = [(too_long, "line_too_long"), (duplicate_key, "bad_request"), (trailing_comma, "bad_request"),
             (not_utf8, "bad_request")]
    for line, reason in cases:
        reply = original_client_call(legacy_signer.socket_path, line)
        assert (reply["error"], reply["reason"], reply["requestId"]) == ("invalid_tx", reason, None), reply
    # A version 1 client on the same signer keeps its own envelope.
    raw = Raw(legacy_signer.socket_path)
    raw.send(json.dumps({"op": "ping", "requestId": "x" * 70_000}).encode() + b"\n")
    reply = raw.line()
    assert reply["error"] == {"code": "line_too_long", "message": reply["error"]["message"]}
    assert wallet_rows(signers.database_url) == []


def test_legacy_busy_is_answered_in_the_legacy_envelope(signers, monkeypatch):
    monkeypatch.setenv("SIGNER_SHARED_SECRET", LEGACY_SECRET)
    signers.set_limits(per_tx=1_000_000, daily=10**9)
    handle = signers.start(legacy_protocol=True, max_connections=1, connection_wait_seconds=0.2)
    keypair = signers.keypair()
    holder = Raw(handle.socket_path)
    assert holder.request({"op": "ping", "requestId": protocol.new_request_id()})["ok"] is True
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    for attempt in range(10):
        reply = original_client_call(handle.socket_path, legacy_request(message, f"busy-{attempt}"))
        assert (reply["error"], reply["reason"], reply["requestId"]) == ("sign_error", "busy", f"busy-{attempt}")
    assert wallet_rows(signers.database_url) == []  # nothing was decided
    holder.close()
    reply = original_client_call(handle.socket_path, legacy_request(message, "busy-retry"))
    assert reply["ok"] is True  # `busy` is safe to retry, the same message included


@needs_root
def test_a_legacy_peer_that_is_not_allowed_is_answered_in_the_legacy_envelope(open_base, signers, monkeypatch):
    monkeypatch.setenv("SIGNER_SHARED_SECRET", LEGACY_SECRET)
    signers.set_limits(per_tx=1_000_000, daily=10**9)
    handle = signers.start(
        socket_path=open_base / "run" / "signer.sock", allowed_uids=(65533,), socket_group=NOBODY_GID,
        legacy_protocol=True,
    )
    request = legacy_request(transfer_message(from_key=signers.keypair().public_key, lamports=1000), "other-uid")
    reply = run_as_nobody(lambda: original_client_call(handle.socket_path, request, timeout=5))["value"]
    assert {k: reply[k] for k in ("ok", "error", "reason", "requestId")} == {
        "ok": False, "error": "auth_failed", "reason": "peer_not_allowed", "requestId": None,
    }
    assert wallet_rows(signers.database_url) == []


@pytest.mark.parametrize("kind", ["file", "symlink", "directory"])
def test_something_else_at_the_socket_path_is_never_replaced(signers, tmp_path, kind):
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    socket_path = directory / "signer.sock"
    victim = tmp_path / "precious"
    victim.write_text("keep me")
    if kind == "file":
        socket_path.write_text("keep me")
    elif kind == "symlink":
        socket_path.symlink_to(victim)
    else:
        socket_path.mkdir()
    with pytest.raises(SignerStartError, match="exists and is not a socket; refusing to replace it"):
        signers.start(socket_path=socket_path)
    assert socket_path.is_symlink() if kind == "symlink" else socket_path.exists()
    assert victim.read_text() == "keep me"
