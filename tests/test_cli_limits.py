import pytest

from jarvis_wallet.db import session
from jarvis_wallet.models import WalletTransaction, utc_now

from conftest import random_pubkey


def test_done_means_flow(cli, database_url):
    """The issue's acceptance: init-db twice, limits set in SOL, show --json in lamports."""
    key = random_pubkey()
    assert cli("init-db", url=database_url).exit_code == 0
    assert cli("init-db", url=database_url).exit_code == 0
    result = cli("limits", "set", "--wallet", key, "--per-tx", "0.5SOL", "--daily", "2SOL", url=database_url)
    assert result.exit_code == 0, result.stderr
    assert "500,000,000 (0.5 SOL)" in result.stdout
    shown = cli("limits", "show", "--wallet", key, "--json", url=database_url).json()
    assert shown["wallet"] == key
    assert shown["per_tx_lamports"] == 500_000_000
    assert shown["daily_lamports"] == 2_000_000_000
    assert shown["spent_24h_lamports"] == 0
    assert shown["remaining_24h_lamports"] == 2_000_000_000


def test_show_counts_the_last_24_hours(cli, initialised_url):
    import datetime

    key = random_pubkey()
    cli("limits", "set", "--wallet", key, "--per-tx", "1000", "--daily", "5000", url=initialised_url)
    now = utc_now()
    with session(initialised_url):
        for i, (status, lamports, age_hours) in enumerate(
            [("signed", 1000, 1), ("confirmed", 700, 23), ("failed", 300, 2), ("rejected", 900, 1), ("signed", 800, 25)]
        ):
            WalletTransaction.create(
                request_id=f"r{i}", wallet=key, status=status, lamports=lamports, message_sha256="0" * 64,
                signature=None if status == "rejected" else f"s{i}",
                created_at=now - datetime.timedelta(hours=age_hours), updated_at=now,
            )
    shown = cli("limits", "show", "--wallet", key, "--json", url=initialised_url).json()
    # Signed, confirmed and failed all count (the signature was released); rejected and older rows do not.
    assert shown["spent_24h_lamports"] == 2000
    assert shown["remaining_24h_lamports"] == 3000


def test_wallet_defaults_to_configured_key(cli, initialised_url):
    key = random_pubkey()
    missing = cli("limits", "set", "--per-tx", "1", "--daily", "2", url=initialised_url)
    assert missing.exit_code == 2 and "wallet_public_key is not configured" in missing.stderr
    cli("config", "set", "wallet_public_key", key, url=initialised_url)
    assert cli("limits", "set", "--per-tx", "1", "--daily", "2", "--notify-above", "1", url=initialised_url).exit_code == 0
    listed = cli("limits", "show", "--json", url=initialised_url).json()
    assert [(r["wallet"], r["per_tx_lamports"], r["daily_lamports"], r["notify_above_lamports"]) for r in listed] == [(key, 1, 2, 1)]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--per-tx", "-1", "--daily", "2SOL"), "Error: invalid --per-tx '-1': must not be negative"),
        (("--per-tx", "1", "--daily", "9223372036854775808"), "Error: invalid --daily '9223372036854775808': larger than the maximum"),
        (("--per-tx", "0.0000000001SOL", "--daily", "1SOL"), "at most 9 decimals"),
        (("--per-tx", "3SOL", "--daily", "2SOL"), "Error: the per-transaction limit (3000000000 lamports) is above the daily limit (2000000000 lamports)"),
        (("--per-tx", "1", "--daily", "2", "--notify-above", "x"), "Error: invalid --notify-above 'x'"),
    ],
)
def test_bad_limits_are_refused(cli, initialised_url, args, message):
    key = random_pubkey()
    result = cli("limits", "set", "--wallet", key, *args, url=initialised_url)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert cli("limits", "show", "--json", url=initialised_url).json() == []


@pytest.mark.parametrize("bad", ["abc", "0OIl" * 8, "1" * 60])
def test_invalid_public_key(cli, initialised_url, bad):
    result = cli("limits", "set", "--wallet", bad, "--per-tx", "1", "--daily", "1", url=initialised_url)
    assert result.exit_code == 2
    assert "Error: invalid wallet" in result.stderr


@pytest.mark.parametrize("command", [("limits", "set", "--per-tx", "1", "--daily", "1"), ("limits", "show"),
                                     ("limits", "remove"), ("tx", "list")])
def test_an_empty_wallet_is_an_error_not_the_configured_wallet(cli, initialised_url, command):
    """`--wallet "$(jarvis-wallet pubkey key.json)"` when pubkey fails: never the configured wallet."""
    configured = random_pubkey()
    cli("config", "set", "wallet_public_key", configured, url=initialised_url)
    cli("limits", "set", "--wallet", configured, "--per-tx", "5", "--daily", "9", url=initialised_url)
    result = cli(*command, "--wallet", "", url=initialised_url)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: Invalid value for '--wallet': the value is empty; give one, or leave the option out "
        f"(see `jarvis-wallet {' '.join(command[:2])} --help`)\n"
    )
    assert result.stdout == ""
    shown = cli("limits", "show", "--wallet", configured, "--json", url=initialised_url).json()
    assert (shown["per_tx_lamports"], shown["daily_lamports"]) == (5, 9)


def test_remove_and_show_unknown(cli, initialised_url):
    key = random_pubkey()
    cli("limits", "set", "--wallet", key, "--per-tx", "1", "--daily", "1", url=initialised_url)
    assert cli("limits", "remove", "--wallet", key, url=initialised_url).exit_code == 0
    for args in (("limits", "remove", "--wallet", key), ("limits", "show", "--wallet", key)):
        result = cli(*args, url=initialised_url)
        assert result.exit_code == 4 and f"wallet {key} has no spend limits" in result.stderr


def test_table_output_shows_both_units(cli, initialised_url):
    key = random_pubkey()
    cli("limits", "set", "--wallet", key, "--per-tx", "0.5SOL", "--daily", "2SOL", url=initialised_url)
    out = cli("limits", "show", url=initialised_url).stdout
    assert key in out and "500,000,000 (0.5 SOL)" in out and "2,000,000,000 (2 SOL)" in out


def test_limits_remove_says_what_the_signer_then_does_and_it_does(cli, signers):
    """Issue 11/18: 'refuses it everything' was not what happened to a message signed before."""
    from jarvis_wallet.errors import PolicyDenied

    from conftest import transfer_message

    keypair = signers.keypair()
    wallet = signers.set_limits(per_tx=10**6, daily=10**6)
    handle = signers.start()
    message = transfer_message(from_key=keypair.public_key, lamports=1000)
    with signers.client(handle) as client:
        first = client.sign_transaction(message)
        result = cli("limits", "remove", "--wallet", wallet, url=signers.database_url)
        assert result.exit_code == 0
        assert result.stdout == (
            f"Limits removed for {wallet}; the signer now refuses it every new signature (a message it already "
            "signed is answered with the recorded signature: nothing new is spent)\n"
        )
        again = client.sign_transaction(message)
        assert again.duplicate and again.signature == first.signature
        with pytest.raises(PolicyDenied) as refused:
            client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1000))
        assert refused.value.reason == "no_limits"


def test_options_left_out_keep_their_values_and_clearing_is_explicit(cli, initialised_url):
    key = random_pubkey()

    def shown():
        data = cli("limits", "show", "--wallet", key, "--json", url=initialised_url).json()
        return data["per_tx_lamports"], data["daily_lamports"], data["notify_above_lamports"]

    first = cli("limits", "set", "--wallet", key, "--per-tx", "10", "--daily", "100", "--notify-above", "7", url=initialised_url)
    assert first.exit_code == 0, first.stderr
    assert shown() == (10, 100, 7)
    changed = cli("limits", "set", "--wallet", key, "--per-tx", "20", url=initialised_url)
    assert changed.stdout == (
        f"Limits for {key}: per transaction 20 (0.00000002 SOL), daily 100 (0.0000001 SOL), notify above 7 (0.000000007 SOL), no approval threshold\n"
    )
    assert shown() == (20, 100, 7)  # --daily and --notify-above were left out: kept
    cli("limits", "set", "--wallet", key, "--daily", "50", url=initialised_url)
    assert shown() == (20, 50, 7)
    cleared = cli("limits", "set", "--wallet", key, "--clear-notify-above", url=initialised_url)
    assert cleared.exit_code == 0 and cleared.stdout.endswith(", no notify threshold, no approval threshold\n")
    assert shown() == (20, 50, None)


@pytest.mark.parametrize("args, message", [
    (("--per-tx", "1"), "has no limits yet: give both --per-tx and --daily"),
    ((), "nothing to set: give --per-tx, --daily, --notify-above, --approve-above or one of the --clear options"),
    (("--per-tx", "1", "--daily", "2", "--notify-above", "1", "--clear-notify-above"), "not both"),
])
def test_limits_set_refusals(cli, initialised_url, args, message):
    result = cli("limits", "set", "--wallet", random_pubkey(), *args, url=initialised_url)
    assert result.exit_code == 2 and message in result.stderr
    assert cli("limits", "show", "--json", url=initialised_url).json() == []
