"""What start-up prepares before serving: the socket directory and socket, the shared secret,
and a check that the database takes writes."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
from pathlib import Path

from ..config import default_pid_path, default_secret_path, ensure_private_dir
from ..errors import InvalidConfig, JarvisWalletError, KeyMaterialError, SignerStartError
from .pidfile import read_pid_file
from .settings import SignerSettings, listen_backlog


def check_database_writable(url: str) -> None:
    """Fail the start (exit 9, through the pipe) on a database the signer can read but not write."""
    from ..db import check_writable, session

    with session(url) as db:
        check_writable(db)


# One probe at a time: a flood of `status` requests costs one database connection at once.
_HEALTH_PROBE = threading.Lock()


def database_health(url: str) -> dict:
    """For `status`: whether the database takes a write now (checked on a connection of its own,
    a row written and rolled back), and why not."""
    from ..db import probe_writable

    with _HEALTH_PROBE:
        try:
            probe_writable(url)
        except JarvisWalletError as exc:
            return {"databaseWritable": False, "databaseError": exc.message}
        except Exception as exc:  # noqa: BLE001 - a health check reports, it never raises
            return {"databaseWritable": False, "databaseError": f"database check failed: {type(exc).__name__}"}
    return {"databaseWritable": True, "databaseError": None}


def prepare_socket_directory(directory: Path, settings: SignerSettings) -> None:
    """0700 and ours; with allowed uids, 0710 with the socket group so they can reach it."""
    if not settings.allowed_uids:
        ensure_private_dir(directory)
        return
    group = settings.socket_group
    if group is None:
        raise InvalidConfig("--allow-uid needs --socket-group: the group whose members may reach the socket")
    # A signer with the same settings left the directory 0710 with this group: that is ours to
    # reuse. Anything else (missing, looser, another owner or group) gets the strict check.
    if not _is_shared_socket_directory(directory, group):
        ensure_private_dir(directory)
    os.chown(directory, -1, group)
    os.chmod(directory, 0o710)


def _is_shared_socket_directory(directory: Path, group: int) -> bool:
    try:
        st = directory.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.getuid()
        and st.st_gid == group
        and stat.S_IMODE(st.st_mode) == 0o710
    )


def load_or_create_secret(settings: SignerSettings, socket_path: Path):
    from ..keys import generate_shared_secret_file, load_shared_secret

    # --secret-file, else SIGNER_SHARED_SECRET (the secret itself), else the file beside the socket.
    if settings.secret_file:
        path = Path(settings.secret_file)
        return load_shared_secret(env_value=None, path=path), path
    env_value = os.environ.get("SIGNER_SHARED_SECRET")
    if env_value is not None:
        return load_shared_secret(env_value=env_value, path=None), None
    path = default_secret_path(socket_path)
    if not path.exists():
        return generate_shared_secret_file(path), path
    return load_shared_secret(env_value=None, path=path), path


def load_key(settings: SignerSettings):
    """The signer's keypair, and how to unlock it again (None: a plaintext key, no keystore).

    SOLANA_PRIVATE_KEY is read once and removed from os.environ whatever the source. A keystore
    is decrypted with ``settings.passphrase``, whose bytes are wiped at once.
    """
    from ..keys import load_keypair
    from ..keystore import decrypt_keystore, read_keystore_if_any, unlocker

    env_key = os.environ.pop("SOLANA_PRIVATE_KEY", None)  # read once, then gone from os.environ
    header = None if settings.keypair_path is None else read_keystore_if_any(settings.keypair_path)
    if header is None:
        return load_keypair(path=settings.keypair_path, env_value=env_key), None
    del env_key
    source = f"keystore {settings.keypair_path}"
    passphrase = settings.passphrase
    if passphrase is None:
        raise KeyMaterialError(
            f"{settings.keypair_path} is an encrypted keystore: give its passphrase with --passphrase-fd, "
            "a systemd credential (--passphrase-credential), or at the prompt"
        )
    try:
        keypair = decrypt_keystore(header, passphrase, source=source)
    finally:
        passphrase.wipe()
    return keypair, unlocker(header, source=source)


def bind_socket(path: Path, settings: SignerSettings) -> socket.socket:
    _replace_stale_socket(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is born 0600: no window where it is open
    try:
        listener.bind(str(path))
    except OSError as exc:
        listener.close()
        raise SignerStartError(f"cannot bind {path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    if settings.allowed_uids:
        os.chown(path, -1, settings.socket_group)
        os.chmod(path, 0o660)
    else:
        os.chmod(path, 0o600)
    listener.listen(listen_backlog(settings))
    return listener


def _replace_stale_socket(path: Path) -> None:
    """A socket nobody answers on is left over from a dead signer; a live one is never stolen."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SignerStartError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    except OSError as exc:
        raise SignerStartError(f"cannot check socket {path}: {exc.strerror}") from None
    finally:
        probe.close()
    owner = read_pid_file(default_pid_path(path))
    who = f" (pid {owner})" if owner else ""
    raise SignerStartError(f"socket {path} is already served by a live signer{who}; stop it first")


