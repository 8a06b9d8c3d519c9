"""Mint accounts: SPL Token mints built by solders, Token-2022 mints built from the documented
layouts (solana-program/token-2022 ``interface/src/state.rs`` and ``extension/*``), the
program's own golden bytes, strict failures, and a fuzz that only ever raises our error.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey
from solders.token.state import Mint
from spl.token._layouts import MINT_LAYOUT

from jarvis_wallet.errors import InvalidMintAccount, MintNotAccepted
from jarvis_wallet.solana.mint_account import (
    DANGEROUS_EXTENSIONS,
    EXTENSION_NAMES,
    check_registration,
    parse_mint_account,
)
from jarvis_wallet.solana.pubkey import encode_pubkey
from jarvis_wallet.solana.token import TOKEN_PROGRAM_ID
from jarvis_wallet.solana.token_2022 import TOKEN_2022_PROGRAM_ID

AUTH, FREEZE, DELEGATE, HOOK, OTHER = (bytes([i]) * 32 for i in (1, 2, 3, 4, 5))
T22 = TOKEN_2022_PROGRAM_ID


def u16(v: int) -> bytes:
    return v.to_bytes(2, "little")


def u64(v: int) -> bytes:
    return v.to_bytes(8, "little")


def coption(key: bytes | None) -> bytes:
    return (b"\x01\x00\x00\x00" + key) if key is not None else bytes(36)


def base(*, authority=AUTH, supply=42, decimals=7, initialized=True, freeze=FREEZE) -> bytes:
    """Mint::pack: COption<Pubkey>, u64 supply, u8 decimals, bool, COption<Pubkey>."""
    return coption(authority) + u64(supply) + bytes([decimals, int(initialized)]) + coption(freeze)


def tlv(type_number: int, value: bytes) -> bytes:
    return u16(type_number) + u16(len(value)) + value


def extended(*entries: bytes, mint: bytes | None = None, tail: bytes = b"") -> bytes:
    """Base mint, zero padding to 165, AccountType::Mint, the TLV entries."""
    mint = base() if mint is None else mint
    return mint + bytes(165 - 82) + b"\x01" + b"".join(entries) + tail


def borsh(text: str) -> bytes:
    return len(text.encode()).to_bytes(4, "little") + text.encode()


def fee(epoch: int, maximum: int, bps: int) -> bytes:
    return u64(epoch) + u64(maximum) + u16(bps)


# -- SPL Token --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authority, supply, decimals, freeze",
    [(AUTH, 0, 0, None), (None, 2**64 - 1, 255, FREEZE), (AUTH, 1_000_000, 6, FREEZE), (None, 5, 9, None)],
)
def test_spl_token_mints_built_by_solders_round_trip(authority, supply, decimals, freeze):
    as_pubkey = (lambda k: Pubkey(k) if k is not None else None)
    data = bytes(Mint(as_pubkey(authority), supply, decimals, True, as_pubkey(freeze)))
    parsed = parse_mint_account(TOKEN_PROGRAM_ID, data)
    assert (parsed.program, parsed.decimals, parsed.supply) == ("token", decimals, supply)
    assert (parsed.mint_authority, parsed.freeze_authority, parsed.is_initialized) == (authority, freeze, True)
    assert parsed.extensions == ()
    rebuilt = Mint(as_pubkey(parsed.mint_authority), parsed.supply, parsed.decimals, parsed.is_initialized,
                   as_pubkey(parsed.freeze_authority))
    assert bytes(rebuilt) == data  # and back: solders packs what we read into the same bytes
    layout = MINT_LAYOUT.parse(data)  # solana-py's own layout agrees
    assert (layout.decimals, layout.supply, bool(layout.mint_authority_option)) == (decimals, supply, authority is not None)


def test_the_programs_golden_mint_bytes():
    """TEST_MINT_SLICE from token-2022 interface/src/state.rs."""
    golden = bytes(
        [1, 0, 0, 0] + [1] * 32 + [42, 0, 0, 0, 0, 0, 0, 0, 7, 1, 1, 0, 0, 0] + [2] * 32
    )
    assert golden == base()
    for program in (TOKEN_PROGRAM_ID, T22):
        parsed = parse_mint_account(program, golden)
        assert (parsed.mint_authority, parsed.supply, parsed.decimals, parsed.freeze_authority) == (AUTH, 42, 7, FREEZE)
    assert parse_mint_account(T22, golden).program == "token-2022"


def test_an_unset_authority_keeps_its_old_key_bytes():
    """pack_coption_key writes only the tag for None: the old key stays behind and means nothing."""
    data = bytearray(base())
    data[0:4] = bytes(4)  # SetAuthority(None) on the mint authority
    parsed = parse_mint_account(TOKEN_PROGRAM_ID, bytes(data))
    assert parsed.mint_authority is None and parsed.freeze_authority == FREEZE


# -- Token-2022 -------------------------------------------------------------------------------


def test_the_programs_golden_extended_mint():
    """extension/mod.rs test: MintCloseAuthority, then space allocated for a TransferFeeConfig."""
    data = extended(tlv(3, bytes([1]) * 32), tail=bytes(2 + 2 + 108))
    assert len(data) == 166 + 36 + 112
    parsed = parse_mint_account(T22, data)
    (close,) = parsed.extensions
    assert (close.name, close.type_number, dict(close.fields), close.risk) == (
        "mint_close_authority", 3, {"close_authority": AUTH}, None
    )


def test_a_plain_82_byte_token_2022_mint_has_no_extensions():
    parsed = parse_mint_account(T22, base(decimals=2))
    assert (parsed.program, parsed.decimals, parsed.extensions) == ("token-2022", 2, ())


def test_the_multisig_length_padding_entry():
    """A mint that would be 355 bytes (a multisig's length) gets two more bytes of Uninitialized type."""
    entries = [tlv(1, bytes(108)), tlv(12, DELEGATE), tlv(3, AUTH), tlv(6, b"\x01")]
    assert len(extended(*entries)) == 355
    parsed = parse_mint_account(T22, extended(*entries, tail=bytes(2)))
    assert [e.name for e in parsed.extensions] == [
        "transfer_fee_config", "permanent_delegate", "mint_close_authority", "default_account_state"
    ]
    with pytest.raises(InvalidMintAccount, match="multisig"):
        parse_mint_account(T22, extended(*entries))


EXTENSION_CASES = [
    (
        "transfer_fee_config",
        tlv(1, AUTH + bytes(32) + u64(77) + fee(10, 5_000, 25) + fee(12, 9_000, 10_000)),
        {
            "transfer_fee_config_authority": AUTH,
            "withdraw_withheld_authority": None,
            "withheld_amount": 77,
            "older_transfer_fee": {"epoch": 10, "maximum_fee": 5_000, "transfer_fee_basis_points": 25},
            "newer_transfer_fee": {"epoch": 12, "maximum_fee": 9_000, "transfer_fee_basis_points": 10_000},
        },
        False,
    ),
    ("mint_close_authority", tlv(3, bytes(32)), {"close_authority": None}, False),
    (
        "confidential_transfer_mint",
        tlv(4, AUTH + b"\x01" + OTHER),
        {"authority": AUTH, "auto_approve_new_accounts": True, "has_auditor": True},
        True,
    ),
    ("default_account_state", tlv(6, b"\x01"), {"state": "initialized"}, False),
    ("default_account_state", tlv(6, b"\x02"), {"state": "frozen"}, True),
    ("non_transferable", tlv(9, b""), {}, True),
    (
        "interest_bearing_config",
        tlv(10, AUTH + struct.pack("<qhqh", 1_700_000_000, -5, 1_700_000_100, 250)),
        {
            "rate_authority": AUTH,
            "initialization_timestamp": 1_700_000_000,
            "pre_update_average_rate": -5,
            "last_update_timestamp": 1_700_000_100,
            "current_rate": 250,
        },
        False,
    ),
    ("permanent_delegate", tlv(12, DELEGATE), {"delegate": DELEGATE}, True),
    ("permanent_delegate", tlv(12, bytes(32)), {"delegate": None}, False),
    ("transfer_hook", tlv(14, AUTH + HOOK), {"authority": AUTH, "program_id": HOOK}, True),
    ("transfer_hook", tlv(14, AUTH + bytes(32)), {"authority": AUTH, "program_id": None}, True),
    ("transfer_hook", tlv(14, bytes(64)), {"authority": None, "program_id": None}, False),
    (
        "confidential_transfer_fee_config",
        tlv(16, AUTH + OTHER + b"\x00" + bytes(64)),
        {"authority": AUTH, "harvest_to_mint_enabled": False},
        True,
    ),
    ("metadata_pointer", tlv(18, AUTH + OTHER), {"authority": AUTH, "metadata_address": OTHER}, False),
    (
        "token_metadata",
        tlv(19, AUTH + OTHER + borsh("USD Coin") + borsh("USDC") + borsh("https://x/y.json")
            + (2).to_bytes(4, "little") + borsh("k1") + borsh("v1") + borsh("") + borsh("\u2713")),
        {
            "update_authority": AUTH,
            "mint": OTHER,
            "name": "USD Coin",
            "symbol": "USDC",
            "uri": "https://x/y.json",
            "additional_metadata": [("k1", "v1"), ("", "\u2713")],
        },
        False,
    ),
    ("group_pointer", tlv(20, bytes(32) + OTHER), {"authority": None, "group_address": OTHER}, False),
    (
        "token_group",
        tlv(21, AUTH + OTHER + u64(3) + u64(10)),
        {"update_authority": AUTH, "mint": OTHER, "size": 3, "max_size": 10},
        False,
    ),
    ("group_member_pointer", tlv(22, AUTH + OTHER), {"authority": AUTH, "member_address": OTHER}, False),
    ("token_group_member", tlv(23, OTHER + AUTH + u64(7)), {"mint": OTHER, "group": AUTH, "member_number": 7}, False),
    ("confidential_mint_burn", tlv(24, bytes(196)), {}, True),
    (
        "scaled_ui_amount",
        tlv(25, AUTH + struct.pack("<dqd", 1.5, 1_800_000_000, 2.0)),
        {"authority": AUTH, "multiplier": 1.5, "new_multiplier_effective_timestamp": 1_800_000_000, "new_multiplier": 2.0},
        False,
    ),
    ("pausable", tlv(26, AUTH + b"\x00"), {"authority": AUTH, "paused": False}, True),
    ("pausable", tlv(26, bytes(32) + b"\x01"), {"authority": None, "paused": True}, True),
    ("pausable", tlv(26, bytes(33)), {"authority": None, "paused": False}, False),
    ("permissioned_burn", tlv(28, AUTH), {"authority": AUTH}, False),
]


@pytest.mark.parametrize("name, entry, fields, risky", EXTENSION_CASES)
def test_each_mint_extension(name, entry, fields, risky):
    parsed = parse_mint_account(T22, extended(entry))
    (extension,) = parsed.extensions
    assert extension.name == name
    assert extension.type_number == int.from_bytes(entry[:2], "little")
    assert dict(extension.fields) == fields
    assert (extension.risk is not None) is risky
    assert parsed.extension(name) is extension
    if risky:
        assert name in DANGEROUS_EXTENSIONS


def test_every_mint_extension_is_covered_and_the_numbers_are_the_programs():
    # ExtensionType declaration order in token-2022 interface/src/extension/mod.rs.
    declared = [
        "uninitialized", "transfer_fee_config", "transfer_fee_amount", "mint_close_authority",
        "confidential_transfer_mint", "confidential_transfer_account", "default_account_state",
        "immutable_owner", "memo_transfer", "non_transferable", "interest_bearing_config", "cpi_guard",
        "permanent_delegate", "non_transferable_account", "transfer_hook", "transfer_hook_account",
        "confidential_transfer_fee_config", "confidential_transfer_fee_amount", "metadata_pointer",
        "token_metadata", "group_pointer", "token_group", "group_member_pointer", "token_group_member",
        "confidential_mint_burn", "scaled_ui_amount", "pausable", "pausable_account", "permissioned_burn",
    ]
    assert {name for name, *_ in EXTENSION_CASES} == set(EXTENSION_NAMES)
    for name, entry, *_ in EXTENSION_CASES:
        assert declared.index(name) == int.from_bytes(entry[:2], "little"), name


def test_several_extensions_in_order_with_risks_and_json():
    data = extended(tlv(12, DELEGATE), tlv(18, AUTH + OTHER), tlv(6, b"\x02"))
    parsed = parse_mint_account(T22, data)
    assert parsed.extension_names == ("permanent_delegate", "metadata_pointer", "default_account_state")
    assert [e.name for e in parsed.risky_extensions] == ["permanent_delegate", "default_account_state"]
    as_json = parsed.to_dict()
    assert as_json["extensions"][0] == {
        "name": "permanent_delegate", "type": 12, "fields": {"delegate": encode_pubkey(DELEGATE)},
        "risk": f"permanent delegate {encode_pubkey(DELEGATE)} can transfer or burn the tokens of every account",
    }
    assert as_json["freeze_authority"] == encode_pubkey(FREEZE)
    assert as_json["notes"][0] == f"the issuer ({encode_pubkey(FREEZE)}) can freeze any account of this mint"


# -- the maintainers' client: @solana-program/token-2022 ---------------------------------------

CLIENT_VECTORS = json.loads((Path(__file__).parent / "vectors" / "token_2022" / "mints.json").read_text())["vectors"]


def _as_client_writes(value):
    """JSON as the generator writes it: keys base58, integers above 2**53 as text, pairs as lists."""
    if isinstance(value, dict):
        return {key: _as_client_writes(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_client_writes(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and value > 2**53 - 1:
        return str(value)
    return value


@pytest.mark.parametrize("vector", CLIENT_VECTORS, ids=[v["name"] for v in CLIENT_VECTORS])
def test_mints_encoded_by_the_token_2022_client(vector):
    """Bytes from getMintEncoder, values from getMintDecoder (tests/vectors/token_2022/generate_mints.mjs)."""
    parsed = parse_mint_account(T22, bytes.fromhex(vector["data_hex"])).to_dict()
    expected = vector["expected"]
    assert {key: parsed[key] for key in ("decimals", "supply", "mint_authority", "freeze_authority")} == {
        key: expected[key] for key in ("decimals", "supply", "mint_authority", "freeze_authority")
    }
    assert [
        {"name": extension["name"], "fields": _as_client_writes(extension["fields"])} for extension in parsed["extensions"]
    ] == expected["extensions"]


def test_the_client_vectors_cover_every_mint_extension():
    covered = {extension["name"] for vector in CLIENT_VECTORS for extension in vector["expected"]["extensions"]}
    assert covered == set(EXTENSION_NAMES)


def test_a_pyusd_like_mint_needs_three_flags():
    """Permanent delegate, a transfer hook authority and confidential transfers: each refused until named."""
    [vector] = [v for v in CLIENT_VECTORS if v["name"] == "pyusd_like"]
    parsed = parse_mint_account(T22, bytes.fromhex(vector["data_hex"]))
    assert [e.name for e in parsed.risky_extensions] == ["permanent_delegate", "transfer_hook", "confidential_transfer_mint"]
    allowed: list[str] = []
    for name in ("permanent-delegate", "transfer-hook", "confidential-transfer-mint"):
        with pytest.raises(MintNotAccepted, match=f"--allow-extension {name} to accept it"):
            check_registration(parsed, program="token-2022", decimals=6, allow_extensions=allowed)
        allowed.append(name)
    check_registration(parsed, program="token-2022", decimals=6, allow_extensions=allowed)


# -- strict failures --------------------------------------------------------------------------

FAILURES = [
    ("other owner", OTHER, base(), f"the account is owned by {encode_pubkey(OTHER)}, not by the Token or Token-2022 program"),
    ("short owner", b"x", base(), "the account owner must be 32 bytes"),
    ("token account", TOKEN_PROGRAM_ID, bytes(165), "the account is a token account (165 bytes), not a mint"),
    ("multisig", T22, bytes(355), "the account is a multisig (355 bytes), not a mint"),
    ("spl short", TOKEN_PROGRAM_ID, base()[:81], "a Token program mint is exactly 82 bytes, this account has 81"),
    ("spl long", TOKEN_PROGRAM_ID, extended(), "a Token program mint is exactly 82 bytes, this account has 166"),
    ("2022 between", T22, base() + bytes(20),
     "a Token-2022 mint is 82 bytes or more than 165 with extensions, this account has 102"),
    ("empty", T22, b"", "a Token-2022 mint is 82 bytes or more than 165 with extensions, this account has 0"),
    ("uninitialised", TOKEN_PROGRAM_ID, base(initialized=False), "the mint is not initialised"),
    ("uninitialised 2022", T22, extended(tlv(12, DELEGATE), mint=base(initialized=False)), "the mint is not initialised"),
    ("bool", TOKEN_PROGRAM_ID, base()[:45] + b"\x02" + base()[46:], "the mint: is_initialized byte is 2, neither 0 nor 1"),
    ("coption tag", TOKEN_PROGRAM_ID, b"\x02" + base()[1:], "the mint: mint authority option tag 02000000 is neither 0 nor 1"),
    ("freeze tag", T22, base()[:46] + b"\x00\x01\x00\x00" + base()[50:],
     "the mint: freeze authority option tag 00010000 is neither 0 nor 1"),
    ("padding", T22, base() + b"\x01" + bytes(82) + b"\x01", "the padding between the mint and its extensions is not zero"),
    ("account type 2", T22, base() + bytes(83) + b"\x02", "the account is a Token-2022 token account, not a mint"),
    ("account type 0", T22, base() + bytes(83) + b"\x00", "account type byte 0 is not 1 (mint)"),
    ("unknown type", T22, extended(tlv(29, b"")), "unknown extension type 29"),
    ("huge type", T22, extended(tlv(65535, b"")), "unknown extension type 65535"),
    ("account extension", T22, extended(tlv(7, b"")),
     "extension immutable_owner (type 7) belongs to token accounts, not mints"),
    ("duplicate", T22, extended(tlv(9, b""), tlv(9, b"")), "extension non_transferable appears twice"),
    ("length truncated", T22, extended(u16(12) + b"\x20"), "extension permanent_delegate: its length is truncated"),
    ("value truncated", T22, extended(u16(12) + u16(32) + DELEGATE[:31]),
     "extension permanent_delegate: length 32 runs past the end of the account (31 bytes left)"),
    ("wrong length", T22, extended(tlv(12, DELEGATE + b"\x00")), "extension permanent_delegate is 33 bytes, expected 32"),
    ("short fixed", T22, extended(tlv(26, bytes(32))), "extension pausable is 32 bytes, expected 33"),
    ("trailing", T22, extended(tlv(9, b""), tail=bytes(4) + b"\x01"), "non-zero bytes after the last extension"),
    ("odd trailing byte", T22, extended(tlv(9, b""), tail=b"\x05"), "non-zero bytes after the last extension"),
    ("fee bps", T22, extended(tlv(1, bytes(64) + u64(0) + fee(0, 0, 10_001) + fee(0, 0, 1))),
     "extension transfer_fee_config: a fee of 10001 basis points is above 10000"),
    ("default state 0", T22, extended(tlv(6, b"\x00")),
     "extension default_account_state: state 0 is neither 1 (initialized) nor 2 (frozen)"),
    ("paused bool", T22, extended(tlv(26, AUTH + b"\x07")), "extension pausable: paused byte is 7, neither 0 nor 1"),
    ("multiplier", T22, extended(tlv(25, AUTH + struct.pack("<dqd", 0.0, 0, 1.0)))
     , "extension scaled_ui_amount: multiplier 0.0 is not a positive finite number"),
    ("nan multiplier", T22, extended(tlv(25, AUTH + struct.pack("<dqd", 1.0, 0, float("nan")))),
     "extension scaled_ui_amount: new multiplier nan is not a positive finite number"),
    ("metadata leftover", T22, extended(tlv(19, AUTH + OTHER + borsh("a") + borsh("b") + borsh("c") + bytes(4) + b"\x00")),
     "extension token_metadata: 1 bytes left over"),
    ("metadata overrun", T22, extended(tlv(19, AUTH + OTHER + (1000).to_bytes(4, "little") + b"abc")),
     "extension token_metadata: name length 1000 runs past the extension"),
    ("metadata utf8", T22, extended(tlv(19, AUTH + OTHER + borsh("a") + borsh("b") + b"\x01\x00\x00\x00\xff" + bytes(4))),
     "extension token_metadata: uri is not valid UTF-8"),
    ("metadata count", T22, extended(tlv(19, AUTH + OTHER + borsh("a") + borsh("b") + borsh("c") + b"\xff\xff\xff\xff")),
     "extension token_metadata: 4294967295 additional metadata entries run past the extension"),
    ("metadata short", T22, extended(tlv(19, AUTH + OTHER[:10])), "extension token_metadata is truncated"),
]


@pytest.mark.parametrize("owner, data, message", [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_strict_failures(owner, data, message):
    with pytest.raises(InvalidMintAccount) as excinfo:
        parse_mint_account(owner, data)
    assert str(excinfo.value) == message
    assert "\n" not in message and excinfo.value.exit_code == 2


@settings(max_examples=400, deadline=None)
@given(owner=st.sampled_from([TOKEN_PROGRAM_ID, T22, OTHER]), data=st.binary(max_size=400))
def test_fuzz_random_bytes_raise_only_our_error(owner, data):
    try:
        parse_mint_account(owner, data)
    except InvalidMintAccount as exc:
        assert str(exc) and "\n" not in str(exc)


@settings(max_examples=600, deadline=None)
@given(
    types=st.lists(st.integers(min_value=0, max_value=31), max_size=4),
    lengths=st.lists(st.integers(min_value=0, max_value=200), min_size=4, max_size=4),
    payload=st.binary(min_size=0, max_size=600),
    tail=st.binary(max_size=3),
)
def test_fuzz_tlv_raise_only_our_error(types, lengths, payload, tail):
    """Well-formed prefix, TLV entries of random types and lengths: parsed or refused, nothing else."""
    entries, cursor = [], 0
    for type_number, length in zip(types, lengths):
        entries.append(u16(type_number) + u16(length) + payload[cursor : cursor + length])
        cursor += length
    try:
        parsed = parse_mint_account(T22, extended(*entries, tail=tail))
    except InvalidMintAccount as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert len({e.type_number for e in parsed.extensions}) == len(parsed.extensions)


# -- check_registration -----------------------------------------------------------------------


def test_registration_matches_or_takes_the_chains_values():
    parsed = parse_mint_account(TOKEN_PROGRAM_ID, base(decimals=6))
    check_registration(parsed, program="token", decimals=6, allow_extensions=())
    check_registration(parsed, program=None, decimals=None)


@pytest.mark.parametrize(
    "data, program, decimals, allow, message",
    [
        (base(decimals=6), "token-2022", 6, (), "the mint belongs to the token program, not token-2022"),
        (base(decimals=6), "token", 9, (), "the mint has 6 decimals on chain, not 9"),
        (base(), None, None, ("permanent-delegate",), "the mint has no permanent_delegate extension to allow"),
        (base(), None, None, ("shiny",), None),
    ],
    ids=["program", "decimals", "stale-allow", "unknown-name"],
)
def test_registration_mismatches(data, program, decimals, allow, message):
    parsed = parse_mint_account(TOKEN_PROGRAM_ID, data)
    with pytest.raises(MintNotAccepted) as excinfo:
        check_registration(parsed, program=program, decimals=decimals, allow_extensions=allow)
    if message is not None:
        assert str(excinfo.value) == message
    else:
        assert str(excinfo.value).startswith("unknown extension name 'shiny' (known: transfer_fee_config, ")


@pytest.mark.parametrize("name, entry, fields, risky", [c for c in EXTENSION_CASES if c[3]])
def test_a_risky_extension_is_refused_until_named(name, entry, fields, risky):
    parsed = parse_mint_account(T22, extended(entry, tlv(18, AUTH + OTHER)))
    with pytest.raises(MintNotAccepted) as excinfo:
        check_registration(parsed, program="token-2022", decimals=7, allow_extensions=())
    flag = name.replace("_", "-")
    assert str(excinfo.value) == (
        f"refused: {parsed.extensions[0].risk} ({name}); pass --allow-extension {flag} to accept it"
    )
    check_registration(parsed, program="token-2022", decimals=7, allow_extensions=[flag])
    check_registration(parsed, program="token-2022", decimals=7, allow_extensions=[name.upper()])


def test_benign_extensions_and_a_freeze_authority_need_no_flag():
    benign = [entry for name, entry, fields, risky in EXTENSION_CASES if not risky and name != "permanent_delegate"
              and name not in ("transfer_hook", "pausable", "default_account_state")]
    parsed = parse_mint_account(T22, extended(*benign))
    assert parsed.freeze_authority == FREEZE and parsed.risky_extensions == ()
    check_registration(parsed, program="token-2022", decimals=7)
    assert any("fee of 10000 basis points" in note for note in parsed.notes())
