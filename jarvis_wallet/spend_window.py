"""A wallet's rolling 24-hour spend, kept current without re-summing the whole window.

Summing every row of the last 24 hours on each batch costs time in
proportion to the rows: a busy signer slowed down as its audit trail grew.
Instead the signer keeps the sum it last computed, with the highest row id
it had seen and the window start it used, and on each batch (inside the
locked transaction) adjusts it with two small range queries:

    spent = previous
          - rows already counted (id <= last_id) that aged out: created in (old start, new start]
          + rows it has not seen yet (id > last_id) that are inside the window

Rows are only ever added (one per decision); their lamports never change,
and every status a released signature can have counts, so those two
adjustments are exact. Rows of other signers sharing the database are
picked up by id, because all rows of one wallet are inserted under that
wallet's lock and read after it: on PostgreSQL that needs READ COMMITTED,
which the signer pins (a snapshot from before the lock would miss them, and
``recorded`` would then step past them for good). When the clock moves backwards the sum is recomputed in
full. Deleting recent rows by hand can only make the kept sum too high,
which refuses early, never late.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import peewee

from .ledger import DAILY_WINDOW, SPENDING_STATUSES


@dataclass
class _Kept:
    window_start: datetime.datetime
    last_id: int
    spent: int


class RollingSpend:
    """The 24-hour spend of one wallet, for one database connection."""

    def __init__(self, db: peewee.Database, wallet: str) -> None:
        p = db.param
        counted = f"status IN ({', '.join(repr(status) for status in SPENDING_STATUSES)})"
        self._db = db
        self._wallet = wallet
        self._kept: _Kept | None = None
        self._full = (
            f"SELECT COALESCE(SUM(CASE WHEN created_at > {p} AND {counted} THEN lamports ELSE 0 END), 0), "
            f"COALESCE(MAX(id), 0) FROM wallet_transactions WHERE wallet = {p}"
        )
        # Both adjustments in one statement: one round trip to the server per batch.
        self._adjust = (
            "SELECT (SELECT COALESCE(SUM(lamports), 0) FROM wallet_transactions "
            f"WHERE wallet = {p} AND created_at > {p} AND created_at <= {p} AND id <= {p} AND {counted}), "
            f"(SELECT COALESCE(SUM(CASE WHEN created_at > {p} AND {counted} THEN lamports ELSE 0 END), 0) "
            f"FROM wallet_transactions WHERE wallet = {p} AND id > {p}), "
            f"(SELECT COALESCE(MAX(id), 0) FROM wallet_transactions WHERE wallet = {p} AND id > {p})"
        )

    def current(self, now: datetime.datetime) -> int:
        """The spend of the window ending at ``now``; call inside the wallet's locked transaction."""
        start = now - DAILY_WINDOW
        kept = self._kept
        if kept is None or start < kept.window_start:
            spent, last_id = self._db.execute_sql(self._full, (start, self._wallet)).fetchone()
            self._kept = _Kept(start, int(last_id), int(spent))
            return self._kept.spent
        wallet, last_id = self._wallet, kept.last_id
        aged_out, unseen, max_id = self._db.execute_sql(
            self._adjust,
            (wallet, kept.window_start, start, last_id, start, wallet, last_id, wallet, last_id),
        ).fetchone()
        kept.spent += int(unseen) - int(aged_out)
        kept.window_start = start
        kept.last_id = max(kept.last_id, int(max_id))
        return kept.spent

    def recorded(self, row_id: int, lamports: int) -> None:
        """This signer inserted a counted row: keep the sum current without reading it back."""
        if self._kept is not None and row_id > self._kept.last_id:
            self._kept.spent += lamports
            self._kept.last_id = row_id

    def forget(self) -> None:
        """After a failed transaction nothing kept can be trusted: recompute next time."""
        self._kept = None
