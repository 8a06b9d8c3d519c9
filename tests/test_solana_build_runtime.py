"""build_token_transfer_message against the real SPL Token program in LiteSVM.

LiteSVM (solders 0.29) has no Associated Token Account program, so both associated accounts
are set up directly at their derived addresses and the message is built with ``create=False``
(`--no-create`); the CreateIdempotent instruction is checked byte for byte against the SPL
builders in test_solana_build.py instead.
"""

from __future__ import annotations

import pytest
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey

from jarvis_wallet.amounts import parse_token_amount
from jarvis_wallet.solana import associated_token_address, build_token_transfer_message, parse_mint_account
from jarvis_wallet.solana.token import TOKEN_PROGRAM_ID
from tests.runtime import SOL, sign
from tests.token_chain import TokenChain

WALLET = Keypair.from_seed(bytes([51]) * 32)
RECIPIENT = Keypair.from_seed(bytes([52]) * 32).pubkey()
MINT = Pubkey(bytes([53]) * 32)
DECIMALS = 6
START = 100_000_000


def ata(owner: Pubkey) -> Pubkey:
    return Pubkey(associated_token_address(bytes(owner), bytes(MINT), TOKEN_PROGRAM_ID))


@pytest.fixture
def chain() -> TokenChain:
    chain = TokenChain()
    chain.fund(WALLET.pubkey(), 10 * SOL)
    chain.mint(MINT, authority=WALLET.pubkey(), decimals=DECIMALS, supply=START)
    chain.token_account(ata(WALLET.pubkey()), mint=MINT, owner=WALLET.pubkey(), amount=START)
    chain.token_account(ata(RECIPIENT), mint=MINT, owner=RECIPIENT, amount=0)
    return chain


def transfer(chain: TokenChain, amount: int, *, decimals: int = DECIMALS):
    message = build_token_transfer_message(
        wallet=bytes(WALLET.pubkey()), owner=bytes(RECIPIENT), mint=bytes(MINT), decimals=decimals,
        token_program=TOKEN_PROGRAM_ID, amount_base_units=amount, recent_blockhash=bytes(chain.blockhash),
        create=False,
    )
    return chain.execute(sign(Message.from_bytes(message), [WALLET]))


def test_the_mint_as_the_runtime_holds_it_parses():
    chain = TokenChain()
    chain.mint(MINT, authority=WALLET.pubkey(), decimals=DECIMALS, supply=START)
    account = chain.account(MINT)
    parsed = parse_mint_account(bytes(account.owner), bytes(account.data))
    assert (parsed.program, parsed.decimals, parsed.supply) == ("token", DECIMALS, START)
    assert parsed.mint_authority == bytes(WALLET.pubkey()) and parsed.freeze_authority is None


@pytest.mark.parametrize("text", ["12.5", "0.000001", "100", "12500000base"])
def test_transfer_checked_moves_exactly_the_amount(chain, text):
    amount = parse_token_amount(text, DECIMALS)
    lamports_before = chain.balance(WALLET.pubkey())
    execution = transfer(chain, amount)
    assert execution.ok, execution.error
    assert chain.token_state(ata(WALLET.pubkey())).amount == START - amount
    assert chain.token_state(ata(RECIPIENT)).amount == amount
    assert chain.balance(WALLET.pubkey()) == lamports_before - execution.fee == lamports_before - 5000
    assert chain.supply(MINT) == START


def test_the_whole_balance_and_one_base_unit_more(chain):
    over = transfer(chain, START + 1)
    assert not over.ok and over.error.endswith("InstructionErrorCustom(1))))")  # TokenError::InsufficientFunds
    assert chain.token_state(ata(WALLET.pubkey())).amount == START
    chain.next_blockhash()
    assert transfer(chain, START).ok
    assert (chain.token_state(ata(WALLET.pubkey())).amount, chain.token_state(ata(RECIPIENT)).amount) == (0, START)


def test_decimals_other_than_the_mints_fail_on_chain(chain):
    """Why the registry's decimals must match the chain: TransferChecked refuses otherwise."""
    execution = transfer(chain, 1, decimals=DECIMALS + 3)
    assert not execution.ok and execution.error.endswith("InstructionErrorCustom(18))))")  # MintDecimalsMismatch
    assert chain.token_state(ata(RECIPIENT)).amount == 0
