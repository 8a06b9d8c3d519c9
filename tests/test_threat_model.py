"""The attackers of docs/security.md, one by one: what each can and cannot do, shown against real
signers. Points another file already proves are named here, not repeated.

Another local user (a different uid, not allowed):
- cannot enter the socket directory: test_signer_security.py::test_another_uid_cannot_reach_*;
- is refused by the peer check where it can: test_signer_security.py::test_a_uid_that_can_reach_*;
- cannot read the key, secret or database files: test_another_user_can_read_none_of_the_*.

A compromised agent of the signer's own uid:
- signs up to the limits and no further: test_signer_concurrency.py, test_faults.py;
- cannot read the signer's environment: test_signer_security.py::test_a_process_of_the_same_uid_*;
- cannot trace it or read its memory, CAN read a key file and the secret file (documented):
  test_a_same_uid_agent_cannot_trace_the_signer_or_read_its_memory;
- CAN rewrite the limits in a database its uid can write (security.md says so):
  test_a_same_uid_agent_can_raise_its_own_limits;
- cannot fill the disk with refusals, or with signatures that spend nothing, faster than the
  budget of free decisions allows:
  test_a_compromised_agent_flooding_refusals_grows_the_audit_trail_only_at_the_budgets_rate,
  test_a_compromised_agent_flooding_zero_spend_signatures_grows_the_audit_trail_only_at_the_budgets_rate.

A compromised agent of another, allowed uid: signs within the limits and reaches nothing else:
test_an_allowed_agent_of_another_uid_reaches_only_the_socket.

Someone who reads the database, the logs or the output finds no key
(test_signer_security.py::test_the_key_is_not_in_*) and no shared secret
(test_the_shared_secret_is_in_no_reply_record_or_output).

The tests that need a second user fork a child that drops to nobody (65534), so they need root;
their files live under a base directory nobody may traverse, so that only the modes jarvis-wallet
itself sets are what stops (or lets through) the other user.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import select
import shutil
import signal
import socket
import sqlite3
import stat
import tempfile
import time
from pathlib import Path

import base58
import pytest

from jarvis_wallet.client import SignerClient
from jarvis_wallet.errors import AuthenticationFailed, PolicyDenied
from jarvis_wallet.keys import Keypair, generate_keypair_file, load_keypair_file

from conftest import SignerFixture, transfer_message
from faultkit import initialise, set_wallet_limits
from test_signer_security import (
    NOBODY_GID,
    NOBODY_UID,
    Raw,
    all_database_text,
    needs_root,
    run_as_nobody,
    run_cli,
    sign_request,
    sqlite_files_text,
)

DUMMY_SEED = bytes(range(32))
DUMMY = Keypair.from_seed(DUMMY_SEED)
PTRACE_ATTACH, PTRACE_DETACH = 16, 17


@pytest.fixture
def open_base():
    """A base directory nobody may traverse and list (0755): below it, only our modes count."""
    base = Path(tempfile.mkdtemp(prefix="jw-threat-", dir="/tmp"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def try_to(action) -> str:
    """Run ``action`` in this (nobody) process: "allowed", or the errno name that refused it."""
    try:
        action()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "allowed"


def yama_ptrace_scope() -> int:
    try:
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text())
    except (OSError, ValueError):
        return 0  # no Yama: the classic rule, a dumpable process of one's own uid may be traced


def ptrace_attach(pid: int) -> None:
    """PTRACE_ATTACH, then let go at once; raises PermissionError when refused."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    os.waitpid(pid, 0)  # the tracee stops; detach and let it run on
    libc.ptrace(PTRACE_DETACH, pid, None, None)


def read_bytes(path: Path) -> None:
    Path(path).read_bytes()


def open_for_writing(path: Path) -> None:
    os.close(os.open(path, os.O_RDWR))


# -- another local user ------------------------------------------------------------------------------


@needs_root
def test_another_user_can_read_none_of_the_signers_files(open_base, monkeypatch):
    """Defaults everywhere (keygen, init-db, signer start): every file the signer keeps is 0600 in
    a 0700 directory; and a database given by URL in a directory others can list is 0600 too,
    with its -wal and -shm files."""
    from jarvis_wallet.config import data_dir, default_database_url, resolve_socket_path

    home = open_base / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home / "run"))
    for directory in (home / "data", home / "run"):
        directory.mkdir(mode=0o755)
        directory.chmod(0o755)
    shared = open_base / "shared"  # an operator's own choice of directory, open to everyone
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)

    key_file = home / "signer.json"
    generate_keypair_file(key_file)
    keypair = load_keypair_file(key_file)
    default_url = initialise(default_database_url())
    shared_url = initialise(f"sqlite://{shared}/wallet.db")
    fixture = SignerFixture(home, default_url)
    try:
        for url in (default_url, shared_url):
            set_wallet_limits(url, keypair.public_key_base58, per_tx=10**6, daily=10**9)
            handle = fixture.start(keypair_path=key_file, database_url=url, socket_path=resolve_socket_path(None))
            assert handle.socket_path == home / "run" / "jarvis-wallet" / "signer.sock"
            with SignerClient(handle.socket_path) as client:  # so the -wal and -shm files exist
                client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1000))
            private_files = [
                key_file,
                handle.socket_path.parent / "secret",
                handle.socket_path.parent / "signer.pid",
                *sorted(Path(url.removeprefix("sqlite://")).parent.glob("wallet.db*")),
            ]
            assert len(private_files) == 6, private_files
            assert {path.name: mode(path) for path in private_files} == {path.name: 0o600 for path in private_files}
            assert mode(handle.socket_path) == 0o600
            assert mode(handle.socket_path.parent) == 0o700 and mode(data_dir()) == 0o700

            def attempts(files=private_files, handle=handle):
                outcome = {path.name: try_to(lambda p=path: read_bytes(p)) for path in files}
                outcome["list socket directory"] = try_to(lambda: os.listdir(handle.socket_path.parent))
                outcome["list data directory"] = try_to(lambda: os.listdir(data_dir()))
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                outcome["connect"] = try_to(lambda: sock.connect(str(handle.socket_path)))
                sock.close()
                return outcome

            seen = run_as_nobody(attempts)["value"]
            assert set(seen.values()) == {"EACCES"}, seen
            handle.stop()
    finally:
        fixture.stop_all()


# -- a compromised agent of the signer's own uid ---------------------------------------------------------


@pytest.fixture
def nobody_signer(open_base):
    """A signer running as nobody, its key from SOLANA_PRIVATE_KEY (no key file), on nobody's
    own SQLite database; a key file of nobody's lies beside it. Yields a dict of facts."""
    home = open_base / "nobody"
    home.mkdir(mode=0o700)
    url = initialise(f"sqlite://{home}/wallet.db")
    set_wallet_limits(url, DUMMY.public_key_base58, per_tx=10_000, daily=100_000)
    key_file = home / "other-wallet.json"
    generate_keypair_file(key_file)
    for path in [home, *home.iterdir()]:
        os.chown(path, NOBODY_UID, NOBODY_GID)
    socket_path = home / "run" / "signer.sock"
    report_r, report_w = os.pipe()
    hold_r, hold_w = os.pipe()
    launcher = os.fork()
    if launcher == 0:  # a nobody process that starts the signer and holds it until told
        code = 1
        try:
            os.close(report_r)
            os.close(hold_w)
            os.setgroups([])
            os.setgid(NOBODY_GID)
            os.setuid(NOBODY_UID)
            # Changing uid made this process non-dumpable; an ordinary one is dumpable (and so
            # traceable by its uid), and the signer must clear that itself.
            ctypes.CDLL(ctypes.util.find_library("c")).prctl(4, 1, 0, 0, 0)
            from jarvis_wallet.signer import SignerSettings, start_signer

            os.environ["SOLANA_PRIVATE_KEY"] = base58.b58encode(DUMMY_SEED + DUMMY.public_key).decode()
            handle = start_signer(SignerSettings(socket_path=socket_path, database_url=url))
            os.write(report_w, json.dumps({"pid": handle.pid}).encode())
            os.read(hold_r, 1)
            handle.stop()
            code = 0
        finally:
            os._exit(code)
    os.close(report_w)
    os.close(hold_r)
    try:
        ready, _, _ = select.select([report_r], [], [], 20)
        assert ready, "the nobody launcher did not report"
        signer_pid = json.loads(os.read(report_r, 4096))["pid"]
        yield {"pid": signer_pid, "launcher": launcher, "url": url, "socket": socket_path, "key_file": key_file}
    finally:
        os.close(hold_w)  # the launcher stops its signer and exits
        os.close(report_r)
        deadline = time.monotonic() + 15
        while os.waitpid(launcher, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(launcher, signal.SIGKILL)
                os.waitpid(launcher, 0)
                break
            time.sleep(0.02)
    assert not socket_path.exists()


@needs_root
def test_a_same_uid_agent_cannot_trace_the_signer_or_read_its_memory(nobody_signer):
    """Row 2 of security.md, beyond the environ test: ptrace and /proc/<pid>/mem are closed to a
    process of the signer's uid (the signer is not dumpable), while the same calls succeed on an
    ordinary process of that uid. What such an agent can do: read a key file and the secret."""
    signer, launcher = nobody_signer["pid"], nobody_signer["launcher"]

    def agent():
        return {
            "trace the signer": try_to(lambda: ptrace_attach(signer)),
            "read the signer's memory": try_to(lambda: read_bytes(Path(f"/proc/{signer}/mem"))),
            "read the signer's environ": try_to(lambda: read_bytes(Path(f"/proc/{signer}/environ"))),
            "trace an ordinary process": try_to(lambda: ptrace_attach(launcher)),
            "read a key file of its uid": try_to(lambda: read_bytes(nobody_signer["key_file"])),
            "read the secret file": try_to(lambda: read_bytes(nobody_signer["socket"].parent / "secret")),
        }

    seen = run_as_nobody(agent)["value"]
    if yama_ptrace_scope() != 0:  # Yama forbids tracing a non-descendant anyway: no control
        seen.pop("trace an ordinary process")
        seen["trace an ordinary process"] = "allowed"
    assert seen == {
        "trace the signer": "EPERM",
        "read the signer's memory": "EACCES",
        "read the signer's environ": "EACCES",
        "trace an ordinary process": "allowed",  # the control: ptrace works where it is not stopped
        "read a key file of its uid": "allowed",
        "read the secret file": "allowed",
    }


@needs_root
def test_a_same_uid_agent_can_raise_its_own_limits(nobody_signer):
    """Not in security.md yet: the limits live in a database the signer's uid can write, so an
    agent of that uid can rewrite them and then sign past them, even when the key itself (from
    SOLANA_PRIVATE_KEY) is out of its reach. The limits bind only an agent that cannot write
    the database: run the agent as another user."""
    socket_path, url = nobody_signer["socket"], nobody_signer["url"]
    database = url.removeprefix("sqlite://")

    def agent():
        secret = (socket_path.parent / "secret").read_bytes().rstrip(b"\n")
        big = transfer_message(from_key=DUMMY.public_key, lamports=50_000_000)
        outcome = {}
        with SignerClient(socket_path, secret=secret) as client:
            try:
                client.sign_transaction(big)
            except PolicyDenied as refusal:
                outcome["before"] = refusal.reason
            with sqlite3.connect(database) as db:
                db.execute("UPDATE spend_limits SET per_tx_lamports = ?, daily_lamports = ?", (10**12, 10**12))
            outcome["after"] = client.sign_transaction(big).lamports
        return outcome

    assert run_as_nobody(agent)["value"] == {"before": "per_tx_limit_exceeded", "after": 50_005_000}


# -- a compromised agent of another, allowed uid ---------------------------------------------------------


@needs_root
def test_an_allowed_agent_of_another_uid_reaches_only_the_socket(open_base, monkeypatch, tmp_path):
    """The recommended deployment: the signer (root here) allows the agent's uid on its socket.
    The agent signs within the limits and is refused past them; it cannot read the key file, the
    signer's secret file, environment or memory, trace it, or open the database to change the
    limits."""
    from jarvis_wallet.config import data_dir, default_database_url

    home = open_base / "signer-home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    url = initialise(default_database_url())
    key_file = home / "signer.json"
    generate_keypair_file(key_file)
    keypair = load_keypair_file(key_file)
    set_wallet_limits(url, keypair.public_key_base58, per_tx=10_000, daily=10**9)
    fixture = SignerFixture(tmp_path, url)
    try:
        handle = fixture.start(
            keypair_path=key_file, socket_path=open_base / "run" / "signer.sock",
            allowed_uids=(NOBODY_UID,), socket_group=NOBODY_GID,
        )
        secret = Path(handle.info.secret_path).read_bytes().rstrip(b"\n")  # handed to the agent
        database = Path(url.removeprefix("sqlite://"))

        def agent():
            outcome = {}
            with SignerClient(handle.socket_path, secret=secret) as client:
                outcome["small"] = client.sign_transaction(
                    transfer_message(from_key=keypair.public_key, lamports=1000)
                ).lamports
                try:
                    client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1_000_000))
                except PolicyDenied as refusal:
                    outcome["large"] = refusal.reason
            pid = handle.pid
            outcome.update(
                {
                    "key file": try_to(lambda: read_bytes(key_file)),
                    "secret file": try_to(lambda: read_bytes(Path(handle.info.secret_path))),
                    "environ": try_to(lambda: read_bytes(Path(f"/proc/{pid}/environ"))),
                    "memory": try_to(lambda: read_bytes(Path(f"/proc/{pid}/mem"))),
                    "trace": try_to(lambda: ptrace_attach(pid)),
                    "database": try_to(lambda: open_for_writing(database)),
                    "data directory": try_to(lambda: os.listdir(data_dir())),
                }
            )
            return outcome

        assert run_as_nobody(agent)["value"] == {
            "small": 6000,
            "large": "per_tx_limit_exceeded",
            "key file": "EACCES",
            "secret file": "EACCES",
            "environ": "EACCES",
            "memory": "EACCES",
            "trace": "EPERM",
            "database": "EACCES",
            "data directory": "EACCES",
        }
    finally:
        fixture.stop_all()


# -- someone who reads the database, the logs or the output ------------------------------------------------

SECRET_TEXT = "threat-model-shared-secret-7c1e9d0b5a3f4e2d8b6a"


def secret_forms() -> dict[str, bytes]:
    raw = SECRET_TEXT.encode()
    import base64

    return {
        "text": raw,
        "hex": raw.hex().encode(),
        "base64": base64.b64encode(raw),
        "base64 prefix": base64.b64encode(raw[:30]),
    }


def test_the_shared_secret_is_in_no_reply_record_or_output(signers, monkeypatch, capfd):
    """Whoever reads the audit trail, the signer's output, the CLI's output or the replies learns
    nothing that would let them forge a request."""
    monkeypatch.setenv("SIGNER_SHARED_SECRET", SECRET_TEXT)
    keypair = signers.keypair()
    signers.set_limits(per_tx=1_000_000, daily=10**9)
    handle = signers.start()
    assert handle.info.secret_path is None
    raw = Raw(handle.socket_path)
    secret = SECRET_TEXT.encode()
    codes = []
    for request in (
        sign_request(secret, transfer_message(from_key=keypair.public_key, lamports=1000), purpose="pay"),
        sign_request(secret, transfer_message(from_key=keypair.public_key, lamports=5_000_000)),
        sign_request(secret, b"\x01" + b"\xaa" * 90),
        sign_request(b"a-guess-at-the-secret-0123456789", transfer_message(from_key=keypair.public_key, lamports=1)),
        sign_request(secret, transfer_message(from_key=keypair.public_key, lamports=1), timestamp_ms=1),
    ):
        reply = raw.request(request)
        codes.append("ok" if reply["ok"] else reply["error"]["code"])
    raw.send(b"not json\n")
    codes.append(raw.line()["error"]["code"])
    assert codes == ["ok", "per_tx_limit_exceeded", "invalid_tx", "auth_failed", "stale_request", "bad_request"]
    with pytest.raises(AuthenticationFailed):
        SignerClient(handle.socket_path, secret=b"w" * 32).status()
    status = SignerClient(handle.socket_path).status()
    listing = run_cli("--database-url", signers.database_url, "tx", "list", "--json")
    assert listing.returncode == 0 and len(json.loads(listing.stdout)) == 3
    handle.stop()
    out, err = capfd.readouterr()
    texts = {
        "replies": raw.transcript,
        "status": json.dumps(status).encode(),
        "tx list": listing.stdout + listing.stderr,
        "database rows": all_database_text(signers.database_url),
        "database files": sqlite_files_text(signers.database_url),
        "stdout": out.encode(),
        "stderr": err.encode(),
    }
    assert b"pay" in texts["database rows"]  # the dump is the real one
    for where, text in texts.items():
        for form, needle in secret_forms().items():
            assert needle not in text, f"the shared secret ({form}) appears in {where}"


def test_a_compromised_agent_flooding_refusals_grows_the_audit_trail_only_at_the_budgets_rate(signers):
    """An agent holding the secret asks for over-limit transfers as fast as it can. Each refusal
    would be a row; past the uid's burst only one a second is recorded (--free-decision-rate 1 here),
    the rest are turned away before any decision, and the signer's status counts them."""
    from jarvis_wallet.errors import RateLimited

    from accounting import AccountedClient, Journal, check_accounting

    keypair = signers.keypair()
    signers.set_limits(per_tx=10_000, daily=10**9)
    handle = signers.start(free_decisions_per_second=1.0, free_decision_burst=5)
    journal = Journal()
    client = AccountedClient(handle.socket_path, journal=journal)
    codes: list[str] = []
    started = time.monotonic()
    for _ in range(60):
        try:
            client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1_000_000))
            codes.append("signed")
        except PolicyDenied as refusal:
            codes.append(refusal.reason)
        except RateLimited:
            codes.append("rate_limited")
    elapsed = time.monotonic() - started
    recorded = codes.count("per_tx_limit_exceeded")
    assert codes[:5] == ["per_tx_limit_exceeded"] * 5 and codes[5] == "rate_limited"
    assert codes.count("rate_limited") + recorded == 60
    assert recorded <= 5 + int(elapsed) + 1  # the burst, then one a second at most
    # Turned away before the decision: also a transfer the policy would allow, until the
    # budget refills; then signing goes on.
    with pytest.raises(RateLimited):
        client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1_000))
    time.sleep(1.1)
    assert client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1_000)).signature
    status = client.status()
    assert (status["refused"], status["rateLimited"], status["signed"]) == (recorded, 60 - recorded + 1, 1)
    # Only decided requests have rows: the accounting check (rule 3) finds a row for a
    # rate-limited request unexplained.
    report = check_accounting(signers.database_url, journal)
    report.assert_ok()
    assert report.refusals_recorded == recorded and report.refused_before_decision == 60 - recorded + 1


def cosigned(wallet: bytes, *, lamports: int = 0) -> bytes:
    """A transaction another account pays the fee for, in which the wallet co-signs a memo and
    pays ``lamports`` (none by default): it counts next to nothing against the limits."""
    from jarvis_wallet.solana.build import AccountMeta, Instruction, compile_message
    from jarvis_wallet.solana.programs import MEMO_V2_PROGRAM_ID, SYSTEM_PROGRAM_ID

    instructions = [Instruction(MEMO_V2_PROGRAM_ID, (AccountMeta(wallet, is_signer=True, is_writable=False),), b"co-signed")]
    if lamports:
        instructions.append(Instruction(
            SYSTEM_PROGRAM_ID,
            (AccountMeta(wallet, is_signer=True, is_writable=True), AccountMeta(os.urandom(32), False, True)),
            (2).to_bytes(4, "little") + lamports.to_bytes(8, "little"),
        ))
    return compile_message(payer=os.urandom(32), instructions=instructions, recent_blockhash=os.urandom(32))


def test_a_compromised_agent_flooding_zero_spend_signatures_grows_the_audit_trail_only_at_the_budgets_rate(signers):
    """Signatures that spend nothing (co-signed transactions another account pays for, off-chain
    messages), or next to nothing (a 1-lamport transfer another account pays the fee for), are
    recorded but hardly counted: past the uid's burst only one a second is recorded, as with
    refusals. Transfers the wallet pays for never draw on the budget."""
    from jarvis_wallet.errors import RateLimited

    from accounting import AccountedClient, Journal, check_accounting

    keypair = signers.keypair()
    signers.set_limits(per_tx=10_000, daily=10**9)
    handle = signers.start(free_decisions_per_second=1.0, free_decision_burst=5)
    journal = Journal()
    client = AccountedClient(handle.socket_path, journal=journal)
    for _ in range(10):  # twice the burst of paying signatures: none is turned away
        assert client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1)).lamports == 5_001
    codes: list[str] = []
    started = time.monotonic()
    for index in range(60):
        try:
            if index % 3 == 0:
                client.sign_message(f"free message {index}")
            else:
                signed = client.sign_transaction(cosigned(keypair.public_key, lamports=index % 3 - 1))
                assert signed.lamports == index % 3 - 1
            codes.append("signed")
        except RateLimited:
            codes.append("rate_limited")
    elapsed = time.monotonic() - started
    free_signed = codes.count("signed")
    assert codes[:5] == ["signed"] * 5 and codes[5] == "rate_limited"
    assert free_signed <= 5 + int(elapsed) + 1  # the burst, then one a second at most
    assert codes.count("rate_limited") == 60 - free_signed
    status = client.status()
    assert (status["signed"], status["rateLimited"]) == (10 + free_signed, 60 - free_signed)
    # Rows only for what was signed: a row for a rate-limited request would be unexplained.
    report = check_accounting(signers.database_url, journal)
    report.assert_ok()
    assert report.rows == 10 + free_signed and report.refused_before_decision == 60 - free_signed
