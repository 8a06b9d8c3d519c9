"""The signing worker: the one thread that talks to the database.

The serving loop (``server.py``) hands it a whole batch of jobs at once
(``submit_batch``); it decides the batch in one locked transaction with one
commit (``signing.py``) and hands the results back through the batch's
``done`` callback, which wakes the loop. It exists so that a database that
stops answering stalls only the decisions: the loop keeps serving every
connection meanwhile and answers a batch that has waited too long itself
(the decision timeout). It holds the key for the whole batch (``key_lock.py``):
a lock waits for the batch in flight, and a batch that finds the key locked
is refused ``locked`` before anything is decided or recorded, so no signature
ever leaves without its row.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from ..errors import DatabaseUnavailable, JarvisWalletError
from ..key_lock import KeyGuard, locked_error
from ..signing import SignJob, SignOutcome, SigningService
from .settings import DECISION_TIMEOUT_SECONDS

#: A batch's results, one per job in order: its SignOutcome or the error that refused it.
Results = list


class SigningWorker(threading.Thread):
    """The one thread that talks to the database; decides each batch it is handed in one go."""

    def __init__(
        self, service: SigningService, *, decision_timeout_seconds: float = DECISION_TIMEOUT_SECONDS,
        key_guard: KeyGuard | None = None,
    ) -> None:
        super().__init__(name="signing-worker", daemon=True)
        self._service = service
        self._key_guard = key_guard
        self.decision_timeout_seconds = decision_timeout_seconds
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._ready = threading.Event()
        self._start_error: JarvisWalletError | None = None

    def start_and_connect(self) -> None:
        self.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def submit_batch(self, jobs: list[SignJob], done: Callable[[Results], None]) -> None:
        """Decide ``jobs`` together; ``done(results)`` is called on this worker's thread."""
        self._queue.put((jobs, done))

    def submit(self, job: SignJob) -> SignOutcome:
        """Decide one job and wait for it (at most the decision timeout)."""
        future: Future = Future()
        self.submit_batch([job], lambda results: future.set_result(results[0]))
        try:
            result = future.result(timeout=self.decision_timeout_seconds)
        except TimeoutError:
            raise decision_timed_out(self.decision_timeout_seconds) from None
        if isinstance(result, BaseException):
            raise result
        return result

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
            jobs, done = item
            try:
                results = self._decide(jobs)
            except Exception:  # noqa: BLE001 - the worker must outlive any bug; nothing was signed
                results = [JarvisWalletError("internal error; no signature was released") for _ in jobs]
            done(results)
        self._service.close()

    def _decide(self, jobs: list[SignJob]) -> Results:
        guard = self._key_guard
        if guard is None:
            return self._service.sign_batch(jobs)
        guard.expire_if_due()
        with guard.key.held() as unlocked:
            if not unlocked:
                return [locked_error() for _ in jobs]
            return self._service.sign_batch(jobs)


def decision_timed_out(timeout_seconds: float) -> DatabaseUnavailable:
    """The answer to a job whose decision did not come within the decision timeout."""
    # The decision may still be committed later; its signature never leaves this way.
    return DatabaseUnavailable(
        f"no decision within {timeout_seconds:g} s: the database is not answering. "
        "No signature was released; send the same transaction again to get the recorded "
        "signature if it was signed"
    )
