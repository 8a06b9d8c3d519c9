"""Ordered, named, append-only schema migrations.

Each migration is applied inside one transaction together with its row in
``schema_migrations``, so a crash leaves the schema at a recorded version.
Migrations use frozen table definitions (not the live models), because a
migration must keep doing exactly what it did when it was written. Never edit
or reorder an entry; append a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import peewee
from playhouse.migrate import SchemaMigrator, migrate

from .db import describe, is_sqlite, translate_errors
from .errors import SchemaNotInitialised, SchemaTooNew
from .models import MAX_U64, U64_TEXT_DIGITS, SchemaMigration, message_key, signature_key, utc_now

STATUS_CHECK = "status IN ('signed', 'submitted', 'confirmed', 'failed', 'rejected')"


def _frozen_model(db: peewee.Database, table: str, fields: dict, constraints=()) -> type[peewee.Model]:
    meta = type("Meta", (), {"database": db, "table_name": table, "constraints": list(constraints)})
    return type(table, (peewee.Model,), {**fields, "Meta": meta})


def _transaction_columns_0001(*, unique: bool, status_check: str) -> dict:
    """wallet_transactions' columns as 0001 made them (0007 rebuilds the table from these)."""
    return {
        "id": peewee.BigAutoField(),
        "request_id": peewee.CharField(max_length=64, unique=unique),
        "wallet": peewee.CharField(max_length=44),
        "status": peewee.CharField(max_length=16, constraints=[peewee.Check(status_check)]),
        "purpose": peewee.TextField(null=True),
        "lamports": peewee.BigIntegerField(default=0, constraints=[peewee.Check("lamports >= 0")]),
        "fee_lamports": peewee.BigIntegerField(default=0, constraints=[peewee.Check("fee_lamports >= 0")]),
        "destination_address": peewee.CharField(max_length=44, null=True),
        "message_sha256": peewee.CharField(max_length=64),
        # Unique when present: NULLs (rejected rows) do not collide on either backend.
        "signature": peewee.CharField(max_length=88, null=True, unique=unique),
        "rejection_reason": peewee.TextField(null=True),
        "peer_uid": peewee.IntegerField(null=True),
        "peer_pid": peewee.IntegerField(null=True),
        "created_at": peewee.DateTimeField(),
        "updated_at": peewee.DateTimeField(),
        "confirmed_at": peewee.DateTimeField(null=True),
    }


def _0001_initial(db: peewee.Database) -> None:
    transactions = _frozen_model(
        db,
        "wallet_transactions",
        _transaction_columns_0001(unique=True, status_check=STATUS_CHECK),
        # A signed row always has its signature; a rejected one never does.
        constraints=[peewee.Check("(status = 'rejected') = (signature IS NULL)")],
    )
    limits = _frozen_model(
        db,
        "spend_limits",
        {
            "id": peewee.AutoField(),
            "wallet": peewee.CharField(max_length=44, unique=True),
            "per_tx_lamports": peewee.BigIntegerField(constraints=[peewee.Check("per_tx_lamports >= 0")]),
            "daily_lamports": peewee.BigIntegerField(constraints=[peewee.Check("daily_lamports >= 0")]),
            "updated_at": peewee.DateTimeField(),
        },
        constraints=[peewee.Check("per_tx_lamports <= daily_lamports")],
    )
    config = _frozen_model(
        db,
        "wallet_config",
        {
            "id": peewee.AutoField(),
            "key": peewee.CharField(max_length=128, unique=True),
            "value": peewee.TextField(),
            "description": peewee.TextField(null=True),
            "updated_at": peewee.DateTimeField(),
        },
    )
    db.create_tables([transactions, limits, config], safe=False)


def _0002_notify_above(db: peewee.Database) -> None:
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column(
            "spend_limits",
            "notify_above_lamports",
            peewee.BigIntegerField(null=True, constraints=[peewee.Check("notify_above_lamports >= 0")]),
        )
    )


def _0003_spend_window_index(db: peewee.Database) -> None:
    # Serves "spend of wallet W since T" (the daily ceiling) from the index alone.
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_index(
            "wallet_transactions", ("wallet", "created_at", "status", "lamports"), unique=False
        )
    )


def _0004_message_index(db: peewee.Database) -> None:
    # Serves the signer's "was this exact message signed before?" check on every request.
    migrator = SchemaMigrator.from_database(db)
    migrate(migrator.add_index("wallet_transactions", ("wallet", "message_sha256"), unique=False))


def _0005_wallet_id_index(db: peewee.Database) -> None:
    # Serves "this wallet's rows newer than id N", which keeps the signer's 24-hour sum current.
    migrator = SchemaMigrator.from_database(db)
    migrate(migrator.add_index("wallet_transactions", ("wallet", "id"), unique=False))


def _payments_and_message_0006() -> dict:
    return {"payments": peewee.TextField(null=True), "message_bytes": peewee.BlobField(null=True)}


def _0006_payments_and_message(db: peewee.Database) -> None:
    # Every payment of a decision and the bytes decided, so the trail names every recipient and
    # any decision can be checked again. Columns of the same row, not a table of payments: the
    # signer writes them in the insert it already makes (no extra statement or round trip), and
    # nothing looks a row up by them. Null on rows from before: unknown.
    migrator = SchemaMigrator.from_database(db)
    migrate(*(migrator.add_column("wallet_transactions", name, field) for name, field in _payments_and_message_0006().items()))


STATUS_CHECK_WITH_DUPLICATE = (
    "status IN ('signed', 'submitted', 'confirmed', 'failed', 'rejected', 'duplicate')"
)


def _0007_duplicate_rows(db: peewee.Database) -> None:
    """A re-sign request (a message already signed, asked for again) gets a row of its own:
    status 'duplicate', no signature (the signature column is unique), nothing counted, and
    ``duplicate_of`` naming the signed row. New CHECK constraints, which SQLite cannot add to
    a table, so the table is rebuilt on both backends: create, copy, drop, rename, re-index."""
    migrator = SchemaMigrator.from_database(db)
    rebuilt = "wallet_transactions_0007"
    # Without unique=True: the unique indexes are made after the rename, under their usual names.
    existing = {
        **_transaction_columns_0001(unique=False, status_check=STATUS_CHECK_WITH_DUPLICATE),
        **_payments_and_message_0006(),
    }
    columns = tuple(existing)
    table = _frozen_model(
        db,
        rebuilt,
        {**existing, "duplicate_of": peewee.BigIntegerField(null=True)},
        constraints=[
            # A signature is released with a spending row only; refusals and re-sign rows hold none.
            peewee.Check("(status IN ('rejected', 'duplicate')) = (signature IS NULL)"),
            # A re-sign row names the signed row, counts nothing; no other row names one.
            peewee.Check("(status = 'duplicate') = (duplicate_of IS NOT NULL)"),
            peewee.Check("status <> 'duplicate' OR (lamports = 0 AND fee_lamports = 0)"),
        ],
    )
    db.create_tables([table], safe=False)
    old = peewee.Table("wallet_transactions")
    table.insert_from(old.select(*[peewee.Column(old, name) for name in columns]), [getattr(table, name) for name in columns]).execute()
    migrate(migrator.drop_table("wallet_transactions"))
    migrate(migrator.rename_table(rebuilt, "wallet_transactions"))
    if not is_sqlite(db):  # ids were copied as they were: the sequence continues after them
        db.execute_sql(
            "SELECT setval(pg_get_serial_sequence('wallet_transactions', 'id'), COALESCE(MAX(id), 0) + 1, false) "
            "FROM wallet_transactions"
        )
    migrate(
        migrator.add_index("wallet_transactions", ("request_id",), unique=True),
        # Unique when present: NULLs (refusals, re-sign rows) do not collide on either backend.
        migrator.add_index("wallet_transactions", ("signature",), unique=True),
        migrator.add_index("wallet_transactions", ("wallet", "created_at", "status", "lamports"), unique=False),
        migrator.add_index("wallet_transactions", ("wallet", "message_sha256"), unique=False),
        migrator.add_index("wallet_transactions", ("wallet", "id"), unique=False),
    )


def _0008_kind_and_message_text(db: peewee.Database) -> None:
    # Off-chain messages were zero-value "transactions" that could be marked confirmed; the
    # kind tells them apart, and the text says what was signed. Rows from before stay
    # "transaction": nothing recorded then tells a message from a transaction.
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column(
            "wallet_transactions", "kind",
            peewee.CharField(max_length=16, default="transaction", constraints=[peewee.Check("kind IN ('transaction', 'message')")]),
        ),
        migrator.add_column("wallet_transactions", "message_text", peewee.TextField(null=True)),
    )


def _u64_column(db: peewee.Database, name: str, *, null: bool = False) -> peewee.Field:
    """A u64 amount column (models.U64Field): NUMERIC(20,0) on PostgreSQL, 20-digit text on SQLite."""
    if is_sqlite(db):
        form = f"length({name}) = {U64_TEXT_DIGITS} AND {name} NOT GLOB '*[^0-9]*' AND {name} <= '{MAX_U64}'"
        return peewee.CharField(max_length=U64_TEXT_DIGITS, null=null, constraints=[peewee.Check(form)])
    return peewee.DecimalField(
        max_digits=U64_TEXT_DIGITS, decimal_places=0, auto_round=False, null=null,
        constraints=[peewee.Check(f"{name} >= 0 AND {name} <= {MAX_U64}")],
    )


def _u64_zero(db: peewee.Database) -> str:
    """Zero as a u64 column holds it, for comparisons in a CHECK."""
    return "'" + "0" * U64_TEXT_DIGITS + "'" if is_sqlite(db) else "0"


def _0009_tokens(db: peewee.Database) -> None:
    """The mint registry, per-mint limits per wallet, and per-mint spend of each decided
    transaction (rows beside wallet_transactions, created_at equal to the transaction's)."""
    mints = _frozen_model(
        db,
        "token_mints",
        {
            "id": peewee.AutoField(),
            "symbol": peewee.CharField(max_length=16, unique=True),
            "mint": peewee.CharField(max_length=44, unique=True),
            "program": peewee.CharField(max_length=16, constraints=[peewee.Check("program IN ('token', 'token-2022')")]),
            "decimals": peewee.IntegerField(constraints=[peewee.Check("decimals BETWEEN 0 AND 255")]),
            "extensions": peewee.TextField(null=True),
            "allowed_extensions": peewee.TextField(default="[]"),
            "created_at": peewee.DateTimeField(),
            "updated_at": peewee.DateTimeField(),
        },
    )
    limits = _frozen_model(
        db,
        "token_limits",
        {
            "id": peewee.AutoField(),
            "wallet": peewee.CharField(max_length=44),
            "mint": peewee.CharField(max_length=44),
            "per_tx_base_units": _u64_column(db, "per_tx_base_units"),
            "daily_base_units": _u64_column(db, "daily_base_units"),
            "updated_at": peewee.DateTimeField(),
        },
        # Text on SQLite compares in numeric order: both are 20 digits.
        constraints=[peewee.Check("per_tx_base_units <= daily_base_units")],
    )
    spend = _frozen_model(
        db,
        "token_spend",
        {
            "id": peewee.BigAutoField(),
            "transaction_id": peewee.BigIntegerField(),
            "wallet": peewee.CharField(max_length=44),
            "mint": peewee.CharField(max_length=44),
            "symbol": peewee.CharField(max_length=16, null=True),
            "amount_base_units": _u64_column(db, "amount_base_units"),
            "created_at": peewee.DateTimeField(),
        },
    )
    db.create_tables([mints, limits, spend], safe=False)
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_index("token_limits", ("wallet", "mint"), unique=True),
        # The rolling window per (wallet, mint): rows aged out by time, rows unseen by id.
        migrator.add_index("token_spend", ("wallet", "created_at", "mint"), unique=False),
        migrator.add_index("token_spend", ("wallet", "transaction_id"), unique=False),
        migrator.add_index("token_spend", ("transaction_id",), unique=False),
    )


STATUS_CHECK_WITH_EXPIRED = (
    "status IN ('signed', 'submitted', 'confirmed', 'failed', 'rejected', 'duplicate', 'expired')"
)


def _widen_status_check(db: peewee.Database, old: str, new: str) -> None:
    """Replace the status CHECK of wallet_transactions by a wider one, keeping everything else.

    PostgreSQL drops and adds the constraint. SQLite cannot change a CHECK, so the table is
    rebuilt from its own recorded definition with only that text replaced (SQLite's documented
    procedure for schema changes ALTER TABLE cannot make): every column, constraint and index
    is kept whatever migrations between 0008 and this one added, which frozen columns would
    silently drop.
    """
    migrator = SchemaMigrator.from_database(db)
    if not is_sqlite(db):
        rows = db.execute_sql(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'wallet_transactions'::regclass AND contype = 'c' "
            "AND pg_get_constraintdef(oid) LIKE '%%''confirmed''%%' AND pg_get_constraintdef(oid) NOT LIKE '%%signature%%'"
        ).fetchall()
        if len(rows) != 1:
            raise RuntimeError(f"expected one status CHECK on wallet_transactions, found {len(rows)}")
        migrate(
            migrator.drop_constraint("wallet_transactions", rows[0][0]),
            migrator.add_constraint("wallet_transactions", "wallet_transactions_status_check", peewee.Check(new)),
        )
        return
    (definition,) = db.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'wallet_transactions'"
    ).fetchone()
    if definition.count(old) != 1:
        raise RuntimeError("wallet_transactions does not hold the status CHECK this migration replaces")
    rebuilt = "wallet_transactions_0011"
    head, _, body = definition.partition("(")
    if "wallet_transactions" not in head:
        raise RuntimeError("unexpected wallet_transactions definition")
    indexes = [sql for (sql,) in db.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'wallet_transactions' AND sql IS NOT NULL"
    ).fetchall()]
    db.execute_sql(f'CREATE TABLE "{rebuilt}" (' + body.replace(old, new))
    db.execute_sql(f'INSERT INTO "{rebuilt}" SELECT * FROM "wallet_transactions"')
    migrate(migrator.drop_table("wallet_transactions"))
    migrate(migrator.rename_table(rebuilt, "wallet_transactions"))
    for sql in indexes:
        db.execute_sql(sql)


def _0011_chain(db: peewee.Database) -> None:
    """What talking to the chain needs: the final status 'expired', the last valid block height
    and the fee a failed transaction was charged on each transaction, the releases that give
    proven-unspent amounts back to the daily window (append-only: every signer's kept sum stays
    exact, spend_window.py), and the blockhashes fetched with their last valid block height."""
    _widen_status_check(db, STATUS_CHECK_WITH_DUPLICATE, STATUS_CHECK_WITH_EXPIRED)
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column(
            "wallet_transactions", "last_valid_block_height",
            peewee.BigIntegerField(null=True, constraints=[peewee.Check("last_valid_block_height >= 0")]),
        ),
        migrator.add_column(
            "wallet_transactions", "chain_fee_lamports",
            peewee.BigIntegerField(null=True, constraints=[peewee.Check("chain_fee_lamports >= 0")]),
        ),
    )
    releases = _frozen_model(
        db,
        "spend_releases",
        {
            "id": peewee.BigAutoField(),
            "transaction_id": peewee.BigIntegerField(),
            "wallet": peewee.CharField(max_length=44),
            "asset": peewee.CharField(max_length=44),
            # Lamports for 'SOL'; base units (u64, as token_spend keeps them) for a mint.
            "amount": peewee.BigIntegerField(null=True),
            "amount_base_units": _u64_column(db, "amount_base_units", null=True),
            "reason": peewee.CharField(max_length=16, constraints=[peewee.Check("reason IN ('expired', 'failed')")]),
            "tx_created_at": peewee.DateTimeField(),
            "evidence": peewee.TextField(),
            "released_by": peewee.CharField(max_length=200),
            "created_at": peewee.DateTimeField(),
        },
        constraints=[peewee.Check(
            # IS NOT NULL spelled out: a CHECK that evaluates to NULL passes.
            f"(asset = 'SOL' AND amount IS NOT NULL AND amount > 0 AND amount_base_units IS NULL) OR "
            f"(asset <> 'SOL' AND amount IS NULL AND amount_base_units IS NOT NULL "
            f"AND amount_base_units > {_u64_zero(db)})"
        )],
    )
    blockhashes = _frozen_model(
        db,
        "chain_blockhashes",
        {
            "id": peewee.BigAutoField(),
            "blockhash": peewee.CharField(max_length=44, unique=True),
            "last_valid_block_height": peewee.BigIntegerField(constraints=[peewee.Check("last_valid_block_height >= 0")]),
            "fetched_at": peewee.DateTimeField(),
        },
    )
    db.create_tables([releases, blockhashes], safe=False)
    migrate(
        # A transaction's asset is released once: what makes a second sync release nothing.
        migrator.add_index("spend_releases", ("transaction_id", "asset"), unique=True),
        # The window's two adjustments: releases by id, and by the released transaction's time.
        migrator.add_index("spend_releases", ("wallet", "id"), unique=False),
        migrator.add_index("spend_releases", ("wallet", "tx_created_at"), unique=False),
    )


def _0010_approvals(db: peewee.Database) -> None:
    """Human approval (approvals.py): the held requests, the threshold, and the audit link.

    ``notify_above_lamports`` stays what it was, a flag on rows already signed:
    ``approve_above_lamports`` is a new, separate threshold that holds a transaction until a
    person approves it. Turning every notify threshold into an approval one would stop agents
    at the upgrade, holding payments that operators only asked to see flagged.
    """
    requests = _frozen_model(
        db,
        "approval_requests",
        {
            "id": peewee.BigAutoField(),
            "wallet": peewee.CharField(max_length=44),
            "intent_sha256": peewee.CharField(max_length=64),
            "status": peewee.CharField(
                max_length=16,
                constraints=[peewee.Check("status IN ('pending', 'approved', 'denied', 'consumed', 'expired')")],
            ),
            "request_id": peewee.CharField(max_length=64),
            "purpose": peewee.TextField(null=True),
            "lamports": peewee.BigIntegerField(default=0, constraints=[peewee.Check("lamports >= 0")]),
            "fee_lamports": peewee.BigIntegerField(default=0, constraints=[peewee.Check("fee_lamports >= 0")]),
            "payments": peewee.TextField(null=True),
            "message_bytes": peewee.BlobField(null=True),
            "peer_uid": peewee.IntegerField(null=True),
            "peer_pid": peewee.IntegerField(null=True),
            "created_at": peewee.DateTimeField(),
            "expires_at": peewee.DateTimeField(),
            "decided_at": peewee.DateTimeField(null=True),
            "decided_by": peewee.CharField(max_length=64, null=True),
            "decided_by_uid": peewee.IntegerField(null=True),
            "decision_note": peewee.TextField(null=True),
            "consumed_at": peewee.DateTimeField(null=True),
            "signed_transaction_id": peewee.BigIntegerField(null=True),
        },
        constraints=[
            # Decided exactly when approved, denied or used; used exactly when consumed.
            peewee.Check("(status IN ('approved', 'denied', 'consumed')) <= (decided_at IS NOT NULL)"),
            peewee.Check("(status = 'consumed') = (consumed_at IS NOT NULL)"),
        ],
    )
    db.create_tables([requests], safe=False)
    migrator = SchemaMigrator.from_database(db)
    migrate(
        # The signer's "latest request for this intent" under the wallet's lock.
        migrator.add_index("approval_requests", ("wallet", "intent_sha256", "id"), unique=False),
        migrator.add_index("approval_requests", ("status", "expires_at"), unique=False),
        migrator.add_column(
            "spend_limits", "approve_above_lamports",
            peewee.BigIntegerField(null=True, constraints=[peewee.Check("approve_above_lamports >= 0")]),
        ),
        migrator.add_column("wallet_transactions", "approval_id", peewee.BigIntegerField(null=True)),
    )
    # Per mint, in base units (u64): above it a person approves. Null: no threshold.
    per_mint = _u64_column(db, "approve_above_base_units")
    per_mint.null = True
    migrate(migrator.add_column("token_limits", "approve_above_base_units", per_mint))


def _0012_shorter_audit_keys(db: peewee.Database) -> None:
    """Cheaper audit rows: the two widest index keys become short prefixes of the same text.

    A row's unique signature index held the whole 88-character base58 text, and its retry index
    the 44-character wallet followed by the 64-character message hash: each insert paid for
    those keys (the signature index alone was about a third of the CPU of a row). They become
    keys of the first 16 characters (``models.SIGNATURE_KEY``, ``models.MESSAGE_KEY``): a
    signature's prefix stays unique (16 base58 characters are more than 88 bits, so two real
    signatures never share one; a stricter rule than before, never a weaker one), and the
    retry check looks the hash up by its prefix, then compares it whole, then the wallet. The
    columns keep their text, so every reader shows what it showed. ``approvals show`` gets a
    small index of the rows that name an approval. PostgreSQL re-reads the statistics
    (ANALYZE) so plans see the new indexes at once.
    """
    for name in ("wallet_transactions_signature", "wallet_transactions_wallet_message_sha256"):
        db.execute_sql(f"DROP INDEX {name}")
    db.execute_sql(
        f"CREATE UNIQUE INDEX wallet_transactions_signature_key ON wallet_transactions (({signature_key(db)}))"
    )
    db.execute_sql(
        f"CREATE INDEX wallet_transactions_message_key ON wallet_transactions (({message_key(db)}))"
    )
    db.execute_sql(
        "CREATE INDEX wallet_transactions_approval_id ON wallet_transactions (approval_id) "
        "WHERE approval_id IS NOT NULL"
    )
    if not is_sqlite(db):  # SQLite plans without statistics unless asked; they would go stale
        db.execute_sql("ANALYZE wallet_transactions")


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[peewee.Database], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_initial", _0001_initial),
    Migration("0002_spend_limits_notify_above", _0002_notify_above),
    Migration("0003_wallet_transactions_spend_window_index", _0003_spend_window_index),
    Migration("0004_wallet_transactions_message_index", _0004_message_index),
    Migration("0005_wallet_transactions_wallet_id_index", _0005_wallet_id_index),
    Migration("0006_wallet_transactions_payments_and_message", _0006_payments_and_message),
    Migration("0007_wallet_transactions_duplicate_rows", _0007_duplicate_rows),
    Migration("0008_wallet_transactions_kind_and_message_text", _0008_kind_and_message_text),
    Migration("0009_tokens", _0009_tokens),
    # After 0011 on databases that had 0009 and 0011 first: applied by name, and neither touches
    # what the other adds (0011 rebuilds wallet_transactions on SQLite keeping every column).
    Migration("0010_approvals", _0010_approvals),
    Migration("0011_chain", _0011_chain),
    Migration("0012_wallet_transactions_shorter_keys", _0012_shorter_audit_keys),
)


@dataclass(frozen=True)
class SchemaState:
    applied: tuple[str, ...]
    pending: tuple[str, ...]
    unknown: tuple[str, ...]  # applied by a newer version of jarvis-wallet


def schema_state(db: peewee.Database) -> SchemaState:
    with translate_errors(db):
        if not db.table_exists(SchemaMigration._meta.table_name):
            applied: tuple[str, ...] = ()
        else:
            applied = tuple(m.name for m in SchemaMigration.select().order_by(SchemaMigration.id))
    known = [m.name for m in MIGRATIONS]
    return SchemaState(
        applied=applied,
        pending=tuple(name for name in known if name not in applied),
        unknown=tuple(name for name in applied if name not in known),
    )


def check_schema(db: peewee.Database) -> None:
    """Refuse to work on a database whose schema is missing, outdated or too new."""
    state = schema_state(db)
    if state.unknown:
        raise SchemaTooNew(
            f"database {describe(db)} has schema migrations this jarvis-wallet does not know "
            f"({', '.join(state.unknown)}); upgrade jarvis-wallet"
        )
    if not state.applied:
        raise SchemaNotInitialised(
            f"database {describe(db)} is not initialised; run `jarvis-wallet init-db`"
        )
    if state.pending:
        raise SchemaNotInitialised(
            f"database {describe(db)} needs {len(state.pending)} schema migration(s); "
            "run `jarvis-wallet init-db`"
        )


def apply_migrations(db: peewee.Database, *, upto: str | None = None) -> tuple[str, ...]:
    """Apply every pending migration (or those up to ``upto``); return the names applied."""
    with translate_errors(db), _exclusive_transaction(db):
        # Under the lock: concurrent first runs would both try to create it.
        SchemaMigration.create_table(safe=True)
    state = schema_state(db)
    if state.unknown:
        check_schema(db)  # raises SchemaTooNew
    applied: list[str] = []
    for migration in MIGRATIONS:
        with translate_errors(db), _exclusive_transaction(db):
            # Re-read under the lock: another init-db may have applied it meanwhile.
            if not SchemaMigration.select().where(SchemaMigration.name == migration.name).exists():
                migration.apply(db)
                SchemaMigration.create(name=migration.name, applied_at=utc_now())
                applied.append(migration.name)
        if migration.name == upto:
            break
    return tuple(applied)


def _exclusive_transaction(db: peewee.Database):
    if is_sqlite(db):
        return db.atomic("IMMEDIATE")
    return _postgres_locked_transaction(db)


class _postgres_locked_transaction:
    """A transaction holding an advisory lock, so concurrent init-db runs take turns.

    READ COMMITTED whatever the role's or database's default: under REPEATABLE READ or
    SERIALIZABLE the snapshot would be taken before the lock was granted, and a run that
    waited would not see the migrations the one before it committed.
    """

    LOCK_KEY = 0x6A61727669735F6D  # "jarvis_m", an arbitrary constant of ours

    def __init__(self, db: peewee.Database) -> None:
        self._atomic = db.atomic(isolation_level="READ COMMITTED")
        self._db = db

    def __enter__(self):
        tx = self._atomic.__enter__()
        self._db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (self.LOCK_KEY,))
        return tx

    def __exit__(self, *exc_info):
        return self._atomic.__exit__(*exc_info)
