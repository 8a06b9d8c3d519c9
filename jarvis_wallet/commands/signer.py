"""`jarvis-wallet signer start|serve|stop|status|logs`."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import List, Optional

import click
import typer

from ._common import (
    MAX_TIMEOUT_SECONDS,
    JsonOption,
    bounded_option,
    database_url,
    parse_duration,
    print_fields,
    print_json,
    say,
)
from .keys import PassphraseCredentialOption, PassphraseFdOption
from .sign import SecretFileOption as ClientSecretFileOption  # status reads the secret, never generates it

app = typer.Typer(help="Run the signer: the only process that holds the key.", no_args_is_help=True)

KeypairOption = typer.Option(
    None, "--keypair",
    help="Keypair file or encrypted keystore (0600). Default: the SOLANA_PRIVATE_KEY environment variable.",
)
KeyTtlOption = typer.Option(
    None, "--key-ttl",
    help="Lock the key by itself this long after start or the last unlock (90s, 30m, 8h, 1d; at most 30 days).",
)
MetricsFileOption = typer.Option(
    None, "--metrics-file",
    help="Write Prometheus metrics to this file (node_exporter textfile format, replaced atomically) "
    "every --metrics-interval and at exit.",
)
MetricsListenOption = typer.Option(
    None, "--metrics-listen",
    help="Serve Prometheus metrics over HTTP on this loopback HOST:PORT (127.0.0.1:9108); other addresses are refused.",
)
MetricsIntervalOption = bounded_option(
    15.0, "--metrics-interval", low=1.0, high=3600.0,
    help="Seconds between metrics textfile writes, and the longest the wallets' headroom is cached (1 to 3600).",
)
MAX_KEY_TTL_SECONDS = 30 * 86400
SocketOption = typer.Option(
    None, "--socket", help="Socket path. Default: $SIGNER_SOCKET_PATH, else $XDG_RUNTIME_DIR/jarvis-wallet/signer.sock."
)
SecretFileOption = typer.Option(
    None, "--secret-file",
    help="Shared secret FILE (0600, 32+ bytes). Default: $SIGNER_SHARED_SECRET, which holds the secret itself "
    "(not a path), else the `secret` file beside the socket (generated if missing).",
)


MAX_FRESHNESS_WINDOW_SECONDS = 300
# A waiting client holds a descriptor; past a minute it has given up anyway.
MAX_CONNECTION_WAIT_SECONDS = 60


def _settings(
    ctx, *, keypair, socket, secret_file, allow_uid, socket_group, legacy_protocol, freshness_window, max_connections,
    idle_timeout, free_decision_rate, free_decision_burst, listen_backlog=None, connection_wait=None,
    passphrase_fd=None, passphrase_credential=None, key_ttl=None, metrics_file=None, metrics_listen=None,
    metrics_interval=15.0,
    approval_notify_command=None,
):
    import grp

    from ..config import resolve_socket_path
    from ..errors import InvalidConfig
    from ..signer import SignerSettings

    group_id = None
    if socket_group is not None:
        try:
            group_id = int(socket_group) if socket_group.isdigit() else grp.getgrnam(socket_group).gr_gid
        except KeyError:
            raise InvalidConfig(f"unknown group {socket_group!r}") from None
        if group_id > 2**32 - 2:
            raise InvalidConfig(f"--socket-group {socket_group} is not a gid (at most {2**32 - 2})")
    return SignerSettings(
        socket_path=resolve_socket_path(socket),
        database_url=database_url(ctx),
        keypair_path=keypair,
        secret_file=secret_file,
        allowed_uids=tuple(allow_uid or ()),
        socket_group=group_id,
        legacy_protocol=legacy_protocol,
        freshness_window_ms=int(freshness_window * 1000),
        max_connections=max_connections,
        listen_backlog=listen_backlog,
        idle_timeout_seconds=idle_timeout,
        free_decisions_per_second=free_decision_rate,
        free_decision_burst=free_decision_burst,
        approval_notify_command=approval_notify_command,
        **({} if connection_wait is None else {"connection_wait_seconds": connection_wait}),
        key_ttl_seconds=None if key_ttl is None else parse_duration(key_ttl, option="--key-ttl", low=1, high=MAX_KEY_TTL_SECONDS),
        metrics_file=metrics_file,
        metrics_listen=_metrics_listen(metrics_listen),
        metrics_interval_seconds=metrics_interval,
        passphrase=_keystore_passphrase(keypair, passphrase_fd, passphrase_credential),
    )


def _metrics_listen(text):
    """Checked here too, so a non-loopback address is refused before anything starts."""
    if text is None:
        return None
    from ..metrics import parse_loopback_address

    parse_loopback_address(text)
    return text


def _keystore_passphrase(keypair, fd, credential):
    """The passphrase, read before the fork, when the key file is a keystore; else None."""
    from ..errors import InvalidInput, KeyMaterialError
    from ..keystore import read_keystore_if_any

    try:
        header = None if keypair is None else read_keystore_if_any(keypair)
    except KeyMaterialError:
        return None  # an unreadable or exposed file: the signer reports it at start-up (exit 9)
    if header is None:
        if fd is not None or credential is not None:
            raise InvalidInput("--passphrase-fd and --passphrase-credential are for a keystore; --keypair is not one")
        return None
    from ..passphrase_input import read_passphrase

    return read_passphrase(fd=fd, credential=credential, prompt=f"Passphrase of keystore {keypair}: ")


def _ready_line(info) -> str:
    secret = info.secret_path or "$SIGNER_SHARED_SECRET"
    return (
        f"Signer ready: wallet {info.public_key}, pid {info.pid}, version {info.version}, database {info.database}, "
        f"socket {info.socket_path}, log {info.log_path}, secret {secret}"
    )


AllowUidOption = typer.Option(
    None, "--allow-uid", help="Another uid allowed to connect (repeatable); needs --socket-group.",
    click_type=click.IntRange(0, 2**32 - 2),
)
SocketGroupOption = typer.Option(None, "--socket-group", help="Group (name or gid) given access to the socket directory with --allow-uid.")
LegacyOption = typer.Option(False, "--legacy-protocol", help="Also accept the original @jarvis/wallet line format (no freshness check; see docs/protocol.md).")
# Each request is looked up in every second of the window: a day-long window would cost
# milliseconds a request, and a captured request would stay fresh all day.
FreshnessOption = bounded_option(
    30.0, "--freshness-window", low=0.0, high=float(MAX_FRESHNESS_WINDOW_SECONDS), low_open=True,
    help=f"Seconds a request's timestamp may differ from the signer's clock (above 0, at most {MAX_FRESHNESS_WINDOW_SECONDS}).",
)
MaxConnectionsOption = bounded_option(
    64, "--max-connections", low=1, high=4096,
    help="Connections served at once (1 to 4096); more wait for a slot (--connection-wait).",
)
ListenBacklogOption = bounded_option(
    None, "--listen-backlog", low=1, high=65535,
    help="Connections that may wait for a slot, and the kernel's listen queue (1 to 65535). Default: 8 x --max-connections.",
)
ConnectionWaitOption = bounded_option(
    5.0, "--connection-wait", low=0.0, high=float(MAX_CONNECTION_WAIT_SECONDS),
    help=f"Seconds a connection over --max-connections waits for a slot before it is answered 'busy' (0 to {MAX_CONNECTION_WAIT_SECONDS}).",
)
IdleTimeoutOption = bounded_option(
    60.0, "--idle-timeout", low=0.0, high=86400.0, low_open=True,
    help="Seconds a connection may sit idle before it is closed (above 0, at most 86400).",
)
# --refusal-rate and --refusal-burst: the names from before signatures of next to no spend counted too.
FreeDecisionRateOption = bounded_option(
    10.0, "--free-decision-rate", "--refusal-rate", low=0.0, high=1e6, low_open=True,
    help="Free decisions (refusals, signatures spending under 5,000 lamports, re-signs) recorded per second for each uid "
    "(above 0); past that (and --free-decision-burst), all its signing requests get 'rate_limited', undecided and unrecorded.",
)
ApprovalNotifyOption = typer.Option(
    None, "--approval-notify-command", envvar="JARVIS_WALLET_APPROVAL_NOTIFY_COMMAND",
    help="Run this command (shell words; use sh -c '...' for a pipeline) for each new approval request, with a JSON "
    "document on stdin; it runs beside the signing path, and its failures go to the signer log. "
    "Default: $JARVIS_WALLET_APPROVAL_NOTIFY_COMMAND.",
)
FreeDecisionBurstOption = bounded_option(
    100, "--free-decision-burst", "--refusal-burst", low=1, high=1_000_000,
    help="Free decisions a uid may have recorded at once before --free-decision-rate applies (1 to 1000000).",
)


@app.command("start")
def signer_start(
    ctx: typer.Context,
    keypair: Optional[Path] = KeypairOption,
    socket: Optional[Path] = SocketOption,
    secret_file: Optional[Path] = SecretFileOption,
    detach: bool = typer.Option(False, "--detach", help="Return once ready; the signer keeps running in its own session."),
    allow_uid: Optional[List[int]] = AllowUidOption,
    socket_group: Optional[str] = SocketGroupOption,
    legacy_protocol: bool = LegacyOption,
    freshness_window: float = FreshnessOption,
    max_connections: int = MaxConnectionsOption,
    listen_backlog: Optional[int] = ListenBacklogOption,
    connection_wait: float = ConnectionWaitOption,
    idle_timeout: float = IdleTimeoutOption,
    free_decision_rate: float = FreeDecisionRateOption,
    free_decision_burst: int = FreeDecisionBurstOption,
    passphrase_fd: Optional[int] = PassphraseFdOption,
    passphrase_credential: Optional[str] = PassphraseCredentialOption,
    key_ttl: Optional[str] = KeyTtlOption,
    metrics_file: Optional[Path] = MetricsFileOption,
    metrics_listen: Optional[str] = MetricsListenOption,
    metrics_interval: float = MetricsIntervalOption,
    approval_notify_command: Optional[str] = ApprovalNotifyOption,
    timeout: float = bounded_option(
        15.0, "--timeout", low=0.0, high=MAX_TIMEOUT_SECONDS, low_open=True,
        help="Seconds to wait for the signer to report readiness (above 0, at most 3600).",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the ready line as JSON."),
) -> None:
    """Fork the signer; print its ready line or its start-up error.

    In the foreground (default) Ctrl-C or SIGTERM stops it, and it stops if this
    process dies. With --detach it keeps running; stop it with `signer stop`.

    Example: jarvis-wallet signer start --keypair signer.json --detach
    """
    from ..signer import start_signer

    settings = _settings(
        ctx, keypair=keypair, socket=socket, secret_file=secret_file, allow_uid=allow_uid,
        socket_group=socket_group, legacy_protocol=legacy_protocol, freshness_window=freshness_window,
        max_connections=max_connections, idle_timeout=idle_timeout, free_decision_rate=free_decision_rate,
        free_decision_burst=free_decision_burst, listen_backlog=listen_backlog, connection_wait=connection_wait,
        passphrase_fd=passphrase_fd, passphrase_credential=passphrase_credential, key_ttl=key_ttl,
        metrics_file=metrics_file, metrics_listen=metrics_listen, metrics_interval=metrics_interval,
        approval_notify_command=approval_notify_command,
    )
    try:
        handle = start_signer(settings, detach=detach, timeout=timeout)
    finally:
        if settings.passphrase is not None:
            settings.passphrase.wipe()  # the child has its own copy, and wiped it once used
    info = handle.info
    if json_output:
        print_json({"public_key": info.public_key, "pid": info.pid, "socket_path": info.socket_path,
                    "secret_path": info.secret_path, "pid_path": info.pid_path, "detached": detach,
                    "database": info.database, "version": info.version, "log_path": info.log_path,
                    "keystore": info.keystore, "key_ttl_seconds": info.key_ttl_seconds,
                    "metrics_file": info.metrics_file, "metrics_listen": info.metrics_listen})
    else:
        typer.echo(_ready_line(handle.info))
    if detach:
        return
    _wait_in_foreground(handle)


def _wait_in_foreground(handle) -> None:
    """Stay with the signer; Ctrl-C or SIGTERM stops it cleanly."""
    import time

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        while handle.is_alive():
            time.sleep(0.2)
    except KeyboardInterrupt:
        handle.stop()
        say("Signer stopped")
        return
    if handle.exit_code == 0:  # stopped cleanly, e.g. by `jarvis-wallet signer stop`
        say("Signer stopped")
        return
    code = handle.exit_code
    how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    say(f"Error: the signer exited unexpectedly ({how})")
    raise typer.Exit(1)


@app.command("serve")
def signer_serve(
    ctx: typer.Context,
    keypair: Optional[Path] = KeypairOption,
    socket: Optional[Path] = SocketOption,
    secret_file: Optional[Path] = SecretFileOption,
    allow_uid: Optional[List[int]] = AllowUidOption,
    socket_group: Optional[str] = SocketGroupOption,
    legacy_protocol: bool = LegacyOption,
    freshness_window: float = FreshnessOption,
    max_connections: int = MaxConnectionsOption,
    listen_backlog: Optional[int] = ListenBacklogOption,
    connection_wait: float = ConnectionWaitOption,
    idle_timeout: float = IdleTimeoutOption,
    free_decision_rate: float = FreeDecisionRateOption,
    free_decision_burst: int = FreeDecisionBurstOption,
    passphrase_fd: Optional[int] = PassphraseFdOption,
    passphrase_credential: Optional[str] = PassphraseCredentialOption,
    key_ttl: Optional[str] = KeyTtlOption,
    metrics_file: Optional[Path] = MetricsFileOption,
    metrics_listen: Optional[str] = MetricsListenOption,
    metrics_interval: float = MetricsIntervalOption,
    approval_notify_command: Optional[str] = ApprovalNotifyOption,
) -> None:
    """Run the signer in this process, without forking, for a supervisor such as systemd.

    Example: jarvis-wallet signer serve --keypair /etc/jarvis-wallet/signer.json
    """
    from ..signer import serve

    settings = _settings(
        ctx, keypair=keypair, socket=socket, secret_file=secret_file, allow_uid=allow_uid,
        socket_group=socket_group, legacy_protocol=legacy_protocol, freshness_window=freshness_window,
        max_connections=max_connections, idle_timeout=idle_timeout, free_decision_rate=free_decision_rate,
        free_decision_burst=free_decision_burst, listen_backlog=listen_backlog, connection_wait=connection_wait,
        passphrase_fd=passphrase_fd, passphrase_credential=passphrase_credential, key_ttl=key_ttl,
        metrics_file=metrics_file, metrics_listen=metrics_listen, metrics_interval=metrics_interval,
        approval_notify_command=approval_notify_command,
    )
    code = serve(settings, on_ready=lambda info: say(_ready_line(info)))
    raise typer.Exit(code)


@app.command("stop")
def signer_stop(socket: Optional[Path] = SocketOption, json_output: bool = JsonOption) -> None:
    """Stop the signer serving a socket (found through its pid file).

    Example: jarvis-wallet signer stop
    """
    from ..config import resolve_socket_path
    from ..signer import stop_signer

    path = resolve_socket_path(socket)
    pid = stop_signer(path)
    if json_output:
        print_json({"pid": pid, "socket_path": str(path), "stopped": True})
    else:
        typer.echo(f"Stopped signer pid {pid} ({path})")


@app.command("status")
def signer_status(
    ctx: typer.Context,
    socket: Optional[Path] = SocketOption,
    secret_file: Optional[Path] = ClientSecretFileOption,
    json_output: bool = JsonOption,
) -> None:
    """The health check: pid, public key, version, uptime, counters, lock state, database health.

    The signer checks its database on each call (a row written and rolled back). Exit codes for
    a supervisor: 0 healthy (key loaded, database writable); 3 the database cannot be written or
    reached; 14 the key is locked; 6 no signer answers (also when one died and left its pid
    file); 7 the shared secret was refused. The data is printed in every case the signer answered.
    Also says when the signer's database is not the one this command would use.

    Example: jarvis-wallet signer status --json
    """
    from ..client import SignerClient
    from ..config import resolve_socket_path
    from ..db import parse_database_url
    from ..errors import SignerUnavailable

    path = resolve_socket_path(socket)
    with SignerClient(path, secret_file=secret_file) as client:
        try:
            client.ping()  # no signer is exit 6, even when there is no secret file to find yet
        except SignerUnavailable as exc:
            _raise_if_dead(path, exc)
            raise
        status = client.status()
    ours = parse_database_url(database_url(ctx)).display
    data = {
        "public_key": status["publicKey"],
        "pid": status["pid"],
        "version": status.get("version"),  # None from a signer older than the field
        "database": status.get("database"),
        "cli_database": ours,
        "same_database": None if status.get("database") is None else status["database"] == ours,
        "uptime_seconds": status["uptimeSeconds"],
        "signed": status["signed"],
        "refused": status["refused"],
        "rate_limited": status.get("rateLimited"),
        "socket_path": str(client.socket_path),
        "log_path": status.get("logPath"),
        "keystore": status.get("keystore"),
        "locked": status.get("locked", False),
        "locked_reason": status.get("lockedReason"),
        "key_ttl_seconds_left": status.get("keyTtlSecondsLeft"),
        "failed_unlocks": status.get("failedUnlocks"),
        "database_writable": status.get("databaseWritable"),
        "database_error": status.get("databaseError"),
    }
    problem, code = _health_problem(data)
    data["healthy"] = problem is None
    if json_output:
        print_json(data)
    else:
        print_fields("Signer", [(k, str(v)) for k, v in data.items()])
    if data["same_database"] is False:
        say(
            f"Warning: the signer uses {data['database']}, but this command uses {ours}: limits and "
            "`tx list` here are not the signer's; pass --database-url (or set JARVIS_WALLET_DATABASE_URL) to match"
        )
    if problem is not None:
        say(f"Unhealthy: {problem}")
        raise typer.Exit(code)


def _health_problem(data: dict) -> tuple[str | None, int]:
    """What makes the signer unable to sign, and the exit code that says so (docs/operations.md)."""
    from ..errors import DatabaseUnavailable, SignerLocked

    if data["database_writable"] is False:
        return f"the signer cannot write to its database: {data['database_error']}", DatabaseUnavailable.exit_code
    if data["locked"]:
        why = " (its --key-ttl ran out)" if data["locked_reason"] == "key_ttl" else ""
        return f"the signer is locked{why}: unlock it with `jarvis-wallet signer unlock`", SignerLocked.exit_code
    return None, 0


@app.command("lock")
def signer_lock(socket: Optional[Path] = SocketOption, json_output: bool = JsonOption) -> None:
    """Lock the signer: its key leaves memory and every signing request gets `locked`.

    Needs no shared secret: anyone allowed on the socket may lock (it only takes power away).
    Unlock with `signer unlock` (a keystore's passphrase) or restart the signer.

    Example: jarvis-wallet signer lock
    """
    from ..client import SignerClient

    with SignerClient(socket) as client:
        reply = client.lock()
        path = client.socket_path
    if json_output:
        print_json({"locked": True, "was_unlocked": reply["wasUnlocked"], "socket_path": str(path)})
    else:
        typer.echo(f"Signer locked ({path})" if reply["wasUnlocked"] else f"Signer was already locked ({path})")


@app.command("unlock")
def signer_unlock(
    socket: Optional[Path] = SocketOption,
    secret_file: Optional[Path] = ClientSecretFileOption,
    passphrase_fd: Optional[int] = PassphraseFdOption,
    passphrase_credential: Optional[str] = PassphraseCredentialOption,
    json_output: bool = JsonOption,
) -> None:
    """Unlock the signer with its keystore's passphrase (asked on the terminal, or --passphrase-fd).

    A wrong passphrase is answered after a delay that grows with each failure (exit 7).

    Example: jarvis-wallet signer unlock
    """
    from ..client import SignerClient
    from ..passphrase_input import read_passphrase

    with SignerClient(socket, secret_file=secret_file) as client:
        passphrase = read_passphrase(fd=passphrase_fd, credential=passphrase_credential,
                                     prompt="Passphrase of the signer's keystore: ")
        try:
            text = passphrase._bytes().decode("utf-8")
        except UnicodeDecodeError:
            from ..errors import KeyMaterialError

            raise KeyMaterialError("the passphrase is not UTF-8 text") from None
        finally:
            passphrase.wipe()
        reply = client.unlock(text, timeout=60.0)  # argon2id and the failure delay take their time
        del text
        path = client.socket_path
    if json_output:
        print_json({"locked": False, "was_locked": reply["wasLocked"], "socket_path": str(path)})
    else:
        typer.echo(f"Signer unlocked ({path})" if reply["wasLocked"] else f"Signer was not locked ({path})")


def _raise_if_dead(socket_path: Path, unavailable) -> None:
    """A pid file whose process is gone: the signer died without cleaning up; say so."""
    from ..config import default_log_path, default_pid_path
    from ..errors import SignerUnavailable
    from ..signer import pid_is_running, read_pid_file
    from ..signer_log import tail

    pid = read_pid_file(default_pid_path(socket_path))
    if pid is None or pid_is_running(pid):
        return
    log_path = default_log_path(socket_path)
    last = _last_event(tail(log_path, 1))
    raise SignerUnavailable(
        f"the signer (pid {pid}) for {socket_path} is dead: it left its pid file behind"
        + (f"; its last log entry is {last['event']!r} at {last['time']} (`jarvis-wallet signer logs`)" if last else "")
        + "; start it again with `jarvis-wallet signer start`",
        details={"state": "dead", "pid": pid, "log_path": str(log_path)},
    ) from None


def _last_event(lines: list[str]) -> dict | None:
    import json

    try:
        entry = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and {"event", "time"} <= set(entry) else None


@app.command("logs")
def signer_logs(
    socket: Optional[Path] = SocketOption,
    lines: int = bounded_option(20, "--lines", help="How many of the last lines to print first (0 to 10000).", low=0, high=10_000),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing lines as the signer writes them (Ctrl-C stops)."),
) -> None:
    """Print the signer's log: JSON lines, one per decision and per start or stop, no secrets.

    The log is signer.log beside the socket and pid file.

    Example: jarvis-wallet signer logs --follow
    """
    from ..config import default_log_path, resolve_socket_path
    from ..errors import NotFound
    from ..signer_log import follow as follow_log
    from ..signer_log import tail

    log_path = default_log_path(resolve_socket_path(socket))
    if not follow and not log_path.exists():
        raise NotFound(f"no signer log at {log_path}: no signer has started with this socket")
    for line in tail(log_path, lines):
        typer.echo(line)
    if follow:
        try:
            for line in follow_log(log_path):
                typer.echo(line)
        except KeyboardInterrupt:
            return
