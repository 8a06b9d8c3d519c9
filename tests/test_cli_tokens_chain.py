"""`tokens add` with an endpoint: the mint account read from the LiteSVM-backed JSON-RPC endpoint
(tests/rpc_server.py), parsed, cross-checked, its extensions recorded; every refusal is one
line, a non-zero exit, and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from solders.account import Account
from solders.pubkey import Pubkey

from jarvis_wallet.db import session
from jarvis_wallet.models import TokenMint
from jarvis_wallet.solana.token_2022 import TOKEN_2022_PROGRAM_ID
from rpc_server import RpcServer
from token_chain import TokenChain

VECTORS = {
    v["name"]: bytes.fromhex(v["data_hex"])
    for v in json.loads((Path(__file__).parent / "vectors" / "token_2022" / "mints.json").read_text())["vectors"]
}
USDC = Pubkey(bytes([91]) * 32)
PYUSD = Pubkey(bytes([93]) * 32)
ISSUER = Pubkey(bytes([92]) * 32)
T22 = Pubkey(TOKEN_2022_PROGRAM_ID)


@pytest.fixture
def rpc():
    server = RpcServer(TokenChain()).start()
    server.chain.mint(USDC, authority=ISSUER, decimals=6, supply=10**12)  # an SPL Token mint, 82 bytes
    yield server
    server.stop()


def put_token_2022_mint(rpc: RpcServer, address: Pubkey, vector: str) -> None:
    data = VECTORS[vector]
    rpc.chain.put_account(address, Account(rpc.chain.rent_exempt(len(data)), data, T22, False, 0))


def registered(url) -> list[tuple]:
    with session(url):
        return [(r.symbol, r.program, r.decimals, r.extensions) for r in TokenMint.select()]


def test_an_spl_token_mint_is_read_from_the_chain(cli, initialised_url, rpc):
    result = cli("tokens", "add", "USDC", "--mint", USDC, "--rpc-url", rpc.url, url=initialised_url)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"Registered USDC: mint {USDC}, program token, 6 decimals (read from the chain).")
    assert "the supply is not fixed" in result.stderr  # the parser's notes, for the operator
    assert rpc.method_calls("getAccountInfo")[0][0] == str(USDC)
    listed = cli("tokens", "list", "--json", url=initialised_url).json()
    assert [(t["program"], t["decimals"], t["extensions"]) for t in listed] == [("token", 6, [])]


def test_the_rpc_url_setting_is_used_and_what_the_operator_typed_must_agree(cli, initialised_url, rpc):
    assert cli("config", "set", "rpc_url", rpc.url, url=initialised_url).exit_code == 0
    result = cli("tokens", "add", "USDC", "--mint", USDC, "--decimals", "6", "--program", "token", "--json",
                 url=initialised_url)
    assert result.exit_code == 0, result.stderr
    assert (result.json()["decimals"], result.json()["extensions"]) == (6, [])


def test_token_2022_extensions_are_recorded_as_names(cli, initialised_url, rpc):
    put_token_2022_mint(rpc, PYUSD, "transfer_fee_config")  # a fee is counted gross: not refused
    result = cli("tokens", "add", "FEE", "--mint", PYUSD, "--rpc-url", rpc.url, "--json", url=initialised_url)
    assert result.exit_code == 0, result.stderr
    assert (result.json()["program"], result.json()["extensions"]) == ("token-2022", ["transfer_fee_config"])
    assert "transfers pay a fee of" in result.stderr
    assert registered(initialised_url) == [("FEE", "token-2022", 6, '["transfer_fee_config"]')]


def test_a_dangerous_mint_needs_each_risky_extension_named(cli, initialised_url, rpc):
    put_token_2022_mint(rpc, PYUSD, "pyusd_like")
    add = ("tokens", "add", "PYUSD", "--mint", PYUSD, "--rpc-url", rpc.url)
    refused = cli(*add, "--allow-extension", "permanent-delegate", url=initialised_url)
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"Error: mint {PYUSD}: refused:") and refused.stderr.count("\n") == 1
    assert "--allow-extension transfer-hook" in refused.stderr
    assert registered(initialised_url) == []
    allowed = ("permanent-delegate", "transfer_hook", "confidential-transfer-mint")
    result = cli(*add, *[arg for name in allowed for arg in ("--allow-extension", name)], "--json", url=initialised_url)
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["extensions"] == [
        "mint_close_authority", "permanent_delegate", "transfer_hook", "confidential_transfer_mint",
        "transfer_fee_config", "metadata_pointer", "token_metadata",
    ]
    assert data["allowed_extensions"] == ["permanent_delegate", "transfer_hook", "confidential_transfer_mint"]
    assert all(isinstance(name, str) for name in data["extensions"])


@pytest.mark.parametrize(
    "setup, args, message",
    [
        ("nothing", (), "no account {mint} on http://127.0.0.1:"),
        ("system", (), "is not a mint: the account is owned by 11111111111111111111111111111111"),
        ("token_account", (), "is not a mint: the account is a token account (165 bytes)"),
        ("spl_mint", ("--program", "token-2022"), "the mint belongs to the token program, not token-2022"),
        ("spl_mint", ("--decimals", "9"), "the mint has 6 decimals on chain, not 9"),
        ("permanent_delegate", (), "refused: "),
        ("spl_mint", ("--allow-extension", "transfer-hook"), "the mint has no transfer_hook extension to allow"),
    ],
)
def test_refusals_are_one_line_and_write_nothing(cli, initialised_url, rpc, setup, args, message):
    mint = Pubkey(bytes([77]) * 32)
    if setup == "system":
        rpc.chain.fund(mint, 10**9)
    elif setup == "token_account":
        rpc.chain.token_account(mint, mint=USDC, owner=ISSUER, amount=5)
    elif setup == "spl_mint":
        rpc.chain.mint(mint, authority=ISSUER, decimals=6)
    elif setup != "nothing":
        put_token_2022_mint(rpc, mint, setup)
    result = cli("tokens", "add", "X", "--mint", mint, "--rpc-url", rpc.url, *args, url=initialised_url)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message.format(mint=mint) in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert registered(initialised_url) == []


def test_an_endpoint_that_is_down_writes_nothing(cli, initialised_url, rpc):
    rpc.set_fault("down")
    result = cli("tokens", "add", "USDC", "--mint", USDC, "--rpc-url", rpc.url, "--rpc-timeout", "2",
                 url=initialised_url)
    assert result.exit_code == 11
    assert result.stderr.startswith("Error: RPC endpoint http://127.0.0.1:") and result.stderr.count("\n") == 1
    assert registered(initialised_url) == []
