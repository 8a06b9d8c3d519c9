"""A wallet's rolling 24-hour spend, kept current without re-summing the whole window.

Summing every row of the last 24 hours on each batch costs time in
proportion to the rows: a busy signer slowed down as its audit trail grew.
Instead the signer keeps the sum it last computed, with the highest row id
it had seen and the window start it used, and on each batch (inside the
locked transaction) adjusts it with two small range queries:

    spent = previous
          - rows already counted (id <= last_id) that aged out: created in (old start, new start]
          + rows it has not seen yet (id > last_id) that are inside the window

and the same two adjustments, signs reversed, for ``spend_releases``: what
the chain proved was never spent (an expired transaction, all of it; a
failed one, all but its fee), keyed by the released transaction's own
``created_at`` so that a release leaves the window with what it released.

Rows are only ever added (one per decision, one per release); their amounts
never change, and every status a released signature can have counts in
full (a release subtracts, the row's status never does), so those
adjustments are exact. Rows of other signers and releases of any process
sharing the database are picked up by id, because all rows and releases of
one wallet are inserted under that wallet's lock and read after it: on PostgreSQL that needs READ COMMITTED,
which the signer pins (a snapshot from before the lock would miss them, and
``recorded`` would then step past them for good). When the clock moves backwards the sum is recomputed in
full. Deleting recent rows by hand can only make the kept sum too high,
which refuses early, never late.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import peewee

from .ledger import DAILY_WINDOW, SOL_ASSET, SPENDING_STATUSES


@dataclass
class _Kept:
    window_start: datetime.datetime
    last_id: int
    spent: int
    last_release_id: int = 0


class RollingSpend:
    """The 24-hour spend of one wallet, for one database connection."""

    def __init__(self, db: peewee.Database, wallet: str) -> None:
        p = db.param
        counted = f"status IN ({', '.join(repr(status) for status in SPENDING_STATUSES)})"
        self._db = db
        self._wallet = wallet
        self._kept: _Kept | None = None
        released = f"spend_releases WHERE wallet = {p} AND asset = '{SOL_ASSET}'"
        self._full = (
            f"SELECT (SELECT COALESCE(SUM(CASE WHEN created_at > {p} AND {counted} THEN lamports ELSE 0 END), 0) "
            f"FROM wallet_transactions WHERE wallet = {p}), "
            f"(SELECT COALESCE(MAX(id), 0) FROM wallet_transactions WHERE wallet = {p}), "
            f"(SELECT COALESCE(SUM(CASE WHEN tx_created_at > {p} THEN amount ELSE 0 END), 0) FROM {released}), "
            f"(SELECT COALESCE(MAX(id), 0) FROM {released})"
        )
        # All adjustments in one statement: one round trip to the server per batch.
        self._adjust = (
            "SELECT (SELECT COALESCE(SUM(lamports), 0) FROM wallet_transactions "
            f"WHERE wallet = {p} AND created_at > {p} AND created_at <= {p} AND id <= {p} AND {counted}), "
            f"(SELECT COALESCE(SUM(CASE WHEN created_at > {p} AND {counted} THEN lamports ELSE 0 END), 0) "
            f"FROM wallet_transactions WHERE wallet = {p} AND id > {p}), "
            f"(SELECT COALESCE(MAX(id), 0) FROM wallet_transactions WHERE wallet = {p} AND id > {p}), "
            f"(SELECT COALESCE(SUM(amount), 0) FROM {released} AND tx_created_at > {p} AND tx_created_at <= {p} AND id <= {p}), "
            f"(SELECT COALESCE(SUM(CASE WHEN tx_created_at > {p} THEN amount ELSE 0 END), 0) FROM {released} AND id > {p}), "
            f"(SELECT COALESCE(MAX(id), 0) FROM {released} AND id > {p})"
        )

    def current(self, now: datetime.datetime) -> int:
        """The spend of the window ending at ``now``; call inside the wallet's locked transaction."""
        start = now - DAILY_WINDOW
        kept = self._kept
        wallet = self._wallet
        if kept is None or start < kept.window_start:
            spent, last_id, released, last_release_id = self._db.execute_sql(
                self._full, (start, wallet, wallet, start, wallet, wallet)
            ).fetchone()
            self._kept = _Kept(start, int(last_id), int(spent) - int(released), int(last_release_id))
            return self._kept.spent
        last_id, last_release_id = kept.last_id, kept.last_release_id
        aged_out, unseen, max_id, release_aged_out, release_unseen, max_release_id = self._db.execute_sql(
            self._adjust,
            (
                wallet, kept.window_start, start, last_id, start, wallet, last_id, wallet, last_id,
                wallet, kept.window_start, start, last_release_id, start, wallet, last_release_id, wallet, last_release_id,
            ),
        ).fetchone()
        kept.spent += int(unseen) - int(aged_out) - int(release_unseen) + int(release_aged_out)
        kept.window_start = start
        kept.last_id = max(kept.last_id, int(max_id))
        kept.last_release_id = max(kept.last_release_id, int(max_release_id))
        return kept.spent

    def recorded(self, row_id: int, lamports: int) -> None:
        """This signer inserted a counted row: keep the sum current without reading it back."""
        if self._kept is not None and row_id > self._kept.last_id:
            self._kept.spent += lamports
            self._kept.last_id = row_id

    def forget(self) -> None:
        """After a failed transaction nothing kept can be trusted: recompute next time."""
        self._kept = None
