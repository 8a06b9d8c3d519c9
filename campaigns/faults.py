"""Fault campaigns: the signer killed, its database cut or locked, again and again under load,
with the accounting check of tests/accounting.py at the end.

    .venv/bin/python campaigns/faults.py --seconds 300 --scenario kill --json
    .venv/bin/python campaigns/faults.py --seconds 300 --scenario cut \
        --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python campaigns/faults.py --seconds 300 --scenario lock

Scenarios (``--scenario all``: kill, then cut on PostgreSQL or lock on SQLite):

    kill   `kill -9` of the signer at a random moment (every 0.2 to 2 s) while ``--clients``
           clients sign; a supervisor-style restart (`jarvis-wallet signer serve`, same socket,
           same database) after 0 to 0.3 s. The run is cut into phases of about 15 s; before each,
           with the load paused, the daily ceiling is set a little above the day's spend, so
           that every phase meets the ceiling across kills, and each phase must end with the
           spend at or below its ceiling (exactly at it, when it was met).
    cut    (PostgreSQL) the signer's connection goes through a TCP proxy that is stopped for
           0.1 to 2 s every 0.5 to 3 s; the same signer process must refuse, then recover.
    lock   (SQLite) another process holds the database's write lock for 0.5 to 7 s every 1 to
           4 s (past the 5 s busy timeout about a quarter of the time).
    partition  (PostgreSQL, as root; not part of "all") the signer runs in a network namespace
           whose link to PostgreSQL drops every packet for 0.5 to 20 s every 1 to 4 s, nothing
           reset (tests/faultkit.py, PartitionableLink): libpq's keepalives must fail the
           connection, the server must end the cut-off session, and the same signer process
           must refuse, then recover.
    hang   (PostgreSQL; not part of "all") the server process serving the signer is stopped
           (SIGSTOP) for 1 to 40 s every 2 to 5 s: a server that accepts and never answers.
           Nothing may be released or lost; ``internal_error`` replies (the signer's 30 s
           decision timeout) are expected and counted, not errors.

Each scenario reports the faults injected, the requests and what came back, the signatures
received and accounted for (a row with the same signature and message), anything missing or
doubled (must be zero), and how long the load took to get its next decision after each fault
was lifted. Exit status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from jarvis_wallet.keys import generate_keypair_file, load_keypair_file  # noqa: E402

from accounting import Journal, check_accounting  # noqa: E402
from faultkit import (  # noqa: E402
    NetworkUnavailable,
    ServedSigner,
    SigningLoad,
    initialise,
    partitionable_link,
    postgres_schema,
    proxied_url,
    set_wallet_limits,
)
from tcp_proxy import TcpProxy  # noqa: E402

FEE = 5000
AMOUNT = 1000
SPEND = AMOUNT + FEE
PHASE_SECONDS = 15.0


def spent_today(database_url: str, wallet: str) -> int:
    from jarvis_wallet.db import session
    from jarvis_wallet.ledger import spent_in_window
    from jarvis_wallet.models import utc_now

    with session(database_url):
        return spent_in_window(wallet, now=utc_now())


class Campaign:
    def __init__(self, args, workdir: Path, database_url: str, scenario: str) -> None:
        self.args = args
        self.workdir = workdir / scenario
        self.workdir.mkdir(mode=0o700)
        self.database_url = initialise(database_url)
        self.scenario = scenario
        self.rng = random.Random(args.seed)
        self.journal = Journal()
        self.key_path = self.workdir / "signer.json"
        generate_keypair_file(self.key_path)
        self.keypair = load_keypair_file(self.key_path)
        self.wallet = self.keypair.public_key_base58
        self.faults = 0
        self.recoveries: list[float] = []  # fault lifted -> next decision
        self.outages: list[float] = []  # fault injected -> next decision
        self.unexpected: list[str] = []
        self.counts: dict[str, int] = {}
        self.failures: list[str] = []
        self.phases: list[dict] = []

    def served_signer(self, database_url: str, **options) -> ServedSigner:
        """The scenario's signer, started by `jarvis-wallet signer serve` on ``database_url``."""
        return ServedSigner(
            socket_path=self.workdir / "run" / "signer.sock", database_url=database_url, keypair_path=self.key_path,
            **options,
        ).start()

    def load(self, socket_path: Path, secret: bytes) -> SigningLoad:
        return SigningLoad(
            socket_path,
            self.journal,
            secret=secret,
            wallet_key=self.keypair.public_key,
            threads=self.args.clients,
            lamports=AMOUNT,
            resend_probability=0.5,
            timeout=30,
            seed=self.rng.random(),
        ).start()

    def finish_load(self, load: SigningLoad) -> None:
        load.stop(timeout=60)
        self.unexpected += load.unexpected
        for key, value in load.snapshot().items():
            self.counts[key] = self.counts.get(key, 0) + value

    def recovered(self, load: SigningLoad, decisions_before: int, fault_at: float, lifted_at: float) -> None:
        """Times from the fault, and from its end, to the load's next decision (a signature or a
        policy refusal)."""
        if load.wait_for("decisions", decisions_before + 1, timeout=60):
            now = time.monotonic()
            self.outages.append(now - fault_at)
            self.recoveries.append(now - lifted_at)
        else:
            self.failures.append(f"no decision within 60 s after fault {self.faults}")

    def inject_repeatedly(self, load: SigningLoad, *, between, lasting, inject, lift) -> None:
        """Until the run's end: wait ``between`` seconds, inject the fault, let it last
        ``lasting`` seconds, lift it, and time the load's recovery (ranges, drawn uniformly)."""
        deadline = time.monotonic() + self.args.seconds
        while time.monotonic() < deadline:
            time.sleep(self.rng.uniform(*between))
            fault_at = time.monotonic()
            inject()
            self.faults += 1
            time.sleep(self.rng.uniform(*lasting))
            before = load.decisions()
            lift()
            self.recovered(load, before, fault_at, time.monotonic())

    # -- scenarios -------------------------------------------------------------------------------

    def run_kill(self) -> None:
        set_wallet_limits(self.database_url, self.wallet, per_tx=SPEND, daily=10**15)
        signer = self.served_signer(self.database_url)
        secret = signer.secret_path.read_bytes().rstrip(b"\n")
        deadline = time.monotonic() + self.args.seconds
        rate = None  # decisions per second, measured in the previous phase
        try:
            while time.monotonic() < deadline:
                spent = spent_today(self.database_url, self.wallet)
                # Met about half-way through the phase (the first phase guesses the rate).
                headroom = max(50, int((rate or 200) * PHASE_SECONDS / 2))
                daily = spent + headroom * SPEND
                set_wallet_limits(self.database_url, self.wallet, per_tx=SPEND, daily=daily)
                phase_end = min(deadline, time.monotonic() + PHASE_SECONDS)
                load = self.load(signer.socket_path, secret)
                started, kills = time.monotonic(), 0
                try:
                    while time.monotonic() < phase_end:
                        time.sleep(self.rng.uniform(0.2, 2.0))
                        before, fault_at = load.decisions(), time.monotonic()
                        signer.kill9()
                        self.faults += 1
                        kills += 1
                        time.sleep(self.rng.uniform(0, 0.3))
                        signer.start()
                        self.recovered(load, before, fault_at, time.monotonic())
                finally:
                    self.finish_load(load)
                signed = load.count("signed")
                rate = load.decisions() / max(time.monotonic() - started, 0.1)
                spent_after = spent_today(self.database_url, self.wallet)
                met = load.count("refused:daily_limit_exceeded") > 0
                self.phases.append(
                    {"daily": daily, "spent": spent_after, "ceiling_met": met, "kills": kills, "signed": signed}
                )
                if spent_after > daily or (met and spent_after != daily):
                    self.failures.append(f"phase {len(self.phases)}: spent {spent_after} against a ceiling of {daily}")
        finally:
            signer.stop()
        if signer.tracebacks():
            self.failures.append(f"the signer wrote tracebacks: {signer.tracebacks()[:3]}")

    def run_cut(self) -> None:
        parts = urlsplit(self.database_url)
        proxy = TcpProxy(parts.hostname, parts.port or 5432)
        proxy.start()
        set_wallet_limits(self.database_url, self.wallet, per_tx=SPEND, daily=10**15)
        signer = self.served_signer(proxied_url(self.database_url, proxy.port))
        pid = signer.pid
        load = self.load(signer.socket_path, signer.secret_path.read_bytes().rstrip(b"\n"))
        try:
            self.inject_repeatedly(load, between=(0.5, 3.0), lasting=(0.1, 2.0), inject=proxy.stop, lift=proxy.start)
        finally:
            self.finish_load(load)
            alive = signer.is_alive() and signer.pid == pid
            signer.stop()
            proxy.stop()
        if not alive:
            self.failures.append("the signer did not survive the cuts in the same process")
        if not self.counts.get("database_unavailable"):
            self.failures.append("no client saw database_unavailable: the cuts did not bite")

    def run_partition(self) -> None:
        parts = urlsplit(self.database_url)
        set_wallet_limits(self.database_url, self.wallet, per_tx=SPEND, daily=10**15)
        with partitionable_link() as link:
            proxy = TcpProxy(parts.hostname, parts.port or 5432, listen_host=link.host_address, probe_clients=True)
            proxy.start()
            signer = self.served_signer(
                proxied_url(self.database_url, proxy.port, host=link.host_address), command_prefix=link.exec_prefix
            )
            pid = signer.pid
            load = self.load(signer.socket_path, signer.secret_path.read_bytes().rstrip(b"\n"))
            try:
                self.inject_repeatedly(
                    load, between=(1.0, 4.0), lasting=(0.5, 20.0), inject=link.partition, lift=link.heal
                )
            finally:
                link.heal()
                self.finish_load(load)
                alive = signer.is_alive() and signer.pid == pid
                signer.stop()
                proxy.stop()
        if not alive:
            self.failures.append("the signer did not survive the partitions in the same process")
        if not self.counts.get("database_unavailable"):
            self.failures.append("no client saw database_unavailable: the partitions did not bite")
        if signer.tracebacks():
            self.failures.append(f"the signer wrote tracebacks: {signer.tracebacks()[:3]}")

    def run_hang(self) -> None:
        import uuid

        import psycopg2

        name = f"jw-fault-hang-{uuid.uuid4().hex[:12]}"
        set_wallet_limits(self.database_url, self.wallet, per_tx=SPEND, daily=10**15)
        signer = self.served_signer(f"{self.database_url}&application_name={name}")
        load = SigningLoad(
            signer.socket_path, self.journal, secret=signer.secret_path.read_bytes().rstrip(b"\n"),
            wallet_key=self.keypair.public_key, threads=self.args.clients, lamports=AMOUNT,
            resend_probability=0.5, timeout=40, seed=self.rng.random(), tolerate=("internal_error",),
        ).start()
        admin = psycopg2.connect(self.args.database_url, connect_timeout=5)
        admin.autocommit = True
        deadline = time.monotonic() + self.args.seconds
        try:
            while time.monotonic() < deadline:
                time.sleep(self.rng.uniform(2.0, 5.0))
                with admin.cursor() as cursor:
                    cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,))
                    backends = [row[0] for row in cursor.fetchall()]
                if not backends:
                    continue
                fault_at = time.monotonic()
                for pid in backends:
                    os.kill(pid, signal.SIGSTOP)
                self.faults += 1
                try:
                    time.sleep(self.rng.uniform(1.0, 40.0))
                finally:
                    for pid in backends:
                        os.kill(pid, signal.SIGCONT)
                self.recovered(load, load.decisions(), fault_at, time.monotonic())
        finally:
            self.finish_load(load)
            admin.close()
            signer.stop()

    def run_lock(self) -> None:
        set_wallet_limits(self.database_url, self.wallet, per_tx=SPEND, daily=10**15)
        signer = self.served_signer(self.database_url)
        load = self.load(signer.socket_path, signer.secret_path.read_bytes().rstrip(b"\n"))
        locker = (
            "import sqlite3, sys, time\n"
            "db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n"
            "db.execute('ROLLBACK')\n"
        )
        path = urlsplit(self.database_url).path
        deadline = time.monotonic() + self.args.seconds
        try:
            while time.monotonic() < deadline:
                time.sleep(self.rng.uniform(1.0, 4.0))
                hold = self.rng.uniform(0.5, 7.0)
                blocker = subprocess.Popen(
                    [sys.executable, "-c", locker, path, str(hold)], stdout=subprocess.PIPE, text=True
                )
                try:
                    if blocker.stdout.readline().strip() != "locked":
                        self.failures.append("the locking process could not take the lock")
                    fault_at = time.monotonic()
                    self.faults += 1
                    blocker.wait(timeout=hold + 60)
                finally:
                    if blocker.poll() is None:
                        blocker.kill()
                        blocker.wait()
                self.recovered(load, load.decisions(), fault_at, time.monotonic())
        finally:
            self.finish_load(load)
            signer.stop()

    # -- the verdict -----------------------------------------------------------------------------

    def run(self) -> dict:
        started = time.monotonic()
        getattr(self, f"run_{self.scenario}")()
        elapsed = time.monotonic() - started
        report = check_accounting(self.database_url, self.journal)
        if self.unexpected:
            self.failures.append(f"{len(self.unexpected)} unexpected client errors, first: {self.unexpected[0]}")
        if not report.ok:
            self.failures.append(f"accounting: {len(report.problems)} problems, first: {report.problems[0]}")
        if not report.first_signatures:
            self.failures.append("nothing was signed")
        return {
            "scenario": self.scenario,
            "ok": not self.failures,
            "failures": self.failures,
            "seconds": round(elapsed, 1),
            "clients": self.args.clients,
            "faults_injected": self.faults,
            "client_outcomes": dict(sorted(self.counts.items())),
            "requests": report.attempts,
            "replies": report.replies,
            "signatures_received": report.signatures_received,
            "signatures_accounted": report.signatures_accounted,
            "signatures_missing": report.signatures_missing,
            "duplicate_replies": report.duplicate_replies,
            "refusals_recorded": report.refusals_recorded,
            "lost_in_flight": report.lost,
            "lost_but_recorded": report.lost_recorded,
            "unsent": report.unsent,
            "database_unavailable_or_internal": report.ambiguous,
            "recorded_not_released": report.ambiguous_recorded,
            "rows": report.rows,
            "spending_rows": report.spending_rows,
            "problems": report.problems[:20],
            "phases": self.phases,
            "outage_seconds": distribution(self.outages),
            "recovery_seconds": distribution(self.recoveries),
            "accounting_summary": report.summary(),
        }


def distribution(values: list[float]) -> dict:
    ordered = sorted(values)
    if not ordered:
        return {"median": None, "p95": None, "max": None}
    return {
        "median": round(statistics.median(ordered), 3),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "max": round(ordered[-1], 3),
    }


def print_text(report: dict) -> None:
    print(
        f"[{report['scenario']}] {report['seconds']} s, {report['clients']} clients, "
        f"{report['faults_injected']} faults injected"
    )
    print(f"  requests {report['requests']}, replies {report['replies']}; outcomes {report['client_outcomes']}")
    print(
        f"  signatures received {report['signatures_received']}, accounted for {report['signatures_accounted']}, "
        f"missing {report['signatures_missing']}; duplicates returned {report['duplicate_replies']}"
    )
    print(
        f"  lost in flight {report['lost_in_flight']} ({report['lost_but_recorded']} recorded), unsent "
        f"{report['unsent']}, database_unavailable {report['database_unavailable_or_internal']} "
        f"({report['recorded_not_released']} recorded, never released)"
    )
    print(
        f"  fault to next decision (s): {report['outage_seconds']}; fault lifted to next decision (s): "
        f"{report['recovery_seconds']}"
    )
    for index, phase in enumerate(report["phases"], 1):
        print(
            f"  phase {index}: ceiling {phase['daily']}, spent {phase['spent']}, met {phase['ceiling_met']}, "
            f"{phase['kills']} kills, {phase['signed']} signed"
        )
    print("  OK" if report["ok"] else "  FAILED: " + "; ".join(report["failures"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, required=True, help="how long each scenario runs")
    parser.add_argument("--scenario", choices=("kill", "cut", "lock", "hang", "partition", "all"), default="all")
    parser.add_argument("--clients", type=int, default=8, help="concurrent signing clients (default 8)")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server URL (each scenario works in a fresh schema, dropped at the end); "
        "default: a fresh SQLite file per scenario",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.clients < 1:
        parser.error("--seconds and --clients must be positive")
    postgres = bool(args.database_url)
    if postgres and not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url takes a PostgreSQL URL; SQLite is the default")
    scenarios = ["kill", "cut" if postgres else "lock"] if args.scenario == "all" else [args.scenario]
    if {"cut", "hang", "partition"} & set(scenarios) and not postgres:
        parser.error("the cut, hang and partition scenarios need --database-url postgresql://...")
    if "lock" in scenarios and postgres:
        parser.error("the lock scenario is for SQLite (leave out --database-url)")
    reports = []
    with tempfile.TemporaryDirectory(prefix="jw-faults-") as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o700)
        for scenario in scenarios:
            with contextlib.ExitStack() as stack:
                if postgres:
                    url = stack.enter_context(postgres_schema(args.database_url))
                else:
                    url = f"sqlite://{workdir}/{scenario}.db"
                try:
                    reports.append(Campaign(args, workdir, url, scenario).run())
                except NetworkUnavailable as exc:  # not root, or no iproute2: say so in one line
                    print(f"Error: the {scenario} scenario cannot run here: {exc}", file=sys.stderr)
                    return 2
    if args.json:
        print(json.dumps({"ok": all(r["ok"] for r in reports), "scenarios": reports}, indent=2))
    else:
        for report in reports:
            print_text(report)
    return 0 if all(r["ok"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
