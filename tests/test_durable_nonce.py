"""Durable nonces: refused by default (a signed one never expires), and revocable when allowed.

Issue #10, finding 3: five durable-nonce transactions, signed one a day under a 2 SOL daily
limit, all executed on day five, after the limits were set to zero. Each test here executes
what the signer signed in LiteSVM, the real runtime.
"""

from __future__ import annotations

import base64

import pytest
import solders.system_program as sp
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from runtime import SOL, Chain, sign

from jarvis_wallet.errors import PolicyDenied
from jarvis_wallet.policy import Limits, decide
from jarvis_wallet.solana import build_nonce_advance_message, parse_message, parse_transaction_input

WALLET = Keypair.from_seed(bytes([1]) * 32)
OTHER = Keypair.from_seed(bytes([2]) * 32)
RECIPIENT = Pubkey.from_string("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM")
ROOMY = Limits(per_tx_lamports=1_000 * SOL, daily_lamports=1_000 * SOL)


def new_chain(*funded: Pubkey) -> Chain:
    chain = Chain()
    for address in (OTHER.pubkey(), *funded):
        chain.fund(address, 100 * SOL)
    return chain


def durable_transfer(chain: Chain, wallet: Pubkey, nonce: Pubkey, lamports: int) -> Message:
    advance = sp.advance_nonce_account({"nonce_pubkey": nonce, "authorized_pubkey": wallet})
    pay = sp.transfer({"from_pubkey": wallet, "to_pubkey": RECIPIENT, "lamports": lamports})
    return Message.new_with_blockhash([advance, pay], wallet, chain.nonce(nonce).durable_nonce)


def decide_for(message_bytes: bytes, **options):
    return decide(message=parse_message(message_bytes), wallet=bytes(WALLET.pubkey()), limits=ROOMY, spent_24h_lamports=0, **options)


def test_a_signed_durable_nonce_transaction_outlives_its_day_so_it_is_refused() -> None:
    chain = new_chain(WALLET.pubkey())
    nonce = chain.create_nonce_account(OTHER, WALLET.pubkey())
    message = durable_transfer(chain, WALLET.pubkey(), nonce, 2 * SOL)
    assert decide_for(bytes(message)).reason == "durable_nonce_not_allowed"
    # Why: 200 blockhashes later (a blockhash lives for 150), the signed transaction still lands.
    signed = sign(message, [WALLET])
    for _ in range(200):
        chain.next_blockhash()
    before = chain.balance(WALLET.pubkey())
    assert chain.execute(signed).ok
    assert before - chain.balance(WALLET.pubkey()) == 2 * SOL + 5_000


def test_nonce_advance_voids_every_transaction_signed_against_the_nonce() -> None:
    chain = new_chain(WALLET.pubkey())
    nonce = chain.create_nonce_account(OTHER, WALLET.pubkey())
    stockpile = [sign(durable_transfer(chain, WALLET.pubkey(), nonce, amount), [WALLET]) for amount in (SOL, 2 * SOL)]
    for transaction in stockpile:
        decision = decide_for(bytes(transaction.message), durable_nonce_accounts=[bytes(nonce)])
        assert decision.allowed and decision.spend.uses_durable_nonce
    revoke = build_nonce_advance_message(
        authority=bytes(WALLET.pubkey()), nonce_account=bytes(nonce), recent_blockhash=bytes(chain.blockhash)
    )
    decision = decide_for(revoke)  # an ordinary transaction: allowed without the durable-nonce setting
    assert decision.allowed and not decision.spend.uses_durable_nonce, decision.message
    parsed = parse_transaction_input(revoke)
    signed = parsed.with_signature(bytes(WALLET.pubkey()), bytes(WALLET.sign_message(parsed.signing_bytes())))
    before, old_value = chain.balance(WALLET.pubkey()), chain.nonce(nonce).durable_nonce
    revoked = chain.execute(signed)
    assert revoked.ok, revoked.error
    assert before - chain.balance(WALLET.pubkey()) == decision.spend.spend_lamports == revoked.fee
    assert chain.nonce(nonce).durable_nonce != old_value
    for transaction in stockpile:
        assert not chain.execute(transaction).ok
    assert chain.balance(WALLET.pubkey()) == before - revoked.fee


def test_the_revoking_transaction_expires_like_any_other() -> None:
    # Its advance is not the first instruction, so the runtime reads its blockhash as a blockhash.
    chain = new_chain(WALLET.pubkey())
    nonce = chain.create_nonce_account(OTHER, WALLET.pubkey())
    revoke = build_nonce_advance_message(
        authority=bytes(WALLET.pubkey()), nonce_account=bytes(nonce), recent_blockhash=bytes(chain.blockhash)
    )
    parsed = parse_transaction_input(revoke)
    signed = parsed.with_signature(bytes(WALLET.pubkey()), bytes(WALLET.sign_message(parsed.signing_bytes())))
    for _ in range(200):
        chain.next_blockhash()
    execution = chain.execute(signed)
    assert not execution.ok and "BlockhashNotFound" in execution.error


# -- through a real signer and the CLI ----------------------------------------------------------------


def test_the_signer_refuses_a_durable_nonce_until_the_operator_allows_it_and_nonce_advance_revokes(signers, cli) -> None:
    wallet_text = signers.set_limits(per_tx=5 * SOL, daily=10 * SOL)
    wallet = Pubkey.from_string(wallet_text)
    handle = signers.start()
    chain = new_chain(wallet)
    nonce = chain.create_nonce_account(OTHER, wallet)
    url = signers.database_url

    with signers.client(handle) as client:
        with pytest.raises(PolicyDenied) as refused:
            client.sign_transaction(bytes(durable_transfer(chain, wallet, nonce, SOL)), purpose="stockpile")
        assert refused.value.reason == "durable_nonce_not_allowed"
        assert "durable_nonce_accounts" in refused.value.message

        assert cli("config", "set", "durable_nonce_accounts", str(nonce), url=url).exit_code == 0
        stockpiled = client.sign_transaction(bytes(durable_transfer(chain, wallet, nonce, 2 * SOL)), purpose="stockpile")
    assert stockpiled.lamports == 2 * SOL + 5_000

    rows = cli("tx", "list", "--json", url=url).json()
    assert [row["status"] for row in rows] == ["signed", "rejected"]
    assert rows[1]["rejection_reason"].startswith("durable_nonce_not_allowed:")

    result = cli("nonce", "advance", str(nonce), "--blockhash", str(chain.blockhash), "--socket", handle.socket_path, "--json")
    assert result.exit_code == 0, result.stderr
    revoke = result.json()
    assert revoke["nonce_account"] == str(nonce) and revoke["wallet"] == wallet_text
    before = chain.balance(wallet)
    advanced = chain.execute(base64.b64decode(revoke["signed_transaction"]))
    assert advanced.ok, advanced.error
    # What the signer counted for the advance is what the runtime charged.
    assert revoke["lamports"] == advanced.fee == before - chain.balance(wallet)
    assert not chain.execute(stockpiled.signed_transaction).ok
    assert chain.balance(wallet) == before - advanced.fee
    assert cli("tx", "list", "--json", url=url).json()[0]["purpose"].startswith(f"advance nonce {nonce}")


def test_nonce_advance_bad_input_is_one_line(signers, cli) -> None:
    signers.set_limits(per_tx=SOL, daily=SOL)
    handle = signers.start()
    result = cli("nonce", "advance", "not-a-key", "--blockhash", "11111111111111111111111111111111", "--socket", handle.socket_path)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "nonce account" in result.stderr


def test_a_durable_nonce_of_another_authority_is_refused_even_when_allowed_because_it_cannot_be_revoked() -> None:
    # Found in review: with durable nonces allowed, a transaction advancing the attacker's nonce
    # was signed; the wallet's `nonce advance` then fails on chain (the wallet is not that
    # nonce's authority), and the stockpiled payment lands 200 blockhashes later. Registered or
    # not, an advance listing another signer is refused.
    attacker = Keypair.from_seed(bytes([3]) * 32)
    chain = new_chain(WALLET.pubkey(), attacker.pubkey())
    nonce = chain.create_nonce_account(OTHER, attacker.pubkey())
    advance = sp.advance_nonce_account({"nonce_pubkey": nonce, "authorized_pubkey": attacker.pubkey()})
    pay = sp.transfer({"from_pubkey": WALLET.pubkey(), "to_pubkey": attacker.pubkey(), "lamports": 3 * SOL})
    message = Message.new_with_blockhash([advance, pay], WALLET.pubkey(), chain.nonce(nonce).durable_nonce)
    decision = decide_for(bytes(message), durable_nonce_accounts=[bytes(nonce)])
    assert decision.reason == "durable_nonce_not_allowed" and "signer other than the wallet" in decision.message
    # What the refusal prevents, signed anyway: the revocation cannot land, the stockpile does.
    stockpiled = sign(message, [WALLET, attacker])
    revoke = parse_transaction_input(build_nonce_advance_message(
        authority=bytes(WALLET.pubkey()), nonce_account=bytes(nonce), recent_blockhash=bytes(chain.blockhash)
    ))
    revoked = chain.execute(revoke.with_signature(bytes(WALLET.pubkey()), bytes(WALLET.sign_message(revoke.signing_bytes()))))
    assert not revoked.ok
    for _ in range(200):
        chain.next_blockhash()
    before = chain.balance(WALLET.pubkey())
    assert chain.execute(stockpiled).ok
    assert before - chain.balance(WALLET.pubkey()) == 3 * SOL + 10_000
