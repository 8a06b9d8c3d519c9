import pytest

from jarvis_wallet.amounts import MAX_LAMPORTS, format_lamports, format_sol, parse_amount
from jarvis_wallet.errors import InvalidAmount


@pytest.mark.parametrize(
    "text, lamports",
    [
        ("1500000", 1_500_000),
        ("0", 0),
        ("1.5SOL", 1_500_000_000),
        ("0.002 SOL", 2_000_000),
        ("1 sol", 1_000_000_000),
        (".5SOL", 500_000_000),
        ("0.000000001SOL", 1),
        ("250 lamports", 250),
        ("1 lamport", 1),
        ("  42 ", 42),
        ("1_000", 1000),
        (str(MAX_LAMPORTS), MAX_LAMPORTS),
        (7, 7),
    ],
)
def test_parse_amount_accepts(text, lamports):
    assert parse_amount(text) == lamports


@pytest.mark.parametrize(
    "text, message",
    [
        ("-1", "must not be negative"),
        ("-0.5SOL", "must not be negative"),
        ("0.0000000001SOL", "at most 9 decimals"),
        (str(MAX_LAMPORTS + 1), "larger than the maximum"),
        ("9223372037SOL", "larger than the maximum"),
        ("1" * 5000, "larger than the maximum"),
        ("1.5", "lamports are whole numbers"),
        ("1e5", "use integer lamports"),
        ("abc", "use integer lamports"),
        ("", "use integer lamports"),
        ("5 BTC", "unknown unit 'BTC'"),
        (True, "expected a number"),
        (-3, "must not be negative"),
    ],
)
def test_parse_amount_refuses_with_reason(text, message):
    with pytest.raises(InvalidAmount) as info:
        parse_amount(text, what="--daily")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "lamports, text",
    [(0, "0 SOL"), (1, "0.000000001 SOL"), (49, "0.000000049 SOL"), (1_500_000_000, "1.5 SOL"), (2_000_000_000, "2 SOL")],
)
def test_format_sol_is_exact(lamports, text):
    assert format_sol(lamports) == text
    assert parse_amount(text.replace(" ", "")) == lamports


def test_format_lamports_shows_both_units():
    assert format_lamports(500_000_000) == "500,000,000 lamports (0.5 SOL)"
