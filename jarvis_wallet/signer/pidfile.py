"""Pid files, and stopping a signer through its pid file.

Only the signer's own pid removes its socket and pid file: a forked copy, or
a later signer that took over the path, never loses them to an old one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

from ..config import default_pid_path
from ..errors import SignerUnavailable


def write_pid_file(path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def read_pid_file(path: Path) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def unlink_if_ours(path: Path) -> None:
    """Remove the socket or pid file only while the pid file still names this process."""
    pid_path = default_pid_path(path) if path.suffix != ".pid" else path
    if read_pid_file(pid_path) not in (None, os.getpid()):
        return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# -- stopping -----------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            # The state follows the parenthesised command name, which may itself hold spaces.
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")


pid_is_running = _pid_alive  # public: `signer status` tells a dead signer from an absent one


def kill_quietly(pid: int | None) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def stop_pid(pid: int, *, timeout: float = 10.0) -> None:
    """SIGTERM and wait; SIGKILL after ``timeout``."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.02)
    kill_quietly(pid)


def stop_signer(socket_path: Path, *, timeout: float = 10.0) -> int:
    """Stop the signer serving ``socket_path`` (via its pid file); return its pid."""
    pid_path = default_pid_path(Path(socket_path))
    pid = read_pid_file(pid_path)
    if pid is None or not _pid_alive(pid):
        raise SignerUnavailable(f"no signer is running for {socket_path}")
    if not _socket_answers(Path(socket_path)):
        # A pid file without a live socket is stale: that pid may now be another process.
        raise SignerUnavailable(f"no signer answers on {socket_path} (stale pid file {pid_path})")
    stop_pid(pid, timeout=timeout)
    return pid


def _socket_answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()
