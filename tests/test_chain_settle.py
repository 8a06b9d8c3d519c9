"""The release rule (chain/settle.py ``judge``), one case per row of docs/policy.md's table."""

from __future__ import annotations

import pytest

from jarvis_wallet.chain.rpc import LandedTransaction, SignatureStatus
from jarvis_wallet.chain.settle import judge

WALLET = "Wallet1111111111111111111111111111111111111"
OTHER = "Other11111111111111111111111111111111111111"
COUNTED = 250_005_000
ERR = {"InstructionError": [0, {"Custom": 1}]}


def status(err=None, confirmation="finalized", confirmations=None):
    return SignatureStatus(slot=42, err=err, confirmation_status=confirmation, confirmations=confirmations)


def landed(err=ERR, keys=(WALLET, OTHER), pre=(1_000_000, 0), post=(995_000, 0)):
    return LandedTransaction(slot=42, err=err, fee=5000, account_keys=keys, pre_balances=pre, post_balances=post)


def run(**overrides):
    args = dict(wallet=WALLET, counted_lamports=COUNTED, status=None, landed=None, finalized_height=1000,
                last_valid_block_height=1000, commitment="confirmed")
    args.update(overrides)
    return judge(**args)


def test_landed_without_error_is_confirmed_and_gives_nothing_back():
    outcome = run(status=status(confirmation="confirmed"))
    assert (outcome.status, outcome.released_lamports) == ("confirmed", 0)


def test_confirmed_needs_the_commitment_asked():
    assert run(status=status(confirmation="processed")) is None
    assert run(status=status(confirmation="confirmed"), commitment="finalized") is None
    assert run(status=status(confirmation="finalized"), commitment="finalized").status == "confirmed"


def test_old_nodes_without_confirmation_status_use_confirmations():
    assert run(status=status(confirmation=None, confirmations=None), commitment="finalized").status == "confirmed"
    assert run(status=status(confirmation=None, confirmations=3), commitment="finalized") is None


def test_failed_at_finalized_gives_back_all_but_what_the_wallet_lost():
    outcome = run(status=status(err=ERR), landed=landed())
    assert outcome.status == "failed"
    assert outcome.chain_fee_lamports == 5000
    assert outcome.released_lamports == COUNTED - 5000
    assert outcome.error == '{"InstructionError":[0,{"Custom":1}]}'
    assert outcome.evidence["wallet_lamports_lost"] == 5000


def test_failed_when_another_account_paid_the_fee_gives_back_everything():
    outcome = run(status=status(err=ERR), landed=landed(keys=(OTHER, WALLET), pre=(10**6, 7), post=(995_000, 7)))
    assert outcome.chain_fee_lamports == 0 and outcome.released_lamports == COUNTED


@pytest.mark.parametrize("confirmation", ["processed", "confirmed"])
def test_a_failure_below_finalized_is_not_proof(confirmation):
    assert run(status=status(err=ERR, confirmation=confirmation), landed=landed()) is None


def test_a_failure_without_its_block_is_not_proof():
    assert run(status=status(err=ERR), landed=None) is None


def test_unknown_signature_after_the_last_valid_height_is_expired_and_gives_everything_back():
    outcome = run(finalized_height=1001, last_valid_block_height=1000)
    assert (outcome.status, outcome.released_lamports) == ("expired", COUNTED)
    assert outcome.evidence == {"finalized_block_height": 1001, "last_valid_block_height": 1000, "signature_status": None}


def test_unknown_signature_up_to_the_last_valid_height_is_not_proof():
    assert run(finalized_height=1000, last_valid_block_height=1000) is None


def test_unknown_height_or_durable_nonce_never_expires():
    assert run(finalized_height=10**9, last_valid_block_height=None) is None


def test_a_landed_signature_never_expires_whatever_the_height():
    assert run(status=status(confirmation="confirmed"), finalized_height=10**9).status == "confirmed"
