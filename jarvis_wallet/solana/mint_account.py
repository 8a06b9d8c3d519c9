"""Mint accounts of SPL Token and Token-2022, parsed strictly from (owner, data), offline.

Layouts follow solana-program/token-2022 ``interface/src/state.rs`` (the 82-byte
``Mint``: ``COption<Pubkey>`` mint authority as a u32 tag and 32 bytes, u64
supply, u8 decimals, bool is_initialized, ``COption<Pubkey>`` freeze
authority) and ``interface/src/extension/mod.rs`` (an extended mint is the
82-byte base, zero padding up to 165 bytes, the account-type byte 1 (Mint) at
offset 165, then TLV entries: u16 type, u16 length, value; a type of 0 ends
the list and only zero bytes may follow it). Extension values are the pod
structs of ``interface/src/extension/<name>``; ``MaybeNull<Address>`` is 32
bytes, all zero meaning none. TokenMetadata is borsh (spl-token-metadata-
interface ``state.rs``), the one extension of variable length.

Stricter than the program where the program never writes what we refuse: an
unknown or duplicated extension type, an account extension in a mint, a
length other than the type's size, a boolean byte other than 0/1, a fee above
10,000 basis points or non-zero bytes after the list are errors, not guesses.

``check_registration`` cross-checks what the operator typed against the chain
and refuses a mint with an extension that can move or freeze the wallet's
tokens outside its control unless the operator names that extension
(docs/policy.md, "Registering a mint", says why each is or is not refused).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..errors import InvalidMintAccount, MintNotAccepted
from .pubkey import encode_pubkey
from .token import TOKEN_PROGRAM_ID
from .token_2022 import TOKEN_2022_PROGRAM_ID

__all__ = [
    "DANGEROUS_EXTENSIONS",
    "EXTENSION_NAMES",
    "MintExtension",
    "ParsedMint",
    "check_registration",
    "normalize_extension_name",
    "parse_mint_account",
]

MINT_LENGTH = 82
ACCOUNT_LENGTH = 165  # an SPL token account; Token-2022 writes a mint's extensions after it
MULTISIG_LENGTH = 355  # never extensible, so an extended mint is never this long
ACCOUNT_TYPE_MINT = 1
ACCOUNT_TYPE_ACCOUNT = 2
MAX_FEE_BASIS_POINTS = 10_000
PROGRAM_NAMES = {TOKEN_PROGRAM_ID: "token", TOKEN_2022_PROGRAM_ID: "token-2022"}

# ExtensionType (a #[repr(u16)] enum numbered in declaration order) -> name, for mints.
MINT_EXTENSIONS = {
    1: "transfer_fee_config",
    3: "mint_close_authority",
    4: "confidential_transfer_mint",
    6: "default_account_state",
    9: "non_transferable",
    10: "interest_bearing_config",
    12: "permanent_delegate",
    14: "transfer_hook",
    16: "confidential_transfer_fee_config",
    18: "metadata_pointer",
    19: "token_metadata",
    20: "group_pointer",
    21: "token_group",
    22: "group_member_pointer",
    23: "token_group_member",
    24: "confidential_mint_burn",
    25: "scaled_ui_amount",
    26: "pausable",
    28: "permissioned_burn",
}
# Extensions of token accounts: valid types, but never in a mint.
ACCOUNT_EXTENSIONS = {
    2: "transfer_fee_amount",
    5: "confidential_transfer_account",
    7: "immutable_owner",
    8: "memo_transfer",
    11: "cpi_guard",
    13: "non_transferable_account",
    15: "transfer_hook_account",
    17: "confidential_transfer_fee_amount",
    27: "pausable_account",
}
EXTENSION_NAMES = tuple(MINT_EXTENSIONS.values())

# Extensions check_registration refuses unless allowed by name (when ``risk`` is not None).
DANGEROUS_EXTENSIONS = (
    "permanent_delegate",
    "transfer_hook",
    "confidential_transfer_mint",
    "confidential_transfer_fee_config",
    "confidential_mint_burn",
    "default_account_state",
    "pausable",
    "non_transferable",
)


@dataclass(frozen=True)
class MintExtension:
    """One Token-2022 mint extension: its name, type number, decoded fields and risk.

    ``fields`` holds keys as 32-byte ``bytes`` (None when unset), integers, text and
    booleans. ``risk`` is one line saying how the extension can move or freeze the
    wallet's tokens outside its control, or None when, as configured, it cannot.
    """

    name: str
    type_number: int
    fields: Mapping[str, object] = field(hash=False)
    risk: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.type_number,
            "fields": {key: _jsonable(value) for key, value in self.fields.items()},
            "risk": self.risk,
        }


@dataclass(frozen=True)
class ParsedMint:
    """A mint account as its program stores it."""

    program: str  # "token" or "token-2022"
    decimals: int
    supply: int
    mint_authority: bytes | None
    freeze_authority: bytes | None
    is_initialized: bool
    extensions: tuple[MintExtension, ...] = ()

    @property
    def extension_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.extensions)

    def extension(self, name: str) -> MintExtension | None:
        return next((e for e in self.extensions if e.name == name), None)

    @property
    def risky_extensions(self) -> tuple[MintExtension, ...]:
        """Extensions that, as configured, can move or freeze tokens outside the owner's control."""
        return tuple(e for e in self.extensions if e.risk is not None)

    def notes(self) -> list[str]:
        """What an operator should know although it is not refused (one line each)."""
        notes = []
        if self.freeze_authority is not None:
            notes.append(f"the issuer ({encode_pubkey(self.freeze_authority)}) can freeze any account of this mint")
        if self.mint_authority is not None:
            notes.append("the supply is not fixed: the mint authority can mint more")
        fee = self.extension("transfer_fee_config")
        if fee is not None:
            newer = fee.fields["newer_transfer_fee"]
            notes.append(
                f"transfers pay a fee of {newer['transfer_fee_basis_points']} basis points "  # type: ignore[index]
                f"(at most {newer['maximum_fee']} base units) from epoch {newer['epoch']}, "  # type: ignore[index]
                "taken from what the recipient receives; limits count the gross amount"
            )
        for name in ("interest_bearing_config", "scaled_ui_amount"):
            if self.extension(name) is not None:
                notes.append(
                    f"{name}: wallets may show a scaled amount; jarvis-wallet counts raw base units"
                )
        return notes

    def to_dict(self) -> dict[str, object]:
        return {
            "program": self.program,
            "decimals": self.decimals,
            "supply": self.supply,
            "mint_authority": _jsonable(self.mint_authority),
            "freeze_authority": _jsonable(self.freeze_authority),
            "is_initialized": self.is_initialized,
            "extensions": [e.to_dict() for e in self.extensions],
            "notes": self.notes(),
        }


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return encode_pubkey(value)
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


class _Cursor:
    """Reads one structure; every failure is an InvalidMintAccount naming ``what``."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.offset, self.what = data, 0, what

    def take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise InvalidMintAccount(f"{self.what} is truncated")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "little")

    def signed(self, size: int) -> int:
        return int.from_bytes(self.take(size), "little", signed=True)

    def key(self) -> bytes:
        return self.take(32)

    def maybe_null_key(self) -> bytes | None:
        key = self.take(32)
        return None if key == bytes(32) else key

    def boolean(self, name: str) -> bool:
        value = self.take(1)[0]
        if value > 1:
            raise InvalidMintAccount(f"{self.what}: {name} byte is {value}, neither 0 nor 1")
        return value == 1

    def coption_key(self, name: str) -> bytes | None:
        tag = self.take(4)
        if tag == b"\x00\x00\x00\x00":
            self.take(32)  # the program leaves the old key behind when it unsets an authority
            return None
        if tag == b"\x01\x00\x00\x00":
            return self.take(32)
        raise InvalidMintAccount(f"{self.what}: {name} option tag {tag.hex()} is neither 0 nor 1")

    def positive_f64(self, name: str) -> float:
        value = struct.unpack("<d", self.take(8))[0]
        if not (math.isfinite(value) and value > 0):
            raise InvalidMintAccount(f"{self.what}: {name} {value!r} is not a positive finite number")
        return value

    def borsh_string(self, name: str) -> str:
        length = self.uint(4)
        if length > len(self.data) - self.offset:
            raise InvalidMintAccount(f"{self.what}: {name} length {length} runs past the extension")
        try:
            return self.take(length).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidMintAccount(f"{self.what}: {name} is not valid UTF-8") from None

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise InvalidMintAccount(f"{self.what}: {len(self.data) - self.offset} bytes left over")


def parse_mint_account(owner: bytes, data: bytes) -> ParsedMint:
    """Parse a mint account owned by ``owner`` or raise InvalidMintAccount with a one-line reason."""
    if not isinstance(owner, (bytes, bytearray)) or len(owner) != 32:
        raise InvalidMintAccount("the account owner must be 32 bytes")
    if not isinstance(data, (bytes, bytearray)):
        raise InvalidMintAccount("the account data must be bytes")
    data = bytes(data)
    program = PROGRAM_NAMES.get(bytes(owner))
    if program is None:
        raise InvalidMintAccount(
            f"the account is owned by {encode_pubkey(bytes(owner))}, not by the Token or Token-2022 program"
        )
    _refuse_other_kinds(program, data)
    base = _parse_base(data[:MINT_LENGTH])
    extensions: tuple[MintExtension, ...] = ()
    if len(data) > MINT_LENGTH:
        extensions = _parse_extensions(data)
    return ParsedMint(program=program, extensions=extensions, **base)


def _refuse_other_kinds(program: str, data: bytes) -> None:
    size = len(data)
    if size == ACCOUNT_LENGTH:
        raise InvalidMintAccount("the account is a token account (165 bytes), not a mint")
    if size == MULTISIG_LENGTH:
        raise InvalidMintAccount("the account is a multisig (355 bytes), not a mint")
    if program == "token" and size != MINT_LENGTH:
        raise InvalidMintAccount(f"a Token program mint is exactly {MINT_LENGTH} bytes, this account has {size}")
    if program == "token-2022" and size != MINT_LENGTH and size <= ACCOUNT_LENGTH:
        raise InvalidMintAccount(
            f"a Token-2022 mint is {MINT_LENGTH} bytes or more than {ACCOUNT_LENGTH} with extensions, "
            f"this account has {size}"
        )


def _parse_base(data: bytes) -> dict[str, object]:
    cursor = _Cursor(data, "the mint")
    mint_authority = cursor.coption_key("mint authority")
    supply = cursor.uint(8)
    decimals = cursor.uint(1)
    is_initialized = cursor.boolean("is_initialized")
    freeze_authority = cursor.coption_key("freeze authority")
    if not is_initialized:
        raise InvalidMintAccount("the mint is not initialised")
    return {
        "decimals": decimals,
        "supply": supply,
        "mint_authority": mint_authority,
        "freeze_authority": freeze_authority,
        "is_initialized": is_initialized,
    }


def _parse_extensions(data: bytes) -> tuple[MintExtension, ...]:
    if any(data[MINT_LENGTH:ACCOUNT_LENGTH]):
        raise InvalidMintAccount("the padding between the mint and its extensions is not zero")
    account_type = data[ACCOUNT_LENGTH]
    if account_type == ACCOUNT_TYPE_ACCOUNT:
        raise InvalidMintAccount("the account is a Token-2022 token account, not a mint")
    if account_type != ACCOUNT_TYPE_MINT:
        raise InvalidMintAccount(f"account type byte {account_type} is not 1 (mint)")
    tlv = data[ACCOUNT_LENGTH + 1 :]
    offset = 0
    found: list[MintExtension] = []
    seen: set[int] = set()
    while len(tlv) - offset >= 2:
        type_number = int.from_bytes(tlv[offset : offset + 2], "little")
        if type_number == 0:  # Uninitialized: the end of the list
            break
        name = MINT_EXTENSIONS.get(type_number)
        if name is None:
            other = ACCOUNT_EXTENSIONS.get(type_number)
            if other is not None:
                raise InvalidMintAccount(f"extension {other} (type {type_number}) belongs to token accounts, not mints")
            raise InvalidMintAccount(f"unknown extension type {type_number}")
        if type_number in seen:
            raise InvalidMintAccount(f"extension {name} appears twice")
        seen.add(type_number)
        if len(tlv) - offset < 4:
            raise InvalidMintAccount(f"extension {name}: its length is truncated")
        length = int.from_bytes(tlv[offset + 2 : offset + 4], "little")
        start = offset + 4
        if start + length > len(tlv):
            raise InvalidMintAccount(
                f"extension {name}: length {length} runs past the end of the account ({len(tlv) - start} bytes left)"
            )
        found.append(_parse_extension(type_number, name, tlv[start : start + length]))
        offset = start + length
    if any(tlv[offset:]):
        raise InvalidMintAccount("non-zero bytes after the last extension")
    return tuple(found)


def _parse_extension(type_number: int, name: str, value: bytes) -> MintExtension:
    size = _SIZES.get(name)
    if size is not None and len(value) != size:
        raise InvalidMintAccount(f"extension {name} is {len(value)} bytes, expected {size}")
    cursor = _Cursor(value, f"extension {name}")
    fields, risk = _READERS[name](cursor)
    cursor.finish()
    return MintExtension(name, type_number, MappingProxyType(fields), risk)


# Value sizes of the fixed-size pod structs (token_metadata is variable).
_SIZES = {
    "transfer_fee_config": 108,
    "mint_close_authority": 32,
    "confidential_transfer_mint": 65,
    "default_account_state": 1,
    "non_transferable": 0,
    "interest_bearing_config": 52,
    "permanent_delegate": 32,
    "transfer_hook": 64,
    "confidential_transfer_fee_config": 129,
    "metadata_pointer": 64,
    "group_pointer": 64,
    "token_group": 80,
    "group_member_pointer": 64,
    "token_group_member": 72,
    "confidential_mint_burn": 196,
    "scaled_ui_amount": 56,
    "pausable": 33,
    "permissioned_burn": 32,
}

Fields = dict[str, object]
ACCOUNT_STATES = {1: "initialized", 2: "frozen"}


def _transfer_fee(cursor: _Cursor) -> dict[str, int]:
    fee = {"epoch": cursor.uint(8), "maximum_fee": cursor.uint(8), "transfer_fee_basis_points": cursor.uint(2)}
    if fee["transfer_fee_basis_points"] > MAX_FEE_BASIS_POINTS:
        raise InvalidMintAccount(
            f"{cursor.what}: a fee of {fee['transfer_fee_basis_points']} basis points is above {MAX_FEE_BASIS_POINTS}"
        )
    return fee


def _read_transfer_fee_config(c: _Cursor) -> tuple[Fields, str | None]:
    return {
        "transfer_fee_config_authority": c.maybe_null_key(),
        "withdraw_withheld_authority": c.maybe_null_key(),
        "withheld_amount": c.uint(8),
        "older_transfer_fee": _transfer_fee(c),
        "newer_transfer_fee": _transfer_fee(c),
    }, None


def _read_mint_close_authority(c: _Cursor) -> tuple[Fields, str | None]:
    return {"close_authority": c.maybe_null_key()}, None  # only a mint with zero supply can close


def _read_confidential_transfer_mint(c: _Cursor) -> tuple[Fields, str | None]:
    fields = {
        "authority": c.maybe_null_key(),
        "auto_approve_new_accounts": c.boolean("auto_approve_new_accounts"),
        "has_auditor": c.maybe_null_key() is not None,  # an ElGamal key, not an address
    }
    return fields, "balances and transfers can be confidential: amounts the policy cannot see or count"


def _read_default_account_state(c: _Cursor) -> tuple[Fields, str | None]:
    value = c.uint(1)
    state = ACCOUNT_STATES.get(value)
    if state is None:
        raise InvalidMintAccount(f"{c.what}: state {value} is neither 1 (initialized) nor 2 (frozen)")
    risk = None
    if state == "frozen":
        risk = "new token accounts start frozen: tokens sent to them stay stuck until the freeze authority thaws them"
    return {"state": state}, risk


def _read_non_transferable(c: _Cursor) -> tuple[Fields, str | None]:
    return {}, "the tokens can never be transferred: the wallet cannot pay with them"


def _read_interest_bearing_config(c: _Cursor) -> tuple[Fields, str | None]:
    return {
        "rate_authority": c.maybe_null_key(),
        "initialization_timestamp": c.signed(8),
        "pre_update_average_rate": c.signed(2),
        "last_update_timestamp": c.signed(8),
        "current_rate": c.signed(2),
    }, None


def _read_permanent_delegate(c: _Cursor) -> tuple[Fields, str | None]:
    delegate = c.maybe_null_key()
    risk = None
    if delegate is not None:
        risk = f"permanent delegate {encode_pubkey(delegate)} can transfer or burn the tokens of every account"
    return {"delegate": delegate}, risk


def _read_transfer_hook(c: _Cursor) -> tuple[Fields, str | None]:
    authority, program_id = c.maybe_null_key(), c.maybe_null_key()
    risk = None
    if program_id is not None:
        risk = f"every transfer calls program {encode_pubkey(program_id)}, which can refuse it"
    elif authority is not None:
        risk = f"authority {encode_pubkey(authority)} can make every transfer call a program that can refuse it"
    return {"authority": authority, "program_id": program_id}, risk


def _read_confidential_transfer_fee_config(c: _Cursor) -> tuple[Fields, str | None]:
    authority = c.maybe_null_key()
    c.take(32)  # withdraw-withheld ElGamal key
    harvest = c.boolean("harvest_to_mint_enabled")
    c.take(64)  # encrypted withheld amount
    fields = {"authority": authority, "harvest_to_mint_enabled": harvest}
    return fields, "confidential transfer fees: amounts the policy cannot see or count"


def _pointer(address_name: str):
    def read(c: _Cursor) -> tuple[Fields, str | None]:
        return {"authority": c.maybe_null_key(), address_name: c.maybe_null_key()}, None

    return read


def _read_token_metadata(c: _Cursor) -> tuple[Fields, str | None]:
    fields: Fields = {
        "update_authority": c.maybe_null_key(),
        "mint": c.key(),
        "name": c.borsh_string("name"),
        "symbol": c.borsh_string("symbol"),
        "uri": c.borsh_string("uri"),
    }
    count = c.uint(4)
    if count * 8 > len(c.data) - c.offset:  # each pair is at least two empty strings
        raise InvalidMintAccount(f"{c.what}: {count} additional metadata entries run past the extension")
    fields["additional_metadata"] = [(c.borsh_string("key"), c.borsh_string("value")) for _ in range(count)]
    return fields, None


def _read_token_group(c: _Cursor) -> tuple[Fields, str | None]:
    return {"update_authority": c.maybe_null_key(), "mint": c.key(), "size": c.uint(8), "max_size": c.uint(8)}, None


def _read_token_group_member(c: _Cursor) -> tuple[Fields, str | None]:
    return {"mint": c.key(), "group": c.key(), "member_number": c.uint(8)}, None


def _read_confidential_mint_burn(c: _Cursor) -> tuple[Fields, str | None]:
    c.take(196)  # ciphertexts and an ElGamal key: nothing the policy can read
    return {}, "tokens can be minted and burned confidentially: amounts the policy cannot see or count"


def _read_scaled_ui_amount(c: _Cursor) -> tuple[Fields, str | None]:
    return {
        "authority": c.maybe_null_key(),
        "multiplier": c.positive_f64("multiplier"),
        "new_multiplier_effective_timestamp": c.signed(8),
        "new_multiplier": c.positive_f64("new multiplier"),
    }, None


def _read_pausable(c: _Cursor) -> tuple[Fields, str | None]:
    authority, paused = c.maybe_null_key(), c.boolean("paused")
    risk = None
    if paused:
        risk = "the mint is paused: no transfer moves until its authority resumes it"
    elif authority is not None:
        risk = f"authority {encode_pubkey(authority)} can pause every transfer of the mint"
    return {"authority": authority, "paused": paused}, risk


def _read_permissioned_burn(c: _Cursor) -> tuple[Fields, str | None]:
    return {"authority": c.maybe_null_key()}, None  # it restricts burning; it moves nothing


_READERS = {
    "transfer_fee_config": _read_transfer_fee_config,
    "mint_close_authority": _read_mint_close_authority,
    "confidential_transfer_mint": _read_confidential_transfer_mint,
    "default_account_state": _read_default_account_state,
    "non_transferable": _read_non_transferable,
    "interest_bearing_config": _read_interest_bearing_config,
    "permanent_delegate": _read_permanent_delegate,
    "transfer_hook": _read_transfer_hook,
    "confidential_transfer_fee_config": _read_confidential_transfer_fee_config,
    "metadata_pointer": _pointer("metadata_address"),
    "token_metadata": _read_token_metadata,
    "group_pointer": _pointer("group_address"),
    "token_group": _read_token_group,
    "group_member_pointer": _pointer("member_address"),
    "token_group_member": _read_token_group_member,
    "confidential_mint_burn": _read_confidential_mint_burn,
    "scaled_ui_amount": _read_scaled_ui_amount,
    "pausable": _read_pausable,
    "permissioned_burn": _read_permissioned_burn,
}


def normalize_extension_name(text: str) -> str:
    """``permanent-delegate`` or ``Permanent_Delegate`` -> ``permanent_delegate``; unknown names are refused."""
    name = text.strip().lower().replace("-", "_")
    if name not in EXTENSION_NAMES:
        raise MintNotAccepted(f"unknown extension name {text!r} (known: {', '.join(EXTENSION_NAMES)})")
    return name


def check_registration(
    parsed: ParsedMint,
    *,
    program: str | None,
    decimals: int | None,
    allow_extensions: Iterable[str] = (),
) -> None:
    """Refuse, with MintNotAccepted, a registration that disagrees with the chain or is dangerous.

    ``program`` and ``decimals`` are what the operator typed (None: take the chain's, from
    ``parsed``). Every extension whose ``risk`` is set must be named in ``allow_extensions``
    (``permanent_delegate`` or ``permanent-delegate``); naming one the mint does not have is an
    error too, so a stale flag never silently allows something later.
    """
    allowed = {normalize_extension_name(name) for name in allow_extensions}
    if program is not None and program != parsed.program:
        raise MintNotAccepted(f"the mint belongs to the {parsed.program} program, not {program}")
    if decimals is not None and decimals != parsed.decimals:
        raise MintNotAccepted(f"the mint has {parsed.decimals} decimals on chain, not {decimals}")
    present = {extension.name for extension in parsed.extensions}
    unused = sorted(allowed - present)
    if unused:
        raise MintNotAccepted(f"the mint has no {', '.join(unused)} extension to allow")
    for extension in parsed.risky_extensions:
        if extension.name not in allowed:
            flag = extension.name.replace("_", "-")
            raise MintNotAccepted(
                f"refused: {extension.risk} ({extension.name}); pass --allow-extension {flag} to accept it"
            )
