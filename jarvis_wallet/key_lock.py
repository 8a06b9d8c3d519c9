"""The signer's key in memory, and locking it: lock, unlock, lifetime.

``LockableKey`` keeps the secret key (libsodium's 64 bytes: seed, then public key) in one
``bytearray`` and signs with libsodium directly from it, so that ``lock()`` can overwrite the
only long-lived copy with zeros. This is best effort, as Python allows: copies made while the
key was read (the file's text, the parsed integers, PyNaCl's objects, the decrypted seed) were
freed at start-up but not overwritten, and the allocator may have left them in memory; the
process is not dumpable and makes no core files (``signer/lifecycle.py``). docs/security.md
says so too.

``KeyGuard`` is what the socket ops call: ``lock`` (anyone allowed on the socket: it only takes
power away), ``unlock`` with the keystore's passphrase, checked by decrypting the keystore
(libsodium compares the Poly1305 tag in constant time; the signer keeps no copy of the
passphrase), with an escalating delay after each failure as ssh-agent does, and a lifetime
after which the key locks by itself. Signing and locking exclude each other: the signing worker
holds the key for a whole batch (``held()``), so a batch is either decided and committed with
the key, or refused ``locked`` as a whole; a lock waits for the batch in flight.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import base58

from .errors import KeyMaterialError, SignerLocked
from .keys import PUBLIC_KEY_LENGTH, SECRET_KEY_LENGTH, SIGNATURE_LENGTH, Keypair

# ssh-agent waits 0.1 s times the failures so far, at most 10 s, before answering a wrong passphrase.
UNLOCK_DELAY_STEP_SECONDS = 0.1
MAX_UNLOCK_DELAY_SECONDS = 10.0


class LockableKey:
    """An Ed25519 key held in one zeroable buffer; signs while unlocked."""

    __slots__ = ("_secret", "_public_key", "_locked", "_mutex")

    def __init__(self, keypair: Keypair) -> None:
        self._public_key = keypair.public_key
        self._secret = bytearray(SECRET_KEY_LENGTH)
        self._mutex = threading.RLock()
        self._locked = True
        self.load(keypair)

    @property
    def public_key(self) -> bytes:
        return self._public_key

    @property
    def public_key_base58(self) -> str:
        return base58.b58encode(self._public_key).decode("ascii")

    @property
    def locked(self) -> bool:
        return self._locked

    def load(self, keypair: Keypair) -> None:
        """Put ``keypair``'s secret into the buffer (it must be this key)."""
        from nacl._sodium import ffi, lib

        if keypair.public_key != self._public_key:
            raise KeyMaterialError("that key is not the signer's key")
        with self._mutex:
            public = ffi.new("unsigned char[]", PUBLIC_KEY_LENGTH)
            secret = ffi.from_buffer(self._secret, require_writable=True)
            if lib.crypto_sign_seed_keypair(public, secret, keypair._seed_bytes()) != 0:
                raise KeyMaterialError("libsodium could not expand the seed")
            self._locked = False

    def lock(self) -> None:
        """Overwrite the secret with zeros; signing is refused until ``load``."""
        with self._mutex:
            for index in range(len(self._secret)):
                self._secret[index] = 0
            self._locked = True

    def secret_is_zero(self) -> bool:
        """For tests: whether the buffer holds nothing but zeros."""
        with self._mutex:
            return not any(self._secret)

    @contextlib.contextmanager
    def held(self) -> Iterator[bool]:
        """Hold the key (no lock meanwhile); yields whether it is unlocked."""
        with self._mutex:
            yield not self._locked

    def sign(self, message: bytes) -> bytes:
        from nacl._sodium import ffi, lib

        with self._mutex:
            if self._locked:
                raise SignerLocked(_LOCKED_MESSAGE)
            message = bytes(message)
            # PyNaCl binds crypto_sign (signature then message), not the detached form.
            signed = ffi.new("unsigned char[]", SIGNATURE_LENGTH + len(message))
            signed_length = ffi.new("unsigned long long *")
            secret = ffi.from_buffer(self._secret)
            if lib.crypto_sign(signed, signed_length, message, len(message), secret) != 0:
                raise KeyMaterialError("libsodium could not sign")
            return bytes(ffi.buffer(signed, SIGNATURE_LENGTH))

    def __repr__(self) -> str:
        return f"LockableKey(public_key={self.public_key_base58}, locked={self._locked})"

    def __reduce__(self):
        raise TypeError("LockableKey holds secret material and cannot be pickled or copied")

    __reduce_ex__ = lambda self, protocol: self.__reduce__()  # noqa: E731


_LOCKED_MESSAGE = (
    "the signer is locked: its key is not in memory, nothing was decided or recorded; "
    "unlock it with `jarvis-wallet signer unlock`"
)


def locked_error() -> SignerLocked:
    return SignerLocked(_LOCKED_MESSAGE)


class KeyGuard:
    """Lock, unlock (with backoff) and the key's lifetime; thread-safe.

    ``unlock_with(passphrase)`` returns the keystore's keypair or raises KeyMaterialError;
    None when the signer was started from a plaintext key (nothing to unlock it with).
    """

    def __init__(
        self,
        key: LockableKey,
        *,
        unlock_with: Callable | None,
        ttl_seconds: float | None = None,
        on_change: Callable[[str, dict], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self._unlock_with = unlock_with
        self.ttl_seconds = ttl_seconds
        self._on_change = on_change or (lambda event, fields: None)
        self._sleep = sleep
        self._clock = clock
        self._unlock_mutex = threading.Lock()  # one attempt at a time: the delay bounds guessing
        self.failed_unlocks = 0
        self.locked_reason: str | None = None
        self._expires_at = None if ttl_seconds is None else clock() + ttl_seconds
        self._state = threading.Lock()

    @property
    def locked(self) -> bool:
        self.expire_if_due()
        return self.key.locked

    def expire_if_due(self) -> None:
        """Lock when the key's lifetime has run out (called by the loop and before each use)."""
        expires = self._expires_at
        if expires is not None and not self.key.locked and self._clock() >= expires:
            self.lock(reason="key_ttl")

    def seconds_left(self) -> float | None:
        if self._expires_at is None or self.key.locked:
            return None
        return max(0.0, self._expires_at - self._clock())

    def lock(self, *, reason: str = "requested", peer_uid: int | None = None) -> bool:
        """Drop the key; True if it was unlocked. Waits for a batch being decided."""
        with self._state:
            was_unlocked = not self.key.locked
            self.key.lock()
            if was_unlocked:
                self.locked_reason = reason
                self._expires_at = None
        if was_unlocked:
            self._on_change("locked", {"reason": reason, "peer_uid": peer_uid})
        return was_unlocked

    def unlock(self, passphrase, *, peer_uid: int | None = None) -> bool:
        """Load the key again with the keystore's passphrase; False if it was not locked."""
        if self._unlock_with is None:
            raise KeyMaterialError(
                "this signer was started from a plaintext key file, so there is no passphrase to unlock it "
                "with; restart it (`jarvis-wallet signer start`), or use a keystore (`jarvis-wallet keys encrypt`)"
            )
        with self._unlock_mutex:
            if not self.key.locked:
                return False
            try:
                keypair = self._unlock_with(passphrase)
            except KeyMaterialError:
                self.failed_unlocks += 1
                delay = min(MAX_UNLOCK_DELAY_SECONDS, UNLOCK_DELAY_STEP_SECONDS * self.failed_unlocks)
                self._on_change("unlock_failed", {"failures": self.failed_unlocks, "peer_uid": peer_uid})
                self._sleep(delay)  # before answering, inside the mutex: no parallel guessing
                raise
            with self._state:
                self.key.load(keypair)
                del keypair
                self.failed_unlocks = 0
                self.locked_reason = None
                if self.ttl_seconds is not None:
                    self._expires_at = self._clock() + self.ttl_seconds
        self._on_change("unlocked", {"peer_uid": peer_uid})
        return True
