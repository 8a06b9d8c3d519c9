"""Turn measurements into ratios, targets, a table for people and JSON for programs."""

from __future__ import annotations

import json
import operator
import sys
from dataclasses import dataclass

import floors
from harness import CaseResult

PYNACL, SSH_AGENT, PING = "pynacl", "ssh_agent", "ping"
ECHO_FLOOR = floors.case_name(floors.ECHO)
RATIOS = ("ratio_echo", "ratio_commit_minimal", "ratio_commit_audit", "ratio_ssh_agent")
_COMPARE = {">=": operator.ge, "<=": operator.le, "<": operator.lt}

# Issue #16's goals (ratios in one run; the p99 is the one absolute figure it states).
SQLITE_1_CLIENT_VS_COMMIT_FLOOR = 0.90
SQLITE_1_CLIENT_P99_MS = 1.0
SQLITE_8_CLIENTS_VS_SSH_AGENT = 3.0
POSTGRESQL_8_CLIENTS_VS_SSH_AGENT = 1.5
POSTGRESQL_1_CLIENT_VS_SSH_AGENT = 0.8
CLI_SIGN_VS_IMPORT_TYPER = 1.5


def sign_case_name(backend: str, kind: str) -> str:
    return f"sign_{backend}_{kind}"


def commit_floor_name(backend: str, row: str, clients: int) -> str:
    """The floor a sign case on ``backend`` is held to: a commit per request for one client, a
    commit per batch (group commit) for concurrent clients."""
    return floors.case_name(floors.COMMIT if clients == 1 else floors.BATCH, backend, row)


def _backend_of(name: str) -> str | None:
    """``sqlite`` for ``sign_sqlite_legacy``; None for a case that is not a sign."""
    parts = name.split("_")
    return parts[1] if parts[0] == "sign" and len(parts) > 2 else None


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None  # None: not measured in this run
    comparison: str  # one of _COMPARE
    bound: float

    @property
    def met(self) -> bool:
        return self.value is not None and _COMPARE[self.comparison](self.value, self.bound)

    def as_dict(self) -> dict:
        value = None if self.value is None else round(self.value, 4)
        return {"name": self.name, "value": value, "target": f"{self.comparison} {self.bound:g}", "met": self.met}


def case_rows(results: list[CaseResult]) -> list[dict]:
    """Each case with its ratios to the floors and to ssh-agent at the same number of clients.

    Every case is compared with the echo floor; a sign case also with the commit floors of its
    backend (per request at 1 client, per batch at 8), minimal row and audit row. None where the
    floor does not apply or was not measured.
    """
    rate = {(r.name, r.clients): r.ops_per_s for r in results}
    rows = []
    for r in results:
        backend = _backend_of(r.name)
        commit = {
            row: _ratio(r.ops_per_s, rate.get((commit_floor_name(backend, row, r.clients), r.clients)))
            if backend else None
            for row in floors.ROWS
        }
        rows.append({
            "name": r.name,
            "clients": r.clients,
            "ops": r.ops,
            "seconds": round(r.seconds, 4),
            "ops_per_s": round(r.ops_per_s, 1),
            "p50_ms": round(r.p50_ms, 4),
            "p99_ms": round(r.p99_ms, 4),
            "ratio_echo": _ratio(r.ops_per_s, rate.get((ECHO_FLOOR, r.clients))),
            "ratio_commit_minimal": commit[floors.MINIMAL],
            "ratio_commit_audit": commit[floors.AUDIT],
            "ratio_ssh_agent": _ratio(r.ops_per_s, rate.get((SSH_AGENT, r.clients))),
        })
    return rows


def _ratio(value: float, baseline: float | None) -> float | None:
    return round(value / baseline, 4) if baseline else None


def evaluate_targets(
    results: list[CaseResult], kinds, backends, cli: dict, startup: dict, mcp: dict | None = None,
    *, concurrent: int = 8,
) -> list[Target]:
    """Issue #16's goals, each measured in this run (and the start-up goals of earlier issues)."""
    by_key = {(r.name, r.clients): r for r in results}
    peer1, peer8 = by_key.get((SSH_AGENT, 1)), by_key.get((SSH_AGENT, concurrent))
    floor1 = by_key.get((commit_floor_name("sqlite", floors.MINIMAL, 1), 1))
    targets = []
    for kind in kinds:
        one = by_key.get((sign_case_name("sqlite", kind), 1))
        eight = by_key.get((sign_case_name("sqlite", kind), concurrent))
        targets += [
            Target(f"sign sqlite {kind}, 1 client: ops/s vs commit floor (minimal row)", _rate_ratio(one, floor1),
                   ">=", SQLITE_1_CLIENT_VS_COMMIT_FLOOR),
            Target(f"sign sqlite {kind}, 1 client: p99 ms", None if one is None else one.p99_ms,
                   "<=", SQLITE_1_CLIENT_P99_MS),
            Target(f"sign sqlite {kind}, {concurrent} clients: ops/s vs ssh-agent", _rate_ratio(eight, peer8),
                   ">=", SQLITE_8_CLIENTS_VS_SSH_AGENT),
        ]
        if "postgresql" in backends:
            pg1 = by_key.get((sign_case_name("postgresql", kind), 1))
            pg8 = by_key.get((sign_case_name("postgresql", kind), concurrent))
            targets += [
                Target(f"sign postgresql {kind}, {concurrent} clients: ops/s vs ssh-agent", _rate_ratio(pg8, peer8),
                       ">=", POSTGRESQL_8_CLIENTS_VS_SSH_AGENT),
                Target(f"sign postgresql {kind}, 1 client: ops/s vs ssh-agent", _rate_ratio(pg1, peer1),
                       ">=", POSTGRESQL_1_CLIENT_VS_SSH_AGENT),
            ]
    targets += [
        Target("cli sign: wall time vs import typer", cli.get("ratio_import_typer"), "<=", CLI_SIGN_VS_IMPORT_TYPER),
        Target("signer start --detach: seconds", startup.get("start_detach_median_s"), "<", 0.5),
    ]
    if mcp is not None:  # measured only where the MCP SDK is installed
        targets += [
            Target("mcp: spawn to tools/list, seconds", mcp["tools_list_median_s"], "<", 0.5),
            # CPU seconds, start to exit after the first tools/call (the SDK's import included):
            # the wall-time ratio of two fresh processes moves with the load.
            Target("mcp: CPU to a first tools/call vs minimal SDK server", mcp["ratio_cpu_minimal_sdk_server"], "<=",
                   1.25),
        ]
    return targets


def _rate_ratio(case: CaseResult | None, baseline: CaseResult | None) -> float | None:
    if case is None or baseline is None or not baseline.ops_per_s:
        return None
    return case.ops_per_s / baseline.ops_per_s


def print_json(report: dict) -> None:
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


def print_tables(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(_machine_line(report["machine"], report["settings"]))
    cases = Table(title="Signing throughput and latency (ratios: to the floors of the same run, same clients)",
                  title_justify="left")
    for column in ("case", "clients", "ops", "ops/s", "p50 ms", "p99 ms",
                   "x echo", "x commit min", "x commit audit", "x ssh-agent"):
        cases.add_column(column, justify="left" if column == "case" else "right")
    for row in report["cases"]:
        cases.add_row(
            row["name"], str(row["clients"]), f"{row['ops']:,}", f"{row['ops_per_s']:,.0f}",
            f"{row['p50_ms']:.3f}", f"{row['p99_ms']:.3f}", *(_times(row[key]) for key in RATIOS),
        )
    console.print(cases)
    console.print(_floor_lines(report["floors"]))
    console.print(_cli_lines(report["cli"], report["startup"]))
    if report.get("mcp"):
        console.print(_mcp_line(report["mcp"]))
    targets = Table(title="Targets", title_justify="left")
    for column in ("target", "value", "goal", "met"):
        targets.add_column(column)
    for target in report["targets"]:
        value = "-" if target["value"] is None else f"{target['value']:.3f}"
        met = "[green]met[/green]" if target["met"] else "[red]NOT MET[/red]"
        targets.add_row(target["name"], value, target["target"], met)
    console.print(targets)


def _floor_lines(servers: list[dict]) -> str:
    lines = []
    for server in servers:
        line = f"{server['name']} ({server['clients']} client{'s' if server['clients'] > 1 else ''}): " \
               f"{server['requests']:,} requests answered"
        if "rows" in server:
            line += f", {server['rows']:,} rows in {server['commits']:,} commits (mean batch {server['mean_batch']:g})"
        settings = ", ".join(f"{key}={value}" for key, value in server["settings"].items())
        lines.append(f"{line}; {settings}")
    return "Floor servers: " + (f"reply {servers[0]['reply_bytes']} bytes" if servers else "none") + "\n  " + \
        "\n  ".join(lines) + "\n"


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.3f}"


def _machine_line(machine: dict, settings: dict) -> str:
    postgres = machine["postgres"] or "not measured"
    load = "/".join(f"{settings[key][0]:.1f}" for key in ("load_average_start", "load_average_end"))
    return (
        f"{machine['platform']}, {machine['nproc']} CPUs, Python {machine['python']}, SQLite {machine['sqlite']}, "
        f"PostgreSQL {postgres}; {settings['seconds_per_case']:g} s per case, clients as {settings['client_mode']}; "
        f"load average {load} (start/end)"
    )


def _cli_lines(cli: dict, startup: dict) -> str:
    return (
        f"CLI (median of {cli['runs']} fresh processes): jarvis-wallet sign {cli['sign_median_s'] * 1000:.1f} ms, "
        f"python -c 'import typer' {cli['import_typer_median_s'] * 1000:.1f} ms "
        f"(ratio {cli['ratio_import_typer']:.2f}), minimal Typer command {cli['minimal_typer_command_median_s'] * 1000:.1f} ms "
        f"(ratio {cli['ratio_minimal_typer_command']:.2f}), python -c pass {cli['python_bare_median_s'] * 1000:.1f} ms\n"
        f"Start-up (median of {startup['runs']}): signer start --detach {startup['start_detach_median_s'] * 1000:.1f} ms, "
        f"signer stop {startup['stop_median_s'] * 1000:.1f} ms, "
        f"start_signer() in-process {startup['in_process_start_median_s'] * 1000:.1f} ms\n"
    )


def _mcp_line(mcp: dict) -> str:
    return (
        f"MCP (median of {mcp['runs']} fresh processes): jarvis-wallet mcp to tools/list "
        f"{mcp['tools_list_median_s'] * 1000:.1f} ms (import typer {mcp['import_typer_median_s'] * 1000:.1f} ms, "
        f"ratio {mcp['ratio_import_typer']:.2f}), to a first tools/call {mcp['tools_call_median_s'] * 1000:.1f} ms; "
        f"minimal server on the same SDK {mcp['minimal_sdk_server_median_s'] * 1000:.1f} ms and "
        f"{mcp['minimal_sdk_server_tools_call_median_s'] * 1000:.1f} ms (ratios {mcp['ratio_minimal_sdk_server']:.2f}, "
        f"{mcp['ratio_tools_call_minimal_sdk_server']:.2f}), the SDK's imports alone "
        f"{mcp['sdk_import_median_s'] * 1000:.1f} ms; CPU to exit {mcp['cpu_median_s'] * 1000:.0f} ms "
        f"vs {mcp['minimal_sdk_server_cpu_median_s'] * 1000:.0f} ms (load average {mcp['load_average']:.1f})"
    )
