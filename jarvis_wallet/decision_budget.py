"""How fast each peer may have free decisions recorded: a token bucket per uid.

Every decision is a row of the audit trail. Most rows are paid for: a signature that spends
from the wallet is counted against the daily ceiling, so the limits bound how many an agent can
have. A decision is *free* when it puts less than one signature's fee (5,000 lamports) on the
limits:

- a refusal (over a limit, a program outside the allow-list, unparsable bytes, ...);
- a signature of zero spend: an off-chain message, or a transaction another account pays the
  fee for in which the wallet moves no lamports (it only co-signs);
- a signature of a smaller spend, which another account's fee makes possible (a 1-lamport
  transfer would otherwise buy a row for a lamport).
- a re-sign: a message signed before, asked for again, is answered with its recorded signature
  and gets a ``duplicate`` row of its own that counts nothing.

Any transaction the wallet pays the fee for spends at least 5,000 lamports, so an agent paying
normally never makes a free decision: its rows are bounded by the daily ceiling (at most
``daily_lamports / 5,000`` a day). A client holding the shared secret could otherwise ask for
free decisions as fast as the signer answers, 700 to 900 rows a second, about 50 GB a day, and
fill the disk (which fails closed, but stops all signing).

So each uid may have ``burst`` free decisions recorded at once and ``per_second`` more each
second; past that, all of its signing requests (``sign``, ``sign_message``, legacy), the ones
the policy would allow included, are refused with ``rate_limited`` *before* any decision, so
nothing is decided or recorded, until the bucket refills. Whether a request is free is known
only once it is decided, so the bucket is checked before the decision and charged after it.

One bucket for every kind, not one each: a row costs the same disk whatever made it, so one
rate is the whole bound on what a uid can add for free, and a real agent meets any kind seldom.
At the defaults (10 a second, a burst of 100) a uid adds at most 864,000 free rows a day: about
0.9 GB at the 1 KB a small message's row takes; a row recording many payments reaches about
15 KB (60 transfers), so about 13 GB a day at worst (docs/security.md gives the measurements).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from .errors import RateLimited
from .solana.spend import LAMPORTS_PER_SIGNATURE

DEFAULT_FREE_DECISIONS_PER_SECOND = 10.0
DEFAULT_FREE_DECISION_BURST = 100
# A signature that counts less than this against the limits is free: any transaction the
# wallet pays the fee for costs at least one signature's fee.
FREE_BELOW_LAMPORTS = LAMPORTS_PER_SIGNATURE


def is_free_signature(lamports: int) -> bool:
    """Whether a new signature counting ``lamports`` against the limits draws on the budget."""
    return lamports < FREE_BELOW_LAMPORTS


class DecisionBudget:
    """Per-uid allowance of recorded free decisions; thread-safe, clock injected for tests."""

    def __init__(
        self,
        per_second: float = DEFAULT_FREE_DECISIONS_PER_SECOND,
        burst: int = DEFAULT_FREE_DECISION_BURST,
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
        """Raise RateLimited while ``uid`` has no free decision left to spend."""
        with self._lock:
            tokens = self._refill(uid)
        if tokens < 1:
            wait_seconds = math.ceil((1 - tokens) / self.per_second * 10) / 10  # in tenths, rounded up
            raise RateLimited(
                f"too many free decisions for uid {uid} (refusals, and signatures spending under "
                f"{FREE_BELOW_LAMPORTS:,} lamports): at most {self.per_second:g} a second are recorded; "
                f"this request was not decided or recorded, retry in {wait_seconds:.1f} s",
            )

    def charge(self, uid: int | None) -> None:
        """One free decision was recorded for ``uid``. Requests decided at once may overdraw:
        the debt is paid back before the next is decided, so the long-run rate holds."""
        with self._lock:
            self._balance[uid] = (self._refill(uid) - 1, self._clock())

    def _refill(self, uid: int | None) -> float:
        now = self._clock()
        tokens, as_of = self._balance.get(uid, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - as_of) * self.per_second)
        self._balance[uid] = (tokens, now)
        return tokens
