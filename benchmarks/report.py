"""Turn measurements into ratios, targets, a table for people and JSON for programs."""

from __future__ import annotations

import json
import operator
import sys
from dataclasses import dataclass

from harness import CaseResult

FLOOR, SSH_AGENT, PING = "floor", "ssh_agent", "ping"
_COMPARE = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


def sign_case_name(backend: str, kind: str) -> str:
    return f"sign_{backend}_{kind}"


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
    """Each case with its ratios to the floor and to ssh-agent at the same number of clients."""
    floor = {r.clients: r.ops_per_s for r in results if r.name == FLOOR}
    peer = {r.clients: r.ops_per_s for r in results if r.name == SSH_AGENT}
    return [
        {
            "name": r.name,
            "clients": r.clients,
            "ops": r.ops,
            "seconds": round(r.seconds, 4),
            "ops_per_s": round(r.ops_per_s, 1),
            "p50_ms": round(r.p50_ms, 4),
            "p99_ms": round(r.p99_ms, 4),
            "ratio_floor": _ratio(r.ops_per_s, floor.get(r.clients)),
            "ratio_ssh_agent": _ratio(r.ops_per_s, peer.get(r.clients)),
        }
        for r in results
    ]


def _ratio(value: float, baseline: float | None) -> float | None:
    return round(value / baseline, 4) if baseline else None


def evaluate_targets(
    results: list[CaseResult], kinds, backends, cli: dict, startup: dict, mcp: dict | None = None
) -> list[Target]:
    """The Performance issue's goals, each as a ratio measured in this run."""
    by_key = {(r.name, r.clients): r for r in results}
    peer1, peer8 = by_key.get((SSH_AGENT, 1)), by_key.get((SSH_AGENT, 8))
    floor1, ping1 = by_key.get((FLOOR, 1)), by_key.get((PING, 1))
    targets = []
    for kind in kinds:
        one, eight = by_key.get((sign_case_name("sqlite", kind), 1)), by_key.get((sign_case_name("sqlite", kind), 8))
        targets += [
            Target(f"sign sqlite {kind}, 1 client: ops/s vs ssh-agent", _rate_ratio(one, peer1), ">=", 2),
            Target(f"sign sqlite {kind}, 1 client: p99 / ssh-agent p50", _latency_ratio(one, peer1), "<=", 1),
            Target(f"sign sqlite {kind}, 8 clients: ops/s vs ssh-agent", _rate_ratio(eight, peer8), ">=", 4),
        ]
        if "postgresql" in backends:
            pg8 = by_key.get((sign_case_name("postgresql", kind), 8))
            targets.append(Target(f"sign postgresql {kind}, 8 clients: ops/s vs ssh-agent", _rate_ratio(pg8, peer8), ">=", 2))
    targets += [
        Target("ping, 1 client: ops/s vs floor", _rate_ratio(ping1, floor1), ">=", 0.25),
        Target("cli sign: wall time vs import typer", cli.get("ratio_import_typer"), "<=", 1.5),
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


def _latency_ratio(case: CaseResult | None, baseline: CaseResult | None) -> float | None:
    if case is None or baseline is None or not baseline.p50_ms:
        return None
    return case.p99_ms / baseline.p50_ms


def print_json(report: dict) -> None:
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


def print_tables(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(_machine_line(report["machine"], report["settings"]))
    cases = Table(title="Signing throughput and latency", title_justify="left")
    for column in ("case", "clients", "ops", "ops/s", "p50 ms", "p99 ms", "x floor", "x ssh-agent"):
        cases.add_column(column, justify="left" if column == "case" else "right")
    for row in report["cases"]:
        cases.add_row(
            row["name"], str(row["clients"]), f"{row['ops']:,}", f"{row['ops_per_s']:,.0f}",
            f"{row['p50_ms']:.3f}", f"{row['p99_ms']:.3f}", _times(row["ratio_floor"]), _times(row["ratio_ssh_agent"]),
        )
    console.print(cases)
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


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.3f}"


def _machine_line(machine: dict, settings: dict) -> str:
    postgres = machine["postgres"] or "not measured"
    return (
        f"{machine['platform']}, {machine['nproc']} CPUs, Python {machine['python']}, SQLite {machine['sqlite']}, "
        f"PostgreSQL {postgres}; {settings['seconds_per_case']:g} s per case, clients as {settings['client_mode']}"
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
