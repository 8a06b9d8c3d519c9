"""Spend accounting: fees, System outflows, exposure of the wallet's key."""

from __future__ import annotations

import json

import pytest
import solders.compute_budget as cb
import solders.system_program as sp
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import Message as SoldersMessage
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey

from jarvis_wallet.errors import InvalidPublicKey, InvalidTransaction
from jarvis_wallet.solana import (
    SYSTEM_PROGRAM_ID,
    compute_spend,
    describe,
    parse_message,
    parse_transaction_input,
)
from jarvis_wallet.solana.programs import ED25519_PROGRAM_ID, SECP256K1_PROGRAM_ID, SECP256R1_PROGRAM_ID

WALLET, OTHER, A, B, OWNER, PROGRAM = (Pubkey(bytes([i]) * 32) for i in (1, 2, 3, 4, 5, 6))
W = bytes(WALLET)


def message_of(*instructions: Instruction, payer: Pubkey = WALLET):
    return parse_message(bytes(SoldersMessage.new_with_blockhash(list(instructions), payer, Hash(bytes(32)))))


def spend_of(*instructions: Instruction, payer: Pubkey = WALLET, wallet: bytes = W):
    return compute_spend(message_of(*instructions, payer=payer), wallet)


def transfer(source: Pubkey, dest: Pubkey, lamports: int) -> Instruction:
    return sp.transfer({"from_pubkey": source, "to_pubkey": dest, "lamports": lamports})


def with_extra_account(instruction: Instruction, key: Pubkey) -> Instruction:
    """The instruction with ``key`` appended as a signer, as a client may pass extra accounts."""
    return Instruction(instruction.program_id, instruction.data, [*instruction.accounts, AccountMeta(key, True, False)])


def u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


# -- fees ---------------------------------------------------------------------------


# Without SetComputeUnitLimit: 3,000 units per System or Compute Budget instruction (builtins),
# 200,000 per instruction of any other program, capped at 1,400,000 (SIMD-0170).
@pytest.mark.parametrize(
    ("budget", "other_instructions", "limit", "priority"),
    [
        ([], 1, 3_000, 0),
        ([cb.set_compute_unit_price(1)], 1, 6_000, 1),  # 0.006 lamports rounds up to 1
        ([cb.set_compute_unit_price(1_000_000)], 1, 6_000, 6_000),
        ([cb.set_compute_unit_price(5)], 0, 3_000, 1),  # only a Compute Budget instruction
        ([cb.set_compute_unit_price(1_000_000)], 8, 27_000, 27_000),
        ([cb.set_compute_unit_limit(300), cb.set_compute_unit_price(1000)], 1, 300, 1),
        ([cb.set_compute_unit_limit(1000), cb.set_compute_unit_price(1000)], 1, 1000, 1),
        ([cb.set_compute_unit_limit(1001), cb.set_compute_unit_price(1000)], 1, 1001, 2),
        ([cb.set_compute_unit_limit(0), cb.set_compute_unit_price(10**9)], 1, 0, 0),
        ([cb.set_compute_unit_limit(2**32 - 1), cb.set_compute_unit_price(1)], 1, 1_400_000, 2),
        ([cb.set_compute_unit_limit(1_400_000), cb.set_compute_unit_price(2**64 - 1)], 1, 1_400_000, -(-(2**64 - 1) * 1_400_000 // 10**6)),
        ([cb.set_compute_unit_limit(50_000)], 1, 50_000, 0),
    ],
)
def test_priority_fee(budget, other_instructions, limit, priority) -> None:
    transfers = [transfer(WALLET, A, 1) for _ in range(other_instructions)]
    spend = spend_of(*budget, *transfers)
    assert spend.compute_unit_limit == limit
    assert spend.priority_fee_lamports == priority
    assert spend.base_fee_lamports == 5_000
    assert spend.fee_lamports == 5_000 + priority
    assert spend.spend_lamports == 5_000 + priority + other_instructions


MEMO_V2 = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")


@pytest.mark.parametrize(
    ("memos", "limit"),
    [(1, 3_000 + 3_000 + 200_000), (7, 1_400_000)],  # price + transfer + memos; 7 memos hit the cap
)
def test_default_limit_gives_other_programs_200_000_units(memos, limit) -> None:
    memo_instructions = [Instruction(MEMO_V2, b"hi", []) for _ in range(memos)]
    spend = spend_of(cb.set_compute_unit_price(1_000_000), transfer(WALLET, A, 1), *memo_instructions)
    assert spend.compute_unit_limit == limit
    assert spend.priority_fee_lamports == limit


def test_base_fee_counts_every_required_signature() -> None:
    spend = spend_of(transfer(OTHER, A, 1), transfer(B, A, 1))
    assert spend.signature_count == 3
    assert spend.base_fee_lamports == 15_000
    assert spend.spend_lamports == 15_000  # the wallet pays fees only


@pytest.mark.parametrize("program", [ED25519_PROGRAM_ID, SECP256K1_PROGRAM_ID, SECP256R1_PROGRAM_ID])
def test_precompile_signatures_are_charged(program: bytes) -> None:
    verify = Instruction(Pubkey(program), bytes([3]) + bytes(20), [])
    spend = spend_of(verify)
    assert spend.signature_count == 4
    assert spend.base_fee_lamports == 20_000


def test_fee_not_counted_when_someone_else_pays() -> None:
    spend = spend_of(transfer(WALLET, A, 100), payer=OTHER)
    assert not spend.wallet_is_fee_payer and spend.wallet_is_signer
    assert spend.fee_lamports == 10_000 and spend.wallet_fee_lamports == 0
    assert spend.spend_lamports == 100


# -- outflows ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "outflow", "destination"),
    [
        (transfer(WALLET, A, 49), 49, A),
        (transfer(WALLET, WALLET, 49), 0, None),  # to itself: nothing moves
        (transfer(A, WALLET, 49), 0, None),  # incoming
        (transfer(WALLET, A, 0), 0, None),
        (sp.create_account({"from_pubkey": WALLET, "to_pubkey": A, "lamports": 7, "space": 0, "owner": OWNER}), 7, A),
        (sp.create_account({"from_pubkey": OTHER, "to_pubkey": A, "lamports": 7, "space": 0, "owner": OWNER}), 0, None),
        (
            sp.create_account_with_seed(
                {"from_pubkey": WALLET, "to_pubkey": A, "base": B, "seed": "s", "lamports": 8, "space": 0, "owner": OWNER}
            ),
            8,
            A,
        ),
        (sp.create_account_allow_prefund({"new_account": A, "payer": WALLET, "lamports": 9, "space": 0, "owner": OWNER}), 9, A),
        (sp.create_account_allow_prefund({"new_account": A, "payer": None, "lamports": 0, "space": 0, "owner": OWNER}), 0, None),
        # TransferWithSeed debits the account derived from the wallet (the base): the wallet's money
        (
            sp.transfer_with_seed(
                {"from_pubkey": A, "from_base": WALLET, "from_seed": "x", "from_owner": OWNER, "to_pubkey": B, "lamports": 10}
            ),
            10,
            B,
        ),
        (
            sp.transfer_with_seed(
                {"from_pubkey": A, "from_base": WALLET, "from_seed": "x", "from_owner": OWNER, "to_pubkey": WALLET, "lamports": 10}
            ),
            0,
            None,
        ),
        (
            sp.transfer_with_seed(
                {"from_pubkey": A, "from_base": OTHER, "from_seed": "x", "from_owner": OWNER, "to_pubkey": B, "lamports": 10}
            ),
            0,
            None,
        ),
        (sp.withdraw_nonce_account({"nonce_pubkey": A, "authorized_pubkey": WALLET, "to_pubkey": B, "lamports": 11}), 11, B),
        (sp.withdraw_nonce_account({"nonce_pubkey": A, "authorized_pubkey": WALLET, "to_pubkey": WALLET, "lamports": 11}), 0, None),
        (sp.withdraw_nonce_account({"nonce_pubkey": A, "authorized_pubkey": OTHER, "to_pubkey": B, "lamports": 11}), 0, None),
        # Listed where the runtime cannot take it as the authority: the nonce account itself.
        (sp.withdraw_nonce_account({"nonce_pubkey": WALLET, "authorized_pubkey": OTHER, "to_pubkey": B, "lamports": 11}), 0, None),
        # Listed after the authority: any signer of the instruction may be the stored authority.
        (with_extra_account(sp.withdraw_nonce_account({"nonce_pubkey": A, "authorized_pubkey": OTHER, "to_pubkey": B, "lamports": 11}), WALLET), 11, B),
        (sp.advance_nonce_account({"nonce_pubkey": A, "authorized_pubkey": WALLET}), 0, None),
        (sp.allocate({"pubkey": A, "space": 1}), 0, None),
    ],
)
def test_outflows(instruction: Instruction, outflow: int, destination: Pubkey | None) -> None:
    spend = spend_of(instruction, payer=OTHER)
    assert spend.outflow_lamports == outflow
    assert spend.spend_lamports == outflow
    if destination is None:
        assert spend.payments == ()
    else:
        (payment,) = spend.payments
        assert payment.destination == bytes(destination)
        assert payment.lamports == outflow
        assert spend.destinations == (bytes(destination),)


def test_outflows_add_up_with_python_ints() -> None:
    big = 2**64 - 1
    spend = spend_of(transfer(WALLET, A, big), transfer(WALLET, B, big))
    assert spend.outflow_lamports == 2 * big
    assert [p.destination for p in spend.payments] == [bytes(A), bytes(B)]


# -- exposure and ownership -----------------------------------------------------------


def test_programs_and_programs_receiving_the_wallet() -> None:
    spend = spend_of(
        cb.set_compute_unit_price(1),
        Instruction(PROGRAM, b"", [AccountMeta(A, False, True)]),
        Instruction(OWNER, b"", [AccountMeta(WALLET, True, True)]),
        transfer(WALLET, A, 1),
    )
    assert spend.programs[0] == bytes(Pubkey.from_string("ComputeBudget111111111111111111111111111111"))
    assert set(spend.programs) >= {bytes(PROGRAM), bytes(OWNER), SYSTEM_PROGRAM_ID}
    assert spend.programs_receiving_wallet == (bytes(OWNER), SYSTEM_PROGRAM_ID)


@pytest.mark.parametrize(
    ("instruction", "changes"),
    [
        (sp.assign({"pubkey": WALLET, "owner": OWNER}), 1),
        # Allocate and Assign of an account the wallet controls, whatever the new owner (#10).
        (sp.assign({"pubkey": WALLET, "owner": Pubkey(SYSTEM_PROGRAM_ID)}), 1),
        (sp.assign({"pubkey": A, "owner": OWNER}), 0),
        (sp.assign_with_seed({"address": A, "base": WALLET, "seed": "s", "owner": OWNER}), 1),
        (sp.assign_with_seed({"address": A, "base": WALLET, "seed": "s", "owner": Pubkey(SYSTEM_PROGRAM_ID)}), 1),
        (sp.assign_with_seed({"address": A, "base": OTHER, "seed": "s", "owner": OWNER}), 0),
        (sp.allocate({"pubkey": WALLET, "space": 8}), 1),
        (sp.allocate({"pubkey": A, "space": 8}), 0),
        (sp.allocate_with_seed({"address": A, "base": WALLET, "seed": "s", "space": 8, "owner": OWNER}), 1),
        (sp.allocate_with_seed({"address": A, "base": WALLET, "seed": "s", "space": 80, "owner": Pubkey(SYSTEM_PROGRAM_ID)}), 1),
        (sp.allocate_with_seed({"address": A, "base": OTHER, "seed": "s", "space": 80, "owner": Pubkey(SYSTEM_PROGRAM_ID)}), 0),
        (sp.create_account({"from_pubkey": OTHER, "to_pubkey": WALLET, "lamports": 1, "space": 0, "owner": OWNER}), 1),
        (sp.create_account_allow_prefund({"new_account": WALLET, "payer": None, "lamports": 0, "space": 0, "owner": OWNER}), 1),
        (sp.authorize_nonce_account({"nonce_pubkey": A, "authorized_pubkey": WALLET, "new_authority": B}), 1),
        (sp.authorize_nonce_account({"nonce_pubkey": A, "authorized_pubkey": WALLET, "new_authority": WALLET}), 0),
        (sp.authorize_nonce_account({"nonce_pubkey": A, "authorized_pubkey": OTHER, "new_authority": B}), 0),
        # Another authority, on any account: it may be one of the wallet's that the same
        # transaction emptied (review of #10).
        (sp.initialize_nonce_account({"nonce_pubkey": A, "authority": B}), 1),
        (sp.initialize_nonce_account({"nonce_pubkey": A, "authority": WALLET}), 0),
        # An account derived from the wallet, created with data or another owner (review of #10).
        (sp.create_account_with_seed({"from_pubkey": OTHER, "to_pubkey": A, "base": WALLET, "seed": "s", "lamports": 1, "space": 80, "owner": Pubkey(SYSTEM_PROGRAM_ID)}), 1),
        (sp.create_account_with_seed({"from_pubkey": OTHER, "to_pubkey": A, "base": WALLET, "seed": "s", "lamports": 1, "space": 0, "owner": OWNER}), 1),
        (sp.create_account_with_seed({"from_pubkey": OTHER, "to_pubkey": A, "base": WALLET, "seed": "s", "lamports": 1, "space": 0, "owner": Pubkey(SYSTEM_PROGRAM_ID)}), 0),
        (sp.create_account_with_seed({"from_pubkey": OTHER, "to_pubkey": A, "base": OTHER, "seed": "s", "lamports": 1, "space": 80, "owner": OWNER}), 0),
    ],
)
def test_ownership_changes(instruction: Instruction, changes: int) -> None:
    spend = spend_of(instruction, payer=OTHER)
    assert len(spend.ownership_changes) == changes


def test_not_a_signer() -> None:
    spend = spend_of(transfer(OTHER, WALLET, 5), payer=OTHER)
    assert not spend.wallet_is_signer and not spend.wallet_is_fee_payer
    assert spend.spend_lamports == 0
    spend = compute_spend(message_of(transfer(OTHER, A, 5), payer=OTHER), bytes(B))
    assert not spend.wallet_is_signer and spend.programs_receiving_wallet == ()


def test_v0_lookup_destination() -> None:
    table_key = Pubkey(bytes([9]) * 32)
    table = AddressLookupTableAccount(table_key, [A, B])
    message = MessageV0.try_compile(WALLET, [transfer(WALLET, B, 77)], [table], Hash(bytes(32)))
    parsed = parse_transaction_input(to_bytes_versioned(message))
    spend = compute_spend(parsed.message, W)
    (payment,) = spend.payments
    assert payment.destination is None and payment.lamports == 77
    assert "entry 1" in payment.destination_label
    assert spend.spend_lamports == 5_077


def test_bad_wallet_argument() -> None:
    with pytest.raises(InvalidPublicKey):
        compute_spend(message_of(transfer(WALLET, A, 1)), b"short")


def test_bad_instruction_data_is_invalid_transaction() -> None:
    with pytest.raises(InvalidTransaction):
        spend_of(Instruction(Pubkey(SYSTEM_PROGRAM_ID), u32(2), [AccountMeta(WALLET, True, True)]))


# -- describe -----------------------------------------------------------------------


def test_describe_is_json_and_plain_words() -> None:
    parsed = parse_transaction_input(
        bytes(
            SoldersMessage.new_with_blockhash(
                [cb.set_compute_unit_price(1000), transfer(WALLET, A, 49)], WALLET, Hash(bytes(32))
            )
        )
    )
    result = describe(parsed)
    json.dumps(result)
    assert result["version"] == "legacy"
    assert result["fee_payer"] == str(WALLET)
    assert result["signers"] == [str(WALLET)]
    assert set(result["programs"]) == {str(Pubkey(SYSTEM_PROGRAM_ID)), "ComputeBudget111111111111111111111111111111"}
    assert result["instructions"][1]["description"] == f"transfer 0.000000049 SOL from {WALLET} to {A}"
    assert result["fee_lamports"] == 5_000 + 6  # 1000 micro-lamports * 6,000 units (two builtins)
    assert result["spend_lamports"] == 5_000 + 6 + 49
    # for another wallet, the spend is that wallet's
    other = describe(parsed.message, wallet=bytes(A))
    assert other["spend_lamports"] == 0 and other["wallet"] == str(A)


def test_describe_v0_accounts_from_lookups() -> None:
    table = AddressLookupTableAccount(Pubkey(bytes([9]) * 32), [A, B])
    message = MessageV0.try_compile(WALLET, [transfer(WALLET, B, 77)], [table], Hash(bytes(32)))
    result = describe(parse_transaction_input(to_bytes_versioned(message)))
    json.dumps(result)
    assert result["version"] == 0
    loaded = [account for account in result["accounts"] if account["address"] is None]
    assert loaded == [{"address": None, "is_signer": False, "is_writable": True, "lookup_table": str(Pubkey(bytes([9]) * 32)), "lookup_index": 1}]
    assert "lookup table" in result["instructions"][0]["description"]
