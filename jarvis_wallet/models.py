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

TX_STATUSES = ("signed", "submitted", "confirmed", "failed", "rejected", "duplicate")
# Allowed forward moves; "rejected", "duplicate", "confirmed" and "failed" are final.
TX_STATUS_TRANSITIONS = {
    "signed": ("submitted", "confirmed", "failed"),
    "submitted": ("confirmed", "failed"),
    "confirmed": (),
    "failed": (),
    "rejected": (),
    "duplicate": (),  # a re-sign request: the transaction's own row (duplicate_of) moves, not this one
}

database_proxy = peewee.DatabaseProxy()


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

    class Meta:
        table_name = "wallet_transactions"


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


MODELS = (WalletTransaction, SpendLimit, ApprovalRequest, WalletConfig, SchemaMigration)


def bind_models(db: peewee.Database) -> None:
    database_proxy.initialize(db)
