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
        # Sums over the window's range of the (wallet, created_at, ...) indexes, never the history.
        self._full = (
            f"(SELECT COALESCE(SUM(lamports), 0) FROM wallet_transactions "
            f"WHERE wallet = {p} AND created_at > {p} AND {counted}), "
            f"(SELECT COALESCE(MAX(id), 0) FROM wallet_transactions WHERE wallet = {p}), "
            f"(SELECT COALESCE(SUM(amount), 0) FROM {released} AND tx_created_at > {p}), "
            f"(SELECT COALESCE(MAX(id), 0) FROM {released})"
        )
        # All adjustments in one statement: one round trip to the server per batch.
        self._adjust = (
            # Aged out: a range of the (wallet, created_at, ...) index. ``id + 0`` names no index, so no
            # plan walks (wallet, id) or the primary key over the whole history to find it.
            "(SELECT COALESCE(SUM(lamports), 0) FROM wallet_transactions "
            f"WHERE wallet = {p} AND created_at > {p} AND created_at <= {p} AND id + 0 <= {p} AND {counted}), "
            f"(SELECT COALESCE(SUM(CASE WHEN created_at > {p} AND {counted} THEN lamports ELSE 0 END), 0) "
            f"FROM wallet_transactions WHERE wallet = {p} AND id > {p}), "
            f"(SELECT COALESCE(MAX(id), 0) FROM wallet_transactions WHERE wallet = {p} AND id > {p}), "
            f"(SELECT COALESCE(SUM(amount), 0) FROM {released} AND tx_created_at > {p} AND tx_created_at <= {p} AND id + 0 <= {p}), "
            f"(SELECT COALESCE(SUM(CASE WHEN tx_created_at > {p} THEN amount ELSE 0 END), 0) FROM {released} AND id > {p}), "
            f"(SELECT COALESCE(MAX(id), 0) FROM {released} AND id > {p})"
        )

    def current(self, now: datetime.datetime) -> int:
        """The spend of the window ending at ``now``; call inside the wallet's locked transaction."""
        columns, params = self.query(now)
        return self.apply(now, self._db.execute_sql(f"SELECT {columns}", params).fetchone())

    def query(self, now: datetime.datetime) -> tuple[str, tuple]:
        """What ``current`` reads, as SELECT-list expressions and their parameters, so that a
        caller can read it in a statement of its own (``apply`` takes the values)."""
        start = now - DAILY_WINDOW
        kept = self._kept
        wallet = self._wallet
        if kept is None or start < kept.window_start:
            return self._full, (wallet, start, wallet, wallet, start, wallet)
        last_id, last_release_id = kept.last_id, kept.last_release_id
        return self._adjust, (
            wallet, kept.window_start, start, last_id, start, wallet, last_id, wallet, last_id,
            wallet, kept.window_start, start, last_release_id, start, wallet, last_release_id, wallet, last_release_id,
        )

    def apply(self, now: datetime.datetime, values) -> int:
        """Bring the kept sum to ``now`` with the values ``query`` read; the spend of the window."""
        start = now - DAILY_WINDOW
        kept = self._kept
        if kept is None or start < kept.window_start:
            spent, last_id, released, last_release_id = values
            self._kept = _Kept(start, int(last_id), int(spent) - int(released), int(last_release_id))
            return self._kept.spent
        aged_out, unseen, max_id, release_aged_out, release_unseen, max_release_id = values
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


# Exact u64 sums in SQL. PostgreSQL: SUM over NUMERIC(20,0) is exact and cannot overflow.
# SQLite keeps amounts as 20-digit text; its SUM of integers stops at 2**63 - 1, so the text is
# summed in two halves (each below 10**10, so 9 * 10**8 rows fit) and joined in Python.
_HALF = 10**10


def u64_sum_sql(postgres: bool, column: str, condition: str = "1 = 1") -> str:
    """Two SELECT expressions whose values ``u64_sum_value`` joins into the exact sum.

    ``condition`` appears ``u64_sum_repeats`` times: pass its parameters that often."""
    if postgres:
        return f"COALESCE(SUM(CASE WHEN {condition} THEN {column} ELSE 0 END), 0), 0"
    halves = (f"CAST(substr({column}, 1, 10) AS INTEGER)", f"CAST(substr({column}, 11, 10) AS INTEGER)")
    return ", ".join(f"COALESCE(SUM(CASE WHEN {condition} THEN {half} ELSE 0 END), 0)" for half in halves)


def u64_sum_repeats(postgres: bool) -> int:
    return 1 if postgres else 2


def u64_sum_value(postgres: bool, high, low) -> int:
    return int(high) if postgres else int(high) * _HALF + int(low)


@dataclass
class _KeptTokens:
    window_start: datetime.datetime
    last_transaction_id: int
    spent: dict[str, int]  # mint (base58) -> base units
    last_release_id: int = 0


class RollingTokenSpend:
    """The 24-hour spend of one wallet per mint, kept current like ``RollingSpend``.

    Rows of token_spend are inserted with their transaction's row, under the wallet's lock,
    with its created_at, and never change; they count while that transaction's status does
    (SPENDING_STATUSES). Unseen rows are found by transaction id, aged-out ones by time.
    Token releases (spend_releases rows whose asset is a mint) are subtracted the same way,
    by release id and by the released transaction's created_at, as ``RollingSpend`` does.
    """

    def __init__(self, db: peewee.Database, wallet: str) -> None:
        from .db import is_sqlite

        p = db.param
        self._postgres = postgres = not is_sqlite(db)
        counted = f"t.status IN ({', '.join(repr(status) for status in SPENDING_STATUSES)})"
        rows = "FROM token_spend s JOIN wallet_transactions t ON t.id = s.transaction_id"
        released = f"FROM spend_releases r WHERE r.wallet = {p} AND r.asset <> '{SOL_ASSET}'"
        self._db = db
        self._wallet = wallet
        self._kept: _KeptTokens | None = None
        # Kind 0: spend, 1: releases (subtracted); each row's max id moves its own cursor.
        self._full = (
            f"SELECT 0, s.mint, {u64_sum_sql(postgres, 's.amount_base_units', f's.created_at > {p} AND {counted}')}, "
            f"MAX(s.transaction_id) {rows} WHERE s.wallet = {p} GROUP BY s.mint "
            f"UNION ALL SELECT 1, r.asset, {u64_sum_sql(postgres, 'r.amount_base_units', f'r.tx_created_at > {p}')}, "
            f"MAX(r.id) {released} GROUP BY r.asset"
        )
        # Aged out and unseen, of spend and of releases, in one statement: one round trip per batch.
        # Kinds: 0 spend aged out, 1 spend unseen, 2 release aged out, 3 release unseen.
        self._adjust = (
            f"SELECT 0, s.mint, {u64_sum_sql(postgres, 's.amount_base_units')}, 0 {rows} "
            f"WHERE s.wallet = {p} AND s.created_at > {p} AND s.created_at <= {p} AND s.transaction_id + 0 <= {p} "
            f"AND {counted} GROUP BY s.mint "
            f"UNION ALL SELECT 1, s.mint, {u64_sum_sql(postgres, 's.amount_base_units', f's.created_at > {p} AND {counted}')}, "
            f"MAX(s.transaction_id) {rows} WHERE s.wallet = {p} AND s.transaction_id > {p} GROUP BY s.mint "
            f"UNION ALL SELECT 2, r.asset, {u64_sum_sql(postgres, 'r.amount_base_units')}, 0 {released} "
            f"AND r.tx_created_at > {p} AND r.tx_created_at <= {p} AND r.id + 0 <= {p} GROUP BY r.asset "
            f"UNION ALL SELECT 3, r.asset, {u64_sum_sql(postgres, 'r.amount_base_units', f'r.tx_created_at > {p}')}, "
            f"MAX(r.id) {released} AND r.id > {p} GROUP BY r.asset"
        )

    def current(self, now: datetime.datetime) -> dict[str, int]:
        """Base units per mint in the window ending at ``now`` (inside the wallet's lock)."""
        sql, params = self.query(now)
        return self.apply(now, self._db.execute_sql(sql, params).fetchall())

    def query(self, now: datetime.datetime) -> tuple[str, tuple]:
        """What ``current`` reads: a statement of rows (kind, mint, high, low, max id) and its
        parameters, for a caller that reads it inside a statement of its own."""
        start = now - DAILY_WINDOW
        kept = self._kept
        repeats = u64_sum_repeats(self._postgres)
        wallet = self._wallet
        if kept is None or start < kept.window_start:
            return self._full, (*[start] * repeats, wallet, *[start] * repeats, wallet)
        last, last_release = kept.last_transaction_id, kept.last_release_id
        return self._adjust, (
            wallet, kept.window_start, start, last, *[start] * repeats, wallet, last,
            wallet, kept.window_start, start, last_release, *[start] * repeats, wallet, last_release,
        )

    def apply(self, now: datetime.datetime, rows) -> dict[str, int]:
        """Bring the kept sums to ``now`` with the rows ``query`` read; base units per mint."""
        start = now - DAILY_WINDOW
        kept = self._kept
        if kept is None or start < kept.window_start:
            kept = _KeptTokens(start, 0, {})
            for kind, mint, high, low, max_id in rows:
                amount = u64_sum_value(self._postgres, high, low)
                if int(kind) == 0:
                    kept.spent[mint] = kept.spent.get(mint, 0) + amount
                    kept.last_transaction_id = max(kept.last_transaction_id, int(max_id or 0))
                else:
                    kept.spent[mint] = kept.spent.get(mint, 0) - amount
                    kept.last_release_id = max(kept.last_release_id, int(max_id or 0))
            self._kept = kept
            return dict(kept.spent)
        for kind, mint, high, low, max_id in rows:
            amount = u64_sum_value(self._postgres, high, low)
            kind = int(kind)
            # spend aged out and releases unseen lower the sum; spend unseen and releases aged out raise it
            kept.spent[mint] = kept.spent.get(mint, 0) + (amount if kind in (1, 2) else -amount)
            if kind == 1:
                kept.last_transaction_id = max(kept.last_transaction_id, int(max_id or 0))
            elif kind == 3:
                kept.last_release_id = max(kept.last_release_id, int(max_id or 0))
        kept.window_start = start
        return dict(kept.spent)

    def recorded(self, transaction_id: int, amounts: dict[str, int]) -> None:
        """This signer inserted a counted transaction: keep the sums current without reading back.

        Only with amounts: a transaction that moved tokens was decided after ``current`` read
        every row up to it in the same locked transaction, so no unseen row lies below its id. A
        batch without token limits does not read, and must not step past rows it has not seen."""
        if amounts and self._kept is not None and transaction_id > self._kept.last_transaction_id:
            for mint, amount in amounts.items():
                self._kept.spent[mint] = self._kept.spent.get(mint, 0) + amount
            self._kept.last_transaction_id = transaction_id

    def forget(self) -> None:
        self._kept = None
