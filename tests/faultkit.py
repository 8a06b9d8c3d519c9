"""Tools for fault injection, shared by tests/test_faults.py and campaigns/: a signer run the way
a supervisor runs it (so it can be killed and restarted under load), a signing load of many
journaled clients, and small file systems to fill or to break.

Signers restarted while client threads run are started with ``jarvis-wallet signer serve`` in a
new process (fork and exec), never forked from the threaded test process: a fork copies the
other threads' locks in whatever state they were, which can deadlock the child.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from jarvis_wallet.errors import DatabaseUnavailable, PolicyDenied, SignerUnavailable

from accounting import AccountedClient, Journal

ROOT = Path(__file__).resolve().parent.parent

# The signer process dies with whoever started it (PR_SET_PDEATHSIG), so a crashed test or
# campaign leaves no signer behind; then the CLI runs as `python -m jarvis_wallet` would.
_LAUNCH = (
    "import ctypes, os, runpy, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]): os._exit(1)\n"
    "sys.argv = ['jarvis-wallet', *sys.argv[2:]]\n"
    "runpy.run_module('jarvis_wallet', run_name='__main__')\n"
)
_READY = re.compile(r"Signer ready: wallet (\S+), pid (\d+), version \S+, database \S+, socket (\S+), log \S+, secret (\S+)$")


class ServedSigner:
    """``jarvis-wallet signer serve`` in its own process: start, kill -9, stop, restart."""

    def __init__(
        self,
        *,
        socket_path: Path,
        database_url: str,
        keypair_path: Path,
        max_connections: int | None = None,
        idle_timeout_seconds: float | None = None,
        command_prefix: list[str] | None = None,
    ) -> None:
        self.socket_path = Path(socket_path)
        self.command_prefix = list(command_prefix or [])  # e.g. `ip netns exec NAME`
        self.database_url = database_url
        self.keypair_path = Path(keypair_path)
        self.options: list[str] = []
        if max_connections is not None:
            self.options += ["--max-connections", str(max_connections)]
        if idle_timeout_seconds is not None:
            self.options += ["--idle-timeout", str(idle_timeout_seconds)]
        self.process: subprocess.Popen | None = None
        self.public_key: str | None = None
        self.starts = 0
        self.kills = 0
        self.stderr_lines: list[str] = []

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def secret_path(self) -> Path:
        return self.socket_path.parent / "secret"

    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0) -> ServedSigner:
        """Start and wait for the ready line; RuntimeError with the signer's words otherwise."""
        assert not self.is_alive(), "already running"
        argv = [
            *self.command_prefix, sys.executable, "-c", _LAUNCH, str(os.getpid()),
            "--database-url", self.database_url, "signer", "serve",
            "--keypair", str(self.keypair_path), "--socket", str(self.socket_path), *self.options,
        ]
        process = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        ready = threading.Event()
        lines: list[str] = []

        def drain() -> None:  # read stderr to the end, so the signer can never block on it
            for line in process.stderr:
                lines.append(line.rstrip("\n"))
                match = _READY.search(line.rstrip("\n"))
                if match:
                    self.public_key = match.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        self.process = process
        self.stderr_lines = lines
        if not ready.wait(timeout) or process.poll() is not None and not _READY.search("\n".join(lines)):
            self._reap(kill=True)
            raise RuntimeError(f"the signer did not start: {' | '.join(lines[-5:]) or 'no output'}")
        self.starts += 1
        return self

    def kill9(self) -> None:
        """SIGKILL: no handler runs, the socket and pid file stay behind as after a crash."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.kills += 1

    def restart(self) -> ServedSigner:
        if self.is_alive():
            self.stop()
        return self.start()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); the exit code."""
        return self._reap(kill=False, timeout=timeout)

    def _reap(self, *, kill: bool, timeout: float = 10.0) -> int | None:
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def tracebacks(self) -> list[str]:
        return [line for line in self.stderr_lines if "Traceback" in line or "Exception in thread" in line]


# -- load ---------------------------------------------------------------------------------------


def fresh_transfer(wallet_key: bytes, lamports: int) -> bytes:
    """A transfer message from the wallet to a random key; a random blockhash makes it unique."""
    from jarvis_wallet.solana import build_transfer_message

    return build_transfer_message(
        from_pubkey=wallet_key, to_pubkey=os.urandom(32), lamports=lamports, recent_blockhash=os.urandom(32)
    )


class SigningLoad:
    """``threads`` journaled clients signing fresh transfers as fast as the signer answers.

    A request that got no answer (signer gone, database gone, timeout) goes to a pool that is
    retried later with a new request id, as an agent would: a message that was in fact signed
    must then come back as the recorded signature (``duplicate``), counted once.
    """

    def __init__(
        self,
        socket_path: Path,
        journal: Journal,
        *,
        secret: bytes,
        wallet_key: bytes,
        threads: int = 8,
        lamports: int = 1000,
        timeout: float = 10.0,
        resend_probability: float = 0.3,
        pause_seconds: float = 0.02,
        seed: int | None = None,
        tolerate: tuple[str, ...] = (),
    ) -> None:
        self.socket_path = Path(socket_path)
        self.journal = journal
        self.secret = secret
        self.wallet_key = wallet_key
        self.threads = threads
        self.lamports = lamports
        self.timeout = timeout
        self.resend_probability = resend_probability
        self.pause_seconds = pause_seconds
        self.tolerate = tolerate  # wire codes counted as "error:<code>" instead of unexpected
        self.random = random.Random(seed)
        self.counts: Counter = Counter()
        self.unexpected: list[str] = []
        self._lock = threading.Lock()
        self._pool: list[bytes] = []
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> SigningLoad:
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), name=f"load-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout)
        alive = [w.name for w in self._workers if w.is_alive()]
        assert not alive, f"load threads did not stop: {alive}"

    def count(self, key: str) -> int:
        with self._lock:
            return self.counts[key]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def decisions(self) -> int:
        """Answers that were decisions: signatures (first or duplicate) and policy refusals."""
        counts = self.snapshot()
        return sum(n for key, n in counts.items() if key in ("signed", "duplicate") or key.startswith("refused:"))

    def wait_for(self, key: str, at_least: int, timeout: float) -> bool:
        """Until ``counts[key]`` (or, for ``key="decisions"``, all decisions) reaches ``at_least``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.decisions() if key == "decisions" else self.count(key)) >= at_least:
                return True
            time.sleep(0.005)
        return False

    def _next_message(self) -> bytes:
        with self._lock:
            if self._pool and self.random.random() < self.resend_probability:
                return self._pool.pop(self.random.randrange(len(self._pool)))
        return fresh_transfer(self.wallet_key, self.lamports)

    def _tally(self, key: str, message: bytes | None = None) -> None:
        with self._lock:
            self.counts[key] += 1
            if message is not None:
                self._pool.append(message)

    def _run(self, index: int) -> None:
        client = AccountedClient(self.socket_path, secret=self.secret, journal=self.journal, timeout=self.timeout)
        try:
            while not self._stop.is_set():
                message = self._next_message()
                try:
                    signed = client.sign_transaction(message, purpose=f"load {index}")
                except PolicyDenied as refusal:
                    self._tally(f"refused:{refusal.reason}")
                except DatabaseUnavailable:
                    self._tally("database_unavailable", message)
                    self._stop.wait(self.pause_seconds)
                except SignerUnavailable as exc:  # SignerTimeout included
                    self._tally("timeout" if exc.wire_code == "timeout" else "unavailable", message)
                    client.close()
                    self._stop.wait(self.pause_seconds)
                except Exception as exc:  # noqa: BLE001 - reported, asserted by the caller
                    code = getattr(exc, "wire_code", None)
                    if code in self.tolerate:
                        self._tally(f"error:{code}", message)
                    else:
                        with self._lock:
                            self.unexpected.append(f"{type(exc).__name__}: {exc}")
                    client.close()
                    self._stop.wait(self.pause_seconds)
                else:
                    self._tally("duplicate" if signed.duplicate else "signed")
        finally:
            client.close()


# -- file systems -------------------------------------------------------------------------------


class MountUnavailable(Exception):
    """This machine (or this user) cannot mount the file system a fault needs."""


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def _unmount(path: Path) -> None:
    """Unmount, lazily if something still holds it: a test never leaves a mount behind."""
    for _ in range(50):
        if _run("umount", str(path)).returncode == 0 or not os.path.ismount(path):
            return
        time.sleep(0.1)
    _run("umount", "-l", str(path))


def _require_root(what: str) -> None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        raise MountUnavailable(f"mounting {what} needs root on Linux")


@contextlib.contextmanager
def tmpfs(path: Path, *, size_bytes: int):
    """A tmpfs of ``size_bytes`` at ``path`` (created 0700), unmounted afterwards."""
    _require_root("a tmpfs")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    result = _run("mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0700", "tmpfs", str(path))
    if result.returncode != 0:
        raise MountUnavailable(f"cannot mount a tmpfs: {result.stderr.strip()}")
    try:
        yield path
    finally:
        _unmount(path)


@contextlib.contextmanager
def read_only_bind(source: Path, target: Path):
    """``source`` seen read-only at ``target`` (a bind mount remounted ro)."""
    _require_root("a bind mount")
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    result = _run("mount", "--bind", str(source), str(target))
    if result.returncode != 0:
        raise MountUnavailable(f"cannot bind-mount: {result.stderr.strip()}")
    try:
        result = _run("mount", "-o", "remount,bind,ro", str(target))
        if result.returncode != 0:
            raise MountUnavailable(f"cannot remount the bind mount read-only: {result.stderr.strip()}")
        yield target
    finally:
        _unmount(target)


class Ext4Loop:
    """An ext4 file system in a loop-mounted image, ``errors=remount-ro`` as on a server."""

    def __init__(self, path: Path, device: str, image: Path) -> None:
        self.path = path
        self.device = device
        self.image = image

    def options(self) -> str:
        return _run("findmnt", "-no", "OPTIONS", str(self.path)).stdout.strip()

    def is_read_only(self) -> bool:
        options = self.options().split(",")
        return "ro" in options or "emergency_ro" in options

    def trigger_error(self) -> None:
        """What the kernel does on a metadata error: remount read-only at once, writers or not."""
        Path(f"/sys/fs/ext4/{Path(self.device).name}/trigger_fs_error").write_text("1")

    def repair(self) -> None:
        """The operator's way back: unmount, fsck, mount again (a forced read-only is final).

        Whoever still has files open on it must have let go: the file system is never unmounted
        lazily here, as mounting the image again beside a lazily detached copy would corrupt it.
        """
        for _ in range(50):
            result = _run("umount", str(self.path))
            if result.returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"cannot unmount {self.path} to repair it: {result.stderr.strip()}")
        fsck = _run("e2fsck", "-fy", str(self.image))
        if fsck.returncode not in (0, 1):
            raise RuntimeError(f"e2fsck failed ({fsck.returncode}): {fsck.stdout[-500:]}")
        self.device = _mount_loop(self.image, self.path)


def _mount_loop(image: Path, path: Path) -> str:
    result = _run("mount", "-o", "loop,errors=remount-ro", str(image), str(path))
    if result.returncode != 0:
        raise MountUnavailable(f"cannot loop-mount an ext4 image: {result.stderr.strip()}")
    return _run("findmnt", "-no", "SOURCE", str(path)).stdout.strip()


@contextlib.contextmanager
def ext4_loop(path: Path, *, size_mib: int = 16):
    """A fresh ext4 file system at ``path``; the loop device and image go away afterwards."""
    _require_root("a loop device")
    if shutil.which("mkfs.ext4") is None or shutil.which("e2fsck") is None:
        raise MountUnavailable("mkfs.ext4 and e2fsck are needed for a loop-mounted ext4")
    workdir = Path(tempfile.mkdtemp(prefix="jw-ext4-"))
    image = workdir / "fs.img"
    try:
        with open(image, "wb") as handle:
            handle.truncate(size_mib * 1024 * 1024)
        made = _run("mkfs.ext4", "-q", "-F", str(image))
        if made.returncode != 0:
            raise MountUnavailable(f"mkfs.ext4 failed: {made.stderr.strip()}")
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        device = _mount_loop(image, path)
        if not Path(f"/sys/fs/ext4/{Path(device).name}/trigger_fs_error").exists():
            _unmount(path)
            raise MountUnavailable("this kernel has no ext4 trigger_fs_error to inject an error")
        mount = Ext4Loop(path, device, image)
        try:
            os.chmod(path, 0o700)
            yield mount
        finally:
            _unmount(mount.path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def fill(directory: Path, name: str = "filler") -> Path:
    """Write zeros until the file system is full (ENOSPC); the file is returned to free later."""
    target = directory / name
    chunk = b"\0" * 65536
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError:
                break
        while True:  # the last partial block too
            try:
                os.write(fd, b"\0" * 512)
            except OSError:
                break
    finally:
        os.close(fd)
    return target


def proc_rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (readable by root even for a non-dumpable process)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


# -- databases ----------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_schema(server_url: str):
    """A URL whose search_path is a new, empty schema on ``server_url``; dropped afterwards."""
    import uuid
    from urllib.parse import quote

    import psycopg2

    schema = f"jw_fault_{uuid.uuid4().hex[:16]}"
    admin = psycopg2.connect(server_url, connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in server_url else "?"
        try:
            yield f"{server_url}{separator}options={quote(f'-csearch_path={schema}')}"
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.close()


def initialise(database_url: str) -> str:
    """Apply the schema to an empty database; the URL back."""
    from jarvis_wallet.db import session
    from jarvis_wallet.migrations import apply_migrations

    with session(database_url, create=True, require_schema=False) as db:
        apply_migrations(db)
    return database_url


def set_wallet_limits(database_url: str, wallet: str, *, per_tx: int, daily: int) -> None:
    from jarvis_wallet.db import session
    from jarvis_wallet.limits import set_limits

    with session(database_url):
        set_limits(wallet, per_tx_lamports=per_tx, daily_lamports=daily)


def proxied_url(database_url: str, port: int, host: str = "127.0.0.1") -> str:
    """The same PostgreSQL URL, through ``host``:``port`` (a TcpProxy)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(database_url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, f"{user}{host}:{port}", parts.path, parts.query, ""))


# -- networks -----------------------------------------------------------------------------------


class NetworkUnavailable(Exception):
    """This machine (or this user) cannot make the network namespace a partition needs."""


class PartitionableLink:
    """A network namespace joined to this one by a veth pair that can be cut silently.

    A process run with ``exec_prefix`` lives in the namespace and reaches this one at
    ``host_address``. ``partition()`` makes the link drop every packet: nothing is reset or
    refused, exactly what a pulled cable or a dead switch does, which a TCP proxy in user
    space cannot imitate (the kernel acknowledges for it).
    """

    def __init__(self, token: str, subnet: int) -> None:
        self.namespace = f"jwns-{token}"
        self.host_device, self.inner_device = f"jwh-{token}", f"jwn-{token}"
        self.host_address = f"10.231.{subnet // 64}.{(subnet % 64) * 4 + 1}"
        self.inner_address = f"10.231.{subnet // 64}.{(subnet % 64) * 4 + 2}"
        self.partitioned = False

    @property
    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace]

    def partition(self) -> None:
        # The host's end goes down, so the namespace's end loses its carrier: both sides'
        # packets are then dropped silently past their own device, as a dead switch would.
        # (A queue of length 0 on the sender's own device is not the same: TCP sees a local
        # drop as congestion and never counts its keepalive probes as lost.)
        _checked("ip", "link", "set", self.host_device, "down")
        self.partitioned = True

    def heal(self) -> None:
        _run("ip", "link", "set", self.host_device, "up")
        self.partitioned = False

    def _create(self) -> None:
        _checked("ip", "netns", "add", self.namespace)
        _checked("ip", "link", "add", self.host_device, "type", "veth", "peer", "name", self.inner_device)
        _checked("ip", "link", "set", self.inner_device, "netns", self.namespace)
        _checked("ip", "addr", "add", f"{self.host_address}/30", "dev", self.host_device)
        _checked("ip", "link", "set", self.host_device, "up")
        _checked(*self.exec_prefix, "ip", "addr", "add", f"{self.inner_address}/30", "dev", self.inner_device)
        _checked(*self.exec_prefix, "ip", "link", "set", self.inner_device, "up")
        _checked(*self.exec_prefix, "ip", "link", "set", "lo", "up")

    def _destroy(self) -> None:
        _run("ip", "link", "del", self.host_device)  # takes its peer with it
        _run("ip", "netns", "del", self.namespace)


def _checked(*argv: str) -> None:
    result = _run(*argv)
    if result.returncode != 0:
        raise NetworkUnavailable(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")


@contextlib.contextmanager
def partitionable_link():
    """A PartitionableLink for the duration; removed afterwards, whatever happened."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        raise NetworkUnavailable("a network namespace needs root on Linux")
    if not (shutil.which("ip") and shutil.which("tc")):
        raise NetworkUnavailable("`ip` and `tc` (iproute2) are needed for a network partition")
    link = PartitionableLink(os.urandom(4).hex()[:7], random.randrange(16_384))
    try:
        link._create()
        yield link
    finally:
        link._destroy()
