"""`jarvis-wallet tokens add|list|remove` and `limits set|show|remove --token`: exact output,
exit codes, and one-line errors that lose nothing."""

from __future__ import annotations

import pytest

from jarvis_wallet.db import session
from jarvis_wallet.errors import InvalidInput
from jarvis_wallet.models import TokenLimit, TokenMint
from jarvis_wallet.tokens import add_token

from conftest import random_pubkey

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
PYUSD = "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo"


def add(cli, url, symbol="USDC", mint=USDC, *extra):
    return cli("tokens", "add", symbol, "--mint", mint, *extra, url=url)


def test_add_list_remove(cli, initialised_url):
    url = initialised_url
    added = add(cli, url, "USDC", USDC, "--decimals", "6", "--program", "token")
    assert added.exit_code == 0, added.stderr
    assert added.stdout == (
        f"Registered USDC: mint {USDC}, program token, 6 decimals. Give a wallet limits for it: "
        "jarvis-wallet limits set --token USDC --per-tx AMOUNT --daily AMOUNT\n"
    )
    assert add(cli, url, "PYUSD", PYUSD, "--decimals", "6", "--program", "token-2022").exit_code == 0
    listed = cli("tokens", "list", "--json", url=url).json()
    assert [(t["symbol"], t["mint"], t["program"], t["decimals"], t["extensions"], t["allowed_extensions"]) for t in listed] == [
        ("PYUSD", PYUSD, "token-2022", 6, None, []), ("USDC", USDC, "token", 6, None, []),
    ]
    table = cli("tokens", "list", url=url).stdout
    assert "USDC" in table and USDC in table and "unknown" in table
    removed = cli("tokens", "remove", "usdc", url=url)
    assert removed.exit_code == 0
    assert removed.stdout == f"Removed USDC (mint {USDC}); the signer now refuses every movement of it\n"
    assert [t["symbol"] for t in cli("tokens", "list", "--json", url=url).json()] == ["PYUSD"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("USDC", USDC, "--decimals", "6"), "without reading the mint from the chain, give both --decimals and --program"),
        (("USDC", USDC, "--program", "token"), "without reading the mint from the chain, give both --decimals and --program"),
        (("USDC", USDC, "--decimals", "6", "--program", "token-2023"), "unknown token program 'token-2023': use token or token-2022"),
        (("US DC", USDC, "--decimals", "6", "--program", "token"), "invalid token symbol 'US DC'"),
        (("USDC", "not-a-key", "--decimals", "6", "--program", "token"), "mint"),
        (("USDC", USDC, "--decimals", "6", "--program", "token", "--allow-extension", "transfer_hook"),
         "--allow-extension needs the mint read from the chain"),
        (("USDC", USDC, "--decimals", "6", "--program", "token-2022", "--allow-extension", "warp_drive"),
         "unknown extension name 'warp_drive'"),
    ],
)
def test_add_refuses_bad_input_in_one_line(cli, initialised_url, args, message):
    symbol, mint, *extra = args
    result = add(cli, initialised_url, symbol, mint, *extra)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and message in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stdout + result.stderr
    with session(initialised_url):
        assert TokenMint.select().count() == 0


def test_decimals_are_bounded(cli, initialised_url):
    result = add(cli, initialised_url, "USDC", USDC, "--decimals", "256", "--program", "token")
    assert result.exit_code == 2 and "256" in result.stderr


def test_symbol_and_mint_are_each_registered_once(cli, initialised_url):
    url = initialised_url
    assert add(cli, url, "USDC", USDC, "--decimals", "6", "--program", "token").exit_code == 0
    again = add(cli, url, "usdc", PYUSD, "--decimals", "6", "--program", "token")
    assert again.exit_code == 2 and f"symbol USDC is already registered (mint {USDC})" in again.stderr
    same_mint = add(cli, url, "OTHER", USDC, "--decimals", "6", "--program", "token")
    assert same_mint.exit_code == 2 and f"mint {USDC} is already registered as USDC" in same_mint.stderr


def test_remove_refuses_while_limits_reference_it_unless_forced(cli, initialised_url):
    url, wallet = initialised_url, random_pubkey()
    add(cli, url, "USDC", USDC, "--decimals", "6", "--program", "token")
    assert cli("limits", "set", "--wallet", wallet, "--token", "USDC", "--per-tx", "1", "--daily", "2", url=url).exit_code == 0
    refused = cli("tokens", "remove", "USDC", url=url)
    assert refused.exit_code == 2 and "1 wallet(s) have limits for USDC" in refused.stderr
    forced = cli("tokens", "remove", "USDC", "--force", url=url)
    assert forced.exit_code == 0 and "and the limits of 1 wallet(s)" in forced.stdout
    with session(url):
        assert TokenLimit.select().count() == 0 and TokenMint.select().count() == 0
    assert cli("tokens", "remove", "USDC", url=url).exit_code == 4


def test_token_limits_in_units_and_base_units(cli, initialised_url):
    url, wallet = initialised_url, random_pubkey()
    add(cli, url, "USDC", USDC, "--decimals", "6", "--program", "token")
    cli("limits", "set", "--wallet", wallet, "--per-tx", "1SOL", "--daily", "2SOL", url=url)
    set_ = cli("limits", "set", "--wallet", wallet, "--token", "USDC", "--per-tx", "25", "--daily", "200000000base", url=url)
    assert set_.exit_code == 0, set_.stderr
    assert set_.stdout == (
        f"USDC limits for {wallet}: per transaction 25 USDC (25000000 base units), daily 200 USDC (200000000 base units), no approval threshold\n"
    )
    # An option left out keeps its value.
    assert cli("limits", "set", "--wallet", wallet, "--token", "usdc", "--per-tx", "12.5USDC", url=url).exit_code == 0
    shown = cli("limits", "show", "--wallet", wallet, "--json", url=url).json()
    assert shown["tokens"] == [{
        "mint": USDC, "symbol": "USDC", "decimals": 6,
        "per_tx": "12.5", "per_tx_base_units": "12500000", "daily": "200", "daily_base_units": "200000000",
        "spent_24h": "0", "spent_24h_base_units": "0", "remaining_24h": "200", "remaining_24h_base_units": "200000000",
        "approve_above": None, "approve_above_base_units": None, "updated_at": shown["tokens"][0]["updated_at"],
    }]
    table = cli("limits", "show", url=url).stdout
    assert "Token limits" in table and "12.5 (12500000)" in table
    removed = cli("limits", "remove", "--wallet", wallet, "--token", "USDC", url=url)
    assert removed.exit_code == 0 and "refuses it every movement of USDC" in removed.stdout
    assert cli("limits", "show", "--wallet", wallet, "--json", url=url).json()["tokens"] == []
    # The SOL limits are untouched.
    assert cli("limits", "show", "--wallet", wallet, "--json", url=url).json()["per_tx_lamports"] == 10**9


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("--per-tx", "1.0000001", "--daily", "2"), 2, "USDC has 6 decimals"),
        (("--per-tx", "3", "--daily", "2"), 2, "is above the daily limit"),
        (("--per-tx", "1.5base", "--daily", "2"), 2, "base units are whole numbers"),
        (("--per-tx", "1SOL", "--daily", "2"), 2, "unknown unit 'SOL'"),
        (("--per-tx", "18446744073709551616base", "--daily", "18446744073709551616base"), 2, "larger than the maximum of 18446744073709551615 base units"),
        (("--per-tx", "1"), 2, "has no USDC limits yet: give both --per-tx and --daily"),
        (("--per-tx", "1", "--daily", "2", "--notify-above", "1"), 2, "--notify-above applies to SOL limits"),
    ],
)
def test_token_limits_refuse_bad_amounts(cli, initialised_url, args, code, message):
    url = initialised_url
    add(cli, url, "USDC", USDC, "--decimals", "6", "--program", "token")
    result = cli("limits", "set", "--wallet", random_pubkey(), "--token", "USDC", *args, url=url)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1
    with session(url):
        assert TokenLimit.select().count() == 0


def test_the_largest_u64_limit_round_trips_exactly(cli, initialised_url):
    url, wallet = initialised_url, random_pubkey()
    add(cli, url, "USDC", USDC, "--decimals", "6", "--program", "token")
    top = str(2**64 - 1)
    assert cli("limits", "set", "--wallet", wallet, "--token", "USDC", "--per-tx", top + "base", "--daily", top + "base",
               url=url).exit_code == 0
    cli("limits", "set", "--wallet", wallet, "--per-tx", "1", "--daily", "1", url=url)
    (usdc,) = cli("limits", "show", "--wallet", wallet, "--json", url=url).json()["tokens"]
    assert (usdc["daily_base_units"], usdc["daily"]) == (top, "18446744073709.551615")


def test_an_offline_registration_cannot_allow_extensions(db):
    with pytest.raises(InvalidInput, match="--allow-extension needs the mint read from the chain"):
        add_token("PYUSD", mint=PYUSD, decimals=6, program="token-2022", allowed_extensions=["permanent-delegate"])
