"""A bounded slice of the parser campaign (campaigns/fuzz_parser.py), solders as the oracle.

The campaign itself runs a million inputs (docs/reliability.md); here its core runs on
20,000, and the oracle's classification is pinned down on inputs built for each verdict, so a
campaign that stopped seeing a difference would fail here too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from solders.hash import Hash
from solders.message import MessageHeader, MessageV1, TransactionConfig, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from jarvis_wallet.errors import InvalidTransaction
from jarvis_wallet.solana import build_transfer_message, parse_transaction_input
from jarvis_wallet.solana.message import _parse_message_at
from jarvis_wallet.solana.shortvec import decode_shortvec

CAMPAIGNS = Path(__file__).resolve().parents[1] / "campaigns"
sys.path.insert(0, str(CAMPAIGNS))
import fuzz_parser as campaign  # noqa: E402
import fuzz_token  # noqa: E402

VECTORS = campaign.load_vector_inputs()


def key(byte: int) -> bytes:
    return bytes([byte]) * 32


def transfer() -> bytes:
    return build_transfer_message(from_pubkey=key(1), to_pubkey=key(2), lamports=5, recent_blockhash=key(3))


def verdict(data: bytes, parsers: campaign.Parsers = campaign.OURS) -> campaign.Counts:
    counts = campaign.Counts()
    campaign.check_input(data, counts, parsers=parsers)
    return counts


def test_twenty_thousand_inputs_without_a_violation():
    counts = campaign.run_chunk(seed=2026, count=20_000, vectors=VECTORS)
    assert counts.violation_count == 0, counts.examples
    assert counts.inputs == 20_000
    # The generators reach every verdict, or this slice would prove little.
    assert counts.accepted_full_transactions > 1000 and counts.accepted_bare_messages > 1000
    assert counts.refused_by_both > 5000
    assert {"duplicate_account_keys", "trailing_bytes", "message_version_above_0"} <= set(counts.stricter)
    assert {"vector", "generated", "byte_mutant", "field_mutant", "solders_compiled", "solders_token"} <= set(
        counts.by_source
    )
    # Token instruction data reaches all three decoders, and many kinds decode and pass the oracles.
    assert set(counts.token_decoded) == {"token", "token_2022", "associated_token"}
    assert sum(counts.token_decoded.values()) > 150 and len(counts.token_kinds) > 40


def test_agreement_on_a_valid_message_and_its_transaction():
    message = transfer()
    counts = verdict(message)
    assert (counts.accepted_by_both, counts.accepted_bare_messages, counts.violation_count) == (1, 1, 0)
    counts = verdict(b"\x01" + bytes(64) + message)
    assert (counts.accepted_by_both, counts.accepted_full_transactions, counts.violation_count) == (1, 1, 0)


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda m: m + b"\x00", "trailing_bytes"),
        (lambda m: m.replace(key(2), key(1)), "duplicate_account_keys"),
        (lambda m: campaign.ambiguous_input(__import__("random").Random(1)), "ambiguous_input"),
        (
            lambda m: to_bytes_versioned(
                MessageV1(
                    MessageHeader(1, 0, 0), TransactionConfig(), Hash(key(3)), [Pubkey(key(1)), Pubkey(key(2))], []
                )
            ),
            "message_version_above_0",
        ),
    ],
    ids=["trailing", "duplicate-keys", "ambiguous", "version-1"],
)
def test_documented_stricter_cases_are_counted_by_reason(build, reason):
    counts = verdict(build(transfer()))
    assert counts.violation_count == 0, counts.examples
    assert dict(counts.stricter) == {reason: 1}


def test_garbage_is_refused_by_both():
    counts = verdict(b"\x03\x00\x00garbage")
    assert (counts.refused_by_both, counts.violation_count) == (1, 0)


def _lax_message(data: bytes):
    """A broken parser that ignores trailing bytes, as bincode does."""
    message, _ = _parse_message_at(bytes(data), 0)
    return message


def _raising_entry_point(data: bytes):
    raise IndexError("boom")


def test_the_oracle_catches_a_parser_that_accepts_trailing_bytes():
    lax = replace(campaign.OURS, message=_lax_message)
    counts = verdict(transfer() + b"\x07", lax)
    assert counts.violations["message_accepted_what_solders_refuses"] == 1


def test_the_oracle_catches_an_exception_other_than_invalid_transaction():
    counts = verdict(transfer(), replace(campaign.OURS, entry_point=_raising_entry_point))
    assert counts.violations["unexpected_exception"] == 1
    assert "IndexError" in counts.examples[0]["detail"]


def _decoded_token(data: bytes, program: str = "token"):
    from jarvis_wallet.solana.programs import DecodedInstruction

    for count in range(1, 5):  # as many accounts as the instruction takes
        try:
            kind, fields, roles, _ = campaign._TOKEN_DECODERS[program](0, data, tuple(range(count)))
        except InvalidTransaction:
            continue
        return DecodedInstruction(0, b"", program, kind, fields, roles, tuple(range(count)), data)
    raise AssertionError(f"{data.hex()} does not decode")


def _strict(decoded):
    return lambda data: campaign._TOKEN_DECODERS[decoded.program](0, data, decoded.accounts)


def test_the_token_oracle_catches_a_lax_decoder():
    transfer_checked = bytes([12]) + (5).to_bytes(8, "little") + bytes([6])
    decoded = _decoded_token(transfer_checked)
    strict = _strict(decoded)

    assert fuzz_token.check_token(decoded, strict) == []
    # A decoder that reads a prefix and ignores the rest.
    lax = fuzz_token.check_token(decoded, lambda data: strict(data[:10]))
    assert {kind for kind, _ in lax} == {"token_length_not_strict"}
    # A decoder that accepted trailing bytes, or read a field wrong, disagrees with solana-py.
    trailing = replace(decoded, data=transfer_checked + b"\x00")
    assert ("token_accepted_what_solana_py_refuses" in {k for k, _ in fuzz_token.check_token(trailing, strict)})
    misread = replace(decoded, fields={"amount": 5, "decimals": 7})
    assert {k for k, _ in fuzz_token.check_token(misread, strict)} == {"token_fields_differ"}


@pytest.mark.parametrize(
    "data",
    [
        bytes([0, 6]) + bytes([7]) * 32 + b"\x00",  # canonical "none" freeze authority
        bytes([0, 6]) + bytes([7]) * 32 + b"\x00" + bytes(32),  # full-width "none"
        bytes([6, 3, 1]) + bytes([8]) * 32,
        b"\x18" + "1.5".encode(),
    ],
)
def test_the_token_oracle_agrees_with_solana_py_on_good_data(data):
    decoded = _decoded_token(data)
    assert fuzz_token.check_token(decoded, _strict(decoded)) == []


def test_regression_128_signature_slots_are_a_version_prefix_not_a_count():
    """Found by the campaign (seed 1): a full transaction with 128 or more slots starts with a
    byte of 0x80 or more, which the Solana SDK (solders 0.29, SIMD-0385) reads as a version
    prefix and refuses; we accepted it as 128+ signatures."""
    keys = [key(index) for index in range(1, 131)]
    spec = campaign.Spec(None, [128, 0, 0], keys, key(200), [(129, b"\x00", b"")])
    data = campaign.transaction_bytes(spec.encode(), [bytes(64)] * 128)
    with pytest.raises(InvalidTransaction, match="version prefix"):
        parse_transaction_input(data)
    with pytest.raises(Exception, match="discriminator"):
        VersionedTransaction.from_bytes(data)
    counts = verdict(data)
    assert counts.violation_count == 0, counts.examples
    # 127 slots is still a transaction, for both.
    spec = campaign.Spec(None, [127, 0, 0], keys[:129], key(200), [(128, b"\x00", b"")])
    data = campaign.transaction_bytes(spec.encode(), [bytes(64)] * 127)
    assert parse_transaction_input(data).is_full_transaction
    assert verdict(data).accepted_full_transactions == 1


def test_the_campaign_command_reports_json_and_exits_zero():
    env = {**os.environ, "PYTHONPATH": ""}
    result = subprocess.run(
        [
            sys.executable,
            str(CAMPAIGNS / "fuzz_parser.py"),
            "--inputs",
            "3000",
            "--seed",
            "5",
            "--workers",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["inputs"] == 3000 and report["violations"] == 0 and report["workers"] == 2
    total = report["accepted_by_both"] + report["refused_by_both"] + sum(report["stricter_than_solders"].values())
    assert total == 3000
    assert report["machine"]["nproc"] == os.cpu_count()


class _Reader:
    """Bounds-checked cursor; every failure is InvalidTransaction."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.offset = offset

    def take(self, count: int, what: str) -> bytes:
        end = self.offset + count
        if end > len(self.data):
            raise InvalidTransaction(
                f"truncated message: {what} needs {count} bytes at offset {self.offset}, "
                f"{len(self.data) - self.offset} left"
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def length(self) -> int:
        value, self.offset = decode_shortvec(self.data, self.offset)
        return value

    def remaining(self) -> int:
        return len(self.data) - self.offset


def _read_the_plain_way(data: bytes, start: int):
    """The message layout read with the bounds-checked _Reader, as the parser did before it read
    straight through: the reference for where each refusal happens and what it says."""
    reader = _Reader(data, start)
    if reader.remaining() == 0:
        raise InvalidTransaction("empty message")
    reader.offset += 1 if data[start] & 0x80 and data[start] & 0x7F == 0 else 0
    if data[start] & 0x80 and data[start] & 0x7F:
        raise InvalidTransaction(f"unsupported message version {data[start] & 0x7F} (only legacy and v0)")
    header = tuple(reader.u8("header") for _ in range(3))
    num_keys = reader.length()
    if num_keys > 256:
        raise InvalidTransaction(f"message lists {num_keys} account keys, more than 256")
    keys = tuple(reader.take(32, "account key") for _ in range(num_keys))
    blockhash = reader.take(32, "recent blockhash")
    instructions = []
    for _ in range(reader.length()):
        program = reader.u8("instruction program index")
        accounts = tuple(reader.take(reader.length(), "instruction account indexes"))
        instructions.append((program, accounts, reader.take(reader.length(), "instruction data")))
    lookups = []
    for _ in range(reader.length() if data[start] & 0x80 else 0):
        table = reader.take(32, "lookup table key")
        writable = tuple(reader.take(reader.length(), "lookup writable indexes"))
        lookups.append((table, writable, tuple(reader.take(reader.length(), "lookup readonly indexes"))))
    return header, keys, blockhash, instructions, lookups


def _outcome(read, data: bytes, start: int):
    try:
        return read(data, start)
    except InvalidTransaction as exc:
        return str(exc)


def test_the_straight_line_reader_refuses_where_and_as_the_plain_reader_does():
    """Every input of a campaign slice, whole and cut short at every length: where the plain
    reader refuses, the parser refuses with the same message (it may refuse more: its sanitize
    checks), and where the parser accepts, it read the same fields."""
    source = campaign.InputSource(16, VECTORS)
    compared = 0
    while compared < 3000:
        for _, whole in source.batch():
            for data in {whole, *(whole[:cut] for cut in range(0, len(whole), 7))}:
                for start in {0, 1} if len(data) > 1 else {0}:
                    plain = _outcome(_read_the_plain_way, data, start)
                    ours = _outcome(_parse_message_at, data, start)
                    if isinstance(plain, str):
                        assert ours == plain, (data.hex(), start)
                    elif not isinstance(ours, str):
                        message = ours[0]
                        assert plain == (
                            (message.num_required_signatures, message.num_readonly_signed_accounts,
                             message.num_readonly_unsigned_accounts),
                            message.account_keys,
                            message.recent_blockhash,
                            [(i.program_id_index, i.accounts, i.data) for i in message.instructions],
                            [(l.account_key, l.writable_indexes, l.readonly_indexes) for l in message.address_table_lookups],
                        )
                    compared += 1
