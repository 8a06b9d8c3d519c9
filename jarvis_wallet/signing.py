"""Check, record, sign: the one atomic step behind every signature.

For each request, inside one database transaction that holds the wallet's
lock (``BEGIN IMMEDIATE`` on SQLite; ``SELECT ... FOR UPDATE`` on the
wallet's limits row on PostgreSQL, in a transaction begun READ COMMITTED
whatever the server's default, so every read after the lock sees every
decision committed before it): refuse a request id seen before, return
the recorded signature for a message already signed (a retry after a lost
response counts once, whatever the limits are now, and gets a ``duplicate``
row of its own that names the signed one), read the limits and the spend of
the last 24 hours, take the policy decision, sign if allowed, and insert the
row (with every payment of the decision and the bytes decided, so that it can
be checked again later). Tokens the same way: the mint registry, the wallet's
per-mint limits and its per-mint 24-hour spend are read under the same lock,
and each decision's per-mint spend is inserted (token_spend) in the same
transaction as its row. A transaction above the wallet's approval threshold
is signed only with a grant the operator gave for its intent, consumed in
this same transaction; without one it is held as a pending request and
answered ``approval_required`` (approvals.py). The signature
is handed back only after the commit; if anything fails on the way, nothing
leaves (fail closed).

Requests that arrive together are decided one after another in the same
transaction and committed once: every decision still sees all the ones
before it (the limits and the 24-hour spend are read once per batch, then
kept current in memory), and one fsync serves the batch. Earlier signatures
of the batch's messages are looked up in one query and its rows inserted in
one statement, so a batch costs the same round trips whatever its size: on
PostgreSQL two (BEGIN, the lock and one read of everything; the inserts, under
ids taken in the read, and COMMIT), as prepared statements. SQLite keeps the
limits and configuration until ``PRAGMA data_version`` says another connection
committed. Request ids already used are refused before anything is decided;
on SQLite a used request id also inserts nothing (ON CONFLICT DO NOTHING), and
its signature is withheld; on PostgreSQL a request id that another wallet's
signer records in the same instant fails the batch closed.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import peewee

from . import approvals
from .amounts import MAX_LAMPORTS
from .b58 import b58decode, b58encode
from .db import close_database, describe, is_sqlite, open_database, translate_errors
from .errors import (
    AuthenticationFailed,
    DatabaseUnavailable,
    InvalidTransaction,
    JarvisWalletError,
    PolicyDenied,
    SignerUnavailable,
)
from .keys import Keypair
from .ledger import MAX_REASON_LENGTH
from .migrations import check_schema
from .models import MAX_U64, MODELS, message_key, naive_utc as _naive_utc, text_key, utc_now
from .policy import DEFAULT_PROGRAM_ALLOWLIST, Limits, TokenLimits, decide, format_lamports
from .spend_window import RollingSpend, RollingTokenSpend
from .solana import build_offchain_message, decode_pubkey, encode_pubkey, parse_transaction_input
from .solana.spend import Payment

# How long a decision may wait for another signer's lock before it is refused.
LOCK_TIMEOUT_SECONDS = 5
# How long PostgreSQL keeps a session of ours idle inside a transaction before ending it. Ours
# never pause there; a signer cut off mid-transaction (a partition) would otherwise leave its
# server session holding the wallet's lock until the server noticed, hours later, and every
# signer sharing the wallet would be refused meanwhile.
IDLE_IN_TRANSACTION_TIMEOUT_SECONDS = 5
# PostgreSQL: each statement after FOR UPDATE must see what the signer that held the lock before
# committed. READ COMMITTED does; REPEATABLE READ and SERIALIZABLE read the whole transaction from
# a snapshot taken before the lock was granted (stale totals: overspending, or serialization
# failures answered database_unavailable). Every decision transaction begins with it, so no
# database, role or server default, reconnect or pooler can change it, and each one checks it.
DECISION_ISOLATION_LEVEL = "read committed"
_ISOLATION_NOW = "current_setting('transaction_isolation')"
# Per session, on the server's side of a TCP connection: the server probes a silent signer
# from 5 s on and drops it after 3 unanswered probes 2 s apart, so a session orphaned by a
# partition frees its connection slot instead of waiting for the system default (2 hours).
_SESSION_SETTINGS = (
    f"SET lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'; "
    f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT_SECONDS}s'; "
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3"
)


@dataclass(frozen=True)
class Peer:
    """Who asked, from the socket's peer credentials."""

    uid: int | None = None
    pid: int | None = None


@dataclass(frozen=True)
class SignJob:
    """One request to decide: a transaction (``tx_bytes``) or an off-chain message (``text``)."""

    request_id: str
    tx_bytes: bytes | None = field(default=None, repr=False)
    text: str | None = None
    purpose: str | None = None
    peer: Peer = Peer()


@dataclass(frozen=True)
class SignOutcome:
    transaction_id: int
    wallet: str
    signature: bytes
    signed_bytes: bytes  # the full signed transaction, or the off-chain envelope that was signed
    lamports: int  # the spend counted against the limits, fee included
    fee_lamports: int
    duplicate: bool  # the same message was signed before; this is that recorded signature
    signed_at: datetime.datetime | None = None  # when the signature was recorded (the first time)
    # Per mint, in order of first movement: (mint base58, symbol, base units) counted against the
    # wallet's limits for that mint.
    tokens: tuple[tuple[str, str | None, int], ...] = ()
    approval_id: int | None = None  # the operator's grant this signature consumed (metrics count it)


@dataclass
class _Pending:
    """A decision taken inside the open transaction, released only after the commit."""

    outcome: SignOutcome | None = None
    error: JarvisWalletError | None = None


_COLUMNS = (
    "request_id", "wallet", "status", "purpose", "lamports", "fee_lamports", "destination_address",
    "message_sha256", "signature", "rejection_reason", "peer_uid", "peer_pid", "payments", "message_bytes",
    "kind", "message_text", "approval_id", "duplicate_of", "created_at", "updated_at",
)
# PostgreSQL takes at most 65,535 parameters per statement; 21 a row.
MAX_ROWS_PER_INSERT = 256
_TOKEN_COLUMNS = ("transaction_id", "wallet", "mint", "symbol", "amount_base_units", "created_at")
_CONFIG_KEYS = (
    "approval_ttl_seconds", "approval_max_pending", "allowed_programs", "allowed_destinations", "durable_nonce_accounts",
)
# PostgreSQL: the lock, alone in its statement, so that the read after it (a statement of its own
# at READ COMMITTED) sees every decision committed before the lock was granted. Sent as text, not
# prepared (its plan is trivial): pg_stat_activity then shows a waiting signer for what it is.
_POSTGRES_LOCK = "SELECT 1 FROM spend_limits WHERE wallet = %s FOR UPDATE OF spend_limits"


def _numbered(sql: str) -> str:
    """``%s`` placeholders as ``$1``, ``$2``, ... in order, for PREPARE."""
    parts = sql.split("%s")
    return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, 1))


class _Prepared:
    """The server-side prepared statements of one PostgreSQL session: each planned once, then
    run by name (planning was most of the server's work per batch)."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def execute(self, sql: str, params: Sequence) -> tuple[str, list]:
        """Text that prepares ``sql`` (the first time) and executes it, with its parameters.

        The name is taken before the server has it: a round trip that fails drops the session
        (SigningService._drop_connection) and with it this object."""
        name = self._names.get(sql)
        prefix = ""
        if name is None:
            name = self._names[sql] = f"jw_{len(self._names)}"
            prefix = f"PREPARE {name} AS {_numbered(sql)}; "
        return f"{prefix}EXECUTE {name}({', '.join(['%s'] * len(params))})" if params else f"{prefix}EXECUTE {name}", list(params)


class _Statements:
    """The hot path's SQL, written once for the backend's placeholder style.

    Raw statements, not the query builder: building SQL cost more than running it.
    """

    def __init__(self, db: peewee.Database) -> None:
        p = db.param
        postgres = not is_sqlite(db)
        # FOR UPDATE is the per-wallet lock on PostgreSQL, held to the commit. The allow-lists,
        # the mint registry, the wallet's per-mint limits (JSON arrays, u64 amounts exact) and the
        # transaction's isolation level come in the same round trip.
        json_rows = "json_agg(json_build_array({}))" if postgres else "json_group_array(json_array({}))"
        self.limits = (
            "SELECT per_tx_lamports, daily_lamports, approve_above_lamports, "
            "(SELECT value FROM wallet_config WHERE key = 'approval_ttl_seconds'), "
            "(SELECT value FROM wallet_config WHERE key = 'approval_max_pending'), "
            "(SELECT value FROM wallet_config WHERE key = 'allowed_programs'), "
            "(SELECT value FROM wallet_config WHERE key = 'allowed_destinations'), "
            "(SELECT value FROM wallet_config WHERE key = 'durable_nonce_accounts'), "
            f"(SELECT {json_rows.format('symbol, mint, program, decimals, extensions')} FROM token_mints), "
            f"(SELECT {json_rows.format('mint, per_tx_base_units, daily_base_units, approve_above_base_units')} FROM token_limits "
            f"WHERE token_limits.wallet = {p}), "
            + (_ISOLATION_NOW if postgres else "NULL")
            + f" FROM spend_limits WHERE wallet = {p}"
            + (" FOR UPDATE OF spend_limits" if postgres else "")
        )
        # What each earlier signature counted per mint, for a retry's answer.
        # (SQLite aggregates in index order: by id within the transaction.)
        spent = "json_agg(json_build_array(mint, symbol, amount_base_units) ORDER BY id)" if postgres else (
            "json_group_array(json_array(mint, symbol, amount_base_units))"
        )
        self.token_list = f"(SELECT {spent} FROM token_spend WHERE token_spend.transaction_id = wallet_transactions.id)"
        self._token_inserts = {}
        self._message_key = message_key(db)
        self._param = p
        self._earlier = {}
        self._used = {}
        self._inserts = {}
        self.postgres = postgres

    def used_request_ids(self, count: int) -> str:
        """Which of ``count`` request ids the audit trail already holds (any wallet, any signer)."""
        if count not in self._used:
            self._used[count] = (
                f"SELECT request_id FROM wallet_transactions WHERE request_id IN ({', '.join([self._param] * count)})"
            )
        return self._used[count]

    def earlier_signatures(self, count: int) -> str:
        """Signed rows of the wallet for any of ``count`` message hashes."""
        if count not in self._earlier:
            p = self._param
            self._earlier[count] = (
                f"SELECT message_sha256, id, signature, lamports, fee_lamports, created_at, {self.token_list} "
                "FROM wallet_transactions "
                f"WHERE {self._message_key} IN ({', '.join([p] * count)}) "
                # The key finds the rows, not the wallet's indexes (``|| ''`` names no index). SQLite
                # would put a hash compared as ``column = value`` into the key's expression
                # (constant propagation) and then scan: ``|| ''`` keeps it a comparison.
                f"AND message_sha256 || '' IN ({', '.join([p] * count)}) AND wallet || '' = {p} AND signature IS NOT NULL"
            )
        return self._earlier[count]

    def insert_many(self, count: int) -> str:
        """SQLite: insert ``count`` decisions; a request id already recorded inserts nothing."""
        if count not in self._inserts:
            row = "(" + ", ".join([self._param] * len(_COLUMNS)) + ")"
            self._inserts[count] = (
                f"INSERT INTO wallet_transactions ({', '.join(_COLUMNS)}) VALUES {', '.join([row] * count)} "
                "ON CONFLICT (request_id) DO NOTHING"
            )
        return self._inserts[count]

    def insert_with_ids(self, count: int) -> str:
        """PostgreSQL: insert ``count`` decisions under ids taken from the sequence beforehand.

        No ON CONFLICT: every request id was checked under the wallet's lock, so a conflict is a
        request id another wallet's signer recorded meanwhile, and the whole batch fails closed."""
        row = "(" + ", ".join(["%s"] * (len(_COLUMNS) + 1)) + ")"
        return f"INSERT INTO wallet_transactions (id, {', '.join(_COLUMNS)}) VALUES {', '.join([row] * count)}"

    def postgres_read(self, spend_columns: str, token_rows: str, sequence: str) -> str:
        """PostgreSQL: everything a batch decides on, in one statement run after the lock: the
        limits, allow-lists, mints and per-mint limits, the isolation level, the 24-hour spend
        (``spend_columns``) and per-mint spend (``token_rows``), the batch's earlier signatures
        (by message-hash key), its request ids already used, and one new id per request."""
        config = "(SELECT value FROM wallet_config WHERE key = '{}')"
        return (
            "SELECT (SELECT json_build_array(per_tx_lamports, daily_lamports, approve_above_lamports) "
            "FROM spend_limits WHERE wallet = %s), "
            + ", ".join(config.format(key) for key in _CONFIG_KEYS) + ", "
            "(SELECT json_agg(json_build_array(symbol, mint, program, decimals, extensions)) FROM token_mints), "
            "(SELECT json_agg(json_build_array(mint, per_tx_base_units, daily_base_units, approve_above_base_units)) "
            f"FROM token_limits WHERE token_limits.wallet = %s), {_ISOLATION_NOW}, {spend_columns}, "
            f"(SELECT json_agg(json_build_array(k, m, h, l, x)) FROM ({token_rows}) AS t(k, m, h, l, x)), "
            f"(SELECT json_agg(json_build_array(message_sha256, id, signature, lamports, fee_lamports, created_at, "
            f"{self.token_list})) FROM wallet_transactions WHERE {self._message_key} = ANY(%s::text[]) "
            "AND message_sha256 = ANY(%s::text[]) AND wallet || '' = %s AND signature IS NOT NULL), "
            "ARRAY(SELECT request_id FROM wallet_transactions WHERE request_id = ANY(%s::text[])), "
            f"ARRAY(SELECT nextval('{sequence}'::regclass) FROM generate_series(1, %s::int))"
        )

    def insert_token_spend(self, count: int) -> str:
        if count not in self._token_inserts:
            row = "(" + ", ".join([self._param] * len(_TOKEN_COLUMNS)) + ")"
            self._token_inserts[count] = (
                f"INSERT INTO token_spend ({', '.join(_TOKEN_COLUMNS)}) VALUES {', '.join([row] * count)}"
            )
        return self._token_inserts[count]


@dataclass
class _Row:
    """One decision waiting to be inserted, and where its result goes."""

    request_id: str
    digest: str
    values: tuple  # every column but created_at and updated_at
    slot: _Pending
    result: SignOutcome | JarvisWalletError
    # A re-sign of a message signed earlier in this batch: inserted once that row has its id.
    original: _Row | None = None
    # Per-mint spend of the decision, inserted beside the row: (mint, symbol, base units).
    tokens: tuple[tuple[str, str | None, int], ...] = ()


@dataclass(frozen=True)
class _Paid:
    """Whom a decision pays, as the audit row records it: the first destination (the older
    column) and every payment as JSON (``Payment.to_dict``, in instruction order)."""

    first_destination: str | None
    json: str

    @classmethod
    def of(cls, payments: Sequence[Payment]) -> _Paid:
        if not payments:
            return _PAYS_NOBODY
        first = next((p.destination for p in payments if p.destination is not None), None)
        return cls(
            encode_pubkey(first) if first is not None else None,
            json.dumps([p.to_dict() for p in payments], separators=(",", ":")),
        )


_PAYS_NOBODY = _Paid(None, "[]")


@dataclass
class _BatchState:
    """What every decision of one locked transaction shares: read once, kept current."""

    limits: Limits | None
    spent_24h: int
    program_allowlist: frozenset
    destination_allowlist: frozenset[bytes] | None
    durable_nonce_accounts: frozenset[bytes] = frozenset()
    approval_thresholds: approvals.ApprovalThresholds = approvals.ApprovalThresholds()
    approval_ttl_seconds: int = approvals.DEFAULT_APPROVAL_TTL_SECONDS
    approval_max_pending: int = approvals.DEFAULT_APPROVAL_MAX_PENDING
    token_registry: dict = field(default_factory=dict)  # mint bytes -> RegisteredMint
    token_limits: dict = field(default_factory=dict)  # mint bytes -> TokenLimits
    token_spent_24h: dict = field(default_factory=dict)  # mint bytes -> base units


@dataclass
class _Batch:
    """What one locked transaction decides: the shared state and the rows to insert."""

    state: _BatchState
    now: datetime.datetime
    earlier: dict = field(default_factory=dict)  # message hash -> (id, signature, lamports, fee, created_at)
    rows: list = field(default_factory=list)
    signed_here: dict = field(default_factory=dict)  # message hash -> _Row signed in this batch
    request_ids: set = field(default_factory=set)
    grants: approvals.GrantBook | None = None
    consumed: list = field(default_factory=list)  # (approval id, _Row that signed with it)

    def add(self, row: _Row) -> None:
        if isinstance(row.result, SignOutcome) and not row.result.duplicate:
            self.signed_here[row.digest] = row
        self.rows.append(row)


class SigningService:
    """Holds the key and the database connection; used from one thread (the signer's worker)."""

    def __init__(
        self,
        *,
        keypair: Keypair,
        database_url: str,
        clock: Callable[[], datetime.datetime] = utc_now,
    ) -> None:
        self._keypair = keypair
        self._wallet = keypair.public_key_base58
        self._database_url = database_url
        self._clock = clock
        self._db: peewee.Database | None = None
        self._sql: _Statements | None = None
        # What one connection has kept or been told (peewee keeps a connection per thread, so
        # this is per thread too): another thread's data_version, prepared statements or kept
        # sums are not this connection's.
        self._s = _Session()

    def connect(self) -> None:
        """Open the connection (in the calling thread) and check the schema, unless already open."""
        if self._db is None:
            self._db = open_database(self._database_url)
            self._sql = _Statements(self._db)
        elif not self._db.is_closed():
            return
        session = self._s
        if session.rolling_spend is None:
            session.rolling_spend = RollingSpend(self._db, self._wallet)
            session.rolling_token_spend = RollingTokenSpend(self._db, self._wallet)
        session.kept_state = None  # data_version is per connection
        with translate_errors(self._db):
            self._db.connect(reuse_if_open=True)
            if not is_sqlite(self._db):
                self._db.execute_sql(_SESSION_SETTINGS)
                self._check_isolation(self._db)
            with self._db.bind_ctx(MODELS):
                check_schema(self._db)
            if not is_sqlite(self._db):
                self._s.prepared = _Prepared()  # a new session has none
                (sequence,) = self._db.execute_sql("SELECT pg_get_serial_sequence('wallet_transactions', 'id')").fetchone()
                self._s.sequence = sequence.replace("'", "''")  # written into the read as a literal

    def _check_isolation(self, db) -> None:
        """Refuse from the start (and after each reconnect) what every decision would refuse."""
        with db.atomic(isolation_level=DECISION_ISOLATION_LEVEL.upper()):
            (level,) = db.execute_sql(f"SELECT {_ISOLATION_NOW}").fetchone()
        require_decision_isolation(db, level)

    def close(self) -> None:
        if self._db is not None:
            close_database(self._db)

    def sign(self, job: SignJob) -> SignOutcome:
        """Decide one request; raise its error if refused."""
        (result,) = self.sign_batch([job])
        if isinstance(result, JarvisWalletError):
            raise result
        return result

    def sign_batch(self, jobs: Sequence[SignJob]) -> list[SignOutcome | JarvisWalletError]:
        """Decide requests in order in one transaction; each result is an outcome or the error."""
        prepared = [self._prepare(job) for job in jobs]
        pending = [_Pending() for _ in jobs]
        try:
            self.connect()
            db = self._db
            with translate_errors(db), self._locked_transaction(db):
                now = self._clock()
                if self._sql.postgres:  # the lock and every read in one round trip
                    state, earlier, used = self._read_postgres(db, now, jobs, prepared)
                else:
                    state, earlier, used = (
                        self._read_state(db, now), self._earlier_signatures(db, prepared), self._used_request_ids(db, jobs),
                    )
                batch = _Batch(state=state, now=now, grants=approvals.GrantBook(db), earlier=earlier)
                # Replays are refused before anything is decided: a decision whose row would not
                # be inserted must not count its spend against the rest of the batch.
                batch.request_ids.update(used)
                for job, message, slot in zip(jobs, prepared, pending):
                    if isinstance(message, JarvisWalletError) and not isinstance(message, InvalidTransaction):
                        slot.error = message
                    elif job.request_id in batch.request_ids:  # used before, or earlier in this batch
                        slot.error = AuthenticationFailed(
                            f"request id {job.request_id} was used before", wire_code="replayed_request"
                        )
                    else:
                        batch.request_ids.add(job.request_id)
                        self._decide_one(job, message, slot, batch)
                self._insert_rows(db, batch)
                self._link_grants(batch)
        except JarvisWalletError as exc:
            self._drop_connection()
            failure = exc if isinstance(exc, DatabaseUnavailable) else DatabaseUnavailable(str(exc))
            return [failure for _ in jobs]
        except Exception as exc:  # noqa: BLE001 - fail closed on anything unexpected
            self._drop_connection()
            return [DatabaseUnavailable(f"database failed: {type(exc).__name__}") for _ in jobs]
        # Committed: only now may signatures leave.
        return [slot.outcome if slot.outcome is not None else slot.error for slot in pending]

    # -- inside the transaction -------------------------------------------------------------

    def _prepare(self, job: SignJob):
        """Parse outside the lock: (what to sign, parsed input or None) or the parse error."""
        try:
            if job.text is not None:
                return build_offchain_message(job.text), None
            if job.tx_bytes is None:
                raise InvalidTransaction("nothing to sign")
            parsed = parse_transaction_input(job.tx_bytes)
            return parsed.signing_bytes(), parsed
        except JarvisWalletError as exc:
            return exc

    def _read_state(self, db, now: datetime.datetime) -> _BatchState:
        """SQLite: the wallet's limits and configuration, read again only when another connection
        has committed since they were read (``PRAGMA data_version``, which this connection's own
        commits leave alone: the signer writes none of what it keeps). Asked inside the lock of
        BEGIN IMMEDIATE, so nothing can commit between the answer and the decision."""
        (version,) = db.execute_sql("PRAGMA data_version").fetchone()
        if self._s.kept_state is not None and self._s.kept_state[0] == version:
            row = self._s.kept_state[1]
        else:
            row = db.execute_sql(self._sql.limits, (self._wallet, self._wallet)).fetchone()
            self._s.kept_state = (version, row)
        if row is None:  # no limits: everything is refused, nothing else matters
            return _BatchState(None, 0, frozenset(), None)
        per_tx, daily, approve_above, ttl, max_pending, programs, destinations, nonce_accounts, mints, mint_limits, isolation = row
        if isolation is not None:
            require_decision_isolation(db, isolation)
        return self._state(
            (per_tx, daily, approve_above), (ttl, max_pending, programs, destinations, nonce_accounts), mints, mint_limits,
            spent=lambda: self._s.rolling_spend.current(now), spent_tokens=lambda: self._s.rolling_token_spend.current(now),
        )

    def _read_postgres(self, db, now: datetime.datetime, jobs: Sequence[SignJob], prepared) -> tuple:
        """Begin, take the wallet's lock and read everything the batch decides on: one round trip.

        Two statements after BEGIN: the lock (FOR UPDATE on the limits row), then one read,
        which at READ COMMITTED takes its snapshot after the lock was granted. Returns the batch
        state, the earlier signatures by message hash and the request ids already used; keeps one
        new row id per request for the inserts."""
        wallet = self._wallet
        spend_columns, spend_params = self._s.rolling_spend.query(now)
        token_rows, token_params = self._s.rolling_token_spend.query(now)
        digests = sorted(
            {hashlib.sha256(item[0]).hexdigest() for item in prepared if not isinstance(item, JarvisWalletError)}
        )
        read = self._sql.postgres_read(spend_columns, token_rows, self._s.sequence)
        params = (
            wallet, wallet, *spend_params, *token_params, [text_key(digest) for digest in digests], digests, wallet,
            sorted({job.request_id for job in jobs}), len(jobs),
        )
        read_sql, read_params = self._s.prepared.execute(read, params)
        row = db.execute_sql(
            f"BEGIN ISOLATION LEVEL {DECISION_ISOLATION_LEVEL.upper()}; {_POSTGRES_LOCK}; {read_sql}", [wallet, *read_params]
        ).fetchone()
        limits, ttl, max_pending, programs, destinations, nonce_accounts, mints, mint_limits, isolation = row[:9]
        spend_values, (token_values, earlier, used, new_ids) = row[9:-4], row[-4:]
        require_decision_isolation(db, isolation)
        self._s.new_ids = list(new_ids)
        spent = self._s.rolling_spend.apply(now, spend_values)
        spent_tokens = self._s.rolling_token_spend.apply(now, token_values or [])
        state = _BatchState(None, 0, frozenset(), None) if limits is None else self._state(
            limits, (ttl, max_pending, programs, destinations, nonce_accounts), mints, mint_limits,
            spent=lambda: spent, spent_tokens=lambda: spent_tokens,
        )
        return state, {row[0]: tuple(row[1:]) for row in earlier or ()}, set(used)

    def _state(self, limits, config, mints, mint_limits, *, spent, spent_tokens) -> _BatchState:
        """The batch state from what was read; ``spent`` and ``spent_tokens`` give the 24-hour
        spend (the per-mint one is asked for only when the wallet has per-mint limits)."""
        per_tx, daily, approve_above = limits
        ttl, max_pending, programs, destinations, nonce_accounts = config
        registry, token_limits, approve_above_mint = _token_state(mints, mint_limits)
        spent_tokens = spent_tokens() if token_limits else {}
        return _BatchState(
            limits=Limits(int(per_tx), int(daily)),
            approval_thresholds=approvals.ApprovalThresholds(
                None if approve_above is None else int(approve_above), approve_above_mint,
            ),
            approval_ttl_seconds=approvals.approval_ttl_seconds(ttl),
            approval_max_pending=approvals.approval_max_pending(max_pending),
            spent_24h=spent(),
            program_allowlist=_allowlist_bytes(programs, DEFAULT_PROGRAM_ALLOWLIST),
            destination_allowlist=None if destinations is None else _allowlist_bytes(destinations),
            durable_nonce_accounts=_allowlist_bytes(nonce_accounts),
            token_registry=registry,
            token_limits=token_limits,
            token_spent_24h={_mint_bytes(mint): amount for mint, amount in spent_tokens.items()},
        )

    def _used_request_ids(self, db, jobs: Sequence[SignJob]) -> set[str]:
        ids = sorted({job.request_id for job in jobs})
        return {row[0] for row in db.execute_sql(self._sql.used_request_ids(len(ids)), ids).fetchall()}

    def _earlier_signatures(self, db, prepared) -> dict[str, tuple]:
        """Rows already signed for any message of the batch, by message hash: one query."""
        digests = sorted(
            {hashlib.sha256(item[0]).hexdigest() for item in prepared if not isinstance(item, JarvisWalletError)}
        )
        if not digests:
            return {}
        params = (*[text_key(digest) for digest in digests], *digests, self._wallet)
        rows = db.execute_sql(self._sql.earlier_signatures(len(digests)), params).fetchall()
        return {row[0]: row[1:] for row in rows}

    def _decide_one(self, job: SignJob, prepared, slot: _Pending, batch: _Batch) -> None:
        if isinstance(prepared, InvalidTransaction):  # recorded as it arrived; whom it pays is unknown
            raw = job.tx_bytes if job.tx_bytes is not None else (job.text or "").encode("utf-8", "replace")
            batch.add(self._row(
                job, slot, prepared, digest=hashlib.sha256(raw).hexdigest(), message=raw, reason="invalid_tx",
            ))
            return
        signing_bytes, parsed = prepared
        digest = hashlib.sha256(signing_bytes).hexdigest()
        if digest in batch.earlier or digest in batch.signed_here:
            self._answer_retry(job, slot, batch, digest, signing_bytes, parsed)
            return
        if parsed is None:  # an off-chain message moves nothing, but the wallet must be governed
            self._decide_offchain(job, signing_bytes, digest, slot, batch)
            return
        state = batch.state
        try:
            decision = decide(
                message=parsed,
                wallet=self._keypair.public_key,
                limits=state.limits,
                spent_24h_lamports=state.spent_24h,
                program_allowlist=state.program_allowlist,
                destination_allowlist=state.destination_allowlist,
                durable_nonce_accounts=state.durable_nonce_accounts,
                token_registry=state.token_registry,
                token_limits=state.token_limits,
                token_spent_24h=state.token_spent_24h,
            )
        except InvalidTransaction as exc:  # instruction data that does not decode: this request only
            batch.add(self._row(job, slot, exc, digest=digest, message=signing_bytes, reason="invalid_tx"))
            return
        spend = decision.spend
        paid = _Paid.of(spend.payments)
        per_mint = spend.tokens.per_mint
        tokens = tuple(
            (encode_pubkey(mint), state.token_registry[mint].symbol, min(amount, MAX_U64)) for mint, amount in per_mint.items()
        )
        if not decision.allowed:
            error = PolicyDenied(decision.message, reason=decision.reason)
            row = self._row(
                job, slot, error, digest=digest, message=signing_bytes, reason=decision.reason,
                lamports=spend.spend_lamports, fee=spend.wallet_fee_lamports, paid=paid,
            )
            batch.add(replace(row, tokens=tokens))
            return
        approval_id = None
        reasons = approvals.approval_reasons(state.approval_thresholds, spend_lamports=spend.spend_lamports, token_spend=per_mint)
        if reasons:
            grant = self._use_grant(job, parsed, spend, signing_bytes, digest, slot, batch, paid, tokens, reasons)
            if grant is None:  # held or refused: recorded, nothing signed
                return
            approval_id = grant.id
            # The signed row says what the operator approved, not what the re-sign claims.
            job = replace(job, purpose=_approved_purpose(grant.purpose, job.purpose))
        signature = self._keypair.sign(signing_bytes)
        outcome = SignOutcome(
            transaction_id=0,
            wallet=self._wallet,
            signature=signature,
            signed_bytes=parsed.with_signature(self._keypair.public_key, signature),
            lamports=spend.spend_lamports,
            fee_lamports=spend.wallet_fee_lamports,
            duplicate=False,
            signed_at=batch.now,
            tokens=tokens,
            approval_id=approval_id,
        )
        # Counted now, so the next decision of the batch sees it.
        state.spent_24h += spend.spend_lamports
        for mint, amount in per_mint.items():
            state.token_spent_24h[mint] = state.token_spent_24h.get(mint, 0) + amount
        row = replace(
            self._row(job, slot, outcome, digest=digest, message=signing_bytes, paid=paid, approval_id=approval_id),
            tokens=tokens,
        )
        batch.add(row)
        if approval_id is not None:
            batch.consumed.append((approval_id, row))

    def _use_grant(
        self, job, parsed, spend, signing_bytes, digest, slot, batch: _Batch, paid: _Paid, tokens: tuple, reasons: list,
    ) -> approvals.ApprovalRow | None:
        """Above the approval threshold: consume the operator's grant for this intent and return
        it, or record why not (held as a pending request, or the grant refused) and return None.

        Runs after the policy allowed the transaction: the limits are checked as they are now,
        whatever they were when the request was approved.
        """
        grants, now = batch.grants, batch.now
        intent = approvals.intent_digest(parsed.message, durable_nonce=spend.uses_durable_nonce)
        latest = grants.latest(self._wallet, intent)
        verdict = approvals.judge(latest, now)
        if verdict == approvals.USE and grants.consume(latest.id, now):
            return latest
        if verdict == approvals.EXPIRED:
            grants.mark_expired(latest.id, latest.status)
            error = approvals.ApprovalRefused(
                f"approval request {latest.id} for this payment expired at {approvals.iso(latest.expires_at)}; "
                "send it again to open a new request", reason=approvals.APPROVAL_EXPIRED, approval_id=latest.id,
            )
        elif verdict == approvals.DENIED:
            why = f": {latest.decision_note}" if latest.decision_note else ""
            error = approvals.ApprovalRefused(
                f"the operator denied approval request {latest.id} for this payment{why}",
                reason=approvals.APPROVAL_DENIED, approval_id=latest.id,
            )
        elif verdict == approvals.CONSUMED:
            error = approvals.ApprovalRefused(
                f"approval request {latest.id} was already used for one signature (transaction "
                f"{latest.signed_transaction_id or 'signed just now'}); each approval signs once: "
                "a new payment needs a new approval", reason=approvals.APPROVAL_CONSUMED, approval_id=latest.id,
            )
        elif verdict != approvals.WAIT and grants.pending_count(self._wallet, now) >= batch.state.approval_max_pending:
            # Under the wallet's lock, so concurrent requests cannot all slip under the cap.
            error = approvals.ApprovalRefused(
                f"wallet {self._wallet} already has {batch.state.approval_max_pending} approval requests waiting for "
                "the operator (approval_max_pending); this one was not held: send it again once some are decided "
                "or expired", reason=approvals.TOO_MANY_PENDING, approval_id=None,
            )
        else:  # open a request, or answer with the one still pending
            new = verdict == approvals.OPEN
            payments = [p.to_dict() for p in spend.payments]
            if new:
                expires_at = now + datetime.timedelta(seconds=batch.state.approval_ttl_seconds)
                approval_id = grants.open((
                    self._wallet, intent, "pending", job.request_id, job.purpose, min(spend.spend_lamports, MAX_LAMPORTS),
                    min(spend.wallet_fee_lamports, MAX_LAMPORTS), paid.json, signing_bytes, job.peer.uid, job.peer.pid,
                    now, expires_at,
                ))
            else:
                approval_id, expires_at = latest.id, latest.expires_at
            error = approvals.ApprovalRequired(
                f"this transaction {'; it '.join(reasons)}: approval request {approval_id} waits for "
                f"the operator (`jarvis-wallet approvals approve {approval_id}`) until {approvals.iso(expires_at)}; then "
                "send the same transaction again, with a fresh blockhash if this one has expired",
                approval_id=approval_id, expires_at=approvals.iso(expires_at), new=new,
                details={
                    "lamports": spend.spend_lamports, "fee_lamports": spend.wallet_fee_lamports,
                    "payments": payments, "purpose": job.purpose,
                },
            )
        batch.add(replace(self._row(
            job, slot, error, digest=digest, message=signing_bytes, reason=error.reason,
            lamports=spend.spend_lamports, fee=spend.wallet_fee_lamports, paid=paid, approval_id=error.approval_id,
        ), tokens=tokens))
        return None

    def _link_grants(self, batch: _Batch) -> None:
        """Name each consumed grant's signed row; a grant whose row was not inserted is given back."""
        for approval_id, row in batch.consumed:
            if row.slot.outcome is not None:
                batch.grants.link_signature(approval_id, row.slot.outcome.transaction_id)
            else:
                batch.grants.unconsume(approval_id)

    def _answer_retry(self, job, slot: _Pending, batch: _Batch, digest: str, signing_bytes, parsed) -> None:
        """The message was signed before: the recorded signature, released again, counted once.

        Neither the limits nor their absence are checked again: a signature already released
        releases nothing new, and re-checking would break a retry after a lost answer. The
        request gets its own row (status 'duplicate', nothing counted) naming the signed one.
        A used request id never gets here: the batch refuses those before deciding.
        """
        if digest in batch.earlier:
            outcome = self._outcome_from_row(batch.earlier[digest], signing_bytes, parsed)
            batch.add(self._row(job, slot, outcome, digest=digest))
        else:  # signed earlier in this very batch: inserted once that row has its id
            original = batch.signed_here[digest]
            placeholder = replace(original.result, duplicate=True)  # duplicate_of is filled in then
            batch.add(replace(self._row(job, slot, placeholder, digest=digest), original=original))

    def _decide_offchain(self, job, envelope: bytes, digest: str, slot: _Pending, batch: _Batch) -> None:
        if batch.state.limits is None:
            message = (
                f"wallet {self._wallet} has no spend limits; set them with "
                f"`jarvis-wallet limits set --wallet {self._wallet} --per-tx AMOUNT --daily AMOUNT`"
            )
            batch.add(self._row(
                job, slot, PolicyDenied(message, reason="no_limits"), digest=digest, message=envelope,
                reason="no_limits", paid=_PAYS_NOBODY,
            ))
            return
        signature = self._keypair.sign(envelope)
        outcome = SignOutcome(0, self._wallet, signature, envelope, 0, 0, duplicate=False, signed_at=batch.now)
        batch.add(self._row(job, slot, outcome, digest=digest, message=envelope, paid=_PAYS_NOBODY))

    def _row(
        self, job: SignJob, slot: _Pending, result, *, digest: str, message: bytes | None = None, reason: str | None = None,
        lamports: int = 0, fee: int = 0, paid: _Paid | None = None, approval_id: int | None = None,
    ) -> _Row:
        """The audit row of one decision, to be inserted with the rest of the batch.

        ``message`` is what ``digest`` hashes (None on a re-sign row); ``paid`` is None when the
        bytes could not be read. A re-sign (a duplicate outcome) records who asked and why, and
        nothing else: no signature, amounts, payments or bytes (the signed row holds them), and
        the signed row's id.
        """
        signed = isinstance(result, SignOutcome)
        duplicate = signed and result.duplicate
        if signed and not duplicate:
            lamports, fee = result.lamports, result.fee_lamports
        # A refused request may claim more than a 64-bit column holds; record the most it can.
        lamports, fee = min(lamports, MAX_LAMPORTS), min(fee, MAX_LAMPORTS)
        status = ("duplicate" if duplicate else "signed") if signed else "rejected"
        values = (
            job.request_id, self._wallet, status, job.purpose,
            lamports, fee, paid.first_destination if paid else None, digest,
            b58encode(result.signature) if signed and not duplicate else None,
            None if signed else f"{reason}: {result.message}"[:MAX_REASON_LENGTH],
            job.peer.uid, job.peer.pid, paid.json if paid else None, message,
            "transaction" if job.text is None else "message", job.text, approval_id,
            result.transaction_id if duplicate else None,  # last: filled in later for a same-batch re-sign
        )
        return _Row(job.request_id, digest, values, slot, result)

    def _insert_rows(self, db, batch: _Batch) -> None:
        """Insert every row of the batch, then give each slot its result.

        A request id already recorded inserts nothing (ON CONFLICT DO NOTHING): that request
        is a replay, and whatever it decided is withheld.
        """
        first = [row for row in batch.rows if row.original is None]
        ids = self._insert(db, first, batch.now)
        self._insert_token_spend(db, first, ids, batch.now)
        self._release(first, ids)
        # Re-signs of messages signed in this batch, now that those rows have their ids.
        later = []
        for row in batch.rows:
            if row.original is None:
                continue
            signed = row.original.slot.outcome
            if signed is None:  # that row was not inserted (its request id was used before)
                row.slot.error = SignerUnavailable(
                    "the signer could not record this request; send it again", wire_code="busy"
                )
                continue
            row.result = replace(signed, duplicate=True)
            row.values = (*row.values[:-1], signed.transaction_id)
            later.append(row)
        self._release(later, self._insert(db, later, batch.now))

    def _insert(self, db, rows: list[_Row], now: datetime.datetime) -> dict[str, int]:
        """Insert rows; the ids of those inserted, by request id (a used request id inserts nothing)."""
        ids: dict[str, int] = {}
        if self._sql.postgres:  # sent with the COMMIT, under the ids taken with the lock
            for start in range(0, len(rows), MAX_ROWS_PER_INSERT):
                chunk = rows[start:start + MAX_ROWS_PER_INSERT]
                params = []
                for row in chunk:
                    ids[row.request_id] = row_id = self._s.new_ids.pop(0)
                    params += (row_id, *row.values, now, now)
                self._s.writes.append(self._s.prepared.execute(self._sql.insert_with_ids(len(chunk)), params))
        else:
            for row in rows:  # in-process: a statement per row costs nothing on the wire
                cursor = db.execute_sql(self._sql.insert_many(1), (*row.values, now, now))
                if cursor.rowcount == 1:
                    ids[row.request_id] = cursor.lastrowid
        return ids

    def _insert_token_spend(self, db, rows: list[_Row], ids: dict[str, int], now: datetime.datetime) -> None:
        """Each inserted decision's per-mint spend, created_at equal to its row's: one statement
        on PostgreSQL (chunked), one per row in-process on SQLite."""
        values = [
            (ids[row.request_id], self._wallet, mint, symbol, amount, now)
            for row in rows if row.tokens and row.request_id in ids
            for mint, symbol, amount in row.tokens
        ]
        if not values:
            return
        if self._sql.postgres:
            for start in range(0, len(values), MAX_ROWS_PER_INSERT):
                chunk = values[start:start + MAX_ROWS_PER_INSERT]
                self._s.writes.append(
                    self._s.prepared.execute(self._sql.insert_token_spend(len(chunk)), [v for row in chunk for v in row])
                )
        else:
            statement = self._sql.insert_token_spend(1)
            for row in values:
                db.execute_sql(statement, (*row[:4], f"{row[4]:020d}", row[5]))

    def _release(self, rows: list[_Row], ids: dict[str, int]) -> None:
        """Give each inserted row's slot its result; a row not inserted was a replay."""
        for row in rows:
            row_id = ids.get(row.request_id)
            if row_id is None:
                row.slot.error = AuthenticationFailed(
                    f"request id {row.request_id} was used before", wire_code="replayed_request"
                )
            elif not isinstance(row.result, SignOutcome):
                row.slot.error = row.result
            elif row.result.duplicate:
                row.slot.outcome = row.result  # the signed row's id and time, not this row's
            else:
                row.slot.outcome = replace(row.result, transaction_id=row_id)
                self._s.rolling_spend.recorded(row_id, row.result.lamports)
                self._s.rolling_token_spend.recorded(row_id, {mint: amount for mint, _, amount in row.tokens})

    def _outcome_from_row(self, row, signing_bytes: bytes, parsed) -> SignOutcome:
        row_id, signature_text, lamports, fee, created_at, token_list = row
        signature = b58decode(signature_text)
        signed = parsed.with_signature(self._keypair.public_key, signature) if parsed is not None else signing_bytes
        return SignOutcome(
            row_id, self._wallet, signature, signed, int(lamports), int(fee), duplicate=True,
            signed_at=_naive_utc(created_at), tokens=_token_list(token_list),
        )

    @contextlib.contextmanager
    def _locked_transaction(self, db):
        if is_sqlite(db):
            # IMMEDIATE takes the write lock at BEGIN: no other signer can decide in between.
            with db.atomic("IMMEDIATE"):
                yield
        else:
            # BEGIN goes with the lock and the read (_read_postgres), the inserts with the COMMIT:
            # two round trips. Marked open for peewee, so that a nested atomic() is a savepoint.
            self._s.writes = []
            db.push_transaction(_OURS)
            try:
                yield
                statements = [sql for sql, _ in self._s.writes]
                params = [value for _, values in self._s.writes for value in values]
                db.execute_sql("; ".join([*statements, "COMMIT"]), params)
            except BaseException:
                with contextlib.suppress(Exception):
                    db.execute_sql("ROLLBACK")
                raise
            finally:
                self._s.writes = []
                db.pop_transaction()

    def _drop_connection(self) -> None:
        # A broken connection is not reused: the next request reconnects, and recounts.
        if self._db is not None:
            close_database(self._db)
        if self._s.rolling_spend is not None:
            self._s.rolling_spend.forget()
        if self._s.rolling_token_spend is not None:
            self._s.rolling_token_spend.forget()
        self._s.kept_state = None


_OURS = object()  # a transaction begun and committed by _locked_transaction itself


class _Session(threading.local):
    """SigningService's state of one connection, kept per thread as peewee keeps connections.

    PostgreSQL: the session's prepared statements, the audit trail's id sequence, the ids taken
    for the batch being decided, and its writes, sent with the COMMIT. SQLite: (data_version,
    the limits row) as last read on this connection (_read_state). Both backends: the kept
    24-hour sums, which ``query`` builds before the lock and ``apply`` brings to the read."""

    def __init__(self) -> None:
        self.prepared = _Prepared()
        self.kept_state: tuple | None = None
        self.sequence: str | None = None
        self.new_ids: list[int] = []
        self.writes: list[tuple[str, list]] = []
        self.rolling_spend: RollingSpend | None = None
        self.rolling_token_spend: RollingTokenSpend | None = None


def require_decision_isolation(db: peewee.Database, level: str) -> None:
    """Refuse to decide in a transaction that is not READ COMMITTED (a server that ignored the
    level asked for at BEGIN): its reads could miss decisions committed before the lock."""
    if level != DECISION_ISOLATION_LEVEL:
        raise DatabaseUnavailable(
            f"database {describe(db)} ran a decision at transaction_isolation {level!r}; the signer "
            f"needs {DECISION_ISOLATION_LEVEL!r} to see every decision committed before it took the "
            "wallet's lock, and signs nothing until the server honours it"
        )


@functools.lru_cache(maxsize=64)
def _allowlist_bytes(value: str | None, base: frozenset = frozenset()) -> frozenset[bytes]:
    """Comma-separated base58 keys (plus ``base``) as raw keys, decoded once per distinct value."""
    keys = set(base) | {part for part in (value or "").split(",") if part}
    return frozenset(decode_pubkey(key, what="allow-listed key") for key in keys)


@functools.lru_cache(maxsize=256)
def _mint_bytes(mint: str) -> bytes:
    return decode_pubkey(mint, what="mint")


@functools.lru_cache(maxsize=256)
def _registered_mint(symbol: str, mint: str, program: str, decimals: int, extensions: str | None):
    """A registry row as the policy takes it, built once per distinct row."""
    from .solana.token_spend import RegisteredMint
    from .tokens import PROGRAMS

    return RegisteredMint(
        symbol, _mint_bytes(mint), PROGRAMS[program], decimals, None if extensions is None else tuple(json.loads(extensions))
    )


def _json_rows(value) -> list:
    """A JSON aggregate as the driver hands it: parsed (PostgreSQL's json), text (SQLite) or NULL."""
    if value is None:
        return []
    return json.loads(value) if isinstance(value, str) else value


def _token_state(mints, mint_limits) -> tuple[dict, dict]:
    """The mint registry and the wallet's per-mint limits, keyed by mint bytes."""
    registry = {}
    for symbol, mint, program, decimals, extensions in _json_rows(mints):
        entry = _registered_mint(symbol, mint, program, int(decimals), extensions)
        registry[entry.mint] = entry
    rows = _json_rows(mint_limits)
    limits = {_mint_bytes(mint): TokenLimits(int(per_tx), int(daily)) for mint, per_tx, daily, _ in rows}
    # Per-mint approval thresholds (u64: text on SQLite, numeric on PostgreSQL; int() takes both).
    thresholds = {_mint_bytes(mint): int(above) for mint, _, _, above in rows if above is not None}
    return registry, limits, thresholds


def _token_list(value) -> tuple[tuple[str, str | None, int], ...]:
    """An earlier signature's per-mint spend, as the earlier-signatures query aggregates it."""
    return tuple((mint, symbol, int(amount)) for mint, symbol, amount in _json_rows(value))



def _approved_purpose(approved: str | None, resign: str | None) -> str | None:
    """The signed row's purpose: the approved request's, with the re-sign's own kept after it
    when it says something else (the audit keeps both; the operator saw the first)."""
    if not resign or resign == approved:
        return approved
    return f"{approved or ''} (re-sign: {resign})".lstrip()
