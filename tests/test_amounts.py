import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jarvis_wallet.amounts import (
    MAX_LAMPORTS,
    MAX_TOKEN_BASE_UNITS,
    format_lamports,
    format_sol,
    format_token_amount,
    parse_amount,
    parse_token_amount,
)
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


# -- token amounts ----------------------------------------------------------------------------

U64 = 2**64 - 1


@pytest.mark.parametrize(
    "text, decimals, units",
    [
        ("12.5", 6, 12_500_000),
        ("12500000base", 6, 12_500_000),
        ("12500000 base", 6, 12_500_000),
        ("12500000BASE", 6, 12_500_000),
        ("0", 6, 0),
        ("0.000001", 6, 1),
        ("0.0000010", 6, 1),  # trailing zeros are not precision
        (".5", 2, 50),
        ("7.", 2, 700),
        ("1_000.25", 2, 100_025),
        ("  3 ", 0, 3),
        ("3.000", 0, 3),
        ("12.5usdc", 6, 12_500_000),
        ("12.5 USDC", 6, 12_500_000),
        ("18446744073709.551615", 6, U64),
        (f"{U64}base", 6, U64),
        (f"{U64}", 0, U64),
        ("0.00000000000000000001", 20, 1),
        ("1", 255, 10**255),  # far above u64: refused below; here with the maximum lifted
    ],
)
def test_parse_token_amount_accepts(text, decimals, units):
    maximum = 10**255 if decimals == 255 else MAX_TOKEN_BASE_UNITS
    assert parse_token_amount(text, decimals, symbol="USDC", maximum=maximum) == units


@pytest.mark.parametrize(
    "text, decimals, message",
    [
        ("0.0000001", 6, "'0.0000001': USDC has 6 decimals; write at most 6 places, or base units (12500000base)"),
        ("1.5", 0, "'1.5': USDC has 0 decimals; write at most 0 places, or base units (12500000base)"),
        ("18446744073709.551616", 6, "'18446744073709.551616': larger than the maximum of 18446744073709551615 base units"),
        (f"{U64 + 1}base", 6, f"'{U64 + 1}base': larger than the maximum of 18446744073709551615 base units"),
        ("1" * 5000, 6, "larger than the maximum"),
        ("1", 20, "'1': larger than the maximum of 18446744073709551615 base units"),
        ("1.5base", 6, "'1.5base': base units are whole numbers"),
        ("-1", 6, "'-1': must not be negative"),
        ("-0.5", 6, "'-0.5': must not be negative"),
        ("", 6, "'': use token units (12.5) or base units with a suffix (12500000base)"),
        (".", 6, "'.': use token units (12.5) or base units with a suffix (12500000base)"),
        ("1e5", 6, "'1e5': unknown unit 'e5' (use USDC or base)"),
        ("12.5SOL", 6, "'12.5SOL': unknown unit 'SOL' (use USDC or base)"),
        ("abc", 6, "'abc': use token units (12.5) or base units with a suffix (12500000base)"),
        ("1.2.3", 6, "use token units"),
        ("1,5", 6, "use token units"),
        ("\u0661", 6, "use token units"),  # an Arabic-Indic digit is not ours to read
    ],
)
def test_parse_token_amount_refuses(text, decimals, message):
    with pytest.raises(InvalidAmount) as excinfo:
        parse_token_amount(text, decimals, symbol="USDC", what="--amount")
    assert message in str(excinfo.value)
    assert str(excinfo.value).startswith("invalid --amount") and "\n" not in str(excinfo.value)


def test_parse_token_amount_without_a_symbol_and_bad_decimals():
    with pytest.raises(InvalidAmount, match=r"unknown unit 'USDC' \(use base\)"):
        parse_token_amount("1USDC", 6)
    with pytest.raises(InvalidAmount, match="the token has 2 decimals"):
        parse_token_amount("0.001", 2)
    for decimals in (-1, 256, True, "6"):
        with pytest.raises(InvalidAmount, match="decimals must be an integer from 0 to 255"):
            parse_token_amount("1", decimals)
    with pytest.raises(InvalidAmount, match="expected text"):
        parse_token_amount(5, 6)


@pytest.mark.parametrize(
    "units, decimals, text",
    [(12_500_000, 6, "12.5"), (0, 6, "0"), (1, 6, "0.000001"), (10**6, 6, "1"), (U64, 6, "18446744073709.551615"),
     (5, 0, "5"), (1, 9, "0.000000001"), (-1_500, 3, "-1.5")],
)
def test_format_token_amount(units, decimals, text):
    assert format_token_amount(units, decimals) == text
    assert format_token_amount(units, decimals, symbol="USDC") == f"{text} USDC"


@settings(max_examples=500, deadline=None)
@given(units=st.integers(0, U64), decimals=st.integers(0, 30))
def test_token_amounts_round_trip_exactly(units, decimals):
    text = format_token_amount(units, decimals)
    assert parse_token_amount(text, decimals) == units
    assert parse_token_amount(f"{units}base", decimals) == units


@settings(max_examples=500, deadline=None)
@given(text=st.text(max_size=30), decimals=st.integers(0, 18))
def test_parse_token_amount_fuzz_raises_only_invalid_amount(text, decimals):
    try:
        units = parse_token_amount(text, decimals, symbol="USDC")
    except InvalidAmount as exc:
        assert "\n" not in str(exc).replace(repr(text.strip()), "")
    else:
        assert 0 <= units <= U64
