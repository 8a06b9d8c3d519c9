"""Load and soak: many concurrent clients against live forked signers, with the signers' memory
and file descriptors watched, and the accounting check at the end.

    .venv/bin/python campaigns/soak.py --seconds 600 --clients 32 --json
    .venv/bin/python campaigns/soak.py --seconds 600 --database-url postgresql://postgres@127.0.0.1:5432/test

Two signers share one database (a fresh SQLite file in a temporary directory; or, given a
PostgreSQL URL, a fresh schema that is dropped at the end): signer A's wallet has spend limits,
signer B's wallet has none. Each client thread sends a random mix:

    allowed      a small transfer from A's wallet (or an off-chain message), signed
    over_limit   a transfer above A's per-transaction ceiling: per_tx_limit_exceeded
    program      A's wallet handed to a program outside the allow-list: program_not_allowed
    no_limits    a transfer from B's wallet: no_limits
    bad_hmac     a sign request with a wrong secret: auth_failed
    garbage      a line that is not JSON: bad_request
    bad_base64   a sign request whose txBase64 is not base64 (valid HMAC): invalid_tx, unrecorded

Any other answer is an error. Throughput is reported per window (5 s by default). Each signer's
resident memory (VmRSS from /proc/<pid>/status) and open descriptors (/proc/<pid>/fd; the
signer is not dumpable, so this needs root or the signer's own uid) are sampled every second.

Pass criteria (exit status 0 only if all hold):

- no client saw an unexpected answer, and every window answered something;
- memory is flat: after a warm-up (the first 10% of the run, at least 2 s, and at least the 30 s
  freshness window while the replay cache fills, or half the run if shorter), the median RSS of
  the last quarter of the samples is at most 10% + 5 MiB above the median of the first quarter;
- descriptors are flat: once the clients have gone, each signer is back to the descriptors it
  had before the load (within 5 s), and never held more than one per client connection + 8 beyond
  it meanwhile;
- the signers' own counters agree with what the clients saw;
- the accounting check of tests/accounting.py holds: every signature received has its row,
  nothing is doubled, nothing recorded for requests refused before the decision, limits held.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import random
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from jarvis_wallet import protocol  # noqa: E402
from jarvis_wallet.client import SignerClient  # noqa: E402
from jarvis_wallet.errors import (  # noqa: E402
    AuthenticationFailed,
    InvalidInput,
    JarvisWalletError,
    PolicyDenied,
)
from jarvis_wallet.keys import generate_keypair_file, load_keypair_file  # noqa: E402
from jarvis_wallet.signer import SignerSettings, start_signer  # noqa: E402
from jarvis_wallet.solana import build_transfer_message, compile_message  # noqa: E402
from jarvis_wallet.solana.build import AccountMeta, Instruction  # noqa: E402

from accounting import AccountedClient, Journal, check_accounting  # noqa: E402
from faultkit import initialise, postgres_schema, proc_fd_count, proc_rss_kib, set_wallet_limits  # noqa: E402

PER_TX = 1_000_000
ALLOWED_LAMPORTS = 1_000
OVER_LIMIT_LAMPORTS = 2 * PER_TX
MIX = {  # kind: weight
    "allowed": 45,
    "message": 5,
    "over_limit": 10,
    "program": 10,
    "no_limits": 10,
    "bad_hmac": 7,
    "garbage": 7,
    "bad_base64": 6,
}
EXPECTED = {  # kind: what the client must see
    "allowed": "signed",
    "message": "signed",
    "over_limit": protocol.PER_TX_LIMIT_EXCEEDED,
    "program": protocol.PROGRAM_NOT_ALLOWED,
    "no_limits": protocol.NO_LIMITS,
    "bad_hmac": protocol.AUTH_FAILED,
    "garbage": protocol.BAD_REQUEST,
    "bad_base64": protocol.INVALID_TX,
}
MEMORY_TOLERANCE = 0.10
MEMORY_SLACK_KIB = 5 * 1024
FD_SLACK = 8
CONNECTIONS_PER_CLIENT = {"a": 3, "b": 1}  # a client holds a signing, a forging and a raw connection to A


def transfer(wallet_key: bytes, lamports: int) -> bytes:
    return build_transfer_message(
        from_pubkey=wallet_key, to_pubkey=os.urandom(32), lamports=lamports, recent_blockhash=os.urandom(32)
    )


def foreign_program_message(wallet_key: bytes) -> bytes:
    """The wallet passed, writable and signing, to a program nobody allow-listed."""
    instruction = Instruction(
        program_id=os.urandom(32), accounts=(AccountMeta(wallet_key, is_signer=True, is_writable=True),), data=b"\x03"
    )
    return compile_message(payer=wallet_key, instructions=[instruction], recent_blockhash=os.urandom(32))


class RawConnection:
    """A bare socket for what SignerClient will not send: garbage lines, undecodable base64."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path, self.timeout = path, timeout
        self.sock: socket.socket | None = None
        self.frames = protocol.FrameBuffer()

    def exchange(self, line: bytes) -> dict:
        if self.sock is None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(self.timeout)
            self.sock.connect(str(self.path))
            self.frames = protocol.FrameBuffer()
        self.sock.sendall(line)
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                self.close()
                raise ConnectionError("the signer closed the connection")
            lines = self.frames.feed(chunk)
            if lines:
                return protocol.decode_frame(lines[0])

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


class Soak:
    def __init__(self, args, workdir: Path, database_url: str) -> None:
        self.args = args
        self.workdir = workdir
        self.database_url = database_url
        self.random = random.Random(args.seed)
        self.journal = Journal()
        self.lock = threading.Lock()
        self.windows: dict[int, Counter] = defaultdict(Counter)
        self.outcomes: Counter = Counter()
        self.unexpected: list[str] = []
        self.samples: list[dict] = []
        self.stop = threading.Event()
        self.started_at = 0.0

    # -- set-up ----------------------------------------------------------------------------------

    def start_signers(self) -> None:
        self.keys = {}
        self.handles = {}
        for name in ("a", "b"):
            path = self.workdir / f"{name}.json"
            generate_keypair_file(path)
            self.keys[name] = load_keypair_file(path)
            settings = SignerSettings(
                socket_path=self.workdir / f"run-{name}" / "signer.sock",
                database_url=self.database_url,
                keypair_path=path,
                max_connections=CONNECTIONS_PER_CLIENT[name] * self.args.clients + FD_SLACK,
                # Every decision is recorded: the soak loads the decision path with about 750
                # refusals and off-chain messages a second, far past the default budget of
                # free decisions (10 a second).
                free_decisions_per_second=None,
            )
            self.handles[name] = start_signer(settings)  # before any thread: a fork copies none
        set_wallet_limits(self.database_url, self.keys["a"].public_key_base58, per_tx=PER_TX, daily=10**15)
        self.secret = Path(self.handles["a"].info.secret_path).read_bytes().rstrip(b"\n")
        self.secret_b = Path(self.handles["b"].info.secret_path).read_bytes().rstrip(b"\n")

    # -- clients ---------------------------------------------------------------------------------

    def client_loop(self, index: int) -> None:
        rng = random.Random(self.random.random())
        kinds, weights = zip(*MIX.items())
        timeout = 30.0
        a = AccountedClient(self.handles["a"].socket_path, secret=self.secret, journal=self.journal, timeout=timeout)
        b = AccountedClient(self.handles["b"].socket_path, secret=self.secret_b, journal=self.journal, timeout=timeout)
        forger = AccountedClient(
            self.handles["a"].socket_path, secret=os.urandom(32), journal=self.journal, timeout=timeout
        )
        raw = RawConnection(self.handles["a"].socket_path, timeout)
        key_a, key_b = self.keys["a"].public_key, self.keys["b"].public_key
        try:
            while not self.stop.is_set():
                kind = rng.choices(kinds, weights)[0]
                try:
                    outcome = self.one(kind, a, b, forger, raw, key_a, key_b)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    outcome = f"{type(exc).__name__}: {exc}"
                    for client in (a, b, forger):
                        client.close()
                    raw.close()
                self.tally(kind, outcome)
        finally:
            for client in (a, b, forger):
                client.close()
            raw.close()

    def one(self, kind, a, b, forger, raw, key_a, key_b) -> str:
        try:
            if kind == "allowed":
                a.sign_transaction(transfer(key_a, ALLOWED_LAMPORTS), purpose="soak")
            elif kind == "message":
                a.sign_message(f"soak {os.urandom(8).hex()}")
            elif kind == "over_limit":
                a.sign_transaction(transfer(key_a, OVER_LIMIT_LAMPORTS))
            elif kind == "program":
                a.sign_transaction(foreign_program_message(key_a))
            elif kind == "no_limits":
                b.sign_transaction(transfer(key_b, ALLOWED_LAMPORTS))
            elif kind == "bad_hmac":
                forger.sign_transaction(transfer(key_a, ALLOWED_LAMPORTS))
            elif kind == "garbage":
                reply = raw.exchange(b"\x00this is not json\n")
                return reply["error"]["code"] if reply.get("ok") is False else "ok"
            elif kind == "bad_base64":
                fields = {
                    "op": protocol.OP_SIGN,
                    "requestId": protocol.new_request_id(),
                    "timestamp": protocol.current_time_ms(),
                    "txBase64": "%%% not base64 %%%",
                }
                request = protocol.sign_request(self.secret, fields)
                attempt = self.journal.begin(request)
                try:
                    reply = raw.exchange(protocol.encode_frame(request))
                except BaseException:
                    self.journal.finish(attempt)
                    raise
                self.journal.finish(attempt, reply=reply)
                return reply["error"]["code"] if reply.get("ok") is False else "ok"
        except (PolicyDenied, AuthenticationFailed, InvalidInput) as refusal:
            return refusal.wire_code
        return "signed"

    def tally(self, kind: str, outcome: str) -> None:
        window = int((time.monotonic() - self.started_at) // self.args.window)
        expected = EXPECTED[kind]
        with self.lock:
            self.outcomes[(kind, outcome)] += 1
            counts = self.windows[window]
            counts["requests"] += 1
            if outcome != expected:
                counts["errors"] += 1
                if len(self.unexpected) < 50:
                    self.unexpected.append(f"{kind}: expected {expected}, got {outcome}")
            elif outcome == "signed":
                counts["signed"] += 1
            elif kind in ("bad_hmac", "garbage", "bad_base64"):
                counts["malformed"] += 1
            else:
                counts["refused"] += 1

    # -- watching the signers ---------------------------------------------------------------------

    def sample(self) -> dict:
        now = time.monotonic() - self.started_at if self.started_at else 0.0
        entry = {"t": round(now, 2)}
        for name, handle in self.handles.items():
            entry[f"rss_kib_{name}"] = proc_rss_kib(handle.pid)
            entry[f"fds_{name}"] = proc_fd_count(handle.pid)
            entry[f"threads_{name}"] = proc_threads(handle.pid)
        return entry

    def sampler(self) -> None:
        while not self.stop.wait(1.0):
            self.samples.append(self.sample())

    # -- the run ---------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Open the database files and fill the caches, then let every connection go."""
        a, b = self.handles["a"].socket_path, self.handles["b"].socket_path
        with AccountedClient(a, secret=self.secret, journal=self.journal) as client:
            for _ in range(20):
                client.sign_transaction(transfer(self.keys["a"].public_key, ALLOWED_LAMPORTS), purpose="warm-up")
            client.sign_message("warm-up")
        with AccountedClient(b, secret=self.secret_b, journal=self.journal) as client:
            with contextlib.suppress(PolicyDenied):
                client.sign_transaction(transfer(self.keys["b"].public_key, ALLOWED_LAMPORTS))
        time.sleep(0.5)

    def run(self) -> dict:
        self.start_signers()
        try:
            self.warm_up()
            baseline = self.sample()
            self.started_at = time.monotonic()
            threads = [
                threading.Thread(target=self.client_loop, args=(i,), daemon=True) for i in range(self.args.clients)
            ]
            watcher = threading.Thread(target=self.sampler, daemon=True)
            watcher.start()
            for thread in threads:
                thread.start()
            time.sleep(self.args.seconds)
            self.stop.set()
            for thread in threads:
                thread.join(60)
            watcher.join(5)
            elapsed = time.monotonic() - self.started_at
            stuck = sum(thread.is_alive() for thread in threads)
            after = self.settle(baseline)
            counters = {name: self.status(name) for name in self.handles}
            pids_alive = {name: handle.is_alive() for name, handle in self.handles.items()}
        finally:
            for handle in self.handles.values():
                handle.stop()
        report = check_accounting(self.database_url, self.journal)
        return self.verdict(baseline, after, counters, pids_alive, elapsed, stuck, report)

    def settle(self, baseline: dict) -> dict:
        """Wait (up to 5 s) until every signer is back to its baseline descriptors and threads."""
        deadline = time.monotonic() + 5
        while True:
            now = self.sample()
            back = all(
                (now[f"fds_{n}"] or 0) <= (baseline[f"fds_{n}"] or 0)
                and (now[f"threads_{n}"] or 0) <= (baseline[f"threads_{n}"] or 0)
                for n in self.handles
            )
            if back or time.monotonic() > deadline:
                return now
            time.sleep(0.1)

    def status(self, name: str) -> dict:
        secret = self.secret if name == "a" else self.secret_b
        with SignerClient(self.handles[name].socket_path, secret=secret) as client:
            return client.status()

    def verdict(self, baseline, after, counters, pids_alive, elapsed, stuck, accounting) -> dict:
        failures: list[str] = []
        if self.unexpected:
            failures.append(f"{sum(w['errors'] for w in self.windows.values())} unexpected answers")
        if stuck:
            failures.append(f"{stuck} client threads did not stop")
        if not all(pids_alive.values()):
            failures.append(f"a signer died: {pids_alive}")
        windows = []
        count = max(1, int(elapsed // self.args.window))
        for index in range(count):
            counts = self.windows.get(index, Counter())
            windows.append(
                {
                    "start_s": index * self.args.window,
                    "requests": counts["requests"],
                    "per_second": round(counts["requests"] / self.args.window, 1),
                    "signed": counts["signed"],
                    "refused": counts["refused"],
                    "malformed": counts["malformed"],
                    "errors": counts["errors"],
                }
            )
        idle_windows = [w["start_s"] for w in windows if w["requests"] == 0]
        if idle_windows:
            failures.append(f"windows with no answer at all: {idle_windows}")
        memory = {name: memory_criterion(self.samples, f"rss_kib_{name}", elapsed) for name in self.handles}
        for name, verdict in memory.items():
            if not verdict["ok"]:
                failures.append(f"signer {name} memory grew: {verdict['reason']}")
        descriptors = {}
        for name in self.handles:
            peak = max((s[f"fds_{name}"] or 0) for s in self.samples) if self.samples else None
            base, end = baseline[f"fds_{name}"], after[f"fds_{name}"]
            ceiling = (base or 0) + CONNECTIONS_PER_CLIENT[name] * self.args.clients + FD_SLACK
            ok = None not in (base, end, peak) and end <= base and peak <= ceiling
            descriptors[name] = {
                "baseline": base,
                "peak": peak,
                "after": end,
                "threads_baseline": baseline[f"threads_{name}"],
                "threads_after": after[f"threads_{name}"],
                "ok": ok,
            }
            if not ok:
                failures.append(f"signer {name} descriptors not flat: {descriptors[name]}")
            if (after[f"threads_{name}"] or 0) > (baseline[f"threads_{name}"] or 0):
                failures.append(f"signer {name} kept threads: {descriptors[name]}")
        signed_seen = sum(n for (kind, outcome), n in self.outcomes.items() if outcome == "signed")
        warm_up_signed = 21
        counters_ok = counters["a"]["signed"] == signed_seen + warm_up_signed and counters["b"]["signed"] == 0
        if not counters_ok:
            failures.append(f"signer counters {counters} disagree with {signed_seen} signatures seen")
        if not accounting.ok:
            failures.append(f"accounting: {len(accounting.problems)} problems, first: {accounting.problems[0]}")
        totals = Counter()
        for counts in self.windows.values():
            totals.update(counts)
        return {
            "ok": not failures,
            "failures": failures,
            "seconds": round(elapsed, 1),
            "clients": self.args.clients,
            "database": describe_database(self.database_url),
            "machine": machine(),
            "totals": {
                "requests": totals["requests"],
                "per_second": round(totals["requests"] / elapsed, 1),
                "signed": totals["signed"],
                "refused": totals["refused"],
                "malformed": totals["malformed"],
                "errors": totals["errors"],
            },
            "outcomes": {f"{kind}:{outcome}": n for (kind, outcome), n in sorted(self.outcomes.items())},
            "unexpected": self.unexpected[:20],
            "windows": windows,
            "memory": memory,
            "descriptors": descriptors,
            "signer_counters": {name: {"signed": c["signed"], "refused": c["refused"]} for name, c in counters.items()},
            "accounting": accounting.to_dict(),
            "accounting_summary": accounting.summary(),
            "samples": self.samples if self.args.samples else len(self.samples),
        }


def proc_threads(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None


def memory_criterion(samples: list[dict], key: str, elapsed: float) -> dict:
    # The replay cache legitimately grows for one freshness window (30 s) before entries expire:
    # a long run starts measuring after it; a short run after half its time.
    freshness = protocol.DEFAULT_FRESHNESS_WINDOW_MS / 1000 + 5
    warm_up = max(2.0, 0.1 * elapsed, min(freshness, elapsed / 2))
    values = [s[key] for s in samples if s["t"] >= warm_up and s[key] is not None]
    if len(values) < 4:
        return {"ok": False, "reason": f"only {len(values)} samples after the warm-up", "samples": len(values)}
    quarter = max(1, len(values) // 4)
    first, last = statistics.median(values[:quarter]), statistics.median(values[-quarter:])
    times = [s["t"] for s in samples if s["t"] >= warm_up and s[key] is not None]
    slope = statistics.linear_regression(times, values).slope * 60 if len(set(times)) > 1 else 0.0
    limit = first * (1 + MEMORY_TOLERANCE) + MEMORY_SLACK_KIB
    return {
        "ok": last <= limit,
        "reason": f"last-quarter median {last:.0f} KiB > {limit:.0f} KiB" if last > limit else "",
        "first_quarter_median_kib": first,
        "last_quarter_median_kib": last,
        "limit_kib": round(limit),
        "warm_up_s": round(warm_up, 1),
        "trend_kib_per_minute": round(slope, 1),  # information only: least squares over the samples
        "min_kib": min(values),
        "max_kib": max(values),
        "samples": len(values),
    }


def describe_database(url: str) -> str:
    from jarvis_wallet.db import parse_database_url

    return parse_database_url(url).display.split("?")[0]


def machine() -> dict:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_mib": memory_kib // 1024 if memory_kib else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def print_text(report: dict) -> None:
    print(f"soak: {report['seconds']} s, {report['clients']} clients, {report['database']}")
    print(f"{'window':>8} {'req/s':>8} {'signed':>8} {'refused':>8} {'malformed':>9} {'errors':>7}")
    for w in report["windows"]:
        print(
            f"{w['start_s']:>7}s {w['per_second']:>8} {w['signed']:>8} {w['refused']:>8} "
            f"{w['malformed']:>9} {w['errors']:>7}"
        )
    t = report["totals"]
    print(
        f"total: {t['requests']} requests ({t['per_second']}/s): {t['signed']} signed, {t['refused']} refused, "
        f"{t['malformed']} malformed, {t['errors']} errors"
    )
    for name, m in report["memory"].items():
        print(
            f"signer {name} RSS: first quarter {m.get('first_quarter_median_kib')} KiB, last quarter "
            f"{m.get('last_quarter_median_kib')} KiB (limit {m.get('limit_kib')}): {'ok' if m['ok'] else 'GREW'}"
        )
    for name, d in report["descriptors"].items():
        print(
            f"signer {name} fds: baseline {d['baseline']}, peak {d['peak']}, after {d['after']}; "
            f"threads {d['threads_baseline']} -> {d['threads_after']}: {'ok' if d['ok'] else 'LEAK'}"
        )
    print("accounting:", report["accounting_summary"])
    print("OK" if report["ok"] else "FAILED: " + "; ".join(report["failures"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, required=True, help="how long to run the load")
    parser.add_argument("--clients", type=int, default=32, help="concurrent client threads (default 32)")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server URL (the campaign works in a fresh schema and drops it); "
        "default: a fresh SQLite file in a temporary directory",
    )
    parser.add_argument("--window", type=float, default=5.0, help="throughput window in seconds (default 5)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the request mix")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--samples", action="store_true", help="include every memory/fd sample in the JSON")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.clients < 1 or args.window <= 0:
        parser.error("--seconds, --clients and --window must be positive")
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url takes a PostgreSQL URL; SQLite is the default")
    with tempfile.TemporaryDirectory(prefix="jw-soak-") as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o700)
        with contextlib.ExitStack() as stack:
            if args.database_url:
                url = stack.enter_context(postgres_schema(args.database_url))
            else:
                url = f"sqlite://{workdir}/wallet.db"
            initialise(url)
            report = Soak(args, workdir, url).run()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_text(report)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
