"""build_transfer_message and build_token_transfer_message are byte-identical to solders and the
SPL instruction builders (solana-py's spl.token) for the same inputs."""

from __future__ import annotations

import pytest
import solders.compute_budget as cb
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message as SoldersMessage
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from spl.token.constants import TOKEN_2022_PROGRAM_ID as SPL_TOKEN_2022
from spl.token.constants import TOKEN_PROGRAM_ID as SPL_TOKEN

from jarvis_wallet.errors import InvalidAmount, InvalidPublicKey, InvalidTransaction
from jarvis_wallet.solana import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    MEMO_V2_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    associated_token_address,
    build_offchain_message,
    build_token_transfer_message,
    build_transfer_message,
    compute_spend,
    decode_instructions,
    parse_offchain_message,
    parse_transaction_input,
)
from jarvis_wallet.solana.message import parse_message
from tests.token_vectors import spl_transfer_message

keys = st.binary(min_size=32, max_size=32)


def solders_transfer(source, dest, lamports, blockhash, v0, price, limit, memo) -> bytes:
    """The reference: same instruction order as build.py (limit, price, transfer, memo)."""
    instructions = []
    if limit is not None:
        instructions.append(cb.set_compute_unit_limit(limit))
    if price is not None:
        instructions.append(cb.set_compute_unit_price(price))
    instructions.append(transfer(TransferParams(from_pubkey=Pubkey(source), to_pubkey=Pubkey(dest), lamports=lamports)))
    if memo is not None:
        instructions.append(Instruction(Pubkey(MEMO_V2_PROGRAM_ID), memo.encode(), []))
    if v0:
        return to_bytes_versioned(MessageV0.try_compile(Pubkey(source), instructions, [], Hash(blockhash)))
    return bytes(SoldersMessage.new_with_blockhash(instructions, Pubkey(source), Hash(blockhash)))


@settings(max_examples=300, deadline=None)
@given(
    source=keys,
    dest=keys,
    lamports=st.integers(0, 2**64 - 1),
    blockhash=keys,
    v0=st.booleans(),
    price=st.none() | st.integers(0, 2**64 - 1),
    limit=st.none() | st.integers(0, 2**32 - 1),
    memo=st.none() | st.text(max_size=40),
    self_transfer=st.booleans(),
)
def test_matches_solders(source, dest, lamports, blockhash, v0, price, limit, memo, self_transfer) -> None:
    if self_transfer:
        dest = source
    assume(source not in (bytes(32), bytes(cb.ID), MEMO_V2_PROGRAM_ID))  # a program cannot pay fees
    ours = build_transfer_message(
        from_pubkey=source,
        to_pubkey=dest,
        lamports=lamports,
        recent_blockhash=blockhash,
        v0=v0,
        compute_unit_price=price,
        compute_unit_limit=limit,
        memo=memo,
    )
    assert ours == solders_transfer(source, dest, lamports, blockhash, v0, price, limit, memo)
    parsed = parse_transaction_input(ours)
    assert parsed.message.fee_payer == source
    spend = compute_spend(parsed.message, source)
    assert spend.outflow_lamports == (0 if source == dest else lamports)


def test_known_transfer_spend() -> None:
    source, dest = bytes([1]) * 32, bytes([2]) * 32
    message = build_transfer_message(
        from_pubkey=source, to_pubkey=dest, lamports=49, recent_blockhash=bytes(32),
        compute_unit_limit=300, compute_unit_price=1000, memo="invoice 7",
    )
    spend = compute_spend(parse_transaction_input(message).message, source)
    assert (spend.base_fee_lamports, spend.priority_fee_lamports, spend.spend_lamports) == (5000, 1, 5050)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"from_pubkey": b"x" * 31}, InvalidPublicKey),
        ({"to_pubkey": "11111111111111111111111111111111"}, InvalidPublicKey),
        ({"recent_blockhash": b""}, InvalidPublicKey),
        ({"lamports": -1}, InvalidAmount),
        ({"lamports": 2**64}, InvalidAmount),
        ({"lamports": 1.0}, InvalidAmount),
        ({"compute_unit_limit": 2**32}, InvalidAmount),
        ({"compute_unit_price": -1}, InvalidAmount),
        ({"from_pubkey": bytes(32)}, InvalidPublicKey),
        ({"memo": b"bytes"}, InvalidTransaction),
        ({"memo": "\ud800"}, InvalidTransaction),
        ({"memo": "x" * 2000}, InvalidTransaction),
    ],
)
def test_rejects(overrides: dict, error: type) -> None:
    arguments = {"from_pubkey": bytes([1]) * 32, "to_pubkey": bytes([2]) * 32, "lamports": 1, "recent_blockhash": bytes(32)}
    arguments.update(overrides)
    with pytest.raises(error):
        build_transfer_message(**arguments)


def test_largest_memo_fits_a_packet() -> None:
    arguments = {"from_pubkey": bytes([1]) * 32, "to_pubkey": bytes([2]) * 32, "lamports": 1, "recent_blockhash": bytes(32)}
    base = len(build_transfer_message(**arguments, memo=""))
    room = 1232 - 1 - 64 - base
    # the memo's own length prefix grows from one byte to two at 128
    message = build_transfer_message(**arguments, memo="m" * (room - 1))
    assert 1 + 64 + len(message) == 1232
    with pytest.raises(InvalidTransaction, match="1232"):
        build_transfer_message(**arguments, memo="m" * room)


def test_build_offchain_message_is_exported() -> None:
    assert parse_offchain_message(build_offchain_message("hello")).text == "hello"


# -- token transfers --------------------------------------------------------------------------

SPL_PROGRAMS = {TOKEN_PROGRAM_ID: SPL_TOKEN, TOKEN_2022_PROGRAM_ID: SPL_TOKEN_2022}


@settings(max_examples=150, deadline=None)
@given(
    wallet=keys,
    owner=keys,
    mint=keys,
    decimals=st.integers(0, 255),
    program=st.sampled_from([TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID]),
    amount=st.integers(0, 2**64 - 1),
    blockhash=keys,
    create=st.booleans(),
    v0=st.booleans(),
    price=st.none() | st.integers(0, 2**64 - 1),
    limit=st.none() | st.integers(0, 2**32 - 1),
    memo=st.none() | st.text(max_size=20),
)
def test_token_transfer_matches_the_spl_builders(
    wallet, owner, mint, decimals, program, amount, blockhash, create, v0, price, limit, memo
):
    programs = {bytes(32), bytes(cb.ID), MEMO_V2_PROGRAM_ID, TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID,
                ASSOCIATED_TOKEN_PROGRAM_ID}
    assume(wallet not in programs and owner not in programs and owner != mint)
    ours = build_token_transfer_message(
        wallet=wallet, owner=owner, mint=mint, decimals=decimals, token_program=program, amount_base_units=amount,
        recent_blockhash=blockhash, create=create, allow_owner_off_curve=True, v0=v0, compute_unit_price=price,
        compute_unit_limit=limit, memo=memo,
    )
    assert ours == spl_transfer_message(
        wallet=Pubkey(wallet), owner=Pubkey(owner), mint=Pubkey(mint), decimals=decimals, program=SPL_PROGRAMS[program],
        amount=amount, blockhash=Hash(blockhash), create=create, v0=v0, price=price, limit=limit, memo=memo,
    )


@pytest.mark.parametrize("program", [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID], ids=["token", "token-2022"])
@pytest.mark.parametrize("create", [True, False], ids=["create", "no-create"])
def test_token_transfer_decodes_back(program, create):
    wallet, owner = bytes(Keypair().pubkey()), bytes(Keypair().pubkey())
    mint, blockhash = bytes([9]) * 32, bytes([8]) * 32
    message = parse_message(
        build_token_transfer_message(
            wallet=wallet, owner=owner, mint=mint, decimals=6, token_program=program, amount_base_units=12_500_000,
            recent_blockhash=blockhash, create=create,
        )
    )
    decoded = decode_instructions(message)
    assert [d.kind for d in decoded] == (["create_idempotent"] if create else []) + ["transfer_checked"]
    transfer_checked = decoded[-1]
    assert transfer_checked.program_id == program
    assert dict(transfer_checked.fields) == {"amount": 12_500_000, "decimals": 6}
    key = message.account_key
    assert key(transfer_checked.roles["source"]) == associated_token_address(wallet, mint, program)
    assert key(transfer_checked.roles["destination"]) == associated_token_address(owner, mint, program)
    assert key(transfer_checked.roles["mint"]) == mint
    assert key(transfer_checked.roles["authority"]) == wallet
    assert message.account_keys[0] == wallet and message.num_required_signatures == 1
    if create:
        ata = decoded[0]
        assert ata.program_id == ASSOCIATED_TOKEN_PROGRAM_ID
        assert (key(ata.roles["funder"]), key(ata.roles["wallet"]), key(ata.roles["token_program"])) == (
            wallet, owner, program
        )
        assert key(ata.roles["associated_account"]) == key(transfer_checked.roles["destination"])


def test_token_transfer_refuses_bad_input():
    wallet, owner = bytes(Keypair().pubkey()), bytes(Keypair().pubkey())
    mint = bytes([9]) * 32
    arguments = dict(wallet=wallet, owner=owner, mint=mint, decimals=6, token_program=TOKEN_PROGRAM_ID,
                     amount_base_units=1, recent_blockhash=bytes(32))
    build_token_transfer_message(**arguments)
    token_account = associated_token_address(owner, mint, TOKEN_PROGRAM_ID)  # an ATA pasted as the recipient
    cases = [
        ({"owner": token_account}, InvalidPublicKey, "is not a wallet address (it is off the Ed25519 curve"),
        ({"token_program": SYSTEM_PROGRAM_ID}, InvalidPublicKey, "the token program must be the Token or the Token-2022"),
        ({"amount_base_units": 2**64}, InvalidAmount, "token amount in base units must be an integer from 0 to"),
        ({"amount_base_units": -1}, InvalidAmount, "token amount in base units must be an integer"),
        ({"decimals": 256}, InvalidAmount, "decimals must be an integer from 0 to 255"),
        ({"owner": TOKEN_PROGRAM_ID}, InvalidPublicKey, "the recipient must be a wallet, not a program id or the mint"),
        ({"owner": mint}, InvalidPublicKey, "the recipient must be a wallet, not a program id or the mint"),
        ({"wallet": ASSOCIATED_TOKEN_PROGRAM_ID}, InvalidPublicKey, "the wallet cannot be a program id"),
        ({"mint": b"short"}, InvalidPublicKey, "mint must be 32 bytes"),
        ({"memo": "m" * 1100}, InvalidTransaction, "over Solana's 1232-byte limit"),
    ]
    for overrides, error, message in cases:
        with pytest.raises(error) as excinfo:
            build_token_transfer_message(**{**arguments, **overrides})
        assert message in str(excinfo.value), overrides
    off_curve = build_token_transfer_message(**{**arguments, "owner": token_account}, allow_owner_off_curve=True)
    assert associated_token_address(token_account, mint, TOKEN_PROGRAM_ID) in parse_message(off_curve).account_keys
