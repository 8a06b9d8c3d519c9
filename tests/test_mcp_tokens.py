"""`jarvis-wallet mcp` with registered tokens (issues 12 and 15): wallet_status shows each mint's
limits and spend, transfer pays a token the runtime really moves, sign_transaction reports the
per-mint spend, and token amounts are strings checked as strictly as the CLI's.

A real forked signer, the MCP server as a subprocess driven by the SDK's stdio client, the test
RPC server over LiteSVM with SPL Token state, SQLite and PostgreSQL.
"""

from __future__ import annotations

import base58
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from jarvis_wallet.solana import build_token_transfer_message
from jarvis_wallet.solana.associated_token import associated_token_address
from jarvis_wallet.solana.token import TOKEN_PROGRAM_ID
from test_mcp_server import FEE, SOL, TOOLS, Wallet, b64, call, verify
from tests.token_chain import TokenChain

USDC = Pubkey(bytes([91]) * 32)
ISSUER = Pubkey(bytes([92]) * 32)
USDC_UNIT = 10**6


def ata(owner: Pubkey) -> Pubkey:
    return Pubkey(associated_token_address(bytes(owner), bytes(USDC), TOKEN_PROGRAM_ID))


@pytest.fixture
def token_wallet(signers, cli):
    """A signer whose wallet may pay 20 USDC a transaction and 30 in 24 hours, with the chain
    holding its 1,000 USDC and the recipient's (empty) associated account."""
    from rpc_server import RpcServer

    wallet = Wallet(signers)
    wallet.limits(per_tx=SOL, daily=SOL)
    url = wallet.url
    assert cli("tokens", "add", "USDC", "--mint", str(USDC), "--decimals", "6", "--program", "token", url=url).exit_code == 0
    limits = cli("limits", "set", "--wallet", wallet.address, "--token", "USDC", "--per-tx", "20", "--daily", "30", url=url)
    assert limits.exit_code == 0, limits.stderr
    chain = TokenChain()
    owner = Pubkey.from_string(wallet.address)
    chain.fund(owner, SOL)
    chain.mint(USDC, authority=ISSUER, decimals=6, supply=1000 * USDC_UNIT)
    chain.token_account(ata(owner), mint=USDC, owner=owner, amount=1000 * USDC_UNIT)
    server = RpcServer(chain).start()  # after the signer's fork: it must not inherit the listening socket
    yield wallet, server
    server.stop()


def test_token_limits_a_token_transfer_the_runtime_moves_and_the_per_mint_spend(token_wallet):
    wallet, rpc = token_wallet
    chain = rpc.chain
    owner = Pubkey.from_string(wallet.address)
    recipient = Keypair().pubkey()
    chain.token_account(ata(recipient), mint=USDC, owner=recipient, amount=0)

    def usdc_limits(status: dict) -> dict:
        (entry,) = status["limits"]["tokens"]
        return entry

    async def body(session) -> None:
        assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS | {"balance", "transfer"}
        is_error, status = await call(session, "wallet_status")
        assert not is_error, status
        assert usdc_limits(status) == {
            "symbol": "USDC", "mint": str(USDC), "decimals": 6,
            "per_transaction_limit": "20 USDC", "per_transaction_limit_base_units": "20000000",
            "daily_limit": "30 USDC", "daily_limit_base_units": "30000000",
            "spent_24h": "0 USDC", "spent_24h_base_units": "0",
            "remaining_24h": "30 USDC", "remaining_24h_base_units": "30000000",
            "max_next_transaction": "20 USDC", "max_next_transaction_base_units": "20000000",
            "approval_threshold": None, "approval_threshold_base_units": None,
        }

        sol_before = chain.balance(owner)
        is_error, sent = await call(
            session, "transfer", {"to": str(recipient), "amount": "12.5 USDC", "token": "usdc", "purpose": "invoice 9"}
        )
        assert not is_error, sent
        assert sent["status"] == "confirmed", sent
        assert (sent["amount"], sent["amount_base_units"]) == ("12.5 USDC", "12500000")
        assert sent["token"] == {"symbol": "USDC", "mint": str(USDC)}
        # The recipient's account exists: no creation, so the SOL spend is the fee alone.
        assert sent["spend_lamports"] == str(FEE) == str(sol_before - chain.balance(owner))

        is_error, status = await call(session, "wallet_status")
        entry = usdc_limits(status)
        assert (entry["spent_24h_base_units"], entry["remaining_24h"], entry["max_next_transaction"]) == (
            "12500000", "17.5 USDC", "17.5 USDC"
        )

        # sign_transaction reports the per-mint spend of a token transfer the model built.
        message = build_token_transfer_message(
            wallet=bytes(owner), owner=bytes(recipient), mint=bytes(USDC), decimals=6, token_program=TOKEN_PROGRAM_ID,
            amount_base_units=USDC_UNIT, recent_blockhash=bytes(chain.blockhash), create=False,
        )
        is_error, signed = await call(session, "sign_transaction", {"transaction_base64": b64(message), "purpose": "tip"})
        assert not is_error, signed
        verify(wallet.address, message, signed["signature"])
        assert signed["tokens"] == [
            {"mint": str(USDC), "symbol": "USDC", "amount": "1 USDC", "amount_base_units": "1000000"}
        ]
        assert signed["spend_lamports"] == str(FEE)

        # Over the per-mint limits: refused with the reason, nothing sent.
        is_error, refused = await call(
            session, "transfer", {"to": str(recipient), "amount": "16.500001", "token": "USDC", "purpose": "too much"}
        )
        assert is_error and refused["reason"] == "token_daily_limit_exceeded", refused

        # Strict amounts: strings only, at most the token's decimals, its own unit or base.
        for arguments, expected in [
            ({"amount": "1.0000001 USDC"}, "USDC has 6 decimals"),
            ({"amount": "1 SOL"}, "unknown unit"),
            ({"amount": "1.5base"}, "base units are whole numbers"),
            ({"amount": "0 USDC"}, "more than 0"),
            ({"amount": "-1 USDC"}, "negative"),
            ({"amount": 12.5}, "must be a string"),
            ({"token": ""}, "must not be empty"),
            ({"token": "X" * 45}, "longer than 44"),
        ]:
            is_error, error = await call(
                session, "transfer", {"to": str(recipient), "amount": "1", "token": "USDC", "purpose": "x", **arguments}
            )
            assert is_error and error["reason"] == "bad_request" and expected in error["message"], (arguments, error)
        is_error, unknown = await call(session, "transfer", {"to": str(recipient), "amount": "1", "token": "DOGE", "purpose": "x"})
        assert is_error and unknown["reason"] == "not_found" and "DOGE" in unknown["message"], unknown

    wallet.run(body, "--rpc-url", rpc.url, errlog_path=str(wallet.signers.tmp_path / "mcp-stderr.log"))
    # The runtime moved exactly what was counted: 12.5 USDC landed; the signed-only 1 USDC was never sent.
    assert chain.token_state(ata(recipient)).amount == 12_500_000
    assert chain.token_state(ata(owner)).amount == 1000 * USDC_UNIT - 12_500_000
    signed = [row for row in wallet.rows() if row["status"] in ("signed", "confirmed")]
    assert sorted((row["status"], row["purpose"]) for row in signed) == [("confirmed", "invoice 9"), ("signed", "tip")]


def test_a_token_transfer_to_a_new_recipient_creates_its_account_and_counts_the_rent(token_wallet):
    """No associated account on chain for the recipient: the transfer creates it (CreateIdempotent,
    the rent counted as SOL spend), and the runtime moves exactly what was counted."""
    wallet, rpc = token_wallet
    chain = rpc.chain
    owner = Pubkey.from_string(wallet.address)
    recipient = Keypair().pubkey()
    sol_before = chain.balance(owner)

    async def body(session) -> None:
        is_error, sent = await call(
            session, "transfer", {"to": str(recipient), "amount": "2000000base", "token": str(USDC), "purpose": "new"}
        )
        assert not is_error, sent
        assert sent["amount"] == "2 USDC" and sent["status"] == "confirmed", sent
        assert sent["spend_lamports"] == str(FEE + chain.rent_exempt(165))

    wallet.run(body, "--rpc-url", rpc.url, errlog_path=str(wallet.signers.tmp_path / "mcp-stderr.log"))
    assert chain.token_state(ata(recipient)).amount == 2 * USDC_UNIT
    assert sol_before - chain.balance(owner) == FEE + chain.rent_exempt(165)
