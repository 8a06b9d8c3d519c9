"""The floors: the simplest honest servers, asked by the same client as the signer.

Each floor is a small forked Python process serving newline-delimited JSON on a Unix socket, and
the benchmark drives it with exactly the ``sign`` workload: ``SignerClient.sign_transaction``, the
same HMAC'd request lines, and a reply of a real sign reply's bytes (captured from a real signer,
only its ``requestId`` swapped for the request's, so the client parses the same reply). The only
difference from the signer is what the server does between reading a line and answering it:

* ``echo``: nothing; the bare round trip of our client and a Python socket loop;
* ``commit`` (1 client), per request: ``BEGIN``, one ``INSERT``, ``COMMIT``, then the reply;
* ``batch`` (8 clients), group commit: the loop reads every line ready on any connection, inserts
  them in one statement and one transaction, commits once, then answers them all.

The commit floors come with two rows:

* ``minimal``: ``(id, key, body)``, a random 32-byte key (unique) and a 64-byte body;
* ``audit``: a row of the real ``wallet_transactions``, in a schema made by jarvis_wallet's own
  migrations (every index included). The row is copied from two real signs on that database:
  the columns that differ between them (request id, message hash, signature, message bytes,
  times) get fresh values of the same type and length per request, the others are copied.

On SQLite the database is opened through ``jarvis_wallet.db.open_database`` (the signer's own
pragmas: WAL, ``synchronous=FULL``), and the floor checks that journal mode and synchronous
setting before it serves, so every COMMIT syncs the WAL. On PostgreSQL the schema is fresh and
dropped at the end, and ``synchronous_commit`` and ``fsync`` are recorded. Each server counts its
requests, rows and commits; the run checks that every answered request was inserted.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import decimal
import multiprocessing
import os
import selectors
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jarvis_wallet import protocol
from jarvis_wallet.client import SignerClient, find_shared_secret
from jarvis_wallet.config import default_secret_path
from jarvis_wallet.db import close_database, is_sqlite, open_database

ECHO, COMMIT, BATCH = "echo", "commit", "batch"
MINIMAL, AUDIT = "minimal", "audit"
ROWS = (MINIMAL, AUDIT)
MINIMAL_KEY_BYTES, MINIMAL_BODY_BYTES = 32, 64
MINIMAL_TABLE = "floor_minimal"
AUDIT_TABLE = "wallet_transactions"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
_REQUEST_ID_FIELD = b'"' + protocol.FIELD_REQUEST_ID.encode("ascii") + b'":"'


def case_name(kind: str, backend: str | None = None, row: str | None = None) -> str:
    """``floor_echo``, ``floor_commit_sqlite_minimal``, ``floor_batch_postgresql_audit``, ..."""
    return "_".join(["floor", kind] + ([backend, row] if kind != ECHO else []))


class FloorFailed(RuntimeError):
    """A floor server did not start, did not stop, or answered a request it had not recorded."""


# -- what a real signer answers, and what it records ------------------------------------------


@dataclass(frozen=True)
class ReplyTemplate:
    """A real sign reply line around its requestId, to answer any request with the same bytes."""

    before: bytes
    after: bytes

    @classmethod
    def around(cls, line: bytes, request_id: str) -> ReplyTemplate:
        value = request_id.encode("ascii")
        offset = line.index(_REQUEST_ID_FIELD + value) + len(_REQUEST_ID_FIELD)
        return cls(line[:offset], line[offset + len(value):])

    def reply(self, request_line: bytes) -> bytes:
        start = request_line.index(_REQUEST_ID_FIELD) + len(_REQUEST_ID_FIELD)
        return self.before + request_line[start : request_line.index(b'"', start)] + self.after

    @property
    def size(self) -> int:
        return len(self.before) + len(self.after) + 36  # a canonical UUID


@dataclass(frozen=True)
class AuditRow:
    """A real audit row as a template: which columns to renew per request, and how."""

    columns: tuple[str, ...]
    values: tuple
    varying: tuple[int, ...]  # indexes into columns

    @classmethod
    def from_samples(cls, columns: list[str], first: tuple, second: tuple) -> AuditRow:
        keep = [i for i, name in enumerate(columns) if name != "id"]
        names = tuple(columns[i] for i in keep)
        values = tuple(_plain(first[i]) for i in keep)
        varying = tuple(n for n, i in enumerate(keep) if _plain(first[i]) != _plain(second[i]))
        return cls(names, values, varying)

    def fresh(self, counter: int) -> list:
        values = list(self.values)
        for index in self.varying:
            values[index] = _renewed(values[index], counter)
        return values


def _plain(value):
    return bytes(value) if isinstance(value, memoryview) else value


def _renewed(sample, counter: int):
    """A new value like ``sample``: random of the same length, now for a time, +counter for a number."""
    if isinstance(sample, bytes):
        return os.urandom(len(sample))
    if isinstance(sample, bool):
        return sample
    if isinstance(sample, (int, float, decimal.Decimal)):
        return sample + counter
    if isinstance(sample, datetime.datetime):
        return datetime.datetime.now(sample.tzinfo or datetime.timezone.utc).replace(tzinfo=sample.tzinfo)
    if isinstance(sample, str) and _looks_like_time(sample):
        with contextlib.suppress(ValueError):
            when = datetime.datetime.fromisoformat(sample)
            now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=when.tzinfo)
            return now.isoformat(sep=sample[10], timespec="microseconds" if "." in sample else "seconds")
    if isinstance(sample, str):
        return os.urandom(len(sample) // 2 + 1).hex()[: len(sample)]
    raise FloorFailed(f"cannot renew an audit column holding {type(sample).__name__}")


def _looks_like_time(text: str) -> bool:
    """``2026-12-07 02:24:21.914789`` (how SQLite holds the signer's times), with ``T`` or a zone."""
    return len(text) >= 19 and text[4] == "-" and text[7] == "-" and text[10] in " T" and text[13] == ":"


@dataclass(frozen=True)
class SignSample:
    """What two real signs left behind: the reply line's shape, the secret file, the audit rows."""

    reply: ReplyTemplate
    secret_path: Path
    audit_row: AuditRow


def sample_signs(signer_socket: Path, url: str, message_pair: list[bytes], copy_secret_to: Path) -> SignSample:
    """Two real signs through a running signer on ``url``: one over a raw socket (its reply line
    becomes the template), one through SignerClient; then their audit rows, read back."""
    secret = find_shared_secret(signer_socket)
    request = protocol.build_request(
        secret, op=protocol.OP_SIGN, tx_base64=base64.b64encode(message_pair[0]).decode("ascii"), purpose="benchmark"
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(10)
        raw.connect(str(signer_socket))
        raw.sendall(protocol.encode_frame(request))
        line = b""
        while not line.endswith(b"\n"):
            chunk = raw.recv(65536)
            if not chunk:
                raise FloorFailed("the signer closed the connection before answering the sample sign")
            line += chunk
    reply = protocol.decode_frame(line.rstrip(b"\n"))
    if reply.get("ok") is not True:
        raise FloorFailed(f"the sample sign was refused: {reply.get('error')}")
    with SignerClient(signer_socket) as client:
        client.sign_transaction(message_pair[1], purpose="benchmark")
    copy_secret_to.mkdir(parents=True, exist_ok=True)
    secret_path = copy_secret_to / default_secret_path(signer_socket).name
    shutil.copy2(default_secret_path(signer_socket), secret_path)
    return SignSample(ReplyTemplate.around(line, request[protocol.FIELD_REQUEST_ID]), secret_path, _audit_rows(url))


def _audit_rows(url: str) -> AuditRow:
    db = open_database(url, bind=False)
    try:
        cursor = db.execute_sql(f"SELECT * FROM {AUDIT_TABLE} ORDER BY id")
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    finally:
        close_database(db)
    if len(rows) != 2:
        raise FloorFailed(f"expected the two sample signs in {AUDIT_TABLE}, found {len(rows)} rows")
    return AuditRow.from_samples(columns, rows[0], rows[1])


# -- what each floor does between reading a line and answering it ------------------------------


class _Echo:
    """Records nothing."""

    settings = {"records": "nothing"}

    def commit(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Store:
    """One row per request, ``count`` requests per transaction, one COMMIT."""

    def __init__(self, url: str, row: str, audit: AuditRow | None) -> None:
        self.db = open_database(url, bind=False, thread_safe=False)
        self.conn = self.db.connection()
        self.sqlite = is_sqlite(self.db)
        self.row, self.audit = row, audit
        self.counter = 0
        self._sql: dict[int, str] = {}
        self.settings = self._check_durability()

    def _check_durability(self) -> dict:
        if self.sqlite:
            journal = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
            synchronous = self.conn.execute("PRAGMA synchronous").fetchone()[0]
            if journal != "wal" or synchronous != 2:  # 2: FULL
                raise FloorFailed(f"SQLite floor is not durable like the signer: journal_mode={journal}, synchronous={synchronous}")
            return {"journal_mode": journal, "synchronous": "full"}
        with self.conn.cursor() as cur:
            cur.execute("SELECT current_setting('synchronous_commit'), current_setting('fsync')")
            synchronous_commit, fsync = cur.fetchone()
        if synchronous_commit == "off" or fsync != "on":
            raise FloorFailed(f"PostgreSQL floor is not durable: synchronous_commit={synchronous_commit}, fsync={fsync}")
        return {"synchronous_commit": synchronous_commit, "fsync": fsync}

    def _statement(self, count: int) -> str:
        if count not in self._sql:
            p = "?" if self.sqlite else "%s"
            columns = ("key", "body") if self.row == MINIMAL else self.audit.columns
            table = MINIMAL_TABLE if self.row == MINIMAL else AUDIT_TABLE
            row = "(" + ", ".join([p] * len(columns)) + ")"
            self._sql[count] = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * count)}"
        return self._sql[count]

    def _params(self, count: int) -> list:
        params: list = []
        for _ in range(count):
            self.counter += 1
            if self.row == MINIMAL:
                randomness = os.urandom(MINIMAL_KEY_BYTES + MINIMAL_BODY_BYTES)
                params += (randomness[:MINIMAL_KEY_BYTES], randomness[MINIMAL_KEY_BYTES:])
            else:
                params += self.audit.fresh(self.counter)
        return params

    def commit(self, count: int) -> None:
        statement, params = self._statement(count), self._params(count)
        if self.sqlite:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(statement, params)
            self.conn.execute("COMMIT")
        else:
            with self.conn.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute(statement, params)
                cur.execute("COMMIT")

    def close(self) -> None:
        close_database(self.db)


def create_minimal_table(url: str) -> None:
    db = open_database(url, create=True, bind=False)
    try:
        blob = "BLOB" if is_sqlite(db) else "BYTEA"
        key = "INTEGER PRIMARY KEY" if is_sqlite(db) else "BIGSERIAL PRIMARY KEY"
        db.execute_sql(f"CREATE TABLE {MINIMAL_TABLE} (id {key}, key {blob} NOT NULL UNIQUE, body {blob} NOT NULL)")
    finally:
        close_database(db)


# -- the server ---------------------------------------------------------------------------------


@dataclass
class _Counts:
    requests: int = 0
    commits: int = 0
    largest_batch: int = 0


def _serve(listener: socket.socket, control, reply: ReplyTemplate, store_args, batch: bool) -> None:
    """The floor's loop: read what is ready, record it (per request or per batch), answer."""
    # Ctrl-C and termination are the parent's business: it stops us (run.py turns SIGTERM into
    # KeyboardInterrupt in the parent, which the fork would otherwise inherit).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    store = _Echo() if store_args is None else _Store(*store_args)
    control.send(("ready", store.settings))
    counts = _Counts()
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(control, selectors.EVENT_READ)
    partial: dict[socket.socket, bytes] = {}
    while True:
        ready: list[tuple[socket.socket, bytes]] = []
        for key, _ in selector.select():
            if key.fileobj is control:
                control.recv()
                store.close()
                control.send(("stopped", {"requests": counts.requests, "commits": counts.commits,
                                          "largest_batch": counts.largest_batch}))
                return
            if key.fileobj is listener:
                conn, _ = listener.accept()
                partial[conn] = b""
                selector.register(conn, selectors.EVENT_READ)
                continue
            conn = key.fileobj
            chunk = conn.recv(65536)
            if not chunk:
                selector.unregister(conn)
                del partial[conn]
                conn.close()
                continue
            *lines, partial[conn] = (partial[conn] + chunk).split(b"\n")
            ready += [(conn, line) for line in lines]
        groups = [ready] if batch and ready else [[one] for one in ready]
        for group in groups:
            if store_args is not None:
                store.commit(len(group))
                counts.commits += 1
            counts.requests += len(group)
            counts.largest_batch = max(counts.largest_batch, len(group))
            for conn, line in group:
                with contextlib.suppress(OSError):  # a client gone: its next read ends it
                    conn.sendall(reply.reply(line))


@dataclass
class FloorServer:
    """A running floor: where to connect, and what it reports when stopped."""

    name: str
    socket_path: Path
    settings: dict
    stats: dict = field(default_factory=dict)


@contextlib.contextmanager
def running_floor(name: str, workdir: Path, sample: SignSample, *, url: str | None = None, row: str | None = None,
                  batch: bool = False) -> Iterator[FloorServer]:
    """Fork a floor server (echo when ``url`` is None); stop it on exit and keep its counts."""
    directory = Path(tempfile.mkdtemp(dir=workdir, prefix="floor-"))
    shutil.copy2(sample.secret_path, directory / sample.secret_path.name)  # SignerClient finds it here
    socket_path = directory / "floor.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(socket_path))
    listener.listen(64)
    context = multiprocessing.get_context("fork")
    parent_end, child_end = context.Pipe()
    store_args = None if url is None else (url, row, sample.audit_row)
    process = context.Process(target=_serve, args=(listener, child_end, sample.reply, store_args, batch), daemon=True)
    process.start()
    listener.close()
    child_end.close()
    try:
        _, settings = _receive(parent_end, START_TIMEOUT_SECONDS, process)
        server = FloorServer(name, socket_path, settings)
        yield server
        parent_end.send("stop")
        _, server.stats = _receive(parent_end, STOP_TIMEOUT_SECONDS, process)
    finally:
        parent_end.close()
        process.join(timeout=STOP_TIMEOUT_SECONDS)
        if process.is_alive():
            process.terminate()
            process.join(timeout=STOP_TIMEOUT_SECONDS)


def _receive(pipe, timeout: float, process) -> tuple[str, dict]:
    if not pipe.poll(timeout):
        raise FloorFailed(f"the floor server (pid {process.pid}) did not answer within {timeout:g} s")
    try:
        return pipe.recv()
    except EOFError:
        raise FloorFailed(f"the floor server exited (code {process.exitcode})") from None


def count_rows(url: str, row: str) -> int:
    """Rows the floor left in its table (the audit table also holds the two sample signs)."""
    db = open_database(url, bind=False)
    try:
        return db.execute_sql(f"SELECT COUNT(*) FROM {MINIMAL_TABLE if row == MINIMAL else AUDIT_TABLE}").fetchone()[0]
    finally:
        close_database(db)
