"""jarvis-wallet benchmarks: what a signature costs, as ratios to baselines measured in the same run.

    .venv/bin/python benchmarks/run.py [--database-url postgresql://...] [--json] [--rounds N]
                                       [--seconds-per-case S] [--quick] [--clients-as threads]

Absolute figures depend on the machine; ratios to baselines measured in the same run do not,
or much less. So every figure here sits beside baselines measured in the same run (design.md
section 7, issue #16):

* **floors** (benchmarks/floors.py): forked Python servers driven by the very same client and
  request lines as ``sign``, answering with a real sign reply's bytes, that do nothing else but
  ``echo``; or ``commit`` one row per request (1 client) or ``batch`` every ready request in one
  transaction (8 clients), on SQLite (WAL, synchronous=FULL, the signer's pragmas) and, with
  ``--database-url``, on PostgreSQL; each with a ``minimal`` row (id, 32-byte key, 64-byte body)
  and with the real ``audit`` row (``wallet_transactions`` made by our migrations, every index).
  What any Python signer with a durable record costs here, before it decides anything.
* **ssh_agent**: OpenSSH's ``ssh-agent`` signing the same bytes with an Ed25519 key over its
  Unix socket, asked by a Python client. The nearest peer: a separate key-holding process
  behind a local socket, with no policy and no durable record.
* **pynacl**: PyNaCl signing the same message bytes in-process: what the signature alone costs.

Against them, a real forked signer (``start_signer``) on a SQLite file (WAL, synchronous=FULL)
and, with ``--database-url``, on PostgreSQL in a fresh schema:

* **ping**: the bare round trip through the signer's socket and request handling;
* **sign_<backend>_<kind>**: ``SignerClient.sign_transaction``, the full path: HMAC'd request,
  parse, policy under the wallet lock, the record committed, then the signature. ``kind`` is a
  legacy compute-budget + transfer message, or a v0 message whose transfer destination comes
  from an address lookup table. Every request is a distinct message, pre-built before timing,
  and every case starts on a new database with an empty ledger, so no case inherits another's
  rows.

Each runs with 1 client in sequence and 8 concurrent clients (processes by default, so that the
clients' own Python does not share one GIL; ssh-agent and the floors are driven exactly the same
way). Every case is reported as a ratio to the echo floor, to the commit floors of its backend
(the batch floors at 8 clients) and to ssh-agent at the same client count. Then two
fresh-process measurements: ``jarvis-wallet sign FILE`` beside ``python -c "import typer"``, and
``jarvis-wallet signer start --detach`` until ready, and, when the MCP SDK is installed,
``jarvis-wallet mcp`` from spawn to its ``tools/list`` and first ``tools/call`` answers beside a
minimal server on the same SDK and ``import typer`` (benchmarks/mcp_startup.py). Finally the issue's targets are evaluated
from these ratios. With ``--rounds N`` every case (baselines and floors included) is measured N
times, round after round, and each case reports its median round: on a shared machine a single
round can catch a burst of someone else's load. Everything started (signers, floor servers, ssh-agent, clients, temp files,
the PostgreSQL schemas) is stopped and removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import signal
import sqlite3
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from jarvis_wallet.keys import Keypair, generate_keypair_file

import floors
import fresh_processes
import harness
import mcp_startup
import report
import ssh_agent
import workloads

DEFAULT_SECONDS_PER_CASE = 4.0
QUICK_SECONDS_PER_CASE = 1.0
CONCURRENT_CLIENTS = 8
CLI_RUNS, QUICK_CLI_RUNS = 15, 5
STARTUP_RUNS, QUICK_STARTUP_RUNS = 5, 3
MCP_RUNS, QUICK_MCP_RUNS = 9, 3
MAX_ROUNDS = 20


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="Also benchmark on this PostgreSQL server (a schema is created and dropped).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of tables.")
    parser.add_argument("--seconds-per-case", type=float, help=f"Timed seconds per case (default {DEFAULT_SECONDS_PER_CASE:g}).")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SECONDS_PER_CASE:g} s per case and fewer CLI runs.")
    parser.add_argument("--rounds", type=int, default=1,
                        help=f"Measure every case this many times (1 to {MAX_ROUNDS}) and report each case's median round.")
    parser.add_argument("--clients-as", choices=harness.CLIENT_MODES, default="processes",
                        help="Run concurrent clients as processes (default) or threads of this process.")
    args = parser.parse_args(argv)
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url must be a postgresql:// URL (SQLite is always measured)")
    if args.seconds_per_case is None:
        args.seconds_per_case = QUICK_SECONDS_PER_CASE if args.quick else DEFAULT_SECONDS_PER_CASE
    if args.seconds_per_case <= 0:
        parser.error("--seconds-per-case must be positive")
    if not 1 <= args.rounds <= MAX_ROUNDS:
        parser.error(f"--rounds must be between 1 and {MAX_ROUNDS}")
    return args


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Bench:
    """Runs cases one after another and keeps their results."""

    seconds: float
    client_mode: str
    results: list[harness.CaseResult] = field(default_factory=list)
    floor_servers: list[dict] = field(default_factory=list)
    round: int = 1

    def measure(self, name: str, workload: harness.Workload, clients: tuple[int, ...] = (1, CONCURRENT_CLIENTS)) -> None:
        budget = harness.budget_for(self.seconds, harness.fastest_op_seconds(workload))
        for count in clients:
            say(f"  {name}, {count} client{'s' if count > 1 else ''} ...")
            result = harness.run_case(name, workload, clients=count, seconds=self.seconds, budget=budget, mode=self.client_mode)
            if result.ran_out:
                say(f"  warning: {name} used up its {budget} pre-built requests before {self.seconds:g} s")
            self.results.append(result)


def measure_baselines(bench: Bench, workdir: Path, data: bytes) -> None:
    say("Baselines")
    bench.measure(report.PYNACL, functools.partial(workloads.pynacl_workload, data))
    with ssh_agent.running_agent(workdir) as agent:
        ssh_agent.verify_agent_signature(agent, data)
        bench.measure(report.SSH_AGENT, functools.partial(ssh_agent.agent_workload, agent, data))


@dataclass(frozen=True)
class Setup:
    """What every signer of the run shares: the temp directory, the key, the PostgreSQL server."""

    workdir: Path
    keypair_path: Path
    keypair: Keypair
    postgres_admin_url: str | None

    def signer(self, backend: str):
        """A fresh signer on an empty database of ``backend`` (a context manager)."""
        return workloads.fresh_signer(
            self.workdir, backend, self.keypair_path, self.keypair.public_key_base58, self.postgres_admin_url
        )

    @contextlib.contextmanager
    def sampled_database(self, backend: str, template: workloads.MessageTemplate):
        """A fresh database of ``backend`` holding two real signs of ``template``: yields its URL and
        the sample (reply line, shared secret, audit row) the floors copy."""
        with workloads.fresh_database(self.workdir, backend, self.postgres_admin_url) as url:
            workloads.prepare_database(url, self.keypair.public_key_base58)
            with workloads.signer_on(self.workdir, url, self.keypair_path) as handle:
                sample = floors.sample_signs(handle.socket_path, url, template.unique(2),
                                             Path(tempfile.mkdtemp(dir=self.workdir, prefix="sample-")))
            yield url, sample

    @contextlib.contextmanager
    def floor_database(self, backend: str, row: str, template: workloads.MessageTemplate, sample: floors.SignSample):
        """A fresh database for one commit floor: the audit schema with two real signs of its own
        (their row is the one the floor copies), or an empty minimal table."""
        if row == floors.AUDIT:
            with self.sampled_database(backend, template) as (url, own_sample):
                yield url, own_sample
            return
        with workloads.fresh_database(self.workdir, backend, self.postgres_admin_url) as url:
            floors.create_minimal_table(url)
            yield url, sample


def measure_floor(bench: Bench, name: str, clients: int, setup: Setup, sample: floors.SignSample,
                  template: workloads.MessageTemplate, *, url: str | None = None, row: str | None = None,
                  batch: bool = False) -> None:
    """One floor server, driven by the sign workload; its counts are checked against its table."""
    with floors.running_floor(name, setup.workdir, sample, url=url, row=row, batch=batch) as server:
        workload = functools.partial(workloads.sign_workload, server.socket_path, template)
        bench.measure(name, workload, clients=(clients,))
    stats = {"name": name, "clients": clients, "round": bench.round, **server.stats, "reply_bytes": sample.reply.size,
             "settings": server.settings}
    if url is not None:
        recorded = floors.count_rows(url, row) - (2 if row == floors.AUDIT else 0)  # less the two samples
        if recorded != stats["requests"]:
            raise floors.FloorFailed(f"{name} answered {stats['requests']} requests but recorded {recorded} rows")
        stats["rows"] = recorded
        stats["mean_batch"] = round(stats["requests"] / max(stats["commits"], 1), 3)
        if row == floors.AUDIT:
            stats["audit_columns"] = len(sample.audit_row.columns)
            stats["audit_columns_renewed"] = [sample.audit_row.columns[i] for i in sample.audit_row.varying]
    bench.floor_servers.append(stats)


def measure_echo_floor(bench: Bench, setup: Setup, template: workloads.MessageTemplate) -> floors.SignSample:
    say("Floors: echo")
    with setup.sampled_database("sqlite", template) as (_, sample):
        for clients in (1, CONCURRENT_CLIENTS):
            measure_floor(bench, floors.case_name(floors.ECHO), clients, setup, sample, template)
    return sample


def measure_commit_floors(bench: Bench, setup: Setup, backend: str, template: workloads.MessageTemplate,
                          sample: floors.SignSample) -> None:
    """Per request at 1 client, per batch at 8, with the minimal and the audit row."""
    say(f"Floors: commit on {backend}")
    for row in floors.ROWS:
        for kind, clients in ((floors.COMMIT, 1), (floors.BATCH, CONCURRENT_CLIENTS)):
            with setup.floor_database(backend, row, template, sample) as (url, row_sample):
                measure_floor(bench, floors.case_name(kind, backend, row), clients, setup, row_sample, template,
                              url=url, row=row, batch=kind == floors.BATCH)


def measure_ping(bench: Bench, setup: Setup) -> None:
    say("Signer round trip")
    with setup.signer("sqlite") as handle:
        bench.measure(report.PING, functools.partial(workloads.ping_workload, handle.socket_path), clients=(1,))


def measure_signing(bench: Bench, setup: Setup, backend: str) -> None:
    """Every (transaction kind, client count) on a signer and ledger of its own."""
    say(f"Full sign on {backend}")
    for kind in workloads.TRANSACTION_KINDS:
        template = workloads.message_template(kind, setup.keypair.public_key)
        for clients in (1, CONCURRENT_CLIENTS):
            with setup.signer(backend) as handle:
                workloads.verify_signer_signature(handle, template)
                workload = functools.partial(workloads.sign_workload, handle.socket_path, template)
                bench.measure(report.sign_case_name(backend, kind), workload, clients=(clients,))


def measure_fresh_processes(setup: Setup, template: workloads.MessageTemplate, *, cli_runs: int, startup_runs: int):
    say("Fresh processes")
    with setup.signer("sqlite") as handle:
        cli = fresh_processes.measure_cli(handle.socket_path, template, setup.workdir, cli_runs)
    with workloads.fresh_database(setup.workdir, "sqlite") as url:
        workloads.prepare_database(url, setup.keypair.public_key_base58)
        startup = fresh_processes.measure_startup(url, setup.keypair_path, setup.workdir, startup_runs)
    return cli, startup


def machine_info(database_url: str | None) -> dict:
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgres": workloads.postgres_version(database_url) if database_url else None,
        "platform": platform.platform(),
    }


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def run(args: argparse.Namespace) -> dict:
    bench = Bench(args.seconds_per_case, args.clients_as)
    backends = ["sqlite"] + (["postgresql"] if args.database_url else [])
    machine = machine_info(args.database_url)
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="jw-bench-") as directory:
        workdir = Path(directory)
        keypair_path = workdir / "signer.json"
        setup = Setup(workdir, keypair_path, generate_keypair_file(keypair_path), args.database_url)
        legacy = workloads.message_template("legacy", setup.keypair.public_key)
        for number in range(1, args.rounds + 1):
            bench.round = number
            if args.rounds > 1:
                say(f"Round {number} of {args.rounds}")
            measure_baselines(bench, workdir, legacy.unique(1)[0])
            sample = measure_echo_floor(bench, setup, legacy)
            measure_ping(bench, setup)
            for backend in backends:
                measure_commit_floors(bench, setup, backend, legacy, sample)
                measure_signing(bench, setup, backend)
        cli, startup = measure_fresh_processes(
            setup, legacy,
            cli_runs=QUICK_CLI_RUNS if args.quick else CLI_RUNS,
            startup_runs=QUICK_STARTUP_RUNS if args.quick else STARTUP_RUNS,
        )
        say("MCP server start-up")
        mcp = mcp_startup.measure(workdir, QUICK_MCP_RUNS if args.quick else MCP_RUNS)
    results = harness.median_results(bench.results)
    targets = report.evaluate_targets(results, workloads.TRANSACTION_KINDS, backends, cli, startup, mcp,
                                      concurrent=CONCURRENT_CLIENTS)
    return {
        "machine": machine,
        "settings": {"seconds_per_case": args.seconds_per_case, "client_mode": args.clients_as, "quick": args.quick,
                     "rounds": args.rounds, "concurrent_clients": CONCURRENT_CLIENTS, "backends": backends,
                     "load_average_start": [round(x, 2) for x in load_at_start],
                     "load_average_end": [round(x, 2) for x in os.getloadavg()]},
        "cases": report.case_rows(results),
        "floors": bench.floor_servers,
        "cli": _rounded(cli),
        "startup": _rounded(startup),
        "mcp": None if mcp is None else _rounded(mcp),
        "targets": [target.as_dict() for target in targets],
    }


def _rounded(figures: dict) -> dict:
    return {key: round(value, 5) if isinstance(value, float) else value for key, value in figures.items()}


def _interrupt_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every cleanup block runs."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _interrupt_on_sigterm()
    try:
        results = run(args)
    except KeyboardInterrupt:
        say("Interrupted; everything the benchmark started has been stopped and removed.")
        return 130
    (report.print_json if args.json else report.print_tables)(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
