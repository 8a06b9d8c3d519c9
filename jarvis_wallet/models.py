"""Peewee models: the audit trail, the spend limits and the wallet configuration.

The models are bound to a database at start-up (``db.open_database``); the
schema itself is created and upgraded only by ``migrations``, which keeps
frozen copies of each table's definition. Invariants that matter are
enforced by the database too (CHECK constraints, unique indexes), not only
here.
"""

from __future__ import annotations

import datetime

import peewee

TX_STATUSES = ("signed", "submitted", "confirmed", "failed", "expired", "rejected", "duplicate")
# Allowed forward moves; "rejected", "duplicate", "confirmed", "failed" and "expired" are final.
# "expired": the blockhash passed its last valid block height and the chain does not know the
# signature at finalized: it never landed and never can (chain.settle).
TX_STATUS_TRANSITIONS = {
    "signed": ("submitted", "confirmed", "failed", "expired"),
    "submitted": ("confirmed", "failed", "expired"),
    "confirmed": (),
    "failed": (),
    "expired": (),
    "rejected": (),
    "duplicate": (),  # a re-sign request: the transaction's own row (duplicate_of) moves, not this one
}

database_proxy = peewee.DatabaseProxy()

# Token amounts are u64 base units: above a signed 64-bit column. PostgreSQL keeps them in
# NUMERIC(20,0) (exact, and SUM cannot overflow); SQLite, whose integers are signed 64-bit and
# whose NUMERIC turns larger values into floats, as 20-digit zero-padded text (exact; compares
# in numeric order; migrations 0009 checks the form). ``U64Field`` converts at the boundary.
MAX_U64 = 2**64 - 1
U64_TEXT_DIGITS = 20


def utc_now() -> datetime.datetime:
    """Naive UTC: both backends store it the same way and it compares exactly."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def naive_utc(moment) -> datetime.datetime:
    """A timestamp column as naive UTC (SQLite may hand back text, PostgreSQL an aware time)."""
    if isinstance(moment, str):
        moment = datetime.datetime.fromisoformat(moment)
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment


def iso_utc(moment: datetime.datetime | None) -> str | None:
    """``2026-11-26T13:02:23.123456Z`` for JSON output; None stays None."""
    return None if moment is None else moment.isoformat() + "Z"


# The audit trail's signature and message-hash indexes hold the first KEY_CHARS characters of
# the text, not all of it (migration 0012): short keys make a row cheaper to insert. A lookup
# names the indexed expression exactly (``signature_key``, ``message_key``) with the value's
# prefix (``text_key``), then compares the whole text. PostgreSQL compares the keys bytewise
# (COLLATE "C"), whatever the database's collation.
KEY_CHARS = 16


def _key_sql(db, column: str) -> str:
    postgres = not isinstance(getattr(db, "obj", db), peewee.SqliteDatabase)
    return f"substr({column}, 1, {KEY_CHARS})" + (' COLLATE "C"' if postgres else "")


def signature_key(db) -> str:
    """The indexed key of ``wallet_transactions.signature`` (unique), as SQL."""
    return _key_sql(db, "signature")


def message_key(db) -> str:
    """The indexed key of ``wallet_transactions.message_sha256``, as SQL."""
    return _key_sql(db, "message_sha256")


def text_key(value: str) -> str:
    """The key a lookup passes for ``value``."""
    return value[:KEY_CHARS]


class U64Field(peewee.Field):
    """An unsigned 64-bit amount, exact on both backends (see MAX_U64); Python ints in and out."""

    field_type = "U64"  # the column is made by migration 0009, per backend

    def _on_sqlite(self) -> bool:
        db = self.model._meta.database
        return isinstance(getattr(db, "obj", db), peewee.SqliteDatabase)

    def db_value(self, value):
        if value is None:
            return None
        value = int(value)
        if not 0 <= value <= MAX_U64:
            raise ValueError(f"{value} is outside 0..{MAX_U64}")
        return f"{value:0{U64_TEXT_DIGITS}d}" if self._on_sqlite() else value

    def python_value(self, value):
        return None if value is None else int(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class WalletTransaction(BaseModel):
    """One row per signing request decided: signed (with its signature), rejected (with why),
    or duplicate (a message signed before, asked for again: no new signature, nothing counted,
    ``duplicate_of`` is the signed row)."""

    id = peewee.BigAutoField()
    request_id = peewee.CharField(max_length=64, unique=True)
    wallet = peewee.CharField(max_length=44)
    status = peewee.CharField(max_length=16)
    purpose = peewee.TextField(null=True)
    lamports = peewee.BigIntegerField(default=0)
    fee_lamports = peewee.BigIntegerField(default=0)
    destination_address = peewee.CharField(max_length=44, null=True)  # the first; every one is in payments
    message_sha256 = peewee.CharField(max_length=64)
    signature = peewee.CharField(max_length=88, null=True, unique=True)
    rejection_reason = peewee.TextField(null=True)
    peer_uid = peewee.IntegerField(null=True)
    peer_pid = peewee.IntegerField(null=True)
    # JSON list of every payment (instruction_index, kind, destination, destination_label,
    # lamports); null when unknown (unparsable bytes, rows from before it was recorded).
    payments = peewee.TextField(null=True)
    message_bytes = peewee.BlobField(null=True)  # what was decided: message_sha256 is its hash
    created_at = peewee.DateTimeField(default=utc_now)
    updated_at = peewee.DateTimeField(default=utc_now)
    confirmed_at = peewee.DateTimeField(null=True)
    duplicate_of = peewee.BigIntegerField(null=True)
    kind = peewee.CharField(max_length=16, default="transaction")  # or "message" (off-chain)
    message_text = peewee.TextField(null=True)  # an off-chain message's text, as signed
    approval_id = peewee.BigIntegerField(null=True)  # the approval request this row asked for or used
    # The block height after which its blockhash is no longer accepted (null: not known, or a
    # durable-nonce transaction, which has none): what proves it expired.
    last_valid_block_height = peewee.BigIntegerField(null=True)
    # Lamports the chain took from the wallet for a failed transaction (its fee), once proven.
    chain_fee_lamports = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "wallet_transactions"


class SpendRelease(BaseModel):
    """Spend of one transaction given back to the daily window on proof from the chain.

    Append-only, one per transaction and asset ("SOL", or a token mint): the windows sum
    transactions minus releases. ``tx_created_at`` is the transaction's own ``created_at``, so a
    release leaves the window together with what it releases. A SOL release's lamports are in
    ``amount``; a mint's base units (u64) in ``amount_base_units`` (the other one is null).
    """

    id = peewee.BigAutoField()
    transaction_id = peewee.BigIntegerField()
    wallet = peewee.CharField(max_length=44)
    asset = peewee.CharField(max_length=44, default="SOL")  # "SOL" or a mint (base58)
    amount = peewee.BigIntegerField(null=True)  # lamports, for "SOL"
    amount_base_units = U64Field(null=True)  # base units, for a mint
    reason = peewee.CharField(max_length=16)  # "expired" (all of it) or "failed" (all but the fee; every token)
    tx_created_at = peewee.DateTimeField()
    evidence = peewee.TextField()  # JSON: what the endpoint said, and which endpoint (scheme and host)
    released_by = peewee.CharField(max_length=200)
    created_at = peewee.DateTimeField(default=utc_now)

    class Meta:
        table_name = "spend_releases"


class ChainBlockhash(BaseModel):
    """A blockhash fetched through jarvis-wallet and the last block height it is valid at."""

    id = peewee.BigAutoField()
    blockhash = peewee.CharField(max_length=44, unique=True)
    last_valid_block_height = peewee.BigIntegerField()
    fetched_at = peewee.DateTimeField(default=utc_now)

    class Meta:
        table_name = "chain_blockhashes"


class SpendLimit(BaseModel):
    """The ceilings of one wallet; no row means the wallet may not sign at all."""

    id = peewee.AutoField()
    wallet = peewee.CharField(max_length=44, unique=True)
    per_tx_lamports = peewee.BigIntegerField()
    daily_lamports = peewee.BigIntegerField()
    notify_above_lamports = peewee.BigIntegerField(null=True)  # flags rows; holds nothing
    approve_above_lamports = peewee.BigIntegerField(null=True)  # above it, a person approves first
    updated_at = peewee.DateTimeField(default=utc_now)

    class Meta:
        table_name = "spend_limits"


class ApprovalRequest(BaseModel):
    """A transaction within the limits but above the approval threshold, held for the operator
    (approvals.py): its intent, what it pays, who asked, and what the operator decided."""

    id = peewee.BigAutoField()
    wallet = peewee.CharField(max_length=44)
    intent_sha256 = peewee.CharField(max_length=64)
    status = peewee.CharField(max_length=16)  # pending, approved, denied, consumed, expired
    request_id = peewee.CharField(max_length=64)  # the signing request that opened it
    purpose = peewee.TextField(null=True)
    lamports = peewee.BigIntegerField(default=0)
    fee_lamports = peewee.BigIntegerField(default=0)
    payments = peewee.TextField(null=True)
    message_bytes = peewee.BlobField(null=True)  # the message first asked for
    peer_uid = peewee.IntegerField(null=True)
    peer_pid = peewee.IntegerField(null=True)
    created_at = peewee.DateTimeField(default=utc_now)
    expires_at = peewee.DateTimeField()
    decided_at = peewee.DateTimeField(null=True)
    decided_by = peewee.CharField(max_length=64, null=True)  # OS user name of the operator
    decided_by_uid = peewee.IntegerField(null=True)
    decision_note = peewee.TextField(null=True)  # --note of an approval, --reason of a denial
    consumed_at = peewee.DateTimeField(null=True)
    signed_transaction_id = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "approval_requests"


class WalletConfig(BaseModel):
    """Key-value settings (rpc_url, wallet_public_key, program allow-list, x.* keys)."""

    id = peewee.AutoField()
    key = peewee.CharField(max_length=128, unique=True)
    value = peewee.TextField()
    description = peewee.TextField(null=True)
    updated_at = peewee.DateTimeField(default=utc_now)

    class Meta:
        table_name = "wallet_config"


class SchemaMigration(BaseModel):
    """Which named migrations have been applied, in order."""

    id = peewee.AutoField()
    name = peewee.CharField(max_length=128, unique=True)
    applied_at = peewee.DateTimeField(default=utc_now)

    class Meta:
        table_name = "schema_migrations"


class TokenMint(BaseModel):
    """A mint the operator registered (tokens.py): the signer knows nothing it was not told."""

    id = peewee.AutoField()
    symbol = peewee.CharField(max_length=16, unique=True)
    mint = peewee.CharField(max_length=44, unique=True)
    program = peewee.CharField(max_length=16)  # "token" or "token-2022"
    decimals = peewee.IntegerField()
    # JSON lists of Token-2022 extension names: the mint's (null: not read from the chain) and
    # those the operator explicitly accepted (tokens add --allow-extension).
    extensions = peewee.TextField(null=True)
    allowed_extensions = peewee.TextField(default="[]")
    created_at = peewee.DateTimeField(default=utc_now)
    updated_at = peewee.DateTimeField(default=utc_now)

    class Meta:
        table_name = "token_mints"


class TokenLimit(BaseModel):
    """A wallet's ceilings for one mint, in base units; no row: the wallet may not spend it."""

    id = peewee.AutoField()
    wallet = peewee.CharField(max_length=44)
    mint = peewee.CharField(max_length=44)
    per_tx_base_units = U64Field()
    daily_base_units = U64Field()
    approve_above_base_units = U64Field(null=True)  # above it, a person approves first (approvals.py)
    updated_at = peewee.DateTimeField(default=utc_now)

    class Meta:
        table_name = "token_limits"
        indexes = ((("wallet", "mint"), True),)


class TokenSpend(BaseModel):
    """What one decided transaction spends of one mint (a row per mint, beside its audit row)."""

    id = peewee.BigAutoField()
    transaction_id = peewee.BigIntegerField()  # wallet_transactions.id
    wallet = peewee.CharField(max_length=44)
    mint = peewee.CharField(max_length=44)
    symbol = peewee.CharField(max_length=16, null=True)  # as registered when decided
    amount_base_units = U64Field()
    created_at = peewee.DateTimeField()  # the transaction row's

    class Meta:
        table_name = "token_spend"


MODELS = (
    WalletTransaction, SpendLimit, ApprovalRequest, WalletConfig, SchemaMigration, TokenMint, TokenLimit, TokenSpend, SpendRelease,
    ChainBlockhash,
)


def bind_models(db: peewee.Database) -> None:
    database_proxy.initialize(db)
