"""Program-derived addresses, offline: the on-curve test and the bump search.

An address is a valid PDA only if it is *not* an Ed25519 point. The test is
curve25519-dalek's ``CompressedEdwardsY::decompress().is_some()``, which is
what the Solana runtime uses: y is read from the low 255 bits (a value >= p is
accepted and reduced), the sign bit is ignored, and the point exists iff
x^2 = (y^2 - 1) / (d*y^2 + 1) has a square root mod p. Small-order and
non-canonical encodings count as on the curve (libsodium's stricter check would
disagree, so it is not used here).
"""

from __future__ import annotations

import hashlib

from ..errors import InvalidTransaction

_P = 2**255 - 19
_D = (-121665 * pow(121666, -1, _P)) % _P
_PDA_MARKER = b"ProgramDerivedAddress"
MAX_SEEDS = 16
MAX_SEED_LENGTH = 32


def is_on_curve(key: bytes) -> bool:
    """True iff the 32 bytes decompress to an Ed25519 point (dalek semantics)."""
    if len(key) != 32:
        raise ValueError("an Ed25519 point is 32 bytes")
    y = (int.from_bytes(key, "little") & ((1 << 255) - 1)) % _P
    y2 = y * y % _P
    u = (y2 - 1) % _P
    v = (_D * y2 + 1) % _P  # never 0: -1/d is not a square mod p
    x2 = u * pow(v, _P - 2, _P) % _P
    # Euler's criterion: x2 is a square (or zero) iff x2^((p-1)/2) is 0 or 1.
    return pow(x2, (_P - 1) // 2, _P) in (0, 1)


def create_program_address(seeds: list[bytes] | tuple[bytes, ...], program_id: bytes) -> bytes | None:
    """The address for exactly these seeds, or None when it falls on the curve."""
    if len(seeds) > MAX_SEEDS:
        raise InvalidTransaction(f"at most {MAX_SEEDS} seeds, got {len(seeds)}")
    digest = hashlib.sha256()
    for seed in seeds:
        if len(seed) > MAX_SEED_LENGTH:
            raise InvalidTransaction(f"a seed is at most {MAX_SEED_LENGTH} bytes, got {len(seed)}")
        digest.update(seed)
    digest.update(program_id)
    digest.update(_PDA_MARKER)
    address = digest.digest()
    return None if is_on_curve(address) else address


def find_program_address(seeds: list[bytes] | tuple[bytes, ...], program_id: bytes) -> tuple[bytes, int]:
    """The first off-curve address trying bump seeds 255 down to 0, and its bump."""
    if len(seeds) > MAX_SEEDS - 1:  # the bump is a seed too
        raise InvalidTransaction(f"at most {MAX_SEEDS - 1} seeds besides the bump, got {len(seeds)}")
    for bump in range(255, -1, -1):
        address = create_program_address([*seeds, bytes([bump])], program_id)
        if address is not None:
            return address, bump
    raise InvalidTransaction("no bump seed gives an address off the curve")  # ~2^-256
