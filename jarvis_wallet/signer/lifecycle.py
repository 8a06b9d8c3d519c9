"""Starting and running a signer: fork, readiness, process hardening.

``start_signer`` forks (the ``fork`` start method, asked for explicitly) a
child that hardens itself, reads the key, opens its own database
connection, binds the socket and only then reports readiness, or its
start-up error, over a multiprocessing pipe. EOF on that pipe means the
child died. ``serve`` runs the same signer in the current process, for a
supervisor such as systemd. The child leaves only through ``os._exit``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import resource
import signal
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import default_log_path
from ..errors import JarvisWalletError, SignerStartError
from ..signer_log import SignerLog
from .pidfile import kill_quietly, pid_is_running, stop_pid
from .server import SignerServer
from .settings import DEFAULT_START_TIMEOUT_SECONDS, SignerInfo, SignerSettings

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


@dataclass
class SignerHandle:
    """A running signer started by ``start_signer``."""

    info: SignerInfo
    _process: multiprocessing.Process | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.info.pid

    @property
    def public_key(self) -> str:
        return self.info.public_key

    @property
    def socket_path(self) -> Path:
        return Path(self.info.socket_path)

    def is_alive(self) -> bool:
        if self._process is not None:
            return self._process.is_alive()  # reaps our child and keeps its exit code
        return pid_is_running(self.pid)

    @property
    def exit_code(self) -> int | None:
        """The exit code of a foreground signer that has exited (0: a clean stop), else None."""
        return None if self._process is None else self._process.exitcode

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait for a clean exit, SIGKILL if it does not come."""
        stop_pid(self.pid, timeout=timeout)
        if self._process is not None:
            self._process.join(timeout=1.0)

    def wait(self) -> None:
        """Block until the signer exits (foreground mode)."""
        if self._process is not None:
            self._process.join()
        else:
            while self.is_alive():
                time.sleep(0.2)

    def __enter__(self) -> SignerHandle:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.is_alive():
            self.stop()


# -- starting --------------------------------------------------------------------------------


def start_signer(
    settings: SignerSettings, *, detach: bool = False, timeout: float = DEFAULT_START_TIMEOUT_SECONDS
) -> SignerHandle:
    """Fork a signer and wait until it serves; raise SignerStartError with its reason otherwise.

    Foreground (default): the signer dies with this process. ``detach``: it
    lives on in its own session, with a pid file beside the socket.
    """
    context = multiprocessing.get_context("fork")  # never spawn/forkserver: the child inherits nothing to re-import
    parent_end, child_end = context.Pipe(duplex=False)
    sys.stdout.flush()
    sys.stderr.flush()
    process = context.Process(
        target=_child_entry, args=(child_end, settings, detach, os.getpid()), name="jarvis-wallet-signer", daemon=False
    )
    process.start()
    child_end.close()  # so EOF means every copy in the child is gone
    try:
        if not parent_end.poll(timeout):
            kill_quietly(process.pid)
            raise SignerStartError(f"the signer did not report readiness within {timeout:g} s")
        try:
            kind, payload = parent_end.recv()
        except (EOFError, OSError):
            process.join(timeout=2)
            raise SignerStartError(
                f"the signer process exited during start-up (exit code {process.exitcode})"
            ) from None
    finally:
        parent_end.close()
    if kind == "error":
        process.join(timeout=5)
        raise SignerStartError(payload)
    info = SignerInfo(**payload)
    if detach:
        # The intermediate process exited right after forking the signer. join() without a
        # timeout reaps it with waitpid; with a timeout it would wait on a sentinel pipe whose
        # write end the signer inherited, and so run the whole timeout out.
        process.join()
        return SignerHandle(info)
    return SignerHandle(info, process)


def _child_entry(conn, settings: SignerSettings, detach: bool, parent_pid: int) -> None:
    """Runs in the forked child; leaves only through os._exit."""
    code = 1
    try:
        if detach:
            os.setsid()
            if os.fork() > 0:  # the intermediate exits at once; the grandchild is re-parented
                os._exit(0)
            _detach_stdio()
        else:
            _die_with_parent(parent_pid)
        code = _run_signer(settings, report=_pipe_reporter(conn))
    except BaseException:  # noqa: BLE001 - the child must never unwind into the parent's code
        code = 1
    finally:
        with contextlib.suppress(Exception):
            conn.close()
        os._exit(code)


def _detach_stdio() -> None:
    """A daemon keeps none of its caller's stdio: `$(jarvis-wallet signer start --detach)` would
    otherwise wait for the signer to exit, as it holds the write end of the caller's pipe."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)


def _pipe_reporter(conn):
    def report(kind: str, payload) -> None:
        with contextlib.suppress(OSError, ValueError):
            conn.send((kind, payload))
            conn.close()

    return report


def serve(settings: SignerSettings, *, on_ready=None) -> int:
    """Run the signer in this process until SIGTERM or SIGINT; the exit code to use.

    Start-up errors raise SignerStartError. ``on_ready(info)`` is called once serving.
    """
    failure: list[str] = []

    def report(kind: str, payload) -> None:
        if kind == "error":
            failure.append(payload)
        elif on_ready is not None:
            on_ready(SignerInfo(**payload))

    code = _run_signer(settings, report=report)
    if failure:
        raise SignerStartError(failure[0])
    return code


def _run_signer(settings: SignerSettings, *, report) -> int:
    """Start up, report, serve, halt. Start-up failures are reported, never raised."""
    _harden_process()
    try:
        server = SignerServer.start(settings)
    except JarvisWalletError as exc:
        _log_start_failure(settings, exc.message)
        report("error", exc.message)
        return 1
    except Exception as exc:  # noqa: BLE001 - report, do not print a traceback from the child
        report("error", f"unexpected start-up failure: {type(exc).__name__}")
        return 1
    try:
        # Before "ready": whoever starts a signer may stop it at once, and a SIGTERM with no
        # handler yet would kill it without halt(), leaving the socket and pid file behind.
        server.handle_signals()
        server.log.event("ready", **server.info.__dict__)
        report("ready", server.info.__dict__)
        server.serve_forever()
    finally:
        server.halt()
    return 0


def _log_start_failure(settings: SignerSettings, reason: str) -> None:
    """Into the log beside the socket, if its directory is ours already (never created for it)."""
    directory = Path(settings.socket_path).parent
    with contextlib.suppress(OSError):
        st = directory.lstat()
        # Only a directory the start would have accepted: a looser one is refused, not written to.
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o067:
            SignerLog(default_log_path(Path(settings.socket_path))).event("start_failed", reason=reason)


# -- process hardening -----------------------------------------------------------------------


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _harden_process() -> None:
    """No core dumps; not dumpable, so other processes of this uid cannot ptrace it or read
    /proc/<pid>/mem or /proc/<pid>/environ (which may hold SOLANA_PRIVATE_KEY)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        libc = _libc()
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        # A fixed mmap threshold: glibc's sliding one moved large blocks into the heap and the
        # signer's resident memory crept up under a long soak (64 -> 80 MiB in 600 s).
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
        # Two malloc arenas, not one per thread up to 8 a core: each connection thread's arena
        # kept its own slack, and the sum crept up in a 30-minute soak. The GIL serialises
        # nearly all allocation anyway, so more arenas bought no speed. (A signer forked from a
        # process that already made more than 8 keeps them, and glibc's limit with them.)
        libc.mallopt(_M_ARENA_MAX, 2)


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)

