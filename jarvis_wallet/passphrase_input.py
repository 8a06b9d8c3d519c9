"""Where a keystore's passphrase comes from: a file descriptor, a systemd credential, or a prompt.

Never argv (other users can read a process's arguments) and never the environment (inherited
by every child, readable in /proc/<pid>/environ). In order:

1. ``--passphrase-fd N``: read to EOF from descriptor N (one trailing newline dropped), e.g.
   ``--passphrase-fd 3 3<passphrase-file`` or a pipe from a password manager.
2. a systemd credential: ``$CREDENTIALS_DIRECTORY/<name>`` (``LoadCredential=`` or
   ``LoadCredentialEncrypted=`` in the unit), the name given with ``--passphrase-credential``
   or, when the directory has one, ``jarvis-wallet-passphrase``.
3. a prompt on the controlling terminal (``getpass``), when there is one.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import KeyMaterialError
from .keystore import MAX_PASSPHRASE_BYTES, Passphrase

CREDENTIAL_NAME = "jarvis-wallet-passphrase"
CREDENTIALS_DIRECTORY_ENV = "CREDENTIALS_DIRECTORY"


def read_passphrase_fd(fd: int) -> Passphrase:
    """Read a passphrase from ``fd`` to EOF (bounded), then close it."""
    chunks, total = [], 0
    try:
        while True:
            chunk = os.read(fd, MAX_PASSPHRASE_BYTES + 2 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_PASSPHRASE_BYTES + 1:
                raise KeyMaterialError(f"the passphrase on descriptor {fd} is longer than {MAX_PASSPHRASE_BYTES} bytes")
    except OSError as exc:
        raise KeyMaterialError(f"cannot read the passphrase from descriptor {fd}: {exc.strerror}") from None
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    return _passphrase(b"".join(chunks), source=f"descriptor {fd}")


def _passphrase(data: bytes, *, source: str) -> Passphrase:
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise KeyMaterialError(f"the passphrase from {source} is empty")
    return Passphrase(data)


def credential_path(name: str | None) -> Path | None:
    """The credential file to read, or None when there is none to use."""
    directory = os.environ.get(CREDENTIALS_DIRECTORY_ENV)
    if name is not None:
        if not directory:
            raise KeyMaterialError(
                f"--passphrase-credential {name}: ${CREDENTIALS_DIRECTORY_ENV} is not set (systemd sets it for a "
                "unit with LoadCredential=)"
            )
        if "/" in name or name in (".", ".."):
            raise KeyMaterialError(f"--passphrase-credential {name!r} is not a credential name")
        return Path(directory) / name
    if directory and (Path(directory) / CREDENTIAL_NAME).is_file():
        return Path(directory) / CREDENTIAL_NAME
    return None


def read_credential(path: Path) -> Passphrase:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PASSPHRASE_BYTES + 2)
    except OSError as exc:
        raise KeyMaterialError(f"cannot read the passphrase credential {path}: {exc.strerror}") from None
    if len(data) > MAX_PASSPHRASE_BYTES + 1:
        raise KeyMaterialError(f"the passphrase credential {path} is longer than {MAX_PASSPHRASE_BYTES} bytes")
    return _passphrase(data, source=f"credential {path}")


def has_terminal() -> bool:
    try:
        with open("/dev/tty", "rb"):
            return True
    except OSError:
        return False


def prompt_passphrase(prompt: str, *, confirm: bool = False) -> Passphrase:
    import getpass

    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Repeat the passphrase: ") != first:
        raise KeyMaterialError("the passphrases do not match")
    return _passphrase(first.encode("utf-8"), source="the prompt")


def read_passphrase(*, fd: int | None, credential: str | None, prompt: str, confirm: bool = False) -> Passphrase:
    """The passphrase from the first source given or found (module docstring); an error saying
    how to give one when there is none."""
    if fd is not None:
        return read_passphrase_fd(fd)
    path = credential_path(credential)
    if path is not None:
        return read_credential(path)
    if has_terminal():
        return prompt_passphrase(prompt, confirm=confirm)
    raise KeyMaterialError(
        "no passphrase: give it on a descriptor (--passphrase-fd N), as a systemd credential "
        f"(${CREDENTIALS_DIRECTORY_ENV}/{CREDENTIAL_NAME}), or run this on a terminal to be asked; "
        "never on the command line or in the environment"
    )
