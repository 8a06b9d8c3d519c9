"""Token, Token-2022 and ATA decoding, table-driven over vectors the real builders make.

The vectors (tests/token_vectors.py) come from solana-py's SPL instruction builders
where they exist and from the Rust ``pack`` layouts otherwise. Every vector must
decode to its kind, fields and account roles; one byte short or long, one account
too few (and one too many where the program takes no more) must be refused.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jarvis_wallet.errors import InvalidTransaction
from jarvis_wallet.solana.associated_token import decode_associated_token
from jarvis_wallet.solana.token import BASE_INSTRUCTIONS, decode_token
from jarvis_wallet.solana.token_2022 import decode_token_2022
from tests.token_vectors import ALL_VECTORS, ATA_VECTORS, TOKEN_2022_VECTORS, TOKEN_VECTORS, u64

by_name = pytest.mark.parametrize("vector", ALL_VECTORS, ids=lambda v: v.name)


def _keys(vector, indexes):
    return [vector.instruction.accounts[i].pubkey for i in indexes]


@by_name
def test_vector_decodes_to_its_meaning(vector):
    kind, fields, roles, lists = vector.decode()
    assert kind == vector.kind
    assert fields == vector.fields
    assert {role: vector.instruction.accounts[i].pubkey for role, i in roles.items()} == vector.roles
    assert {name: _keys(vector, indexes) for name, indexes in lists.items()} == vector.lists


@pytest.mark.parametrize("vector", [v for v in ALL_VECTORS if not v.variable], ids=lambda v: v.name)
def test_one_byte_short_or_long_is_refused(vector):
    # Variable-length data (strings, extension lists, ATA tags) is covered by the malformed cases.
    data = bytes(vector.instruction.data)
    with pytest.raises(InvalidTransaction, match="too short|unknown|without its sub-instruction|unexpected bytes"):
        vector.decode(data=data[:-1])
    for extra in (b"\x00", b"\x01", b"\xff"):
        with pytest.raises(InvalidTransaction, match="unexpected bytes|too short|option tag"):
            vector.decode(data=data + extra)


@by_name
def test_one_account_too_few_is_refused(vector):
    with pytest.raises(InvalidTransaction, match=r"needs \d+ accounts"):
        vector.decode(accounts=tuple(range(vector.fixed_accounts - 1)))


@pytest.mark.parametrize(
    "vector", [v for v in ALL_VECTORS if not (v.multisig or v.lists or v.kind.startswith("confidential"))], ids=lambda v: v.name
)
def test_one_account_too_many_is_refused_where_the_program_takes_no_more(vector):
    # Multisig signers and account lists: see test_multisig_limits and the withheld-sources test.
    count = len(vector.instruction.accounts) + vector.spare + 1
    with pytest.raises(InvalidTransaction, match="takes at most"):
        vector.decode(accounts=tuple(range(count)))


def test_every_instruction_has_a_vector():
    assert {v.kind for v in TOKEN_VECTORS} == {spec.kind for spec in BASE_INSTRUCTIONS.values()}
    token_2022_kinds = {v.kind for v in TOKEN_2022_VECTORS}
    # base set, own top-level, extension families, confidential families, metadata/group interfaces
    assert len(token_2022_kinds) == 27 + 5 + 30 + 28 + 9
    assert {v.kind for v in ATA_VECTORS} == {"create", "create_idempotent", "recover_nested"}


KNOWN_TOKEN_TAGS = set(range(25)) | {38, 45}
KNOWN_TOKEN_2022_TAGS = set(range(47))


@pytest.mark.parametrize("tag", sorted(set(range(256)) - KNOWN_TOKEN_TAGS))
def test_unknown_spl_token_tags_are_refused(tag):
    with pytest.raises(InvalidTransaction, match="unknown instruction tag|Batch"):
        decode_token(0, bytes([tag]) + bytes(40), (0, 1, 2, 3))


@pytest.mark.parametrize("tag", sorted(set(range(256)) - KNOWN_TOKEN_2022_TAGS))
def test_unknown_token_2022_tags_are_refused(tag):
    with pytest.raises(InvalidTransaction, match="unknown instruction tag|Batch"):
        decode_token_2022(0, bytes([tag]) + bytes(40), (0, 1, 2, 3))


FAMILY_SUBS = {26: 6, 27: 15, 28: 2, 30: 2, 33: 2, 34: 2, 36: 2, 37: 6, 39: 2, 40: 2, 41: 2, 42: 6, 43: 2, 44: 3, 46: 4}


@pytest.mark.parametrize("family", sorted(FAMILY_SUBS))
def test_unknown_extension_sub_instructions_are_refused(family):
    for sub in range(FAMILY_SUBS[family], 256):
        with pytest.raises(InvalidTransaction, match="unknown .* instruction"):
            decode_token_2022(0, bytes([family, sub]), (0, 1, 2))
    with pytest.raises(InvalidTransaction, match="without its sub-instruction byte"):
        decode_token_2022(0, bytes([family]), (0, 1, 2))
    for sub in range(FAMILY_SUBS[family]):  # every sub-instruction has a vector
        assert any(bytes(v.instruction.data[:2]) == bytes([family, sub]) for v in TOKEN_2022_VECTORS)


@pytest.mark.parametrize("tag", [3, 6])
def test_unknown_ata_tags_are_refused(tag):
    with pytest.raises(InvalidTransaction, match="unknown instruction tag"):
        decode_associated_token(0, bytes([tag]), tuple(range(7)))


@pytest.mark.parametrize(
    ("decoder", "data", "message"),
    [
        # COption tags other than 0/1, and "none" padded with anything but zeros
        (decode_token, bytes([20, 6]) + bytes(32) + b"\x02" + bytes(32), "option tag 2"),
        (decode_token, bytes([6, 2, 0]) + b"\x01" + bytes(31), "unexpected bytes"),
        (decode_token, bytes([45, 7]) + u64(1), "option tag 7"),
        # SPL Token knows authority types 0..3 only; Token-2022 0..17
        (decode_token, bytes([6, 4, 0]), "unknown authority type 4"),
        (decode_token_2022, bytes([6, 18, 0]), "unknown authority type 18"),
        # SPL Token's GetAccountDataSize takes no data; Token-2022's takes u16 extension types
        (decode_token, bytes([21, 1, 0]), "unexpected bytes"),
        (decode_token_2022, bytes([21, 1]), "odd length"),
        (decode_token_2022, bytes([21, 29, 0]), "unknown extension type 29"),
        (decode_token_2022, bytes([29, 1, 0, 2]), "odd length"),
        # UiAmountToAmount: UTF-8 only
        (decode_token, b"\x18\xff", "not valid UTF-8"),
        (decode_token_2022, b"\x18\xc3", "not valid UTF-8"),
        # Token-2022 enums and pod floats
        (decode_token_2022, bytes([28, 0, 3]), "unknown account state 3"),
        (decode_token_2022, bytes([43, 1]) + bytes.fromhex("000000000000f87f") + u64(0), "not finite"),
        # borsh strings, bools, options and the metadata field enum
        (decode_token_2022, bytes.fromhex("d2e11ea258b84d8d") + b"\x05\x00\x00\x00ab", "runs past"),
        (decode_token_2022, bytes.fromhex("ea122038598d25b5") + b"\x02\x00\x00\x00\x00", "neither 0 nor 1"),
        (decode_token_2022, bytes.fromhex("dde9312db5cadcc8") + b"\x04" + bytes(4), "unknown metadata field 4"),
        (decode_token_2022, bytes.fromhex("faa6b4fa0d0cb846") + b"\x00\x02", "option tag 2"),
        # Batch (255) is refused: its inner instructions are not decoded
        (decode_token_2022, bytes([255, 1, 1, 9]), "Batch"),
        (decode_token, bytes([255]), "Batch"),
        (decode_token, b"", "too short"),
        (decode_token_2022, b"", "too short"),
        (decode_associated_token, b"\x00\x00", "unexpected bytes"),
        (decode_associated_token, b"\x01\x00", "unexpected bytes"),
        (decode_associated_token, b"\x02\x01", "unexpected bytes"),
    ],
)
def test_malformed_data_is_refused(decoder, data, message):
    with pytest.raises(InvalidTransaction, match=message):
        decoder(0, data, tuple(range(8)))


def test_multisig_limits():
    transfer = bytes([3]) + u64(1)
    kind, _, _, lists = decode_token(0, transfer, tuple(range(3 + 11)))
    assert len(lists["multisig_signers"]) == 11
    with pytest.raises(InvalidTransaction, match="at most 11 multisig signers"):
        decode_token(0, transfer, tuple(range(3 + 12)))
    with pytest.raises(InvalidTransaction, match="1 to 11 members"):
        decode_token(0, bytes([19, 1]), (0,))
    with pytest.raises(InvalidTransaction, match="1 to 11 members"):
        decode_token(0, bytes([19, 1]), tuple(range(13)))


def test_withdraw_withheld_sources_must_all_be_present():
    data = bytes([26, 3, 3])
    with pytest.raises(InvalidTransaction, match="names 3 source accounts, has 2"):
        decode_token_2022(0, data, tuple(range(5)))
    _, _, _, lists = decode_token_2022(0, data, tuple(range(7)))
    assert lists == {"multisig_signers": (3,), "sources": (4, 5, 6)}


def test_decoders_do_not_mix_up_programs():
    # The same bytes mean different things or nothing: each program has its own table.
    assert decode_token_2022(0, bytes([26, 4]), (0,))[0] == "harvest_withheld_tokens_to_mint"
    with pytest.raises(InvalidTransaction, match="unknown instruction tag 26"):
        decode_token(0, bytes([26, 4]), (0,))


def test_full_messages_with_token_instructions_decode(tmp_path):
    """parse_message + decode_instructions over legacy and v0 messages built with solders."""
    from solders.hash import Hash
    from solders.message import Message as SoldersMessage
    from solders.message import MessageV0, to_bytes_versioned

    from jarvis_wallet.solana.message import parse_message
    from jarvis_wallet.solana.programs import decode_instructions, describe_instruction, instruction_to_dict
    from tests.token_vectors import PAYER

    picks = ["token-transfer_checked", "token-transfer-multisig", "token_2022-transfer_checked_with_fee",
             "token_2022-token_metadata_update_field", "ata-create_idempotent", "token-set_authority-close_account-none"]  # fmt: skip
    vectors = [v for v in ALL_VECTORS if v.name in picks]
    assert len(vectors) == len(picks)
    instructions = [v.instruction for v in vectors]
    legacy = bytes(SoldersMessage.new_with_blockhash(instructions, PAYER, Hash.default()))
    v0 = to_bytes_versioned(MessageV0.try_compile(PAYER, instructions, [], Hash.default()))
    for raw in (legacy, v0):
        message = parse_message(raw)
        decoded = decode_instructions(message)
        assert [d.program for d in decoded] == [v.program for v in vectors]
        for d, vector in zip(decoded, vectors):
            assert (d.kind, dict(d.fields)) == (vector.kind, vector.fields)
            assert {role: message.account_key(i) for role, i in d.roles.items()} == {
                role: bytes(key) for role, key in vector.roles.items()
            }
            assert {name: [message.account_key(i) for i in idx] for name, idx in d.account_lists.items()} == {
                name: [bytes(key) for key in keys] for name, keys in vector.lists.items()
            }
            assert describe_instruction(message, d)
            json.dumps(instruction_to_dict(message, d), allow_nan=False)


def test_a_malformed_token_instruction_makes_the_message_invalid():
    from solders.hash import Hash
    from solders.message import Message as SoldersMessage

    from jarvis_wallet.solana.message import parse_message
    from jarvis_wallet.solana.programs import decode_instructions
    from tests.token_vectors import PAYER, raw

    good = raw("token", bytes([12]) + u64(5) + bytes([6]), PAYER, PAYER, PAYER, PAYER)
    bad = raw("token", bytes([12]) + u64(5) + bytes([6, 0]), PAYER, PAYER, PAYER, PAYER)
    assert decode_instructions(parse_message(bytes(SoldersMessage.new_with_blockhash([good], PAYER, Hash.default()))))
    message = parse_message(bytes(SoldersMessage.new_with_blockhash([good, bad], PAYER, Hash.default())))
    with pytest.raises(InvalidTransaction, match=r"instruction 1 \(SPL Token transfer_checked\): 1 unexpected bytes"):
        decode_instructions(message)


@by_name
def test_every_vector_has_a_plain_words_sentence(vector):
    from solders.hash import Hash
    from solders.message import Message as SoldersMessage

    from jarvis_wallet.solana.message import parse_message
    from jarvis_wallet.solana.programs import decode_instructions, describe_instruction, instruction_to_dict
    from tests.token_vectors import PAYER

    message = parse_message(bytes(SoldersMessage.new_with_blockhash([vector.instruction], PAYER, Hash.default())))
    [decoded] = decode_instructions(message)
    sentence = describe_instruction(message, decoded)
    assert "{" not in sentence and "call program" not in sentence
    entry = json.loads(json.dumps(instruction_to_dict(message, decoded), allow_nan=False))
    assert (entry["program"], entry["kind"], entry["description"]) == (vector.program, vector.kind, sentence)
    if isinstance(vector.fields.get("amount"), int) and vector.kind != "unwrap_lamports":
        assert f"{vector.fields['amount']} base units" in sentence
    for role in ("source", "destination", "mint", "owner", "authority", "account"):
        if role in vector.roles and not vector.kind.startswith("confidential"):
            assert message.account_label(decoded.roles[role]) in sentence, role


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([decode_token, decode_token_2022, decode_associated_token]),
    st.one_of(
        st.binary(max_size=80),
        st.sampled_from([v.instruction.data for v in ALL_VECTORS]).flatmap(
            lambda data: st.tuples(st.integers(0, len(data)), st.binary(max_size=3)).map(
                lambda cut: bytes(data)[: cut[0]] + cut[1]
            )
        ),
    ),
    st.integers(0, 16),
)
def test_any_bytes_decode_or_are_refused_as_invalid(decoder, data, account_count):
    try:
        kind, fields, roles, lists = decoder(0, data, tuple(range(account_count)))
    except InvalidTransaction:
        return
    assert max([*roles.values(), *(i for idx in lists.values() for i in idx)], default=-1) < account_count
    assert isinstance(kind, str) and all(isinstance(name, str) for name in fields)
