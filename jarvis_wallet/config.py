"""Where things live: settings from flags > environment > defaults.

Nothing here touches the file system at import time; directories are created
by the code that first needs them (``ensure_private_dir``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

APP_NAME = "jarvis-wallet"

DATABASE_URL_ENV = "JARVIS_WALLET_DATABASE_URL"
TEST_DATABASE_URL_ENV = "JARVIS_WALLET_TEST_DATABASE_URL"
# Names kept from the original design so existing deployments keep working.
PRIVATE_KEY_ENV = "SOLANA_PRIVATE_KEY"
SHARED_SECRET_ENV = "SIGNER_SHARED_SECRET"
SOCKET_PATH_ENV = "SIGNER_SOCKET_PATH"

SOCKET_FILENAME = "signer.sock"
SECRET_FILENAME = "secret"
PID_FILENAME = "signer.pid"
LOG_FILENAME = "signer.log"
DATABASE_FILENAME = "wallet.db"


def data_dir() -> Path:
    """The per-user data directory (XDG Base Directory: $XDG_DATA_HOME or ~/.local/share)."""
    base = os.environ.get("XDG_DATA_HOME", "").strip()
    # The XDG spec says relative values are invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / APP_NAME


def default_database_url() -> str:
    return f"sqlite:///{data_dir() / DATABASE_FILENAME}"


def resolve_database_url(flag_value: str | None = None) -> str:
    """The database URL: the flag, else the environment, else the SQLite default."""
    if flag_value:
        return flag_value
    from_env = os.environ.get(DATABASE_URL_ENV, "").strip()
    return from_env or default_database_url()


def runtime_dir() -> Path:
    """Where the socket, the generated secret and the pid file live.

    $XDG_RUNTIME_DIR is per-user, 0700 and on tmpfs; without it, a per-user
    directory under the system temp directory (created 0700 by the signer).
    """
    xdg = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / APP_NAME
    return Path(tempfile.gettempdir()) / f"{APP_NAME}-{os.getuid()}"


def resolve_socket_path(flag_value: str | os.PathLike | None = None) -> Path:
    """The signer socket: the flag, else $SIGNER_SOCKET_PATH, else the runtime default."""
    if flag_value:
        return Path(flag_value)
    from_env = os.environ.get(SOCKET_PATH_ENV, "").strip()
    return Path(from_env) if from_env else runtime_dir() / SOCKET_FILENAME


def default_secret_path(socket_path: Path) -> Path:
    """The generated shared secret sits beside the socket it protects."""
    return socket_path.parent / SECRET_FILENAME


def default_pid_path(socket_path: Path) -> Path:
    return socket_path.parent / PID_FILENAME


def default_log_path(socket_path: Path) -> Path:
    """The signer's JSON-lines log, beside its pid file."""
    return socket_path.parent / LOG_FILENAME


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700, with no window where it is open.

    The umask is tightened around ``mkdir`` so the directory is never created
    with looser bits, then the mode is checked: an existing directory that
    others can enter, or that belongs to another user, is refused.
    """
    from .errors import InvalidConfig

    old_umask = os.umask(0o077)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidConfig(f"cannot create directory {path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    st = path.stat()
    if st.st_uid != os.getuid():
        raise InvalidConfig(f"directory {path} belongs to another user (uid {st.st_uid})")
    if st.st_mode & 0o077:
        raise InvalidConfig(
            f"directory {path} is accessible by group or others "
            f"(mode {st.st_mode & 0o777:04o}); run chmod 700 {path}"
        )
    return path
