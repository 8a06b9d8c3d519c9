"""Token instruction data for the parser campaign, and the oracles it is checked against.

``token_data`` makes plausible SPL Token, Token-2022 and ATA instruction data (every tag and
sub-instruction, fields mostly in range, one byte short or long now and then).
``check_token`` looks at every token instruction the decoder accepted:

* SPL Token base instructions that solana-py's layout (``spl.token._layouts``, an independent
  reading of the same format) knows must parse there to the same fields and rebuild to
  exactly the input (the full-width "none" written for a COption key counts as the same);
* every accepted instruction of fixed length must be refused with one byte more or one byte
  less (the decoder never reads a prefix and ignores the rest).
"""

from __future__ import annotations

import random
import struct

from construct import ConstructError
from spl.token._layouts import INSTRUCTIONS_LAYOUT

from jarvis_wallet.errors import InvalidTransaction
from jarvis_wallet.solana.associated_token import ASSOCIATED_TOKEN_PROGRAM_ID
from jarvis_wallet.solana.token import AUTHORITY_TYPES, TOKEN_PROGRAM_ID
from jarvis_wallet.solana.token_2022 import TOKEN_2022_PROGRAM_ID

TOKEN_PROGRAMS = (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID, ASSOCIATED_TOKEN_PROGRAM_ID)

# Kinds whose data may legitimately grow or shrink by one byte.
VARIABLE_KINDS = {"ui_amount_to_amount", "get_account_data_size", "reallocate", "create", "create_idempotent",
                  "recover_nested", "token_metadata_initialize", "token_metadata_update_field",
                  "token_metadata_remove_key"}  # fmt: skip


def _key(rng: random.Random) -> bytes:
    return rng.choice([rng.randbytes(32), bytes(32), bytes([1]) * 32])


def _coption_key(rng: random.Random, last: bool = False) -> bytes:
    choices = [b"\x01" + _key(rng), b"\x00"]
    if last:
        choices.append(b"\x00" + bytes(32))  # "none" at full width, as solana-py writes it
    return rng.choice(choices + [bytes([rng.randrange(256)])])


def _u64(rng: random.Random) -> bytes:
    return rng.choice([0, 1, 10**6, 2**64 - 1, rng.randrange(2**64)]).to_bytes(8, "little")


def _text(rng: random.Random) -> bytes:
    return rng.choice([b"", b"1.5", "\u00e9".encode(), b"\xff", rng.randbytes(rng.randrange(6))])


def _borsh(rng: random.Random) -> bytes:
    text = _text(rng)
    return len(text).to_bytes(4, "little") + text


def _base(rng: random.Random, tag: int, token_2022: bool) -> bytes:
    r = rng
    payloads = {
        0: lambda: bytes([r.randrange(20)]) + _key(r) + _coption_key(r, last=True),
        2: lambda: bytes([r.randrange(13)]),
        6: lambda: bytes([r.randrange(20 if token_2022 else 5)]) + _coption_key(r, last=True),
        16: lambda: _key(r),
        18: lambda: _key(r),
        19: lambda: bytes([r.randrange(13)]),
        20: lambda: bytes([r.randrange(20)]) + _key(r) + _coption_key(r, last=True),
        21: lambda: b"".join(r.randrange(31).to_bytes(2, "little") for _ in range(r.randrange(4))) if token_2022 else b"",
        24: lambda: _text(r),
        25: lambda: _coption_key(r, last=True),
        29: lambda: b"".join(r.randrange(31).to_bytes(2, "little") for _ in range(r.randrange(4))),
        35: lambda: _key(r),
        45: lambda: r.choice([b"\x00", b"\x01" + _u64(r)]),
    }
    if tag in (3, 4, 7, 8, 23):
        return bytes([tag]) + _u64(rng)
    if tag in (12, 13, 14, 15):
        return bytes([tag]) + _u64(rng) + bytes([rng.randrange(20)])
    return bytes([tag]) + payloads.get(tag, lambda: b"")()


# (family, sub) -> payload maker, after the Token-2022 extension sources (see token_2022.py).
def _extension(rng: random.Random, family: int, sub: int) -> bytes:
    r = rng
    fixed = {
        (26, 0): lambda: _coption_key(r) + _coption_key(r) + r.randbytes(2) + _u64(r),
        (26, 1): lambda: _u64(r) + bytes([r.randrange(20)]) + _u64(r),
        (26, 3): lambda: bytes([r.randrange(4)]),
        (26, 5): lambda: r.randbytes(2) + _u64(r),
        (28, 0): lambda: bytes([r.randrange(4)]),
        (28, 1): lambda: bytes([r.randrange(4)]),
        (33, 0): lambda: _key(r) + r.randbytes(2),
        (33, 1): lambda: r.randbytes(2),
        (36, 0): lambda: _key(r) + _key(r),
        (36, 1): lambda: _key(r),
        (43, 0): lambda: _key(r) + struct.pack("<d", r.choice([1.0, 0.5, float("nan"), r.random()])),
        (43, 1): lambda: struct.pack("<d", r.choice([2.0, float("inf"), r.random()])) + r.randbytes(8),
        (44, 0): lambda: _key(r),
        (46, 0): lambda: _key(r),
        (46, 1): lambda: _u64(r),
        (46, 2): lambda: _u64(r) + bytes([r.randrange(20)]),
    }
    for family_pointer in (39, 40, 41):
        fixed[(family_pointer, 0)] = lambda: _key(r) + _key(r)
        fixed[(family_pointer, 1)] = lambda: _key(r)
    confidential = {27: [65, 33, 45, 0, 1, 9, 47, 167, 44, 0, 0, 0, 0, 169, 0], 37: [64, 37, 38, 0, 0, 0],
                    42: [68, 33, 36, 167, 167, 0]}  # fmt: skip
    if family in confidential and sub < len(confidential[family]):
        return bytes([family, sub]) + rng.randbytes(confidential[family][sub])
    if (family, sub) == (46, 3):
        return bytes([46, 3]) + rng.randbytes(167)
    return bytes([family, sub]) + fixed.get((family, sub), lambda: b"")()


_FAMILIES = {26: 6, 27: 15, 28: 2, 30: 2, 33: 2, 34: 2, 36: 2, 37: 6, 39: 2, 40: 2, 41: 2, 42: 6, 43: 2, 44: 3, 46: 4}
_INTERFACE = {
    "d2e11ea258b84d8d": lambda r: _borsh(r) + _borsh(r) + _borsh(r),
    "dde9312db5cadcc8": lambda r: bytes([r.randrange(5)]) + (_borsh(r) if r.random() < 0.3 else b"") + _borsh(r),
    "ea122038598d25b5": lambda r: bytes([r.randrange(3)]) + _borsh(r),
    "d7e4a6e45464567b": lambda r: _key(r),
    "faa6b4fa0d0cb846": lambda r: r.choice([b"\x00", b"\x01" + _u64(r)]) + r.choice([b"\x00", b"\x01" + _u64(r)]),
    "79716c2736330004": lambda r: _key(r) + _u64(r),
    "6c25ab8ff81e126e": lambda r: _u64(r),
    "a1695801edddd8cb": lambda r: _key(r),
    "9820deb0dfed7486": lambda r: b"",
}


def token_data(rng: random.Random, program: bytes) -> bytes:
    """Plausible data for ``program`` (one of TOKEN_PROGRAMS), sometimes one byte off."""
    if program == ASSOCIATED_TOKEN_PROGRAM_ID:
        data = rng.choice([b"", b"\x00", b"\x01", b"\x02", bytes([rng.randrange(256)])])
    elif program == TOKEN_PROGRAM_ID:
        data = _base(rng, rng.choice([*range(25), 38, 45, 255, rng.randrange(256)]), token_2022=False)
    else:
        roll = rng.random()
        if roll < 0.45:
            data = _base(rng, rng.choice([*range(26), 29, 31, 32, 35, 38, 45, 255]), token_2022=True)
        elif roll < 0.9:
            family = rng.choice(list(_FAMILIES))
            data = _extension(rng, family, rng.randrange(_FAMILIES[family] + 1))
        else:
            discriminator = rng.choice(list(_INTERFACE))
            data = bytes.fromhex(discriminator) + _INTERFACE[discriminator](rng)
    roll = rng.random()
    if roll < 0.08 and data:
        return data[:-1]
    if roll < 0.16:
        return data + bytes([rng.randrange(256)])
    return data


# -- oracles ------------------------------------------------------------------------------------

_LAYOUT_TAGS = set(range(25))  # spl.token._layouts knows SPL Token's tags 0-24
# Tags ending in a COption key, and the length of their data when it is "none" in one byte.
_CANONICAL_NONE_LENGTH = {0: 35, 20: 35, 6: 3}


def _solana_py_reading(data: bytes) -> dict | None:
    """solana-py's fields for SPL Token data, or None when its layout does not read it exactly."""
    padded = data
    if len(data) == _CANONICAL_NONE_LENGTH.get(data[0]) and data[-1:] == b"\x00":
        padded = data + bytes(32)  # the canonical "none" form; solana-py's layout is full width
    try:
        parsed = INSTRUCTIONS_LAYOUT.parse(padded)
        if INSTRUCTIONS_LAYOUT.build(parsed) != padded:
            return None
    except (ConstructError, ValueError, TypeError):
        return None
    args = parsed.args or {}
    fields = {name: value for name, value in dict(args).items() if not name.startswith("_")}
    if "freeze_authority_option" in fields:
        option = fields.pop("freeze_authority_option")
        fields["freeze_authority"] = fields["freeze_authority"] if option == 1 else None
        if option > 1 or (option == 0 and any(args["freeze_authority"])):
            return None
    if "new_authority_option" in fields:
        option = fields.pop("new_authority_option")
        fields["new_authority"] = fields["new_authority"] if option == 1 else None
        if option > 1 or (option == 0 and any(args["new_authority"])):
            return None
        fields["authority_type"] = AUTHORITY_TYPES[fields["authority_type"]] if fields["authority_type"] < 4 else None
    if "ui_amount" in fields:
        try:
            fields["ui_amount"] = fields["ui_amount"].decode("utf-8")
        except UnicodeDecodeError:
            return None
    return fields


def check_token(decoded, decode) -> list[tuple[str, str]]:
    """Violations (kind, detail) for one decoded token instruction; ``decode(data)`` re-decodes."""
    violations = []
    data = decoded.data
    if decoded.program == "token" and data and data[0] in _LAYOUT_TAGS:
        theirs = _solana_py_reading(data)
        if theirs is None:
            violations.append(("token_accepted_what_solana_py_refuses", f"{decoded.kind} {data.hex()}"))
        elif theirs != dict(decoded.fields):
            violations.append(("token_fields_differ", f"{decoded.kind}: ours {dict(decoded.fields)} theirs {theirs}"))
    if decoded.kind not in VARIABLE_KINDS:
        for other in (data[:-1], data + b"\x00", data + b"\x01"):
            if other == data:
                continue
            try:
                decode(other)
            except InvalidTransaction:
                continue
            violations.append(("token_length_not_strict", f"{decoded.kind} accepts {other.hex()}"))
    return violations
