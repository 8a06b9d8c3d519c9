"""`jarvis-wallet mcp`: serve the wallet's tools to a model over MCP on stdio."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import database_url
from .sign import SecretFileOption, SocketOption, TimeoutOption


def mcp(
    ctx: typer.Context,
    socket: Optional[Path] = SocketOption,
    secret_file: Optional[Path] = SecretFileOption,
    timeout: float = TimeoutOption,
    rpc_url: Optional[str] = typer.Option(
        None, "--rpc-url", help="Solana JSON-RPC endpoint (http or https): also serve balance and transfer.",
    ),
    tools: Optional[str] = typer.Option(
        None, "--tools", metavar="NAME,...",
        help="Serve only these tools (comma-separated), e.g. wallet_status,inspect_transaction,recent_transactions "
        "for a model that may look but not sign. Default: all.",
    ),
) -> None:
    r"""Serve the wallet to a model as MCP tools on stdin/stdout (for Claude, Cursor, LangChain, ...).

    The agent's side: it asks the signer for signatures with the shared secret and reads the
    limits and the audit trail from the database (--database-url); it never holds the key.
    Tools: wallet_status, inspect_transaction, sign_transaction, sign_message,
    recent_transactions, wait_for_approval; with --rpc-url also balance and transfer (SOL or a
    registered token). Needs the MCP SDK: pip install 'jarvis-wallet\[mcp]'. See docs/agents.md.

    Example: jarvis-wallet mcp --socket /run/user/1000/jarvis-wallet/signer.sock
    """
    from ..mcp_server import McpSettings, serve_stdio

    names = None if tools is None else tuple(name.strip() for name in tools.split(",") if name.strip())
    serve_stdio(
        McpSettings(
            socket_path=socket, secret_file=secret_file, database_url=database_url(ctx), timeout_seconds=timeout, tools=names,
            rpc_url=rpc_url,
        )
    )
