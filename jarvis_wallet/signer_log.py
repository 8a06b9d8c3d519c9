"""The signer's log: JSON lines in ``signer.log`` beside its pid file.

One line per lifecycle event (ready, stopping, stopped, start_failed) and one per signing
decision (signed, refused, failed), so that a detached signer, whose stdio is /dev/null, can
still be watched (`jarvis-wallet signer logs --follow`). Lines hold public values only: ids,
wallet, amounts, reason codes, peer uid and pid. Never a key, a secret, a transaction's bytes or
an agent's purpose text.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import JarvisWalletError
from .signing import SignJob, SignOutcome

#: Past this size the log moves to ``signer.log.1`` (one generation kept).
MAX_LOG_BYTES = 10 * 1024 * 1024


class SignerLog:
    """Appends JSON lines; safe to call from any thread. Failures to write are
    ignored: a full disk must not stop the signer deciding (the database is the audit trail)."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_LOG_BYTES) -> None:
        self.path = Path(path)
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def event(self, event: str, **fields) -> None:
        self.events([(event, fields)])

    def events(self, events: list[tuple[str, dict]]) -> None:
        """Several lines, ``(event, fields)`` each, in one write: the decisions of a batch."""
        now = datetime.datetime.now(datetime.timezone.utc)
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        data = b"".join(
            (json.dumps({"time": stamp, "event": event, **fields}, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
            for event, fields in events
        )
        if not data:
            return
        with self._lock:
            try:
                self._rotate_if_full()
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
            except OSError:
                pass

    def _rotate_if_full(self) -> None:
        try:
            if self.path.stat().st_size >= self._max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except FileNotFoundError:
            pass


def logged(sign: Callable[[SignJob], SignOutcome], log: SignerLog) -> Callable[[SignJob], SignOutcome]:
    """``sign`` that also writes one log line per decision."""

    def sign_and_log(job: SignJob) -> SignOutcome:
        try:
            outcome = sign(job)
        except JarvisWalletError as exc:
            log_decision(log, job, exc)
            raise
        log_decision(log, job, outcome)
        return outcome

    return sign_and_log


def log_decision(log: SignerLog, job: SignJob, result: SignOutcome | JarvisWalletError) -> None:
    """The log line of one decision: ``result`` is its outcome or the error that refused it."""
    log.events(decision_events([(job, result)]))


def decision_events(decided) -> list[tuple[str, dict]]:
    """The log lines, ``(event, fields)``, of ``(job, result)`` pairs (see ``log_decision``)."""
    return [line for job, result in decided if (line := _decision_event(job, result)) is not None]


def _decision_event(job: SignJob, result) -> tuple[str, dict] | None:
    what = {
        "op": "sign_message" if job.text is not None else "sign",
        "request_id": job.request_id,
        "peer_uid": job.peer.uid,
        "peer_pid": job.peer.pid,
    }
    if isinstance(result, JarvisWalletError):
        event = "refused" if getattr(result, "reason", None) or result.wire_code == "invalid_tx" else "failed"
        return event, {**what, "reason": result.wire_code, "message": result.message}
    if isinstance(result, SignOutcome):
        return "signed", {
            **what, "wallet": result.wallet, "transaction_id": result.transaction_id, "lamports": result.lamports,
            "fee_lamports": result.fee_lamports, "duplicate": result.duplicate,
            "tokens": [{"mint": mint, "symbol": symbol, "amount": str(amount)} for mint, symbol, amount in result.tokens],
        }
    return None


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of the log (without newlines); [] if there is none."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 512 * (lines + 1)))  # lines are short; read a little more
            data = handle.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if len(data) < size and text:
        text = text[1:]  # the first line read may be cut
    return text[-lines:] if lines else []


def follow(path: Path, *, poll_seconds: float = 0.2) -> Iterator[str]:
    """Lines appended to the log from now on, across a rotation; runs until interrupted."""
    handle = None
    position = 0
    inode = None
    skip_existing = os.path.exists(path)  # a log created later is read from its start
    while True:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and (handle is None or st.st_ino != inode or st.st_size < position):
            if handle is not None:
                handle.close()
            handle = open(path, "rb")
            if inode is None and skip_existing:
                handle.seek(0, os.SEEK_END)  # only what comes next
            inode, position = st.st_ino, handle.tell()
        if handle is not None:
            chunk = handle.readline()
            while chunk.endswith(b"\n"):
                position = handle.tell()
                yield chunk.decode("utf-8", errors="replace").rstrip("\n")
                chunk = handle.readline()
            handle.seek(position)
        time.sleep(poll_seconds)
