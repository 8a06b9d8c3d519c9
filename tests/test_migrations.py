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


def test_kind_and_message_text_columns_default_rows_of_before_to_transactions(database_url):
    """Rows written before 0006 read as transactions; the CHECK refuses any other kind."""
    import peewee

    from jarvis_wallet.db import session
    from jarvis_wallet.migrations import MIGRATIONS, apply_migrations

    with session(database_url, create=True, require_schema=False) as db:
        names = [m.name for m in MIGRATIONS]
        cut = names.index("0006_wallet_transactions_kind_and_message_text")
        for migration in MIGRATIONS[:cut]:
            with db.atomic():
                migration.apply(db)
        db.execute_sql(
            "INSERT INTO wallet_transactions (request_id, wallet, status, lamports, fee_lamports, message_sha256, "
            "signature, created_at, updated_at) VALUES ('old', 'W', 'signed', 0, 0, 'aa', 'sig', "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
        with db.atomic():
            MIGRATIONS[cut].apply(db)
        assert db.execute_sql("SELECT kind, message_text FROM wallet_transactions").fetchall() == [("transaction", None)]
        with pytest.raises(peewee.IntegrityError), db.atomic():
            db.execute_sql("UPDATE wallet_transactions SET kind = 'other'")
