"""Program-derived and associated token addresses against solders (curve25519-dalek)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_core_ed25519_is_valid_point
from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address

from jarvis_wallet.errors import InvalidTransaction
from jarvis_wallet.solana.associated_token import ASSOCIATED_TOKEN_PROGRAM_ID, associated_token_address
from jarvis_wallet.solana.pda import create_program_address, find_program_address, is_on_curve
from jarvis_wallet.solana.token import TOKEN_PROGRAM_ID
from jarvis_wallet.solana.token_2022 import TOKEN_2022_PROGRAM_ID

keys = st.binary(min_size=32, max_size=32)
seeds = st.lists(st.binary(max_size=32), max_size=15)
_P = 2**255 - 19


def _le(value: int) -> bytes:
    return value.to_bytes(32, "little")


# Encodings where libsodium's crypto_core_ed25519_is_valid_point and dalek's decompress
# disagree: small-order points, y >= p (non-canonical), and x = 0 with the sign bit set.
# Solana uses dalek, so all of these are "on the curve" and can never be PDAs.
DALEK_ONLY_POINTS = [
    _le(1),  # identity, small order
    _le(_P - 1),  # (0, -1), order 2
    _le(0),  # (±sqrt(-1), 0), order 4
    _le(_P + 1),  # y = 1 written non-canonically
    _le(_P),  # y = 0 written non-canonically
    _le(1 | 1 << 255),  # identity with the sign bit set (x = 0, "negative")
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),  # order 8
]


@pytest.mark.parametrize("point", DALEK_ONLY_POINTS, ids=lambda p: p.hex()[:8])
def test_small_order_and_non_canonical_points_are_on_the_curve(point):
    assert Pubkey(point).is_on_curve()
    assert is_on_curve(point)
    assert not crypto_core_ed25519_is_valid_point(point)  # why libsodium's check would be wrong


def test_a_known_off_curve_value():
    # y = 2: (4 - 1) / (4d + 1) is not a square mod p.
    assert not Pubkey(_le(2)).is_on_curve()
    assert not is_on_curve(_le(2))


@settings(max_examples=500, deadline=None)
@given(keys)
def test_on_curve_matches_dalek(key):
    assert is_on_curve(key) == Pubkey(key).is_on_curve()


@settings(max_examples=150, deadline=None)
@given(seeds, keys)
def test_find_program_address_matches_solders(seed_list, program):
    expected, bump = Pubkey.find_program_address(seed_list, Pubkey(program))
    assert find_program_address(seed_list, program) == (bytes(expected), bump)


def test_bump_search_skips_on_curve_candidates():
    # Half of all hashes are on the curve; a wrong check would pick bump 255 here.
    program = bytes(range(32))
    found = [find_program_address([bytes([i])], program) for i in range(40)]
    assert any(bump < 255 for _, bump in found)
    for i, (address, bump) in enumerate(found):
        assert (Pubkey(address), bump) == Pubkey.find_program_address([bytes([i])], Pubkey(program))
        for skipped in range(bump + 1, 256):
            assert create_program_address([bytes([i]), bytes([skipped])], program) is None


def test_seed_limits_are_enforced():
    with pytest.raises(InvalidTransaction, match="at most 32 bytes"):
        find_program_address([bytes(33)], bytes(32))
    with pytest.raises(InvalidTransaction, match="at most 15 seeds"):
        find_program_address([b""] * 16, bytes(32))


@settings(max_examples=150, deadline=None)
@given(keys, keys, st.sampled_from([TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID]))
def test_associated_token_address_matches_solders(owner, mint, token_program):
    expected = get_associated_token_address(Pubkey(owner), Pubkey(mint), Pubkey(token_program))
    assert associated_token_address(owner, mint, token_program) == bytes(expected)


def test_associated_token_program_id():
    assert str(Pubkey(ASSOCIATED_TOKEN_PROGRAM_ID)) == "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"


def test_derivation_is_exported_from_the_package():
    import jarvis_wallet.solana as solana

    assert solana.associated_token_address is associated_token_address
    assert solana.find_program_address is find_program_address
    assert {"TOKEN_PROGRAM_ID", "TOKEN_2022_PROGRAM_ID", "ASSOCIATED_TOKEN_PROGRAM_ID"} <= set(solana.__all__)
