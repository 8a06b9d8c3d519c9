"""build_transfer_message is byte-identical to solders for the same inputs."""

from __future__ import annotations

import pytest
import solders.compute_budget as cb
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from solders.hash import Hash
from solders.instruction import Instruction
from solders.message import Message as SoldersMessage
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer

from jarvis_wallet.errors import InvalidAmount, InvalidPublicKey, InvalidTransaction
from jarvis_wallet.solana import (
    MEMO_V2_PROGRAM_ID,
    build_offchain_message,
    build_transfer_message,
    compute_spend,
    parse_offchain_message,
    parse_transaction_input,
)

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
