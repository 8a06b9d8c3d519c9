"""`mcp_front`: what `jarvis-wallet mcp` answers before the SDK is ready is what the SDK answers.

Two real parts on each side of every comparison: the SDK-built server (``build_server``, the
SDK's own ``Server.run`` over memory streams, serialized as ``mcp.server.stdio`` writes) and
the real `jarvis-wallet mcp` process. In the process, a FIFO named by ``HOLD_SDK_ENV`` holds
the SDK thread before its import until the test opens it, so that "before the SDK is ready"
is a fact of the test, not a race: with the gate shut every answer is the front's. Nothing of
the MCP layer is replaced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time

import anyio
import mcp_types
import mcp_types.version
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.message import SessionMessage

from jarvis_wallet.mcp_front import (
    CLIENT_CAPABILITIES_KEY,
    CLIENT_INFO_KEY,
    HOLD_SDK_ENV,
    PROTOCOL_VERSION_KEY,
    SDK_RECORD,
    Front,
    installed_sdk,
)
from jarvis_wallet.mcp_server import McpSettings, WalletTools, build_server
from test_mcp_server import Wallet, b64, call, server_env

HANDSHAKE = mcp_types.version.HANDSHAKE_PROTOCOL_VERSIONS
MODERN = mcp_types.version.MODERN_PROTOCOL_VERSIONS
#: Versions the SDK does not negotiate by handshake (a modern one among them): it answers its latest.
UNSUPPORTED = ("1999-01-01", "", "2025-11-25-draft", *MODERN)
RPC_URL = "http://127.0.0.1:9/"  # never contacted: listing tools touches no network
SETTINGS = {
    "all": (),
    "look-only": ("--tools", "wallet_status,inspect_transaction,recent_transactions"),
    "one": ("--tools", "sign_message"),
    "chain": ("--rpc-url", RPC_URL),
    "chain-subset": ("--rpc-url", RPC_URL, "--tools", "balance,transfer,wallet_status"),
}


def settings_for(args: tuple[str, ...], tmp_path) -> McpSettings:
    options = dict(zip(args[::2], args[1::2]))
    tools = options.get("--tools")
    return McpSettings(socket_path=tmp_path / "no-signer" / "signer.sock", database_url=f"sqlite:///{tmp_path}/none.db",
                       tools=None if tools is None else tuple(tools.split(",")), rpc_url=options.get("--rpc-url"))


def line(message: dict) -> str:
    return json.dumps(message) + "\n"


def initialize(version: str, request_id: int | str = 1, capabilities: dict | None = None,
               client_info: dict | None = None) -> str:
    return line({"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {} if capabilities is None else capabilities,
        "clientInfo": client_info or {"name": "test", "version": "1.0"}}})


INITIALIZED = line({"jsonrpc": "2.0", "method": "notifications/initialized"})


def request(request_id: int | str, method: str, params: dict | None = None) -> str:
    message = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return line(message)


def envelope(version: str = MODERN[-1], capabilities: dict | None = None, client_info: dict | None = None) -> dict:
    meta = {PROTOCOL_VERSION_KEY: version, CLIENT_CAPABILITIES_KEY: {} if capabilities is None else capabilities}
    if client_info is not None:
        meta[CLIENT_INFO_KEY] = client_info
    return {"_meta": meta}


def answers(output: bytes) -> dict:
    """The answers in ``output`` by request id, each as its exact line."""
    found = {}
    for raw in output.splitlines():
        found[json.loads(raw)["id"]] = raw
    return found


def sdk_answers(lines: list[str], settings: McpSettings, expected: int) -> dict:
    """What the SDK-built server answers to ``lines``, fed and written as mcp.server.stdio does."""
    server = build_server(WalletTools(settings))
    out: list[bytes] = []

    async def main() -> None:
        to_server, server_reads = anyio.create_memory_object_stream(len(lines) + 1)
        server_writes, from_server = anyio.create_memory_object_stream(100)
        async with anyio.create_task_group() as group:
            group.start_soon(server.run, server_reads, server_writes, server.create_initialization_options())
            for text in lines:
                try:
                    await to_server.send(SessionMessage(mcp_types.jsonrpc_message_adapter.validate_json(text, by_name=False)))
                except Exception as exc:  # noqa: BLE001 - as the stdio transport hands a bad line on
                    await to_server.send(exc)
            with anyio.fail_after(60):  # a hang guard, not a measurement
                while len(out) < expected:
                    message = (await from_server.receive()).message
                    out.append(message.model_dump_json(by_alias=True, exclude_unset=True).encode())
            group.cancel_scope.cancel()

    anyio.run(main)
    return answers(b"\n".join(out))


@contextlib.contextmanager
def held_sdk(tmp_path):
    """A shut gate for the server's SDK thread; ``release()`` opens it."""
    gate = tmp_path / f"hold-sdk-{os.urandom(4).hex()}"
    os.mkfifo(gate)
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            with open(gate, "wb"):
                pass

    try:
        yield str(gate), release
    finally:
        if not released.is_set():
            # A server still waiting would block on it; the processes are gone by now, so
            # opening without a reader must not block either.
            with contextlib.suppress(OSError):
                os.close(os.open(gate, os.O_WRONLY | os.O_NONBLOCK))


def command(args: tuple[str, ...], tmp_path) -> list[str]:
    return [sys.executable, "-m", "jarvis_wallet", "--database-url", f"sqlite:///{tmp_path}/none.db", "mcp",
            "--socket", str(tmp_path / "no-signer" / "signer.sock"), *args]


def run_front_only(args: tuple[str, ...], lines: list[str], tmp_path) -> subprocess.CompletedProcess:
    """The real process with the SDK held back for its whole life: every answer is the front's.
    End of input ends it."""
    with held_sdk(tmp_path) as (gate, _release):
        return subprocess.run(command(args, tmp_path), input="".join(lines).encode(), capture_output=True,
                              env=server_env(**{HOLD_SDK_ENV: gate}), timeout=60)


class Served:
    """A running server process: lines written to it, answers read by id until those wanted
    have come, then end of input."""

    def __init__(self, argv: list[str], env: dict[str, str], lines: list[str], **popen) -> None:
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=env, **popen)
        self.process.stdin.write("".join(lines).encode())
        self.process.stdin.flush()
        self.got: dict = {}

    def read_until(self, *ids) -> dict:
        while not set(ids) <= set(self.got):
            raw = self.process.stdout.readline()
            assert raw, self.process.stderr.read()
            self.got.update(answers(raw))
        return self.got

    def finish(self) -> tuple[int, dict, bytes]:
        """End of input: the exit code, the answers that came after those read, and stderr."""
        self.process.stdin.close()
        rest, stderr = self.process.stdout.read(), self.process.stderr.read()
        return self.process.wait(timeout=60), answers(rest), stderr


# -- the record ------------------------------------------------------------------------------------


def test_the_record_is_the_installed_sdk():
    """When the SDK is upgraded, this fails until the record (and with it the front's answers,
    which the tests below compare with the new SDK's) is checked again."""
    assert installed_sdk() == SDK_RECORD.distributions
    assert SDK_RECORD.handshake_versions == mcp_types.version.HANDSHAKE_PROTOCOL_VERSIONS
    assert SDK_RECORD.modern_versions == mcp_types.version.MODERN_PROTOCOL_VERSIONS
    assert SDK_RECORD.handshake_versions[-1] == mcp_types.version.LATEST_HANDSHAKE_VERSION


# -- the front's answers are the SDK's ---------------------------------------------------------------


@pytest.mark.parametrize("version", [*HANDSHAKE, *UNSUPPORTED])
@pytest.mark.parametrize("served", sorted(SETTINGS))
def test_the_handshake_and_tools_list_are_the_sdks_bytes(version, served, tmp_path):
    lines = [initialize(version), INITIALIZED, request(2, "tools/list"), request(3, "ping"),
             request("four", "tools/list", {}), request(5, "ping", {})]
    result = run_front_only(SETTINGS[served], lines, tmp_path)
    assert result.returncode == 0 and result.stderr == b""
    front = answers(result.stdout)
    assert sorted(front, key=str) == sorted([1, 2, 3, "four", 5], key=str)
    assert front == sdk_answers(lines, settings_for(SETTINGS[served], tmp_path), expected=5)
    negotiated = json.loads(front[1])["result"]["protocolVersion"]
    assert negotiated == (version if version in HANDSHAKE else HANDSHAKE[-1])


@pytest.mark.parametrize(
    "capabilities, client_info, request_id",
    [
        ({"roots": {"listChanged": True}, "sampling": {}, "elicitation": {}}, None, 1),
        ({"roots": {}}, {"name": "claude-ai", "version": "0.1.0", "title": "Claude"}, -7),
        ({"roots": {"listChanged": False}}, {"name": "ünïcode \"quoted\"", "version": ""}, "ïd/1"),
        ({}, None, 2**53 - 1),
    ],
)
def test_the_capabilities_clients_send_get_the_sdks_bytes(capabilities, client_info, request_id, tmp_path):
    lines = [initialize(HANDSHAKE[-1], request_id=request_id, capabilities=capabilities, client_info=client_info),
             request(2, "tools/list")]
    result = run_front_only((), lines, tmp_path)
    front = answers(result.stdout)
    assert set(front) == {request_id, 2}
    assert front == sdk_answers(lines, settings_for((), tmp_path), expected=2)


@pytest.mark.parametrize("served", sorted(SETTINGS))
@pytest.mark.parametrize("client_info", [None, {"name": "agent", "version": "2.0"}])
def test_a_2026_client_gets_the_sdks_discover_and_tools_list(served, client_info, tmp_path):
    """2026-07-28 has no initialize: each request carries its envelope, and a client opens with
    server/discover (or goes straight to tools/list)."""
    meta = envelope(client_info=client_info)
    lines = [request(1, "server/discover", meta), request(2, "tools/list", meta),
             request(3, "tools/list", envelope(capabilities={"roots": {"listChanged": True}, "sampling": {}}))]
    result = run_front_only(SETTINGS[served], lines, tmp_path)
    assert result.returncode == 0 and result.stderr == b""
    front = answers(result.stdout)
    assert set(front) == {1, 2, 3}
    assert front == sdk_answers(lines, settings_for(SETTINGS[served], tmp_path), expected=3)
    # Opening with tools/list decides the era just the same.
    lines = [request(7, "tools/list", meta)]
    assert answers(run_front_only(SETTINGS[served], lines, tmp_path).stdout) == sdk_answers(
        lines, settings_for(SETTINGS[served], tmp_path), expected=1)


# -- what the front leaves to the SDK ----------------------------------------------------------------

LEFT_TO_THE_SDK = {
    "not JSON": "initialize please\n",
    "a batch": "[" + initialize(HANDSHAKE[-1]).strip() + "]\n",
    "wrong jsonrpc": initialize(HANDSHAKE[-1]).replace('"2.0"', '"1.0"'),
    "a float id": initialize(HANDSHAKE[-1], request_id=1).replace('"id": 1', '"id": 1.0'),
    "a boolean id": initialize(HANDSHAKE[-1]).replace('"id": 1', '"id": true'),
    "a duplicate key": initialize(HANDSHAKE[-1]).replace('"id": 1', '"id": 1, "id": 2'),
    "an unknown capability": initialize(HANDSHAKE[-1], capabilities={"tasks": {"list": {}}}),
    "a capability with settings": initialize(HANDSHAKE[-1], capabilities={"sampling": {"context": {}}}),
    "clientInfo without a version": initialize(HANDSHAKE[-1], client_info={"name": "x"}),
    "a version that is not text": initialize(HANDSHAKE[-1]).replace('"2025-11-25"', "20251125"),
    "tools/list before initialize": request(1, "tools/list"),
    "ping first": request(1, "ping"),
    "a notification first": INITIALIZED,
    "a tools/call first": request(1, "tools/call", {"name": "wallet_status", "arguments": {}}),
    "an unsupported modern version": request(1, "server/discover", envelope(version="2099-01-01")),
    "an envelope without capabilities": request(1, "server/discover", {"_meta": {PROTOCOL_VERSION_KEY: MODERN[-1]}}),
    "an enveloped initialize": request(1, "initialize", {**envelope(), "protocolVersion": MODERN[-1],
                                                         "capabilities": {}, "clientInfo": {"name": "a", "version": "1"}}),
    "an enveloped ping": request(1, "ping", envelope()),
    "a huge line": request(1, "tools/list", {"cursor": "x" * 2_000_000}),
    "a deeply nested line": "[" * 100_000 + "]" * 100_000 + "\n",  # deeper than json's recursion limit
    "a lone surrogate": initialize(HANDSHAKE[-1], client_info={"name": "\ud800", "version": "1"}),
}


@pytest.mark.parametrize("case", sorted(LEFT_TO_THE_SDK))
def test_what_the_front_does_not_plainly_understand_it_leaves_to_the_sdk(case):
    front = Front(WalletTools(McpSettings(database_url="sqlite:///unused.db")).specs)
    assert front.answer(LEFT_TO_THE_SDK[case]) is None
    # The opening request was the SDK's: so is everything after it.
    assert front.answer(initialize(HANDSHAKE[-1], request_id=9)) is None
    assert front.answer(request(10, "tools/list")) is None


def test_after_a_second_initialize_or_an_unreadable_line_the_front_stops_answering():
    specs = WalletTools(McpSettings(database_url="sqlite:///unused.db")).specs
    for queued in (initialize("2024-11-05", request_id=2), "garbage\n", "[]\n", LEFT_TO_THE_SDK["a deeply nested line"]):
        front = Front(specs)
        assert front.answer(initialize(HANDSHAKE[-1])) is not None
        assert front.answer(queued) is None
        assert front.answer(request(3, "tools/list")) is None
    # A tool call, a cancellation or notifications/initialized change nothing it answers.
    front = Front(specs)
    assert front.answer(initialize(HANDSHAKE[-1])) is not None
    for queued in (INITIALIZED, request(2, "tools/call", {"name": "wallet_status"}),
                   line({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}})):
        assert front.answer(queued) is None
    assert front.answer(request(3, "tools/list")) is not None


@pytest.mark.parametrize("first", ["not JSON", "a batch", "wrong jsonrpc", "a huge line", "a duplicate key",
                                   "tools/list before initialize", "a deeply nested line"])
def test_malformed_input_before_the_hand_over_gets_what_the_sdk_gives(first, tmp_path):
    """The real process, the SDK held until the malformed line and a whole handshake are in:
    the answers (or their absence) are the SDK's own, there is no traceback, and no hang."""
    lines = [LEFT_TO_THE_SDK[first], initialize(HANDSHAKE[-1], request_id=11), INITIALIZED, request(12, "tools/list")]
    with held_sdk(tmp_path) as (gate, release):
        served = Served(command((), tmp_path), server_env(**{HOLD_SDK_ENV: gate}), lines)
        release()
        got = served.read_until(12)
        returncode, rest, stderr = served.finish()
    assert returncode == 0
    got.update(rest)
    assert got == sdk_answers(lines, settings_for((), tmp_path), expected=len(got))
    assert b"Traceback" not in stderr


# -- the hand-over -----------------------------------------------------------------------------------


def test_calls_sent_before_the_sdk_is_ready_are_answered_by_it_in_order(signers, tmp_path):
    """Through the SDK's own client: the handshake and tools/list come from the front while
    the SDK is held; two concurrent signs sent then wait, and are answered once it loads."""
    wallet = Wallet(signers)
    wallet.limits(per_tx=10**9, daily=10**10)
    first, second = wallet.message(1000), wallet.message(2000)

    async def main() -> None:
        with held_sdk(tmp_path) as (gate, release):
            params = wallet.params()
            params = StdioServerParameters(command=params.command, args=params.args,
                                           env={**params.env, HOLD_SDK_ENV: gate})
            async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()  # the SDK is held: the front answers
                assert "sign_transaction" in {tool.name for tool in listed.tools}
                results = {}

                async def sign(name: str, message: bytes) -> None:
                    results[name] = await call(session, "sign_transaction",
                                               {"transaction_base64": b64(message), "purpose": name})

                async with anyio.create_task_group() as group:
                    group.start_soon(sign, "first", first)
                    group.start_soon(sign, "second", second)
                    await anyio.wait_all_tasks_blocked()
                    release()
                assert {name: is_error for name, (is_error, _) in results.items()} == {"first": False, "second": False}
                assert (await session.list_tools()).tools == listed.tools  # now the SDK's answer: the same

    anyio.run(main)
    assert sorted(row["purpose"] for row in wallet.rows()) == ["first", "second"]


def test_a_cancellation_sent_before_the_hand_over_reaches_the_call_it_cancels(tmp_path):
    """Queued in order: the call, its cancellation, then another call; the SDK sees them so and
    answers only the one not cancelled, and the replayed initialize's answer is not repeated."""
    lines = [initialize(HANDSHAKE[-1]), INITIALIZED,
             request(2, "tools/call", {"name": "wallet_status", "arguments": {}}),
             line({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}}),
             request(3, "tools/call", {"name": "wallet_status", "arguments": {}}),
             request(4, "tools/list")]
    with held_sdk(tmp_path) as (gate, release):
        served = Served(command((), tmp_path), server_env(**{HOLD_SDK_ENV: gate}), lines)
        served.read_until(1, 4)  # the front's answers, with the SDK still held
        release()
        got = served.read_until(3)
        returncode, rest, _stderr = served.finish()
    assert returncode == 0
    assert rest == {}
    assert set(got) == {1, 3, 4}
    assert json.loads(got[3])["result"]["structuredContent"]["reason"] == "signer_unavailable"


def test_end_of_input_before_the_sdk_is_ready_exits_cleanly(tmp_path):
    lines = [initialize(HANDSHAKE[-1]), INITIALIZED, request(2, "tools/call", {"name": "wallet_status"})]
    result = run_front_only((), lines, tmp_path)
    assert result.returncode == 0 and result.stderr == b""
    assert set(answers(result.stdout)) == {1}
    result = run_front_only((), [], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_an_sdk_other_than_the_recorded_one_gets_no_front_answer(tmp_path):
    """The record does not match: the front answers nothing (the handshake waits for the SDK,
    and is lost with the rest when input ends first); with the SDK loaded, all is served."""
    code = (
        "import dataclasses, sys; from jarvis_wallet.mcp_front import SDK_RECORD, serve;"
        "from jarvis_wallet.mcp_server import McpSettings, WalletTools;"
        "serve(WalletTools(McpSettings(socket_path=sys.argv[1], database_url=sys.argv[2])),"
        " record=dataclasses.replace(SDK_RECORD, distributions=(('mcp', '2.2.0'), ('mcp-types', '2.2.0'))))"
    )
    argv = [sys.executable, "-c", code, str(tmp_path / "no-signer.sock"), f"sqlite:///{tmp_path}/none.db"]
    lines = [initialize(HANDSHAKE[-1]), INITIALIZED, request(2, "tools/list")]
    with held_sdk(tmp_path) as (gate, _release):
        held = subprocess.run(argv, input="".join(lines).encode(), capture_output=True, timeout=60,
                              env=server_env(**{HOLD_SDK_ENV: gate}))
    assert (held.returncode, held.stdout) == (0, b"")
    assert held.stderr.decode().startswith("jarvis-wallet mcp: the MCP SDK installed (mcp 2.3.0")
    served = Served(argv, server_env(), lines)
    got = served.read_until(1, 2)
    assert served.finish()[0] == 0
    assert got == sdk_answers(lines, settings_for((), tmp_path), expected=2)


# -- what the front costs ------------------------------------------------------------------------------


@pytest.mark.parametrize("rpc_url", [None, "http://192.0.2.1:8899"])
def test_the_front_answers_with_the_standard_library_alone(rpc_url):
    """No SDK, no pydantic, no database driver (also where --rpc-url is checked): the front's
    path imports none of them."""
    code = (
        "import sys; from jarvis_wallet.mcp_front import Front;"
        "from jarvis_wallet.mcp_server import McpSettings, WalletTools;"
        "front = Front(WalletTools(McpSettings(database_url='postgresql://nobody@192.0.2.1:5432/nothing',"
        f" rpc_url={rpc_url!r})).specs);"
        f"assert front.answer({initialize(HANDSHAKE[-1])!r}) is not None;"
        f"assert front.answer({request(2, 'tools/list')!r}) is not None;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('mcp', 'mcp_types', 'pydantic', 'anyio', 'sqlite3', 'peewee', 'psycopg2', 'httpx')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("served", ["all", "chain"])
def test_serving_the_handshake_and_tools_list_opens_no_socket_and_no_database(served, tmp_path):
    """The real serving path, the SDK held: Python's audit events would show any connection,
    name lookup or database opened, and there are none."""
    hook = (
        "import sys\n"
        "def audit(event, args):\n"
        "    if event in ('socket.connect', 'socket.getaddrinfo', 'socket.bind', 'sqlite3.connect'):\n"
        "        sys.stderr.write('audit ' + event + '\\n')\n"
        "sys.addaudithook(audit)\n"
        "from jarvis_wallet.cli import main\n"
        "sys.argv = ['jarvis-wallet', *sys.argv[1:]]\n"
        "main()\n"
    )
    lines = [initialize(HANDSHAKE[-1]), INITIALIZED, request(2, "tools/list")]
    with held_sdk(tmp_path) as (gate, _release):
        result = subprocess.run([sys.executable, "-c", hook, *command(SETTINGS[served], tmp_path)[3:]],
                                input="".join(lines).encode(), capture_output=True, timeout=60,
                                env=server_env(**{HOLD_SDK_ENV: gate}))
    assert (result.returncode, result.stderr) == (0, b"")
    assert set(answers(result.stdout)) == {1, 2}


def test_the_front_refuses_the_key_before_anything(tmp_path):
    """SOLANA_PRIVATE_KEY in the environment: refused before the SDK thread or stdin are touched,
    even with the SDK held."""
    with held_sdk(tmp_path) as (gate, _release):
        result = subprocess.run(command((), tmp_path), input=initialize(HANDSHAKE[-1]).encode(), capture_output=True,
                                env=server_env(SOLANA_PRIVATE_KEY="DummyKey1111", **{HOLD_SDK_ENV: gate}), timeout=60)
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.startswith(b"Error: SOLANA_PRIVATE_KEY is set")


@pytest.mark.parametrize("closed", [0, 1])
def test_a_closed_standard_stream_is_a_one_line_error(closed, tmp_path):
    """Started by a launcher that closed its stdin or stdout: one line, no traceback."""
    result = subprocess.run(command((), tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=server_env(), timeout=60,
                            preexec_fn=lambda: os.close(closed))
    assert result.returncode == 2
    assert result.stderr.startswith(b"Error: `jarvis-wallet mcp` serves MCP on its standard input and output")
    assert result.stderr.count(b"\n") == 1



def test_a_closed_stderr_still_serves_and_tool_calls_still_answer(tmp_path):
    """Started with stderr closed: the session is served as with it open (the tools' log lines go
    nowhere), and a tool call's answer is the tool's, not a failure to write its log line."""
    lines = [initialize(HANDSHAKE[-1]), INITIALIZED, request(2, "tools/list"),
             request(3, "tools/call", {"name": "wallet_status", "arguments": {}})]
    served = Served(command((), tmp_path), server_env(), lines, preexec_fn=lambda: os.close(2))
    got = served.read_until(1, 2, 3)
    returncode, rest, _stderr = served.finish()
    assert (returncode, rest) == (0, {})
    assert json.loads(got[3])["result"]["structuredContent"]["reason"] == "signer_unavailable"


def test_a_client_flooding_requests_waits_on_its_pipe_instead_of_growing_the_server(tmp_path):
    # With the SDK held back, the front may read only a bounded number of lines ahead: after that
    # (and the pipe's own buffer) the client's writes must block, not vanish into memory.
    flood = request(9, "tools/call", {"name": "wallet_status", "arguments": {"pad": "x" * 1000}}).encode()
    with held_sdk(tmp_path) as (gate, _release):
        process = subprocess.Popen(command((), tmp_path), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env=server_env(**{HOLD_SDK_ENV: gate}))
        try:
            os.set_blocking(process.stdin.fileno(), False)
            written, deadline = 0, time.monotonic() + 30
            while written < 64 * 1024 * 1024 and time.monotonic() < deadline:
                try:
                    written += os.write(process.stdin.fileno(), flood)
                except BlockingIOError:
                    time.sleep(0.2)  # give the front a chance to read more, if it would
                    try:
                        written += os.write(process.stdin.fileno(), flood)
                    except BlockingIOError:
                        break
            assert written < 4 * 1024 * 1024, f"the front read {written} bytes ahead of the SDK"
        finally:
            process.kill()
            process.wait()
