"""The signing worker: the one thread that talks to the database.

Connection threads hand it jobs; it takes whatever is queued as one batch and
decides it in one locked transaction (``signing.py``). It holds the key for the
whole batch (``key_lock.py``): a lock waits for the batch in flight, and a batch
that finds the key locked is refused ``locked`` before anything is decided or
recorded, so no signature ever leaves without its row.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from ..errors import DatabaseUnavailable, JarvisWalletError
from ..key_lock import KeyGuard, locked_error
from ..signing import SignJob, SignOutcome, SigningService
from .settings import DECISION_TIMEOUT_SECONDS, MAX_BATCH


class SigningWorker(threading.Thread):
    """The one thread that talks to the database; takes whatever is queued as one batch."""

    def __init__(
        self, service: SigningService, *, decision_timeout_seconds: float = DECISION_TIMEOUT_SECONDS,
        key_guard: KeyGuard | None = None,
    ) -> None:
        super().__init__(name="signing-worker", daemon=True)
        self._service = service
        self._key_guard = key_guard
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
                results = self._decide([job for job, _ in batch])
            except Exception:  # noqa: BLE001 - the worker must outlive any bug; nothing was signed
                failure = JarvisWalletError("internal error; no signature was released")
                results = [failure] * len(batch)
            for (_, future), result in zip(batch, results):
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        self._service.close()

    def _decide(self, jobs: list[SignJob]) -> list:
        guard = self._key_guard
        if guard is None:
            return self._service.sign_batch(jobs)
        guard.expire_if_due()
        with guard.key.held() as unlocked:
            if not unlocked:
                return [locked_error() for _ in jobs]
            return self._service.sign_batch(jobs)

