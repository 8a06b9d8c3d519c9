"""From spawning ``jarvis-wallet mcp`` to its answer to ``tools/list``, as a fresh process.

A model's client starts the server and lists its tools before the first turn, so what counts
is the whole process: interpreter, imports, the handshake. Measured the same way, in the same
run: a minimal server on the same SDK (one tool, the low-level ``Server`` on stdio, the least
any server on this SDK costs) and the SDK's imports alone. The client side is three JSON-RPC
lines written at once and read back over pipes, so no client library's own start-up is
counted.

The server is pointed at a socket where no signer listens and at a PostgreSQL address that
does not answer (TEST-NET-1, RFC 5737): had start-up or ``tools/list`` touched either, the
figure would include a connect timeout of seconds.
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

server = Server("minimal", on_list_tools=list_tools)

async def main():
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())

anyio.run(main)
"""

_HANDSHAKE = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize",
     "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
]
_REQUEST_BYTES = "".join(json.dumps(message) + "\n" for message in _HANDSHAKE).encode()


def sdk_available() -> bool:
    try:
        import mcp.server.lowlevel  # noqa: F401
    except ImportError:
        return False
    return True


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_to_tools(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Seconds from spawning ``argv`` to reading its tools/list answer, the CPU seconds the
    process used in all (start to exit: less sensitive to the machine's load than wall time),
    and how many tools it listed."""
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        process.stdin.write(_REQUEST_BYTES)
        process.stdin.flush()
        deadline = started + ANSWER_TIMEOUT_SECONDS
        while time.perf_counter() < deadline:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"{' '.join(argv[:3])} closed stdout before answering tools/list")
            message = json.loads(line)
            if message.get("id") == 2:
                elapsed = time.perf_counter() - started
                if "result" not in message:
                    raise RuntimeError(f"tools/list failed: {message.get('error')}")
                tools = len(message["result"]["tools"])
                break
        else:
            raise RuntimeError("no tools/list answer in time")
    finally:
        process.stdin.close()  # end of input: the server exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return elapsed, _children_cpu_s() - cpu_before, tools


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True)
    return time.perf_counter() - started


def measure(workdir: Path, runs: int) -> dict | None:
    """Medians of ``runs`` fresh processes each (after one warm-up); None without the SDK."""
    if not sdk_available():
        return None
    env = isolated_env(workdir)
    ours = [*jarvis_wallet_command(), "--database-url", UNANSWERED_DATABASE, "mcp",
            "--socket", str(workdir / "no-signer" / "signer.sock")]
    minimal = [sys.executable, "-c", MINIMAL_SDK_SERVER]
    imports = [sys.executable, "-c", "import mcp.server.lowlevel, mcp.server.stdio"]
    ours_s, ours_cpu, minimal_s, minimal_cpu, imports_s, tools = [], [], [], [], [], 0
    for index in range(runs + 1):  # the first round is a warm-up
        # Interleaved, so that a burst of load on the machine hits all three alike.
        ours_time, ours_cpu_time, tools = time_to_tools(ours, env)
        minimal_time, minimal_cpu_time, _ = time_to_tools(minimal, env)
        imports_time = wall_time(imports, env)
        if index:
            ours_s.append(ours_time)
            ours_cpu.append(ours_cpu_time)
            minimal_s.append(minimal_time)
            minimal_cpu.append(minimal_cpu_time)
            imports_s.append(imports_time)
    ours_median, minimal_median = statistics.median(ours_s), statistics.median(minimal_s)
    return {
        "runs": runs,
        "tools": tools,
        "tools_list_median_s": ours_median,
        "minimal_sdk_server_median_s": minimal_median,
        "ratio_minimal_sdk_server": ours_median / minimal_median,
        "sdk_import_median_s": statistics.median(imports_s),
        "cpu_median_s": statistics.median(ours_cpu),
        "minimal_sdk_server_cpu_median_s": statistics.median(minimal_cpu),
        "ratio_cpu_minimal_sdk_server": statistics.median(ours_cpu) / statistics.median(minimal_cpu),
        "load_average": os.getloadavg()[0],
    }


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="jw-mcp-bench-") as directory:
        print(json.dumps(measure(Path(directory), int(sys.argv[1]) if len(sys.argv) > 1 else 10), indent=2))
