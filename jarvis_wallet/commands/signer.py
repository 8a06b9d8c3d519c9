"""`jarvis-wallet signer start|serve|stop|status`."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import List, Optional

import typer

from ._common import JsonOption, database_url, print_fields, print_json, say

app = typer.Typer(help="Run the signer: the only process that holds the key.", no_args_is_help=True)

KeypairOption = typer.Option(
    None, "--keypair", help="Keypair file (0600). Default: the SOLANA_PRIVATE_KEY environment variable."
)
SocketOption = typer.Option(
    None, "--socket", help="Socket path. Default: $SIGNER_SOCKET_PATH, else $XDG_RUNTIME_DIR/jarvis-wallet/signer.sock."
)
SecretFileOption = typer.Option(
    None, "--secret-file",
    help="Shared secret file (0600, 32+ bytes). Default: $SIGNER_SHARED_SECRET, else a file generated beside the socket.",
)


MAX_FRESHNESS_WINDOW_SECONDS = 300
# A waiting client holds a descriptor; past a minute it has given up anyway.
MAX_CONNECTION_WAIT_SECONDS = 60


def _settings(
    ctx, *, keypair, socket, secret_file, allow_uid, socket_group, legacy_protocol, freshness_window, max_connections,
    idle_timeout, free_decision_rate, free_decision_burst, listen_backlog=None, connection_wait=None,
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
    # `not x > 0` rather than `x <= 0`: a NaN fails it too.
    if not (
        freshness_window > 0 and max_connections >= 1 and idle_timeout > 0 and free_decision_rate > 0 and free_decision_burst >= 1
    ):
        raise InvalidConfig(
            "--freshness-window, --max-connections, --idle-timeout, --free-decision-rate and --free-decision-burst must be positive"
        )
    if listen_backlog is not None and not listen_backlog >= 1:
        raise InvalidConfig("--listen-backlog must be at least 1")
    if connection_wait is not None and not 0 <= connection_wait <= MAX_CONNECTION_WAIT_SECONDS:
        raise InvalidConfig(f"--connection-wait must be between 0 and {MAX_CONNECTION_WAIT_SECONDS} seconds")
    if freshness_window > MAX_FRESHNESS_WINDOW_SECONDS:
        # Each request is looked up in every second of the window: a day-long window would
        # cost milliseconds a request, and a captured request would stay fresh all day.
        raise InvalidConfig(f"--freshness-window must be at most {MAX_FRESHNESS_WINDOW_SECONDS} seconds")
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
        **({} if connection_wait is None else {"connection_wait_seconds": connection_wait}),
    )


def _ready_line(info) -> str:
    secret = info.secret_path or "$SIGNER_SHARED_SECRET"
    return f"Signer ready: wallet {info.public_key}, pid {info.pid}, socket {info.socket_path}, secret {secret}"


AllowUidOption = typer.Option(None, "--allow-uid", help="Another uid allowed to connect (repeatable); needs --socket-group.")
SocketGroupOption = typer.Option(None, "--socket-group", help="Group (name or gid) given access to the socket directory with --allow-uid.")
LegacyOption = typer.Option(False, "--legacy-protocol", help="Also accept the original @jarvis/wallet line format (no freshness check; see docs/protocol.md).")
FreshnessOption = typer.Option(30.0, "--freshness-window", help="Seconds a request's timestamp may differ from the signer's clock (at most 300).")
MaxConnectionsOption = typer.Option(64, "--max-connections", help="Connections served at once; more wait for a slot (--connection-wait).")
ListenBacklogOption = typer.Option(
    None, "--listen-backlog", help="Connections that may wait for a slot, and the kernel's listen queue. Default: 8 x --max-connections."
)
ConnectionWaitOption = typer.Option(
    5.0, "--connection-wait", help="Seconds a connection over --max-connections waits for a slot before it is answered 'busy'."
)
IdleTimeoutOption = typer.Option(60.0, "--idle-timeout", help="Seconds a connection may sit idle before it is closed.")
# --refusal-rate and --refusal-burst: the names from before signatures of next to no spend counted too.
FreeDecisionRateOption = typer.Option(
    10.0, "--free-decision-rate", "--refusal-rate",
    help="Free decisions (refusals, signatures spending under 5,000 lamports) recorded per second for each uid; "
    "past that (and --free-decision-burst), all its signing requests get 'rate_limited', undecided and unrecorded.",
)
FreeDecisionBurstOption = typer.Option(
    100, "--free-decision-burst", "--refusal-burst",
    help="Free decisions a uid may have recorded at once before --free-decision-rate applies.",
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
    timeout: float = typer.Option(15.0, "--timeout", help="Seconds to wait for the signer to report readiness."),
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
    )
    handle = start_signer(settings, detach=detach, timeout=timeout)
    if json_output:
        print_json({"public_key": handle.info.public_key, "pid": handle.info.pid, "socket_path": handle.info.socket_path,
                    "secret_path": handle.info.secret_path, "pid_path": handle.info.pid_path, "detached": detach})
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
    )
    code = serve(settings, on_ready=lambda info: say(_ready_line(info)))
    raise typer.Exit(code)


@app.command("stop")
def signer_stop(socket: Optional[Path] = SocketOption) -> None:
    """Stop the signer serving a socket (found through its pid file).

    Example: jarvis-wallet signer stop
    """
    from ..config import resolve_socket_path
    from ..signer import stop_signer

    path = resolve_socket_path(socket)
    pid = stop_signer(path)
    typer.echo(f"Stopped signer pid {pid} ({path})")


@app.command("status")
def signer_status(
    socket: Optional[Path] = SocketOption,
    secret_file: Optional[Path] = SecretFileOption,
    json_output: bool = JsonOption,
) -> None:
    """Ask the signer for its pid, public key, uptime and counters.

    Example: jarvis-wallet signer status --json
    """
    from ..client import SignerClient

    with SignerClient(socket, secret_file=secret_file) as client:
        client.ping()  # no signer is exit 6, even when there is no secret file to find yet
        status = client.status()
    data = {
        "public_key": status["publicKey"],
        "pid": status["pid"],
        "uptime_seconds": status["uptimeSeconds"],
        "signed": status["signed"],
        "refused": status["refused"],
        "rate_limited": status.get("rateLimited"),  # None from a signer older than the field
        "socket_path": str(client.socket_path),
    }
    if json_output:
        print_json(data)
    else:
        print_fields("Signer", [(k, str(v)) for k, v in data.items()])
