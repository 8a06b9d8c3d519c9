import os
import stat

import pytest

from jarvis_wallet.db import open_database, parse_database_url, session
from jarvis_wallet.errors import DatabaseUnavailable, InvalidConfig, SchemaNotInitialised


def test_sqlite_url_is_an_absolute_path(tmp_path):
    target = parse_database_url(f"sqlite://{tmp_path}/w.db")
    assert target.backend == "sqlite"
    assert target.sqlite_path == tmp_path / "w.db"
    assert parse_database_url(f"sqlite:///{tmp_path}/w.db").sqlite_path == tmp_path / "w.db"


def test_postgres_url_is_parsed_and_password_hidden():
    target = parse_database_url("postgresql://alice:s3cret@db.example:6543/wallet?sslmode=require")
    assert target.backend == "postgresql"
    assert target.postgres_params["password"] == "s3cret"
    assert target.postgres_params["sslmode"] == "require"
    assert target.postgres_params["port"] == 6543
    assert "s3cret" not in target.display
    assert target.display == "postgresql://alice@db.example:6543/wallet"



def test_postgres_connections_give_up_on_a_silent_network_by_default():
    # A partition drops packets without resetting anything; without these, libpq waits for
    # TCP's retransmissions (test_faults.py::test_a_partition_mid_transaction_* shows it).
    params = parse_database_url("postgresql://u@h/db").postgres_params
    assert {key: params[key] for key in ("connect_timeout", "keepalives", "keepalives_idle",
            "keepalives_interval", "keepalives_count", "tcp_user_timeout")} == {
        "connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
        "keepalives_count": 3, "tcp_user_timeout": 10_000,
    }
    overridden = parse_database_url("postgresql://u@h/db?tcp_user_timeout=30000&keepalives_idle=20")
    assert overridden.postgres_params["tcp_user_timeout"] == "30000"
    assert overridden.postgres_params["keepalives_idle"] == "20"


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://root@localhost/db", "unsupported database URL scheme 'mysql'"),
        ("wallet.db", "unsupported database URL scheme"),
        ("", "empty database URL"),
        ("sqlite://relative.db", "malformed SQLite URL"),
        ("sqlite:///", "malformed SQLite URL"),
        ("postgresql://localhost", "malformed PostgreSQL URL"),
        ("postgresql://localhost:99999/db", "malformed database URL"),
        ("postgresql://localhost/db?evil=1", "unsupported PostgreSQL URL parameter 'evil'"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url, message):
    with pytest.raises(InvalidConfig) as info:
        parse_database_url(url)
    assert message in str(info.value)


def test_missing_sqlite_file_is_not_created_by_readers(tmp_path):
    with pytest.raises(SchemaNotInitialised, match="run `jarvis-wallet init-db`"):
        open_database(f"sqlite://{tmp_path}/missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_sqlite_runs_wal_full_sync_foreign_keys(initialised_url):
    if not initialised_url.startswith("sqlite"):
        pytest.skip("SQLite pragmas")
    with session(initialised_url) as db:
        assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute_sql("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1


def test_default_data_directory_is_created_private(monkeypatch, tmp_path):
    from jarvis_wallet.config import default_database_url

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    os.umask(0o022)
    db = open_database(default_database_url(), create=True)
    db.close()
    mode = stat.S_IMODE((tmp_path / "xdg" / "jarvis-wallet").stat().st_mode)
    assert mode == 0o700


def test_unreachable_postgres_is_a_one_line_error():
    with pytest.raises(DatabaseUnavailable) as info:
        open_database("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")
    assert "postgresql://postgres@127.0.0.1:1/test is unavailable" in str(info.value)
    assert "\n" not in str(info.value)
