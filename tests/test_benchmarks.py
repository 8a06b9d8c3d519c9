"""The benchmark harness runs end to end and every case does real work.

No timing is asserted here: performance is judged by reading the benchmark's ratios
(design.md section 7), never by a test that fails on a slow machine. What is checked: every case
ran, the floor servers (benchmarks/floors.py) answered with a real sign reply's size and recorded
one row per request on a durable database, and every ratio the issue's targets rest on is there.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import POSTGRES_URL
from jarvis_wallet.mcp_server import TOOLS

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 600
RATIO_KEYS = {"ratio_echo", "ratio_commit_minimal", "ratio_commit_audit", "ratio_ssh_agent"}
CASE_KEYS = {"name", "clients", "ops", "seconds", "ops_per_s", "p50_ms", "p99_ms"} | RATIO_KEYS
ROWS = ("minimal", "audit")


@pytest.fixture(scope="module")
def bench_modules():
    """benchmarks/ is a directory of scripts, not a package: import its modules as run.py does."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import floors
        import harness
        import report

        yield floors, harness, report
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


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
    floors = {("floor_echo", 1), ("floor_echo", 8)}
    floors |= {(f"floor_commit_{b}_{row}", 1) for b in backends for row in ROWS}
    floors |= {(f"floor_batch_{b}_{row}", 8) for b in backends for row in ROWS}
    expected = {("pynacl", 1), ("pynacl", 8), ("ssh_agent", 1), ("ssh_agent", 8), ("ping", 1)} | floors
    expected |= {(f"sign_{b}_{kind}", n) for b in backends for kind in ("legacy", "v0_lookup") for n in (1, 8)}
    assert {(case["name"], case["clients"]) for case in report["cases"]} == expected

    for case in report["cases"]:
        assert set(case) == CASE_KEYS, case["name"]
        assert case["ops"] > 0 and case["seconds"] > 0 and case["ops_per_s"] > 0, case
        assert 0 < case["p50_ms"] <= case["p99_ms"], case
        assert case["ratio_echo"] > 0 and case["ratio_ssh_agent"] > 0, case
        is_sign = case["name"].startswith("sign_")  # only a sign is held to the commit floors
        assert (case["ratio_commit_minimal"] is not None) == is_sign, case
        assert (case["ratio_commit_audit"] is not None) == is_sign, case
        if is_sign:
            assert case["ratio_commit_minimal"] > 0 and case["ratio_commit_audit"] > 0, case

    # Each floor server answered at least what the clients counted (the calibration adds more),
    # and every commit floor inserted one row per answered request, durably.
    ops = {(case["name"], case["clients"]): case["ops"] for case in report["cases"]}
    servers = {(server["name"], server["clients"]): server for server in report["floors"]}
    assert set(servers) == floors
    for key, server in servers.items():
        assert server["requests"] >= ops[key] > 0, server
        assert server["reply_bytes"] > 600, server  # a real sign reply: signature and signed transaction
        if key[0] == "floor_echo":
            assert "rows" not in server
            continue
        assert server["rows"] == server["requests"] and 1 <= server["commits"] <= server["rows"], server
        if key[0].startswith("floor_commit_"):
            assert server["commits"] == server["rows"] and server["largest_batch"] == 1, server
        settings = server["settings"]
        if "_sqlite_" in key[0]:
            assert settings == {"journal_mode": "wal", "synchronous": "full"}, server
        else:
            assert settings["fsync"] == "on" and settings["synchronous_commit"] != "off", server
        if key[0].endswith("_audit"):
            # the real wallet_transactions row, whatever shape round 2 gives it: at least the request
            # id, the signature and a time renewed per request, the wallet and amounts copied
            renewed = set(server["audit_columns_renewed"])
            assert server["audit_columns"] >= 10 and len(renewed) >= 3 and "request_id" in renewed, server
            assert not renewed & {"wallet", "lamports", "status"}, server

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
    names = {target["name"] for target in report["targets"]}
    for kind in ("legacy", "v0_lookup"):
        assert f"sign sqlite {kind}, 1 client: ops/s vs commit floor (minimal row)" in names
        assert f"sign sqlite {kind}, 1 client: p99 ms" in names
        assert f"sign sqlite {kind}, 8 clients: ops/s vs ssh-agent" in names
        assert (f"sign postgresql {kind}, 1 client: ops/s vs ssh-agent" in names) == bool(POSTGRES_URL)
    assert "cli sign: wall time vs import typer" in names


def test_ratios_pair_each_case_with_its_floors(bench_modules):
    floors, harness, report = bench_modules

    def case(name, clients, ops):
        return harness.CaseResult(name, clients, ops, 1.0, 0.5, 1.0, False)

    results = [
        case("ssh_agent", 1, 2000), case("ssh_agent", 8, 2500), case("floor_echo", 1, 20000), case("floor_echo", 8, 16000),
        case("floor_commit_sqlite_minimal", 1, 2400), case("floor_commit_sqlite_audit", 1, 1600),
        case("floor_batch_sqlite_minimal", 8, 8000), case("floor_batch_sqlite_audit", 8, 5000),
        case("ping", 1, 25000), case("sign_sqlite_legacy", 1, 1200), case("sign_sqlite_legacy", 8, 4000),
    ]
    rows = {(row["name"], row["clients"]): row for row in report.case_rows(results)}

    one, eight = rows[("sign_sqlite_legacy", 1)], rows[("sign_sqlite_legacy", 8)]
    assert (one["ratio_echo"], one["ratio_commit_minimal"], one["ratio_commit_audit"], one["ratio_ssh_agent"]) \
        == (0.06, 0.5, 0.75, 0.6)
    # 8 clients: the batch floors (group commit), ssh-agent at 8
    assert (eight["ratio_echo"], eight["ratio_commit_minimal"], eight["ratio_commit_audit"], eight["ratio_ssh_agent"]) \
        == (0.25, 0.5, 0.8, 1.6)
    assert rows[("ping", 1)]["ratio_echo"] == 1.25 and rows[("ping", 1)]["ratio_commit_minimal"] is None
    assert rows[("floor_echo", 8)]["ratio_ssh_agent"] == 6.4

    targets = {t.name: t for t in report.evaluate_targets(results, ("legacy",), ["sqlite"], {}, {})}
    assert targets["sign sqlite legacy, 1 client: ops/s vs commit floor (minimal row)"].value == 0.5
    assert targets["sign sqlite legacy, 1 client: p99 ms"].value == 1.0
    assert targets["sign sqlite legacy, 1 client: p99 ms"].met  # <= 1 ms
    assert targets["sign sqlite legacy, 8 clients: ops/s vs ssh-agent"].value == 1.6
    assert not targets["sign sqlite legacy, 8 clients: ops/s vs ssh-agent"].met  # >= 3


def test_a_case_of_several_rounds_reports_its_median_round(bench_modules):
    _, harness, _ = bench_modules
    rounds = [harness.CaseResult("ping", 1, ops, 1.0, p50, p50 * 2, False)
              for ops, p50 in ((300, 0.3), (100, 0.1), (200, 0.2), (400, 0.4))]
    (median,) = harness.median_results(rounds)
    assert (median.ops, median.p50_ms) == (200, 0.2)  # the lower middle of four, with its own latencies
    assert [r.ops for r in harness.median_results(rounds[:3])] == [200]


def test_rounds_out_of_range_is_a_one_line_error():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--rounds", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("--rounds must be between 1 and 20")
    assert "Traceback" not in result.stderr


def test_audit_row_renews_what_differs_between_two_real_signs(bench_modules):
    floors, _, _ = bench_modules
    columns = ["id", "request_id", "wallet", "lamports", "message_sha256", "message_bytes", "created_at", "approval_id"]
    first = (1, "9a5cc972-c49d", "5oVy8n3x", 1007000, "3755e0b8", b"\x01\x02", "2026-12-07 02:24:21.914789", None)
    second = (2, "25a86b1f-60d1", "5oVy8n3x", 1007000, "c86a74cc", memoryview(b"\x01\x03"), "2026-12-07 02:24:21.923225", None)
    row = floors.AuditRow.from_samples(columns, first, second)

    assert row.columns == tuple(columns[1:])  # id is the database's
    assert [row.columns[i] for i in row.varying] == ["request_id", "message_sha256", "message_bytes", "created_at"]
    a, b = row.fresh(1), row.fresh(2)
    for values in (a, b):
        assert [len(v) for v in values[:1] + values[3:6]] == [13, 8, 2, 26]  # same lengths as the samples
        assert values[1:3] == ["5oVy8n3x", 1007000] and values[6] is None  # copied
        assert isinstance(values[4], bytes)
        datetime.datetime.fromisoformat(values[5])
    assert a[0] != b[0] and a[3] != b[3]


def test_reply_template_answers_with_the_requests_id(bench_modules):
    floors, _, _ = bench_modules
    line = b'{"requestId":"9a5cc972-c49d-4497-8d93-f61a7aadc241","ok":true,"signature":"39GD"}\n'
    template = floors.ReplyTemplate.around(line, "9a5cc972-c49d-4497-8d93-f61a7aadc241")
    request = b'{"op":"sign","requestId":"25a86b1f-60d1-42aa-9c5a-31dd92a1a169","timestamp":1}'
    assert template.reply(request) == line.replace(b"9a5cc972-c49d-4497-8d93-f61a7aadc241", b"25a86b1f-60d1-42aa-9c5a-31dd92a1a169")
    assert template.size == len(line)


def test_ssh_agent_starts_again_in_the_same_working_directory(tmp_path, bench_modules):
    # --rounds N starts ssh-agent once per round in one working directory: a former round's key
    # file must not make ssh-keygen fail (it refuses to overwrite without a terminal).
    import ssh_agent

    keys = []
    for _ in range(2):
        with ssh_agent.running_agent(tmp_path) as agent:
            ssh_agent.verify_agent_signature(agent, b"round")
            keys.append(agent.public_key)
    assert keys[0] != keys[1]
