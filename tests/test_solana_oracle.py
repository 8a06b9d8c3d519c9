"""solders as an oracle for the parser.

Valid messages and transactions generated with solders must parse field by
field the same and re-serialize byte for byte. Mutated ones (truncated,
extended, bit-flipped, bytes inserted or deleted): whenever solders refuses,
we refuse with InvalidTransaction. Where solders accepts, we accept the same
or refuse for one of the documented stricter reasons:

* trailing bytes: solders' bincode ignores them; we do not (we count "solders
  accepts" only when it re-serializes to exactly the input, so this shows up
  as agreement);
* a lookup-table entry loaded twice (the runtime refuses it as AccountLoadedTwice);
* duplicate account keys (solders' parse and sanitize allow them; the
  runtime refuses them);
* message versions other than 0 (solders knows v1; we accept legacy and v0 only).

Nothing but InvalidTransaction ever escapes, for any bytes.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.hash import Hash
from solders.instruction import AccountMeta, CompiledInstruction, Instruction
from solders.message import Message as SoldersMessage
from solders.message import MessageAddressTableLookup, MessageHeader, MessageV0, from_bytes_versioned, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction

from jarvis_wallet.errors import InvalidTransaction
from jarvis_wallet.solana import parse_message, parse_transaction_input
from jarvis_wallet.solana.shortvec import encode_shortvec

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STRICTER = ("twice", "unsupported message version", "more than 256")

keys32 = st.binary(min_size=32, max_size=32)


@st.composite
def compiled_messages(draw) -> bytes:
    """Structurally valid messages built field by field (any header, any indexes)."""
    v0 = draw(st.booleans())
    num_keys = draw(st.integers(2, 10))
    keys = draw(st.lists(keys32, min_size=num_keys, max_size=num_keys, unique=True))
    required = draw(st.integers(1, num_keys))
    readonly_signed = draw(st.integers(0, required - 1))
    readonly_unsigned = draw(st.integers(0, num_keys - required))
    lookups = []
    if v0:
        # distinct tables: one entry loaded twice is refused (a documented strictness)
        for table in draw(st.lists(keys32, max_size=3, unique=True)):
            entries = draw(st.lists(st.integers(0, 255), min_size=1, max_size=6, unique=True))
            split = draw(st.integers(0, len(entries)))
            lookups.append((table, entries[:split], entries[split:]))
    total = num_keys + sum(len(w) + len(r) for _, w, r in lookups)
    instructions = [
        CompiledInstruction(
            program_id_index=draw(st.integers(1, num_keys - 1)),
            accounts=bytes(draw(st.lists(st.integers(0, total - 1), max_size=6))),
            data=draw(st.binary(max_size=40)),
        )
        for _ in range(draw(st.integers(0, 4)))
    ]
    blockhash = Hash(draw(keys32))
    pubkeys = [Pubkey(key) for key in keys]
    if v0:
        message = MessageV0(
            MessageHeader(required, readonly_signed, readonly_unsigned),
            pubkeys,
            blockhash,
            instructions,
            [MessageAddressTableLookup(Pubkey(t), bytes(w), bytes(r)) for t, w, r in lookups],
        )
        return to_bytes_versioned(message)
    message = SoldersMessage.new_with_compiled_instructions(
        required, readonly_signed, readonly_unsigned, pubkeys, blockhash, instructions
    )
    return bytes(message)


def lookup_tables(pool: list[Pubkey]):
    """Up to two lookup tables over ``pool``, each at an address of its own: two tables at one
    address can load one entry twice, which the parser refuses on purpose (a documented
    strictness), and so made every test drawing valid messages fail now and then."""
    table = st.tuples(keys32, st.lists(st.sampled_from(pool), max_size=6, unique=True))
    return st.lists(table, max_size=2, unique_by=lambda t: t[0])


@st.composite
def compiled_from_instructions(draw) -> bytes:
    """Messages compiled by solders from instructions, with lookup tables for v0."""
    pool = [Pubkey(key) for key in draw(st.lists(keys32, min_size=4, max_size=12, unique=True))]
    payer = pool[0]
    instructions = []
    for _ in range(draw(st.integers(1, 4))):
        program = draw(st.sampled_from(pool[1:]))
        metas = [
            AccountMeta(draw(st.sampled_from(pool)), draw(st.booleans()), draw(st.booleans()))
            for _ in range(draw(st.integers(0, 5)))
        ]
        instructions.append(Instruction(program, draw(st.binary(max_size=30)), metas))
    blockhash = Hash(draw(keys32))
    if draw(st.booleans()):
        tables = [AddressLookupTableAccount(Pubkey(address), entries) for address, entries in draw(lookup_tables(pool))]
        try:
            return to_bytes_versioned(MessageV0.try_compile(payer, instructions, tables, blockhash))
        except Exception:  # solders refuses some combinations (e.g. a signer program); use legacy then
            pass
    return bytes(SoldersMessage.new_with_blockhash(instructions, payer, blockhash))


valid_messages = st.one_of(compiled_messages(), compiled_from_instructions())


def solders_message(data: bytes):
    """solders' verdict on a bare message: the parsed message, or None if it refuses."""
    try:
        message = from_bytes_versioned(data)
    except Exception:
        return None
    if to_bytes_versioned(message) != data:
        return None  # trailing bytes or another encoding of the same value
    try:
        if isinstance(message, MessageV0):
            message.sanitize()
        elif isinstance(message, SoldersMessage):
            Transaction.new_unsigned(message).sanitize()
        else:
            return message  # a version we do not support; checked by the caller
    except Exception:
        return None
    return message


def solders_transaction(data: bytes):
    try:
        tx = VersionedTransaction.from_bytes(data)
    except Exception:
        return None
    if bytes(tx) != data:
        return None
    try:
        tx.sanitize()
    except Exception:
        return None
    return tx


def assert_same(ours, theirs) -> None:
    is_v0 = isinstance(theirs, MessageV0)
    assert ours.version == (0 if is_v0 else "legacy")
    header = theirs.header
    assert (ours.num_required_signatures, ours.num_readonly_signed_accounts, ours.num_readonly_unsigned_accounts) == (
        header.num_required_signatures,
        header.num_readonly_signed_accounts,
        header.num_readonly_unsigned_accounts,
    )
    assert ours.account_keys == tuple(bytes(key) for key in theirs.account_keys)
    assert ours.recent_blockhash == bytes(theirs.recent_blockhash)
    assert [(i.program_id_index, bytes(i.accounts), i.data) for i in ours.instructions] == [
        (i.program_id_index, bytes(i.accounts), bytes(i.data)) for i in theirs.instructions
    ]
    if is_v0:
        assert [(l.account_key, bytes(l.writable_indexes), bytes(l.readonly_indexes)) for l in ours.address_table_lookups] == [
            (bytes(l.account_key), bytes(l.writable_indexes), bytes(l.readonly_indexes))
            for l in theirs.address_table_lookups
        ]
    else:
        assert ours.address_table_lookups == ()
    for index in range(len(ours.account_keys)):
        assert ours.is_signer(index) == theirs.is_signer(index)
    assert ours.serialized == to_bytes_versioned(theirs) if is_v0 else bytes(theirs)


def has_duplicate_keys(message) -> bool:
    keys = list(message.account_keys)
    return len(set(keys)) != len(keys)


def check_message(data: bytes) -> None:
    """Our verdict against solders' for one candidate message."""
    theirs = solders_message(data)
    try:
        ours = parse_message(data)
    except InvalidTransaction as exc:
        if theirs is not None and not has_duplicate_keys(theirs):
            assert any(reason in str(exc) for reason in STRICTER), f"solders accepts, we refuse: {exc}"
        return
    assert theirs is not None, "we accept what solders refuses"
    assert not has_duplicate_keys(theirs)
    assert_same(ours, theirs)


@SETTINGS
@given(valid_messages)
def test_valid_messages_agree(data: bytes) -> None:
    theirs = solders_message(data)
    assert theirs is not None
    if has_duplicate_keys(theirs):  # field-by-field generation can repeat nothing; compile never does
        return
    ours = parse_message(data)
    assert_same(ours, theirs)
    parsed = parse_transaction_input(data)
    assert not parsed.is_full_transaction and parsed.message == ours


@SETTINGS
@given(valid_messages, st.data())
def test_valid_transactions_agree(data: bytes, draw) -> None:
    message = parse_message(data)
    signatures = [Signature(draw.draw(st.binary(min_size=64, max_size=64))) for _ in range(message.num_required_signatures)]
    tx = VersionedTransaction.populate(from_bytes_versioned(data), signatures)
    raw = bytes(tx)
    parsed = parse_transaction_input(raw)
    assert parsed.is_full_transaction
    assert parsed.signatures == tuple(bytes(s) for s in signatures)
    assert parsed.signing_bytes() == data
    assert_same(parsed.message, from_bytes_versioned(data))
    # replacing the first slot gives what solders would serialize with that signature
    replacement = bytes([7]) * 64
    signed = parsed.with_signature(message.signer_keys[0], replacement)
    assert signed == bytes(VersionedTransaction.populate(from_bytes_versioned(data), [Signature(replacement)] + signatures[1:]))


def mutate(data: bytes, draw) -> bytes:
    operation = draw.draw(st.sampled_from(["truncate", "extend", "flip", "replace", "insert", "delete"]))
    position = draw.draw(st.integers(0, len(data) - 1))
    if operation == "truncate":
        return data[:position]
    if operation == "extend":
        return data + draw.draw(st.binary(min_size=1, max_size=8))
    if operation == "flip":
        return data[:position] + bytes([data[position] ^ (1 << draw.draw(st.integers(0, 7)))]) + data[position + 1 :]
    if operation == "replace":
        return data[:position] + bytes([draw.draw(st.integers(0, 255))]) + data[position + 1 :]
    if operation == "insert":
        return data[:position] + bytes([draw.draw(st.integers(0, 255))]) + data[position:]
    return data[:position] + data[position + 1 :]


@SETTINGS
@given(valid_messages, st.data())
def test_mutated_messages(data: bytes, draw) -> None:
    for _ in range(3):  # mutations compound
        data = mutate(data, draw)
        if not data:
            break
        check_message(data)


@SETTINGS
@given(valid_messages, st.data())
def test_mutated_transactions(data: bytes, draw) -> None:
    count = parse_message(data).num_required_signatures
    if draw.draw(st.booleans()):
        count = draw.draw(st.integers(0, 4))  # the wrong number of slots, sometimes
    raw = mutate(encode_shortvec(count) + bytes([1]) * (64 * count) + data, draw)
    theirs = solders_transaction(raw)
    try:
        ours = parse_transaction_input(raw)
    except InvalidTransaction as exc:
        if theirs is not None and not has_duplicate_keys(theirs.message):
            assert any(reason in str(exc) for reason in STRICTER + ("ambiguous",)), f"solders accepts, we refuse: {exc}"
        return
    if ours.is_full_transaction:
        assert theirs is not None, "we accept a transaction solders refuses"
        assert ours.signatures == tuple(bytes(s) for s in theirs.signatures)
        assert_same(ours.message, theirs.message)
    else:
        check_message(raw)  # mutated into a valid bare message: solders must agree


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_invalid_transaction(data: bytes) -> None:
    for parse in (parse_transaction_input, parse_message):
        try:
            parse(data)
        except InvalidTransaction:
            pass
    check_message(data)


@pytest.mark.parametrize("prefix", [b"\x80", b"\x01", b"\x02\x01", b"\x01\x00\x01"])
@settings(max_examples=200, deadline=None)
@given(tail=st.binary(max_size=200))
def test_plausible_prefixes_only_raise_invalid_transaction(prefix: bytes, tail: bytes) -> None:
    data = prefix + tail
    try:
        parse_transaction_input(data)
    except InvalidTransaction:
        pass
    check_message(data)


def test_solders_v1_messages_are_refused() -> None:
    """solders 0.29 knows a v1 format; we accept legacy and v0 only."""
    data = to_bytes_versioned(MessageV0.try_compile(Pubkey(bytes([1]) * 32), [], [], Hash(bytes(32))))
    with pytest.raises(InvalidTransaction, match="version 1"):
        parse_message(b"\x81" + data[1:])



def test_lookup_tables_never_share_an_address() -> None:
    from random import Random

    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    pool = [Pubkey(bytes([i]) * 32) for i in range(6)]
    with pytest.raises(NoSuchExample):
        # A fixed seed: the same search every run; it finds a shared address in a second when
        # the strategy allows one.
        find(
            lookup_tables(pool),
            lambda tables: len({address for address, _ in tables}) != len(tables),
            settings=settings(max_examples=3000, database=None, deadline=None),
            random=Random(0),
        )
