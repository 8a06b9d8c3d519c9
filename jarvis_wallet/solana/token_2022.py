"""Token-2022 instruction decoding: the SPL Token base set and every extension.

Layouts follow solana-program/token-2022 ``interface/src/instruction.rs`` and
``interface/src/extension/*/instruction.rs``. Extension instructions are a
family tag then a sub-instruction byte, then either the classic packing or a
fixed-size pod struct (``MaybeNull`` keys: all-zero bytes mean none). The
token-metadata and token-group interface instructions (solana-program/
token-metadata and token-group ``interface/src/instruction.rs``) start with an
8-byte discriminator (sha256 of their name) and are borsh.

The confidential families (27, 37, 42 and permissioned confidential burn) are
named and length-checked only: their ciphertexts and proofs are not shown, and
their accounts beyond the first are kept as ``other_accounts``. The policy
refuses them all.
"""

from __future__ import annotations

from ..errors import InvalidTransaction
from .pubkey import decode_pubkey
from .reader import DataReader
from .token import BASE_INSTRUCTIONS, Decoded, Spec, decode_tagged, decode_with_spec

TOKEN_2022_PROGRAM_ID = decode_pubkey("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")

_AMOUNT_DECIMALS = (("amount", "u64"), ("decimals", "u8"))

_BASE = {
    **BASE_INSTRUCTIONS,
    6: Spec(
        "set_authority",
        (("authority_type", "authority_type"), ("new_authority", "coption_pubkey_last")),
        ("account", "authority"),
        multisig=True,
    ),
    21: Spec("get_account_data_size", (("extension_types", "extension_types"),), ("mint",)),
    25: Spec("initialize_mint_close_authority", (("close_authority", "coption_pubkey_last"),), ("mint",)),
    29: Spec(
        "reallocate",
        (("extension_types", "extension_types"),),
        ("account", "payer", "system_program", "owner"),
        multisig=True,
    ),
    31: Spec("create_native_mint", (), ("payer", "native_mint", "system_program")),
    32: Spec("initialize_non_transferable_mint", (), ("mint",)),
    35: Spec("initialize_permanent_delegate", (("delegate", "pubkey"),), ("mint",)),
}


def _pointer(kind: str, address: str) -> dict[int, Spec]:
    """Metadata, group and group-member pointers share one shape."""
    return {
        0: Spec(f"initialize_{kind}", (("authority", "maybe_null_pubkey"), (address, "maybe_null_pubkey")), ("mint",)),
        1: Spec(f"update_{kind}", ((address, "maybe_null_pubkey"),), ("mint", "authority"), multisig=True),
    }


def _toggle(kind: str) -> dict[int, Spec]:
    """Memo-transfer and CPI-guard: enable / disable on a token account."""
    return {
        0: Spec(f"enable_{kind}", (), ("account", "owner"), multisig=True),
        1: Spec(f"disable_{kind}", (), ("account", "owner"), multisig=True),
    }


def _confidential(prefix: str, lengths: dict[int, tuple[str, int]], first: str) -> dict[int, Spec]:
    """Named, exact length, nothing shown; see the module docstring."""
    return {
        sub: Spec(f"{prefix}_{name}", (("data", f"skip:{length}"),) if length else (), (first,), extra="other_accounts")
        for sub, (name, length) in lengths.items()
    }


# Sizes: ElGamal pubkey 32, ElGamal ciphertext 64, AE ciphertext (decryptable balance) 36.
_CONFIDENTIAL_TRANSFER = _confidential(
    "confidential_transfer",
    {
        0: ("initialize_mint", 32 + 1 + 32),
        1: ("update_mint", 1 + 32),
        2: ("configure_account", 36 + 8 + 1),
        3: ("approve_account", 0),
        4: ("empty_account", 1),
        7: ("transfer", 36 + 64 + 64 + 3),
        8: ("apply_pending_balance", 8 + 36),
        9: ("enable_confidential_credits", 0),
        10: ("disable_confidential_credits", 0),
        11: ("enable_non_confidential_credits", 0),
        12: ("disable_non_confidential_credits", 0),
        13: ("transfer_with_fee", 36 + 64 + 64 + 5),
        14: ("configure_account_with_registry", 0),
    },
    "account",
)
_CONFIDENTIAL_TRANSFER[5] = Spec("confidential_transfer_deposit", _AMOUNT_DECIMALS, ("account",), extra="other_accounts")
_CONFIDENTIAL_TRANSFER[6] = Spec(
    "confidential_transfer_withdraw", (*_AMOUNT_DECIMALS, ("data", "skip:38")), ("account",), extra="other_accounts"
)

# family tag -> (family name for messages, sub-instruction table)
_FAMILIES: dict[int, tuple[str, dict[int, Spec]]] = {
    26: (
        "transfer fee",
        {
            0: Spec(
                "initialize_transfer_fee_config",
                (
                    ("transfer_fee_config_authority", "coption_pubkey"),
                    ("withdraw_withheld_authority", "coption_pubkey"),
                    ("transfer_fee_basis_points", "u16"),
                    ("maximum_fee", "u64"),
                ),
                ("mint",),
            ),
            1: Spec(
                "transfer_checked_with_fee",
                (*_AMOUNT_DECIMALS, ("fee", "u64")),
                ("source", "mint", "destination", "authority"),
                multisig=True,
            ),
            2: Spec("withdraw_withheld_tokens_from_mint", (), ("mint", "destination", "authority"), multisig=True),
            3: Spec(
                "withdraw_withheld_tokens_from_accounts",
                (("num_token_accounts", "u8"),),
                ("mint", "destination", "authority"),
                multisig=True,
                extra="sources",
            ),
            4: Spec("harvest_withheld_tokens_to_mint", (), ("mint",), extra="sources"),
            5: Spec(
                "set_transfer_fee",
                (("transfer_fee_basis_points", "u16"), ("maximum_fee", "u64")),
                ("mint", "authority"),
                multisig=True,
            ),
        },
    ),
    27: ("confidential transfer", _CONFIDENTIAL_TRANSFER),
    28: (
        "default account state",
        {
            0: Spec("initialize_default_account_state", (("state", "account_state"),), ("mint",)),
            1: Spec(
                "update_default_account_state", (("state", "account_state"),), ("mint", "freeze_authority"), multisig=True
            ),
        },
    ),
    30: ("memo transfer", _toggle("required_memo_transfers")),
    33: (
        "interest-bearing mint",
        {
            0: Spec(
                "initialize_interest_bearing_mint",
                (("rate_authority", "maybe_null_pubkey"), ("rate", "i16")),
                ("mint",),
            ),
            1: Spec("update_interest_rate", (("rate", "i16"),), ("mint", "rate_authority"), multisig=True),
        },
    ),
    34: ("CPI guard", _toggle("cpi_guard")),
    36: (
        "transfer hook",
        {
            0: Spec(
                "initialize_transfer_hook",
                (("authority", "maybe_null_pubkey"), ("program_id", "maybe_null_pubkey")),
                ("mint",),
            ),
            1: Spec("update_transfer_hook", (("program_id", "maybe_null_pubkey"),), ("mint", "authority"), multisig=True),
        },
    ),
    37: (
        "confidential transfer fee",
        _confidential(
            "confidential_transfer_fee",
            {
                0: ("initialize_config", 32 + 32),
                1: ("withdraw_withheld_tokens_from_mint", 1 + 36),
                2: ("withdraw_withheld_tokens_from_accounts", 1 + 1 + 36),
                3: ("harvest_withheld_tokens_to_mint", 0),
                4: ("enable_harvest_to_mint", 0),
                5: ("disable_harvest_to_mint", 0),
            },
            "account",
        ),
    ),
    39: ("metadata pointer", _pointer("metadata_pointer", "metadata_address")),
    40: ("group pointer", _pointer("group_pointer", "group_address")),
    41: ("group member pointer", _pointer("group_member_pointer", "member_address")),
    42: (
        "confidential mint-burn",
        _confidential(
            "confidential_mint_burn",
            {
                0: ("initialize_mint", 32 + 36),
                1: ("rotate_supply_elgamal_pubkey", 32 + 1),
                2: ("update_decryptable_supply", 36),
                3: ("mint", 36 + 64 + 64 + 3),
                4: ("burn", 36 + 64 + 64 + 3),
                5: ("apply_pending_burn", 0),
            },
            "mint",
        ),
    ),
    43: (
        "scaled UI amount",
        {
            0: Spec(
                "initialize_scaled_ui_amount",
                (("authority", "maybe_null_pubkey"), ("multiplier", "f64")),
                ("mint",),
            ),
            1: Spec(
                "update_multiplier",
                (("multiplier", "f64"), ("effective_timestamp", "i64")),
                ("mint", "authority"),
                multisig=True,
            ),
        },
    ),
    44: (
        "pausable",
        {
            0: Spec("initialize_pausable", (("authority", "pubkey"),), ("mint",)),
            1: Spec("pause", (), ("mint", "authority"), multisig=True),
            2: Spec("resume", (), ("mint", "authority"), multisig=True),
        },
    ),
    46: (
        "permissioned burn",
        {
            0: Spec("initialize_permissioned_burn", (("authority", "pubkey"),), ("mint",)),
            1: Spec(
                "permissioned_burn",
                (("amount", "u64"),),
                ("account", "mint", "permissioned_burn_authority", "authority"),
                multisig=True,
            ),
            2: Spec(
                "permissioned_burn_checked",
                _AMOUNT_DECIMALS,
                ("account", "mint", "permissioned_burn_authority", "authority"),
                multisig=True,
            ),
            3: Spec(
                "confidential_permissioned_burn",
                (("data", f"skip:{36 + 64 + 64 + 3}"),),
                ("account",),
                extra="other_accounts",
            ),
        },
    ),
}

# 8-byte discriminators: sha256("<interface>:<name>")[:8]; none starts with a token tag.
_INTERFACE: dict[bytes, Spec] = {
    bytes.fromhex("d2e11ea258b84d8d"): Spec(
        "token_metadata_initialize",
        (("name", "borsh_string"), ("symbol", "borsh_string"), ("uri", "borsh_string")),
        ("metadata", "update_authority", "mint", "mint_authority"),
    ),
    bytes.fromhex("dde9312db5cadcc8"): Spec(
        "token_metadata_update_field",
        (("field", "metadata_field"), ("value", "borsh_string")),
        ("metadata", "update_authority"),
    ),
    bytes.fromhex("ea122038598d25b5"): Spec(
        "token_metadata_remove_key",
        (("idempotent", "boolean"), ("key", "borsh_string")),
        ("metadata", "update_authority"),
    ),
    bytes.fromhex("d7e4a6e45464567b"): Spec(
        "token_metadata_update_authority",
        (("new_authority", "maybe_null_pubkey"),),
        ("metadata", "update_authority"),
    ),
    bytes.fromhex("faa6b4fa0d0cb846"): Spec(
        "token_metadata_emit", (("start", "borsh_option_u64"), ("end", "borsh_option_u64")), ("metadata",)
    ),
    bytes.fromhex("79716c2736330004"): Spec(
        "token_group_initialize_group",
        (("update_authority", "maybe_null_pubkey"), ("max_size", "u64")),
        ("group", "mint", "mint_authority"),
    ),
    bytes.fromhex("6c25ab8ff81e126e"): Spec(
        "token_group_update_group_max_size", (("max_size", "u64"),), ("group", "update_authority")
    ),
    bytes.fromhex("a1695801edddd8cb"): Spec(
        "token_group_update_group_authority",
        (("new_authority", "maybe_null_pubkey"),),
        ("group", "update_authority"),
    ),
    bytes.fromhex("9820deb0dfed7486"): Spec(
        "token_group_initialize_member",
        (),
        ("member", "member_mint", "member_mint_authority", "group", "group_update_authority"),
    ),
}
_METADATA_FIELDS = ("name", "symbol", "uri")


class _InterfaceReader(DataReader):
    def metadata_field(self) -> str:
        """The metadata ``Field`` enum: name, symbol, uri, or key:<user key>."""
        tag = self.u8()
        if tag < len(_METADATA_FIELDS):
            return _METADATA_FIELDS[tag]
        if tag == 3:
            return "key:" + self.borsh_string("key")
        raise InvalidTransaction(f"{self.what}: unknown metadata field {tag}")


def decode_token_2022(position: int, data: bytes, accounts: tuple[int, ...]) -> Decoded:
    """Decode one Token-2022 instruction or raise InvalidTransaction."""
    what = f"instruction {position} (Token-2022)"
    if data and data[0] in _FAMILIES:
        family, table = _FAMILIES[data[0]]
        if len(data) < 2:
            raise InvalidTransaction(f"{what}: {family} instruction without its sub-instruction byte")
        spec = table.get(data[1])
        if spec is None:
            raise InvalidTransaction(f"{what}: unknown {family} instruction {data[1]}")
        reader = DataReader(data, what)
        reader.take(2)
        return decode_with_spec(f"instruction {position} (Token-2022 {spec.kind})", reader, spec, accounts)
    spec = _INTERFACE.get(data[:8])
    if spec is not None:
        reader = _InterfaceReader(data, what)
        reader.take(8)
        return decode_with_spec(f"instruction {position} (Token-2022 {spec.kind})", reader, spec, accounts)
    return decode_tagged(what, data, accounts, _BASE)
