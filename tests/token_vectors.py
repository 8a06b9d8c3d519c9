"""Token, Token-2022 and ATA instructions as the real builders make them, with what they mean.

SPL Token instructions come from solana-py's ``spl.token.instructions`` (the SPL
instruction builders for Python). Instructions solana-py has no builder for are
packed here byte by byte after the Rust ``pack`` functions, each citing its
source: solana-program/token-2022 ``interface/src/instruction.rs`` (base set),
``interface/src/extension/<name>/instruction.rs`` (extensions; pod structs
bytemuck-packed), solana-program/token-metadata and token-group
``interface/src/instruction.rs`` (borsh after an 8-byte discriminator), and
solana-program/associated-token-account ``interface/src/instruction.rs``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import solders.compute_budget as compute_budget
import spl.token.instructions as spl
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import Message, MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token import models as m
from spl.token.models import AuthorityType as SplAuthority

from jarvis_wallet.solana.associated_token import decode_associated_token
from jarvis_wallet.solana.token import decode_token
from jarvis_wallet.solana.token_2022 import decode_token_2022

KEYS = [Pubkey(bytes([i + 1]) * 32) for i in range(16)]
MINT, SOURCE, DEST, OWNER, DELEGATE, NEW, MULTISIG, S1, S2, S3, PAYER, HOOK, META, GROUP, MEMBER, X = KEYS
RENT = Pubkey.from_string("SysvarRent111111111111111111111111111111111")
SYSTEM = Pubkey.default()

PROGRAMS = {"token": TOKEN_PROGRAM_ID, "token_2022": TOKEN_2022_PROGRAM_ID, "associated_token": ASSOCIATED_TOKEN_PROGRAM_ID}
DECODERS = {"token": decode_token, "token_2022": decode_token_2022, "associated_token": decode_associated_token}


@dataclass(frozen=True)
class Vector:
    name: str
    program: str
    instruction: Instruction
    kind: str
    fields: dict
    roles: dict[str, Pubkey]
    lists: dict[str, list[Pubkey]] = field(default_factory=dict)
    variable: bool = False  # data of variable length: one byte more or less may still be valid
    multisig: bool = False  # signer accounts may follow the fixed roles
    optional: int = 0  # trailing accounts the instruction may leave out (present in this vector)
    spare: int = 0  # optional trailing accounts this vector leaves out

    def decode(self, data: bytes | None = None, accounts: tuple[int, ...] | None = None):
        data = bytes(self.instruction.data) if data is None else data
        if accounts is None:
            accounts = tuple(range(len(self.instruction.accounts)))
        return DECODERS[self.program](0, data, accounts)

    @property
    def fixed_accounts(self) -> int:
        return len(self.roles) - self.optional


def raw(program: str, data: bytes, *accounts: Pubkey) -> Instruction:
    return Instruction(PROGRAMS[program], data, [AccountMeta(a, False, True) for a in accounts])


def u16(v: int) -> bytes:
    return v.to_bytes(2, "little")


def u64(v: int) -> bytes:
    return v.to_bytes(8, "little")


def k(key: Pubkey) -> bytes:
    return bytes(key)


def borsh_str(text: str) -> bytes:
    encoded = text.encode()
    return len(encoded).to_bytes(4, "little") + encoded


def _spl_vectors(program: str) -> list[Vector]:
    """Every base instruction, built by solana-py for ``program``."""
    pid = PROGRAMS[program]
    v = []

    def add(name, ix, kind, fields, roles, **kw):
        v.append(Vector(f"{program}-{name}", program, ix, kind, fields, roles, **kw))

    add(
        "initialize_mint",
        spl.initialize_mint(m.InitializeMintParams(decimals=6, program_id=pid, mint=MINT, mint_authority=OWNER, freeze_authority=NEW)),
        "initialize_mint",
        {"decimals": 6, "mint_authority": k(OWNER), "freeze_authority": k(NEW)},
        {"mint": MINT, "rent_sysvar": RENT},
    )
    add(
        "initialize_mint-no-freeze",  # solana-py writes "none" at full width: tag 0 and 32 zero bytes
        spl.initialize_mint(m.InitializeMintParams(decimals=9, program_id=pid, mint=MINT, mint_authority=OWNER)),
        "initialize_mint",
        {"decimals": 9, "mint_authority": k(OWNER), "freeze_authority": None},
        {"mint": MINT, "rent_sysvar": RENT},
    )
    add(
        "initialize_mint2",
        spl.initialize_mint2(m.InitializeMint2Params(decimals=0, program_id=pid, mint=MINT, mint_authority=OWNER, freeze_authority=NEW)),
        "initialize_mint2",
        {"decimals": 0, "mint_authority": k(OWNER), "freeze_authority": k(NEW)},
        {"mint": MINT},
    )
    add(
        "initialize_mint2-canonical-none",  # the Rust pack: tag 0 alone
        raw(program, bytes([20, 2]) + k(OWNER) + b"\0", MINT),
        "initialize_mint2",
        {"decimals": 2, "mint_authority": k(OWNER), "freeze_authority": None},
        {"mint": MINT},
    )
    add(
        "initialize_account",
        spl.initialize_account(m.InitializeAccountParams(program_id=pid, account=SOURCE, mint=MINT, owner=OWNER)),
        "initialize_account",
        {},
        {"account": SOURCE, "mint": MINT, "owner": OWNER, "rent_sysvar": RENT},
    )
    add(
        "initialize_account2",
        spl.initialize_account2(m.InitializeAccount2Params(program_id=pid, account=SOURCE, mint=MINT, owner=OWNER)),
        "initialize_account2",
        {"owner": k(OWNER)},
        {"account": SOURCE, "mint": MINT, "rent_sysvar": RENT},
    )
    add(
        "initialize_account3",
        spl.initialize_account3(m.InitializeAccount3Params(program_id=pid, account=SOURCE, mint=MINT, owner=OWNER)),
        "initialize_account3",
        {"owner": k(OWNER)},
        {"account": SOURCE, "mint": MINT},
    )
    add(
        "initialize_multisig",
        spl.initialize_multisig(m.InitializeMultisigParams(program_id=pid, multisig=MULTISIG, m=2, signers=[S1, S2, S3])),
        "initialize_multisig",
        {"m": 2},
        {"multisig": MULTISIG, "rent_sysvar": RENT},
        lists={"members": [S1, S2, S3]},
    )
    add(
        "initialize_multisig2",
        spl.initialize_multisig2(m.InitializeMultisig2Params(program_id=pid, multisig=MULTISIG, m=1, signers=[S1])),
        "initialize_multisig2",
        {"m": 1},
        {"multisig": MULTISIG},
        lists={"members": [S1]},
    )
    add(
        "transfer",
        spl.transfer(m.TransferParams(program_id=pid, source=SOURCE, dest=DEST, owner=OWNER, amount=1_000)),
        "transfer",
        {"amount": 1_000},
        {"source": SOURCE, "destination": DEST, "authority": OWNER},
        multisig=True,
    )
    add(
        "transfer-multisig",
        spl.transfer(m.TransferParams(program_id=pid, source=SOURCE, dest=DEST, owner=MULTISIG, amount=2**64 - 1, signers=[S1, S2])),
        "transfer",
        {"amount": 2**64 - 1},
        {"source": SOURCE, "destination": DEST, "authority": MULTISIG},
        lists={"multisig_signers": [S1, S2]},
        multisig=True,
    )
    add(
        "approve",
        spl.approve(m.ApproveParams(program_id=pid, source=SOURCE, delegate=DELEGATE, owner=OWNER, amount=5)),
        "approve",
        {"amount": 5},
        {"source": SOURCE, "delegate": DELEGATE, "owner": OWNER},
        multisig=True,
    )
    add(
        "revoke",
        spl.revoke(m.RevokeParams(program_id=pid, account=SOURCE, owner=OWNER)),
        "revoke",
        {},
        {"source": SOURCE, "owner": OWNER},
        multisig=True,
    )
    for authority in SplAuthority:
        for new in (NEW, None):
            add(
                f"set_authority-{authority.name.lower()}-{'key' if new else 'none'}",
                spl.set_authority(
                    m.SetAuthorityParams(program_id=pid, account=SOURCE, authority=authority, current_authority=OWNER, new_authority=new)
                ),
                "set_authority",
                {"authority_type": authority.name.lower(), "new_authority": k(new) if new else None},
                {"account": SOURCE, "authority": OWNER},
                multisig=True,
            )
    add(
        "mint_to",
        spl.mint_to(m.MintToParams(program_id=pid, mint=MINT, dest=DEST, mint_authority=OWNER, amount=7)),
        "mint_to",
        {"amount": 7},
        {"mint": MINT, "destination": DEST, "authority": OWNER},
        multisig=True,
    )
    add(
        "burn",
        spl.burn(m.BurnParams(program_id=pid, account=SOURCE, mint=MINT, owner=OWNER, amount=8)),
        "burn",
        {"amount": 8},
        {"account": SOURCE, "mint": MINT, "authority": OWNER},
        multisig=True,
    )
    add(
        "close_account",
        spl.close_account(m.CloseAccountParams(program_id=pid, account=SOURCE, dest=DEST, owner=OWNER)),
        "close_account",
        {},
        {"account": SOURCE, "destination": DEST, "owner": OWNER},
        multisig=True,
    )
    add(
        "freeze_account",
        spl.freeze_account(m.FreezeAccountParams(program_id=pid, account=SOURCE, mint=MINT, authority=OWNER)),
        "freeze_account",
        {},
        {"account": SOURCE, "mint": MINT, "authority": OWNER},
        multisig=True,
    )
    add(
        "thaw_account",
        spl.thaw_account(m.ThawAccountParams(program_id=pid, account=SOURCE, mint=MINT, authority=OWNER, multi_signers=[S1])),
        "thaw_account",
        {},
        {"account": SOURCE, "mint": MINT, "authority": OWNER},
        lists={"multisig_signers": [S1]},
        multisig=True,
    )
    add(
        "transfer_checked",
        spl.transfer_checked(
            m.TransferCheckedParams(program_id=pid, source=SOURCE, mint=MINT, dest=DEST, owner=OWNER, amount=1_500_000, decimals=6)
        ),
        "transfer_checked",
        {"amount": 1_500_000, "decimals": 6},
        {"source": SOURCE, "mint": MINT, "destination": DEST, "authority": OWNER},
        multisig=True,
    )
    add(
        "approve_checked",
        spl.approve_checked(
            m.ApproveCheckedParams(program_id=pid, source=SOURCE, mint=MINT, delegate=DELEGATE, owner=OWNER, amount=3, decimals=2)
        ),
        "approve_checked",
        {"amount": 3, "decimals": 2},
        {"source": SOURCE, "mint": MINT, "delegate": DELEGATE, "owner": OWNER},
        multisig=True,
    )
    add(
        "mint_to_checked",
        spl.mint_to_checked(m.MintToCheckedParams(program_id=pid, mint=MINT, dest=DEST, mint_authority=OWNER, amount=4, decimals=1)),
        "mint_to_checked",
        {"amount": 4, "decimals": 1},
        {"mint": MINT, "destination": DEST, "authority": OWNER},
        multisig=True,
    )
    add(
        "burn_checked",
        spl.burn_checked(m.BurnCheckedParams(program_id=pid, mint=MINT, account=SOURCE, owner=OWNER, amount=9, decimals=3)),
        "burn_checked",
        {"amount": 9, "decimals": 3},
        {"account": SOURCE, "mint": MINT, "authority": OWNER},
        multisig=True,
    )
    add(
        "sync_native",
        spl.sync_native(m.SyncNativeParams(program_id=pid, account=SOURCE)),
        "sync_native",
        {},
        {"account": SOURCE},
    )
    add(
        "get_account_data_size",
        spl.get_account_data_size(m.GetAccountDataSizeParams(program_id=pid, mint=MINT)),
        "get_account_data_size",
        {"extension_types": ()} if program == "token_2022" else {},
        {"mint": MINT},
        variable=program == "token_2022",
    )
    add(
        "initialize_immutable_owner",
        spl.initialize_immutable_owner(m.InitializeImmutableOwnerParams(program_id=pid, account=SOURCE)),
        "initialize_immutable_owner",
        {},
        {"account": SOURCE},
    )
    add(
        "amount_to_ui_amount",
        spl.amount_to_ui_amount(m.AmountToUiAmountParams(program_id=pid, mint=MINT, amount=123)),
        "amount_to_ui_amount",
        {"amount": 123},
        {"mint": MINT},
    )
    add(
        "ui_amount_to_amount",
        spl.ui_amount_to_amount(m.UiAmountToAmountParams(program_id=pid, mint=MINT, ui_amount="1.25é")),
        "ui_amount_to_amount",
        {"ui_amount": "1.25é"},
        {"mint": MINT},
        variable=True,
    )
    # interface/src/instruction.rs (both programs): WithdrawExcessLamports = [38], UnwrapLamports = [45, COption<u64>].
    add(
        "withdraw_excess_lamports",
        raw(program, bytes([38]), SOURCE, DEST, OWNER),
        "withdraw_excess_lamports",
        {},
        {"source": SOURCE, "destination": DEST, "authority": OWNER},
        multisig=True,
    )
    add(
        "unwrap_lamports",
        raw(program, bytes([45, 1]) + u64(77), SOURCE, DEST, OWNER),
        "unwrap_lamports",
        {"amount": 77},
        {"source": SOURCE, "destination": DEST, "authority": OWNER},
        multisig=True,
    )
    add(
        "unwrap_lamports-all",
        raw(program, bytes([45, 0]), SOURCE, DEST, OWNER),
        "unwrap_lamports",
        {"amount": None},
        {"source": SOURCE, "destination": DEST, "authority": OWNER},
        multisig=True,
    )
    return v


def _t22(name, data, accounts, kind, fields, roles, **kw) -> Vector:
    return Vector(f"token_2022-{name}", "token_2022", raw("token_2022", data, *accounts), kind, fields, roles, **kw)


T22_AUTHORITY_TYPES = [
    "mint_tokens", "freeze_account", "account_owner", "close_account", "transfer_fee_config", "withheld_withdraw",
    "close_mint", "interest_rate", "permanent_delegate", "confidential_transfer_mint", "transfer_hook_program_id",
    "confidential_transfer_fee_config", "metadata_pointer", "group_pointer", "group_member_pointer", "scaled_ui_amount",
    "pause", "permissioned_burn",
]  # fmt: skip


def _token_2022_vectors() -> list[Vector]:
    """Token-2022's own instructions and every extension."""
    pid = TOKEN_2022_PROGRAM_ID
    v: list[Vector] = []
    mint_only = {"mint": MINT}
    mint_auth = {"mint": MINT, "authority": OWNER}
    # interface/src/instruction.rs: SetAuthority = [6, type, COption<Pubkey>]; types 0..17.
    for number, name in enumerate(T22_AUTHORITY_TYPES):
        v.append(
            _t22(f"set_authority-{name}", bytes([6, number, 1]) + k(NEW), [MINT, OWNER], "set_authority",
                 {"authority_type": name, "new_authority": k(NEW)}, {"account": MINT, "authority": OWNER}, multisig=True)
        )  # fmt: skip
    v += [
        # GetAccountDataSize / Reallocate: [tag, u16 extension types...]
        _t22("get_account_data_size-extensions", bytes([21]) + u16(1) + u16(28), [MINT], "get_account_data_size",
             {"extension_types": ("transfer_fee_config", "permissioned_burn")}, mint_only, variable=True),
        _t22("reallocate", bytes([29]) + u16(8) + u16(11), [SOURCE, PAYER, SYSTEM, OWNER], "reallocate",
             {"extension_types": ("memo_transfer", "cpi_guard")},
             {"account": SOURCE, "payer": PAYER, "system_program": SYSTEM, "owner": OWNER}, variable=True, multisig=True),
        _t22("initialize_mint_close_authority", bytes([25, 1]) + k(OWNER), [MINT], "initialize_mint_close_authority",
             {"close_authority": k(OWNER)}, mint_only),
        _t22("initialize_mint_close_authority-none", bytes([25, 0]), [MINT], "initialize_mint_close_authority",
             {"close_authority": None}, mint_only),
        _t22("create_native_mint", bytes([31]), [PAYER, MINT, SYSTEM], "create_native_mint", {},
             {"payer": PAYER, "native_mint": MINT, "system_program": SYSTEM}),
        _t22("initialize_non_transferable_mint", bytes([32]), [MINT], "initialize_non_transferable_mint", {}, mint_only),
        _t22("initialize_permanent_delegate", bytes([35]) + k(DELEGATE), [MINT], "initialize_permanent_delegate",
             {"delegate": k(DELEGATE)}, mint_only),
        # extension/transfer_fee/instruction.rs
        _t22("transfer_checked_with_fee", bytes([26, 1]) + u64(1_000) + bytes([6]) + u64(10),
             [SOURCE, MINT, DEST, OWNER], "transfer_checked_with_fee", {"amount": 1_000, "decimals": 6, "fee": 10},
             {"source": SOURCE, "mint": MINT, "destination": DEST, "authority": OWNER}, multisig=True),
        _t22("set_transfer_fee", bytes([26, 5]) + u16(50) + u64(5_000), [MINT, OWNER], "set_transfer_fee",
             {"transfer_fee_basis_points": 50, "maximum_fee": 5_000}, mint_auth, multisig=True),
        # extension/default_account_state/instruction.rs: [28, sub, AccountState u8]
        _t22("initialize_default_account_state", bytes([28, 0, 2]), [MINT], "initialize_default_account_state",
             {"state": "frozen"}, mint_only),
        _t22("update_default_account_state", bytes([28, 1, 1]), [MINT, OWNER], "update_default_account_state",
             {"state": "initialized"}, {"mint": MINT, "freeze_authority": OWNER}, multisig=True),
        # extension/memo_transfer and cpi_guard: [30|34, 0 enable | 1 disable]
        _t22("enable_required_memo_transfers", bytes([30, 0]), [SOURCE, OWNER], "enable_required_memo_transfers", {},
             {"account": SOURCE, "owner": OWNER}, multisig=True),
        _t22("disable_required_memo_transfers", bytes([30, 1]), [SOURCE, OWNER], "disable_required_memo_transfers", {},
             {"account": SOURCE, "owner": OWNER}, multisig=True),
        _t22("enable_cpi_guard", bytes([34, 0]), [SOURCE, OWNER], "enable_cpi_guard", {},
             {"account": SOURCE, "owner": OWNER}, multisig=True),
        _t22("disable_cpi_guard", bytes([34, 1]), [SOURCE, OWNER], "disable_cpi_guard", {},
             {"account": SOURCE, "owner": OWNER}, multisig=True),
        # extension/interest_bearing_mint: Initialize {MaybeNull<Address>, i16}, UpdateRate {i16}
        _t22("initialize_interest_bearing_mint", bytes([33, 0]) + k(OWNER) + struct.pack("<h", -25), [MINT],
             "initialize_interest_bearing_mint", {"rate_authority": k(OWNER), "rate": -25}, mint_only),
        _t22("update_interest_rate", bytes([33, 1]) + struct.pack("<h", 300), [MINT, OWNER], "update_interest_rate",
             {"rate": 300}, {"mint": MINT, "rate_authority": OWNER}, multisig=True),
        # extension/transfer_hook: Initialize {authority, program_id}, Update {program_id}; zero key = none
        _t22("initialize_transfer_hook", bytes([36, 0]) + bytes(32) + k(HOOK), [MINT], "initialize_transfer_hook",
             {"authority": None, "program_id": k(HOOK)}, mint_only),
        _t22("update_transfer_hook", bytes([36, 1]) + k(HOOK), [MINT, OWNER], "update_transfer_hook",
             {"program_id": k(HOOK)}, mint_auth, multisig=True),
        # extension/metadata_pointer, group_pointer, group_member_pointer
        _t22("initialize_metadata_pointer", bytes([39, 0]) + k(OWNER) + k(META), [MINT], "initialize_metadata_pointer",
             {"authority": k(OWNER), "metadata_address": k(META)}, mint_only),
        _t22("update_metadata_pointer", bytes([39, 1]) + bytes(32), [MINT, OWNER], "update_metadata_pointer",
             {"metadata_address": None}, mint_auth, multisig=True),
        _t22("initialize_group_pointer", bytes([40, 0]) + k(OWNER) + k(GROUP), [MINT], "initialize_group_pointer",
             {"authority": k(OWNER), "group_address": k(GROUP)}, mint_only),
        _t22("update_group_pointer", bytes([40, 1]) + k(GROUP), [MINT, OWNER], "update_group_pointer",
             {"group_address": k(GROUP)}, mint_auth, multisig=True),
        _t22("initialize_group_member_pointer", bytes([41, 0]) + k(OWNER) + k(MEMBER), [MINT],
             "initialize_group_member_pointer", {"authority": k(OWNER), "member_address": k(MEMBER)}, mint_only),
        _t22("update_group_member_pointer", bytes([41, 1]) + k(MEMBER), [MINT, OWNER], "update_group_member_pointer",
             {"member_address": k(MEMBER)}, mint_auth, multisig=True),
        # extension/scaled_ui_amount: Initialize {authority, f64}, UpdateMultiplier {f64, i64 timestamp}
        _t22("initialize_scaled_ui_amount", bytes([43, 0]) + k(OWNER) + struct.pack("<d", 1.5), [MINT],
             "initialize_scaled_ui_amount", {"authority": k(OWNER), "multiplier": 1.5}, mint_only),
        _t22("update_multiplier", bytes([43, 1]) + struct.pack("<dq", 2.0, 1_700_000_000), [MINT, OWNER],
             "update_multiplier", {"multiplier": 2.0, "effective_timestamp": 1_700_000_000}, mint_auth, multisig=True),
        # extension/pausable: Initialize {authority}, Pause, Resume
        _t22("initialize_pausable", bytes([44, 0]) + k(OWNER), [MINT], "initialize_pausable",
             {"authority": k(OWNER)}, mint_only),
        _t22("pause", bytes([44, 1]), [MINT, OWNER], "pause", {}, mint_auth, multisig=True),
        _t22("resume", bytes([44, 2]), [MINT, OWNER], "resume", {}, mint_auth, multisig=True),
        # extension/permissioned_burn: Initialize {authority}, Burn {u64}, BurnChecked {u64, u8}
        _t22("initialize_permissioned_burn", bytes([46, 0]) + k(OWNER), [MINT], "initialize_permissioned_burn",
             {"authority": k(OWNER)}, mint_only),
        _t22("permissioned_burn", bytes([46, 1]) + u64(11), [SOURCE, MINT, DELEGATE, OWNER], "permissioned_burn",
             {"amount": 11}, {"account": SOURCE, "mint": MINT, "permissioned_burn_authority": DELEGATE, "authority": OWNER},
             multisig=True),
        _t22("permissioned_burn_checked", bytes([46, 2]) + u64(12) + bytes([4]), [SOURCE, MINT, DELEGATE, OWNER],
             "permissioned_burn_checked", {"amount": 12, "decimals": 4},
             {"account": SOURCE, "mint": MINT, "permissioned_burn_authority": DELEGATE, "authority": OWNER}, multisig=True),
        # token-metadata interface/src/instruction.rs (borsh after sha256("spl_token_metadata_interface:...")[:8])
        _t22("token_metadata_initialize",
             bytes.fromhex("d2e11ea258b84d8d") + borsh_str("Coin") + borsh_str("C") + borsh_str("https://x"),
             [META, OWNER, MINT, DELEGATE], "token_metadata_initialize", {"name": "Coin", "symbol": "C", "uri": "https://x"},
             {"metadata": META, "update_authority": OWNER, "mint": MINT, "mint_authority": DELEGATE}, variable=True),
        _t22("token_metadata_update_field", bytes.fromhex("dde9312db5cadcc8") + bytes([3]) + borsh_str("k") + borsh_str("v"),
             [META, OWNER], "token_metadata_update_field", {"field": "key:k", "value": "v"},
             {"metadata": META, "update_authority": OWNER}, variable=True),
        _t22("token_metadata_update_field-name", bytes.fromhex("dde9312db5cadcc8") + bytes([0]) + borsh_str("N"),
             [META, OWNER], "token_metadata_update_field", {"field": "name", "value": "N"},
             {"metadata": META, "update_authority": OWNER}, variable=True),
        _t22("token_metadata_remove_key", bytes.fromhex("ea122038598d25b5") + bytes([1]) + borsh_str("k"), [META, OWNER],
             "token_metadata_remove_key", {"idempotent": True, "key": "k"}, {"metadata": META, "update_authority": OWNER},
             variable=True),
        _t22("token_metadata_update_authority", bytes.fromhex("d7e4a6e45464567b") + k(NEW), [META, OWNER],
             "token_metadata_update_authority", {"new_authority": k(NEW)}, {"metadata": META, "update_authority": OWNER}),
        _t22("token_metadata_emit", bytes.fromhex("faa6b4fa0d0cb846") + bytes([1]) + u64(3) + bytes([0]), [META],
             "token_metadata_emit", {"start": 3, "end": None}, {"metadata": META}),
        # token-group interface/src/instruction.rs (pod after sha256("spl_token_group_interface:...")[:8])
        _t22("token_group_initialize_group", bytes.fromhex("79716c2736330004") + k(OWNER) + u64(10), [GROUP, MINT, OWNER],
             "token_group_initialize_group", {"update_authority": k(OWNER), "max_size": 10},
             {"group": GROUP, "mint": MINT, "mint_authority": OWNER}),
        _t22("token_group_update_group_max_size", bytes.fromhex("6c25ab8ff81e126e") + u64(20), [GROUP, OWNER],
             "token_group_update_group_max_size", {"max_size": 20}, {"group": GROUP, "update_authority": OWNER}),
        _t22("token_group_update_group_authority", bytes.fromhex("a1695801edddd8cb") + bytes(32), [GROUP, OWNER],
             "token_group_update_group_authority", {"new_authority": None}, {"group": GROUP, "update_authority": OWNER}),
        _t22("token_group_initialize_member", bytes.fromhex("9820deb0dfed7486"), [MEMBER, MINT, OWNER, GROUP, DELEGATE],
             "token_group_initialize_member", {},
             {"member": MEMBER, "member_mint": MINT, "member_mint_authority": OWNER, "group": GROUP,
              "group_update_authority": DELEGATE}),
    ]  # fmt: skip
    v += _confidential_vectors()
    # Transfer-fee instructions solana-py builds.
    v += [
        Vector("token_2022-initialize_transfer_fee_config", "token_2022",
               spl.initialize_transfer_fee_config(m.InitializeTransferFeeConfigParams(
                   program_id=pid, mint=MINT, transfer_fee_config_authority=OWNER, withdraw_withheld_authority=None,
                   transfer_fee_basis_points=100, maximum_fee=10**6)),
               "initialize_transfer_fee_config",
               {"transfer_fee_config_authority": k(OWNER), "withdraw_withheld_authority": None,
                "transfer_fee_basis_points": 100, "maximum_fee": 10**6}, mint_only),
        Vector("token_2022-withdraw_withheld_tokens_from_mint", "token_2022",
               spl.withdraw_withheld_tokens_from_mint(m.WithdrawWithheldTokensFromMintParams(
                   program_id=pid, mint=MINT, dest=DEST, authority=OWNER)),
               "withdraw_withheld_tokens_from_mint", {}, {"mint": MINT, "destination": DEST, "authority": OWNER},
               multisig=True),
        Vector("token_2022-withdraw_withheld_tokens_from_accounts", "token_2022",
               spl.withdraw_withheld_tokens_from_accounts(m.WithdrawWithheldTokensFromAccountsParams(
                   program_id=pid, mint=MINT, dest=DEST, authority=MULTISIG, signers=[S1], sources=[S2, S3])),
               "withdraw_withheld_tokens_from_accounts", {"num_token_accounts": 2},
               {"mint": MINT, "destination": DEST, "authority": MULTISIG},
               lists={"multisig_signers": [S1], "sources": [S2, S3]}, multisig=True),
        Vector("token_2022-harvest_withheld_tokens_to_mint", "token_2022",
               spl.harvest_withheld_tokens_to_mint(m.HarvestWithheldTokensToMintParams(
                   program_id=pid, mint=MINT, sources=[S2])),
               "harvest_withheld_tokens_to_mint", {}, mint_only, lists={"sources": [S2]}),
    ]  # fmt: skip
    return v


# Confidential families: named and length-checked only. Data lengths after the two tag bytes
# from the pod structs of extension/confidential_transfer, confidential_transfer_fee,
# confidential_mint_burn and permissioned_burn instruction.rs (ElGamal pubkey 32,
# ciphertext 64, AE ciphertext 36, proof offsets i8, U64 8, Bool 1).
CONFIDENTIAL = [
    (27, 0, "confidential_transfer_initialize_mint", 65), (27, 1, "confidential_transfer_update_mint", 33),
    (27, 2, "confidential_transfer_configure_account", 45), (27, 3, "confidential_transfer_approve_account", 0),
    (27, 4, "confidential_transfer_empty_account", 1), (27, 7, "confidential_transfer_transfer", 167),
    (27, 8, "confidential_transfer_apply_pending_balance", 44),
    (27, 9, "confidential_transfer_enable_confidential_credits", 0),
    (27, 10, "confidential_transfer_disable_confidential_credits", 0),
    (27, 11, "confidential_transfer_enable_non_confidential_credits", 0),
    (27, 12, "confidential_transfer_disable_non_confidential_credits", 0),
    (27, 13, "confidential_transfer_transfer_with_fee", 169),
    (27, 14, "confidential_transfer_configure_account_with_registry", 0),
    (37, 0, "confidential_transfer_fee_initialize_config", 64),
    (37, 1, "confidential_transfer_fee_withdraw_withheld_tokens_from_mint", 37),
    (37, 2, "confidential_transfer_fee_withdraw_withheld_tokens_from_accounts", 38),
    (37, 3, "confidential_transfer_fee_harvest_withheld_tokens_to_mint", 0),
    (37, 4, "confidential_transfer_fee_enable_harvest_to_mint", 0),
    (37, 5, "confidential_transfer_fee_disable_harvest_to_mint", 0),
    (42, 0, "confidential_mint_burn_initialize_mint", 68), (42, 1, "confidential_mint_burn_rotate_supply_elgamal_pubkey", 33),
    (42, 2, "confidential_mint_burn_update_decryptable_supply", 36), (42, 3, "confidential_mint_burn_mint", 167),
    (42, 4, "confidential_mint_burn_burn", 167), (42, 5, "confidential_mint_burn_apply_pending_burn", 0),
    (46, 3, "confidential_permissioned_burn", 167),
]  # fmt: skip


def _confidential_vectors() -> list[Vector]:
    v = [
        _t22(name, bytes([family, sub]) + bytes(range(length)), [MINT, SOURCE], name, {},
             {"mint" if family == 42 else "account": MINT}, lists={"other_accounts": [SOURCE]})
        for family, sub, name, length in CONFIDENTIAL
    ]  # fmt: skip
    v += [
        _t22("confidential_transfer_deposit", bytes([27, 5]) + u64(99) + bytes([6]), [SOURCE, MINT, OWNER],
             "confidential_transfer_deposit", {"amount": 99, "decimals": 6}, {"account": SOURCE},
             lists={"other_accounts": [MINT, OWNER]}),
        _t22("confidential_transfer_withdraw", bytes([27, 6]) + u64(98) + bytes([6]) + bytes(38), [SOURCE],
             "confidential_transfer_withdraw", {"amount": 98, "decimals": 6}, {"account": SOURCE}),
    ]  # fmt: skip
    return v


def _ata_vectors() -> list[Vector]:
    create_roles = {"funder": PAYER, "associated_account": None, "wallet": OWNER, "mint": MINT,
                    "system_program": SYSTEM, "token_program": TOKEN_PROGRAM_ID}  # fmt: skip
    ata = spl.get_associated_token_address(OWNER, MINT)
    create_roles["associated_account"] = ata
    built = spl.create_associated_token_account(PAYER, OWNER, MINT)
    idempotent = spl.create_idempotent_associated_token_account(PAYER, OWNER, MINT)
    metas = [AccountMeta(a, False, True) for a in (PAYER, ata, OWNER, MINT, SYSTEM, TOKEN_PROGRAM_ID)]
    nested = [S1, MINT, DEST, S2, NEW, OWNER, TOKEN_PROGRAM_ID]
    # Every ATA tag is one byte and an empty data is Create: "one byte short" is another valid
    # instruction, so these are marked variable and the malformed cases test the long forms.
    return [
        # solana-py adds the rent sysvar the first ATA program version needed
        Vector("ata-create", "associated_token", built, "create", {}, {**create_roles, "rent_sysvar": RENT}, optional=1,
               variable=True),  # empty data; one byte more is [0], Create again
        Vector("ata-create-tag", "associated_token", Instruction(ASSOCIATED_TOKEN_PROGRAM_ID, bytes([0]), metas), "create",
               {}, create_roles, spare=1, variable=True),
        Vector("ata-create_idempotent", "associated_token", idempotent, "create_idempotent", {}, create_roles,
               variable=True),
        Vector("ata-recover_nested", "associated_token", raw("associated_token", bytes([2]), *nested), "recover_nested", {},
               dict(zip(("nested_account", "nested_mint", "destination", "owner_account", "owner_mint", "wallet",
                         "token_program"), nested)), variable=True),
    ]  # fmt: skip


TOKEN_VECTORS = _spl_vectors("token")
TOKEN_2022_VECTORS = _spl_vectors("token_2022") + _token_2022_vectors()
ATA_VECTORS = _ata_vectors()
ALL_VECTORS = TOKEN_VECTORS + TOKEN_2022_VECTORS + ATA_VECTORS


# -- a whole token payment, as build-transfer --token makes it ------------------------------------

MEMO_V2 = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")


def spl_transfer_message(
    *, wallet: Pubkey, owner: Pubkey, mint: Pubkey, decimals: int, program: Pubkey, amount: int, blockhash: Hash,
    create: bool = True, v0: bool = False, price: int | None = None, limit: int | None = None, memo: str | None = None,
) -> bytes:
    """The reference for build_token_transfer_message: solana-py's SPL builders compiled by solders,
    in its order (compute unit limit, price, CreateIdempotent, TransferChecked, memo)."""
    instructions = []
    if limit is not None:
        instructions.append(compute_budget.set_compute_unit_limit(limit))
    if price is not None:
        instructions.append(compute_budget.set_compute_unit_price(price))
    if create:
        instructions.append(spl.create_idempotent_associated_token_account(wallet, owner, mint, program))
    instructions.append(
        spl.transfer_checked(
            m.TransferCheckedParams(
                program_id=program, source=spl.get_associated_token_address(wallet, mint, program), mint=mint,
                dest=spl.get_associated_token_address(owner, mint, program), owner=wallet, amount=amount,
                decimals=decimals,
            )
        )
    )
    if memo is not None:
        instructions.append(Instruction(MEMO_V2, memo.encode(), []))
    if v0:
        return to_bytes_versioned(MessageV0.try_compile(wallet, instructions, [], blockhash))
    return bytes(Message.new_with_blockhash(instructions, wallet, blockhash))
