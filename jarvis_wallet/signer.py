"""The signer process: holds the key, serves the socket, stops cleanly.

``start_signer`` forks (the ``fork`` start method, asked for explicitly) a
child that hardens itself, reads the key, opens its own database
connection, binds the socket and only then reports readiness, or its
start-up error, over a multiprocessing pipe. EOF on that pipe means the
child died. ``serve`` runs the same signer in the current process, for a
supervisor such as systemd.

The socket loop accepts connections, checks the peer's uid, and gives each
connection a thread that reads bounded lines and answers each with
``RequestHandler.handle_line``. Decisions go to one worker thread that owns
the database connection and batches whatever requests are waiting into one
locked transaction (see ``signing.py``). Signal handlers only record the
signal and wake the loop; the loop then calls ``halt()``, and only the
process that bound the socket removes it.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import queue
import resource
import select
import selectors
import signal
import socket
import stat
import struct
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from . import protocol
from . import __version__
from .config import default_log_path, default_pid_path, default_secret_path, ensure_private_dir
from .errors import DatabaseUnavailable, InvalidConfig, JarvisWalletError, SignerStartError, SignerUnavailable
from .handler import RequestHandler
from .decision_budget import DEFAULT_FREE_DECISION_BURST, DEFAULT_FREE_DECISIONS_PER_SECOND, DecisionBudget
from .signer_log import SignerLog, logged
from .signing import Peer, SignJob, SignOutcome, SigningService

DEFAULT_START_TIMEOUT_SECONDS = 15.0
DEFAULT_IDLE_TIMEOUT_SECONDS = 60.0
DEFAULT_MAX_CONNECTIONS = 64
# A connection over the cap waits this long for a slot before it is answered `busy`.
DEFAULT_CONNECTION_WAIT_SECONDS = 5.0
# Without --listen-backlog: this many waiting connections per connection served.
BACKLOG_PER_CONNECTION = 8
# A connection turned away (busy, peer_not_allowed) is answered after its first line, or after
# this long: a client that writes at once must not lose the answer to EPIPE.
REFUSAL_READ_SECONDS = 1.0
# Refusals waiting for their first line at once; past this, answered without waiting.
MAX_PENDING_REFUSALS = 64
MAX_BATCH = 64
# How long a connection thread waits for its decision; the worker's own lock timeout is shorter.
DECISION_TIMEOUT_SECONDS = 30.0

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


@dataclass(frozen=True)
class SignerSettings:
    """Everything the signer needs to start. The key itself is never here: only where to read it."""

    socket_path: Path
    database_url: str
    keypair_path: Path | None = None  # None: read SOLANA_PRIVATE_KEY in the child
    secret_file: Path | None = None  # None: SIGNER_SHARED_SECRET, else the file beside the socket
    allowed_uids: tuple[int, ...] = ()
    socket_group: int | None = None  # with allowed_uids: the group that may reach the socket
    legacy_protocol: bool = False
    freshness_window_ms: int = protocol.DEFAULT_FRESHNESS_WINDOW_MS
    idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    # Connections that may wait for a slot, and the kernel's listen queue; None: 8 per slot.
    listen_backlog: int | None = None
    connection_wait_seconds: float = DEFAULT_CONNECTION_WAIT_SECONDS
    # Free decisions (refusals, signatures of next to no spend) each uid may have recorded
    # (decision_budget.py); None records every decision, however many: for load tests only.
    free_decisions_per_second: float | None = DEFAULT_FREE_DECISIONS_PER_SECOND
    free_decision_burst: int = DEFAULT_FREE_DECISION_BURST
    decision_timeout_seconds: float = DECISION_TIMEOUT_SECONDS
    # Run (argv by shell words, no shell) with a JSON document on stdin per new approval request.
    approval_notify_command: str | None = None


def listen_backlog(settings: SignerSettings) -> int:
    """How many connections may wait for a slot (and the kernel may queue before accept)."""
    if settings.listen_backlog is not None:
        return settings.listen_backlog
    return BACKLOG_PER_CONNECTION * settings.max_connections


@dataclass(frozen=True)
class SignerInfo:
    """What a started signer reports: all public."""

    public_key: str
    pid: int
    socket_path: str
    secret_path: str | None  # None when the secret came from SIGNER_SHARED_SECRET
    pid_path: str
    database: str = ""  # the database as named in messages (no password)
    version: str = ""  # jarvis-wallet's version
    log_path: str = ""  # JSON lines, one per decision and lifecycle event (signer_log.py)


@dataclass
class SignerHandle:
    """A running signer started by ``start_signer``."""

    info: SignerInfo
    _process: multiprocessing.Process | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.info.pid

    @property
    def public_key(self) -> str:
        return self.info.public_key

    @property
    def socket_path(self) -> Path:
        return Path(self.info.socket_path)

    def is_alive(self) -> bool:
        if self._process is not None:
            return self._process.is_alive()  # reaps our child and keeps its exit code
        return _pid_alive(self.pid)

    @property
    def exit_code(self) -> int | None:
        """The exit code of a foreground signer that has exited (0: a clean stop), else None."""
        return None if self._process is None else self._process.exitcode

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait for a clean exit, SIGKILL if it does not come."""
        stop_pid(self.pid, timeout=timeout)
        if self._process is not None:
            self._process.join(timeout=1.0)

    def wait(self) -> None:
        """Block until the signer exits (foreground mode)."""
        if self._process is not None:
            self._process.join()
        else:
            while self.is_alive():
                time.sleep(0.2)

    def __enter__(self) -> SignerHandle:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.is_alive():
            self.stop()


# -- starting --------------------------------------------------------------------------------


def start_signer(
    settings: SignerSettings, *, detach: bool = False, timeout: float = DEFAULT_START_TIMEOUT_SECONDS
) -> SignerHandle:
    """Fork a signer and wait until it serves; raise SignerStartError with its reason otherwise.

    Foreground (default): the signer dies with this process. ``detach``: it
    lives on in its own session, with a pid file beside the socket.
    """
    context = multiprocessing.get_context("fork")  # never spawn/forkserver: the child inherits nothing to re-import
    parent_end, child_end = context.Pipe(duplex=False)
    sys.stdout.flush()
    sys.stderr.flush()
    process = context.Process(
        target=_child_entry, args=(child_end, settings, detach, os.getpid()), name="jarvis-wallet-signer", daemon=False
    )
    process.start()
    child_end.close()  # so EOF means every copy in the child is gone
    try:
        if not parent_end.poll(timeout):
            _kill_quietly(process.pid)
            raise SignerStartError(f"the signer did not report readiness within {timeout:g} s")
        try:
            kind, payload = parent_end.recv()
        except (EOFError, OSError):
            process.join(timeout=2)
            raise SignerStartError(
                f"the signer process exited during start-up (exit code {process.exitcode})"
            ) from None
    finally:
        parent_end.close()
    if kind == "error":
        process.join(timeout=5)
        raise SignerStartError(payload)
    info = SignerInfo(**payload)
    if detach:
        # The intermediate process exited right after forking the signer. join() without a
        # timeout reaps it with waitpid; with a timeout it would wait on a sentinel pipe whose
        # write end the signer inherited, and so run the whole timeout out.
        process.join()
        return SignerHandle(info)
    return SignerHandle(info, process)


def _child_entry(conn, settings: SignerSettings, detach: bool, parent_pid: int) -> None:
    """Runs in the forked child; leaves only through os._exit."""
    code = 1
    try:
        if detach:
            os.setsid()
            if os.fork() > 0:  # the intermediate exits at once; the grandchild is re-parented
                os._exit(0)
            _detach_stdio()
        else:
            _die_with_parent(parent_pid)
        code = _run_signer(settings, report=_pipe_reporter(conn))
    except BaseException:  # noqa: BLE001 - the child must never unwind into the parent's code
        code = 1
    finally:
        with contextlib.suppress(Exception):
            conn.close()
        os._exit(code)


def _detach_stdio() -> None:
    """A daemon keeps none of its caller's stdio: `$(jarvis-wallet signer start --detach)` would
    otherwise wait for the signer to exit, as it holds the write end of the caller's pipe."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)


def _pipe_reporter(conn):
    def report(kind: str, payload) -> None:
        with contextlib.suppress(OSError, ValueError):
            conn.send((kind, payload))
            conn.close()

    return report


def serve(settings: SignerSettings, *, on_ready=None) -> int:
    """Run the signer in this process until SIGTERM or SIGINT; the exit code to use.

    Start-up errors raise SignerStartError. ``on_ready(info)`` is called once serving.
    """
    failure: list[str] = []

    def report(kind: str, payload) -> None:
        if kind == "error":
            failure.append(payload)
        elif on_ready is not None:
            on_ready(SignerInfo(**payload))

    code = _run_signer(settings, report=report)
    if failure:
        raise SignerStartError(failure[0])
    return code


def _run_signer(settings: SignerSettings, *, report) -> int:
    """Start up, report, serve, halt. Start-up failures are reported, never raised."""
    _harden_process()
    try:
        server = _SignerServer.start(settings)
    except JarvisWalletError as exc:
        _log_start_failure(settings, exc.message)
        report("error", exc.message)
        return 1
    except Exception as exc:  # noqa: BLE001 - report, do not print a traceback from the child
        report("error", f"unexpected start-up failure: {type(exc).__name__}")
        return 1
    try:
        # Before "ready": whoever starts a signer may stop it at once, and a SIGTERM with no
        # handler yet would kill it without halt(), leaving the socket and pid file behind.
        server.handle_signals()
        server.log.event("ready", **server.info.__dict__)
        report("ready", server.info.__dict__)
        server.serve_forever()
    finally:
        server.halt()
    return 0


def _log_start_failure(settings: SignerSettings, reason: str) -> None:
    """Into the log beside the socket, if its directory is ours already (never created for it)."""
    directory = Path(settings.socket_path).parent
    with contextlib.suppress(OSError):
        st = directory.lstat()
        # Only a directory the start would have accepted: a looser one is refused, not written to.
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o067:
            SignerLog(default_log_path(Path(settings.socket_path))).event("start_failed", reason=reason)


# -- process hardening -----------------------------------------------------------------------


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _harden_process() -> None:
    """No core dumps; not dumpable, so other processes of this uid cannot ptrace it or read
    /proc/<pid>/mem or /proc/<pid>/environ (which may hold SOLANA_PRIVATE_KEY)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        libc = _libc()
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        # A fixed mmap threshold: glibc's sliding one moved large blocks into the heap and the
        # signer's resident memory crept up under a long soak (64 -> 80 MiB in 600 s).
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
        # Two malloc arenas, not one per thread up to 8 a core: each connection thread's arena
        # kept its own slack, and the sum crept up in a 30-minute soak. The GIL serialises
        # nearly all allocation anyway, so more arenas bought no speed. (A signer forked from a
        # process that already made more than 8 keeps them, and glibc's limit with them.)
        libc.mallopt(_M_ARENA_MAX, 2)


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)


# -- the server --------------------------------------------------------------------------------


class _SigningWorker(threading.Thread):
    """The one thread that talks to the database; takes whatever is queued as one batch."""

    def __init__(self, service: SigningService, *, decision_timeout_seconds: float = DECISION_TIMEOUT_SECONDS) -> None:
        super().__init__(name="signing-worker", daemon=True)
        self._service = service
        self.decision_timeout_seconds = decision_timeout_seconds
        self._queue: queue.Queue = queue.Queue()
        self._ready = threading.Event()
        self._start_error: JarvisWalletError | None = None

    def start_and_connect(self) -> None:
        self.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def submit(self, job: SignJob) -> SignOutcome:
        future: Future = Future()
        self._queue.put((job, future))
        try:
            return future.result(timeout=self.decision_timeout_seconds)
        except TimeoutError:
            # The decision may still be committed later; its signature never leaves this way.
            raise DatabaseUnavailable(
                f"no decision within {self.decision_timeout_seconds:g} s: the database is not answering. "
                "No signature was released; send the same transaction again to get the recorded "
                "signature if it was signed"
            ) from None

    def stop(self) -> None:
        self._queue.put(None)

    def run(self) -> None:
        try:
            self._service.connect()  # in this thread: peewee connections are per thread
        except JarvisWalletError as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        while True:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            try:
                results = self._service.sign_batch([job for job, _ in batch])
            except Exception:  # noqa: BLE001 - the worker must outlive any bug; nothing was signed
                failure = JarvisWalletError("internal error; no signature was released")
                results = [failure] * len(batch)
            for (_, future), result in zip(batch, results):
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        self._service.close()


@dataclass
class _Refusal:
    """A connection being turned away: its first line is read, then it gets one answer."""

    code: str
    message: str
    deadline: float
    echo_request_id: bool
    received: bytearray = field(default_factory=bytearray)


class _SignerServer:
    def __init__(self, settings, listener, worker, handler, info, wake_r, wake_w, log) -> None:
        self.settings = settings
        self.info = info
        self.log = log
        self._listener = listener
        self._worker = worker
        self._handler = handler
        self._wake_r, self._wake_w = wake_r, wake_w
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # Accepted over the cap, oldest first: (connection, peer, when its wait ends).
        self._waiting: collections.deque[tuple[socket.socket, Peer, float]] = collections.deque()
        self._max_waiting = listen_backlog(settings)
        self._selector: selectors.BaseSelector | None = None
        self._refusals: dict[socket.socket, _Refusal] = {}
        self._owner_pid = os.getpid()
        self._halted = False

    @classmethod
    def start(cls, settings: SignerSettings) -> _SignerServer:
        from .db import parse_database_url
        from .keys import load_keypair

        socket_path = Path(settings.socket_path)
        _prepare_socket_directory(socket_path.parent, settings)
        log = SignerLog(default_log_path(socket_path))
        database = parse_database_url(settings.database_url).display
        secret, secret_path = _load_or_create_secret(settings, socket_path)
        env_key = os.environ.pop("SOLANA_PRIVATE_KEY", None)  # read once, then gone from os.environ
        keypair = load_keypair(path=settings.keypair_path, env_value=env_key)
        del env_key
        service = SigningService(keypair=keypair, database_url=settings.database_url)
        worker = _SigningWorker(service, decision_timeout_seconds=settings.decision_timeout_seconds)
        worker.start_and_connect()
        _check_database_writable(settings.database_url)
        listener = _bind_socket(socket_path, settings)
        pid_path = default_pid_path(socket_path)
        _write_pid_file(pid_path)
        from .approvals import signer_approval_hooks

        handler = RequestHandler(
            **signer_approval_hooks(settings.database_url, settings.approval_notify_command, log.event),
            secret=secret,
            public_key=keypair.public_key,
            sign=logged(worker.submit, log),
            status_fields={"database": database, "version": __version__, "logPath": str(log.path)},
            legacy_protocol=settings.legacy_protocol,
            freshness_window_ms=settings.freshness_window_ms,
            decision_budget=(
                None if settings.free_decisions_per_second is None
                else DecisionBudget(settings.free_decisions_per_second, settings.free_decision_burst)
            ),
        )
        info = SignerInfo(
            public_key=keypair.public_key_base58,
            pid=os.getpid(),
            socket_path=str(socket_path),
            secret_path=str(secret_path) if secret_path else None,
            pid_path=str(pid_path),
            database=database,
            version=__version__,
            log_path=str(log.path),
        )
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        return cls(settings, listener, worker, handler, info, wake_r, wake_w, log)

    # The loop: signals only record and wake it.
    def handle_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def serve_forever(self) -> None:
        """Accept, admit waiting connections as slots free, turn away the ones that waited too
        long; connection threads serve the rest. Only this thread touches the waiting queue."""
        self._selector = selector = selectors.DefaultSelector()
        self._listener.setblocking(False)
        selector.register(self._listener, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                for key, _ in selector.select(timeout=self._next_timeout()):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj == self._wake_r:
                        with contextlib.suppress(OSError):
                            os.read(self._wake_r, 512)
                    else:
                        self._read_refused(key.fileobj)
                self._admit_waiting()
                self._expire(time.monotonic())
        finally:
            for conn, _, _ in self._waiting:
                conn.close()
            for conn in list(self._refusals):
                conn.close()
            self._waiting.clear()
            self._refusals.clear()
            selector.close()

    def _on_signal(self, signum, frame) -> None:
        self._stopping.set()
        self._stop_signal = signum  # logged by halt(), outside the handler

    def _next_timeout(self) -> float:
        deadlines = [refusal.deadline for refusal in self._refusals.values()]
        if self._waiting:
            deadlines.append(self._waiting[0][2])
        if not deadlines:
            return 1.0
        return min(1.0, max(0.0, min(deadlines) - time.monotonic()))

    def _accept(self) -> None:
        allowed = {os.getuid(), *self.settings.allowed_uids}
        for _ in range(self._max_waiting):  # drain what the kernel queued, but come back to the loop
            try:
                conn, _ = self._listener.accept()
            except OSError:  # nothing more now (EAGAIN), or out of descriptors: the kernel keeps them
                return
            conn.setblocking(True)
            peer = _peer_credentials(conn)
            if peer.uid not in allowed:
                self._refuse(conn, protocol.PEER_NOT_ALLOWED, f"uid {peer.uid} may not use this signer", echo=False)
            elif len(self._waiting) >= self._max_waiting:
                self._refuse(conn, protocol.BUSY, self._busy_message(waited=False), echo=True)
            else:
                self._waiting.append((conn, peer, time.monotonic() + self.settings.connection_wait_seconds))
                self._admit_waiting()

    def _admit_waiting(self) -> None:
        """Serve waiting connections, oldest first, while there are free slots."""
        while self._waiting:
            with self._connections_lock:
                if len(self._connections) >= self.settings.max_connections:
                    return
                conn, peer, _ = self._waiting.popleft()
                if _hung_up(conn):  # the client gave up while waiting: act on nothing it sent
                    conn.close()
                    continue
                self._connections.add(conn)
            threading.Thread(target=self._serve_connection, args=(conn, peer), daemon=True).start()

    def _expire(self, now: float) -> None:
        """Connections that waited their whole wait without a slot are answered `busy`."""
        while self._waiting and self._waiting[0][2] <= now:
            conn, _, _ = self._waiting.popleft()
            self._refuse(conn, protocol.BUSY, self._busy_message(waited=True), echo=True)
        for conn, refusal in list(self._refusals.items()):
            if refusal.deadline <= now:
                self._answer_refused(conn)

    def _busy_message(self, *, waited: bool) -> str:
        why = (
            f"no slot freed up within {self.settings.connection_wait_seconds:g} s" if waited
            else f"{self._max_waiting} more are already waiting"
        )
        return (
            f"the signer is serving {self.settings.max_connections} connections and {why}; your request "
            "was not decided or recorded: retry after a short pause"
        )

    def _refuse(self, conn: socket.socket, code: str, message: str, *, echo: bool) -> None:
        """Answer after the client's first line arrives (or a short wait), then close: a client
        that writes before it reads gets its answer instead of EPIPE."""
        self._handler.stats.count_error(code)
        if len(self._refusals) >= MAX_PENDING_REFUSALS:
            self._reply_and_close(conn, b"", code, message, echo=echo)
            return
        conn.setblocking(False)
        self._refusals[conn] = _Refusal(code, message, time.monotonic() + REFUSAL_READ_SECONDS, echo)
        self._selector.register(conn, selectors.EVENT_READ)

    def _read_refused(self, conn: socket.socket) -> None:
        refusal = self._refusals[conn]
        try:
            chunk = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        refusal.received += chunk
        if not chunk or b"\n" in refusal.received or len(refusal.received) > protocol.MAX_LINE_BYTES:
            self._answer_refused(conn)

    def _answer_refused(self, conn: socket.socket) -> None:
        refusal = self._refusals.pop(conn)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn)
        first_line = bytes(refusal.received).split(b"\n", 1)[0]
        self._reply_and_close(conn, first_line, refusal.code, refusal.message, echo=refusal.echo_request_id)

    def _reply_and_close(self, conn: socket.socket, first_line: bytes, code: str, message: str, *, echo: bool) -> None:
        reply = protocol.connection_refusal(
            first_line, code, message, legacy_mode=self.settings.legacy_protocol, echo_request_id=echo
        )
        with contextlib.suppress(OSError):
            conn.setblocking(False)  # one short line fits any socket buffer; never block the loop
            conn.send(protocol.encode_frame(reply))
        with contextlib.suppress(OSError):
            conn.close()

    def _serve_connection(self, conn: socket.socket, peer: Peer) -> None:
        frames = protocol.FrameBuffer()
        idle = self.settings.idle_timeout_seconds
        line_deadline: float | None = None
        try:
            while not self._stopping.is_set():
                # The timeout bounds a whole line, not each read: a client trickling a byte at
                # a time cannot hold its connection slot longer than an idle one could.
                if frames.pending_bytes and line_deadline is not None:
                    remaining = line_deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    conn.settimeout(remaining)
                else:
                    conn.settimeout(idle)
                    line_deadline = None
                chunk = conn.recv(65536)
                if line_deadline is None:
                    line_deadline = time.monotonic() + idle
                if not chunk:
                    return
                try:
                    lines = frames.feed(chunk)
                except JarvisWalletError as exc:
                    # A line over the cap: the rest of the stream cannot be trusted.
                    self._handler.stats.count_error(exc.wire_code)
                    reply = protocol.connection_refusal(
                        frames.overlong_prefix, exc.wire_code, exc.message,
                        legacy_mode=self.settings.legacy_protocol, echo_request_id=False,
                    )
                    conn.sendall(protocol.encode_frame(reply))
                    _drain_line(conn, deadline=time.monotonic() + REFUSAL_READ_SECONDS)
                    return
                for line in lines:
                    conn.sendall(self._handler.handle_line(line, peer))
        except (OSError, TimeoutError):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            with self._connections_lock:
                self._connections.discard(conn)
                if not self._halted:  # halt() closes the pipe under this lock: never a reused fd
                    with contextlib.suppress(OSError):
                        os.write(self._wake_w, b"\0")  # a slot is free: admit the next waiting connection

    def halt(self) -> None:
        """Stop accepting, finish the worker, remove our socket and pid file. Idempotent."""
        if self._halted:
            return
        self._halted = True
        self._stopping.set()
        signum = getattr(self, "_stop_signal", None)
        self.log.event("stopping", pid=os.getpid(), signal=signal.Signals(signum).name if signum else None)
        with contextlib.suppress(OSError):
            self._listener.close()
        if os.getpid() == self._owner_pid:  # a forked copy must never remove the live socket
            _unlink_if_ours(Path(self.info.socket_path))
            _unlink_if_ours(Path(self.info.pid_path))
        with self._connections_lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._worker.stop()
        self._worker.join(timeout=self._worker.decision_timeout_seconds)
        with self._connections_lock:
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.log.event("stopped", pid=os.getpid(), signed=self._handler.stats.signed, refused=self._handler.stats.refused)


# -- socket, directory, secret, pid file -------------------------------------------------------


def _check_database_writable(url: str) -> None:
    """Fail the start (exit 9, through the pipe) on a database the signer can read but not write."""
    from .db import check_writable, session

    with session(url) as db:
        check_writable(db)


def _prepare_socket_directory(directory: Path, settings: SignerSettings) -> None:
    """0700 and ours; with allowed uids, 0710 with the socket group so they can reach it."""
    if not settings.allowed_uids:
        ensure_private_dir(directory)
        return
    group = settings.socket_group
    if group is None:
        raise InvalidConfig("--allow-uid needs --socket-group: the group whose members may reach the socket")
    # A signer with the same settings left the directory 0710 with this group: that is ours to
    # reuse. Anything else (missing, looser, another owner or group) gets the strict check.
    if not _is_shared_socket_directory(directory, group):
        ensure_private_dir(directory)
    os.chown(directory, -1, group)
    os.chmod(directory, 0o710)


def _is_shared_socket_directory(directory: Path, group: int) -> bool:
    try:
        st = directory.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.getuid()
        and st.st_gid == group
        and stat.S_IMODE(st.st_mode) == 0o710
    )


def _load_or_create_secret(settings: SignerSettings, socket_path: Path):
    from .keys import generate_shared_secret_file, load_shared_secret

    # --secret-file, else SIGNER_SHARED_SECRET (the secret itself), else the file beside the socket.
    if settings.secret_file:
        path = Path(settings.secret_file)
        return load_shared_secret(env_value=None, path=path), path
    env_value = os.environ.get("SIGNER_SHARED_SECRET")
    if env_value is not None:
        return load_shared_secret(env_value=env_value, path=None), None
    path = default_secret_path(socket_path)
    if not path.exists():
        return generate_shared_secret_file(path), path
    return load_shared_secret(env_value=None, path=path), path


def _bind_socket(path: Path, settings: SignerSettings) -> socket.socket:
    _replace_stale_socket(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is born 0600: no window where it is open
    try:
        listener.bind(str(path))
    except OSError as exc:
        listener.close()
        raise SignerStartError(f"cannot bind {path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    if settings.allowed_uids:
        os.chown(path, -1, settings.socket_group)
        os.chmod(path, 0o660)
    else:
        os.chmod(path, 0o600)
    listener.listen(listen_backlog(settings))
    return listener


def _replace_stale_socket(path: Path) -> None:
    """A socket nobody answers on is left over from a dead signer; a live one is never stolen."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SignerStartError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    except OSError as exc:
        raise SignerStartError(f"cannot check socket {path}: {exc.strerror}") from None
    finally:
        probe.close()
    owner = read_pid_file(default_pid_path(path))
    who = f" (pid {owner})" if owner else ""
    raise SignerStartError(f"socket {path} is already served by a live signer{who}; stop it first")


def _peer_credentials(conn: socket.socket) -> Peer:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    return Peer(uid=uid, pid=pid)


def _hung_up(conn: socket.socket) -> bool:
    """Whether the client closed its end altogether (POLLHUP): nobody would read an answer.
    A client that only shut down writing (half-close) still waits for one."""
    poller = select.poll()
    poller.register(conn, select.POLLHUP)
    return any(events & (select.POLLHUP | select.POLLERR) for _, events in poller.poll(0))


def _drain_line(conn: socket.socket, *, deadline: float, limit: int = 16 * protocol.MAX_LINE_BYTES) -> None:
    """Read and drop the rest of an over-long line (bounded), so the client's write completes
    and it can read the answer before the close, instead of failing with EPIPE."""
    received = 0
    with contextlib.suppress(OSError):
        while received < limit:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            conn.settimeout(remaining)
            chunk = conn.recv(65536)
            if not chunk or b"\n" in chunk:
                return
            received += len(chunk)


def _write_pid_file(path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def read_pid_file(path: Path) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _unlink_if_ours(path: Path) -> None:
    """Remove the socket or pid file only while the pid file still names this process."""
    pid_path = default_pid_path(path) if path.suffix != ".pid" else path
    if read_pid_file(pid_path) not in (None, os.getpid()):
        return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# -- stopping --------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            # The state follows the parenthesised command name, which may itself hold spaces.
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")


pid_is_running = _pid_alive  # public: `signer status` tells a dead signer from an absent one


def _kill_quietly(pid: int | None) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def stop_pid(pid: int, *, timeout: float = 10.0) -> None:
    """SIGTERM and wait; SIGKILL after ``timeout``."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.02)
    _kill_quietly(pid)


def stop_signer(socket_path: Path, *, timeout: float = 10.0) -> int:
    """Stop the signer serving ``socket_path`` (via its pid file); return its pid."""
    pid_path = default_pid_path(Path(socket_path))
    pid = read_pid_file(pid_path)
    if pid is None or not _pid_alive(pid):
        raise SignerUnavailable(f"no signer is running for {socket_path}")
    if not _socket_answers(Path(socket_path)):
        # A pid file without a live socket is stale: that pid may now be another process.
        raise SignerUnavailable(f"no signer answers on {socket_path} (stale pid file {pid_path})")
    stop_pid(pid, timeout=timeout)
    return pid


def _socket_answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()
