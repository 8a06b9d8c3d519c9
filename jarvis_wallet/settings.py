"""The ``wallet_config`` table: known keys are validated, user keys are namespaced."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import InvalidConfig, NotFound
from .solana.pubkey import normalize_pubkey

if TYPE_CHECKING:
    from .models import WalletConfig

# The models (and peewee) are imported by the functions that read or write the table, so that
# checking a value (``validate_setting``, e.g. `mcp --rpc-url` at start-up) costs no driver.

USER_KEY_PREFIX = "x."
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 4096


def _url_validator(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def validate(value: str) -> str:
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if parts is None or parts.scheme.lower() not in schemes or not parts.hostname:
            raise InvalidConfig(f"invalid value {value!r}: expected a {' or '.join(schemes)} URL")
        return value

    return validate


def _pubkey_validator(value: str) -> str:
    return normalize_pubkey(value)


def _pubkey_list_validator(what: str) -> Callable[[str], str]:
    """Comma-separated base58 keys, normalised; empty means none."""

    def validate(value: str) -> str:
        keys = [part.strip() for part in value.split(",") if part.strip()]
        return ",".join(normalize_pubkey(key, what=what) for key in keys)

    return validate


@dataclass(frozen=True)
class KnownKey:
    description: str
    validate: Callable[[str], str]


KNOWN_KEYS: dict[str, KnownKey] = {
    "rpc_url": KnownKey("Solana JSON-RPC endpoint (http or https)", _url_validator(("http", "https"))),
    "wss_url": KnownKey("Solana websocket endpoint (ws or wss)", _url_validator(("ws", "wss"))),
    "wallet_public_key": KnownKey("The wallet the signer holds; the default --wallet", _pubkey_validator),
    "allowed_programs": KnownKey(
        "Programs the wallet's key may be passed to, besides System, Compute Budget and Memo "
        "(comma-separated program ids)",
        _pubkey_list_validator("program id"),
    ),
    "allowed_destinations": KnownKey(
        "If set, the only addresses the wallet may pay (comma-separated)", _pubkey_list_validator("destination")
    ),
    "durable_nonce_accounts": KnownKey(
        "Nonce accounts (authority: the wallet) that durable-nonce transactions may use; unset: none "
        "(comma-separated; see docs/policy.md)",
        _pubkey_list_validator("nonce account"),
    ),
    "approval_ttl_seconds": KnownKey(
        "Seconds an approval request waits for the operator, and an approval waits to be used "
        "(60 to 604800; default 900)",
        lambda value: _validate_ttl(value),
    ),
    "approval_max_pending": KnownKey(
        "Approval requests a wallet may have waiting at once; beyond, a new one is refused "
        "(too_many_pending_approvals; 1 to 1000; default 20)",
        lambda value: _validate_max_pending(value),
    ),
}


def _validate_ttl(value: str) -> str:
    from .approvals import validate_ttl

    return validate_ttl(value)


def _validate_max_pending(value: str) -> str:
    from .approvals import validate_max_pending

    return validate_max_pending(value)


def validate_setting(key: str, value: str) -> tuple[str, str]:
    """Return the (key, value) to store, or raise InvalidConfig with the reason."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or any(ch.isspace() for ch in key):
        raise InvalidConfig(f"invalid configuration key {key!r}")
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidConfig(f"value for {key!r} is longer than {MAX_VALUE_LENGTH} characters")
    if key in KNOWN_KEYS:
        return key, KNOWN_KEYS[key].validate(value.strip())
    if key.startswith(USER_KEY_PREFIX) and len(key) > len(USER_KEY_PREFIX):
        return key, value
    known = ", ".join(sorted(KNOWN_KEYS))
    raise InvalidConfig(
        f"unknown configuration key {key!r}: known keys are {known}; "
        f"put your own under '{USER_KEY_PREFIX}' (e.g. {USER_KEY_PREFIX}{key})"
    )


def set_setting(key: str, value: str) -> WalletConfig:
    key, value = validate_setting(key, value)
    from .models import WalletConfig, utc_now

    description = KNOWN_KEYS[key].description if key in KNOWN_KEYS else None
    now = utc_now()
    (
        WalletConfig.insert(key=key, value=value, description=description, updated_at=now)
        .on_conflict(
            conflict_target=[WalletConfig.key],
            update={WalletConfig.value: value, WalletConfig.updated_at: now},
        )
        .execute()
    )
    return WalletConfig.get(WalletConfig.key == key)


def get_setting(key: str, default: str | None = None) -> str | None:
    from .models import WalletConfig

    row = WalletConfig.get_or_none(WalletConfig.key == key)
    return row.value if row else default


def require_setting(key: str) -> WalletConfig:
    from .models import WalletConfig

    row = WalletConfig.get_or_none(WalletConfig.key == key)
    if row is None:
        raise NotFound(f"configuration key {key!r} is not set")
    return row


def list_settings() -> list[WalletConfig]:
    from .models import WalletConfig

    return list(WalletConfig.select().order_by(WalletConfig.key))


def unset_setting(key: str) -> None:
    from .models import WalletConfig

    if not WalletConfig.delete().where(WalletConfig.key == key).execute():
        raise NotFound(f"configuration key {key!r} is not set")


def setting_to_dict(row: WalletConfig) -> dict:
    from .models import iso_utc

    return {
        "key": row.key,
        "value": row.value,
        "description": row.description,
        "updated_at": iso_utc(row.updated_at),
    }
