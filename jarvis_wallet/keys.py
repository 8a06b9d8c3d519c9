"""Key material: the signer's Ed25519 keypair and the HMAC shared secret.

Everything secret that jarvis-wallet reads or writes goes through this module, so the rules live
in one place:

* Secret bytes never appear in ``repr``, ``str``, error messages or exception chains. Parse errors
  from ``json`` and ``base58`` quote the input (``JSONDecodeError.doc`` holds the whole document),
  so they are caught and a fresh ``KeyMaterialError`` is raised *outside* the ``except`` block:
  the foreign exception is not even reachable through ``__context__``.
* Files holding secrets are refused, the way ``ssh`` refuses them, when group or others may read
  or write them, and are created with mode 0600 from the first instant (``O_CREAT | O_EXCL``).
* ``Keypair`` and ``SharedSecret`` refuse to be pickled, so they cannot cross a
  ``multiprocessing`` pipe or land in a cache by accident.

Accepted keypair encodings (from a file or from ``SOLANA_PRIVATE_KEY``):

* a JSON array of 64 integers 0..255: the 32-byte seed then the 32-byte public key
  (``solana-keygen`` format);
* base58 text of those same 64 bytes (the "export private key" format of wallets);
* a JSON array of 32 integers, or base58 text of 32 bytes: the seed alone.

When the public half is present it must equal the key derived from the seed.

The shared secret is a ``SharedSecret`` (not bare ``bytes``) so that a stray ``print`` or log
line shows ``SharedSecret(<64 bytes hidden>)``; ``.value`` gives the bytes to key the HMAC.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import stat
from hmac import compare_digest
from typing import NoReturn

from .b58 import b58decode, b58encode
from .errors import KeyMaterialError

SEED_LENGTH = 32
PUBLIC_KEY_LENGTH = 32
SECRET_KEY_LENGTH = SEED_LENGTH + PUBLIC_KEY_LENGTH
SIGNATURE_LENGTH = 64

MIN_SHARED_SECRET_BYTES = 32
GENERATED_SHARED_SECRET_BYTES = 32  # written as 64 hex characters

KEYPAIR_ENV_VAR = "SOLANA_PRIVATE_KEY"
SHARED_SECRET_ENV_VAR = "SIGNER_SHARED_SECRET"

# A keypair file is about 250 bytes and a secret file 65; anything far larger is not one of ours,
# and reading it whole would be an unbounded read of an operator-supplied path.
MAX_SECRET_FILE_BYTES = 16 * 1024

PRIVATE_FILE_MODE = 0o600
# Bits that must be clear on a secret file: any access by group or others.
GROUP_OTHER_BITS = 0o077

__all__ = [
    "GENERATED_SHARED_SECRET_BYTES",
    "KEYPAIR_ENV_VAR",
    "Keypair",
    "MIN_SHARED_SECRET_BYTES",
    "PUBLIC_KEY_LENGTH",
    "SECRET_KEY_LENGTH",
    "SEED_LENGTH",
    "SHARED_SECRET_ENV_VAR",
    "SIGNATURE_LENGTH",
    "SharedSecret",
    "generate_keypair_file",
    "generate_shared_secret_file",
    "load_keypair",
    "load_keypair_file",
    "load_shared_secret",
    "parse_keypair",
    "read_public_key",
]


def _nacl_signing():
    # Imported on first use: clients that only need the shared secret (the `sign` command)
    # should not pay for loading libsodium.
    import nacl.signing

    return nacl.signing


def _nacl_exceptions():
    import nacl.exceptions

    return nacl.exceptions


def _refuse_pickling(kind: str) -> NoReturn:
    raise TypeError(f"{kind} holds secret material and cannot be pickled or copied")


class Keypair:
    """An Ed25519 signing key whose secret half cannot be printed, logged or pickled."""

    __slots__ = ("_signing_key", "_public_key")

    def __init__(self, signing_key) -> None:  # a nacl.signing.SigningKey
        self._signing_key = signing_key
        self._public_key = bytes(signing_key.verify_key)

    @classmethod
    def from_seed(cls, seed: bytes) -> Keypair:
        """Build the keypair for a 32-byte Ed25519 seed."""
        if not isinstance(seed, bytes) or len(seed) != SEED_LENGTH:
            raise KeyMaterialError(f"an Ed25519 seed is {SEED_LENGTH} bytes")
        return cls(_nacl_signing().SigningKey(seed))

    @classmethod
    def from_secret_key(cls, secret_key: bytes) -> Keypair:
        """Build the keypair for 64 bytes seed||public key, refusing a mismatched public half."""
        if not isinstance(secret_key, bytes) or len(secret_key) != SECRET_KEY_LENGTH:
            raise KeyMaterialError(f"a Solana secret key is {SECRET_KEY_LENGTH} bytes")
        keypair = cls.from_seed(secret_key[:SEED_LENGTH])
        if not compare_digest(keypair.public_key, secret_key[SEED_LENGTH:]):
            raise KeyMaterialError(
                "the public key stored with the seed does not match the key derived from it"
            )
        return keypair

    @classmethod
    def generate(cls) -> Keypair:
        """A fresh keypair from the operating system's random source."""
        return cls(_nacl_signing().SigningKey.generate())

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key (the Solana address, as bytes)."""
        return self._public_key

    @property
    def public_key_base58(self) -> str:
        """The Solana address: base58 text of the public key."""
        return b58encode(self._public_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached Ed25519 signature of ``message``."""
        if not isinstance(message, (bytes, bytearray, memoryview)):
            raise TypeError("sign() takes bytes")
        return self._signing_key.sign(bytes(message)).signature

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's signature of ``message``."""
        try:
            self._signing_key.verify_key.verify(bytes(message), bytes(signature))
        except (_nacl_exceptions().BadSignatureError, ValueError, TypeError):
            return False
        return True

    def _seed_bytes(self) -> bytes:
        """The 32-byte seed. Private: for the keystore and the signer's key buffer only."""
        return bytes(self._signing_key)

    def _keypair_file_bytes(self) -> bytes:
        """The solana-keygen file body. Private: only generate_keypair_file writes the secret."""
        secret_key = bytes(self._signing_key) + self._public_key
        return ("[" + ",".join(str(b) for b in secret_key) + "]").encode("ascii")

    def __repr__(self) -> str:
        return f"Keypair(public_key={self.public_key_base58})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Keypair):
            return NotImplemented
        return self._public_key == other._public_key

    def __hash__(self) -> int:
        return hash(self._public_key)

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        _refuse_pickling("Keypair")

    def __reduce__(self) -> NoReturn:
        _refuse_pickling("Keypair")

    def __getstate__(self) -> NoReturn:
        _refuse_pickling("Keypair")


class SharedSecret:
    """The HMAC key shared by signer and agents; at least 32 bytes, never shown."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes):
            raise TypeError("SharedSecret takes bytes")
        if len(value) < MIN_SHARED_SECRET_BYTES:
            raise KeyMaterialError(
                f"the shared secret is {len(value)} bytes; at least {MIN_SHARED_SECRET_BYTES} "
                "are required"
            )
        self._value = value

    @property
    def value(self) -> bytes:
        """The secret bytes, to key HMAC-SHA256."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"SharedSecret(<{len(self._value)} bytes hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SharedSecret):
            return NotImplemented
        return compare_digest(self._value, other._value)

    __hash__ = None  # type: ignore[assignment]  # equal secrets must not be usable as dict keys

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        _refuse_pickling("SharedSecret")

    def __reduce__(self) -> NoReturn:
        _refuse_pickling("SharedSecret")

    def __getstate__(self) -> NoReturn:
        _refuse_pickling("SharedSecret")


# --- parsing key text ------------------------------------------------------------------------


def _json_byte_array(text: str) -> list[int] | None:
    """The integers of a JSON array of bytes, or None when the text is not one.

    Returns None rather than raising so the caller raises outside any ``except`` block: the
    ``JSONDecodeError`` carries the whole document and must not be chained to our error.
    """
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list):
        return None
    if not all(type(item) is int and 0 <= item <= 255 for item in value):
        return None
    return value


def _base58_bytes(text: str) -> bytes | None:
    """The bytes of base58 text, or None when it is not base58 (without quoting the text)."""
    if not text.isascii():
        return None
    try:
        return b58decode(text)
    except ValueError:
        return None


def _raw_key_bytes(text: str, *, source: str) -> bytes:
    stripped = text.strip()
    if not stripped:
        raise KeyMaterialError(f"{source} is empty")
    if stripped.startswith("["):
        numbers = _json_byte_array(stripped)
        if numbers is None:
            raise KeyMaterialError(
                f"{source} is not a JSON array of integers 0..255 (solana-keygen format)"
            )
        return bytes(numbers)
    raw = _base58_bytes(stripped)
    if raw is None:
        raise KeyMaterialError(
            f"{source} is neither a JSON array of bytes (solana-keygen format) nor base58 text"
        )
    return raw


def parse_keypair(text: str, *, source: str) -> Keypair:
    """Parse keypair text in any accepted encoding; ``source`` names it in error messages."""
    raw = _raw_key_bytes(text, source=source)
    if len(raw) == SECRET_KEY_LENGTH:
        keypair = Keypair.from_seed(raw[:SEED_LENGTH])
        if not compare_digest(keypair.public_key, raw[SEED_LENGTH:]):
            raise KeyMaterialError(
                f"{source}: the public key stored in it does not match the key derived "
                "from its seed"
            )
        return keypair
    if len(raw) == SEED_LENGTH:
        return Keypair.from_seed(raw)
    raise KeyMaterialError(
        f"{source} holds {len(raw)} bytes; expected {SECRET_KEY_LENGTH} (seed and public key) "
        f"or {SEED_LENGTH} (seed)"
    )


# --- reading secret files --------------------------------------------------------------------


def _chmod_hint(path: str) -> str:
    return f"run chmod 600 {shlex.quote(path)}"


def _read_private_file(path: str, *, what: str) -> bytes:
    """Read a small secret file after checking, on the open descriptor, that only we can use it.

    Checking ``fstat`` of the descriptor (not ``stat`` of the path) leaves no window for the
    file to be swapped between the check and the read. ``O_NONBLOCK`` keeps a FIFO planted at
    the path from blocking the open; it has no effect on regular files.
    """
    flags = os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise KeyMaterialError(f"{what} {path} does not exist") from None
    except PermissionError:
        raise KeyMaterialError(f"cannot read {what} {path}: permission denied") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise KeyMaterialError(f"cannot read {what} {path}: {reason}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyMaterialError(f"{what} {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & GROUP_OTHER_BITS:
            raise KeyMaterialError(
                f"{what} {path} is accessible by group or others (mode {mode:04o}); "
                f"{_chmod_hint(path)}"
            )
        return _read_bounded(fd, path=path, what=what)
    finally:
        os.close(fd)


def _read_bounded(fd: int, *, path: str, what: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        try:
            chunk = os.read(fd, MAX_SECRET_FILE_BYTES + 1 - total)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise KeyMaterialError(f"cannot read {what} {path}: {reason}") from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > MAX_SECRET_FILE_BYTES:
            raise KeyMaterialError(
                f"{what} {path} is larger than {MAX_SECRET_FILE_BYTES} bytes; it is not a "
                f"{what}"
            )


def _utf8_text(data: bytes, *, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    raise KeyMaterialError(f"{source} is not UTF-8 text")


def load_keypair_file(path: str | os.PathLike[str]) -> Keypair:
    """Read a keypair file (solana-keygen JSON, base58, or seed), refusing exposed files."""
    path = os.fspath(path)
    source = f"keypair file {path}"
    data = _read_private_file(path, what="keypair file")
    return parse_keypair(_utf8_text(data, source=source), source=source)


def load_keypair(
    *, path: str | os.PathLike[str] | None = None, env_value: str | None = None
) -> Keypair:
    """The signer's keypair from a file path or, failing that, the SOLANA_PRIVATE_KEY value.

    A path wins over the environment value, matching "flags over environment" in config.
    """
    if path is not None:
        return load_keypair_file(path)
    if env_value is not None:
        return parse_keypair(env_value, source=KEYPAIR_ENV_VAR)
    raise KeyMaterialError(
        f"no keypair given: pass a keypair file or set {KEYPAIR_ENV_VAR}"
    )


def read_public_key(path: str | os.PathLike[str]) -> str:
    """The base58 address of a keypair file, after the same checks the signer applies.

    The public key reported is the one derived from the seed (the key the signer would
    sign with); a file whose stored public half disagrees is refused.
    """
    return load_keypair_file(path).public_key_base58


# --- writing secret files --------------------------------------------------------------------


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _create_private_file(path: str, data: bytes) -> None:
    """Create ``path`` exclusively with mode 0600 and write ``data``; no other mode ever exists.

    ``os.open`` applies the umask to 0600, which can only remove bits, so the file is never
    more open than 0600; ``fchmod`` then sets exactly 0600 whatever the umask was.
    """
    fd = os.open(path, _CREATE_FLAGS, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        _write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(path)
        raise
    os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_directory(directory: str) -> None:
    """Make a create or rename durable; best effort on filesystems that refuse it."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace_private_file(path: str, data: bytes) -> None:
    """Write a 0600 temporary file beside ``path`` and rename it over ``path`` atomically."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(
        directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp"
    )
    _create_private_file(temporary, data)
    try:
        os.replace(temporary, path)
    except BaseException:
        _unlink_quietly(temporary)
        raise


def _write_private_file(path: str, data: bytes, *, force: bool, what: str) -> None:
    try:
        if force:
            _replace_private_file(path, data)
        else:
            _create_private_file(path, data)
    except FileExistsError:
        raise KeyMaterialError(
            f"{what} {path} already exists; use --force to overwrite it"
        ) from None
    except FileNotFoundError:
        raise KeyMaterialError(
            f"cannot write {what} {path}: its directory does not exist"
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise KeyMaterialError(f"cannot write {what} {path}: {reason}") from None
    _fsync_directory(os.path.dirname(os.path.abspath(path)))


def generate_keypair_file(path: str | os.PathLike[str], *, force: bool = False) -> Keypair:
    """Generate a keypair and write it as a solana-keygen JSON file with mode 0600.

    Without ``force`` an existing file is never touched. With ``force`` the old file is replaced
    in one rename, so a crash leaves either the old key or the new one, never half of either.
    """
    path = os.fspath(path)
    keypair = Keypair.generate()
    _write_private_file(path, keypair._keypair_file_bytes(), force=force, what="keypair file")
    return keypair


# --- the shared secret -----------------------------------------------------------------------


def _strip_one_newline(data: bytes) -> bytes:
    return data[:-1] if data.endswith(b"\n") else data


def load_shared_secret(
    *, env_value: str | None, path: str | os.PathLike[str] | None
) -> SharedSecret:
    """The HMAC shared secret: SIGNER_SHARED_SECRET's UTF-8 bytes, else a secret file's bytes.

    The environment value is used exactly as given (it is the HMAC key of the original design,
    so it must not be trimmed). A file's bytes lose one trailing newline, so `echo`-written and
    editor-saved files give the same key as the text they contain. Either way the key must be at
    least 32 bytes.
    """
    if env_value is not None:
        try:
            value = env_value.encode("utf-8")
        except UnicodeEncodeError:
            value = None
        if value is None:
            raise KeyMaterialError(f"{SHARED_SECRET_ENV_VAR} is not valid UTF-8 text")
        if _names_existing_file(env_value):
            # A path there would silently become the HMAC key itself (the path's own bytes).
            raise KeyMaterialError(
                f"{SHARED_SECRET_ENV_VAR} names an existing file, but it must hold the secret itself; "
                f"give the file with --secret-file PATH (or secret_file= in Python) and unset {SHARED_SECRET_ENV_VAR}"
            )
        return _shared_secret(value, source=SHARED_SECRET_ENV_VAR)
    if path is not None:
        path = os.fspath(path)
        data = _read_private_file(path, what="shared secret file")
        return _shared_secret(_strip_one_newline(data), source=f"shared secret file {path}")
    raise KeyMaterialError(
        f"no shared secret: set {SHARED_SECRET_ENV_VAR} or give a shared secret file"
    )


def _names_existing_file(value: str) -> bool:
    try:
        return os.path.isfile(os.path.expanduser(value))
    except (ValueError, OSError):  # NUL bytes, names too long: not a path
        return False


def _shared_secret(value: bytes, *, source: str) -> SharedSecret:
    if len(value) < MIN_SHARED_SECRET_BYTES:
        raise KeyMaterialError(
            f"{source} holds {len(value)} bytes; a shared secret needs at least "
            f"{MIN_SHARED_SECRET_BYTES}"
        )
    return SharedSecret(value)


def generate_shared_secret_file(
    path: str | os.PathLike[str], *, force: bool = False
) -> SharedSecret:
    """Write 32 random bytes as 64 hex characters (plus a newline) to a new 0600 file.

    The secret is the 64 ASCII characters themselves, so the same text works as the
    SIGNER_SHARED_SECRET value of an agent.
    """
    path = os.fspath(path)
    text = secrets.token_hex(GENERATED_SHARED_SECRET_BYTES).encode("ascii")
    _write_private_file(path, text + b"\n", force=force, what="shared secret file")
    return SharedSecret(text)
