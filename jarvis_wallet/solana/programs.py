"""Decoding the instructions of the programs the signer understands.

System Program (bincode: u32 little-endian variant, u64 integers, 32-byte keys,
strings as u64 length + UTF-8), Compute Budget (borsh: u8 variant, u32/u64) and
Memo v1/v2 (UTF-8 text), and SPL Token, Token-2022 and the Associated Token
Account program (token.py, token_2022.py, associated_token.py). Data of a known program must decode completely with
the exact length of its variant, otherwise the message is refused: the signer
never guesses what an instruction does. Instructions of any other program are
kept opaque (program, accounts, data); the policy decides whether they may
receive the wallet's key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..amounts import format_sol
from ..errors import InvalidTransaction
from .message import Message
from .pubkey import decode_pubkey, encode_pubkey
from .associated_token import ASSOCIATED_TOKEN_PROGRAM_ID, decode_associated_token
from .reader import DataReader
from .token import TOKEN_PROGRAM_ID, decode_token
from .token_2022 import TOKEN_2022_PROGRAM_ID, decode_token_2022
from .token_words import describe_token

SYSTEM_PROGRAM_ID = bytes(32)
COMPUTE_BUDGET_PROGRAM_ID = decode_pubkey("ComputeBudget111111111111111111111111111111")
MEMO_V1_PROGRAM_ID = decode_pubkey("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo")
MEMO_V2_PROGRAM_ID = decode_pubkey("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
# Precompiles: each signature they verify is charged like a transaction signature.
ED25519_PROGRAM_ID = decode_pubkey("Ed25519SigVerify111111111111111111111111111")
SECP256K1_PROGRAM_ID = decode_pubkey("KeccakSecp256k11111111111111111111111111111")
SECP256R1_PROGRAM_ID = decode_pubkey("Secp256r1SigVerify1111111111111111111111111")
PRECOMPILE_PROGRAM_IDS = frozenset({ED25519_PROGRAM_ID, SECP256K1_PROGRAM_ID, SECP256R1_PROGRAM_ID})
# Programs the runtime gives the builtin default of compute units (SIMD-0170) on every cluster:
# builtins that are not being migrated to on-chain programs (agave's builtins-default-costs).
# Vote, Stake, Config and Address Lookup Table are left out: migrated (or migrating) builtins
# get 200,000 where their migration is active, so counting 200,000 is never below the charge.
# secp256r1 is left out too: the runtime gives it 200,000 today.
BUILTIN_DEFAULT_COST_PROGRAM_IDS = frozenset(
    {SYSTEM_PROGRAM_ID, COMPUTE_BUDGET_PROGRAM_ID, ED25519_PROGRAM_ID, SECP256K1_PROGRAM_ID}
    | {
        decode_pubkey(loader)
        for loader in (
            "BPFLoader1111111111111111111111111111111111",
            "BPFLoader2111111111111111111111111111111111",
            "BPFLoaderUpgradeab1e11111111111111111111111",
            "LoaderV411111111111111111111111111111111111",
        )
    }
)

PROGRAM_NAMES = {
    SYSTEM_PROGRAM_ID: "system",
    COMPUTE_BUDGET_PROGRAM_ID: "compute_budget",
    MEMO_V1_PROGRAM_ID: "memo_v1",
    MEMO_V2_PROGRAM_ID: "memo",
    TOKEN_PROGRAM_ID: "token",
    TOKEN_2022_PROGRAM_ID: "token_2022",
    ASSOCIATED_TOKEN_PROGRAM_ID: "associated_token",
}
_TOKEN_DECODERS = {
    "token": decode_token,
    "token_2022": decode_token_2022,
    "associated_token": decode_associated_token,
}

MIN_HEAP_FRAME_BYTES = 32 * 1024
MAX_HEAP_FRAME_BYTES = 256 * 1024
HEAP_FRAME_GRANULARITY = 1024


@dataclass(frozen=True)
class DecodedInstruction:
    """One instruction with its program named and its data decoded.

    ``fields`` holds the decoded data (keys as 32-byte ``bytes``, amounts as
    ``int``, seeds and memo text as ``str``); ``roles`` maps account roles such
    as ``"from"`` and ``"to"`` to indexes into the message's accounts;
    ``account_lists`` names variable runs of accounts (token ``multisig_signers``,
    multisig ``members``, withheld-fee ``sources``).
    """

    index: int
    program_id: bytes
    program: str
    kind: str
    fields: Mapping[str, object] = field(hash=False)
    roles: Mapping[str, int] = field(hash=False)
    accounts: tuple[int, ...]
    data: bytes = field(repr=False)
    account_lists: Mapping[str, tuple[int, ...]] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def role_index(self, role: str) -> int | None:
        return self.roles.get(role)


# variant -> (kind, data layout, account roles in order, minimum accounts)
_SYSTEM_VARIANTS: dict[int, tuple[str, tuple[tuple[str, str], ...], tuple[str, ...], int]] = {
    0: ("create_account", (("lamports", "u64"), ("space", "u64"), ("owner", "pubkey")), ("funder", "new_account"), 2),
    1: ("assign", (("owner", "pubkey"),), ("account",), 1),
    2: ("transfer", (("lamports", "u64"),), ("from", "to"), 2),
    3: (
        "create_account_with_seed",
        (("base", "pubkey"), ("seed", "string"), ("lamports", "u64"), ("space", "u64"), ("owner", "pubkey")),
        ("funder", "new_account", "base_account"),
        2,
    ),
    4: ("advance_nonce_account", (), ("nonce_account", "recent_blockhashes_sysvar", "authority"), 1),
    5: (
        "withdraw_nonce_account",
        (("lamports", "u64"),),
        ("nonce_account", "recipient", "recent_blockhashes_sysvar", "rent_sysvar", "authority"),
        2,
    ),
    6: (
        "initialize_nonce_account",
        (("authority", "pubkey"),),
        ("nonce_account", "recent_blockhashes_sysvar", "rent_sysvar"),
        1,
    ),
    7: ("authorize_nonce_account", (("new_authority", "pubkey"),), ("nonce_account", "authority"), 1),
    8: ("allocate", (("space", "u64"),), ("account",), 1),
    9: (
        "allocate_with_seed",
        (("base", "pubkey"), ("seed", "string"), ("space", "u64"), ("owner", "pubkey")),
        ("account", "base_account"),
        1,
    ),
    10: (
        "assign_with_seed",
        (("base", "pubkey"), ("seed", "string"), ("owner", "pubkey")),
        ("account", "base_account"),
        1,
    ),
    11: (
        "transfer_with_seed",
        (("lamports", "u64"), ("from_seed", "string"), ("from_owner", "pubkey")),
        ("from", "base", "to"),
        3,
    ),
    12: ("upgrade_nonce_account", (), ("nonce_account",), 1),
    13: (
        "create_account_allow_prefund",
        (("lamports", "u64"), ("space", "u64"), ("owner", "pubkey")),
        ("new_account", "funder"),
        1,
    ),
}

SYSTEM_INSTRUCTION_KINDS = tuple(kind for kind, _, _, _ in _SYSTEM_VARIANTS.values())


def _decode_system(position: int, data: bytes, accounts: tuple[int, ...]) -> tuple[str, dict, dict]:
    what = f"instruction {position} (System Program)"
    reader = DataReader(data, what)
    variant = reader.u32()
    if variant not in _SYSTEM_VARIANTS:
        raise InvalidTransaction(f"{what}: unknown instruction variant {variant}")
    kind, layout, role_names, min_accounts = _SYSTEM_VARIANTS[variant]
    reader.what = what = f"instruction {position} (System Program {kind})"
    fields: dict[str, object] = {}
    for name, kind_of_field in layout:
        fields[name] = getattr(reader, kind_of_field)()
    reader.finish()
    if kind == "create_account_allow_prefund" and fields["lamports"]:
        min_accounts = 2  # lamports need a funding account
    if len(accounts) < min_accounts:
        raise InvalidTransaction(f"{what}: needs {min_accounts} accounts, has {len(accounts)}")
    roles = {name: accounts[i] for i, name in enumerate(role_names) if i < len(accounts)}
    return kind, fields, roles


_COMPUTE_BUDGET_VARIANTS = {
    1: ("request_heap_frame", "bytes", 4),
    2: ("set_compute_unit_limit", "units", 4),
    3: ("set_compute_unit_price", "micro_lamports", 8),
    4: ("set_loaded_accounts_data_size_limit", "bytes", 4),
}


def _decode_compute_budget(position: int, data: bytes) -> tuple[str, dict]:
    what = f"instruction {position} (Compute Budget)"
    if not data:
        raise InvalidTransaction(f"{what}: empty instruction data")
    variant = data[0]
    if variant == 0:
        raise InvalidTransaction(f"{what}: the deprecated RequestUnits instruction is refused")
    if variant not in _COMPUTE_BUDGET_VARIANTS:
        raise InvalidTransaction(f"{what}: unknown instruction variant {variant}")
    kind, name, size = _COMPUTE_BUDGET_VARIANTS[variant]
    if len(data) != 1 + size:
        raise InvalidTransaction(f"{what} {kind}: data is {len(data)} bytes, expected {1 + size}")
    value = int.from_bytes(data[1:], "little")
    if kind == "request_heap_frame" and not (
        MIN_HEAP_FRAME_BYTES <= value <= MAX_HEAP_FRAME_BYTES and value % HEAP_FRAME_GRANULARITY == 0
    ):
        raise InvalidTransaction(
            f"{what}: heap frame of {value} bytes is not a multiple of 1024 between 32768 and 262144"
        )
    if kind == "set_loaded_accounts_data_size_limit" and value == 0:
        raise InvalidTransaction(f"{what}: a loaded accounts data size limit of 0 is invalid")
    return kind, {name: value}


def decode_instructions(message: Message) -> tuple[DecodedInstruction, ...]:
    """Decode every instruction of ``message`` or raise InvalidTransaction."""
    decoded = []
    seen_compute_budget: set[str] = set()
    for position, instruction in enumerate(message.instructions):
        program_id = message.program_id(instruction)
        program = PROGRAM_NAMES.get(program_id, "unknown")
        roles: dict[str, int] = {}
        fields: dict[str, object] = {}
        lists: dict[str, tuple[int, ...]] = {}
        if program in _TOKEN_DECODERS:
            kind, fields, roles, lists = _TOKEN_DECODERS[program](position, instruction.data, instruction.accounts)
        elif program == "system":
            kind, fields, roles = _decode_system(position, instruction.data, instruction.accounts)
        elif program == "compute_budget":
            kind, fields = _decode_compute_budget(position, instruction.data)
            if kind in seen_compute_budget:
                # The runtime rejects the whole transaction (DuplicateInstruction).
                raise InvalidTransaction(f"instruction {position}: duplicate Compute Budget {kind}")
            seen_compute_budget.add(kind)
        elif program in ("memo", "memo_v1"):
            try:
                fields = {"text": instruction.data.decode("utf-8")}
            except UnicodeDecodeError:
                raise InvalidTransaction(f"instruction {position} (Memo): memo is not valid UTF-8") from None
            kind = "memo"
        else:
            kind = "opaque"
        decoded.append(
            DecodedInstruction(
                index=position,
                program_id=program_id,
                program=program,
                kind=kind,
                fields=MappingProxyType(fields),
                roles=MappingProxyType(roles),
                accounts=instruction.accounts,
                data=instruction.data,
                account_lists=MappingProxyType(lists),
            )
        )
    return tuple(decoded)


# -- plain words ---------------------------------------------------------------


def _quote(text: str, limit: int = 200) -> str:
    """A safe one-line rendering: repr() escapes control and bidi characters."""
    if len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text)} characters)"
    return repr(text)


def describe_instruction(message: Message, decoded: DecodedInstruction) -> str:
    """One plain-words sentence for an instruction."""
    f = decoded.fields

    def who(role: str) -> str:
        index = decoded.roles.get(role)
        return message.account_label(index) if index is not None else f"(no {role.replace('_', ' ')} account)"

    def key(name: str) -> str:
        return encode_pubkey(f[name])  # type: ignore[arg-type]

    kind = decoded.kind
    if decoded.program == "system":
        if kind == "transfer":
            return f"transfer {format_sol(f['lamports'])} from {who('from')} to {who('to')}"
        if kind == "create_account":
            return (
                f"create account {who('new_account')} with {format_sol(f['lamports'])} from "
                f"{who('funder')}, {f['space']} bytes, owned by {key('owner')}"
            )
        if kind == "create_account_with_seed":
            return (
                f"create account {who('new_account')} (seed {_quote(f['seed'])} of base {key('base')}) "
                f"with {format_sol(f['lamports'])} from {who('funder')}, {f['space']} bytes, "
                f"owned by {key('owner')}"
            )
        if kind == "create_account_allow_prefund":
            funding = f" with {format_sol(f['lamports'])} from {who('funder')}" if f["lamports"] else ""
            return (
                f"create account {who('new_account')} (prefund allowed){funding}, "
                f"{f['space']} bytes, owned by {key('owner')}"
            )
        if kind == "assign":
            return f"assign account {who('account')} to program {key('owner')}"
        if kind == "assign_with_seed":
            return (
                f"assign account {who('account')} (seed {_quote(f['seed'])} of base {key('base')}) "
                f"to program {key('owner')}"
            )
        if kind == "allocate":
            return f"allocate {f['space']} bytes in account {who('account')}"
        if kind == "allocate_with_seed":
            return (
                f"allocate {f['space']} bytes in account {who('account')} (seed {_quote(f['seed'])} "
                f"of base {key('base')}), owned by {key('owner')}"
            )
        if kind == "transfer_with_seed":
            return (
                f"transfer {format_sol(f['lamports'])} from {who('from')} (seed {_quote(f['from_seed'])} "
                f"of base {who('base')}, owner {key('from_owner')}) to {who('to')}"
            )
        if kind == "advance_nonce_account":
            return f"advance nonce account {who('nonce_account')}"
        if kind == "withdraw_nonce_account":
            return (
                f"withdraw {format_sol(f['lamports'])} from nonce account {who('nonce_account')} "
                f"to {who('recipient')}"
            )
        if kind == "initialize_nonce_account":
            return f"initialize nonce account {who('nonce_account')} with authority {key('authority')}"
        if kind == "authorize_nonce_account":
            return f"set the authority of nonce account {who('nonce_account')} to {key('new_authority')}"
        if kind == "upgrade_nonce_account":
            return f"upgrade nonce account {who('nonce_account')}"
    if decoded.program == "compute_budget":
        if kind == "set_compute_unit_limit":
            return f"set the compute unit limit to {f['units']}"
        if kind == "set_compute_unit_price":
            return f"set the compute unit price to {f['micro_lamports']} micro-lamports"
        if kind == "request_heap_frame":
            return f"request a heap frame of {f['bytes']} bytes"
        if kind == "set_loaded_accounts_data_size_limit":
            return f"limit loaded account data to {f['bytes']} bytes"
    if kind == "memo":
        return f"memo {_quote(f['text'])}"  # type: ignore[arg-type]
    if decoded.program in _TOKEN_DECODERS:
        return describe_token(decoded.program, kind, f, decoded.account_lists, who, _quote)
    return (
        f"call program {encode_pubkey(decoded.program_id)} with {len(decoded.accounts)} accounts "
        f"and {len(decoded.data)} bytes of data"
    )


def instruction_to_dict(message: Message, decoded: DecodedInstruction) -> dict[str, object]:
    """JSON-able form: keys base58, amounts int, data of opaque instructions hex.

    ``roles`` names accounts by what the instruction does with them; ``account_lists``
    (token instructions only, when present) holds multisig signers, members or sources.
    """
    fields = {
        name: encode_pubkey(value) if isinstance(value, bytes) else value for name, value in decoded.fields.items()
    }
    result: dict[str, object] = {
        "index": decoded.index,
        "program": decoded.program,
        "program_id": encode_pubkey(decoded.program_id),
        "kind": decoded.kind,
        "description": describe_instruction(message, decoded),
        "fields": fields,
        "roles": {role: account_to_dict(message, index) for role, index in decoded.roles.items()},
        "accounts": [account_to_dict(message, index) for index in decoded.accounts],
    }
    if decoded.account_lists:
        result["account_lists"] = {
            name: [account_to_dict(message, index) for index in indexes] for name, indexes in decoded.account_lists.items()
        }
    if decoded.program == "unknown":
        result["data_hex"] = decoded.data.hex()
    return result


def account_to_dict(message: Message, index: int) -> dict[str, object]:
    """JSON-able account reference; lookup-table entries have ``address`` None."""
    key = message.account_key(index)
    entry: dict[str, object] = {
        "address": encode_pubkey(key) if key is not None else None,
        "is_signer": message.is_signer(index),
        "is_writable": message.is_writable(index),
    }
    if key is None:
        loaded = message.loaded_addresses[index - message.num_static_accounts]
        entry["lookup_table"] = encode_pubkey(loaded.table)
        entry["lookup_index"] = loaded.table_index
    return entry
