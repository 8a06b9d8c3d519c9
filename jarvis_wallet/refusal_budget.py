"""How fast each peer may have refusals recorded: a token bucket per uid.

Every refused decision is a ``rejected`` row of the audit trail. A client that holds the shared
secret could ask for refusals as fast as the signer answers (over-limit transfers, say) and grow
the table by a million rows an hour until the disk is full, which fails closed but stops all
signing. So each uid may have ``burst`` refusals recorded at once and ``per_second`` more each
second; past that, its signing requests are refused with ``rate_limited`` *before* any decision,
so nothing is recorded. Signatures cost nothing: an agent whose requests pass the policy never
meets the limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from .errors import RateLimited

DEFAULT_REFUSALS_PER_SECOND = 10.0
DEFAULT_REFUSAL_BURST = 100


class RefusalBudget:
    """Per-uid allowance of recorded refusals; thread-safe, clock injected for tests."""

    def __init__(
        self,
        per_second: float = DEFAULT_REFUSALS_PER_SECOND,
        burst: int = DEFAULT_REFUSAL_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not per_second > 0 or burst < 1:
            raise ValueError("per_second must be > 0 and burst >= 1")
        self.per_second = float(per_second)
        self.burst = burst
        self._clock = clock
        self._balance: dict[int | None, tuple[float, float]] = {}  # uid -> (tokens, as of)
        self._lock = threading.Lock()

    def check(self, uid: int | None) -> None:
        """Raise RateLimited while ``uid`` has no refusal left to spend."""
        with self._lock:
            tokens = self._refill(uid)
        if tokens < 1:
            wait_seconds = math.ceil((1 - tokens) / self.per_second * 10) / 10  # in tenths, rounded up
            raise RateLimited(
                f"too many refused requests from uid {uid}: at most {self.per_second:g} a second "
                f"are recorded; this request was not decided or recorded, retry in {wait_seconds:.1f} s",
            )

    def charge(self, uid: int | None) -> None:
        """One refusal was recorded for ``uid``. Requests decided at once may overdraw: the debt
        is paid back before the next is decided, so the long-run rate still holds."""
        with self._lock:
            self._balance[uid] = (self._refill(uid) - 1, self._clock())

    def _refill(self, uid: int | None) -> float:
        now = self._clock()
        tokens, as_of = self._balance.get(uid, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - as_of) * self.per_second)
        self._balance[uid] = (tokens, now)
        return tokens
