"""The benchmark harness runs end to end and every case does real work.

No timing is asserted here: performance is judged by reading the benchmark's ratios
(design.md section 7), never by a test that fails on a slow machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import POSTGRES_URL
from jarvis_wallet.mcp_server import TOOLS

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 600
CASE_KEYS = {"name", "clients", "ops", "seconds", "ops_per_s", "p50_ms", "p99_ms", "ratio_floor", "ratio_ssh_agent"}


def run_quick_benchmark() -> dict:
    argv = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json"]
    if POSTGRES_URL:
        argv += ["--database-url", POSTGRES_URL]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_quick_benchmark_measures_every_case():
    report = run_quick_benchmark()

    assert set(report) >= {"machine", "cases", "cli", "startup", "mcp", "targets"}
    assert set(report["machine"]) >= {"nproc", "python", "sqlite", "postgres", "platform"}
    assert (report["machine"]["postgres"] is not None) == bool(POSTGRES_URL)

    backends = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
    expected = {("floor", 1), ("floor", 8), ("ssh_agent", 1), ("ssh_agent", 8), ("ping", 1)}
    expected |= {(f"sign_{b}_{kind}", n) for b in backends for kind in ("legacy", "v0_lookup") for n in (1, 8)}
    assert {(case["name"], case["clients"]) for case in report["cases"]} == expected

    for case in report["cases"]:
        assert set(case) == CASE_KEYS, case["name"]
        assert case["ops"] > 0 and case["seconds"] > 0 and case["ops_per_s"] > 0, case
        assert 0 < case["p50_ms"] <= case["p99_ms"], case
        assert case["ratio_floor"] > 0 and case["ratio_ssh_agent"] > 0, case

    cli = report["cli"]
    assert cli["runs"] > 0
    assert cli["sign_median_s"] > 0 and cli["import_typer_median_s"] > 0 and cli["ratio_import_typer"] > 0
    startup = report["startup"]
    assert startup["runs"] > 0 and startup["start_detach_median_s"] > 0

    mcp = report["mcp"]  # the dev extra installs the SDK
    assert mcp["runs"] > 0 and mcp["tools"] == len(TOOLS)  # every offline tool
    assert 0 < mcp["sdk_import_median_s"] and 0 < mcp["minimal_sdk_server_median_s"]
    assert mcp["tools_list_median_s"] > 0 and mcp["ratio_minimal_sdk_server"] > 0
    assert mcp["cpu_median_s"] > 0 and mcp["ratio_cpu_minimal_sdk_server"] > 0
    # The first tools/call is the SDK's answer: it comes after tools/list, which the front gives.
    assert mcp["tools_call_median_s"] >= mcp["tools_list_median_s"] > 0
    assert mcp["import_typer_median_s"] > 0 and mcp["ratio_import_typer"] > 0
    assert mcp["minimal_sdk_server_tools_call_median_s"] > 0 and mcp["ratio_tools_call_minimal_sdk_server"] > 0
    assert "mcp: spawn to tools/list, seconds" in {target["name"] for target in report["targets"]}

    assert report["targets"]
    for target in report["targets"]:
        assert set(target) == {"name", "value", "target", "met"}
        assert isinstance(target["value"], float) and isinstance(target["met"], bool), target
