"""Check, record, sign: the one atomic step behind every signature.

For each request, inside one database transaction that holds the wallet's
lock (``BEGIN IMMEDIATE`` on SQLite; ``SELECT ... FOR UPDATE`` on the
wallet's limits row on PostgreSQL): refuse a request id seen before, return
the recorded signature for a message already signed (a retry after a lost
response counts once), read the limits and the spend of the last 24 hours,
take the policy decision, sign if allowed, and insert the row. The signature
is handed back only after the commit; if anything fails on the way, nothing
leaves (fail closed).

Requests that arrive together are decided one after another in the same
transaction and committed once: every decision still sees all the ones
before it (the limits and the 24-hour spend are read once per batch, then
kept current in memory), and one fsync serves the batch. A failing insert
cannot spoil the batch: a used request id inserts nothing (ON CONFLICT DO
NOTHING), which is how a replay is detected.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import base58
import peewee

from .amounts import MAX_LAMPORTS
from .db import close_database, is_sqlite, open_database, translate_errors
from .errors import (
    AuthenticationFailed,
    DatabaseUnavailable,
    InvalidTransaction,
    JarvisWalletError,
    PolicyDenied,
)
from .keys import Keypair
from .ledger import MAX_REASON_LENGTH
from .migrations import check_schema
from .models import MODELS, utc_now
from .policy import DEFAULT_PROGRAM_ALLOWLIST, Limits, decide
from .spend_window import RollingSpend
from .solana import build_offchain_message, decode_pubkey, encode_pubkey, parse_transaction_input

# How long a decision may wait for another signer's lock before it is refused.
LOCK_TIMEOUT_SECONDS = 5


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


@dataclass
class _Pending:
    """A decision taken inside the open transaction, released only after the commit."""

    outcome: SignOutcome | None = None
    error: JarvisWalletError | None = None


class _Statements:
    """The hot path's SQL, written once for the backend's placeholder style.

    Raw statements, not the query builder: building SQL cost more than running it.
    """

    def __init__(self, db: peewee.Database) -> None:
        p = db.param
        postgres = not is_sqlite(db)
        self.earlier_signature = (
            "SELECT id, signature, lamports, fee_lamports FROM wallet_transactions "
            f"WHERE wallet = {p} AND message_sha256 = {p} AND signature IS NOT NULL LIMIT 1"
        )
        # FOR UPDATE is the per-wallet lock on PostgreSQL, held to the commit. The allow-lists
        # come in the same round trip.
        self.limits = (
            "SELECT per_tx_lamports, daily_lamports, "
            "(SELECT value FROM wallet_config WHERE key = 'allowed_programs'), "
            "(SELECT value FROM wallet_config WHERE key = 'allowed_destinations') "
            f"FROM spend_limits WHERE wallet = {p}"
            + (" FOR UPDATE OF spend_limits" if postgres else "")
        )
        columns = (
            "request_id, wallet, status, purpose, lamports, fee_lamports, destination_address, "
            "message_sha256, signature, rejection_reason, peer_uid, peer_pid, created_at, updated_at"
        )
        # A request id already recorded inserts nothing: that is how a replay is detected.
        self.insert = (
            f"INSERT INTO wallet_transactions ({columns}) VALUES ({', '.join([p] * 14)}) "
            "ON CONFLICT (request_id) DO NOTHING"
            + (" RETURNING id" if postgres else "")
        )
        self.request_id_used = f"SELECT 1 FROM wallet_transactions WHERE request_id = {p}"
        self.postgres = postgres


@dataclass
class _BatchState:
    """What every decision of one locked transaction shares: read once, kept current."""

    limits: Limits | None
    spent_24h: int
    program_allowlist: frozenset
    destination_allowlist: frozenset[bytes] | None


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
        self._rolling_spend: RollingSpend | None = None

    @property
    def wallet(self) -> str:
        return self._wallet

    def connect(self) -> None:
        """Open the connection (in the calling thread) and check the schema, unless already open."""
        if self._db is None:
            self._db = open_database(self._database_url)
            self._sql = _Statements(self._db)
            self._rolling_spend = RollingSpend(self._db, self._wallet)
        elif not self._db.is_closed():
            return
        with translate_errors(self._db):
            self._db.connect(reuse_if_open=True)
            if not is_sqlite(self._db):
                # Waiting longer than this for another signer's lock refuses the request.
                self._db.execute_sql(f"SET lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")
            with self._db.bind_ctx(MODELS):
                check_schema(self._db)

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
                state = self._read_state(db, now)
                for job, message, slot in zip(jobs, prepared, pending):
                    if isinstance(message, JarvisWalletError) and not isinstance(message, InvalidTransaction):
                        slot.error = message
                        continue
                    self._decide_one(db, job, message, slot, state, now)
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
        sql = self._sql
        row = db.execute_sql(sql.limits, (self._wallet,)).fetchone()
        if row is None:  # no limits: everything is refused, nothing else matters
            return _BatchState(None, 0, frozenset(), None)
        per_tx, daily, programs, destinations = row
        return _BatchState(
            limits=Limits(int(per_tx), int(daily)),
            spent_24h=self._rolling_spend.current(now),
            program_allowlist=_allowlist_bytes(programs, DEFAULT_PROGRAM_ALLOWLIST),
            destination_allowlist=None if destinations is None else _allowlist_bytes(destinations),
        )

    def _decide_one(self, db, job: SignJob, prepared, slot: _Pending, state: _BatchState, now) -> None:
        if isinstance(prepared, InvalidTransaction):
            raw = job.tx_bytes if job.tx_bytes is not None else (job.text or "").encode("utf-8", "replace")
            digest = hashlib.sha256(raw).hexdigest()
            self._record(db, job, slot, prepared, digest=digest, reason="invalid_tx", now=now)
            return
        signing_bytes, parsed = prepared
        digest = hashlib.sha256(signing_bytes).hexdigest()
        earlier = db.execute_sql(self._sql.earlier_signature, (self._wallet, digest)).fetchone()
        if earlier is not None:  # a retry: the recorded signature, counted once
            # Only here can a used request id get past the insert's ON CONFLICT check.
            if db.execute_sql(self._sql.request_id_used, (job.request_id,)).fetchone() is not None:
                slot.error = AuthenticationFailed(
                    f"request id {job.request_id} was used before", wire_code="replayed_request"
                )
                return
            slot.outcome = self._outcome_from_row(earlier, signing_bytes, parsed)
            return
        if parsed is None:  # an off-chain message moves nothing, but the wallet must be governed
            self._decide_offchain(db, job, signing_bytes, digest, slot, state, now)
            return
        try:
            decision = decide(
                message=parsed,
                wallet=self._keypair.public_key,
                limits=state.limits,
                spent_24h_lamports=state.spent_24h,
                program_allowlist=state.program_allowlist,
                destination_allowlist=state.destination_allowlist,
            )
        except InvalidTransaction as exc:  # instruction data that does not decode: this request only
            self._record(db, job, slot, exc, digest=digest, reason="invalid_tx", now=now)
            return
        spend = decision.spend
        destination = next((p.destination for p in spend.payments if p.destination is not None), None)
        destination_text = encode_pubkey(destination) if destination else None
        if not decision.allowed:
            error = PolicyDenied(decision.message, reason=decision.reason)
            self._record(
                db, job, slot, error, digest=digest, reason=decision.reason, now=now,
                lamports=spend.spend_lamports, fee=spend.wallet_fee_lamports, destination=destination_text,
            )
            return
        signature = self._keypair.sign(signing_bytes)
        outcome = SignOutcome(
            transaction_id=0,
            wallet=self._wallet,
            signature=signature,
            signed_bytes=parsed.with_signature(self._keypair.public_key, signature),
            lamports=spend.spend_lamports,
            fee_lamports=spend.wallet_fee_lamports,
            duplicate=False,
        )
        if self._record(db, job, slot, outcome, digest=digest, now=now, destination=destination_text):
            state.spent_24h += spend.spend_lamports
            self._rolling_spend.recorded(slot.outcome.transaction_id, spend.spend_lamports)

    def _decide_offchain(self, db, job, envelope: bytes, digest: str, slot: _Pending, state: _BatchState, now) -> None:
        if state.limits is None:
            message = (
                f"wallet {self._wallet} has no spend limits; set them with "
                f"`jarvis-wallet limits set --wallet {self._wallet} --per-tx AMOUNT --daily AMOUNT`"
            )
            self._record(db, job, slot, PolicyDenied(message, reason="no_limits"), digest=digest, reason="no_limits", now=now)
            return
        signature = self._keypair.sign(envelope)
        outcome = SignOutcome(0, self._wallet, signature, envelope, 0, 0, duplicate=False)
        self._record(db, job, slot, outcome, digest=digest, now=now)

    def _record(
        self, db, job: SignJob, slot: _Pending, result, *, digest: str, now, reason: str | None = None,
        lamports: int = 0, fee: int = 0, destination: str | None = None,
    ) -> bool:
        """Insert the decision's row; put the result in the slot. False if the request id was used."""
        signed = isinstance(result, SignOutcome)
        if signed:
            lamports, fee = result.lamports, result.fee_lamports
        # A refused request may claim more than a 64-bit column holds; record the most it can.
        lamports, fee = min(lamports, MAX_LAMPORTS), min(fee, MAX_LAMPORTS)
        params = (
            job.request_id, self._wallet, "signed" if signed else "rejected", job.purpose,
            lamports, fee, destination, digest,
            _base58(result.signature) if signed else None,
            None if signed else f"{reason}: {result.message}"[:MAX_REASON_LENGTH],
            job.peer.uid, job.peer.pid, now, now,
        )
        cursor = db.execute_sql(self._sql.insert, params)
        if self._sql.postgres:
            inserted = cursor.fetchone()
            row_id = inserted[0] if inserted else None
        else:
            row_id = cursor.lastrowid if cursor.rowcount == 1 else None
        if row_id is None:
            slot.error = AuthenticationFailed(
                f"request id {job.request_id} was used before", wire_code="replayed_request"
            )
            return False
        if signed:
            slot.outcome = replace(result, transaction_id=row_id)
        else:
            slot.error = result
        return True

    def _outcome_from_row(self, row, signing_bytes: bytes, parsed) -> SignOutcome:
        row_id, signature_text, lamports, fee = row
        signature = base58.b58decode(signature_text)
        signed = parsed.with_signature(self._keypair.public_key, signature) if parsed is not None else signing_bytes
        return SignOutcome(row_id, self._wallet, signature, signed, int(lamports), int(fee), duplicate=True)

    @contextlib.contextmanager
    def _locked_transaction(self, db):
        if is_sqlite(db):
            # IMMEDIATE takes the write lock at BEGIN: no other signer can decide in between.
            with db.atomic("IMMEDIATE"):
                yield
        else:
            with db.atomic():
                yield

    def _drop_connection(self) -> None:
        # A broken connection is not reused: the next request reconnects, and recounts.
        if self._db is not None:
            close_database(self._db)
        if self._rolling_spend is not None:
            self._rolling_spend.forget()


@functools.lru_cache(maxsize=64)
def _allowlist_bytes(value: str | None, base: frozenset = frozenset()) -> frozenset[bytes]:
    """Comma-separated base58 keys (plus ``base``) as raw keys, decoded once per distinct value."""
    keys = set(base) | {part for part in (value or "").split(",") if part}
    return frozenset(decode_pubkey(key, what="allow-listed key") for key in keys)


def _base58(raw: bytes) -> str:
    return base58.b58encode(raw).decode("ascii")
