import peewee
import pytest

from jarvis_wallet.db import session
from jarvis_wallet.errors import SchemaNotInitialised, SchemaTooNew
from jarvis_wallet.migrations import MIGRATIONS, apply_migrations, check_schema, schema_state
from jarvis_wallet.models import SchemaMigration, SpendLimit, WalletTransaction, utc_now

from conftest import random_pubkey


def test_apply_all_then_nothing(database_url):
    with session(database_url, create=True, require_schema=False) as db:
        assert apply_migrations(db) == tuple(m.name for m in MIGRATIONS)
        assert apply_migrations(db) == ()
        check_schema(db)
        assert schema_state(db).pending == ()


def test_empty_database_is_not_initialised(database_url):
    with session(database_url, create=True, require_schema=False) as db:
        with pytest.raises(SchemaNotInitialised, match="run `jarvis-wallet init-db`"):
            check_schema(db)


def test_upgrade_from_first_version_keeps_data(database_url):
    wallet = random_pubkey()
    with session(database_url, create=True, require_schema=False) as db:
        assert apply_migrations(db, upto="0001_initial") == ("0001_initial",)
        with pytest.raises(SchemaNotInitialised, match=f"needs {len(MIGRATIONS) - 1} schema migration"):
            check_schema(db)
        db.execute_sql(
            "INSERT INTO spend_limits (wallet, per_tx_lamports, daily_lamports, updated_at) VALUES (%s, 5, 10, %s)"
            .replace("%s", db.param),
            (wallet, utc_now()),
        )
        assert apply_migrations(db) == tuple(m.name for m in MIGRATIONS[1:])
        check_schema(db)
        row = SpendLimit.get(SpendLimit.wallet == wallet)
        assert (row.per_tx_lamports, row.daily_lamports, row.notify_above_lamports) == (5, 10, None)


def test_schema_from_a_newer_version_is_refused(initialised_url):
    with session(initialised_url, require_schema=False) as db:
        SchemaMigration.create(name="9999_from_the_future")
        with pytest.raises(SchemaTooNew, match="9999_from_the_future"):
            check_schema(db)
        with pytest.raises(SchemaTooNew):
            apply_migrations(db)


def _tx_fields(**overrides):
    fields = dict(
        request_id=overrides.pop("request_id", "r-1"),
        wallet=random_pubkey(),
        status="signed",
        lamports=1,
        fee_lamports=5000,
        message_sha256="0" * 64,
        signature="sig1",
        created_at=utc_now(),
        updated_at=utc_now(),
    )
    fields.update(overrides)
    return fields


@pytest.mark.parametrize(
    "overrides",
    [
        {"status": "pending"},  # not one of the statuses
        {"lamports": -1},
        {"fee_lamports": -1},
        {"status": "signed", "signature": None},  # a signature is released only with its row
        {"status": "rejected", "signature": "sig-on-a-rejected-row"},
        # A re-sign row releases nothing new and counts nothing, and names the signed row.
        {"status": "duplicate", "signature": "sig", "lamports": 0, "fee_lamports": 0, "duplicate_of": 1},
        {"status": "duplicate", "signature": None, "lamports": 0, "fee_lamports": 0},
        {"status": "duplicate", "signature": None, "lamports": 1, "fee_lamports": 0, "duplicate_of": 1},
        {"status": "duplicate", "signature": None, "lamports": 0, "fee_lamports": 5000, "duplicate_of": 1},
        {"status": "signed", "duplicate_of": 1},
    ],
)
def test_database_enforces_transaction_rules(db, overrides):
    with pytest.raises(peewee.IntegrityError):
        with db.atomic():
            WalletTransaction.insert(**_tx_fields(**overrides)).execute()


def test_database_enforces_unique_request_and_signature(db):
    WalletTransaction.insert(**_tx_fields(request_id="a", signature="s")).execute()
    for overrides in ({"request_id": "a", "signature": "t"}, {"request_id": "b", "signature": "s"}):
        with pytest.raises(peewee.IntegrityError):
            with db.atomic():
                WalletTransaction.insert(**_tx_fields(**overrides)).execute()
    # Rejected rows carry no signature, and any number of them may exist.
    for request_id in ("c", "d"):
        WalletTransaction.insert(**_tx_fields(request_id=request_id, status="rejected", signature=None)).execute()


@pytest.mark.parametrize(
    "per_tx, daily, notify",
    [(-1, 10, None), (1, -1, None), (11, 10, None), (1, 10, -5)],
)
def test_database_enforces_limit_rules(db, per_tx, daily, notify):
    with pytest.raises(peewee.IntegrityError):
        with db.atomic():
            SpendLimit.insert(
                wallet=random_pubkey(), per_tx_lamports=per_tx, daily_lamports=daily,
                notify_above_lamports=notify, updated_at=utc_now(),
            ).execute()


def test_amounts_are_64_bit_integers(db):
    wallet = random_pubkey()
    SpendLimit.insert(wallet=wallet, per_tx_lamports=2**63 - 1, daily_lamports=2**63 - 1, updated_at=utc_now()).execute()
    row = SpendLimit.get(SpendLimit.wallet == wallet)
    assert row.daily_lamports == 2**63 - 1


def test_upgrade_to_duplicate_rows_keeps_every_row_id_and_index(database_url):
    """0006 rebuilds wallet_transactions (SQLite cannot add a CHECK): rows, ids and indexes
    survive, new ids continue after the old ones, and the old rules still hold."""
    with session(database_url, create=True, require_schema=False) as db:
        apply_migrations(db, upto="0005_wallet_transactions_wallet_id_index")
        columns = ("request_id", "wallet", "status", "lamports", "fee_lamports", "message_sha256", "signature",
                   "created_at", "updated_at")
        old_rows = [_tx_fields(request_id="r-1"), _tx_fields(request_id="r-2", status="rejected", signature=None,
                                                             rejection_reason="no_limits: none")]
        for row in old_rows:
            db.execute_sql(
                f"INSERT INTO wallet_transactions ({', '.join(columns)}, rejection_reason) "
                f"VALUES ({', '.join([db.param] * (len(columns) + 1))})",
                tuple(row[name] for name in columns) + (row.get("rejection_reason"),),
            )
        db.execute_sql("DELETE FROM wallet_transactions WHERE request_id = 'r-1'")  # a gap: ids are not renumbered
        db.execute_sql(
            f"INSERT INTO wallet_transactions ({', '.join(columns)}) VALUES ({', '.join([db.param] * len(columns))})",
            tuple(_tx_fields(request_id="r-3", signature="sig3")[name] for name in columns),
        )
        before = {r.request_id: (r.id, r.status, r.signature, r.rejection_reason) for r in WalletTransaction.select(
            WalletTransaction.id, WalletTransaction.request_id, WalletTransaction.status, WalletTransaction.signature,
            WalletTransaction.rejection_reason)}
        assert apply_migrations(db) == ("0006_wallet_transactions_duplicate_rows",)
        check_schema(db)
        after = {r.request_id: (r.id, r.status, r.signature, r.rejection_reason) for r in WalletTransaction.select()}
        assert after == before and set(after) == {"r-2", "r-3"}
        signed_id = after["r-3"][0]
        new = WalletTransaction.create(**_tx_fields(request_id="r-4", status="duplicate", signature=None, lamports=0,
                                                     fee_lamports=0, duplicate_of=signed_id))
        assert new.id == signed_id + 1
        indexes = {tuple(index.columns): index.unique for index in db.get_indexes("wallet_transactions")}
        assert indexes[("request_id",)] is True and indexes[("signature",)] is True
        assert {("wallet", "created_at", "status", "lamports"), ("wallet", "message_sha256"), ("wallet", "id")} <= set(
            indexes)
        for overrides in ({"request_id": "r-3", "signature": "other"}, {"request_id": "r-5", "signature": "sig3"}):
            with pytest.raises(peewee.IntegrityError):
                with db.atomic():
                    WalletTransaction.insert(**_tx_fields(**overrides)).execute()
