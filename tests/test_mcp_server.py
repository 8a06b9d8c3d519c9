"""`jarvis-wallet mcp` end to end, driven by the MCP SDK's own stdio client.

A real forked signer on a real socket and database (the ``signers`` fixture); the MCP
server is the real command in a subprocess (``python -m jarvis_wallet mcp``); the test
speaks to it only through ``mcp.client.stdio`` and ``ClientSession``. Nothing of the MCP
layer is replaced. Signatures are checked with PyNaCl, spends against the audit trail.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys

import anyio
import base58
import nacl.signing
import pytest
# The dev extra installs the SDK: without it these fail rather than skip (CI never skips).
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from conftest import transfer_message

TOOLS = {"wallet_status", "inspect_transaction", "sign_transaction", "sign_message", "recent_transactions",
         "wait_for_approval"}
FEE = 5000
SOL = 1_000_000_000


def server_env(**extra: str) -> dict[str, str]:
    """The variables the test process has (its isolated HOME and XDG directories), since the
    SDK's client passes only a short safe list to the server by default."""
    names = ("HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "PATH", "TMPDIR")
    env = {name: os.environ[name] for name in names if name in os.environ}
    env.update(extra)
    return env


def server_params(*args: str, url: str | None = None, env: dict[str, str] | None = None) -> StdioServerParameters:
    root = ["--database-url", url] if url else []
    return StdioServerParameters(
        command=sys.executable, args=["-m", "jarvis_wallet", *root, "mcp", *args], env=env or server_env()
    )


@contextlib.asynccontextmanager
async def connect(params: StdioServerParameters, errlog_path: str = os.devnull):
    with open(errlog_path, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def verify(wallet: str, message: bytes, signature: str) -> None:
    nacl.signing.VerifyKey(base58.b58decode(wallet)).verify(message, base58.b58decode(signature))


class Wallet:
    """One running signer, and the MCP server command pointed at it."""

    def __init__(self, signers) -> None:
        self.signers = signers
        self.handle = signers.start()
        self.address = self.handle.public_key
        self.url = signers.database_url

    def params(self, *args: str, **kwargs) -> StdioServerParameters:
        return server_params("--socket", str(self.handle.socket_path), *args, url=self.url, **kwargs)

    def limits(self, per_tx: int, daily: int) -> None:
        self.signers.set_limits(per_tx=per_tx, daily=daily)

    def message(self, lamports: int, **kwargs) -> bytes:
        return transfer_message(from_key=base58.b58decode(self.address), lamports=lamports, **kwargs)

    def rows(self) -> list[dict]:
        from jarvis_wallet.db import session
        from jarvis_wallet.ledger import list_transactions, transaction_to_dict

        with session(self.url):
            return [transaction_to_dict(row) for row in list_transactions(limit=1000)]

    def run(self, body, *args: str, errlog_path: str = os.devnull) -> None:
        """Run ``body(session)`` against a fresh `jarvis-wallet mcp` process."""

        async def main() -> None:
            async with connect(self.params(*args), errlog_path) as session:
                await body(session)

        anyio.run(main)


@pytest.fixture
def wallet(signers):
    return Wallet(signers)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def call(session, name: str, arguments: dict | None = None) -> tuple[bool, dict]:
    result = await session.call_tool(name, arguments or {})
    assert result.structured_content is not None
    # The text block says the same as the structured content: models read one or the other.
    assert json.loads(result.content[0].text) == result.structured_content
    return bool(result.is_error), result.structured_content


# -- tools/list ----------------------------------------------------------------------------------


def test_lists_the_tools_with_strict_schemas_without_a_signer_or_a_database(tmp_path):
    """tools/list is static: no signer on the socket, no database at the URL, and it answers."""
    from jsonschema import Draft202012Validator

    params = server_params("--socket", str(tmp_path / "nowhere" / "signer.sock"), url=f"sqlite:///{tmp_path}/none.db")

    async def main() -> None:
        async with connect(params) as session:
            listed = await session.list_tools()
            tools = {tool.name: tool for tool in listed.tools}
            assert set(tools) == TOOLS
            for tool in tools.values():
                schema = tool.input_schema
                Draft202012Validator.check_schema(schema)
                assert schema["type"] == "object" and schema["additionalProperties"] is False
                assert len(tool.description) > 80, tool.name
                for rule in schema["properties"].values():
                    assert rule["type"] in ("string", "integer")  # amounts are never floats
                    assert rule.get("description"), tool.name
            assert tools["sign_transaction"].input_schema["required"] == ["transaction_base64", "purpose"]
            assert tools["sign_transaction"].annotations.read_only_hint is False
            assert tools["wallet_status"].annotations.read_only_hint is True

    anyio.run(main)


def test_tool_descriptions_are_static_text_the_same_for_every_wallet(signers, tmp_path):
    """Two servers for two different signers list byte-identical tools: nothing of a wallet
    (address, limits) reaches a description, which a model would take as instructions."""
    first = signers.start(name="a.json")
    second = signers.start(name="b.json")
    listings = []

    async def main() -> None:
        for handle in (first, second):
            async with connect(server_params("--socket", str(handle.socket_path), url=signers.database_url)) as session:
                listings.append([tool.model_dump() for tool in (await session.list_tools()).tools])

    anyio.run(main)
    assert listings[0] == listings[1]
    text = repr(listings[0])
    assert first.public_key not in text and second.public_key not in text


# -- each tool -----------------------------------------------------------------------------------


def test_wallet_status_reports_address_limits_and_the_24_hour_spend(wallet):
    wallet.limits(per_tx=800_000_000, daily=SOL)

    async def body(session) -> None:
        is_error, status = await call(session, "wallet_status")
        assert not is_error, status
        assert status["wallet"] == wallet.address
        assert status["signer"]["running"] is True
        assert status["limits"] == {
            "per_transaction_limit": "0.8 SOL", "per_transaction_limit_lamports": "800000000",
            "daily_limit": "1 SOL", "daily_limit_lamports": str(SOL),
            "spent_24h": "0 SOL", "spent_24h_lamports": "0",
            "remaining_24h": "1 SOL", "remaining_24h_lamports": str(SOL),
            "max_next_transaction": "0.8 SOL", "max_next_transaction_lamports": "800000000",
            "approval_threshold": None, "approval_threshold_lamports": None,  # no approval needed
            "tokens": [],
        }
        assert status["pending_approvals"] == []
        is_error, signed = await call(
            session, "sign_transaction", {"transaction_base64": b64(wallet.message(700_000_000 - FEE)), "purpose": "rent"}
        )
        assert not is_error, signed
        assert signed["spend_lamports"] == "700000000"
        is_error, status = await call(session, "wallet_status")
        limits = status["limits"]
        assert limits["spent_24h_lamports"] == "700000000"
        assert limits["remaining_24h_lamports"] == "300000000"
        assert limits["max_next_transaction"] == "0.3 SOL"  # what remains, below the per-transaction limit

    wallet.run(body)
    assert sum(row["lamports"] for row in wallet.rows() if row["status"] == "signed") == 700_000_000


def test_wallet_status_without_limits_says_every_transaction_is_refused(wallet):
    async def body(session) -> None:
        is_error, status = await call(session, "wallet_status")
        assert not is_error
        assert status["limits"] is None
        assert "no spend limits" in status["limits_note"] and "jarvis-wallet limits set" in status["limits_note"]

    wallet.run(body)


def test_sign_transaction_returns_a_valid_signature_and_counts_a_retry_once(wallet):
    wallet.limits(per_tx=SOL, daily=SOL)
    message = wallet.message(1_000_000)

    async def body(session) -> None:
        is_error, first = await call(session, "sign_transaction", {"transaction_base64": b64(message), "purpose": "pay invoice 42"})
        assert not is_error, first
        assert first["wallet"] == wallet.address
        assert first["spend_lamports"] == "1005000" and first["spend"] == "0.001005 SOL"
        assert first["fee_lamports"] == "5000"
        assert first["duplicate"] is False and first["sent"] is False
        assert first["tokens"] == []  # a SOL transfer counts no token
        signed = base64.b64decode(first["signed_transaction_base64"])
        assert signed[0] == 1 and signed[65:] == message
        verify(wallet.address, message, first["signature"])
        assert base58.b58decode(first["signature"]) == signed[1:65]
        is_error, again = await call(session, "sign_transaction", {"transaction_base64": b64(message), "purpose": "retry"})
        assert not is_error
        assert again["duplicate"] is True and again["signature"] == first["signature"]

    wallet.run(body)
    rows = wallet.rows()
    assert [row["status"] for row in rows] == ["duplicate", "signed"]
    assert rows[1]["purpose"] == "pay invoice 42" and rows[1]["lamports"] == 1_005_000


def test_a_refusal_is_a_tool_error_with_the_reason_code_and_the_numbers(wallet):
    wallet.limits(per_tx=3_000_000, daily=5_000_000)

    async def body(session) -> None:
        is_error, ok = await call(session, "sign_transaction", {"transaction_base64": b64(wallet.message(2_995_000)), "purpose": "one"})
        assert not is_error, ok
        is_error, refusal = await call(session, "sign_transaction", {"transaction_base64": b64(wallet.message(2_995_000)), "purpose": "two"})
        assert is_error
        assert refusal["ok"] is False
        assert refusal["reason"] == "daily_limit_exceeded"
        assert "daily limit" in refusal["message"]
        assert refusal["spend_lamports"] == "3000000" and refusal["fee_lamports"] == "5000"
        assert refusal["limits"]["spent_24h_lamports"] == "3000000"
        assert refusal["limits"]["remaining_24h_lamports"] == "2000000"
        assert refusal["limits"]["daily_limit_lamports"] == "5000000"
        is_error, too_big = await call(session, "sign_transaction", {"transaction_base64": b64(wallet.message(4_000_000)), "purpose": "big"})
        assert is_error and too_big["reason"] == "per_tx_limit_exceeded"
        assert too_big["spend_lamports"] == "4005000"

    wallet.run(body)
    statuses = [row["status"] for row in wallet.rows()]
    assert statuses == ["rejected", "rejected", "signed"]
    assert sum(row["lamports"] for row in wallet.rows() if row["status"] == "signed") == 3_000_000


def test_no_limits_is_refused_with_the_command_that_sets_them(wallet):
    async def body(session) -> None:
        is_error, refusal = await call(session, "sign_transaction", {"transaction_base64": b64(wallet.message(1000)), "purpose": "x"})
        assert is_error and refusal["reason"] == "no_limits"
        assert "limits set" in refusal["message"]
        assert "limits" not in refusal and refusal["spend_lamports"] == "6000"  # no limits to show

    wallet.run(body)


def test_sign_message_signs_the_offchain_envelope(wallet):
    wallet.limits(per_tx=SOL, daily=SOL)
    text = "Sign in to example.com\nNonce: 42"

    async def body(session) -> None:
        is_error, signed = await call(session, "sign_message", {"message": text, "purpose": "log in"})
        assert not is_error, signed
        envelope = base64.b64decode(signed["signed_message_base64"])
        assert envelope.startswith(b"\xffsolana offchain") and envelope.endswith(text.encode())
        verify(wallet.address, envelope, signed["signature"])

    wallet.run(body)
    (row,) = wallet.rows()
    assert row["kind"] == "message" and row["message_text"] == text and row["purpose"] == "log in"


def test_inspect_transaction_explains_and_previews_the_decision_without_recording(wallet):
    wallet.limits(per_tx=2_000_000, daily=SOL)
    to_key = os.urandom(32)
    small = wallet.message(1_000_000, to_key=to_key, memo="invoice 42")
    large = wallet.message(3_000_000)

    async def body(session) -> None:
        is_error, report = await call(session, "inspect_transaction", {"transaction_base64": b64(small)})
        assert not is_error, report
        assert report["wallet"] == wallet.address and report["wallet_is_fee_payer"] is True
        assert [ins["kind"] for ins in report["instructions"]] == ["transfer", "memo"]
        assert report["network_fee_lamports"] == "5000"
        assert report["spend_from_wallet_lamports"] == "1005000"
        assert report["payments"] == [
            {"to": base58.b58encode(to_key).decode(), "kind": "transfer", "amount": "0.001 SOL", "amount_lamports": "1000000"}
        ]
        assert report["signer_would_sign"] is True
        is_error, report = await call(session, "inspect_transaction", {"transaction_base64": b64(large)})
        assert report["signer_would_sign"] is False
        assert report["decision"]["reason"] == "per_tx_limit_exceeded"

    wallet.run(body)
    assert wallet.rows() == []


def test_recent_transactions_newest_first_with_refusals_and_filters(wallet):
    wallet.limits(per_tx=2_000_000, daily=SOL)

    async def body(session) -> None:
        await call(session, "sign_transaction", {"transaction_base64": b64(wallet.message(1000)), "purpose": "first"})
        await call(session, "sign_transaction", {"transaction_base64": b64(wallet.message(5_000_000)), "purpose": "too big"})
        await call(session, "sign_message", {"message": "hello"})
        is_error, recent = await call(session, "recent_transactions")
        assert not is_error, recent
        rows = recent["transactions"]
        assert [(r["kind"], r["status"]) for r in rows] == [("message", "signed"), ("transaction", "rejected"), ("transaction", "signed")]
        assert rows[0]["spend"] is None  # a message moves nothing
        assert rows[1]["refusal_reason"] == "per_tx_limit_exceeded" and rows[1]["purpose"] == "too big"
        assert rows[2]["spend_lamports"] == "6000" and rows[2]["signature"]
        is_error, one = await call(session, "recent_transactions", {"limit": 1, "status": "rejected"})
        assert [r["purpose"] for r in one["transactions"]] == ["too big"]

    wallet.run(body)


# -- bad arguments -------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    ("wallet_status", {"verbose": True}, "unknown argument 'verbose'"),
    ("sign_transaction", {"transaction_base64": "AAAA"}, "needs the argument 'purpose'"),
    ("sign_transaction", {"transaction_base64": 12, "purpose": "x"}, "must be a string"),
    ("sign_transaction", {"transaction_base64": "AAAA", "purpose": ""}, "must not be empty"),
    ("sign_transaction", {"transaction_base64": "AAAA", "purpose": "x" * 513}, "longer than 512"),
    ("sign_transaction", {"transaction_base64": "A" * 2049, "purpose": "x"}, "longer than 2048"),
    ("sign_message", {"message": "x" * 1213}, "longer than 1212"),
    ("recent_transactions", {"limit": 0}, "between 1 and 50"),
    ("recent_transactions", {"limit": 51}, "between 1 and 50"),
    ("recent_transactions", {"limit": 5.0}, "whole number"),
    ("recent_transactions", {"limit": "5"}, "whole number"),
    ("recent_transactions", {"limit": True}, "whole number"),
    ("recent_transactions", {"status": "pending"}, "must be one of"),
]


def test_bad_arguments_are_tool_errors_and_nothing_is_signed_or_recorded(wallet):
    wallet.limits(per_tx=SOL, daily=SOL)
    valid = b64(wallet.message(1000))

    async def body(session) -> None:
        for name, arguments, expected in BAD_ARGUMENTS:
            is_error, error = await call(session, name, arguments)
            assert is_error, (name, arguments)
            assert error["reason"] == "bad_request", (name, arguments, error)
            assert expected in error["message"], (name, arguments, error)
        # The library's own checks, as strict as the CLI's.
        for arguments, reason, expected in [
            ({"transaction_base64": valid, "purpose": "line\nbreak"}, "bad_request", "purpose"),
            ({"transaction_base64": valid, "purpose": "bidi \u202e"}, "bad_request", "purpose"),
            ({"transaction_base64": "not base64!", "purpose": "x"}, "invalid_tx", "base64"),
            ({"transaction_base64": valid + "=", "purpose": "x"}, "invalid_tx", "base64"),
            ({"transaction_base64": b64(b"\x01" * 40), "purpose": "x"}, "invalid_tx", ""),
        ]:
            is_error, error = await call(session, "sign_transaction", arguments)
            assert is_error and error["reason"] == reason and expected in error["message"], (arguments, error)
        is_error, error = await call(session, "sign_message", {"message": "bell \x07"})
        assert is_error and error["reason"] == "bad_request"
        with pytest.raises(MCPError, match="unknown tool 'transfer_everything'"):
            await session.call_tool("transfer_everything", {})
        # The server is still serving after all that.
        is_error, status = await call(session, "wallet_status")
        assert not is_error and status["wallet"] == wallet.address

    wallet.run(body)
    # Bytes the signer could not parse are a recorded decision (invalid_tx), as over the socket;
    # nothing else reached it, and nothing was signed.
    (row,) = wallet.rows()
    assert row["status"] == "rejected" and row["rejection_reason"].startswith("invalid_tx")


def test_tools_option_serves_only_the_named_tools(wallet):
    """A model that may look but not sign: the signing tools are neither listed nor callable."""
    wallet.limits(per_tx=SOL, daily=SOL)

    async def body(session) -> None:
        listed = {tool.name for tool in (await session.list_tools()).tools}
        assert listed == {"wallet_status", "recent_transactions"}
        is_error, status = await call(session, "wallet_status")
        assert not is_error and status["wallet"] == wallet.address
        with pytest.raises(MCPError, match="unknown tool 'sign_transaction'"):
            await session.call_tool("sign_transaction", {"transaction_base64": b64(wallet.message(1000)), "purpose": "x"})

    wallet.run(body, "--tools", "recent_transactions, wallet_status")
    assert wallet.rows() == []


# -- the signer down, the wrong secret, the key in the environment -------------------------------


def test_the_signer_down_is_a_tool_error_and_the_server_keeps_serving(wallet):
    wallet.limits(per_tx=SOL, daily=SOL)
    message = b64(wallet.message(1000))

    async def body(session) -> None:
        is_error, status = await call(session, "wallet_status")
        assert not is_error
        wallet.handle.stop()
        for name, arguments in [
            ("wallet_status", {}),
            ("sign_transaction", {"transaction_base64": message, "purpose": "x"}),
            ("sign_message", {"message": "hello"}),
        ]:
            is_error, error = await call(session, name, arguments)
            assert is_error and error["reason"] == "signer_unavailable", (name, error)
            assert "jarvis-wallet signer start" in error["message"]
        assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS

    wallet.run(body)
    assert wallet.rows() == []


def test_a_wrong_shared_secret_is_refused_by_the_signer(wallet, tmp_path):
    wallet.limits(per_tx=SOL, daily=SOL)
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("f" * 64 + "\n")
    wrong.chmod(0o600)

    async def body(session) -> None:
        is_error, error = await call(session, "sign_transaction", {"transaction_base64": b64(wallet.message(1000)), "purpose": "x"})
        assert is_error and error["reason"] == "auth_failed"

    wallet.run(body, "--secret-file", str(wrong))
    assert wallet.rows() == []


def test_refuses_to_start_with_the_wallet_key_in_its_environment(tmp_path):
    key = "DummyKeyValueThatMustNeverBeEchoed1111111111111"
    result = subprocess.run(
        [sys.executable, "-m", "jarvis_wallet", "mcp", "--socket", str(tmp_path / "s.sock")],
        env=server_env(SOLANA_PRIVATE_KEY=key), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""  # stdout is the protocol's: nothing else may be written there
    assert result.stderr.startswith("Error: SOLANA_PRIVATE_KEY is set") and result.stderr.count("\n") == 1
    assert key not in result.stderr


@contextlib.contextmanager
def wallet_lock_held(url: str, wallet: str):
    """Another session holds what the signer's decision waits for: SQLite's write lock, or the
    wallet's limits row on PostgreSQL."""
    if url.startswith("sqlite"):
        import sqlite3

        from jarvis_wallet.db import parse_database_url

        holder = sqlite3.connect(parse_database_url(url).sqlite_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    else:
        import psycopg2

        holder = psycopg2.connect(url, connect_timeout=5)
        holder.cursor().execute("SELECT 1 FROM spend_limits WHERE wallet = %s FOR UPDATE", (wallet,))
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


def test_a_sign_the_signer_did_not_answer_in_time_says_to_retry_and_the_retry_counts_once(wallet):
    """The decision waits on a lock past the MCP server's --timeout: the model is told the
    transaction may still be signed and to ask again; once the lock is free the signer signs
    it, and the retry comes back as the recorded signature, counted once."""
    wallet.limits(per_tx=SOL, daily=SOL)
    message = b64(wallet.message(1_000_000))

    async def body(session) -> None:
        with wallet_lock_held(wallet.url, wallet.address):
            is_error, timeout = await call(session, "sign_transaction", {"transaction_base64": message, "purpose": "slow"})
        assert is_error and timeout["reason"] == "timeout", timeout
        assert "call sign_transaction again" in timeout["message"]
        await anyio.sleep(0.5)  # the signer decides the first request once the lock is free
        is_error, retry = await call(session, "sign_transaction", {"transaction_base64": message, "purpose": "retry"})
        assert not is_error, retry
        assert retry["duplicate"] is True

    wallet.run(body, "--timeout", "1")
    signed = [row for row in wallet.rows() if row["status"] == "signed"]
    assert [(row["purpose"], row["lamports"]) for row in signed] == [("slow", 1_005_000)]


# -- concurrency ---------------------------------------------------------------------------------


def test_concurrent_calls_are_served_side_by_side_and_the_limits_hold(wallet):
    """Twelve sign_transaction calls at once through one session: the daily limit admits
    exactly five, the other seven are refused with daily_limit_exceeded, and the spend
    recorded is exactly five transactions'."""
    each = 1_000_000 - FEE
    wallet.limits(per_tx=1_000_000, daily=5_000_000)
    messages = [wallet.message(each) for _ in range(12)]
    results: list[tuple[bool, dict]] = []

    async def body(session) -> None:
        async def one(message: bytes) -> None:
            results.append(await call(session, "sign_transaction", {"transaction_base64": b64(message), "purpose": "burst"}))

        async with anyio.create_task_group() as group:
            for message in messages:
                group.start_soon(one, message)
            group.start_soon(call, session, "wallet_status")

    wallet.run(body)
    signed = [payload for is_error, payload in results if not is_error]
    refused = [payload for is_error, payload in results if is_error]
    assert len(signed) == 5 and len(refused) == 7
    assert {payload["reason"] for payload in refused} == {"daily_limit_exceeded"}
    for payload in signed:
        verify(wallet.address, base64.b64decode(payload["signed_transaction_base64"])[65:], payload["signature"])
    assert sum(row["lamports"] for row in wallet.rows() if row["status"] == "signed") == 5_000_000


# -- the schemas and the start-up path -----------------------------------------------------------


def test_every_schema_keyword_is_one_the_argument_check_enforces():
    """check_arguments enforces what the schemas say; a keyword it does not know would be
    published to the model and silently not enforced."""
    from jarvis_wallet.mcp_server import CHAIN_TOOLS, TOOLS

    enforced = {"type", "minLength", "maxLength", "minimum", "maximum", "enum", "description", "default"}
    for tool in TOOLS + CHAIN_TOOLS:
        assert set(tool.input_schema) == {"type", "properties", "required", "additionalProperties"}, tool.name
        for name, rule in tool.input_schema["properties"].items():
            assert set(rule) <= enforced, (tool.name, name, set(rule) - enforced)


def test_the_cli_and_sign_never_import_the_mcp_sdk():
    """The SDK costs more than half a second to import: only `jarvis-wallet mcp` pays it."""
    code = (
        "import sys, jarvis_wallet.cli, jarvis_wallet.commands.mcp, jarvis_wallet.mcp_server;"
        "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'mcp_types', 'pydantic'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_the_server_is_ready_without_the_database_driver():
    """Before a tool is called the server has checked its settings (the database URL among them)
    without importing peewee or psycopg2: tools/list costs no more than the SDK's own."""
    code = (
        "import sys; from jarvis_wallet.mcp_server import McpSettings, WalletTools;"
        "WalletTools(McpSettings(database_url='postgresql://nobody@192.0.2.1:5432/nothing'));"
        "print(sorted(m for m in sys.modules if m.startswith(('peewee', 'psycopg2', 'jarvis_wallet.db'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "['jarvis_wallet.db_url']"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--database-url", "mysql://x/y", "mcp"], "unsupported database URL scheme"),
        (["mcp", "--timeout", "0"], "--timeout"),
        (["mcp", "--tools", "wallet_status,transfer_everything"], "unknown tool 'transfer_everything' in --tools"),
        (["mcp", "--tools", " , "], "--tools names no tool"),
    ],
)
def test_bad_options_are_one_line_errors_before_serving(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "jarvis_wallet", *args, "--socket", str(tmp_path / "s.sock")],
        env=server_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1 and message in result.stderr


def test_no_tool_output_carries_the_key_or_the_shared_secret(wallet):
    """Every tool, success and refusal: the wallet's seed (in any of the spellings a key is
    written in) and the shared secret appear in none of the results."""
    wallet.limits(per_tx=10_000, daily=10_000)
    seed = bytes(json.loads(wallet.signers.keypair_file().read_text())[:32])
    secret = (wallet.handle.socket_path.parent / "secret").read_text().strip()
    forbidden = [base58.b58encode(seed).decode(), seed.hex(), base64.b64encode(seed).decode(), secret, str(list(seed))[1:-1]]
    texts: list[str] = []

    async def body(session) -> None:
        small, big = b64(wallet.message(1000)), b64(wallet.message(50_000))
        for name, arguments in [
            ("wallet_status", {}),
            ("inspect_transaction", {"transaction_base64": small}),
            ("sign_transaction", {"transaction_base64": small, "purpose": "ok"}),
            ("sign_transaction", {"transaction_base64": big, "purpose": "refused"}),
            ("sign_message", {"message": "hello"}),
            ("recent_transactions", {"limit": 50}),
            ("sign_transaction", {"transaction_base64": "???", "purpose": "bad"}),
        ]:
            result = await session.call_tool(name, arguments)
            texts.append(result.model_dump_json())

    log = wallet.signers.tmp_path / "mcp-stderr.log"
    wallet.run(body, errlog_path=str(log))
    everything = "\n".join(texts) + log.read_text()
    assert '"signed_transaction_base64"' in everything and "per_tx_limit_exceeded" in everything
    assert [item for item in forbidden if item in everything] == []
    # The server's log: one line per call, the outcome's code or signature.
    lines = [line for line in log.read_text().splitlines() if line.startswith("jarvis-wallet mcp: ")]
    assert lines[0] == "jarvis-wallet mcp: wallet_status: ok"
    assert lines[2].startswith("jarvis-wallet mcp: sign_transaction: ok signature ")
    assert lines[3] == "jarvis-wallet mcp: sign_transaction: error per_tx_limit_exceeded"
    assert lines[6] == "jarvis-wallet mcp: sign_transaction: error invalid_tx"


def test_amounts_in_an_errors_details_become_strings_with_units():
    from jarvis_wallet.mcp_server import _public_details, amount_fields

    assert amount_fields("spend", 2**63 - 1) == {"spend": "9223372036.854775807 SOL", "spend_lamports": "9223372036854775807"}
    assert _public_details({"lamports": 1_005_000, "fee_lamports": 5000, "approval_id": 7, "wallet": "W"}) == {
        "spend": "0.001005 SOL", "spend_lamports": "1005000", "fee": "0.000005 SOL", "fee_lamports": "5000",
        "approval_id": 7, "wallet": "W",
    }


# -- the chain: balance and transfer, against a LiteSVM-backed RPC endpoint ---------------------


@pytest.fixture
def rpc(wallet):
    from rpc_server import RpcServer

    server = RpcServer().start()  # after the signer's fork: it must not inherit the listening socket
    yield server
    server.stop()


def test_without_an_endpoint_no_chain_tools_and_naming_one_is_refused(wallet, tmp_path):
    async def body(session) -> None:
        assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS

    wallet.run(body)
    result = subprocess.run(
        [sys.executable, "-m", "jarvis_wallet", "mcp", "--tools", "balance", "--socket", str(tmp_path / "s.sock")],
        env=server_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "needs an RPC endpoint: pass --rpc-url URL" in result.stderr


def test_balance_and_a_transfer_the_runtime_confirms_and_the_limits_count(wallet, rpc):
    from solders.keypair import Keypair
    from solders.pubkey import Pubkey

    wallet.limits(per_tx=SOL, daily=SOL)
    rpc.chain.fund(Pubkey.from_string(wallet.address), 3 * SOL)
    recipient = str(Keypair().pubkey())

    async def body(session) -> None:
        assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS | {"balance", "transfer"}
        is_error, balance = await call(session, "balance")
        assert not is_error, balance
        assert balance["balance_lamports"] == str(3 * SOL) and balance["balance"] == "3 SOL"
        is_error, sent = await call(session, "transfer", {"to": recipient, "amount": "0.25 SOL", "purpose": "invoice 7"})
        assert not is_error, sent
        assert sent["status"] == "confirmed" and sent["spend_lamports"] == str(SOL // 4 + FEE)
        is_error, refused = await call(session, "transfer", {"to": recipient, "amount": "0.9 SOL", "purpose": "too much"})
        assert is_error and refused["reason"] == "daily_limit_exceeded", refused
        assert refused["spend_lamports"] == str(9 * SOL // 10 + FEE)
        assert refused["limits"]["remaining_24h_lamports"] == str(SOL - SOL // 4 - FEE)
        for bad, expected in [({"amount": "0.1 BTC"}, "unknown unit"), ({"amount": "0"}, "more than 0"),
                              ({"to": "not-a-key" * 4}, "recipient")]:
            arguments = {"to": recipient, "amount": "0.1 SOL", "purpose": "x", **bad}
            is_error, error = await call(session, "transfer", arguments)
            assert is_error and error["reason"] == "bad_request" and expected in error["message"], error
        is_error, balance = await call(session, "balance")
        assert balance["balance_lamports"] == str(3 * SOL - SOL // 4 - FEE)

    wallet.run(body, "--rpc-url", rpc.url, errlog_path=str(wallet.signers.tmp_path / "mcp-stderr.log"))
    # The runtime moved exactly that, and the audit trail says it landed.
    assert rpc.chain.balance(Pubkey.from_string(recipient)) == SOL // 4
    signed = [row for row in wallet.rows() if row["signature"] and row["status"] != "rejected"]
    assert [(row["status"], row["lamports"], row["purpose"]) for row in signed] == [("confirmed", SOL // 4 + FEE, "invoice 7")]
