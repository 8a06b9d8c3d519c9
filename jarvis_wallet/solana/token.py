"""SPL Token instruction decoding, and the table-driven engine Token-2022 reuses.

Layouts follow solana-program/token ``interface/src/instruction.rs`` (tags 0-24,
38, 45): a u8 tag, then little-endian integers, 32-byte keys and COption
values (tag 0, or tag 1 and the value). The on-chain program ignores trailing
bytes; we do not: data must be exactly as long as its variant. One exception,
because the common builders (solana-py, @solana/spl-token) write it: a
COption<Pubkey> that ends the data may be "none" written at full width, tag 0
followed by 32 zero bytes.

Accounts: every fixed account an instruction names is required. Where the
authority may be a multisig, up to 11 signer accounts may follow; they are
returned as the ``multisig_signers`` account list. Any other extra account is
refused, except in the instructions that take a list (multisig members,
withheld-fee sources).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidTransaction
from .pubkey import decode_pubkey
from .reader import PUBKEY_BYTES, DataReader

TOKEN_PROGRAM_ID = decode_pubkey("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
MAX_MULTISIG_SIGNERS = 11

Roles = dict[str, int]
AccountLists = dict[str, tuple[int, ...]]
Decoded = tuple[str, dict[str, object], Roles, AccountLists]


@dataclass(frozen=True)
class Spec:
    """One instruction variant: its kind, data layout and accounts."""

    kind: str
    layout: tuple[tuple[str, str], ...] = ()
    roles: tuple[str, ...] = ()
    multisig: bool = False  # M signer accounts may follow the fixed roles
    extra: str | None = None  # name of a trailing account list: "members", "sources", "other_accounts"
    optional: tuple[str, ...] = ()  # roles that may follow the fixed ones (legacy sysvars)


# AuthorityType as the programs number it; SPL Token knows the first four.
AUTHORITY_TYPES = (
    "mint_tokens",
    "freeze_account",
    "account_owner",
    "close_account",
    "transfer_fee_config",
    "withheld_withdraw",
    "close_mint",
    "interest_rate",
    "permanent_delegate",
    "confidential_transfer_mint",
    "transfer_hook_program_id",
    "confidential_transfer_fee_config",
    "metadata_pointer",
    "group_pointer",
    "group_member_pointer",
    "scaled_ui_amount",
    "pause",
    "permissioned_burn",
)
SPL_TOKEN_AUTHORITY_TYPES = AUTHORITY_TYPES[:4]

_AMOUNT = (("amount", "u64"),)
_AMOUNT_DECIMALS = (("amount", "u64"), ("decimals", "u8"))
_INITIALIZE_MINT = (("decimals", "u8"), ("mint_authority", "pubkey"), ("freeze_authority", "coption_pubkey_last"))

# The instructions SPL Token and Token-2022 share, by tag. Token-2022 replaces 6 and 21.
BASE_INSTRUCTIONS: dict[int, Spec] = {
    0: Spec("initialize_mint", _INITIALIZE_MINT, ("mint", "rent_sysvar")),
    1: Spec("initialize_account", (), ("account", "mint", "owner", "rent_sysvar")),
    2: Spec("initialize_multisig", (("m", "u8"),), ("multisig", "rent_sysvar"), extra="members"),
    3: Spec("transfer", _AMOUNT, ("source", "destination", "authority"), multisig=True),
    4: Spec("approve", _AMOUNT, ("source", "delegate", "owner"), multisig=True),
    5: Spec("revoke", (), ("source", "owner"), multisig=True),
    6: Spec(
        "set_authority",
        (("authority_type", "spl_authority_type"), ("new_authority", "coption_pubkey_last")),
        ("account", "authority"),
        multisig=True,
    ),
    7: Spec("mint_to", _AMOUNT, ("mint", "destination", "authority"), multisig=True),
    8: Spec("burn", _AMOUNT, ("account", "mint", "authority"), multisig=True),
    9: Spec("close_account", (), ("account", "destination", "owner"), multisig=True),
    10: Spec("freeze_account", (), ("account", "mint", "authority"), multisig=True),
    11: Spec("thaw_account", (), ("account", "mint", "authority"), multisig=True),
    12: Spec("transfer_checked", _AMOUNT_DECIMALS, ("source", "mint", "destination", "authority"), multisig=True),
    13: Spec("approve_checked", _AMOUNT_DECIMALS, ("source", "mint", "delegate", "owner"), multisig=True),
    14: Spec("mint_to_checked", _AMOUNT_DECIMALS, ("mint", "destination", "authority"), multisig=True),
    15: Spec("burn_checked", _AMOUNT_DECIMALS, ("account", "mint", "authority"), multisig=True),
    16: Spec("initialize_account2", (("owner", "pubkey"),), ("account", "mint", "rent_sysvar")),
    17: Spec("sync_native", (), ("account",)),
    18: Spec("initialize_account3", (("owner", "pubkey"),), ("account", "mint")),
    19: Spec("initialize_multisig2", (("m", "u8"),), ("multisig",), extra="members"),
    20: Spec("initialize_mint2", _INITIALIZE_MINT, ("mint",)),
    21: Spec("get_account_data_size", (), ("mint",)),
    22: Spec("initialize_immutable_owner", (), ("account",)),
    23: Spec("amount_to_ui_amount", _AMOUNT, ("mint",)),
    24: Spec("ui_amount_to_amount", (("ui_amount", "utf8_rest"),), ("mint",)),
    38: Spec("withdraw_excess_lamports", (), ("source", "destination", "authority"), multisig=True),
    45: Spec("unwrap_lamports", (("amount", "coption_u64"),), ("source", "destination", "authority"), multisig=True),
}
BATCH_TAG = 255

# Token-2022's ExtensionType (u16), by number; used by GetAccountDataSize and Reallocate.
EXTENSION_TYPES = (
    "uninitialized",
    "transfer_fee_config",
    "transfer_fee_amount",
    "mint_close_authority",
    "confidential_transfer_mint",
    "confidential_transfer_account",
    "default_account_state",
    "immutable_owner",
    "memo_transfer",
    "non_transferable",
    "interest_bearing_config",
    "cpi_guard",
    "permanent_delegate",
    "non_transferable_account",
    "transfer_hook",
    "transfer_hook_account",
    "confidential_transfer_fee_config",
    "confidential_transfer_fee_amount",
    "metadata_pointer",
    "token_metadata",
    "group_pointer",
    "token_group",
    "group_member_pointer",
    "token_group_member",
    "confidential_mint_burn",
    "scaled_ui_amount",
    "pausable",
    "pausable_account",
    "permissioned_burn",
)
ACCOUNT_STATES = ("uninitialized", "initialized", "frozen")


def _named(reader: DataReader, value: int, names: tuple[str, ...], what: str) -> str:
    if value >= len(names):
        raise InvalidTransaction(f"{reader.what}: unknown {what} {value}")
    return names[value]


def read_field(reader: DataReader, kind_of_field: str) -> object:
    """One field of a layout; types the reader does not know by name are handled here."""
    if kind_of_field == "coption_pubkey_last":
        value = reader.coption_pubkey()
        if value is None and reader.remaining == PUBKEY_BYTES and not any(reader.data[reader.offset :]):
            reader.take(PUBKEY_BYTES)  # "none" written at full width by the common builders
        return value
    if kind_of_field == "spl_authority_type":
        return _named(reader, reader.u8(), SPL_TOKEN_AUTHORITY_TYPES, "authority type")
    if kind_of_field == "authority_type":
        return _named(reader, reader.u8(), AUTHORITY_TYPES, "authority type")
    if kind_of_field == "account_state":
        return _named(reader, reader.u8(), ACCOUNT_STATES, "account state")
    if kind_of_field == "extension_types":
        if reader.remaining % 2:
            raise InvalidTransaction(f"{reader.what}: extension types are u16, data has an odd length")
        return tuple(_named(reader, reader.u16(), EXTENSION_TYPES, "extension type") for _ in range(reader.remaining // 2))
    if kind_of_field.startswith("skip:"):
        reader.take(int(kind_of_field[5:]))  # proof data and ciphertexts: length checked, not shown
        return None
    return getattr(reader, kind_of_field)()


def decode_with_spec(what: str, reader: DataReader, spec: Spec, accounts: tuple[int, ...]) -> Decoded:
    """Read ``spec``'s layout to the end of the data and name the accounts."""
    reader.what = what
    fields: dict[str, object] = {}
    for name, kind_of_field in spec.layout:
        value = read_field(reader, kind_of_field)
        if not kind_of_field.startswith("skip:"):
            fields[name] = value
    reader.finish()
    roles, lists = name_accounts(what, spec, accounts, fields)
    return spec.kind, fields, roles, lists


def name_accounts(what: str, spec: Spec, accounts: tuple[int, ...], fields: dict) -> tuple[Roles, AccountLists]:
    fixed = len(spec.roles)
    if len(accounts) < fixed:
        raise InvalidTransaction(f"{what}: needs {fixed} accounts, has {len(accounts)}")
    roles = dict(zip(spec.roles + spec.optional, accounts))
    extra = accounts[fixed + len(spec.optional) :]
    lists: AccountLists = {}
    if spec.extra == "sources" and spec.multisig:
        # WithdrawWithheldTokensFromAccounts: [M signers] then exactly N sources.
        sources = fields["num_token_accounts"]
        if len(extra) < sources:  # type: ignore[operator]
            raise InvalidTransaction(f"{what}: names {sources} source accounts, has {len(extra)} accounts after the authority")
        lists["sources"] = extra[len(extra) - sources :]  # type: ignore[operator]
        extra = extra[: len(extra) - sources]  # type: ignore[operator]
    elif spec.extra is not None:
        if spec.extra == "members" and not 1 <= len(extra) <= MAX_MULTISIG_SIGNERS:
            raise InvalidTransaction(f"{what}: a multisig has 1 to {MAX_MULTISIG_SIGNERS} members, got {len(extra)}")
        lists[spec.extra] = extra
        extra = ()
    lists = {name: indexes for name, indexes in lists.items() if indexes}
    if spec.multisig:
        if len(extra) > MAX_MULTISIG_SIGNERS:
            raise InvalidTransaction(f"{what}: at most {MAX_MULTISIG_SIGNERS} multisig signers, got {len(extra)}")
        if extra:
            lists["multisig_signers"] = extra
    elif extra:
        most = fixed + len(spec.optional)
        raise InvalidTransaction(f"{what}: takes at most {most} accounts, has {len(accounts)}")
    return roles, lists


def decode_tagged(what: str, data: bytes, accounts: tuple[int, ...], table: dict[int, Spec]) -> Decoded:
    """Decode data whose first byte picks the variant in ``table``."""
    reader = DataReader(data, what)
    tag = reader.u8()
    if tag == BATCH_TAG:
        raise InvalidTransaction(f"{what}: Batch instructions are refused (their inner instructions are not decoded)")
    spec = table.get(tag)
    if spec is None:
        raise InvalidTransaction(f"{what}: unknown instruction tag {tag}")
    return decode_with_spec(f"{what[:-1]} {spec.kind})", reader, spec, accounts)


def decode_token(position: int, data: bytes, accounts: tuple[int, ...]) -> Decoded:
    """Decode one SPL Token instruction or raise InvalidTransaction."""
    return decode_tagged(f"instruction {position} (SPL Token)", data, accounts, BASE_INSTRUCTIONS)
