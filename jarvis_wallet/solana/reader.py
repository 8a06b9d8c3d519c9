"""The strict little-endian reader every program decoder shares.

It reads fixed-width integers, keys, strings and the option encodings the
on-chain programs use, and raises InvalidTransaction on truncation, on an
option tag other than 0/1, on invalid UTF-8 and (``finish``) on trailing bytes.
"""

from __future__ import annotations

import math
import struct

from ..errors import InvalidTransaction

PUBKEY_BYTES = 32


class DataReader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.offset = 0
        self.what = what

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset

    def take(self, count: int) -> bytes:
        end = self.offset + count
        if end > len(self.data):
            raise InvalidTransaction(f"{self.what}: instruction data is too short ({len(self.data)} bytes)")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def rest(self) -> bytes:
        return self.take(self.remaining)

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def i16(self) -> int:
        return int.from_bytes(self.take(2), "little", signed=True)

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")

    def i64(self) -> int:
        return int.from_bytes(self.take(8), "little", signed=True)

    def f64(self) -> float:
        value = struct.unpack("<d", self.take(8))[0]
        if not math.isfinite(value):
            raise InvalidTransaction(f"{self.what}: a number in the instruction data is not finite")
        return value

    def pubkey(self) -> bytes:
        return self.take(PUBKEY_BYTES)

    def boolean(self) -> bool:
        value = self.u8()
        if value > 1:
            raise InvalidTransaction(f"{self.what}: boolean byte {value} is neither 0 nor 1")
        return bool(value)

    def option_tag(self) -> bool:
        tag = self.u8()
        if tag > 1:
            raise InvalidTransaction(f"{self.what}: option tag {tag} is neither 0 nor 1")
        return tag == 1

    def coption_pubkey(self) -> bytes | None:
        """SPL Token's COption<Pubkey>: tag 0, or tag 1 and the key."""
        return self.pubkey() if self.option_tag() else None

    def coption_u64(self) -> int | None:
        return self.u64() if self.option_tag() else None

    def borsh_option_u64(self) -> int | None:
        return self.u64() if self.option_tag() else None

    def maybe_null_pubkey(self) -> bytes | None:
        """Token-2022's pod option: all-zero bytes mean none."""
        key = self.pubkey()
        return None if key == bytes(PUBKEY_BYTES) else key

    def _utf8(self, raw: bytes, name: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidTransaction(f"{self.what}: {name} is not valid UTF-8") from None

    def string(self) -> str:
        """bincode string: u64 length, then UTF-8."""
        length = self.u64()
        if length > self.remaining:
            raise InvalidTransaction(f"{self.what}: seed length {length} runs past the instruction data")
        return self._utf8(self.take(length), "seed")

    def borsh_string(self, name: str = "text") -> str:
        """borsh string: u32 length, then UTF-8."""
        length = self.u32()
        if length > self.remaining:
            raise InvalidTransaction(f"{self.what}: {name} length {length} runs past the instruction data")
        return self._utf8(self.take(length), name)

    def utf8_rest(self, name: str = "text") -> str:
        return self._utf8(self.rest(), name)

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise InvalidTransaction(
                f"{self.what}: {len(self.data) - self.offset} unexpected bytes after the instruction data"
            )
