"""What gets signed, and by whom: messages, databases, a real signer, and the workloads.

Two realistic transactions, both paid from the signer's wallet:

* ``legacy``: set compute unit limit, set compute unit price, System transfer (legacy message);
* ``v0_lookup``: the same three instructions in a v0 message whose transfer destination is an
  entry of an address lookup table.

Each request sent to the signer is a distinct message (a fresh random recent blockhash), so
the signer never takes its "already signed this message" shortcut.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import base58
import nacl.signing

from jarvis_wallet.client import SignerClient
from jarvis_wallet.db import session
from jarvis_wallet.limits import set_limits
from jarvis_wallet.migrations import apply_migrations
from jarvis_wallet.signer import SignerHandle, SignerSettings, start_signer
from jarvis_wallet.solana import (
    COMPUTE_BUDGET_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    AddressTableLookup,
    CompiledInstruction,
    build_transfer_message,
    encode_message,
)

TRANSFER_LAMPORTS = 1_000_000  # 0.001 SOL
COMPUTE_UNIT_LIMIT = 200_000
COMPUTE_UNIT_PRICE = 10_000  # micro-lamports per unit: a 2,000-lamport priority fee
LOOKUP_TABLE_ENTRY = 5
# Far above anything a run can spend, so that no request is ever refused.
PER_TX_LIMIT_LAMPORTS = 10**12
DAILY_LIMIT_LAMPORTS = 10**15
TRANSACTION_KINDS = ("legacy", "v0_lookup")


@dataclass(frozen=True)
class MessageTemplate:
    """A serialized message whose 32-byte recent blockhash can be replaced cheaply."""

    before_blockhash: bytes
    after_blockhash: bytes

    @classmethod
    def around(cls, message: bytes, blockhash: bytes) -> MessageTemplate:
        offset = message.index(blockhash)
        return cls(message[:offset], message[offset + len(blockhash):])

    def unique(self, count: int) -> list[bytes]:
        """``count`` distinct messages (random blockhashes), built before any timing starts."""
        randomness = os.urandom(32 * count)
        return [self.before_blockhash + randomness[32 * i : 32 * i + 32] + self.after_blockhash for i in range(count)]


def legacy_transfer(payer: bytes, blockhash: bytes) -> bytes:
    return build_transfer_message(
        from_pubkey=payer,
        to_pubkey=os.urandom(32),
        lamports=TRANSFER_LAMPORTS,
        recent_blockhash=blockhash,
        compute_unit_limit=COMPUTE_UNIT_LIMIT,
        compute_unit_price=COMPUTE_UNIT_PRICE,
    )


def v0_lookup_transfer(payer: bytes, blockhash: bytes) -> bytes:
    """A v0 transfer whose destination is the first (writable) address loaded from a table."""
    keys = [payer, *sorted([SYSTEM_PROGRAM_ID, COMPUTE_BUDGET_PROGRAM_ID])]
    system, budget = keys.index(SYSTEM_PROGRAM_ID), keys.index(COMPUTE_BUDGET_PROGRAM_ID)
    destination = len(keys)  # loaded addresses are indexed after the static keys
    instructions = [
        CompiledInstruction(budget, (), bytes([2]) + COMPUTE_UNIT_LIMIT.to_bytes(4, "little")),
        CompiledInstruction(budget, (), bytes([3]) + COMPUTE_UNIT_PRICE.to_bytes(8, "little")),
        CompiledInstruction(system, (0, destination), (2).to_bytes(4, "little") + TRANSFER_LAMPORTS.to_bytes(8, "little")),
    ]
    return encode_message(  # parses its output back, so the template is known to be valid
        version=0,
        num_required_signatures=1,
        num_readonly_signed_accounts=0,
        num_readonly_unsigned_accounts=2,
        account_keys=keys,
        recent_blockhash=blockhash,
        instructions=instructions,
        address_table_lookups=[AddressTableLookup(os.urandom(32), (LOOKUP_TABLE_ENTRY,), ())],
    )


def message_template(kind: str, payer: bytes) -> MessageTemplate:
    blockhash = os.urandom(32)
    build = {"legacy": legacy_transfer, "v0_lookup": v0_lookup_transfer}[kind]
    return MessageTemplate.around(build(payer, blockhash), blockhash)


# -- databases --------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_schema(admin_url: str) -> Iterator[str]:
    """A URL whose search_path is a new empty schema; the schema is dropped afterwards."""
    import psycopg2

    schema = f"jw_bench_{uuid.uuid4().hex[:16]}"
    conn = psycopg2.connect(admin_url, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{schema}"')
        try:
            separator = "&" if "?" in admin_url else "?"
            yield f"{admin_url}{separator}options={quote(f'-csearch_path={schema}')}"
        finally:
            with conn.cursor() as cur:
                cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        conn.close()


def postgres_version(admin_url: str) -> str:
    import psycopg2

    conn = psycopg2.connect(admin_url, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            return cur.fetchone()[0]
    finally:
        conn.close()


def prepare_database(url: str, wallet: str) -> None:
    """Apply the schema and give the wallet limits it can never reach."""
    with session(url, create=True, require_schema=False) as db:
        apply_migrations(db)
    with session(url):
        set_limits(wallet, per_tx_lamports=PER_TX_LIMIT_LAMPORTS, daily_lamports=DAILY_LIMIT_LAMPORTS)


@contextlib.contextmanager
def fresh_database(workdir: Path, backend: str, postgres_admin_url: str | None = None) -> Iterator[str]:
    """The URL of a new, empty database: a SQLite file in ``workdir``, or a PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{Path(tempfile.mkdtemp(dir=workdir, prefix='sqlite-')) / 'wallet.db'}"
    else:
        with postgres_schema(postgres_admin_url) as url:
            yield url


@contextlib.contextmanager
def fresh_signer(workdir: Path, backend: str, keypair_path: Path, wallet: str,
                 postgres_admin_url: str | None = None) -> Iterator[SignerHandle]:
    """A real forked signer on a new database with an empty ledger; stopped (and the database
    dropped) on exit.

    An empty ledger for every case: the spend of the last 24 hours is read on every signature,
    so a case's speed would otherwise depend on how many cases ran before it.
    """
    with fresh_database(workdir, backend, postgres_admin_url) as url:
        prepare_database(url, wallet)
        with signer_on(workdir, url, keypair_path) as handle:
            yield handle


@contextlib.contextmanager
def signer_on(workdir: Path, url: str, keypair_path: Path) -> Iterator[SignerHandle]:
    """A real forked signer on a prepared database, with a socket directory of its own."""
    socket_path = Path(tempfile.mkdtemp(dir=workdir, prefix="run-")) / "signer.sock"
    # Foreground mode: the signer also dies with this process.
    with start_signer(SignerSettings(socket_path=socket_path, database_url=url, keypair_path=keypair_path)) as handle:
        yield handle


def verify_signer_signature(handle: SignerHandle, template: MessageTemplate) -> None:
    """One full sign through the signer, its signature checked with PyNaCl."""
    (message,) = template.unique(1)
    with SignerClient(handle.socket_path) as client:
        signed = client.sign_transaction(message, purpose="benchmark check")
    if signed.duplicate:
        raise RuntimeError("the signer took its duplicate shortcut for a fresh message")
    public_key = base58.b58decode(handle.public_key)
    nacl.signing.VerifyKey(public_key).verify(message, base58.b58decode(signed.signature))


# -- workloads (see harness.Workload) ---------------------------------------------------------


@contextlib.contextmanager
def pynacl_workload(data: bytes, budget: int):
    """PyNaCl signs in this process; no socket, no checks: the signature alone."""
    signing_key = nacl.signing.SigningKey.generate()
    yield lambda i: signing_key.sign(data)


@contextlib.contextmanager
def ping_workload(socket_path: Path, budget: int):
    with SignerClient(socket_path) as client:
        yield lambda i: client.ping()


@contextlib.contextmanager
def sign_workload(socket_path: Path, template: MessageTemplate, budget: int):
    """The full path: HMAC'd request, parse, policy, committed record, signature back."""
    messages = template.unique(budget)
    with SignerClient(socket_path) as client:
        yield lambda i: client.sign_transaction(messages[i], purpose="benchmark")
