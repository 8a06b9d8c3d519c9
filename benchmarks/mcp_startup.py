"""From spawning ``jarvis-wallet mcp`` to its answers to ``tools/list`` and a first ``tools/call``.

A model's client starts the server and lists its tools before the first turn, so what counts
is the whole process: interpreter, imports, the handshake. ``jarvis-wallet mcp`` answers the
handshake and ``tools/list`` from ``mcp_front`` while the MCP SDK loads in a thread; the first
``tools/call`` is the SDK's to answer, so its figure carries the SDK's import in full. Measured
the same way, interleaved in the same run: a minimal server on the same SDK (one tool, the
low-level ``Server`` on stdio, the least any server on this SDK costs), ``python -c "import
typer"`` (the least a Typer CLI costs) and the SDK's imports alone. The client side is four
JSON-RPC lines written at once and read back over pipes, so no client library's own start-up
is counted.

The server is pointed at a socket where no signer listens and at a PostgreSQL address that
does not answer (TEST-NET-1, RFC 5737): had start-up or ``tools/list`` touched either, the
figure would include a connect timeout of seconds. The ``tools/call`` is one the tool refuses
on its arguments (``recent_transactions`` with ``limit`` 0), before any I/O: its answer
crosses the SDK's whole call path and our handler, and nothing else.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from fresh_processes import isolated_env, jarvis_wallet_command

UNANSWERED_DATABASE = "postgresql://nobody@192.0.2.1:5432/nothing"
ANSWER_TIMEOUT_SECONDS = 30.0

MINIMAL_SDK_SERVER = """
import anyio
import mcp.types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

async def list_tools(ctx, params):
    return types.ListToolsResult(tools=[types.Tool(name="echo", description="Echo.", input_schema={"type": "object"})])

async def call_tool(ctx, params):
    return types.CallToolResult(content=[types.TextContent(text=repr(params.arguments))], is_error=True)

server = Server("minimal", on_list_tools=list_tools, on_call_tool=call_tool)

async def main():
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())

anyio.run(main)
"""

TOOLS_LIST_ID, TOOLS_CALL_ID = 2, 3


def _handshake(tool: str, arguments: dict) -> bytes:
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": TOOLS_LIST_ID, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": TOOLS_CALL_ID, "method": "tools/call", "params": {"name": tool, "arguments": arguments}},
    ]
    return "".join(json.dumps(message) + "\n" for message in messages).encode()


OUR_REQUESTS = _handshake("recent_transactions", {"limit": 0})
MINIMAL_REQUESTS = _handshake("echo", {"limit": 0})


def sdk_available() -> bool:
    try:
        import mcp.server.lowlevel  # noqa: F401
    except ImportError:
        return False
    return True


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_to_answers(argv: list[str], env: dict[str, str], requests: bytes) -> tuple[float, float, float, int]:
    """Seconds from spawning ``argv`` to reading its tools/list answer and its tools/call
    answer, the CPU seconds the process used in all (start to exit: less sensitive to the
    machine's load than wall time), and how many tools it listed."""
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    answered: dict[int, float] = {}
    try:
        process.stdin.write(requests)
        process.stdin.flush()
        deadline = started + ANSWER_TIMEOUT_SECONDS
        while len(answered) < 2:
            if time.perf_counter() > deadline:
                raise RuntimeError("no tools/list and tools/call answers in time")
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"{' '.join(argv[:3])} closed stdout before answering")
            message = json.loads(line)
            if message.get("id") in (TOOLS_LIST_ID, TOOLS_CALL_ID):
                answered[message["id"]] = time.perf_counter() - started
                if "result" not in message:
                    raise RuntimeError(f"request {message['id']} failed: {message.get('error')}")
                if message["id"] == TOOLS_LIST_ID:
                    tools = len(message["result"]["tools"])
                elif not message["result"].get("isError"):
                    raise RuntimeError("the benchmark's tools/call was expected to be refused on its arguments")
    finally:
        process.stdin.close()  # end of input: the server exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return answered[TOOLS_LIST_ID], answered[TOOLS_CALL_ID], _children_cpu_s() - cpu_before, tools


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True)
    return time.perf_counter() - started


def measure(workdir: Path, runs: int) -> dict | None:
    """Medians of ``runs`` fresh processes each (after one warm-up round); None without the SDK."""
    if not sdk_available():
        return None
    env = isolated_env(workdir)
    ours = [*jarvis_wallet_command(), "--database-url", UNANSWERED_DATABASE, "mcp",
            "--socket", str(workdir / "no-signer" / "signer.sock")]
    minimal = [sys.executable, "-c", MINIMAL_SDK_SERVER]
    typer_import = [sys.executable, "-c", "import typer"]
    sdk_imports = [sys.executable, "-c", "import mcp.server.lowlevel, mcp.server.stdio"]
    series: dict[str, list[float]] = {}
    tools = 0
    for index in range(runs + 1):  # the first round is a warm-up
        # Interleaved, so that a burst of load on the machine hits all of them alike.
        ours_list, ours_call, ours_cpu, tools = time_to_answers(ours, env, OUR_REQUESTS)
        minimal_list, minimal_call, minimal_cpu, _ = time_to_answers(minimal, env, MINIMAL_REQUESTS)
        round_ = {
            "tools_list": ours_list, "tools_call": ours_call, "cpu": ours_cpu,
            "minimal_list": minimal_list, "minimal_call": minimal_call, "minimal_cpu": minimal_cpu,
            "import_typer": wall_time(typer_import, env), "sdk_import": wall_time(sdk_imports, env),
        }
        if index:
            for name, value in round_.items():
                series.setdefault(name, []).append(value)
    median = {name: statistics.median(values) for name, values in series.items()}
    return {
        "runs": runs,
        "tools": tools,
        "tools_list_median_s": median["tools_list"],
        "tools_call_median_s": median["tools_call"],
        "import_typer_median_s": median["import_typer"],
        "ratio_import_typer": median["tools_list"] / median["import_typer"],
        "minimal_sdk_server_median_s": median["minimal_list"],
        "minimal_sdk_server_tools_call_median_s": median["minimal_call"],
        "ratio_minimal_sdk_server": median["tools_list"] / median["minimal_list"],
        "ratio_tools_call_minimal_sdk_server": median["tools_call"] / median["minimal_call"],
        "sdk_import_median_s": median["sdk_import"],
        # CPU from start to exit after the tools/call answer: the front's work and the SDK's.
        "cpu_median_s": median["cpu"],
        "minimal_sdk_server_cpu_median_s": median["minimal_cpu"],
        "ratio_cpu_minimal_sdk_server": median["cpu"] / median["minimal_cpu"],
        "load_average": os.getloadavg()[0],
    }


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="jw-mcp-bench-") as directory:
        print(json.dumps(measure(Path(directory), int(sys.argv[1]) if len(sys.argv) > 1 else 9), indent=2))
