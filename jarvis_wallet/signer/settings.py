"""What a signer is started with and what it reports, and the serving loop's tunables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import protocol
from ..decision_budget import DEFAULT_FREE_DECISION_BURST, DEFAULT_FREE_DECISIONS_PER_SECOND

DEFAULT_START_TIMEOUT_SECONDS = 15.0
DEFAULT_IDLE_TIMEOUT_SECONDS = 60.0
DEFAULT_MAX_CONNECTIONS = 64
# A connection over the cap waits this long for a slot before it is answered `busy`.
DEFAULT_CONNECTION_WAIT_SECONDS = 5.0
# Without --listen-backlog: this many waiting connections per connection served.
BACKLOG_PER_CONNECTION = 8
# A connection turned away (busy, peer_not_allowed) is answered after its first line, or after
# this long: a client that writes at once must not lose the answer to EPIPE.
REFUSAL_READ_SECONDS = 1.0
# Refusals waiting for their first line at once; past this, answered without waiting.
MAX_PENDING_REFUSALS = 64
MAX_BATCH = 64
# How long a signing request may wait for its decision (then database_unavailable, nothing released);
# the worker's own lock timeout is shorter.
DECISION_TIMEOUT_SECONDS = 30.0
# How often the metrics textfile is rewritten (and the wallets' headroom read).
DEFAULT_METRICS_INTERVAL_SECONDS = 15.0



@dataclass(frozen=True)
class SignerSettings:
    """Everything the signer needs to start. The key itself is never here: only where to read it."""

    socket_path: Path
    database_url: str
    keypair_path: Path | None = None  # None: read SOLANA_PRIVATE_KEY in the child
    secret_file: Path | None = None  # None: SIGNER_SHARED_SECRET, else the file beside the socket
    allowed_uids: tuple[int, ...] = ()
    socket_group: int | None = None  # with allowed_uids: the group that may reach the socket
    legacy_protocol: bool = False
    freshness_window_ms: int = protocol.DEFAULT_FRESHNESS_WINDOW_MS
    idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    # Connections that may wait for a slot, and the kernel's listen queue; None: 8 per slot.
    listen_backlog: int | None = None
    connection_wait_seconds: float = DEFAULT_CONNECTION_WAIT_SECONDS
    # Free decisions (refusals, signatures of next to no spend) each uid may have recorded
    # (decision_budget.py); None records every decision, however many: for load tests only.
    free_decisions_per_second: float | None = DEFAULT_FREE_DECISIONS_PER_SECOND
    free_decision_burst: int = DEFAULT_FREE_DECISION_BURST
    decision_timeout_seconds: float = DECISION_TIMEOUT_SECONDS
    # The keystore's passphrase (keystore.Passphrase) when keypair_path is a keystore: read by
    # the caller before the fork (never from argv or the environment), wiped once used.
    passphrase: object | None = field(default=None, repr=False, compare=False)
    # Lock the key by itself this long after start or the last unlock (key_lock.py); None: never.
    key_ttl_seconds: float | None = None
    # Metrics (metrics.py): a node_exporter textfile, and/or a loopback HTTP listener "HOST:PORT".
    metrics_file: Path | None = None
    metrics_listen: str | None = None
    metrics_interval_seconds: float = DEFAULT_METRICS_INTERVAL_SECONDS
    # Run (argv by shell words, no shell) with a JSON document on stdin per new approval request.
    approval_notify_command: str | None = None


def listen_backlog(settings: SignerSettings) -> int:
    """How many connections may wait for a slot (and the kernel may queue before accept)."""
    if settings.listen_backlog is not None:
        return settings.listen_backlog
    return BACKLOG_PER_CONNECTION * settings.max_connections


@dataclass(frozen=True)
class SignerInfo:
    """What a started signer reports: all public."""

    public_key: str
    pid: int
    socket_path: str
    secret_path: str | None  # None when the secret came from SIGNER_SHARED_SECRET
    pid_path: str
    database: str = ""  # the database as named in messages (no password)
    version: str = ""  # jarvis-wallet's version
    log_path: str = ""  # JSON lines, one per decision and lifecycle event (signer_log.py)
    keystore: bool = False  # the key came from an encrypted keystore (so it can be unlocked)
    key_ttl_seconds: float | None = None
    metrics_file: str | None = None
    metrics_listen: str | None = None  # "HOST:PORT" as bound

