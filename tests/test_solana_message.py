"""Strict parsing of messages and transactions, input shape and signature placement."""

from __future__ import annotations

import base64
import os

import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message as SoldersMessage
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from jarvis_wallet.errors import InvalidTransaction
from jarvis_wallet.solana import (
    AddressTableLookup,
    CompiledInstruction,
    decode_base64_input,
    encode_message,
    encode_shortvec,
    parse_message,
    parse_transaction_input,
)

KEYS = [bytes([i + 1]) * 32 for i in range(8)]
BLOCKHASH = bytes(range(32))
SYSTEM = bytes(32)


def raw_message(
    header: tuple[int, int, int] = (1, 0, 1),
    keys: list[bytes] | None = None,
    instructions: list[tuple[int, list[int], bytes]] | None = None,
    lookups: list[tuple[bytes, list[int], list[int]]] | None = None,
    version: int | None = None,
    blockhash: bytes = BLOCKHASH,
) -> bytes:
    """Serialize without any checks, so tests can build invalid messages."""
    keys = [KEYS[0], KEYS[1], SYSTEM] if keys is None else keys
    instructions = [(2, [0, 1], b"\x02\x00\x00\x00" + (49).to_bytes(8, "little"))] if instructions is None else instructions
    out = bytearray()
    if version is not None:
        out.append(0x80 | version)
    out += bytes(header) + encode_shortvec(len(keys)) + b"".join(keys) + blockhash
    out += encode_shortvec(len(instructions))
    for program, accounts, data in instructions:
        out += bytes([program]) + encode_shortvec(len(accounts)) + bytes(accounts) + encode_shortvec(len(data)) + data
    if version is not None:
        lookups = lookups or []
        out += encode_shortvec(len(lookups))
        for table, writable, readonly in lookups:
            out += table + encode_shortvec(len(writable)) + bytes(writable) + encode_shortvec(len(readonly)) + bytes(readonly)
    return bytes(out)


def full_tx(message: bytes, count: int, fill: int = 0) -> bytes:
    return encode_shortvec(count) + bytes([fill]) * (64 * count) + message


# -- messages ---------------------------------------------------------------------


def test_legacy_transfer_built_by_solders() -> None:
    payer, to = Keypair(), Pubkey(KEYS[5])
    solders_message = SoldersMessage.new_with_blockhash(
        [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=49))], payer.pubkey(), Hash(BLOCKHASH)
    )
    data = bytes(solders_message)
    message = parse_message(data)
    assert message.version == "legacy"
    assert (message.num_required_signatures, message.num_readonly_signed_accounts, message.num_readonly_unsigned_accounts) == (1, 0, 1)
    assert message.account_keys == tuple(bytes(k) for k in solders_message.account_keys)
    assert message.fee_payer == bytes(payer.pubkey())
    assert message.signer_keys == (bytes(payer.pubkey()),)
    assert message.recent_blockhash == BLOCKHASH
    assert message.instructions == (CompiledInstruction(2, (0, 1), bytes(solders_message.instructions[0].data)),)
    assert message.address_table_lookups == ()
    assert message.serialized == data


def test_v0_with_lookups() -> None:
    table = KEYS[7]
    data = raw_message(
        header=(2, 1, 1),
        keys=[KEYS[0], KEYS[1], KEYS[2], SYSTEM],
        instructions=[(3, [0, 4, 5, 6], b"")],
        lookups=[(table, [9], [3, 4])],
        version=0,
    )
    message = parse_message(data)
    assert message.version == 0
    assert message.address_table_lookups == (AddressTableLookup(table, (9,), (3, 4)),)
    assert message.num_accounts == 7
    assert [message.is_signer(i) for i in range(7)] == [True, True, False, False, False, False, False]
    # static: writable signer, readonly signer, writable unsigned, readonly unsigned;
    # loaded: writable entry 9, then readonly entries 3 and 4
    assert [message.is_writable(i) for i in range(7)] == [True, False, True, False, True, False, False]
    assert message.account_key(3) == SYSTEM
    assert message.account_key(4) is None
    assert "entry 9" in message.account_label(4)
    assert "entry 4" in message.account_label(6)
    with pytest.raises(InvalidTransaction):
        message.is_writable(7)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (raw_message(header=(0, 0, 0)), "no signatures"),
        (raw_message(header=(1, 1, 0)), "read-only"),
        (raw_message(header=(2, 2, 0)), "read-only"),
        (raw_message(header=(2, 0, 2)), "lists only 3"),
        (raw_message(header=(4, 0, 0)), "lists only 3"),
        (raw_message(keys=[KEYS[0], KEYS[0], SYSTEM]), "same account key twice"),
        (raw_message(instructions=[(0, [1], b"")]), "fee payer as its program"),
        (raw_message(instructions=[(3, [0], b"")]), "outside the 3 static"),
        (raw_message(instructions=[(2, [0, 3], b"")]), "outside the 3 accounts"),
        (raw_message(version=1), "version 1"),
        (raw_message(version=0x7F), "version 127"),
        (raw_message() + b"\x00", "trailing"),
        (raw_message(version=0) + b"\x00", "trailing"),
        (raw_message(version=0, lookups=[(KEYS[7], [], [])]), "loads no accounts"),
        (raw_message(version=0, lookups=[(KEYS[7], [1], [1])]), "twice"),
        (raw_message(version=0, lookups=[(KEYS[7], [1], []), (KEYS[7], [], [1])]), "twice"),
        # v0 programs must be static keys, not loaded ones
        (raw_message(version=0, instructions=[(3, [0], b"")], lookups=[(KEYS[7], [1], [])]), "outside the 3 static"),
        (raw_message(version=0, lookups=[(KEYS[7], list(range(254)), [])]), "more than 256"),
        (raw_message(keys=[bytes([1, i % 256, i // 256]) + bytes(29) for i in range(257)]), "more than 256"),
        (raw_message()[:-1], "truncated"),
        (raw_message()[:40], "truncated"),
        # a non-canonical key count: 3 written as 0x83 0x00
        (bytes([1, 0, 1, 0x83, 0x00]) + raw_message()[4:], "non-canonical"),
    ],
)
def test_invalid_messages(data: bytes, why: str) -> None:
    with pytest.raises(InvalidTransaction, match=why):
        parse_message(data)


def test_v0_at_256_accounts_is_fine() -> None:
    parse_message(raw_message(version=0, lookups=[(KEYS[7], list(range(253)), [])]))


def test_every_truncation_is_refused() -> None:
    for data in (raw_message(), raw_message(version=0, lookups=[(KEYS[7], [1], [2])])):
        for end in range(len(data)):
            with pytest.raises(InvalidTransaction):
                parse_message(data[:end])


@pytest.mark.parametrize("bad", ["text", None, 3, [1, 2]])
def test_non_bytes_input(bad: object) -> None:
    with pytest.raises(InvalidTransaction):
        parse_message(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidTransaction):
        parse_transaction_input(bad)  # type: ignore[arg-type]


def test_encode_message_round_trips() -> None:
    data = raw_message(version=0, lookups=[(KEYS[7], [1], [2])])
    message = parse_message(data)
    again = encode_message(
        version=message.version,
        num_required_signatures=message.num_required_signatures,
        num_readonly_signed_accounts=message.num_readonly_signed_accounts,
        num_readonly_unsigned_accounts=message.num_readonly_unsigned_accounts,
        account_keys=message.account_keys,
        recent_blockhash=message.recent_blockhash,
        instructions=message.instructions,
        address_table_lookups=message.address_table_lookups,
    )
    assert again == data


# -- input shape ------------------------------------------------------------------


def test_bare_message_shape() -> None:
    parsed = parse_transaction_input(raw_message())
    assert not parsed.is_full_transaction
    assert parsed.signatures == ()
    assert parsed.signing_bytes() == raw_message()


def test_full_transaction_shape() -> None:
    message = raw_message(header=(2, 1, 1), keys=[KEYS[0], KEYS[1], KEYS[2], SYSTEM], instructions=[(3, [0, 2], b"")])
    data = full_tx(message, 2, fill=7)
    parsed = parse_transaction_input(data)
    assert parsed.is_full_transaction
    assert parsed.signatures == (bytes([7]) * 64, bytes([7]) * 64)
    assert parsed.signing_bytes() == message
    assert parsed.message.serialized == message


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (full_tx(raw_message(), 2), "not a transaction"),
        (full_tx(raw_message(header=(2, 0, 0)), 1), "not a transaction"),
        (full_tx(raw_message(), 1) + b"\x00", "trailing"),
        (full_tx(raw_message(), 1)[:-1], "not a transaction"),
        (b"\x00" + raw_message(), "not a transaction"),
        (b"", "empty"),
    ],
)
def test_invalid_transactions(data: bytes, why: str) -> None:
    with pytest.raises(InvalidTransaction, match=why):
        parse_transaction_input(data)


def test_signature_count_must_match_header_exactly() -> None:
    message = raw_message(header=(2, 0, 1), keys=[KEYS[0], KEYS[1], SYSTEM], instructions=[(2, [0, 1], b"")])
    assert parse_transaction_input(full_tx(message, 2)).is_full_transaction
    for count in (1, 3):
        with pytest.raises(InvalidTransaction, match="signature slots but its message requires 2|not a transaction"):
            parse_transaction_input(full_tx(message, count))


def test_ambiguous_input_is_refused() -> None:
    """Bytes that parse both as a transaction and as a bare message are refused.

    Full reading: 1 signature slot, then a legacy message M with 126 keys. Bare
    reading: header (1, 0, 0) from the slot's first bytes, 128 keys (0x80 0x01),
    the last 126 of which are M's keys; blockhash and instructions are shared.
    """
    keys = [os.urandom(32) for _ in range(126)]
    inner = raw_message(header=(1, 0, 0), keys=keys, instructions=[(1, [0], b"")])
    signature_slot = bytes([0, 0, 0x80, 0x01]) + os.urandom(60)
    data = b"\x01" + signature_slot + inner
    as_message = parse_message(data)
    assert as_message.num_static_accounts == 128
    assert parse_message(inner).num_static_accounts == 126
    with pytest.raises(InvalidTransaction, match="ambiguous"):
        parse_transaction_input(data)


# -- placing a signature ----------------------------------------------------------


def test_with_signature_on_a_bare_message_verifies_in_solders() -> None:
    signer, other = Keypair(), Keypair()
    instruction = transfer(TransferParams(from_pubkey=signer.pubkey(), to_pubkey=other.pubkey(), lamports=1))
    message = SoldersMessage.new_with_blockhash([instruction], other.pubkey(), Hash(BLOCKHASH))
    parsed = parse_transaction_input(bytes(message))
    signature = bytes(signer.sign_message(parsed.signing_bytes()))
    signed = parsed.with_signature(bytes(signer.pubkey()), signature)
    tx = VersionedTransaction.from_bytes(signed)
    slot = list(message.account_keys).index(signer.pubkey())
    assert tx.signatures[slot] == Signature(signature)
    assert tx.signatures[1 - slot] == Signature.default()
    assert tx.verify_with_results()[slot] is True
    reparsed = parse_transaction_input(signed)
    assert reparsed.is_full_transaction and reparsed.message == parsed.message


def test_with_signature_on_a_full_v0_transaction_keeps_other_slots() -> None:
    signer, payer = Keypair(), Keypair()
    instruction = transfer(TransferParams(from_pubkey=signer.pubkey(), to_pubkey=payer.pubkey(), lamports=1))
    message = MessageV0.try_compile(payer.pubkey(), [instruction], [], Hash(BLOCKHASH))
    payer_signature = payer.sign_message(to_bytes_versioned(message))
    tx = VersionedTransaction.populate(message, [payer_signature, Signature.default()])
    parsed = parse_transaction_input(bytes(tx))
    assert parsed.is_full_transaction and parsed.message.version == 0
    signature = bytes(signer.sign_message(parsed.signing_bytes()))
    signed = VersionedTransaction.from_bytes(parsed.with_signature(bytes(signer.pubkey()), signature))
    assert signed.verify_with_results() == [True, True]


@pytest.mark.parametrize(
    ("pubkey", "signature", "why"),
    [
        (KEYS[6], bytes(64), "not a required signer"),
        (KEYS[1], bytes(64), "not a required signer"),  # present, but not a signer
        (KEYS[0][:31], bytes(64), "32 bytes"),
        (KEYS[0], bytes(63), "64 bytes"),
        ("key", bytes(64), "32 bytes"),
    ],
)
def test_with_signature_rejects(pubkey: object, signature: bytes, why: str) -> None:
    parsed = parse_transaction_input(raw_message())
    with pytest.raises(InvalidTransaction, match=why):
        parsed.with_signature(pubkey, signature)  # type: ignore[arg-type]


# -- base64 -----------------------------------------------------------------------


def test_base64_accepts_surrounding_whitespace() -> None:
    data = raw_message()
    text = base64.b64encode(data).decode()
    assert decode_base64_input(f"  {text}\n") == data
    assert decode_base64_input(f"\t{text}\r\n".encode()) == data


def test_base64_accepts_line_breaks_as_coreutils_base64_writes_them() -> None:
    import subprocess

    data = raw_message() + bytes(range(200))  # long enough for `base64` to wrap at 76 columns
    wrapped = subprocess.run(["base64"], input=data, capture_output=True, check=True).stdout.decode()
    assert wrapped.count("\n") > 2
    assert decode_base64_input(wrapped) == data
    assert decode_base64_input(wrapped.replace("\n", "\r\n")) == data
    assert decode_base64_input("AA A=") == decode_base64_input("AAA=")


@pytest.mark.parametrize(
    "text",
    ["", "   ", "AAA", "AA==AA==", "AA==\nAA==", "AAB=", "AB!C", "ÄÄÄÄ", b"\xff\xfe", 42],
)
def test_base64_is_strict(text: object) -> None:
    with pytest.raises(InvalidTransaction):
        decode_base64_input(text)  # type: ignore[arg-type]
