"""Strict parsing of Solana transaction messages, legacy and v0.

Layout (all lengths are compact-u16, see ``shortvec``)::

    [0x80 | version]                        v0 only; legacy has no prefix
    num_required_signatures   u8
    num_readonly_signed       u8
    num_readonly_unsigned     u8
    account_keys              len, 32 bytes each
    recent_blockhash          32 bytes
    instructions              len, each: program_id_index u8,
                              accounts len + u8 indexes, data len + bytes
    address_table_lookups     v0 only: len, each: table key 32 bytes,
                              writable len + u8 indexes, readonly len + u8 indexes

Checks are those of Solana's ``sanitize`` plus a few that the runtime applies
later (duplicate keys, loading one lookup-table entry twice, more than 256
accounts), so whatever parses here is a message the cluster would accept
structurally. Nothing is left unread: trailing bytes are an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

from ..errors import InvalidTransaction
from .pubkey import encode_pubkey
from .shortvec import decode_shortvec, encode_shortvec

PUBKEY_LENGTH = 32
HASH_LENGTH = 32
VERSION_PREFIX_MASK = 0x80
MAX_ACCOUNTS = 256  # account indexes are one byte

MessageVersion = Union[Literal["legacy"], Literal[0]]


@dataclass(frozen=True)
class CompiledInstruction:
    """One instruction as the message stores it: indexes into the account list."""

    program_id_index: int
    accounts: tuple[int, ...]
    data: bytes


@dataclass(frozen=True)
class AddressTableLookup:
    """A v0 lookup: which entries of an on-chain address table the message loads."""

    account_key: bytes
    writable_indexes: tuple[int, ...]
    readonly_indexes: tuple[int, ...]


@dataclass(frozen=True)
class LoadedAddress:
    """An account loaded from a lookup table; its address is only known on-chain."""

    table: bytes
    table_index: int
    is_writable: bool

    def label(self) -> str:
        return f"lookup table {encode_pubkey(self.table)} entry {self.table_index}"


@dataclass(frozen=True)
class Message:
    """A parsed message; ``serialized`` holds the exact bytes that get signed."""

    version: MessageVersion
    num_required_signatures: int
    num_readonly_signed_accounts: int
    num_readonly_unsigned_accounts: int
    account_keys: tuple[bytes, ...]
    recent_blockhash: bytes
    instructions: tuple[CompiledInstruction, ...]
    address_table_lookups: tuple[AddressTableLookup, ...]
    serialized: bytes = field(repr=False)

    # -- accounts -----------------------------------------------------------

    @property
    def fee_payer(self) -> bytes:
        return self.account_keys[0]

    @property
    def signer_keys(self) -> tuple[bytes, ...]:
        return self.account_keys[: self.num_required_signatures]

    @property
    def num_static_accounts(self) -> int:
        return len(self.account_keys)

    # Both are asked for once per account index the policy looks at, so they are kept in the
    # instance's __dict__ (a frozen dataclass allows that; functools.cached_property takes a lock).
    @property
    def loaded_addresses(self) -> tuple[LoadedAddress, ...]:
        """Accounts from lookup tables in index order: every writable one, then every readonly one."""
        loaded = self.__dict__.get("_loaded_addresses")
        if loaded is None:
            loaded = self.__dict__["_loaded_addresses"] = self._load_addresses()
        return loaded

    def _load_addresses(self) -> tuple[LoadedAddress, ...]:
        writable = [
            LoadedAddress(lookup.account_key, index, True)
            for lookup in self.address_table_lookups
            for index in lookup.writable_indexes
        ]
        readonly = [
            LoadedAddress(lookup.account_key, index, False)
            for lookup in self.address_table_lookups
            for index in lookup.readonly_indexes
        ]
        return tuple(writable + readonly)

    @property
    def num_accounts(self) -> int:
        count = self.__dict__.get("_num_accounts")
        if count is None:
            count = self.__dict__["_num_accounts"] = len(self.account_keys) + sum(
                len(lookup.writable_indexes) + len(lookup.readonly_indexes)
                for lookup in self.address_table_lookups
            )
        return count

    def _check_index(self, index: int) -> None:
        if not isinstance(index, int) or not 0 <= index < self.num_accounts:
            raise InvalidTransaction(f"account index {index!r} is out of range")

    def is_signer(self, index: int) -> bool:
        self._check_index(index)
        return index < self.num_required_signatures

    def is_writable(self, index: int) -> bool:
        """Writability as the header and lookups declare it (before runtime demotions)."""
        self._check_index(index)
        if index < self.num_required_signatures:
            return index < self.num_required_signatures - self.num_readonly_signed_accounts
        if index < self.num_static_accounts:
            return index < self.num_static_accounts - self.num_readonly_unsigned_accounts
        return self.loaded_addresses[index - self.num_static_accounts].is_writable

    def account_key(self, index: int) -> bytes | None:
        """The address at ``index``, or None when it is loaded from a lookup table."""
        self._check_index(index)
        if index < self.num_static_accounts:
            return self.account_keys[index]
        return None

    def account_label(self, index: int) -> str:
        """Base58 address, or a description of the lookup-table entry."""
        key = self.account_key(index)
        if key is not None:
            return encode_pubkey(key)
        return self.loaded_addresses[index - self.num_static_accounts].label()

    def static_index(self, pubkey: bytes) -> int | None:
        """Index of ``pubkey`` among the static keys, or None."""
        try:
            return self.account_keys.index(bytes(pubkey))
        except ValueError:
            return None

    def program_id(self, instruction: CompiledInstruction) -> bytes:
        return self.account_keys[instruction.program_id_index]


def _as_bytes(data: object) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise InvalidTransaction("transaction input must be bytes")


def parse_message(data: bytes) -> Message:
    """Parse a complete serialized message (legacy or v0); nothing may follow it."""
    raw = _as_bytes(data)
    message, end = _parse_message_at(raw, 0)
    if end != len(raw):
        raise InvalidTransaction(f"{len(raw) - end} trailing bytes after the message")
    return message


def _truncated(what: str, count: int, offset: int, size: int) -> InvalidTransaction:
    return InvalidTransaction(
        f"truncated message: {what} needs {count} bytes at offset {offset}, {size - offset} left"
    )


def _parse_message_at(data: bytes, start: int) -> tuple[Message, int]:
    # Straight-line reading with the cursor in a local (this runs once per signing request); it
    # raises exactly what a bounds-checked cursor would, at the same offsets (the reference
    # reader in tests/test_fuzz_parser.py).
    size = len(data)
    if start >= size:
        raise InvalidTransaction("empty message")
    offset = start
    version: MessageVersion = "legacy"
    first = data[start]
    if first & VERSION_PREFIX_MASK:
        number = first & 0x7F
        if number != 0:
            raise InvalidTransaction(f"unsupported message version {number} (only legacy and v0)")
        version = 0
        offset += 1

    if offset + 3 > size:
        raise _truncated("header", 1, size, size)
    num_required, num_readonly_signed, num_readonly_unsigned = data[offset : offset + 3]
    offset += 3

    # A compact-u16 below 0x80 is its one byte; anything else (or nothing) is decode_shortvec's.
    if offset < size and data[offset] < 0x80:
        num_keys = data[offset]
        offset += 1
    else:
        num_keys, offset = decode_shortvec(data, offset)
    if num_keys > MAX_ACCOUNTS:
        raise InvalidTransaction(f"message lists {num_keys} account keys, more than {MAX_ACCOUNTS}")
    end = offset + PUBKEY_LENGTH * num_keys
    if end > size:
        missing = offset + PUBKEY_LENGTH * ((size - offset) // PUBKEY_LENGTH)
        raise _truncated("account key", PUBKEY_LENGTH, missing, size)
    keys = tuple(data[at : at + PUBKEY_LENGTH] for at in range(offset, end, PUBKEY_LENGTH))
    offset = end
    end = offset + HASH_LENGTH
    if end > size:
        raise _truncated("recent blockhash", HASH_LENGTH, offset, size)
    blockhash = data[offset:end]
    offset = end

    instructions = []
    if offset < size and data[offset] < 0x80:
        count = data[offset]
        offset += 1
    else:
        count, offset = decode_shortvec(data, offset)
    for _ in range(count):
        if offset >= size:
            raise _truncated("instruction program index", 1, offset, size)
        program_id_index = data[offset]
        offset += 1
        if offset < size and data[offset] < 0x80:
            length = data[offset]
            offset += 1
        else:
            length, offset = decode_shortvec(data, offset)
        end = offset + length
        if end > size:
            raise _truncated("instruction account indexes", length, offset, size)
        accounts = tuple(data[offset:end])
        offset = end
        if offset < size and data[offset] < 0x80:
            length = data[offset]
            offset += 1
        else:
            length, offset = decode_shortvec(data, offset)
        end = offset + length
        if end > size:
            raise _truncated("instruction data", length, offset, size)
        instructions.append(CompiledInstruction(program_id_index, accounts, data[offset:end]))
        offset = end

    lookups = []
    if version == 0:
        if offset < size and data[offset] < 0x80:
            count = data[offset]
            offset += 1
        else:
            count, offset = decode_shortvec(data, offset)
        for _ in range(count):
            end = offset + PUBKEY_LENGTH
            if end > size:
                raise _truncated("lookup table key", PUBKEY_LENGTH, offset, size)
            table = data[offset:end]
            offset = end
            indexes = []
            for what in ("lookup writable indexes", "lookup readonly indexes"):
                if offset < size and data[offset] < 0x80:
                    length = data[offset]
                    offset += 1
                else:
                    length, offset = decode_shortvec(data, offset)
                end = offset + length
                if end > size:
                    raise _truncated(what, length, offset, size)
                indexes.append(tuple(data[offset:end]))
                offset = end
            lookups.append(AddressTableLookup(table, *indexes))

    message = Message(
        version=version,
        num_required_signatures=num_required,
        num_readonly_signed_accounts=num_readonly_signed,
        num_readonly_unsigned_accounts=num_readonly_unsigned,
        account_keys=keys,
        recent_blockhash=blockhash,
        instructions=tuple(instructions),
        address_table_lookups=tuple(lookups),
        serialized=data[start:offset],
    )
    _sanitize(message)
    return message, offset


def _sanitize(message: Message) -> None:
    num_static = len(message.account_keys)
    required = message.num_required_signatures
    if required == 0:
        raise InvalidTransaction("message requires no signatures; it needs a fee payer")
    if message.num_readonly_signed_accounts >= required:
        raise InvalidTransaction("message header marks every signer read-only; the fee payer must be writable")
    if required + message.num_readonly_unsigned_accounts > num_static:
        raise InvalidTransaction(
            f"message header counts {required} signers and "
            f"{message.num_readonly_unsigned_accounts} read-only unsigned accounts "
            f"but lists only {num_static} account keys"
        )
    if len(set(message.account_keys)) != num_static:
        raise InvalidTransaction("message lists the same account key twice")

    seen_entries: set[tuple[bytes, int]] = set()
    for lookup in message.address_table_lookups:
        if not lookup.writable_indexes and not lookup.readonly_indexes:
            raise InvalidTransaction("address table lookup loads no accounts")
        for index in lookup.writable_indexes + lookup.readonly_indexes:
            entry = (lookup.account_key, index)
            if entry in seen_entries:
                raise InvalidTransaction(
                    f"address table lookup loads entry {index} of "
                    f"{encode_pubkey(lookup.account_key)} twice"
                )
            seen_entries.add(entry)

    total = message.num_accounts
    if total > MAX_ACCOUNTS:
        raise InvalidTransaction(f"message references {total} accounts, more than {MAX_ACCOUNTS}")

    for position, instruction in enumerate(message.instructions):
        if instruction.program_id_index == 0:
            raise InvalidTransaction(f"instruction {position} names the fee payer as its program")
        if instruction.program_id_index >= num_static:
            raise InvalidTransaction(
                f"instruction {position} program index {instruction.program_id_index} "
                f"is outside the {num_static} static account keys"
            )
        for account in instruction.accounts:
            if account >= total:
                raise InvalidTransaction(
                    f"instruction {position} account index {account} is outside the {total} accounts"
                )


def encode_message(
    *,
    version: MessageVersion,
    num_required_signatures: int,
    num_readonly_signed_accounts: int,
    num_readonly_unsigned_accounts: int,
    account_keys: tuple[bytes, ...] | list[bytes],
    recent_blockhash: bytes,
    instructions: tuple[CompiledInstruction, ...] | list[CompiledInstruction],
    address_table_lookups: tuple[AddressTableLookup, ...] | list[AddressTableLookup] = (),
) -> bytes:
    """Serialize message fields; the result is checked by parsing it back."""
    out = bytearray()
    if version == 0:
        out.append(VERSION_PREFIX_MASK)
    elif version != "legacy":
        raise InvalidTransaction(f"unsupported message version {version!r}")
    elif address_table_lookups:
        raise InvalidTransaction("legacy messages have no address table lookups")
    for value in (num_required_signatures, num_readonly_signed_accounts, num_readonly_unsigned_accounts):
        out.append(_u8(value))
    out += encode_shortvec(len(account_keys))
    for key in account_keys:
        out += _fixed(key, PUBKEY_LENGTH, "account key")
    out += _fixed(recent_blockhash, HASH_LENGTH, "recent blockhash")
    out += encode_shortvec(len(instructions))
    for instruction in instructions:
        out.append(_u8(instruction.program_id_index))
        out += encode_shortvec(len(instruction.accounts)) + bytes(_u8(a) for a in instruction.accounts)
        out += encode_shortvec(len(instruction.data)) + bytes(instruction.data)
    if version == 0:
        out += encode_shortvec(len(address_table_lookups))
        for lookup in address_table_lookups:
            out += _fixed(lookup.account_key, PUBKEY_LENGTH, "lookup table key")
            out += encode_shortvec(len(lookup.writable_indexes)) + bytes(lookup.writable_indexes)
            out += encode_shortvec(len(lookup.readonly_indexes)) + bytes(lookup.readonly_indexes)
    serialized = bytes(out)
    parse_message(serialized)
    return serialized


def _u8(value: int) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise InvalidTransaction(f"{value!r} does not fit in one byte")
    return value


def _fixed(value: bytes, length: int, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != length:
        raise InvalidTransaction(f"{what} must be {length} bytes")
    return bytes(value)
