"""`jarvis-wallet build-transfer --token`: token payments built by the CLI from mints registered
with `tokens add`, checked against the SPL builders, the decoder and the SPL Token program in
LiteSVM (tests/test_cli_token_transfer_e2e.py signs them with a real signer)."""

from __future__ import annotations

import base64
import json
import types

import base58
import pytest
import spl.token.instructions as spl
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message as SoldersMessage
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

from tests.runtime import SOL, sign
from tests.token_chain import TokenChain
from tests.token_vectors import spl_transfer_message

WALLET = Keypair.from_seed(bytes([61]) * 32)
OWNER = Keypair.from_seed(bytes([62]) * 32).pubkey()
USDC_MINT = Pubkey(bytes([63]) * 32)
T22_MINT = Pubkey(bytes([64]) * 32)
BLOCKHASH = base58.b58encode(bytes([3]) * 32).decode()
TOKENS = {
    "USDC": types.SimpleNamespace(symbol="USDC", mint=str(USDC_MINT), decimals=6, program="token"),
    "PYUSD": types.SimpleNamespace(symbol="PYUSD", mint=str(T22_MINT), decimals=6, program="token-2022"),
    "NFT": types.SimpleNamespace(symbol="NFT", mint=str(Pubkey(bytes([65]) * 32)), decimals=0, program="token"),
}
SPL_PROGRAMS = {"token": TOKEN_PROGRAM_ID, "token-2022": TOKEN_2022_PROGRAM_ID}


@pytest.fixture
def registry(cli, initialised_url):
    """The mints registered for real (`tokens add`); the database URL."""
    for entry in TOKENS.values():
        added = cli("tokens", "add", entry.symbol, "--mint", entry.mint, "--decimals", str(entry.decimals),
                    "--program", entry.program, url=initialised_url)
        assert added.exit_code == 0, added.stderr
    return initialised_url


def build(cli, url, *extra, token="USDC", amount="12.5", to=OWNER):
    args = ["build-transfer", "--from", WALLET.pubkey(), "--to", to, "--amount", amount, "--blockhash", BLOCKHASH]
    return cli(*args, *(["--token", token] if token else []), *extra, url=url)


def reference(symbol, amount, **options) -> bytes:
    entry = TOKENS[symbol]
    return spl_transfer_message(
        wallet=WALLET.pubkey(), owner=OWNER, mint=Pubkey.from_string(entry.mint), decimals=entry.decimals,
        program=SPL_PROGRAMS[entry.program], amount=amount, blockhash=Hash.from_string(BLOCKHASH), **options,
    )


def output(result) -> bytes:
    assert result.exit_code == 0, result.stderr
    return base64.b64decode(result.stdout.strip(), validate=True)


@pytest.mark.parametrize("symbol", ["USDC", "PYUSD"], ids=["token", "token-2022"])
@pytest.mark.parametrize("create", [True, False], ids=["create", "no-create"])
@pytest.mark.parametrize("v0", [False, True], ids=["legacy", "v0"])
def test_byte_identical_to_the_spl_builders(cli, registry, symbol, create, v0):
    extra = ([] if create else ["--no-create"]) + (["--v0"] if v0 else [])
    assert output(build(cli, registry, *extra, token=symbol)) == reference(symbol, 12_500_000, create=create, v0=v0)


def test_with_memo_and_compute_budget(cli, registry):
    result = build(cli, registry, "--memo", "invoice 7", "--compute-unit-price", "1000", "--compute-unit-limit", "60000",
                   amount="0.25usdc")
    assert output(result) == reference("USDC", 250_000, memo="invoice 7", price=1000, limit=60_000)


@pytest.mark.parametrize(
    "symbol, amount, base_units, shown",
    [("usdc", "12500000base", 12_500_000, "12.5"), ("USDC", "0.000001", 1, "0.000001"), ("NFT", "3", 3, "3"),
     (str(USDC_MINT), "1.000", 1_000_000, "1"), ("USDC", "18446744073709.551615", 2**64 - 1, "18446744073709.551615")],
    ids=["base-units", "one-unit", "zero-decimals", "by-mint", "u64-max"],
)
def test_amounts_and_json(cli, registry, symbol, amount, base_units, shown):
    result = build(cli, registry, "--json", token=symbol, amount=amount)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    entry = next(e for e in TOKENS.values() if symbol.lower() == e.symbol.lower() or symbol == e.mint)
    mint, program = Pubkey.from_string(entry.mint), SPL_PROGRAMS[entry.program]
    assert report["token"] == {
        "symbol": entry.symbol,
        "mint": entry.mint,
        "program": entry.program,
        "decimals": entry.decimals,
        "amount_base_units": str(base_units),
        "amount": shown,
        "source_token_account": str(spl.get_associated_token_address(WALLET.pubkey(), mint, program)),
        "destination_token_account": str(spl.get_associated_token_address(OWNER, mint, program)),
        "creates_destination": True,
    }
    assert base64.b64decode(report["message_base64"]) == reference(entry.symbol, base_units)
    assert report["message_bytes"] == len(base64.b64decode(report["message_base64"]))


def test_inspect_reads_it_back(cli, registry, tmp_path):
    path = tmp_path / "tx.b64"
    path.write_text(build(cli, registry, token="PYUSD").stdout)
    report = json.loads(cli("inspect", path, "--json").stdout)
    create, transfer = report["instructions"]
    assert (create["program"], create["kind"]) == ("associated_token", "create_idempotent")
    assert (transfer["program"], transfer["kind"], transfer["fields"]) == (
        "token_2022", "transfer_checked", {"amount": 12_500_000, "decimals": 6}
    )
    assert transfer["roles"]["authority"]["address"] == str(WALLET.pubkey())
    assert create["roles"]["wallet"]["address"] == str(OWNER)


@pytest.mark.parametrize(
    "overrides, extra, code, message",
    [
        ({"amount": "12.3456789"}, (), 2,
         "invalid --amount '12.3456789': USDC has 6 decimals; write at most 6 places, or base units (12500000base)"),
        ({"amount": "18446744073709.551616"}, (), 2,
         "invalid --amount '18446744073709.551616': larger than the maximum of 18446744073709551615 base units"),
        ({"amount": "-1"}, (), 2, "invalid --amount '-1': must not be negative"),
        ({"amount": "1.5base"}, (), 2, "invalid --amount '1.5base': base units are whole numbers"),
        ({"amount": "1SOL"}, (), 2, "invalid --amount '1SOL': unknown unit 'SOL' (use USDC or base)"),
        ({"amount": "0.5", "token": "NFT"}, (), 2,
         "invalid --amount '0.5': NFT has 0 decimals; write at most 0 places, or base units (12500000base)"),
        ({"token": "DOGE"}, (), 4, "no registered token 'DOGE'; see `jarvis-wallet tokens list`"),
        ({"token": None}, ("--no-create",), 2, "--no-create applies only to token transfers (--token)"),
        ({"token": None}, ("--allow-owner-off-curve",), 2,
         "--allow-owner-off-curve applies only to token transfers (--token)"),
        ({"to": str(spl.get_associated_token_address(OWNER, USDC_MINT))}, (), 2, None),
    ],
    ids=["over-precision", "over-u64", "negative", "fractional-base", "wrong-unit", "zero-decimals", "unknown-token",
         "no-create-alone", "off-curve-alone", "token-account-as-recipient"],
)
def test_bad_input_is_one_line(cli, registry, overrides, extra, code, message):
    result = build(cli, registry, *extra, **overrides)
    assert result.exit_code == code
    assert result.stdout == "" and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    if message is not None:
        assert result.stderr == f"Error: {message}\n"
    else:
        assert result.stderr == (
            f"Error: the recipient {overrides['to']} is not a wallet address (it is off the Ed25519 curve, like a "
            "token account or other program address): give its owner's wallet, or --allow-owner-off-curve if a "
            "program owns it\n"
        )


def test_an_off_curve_owner_when_asked(cli, registry):
    vault = spl.get_associated_token_address(OWNER, USDC_MINT)  # any program address
    result = build(cli, registry, "--allow-owner-off-curve", "--json", to=vault)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["token"]["destination_token_account"] == str(
        spl.get_associated_token_address(vault, USDC_MINT)
    )


def test_the_cli_output_moves_exactly_the_amount_in_litesvm(cli, registry):
    """--no-create (LiteSVM has no ATA program): both associated accounts are set up directly."""
    mint = USDC_MINT
    source = spl.get_associated_token_address(WALLET.pubkey(), mint)
    destination = spl.get_associated_token_address(OWNER, mint)
    chain = TokenChain()
    chain.fund(WALLET.pubkey(), SOL)
    chain.mint(mint, authority=WALLET.pubkey(), decimals=6, supply=50_000_000)
    chain.token_account(source, mint=mint, owner=WALLET.pubkey(), amount=50_000_000)
    chain.token_account(destination, mint=mint, owner=OWNER, amount=1)
    args = ["build-transfer", "--from", WALLET.pubkey(), "--to", OWNER, "--amount", "12.5", "--token", "USDC",
            "--blockhash", chain.blockhash, "--no-create"]
    message = output(cli(*args, url=registry))
    execution = chain.execute(sign(SoldersMessage.from_bytes(message), [WALLET]))
    assert execution.ok, execution.error
    assert chain.token_state(source).amount == 50_000_000 - 12_500_000
    assert chain.token_state(destination).amount == 1 + 12_500_000
    assert chain.balance(WALLET.pubkey()) == SOL - execution.fee
