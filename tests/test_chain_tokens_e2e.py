"""Tokens and the chain, end to end: token payments signed by a real signer, sent to the LiteSVM
endpoint (tests/rpc_server.py), and the per-mint window given back when the chain proves a
payment never moved its tokens (expired, failed), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from jarvis_wallet.solana.associated_token import associated_token_address
from jarvis_wallet.solana.token import TOKEN_PROGRAM_ID
from rpc_server import RpcServer
from runtime import SOL
from test_chain_e2e import World
from token_chain import TokenChain

USDC = Pubkey(bytes([91]) * 32)
ISSUER = Pubkey(bytes([92]) * 32)
FEE = 5000


def ata(owner: Pubkey, mint: Pubkey = USDC) -> Pubkey:
    return Pubkey(associated_token_address(bytes(owner), bytes(mint), TOKEN_PROGRAM_ID))


class TokenWorld(World):
    def __init__(self, signers, cli, tmp_path, rpc, *, balance: int) -> None:
        super().__init__(signers, cli, tmp_path, rpc)
        self.owner = Pubkey(bytes(Keypair().pubkey()))
        wallet = Pubkey.from_string(self.wallet)
        chain = rpc.chain
        chain.fund(wallet, 3 * SOL)
        chain.mint(USDC, authority=ISSUER, decimals=6, supply=10**12)
        chain.token_account(ata(wallet), mint=USDC, owner=wallet, amount=balance)
        chain.token_account(ata(self.owner), mint=USDC, owner=self.owner, amount=0)
        self.limits(SOL, 2 * SOL)
        added = self.cli("tokens", "add", "USDC", "--mint", str(USDC), "--json")  # read from the endpoint
        assert added.exit_code == 0, added.stderr
        limits = self.cli("limits", "set", "--token", "USDC", "--per-tx", "30", "--daily", "30")
        assert limits.exit_code == 0, limits.stderr

    def usdc_remaining(self) -> int:
        (usdc,) = self.cli("limits", "show", "--wallet", self.wallet, "--json").json()["tokens"]
        return int(usdc["remaining_24h_base_units"])

    def build_token(self, amount: str) -> str:
        result = self.cli("build-transfer", "--from", self.wallet, "--to", str(self.owner), "--token", "USDC",
                          "--amount", amount, "--no-create", "--json")
        assert result.exit_code == 0, result.stderr
        path = self.tmp_path / f"usdc-{amount}-{len(list(self.tmp_path.iterdir()))}.b64"
        path.write_text(result.json()["message_base64"])
        return str(path)

    def token_amount(self, owner: Pubkey) -> int:
        return self.rpc.chain.token_state(ata(owner)).amount


@pytest.fixture
def token_rpc():
    server = RpcServer(TokenChain())
    yield server
    server.stop()


def test_an_unsent_token_payment_expires_and_its_tokens_come_back(signers, cli, tmp_path, token_rpc):
    world = TokenWorld(signers, cli, tmp_path, token_rpc, balance=100 * 10**6)
    signed = world.cli("sign", world.build_token("30"), "--socket", world.handle.socket_path, "--json")
    assert signed.exit_code == 0, signed.stderr
    assert world.usdc_remaining() == 0
    over = world.cli("sign", world.build_token("0.000001"), "--socket", world.handle.socket_path)
    assert over.exit_code == 5 and "token_daily_limit_exceeded" in over.stderr

    world.rpc.advance(151)
    synced = world.cli("tx", "sync", "--json")
    assert synced.exit_code == 0 and synced.json()["expired"] == 1, synced.stdout
    assert synced.json()["released_tokens"] == {str(USDC): "30000000"}
    assert synced.json()["settled"][0]["released_tokens"] == {str(USDC): "30000000"}
    row = world.show(signed.json()["transaction_id"])
    assert row["status"] == "expired"
    releases = {r["asset"]: r for r in row["releases"]}
    assert releases["SOL"]["amount"] == FEE
    assert releases[str(USDC)]["amount"] == "30000000" and releases[str(USDC)]["reason"] == "expired"
    assert releases[str(USDC)]["evidence"] == releases["SOL"]["evidence"]
    assert world.usdc_remaining() == 30 * 10**6
    assert world.cli("tx", "sync", "--json").json()["checked"] == 0  # idempotent: nothing released twice
    assert len(world.show(signed.json()["transaction_id"])["releases"]) == 2

    # The signer's kept per-mint sum agrees: the full 30 USDC signs, lands and moves.
    sent = world.send(world.build_token("30"), "--wait")
    assert sent.exit_code == 0 and sent.json()["status"] == "confirmed", sent.stderr
    assert sent.json()["released_tokens"] == {}
    assert world.token_amount(world.owner) == 30 * 10**6
    assert world.usdc_remaining() == 0


def test_a_failed_token_payment_moves_no_tokens_and_releases_them_all(signers, cli, tmp_path, token_rpc):
    world = TokenWorld(signers, cli, tmp_path, token_rpc, balance=5 * 10**6)  # too little for 10 USDC
    wallet = Pubkey.from_string(world.wallet)
    sol_before = world.rpc.chain.balance(wallet)
    result = world.send(world.build_token("10"), "--wait", "--skip-preflight")
    assert result.exit_code == 13, result.stderr
    sent = result.json()
    assert sent["status"] == "failed" and sent["released_tokens"] == {str(USDC): "10000000"}
    # The runtime moved no tokens, and took only the fee.
    assert world.token_amount(wallet) == 5 * 10**6 and world.token_amount(world.owner) == 0
    assert sol_before - world.rpc.chain.balance(wallet) == FEE == sent["chain_fee_lamports"]
    row = world.show(sent["transaction_id"])
    (release,) = row["releases"]  # the fee was all the SOL it counted: no SOL release
    assert (release["asset"], release["amount"], release["reason"]) == (str(USDC), "10000000", "failed")
    assert world.usdc_remaining() == 30 * 10**6
    assert world.remaining() == 2 * SOL - FEE


def test_balance_shows_each_registered_token(signers, cli, tmp_path, token_rpc):
    world = TokenWorld(signers, cli, tmp_path, token_rpc, balance=12_345_678)
    eurc = Pubkey(bytes([94]) * 32)  # registered, but the wallet has no account of it yet
    world.rpc.chain.mint(eurc, authority=ISSUER, decimals=2)
    assert world.cli("tokens", "add", "EURC", "--mint", str(eurc)).exit_code == 0
    result = world.cli("balance", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["lamports"] == world.rpc.chain.balance(Pubkey.from_string(world.wallet))
    assert data["tokens"] == [
        {"symbol": "EURC", "mint": str(eurc), "program": "token", "decimals": 2,
         "associated_account": str(ata(Pubkey.from_string(world.wallet), eurc)), "account_exists": False,
         "amount_base_units": "0", "amount": "0", "decimals_on_chain": None},
        {"symbol": "USDC", "mint": str(USDC), "program": "token", "decimals": 6,
         "associated_account": str(ata(Pubkey.from_string(world.wallet))), "account_exists": True,
         "amount_base_units": "12345678", "amount": "12.345678", "decimals_on_chain": None},
    ]
    text = world.cli("balance")
    assert text.exit_code == 0, text.stderr
    assert "  12.345678 USDC (12345678 base units)\n" in text.stdout
    assert f"0 EURC (0 base units); no associated token account {ata(Pubkey.from_string(world.wallet), eurc)} yet" in text.stdout
    # What the runtime holds, at the top of u64: exact in --json.
    world.rpc.chain.token_account(ata(Pubkey.from_string(world.wallet)), mint=USDC, owner=Pubkey.from_string(world.wallet),
                                  amount=2**64 - 1)
    usdc = world.cli("balance", "--json").json()["tokens"][1]
    assert (usdc["amount_base_units"], usdc["amount"]) == ("18446744073709551615", "18446744073709.551615")


def test_balance_flags_a_registry_whose_decimals_the_chain_contradicts(signers, cli, tmp_path, token_rpc):
    world = TokenWorld(signers, cli, tmp_path, token_rpc, balance=5)
    wrong = Pubkey(bytes([95]) * 32)
    world.rpc.chain.mint(wrong, authority=ISSUER, decimals=6)
    wallet = Pubkey.from_string(world.wallet)
    world.rpc.chain.token_account(ata(wallet, wrong), mint=wrong, owner=wallet, amount=7)
    assert world.cli("tokens", "add", "WRONG", "--mint", str(wrong), "--decimals", "9", "--program", "token",
                     "--rpc-url", "").exit_code != 0  # an empty URL is not "offline"
    with_endpoint_off = world.cli("config", "unset", "rpc_url")
    assert with_endpoint_off.exit_code == 0, with_endpoint_off.stderr
    assert world.cli("tokens", "add", "WRONG", "--mint", str(wrong), "--decimals", "9", "--program", "token").exit_code == 0
    result = world.cli("balance", "--rpc-url", world.rpc.url)
    assert result.exit_code == 0, result.stderr
    assert "Note: WRONG has 6 decimals on the chain but is registered with 9" in result.stderr


def test_human_output_names_the_tokens_given_back(signers, cli, tmp_path, token_rpc):
    world = TokenWorld(signers, cli, tmp_path, token_rpc, balance=100 * 10**6)
    assert world.cli("sign", world.build_token("2.5"), "--socket", world.handle.socket_path).exit_code == 0
    world.rpc.advance(151)
    synced = world.cli("tx", "sync")
    assert synced.exit_code == 0, synced.stderr
    assert synced.stdout.startswith(
        f"Checked 1: 0 confirmed, 0 failed, 1 expired, 0 not proven yet; 5,000 (0.000005 SOL) and 2500000 "
        f"base units of {USDC} given back to the daily window"
    ), synced.stdout
