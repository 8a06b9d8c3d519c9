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
transaction, each in its own savepoint, and committed once: every decision
still sees all the ones before it, and one fsync serves the batch.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import base58
import peewee

from .db import close_database, is_sqlite, open_database, translate_errors
from .errors import (
    AuthenticationFailed,
    DatabaseUnavailable,
    InvalidTransaction,
    JarvisWalletError,
    PolicyDenied,
)
from .keys import Keypair
from .ledger import spent_in_window
from .migrations import check_schema
from .models import MODELS, SpendLimit, WalletConfig, WalletTransaction, utc_now
from .policy import DEFAULT_PROGRAM_ALLOWLIST, Limits, decide
from .solana import build_offchain_message, encode_pubkey, parse_transaction_input

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

    @property
    def wallet(self) -> str:
        return self._wallet

    def connect(self) -> None:
        """Open the connection (in the calling thread) and check the schema; raises on failure."""
        if self._db is None:
            self._db = open_database(self._database_url)
        with translate_errors(self._db):
            self._db.connect(reuse_if_open=True)
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
            # bind_ctx: this connection, whatever else the process has bound the models to.
            with translate_errors(db), db.bind_ctx(MODELS), self._locked_transaction(db):
                now = self._clock()
                for job, message, slot in zip(jobs, prepared, pending):
                    if isinstance(message, JarvisWalletError) and not isinstance(message, InvalidTransaction):
                        slot.error = message
                        continue
                    with db.atomic():  # a savepoint: one request's failure leaves the others
                        self._decide_one(db, job, message, slot, now)
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

    def _decide_one(self, db, job: SignJob, prepared, slot: _Pending, now: datetime.datetime) -> None:
        if WalletTransaction.select().where(WalletTransaction.request_id == job.request_id).exists():
            slot.error = AuthenticationFailed(
                f"request id {job.request_id} was used before", wire_code="replayed_request"
            )
            return
        if isinstance(prepared, InvalidTransaction):
            raw = job.tx_bytes if job.tx_bytes is not None else (job.text or "").encode("utf-8", "replace")
            digest = hashlib.sha256(raw).hexdigest()
            self._record_rejection(job, digest, "invalid_tx", str(prepared), lamports=0, fee=0, destination=None, now=now)
            slot.error = prepared
            return
        signing_bytes, parsed = prepared
        digest = hashlib.sha256(signing_bytes).hexdigest()
        earlier = self._earlier_signature(digest)
        if earlier is not None:
            slot.outcome = self._outcome_from_row(earlier, signing_bytes, parsed, duplicate=True)
            return
        limits_row = self._lock_limits(db)
        limits = None if limits_row is None else Limits(limits_row.per_tx_lamports, limits_row.daily_lamports)
        if parsed is None:  # an off-chain message moves nothing, but the wallet must be governed
            self._sign_offchain(job, signing_bytes, digest, limits, slot, now)
            return
        decision = decide(
            message=parsed,
            wallet=self._keypair.public_key,
            limits=limits,
            spent_24h_lamports=spent_in_window(self._wallet, now=now) if limits else 0,
            program_allowlist=self._program_allowlist(),
            destination_allowlist=self._destination_allowlist(),
        )
        spend = decision.spend
        destination = next((p.destination for p in spend.payments if p.destination is not None), None)
        destination_text = encode_pubkey(destination) if destination else None
        if not decision.allowed:
            self._record_rejection(
                job, digest, decision.reason, decision.message,
                lamports=spend.spend_lamports, fee=spend.wallet_fee_lamports,
                destination=destination_text, now=now,
            )
            slot.error = PolicyDenied(decision.message, reason=decision.reason)
            return
        signature = self._keypair.sign(signing_bytes)
        row = WalletTransaction.create(
            request_id=job.request_id,
            wallet=self._wallet,
            status="signed",
            purpose=job.purpose,
            lamports=spend.spend_lamports,
            fee_lamports=spend.wallet_fee_lamports,
            destination_address=destination_text,
            message_sha256=digest,
            signature=_base58(signature),
            peer_uid=job.peer.uid,
            peer_pid=job.peer.pid,
            created_at=now,
            updated_at=now,
        )
        slot.outcome = SignOutcome(
            transaction_id=row.id,
            wallet=self._wallet,
            signature=signature,
            signed_bytes=parsed.with_signature(self._keypair.public_key, signature),
            lamports=spend.spend_lamports,
            fee_lamports=spend.wallet_fee_lamports,
            duplicate=False,
        )

    def _sign_offchain(self, job, envelope: bytes, digest: str, limits, slot: _Pending, now) -> None:
        if limits is None:
            message = (
                f"wallet {self._wallet} has no spend limits; set them with "
                f"`jarvis-wallet limits set --wallet {self._wallet} --per-tx AMOUNT --daily AMOUNT`"
            )
            self._record_rejection(job, digest, "no_limits", message, lamports=0, fee=0, destination=None, now=now)
            slot.error = PolicyDenied(message, reason="no_limits")
            return
        signature = self._keypair.sign(envelope)
        row = WalletTransaction.create(
            request_id=job.request_id, wallet=self._wallet, status="signed", purpose=job.purpose,
            lamports=0, fee_lamports=0, message_sha256=digest,
            signature=_base58(signature), peer_uid=job.peer.uid, peer_pid=job.peer.pid,
            created_at=now, updated_at=now,
        )
        slot.outcome = SignOutcome(row.id, self._wallet, signature, envelope, 0, 0, duplicate=False)

    def _record_rejection(self, job, digest, reason, message, *, lamports, fee, destination, now) -> None:
        WalletTransaction.create(
            request_id=job.request_id, wallet=self._wallet, status="rejected", purpose=job.purpose,
            lamports=lamports, fee_lamports=fee, destination_address=destination, message_sha256=digest,
            rejection_reason=f"{reason}: {message}"[:1000], peer_uid=job.peer.uid, peer_pid=job.peer.pid,
            created_at=now, updated_at=now,
        )

    def _earlier_signature(self, digest: str) -> WalletTransaction | None:
        return (
            WalletTransaction.select()
            .where(
                (WalletTransaction.wallet == self._wallet)
                & (WalletTransaction.message_sha256 == digest)
                & (WalletTransaction.signature.is_null(False))
            )
            .first()
        )

    def _outcome_from_row(self, row, signing_bytes: bytes, parsed, *, duplicate: bool) -> SignOutcome:
        signature = base58.b58decode(row.signature)
        signed = parsed.with_signature(self._keypair.public_key, signature) if parsed is not None else signing_bytes
        return SignOutcome(row.id, self._wallet, signature, signed, row.lamports, row.fee_lamports, duplicate)

    def _lock_limits(self, db) -> SpendLimit | None:
        query = SpendLimit.select().where(SpendLimit.wallet == self._wallet)
        if not is_sqlite(db):
            query = query.for_update()  # the per-wallet lock, held to the commit
        return query.first()

    def _program_allowlist(self) -> frozenset:
        extra = _config_keys("allowed_programs")
        return frozenset(DEFAULT_PROGRAM_ALLOWLIST) | frozenset(extra or ())

    def _destination_allowlist(self):
        return _config_keys("allowed_destinations")

    @contextlib.contextmanager
    def _locked_transaction(self, db):
        if is_sqlite(db):
            # IMMEDIATE takes the write lock at BEGIN: no other signer can decide in between.
            with db.atomic("IMMEDIATE"):
                yield
        else:
            with db.atomic():
                db.execute_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")
                yield

    def _drop_connection(self) -> None:
        # A broken connection is not reused: the next request reconnects.
        if self._db is not None:
            close_database(self._db)


def _config_keys(key: str) -> tuple[str, ...] | None:
    row = WalletConfig.get_or_none(WalletConfig.key == key)
    if row is None:
        return None
    return tuple(part for part in row.value.split(",") if part)


def _base58(raw: bytes) -> str:
    return base58.b58encode(raw).decode("ascii")
