"""The first fraction of a second of `jarvis-wallet mcp`: answer the handshake while the SDK loads.

Why this exists: importing the MCP SDK (mcp 2.3: pydantic models for every protocol version,
and its client, which ``mcp/__init__.py`` loads whatever we import) costs about 0.6 CPU
seconds, more than the half second in which a server should answer ``tools/list`` (issue
#15). The SDK stays the server of the session, and ``mcp_server.build_server`` stays the one
place tools are served; this module only keeps the client from waiting for the import.

How:

- At spawn, a thread imports the SDK and builds the server; the main thread reads stdin
  itself with nothing but the standard library, split and decoded as the SDK's stdio
  transport does (UTF-8 with replacement, universal newlines).
- Until the SDK is ready, the front answers the client's opening request and, after it,
  ``tools/list`` and ``ping``: ``initialize`` (any protocol version: the SDK's negotiation,
  from the committed record below) or, for a 2026-07-28 client, whose requests each carry
  their own envelope, ``server/discover`` and ``tools/list``. The answers are built from
  our own tool table and the record, in the SDK's byte layout; tests drive the real SDK
  server and this front with the same requests and compare bytes. A request only gets a
  front answer when it is plainly well formed (exact keys, plain types, a capability set
  the front knows); anything else, and everything else (``tools/call``, notifications,
  malformed lines), is queued in arrival order for the SDK, which answers it as it would
  have: the front never guesses.
- Hand-over: the queue is fed into the SDK's server through anyio memory streams, as
  ``mcp.server.stdio`` feeds it, starting with the client's opening request replayed
  under an id of our own, so that the SDK's session is an ordinary one; its answer to
  that replay (and only that) is dropped. From then on the SDK answers everything. Every
  line goes out whole through one locked writer.
- If the installed SDK is not the one the record was checked against, the front answers
  nothing and every request waits for the SDK: correct, only slower.

End of input before the SDK is ready ends the process at once (exit 0), and what was queued
is dropped. Not quite what the SDK alone does: at end of input it cancels its handlers, so a
tool call's answer is lost there too, though the call itself may have run (a piped
sign_transaction is signed and recorded, unanswered); an answer that needs no wait (an
unknown method, bad parameters) usually gets out first. The front runs no such call, and
drops those few error answers.
"""

from __future__ import annotations

import io
import json
import os
import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from . import __version__
from .errors import InvalidConfig
from .mcp_server import INSTRUCTIONS, SERVER_NAME, SERVER_TITLE, ToolSpec, WalletTools, tool_annotations


@dataclass(frozen=True)
class SdkRecord:
    """What the front knows of the SDK it stands in for; tests check it against the installed one."""

    distributions: tuple[tuple[str, str], ...]  # (distribution, version) as installed
    handshake_versions: tuple[str, ...]  # negotiable with initialize, oldest first
    modern_versions: tuple[str, ...]  # per-request envelope (2026-07-28), no initialize


SDK_RECORD = SdkRecord(
    distributions=(("mcp", "2.3.0"), ("mcp-types", "2.3.0")),
    handshake_versions=("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"),
    modern_versions=("2026-07-28",),
)

PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
#: Names the gate a test holds shut to keep the SDK from loading (a FIFO; the SDK loads once
#: it is opened for writing and closed). Not for operators.
HOLD_SDK_ENV = "_JARVIS_WALLET_MCP_HOLD_SDK"
#: Lines read ahead of the SDK at most. Beyond it the front stops reading, so a client that
#: floods requests waits on its own pipe, as it would with the SDK alone, instead of growing us.
INBOX_LINES = 64


def installed_sdk() -> tuple[tuple[str, str], ...] | None:
    """The installed SDK's distributions and versions, or None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return tuple((name, version(name)) for name, _ in SDK_RECORD.distributions)
    except PackageNotFoundError:
        return None


# -- what the SDK would answer ---------------------------------------------------------------------


def _dumps(value: Any) -> str:
    # The layout of pydantic's model_dump_json: no spaces, non-ASCII as UTF-8.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _server_info() -> dict:
    return {"name": SERVER_NAME, "title": SERVER_TITLE, "version": __version__}


def _capabilities() -> dict:
    return {"tools": {"listChanged": False}}


def _input_schema(schema: dict, *, modern: bool) -> dict:
    if modern:
        return dict(schema)
    # The handshake-era model declares $schema, properties, required and type (in that order)
    # and keeps any other keyword after them, as given.
    declared = ("$schema", "properties", "required", "type")
    return {**{key: schema[key] for key in declared if key in schema},
            **{key: value for key, value in schema.items() if key not in declared}}


def tool_entry(spec: ToolSpec, *, modern: bool) -> dict:
    annotations = tool_annotations(spec)
    return {
        "annotations": {key: annotations[key] for key in sorted(annotations)},
        "description": spec.description,
        "inputSchema": _input_schema(spec.input_schema, modern=modern),
        "name": spec.name,
        "title": spec.title,
    }


def negotiated_version(requested: str, record: SdkRecord = SDK_RECORD) -> str:
    """The SDK's rule: a version it negotiates by handshake is granted, any other gets its latest."""
    return requested if requested in record.handshake_versions else record.handshake_versions[-1]


def initialize_result(requested: str, record: SdkRecord = SDK_RECORD) -> dict:
    return {
        "capabilities": _capabilities(),
        "instructions": INSTRUCTIONS,
        "protocolVersion": negotiated_version(requested, record),
        "serverInfo": _server_info(),
    }


def tools_list_result(specs: Sequence[ToolSpec], *, modern: bool) -> dict:
    tools = [tool_entry(spec, modern=modern) for spec in specs]
    if not modern:
        return {"tools": tools}
    return {"cacheScope": "private", "resultType": "complete", "tools": tools, "ttlMs": 0,
            "_meta": {SERVER_INFO_KEY: _server_info()}}


def discover_result(record: SdkRecord = SDK_RECORD) -> dict:
    return {
        "cacheScope": "private",
        "capabilities": _capabilities(),
        "instructions": INSTRUCTIONS,
        "resultType": "complete",
        "supportedVersions": list(record.modern_versions),
        "ttlMs": 0,
        "_meta": {SERVER_INFO_KEY: _server_info()},
    }


def response_line(request_id: int | str, result: dict) -> bytes:
    return (_dumps({"jsonrpc": "2.0", "id": request_id, "result": result}) + "\n").encode("utf-8")


# -- reading a line strictly -----------------------------------------------------------------------


class _Unclear(Exception):
    """Not plainly well formed: the SDK decides what it means."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Unclear("duplicate key")
    return result


def _reject_constant(name: str) -> Any:
    raise _Unclear(name)  # NaN, Infinity


def _plain_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")  # a lone surrogate (\ud800) is left to the SDK
    except UnicodeEncodeError:
        return False
    return True


def _parse(line: str) -> Any:
    try:
        return json.loads(line, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # nesting deeper than json's recursion limit
        raise _Unclear("not JSON") from exc


def _plain_request(message: Any) -> tuple[int | str, str, dict | None]:
    """(id, method, params) of a JSON-RPC request with nothing unusual about it."""
    if not isinstance(message, dict) or not {"jsonrpc", "id", "method"} <= set(message) <= {
        "jsonrpc", "id", "method", "params"
    }:
        raise _Unclear("not a plain request")
    request_id, method, params = message["id"], message["method"], message.get("params")
    if message["jsonrpc"] != "2.0" or not _plain_text(method):
        raise _Unclear("not a plain request")
    if isinstance(request_id, bool) or not (
        (isinstance(request_id, int) and abs(request_id) < 2**53) or _plain_text(request_id)
    ):
        raise _Unclear("an unusual id")
    if "params" in message and not isinstance(params, dict):
        raise _Unclear("params not an object")
    return request_id, method, params


def _plain_capabilities(value: Any) -> bool:
    """Capabilities as clients send them (`{}`, roots with or without listChanged, empty
    sampling or elicitation); anything richer is the SDK's to read."""
    if not isinstance(value, dict):
        return False
    for name, setting in value.items():
        if name == "roots":
            plain = setting == {} or (isinstance(setting, dict) and set(setting) == {"listChanged"}
                                      and isinstance(setting["listChanged"], bool))
        else:
            plain = name in ("sampling", "elicitation") and setting == {}
        if not plain:
            return False
    return True


def _plain_client_info(value: Any) -> bool:
    return (isinstance(value, dict) and {"name", "version"} <= set(value) <= {"name", "version", "title"}
            and all(_plain_text(text) for text in value.values()))


def _no_params(params: dict | None) -> bool:
    return params is None or params == {}


# -- the front -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrontAnswer:
    reply: bytes  # the line to write to the client
    replay: str | None  # the line to give the SDK in the client's request's place, if any


class Front:
    """Which lines the front answers, and how; pure: lines in, bytes out.

    ``answer`` is asked about every line until the SDK is ready, in order, and returns None
    for a line the SDK must have (the caller queues it).
    """

    def __init__(self, specs: Sequence[ToolSpec], *, record: SdkRecord = SDK_RECORD, enabled: bool = True,
                 replay_id: str | None = None) -> None:
        self.specs = tuple(specs)
        self.record = record
        self.replay_id = replay_id or f"jarvis-wallet-front-replay-{os.urandom(8).hex()}"
        self._era: str | None = None  # "handshake" or "modern" once the front answered the opening request
        self._first = True
        self._on = enabled

    def answer(self, line: str) -> FrontAnswer | None:
        first, self._first = self._first, False
        if not self._on:
            return None
        try:
            message = _parse(line)
        except _Unclear:
            message = None
        try:
            if message is None:
                raise _Unclear("not JSON")
            if first:
                return self._opening(message)
            return self._later(message)
        except _Unclear:
            if first or (self._era == "handshake" and not self._harmless(message)):
                self._on = False  # the SDK's state may now differ from what the front assumed
            return None

    def _opening(self, message: Any) -> FrontAnswer:
        request_id, method, params = _plain_request(message)
        if method == "initialize":
            if not (isinstance(params, dict) and set(params) == {"protocolVersion", "capabilities", "clientInfo"}
                    and _plain_text(params["protocolVersion"]) and _plain_capabilities(params["capabilities"])
                    and _plain_client_info(params["clientInfo"])):
                raise _Unclear("unusual initialize")
            # Every handshake version lists the tools alike (the tests compare each with the SDK's).
            self._era = "handshake"
            replay = {"jsonrpc": "2.0", "id": self.replay_id, "method": "initialize", "params": params}
            return FrontAnswer(response_line(request_id, initialize_result(params["protocolVersion"], self.record)),
                               _dumps(replay))
        reply = self._modern(request_id, method, params)
        self._era = "modern"
        # The SDK decides a connection's era on its first request: give it one of the same era.
        replay = {"jsonrpc": "2.0", "id": self.replay_id, "method": "server/discover", "params": params}
        return FrontAnswer(reply, _dumps(replay))

    def _later(self, message: Any) -> FrontAnswer:
        request_id, method, params = _plain_request(message)
        if self._era == "modern":
            return FrontAnswer(self._modern(request_id, method, params), None)
        if method == "tools/list" and _no_params(params):
            return FrontAnswer(response_line(request_id, tools_list_result(self.specs, modern=False)), None)
        if method == "ping" and _no_params(params):
            return FrontAnswer(response_line(request_id, {}), None)
        raise _Unclear("for the SDK")

    def _modern(self, request_id: int | str, method: str, params: dict | None) -> bytes:
        if method not in ("server/discover", "tools/list") or not isinstance(params, dict) or set(params) != {"_meta"}:
            raise _Unclear("for the SDK")
        meta = params["_meta"]
        if not (isinstance(meta, dict) and {PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY} <= set(meta)
                <= {PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY, CLIENT_INFO_KEY}):
            raise _Unclear("unusual envelope")
        if not (meta[PROTOCOL_VERSION_KEY] in self.record.modern_versions
                and _plain_capabilities(meta[CLIENT_CAPABILITIES_KEY])
                and (CLIENT_INFO_KEY not in meta or _plain_client_info(meta[CLIENT_INFO_KEY]))):
            raise _Unclear("unusual envelope")
        if method == "server/discover":
            return response_line(request_id, discover_result(self.record))
        return response_line(request_id, tools_list_result(self.specs, modern=True))

    @staticmethod
    def _harmless(message: Any) -> bool:
        """Whether a line queued for the SDK leaves what the front assumes of the session as it
        was: only a new initialize changes a handshake session's answers to tools/list, so
        anything that might be one (or that the front cannot read) switches the front off."""
        return isinstance(message, dict) and message.get("method") != "initialize"


# -- the process -----------------------------------------------------------------------------------


class Wire:
    """The client's end of stdin and stdout, taken as the SDK's stdio transport takes them:
    the protocol is served from private duplicates, while fd 0 reads the null device and fd 1
    writes to stderr, so that nothing else in the process can read the client's requests or
    write between its lines."""

    def __init__(self) -> None:
        import fcntl

        try:
            self._in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
            self._out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
        except OSError as exc:  # a launcher closed one of them
            raise InvalidConfig(f"`jarvis-wallet mcp` serves MCP on its standard input and output, and cannot use "
                                f"them: {exc.strerror}") from None
        try:
            fcntl.fcntl(2, fcntl.F_GETFD)
        except OSError:  # started with stderr closed: log lines and stray output go to the null device
            quiet = os.open(os.devnull, os.O_WRONLY)  # the lowest free descriptor: 2
            sys.stderr = open(quiet, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdout.flush()
        os.dup2(2, 1)
        self._lock = threading.Lock()
        self._broken = False

    def lines(self) -> Iterator[str]:
        reader = io.TextIOWrapper(os.fdopen(self._in, "rb", closefd=False), encoding="utf-8", errors="replace")
        return iter(reader)

    def write(self, data: bytes) -> None:
        """One whole line, never interleaved with another writer's."""
        with self._lock:
            if self._broken:
                return
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self._out, view):]
            except OSError:  # the client is gone; its end of input ends us
                self._broken = True


class SdkBridge(threading.Thread):
    """Imports the SDK, builds the server, and serves it the queued lines over memory streams."""

    def __init__(self, tools: WalletTools, wire: Wire, inbox: queue.Queue, replay_id: str) -> None:
        super().__init__(name="jarvis-wallet-mcp-sdk", daemon=True)
        self.tools, self.wire, self.inbox, self.replay_id = tools, wire, inbox, replay_id
        self.ready = threading.Event()

    def run(self) -> None:
        try:
            gate = os.environ.get(HOLD_SDK_ENV)
            if gate:
                with open(gate, "rb") as held:
                    held.read()
            import anyio

            from .mcp_server import build_server

            server = build_server(self.tools)
            anyio.run(self._serve, server)
        except BaseException as exc:  # noqa: BLE001 - one line, then out: the client sees the pipe close
            sys.stderr.write(f"Error: the MCP server stopped: {type(exc).__name__}: {exc}\n")
            sys.stderr.flush()
            os._exit(1)

    async def _serve(self, server) -> None:
        import anyio
        import anyio.to_thread
        import mcp_types as types
        from mcp.shared.message import SessionMessage

        to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        server_writes, from_server = anyio.create_memory_object_stream[SessionMessage](0)

        async def feed() -> None:
            async with to_server:
                while (line := await anyio.to_thread.run_sync(self.inbox.get)) is not None:
                    # As mcp.server.stdio reads a line.
                    try:
                        message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                    except Exception as exc:  # noqa: BLE001 - the SDK's own handling of a bad line
                        await to_server.send(exc)
                        continue
                    await to_server.send(SessionMessage(message))

        async def write() -> None:
            replayed = False
            async with from_server:
                async for session_message in from_server:
                    message = session_message.message
                    if not replayed and getattr(message, "id", None) == self.replay_id:
                        replayed = True  # the front answered the client's own request already
                        continue
                    line = message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await anyio.to_thread.run_sync(self.wire.write, line.encode("utf-8"))

        async with anyio.create_task_group() as group:
            group.start_soon(feed)
            group.start_soon(write)
            self.ready.set()
            await server.run(server_reads, server_writes, server.create_initialization_options())


def serve(tools: WalletTools, *, record: SdkRecord = SDK_RECORD) -> None:
    """Serve ``tools`` on stdin/stdout: the front until the SDK is ready, then the SDK."""
    installed = installed_sdk()
    if installed is None:
        raise InvalidConfig("`jarvis-wallet mcp` needs the MCP SDK: pip install 'jarvis-wallet[mcp]'")
    enabled = installed == record.distributions
    if not enabled:
        checked = ", ".join(f"{name} {version}" for name, version in record.distributions)
        found = ", ".join(f"{name} {version}" for name, version in installed)
        sys.stderr.write(f"jarvis-wallet mcp: the MCP SDK installed ({found}) is not the one the fast start was "
                         f"checked against ({checked}): every request waits for the SDK to load\n")
        sys.stderr.flush()
    front = Front(tools.specs, record=record, enabled=enabled)
    wire = Wire()
    inbox: queue.Queue = queue.Queue(maxsize=INBOX_LINES)
    bridge = SdkBridge(tools, wire, inbox, front.replay_id)
    bridge.start()
    try:
        for line in wire.lines():
            answered = None if bridge.ready.is_set() else front.answer(line)
            if answered is None:
                inbox.put(line)
                continue
            wire.write(answered.reply)
            if answered.replay is not None:
                inbox.put(answered.replay)
    except KeyboardInterrupt:
        pass
    if not bridge.ready.is_set():
        # The SDK is still loading: it would cancel the calls in flight at end of input anyway.
        sys.stderr.flush()
        os._exit(0)
    inbox.put(None)
    bridge.join()


__all__ = ["SDK_RECORD", "Front", "SdkRecord", "serve"]
