"""The serving loop: accept, check the peer, admit connections as slots free, serve lines.

The loop (one thread) accepts connections, checks the peer's uid, and gives
each admitted connection a thread that reads bounded lines and answers each
with ``RequestHandler.handle_line``. Connections over the cap wait for a slot
or are answered ``busy``. Signal handlers only record the signal and wake the
loop; ``halt()`` cleans up, and only the process that bound the socket
removes it.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import selectors
import signal
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__, protocol
from ..config import default_log_path, default_pid_path
from ..decision_budget import DecisionBudget
from ..errors import JarvisWalletError
from ..handler import RequestHandler
from ..signer_log import SignerLog, logged
from ..key_lock import KeyGuard, LockableKey
from ..signing import Peer, SigningService
from .pidfile import unlink_if_ours, write_pid_file
from .settings import MAX_PENDING_REFUSALS, REFUSAL_READ_SECONDS, SignerInfo, SignerSettings, listen_backlog
from .setup import (
    bind_socket,
    check_database_writable,
    database_health,
    load_key,
    load_or_create_secret,
    prepare_socket_directory,
)
from .worker import SigningWorker


@dataclass
class _Refusal:
    """A connection being turned away: its first line is read, then it gets one answer."""

    code: str
    message: str
    deadline: float
    echo_request_id: bool
    received: bytearray = field(default_factory=bytearray)


class SignerServer:
    def __init__(self, settings, listener, worker, handler, info, wake_r, wake_w, log) -> None:
        self.settings = settings
        self.info = info
        self.log = log
        self._listener = listener
        self._worker = worker
        self._handler = handler
        self._wake_r, self._wake_w = wake_r, wake_w
        self._stopping = threading.Event()
        # Set by the signal handler, read by the loop. A plain attribute: the handler runs in the
        # main thread between any two bytecodes, possibly inside Event.set() in halt(), whose
        # lock is not reentrant, so it must take no lock (an Event.set() there deadlocked).
        self._stop_signal: int | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # Accepted over the cap, oldest first: (connection, peer, when its wait ends).
        self._waiting: collections.deque[tuple[socket.socket, Peer, float]] = collections.deque()
        self._max_waiting = listen_backlog(settings)
        self._selector: selectors.BaseSelector | None = None
        self._refusals: dict[socket.socket, _Refusal] = {}
        self._owner_pid = os.getpid()
        self._halted = False
        self.key_guard = None
        self.exporter = None

    @classmethod
    def start(cls, settings: SignerSettings) -> SignerServer:
        from ..db import parse_database_url

        socket_path = Path(settings.socket_path)
        prepare_socket_directory(socket_path.parent, settings)
        log = SignerLog(default_log_path(socket_path))
        database = parse_database_url(settings.database_url).display
        secret, secret_path = load_or_create_secret(settings, socket_path)
        keypair, unlock_with = load_key(settings)
        key = LockableKey(keypair)  # from here on the key lives in one buffer that lock() zeroes
        del keypair
        guard = KeyGuard(
            key, unlock_with=unlock_with, ttl_seconds=settings.key_ttl_seconds,
            on_change=lambda event, fields: log.event(f"key_{event}", **fields),
        )
        service = SigningService(keypair=key, database_url=settings.database_url)
        worker = SigningWorker(service, decision_timeout_seconds=settings.decision_timeout_seconds, key_guard=guard)
        worker.start_and_connect()
        check_database_writable(settings.database_url)
        sign = logged(worker.submit, log)
        exporter = None
        if settings.metrics_file is not None or settings.metrics_listen is not None:
            from ..metrics import MetricsExporter, SignerMetrics

            metrics = SignerMetrics(
                database_url=settings.database_url, started_at=time.monotonic(),
                budget_refusals=lambda: handler.stats.rate_limited, locked=lambda: guard.locked,
            )
            sign = metrics.measured(sign)
            exporter = MetricsExporter(
                metrics, textfile=settings.metrics_file, listen=settings.metrics_listen,
                interval_seconds=settings.metrics_interval_seconds,
                on_error=lambda message: log.event("metrics_failed", message=message),
            )
        from ..approvals import signer_approval_hooks

        handler = RequestHandler(
            **signer_approval_hooks(settings.database_url, settings.approval_notify_command, log.event),
            secret=secret,
            public_key=key.public_key,
            sign=sign,
            status_fields={
                "database": database, "version": __version__, "logPath": str(log.path),
                "socketPath": str(socket_path), "keystore": unlock_with is not None,
            },
            live_status=lambda: database_health(settings.database_url),
            key_guard=guard,
            legacy_protocol=settings.legacy_protocol,
            freshness_window_ms=settings.freshness_window_ms,
            decision_budget=(
                None if settings.free_decisions_per_second is None
                else DecisionBudget(settings.free_decisions_per_second, settings.free_decision_burst)
            ),
        )
        if exporter is not None:
            exporter.start()  # before the socket: a port that cannot be bound fails the start cleanly
        listener = bind_socket(socket_path, settings)
        pid_path = default_pid_path(socket_path)
        write_pid_file(pid_path)
        info = SignerInfo(
            public_key=key.public_key_base58,
            pid=os.getpid(),
            socket_path=str(socket_path),
            secret_path=str(secret_path) if secret_path else None,
            pid_path=str(pid_path),
            database=database,
            version=__version__,
            log_path=str(log.path),
            keystore=unlock_with is not None,
            key_ttl_seconds=settings.key_ttl_seconds,
            metrics_file=None if settings.metrics_file is None else str(settings.metrics_file),
            metrics_listen=None if exporter is None else exporter.bound,
        )
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        server = cls(settings, listener, worker, handler, info, wake_r, wake_w, log)
        server.key_guard, server.exporter = guard, exporter
        return server

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
            while self._stop_signal is None and not self._stopping.is_set():
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
                self.key_guard.expire_if_due()  # the key's lifetime: zeroed within a second of its end
        finally:
            for conn, _, _ in self._waiting:
                conn.close()
            for conn in list(self._refusals):
                conn.close()
            self._waiting.clear()
            self._refusals.clear()
            selector.close()

    def _on_signal(self, signum, frame) -> None:
        if self._stop_signal is None:  # the first one is what stopped it
            self._stop_signal = signum  # only record: the wakeup fd wakes the loop, which stops

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
        signum = self._stop_signal
        self.log.event("stopping", pid=os.getpid(), signal=signal.Signals(signum).name if signum else None)
        with contextlib.suppress(OSError):
            self._listener.close()
        if os.getpid() == self._owner_pid:  # a forked copy must never remove the live socket
            unlink_if_ours(Path(self.info.socket_path))
            unlink_if_ours(Path(self.info.pid_path))
        with self._connections_lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._worker.stop()
        self._worker.join(timeout=self._worker.decision_timeout_seconds)
        self.key_guard.key.lock()  # zeroed on the way out too; not a lock event of the log
        if self.exporter is not None:
            self.exporter.stop()  # after the worker: the textfile keeps the final counts
        with self._connections_lock:
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.log.event("stopped", pid=os.getpid(), signed=self._handler.stats.signed, refused=self._handler.stats.refused)



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

