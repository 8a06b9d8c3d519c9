"""Tokens end to end: a real forked signer on SQLite and PostgreSQL signs token transfers under
per-mint limits; what it replies and records is what LiteSVM moves when the signed bytes run."""

from __future__ import annotations

import pytest
import spl.token.instructions as spl
from solders.message import Message
from solders.pubkey import Pubkey
from spl.token import models as m

from jarvis_wallet.db import session
from jarvis_wallet.errors import PolicyDenied
from jarvis_wallet.models import TokenSpend, WalletTransaction
from jarvis_wallet.solana.associated_token import associated_token_address
from jarvis_wallet.solana.token import TOKEN_PROGRAM_ID
from tests.runtime import SOL
from tests.token_chain import TOKEN_PROGRAM, TokenChain

USDC = Pubkey(bytes([81]) * 32)
RECIPIENT = Pubkey(bytes([82]) * 32)
ISSUER = Pubkey(bytes([83]) * 32)


@pytest.fixture
def setup(signers, cli):
    keypair = signers.keypair()
    wallet = Pubkey(keypair.public_key)
    signers.set_limits(per_tx=SOL, daily=10 * SOL)
    url = signers.database_url
    assert cli("tokens", "add", "USDC", "--mint", str(USDC), "--decimals", "6", "--program", "token", url=url).exit_code == 0
    result = cli("limits", "set", "--wallet", str(wallet), "--token", "USDC", "--per-tx", "30", "--daily", "40000000base", url=url)
    assert result.exit_code == 0, result.stderr
    chain = TokenChain()
    chain.fund(wallet, 10 * SOL)
    ata = Pubkey(associated_token_address(bytes(wallet), bytes(USDC), TOKEN_PROGRAM_ID))
    chain.mint(USDC, authority=ISSUER, decimals=6, supply=10**9)
    chain.token_account(ata, mint=USDC, owner=wallet, amount=10**9)
    chain.token_account(RECIPIENT, mint=USDC, owner=ISSUER, amount=0)
    return wallet, ata, chain, signers.start()


def pay(chain, wallet, ata, amount) -> bytes:
    instruction = spl.transfer_checked(m.TransferCheckedParams(
        program_id=TOKEN_PROGRAM, source=ata, mint=USDC, dest=RECIPIENT, owner=wallet, amount=amount, decimals=6,
    ))
    return bytes(Message.new_with_blockhash([instruction], wallet, chain.blockhash))


def test_token_transfers_are_counted_recorded_and_capped_per_mint(setup, signers, cli):
    wallet, ata, chain, handle = setup
    url = signers.database_url
    with signers.client(handle) as client:
        first_message = pay(chain, wallet, ata, 12_500_000)
        signed = client.sign_transaction(first_message, purpose="coffee")
        # The reply carries the per-mint spend; the runtime moves exactly that and the fee.
        assert [(t.mint, t.symbol, t.amount) for t in signed.tokens] == [(str(USDC), "USDC", 12_500_000)]
        sol_before, tokens_before = chain.balance(wallet), chain.token_state(ata).amount
        assert chain.execute(signed.signed_transaction).ok
        assert tokens_before - chain.token_state(ata).amount == 12_500_000
        assert sol_before - chain.balance(wallet) == signed.lamports == 5_000

        # Exactly at the daily limit (12.5 + 27.5 = 40) is allowed; one base unit more is not.
        at_limit = client.sign_transaction(pay(chain, wallet, ata, 27_500_000))
        assert at_limit.tokens[0].amount == 27_500_000
        with pytest.raises(PolicyDenied) as over:
            client.sign_transaction(pay(chain, wallet, ata, 1))
        assert over.value.reason == "token_daily_limit_exceeded"
        assert str(USDC) in str(over.value) and "40 USDC" in str(over.value)

        # A retry of a signed message is answered with its recorded spend, counted once.
        again = client.sign_transaction(first_message)
        assert again.duplicate and again.signature == signed.signature
        assert [(t.mint, t.amount) for t in again.tokens] == [(str(USDC), 12_500_000)]

    with session(url):
        rows = list(TokenSpend.select().order_by(TokenSpend.id))
        assert [(r.mint, r.symbol, r.amount_base_units) for r in rows] == [
            (str(USDC), "USDC", 12_500_000), (str(USDC), "USDC", 27_500_000), (str(USDC), "USDC", 1),
        ]
        statuses = [WalletTransaction.get_by_id(r.transaction_id).status for r in rows]
        assert statuses == ["signed", "signed", "rejected"]
        assert all(r.created_at == WalletTransaction.get_by_id(r.transaction_id).created_at for r in rows)
        assert rows[0].transaction_id == signed.transaction_id

    listed = cli("tx", "list", "--json", url=url).json()
    assert [row["tokens"] for row in listed][-1] == [{"mint": str(USDC), "symbol": "USDC", "amount": "12500000"}]
    shown_tx = cli("tx", "show", str(signed.transaction_id), "--json", url=url).json()
    assert shown_tx["tokens"] == [{"mint": str(USDC), "symbol": "USDC", "amount": "12500000"}]
    assert f"12500000 base units of USDC ({USDC})" in cli("tx", "show", str(signed.transaction_id), url=url).stdout
    shown = cli("limits", "show", "--wallet", str(wallet), "--json", url=url).json()
    (usdc,) = shown["tokens"]
    assert (usdc["spent_24h_base_units"], usdc["remaining_24h_base_units"], usdc["spent_24h"]) == ("40000000", "0", "40")


def test_a_mint_without_limits_is_refused_and_so_is_an_unregistered_one(setup, signers, cli):
    wallet, ata, chain, handle = setup
    url = signers.database_url
    assert cli("limits", "remove", "--wallet", str(wallet), "--token", "USDC", url=url).exit_code == 0
    with signers.client(handle) as client:
        with pytest.raises(PolicyDenied) as no_limits:
            client.sign_transaction(pay(chain, wallet, ata, 1))
        assert no_limits.value.reason == "token_no_limits"
        assert cli("tokens", "remove", "USDC", url=url).exit_code == 0
        with pytest.raises(PolicyDenied) as unregistered:
            client.sign_transaction(pay(chain, wallet, ata, 1))
        assert unregistered.value.reason == "token_not_registered" and str(USDC) in str(unregistered.value)


def test_the_rent_of_an_associated_account_the_wallet_creates_counts_as_sol(setup, signers):
    """Create the recipient's USDC account (idempotently) and pay into it: the signer counts the
    fee plus the 165-byte account's rent against the SOL limits, and the USDC against USDC's."""
    from solders.instruction import AccountMeta, Instruction

    wallet, ata, chain, handle = setup
    owner = Pubkey(bytes([84]) * 32)
    owners_ata = Pubkey(associated_token_address(bytes(owner), bytes(USDC), TOKEN_PROGRAM_ID))
    create = Instruction(
        Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"), bytes([1]),
        [AccountMeta(wallet, True, True), AccountMeta(owners_ata, False, True), AccountMeta(owner, False, False),
         AccountMeta(USDC, False, False), AccountMeta(Pubkey.default(), False, False), AccountMeta(TOKEN_PROGRAM, False, False)],
    )
    pay = spl.transfer_checked(m.TransferCheckedParams(
        program_id=TOKEN_PROGRAM, source=ata, mint=USDC, dest=owners_ata, owner=wallet, amount=3_000_000, decimals=6,
    ))
    with signers.client(handle) as client:
        signed = client.sign_transaction(bytes(Message.new_with_blockhash([create, pay], wallet, chain.blockhash)))
    assert signed.lamports == 5_000 + chain.rent_exempt(165) == 5_000 + 2_039_280
    assert [(t.symbol, t.amount) for t in signed.tokens] == [("USDC", 3_000_000)]


def test_a_token_transfer_above_the_mints_approval_threshold_is_held_then_signed_once(setup, signers, cli):
    """limits set --token USDC --approve-above 10: 10 USDC signs alone; 10.000001 waits for the
    operator, then the same transfer with a fresh blockhash signs once and moves exactly that."""
    from jarvis_wallet.errors import ApprovalRefused, ApprovalRequired

    wallet, ata, chain, handle = setup
    url = signers.database_url
    result = cli("limits", "set", "--wallet", str(wallet), "--token", "USDC", "--approve-above", "10", url=url)
    assert result.exit_code == 0 and result.stdout.rstrip().endswith("approval above 10 USDC (10000000 base units)")
    report = cli("limits", "show", "--wallet", str(wallet), "--json", url=url).json()
    assert report["tokens"][0]["approve_above_base_units"] == "10000000"
    with signers.client(handle) as client:
        assert client.sign_transaction(pay(chain, wallet, ata, 10_000_000)).tokens[0].amount == 10_000_000
        with pytest.raises(ApprovalRequired) as held:
            client.sign_transaction(pay(chain, wallet, ata, 10_000_001))
        assert f"moves 10000001 base units of mint {USDC}, above its approval threshold of 10000000" in held.value.message
        approved = cli("approvals", "approve", str(held.value.approval_id), url=url)
        assert approved.exit_code == 0, approved.stderr
        chain.next_blockhash()
        signed = client.sign_transaction(pay(chain, wallet, ata, 10_000_001))
        before = chain.token_state(ata).amount
        assert chain.execute(signed.signed_transaction).ok
        assert before - chain.token_state(ata).amount == 10_000_001 == signed.tokens[0].amount
        chain.next_blockhash()
        with pytest.raises(ApprovalRefused) as used:
            client.sign_transaction(pay(chain, wallet, ata, 10_000_001))
    assert used.value.reason == "approval_consumed"
    cleared = cli("limits", "set", "--wallet", str(wallet), "--token", "USDC", "--clear-approve-above", url=url)
    assert cleared.exit_code == 0 and cleared.stdout.rstrip().endswith("no approval threshold")
