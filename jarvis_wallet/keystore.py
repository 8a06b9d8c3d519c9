"""The encrypted keystore: the signer's seed at rest under a passphrase.

A keystore is one JSON object (docs/operations.md gives the format)::

    {
      "format": "jarvis-wallet-keystore",
      "version": 1,
      "public_key": "<base58 address, in clear>",
      "kdf": {"name": "argon2id", "opslimit": 3, "memlimit": 268435456, "salt": "<base64, 16 bytes>"},
      "cipher": {"name": "xchacha20poly1305-ietf", "nonce": "<base64, 24 bytes>",
                 "ciphertext": "<base64: the 32-byte seed encrypted, with its 16-byte tag>"}
    }

The key is argon2id (libsodium's ``crypto_pwhash``, through PyNaCl) of the passphrase with a
random salt and the stored limits; the seed is sealed with XChaCha20-Poly1305 under a random
nonce, and everything else in the file (format, version, public key, KDF name, limits and
salt, cipher name) is the associated data: changing any byte of any field makes decryption
fail, as a wrong passphrase does. The two cannot be told apart, so both get one error. After
decryption the public key derived from the seed must equal the one in clear.

Limits read from a file are bounded (a crafted keystore must not make the signer allocate
gigabytes). Nothing here writes or returns the plaintext seed except ``decrypt_keystore``,
whose result is a ``Keypair`` (unprintable, unpicklable).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass

from .errors import KeyMaterialError
from .keys import SEED_LENGTH, Keypair, _read_private_file, _write_private_file

KEYSTORE_FORMAT = "jarvis-wallet-keystore"
KEYSTORE_VERSION = 1
KDF_NAME = "argon2id"
CIPHER_NAME = "xchacha20poly1305-ietf"
SALT_BYTES = 16
NONCE_BYTES = 24
TAG_BYTES = 16

#: Named strengths, as libsodium names its argon2id limits: (opslimit, memlimit in bytes).
KDF_STRENGTHS = {
    "interactive": (2, 64 * 1024 * 1024),
    "moderate": (3, 256 * 1024 * 1024),
    "sensitive": (4, 1024 * 1024 * 1024),
}
DEFAULT_KDF_STRENGTH = "moderate"
# What a keystore may ask of the machine: libsodium's own minimums, and the "sensitive" maxima.
MIN_OPSLIMIT, MAX_OPSLIMIT = 1, 4
MIN_MEMLIMIT, MAX_MEMLIMIT = 8 * 1024, 1024 * 1024 * 1024
# A passphrase is typed or read from a credential; longer is not a passphrase.
MAX_PASSPHRASE_BYTES = 4096


class Passphrase:
    """A passphrase in one bytearray that ``wipe()`` zeroes; never shown."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes | bytearray | str) -> None:
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not value:
            raise KeyMaterialError("the passphrase is empty")
        if len(value) > MAX_PASSPHRASE_BYTES:
            raise KeyMaterialError(f"the passphrase is longer than {MAX_PASSPHRASE_BYTES} bytes")
        self._value = bytearray(value)

    def wipe(self) -> None:
        for index in range(len(self._value)):
            self._value[index] = 0

    def _bytes(self) -> bytes:
        return bytes(self._value)

    def __repr__(self) -> str:
        return "Passphrase(<hidden>)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("Passphrase cannot be pickled or copied")

    __reduce_ex__ = lambda self, protocol: self.__reduce__()  # noqa: E731


@dataclass(frozen=True)
class KeystoreHeader:
    """The keystore's public fields, as read from the file."""

    public_key: str
    opslimit: int
    memlimit: int
    salt: bytes
    nonce: bytes
    ciphertext: bytes

    def associated_data(self) -> bytes:
        """Every field but the nonce and ciphertext, canonically: what the tag also covers."""
        return json.dumps(
            {
                "format": KEYSTORE_FORMAT,
                "version": KEYSTORE_VERSION,
                "public_key": self.public_key,
                "kdf": {"name": KDF_NAME, "opslimit": self.opslimit, "memlimit": self.memlimit,
                        "salt": _b64(self.salt)},
                "cipher": {"name": CIPHER_NAME},
            },
            sort_keys=True, separators=(",", ":"),
        ).encode("ascii")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _derive_key(passphrase: Passphrase, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    from nacl import pwhash

    return pwhash.argon2id.kdf(32, passphrase._bytes(), salt, opslimit=opslimit, memlimit=memlimit)


def encrypt_keypair(keypair: Keypair, passphrase: Passphrase, *, strength: str = DEFAULT_KDF_STRENGTH) -> bytes:
    """The keystore file body for ``keypair`` under ``passphrase``."""
    from nacl import bindings

    if strength not in KDF_STRENGTHS:
        raise KeyMaterialError(f"unknown KDF strength {strength!r}; one of {', '.join(KDF_STRENGTHS)}")
    opslimit, memlimit = KDF_STRENGTHS[strength]
    header = KeystoreHeader(
        public_key=keypair.public_key_base58, opslimit=opslimit, memlimit=memlimit,
        salt=os.urandom(SALT_BYTES), nonce=os.urandom(NONCE_BYTES), ciphertext=b"",
    )
    key = _derive_key(passphrase, header.salt, opslimit, memlimit)
    ciphertext = bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        keypair._seed_bytes(), header.associated_data(), header.nonce, key
    )
    document = {
        "format": KEYSTORE_FORMAT,
        "version": KEYSTORE_VERSION,
        "public_key": header.public_key,
        "kdf": {"name": KDF_NAME, "opslimit": opslimit, "memlimit": memlimit, "salt": _b64(header.salt)},
        "cipher": {"name": CIPHER_NAME, "nonce": _b64(header.nonce), "ciphertext": _b64(ciphertext)},
    }
    return (json.dumps(document, indent=2) + "\n").encode("ascii")


def parse_keystore(data: bytes, *, source: str) -> KeystoreHeader:
    """Read a keystore's fields strictly; KeyMaterialError naming ``source`` otherwise."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        document = None
    if not isinstance(document, dict) or document.get("format") != KEYSTORE_FORMAT:
        raise KeyMaterialError(f"{source} is not a jarvis-wallet keystore")
    version = document.get("version")
    if version != KEYSTORE_VERSION or type(version) is not int:
        raise KeyMaterialError(
            f"{source} is keystore version {version!r}; this jarvis-wallet reads version {KEYSTORE_VERSION}"
        )
    kdf, cipher = document.get("kdf"), document.get("cipher")
    if set(document) != {"format", "version", "public_key", "kdf", "cipher"} or not isinstance(kdf, dict) \
            or not isinstance(cipher, dict) or set(kdf) != {"name", "opslimit", "memlimit", "salt"} \
            or set(cipher) != {"name", "nonce", "ciphertext"}:
        raise KeyMaterialError(f"{source}: unexpected or missing fields")
    if kdf["name"] != KDF_NAME or cipher["name"] != CIPHER_NAME:
        raise KeyMaterialError(f"{source}: unsupported KDF or cipher ({kdf['name']!r}, {cipher['name']!r})")
    opslimit, memlimit = kdf["opslimit"], kdf["memlimit"]
    if type(opslimit) is not int or not MIN_OPSLIMIT <= opslimit <= MAX_OPSLIMIT:
        raise KeyMaterialError(f"{source}: opslimit must be an integer {MIN_OPSLIMIT} to {MAX_OPSLIMIT}")
    if type(memlimit) is not int or not MIN_MEMLIMIT <= memlimit <= MAX_MEMLIMIT:
        raise KeyMaterialError(f"{source}: memlimit must be an integer {MIN_MEMLIMIT} to {MAX_MEMLIMIT}")
    public_key = document["public_key"]
    if not isinstance(public_key, str) or not 32 <= len(public_key) <= 44:
        raise KeyMaterialError(f"{source}: public_key is not a base58 address")
    salt = _field_bytes(kdf["salt"], SALT_BYTES, "salt", source)
    nonce = _field_bytes(cipher["nonce"], NONCE_BYTES, "nonce", source)
    ciphertext = _field_bytes(cipher["ciphertext"], SEED_LENGTH + TAG_BYTES, "ciphertext", source)
    return KeystoreHeader(public_key, opslimit, memlimit, salt, nonce, ciphertext)


def _field_bytes(value, length: int, name: str, source: str) -> bytes:
    raw = None
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raw = None
    if raw is None or len(raw) != length or _b64(raw) != value:
        raise KeyMaterialError(f"{source}: {name} is not canonical base64 of {length} bytes")
    return raw


def decrypt_keystore(header: KeystoreHeader, passphrase: Passphrase, *, source: str) -> Keypair:
    """The keypair sealed in ``header``; one error for a wrong passphrase or an altered file."""
    from nacl import bindings
    from nacl.exceptions import CryptoError

    key = _derive_key(passphrase, header.salt, header.opslimit, header.memlimit)
    try:
        seed = bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            header.ciphertext, header.associated_data(), header.nonce, key
        )
    except CryptoError:
        seed = None
    if seed is None:
        raise KeyMaterialError(f"cannot decrypt {source}: wrong passphrase (or the keystore was altered)")
    keypair = Keypair.from_seed(seed)
    del seed
    if keypair.public_key_base58 != header.public_key:
        raise KeyMaterialError(f"{source}: the public key in clear does not match the sealed key")
    return keypair


def is_keystore(data: bytes) -> bool:
    """Whether a file's bytes look like a keystore (not a solana-keygen or base58 key)."""
    return data.lstrip()[:1] == b"{" and KEYSTORE_FORMAT.encode() in data


def read_keystore_file(path) -> KeystoreHeader:
    """A keystore file's fields, after the same file checks as a keypair file (0600, bounded)."""
    path = os.fspath(path)
    data = _read_private_file(path, what="keystore")
    return parse_keystore(data, source=f"keystore {path}")


def load_keystore(path, passphrase: Passphrase) -> Keypair:
    """Decrypt a keystore file."""
    return decrypt_keystore(read_keystore_file(path), passphrase, source=f"keystore {os.fspath(path)}")


def write_keystore(path, keypair: Keypair, passphrase: Passphrase, *, strength: str = DEFAULT_KDF_STRENGTH,
                   force: bool = False) -> None:
    """Write a new 0600 keystore file (replaced in one rename with ``force``)."""
    _write_private_file(os.fspath(path), encrypt_keypair(keypair, passphrase, strength=strength), force=force,
                        what="keystore")


def encrypt_keypair_file(source, destination, passphrase: Passphrase, *, strength: str = DEFAULT_KDF_STRENGTH,
                         force: bool = False) -> Keypair:
    """Read a plaintext keypair file and write it as a keystore; the plaintext file is left as is."""
    from .keys import load_keypair_file

    keypair = load_keypair_file(source)
    write_keystore(destination, keypair, passphrase, strength=strength, force=force)
    return keypair


def decrypt_keystore_file(source, destination, passphrase: Passphrase, *, force: bool = False) -> Keypair:
    """Decrypt a keystore and write the key as a solana-keygen JSON file (0600)."""
    keypair = load_keystore(source, passphrase)
    _write_private_file(os.fspath(destination), keypair._keypair_file_bytes(), force=force, what="keypair file")
    return keypair


def read_keystore_if_any(path) -> KeystoreHeader | None:
    """A keystore file's fields, or None when ``path`` is a plaintext keypair file (same checks)."""
    path = os.fspath(path)
    data = _read_private_file(path, what="keypair file")
    if not is_keystore(data):
        return None
    return parse_keystore(data, source=f"keystore {path}")


def unlocker(header: KeystoreHeader, *, source: str):
    """``unlock(passphrase text) -> Keypair`` for the signer: decrypts ``header`` each time and
    wipes the passphrase's bytes after; the signer keeps the ciphertext, never the passphrase."""

    def unlock(text: str) -> Keypair:
        passphrase = Passphrase(text)
        try:
            return decrypt_keystore(header, passphrase, source=source)
        finally:
            passphrase.wipe()

    return unlock
