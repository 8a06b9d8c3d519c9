"""The spend policy: every deny reason, and the boundaries of each limit."""

from __future__ import annotations

import pytest
import solders.compute_budget as cb
import solders.system_program as sp
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import Message as SoldersMessage
from solders.message import MessageV0, to_bytes_versioned
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.pubkey import Pubkey

from jarvis_wallet.errors import InvalidLimits, InvalidPublicKey, InvalidTransaction, PolicyDenied
from jarvis_wallet.policy import DEFAULT_PROGRAM_ALLOWLIST, REASONS, Decision, Limits, decide
from jarvis_wallet.solana import parse_message, parse_transaction_input

WALLET, OTHER, A, B, OWNER, TOKEN = (Pubkey(bytes([i]) * 32) for i in (1, 2, 3, 4, 5, 6))
W = bytes(WALLET)
FEE = 5_000


def message_of(*instructions: Instruction, payer: Pubkey = WALLET):
    return parse_message(bytes(SoldersMessage.new_with_blockhash(list(instructions), payer, Hash(bytes(32)))))


def pay(lamports: int, to: Pubkey = A) -> Instruction:
    return sp.transfer({"from_pubkey": WALLET, "to_pubkey": to, "lamports": lamports})


def run(*instructions: Instruction, limits: Limits | None = Limits(1_000_000, 10_000_000), spent: int = 0, payer: Pubkey = WALLET, **kwargs) -> Decision:
    return decide(message=message_of(*instructions, payer=payer), wallet=W, limits=limits, spent_24h_lamports=spent, **kwargs)


def test_allowed() -> None:
    decision = run(pay(100))
    assert decision.allowed and decision.reason is None
    assert decision.spend.spend_lamports == FEE + 100
    assert "5100 lamports" in decision.message
    decision.raise_if_denied()
    assert decision.to_dict()["spend"]["spend_lamports"] == FEE + 100


def test_no_limits_says_how_to_set_them() -> None:
    decision = run(pay(1), limits=None)
    assert (decision.allowed, decision.reason) == (False, "no_limits")
    assert f"jarvis-wallet limits set --wallet {WALLET} --per-tx AMOUNT --daily AMOUNT" in decision.message


def test_not_a_signer() -> None:
    decision = run(sp.transfer({"from_pubkey": OTHER, "to_pubkey": WALLET, "lamports": 1}), payer=OTHER)
    assert decision.reason == "not_a_signer"


def test_program_not_allowed() -> None:
    instruction = Instruction(TOKEN, b"\x03", [AccountMeta(WALLET, True, True), AccountMeta(A, False, True)])
    decision = run(instruction)
    assert decision.reason == "program_not_allowed"
    assert str(TOKEN) in decision.message
    # the operator can add it, as base58 text or bytes
    assert run(instruction, program_allowlist=DEFAULT_PROGRAM_ALLOWLIST | {str(TOKEN)}).allowed
    assert run(instruction, program_allowlist=[*DEFAULT_PROGRAM_ALLOWLIST, bytes(TOKEN)]).allowed


def test_unknown_program_without_the_wallets_key_is_allowed() -> None:
    assert run(Instruction(TOKEN, b"\x03", [AccountMeta(A, False, True)]), pay(1)).allowed


def test_default_allow_list() -> None:
    assert DEFAULT_PROGRAM_ALLOWLIST == {
        "11111111111111111111111111111111",
        "ComputeBudget111111111111111111111111111111",
        "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo",
        "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr",
    }
    memo = Instruction(Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"), b"hi", [AccountMeta(WALLET, True, False)])
    assert run(memo).allowed
    # an empty allow-list refuses even the System Program
    assert run(pay(1), program_allowlist=frozenset()).reason == "program_not_allowed"


@pytest.mark.parametrize(
    "instruction",
    [
        sp.assign({"pubkey": WALLET, "owner": OWNER}),
        sp.assign_with_seed({"address": A, "base": WALLET, "seed": "s", "owner": OWNER}),
        sp.allocate({"pubkey": WALLET, "space": 8}),
        sp.authorize_nonce_account({"nonce_pubkey": A, "authorized_pubkey": WALLET, "new_authority": B}),
        sp.create_account_allow_prefund({"new_account": WALLET, "payer": None, "lamports": 0, "space": 0, "owner": OWNER}),
    ],
)
def test_ownership_change(instruction: Instruction) -> None:
    decision = run(instruction)
    assert decision.reason == "ownership_change"
    assert "instruction 0" in decision.message


def test_destination_allow_list() -> None:
    assert run(pay(1, A), destination_allowlist={str(A)}).allowed
    decision = run(pay(1, A), pay(1, B), destination_allowlist={str(A)})
    assert decision.reason == "destination_not_allowed" and str(B) in decision.message
    # receiving nothing from the wallet is not a payment
    assert run(pay(0, B), destination_allowlist=[bytes(A)]).allowed


def test_destination_from_a_lookup_table_cannot_be_checked() -> None:
    table = AddressLookupTableAccount(Pubkey(bytes([9]) * 32), [A])
    message = MessageV0.try_compile(WALLET, [pay(1, A)], [table], Hash(bytes(32)))
    parsed = parse_transaction_input(to_bytes_versioned(message))
    limits = Limits(10**6, 10**7)
    assert decide(message=parsed, wallet=W, limits=limits, spent_24h_lamports=0).allowed
    denied = decide(message=parsed, wallet=W, limits=limits, spent_24h_lamports=0, destination_allowlist=[str(A)])
    assert denied.reason == "destination_not_allowed"


@pytest.mark.parametrize(
    ("lamports", "per_tx", "allowed"),
    [
        (995_000, 1_000_000, True),  # exactly at the ceiling with the fee
        (995_001, 1_000_000, False),  # one lamport more
        (0, FEE, True),
        (0, FEE - 1, False),
    ],
)
def test_per_tx_boundary(lamports: int, per_tx: int, allowed: bool) -> None:
    decision = run(pay(lamports), limits=Limits(per_tx, 10**12))
    assert decision.allowed is allowed
    if not allowed:
        assert decision.reason == "per_tx_limit_exceeded"
        assert f"{per_tx} lamports" in decision.message


@pytest.mark.parametrize(
    ("spent", "allowed"),
    [(10_000_000 - 105_000, True), (10_000_000 - 105_000 + 1, False), (0, True), (10**12, False)],
)
def test_daily_boundary(spent: int, allowed: bool) -> None:
    decision = run(pay(100_000), limits=Limits(1_000_000, 10_000_000), spent=spent)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.reason == "daily_limit_exceeded"


def test_zero_limits_allow_only_free_transactions() -> None:
    assert run(pay(0), limits=Limits(0, 0)).reason == "per_tx_limit_exceeded"
    assert run(sp.transfer({"from_pubkey": WALLET, "to_pubkey": A, "lamports": 0}), payer=OTHER, limits=Limits(0, 0)).allowed


def test_every_reason_is_reachable_and_raises_policy_denied() -> None:
    token = Instruction(TOKEN, b"", [AccountMeta(WALLET, True, True)])
    cases = {
        "no_limits": run(pay(1), limits=None),
        "not_a_signer": run(sp.transfer({"from_pubkey": OTHER, "to_pubkey": A, "lamports": 1}), payer=OTHER),
        "program_not_allowed": run(token),
        "ownership_change": run(sp.assign({"pubkey": WALLET, "owner": OWNER})),
        "durable_nonce_not_allowed": run(advance_nonce(), pay(1)),
        "destination_not_allowed": run(pay(1), destination_allowlist=[]),
        "per_tx_limit_exceeded": run(pay(10**6)),
        "daily_limit_exceeded": run(pay(1), spent=10**7),
    }
    # The token reasons are reached in tests/test_token_policy.py.
    assert tuple(cases) == tuple(reason for reason in REASONS if not reason.startswith("token_"))
    for reason, decision in cases.items():
        assert decision.reason == reason
        assert "\n" not in decision.message
        with pytest.raises(PolicyDenied) as caught:
            decision.raise_if_denied()
        assert caught.value.reason == reason and caught.value.wire_code == reason


def advance_nonce(authority: Pubkey = WALLET) -> Instruction:
    return sp.advance_nonce_account({"nonce_pubkey": A, "authorized_pubkey": authority})


@pytest.mark.parametrize("authority", [WALLET, OTHER])
def test_durable_nonce_refused_unless_its_nonce_account_is_registered(authority: Pubkey) -> None:
    # Whoever the nonce authority is: a transaction that never expires is a stockpile.
    for registered in ([], [bytes(B)]):
        refused = run(advance_nonce(authority), pay(1), durable_nonce_accounts=registered)
        assert refused.reason == "durable_nonce_not_allowed"
        assert "durable_nonce_accounts" in refused.message and str(A) in refused.message


def test_a_registered_durable_nonce_must_answer_to_the_wallet_alone() -> None:
    assert run(advance_nonce(WALLET), pay(1), durable_nonce_accounts=[bytes(A)]).allowed
    assert run(advance_nonce(WALLET), pay(1), durable_nonce_accounts=[str(A)]).allowed
    # Another signer listed in the advance may be the stored authority: the wallet could not
    # advance that nonce to revoke the transaction (review of #10).
    refused = run(advance_nonce(OTHER), pay(1), durable_nonce_accounts=[bytes(A)])
    assert refused.reason == "durable_nonce_not_allowed" and "signer other than the wallet" in refused.message
    listed_too = sp.advance_nonce_account({"nonce_pubkey": A, "authorized_pubkey": WALLET})
    listed_too = Instruction(listed_too.program_id, listed_too.data, [*listed_too.accounts, AccountMeta(OTHER, True, False)])
    assert run(listed_too, pay(1), durable_nonce_accounts=[bytes(A)]).reason == "durable_nonce_not_allowed"


def test_advancing_a_nonce_after_the_first_instruction_is_not_a_durable_nonce() -> None:
    # The runtime only looks at the first instruction: this one expires with its blockhash
    # (it is how `jarvis-wallet nonce advance` revokes stockpiled transactions).
    decision = run(cb.set_compute_unit_limit(10_000), advance_nonce())
    assert decision.allowed and not decision.spend.uses_durable_nonce


def test_order_of_checks() -> None:
    # no limits wins over everything; a foreign program wins over the limits
    token = Instruction(TOKEN, b"", [AccountMeta(WALLET, True, True)])
    assert run(token, pay(10**9), limits=None).reason == "no_limits"
    assert run(token, pay(10**9)).reason == "program_not_allowed"


def test_wallet_as_base58() -> None:
    decision = decide(message=message_of(pay(1)), wallet=str(WALLET), limits=Limits(10**6, 10**6), spent_24h_lamports=0)
    assert decision.allowed


@pytest.mark.parametrize(("per_tx", "daily"), [(-1, 0), (0, -1), (1.5, 2), (True, 1), ("1", 1)])
def test_limits_are_validated(per_tx: object, daily: object) -> None:
    with pytest.raises(InvalidLimits):
        Limits(per_tx, daily)  # type: ignore[arg-type]


def test_bad_arguments() -> None:
    with pytest.raises(InvalidLimits):
        run(pay(1), spent=-1)
    with pytest.raises(InvalidPublicKey):
        run(pay(1), program_allowlist="11111111111111111111111111111111")
    with pytest.raises(InvalidPublicKey):
        run(pay(1), destination_allowlist=["not base58 0OIl"])


def test_unparseable_instruction_data_is_an_error_not_a_decision() -> None:
    bad = Instruction(Pubkey(bytes(32)), b"\x02\x00\x00\x00", [AccountMeta(WALLET, True, True), AccountMeta(A, False, True)])
    with pytest.raises(InvalidTransaction):
        run(bad)
