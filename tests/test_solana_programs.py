"""Instruction decoding: every System variant, Compute Budget, Memo, opaque programs."""

from __future__ import annotations

import pytest
import solders.compute_budget as cb
import solders.system_program as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import Message as SoldersMessage
from solders.pubkey import Pubkey

from jarvis_wallet.errors import InvalidTransaction
from jarvis_wallet.policy import Limits, decide
from jarvis_wallet.solana import (
    COMPUTE_BUDGET_PROGRAM_ID,
    MEMO_V1_PROGRAM_ID,
    MEMO_V2_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    compute_spend,
    decode_instructions,
    describe,
    describe_instruction,
    parse_message,
)
from jarvis_wallet.solana.programs import SYSTEM_INSTRUCTION_KINDS, instruction_to_dict

PAYER, A, B, C, OWNER = (Pubkey(bytes([i]) * 32) for i in (1, 2, 3, 4, 5))
SYSTEM = Pubkey(SYSTEM_PROGRAM_ID)


def decode(*instructions: Instruction):
    message = parse_message(bytes(SoldersMessage.new_with_blockhash(list(instructions), PAYER, Hash(bytes(32)))))
    return message, decode_instructions(message)


def raw(program: Pubkey, data: bytes, accounts: list[Pubkey] | None = None) -> Instruction:
    metas = [AccountMeta(key, is_signer=False, is_writable=True) for key in (accounts or [])]
    return Instruction(program, data, metas)


# (solders instruction, kind, fields, roles: role -> pubkey)
SYSTEM_CASES = [
    (
        sp.create_account({"from_pubkey": PAYER, "to_pubkey": A, "lamports": 7, "space": 165, "owner": OWNER}),
        "create_account",
        {"lamports": 7, "space": 165, "owner": bytes(OWNER)},
        {"funder": PAYER, "new_account": A},
    ),
    (sp.assign({"pubkey": A, "owner": OWNER}), "assign", {"owner": bytes(OWNER)}, {"account": A}),
    (
        sp.transfer({"from_pubkey": PAYER, "to_pubkey": A, "lamports": 2**64 - 1}),
        "transfer",
        {"lamports": 2**64 - 1},
        {"from": PAYER, "to": A},
    ),
    (
        sp.create_account_with_seed(
            {"from_pubkey": PAYER, "to_pubkey": A, "base": B, "seed": "sëed", "lamports": 9, "space": 0, "owner": OWNER}
        ),
        "create_account_with_seed",
        {"base": bytes(B), "seed": "sëed", "lamports": 9, "space": 0, "owner": bytes(OWNER)},
        {"funder": PAYER, "new_account": A, "base_account": B},
    ),
    (
        sp.advance_nonce_account({"nonce_pubkey": A, "authorized_pubkey": PAYER}),
        "advance_nonce_account",
        {},
        {"nonce_account": A, "authority": PAYER},
    ),
    (
        sp.withdraw_nonce_account({"nonce_pubkey": A, "authorized_pubkey": PAYER, "to_pubkey": B, "lamports": 11}),
        "withdraw_nonce_account",
        {"lamports": 11},
        {"nonce_account": A, "recipient": B, "authority": PAYER},
    ),
    (
        sp.initialize_nonce_account({"nonce_pubkey": A, "authority": B}),
        "initialize_nonce_account",
        {"authority": bytes(B)},
        {"nonce_account": A},
    ),
    (
        sp.authorize_nonce_account({"nonce_pubkey": A, "authorized_pubkey": PAYER, "new_authority": B}),
        "authorize_nonce_account",
        {"new_authority": bytes(B)},
        {"nonce_account": A, "authority": PAYER},
    ),
    (sp.allocate({"pubkey": A, "space": 10}), "allocate", {"space": 10}, {"account": A}),
    (
        sp.allocate_with_seed({"address": A, "base": B, "seed": "s", "space": 3, "owner": OWNER}),
        "allocate_with_seed",
        {"base": bytes(B), "seed": "s", "space": 3, "owner": bytes(OWNER)},
        {"account": A, "base_account": B},
    ),
    (
        sp.assign_with_seed({"address": A, "base": B, "seed": "", "owner": OWNER}),
        "assign_with_seed",
        {"base": bytes(B), "seed": "", "owner": bytes(OWNER)},
        {"account": A, "base_account": B},
    ),
    (
        sp.transfer_with_seed(
            {"from_pubkey": A, "from_base": PAYER, "from_seed": "x", "from_owner": OWNER, "to_pubkey": B, "lamports": 5}
        ),
        "transfer_with_seed",
        {"lamports": 5, "from_seed": "x", "from_owner": bytes(OWNER)},
        {"from": A, "base": PAYER, "to": B},
    ),
    (sp.upgrade_nonce_account({"nonce_pubkey": A}), "upgrade_nonce_account", {}, {"nonce_account": A}),
    (
        sp.create_account_allow_prefund({"new_account": A, "payer": PAYER, "lamports": 3, "space": 8, "owner": OWNER}),
        "create_account_allow_prefund",
        {"lamports": 3, "space": 8, "owner": bytes(OWNER)},
        {"new_account": A, "funder": PAYER},
    ),
    (
        sp.create_account_allow_prefund({"new_account": A, "payer": None, "lamports": 0, "space": 8, "owner": OWNER}),
        "create_account_allow_prefund",
        {"lamports": 0, "space": 8, "owner": bytes(OWNER)},
        {"new_account": A},
    ),
]


def test_every_system_variant_is_covered() -> None:
    assert set(SYSTEM_INSTRUCTION_KINDS) == {kind for _, kind, _, _ in SYSTEM_CASES}
    assert len(SYSTEM_INSTRUCTION_KINDS) == 14


@pytest.mark.parametrize(("instruction", "kind", "fields", "roles"), SYSTEM_CASES, ids=[c[1] for c in SYSTEM_CASES])
def test_system_instructions_match_solders(instruction, kind, fields, roles) -> None:
    message, (decoded,) = decode(instruction)
    assert (decoded.program, decoded.kind) == ("system", kind)
    assert dict(decoded.fields) == fields
    resolved = {role: message.account_key(index) for role, index in decoded.roles.items()}
    for role, key in roles.items():
        assert resolved[role] == bytes(key), role
    text = describe_instruction(message, decoded)
    assert "\n" not in text and text
    entry = instruction_to_dict(message, decoded)
    assert entry["kind"] == kind and entry["description"] == text


def test_transfer_description() -> None:
    message, (decoded,) = decode(sp.transfer({"from_pubkey": PAYER, "to_pubkey": A, "lamports": 49}))
    assert describe_instruction(message, decoded) == f"transfer 0.000000049 SOL from {PAYER} to {A}"


@pytest.mark.parametrize(
    ("instruction", "kind", "fields"),
    [
        (cb.set_compute_unit_limit(200_000), "set_compute_unit_limit", {"units": 200_000}),
        (cb.set_compute_unit_price(2**64 - 1), "set_compute_unit_price", {"micro_lamports": 2**64 - 1}),
        (cb.request_heap_frame(64 * 1024), "request_heap_frame", {"bytes": 64 * 1024}),
        (cb.set_loaded_accounts_data_size_limit(1), "set_loaded_accounts_data_size_limit", {"bytes": 1}),
    ],
)
def test_compute_budget(instruction, kind, fields) -> None:
    _, (decoded,) = decode(instruction)
    assert (decoded.program, decoded.kind, dict(decoded.fields)) == ("compute_budget", kind, fields)


@pytest.mark.parametrize("program", [MEMO_V1_PROGRAM_ID, MEMO_V2_PROGRAM_ID])
def test_memo(program: bytes) -> None:
    message, (decoded,) = decode(raw(Pubkey(program), "héllo\u202e".encode()))
    assert decoded.kind == "memo" and decoded.fields["text"] == "héllo\u202e"
    # repr() escapes the bidi override so a terminal shows what is really there
    assert describe_instruction(message, decoded) == "memo 'héllo\\u202e'"


def test_empty_memo_is_text() -> None:
    _, (decoded,) = decode(raw(Pubkey(MEMO_V2_PROGRAM_ID), b""))
    assert decoded.fields["text"] == ""


def test_other_programs_are_opaque() -> None:
    message, (decoded,) = decode(raw(C, b"\x01\x02", [PAYER, A]))
    assert (decoded.program, decoded.kind, decoded.data) == ("unknown", "opaque", b"\x01\x02")
    assert describe_instruction(message, decoded) == f"call program {C} with 2 accounts and 2 bytes of data"
    assert instruction_to_dict(message, decoded)["data_hex"] == "0102"


def u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


@pytest.mark.parametrize(
    ("instructions", "why"),
    [
        ([raw(SYSTEM, b"", [PAYER, A])], "too short"),
        ([raw(SYSTEM, u32(2), [PAYER, A])], "too short"),
        ([raw(SYSTEM, u32(2) + u64(1) + b"\x00", [PAYER, A])], "1 unexpected bytes"),
        ([raw(SYSTEM, u32(14), [PAYER])], "unknown instruction variant 14"),
        ([raw(SYSTEM, u32(2**32 - 1), [PAYER])], "unknown instruction variant"),
        ([raw(SYSTEM, u32(2) + u64(1), [PAYER])], "needs 2 accounts, has 1"),
        ([raw(SYSTEM, u32(0) + u64(1) + u64(1) + bytes(31), [PAYER, A])], "too short"),
        ([raw(SYSTEM, u32(4) + b"\x00", [A])], "unexpected bytes"),
        ([raw(SYSTEM, u32(11) + u64(1) + u64(1) + b"x" + bytes(32), [A, PAYER])], "needs 3 accounts"),
        ([raw(SYSTEM, u32(11) + u64(1) + u64(2) + b"x", [A, PAYER, B])], "seed length 2 runs past"),
        ([raw(SYSTEM, u32(11) + u64(1) + u64(2**64 - 1) + b"x", [A, PAYER, B])], "runs past"),
        ([raw(SYSTEM, u32(11) + u64(1) + u64(1) + b"\xff" + bytes(32), [A, PAYER, B])], "not valid UTF-8"),
        ([raw(SYSTEM, u32(13) + u64(1) + u64(0) + bytes(32), [A])], "needs 2 accounts"),
        ([raw(Pubkey(COMPUTE_BUDGET_PROGRAM_ID), b"")], "empty instruction data"),
        ([raw(Pubkey(COMPUTE_BUDGET_PROGRAM_ID), b"\x00" + u32(1) + u32(1))], "deprecated RequestUnits"),
        ([raw(Pubkey(COMPUTE_BUDGET_PROGRAM_ID), b"\x05")], "unknown instruction variant 5"),
        ([raw(Pubkey(COMPUTE_BUDGET_PROGRAM_ID), b"\x02" + u32(1) + b"\x00")], "expected 5"),
        ([raw(Pubkey(COMPUTE_BUDGET_PROGRAM_ID), b"\x03" + u32(1))], "expected 9"),
        ([raw(Pubkey(COMPUTE_BUDGET_PROGRAM_ID), b"\x01" + u32(1000))], "heap frame"),
        ([raw(Pubkey(COMPUTE_BUDGET_PROGRAM_ID), b"\x01" + u32(32 * 1024 + 1))], "heap frame"),
        ([raw(Pubkey(COMPUTE_BUDGET_PROGRAM_ID), b"\x01" + u32(257 * 1024))], "heap frame"),
        ([raw(Pubkey(COMPUTE_BUDGET_PROGRAM_ID), b"\x04" + u32(0))], "limit of 0"),
        ([cb.set_compute_unit_price(1), cb.set_compute_unit_price(2)], "duplicate"),
        ([cb.set_compute_unit_limit(1), cb.set_compute_unit_limit(1)], "duplicate"),
        ([raw(Pubkey(MEMO_V2_PROGRAM_ID), b"\xc3")], "not valid UTF-8"),
        ([raw(Pubkey(MEMO_V1_PROGRAM_ID), b"\xff")], "not valid UTF-8"),
    ],
)
def test_known_programs_with_bad_data_are_refused(instructions, why) -> None:
    with pytest.raises(InvalidTransaction, match=why):
        decode(*instructions)


def test_extra_accounts_on_system_instructions_are_tolerated() -> None:
    _, (decoded,) = decode(raw(SYSTEM, u32(2) + u64(1), [PAYER, A, B]))
    assert decoded.kind == "transfer" and len(decoded.accounts) == 3


# -- robustness ---------------------------------------------------------------------


KNOWN_PROGRAMS = [SYSTEM, Pubkey(COMPUTE_BUDGET_PROGRAM_ID), Pubkey(MEMO_V1_PROGRAM_ID), Pubkey(MEMO_V2_PROGRAM_ID)]


@st.composite
def known_program_data(draw) -> bytes:
    """Mostly well-formed variants with random fields, sometimes arbitrary bytes."""
    program = draw(st.sampled_from(KNOWN_PROGRAMS))
    if program == SYSTEM and draw(st.booleans()):
        variant = draw(st.integers(0, 15))
        seed = draw(st.binary(max_size=8))
        fields = draw(st.binary(max_size=90))
        data = u32(variant) + draw(st.sampled_from([b"", u64(len(seed)) + seed])) + fields
    elif program == Pubkey(COMPUTE_BUDGET_PROGRAM_ID) and draw(st.booleans()):
        data = bytes([draw(st.integers(0, 5))]) + draw(st.binary(max_size=9))
    else:
        data = draw(st.binary(max_size=60))
    accounts = draw(st.lists(st.sampled_from([PAYER, A, B, C]), max_size=5))
    return program, data, accounts


@settings(max_examples=600, deadline=None)
@given(st.lists(known_program_data(), min_size=1, max_size=3), st.sampled_from([PAYER, A]))
def test_known_programs_never_raise_anything_but_invalid_transaction(instructions, wallet) -> None:
    try:
        message, decoded = decode(*(raw(program, data, accounts) for program, data, accounts in instructions))
    except InvalidTransaction:
        return
    for instruction in decoded:
        assert describe_instruction(message, instruction)
    spend = compute_spend(message, bytes(wallet))
    assert spend.spend_lamports >= 0
    describe(message, wallet=bytes(wallet))
    decide(message=message, wallet=bytes(wallet), limits=Limits(10**9, 10**10), spent_24h_lamports=0)
