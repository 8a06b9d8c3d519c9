"""Database URLs: what ``sqlite:///PATH`` and ``postgresql://...`` name, checked without a driver.

Apart from ``db`` so that a process can refuse a malformed URL at start-up without importing
peewee and psycopg2 (`jarvis-wallet mcp` answers ``tools/list`` before any database is opened).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import InvalidConfig

POSTGRES_CONNECT_TIMEOUT_SECONDS = 5
# Libpq's defaults leave a connection to a partitioned server (packets dropped, nothing reset)
# waiting for TCP's retransmissions, about 15 minutes, while the signer's decisions queue up.
# With these, unacknowledged data fails the connection after 10 s, and an idle or waiting one
# is probed from 5 s on and failed after 3 unanswered probes 2 s apart. A URL may override each.
POSTGRES_DEFAULT_PARAMS = {
    "connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,  # milliseconds
}
# Libpq parameters accepted in a URL's query string.
POSTGRES_QUERY_PARAMS = frozenset(
    {"sslmode", "sslrootcert", "sslcert", "sslkey", "options", "application_name", *POSTGRES_DEFAULT_PARAMS}
)


@dataclass(frozen=True)
class DatabaseTarget:
    """What a URL names, with any password left out of ``display``."""

    backend: str  # "sqlite" or "postgresql"
    display: str
    sqlite_path: Path | None = None
    postgres_params: dict | None = None


def parse_database_url(url: str) -> DatabaseTarget:
    """Check a database URL and say what it names; raise InvalidConfig otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidConfig("empty database URL")
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidConfig(f"malformed database URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
            raise InvalidConfig(
                f"malformed SQLite URL {url!r}: expected sqlite:///ABSOLUTE/PATH/wallet.db"
            )
        path = Path("/" + unquote(parts.path).lstrip("/"))
        return DatabaseTarget(backend="sqlite", display=f"sqlite://{path}", sqlite_path=path)
    if scheme in ("postgresql", "postgres"):
        dbname = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not dbname:
            raise InvalidConfig(
                f"malformed PostgreSQL URL: expected postgresql://USER@HOST:PORT/DATABASE"
            )
        params: dict = {"host": parts.hostname, "port": port or 5432, "dbname": dbname}
        if parts.username:
            params["user"] = unquote(parts.username)
        if parts.password:
            params["password"] = unquote(parts.password)
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key not in POSTGRES_QUERY_PARAMS:
                raise InvalidConfig(f"unsupported PostgreSQL URL parameter {key!r}")
            params[key] = value
        for key, value in POSTGRES_DEFAULT_PARAMS.items():
            params.setdefault(key, value)
        user = f"{params['user']}@" if "user" in params else ""
        display = f"postgresql://{user}{params['host']}:{params['port']}/{dbname}"
        return DatabaseTarget(backend="postgresql", display=display, postgres_params=params)
    shown = scheme or url
    raise InvalidConfig(
        f"unsupported database URL scheme {shown!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
    )
