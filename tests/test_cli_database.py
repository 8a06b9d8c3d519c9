from jarvis_wallet.db import session
from jarvis_wallet.migrations import MIGRATIONS, apply_migrations
from jarvis_wallet.models import SchemaMigration


def test_init_db_twice_says_what_and_where(cli, database_url):
    first = cli("init-db", url=database_url)
    assert first.exit_code == 0, first.stderr
    assert f"applied {len(MIGRATIONS)} migration(s)" in first.stdout
    second = cli("init-db", url=database_url)
    assert second.exit_code == 0
    assert "already up to date" in second.stdout and "nothing changed" in second.stdout


def test_init_db_json(cli, database_url):
    data = cli("init-db", "--json", url=database_url).json()
    assert data["applied"] == [m.name for m in MIGRATIONS]
    assert data["schema_version"] == MIGRATIONS[-1].name
    assert cli("init-db", "--json", url=database_url).json()["applied"] == []


def test_init_db_upgrades_a_first_version_schema(cli, database_url):
    with session(database_url, create=True, require_schema=False) as db:
        apply_migrations(db, upto=MIGRATIONS[0].name)
    assert cli("limits", "show", url=database_url).exit_code == 3
    result = cli("init-db", url=database_url)
    assert result.exit_code == 0
    assert f"applied {len(MIGRATIONS) - 1} migration(s)" in result.stdout
    assert cli("limits", "show", "--json", url=database_url).json() == []


def test_default_database_is_the_sqlite_file_in_the_data_dir(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    result = cli("init-db")
    assert result.exit_code == 0
    assert f"sqlite://{tmp_path}/xdg/jarvis-wallet/wallet.db" in result.stdout
    assert (tmp_path / "xdg" / "jarvis-wallet" / "wallet.db").exists()


def test_environment_url_is_used_and_flag_wins(cli, tmp_path):
    env_url = f"sqlite://{tmp_path}/env.db"
    flag_url = f"sqlite://{tmp_path}/flag.db"
    assert cli("init-db", env={"JARVIS_WALLET_DATABASE_URL": env_url}).exit_code == 0
    assert (tmp_path / "env.db").exists()
    assert cli("init-db", url=flag_url, env={"JARVIS_WALLET_DATABASE_URL": env_url}).exit_code == 0
    assert (tmp_path / "flag.db").exists()


def test_errors_are_one_line_with_exit_codes(cli, tmp_path, initialised_url):
    cases = [
        (("limits", "show"), "mysql://x/y", 2, "Error: unsupported database URL scheme 'mysql'"),
        (("limits", "show"), "postgresql://", 2, "Error: malformed PostgreSQL URL"),
        (("limits", "show"), "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2", 3,
         "Error: database postgresql://postgres@127.0.0.1:1/test is unavailable"),
        (("limits", "show"), f"sqlite://{tmp_path}/none.db", 3, "run `jarvis-wallet init-db` first"),
    ]
    for args, url, code, message in cases:
        result = cli(*args, url=url)
        assert result.exit_code == code, (args, url, result.stderr)
        assert message in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_schema_newer_than_this_version(cli, initialised_url):
    with session(initialised_url):
        SchemaMigration.create(name="9999_newer")
    result = cli("limits", "show", url=initialised_url)
    assert result.exit_code == 3
    assert "Error: database" in result.stderr and "9999_newer" in result.stderr and "upgrade jarvis-wallet" in result.stderr
    assert cli("init-db", url=initialised_url).exit_code == 3


def test_schema_not_initialised_in_an_existing_database(cli, database_url):
    with session(database_url, create=True, require_schema=False):
        pass
    result = cli("tx", "list", url=database_url)
    assert result.exit_code == 3
    assert "is not initialised; run `jarvis-wallet init-db`" in result.stderr


def test_version(cli):
    from jarvis_wallet import __version__

    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"jarvis-wallet {__version__}"
