"""The serving loop: one thread accepts, admits and serves every connection.

The loop (the signer's main thread) accepts connections, checks the peer's uid and
admits them as slots free; connections over the cap wait for a slot or are
answered ``busy`` (after their first line, so a client that writes first still
reads the answer). It serves every admitted connection itself, non-blocking: it
reads what is ready, frames lines, runs the cheap part of each request at once
(``RequestHandler.begin_line``: parse, HMAC, freshness and replay, the budget;
ping and pubkey are answered there), collects the signing jobs of everything
ready into one batch and hands the batch to the signing worker (``worker.py``:
one locked transaction, one commit). When the worker posts the results back
(and wakes the loop), the loop writes every reply; a batch's replies are
written only after its commit. Jobs that arrive while a batch is being decided
make the next one.

Each connection has one request in hand at a time, so its replies keep its
order; its replies are buffered and written without blocking, and a connection
whose buffer does not drain waits for EVENT_WRITE and reads nothing more: a slow
reader stalls only itself, and loses its slot after the idle timeout like an
idle client. Requests that may wait (unlock's key derivation, a lock waiting for
the batch in flight, status and wait_for_approval reading the database) run on
threads of their own and post their reply back. The worker thread is what
keeps the decision timeout: if the database stops answering, the loop answers
each waiting job ``database_unavailable`` once it has waited
``decision_timeout_seconds`` and goes on serving everyone else.

Signal handlers only record the signal and wake the loop; ``halt()`` cleans up,
and only the process that bound the socket removes it.
"""

from __future__ import annotations

import collections
import contextlib
import math
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
from ..handler import PendingCall, PendingDecision, RequestHandler
from ..signer_log import SignerLog, decision_events, logged
from ..key_lock import KeyGuard, LockableKey
from ..signing import Peer, SigningService
from .pidfile import unlink_if_ours, write_pid_file
from .settings import MAX_BATCH, MAX_PENDING_REFUSALS, REFUSAL_READ_SECONDS, SignerInfo, SignerSettings, listen_backlog
from .setup import (
    bind_socket,
    check_database_writable,
    database_health,
    load_key,
    load_or_create_secret,
    prepare_socket_directory,
)
from .worker import SigningWorker, decision_timed_out

#: Bytes read from a connection at a time.
READ_BYTES = 65536
#: A connection's unwritten replies past which it reads and answers nothing more until they drain.
OUT_HIGH_WATER = 256 * 1024
#: What is read and dropped of an over-long line before the connection is closed.
DRAIN_LIMIT = 16 * protocol.MAX_LINE_BYTES
# What a selector key's data says the file is.
_LISTENER, _WAKE, _REFUSED = "listener", "wake", "refused"


@dataclass
class _Refusal:
    """A connection being turned away: its first line is read, then it gets one answer."""

    code: str
    message: str
    deadline: float
    echo_request_id: bool
    received: bytearray = field(default_factory=bytearray)


class _Connection:
    """An admitted connection, owned by the loop thread."""

    __slots__ = (
        "sock", "peer", "frames", "lines", "out", "busy", "eof", "closed", "events",
        "line_deadline", "idle_deadline", "write_deadline", "drain_until", "drained",
    )

    def __init__(self, sock: socket.socket, peer: Peer) -> None:
        self.sock = sock
        self.peer = peer
        self.frames = protocol.FrameBuffer()
        self.lines: collections.deque = collections.deque()  # read, not yet answered (or _Overlong)
        self.out = bytearray()  # answered, not yet written
        self.busy = False  # a request is in hand (a decision, or a call on its own thread)
        self.eof = False  # the client shut down writing: close once all it sent is answered
        self.closed = False
        self.events = 0  # what it is registered for in the selector
        self.line_deadline: float | None = None  # set when the first byte of a line arrives
        self.idle_deadline = math.inf
        self.write_deadline: float | None = None
        self.drain_until: float | None = None  # after line_too_long: reading the rest, then closing
        self.drained = 0

    def deadline(self) -> float | None:
        """When the connection is closed unless something happens first; None: it waits on us."""
        if self.drain_until is not None:
            return self.drain_until
        if self.out:
            return self.write_deadline
        if self.busy or self.lines:
            return None
        return self.line_deadline if self.line_deadline is not None else self.idle_deadline


@dataclass
class _Overlong:
    """Where a connection's stream went over the line cap: answered once, then closed."""

    error: JarvisWalletError
    prefix: bytes


class _Job:
    """A decision waiting for its batch or in it: whose, what, and when it times out."""

    __slots__ = ("conn", "pending", "deadline", "answered")

    def __init__(self, conn: _Connection, pending: PendingDecision, deadline: float) -> None:
        self.conn, self.pending, self.deadline, self.answered = conn, pending, deadline, False


class SignerServer:
    def __init__(self, settings, listener, worker, handler, info, wake_r, wake_w, log, metrics=None) -> None:
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
        self._connections: set[_Connection] = set()  # admitted; only the loop thread touches them
        self._idle = settings.idle_timeout_seconds
        self._next_sweep = math.inf  # no connection can time out before this
        # Decisions: collected (oldest first), and the batch the worker is deciding, of which the
        # first _live_answered timed out already. At most one live batch: the rest wait for it.
        self._jobs: list[_Job] = []
        self._live: list[_Job] | None = None
        self._live_answered = 0
        self._decision_timeout = None if worker is None else worker.decision_timeout_seconds
        self._metrics = metrics  # metrics.SignerMetrics, or None: each decision is counted before its reply
        # What other threads (the worker, blocking calls) hand the loop to do; they wake it.
        self._posted: collections.deque = collections.deque()
        self._wake_lock = threading.Lock()
        self._wake_closed = False
        self._key_expiring = False
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
        sign = logged(worker.submit, log)  # handle_line's path; the loop logs and counts batches itself
        exporter = metrics = None
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
        server = cls(settings, listener, worker, handler, info, wake_r, wake_w, log, metrics)
        server.key_guard, server.exporter = guard, exporter
        return server

    # The loop: signals only record and wake it.
    def handle_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def serve_forever(self) -> None:
        """Serve until a signal or halt(): accept, admit, read, decide, write, time out."""
        self._selector = selector = selectors.DefaultSelector()
        self._listener.setblocking(False)
        selector.register(self._listener, selectors.EVENT_READ, _LISTENER)
        selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        try:
            while self._stop_signal is None and not self._stopping.is_set():
                for key, mask in selector.select(timeout=self._next_timeout()):
                    data = key.data
                    if data.__class__ is _Connection:
                        self._serve_ready(data, mask)
                    elif data is _LISTENER:
                        self._accept()
                    elif data is _WAKE:
                        with contextlib.suppress(OSError):
                            os.read(self._wake_r, 512)
                    else:
                        self._read_refused(key.fileobj)
                self._take_posted()
                now = time.monotonic()
                self._time_out_decisions(now)
                self._submit_batch()
                if self._waiting or self._refusals:
                    self._admit_waiting()
                    self._expire(now)
                if now >= self._next_sweep:
                    self._close_timed_out(now)
                if self.key_guard.ttl_seconds is not None:
                    self._expire_key()
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
        first = self._next_sweep
        if self._refusals:
            first = min(first, *(refusal.deadline for refusal in self._refusals.values()))
        if self._waiting:
            first = min(first, self._waiting[0][2])
        if self._live is not None and self._live_answered < len(self._live):
            first = min(first, self._live[self._live_answered].deadline)
        if self._jobs:
            first = min(first, self._jobs[0].deadline)
        return min(1.0, max(0.0, first - time.monotonic()))

    def _post(self, action) -> None:
        """From another thread: have the loop run ``action()``, and wake it."""
        self._posted.append(action)
        with self._wake_lock:
            if not self._wake_closed:  # halt() closes the pipe under this lock: never a reused fd
                with contextlib.suppress(OSError):  # a full pipe wakes the loop anyway
                    os.write(self._wake_w, b"\0")

    def _take_posted(self) -> None:
        posted = self._posted
        while posted:
            posted.popleft()()

    # -- accepting, waiting for a slot, turning away ---------------------------------------------

    def _accept(self) -> None:
        allowed = {os.getuid(), *self.settings.allowed_uids}
        for _ in range(self._max_waiting):  # drain what the kernel queued, but come back to the loop
            try:
                conn, _ = self._listener.accept()
            except OSError:  # nothing more now (EAGAIN), or out of descriptors: the kernel keeps them
                return
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
        while self._waiting and len(self._connections) < self.settings.max_connections:
            sock, peer, _ = self._waiting.popleft()
            if _hung_up(sock):  # the client gave up while waiting: act on nothing it sent
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Connection(sock, peer)
            self._connections.add(conn)
            self._advance_or_close(conn)  # starts its idle time and registers it for reading

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
        self._selector.register(conn, selectors.EVENT_READ, _REFUSED)

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

    # -- serving admitted connections ------------------------------------------------------------

    def _serve_ready(self, conn: _Connection, mask: int) -> None:
        try:
            if mask & selectors.EVENT_WRITE:
                self._advance(conn)
            if mask & selectors.EVENT_READ and not conn.closed:
                self._read(conn)
        except Exception:  # noqa: BLE001 - a bug costs this connection, never the loop or the others
            self._close(conn)

    def _advance_or_close(self, conn: _Connection) -> None:
        try:
            self._advance(conn)
        except Exception:  # noqa: BLE001 - as in _serve_ready
            self._close(conn)

    def _read(self, conn: _Connection) -> None:
        try:
            chunk = conn.sock.recv(READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if conn.drain_until is not None:  # the rest of an over-long line: read and dropped
            conn.drained += len(chunk)
            if not chunk or b"\n" in chunk or conn.drained >= DRAIN_LIMIT:
                self._close(conn)
            return
        if not chunk:
            conn.eof = True  # a half-closed client still gets the answers to what it sent
        else:
            if conn.line_deadline is None:
                # The idle timeout bounds a whole line, not each read: a client trickling a byte
                # at a time cannot hold its connection slot longer than an idle one could.
                conn.line_deadline = self._note_deadline(time.monotonic() + self._idle)
            try:
                conn.lines.extend(conn.frames.feed(chunk))
            except JarvisWalletError as exc:
                # A line over the cap: the rest of the stream cannot be trusted.
                conn.lines.append(_Overlong(exc, conn.frames.overlong_prefix))
            if not conn.frames.pending_bytes:
                conn.line_deadline = None
        self._advance(conn)

    def _advance(self, conn: _Connection) -> None:
        """Answer conn's buffered lines in order, one request in hand at a time; write what is
        answered; then ask the selector for what conn can use next."""
        if conn.closed:
            return
        handler = self._handler
        while True:
            while conn.lines and not conn.busy and conn.drain_until is None and len(conn.out) < OUT_HIGH_WATER:
                line = conn.lines.popleft()
                if line.__class__ is _Overlong:
                    self._refuse_overlong(conn, line)
                    break
                begun = handler.begin_line(line, conn.peer)
                if begun.__class__ is bytes:
                    conn.out += begun
                elif begun.__class__ is PendingDecision:
                    conn.busy = True
                    self._jobs.append(_Job(conn, begun, time.monotonic() + self._decision_timeout))
                else:
                    conn.busy = True
                    self._run_blocking(conn, begun)
            if conn.out:
                try:
                    sent = conn.sock.send(conn.out)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    self._close(conn)
                    return
                del conn.out[:sent]
            if not (conn.lines and not conn.out and not conn.busy and conn.drain_until is None):
                break
        if conn.out:
            if conn.write_deadline is None:  # a reader as slow as an idle client loses its slot
                conn.write_deadline = self._note_deadline(time.monotonic() + self._idle)
        else:
            conn.write_deadline = None
            if conn.eof and not conn.busy and not conn.lines:
                self._close(conn)  # everything it sent is answered
                return
            if not conn.busy and not conn.lines:
                conn.idle_deadline = self._note_deadline(time.monotonic() + self._idle)
        events = 0
        if not conn.eof and not conn.lines and len(conn.out) < OUT_HIGH_WATER:
            events = selectors.EVENT_READ  # also while a request is in hand: a hang-up is seen
        if conn.out:
            events |= selectors.EVENT_WRITE
        if events != conn.events:
            if not conn.events:
                self._selector.register(conn.sock, events, conn)
            elif not events:
                self._selector.unregister(conn.sock)
            else:
                self._selector.modify(conn.sock, events, conn)
            conn.events = events

    def _refuse_overlong(self, conn: _Connection, overlong: _Overlong) -> None:
        """Answer once, then read and drop the rest of the line (bounded) before closing, so the
        client's write completes and it can read the answer instead of failing with EPIPE."""
        exc = overlong.error
        self._handler.stats.count_error(exc.wire_code)
        reply = protocol.connection_refusal(
            overlong.prefix, exc.wire_code, exc.message, legacy_mode=self.settings.legacy_protocol,
            echo_request_id=False,
        )
        conn.out += protocol.encode_frame(reply)
        conn.lines.clear()
        conn.drain_until = self._note_deadline(time.monotonic() + REFUSAL_READ_SECONDS)
        if conn.eof:
            conn.drain_until = self._note_deadline(0.0)  # nothing more will come: close once written

    def _close(self, conn: _Connection) -> None:
        """Close conn and free its slot. A request it had in hand is still decided and counted;
        its answer goes nowhere, and the slot stays taken until it is: a client hanging up over
        and over must not get more requests in hand (threads, jobs) than there are slots."""
        if conn.closed:
            return
        conn.closed = True
        if conn.events:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(conn.sock)
            conn.events = 0
        with contextlib.suppress(OSError):
            conn.sock.close()
        conn.out.clear()
        conn.lines.clear()
        if not conn.busy:
            self._connections.discard(conn)

    def _note_deadline(self, deadline: float) -> float:
        if deadline < self._next_sweep:
            self._next_sweep = deadline
        return deadline

    def _close_timed_out(self, now: float) -> None:
        """Close connections past their deadline: idle, a line too slow, a reader too slow."""
        next_sweep = math.inf
        for conn in list(self._connections):
            deadline = conn.deadline()
            if deadline is None:
                continue
            if deadline <= now:
                self._close(conn)
            elif deadline < next_sweep:
                next_sweep = deadline
        self._next_sweep = next_sweep

    def _run_blocking(self, conn: _Connection, call: PendingCall) -> None:
        """A request that may wait runs on a thread of its own; the loop writes its reply."""

        def run() -> None:
            try:
                reply = call.run()
            except BaseException:  # noqa: BLE001 - run() never raises; if it did, the slot must not leak
                reply = _internal_error_frame()
            self._post(lambda: self._complete(conn, reply))

        try:
            threading.Thread(target=run, name="signer-call", daemon=True).start()
        except BaseException:  # no thread to be had: nothing is in hand, so the slot must not stay taken
            conn.busy = False
            raise

    def _complete(self, conn: _Connection, reply: bytes) -> None:
        conn.busy = False
        if conn.closed:
            self._connections.discard(conn)  # the slot its request held is free now
            return
        conn.out += reply
        self._advance_or_close(conn)

    # -- decisions: one batch at a time with the worker, each job within the decision timeout -----

    def _submit_batch(self) -> None:
        """Hand every job collected so far (up to MAX_BATCH) to the worker as one batch, unless
        it is deciding one: those that come meanwhile make the next, bigger batch."""
        if self._live is not None or not self._jobs:
            return
        batch = self._jobs[:MAX_BATCH]
        del self._jobs[:MAX_BATCH]
        self._live, self._live_answered = batch, 0
        started = time.perf_counter()
        self._worker.submit_batch(
            [job.pending.job for job in batch],
            lambda results: self._post(lambda: self._decided(batch, results, started)),
        )

    def _decided(self, batch: list[_Job], results: list, started: float) -> None:
        if batch is self._live:
            self._live = None
            self._submit_batch()  # the worker decides the next batch while these replies go out
        # One that timed out was answered already: its late result never leaves.
        self._answer([(job, result) for job, result in zip(batch, results) if not job.answered],
                     time.perf_counter() - started)

    def _time_out_decisions(self, now: float) -> None:
        """Jobs undecided after the decision timeout are answered database_unavailable; the
        worker may still be stuck on them, so the next batch queues behind."""
        live = self._live
        if live is not None:
            expired = []
            while self._live_answered < len(live) and live[self._live_answered].deadline <= now:
                expired.append(live[self._live_answered])
                self._live_answered += 1
            if self._live_answered == len(live):
                self._live = None
        else:
            expired = []
        while self._jobs and self._jobs[0].deadline <= now:
            expired.append(self._jobs.pop(0))
        if expired:
            self._answer([(job, decision_timed_out(self._decision_timeout)) for job in expired], self._decision_timeout)

    def _answer(self, answers: list[tuple[_Job, object]], seconds: float) -> None:
        """Reply to decided (or timed-out) jobs: their log lines (one write) and metrics first."""
        for job, _ in answers:
            job.answered = True
        with contextlib.suppress(Exception):
            self.log.events(decision_events([(job.pending.job, result) for job, result in answers]))
        for job, result in answers:
            if self._metrics is not None:
                with contextlib.suppress(Exception):
                    self._metrics.observe(result, seconds)
            try:
                reply = job.pending.finish(result)
            except Exception:  # noqa: BLE001 - a bug framing one reply costs that reply, never the loop
                reply = _internal_error_frame()
            self._complete(job.conn, reply)

    def _expire_key(self) -> None:
        """Lock the key at the end of its lifetime, on a thread: a lock waits for the batch in flight."""
        guard = self.key_guard
        left = guard.seconds_left()
        if left is None or left > 0 or self._key_expiring:
            return
        self._key_expiring = True

        def expire() -> None:
            try:
                guard.expire_if_due()
            finally:
                self._post(lambda: setattr(self, "_key_expiring", False))

        threading.Thread(target=expire, name="signer-key-ttl", daemon=True).start()

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
        for conn in list(self._connections):  # the loop has stopped: nobody else holds them
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
            self._close(conn)
        self._worker.stop()
        self._worker.join(timeout=self._worker.decision_timeout_seconds)
        self.key_guard.key.lock()  # zeroed on the way out too; not a lock event of the log
        if self.exporter is not None:
            self.exporter.stop()  # after the worker: the textfile keeps the final counts
        with self._wake_lock:
            self._wake_closed = True
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.log.event("stopped", pid=os.getpid(), signed=self._handler.stats.signed, refused=self._handler.stats.refused)



def _internal_error_frame() -> bytes:
    """The reply when answering a request itself failed: nothing was released with it."""
    return protocol.encode_frame(
        protocol.error_response(None, protocol.INTERNAL_ERROR, "internal error; no signature was released")
    )


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
