import peewee
import pytest

from jarvis_wallet.db import is_sqlite, session
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


def test_upgrade_to_recorded_payments_keeps_older_audit_rows(database_url, cli):
    """Rows written before every payment and the message bytes were recorded stay valid: both
    are null (unknown), the row reads and shows as before, and new rows carry both."""
    wallet, destination = random_pubkey(), random_pubkey()
    with session(database_url, create=True, require_schema=False) as db:
        apply_migrations(db, upto="0005_wallet_transactions_wallet_id_index")
        db.execute_sql(
            "INSERT INTO wallet_transactions (request_id, wallet, status, purpose, lamports, fee_lamports, "
            "destination_address, message_sha256, signature, created_at, updated_at) "
            "VALUES (%s, %s, 'signed', 'old', 6000, 5000, %s, %s, 'OldSig', %s, %s)".replace("%s", db.param),
            ("old-1", wallet, destination, "d" * 64, utc_now(), utc_now()),
        )
        assert apply_migrations(db)[0] == "0006_wallet_transactions_payments_and_message"
        check_schema(db)
        old = WalletTransaction.get(WalletTransaction.request_id == "old-1")
        assert (old.payments, old.message_bytes, old.destination_address) == (None, None, destination)
        WalletTransaction.insert(**_tx_fields(
            request_id="new-1", payments='[{"lamports": 1}]', message_bytes=b"\x00\xffmessage",
        )).execute()
        new = WalletTransaction.get(WalletTransaction.request_id == "new-1")
        assert (new.payments, bytes(new.message_bytes)) == ('[{"lamports": 1}]', b"\x00\xffmessage")
    shown = cli("tx", "show", "OldSig", "--json", url=database_url).json()
    assert (shown["destination_address"], shown["payments"], shown["message_base64"]) == (destination, None, None)
    assert cli("tx", "list", url=database_url).exit_code == 0


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


def _init_db_concurrently(url: str, runs: int = 4) -> list[tuple[int, str]]:
    """Start ``runs`` real `jarvis-wallet init-db` processes at once; their (exit code, stderr)."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "jarvis_wallet", "--database-url", url, "init-db"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(runs)]
    return [(process.wait(timeout=120), process.communicate()[1]) for process in processes]


def _applied_once_each(url: str) -> None:
    with session(url) as db:
        names = [m.name for m in SchemaMigration.select().order_by(SchemaMigration.id)]
        assert names == [m.name for m in MIGRATIONS]
        check_schema(db)


def test_concurrent_init_db_runs_take_turns(database_url):
    # On an empty database too: the migrations table itself is created under the lock.
    results = _init_db_concurrently(database_url)
    assert [code for code, _ in results] == [0] * len(results), results
    _applied_once_each(database_url)


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
def test_concurrent_init_db_runs_take_turns_whatever_the_roles_isolation(postgres_role_url, isolation):
    # A transaction that waited for the lock must read what the one before it committed.
    url = postgres_role_url(default_transaction_isolation=isolation)
    results = _init_db_concurrently(url)
    assert [code for code, _ in results] == [0] * len(results), results
    _applied_once_each(url)


def test_upgrade_to_duplicate_rows_keeps_every_row_id_and_index(database_url):
    """0007 rebuilds wallet_transactions (SQLite cannot add a CHECK): rows (0006's payments and
    message bytes included), ids and indexes survive, new ids continue after the old ones, and
    the old rules still hold."""
    with session(database_url, create=True, require_schema=False) as db:
        apply_migrations(db, upto="0006_wallet_transactions_payments_and_message")
        columns = ("request_id", "wallet", "status", "lamports", "fee_lamports", "message_sha256", "signature",
                   "created_at", "updated_at", "payments", "message_bytes")
        recorded = {"payments": '[{"lamports":1}]', "message_bytes": b"\x01\x02\x00\xff"}
        old_rows = [_tx_fields(request_id="r-1", **recorded),
                    _tx_fields(request_id="r-2", status="rejected", signature=None, rejection_reason="no_limits: none",
                               **recorded)]
        for row in old_rows:
            db.execute_sql(
                f"INSERT INTO wallet_transactions ({', '.join(columns)}, rejection_reason) "
                f"VALUES ({', '.join([db.param] * (len(columns) + 1))})",
                tuple(row[name] for name in columns) + (row.get("rejection_reason"),),
            )
        db.execute_sql("DELETE FROM wallet_transactions WHERE request_id = 'r-1'")  # a gap: ids are not renumbered
        db.execute_sql(
            f"INSERT INTO wallet_transactions ({', '.join(columns)}) VALUES ({', '.join([db.param] * len(columns))})",
            tuple(_tx_fields(request_id="r-3", signature="sig3", **recorded)[name] for name in columns),
        )
        fields = (WalletTransaction.id, WalletTransaction.request_id, WalletTransaction.status,
                  WalletTransaction.signature, WalletTransaction.rejection_reason, WalletTransaction.payments,
                  WalletTransaction.message_bytes)

        def kept(r):
            return r.id, r.status, r.signature, r.rejection_reason, r.payments, bytes(r.message_bytes)

        before = {r.request_id: kept(r) for r in WalletTransaction.select(*fields)}
        # Up to 0011, where the indexes below are still the ones 0007 made (0012 shortens two keys).
        assert apply_migrations(db, upto="0011_chain")[0] == "0007_wallet_transactions_duplicate_rows"
        after = {r.request_id: kept(r) for r in WalletTransaction.select()}
        assert after == before and set(after) == {"r-2", "r-3"}
        signed_id = after["r-3"][0]
        new = WalletTransaction.create(**_tx_fields(request_id="r-4", status="duplicate", signature=None, lamports=0,
                                                     fee_lamports=0, duplicate_of=signed_id))
        assert new.id == signed_id + 1
        indexes = {tuple(index.columns): index.unique for index in db.get_indexes("wallet_transactions")}
        assert indexes[("request_id",)] is True and indexes[("signature",)] is True
        assert {("wallet", "created_at", "status", "lamports"), ("wallet", "message_sha256"), ("wallet", "id")} <= set(
            indexes)
        apply_migrations(db)
        check_schema(db)
        for overrides in ({"request_id": "r-3", "signature": "other"}, {"request_id": "r-5", "signature": "sig3"}):
            with pytest.raises(peewee.IntegrityError):
                with db.atomic():
                    WalletTransaction.insert(**_tx_fields(**overrides)).execute()


def test_kind_and_message_text_columns_default_rows_of_before_to_transactions(database_url):
    """Rows written before 0008 read as transactions; the CHECK refuses any other kind."""
    import peewee

    from jarvis_wallet.db import session
    from jarvis_wallet.migrations import MIGRATIONS

    with session(database_url, create=True, require_schema=False) as db:
        names = [m.name for m in MIGRATIONS]
        cut = names.index("0008_wallet_transactions_kind_and_message_text")
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


def test_0009_tokens_tables_hold_u64_exactly_and_refuse_what_is_not_one(database_url):
    """Amounts up to 2**64 - 1 (above a signed 64-bit column) stored and read back exactly; the
    database itself refuses a negative, an over-large or (SQLite) a malformed amount, and a
    per-transaction limit above the daily one."""
    import peewee as pw

    from jarvis_wallet.models import TokenLimit

    wallet, mint = random_pubkey(), random_pubkey()
    with session(database_url, create=True, require_schema=False) as db:
        apply_migrations(db, upto="0008_wallet_transactions_kind_and_message_text")
        db.execute_sql(
            "INSERT INTO spend_limits (wallet, per_tx_lamports, daily_lamports, updated_at) VALUES (%s, 5, 10, %s)"
            .replace("%s", db.param),
            (wallet, utc_now()),
        )
        assert apply_migrations(db, upto="0009_tokens") == ("0009_tokens",)
        apply_migrations(db)
        check_schema(db)
        assert SpendLimit.get(SpendLimit.wallet == wallet).daily_lamports == 10
        TokenLimit.create(wallet=wallet, mint=mint, per_tx_base_units=2**64 - 1, daily_base_units=2**64 - 1)
        assert TokenLimit.get(TokenLimit.wallet == wallet).daily_base_units == 2**64 - 1
        insert = (
            "INSERT INTO token_limits (wallet, mint, per_tx_base_units, daily_base_units, updated_at) "
            "VALUES (%s, %s, %s, %s, %s)"
        ).replace("%s", db.param)
        sqlite = isinstance(db, pw.SqliteDatabase)
        bad = [(-1, 1), (2**64, 2**64), (2, 1)]
        bad = [tuple(f"{v:020d}" if v >= 0 else str(v) for v in pair) for pair in bad] if sqlite else bad
        if sqlite:
            bad += [("1", "2"), ("0000000000000000000x", "00000000000000000001")]
        for per_tx, daily in bad:
            with pytest.raises(pw.IntegrityError):
                with db.atomic():
                    db.execute_sql(insert, (random_pubkey(), mint, per_tx, daily, utc_now()))
        with pytest.raises(pw.IntegrityError):  # one row per (wallet, mint)
            with db.atomic():
                TokenLimit.create(wallet=wallet, mint=mint, per_tx_base_units=1, daily_base_units=1)


def test_0011_chain_widens_the_status_check_and_keeps_every_row_id_index_and_rule(database_url):
    """0011 adds status 'expired' (a rebuild on SQLite, a replaced CHECK on PostgreSQL): rows keep
    their ids, the ids continue after them, every other rule and index still holds."""
    with session(database_url, create=True, require_schema=False) as db:
        apply_migrations(db, upto="0008_wallet_transactions_kind_and_message_text")
        for i, status in enumerate(("signed", "submitted", "rejected")):
            db.execute_sql(
                "INSERT INTO wallet_transactions (id, request_id, wallet, status, lamports, fee_lamports, message_sha256, "
                "signature, created_at, updated_at, kind) VALUES "
                f"({10 + i}, 'r{i}', 'W', '{status}', {i}, 0, 'aa', {'NULL' if status == 'rejected' else repr(f's{i}')}, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00', 'transaction')"
            )
        if not is_sqlite(db):
            db.execute_sql("SELECT setval(pg_get_serial_sequence('wallet_transactions', 'id'), 12)")
        with pytest.raises(peewee.IntegrityError), db.atomic():
            db.execute_sql("UPDATE wallet_transactions SET status = 'expired' WHERE id = 10")
        assert apply_migrations(db, upto="0011_chain") == ("0009_tokens", "0010_approvals", "0011_chain")
        rows = db.execute_sql("SELECT id, request_id, status, lamports, last_valid_block_height, chain_fee_lamports "
                              "FROM wallet_transactions ORDER BY id").fetchall()
        assert rows == [(10, "r0", "signed", 0, None, None), (11, "r1", "submitted", 1, None, None),
                        (12, "r2", "rejected", 2, None, None)]
        db.execute_sql("UPDATE wallet_transactions SET status = 'expired' WHERE id = 10")
        for bad in ("status = 'lost'", "signature = NULL", "last_valid_block_height = -1", "chain_fee_lamports = -1"):
            with pytest.raises(peewee.IntegrityError), db.atomic():
                db.execute_sql(f"UPDATE wallet_transactions SET {bad} WHERE id = 11")
        with pytest.raises(peewee.IntegrityError), db.atomic():  # the unique request id index survived
            db.execute_sql("UPDATE wallet_transactions SET request_id = 'r0' WHERE id = 11")
        row = WalletTransaction.create(request_id="new", wallet="W", status="signed", message_sha256="bb", signature="s9")
        assert row.id == 13
        indexes = {index.name for index in db.get_indexes("wallet_transactions")}
        assert {"wallet_transactions_request_id", "wallet_transactions_signature",
                "wallet_transactions_wallet_created_at_status_lamports", "wallet_transactions_wallet_id",
                "wallet_transactions_wallet_message_sha256"} <= indexes


def test_spend_releases_rules(db):
    from jarvis_wallet.models import SpendRelease

    def release(**overrides):
        values = dict(transaction_id=1, wallet="W", asset="SOL", amount=5, reason="expired",
                      tx_created_at=utc_now(), evidence="{}", released_by="test", created_at=utc_now())
        values.update(overrides)
        with db.atomic():
            SpendRelease.create(**values)

    mint = "Mint111111111111111111111111111111111111111"
    release()
    # The same transaction, another asset: a mint's amount is u64 base units, exact at the top.
    release(asset=mint, amount=None, amount_base_units=2**64 - 1)
    assert SpendRelease.get(SpendRelease.asset == mint).amount_base_units == 2**64 - 1
    for bad in (
        {}, {"transaction_id": 2, "amount": 0}, {"transaction_id": 2, "reason": "confirmed"},
        {"transaction_id": 2, "asset": mint},  # a mint's release in lamports
        {"transaction_id": 2, "asset": mint, "amount": None, "amount_base_units": 0},
        {"transaction_id": 2, "amount_base_units": 5},  # SOL in base units too
        {"transaction_id": 2, "amount": None},
    ):
        with pytest.raises(peewee.IntegrityError):
            release(**bad)  # released once per asset; a positive amount in its asset's column; expired or failed only


def test_approvals_migration_keeps_notify_above_a_flag_and_checks_its_rows(database_url):
    """0010 adds the approval threshold beside notify_above (left as it was), the approval link
    of audit rows (null before), and approval_requests with its CHECKs."""
    from jarvis_wallet.models import ApprovalRequest

    wallet = random_pubkey()
    with session(database_url, create=True, require_schema=False) as db:
        apply_migrations(db, upto="0008_wallet_transactions_kind_and_message_text")
        db.execute_sql(
            "INSERT INTO spend_limits (wallet, per_tx_lamports, daily_lamports, notify_above_lamports, updated_at) "
            f"VALUES ({db.param}, 10, 100, 7, '2026-01-01 00:00:00')", (wallet,),
        )
        db.execute_sql(
            "INSERT INTO wallet_transactions (request_id, wallet, status, lamports, fee_lamports, message_sha256, "
            "signature, kind, created_at, updated_at) VALUES ('old', 'W', 'signed', 0, 0, 'aa', 'sig', 'transaction', "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
        assert apply_migrations(db)[:3] == ("0009_tokens", "0010_approvals", "0011_chain")
        check_schema(db)
        limits = SpendLimit.get(SpendLimit.wallet == wallet)
        assert (limits.notify_above_lamports, limits.approve_above_lamports) == (7, None)
        assert WalletTransaction.get(WalletTransaction.request_id == "old").approval_id is None
        base = dict(wallet=wallet, intent_sha256="a" * 64, request_id="r", created_at=utc_now(), expires_at=utc_now())
        ApprovalRequest.create(status="pending", **base)
        for bad in (
            {"status": "approved"},  # approved without decided_at
            {"status": "consumed", "decided_at": utc_now()},  # consumed without consumed_at
            {"status": "pending", "consumed_at": utc_now()},
            {"status": "maybe"},
            {"status": "pending", "lamports": -1},
        ):
            with pytest.raises(peewee.IntegrityError), db.atomic():
                ApprovalRequest.create(**{**base, **bad})
        with pytest.raises(peewee.IntegrityError), db.atomic():
            SpendLimit.update(approve_above_lamports=-1).where(SpendLimit.wallet == wallet).execute()


def test_0012_shortens_the_audit_keys_and_keeps_every_row_rule_and_lookup(database_url, cli):
    """0012 replaces the whole-text signature and (wallet, message hash) indexes by keys of their
    first characters: rows (made at 0011) are kept as they were and read as before, a signature is
    still unique (a shared prefix is refused too), and lookups by signature and by hash still work."""
    from jarvis_wallet.ledger import get_transaction

    wallet = random_pubkey()
    signature = "5" * 40 + "Sig" * 16
    with session(database_url, create=True, require_schema=False) as db:
        apply_migrations(db, upto="0011_chain")
        for i, (status, sig) in enumerate((("signed", signature), ("rejected", None), ("signed", "short"))):
            db.execute_sql(
                "INSERT INTO wallet_transactions (request_id, wallet, status, lamports, fee_lamports, message_sha256, "
                "signature, kind, created_at, updated_at, approval_id) VALUES "
                f"({db.param}, {db.param}, {db.param}, {i}, 0, {db.param}, {db.param}, 'transaction', "
                f"'2026-01-01 00:00:00', '2026-01-01 00:00:00', {db.param})",
                (f"r{i}", wallet, status, f"{i:x}" * 64, sig, 7 if i == 2 else None),
            )
        before = db.execute_sql("SELECT * FROM wallet_transactions ORDER BY id").fetchall()
        assert apply_migrations(db) == ("0012_wallet_transactions_shorter_keys",)
        check_schema(db)
        assert db.execute_sql("SELECT * FROM wallet_transactions ORDER BY id").fetchall() == before
        names = {index.name for index in db.get_indexes("wallet_transactions")}
        assert {"wallet_transactions_signature_key", "wallet_transactions_message_key",
                "wallet_transactions_approval_id", "wallet_transactions_request_id",
                "wallet_transactions_wallet_created_at_status_lamports", "wallet_transactions_wallet_id"} <= names
        assert not {"wallet_transactions_signature", "wallet_transactions_wallet_message_sha256"} & names
        assert get_transaction(signature).request_id == "r0"
        assert get_transaction("short").request_id == "r2"
        for n, other in enumerate((signature, signature[:16] + "different", "short")):  # the same key: refused
            with pytest.raises(peewee.IntegrityError), db.atomic():
                WalletTransaction.insert(**_tx_fields(request_id=f"n-{n}", signature=other)).execute()
        WalletTransaction.insert(**_tx_fields(request_id="n-ok", signature="6" + signature[1:])).execute()
    result = cli("tx", "show", signature, "--json", url=database_url)
    assert result.exit_code == 0, result.stderr
    assert result.json()["signature"] == signature and result.json()["message_sha256"] == "0" * 64


def test_sqlite_finds_signatures_and_message_hashes_through_their_keys(database_url):
    """SQLite plans the signer's earlier-signature lookup and a lookup by signature through the
    0012 keys, not a scan of the audit trail (comparing the whole column to a value would let
    SQLite fold that value into the key's expression and scan instead)."""
    from jarvis_wallet.ledger import by_signature
    from jarvis_wallet.signing import _Statements

    with session(database_url, create=True, require_schema=False) as db:
        if not is_sqlite(db):
            pytest.skip("PostgreSQL's plans: docs/performance.md, checked with EXPLAIN")
        apply_migrations(db)
        statements = _Statements(db)
        for count in (1, 3):
            sql = statements.earlier_signatures(count)
            plan = db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", ["k"] * count + ["h"] * count + ["W"]).fetchall()
            assert "USING INDEX wallet_transactions_message_key" in plan[0][-1], plan
        sql, params = WalletTransaction.select(WalletTransaction.id).where(by_signature(db, "5" * 88)).sql()
        plan = db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        assert "USING INDEX wallet_transactions_signature_key" in plan[0][-1], plan
