"""`jarvis-wallet signer start|serve|stop|status` end to end.

Every signer here is the real command in a real subprocess
(``.venv/bin/jarvis-wallet ... signer start``): it forks the real signer, binds a real socket
and uses a real database. Tests read the ready line from the pipe, sign through the CLI, send
real signals, and check exit codes, exact messages, and that no process or socket is left.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import base58
import nacl.signing
import pytest

from conftest import transfer_message
from jarvis_wallet.db import parse_database_url

JARVIS = Path(sys.executable).with_name("jarvis-wallet")
READY_RE = re.compile(
    r"^Signer ready: wallet (?P<wallet>[1-9A-HJ-NP-Za-km-z]{32,44}), pid (?P<pid>\d+), version (?P<version>\S+), "
    r"database (?P<database>\S+), socket (?P<socket>\S+), log (?P<log>\S+), secret (?P<secret>\S+)\n$"
)
UNREACHABLE_POSTGRES = "postgresql://postgres@127.0.0.1:1/test"

pytestmark = pytest.mark.skipif(not JARVIS.exists(), reason=f"{JARVIS} is not installed")


# -- processes -------------------------------------------------------------------------------


def process_state(pid: int) -> str | None:
    """The /proc state letter, or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()[0]


def is_gone(pid: int) -> bool:
    """Exited: no process, or a zombie waiting for whoever inherited it to reap it."""
    return process_state(pid) in (None, "Z", "X")


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (the test's own tmp path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and not is_gone(int(entry.name)):
            found.append(int(entry.name))
    return found


class Ready:
    """A parsed ready line."""

    def __init__(self, line: str) -> None:
        match = READY_RE.match(line)
        assert match, f"not a ready line: {line!r}"
        self.line = line
        self.wallet = match["wallet"]
        self.pid = int(match["pid"])
        self.socket = Path(match["socket"])
        self.secret = Path(match["secret"])


class SignerCommands:
    """Runs `jarvis-wallet` as a subprocess; whatever a test leaves running is killed by pid."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.popens: list[subprocess.Popen] = []
        self.pids: set[int] = set()

    def env(self, overrides: dict | None) -> dict:
        env = dict(os.environ)
        for name, value in (overrides or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def argv(self, args, url) -> list[str]:
        return [str(JARVIS)] + (["--database-url", url] if url else []) + [str(a) for a in args]

    def run(self, *args, url=None, env=None, input=None, timeout=30.0) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.argv(args, url), env=self.env(env), input=input, capture_output=True, text=True, timeout=timeout
        )

    def popen(self, *args, url=None, env=None, **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        process = subprocess.Popen(
            self.argv(args, url), env=self.env(env), text=True, start_new_session=True, **kwargs
        )
        self.popens.append(process)
        self.pids.add(process.pid)
        return process

    def start(self, *args, url, socket, keypair=None, env=None, command="start") -> tuple[subprocess.Popen, Ready]:
        """`signer start` (or `serve`) in the foreground; returns once the ready line is read."""
        key_args = ["--keypair", keypair] if keypair else []
        process = self.popen("signer", command, *key_args, "--socket", socket, *args, url=url, env=env)
        stream = process.stdout if command == "start" else process.stderr
        line = read_line(stream, timeout=20.0)
        if not line:
            process.wait(timeout=10)
            raise AssertionError(f"no ready line; exit {process.returncode}: {process.stderr.read()!r}")
        ready = Ready(line)
        self.pids.add(ready.pid)
        return process, ready

    def cleanup(self) -> list[int]:
        """Kill what is left (by pid); return the pids that had to be killed."""
        strays = set(processes_mentioning(str(self.tmp_path)))
        strays |= {pid for pid in self.pids if not is_gone(pid) and _is_ours(pid, self.tmp_path)}
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for process in self.popens:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for stream in (process.stdout, process.stderr):
                if stream:
                    stream.close()
        return sorted(strays)


def _is_ours(pid: int, tmp_path: Path) -> bool:
    try:
        return str(tmp_path).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def read_line(stream, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise AssertionError(f"nothing read within {timeout:g} s")
    return stream.readline()


@pytest.fixture
def commands(tmp_path):
    runner = SignerCommands(tmp_path)
    yield runner
    strays = runner.cleanup()
    assert strays == [], f"processes left running: {strays}"


@dataclass(frozen=True)
class KeyFile:
    path: Path
    wallet: str


@pytest.fixture
def key(tmp_path) -> KeyFile:
    """A fresh 0600 keypair file and its address."""
    from jarvis_wallet.keys import generate_keypair_file

    path = tmp_path / "signer.json"
    return KeyFile(path, generate_keypair_file(path).public_key_base58)


def one_error_line(text: str) -> str:
    assert text.startswith("Error: ") and text.endswith("\n"), text
    assert text.count("\n") == 1, text
    assert "Traceback" not in text
    return text


def write_transfer(path: Path, wallet: str, lamports: int) -> bytes:
    message = transfer_message(from_key=base58.b58decode(wallet), lamports=lamports)
    path.write_text(base64.b64encode(message).decode() + "\n")
    return message


def verify(wallet: str, message: bytes, signature: str) -> None:
    nacl.signing.VerifyKey(base58.b58decode(wallet)).verify(message, base58.b58decode(signature))


def sign_through_cli(cli, url, socket, wallet, tmp_path, lamports=1000, name="tx.b64"):
    message = write_transfer(tmp_path / name, wallet, lamports)
    result = cli("sign", tmp_path / name, "--socket", socket, url=url)
    return message, result


def set_limits(cli, url, wallet, per_tx="10000", daily="1000000"):
    result = cli("limits", "set", "--wallet", wallet, "--per-tx", per_tx, "--daily", daily, url=url)
    assert result.exit_code == 0, result.stderr


# -- foreground ------------------------------------------------------------------------------


def test_foreground_signer_serves_then_stops_on_sigterm(commands, cli, initialised_url, key, tmp_path):
    url, wallet = initialised_url, key.wallet
    socket = tmp_path / "run" / "signer.sock"
    set_limits(cli, url, wallet)
    process, ready = commands.start(url=url, socket=socket, keypair=key.path)

    from jarvis_wallet import __version__
    from jarvis_wallet.db import parse_database_url

    assert ready.line == (
        f"Signer ready: wallet {wallet}, pid {ready.pid}, version {__version__}, "
        f"database {parse_database_url(url).display}, socket {socket}, log {socket.parent / 'signer.log'}, "
        f"secret {socket.parent / 'secret'}\n"
    )
    assert ready.pid != process.pid and parent_pid(ready.pid) == process.pid  # forked by the command
    assert stat.S_ISSOCK(socket.stat().st_mode) and stat.S_IMODE(socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(socket.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(ready.secret.stat().st_mode) == 0o600
    assert len(ready.secret.read_text()) == 65  # 64 hex characters and a newline
    assert (socket.parent / "signer.pid").read_text() == f"{ready.pid}\n"

    message, signed = sign_through_cli(cli, url, socket, wallet, tmp_path)
    assert signed.exit_code == 0, signed.stderr
    verify(wallet, message, signed.stdout.strip())

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert process.stdout.read() == ""
    assert process.stderr.read() == "Signer stopped\n"
    wait_until(lambda: is_gone(ready.pid), what="the signer to exit")
    assert not socket.exists() and not (socket.parent / "signer.pid").exists()
    assert ready.secret.exists()  # the generated secret stays for the next start


def test_ctrl_c_stops_parent_and_signer_cleanly(commands, cli, initialised_url, key, tmp_path):
    socket = tmp_path / "run" / "signer.sock"
    process, ready = commands.start(url=initialised_url, socket=socket, keypair=key.path)
    assert cli("signer", "status", "--socket", socket).exit_code == 0

    os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole group
    assert process.wait(timeout=10) == 0
    assert process.stderr.read() == "Signer stopped\n"
    wait_until(lambda: is_gone(ready.pid), what="the signer to exit")
    assert not socket.exists() and not (socket.parent / "signer.pid").exists()


def test_the_signer_dies_with_its_parent(commands, cli, initialised_url, key, tmp_path):
    socket = tmp_path / "run" / "signer.sock"
    process, ready = commands.start(url=initialised_url, socket=socket, keypair=key.path)

    process.kill()  # SIGKILL: the parent runs no clean-up at all
    assert process.wait(timeout=10) == -signal.SIGKILL
    wait_until(lambda: is_gone(ready.pid), what="the orphaned signer to exit")
    wait_until(lambda: not socket.exists(), what="the socket to be removed")
    assert not (socket.parent / "signer.pid").exists()
    status = cli("signer", "status", "--socket", socket)
    assert status.exit_code == 6
    assert processes_mentioning(str(tmp_path)) == []


def test_killed_signer_is_reported_by_the_foreground_command(commands, cli, initialised_url, key, tmp_path):
    socket = tmp_path / "run" / "signer.sock"
    process, ready = commands.start(url=initialised_url, socket=socket, keypair=key.path)
    os.kill(ready.pid, signal.SIGKILL)
    assert process.wait(timeout=10) == 1
    assert one_error_line(process.stderr.read()) == "Error: the signer exited unexpectedly (killed by signal 9)\n"
    assert socket.exists()  # nobody removed it: the next start must cope (below)


def test_stale_socket_from_a_killed_signer_is_replaced(commands, cli, initialised_url, key, tmp_path):
    url, wallet = initialised_url, key.wallet
    socket = tmp_path / "run" / "signer.sock"
    set_limits(cli, url, wallet)
    first, first_ready = commands.start(url=url, socket=socket, keypair=key.path)
    os.kill(first_ready.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert stat.S_ISSOCK(socket.lstat().st_mode)
    assert (socket.parent / "signer.pid").read_text() == f"{first_ready.pid}\n"  # stale too
    dead = cli("signer", "status", "--socket", socket)
    assert dead.exit_code == 6
    ready_entry = json.loads((socket.parent / "signer.log").read_text().splitlines()[-1])
    assert ready_entry["event"] == "ready" and ready_entry["pid"] == first_ready.pid
    assert dead.stderr == (
        f"Error: the signer (pid {first_ready.pid}) for {socket} is dead: it left its pid file behind; its last log "
        f"entry is 'ready' at {ready_entry['time']} (`jarvis-wallet signer logs`); start it again with "
        "`jarvis-wallet signer start`\n"
    )
    as_json = cli("signer", "status", "--socket", socket, "--json").json()
    assert (as_json["state"], as_json["pid"], as_json["exit_code"]) == ("dead", first_ready.pid, 6)

    second, ready = commands.start(url=url, socket=socket, keypair=key.path)
    assert ready.pid != first_ready.pid
    assert (socket.parent / "signer.pid").read_text() == f"{ready.pid}\n"
    message, signed = sign_through_cli(cli, url, socket, wallet, tmp_path)
    assert signed.exit_code == 0, signed.stderr
    verify(wallet, message, signed.stdout.strip())
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=10) == 0
    assert not socket.exists()


def test_a_live_signer_keeps_its_socket(commands, cli, initialised_url, key, tmp_path):
    url, wallet = initialised_url, key.wallet
    socket = tmp_path / "run" / "signer.sock"
    set_limits(cli, url, wallet)
    live, ready = commands.start(url=url, socket=socket, keypair=key.path)

    second = commands.run("signer", "start", "--keypair", key.path, "--socket", socket, url=url)
    assert second.returncode == 9
    assert second.stdout == ""
    assert one_error_line(second.stderr) == (
        f"Error: socket {socket} is already served by a live signer (pid {ready.pid}); stop it first\n"
    )
    # The live signer still serves, under its own pid file.
    assert (socket.parent / "signer.pid").read_text() == f"{ready.pid}\n"
    status = cli("signer", "status", "--socket", socket, "--json")
    assert status.exit_code == 0 and status.json()["pid"] == ready.pid
    message, signed = sign_through_cli(cli, url, socket, wallet, tmp_path)
    assert signed.exit_code == 0, signed.stderr
    verify(wallet, message, signed.stdout.strip())
    live.send_signal(signal.SIGTERM)
    assert live.wait(timeout=10) == 0


# -- detached --------------------------------------------------------------------------------


def test_detach_status_stop(commands, cli, initialised_url, key, tmp_path):
    url, wallet = initialised_url, key.wallet
    socket = tmp_path / "run" / "signer.sock"
    set_limits(cli, url, wallet, per_tx="10000", daily="1000000")
    # Pipes, as $(...) or capture_output use: the detached signer must not keep them open.
    process = commands.popen(
        "signer", "start", "--keypair", key.path, "--socket", socket, "--detach", "--free-decision-rate", "0.001",
        "--free-decision-burst", "1", url=url,
    )
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    ready = Ready(out)
    commands.pids.add(ready.pid)
    assert err == ""
    assert ready.wallet == wallet and ready.socket == socket
    assert not is_gone(ready.pid)
    # Its own session (setsid, then a second fork so that it can never regain a terminal).
    assert os.getsid(ready.pid) not in (os.getsid(0), process.pid, ready.pid)
    assert (socket.parent / "signer.pid").read_text() == f"{ready.pid}\n"

    # It keeps serving after the command returned: two signatures, one refusal.
    for index, lamports in enumerate((1000, 2000)):
        message, signed = sign_through_cli(cli, url, socket, wallet, tmp_path, lamports=lamports, name=f"tx{index}.b64")
        assert signed.exit_code == 0, signed.stderr
        verify(wallet, message, signed.stdout.strip())
    _, refused = sign_through_cli(cli, url, socket, wallet, tmp_path, lamports=50_000, name="big.b64")
    assert refused.exit_code == 5
    # --free-decision-burst 1: the next request is turned away before any decision.
    _, limited = sign_through_cli(cli, url, socket, wallet, tmp_path, lamports=50_000, name="big2.b64")
    assert limited.exit_code == 6
    assert one_error_line(limited.stderr).startswith(
        f"Error: too many free decisions for uid {os.getuid()} (refusals, and signatures spending under 5,000 "
        "lamports): at most 0.001 a second are recorded; this request was not decided or recorded, retry in "
    )

    status = cli("signer", "status", "--socket", socket, "--json", url=url)
    assert status.exit_code == 0, status.stderr
    data = status.json()
    assert set(data) == {"public_key", "pid", "uptime_seconds", "signed", "refused", "rate_limited", "socket_path",
                         "version", "database", "cli_database", "same_database", "log_path", "keystore", "locked",
                         "locked_reason", "key_ttl_seconds_left", "failed_unlocks", "database_writable",
                         "database_error", "healthy"}
    assert (data["healthy"], data["locked"], data["keystore"], data["database_writable"]) == (True, False, False, True)
    from jarvis_wallet import __version__
    from jarvis_wallet.db import parse_database_url

    assert (data["version"], data["database"], data["same_database"]) == (__version__, parse_database_url(url).display, True)
    assert data["log_path"] == str(socket.parent / "signer.log")
    assert (
        data["public_key"], data["pid"], data["signed"], data["refused"], data["rate_limited"], data["socket_path"]
    ) == (wallet, ready.pid, 2, 1, 1, str(socket))
    assert isinstance(data["uptime_seconds"], int) and 0 <= data["uptime_seconds"] < 60
    table = cli("signer", "status", "--socket", socket, url=url)
    assert table.exit_code == 0 and wallet in table.stdout and str(ready.pid) in table.stdout
    assert table.stderr == ""
    # The CLI on another database (here its default) than the signer's: said plainly.
    elsewhere = cli("signer", "status", "--socket", socket)
    assert elsewhere.exit_code == 0
    from jarvis_wallet.config import default_database_url

    ours = parse_database_url(default_database_url()).display
    assert elsewhere.stderr == (
        f"Warning: the signer uses {data['database']}, but this command uses {ours}: limits and `tx list` here are "
        "not the signer's; pass --database-url (or set JARVIS_WALLET_DATABASE_URL) to match\n"
    )

    stopped = commands.run("signer", "stop", "--socket", socket)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"Stopped signer pid {ready.pid} ({socket})\n"
    assert stopped.stderr == ""
    wait_until(lambda: is_gone(ready.pid), what="the detached signer to exit")
    assert not socket.exists() and not (socket.parent / "signer.pid").exists()

    # The detached signer's log: one line per decision and per lifecycle event, no secrets.
    logs = commands.run("signer", "logs", "--socket", socket, "--lines", "100")
    assert logs.returncode == 0, logs.stderr
    entries = [json.loads(line) for line in logs.stdout.splitlines()]
    assert [e["event"] for e in entries] == ["ready", "signed", "signed", "refused", "stopping", "stopped"]
    assert entries[3]["reason"] == "per_tx_limit_exceeded" and entries[1]["wallet"] == wallet
    assert entries[4]["signal"] == "SIGTERM" and entries[5]["signed"] == 2
    secret_text = (socket.parent / "secret").read_text().strip()
    key_bytes = json.loads(key.path.read_text())
    for raw in ((socket.parent / "signer.log").read_text(),):
        assert secret_text not in raw and str(key_bytes[:8])[1:-1] not in raw.replace(" ", "")

    again = commands.run("signer", "stop", "--socket", socket)
    assert again.returncode == 6
    assert one_error_line(again.stderr) == f"Error: no signer is running for {socket}\n"
    gone = cli("signer", "status", "--socket", socket)
    assert gone.exit_code == 6
    assert gone.stderr == f"Error: no signer is listening on {socket}; start one with `jarvis-wallet signer start`\n"


def test_detach_returns_as_soon_as_the_signer_is_ready(commands, cli, key, tmp_path):
    url = f"sqlite://{tmp_path}/wallet.db"
    assert cli("init-db", url=url).exit_code == 0
    socket = tmp_path / "run" / "signer.sock"
    process = commands.popen("signer", "start", "--keypair", key.path, "--socket", socket, "--detach", url=url)
    try:
        out, err = process.communicate(timeout=3)
        assert process.returncode == 0 and Ready(out).socket == socket and err == ""
    finally:
        process.communicate(timeout=30)
        commands.run("signer", "stop", "--socket", socket)


def test_stop_ends_a_foreground_signer_too(commands, initialised_url, key, tmp_path):
    socket = tmp_path / "run" / "signer.sock"
    process, ready = commands.start(url=initialised_url, socket=socket, keypair=key.path)
    stopped = commands.run("signer", "stop", "--socket", socket)
    assert stopped.returncode == 0
    assert stopped.stdout == f"Stopped signer pid {ready.pid} ({socket})\n"
    assert process.wait(timeout=10) == 0  # the foreground command notices a clean stop
    assert "Signer stopped" in process.stderr.read()
    assert is_gone(ready.pid) and not socket.exists()


def test_status_and_stop_without_any_signer(commands, cli, tmp_path):
    socket = tmp_path / "nothing" / "signer.sock"
    status = cli("signer", "status", "--socket", socket, "--json")
    assert status.exit_code == 6
    assert status.json() == {
        "ok": False, "reason": "signer_unavailable", "exit_code": 6,
        "message": f"no signer is listening on {socket}; start one with `jarvis-wallet signer start`",
    }
    assert one_error_line(status.stderr) == (
        f"Error: no signer is listening on {socket}; start one with `jarvis-wallet signer start`\n"
    )
    stop = cli("signer", "stop", "--socket", socket)
    assert stop.exit_code == 6
    assert stop.stderr == f"Error: no signer is running for {socket}\n"


def test_status_with_a_wrong_secret_is_refused(commands, cli, initialised_url, key, tmp_path):
    socket = tmp_path / "run" / "signer.sock"
    process, _ = commands.start(url=initialised_url, socket=socket, keypair=key.path)
    status = cli("signer", "status", "--socket", socket, env={"SIGNER_SHARED_SECRET": "w" * 40})
    assert status.exit_code == 7
    assert status.stderr == "Error: hmac does not match the request; check the shared secret\n"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


# -- start-up errors -------------------------------------------------------------------------


def _bad_json_key(tmp_path, key):
    path = tmp_path / "bad.json"
    path.write_text("[1,2,3]")
    path.chmod(0o600)
    return ["--keypair", path], {}, f"Error: keypair file {path} holds 3 bytes; expected 64 (seed and public key) or 32 (seed)\n"


def _group_readable_key(tmp_path, key):
    key.path.chmod(0o640)
    return (["--keypair", key.path], {},
            f"Error: keypair file {key.path} is accessible by group or others (mode 0640); run chmod 600 {key.path}\n")


def _missing_key_file(tmp_path, key):
    path = tmp_path / "missing.json"
    return ["--keypair", path], {}, f"Error: keypair file {path} does not exist\n"


def _no_key_at_all(tmp_path, key):
    return [], {"SOLANA_PRIVATE_KEY": None}, "Error: no keypair given: pass a keypair file or set SOLANA_PRIVATE_KEY\n"


def _bad_env_key(tmp_path, key):
    return [], {"SOLANA_PRIVATE_KEY": "not a key"}, (
        "Error: SOLANA_PRIVATE_KEY is neither a JSON array of bytes (solana-keygen format) nor base58 text\n"
    )


def _short_env_secret(tmp_path, key):
    return (["--keypair", key.path], {"SIGNER_SHARED_SECRET": "s" * 31},
            "Error: SIGNER_SHARED_SECRET holds 31 bytes; a shared secret needs at least 32\n")


def _env_secret_names_a_file(tmp_path, key):
    """A path in SIGNER_SHARED_SECRET would have become the key itself (its own bytes)."""
    return (["--keypair", key.path], {"SIGNER_SHARED_SECRET": str(key.path)},
            "Error: SIGNER_SHARED_SECRET names an existing file, but it must hold the secret itself; give the file "
            "with --secret-file PATH (or secret_file= in Python) and unset SIGNER_SHARED_SECRET\n")


def _short_secret_file(tmp_path, key):
    path = tmp_path / "short-secret"
    path.write_text("0123456789\n")
    path.chmod(0o600)
    return (["--keypair", key.path, "--secret-file", path], {},
            f"Error: shared secret file {path} holds 10 bytes; a shared secret needs at least 32\n")


def _open_secret_file(tmp_path, key):
    path = tmp_path / "open-secret"
    path.write_text("a" * 64 + "\n")
    path.chmod(0o644)
    return (["--keypair", key.path, "--secret-file", path], {},
            f"Error: shared secret file {path} is accessible by group or others (mode 0644); run chmod 600 {path}\n")


def _socket_path_is_a_file(tmp_path, key):
    return (["--keypair", key.path], {"__plant_file__": "1"},
            f"Error: {tmp_path / 'run' / 'signer.sock'} exists and is not a socket; refusing to replace it\n")


def _allow_uid_without_group(tmp_path, key):
    return (["--keypair", key.path, "--allow-uid", "1234"], {},
            "Error: --allow-uid needs --socket-group: the group whose members may reach the socket\n")


@pytest.mark.parametrize(
    "option, value",
    # --refusal-rate and --refusal-burst: the older names, still accepted.
    [("--free-decision-rate", "0"), ("--free-decision-rate", "-1"), ("--refusal-rate", "nan"), ("--free-decision-burst", "0"),
     ("--refusal-burst", "0"),
     ("--max-connections", "0"), ("--freshness-window", "nan")],
)
def test_signer_limits_must_be_positive(commands, initialised_url, key, tmp_path, option, value):
    socket = tmp_path / "run" / "signer.sock"
    result = commands.run("signer", "start", "--keypair", key.path, "--socket", socket, option, value, url=initialised_url)
    assert result.returncode == 2, result.stderr
    assert one_error_line(result.stderr).startswith("Error: Invalid value for '")
    assert f"'{option}'" in result.stderr
    assert "is not in the range" in result.stderr or "is not a finite number" in result.stderr
    assert not socket.exists()


def test_a_freshness_window_longer_than_five_minutes_is_refused(commands, initialised_url, key, tmp_path):
    socket = tmp_path / "run" / "signer.sock"
    result = commands.run(
        "signer", "start", "--keypair", key.path, "--socket", socket, "--freshness-window", "301", url=initialised_url
    )
    assert result.returncode == 2, result.stderr
    assert one_error_line(result.stderr) == (
        "Error: Invalid value for '--freshness-window': 301.0 is not in the range 0.0<x<=300.0. "
        "(see `jarvis-wallet signer start --help`)\n"
    )
    assert not socket.exists()


@pytest.mark.parametrize(
    "case",
    [_bad_json_key, _group_readable_key, _missing_key_file, _no_key_at_all, _bad_env_key, _short_env_secret,
     _short_secret_file, _open_secret_file, _socket_path_is_a_file, _allow_uid_without_group, _env_secret_names_a_file],
    ids=lambda case: case.__name__.strip("_"),
)
def test_start_up_errors_exit_9_in_one_line(commands, initialised_url, key, tmp_path, case):
    args, env, message = case(tmp_path, key)
    socket = tmp_path / "run" / "signer.sock"
    planted = bool(env.pop("__plant_file__", None))
    if planted:
        socket.parent.mkdir(mode=0o700)
        socket.write_text("not a socket")
    result = commands.run("signer", "start", "--socket", socket, *args, url=initialised_url, env=env)
    assert result.returncode == 9, result.stderr
    assert result.stdout == ""
    assert one_error_line(result.stderr) == message
    if planted:
        assert socket.read_text() == "not a socket"  # never replaced
    else:
        assert not socket.exists()
    assert not (socket.parent / "signer.pid").exists()
    assert processes_mentioning(str(tmp_path)) == []


def test_start_up_error_database_unreachable(commands, key, tmp_path):
    socket = tmp_path / "run" / "signer.sock"
    result = commands.run("signer", "start", "--keypair", key.path, "--socket", socket, url=UNREACHABLE_POSTGRES)
    assert result.returncode == 9
    assert result.stdout == ""
    assert one_error_line(result.stderr).startswith(f"Error: database {UNREACHABLE_POSTGRES} is unavailable: ")
    assert "Connection refused" in result.stderr
    assert not socket.exists()


def test_start_up_error_database_not_initialised(commands, database_url, key, tmp_path):
    socket = tmp_path / "run" / "signer.sock"
    result = commands.run("signer", "start", "--keypair", key.path, "--socket", socket, url=database_url)
    assert result.returncode == 9
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite://")
        assert one_error_line(result.stderr) == f"Error: no database at {path}; run `jarvis-wallet init-db` first\n"
        assert not Path(path).exists()  # starting a signer never creates a database
    else:
        assert one_error_line(result.stderr) == (
            f"Error: database {database_url.split('?')[0]} is not initialised; run `jarvis-wallet init-db`\n"
        )  # the search_path option the tests add to the URL is not part of its name
    assert not socket.exists()


# -- serve -----------------------------------------------------------------------------------


def test_serve_runs_in_the_foreground_without_forking(commands, cli, initialised_url, key, tmp_path):
    url, wallet = initialised_url, key.wallet
    socket = tmp_path / "run" / "signer.sock"
    set_limits(cli, url, wallet)
    process, ready = commands.start(url=url, socket=socket, keypair=key.path, command="serve")
    assert ready.pid == process.pid  # this process is the signer
    assert ready.wallet == wallet and ready.socket == socket
    assert (socket.parent / "signer.pid").read_text() == f"{process.pid}\n"
    message, signed = sign_through_cli(cli, url, socket, wallet, tmp_path)
    assert signed.exit_code == 0, signed.stderr
    verify(wallet, message, signed.stdout.strip())
    assert cli("signer", "status", "--socket", socket, "--json").json()["pid"] == process.pid

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert process.stdout.read() == ""  # the ready line went to stderr; stdout stays empty
    assert process.stderr.read() == ""
    assert not socket.exists() and not (socket.parent / "signer.pid").exists()


def test_serve_start_up_error(commands, initialised_url, tmp_path):
    socket = tmp_path / "run" / "signer.sock"
    result = commands.run("signer", "serve", "--socket", socket, url=initialised_url)
    assert result.returncode == 9
    assert one_error_line(result.stderr) == "Error: no keypair given: pass a keypair file or set SOLANA_PRIVATE_KEY\n"


# -- SOLANA_PRIVATE_KEY ----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["json", "base58", "base58-seed"])
def test_solana_private_key_environment_variable(commands, cli, initialised_url, tmp_path, encoding):
    seed = os.urandom(32)
    signing_key = nacl.signing.SigningKey(seed)
    public = bytes(signing_key.verify_key)
    wallet = base58.b58encode(public).decode()
    value = {
        "json": "[" + ",".join(str(b) for b in seed + public) + "]",
        "base58": base58.b58encode(seed + public).decode(),
        "base58-seed": base58.b58encode(seed).decode(),
    }[encoding]
    secret = "k" * 32  # exactly the minimum
    env = {"SOLANA_PRIVATE_KEY": value, "SIGNER_SHARED_SECRET": secret}
    socket = tmp_path / "run" / "signer.sock"
    set_limits(cli, initialised_url, wallet)
    process, ready = commands.start(url=initialised_url, socket=socket, env=env)
    assert ready.wallet == wallet
    assert ready.line.endswith("secret $SIGNER_SHARED_SECRET\n")
    assert not (socket.parent / "secret").exists()  # no file generated when the variable is set

    message = write_transfer(tmp_path / "tx.b64", wallet, 1000)
    signed = cli("sign", tmp_path / "tx.b64", "--socket", socket, url=initialised_url, env={"SIGNER_SHARED_SECRET": secret})
    assert signed.exit_code == 0, signed.stderr
    verify(wallet, message, signed.stdout.strip())
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_stop_never_signals_a_pid_from_a_stale_pid_file(cli, tmp_path):
    """A pid file left behind may name a process that is not a signer (here: this test)."""
    socket = tmp_path / "run" / "signer.sock"
    socket.parent.mkdir(mode=0o700)
    (socket.parent / "signer.pid").write_text(f"{os.getpid()}\n")
    stop = cli("signer", "stop", "--socket", socket)
    assert stop.exit_code == 6
    assert stop.stderr == f"Error: no signer answers on {socket} (stale pid file {socket.parent / 'signer.pid'})\n"


@pytest.mark.parametrize(
    "option, value",
    [("--listen-backlog", "0"), ("--connection-wait", "-1"), ("--connection-wait", "nan"), ("--connection-wait", "61")],
)
def test_connection_queue_options_are_checked(commands, initialised_url, key, tmp_path, option, value):
    socket = tmp_path / "run" / "signer.sock"
    result = commands.run("signer", "start", "--keypair", key.path, "--socket", socket, option, value, url=initialised_url)
    assert result.returncode == 2, result.stderr
    assert one_error_line(result.stderr).startswith(f"Error: Invalid value for '{option}': ")
    assert not socket.exists()


def test_the_listen_backlog_is_what_was_asked_or_eight_per_connection(signers):
    """The kernel queue is sized for the cap, so a burst is queued, not refused with EAGAIN."""
    import shutil

    from jarvis_wallet.signer import SignerSettings, listen_backlog

    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2) to read a listener's backlog")

    assert listen_backlog(SignerSettings(socket_path=Path("s"), database_url="", max_connections=10)) == 80
    for overrides, expected in (({}, 512), ({"listen_backlog": 300}, 300)):
        handle = signers.start(**overrides)
        listing = subprocess.run(["ss", "-xlnH"], capture_output=True, text=True)
        (line,) = [line for line in listing.stdout.splitlines() if str(handle.socket_path) in line.split()]
        assert line.split()[3] == str(expected), line  # a listener's Send-Q is its backlog
        handle.stop()


# -- a database the signer can read but not write ------------------------------------------------


@contextlib.contextmanager
def read_only(url: str, tmp_path: Path):
    """The same database, read-only for whoever opens it with the URL yielded: an immutable
    SQLite file (chattr +i binds root too), or PostgreSQL sessions that default to read-only."""
    if url.startswith("sqlite"):
        path = tmp_path / "wallet.db"
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here")
        try:
            yield url
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        query["options"] = (query.get("options", "") + " -cdefault_transaction_read_only=on").strip()
        yield urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def test_a_signer_on_a_read_only_database_fails_its_start(commands, cli, initialised_url, key, tmp_path):
    set_limits(cli, initialised_url, key.wallet)
    socket = tmp_path / "run" / "signer.sock"
    with read_only(initialised_url, tmp_path) as url:
        assert cli("limits", "show", "--json", url=url).exit_code == 0  # readable
        result = commands.run("signer", "start", "--keypair", key.path, "--socket", socket, "--detach", url=url)
        assert result.returncode == 9, result.stdout
        shown = parse_database_url(url).display
        assert result.stdout == ""
        line = one_error_line(result.stderr)
        assert line.startswith(f"Error: cannot write to database {shown} (")
        assert line.endswith("); a signer that cannot record cannot sign\n")
        assert not socket.exists()
        failed = json.loads((socket.parent / "signer.log").read_text().splitlines()[-1])
        assert failed["event"] == "start_failed" and failed["reason"] == line.removeprefix("Error: ").rstrip("\n")
