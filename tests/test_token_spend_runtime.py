"""The token policy against the runtime (invariant 10): every allowed SPL Token transaction is
executed in LiteSVM, and the wallet's real token change per mint and SOL change must equal what
the policy counted; each refused kind is executed too, to show what it would have done.

LiteSVM loads SPL Token only (not Token-2022 nor the ATA program): those are covered by the
decoding vectors and the pure table in test_token_policy.py.
"""

from __future__ import annotations

import pytest
import spl.token.instructions as spl
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from spl.token import models as m

from jarvis_wallet.policy import Limits, TokenLimits, decide
from jarvis_wallet.solana import parse_message
from jarvis_wallet.solana.associated_token import associated_token_address
from jarvis_wallet.solana.token import TOKEN_PROGRAM_ID
from jarvis_wallet.solana.token_spend import TOKEN_2022_ACCOUNT_BYTES_UPPER_BOUND, RegisteredMint, rent_exempt_lamports
from tests.runtime import SOL, sign
from tests.token_chain import TOKEN_PROGRAM, TokenChain

WALLET = Keypair.from_seed(bytes([61]) * 32)
THIEF = Keypair.from_seed(bytes([62]) * 32)
USDC = Pubkey(bytes([63]) * 32)
EURC = Pubkey(bytes([64]) * 32)
RECIPIENT = Pubkey(bytes([65]) * 32)
RECIPIENT_EURC = Pubkey(bytes([66]) * 32)
LOOSE = Pubkey(bytes([67]) * 32)  # a token account of the wallet that is not its associated one
EMPTY = Pubkey(bytes([68]) * 32)  # an empty token account of the wallet
START = 100_000_000
W = WALLET.pubkey()
WALLET_USDC = Pubkey(associated_token_address(bytes(W), bytes(USDC), TOKEN_PROGRAM_ID))
WALLET_EURC = Pubkey(associated_token_address(bytes(W), bytes(EURC), TOKEN_PROGRAM_ID))
WATCHED = (WALLET_USDC, WALLET_EURC, LOOSE, EMPTY)
REGISTRY = {
    # Read from the chain (extensions recorded): a plain Transfer of them may be counted.
    bytes(USDC): RegisteredMint("USDC", bytes(USDC), TOKEN_PROGRAM_ID, 6, ()),
    bytes(EURC): RegisteredMint("EURC", bytes(EURC), TOKEN_PROGRAM_ID, 2, ()),
}
TOKEN_LIMITS = {mint: TokenLimits(10**12, 10**13) for mint in REGISTRY}


@pytest.fixture
def chain() -> TokenChain:
    chain = TokenChain()
    chain.fund(W, 10 * SOL)
    chain.fund(THIEF.pubkey(), SOL)
    chain.mint(USDC, authority=W, decimals=6, supply=10 * START, freeze_authority=W)
    chain.mint(EURC, authority=THIEF.pubkey(), decimals=2, supply=10 * START)
    chain.token_account(WALLET_USDC, mint=USDC, owner=W, amount=START)
    chain.token_account(WALLET_EURC, mint=EURC, owner=W, amount=START)
    chain.token_account(LOOSE, mint=USDC, owner=W, amount=START)
    chain.token_account(EMPTY, mint=USDC, owner=W, amount=0)
    chain.token_account(RECIPIENT, mint=USDC, owner=THIEF.pubkey(), amount=0)
    chain.token_account(RECIPIENT_EURC, mint=EURC, owner=THIEF.pubkey(), amount=0)
    return chain


def decide_and_execute(chain: TokenChain, *instructions, signers=(WALLET,), payer=W):
    message = Message.new_with_blockhash(list(instructions), payer, chain.blockhash)
    decision = decide(
        message=parse_message(bytes(message)), wallet=bytes(W), limits=Limits(SOL, 10 * SOL), spent_24h_lamports=0,
        token_registry=REGISTRY, token_limits=TOKEN_LIMITS,
    )
    tokens_before, sol_before = chain.holdings(W, WATCHED), chain.balance(W)
    execution = chain.execute(sign(message, signers))
    assert execution.ok, execution.error
    tokens_after = chain.holdings(W, WATCHED)
    moved = {bytes(mint): tokens_before[mint] - tokens_after.get(mint, 0) for mint in tokens_before}
    return decision, {mint: amount for mint, amount in moved.items() if amount}, sol_before - chain.balance(W)


def checked(amount, *, mint=USDC, decimals=6, source=WALLET_USDC, dest=RECIPIENT, owner=W):
    return spl.transfer_checked(m.TransferCheckedParams(
        program_id=TOKEN_PROGRAM, source=source, mint=mint, dest=dest, owner=owner, amount=amount, decimals=decimals,
    ))


ALLOWED = {
    "transfer_checked": lambda: [checked(12_500_000)],
    "two_transfers_one_mint": lambda: [checked(1_000_000), checked(2_500_000)],
    "two_mints": lambda: [checked(7_000_000), checked(1_234, mint=EURC, decimals=2, source=WALLET_EURC, dest=RECIPIENT_EURC)],
    "plain_transfer_from_the_associated_account": lambda: [
        spl.transfer(m.TransferParams(program_id=TOKEN_PROGRAM, source=WALLET_USDC, dest=RECIPIENT, owner=W, amount=999))
    ],
    "transfer_from_another_account_of_the_wallet": lambda: [checked(5, source=LOOSE)],
    "revoke": lambda: [spl.revoke(m.RevokeParams(program_id=TOKEN_PROGRAM, account=WALLET_USDC, owner=W))],
}


@pytest.mark.parametrize("name", ALLOWED)
def test_allowed_token_transactions_move_exactly_what_is_counted(chain, name):
    decision, moved, sol_lost = decide_and_execute(chain, *ALLOWED[name]())
    assert decision.allowed, decision.message
    assert moved == decision.spend.tokens.per_mint
    assert sol_lost == decision.spend.spend_lamports


def test_closing_an_empty_account_to_the_wallet_is_not_spend(chain):
    close = spl.close_account(m.CloseAccountParams(program_id=TOKEN_PROGRAM, account=EMPTY, dest=W, owner=W))
    decision, moved, sol_lost = decide_and_execute(chain, close)
    assert decision.allowed and not decision.spend.tokens.per_mint and moved == {}
    # The rent comes back: the wallet loses less than the fee it is counted for.
    assert sol_lost == decision.spend.spend_lamports - chain.rent_exempt(165)


# -- what each refused kind would have done ----------------------------------------------------


def refused(chain: TokenChain, reason: str, *instructions):
    """The policy refuses; the runtime executes it anyway, to show why."""
    message = Message.new_with_blockhash(list(instructions), W, chain.blockhash)
    decision = decide(
        message=parse_message(bytes(message)), wallet=bytes(W), limits=Limits(SOL, 10 * SOL), spent_24h_lamports=0,
        token_registry=REGISTRY, token_limits=TOKEN_LIMITS,
    )
    assert decision.reason == reason, decision.message
    execution = chain.execute(sign(message, [WALLET]))
    assert execution.ok, execution.error
    return decision


def thief_transfers(chain: TokenChain, source: Pubkey, amount: int) -> None:
    """A transaction the wallet never sees: only the thief signs it."""
    instruction = checked(amount, source=source, owner=THIEF.pubkey())
    assert chain.execute(sign(Message.new_with_blockhash([instruction], THIEF.pubkey(), chain.blockhash), [THIEF])).ok


def test_approve_lets_a_delegate_drain_the_wallet_later(chain):
    approve = spl.approve(m.ApproveParams(program_id=TOKEN_PROGRAM, source=WALLET_USDC, delegate=THIEF.pubkey(), owner=W, amount=START))
    refused(chain, "token_delegation", approve)
    assert chain.holdings(W, WATCHED)[USDC] == 2 * START  # nothing moved yet: no limit could have counted it
    thief_transfers(chain, WALLET_USDC, START)
    assert chain.holdings(W, WATCHED)[USDC] == START


def test_set_authority_hands_the_account_away(chain):
    handover = spl.set_authority(m.SetAuthorityParams(
        program_id=TOKEN_PROGRAM, account=WALLET_USDC, authority=spl.AuthorityType.ACCOUNT_OWNER,
        current_authority=W, new_authority=THIEF.pubkey(),
    ))
    refused(chain, "token_authority_change", handover)
    assert chain.token_state(WALLET_USDC).owner == THIEF.pubkey()  # not one token moved, the account is gone
    thief_transfers(chain, WALLET_USDC, START)


def test_close_to_another_gives_the_rent_away(chain):
    close = spl.close_account(m.CloseAccountParams(program_id=TOKEN_PROGRAM, account=EMPTY, dest=THIEF.pubkey(), owner=W))
    before = chain.balance(THIEF.pubkey())
    refused(chain, "token_close_to_other", close)
    assert chain.balance(THIEF.pubkey()) - before == chain.rent_exempt(165)


def test_burn_destroys_the_wallets_tokens(chain):
    burn = spl.burn(m.BurnParams(program_id=TOKEN_PROGRAM, account=WALLET_USDC, mint=USDC, owner=W, amount=START))
    refused(chain, "token_burn", burn)
    assert chain.token_state(WALLET_USDC).amount == 0 and chain.supply(USDC) == 9 * START


def test_mint_to_uses_the_wallet_as_mint_authority(chain):
    mint_to = spl.mint_to(m.MintToParams(program_id=TOKEN_PROGRAM, mint=USDC, dest=RECIPIENT, mint_authority=W, amount=START))
    refused(chain, "token_mint_to", mint_to)
    assert chain.supply(USDC) == 11 * START and chain.token_state(RECIPIENT).amount == START


def test_freeze_uses_the_wallet_as_freeze_authority_over_someone_elses_account(chain):
    from solders.token.state import TokenAccountState

    freeze = spl.freeze_account(m.FreezeAccountParams(program_id=TOKEN_PROGRAM, account=RECIPIENT, mint=USDC, authority=W))
    refused(chain, "token_freeze", freeze)
    assert chain.token_state(RECIPIENT).state == TokenAccountState.Frozen


def test_an_unchecked_transfer_from_another_account_moves_what_no_mint_names(chain):
    plain = spl.transfer(m.TransferParams(program_id=TOKEN_PROGRAM, source=LOOSE, dest=RECIPIENT, owner=W, amount=START))
    refused(chain, "token_unchecked_transfer", plain)
    assert chain.token_state(LOOSE).amount == 0


def test_a_mistyped_offline_registration_cannot_loosen_the_limit_through_a_plain_transfer(chain):
    """USDC registered offline with 9 decimals instead of 6, and a limit of 25 "USDC" (25 * 10**9
    base units): a plain Transfer states no decimals, so nothing would catch the mistake and
    25,000 real USDC would fit the limit. The signer refuses it; the runtime would move it all."""
    mistyped = {bytes(USDC): RegisteredMint("USDC", bytes(USDC), TOKEN_PROGRAM_ID, 9)}
    limit = {bytes(USDC): TokenLimits(25 * 10**9, 25 * 10**9)}
    chain.token_account(WALLET_USDC, mint=USDC, owner=W, amount=25_000 * 10**6)
    plain = spl.transfer(m.TransferParams(program_id=TOKEN_PROGRAM, source=WALLET_USDC, dest=RECIPIENT, owner=W,
                                          amount=25 * 10**9))
    message = Message.new_with_blockhash([plain], W, chain.blockhash)
    decision = decide(
        message=parse_message(bytes(message)), wallet=bytes(W), limits=Limits(SOL, 10 * SOL), spent_24h_lamports=0,
        token_registry=mistyped, token_limits=limit,
    )
    assert not decision.allowed and decision.reason == "token_unchecked_transfer", decision.message
    execution = chain.execute(sign(message, (WALLET,)))  # what it would have done
    assert execution.ok, execution.error
    assert chain.token_state(RECIPIENT).amount == 25_000 * 10**6 and chain.token_state(WALLET_USDC).amount == 0
    # TransferChecked states the real decimals (6): the mistyped registration refuses it instead.
    chain.token_account(WALLET_USDC, mint=USDC, owner=W, amount=START)
    checked_message = Message.new_with_blockhash([checked(25 * 10**6)], W, chain.blockhash)
    assert decide(
        message=parse_message(bytes(checked_message)), wallet=bytes(W), limits=Limits(SOL, 10 * SOL),
        spent_24h_lamports=0, token_registry=mistyped, token_limits=limit,
    ).reason == "token_mismatch"


def test_an_unregistered_mint_moves_for_real(chain):
    other_mint = Pubkey(bytes([69]) * 32)
    source, dest = Pubkey(bytes([70]) * 32), Pubkey(bytes([71]) * 32)
    chain.mint(other_mint, authority=THIEF.pubkey(), decimals=0, supply=10)
    chain.token_account(source, mint=other_mint, owner=W, amount=10)
    chain.token_account(dest, mint=other_mint, owner=THIEF.pubkey(), amount=0)
    refused(chain, "token_not_registered", checked(10, mint=other_mint, decimals=0, source=source, dest=dest))
    assert chain.token_state(dest).amount == 10


@pytest.mark.parametrize("size", [165, 170, 182, TOKEN_2022_ACCOUNT_BYTES_UPPER_BOUND])
def test_the_rent_counted_for_a_new_token_account_is_the_runtimes(chain, size):
    """The ATA program is not loaded in LiteSVM; the rent it would move for an account of each
    size the policy counts (SPL Token, Token-2022 plain, with a transfer fee, the upper bound) is
    the runtime's own rent-exempt minimum."""
    assert rent_exempt_lamports(size) == chain.rent_exempt(size)
