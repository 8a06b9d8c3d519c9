import pytest

from conftest import random_pubkey


def test_set_get_list_unset(cli, initialised_url):
    key = random_pubkey()
    assert cli("config", "set", "rpc_url", "https://api.devnet.solana.com", url=initialised_url).exit_code == 0
    assert cli("config", "set", "wallet_public_key", f" {key} ", url=initialised_url).exit_code == 0
    assert cli("config", "set", "x.team", "payments", url=initialised_url).exit_code == 0
    got = cli("config", "get", "wallet_public_key", url=initialised_url)
    assert got.exit_code == 0 and got.stdout == f"{key}\n"
    listed = cli("config", "list", "--json", url=initialised_url).json()
    assert [row["key"] for row in listed] == ["rpc_url", "wallet_public_key", "x.team"]
    assert listed[0]["description"].startswith("Solana JSON-RPC endpoint")
    assert cli("config", "set", "rpc_url", "http://127.0.0.1:8899", url=initialised_url).exit_code == 0
    assert cli("config", "get", "rpc_url", "--json", url=initialised_url).json()["value"] == "http://127.0.0.1:8899"
    assert cli("config", "unset", "x.team", url=initialised_url).exit_code == 0
    missing = cli("config", "get", "x.team", url=initialised_url)
    assert missing.exit_code == 4 and "Error: configuration key 'x.team' is not set" in missing.stderr


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("rpc_url", "ftp://example.com", "expected a http or https URL"),
        ("rpc_url", "not a url", "expected a http or https URL"),
        ("wss_url", "https://example.com", "expected a ws or wss URL"),
        ("wallet_public_key", "abc", "invalid public key 'abc'"),
        ("wallet_public_key", "0OIl0OIl", "not base58"),
        ("allowed_programs", "11111111111111111111111111111111,zzz", "invalid program id"),
        ("durable_nonce_accounts", "zzz", "invalid nonce account"),
        ("colour", "blue", "unknown configuration key 'colour'"),
        ("x.", "v", "unknown configuration key 'x.'"),
    ],
)
def test_bad_settings_are_refused(cli, initialised_url, key, value, message):
    result = cli("config", "set", key, value, url=initialised_url)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert cli("config", "list", "--json", url=initialised_url).json() == []


def test_unset_unknown_key(cli, initialised_url):
    result = cli("config", "unset", "rpc_url", url=initialised_url)
    assert result.exit_code == 4 and "is not set" in result.stderr
