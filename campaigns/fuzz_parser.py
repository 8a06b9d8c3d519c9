"""Transaction parser fuzzing at campaign scale, with solders as the oracle.

    .venv/bin/python campaigns/fuzz_parser.py --inputs 1000000 --seed 1 --json

Every input is a byte string handed to the signer's entry point
(``parse_transaction_input``) and to ``parse_message``. The inputs are the golden vectors in
``tests/vectors/solana`` and randomly generated legacy and v0 messages and transactions (built
field by field by an encoder in this file, independent of ours, or compiled by solders), then
mutated: bit flips, byte edits, truncation, extension, spliced chunks, non-canonical lengths,
version bytes, and field-level edits (instructions swapped or duplicated, keys duplicated,
indexes moved) re-encoded. solders (the Rust Solana SDK's types) is the oracle:

* our parser never raises anything but ``InvalidTransaction``;
* whatever solders refuses, we refuse;
* whatever both accept parses the same (header, account keys, blockhash, instructions,
  lookups, signatures) and re-serializes byte for byte, with our parse and with our encoder;
* where solders accepts and we refuse, the refusal must be one of the parser's documented
  stricter cases (docs/policy.md, jarvis_wallet/solana/message.py), counted by reason and not
  as a violation: duplicate account keys, a lookup-table entry loaded twice, a message
  version above 0, more than 256 accounts, trailing bytes after the message, input that
  parses both as a transaction and as a bare message.

Accepted messages also go through ``compute_spend`` (instruction decoding), which may refuse
only with ``InvalidTransaction``. Token instructions (SPL Token, Token-2022, ATA: data from
``fuzz_token.py``) that decode are checked further there: against solana-py's SPL Token layout,
and for strict lengths.

"solders accepts" means: it deserializes, re-serializes to exactly the input, and
``sanitize()`` passes (a transaction's signature count must match its header there too).
Exits 1 if there is any violation. Inputs are generated from ``--seed`` in fixed-size chunks,
so a run is reproducible whatever the number of workers.
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import multiprocessing
import os
import platform
import random
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import base58
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.hash import Hash
from solders.instruction import AccountMeta, CompiledInstruction, Instruction
from solders.message import Message as SoldersMessage
from solders.message import (
    MessageHeader,
    MessageV0,
    MessageV1,
    TransactionConfig,
    from_bytes_versioned,
    to_bytes_versioned,
)
from solders.pubkey import Pubkey
from solders.transaction import Transaction, VersionedTransaction

from jarvis_wallet.errors import InvalidTransaction
from jarvis_wallet.solana import compute_spend, encode_message, parse_message, parse_transaction_input
from jarvis_wallet.solana.programs import (
    _TOKEN_DECODERS,
    COMPUTE_BUDGET_PROGRAM_ID,
    ED25519_PROGRAM_ID,
    MEMO_V1_PROGRAM_ID,
    MEMO_V2_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    decode_instructions,
)
from jarvis_wallet.solana.transaction import _parse_full_transaction

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_token import TOKEN_PROGRAMS, check_token, token_data  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
VECTOR_DIR = REPO_ROOT / "tests" / "vectors" / "solana"
DEFAULT_INPUTS = 1_000_000
CHUNK_SIZE = 20_000
MAX_EXAMPLES = 20

#: The parser's documented stricter cases: reason -> words its InvalidTransaction message holds.
STRICTER_REASONS = {
    "duplicate_account_keys": ("same account key twice",),
    "lookup_entry_loaded_twice": ("twice",),
    "message_version_above_0": ("unsupported message version",),
    "more_than_256_accounts": ("more than 256",),
    "trailing_bytes": ("trailing bytes",),
    "ambiguous_input": ("ambiguous",),
}

KNOWN_PROGRAMS = (
    SYSTEM_PROGRAM_ID,
    COMPUTE_BUDGET_PROGRAM_ID,
    MEMO_V1_PROGRAM_ID,
    MEMO_V2_PROGRAM_ID,
    ED25519_PROGRAM_ID,
    *TOKEN_PROGRAMS,
)


# --- an encoder of our own, independent of jarvis_wallet's ------------------------------------


def shortvec(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


@dataclass
class Spec:
    """A message as fields, so field-level mutations can be re-encoded.

    Values may be out of range on purpose (an index past the keys, a header larger than the
    key list): the encoder writes whatever it is given, as long as it fits the wire types.
    """

    version: int | None  # None: legacy; else the low 7 bits of the prefix byte
    header: list[int]
    keys: list[bytes]
    blockhash: bytes
    instructions: list[tuple[int, bytes, bytes]]  # (program index, account indexes, data)
    lookups: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)  # (table, writable, readonly)

    def encode(self, *, alias_length: int | None = None) -> bytes:
        """The wire bytes; ``alias_length=k`` spells the k-th length non-canonically."""
        lengths = iter(range(1 << 30))

        def length(value: int) -> bytes:
            encoded = shortvec(value)
            if next(lengths) == alias_length:
                # the same value with a redundant zero group: 0x05 -> 0x85 0x00
                encoded = encoded[:-1] + bytes([encoded[-1] | 0x80, 0x00])
            return encoded

        out = bytearray()
        if self.version is not None:
            out.append(0x80 | self.version)
        out += bytes(self.header)
        out += length(len(self.keys)) + b"".join(self.keys) + self.blockhash
        out += length(len(self.instructions))
        for program, accounts, data in self.instructions:
            out.append(program)
            out += length(len(accounts)) + accounts + length(len(data)) + data
        if self.version is not None:
            out += length(len(self.lookups))
            for table, writable, readonly in self.lookups:
                out += table + length(len(writable)) + writable + length(len(readonly)) + readonly
        return bytes(out)


def transaction_bytes(message: bytes, signatures: list[bytes]) -> bytes:
    return shortvec(len(signatures)) + b"".join(signatures) + message


# --- generation --------------------------------------------------------------------------------


def _key(rng: random.Random) -> bytes:
    return rng.randbytes(32)


def _instruction_data(rng: random.Random, program: bytes) -> bytes:
    """Plausible data for known programs (so decoding gets exercised), random otherwise."""
    if program == SYSTEM_PROGRAM_ID:
        variant = rng.choice([0, 1, 2, 2, 2, 3, 4, 5, 8, 9, 11, 12])
        if variant == 2:  # transfer
            return (2).to_bytes(4, "little") + rng.randrange(2**64).to_bytes(8, "little")
        if variant == 0:  # create account
            return (0).to_bytes(4, "little") + rng.randbytes(16) + rng.randbytes(32)
        if variant == 8:  # allocate
            return (8).to_bytes(4, "little") + rng.randbytes(8)
        if variant == 1:  # assign
            return (1).to_bytes(4, "little") + rng.randbytes(32)
        return variant.to_bytes(4, "little") + rng.randbytes(rng.choice([0, 8, 32, 40]))
    if program == COMPUTE_BUDGET_PROGRAM_ID:
        kind = rng.choice([1, 2, 3, 4])
        size = {1: 4, 2: 4, 3: 8, 4: 4}[kind]
        return bytes([kind]) + rng.randbytes(size)
    if program in (MEMO_V1_PROGRAM_ID, MEMO_V2_PROGRAM_ID):
        return rng.choice([b"", b"hello", "\u00e9t\u00e9".encode(), rng.randbytes(rng.randrange(12))])
    if program == ED25519_PROGRAM_ID:
        return bytes([rng.randrange(3)]) + rng.randbytes(rng.randrange(16))
    if program in TOKEN_PROGRAMS:
        return token_data(rng, program)
    return rng.randbytes(rng.choice([0, 1, 4, 9, 12, 33, rng.randrange(80)]))


def random_spec(rng: random.Random) -> Spec:
    """A message that is structurally valid most of the time, and plausibly wrong otherwise."""
    v0 = rng.random() < 0.45
    roll = rng.random()
    if roll < 0.003:
        num_keys = rng.randrange(250, 300)  # past the 256-account limit
    elif roll < 0.05:
        num_keys = rng.randrange(13, 70)
    else:
        num_keys = rng.randrange(1, 13)
    keys = [_key(rng) for _ in range(num_keys)]
    # Known programs among the keys, so instruction decoding sees real variants.
    for _ in range(rng.randrange(3)):
        if num_keys > 1:
            keys[rng.randrange(1, num_keys)] = rng.choice(KNOWN_PROGRAMS)
    if num_keys > 1 and rng.random() < 0.02:  # a duplicated key: a documented stricter case
        keys[rng.randrange(1, num_keys)] = keys[rng.randrange(num_keys)]
    required = rng.randrange(1, num_keys + 1) if rng.random() < 0.97 else rng.randrange(0, 4)
    readonly_signed = rng.randrange(0, max(required, 1)) if rng.random() < 0.97 else rng.randrange(0, 4)
    readonly_unsigned = (
        rng.randrange(0, max(num_keys - required, 0) + 1) if rng.random() < 0.97 else rng.randrange(0, 6)
    )
    lookups = []
    if v0:
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            entries = rng.sample(range(256), rng.randrange(1, 7))
            if rng.random() < 0.02:
                entries = []  # a lookup that loads nothing
            split = rng.randrange(len(entries) + 1)
            lookups.append((_key(rng), bytes(entries[:split]), bytes(entries[split:])))
        if len(lookups) > 1 and rng.random() < 0.03:  # the same table twice: maybe an entry twice
            table, writable, readonly = lookups[0]
            lookups[1] = (table, lookups[1][1], lookups[1][2])
    total = num_keys + sum(len(w) + len(r) for _, w, r in lookups)
    instructions = []
    for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4, 6])):
        if num_keys > 1 and rng.random() < 0.98:
            program = rng.randrange(1, min(num_keys, 256))
        else:
            program = rng.randrange(0, min(num_keys + 3, 256))
        accounts = bytes(
            rng.randrange(min(total, 256)) if rng.random() < 0.98 else rng.randrange(256)
            for _ in range(rng.randrange(5))
        )
        program_key = keys[program] if program < num_keys else b""
        instructions.append((program, accounts, _instruction_data(rng, program_key)))
    return Spec(
        version=0 if v0 else None,
        header=[min(required, 255), min(readonly_signed, 255), min(readonly_unsigned, 255)],
        keys=keys,
        blockhash=_key(rng),
        instructions=instructions,
        lookups=lookups,
    )


def solders_compiled(rng: random.Random) -> bytes:
    """A message compiled by solders from instructions (lookup tables for v0)."""
    pool = [Pubkey(_key(rng)) for _ in range(rng.randrange(3, 10))] + [Pubkey(p) for p in KNOWN_PROGRAMS[:2]]
    payer = pool[0]
    instructions = []
    for _ in range(rng.randrange(1, 4)):
        program = rng.choice(pool[1:])
        metas = [AccountMeta(rng.choice(pool), rng.random() < 0.3, rng.random() < 0.5) for _ in range(rng.randrange(4))]
        instructions.append(Instruction(program, _instruction_data(rng, bytes(program)), metas))
    blockhash = Hash(_key(rng))
    if rng.random() < 0.5:
        tables = [
            AddressLookupTableAccount(Pubkey(_key(rng)), rng.sample(pool, rng.randrange(len(pool))))
            for _ in range(rng.randrange(3))
        ]
        try:
            return to_bytes_versioned(MessageV0.try_compile(payer, instructions, tables, blockhash))
        except Exception:  # noqa: BLE001 - solders refuses some combinations; fall back to legacy
            pass
    return bytes(SoldersMessage.new_with_blockhash(instructions, payer, blockhash))


def solders_token(rng: random.Random) -> bytes:
    """A message compiled by solders from token instructions, with enough accounts to decode."""
    pool = [Pubkey(_key(rng)) for _ in range(rng.randrange(3, 14))]
    payer = pool[0]
    instructions = []
    for _ in range(rng.choice([1, 1, 2])):
        program = rng.choice(TOKEN_PROGRAMS)
        count = rng.choice([1, 2, 3, 4, 4, 4, 5, 6, 7, rng.randrange(16)])
        metas = [AccountMeta(rng.choice(pool), rng.random() < 0.3, rng.random() < 0.5) for _ in range(count)]
        instructions.append(Instruction(Pubkey(program), token_data(rng, program), metas))
    blockhash = Hash(_key(rng))
    if rng.random() < 0.3:
        return to_bytes_versioned(MessageV0.try_compile(payer, instructions, [], blockhash))
    return bytes(SoldersMessage.new_with_blockhash(instructions, payer, blockhash))


def solders_v1(rng: random.Random) -> bytes:
    """A version 1 message (SIMD-0385), which solders reads and we refuse."""
    keys = [Pubkey(_key(rng)) for _ in range(rng.randrange(2, 6))]
    instructions = [
        CompiledInstruction(
            rng.randrange(1, len(keys)), bytes([rng.randrange(len(keys))]), rng.randbytes(rng.randrange(12))
        )
        for _ in range(rng.randrange(3))
    ]
    config = TransactionConfig(
        priority_fee=rng.choice([None, rng.randrange(10**6)]),
        compute_unit_limit=rng.choice([None, rng.randrange(1_400_000)]),
    )
    header = MessageHeader(1, 0, rng.randrange(len(keys)))
    return to_bytes_versioned(MessageV1(header, config, Hash(_key(rng)), keys, instructions))


def ambiguous_input(rng: random.Random) -> bytes:
    """Bytes that read both as a one-signature transaction and as a bare message.

    Transaction reading: 1 slot, then a legacy message M with 126 keys. Message reading:
    header (1, 0, 0) from the slot's first bytes, 128 keys (0x80 0x01), the last 126 of
    which are M's; blockhash and instructions are shared.
    """
    inner = Spec(
        None, [1, 0, 0], [_key(rng) for _ in range(126)], _key(rng), [(1, b"\x00", rng.randbytes(rng.randrange(4)))]
    )
    return b"\x01" + bytes([0, 0, 0x80, 0x01]) + rng.randbytes(60) + inner.encode()


def load_vector_inputs() -> list[bytes]:
    """Every golden vector's bytes, and for full transactions their bare message too."""
    decoders = {"base58": base58.b58decode, "base64": base64.b64decode, "hex": bytes.fromhex}
    inputs = []
    for path in sorted(VECTOR_DIR.glob("*.json")):
        vector = json.loads(path.read_text(encoding="utf-8"))
        raw = decoders[vector["input"]["encoding"]](vector["input"]["data"])
        inputs.append(raw)
        if vector["input"]["kind"] == "transaction":
            try:
                inputs.append(bytes(to_message_bytes(VersionedTransaction.from_bytes(raw))))
            except Exception:  # noqa: BLE001 - a vector solders cannot read still gets mutated whole
                pass
    return inputs


def to_message_bytes(tx: VersionedTransaction) -> bytes:
    return to_bytes_versioned(tx.message)


def spec_from_message(data: bytes) -> Spec | None:
    """Fields of a message our parser accepts (for field-level mutations), else None."""
    try:
        message = parse_message(data)
    except InvalidTransaction:
        return None
    return Spec(
        version=None if message.version == "legacy" else 0,
        header=[
            message.num_required_signatures,
            message.num_readonly_signed_accounts,
            message.num_readonly_unsigned_accounts,
        ],
        keys=list(message.account_keys),
        blockhash=message.recent_blockhash,
        instructions=[(i.program_id_index, bytes(i.accounts), i.data) for i in message.instructions],
        lookups=[
            (l.account_key, bytes(l.writable_indexes), bytes(l.readonly_indexes)) for l in message.address_table_lookups
        ],
    )


def mutate_spec(rng: random.Random, spec: Spec) -> Spec:
    """One field-level edit, then re-encoded by the caller."""
    s = Spec(
        spec.version, list(spec.header), list(spec.keys), spec.blockhash, list(spec.instructions), list(spec.lookups)
    )
    choice = rng.randrange(12)
    if choice == 0 and len(s.instructions) > 1:  # swap two instructions
        i, j = rng.sample(range(len(s.instructions)), 2)
        s.instructions[i], s.instructions[j] = s.instructions[j], s.instructions[i]
    elif choice == 1 and s.instructions:  # duplicate an instruction (a transfer paid twice)
        s.instructions.insert(rng.randrange(len(s.instructions) + 1), rng.choice(s.instructions))
    elif choice == 2 and s.instructions:  # drop one
        del s.instructions[rng.randrange(len(s.instructions))]
    elif choice == 3 and len(s.keys) > 1:  # a key listed twice
        s.keys[rng.randrange(len(s.keys))] = rng.choice(s.keys)
    elif choice == 4:  # header edits
        s.header[rng.randrange(3)] = rng.choice([0, 1, 2, 255, rng.randrange(256)])
    elif choice == 5 and s.instructions:  # move an index
        i = rng.randrange(len(s.instructions))
        program, accounts, data = s.instructions[i]
        if accounts and rng.random() < 0.5:
            k = rng.randrange(len(accounts))
            accounts = accounts[:k] + bytes([rng.randrange(256)]) + accounts[k + 1 :]
        else:
            program = rng.randrange(256)
        s.instructions[i] = (program, accounts, data)
    elif choice == 6:  # a key more or fewer
        if s.keys and rng.random() < 0.5:
            del s.keys[rng.randrange(len(s.keys))]
        else:
            s.keys.insert(rng.randrange(len(s.keys) + 1), _key(rng))
    elif choice == 7:  # version flip: legacy <-> v0, or a version we do not support
        s.version = rng.choice([None, 0, 0, 1, rng.randrange(128)])
    elif choice == 8 and s.version is not None:  # lookups: add, duplicate, empty
        if s.lookups and rng.random() < 0.4:
            s.lookups.append(rng.choice(s.lookups))
        elif s.lookups and rng.random() < 0.3:
            table, _, _ = s.lookups[0]
            s.lookups[0] = (table, b"", b"")
        else:
            s.lookups.append(
                (
                    _key(rng),
                    bytes(rng.sample(range(256), rng.randrange(4))),
                    bytes(rng.sample(range(256), rng.randrange(3))),
                )
            )
    elif choice == 9 and s.instructions:  # data edits: shorter, longer, other variant
        i = rng.randrange(len(s.instructions))
        program, accounts, data = s.instructions[i]
        op = rng.randrange(3)
        data = data[:-1] if op == 0 and data else data + rng.randbytes(1) if op == 1 else rng.randbytes(1) + data[1:]
        s.instructions[i] = (program, accounts, data)
    elif choice == 10:  # a fresh instruction of a known program, if one is among the keys
        known = [i for i, key in enumerate(s.keys) if key in KNOWN_PROGRAMS and 0 < i < 256]
        if known:
            index = rng.choice(known)
            s.instructions.append(
                (
                    index,
                    bytes(rng.randrange(min(len(s.keys), 256)) for _ in range(rng.randrange(3))),
                    _instruction_data(rng, s.keys[index]),
                )
            )
    else:  # many keys: toward and past 256 accounts
        s.keys += [_key(rng) for _ in range(rng.randrange(1, 260))]
    return s


def mutate_bytes(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    """One byte-level edit."""
    if not data:
        return rng.randbytes(rng.randrange(1, 40))
    position = rng.randrange(len(data))
    choice = rng.randrange(11)
    if choice == 0:  # truncate
        return data[:position]
    if choice == 1:  # extend
        return data + rng.randbytes(rng.randrange(1, 9))
    if choice == 2:  # bit flip
        return data[:position] + bytes([data[position] ^ (1 << rng.randrange(8))]) + data[position + 1 :]
    if choice == 3:  # replace a byte with a boundary value
        return (
            data[:position] + bytes([rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])]) + data[position + 1 :]
        )
    if choice == 4:  # insert
        return data[:position] + bytes([rng.randrange(256)]) + data[position:]
    if choice == 5:  # delete a run
        return data[:position] + data[position + rng.randrange(1, 5) :]
    if choice == 6:  # duplicate a chunk
        end = min(len(data), position + rng.randrange(1, 70))
        return data[:end] + data[position:end] + data[end:]
    if choice == 7:  # splice with another input
        other = rng.choice(corpus)
        return data[:position] + other[rng.randrange(len(other) + 1) :]
    if choice == 8:  # non-canonical or over-long compact-u16 where a length may be
        return data[:position] + bytes([data[position] | 0x80, rng.choice([0, 0x80, 0x04, 1])]) + data[position + 1 :]
    if choice == 9:  # another first byte: version prefixes, signature counts
        return bytes([rng.choice([0x80, 0x81, 0x82, 0xFF, 0x00, 0x01, 0x02, rng.randrange(256)])]) + data[1:]
    return data[:position] + rng.randbytes(rng.randrange(1, 8)) + data[position + 1 :]  # overwrite a run


class InputSource:
    """Deterministic stream of (source label, bytes) from one seed."""

    def __init__(self, seed: int, vectors: list[bytes]) -> None:
        self.rng = random.Random(seed)
        self.vectors = vectors
        self.corpus = list(vectors)

    def _base(self) -> tuple[str, bytes, Spec | None, bool]:
        """(label, bytes, fields when known, whether the bytes are a full transaction)."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.25:
            data = rng.choice(self.vectors)
            spec = spec_from_message(data)
            if spec is not None:
                return "vector", data, spec, False
            try:
                message = _parse_full_transaction(data).message
            except InvalidTransaction:
                return "vector", data, None, True
            return "vector", data, spec_from_message(message.serialized), True
        if roll < 0.35:
            data = solders_compiled(rng)
            return "solders_compiled", data, spec_from_message(data), False
        if roll < 0.37:
            return "solders_v1", solders_v1(rng), None, False
        if roll < 0.375:
            return "ambiguous", ambiguous_input(rng), None, False
        if roll < 0.525:
            data = solders_token(rng)
            return "solders_token", data, spec_from_message(data), False
        spec = random_spec(rng)
        return "generated", spec.encode(), spec, False

    def _as_transaction(self, message: bytes) -> bytes:
        rng = self.rng
        count = message[1] if message and message[0] & 0x80 and len(message) > 1 else (message[0] if message else 1)
        if rng.random() < 0.1:
            count = rng.randrange(0, 5)
        return transaction_bytes(message, [rng.randbytes(64) for _ in range(count)])

    def batch(self) -> list[tuple[str, bytes]]:
        """One base input and a family of mutants of it."""
        rng = self.rng
        if rng.random() < 0.02:
            prefix = rng.choice([b"\x80", b"\x01", b"\x02\x01", b"\x01\x00\x01", b"\x80\x01\x00\x00", b""])
            return [("random_bytes", prefix + rng.randbytes(rng.randrange(300)))]
        label, base, spec, is_transaction = self._base()
        if not is_transaction and rng.random() < 0.4:
            base, is_transaction, label = self._as_transaction(base), True, f"{label}_transaction"
        out = [(label, base)]
        for _ in range(rng.randrange(4, 16)):
            if spec is not None and rng.random() < 0.35:
                mutant = mutate_spec(rng, spec) if rng.random() < 0.85 else spec
                data = mutant.encode(alias_length=rng.randrange(8) if rng.random() < 0.2 else None)
                if is_transaction or rng.random() < 0.2:
                    data = self._as_transaction(data)
                kind = "field_mutant"
            else:
                data = base
                for _ in range(rng.choice([1, 1, 1, 2, 3])):
                    data = mutate_bytes(rng, data, self.corpus)
                kind = "byte_mutant"
            out.append((f"{kind}_of_{label}", data))
        if len(self.corpus) < 2000 and rng.random() < 0.05:
            self.corpus.append(base)
        return out


# --- the oracle ----------------------------------------------------------------------------------


class Verdict:
    ACCEPT = "accept"
    REFUSE = "refuse"
    TRAILING = "trailing"  # parses, but only by ignoring bytes at the end
    OTHER_ENCODING = "other_encoding"  # parses, but re-serializes to different bytes


def solders_message(data: bytes):
    """(verdict, message or None) for a bare message."""
    try:
        message = from_bytes_versioned(data)
    except BaseException:  # noqa: BLE001 - pyo3 panics are BaseException
        return Verdict.REFUSE, None
    try:
        if isinstance(message, MessageV0):
            message.sanitize()
        elif isinstance(message, SoldersMessage):
            Transaction.new_unsigned(message).sanitize()
        # MessageV1: solders' own rules; we refuse every version above 0 anyway
    except BaseException:  # noqa: BLE001
        return Verdict.REFUSE, None
    return _encoding_verdict(to_bytes_versioned(message), data), message


def solders_transaction(data: bytes):
    try:
        tx = VersionedTransaction.from_bytes(data)
        encoded = bytes(tx)
        tx.sanitize()
    except BaseException:  # noqa: BLE001
        return Verdict.REFUSE, None
    return _encoding_verdict(encoded, data), tx


def _encoding_verdict(encoded: bytes, data: bytes) -> str:
    if encoded == data:
        return Verdict.ACCEPT
    if data.startswith(encoded):
        return Verdict.TRAILING
    return Verdict.OTHER_ENCODING


def differences(ours, theirs) -> str | None:
    """None if our Message and solders' agree field by field and byte for byte."""
    is_v0 = isinstance(theirs, MessageV0)
    if isinstance(theirs, MessageV1):
        return "solders parsed a version 1 message that we accepted"
    if ours.version != (0 if is_v0 else "legacy"):
        return f"version: ours {ours.version!r}"
    header = theirs.header
    if (ours.num_required_signatures, ours.num_readonly_signed_accounts, ours.num_readonly_unsigned_accounts) != (
        header.num_required_signatures,
        header.num_readonly_signed_accounts,
        header.num_readonly_unsigned_accounts,
    ):
        return "header"
    if ours.account_keys != tuple(bytes(key) for key in theirs.account_keys):
        return "account keys"
    if ours.recent_blockhash != bytes(theirs.recent_blockhash):
        return "recent blockhash"
    if [(i.program_id_index, bytes(i.accounts), i.data) for i in ours.instructions] != [
        (i.program_id_index, bytes(i.accounts), bytes(i.data)) for i in theirs.instructions
    ]:
        return "instructions"
    theirs_lookups = (
        [
            (bytes(l.account_key), bytes(l.writable_indexes), bytes(l.readonly_indexes))
            for l in theirs.address_table_lookups
        ]
        if is_v0
        else []
    )
    if [
        (l.account_key, bytes(l.writable_indexes), bytes(l.readonly_indexes)) for l in ours.address_table_lookups
    ] != theirs_lookups:
        return "address table lookups"
    theirs_bytes = to_bytes_versioned(theirs)
    if ours.serialized != theirs_bytes:
        return "serialized bytes"
    reencoded = encode_message(
        version=ours.version,
        num_required_signatures=ours.num_required_signatures,
        num_readonly_signed_accounts=ours.num_readonly_signed_accounts,
        num_readonly_unsigned_accounts=ours.num_readonly_unsigned_accounts,
        account_keys=ours.account_keys,
        recent_blockhash=ours.recent_blockhash,
        instructions=ours.instructions,
        address_table_lookups=ours.address_table_lookups,
    )
    if reencoded != theirs_bytes:
        return "our encoder re-serializes differently"
    return None


def stricter_reasons(theirs_message, verdict: str) -> set[str]:
    """Which documented stricter cases apply to what solders accepted."""
    reasons = set()
    if verdict == Verdict.TRAILING:
        reasons.add("trailing_bytes")
    if isinstance(theirs_message, MessageV1):
        reasons.add("message_version_above_0")
        return reasons
    keys = [bytes(key) for key in theirs_message.account_keys]
    if len(set(keys)) != len(keys):
        reasons.add("duplicate_account_keys")
    total = len(keys)
    if isinstance(theirs_message, MessageV0):
        entries = [
            (bytes(lookup.account_key), index)
            for lookup in theirs_message.address_table_lookups
            for index in bytes(lookup.writable_indexes) + bytes(lookup.readonly_indexes)
        ]
        total += len(entries)
        if len(set(entries)) != len(entries):
            reasons.add("lookup_entry_loaded_twice")
    if total > 256:
        reasons.add("more_than_256_accounts")
    return reasons


def _matching_reason(error: str, applicable: set[str]) -> str | None:
    if "message_version_above_0" in applicable:
        # solders read a version 1 message or transaction (SIMD-0385, whose transactions put
        # the message first). We refuse every version above 0, whichever check fires first.
        return "message_version_above_0"
    for reason in sorted(applicable):
        if any(word in error for word in STRICTER_REASONS[reason]):
            return reason
    return None


@dataclass
class Counts:
    inputs: int = 0
    by_source: collections.Counter = field(default_factory=collections.Counter)
    accepted_by_both: int = 0
    refused_by_both: int = 0
    stricter: collections.Counter = field(default_factory=collections.Counter)
    message_level: collections.Counter = field(default_factory=collections.Counter)
    accepted_full_transactions: int = 0
    accepted_bare_messages: int = 0
    spend_refused: int = 0
    token_decoded: collections.Counter = field(default_factory=collections.Counter)  # by program
    token_kinds: set = field(default_factory=set)
    violations: collections.Counter = field(default_factory=collections.Counter)
    examples: list = field(default_factory=list)

    def violation(self, kind: str, data: bytes, detail: str) -> None:
        self.violations[kind] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"kind": kind, "detail": detail[:300], "input_hex": data.hex()})

    def merge(self, other: Counts) -> None:
        self.inputs += other.inputs
        self.by_source.update(other.by_source)
        self.accepted_by_both += other.accepted_by_both
        self.refused_by_both += other.refused_by_both
        self.stricter.update(other.stricter)
        self.message_level.update(other.message_level)
        self.accepted_full_transactions += other.accepted_full_transactions
        self.accepted_bare_messages += other.accepted_bare_messages
        self.spend_refused += other.spend_refused
        self.token_decoded.update(other.token_decoded)
        self.token_kinds |= other.token_kinds
        self.violations.update(other.violations)
        self.examples.extend(other.examples[: max(0, MAX_EXAMPLES - len(self.examples))])

    @property
    def violation_count(self) -> int:
        return sum(self.violations.values())


def _ours(parse, data: bytes, counts: Counts, what: str):
    """(result, None) or (None, error text); any other exception is a violation."""
    try:
        return parse(data), None
    except InvalidTransaction as exc:
        return None, str(exc)
    except BaseException as exc:  # noqa: BLE001 - that is exactly what we are looking for
        counts.violation("unexpected_exception", data, f"{what}: {type(exc).__name__}: {exc}")
        return None, f"unexpected {type(exc).__name__}"


def _compare_level(counts: Counts, data: bytes, level: str, ours, our_error, verdict, theirs_message) -> str:
    """Compare one reading (message or transaction); returns accept/refuse/stricter:<r>/violation."""
    if ours is not None:
        if verdict != Verdict.ACCEPT:
            counts.violation(f"{level}_accepted_what_solders_refuses", data, f"solders verdict {verdict}")
            return "violation"
        difference = differences(ours, theirs_message)
        if difference is not None:
            counts.violation(f"{level}_parse_differs", data, difference)
            return "violation"
        return "accept"
    if verdict == Verdict.REFUSE or verdict == Verdict.OTHER_ENCODING:
        # OTHER_ENCODING: solders reads these bytes only as another spelling of a message; one
        # message has one encoding, so refusing it is agreement.
        return "refuse"
    applicable = stricter_reasons(theirs_message, verdict)
    reason = _matching_reason(our_error or "", applicable)
    if reason is None:
        counts.violation(
            f"{level}_refused_what_solders_accepts", data, f"{our_error} (applicable: {sorted(applicable)})"
        )
        return "violation"
    return f"stricter:{reason}"


@dataclass(frozen=True)
class Parsers:
    """The three readings under test; the tests inject deliberately broken ones."""

    message: Callable = parse_message
    full_transaction: Callable = _parse_full_transaction
    entry_point: Callable = parse_transaction_input


OURS = Parsers()


def check_input(data: bytes, counts: Counts, source: str = "input", parsers: Parsers = OURS) -> None:
    """Run one input through our parser and solders; count the outcome."""
    counts.inputs += 1
    counts.by_source[source] += 1
    m_verdict, m_theirs = solders_message(data)
    t_verdict, t_theirs = solders_transaction(data)

    bare, bare_error = _ours(parsers.message, data, counts, "parse_message")
    full, full_error = _ours(parsers.full_transaction, data, counts, "full transaction")
    entry, entry_error = _ours(parsers.entry_point, data, counts, "parse_transaction_input")

    message_outcome = _compare_level(counts, data, "message", bare, bare_error, m_verdict, m_theirs)
    counts.message_level[message_outcome] += 1
    tx_message = full.message if full is not None else None
    tx_outcome = _compare_level(
        counts,
        data,
        "transaction",
        tx_message,
        full_error,
        t_verdict,
        t_theirs.message if t_theirs is not None else None,
    )
    if full is not None and tx_outcome == "accept":
        if full.signatures != tuple(bytes(s) for s in t_theirs.signatures):
            counts.violation("transaction_signatures_differ", data, "signatures")
            tx_outcome = "violation"

    # The entry point must be exactly: the one reading that succeeds, refusal if both do.
    if bare is not None and full is not None:
        expected = "ambiguous"
    elif full is not None:
        expected = "full"
    elif bare is not None:
        expected = "bare"
    else:
        expected = "refuse"
    if entry is None:
        observed = "ambiguous" if entry_error and "ambiguous" in entry_error else "refuse"
    else:
        observed = "full" if entry.is_full_transaction else "bare"
        chosen = full if observed == "full" else bare
        same = chosen is not None and entry.message == (chosen.message if observed == "full" else chosen)
        if not same or entry.signing_bytes() != entry.message.serialized:
            counts.violation("entry_point_inconsistent", data, "entry parse differs from the reading it chose")
    if observed != expected:
        counts.violation("entry_point_inconsistent", data, f"expected {expected}, got {observed}: {entry_error}")

    # Entry-level verdict, as the signer sees it.
    outcomes = {message_outcome, tx_outcome}
    if "violation" in outcomes:
        return
    if observed in ("full", "bare"):
        counts.accepted_by_both += 1
        if observed == "full":
            counts.accepted_full_transactions += 1
        else:
            counts.accepted_bare_messages += 1
        message = entry.message
        try:
            compute_spend(message, message.signer_keys[0])
        except InvalidTransaction:
            counts.spend_refused += 1
        except BaseException as exc:  # noqa: BLE001
            counts.violation("unexpected_exception", data, f"compute_spend: {type(exc).__name__}: {exc}")
        else:
            _check_tokens(message, counts, data)
        return
    if observed == "ambiguous":
        counts.stricter["ambiguous_input"] += 1
        return
    stricter = sorted(o.split(":", 1)[1] for o in outcomes if o.startswith("stricter:"))
    if stricter:
        counts.stricter[stricter[0]] += 1
    else:
        counts.refused_by_both += 1


def _check_tokens(message, counts: Counts, data: bytes) -> None:
    """Token instructions that decoded: solana-py's reading and strict lengths (fuzz_token.py)."""
    for decoded in decode_instructions(message):
        decoder = _TOKEN_DECODERS.get(decoded.program)
        if decoder is None:
            continue
        counts.token_decoded[decoded.program] += 1
        counts.token_kinds.add(f"{decoded.program}:{decoded.kind}")

        def again(other: bytes, decoded=decoded, decoder=decoder):
            return decoder(decoded.index, other, decoded.accounts)

        for kind, detail in check_token(decoded, again):
            counts.violation(kind, data, detail)


def run_chunk(seed: int, count: int, vectors: list[bytes] | None = None, parsers: Parsers = OURS) -> Counts:
    """The campaign's core: ``count`` inputs generated from ``seed``; returns the counts."""
    source = InputSource(seed, vectors if vectors is not None else load_vector_inputs())
    counts = Counts()
    while counts.inputs < count:
        for label, data in source.batch():
            if counts.inputs >= count:
                break
            check_input(data, counts, label.split("_of_")[0], parsers)
    return counts


def _chunk_job(args: tuple[int, int]) -> Counts:
    seed, count = args
    return run_chunk(seed, count, _VECTORS)


_VECTORS: list[bytes] = []


def run_campaign(inputs: int, seed: int, workers: int, progress=None) -> tuple[Counts, float]:
    global _VECTORS
    _VECTORS = load_vector_inputs()
    jobs = []
    remaining, index = inputs, 0
    while remaining > 0:
        size = min(CHUNK_SIZE, remaining)
        jobs.append((seed * 1_000_003 + index, size))
        remaining -= size
        index += 1
    total = Counts()
    started = time.perf_counter()
    if workers <= 1:
        results = map(_chunk_job, jobs)
        for counts in results:
            total.merge(counts)
            if progress:
                progress(total, time.perf_counter() - started)
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for counts in pool.imap_unordered(_chunk_job, jobs):
                total.merge(counts)
                if progress:
                    progress(total, time.perf_counter() - started)
    return total, time.perf_counter() - started


def machine() -> dict:
    import solders

    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "solders": getattr(solders, "__version__", "unknown"),
        "platform": platform.platform(),
    }


def report(counts: Counts, elapsed: float, *, seed: int, workers: int) -> dict:
    return {
        "inputs": counts.inputs,
        "seed": seed,
        "workers": workers,
        "elapsed_seconds": round(elapsed, 2),
        "inputs_per_second": round(counts.inputs / elapsed) if elapsed else None,
        "accepted_by_both": counts.accepted_by_both,
        "accepted_full_transactions": counts.accepted_full_transactions,
        "accepted_bare_messages": counts.accepted_bare_messages,
        "refused_by_both": counts.refused_by_both,
        "stricter_than_solders": dict(sorted(counts.stricter.items())),
        "message_level": dict(sorted(counts.message_level.items())),
        "accepted_then_refused_by_instruction_decoding": counts.spend_refused,
        "token_instructions_decoded": dict(sorted(counts.token_decoded.items())),
        "token_kinds_decoded": len(counts.token_kinds),
        "by_source": dict(sorted(counts.by_source.items())),
        "violations": counts.violation_count,
        "violations_by_kind": dict(sorted(counts.violations.items())),
        "violation_examples": counts.examples,
        "machine": machine(),
    }


def print_report(result: dict, *, skip: tuple[str, ...] = ()) -> None:
    """One line a figure; counters as ``name count`` pairs."""
    for name, value in result.items():
        if name in skip:
            continue
        if isinstance(value, dict):
            value = ", ".join(
                f"{key} {count:,}" if isinstance(count, int) else f"{key} {count}" for key, count in value.items()
            )
        elif isinstance(value, int):
            value = f"{value:,}"
        print(f"{name.replace('_', ' '):<46} {value or 'none'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=DEFAULT_INPUTS, help="how many inputs (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generator (default 1)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes (default 2)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    def progress(total: Counts, elapsed: float) -> None:
        print(
            f"  {total.inputs:>10,} inputs  {total.inputs / elapsed:,.0f}/s  violations {total.violation_count}",
            file=sys.stderr,
        )

    counts, elapsed = run_campaign(args.inputs, args.seed, args.workers, progress=None if args.json else progress)
    result = report(counts, elapsed, seed=args.seed, workers=args.workers)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result, skip=("by_source", "violation_examples", "machine"))
        for example in result["violation_examples"]:
            print(f"  {example['kind']}: {example['detail']}\n    {example['input_hex']}")
    return 1 if counts.violation_count else 0


if __name__ == "__main__":
    sys.exit(main())
