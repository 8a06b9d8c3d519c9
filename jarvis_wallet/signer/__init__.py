"""The signer process: holds the key, serves the socket, stops cleanly.

One module per seam:

- ``settings``: what a signer is started with (``SignerSettings``), what it reports
  (``SignerInfo``) and the serving loop's tunables;
- ``lifecycle``: fork, readiness over a pipe, process hardening, ``serve`` for a supervisor;
- ``setup``: the socket directory and socket, the shared secret, the database write check;
- ``server``: the serving loop (accept, peer check, connection slots, every connection's
  reads and writes, batches, the decision timeout, ``halt()``);
- ``worker``: the one thread that talks to the database and decides batches;
- ``pidfile``: pid files and stopping a signer through its pid file.

The loop gathers the signing requests of every ready connection into one batch
and hands it to the worker, which decides it in one locked transaction with one
commit (see ``signing.py``); the loop writes the replies after the commit.
"""

from __future__ import annotations

from .lifecycle import SignerHandle, serve, start_signer
from .pidfile import pid_is_running, read_pid_file, stop_pid, stop_signer
from .settings import (
    BACKLOG_PER_CONNECTION,
    DECISION_TIMEOUT_SECONDS,
    DEFAULT_CONNECTION_WAIT_SECONDS,
    DEFAULT_IDLE_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_START_TIMEOUT_SECONDS,
    MAX_BATCH,
    MAX_PENDING_REFUSALS,
    REFUSAL_READ_SECONDS,
    SignerInfo,
    SignerSettings,
    listen_backlog,
)

__all__ = [
    "BACKLOG_PER_CONNECTION",
    "DECISION_TIMEOUT_SECONDS",
    "DEFAULT_CONNECTION_WAIT_SECONDS",
    "DEFAULT_IDLE_TIMEOUT_SECONDS",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_START_TIMEOUT_SECONDS",
    "MAX_BATCH",
    "MAX_PENDING_REFUSALS",
    "REFUSAL_READ_SECONDS",
    "SignerHandle",
    "SignerInfo",
    "SignerSettings",
    "listen_backlog",
    "pid_is_running",
    "read_pid_file",
    "serve",
    "start_signer",
    "stop_pid",
    "stop_signer",
]
