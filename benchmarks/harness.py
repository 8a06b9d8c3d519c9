"""Drive one workload from N concurrent clients for a fixed time; collect rate and latencies.

A *workload* is a context-manager factory ``workload(budget)`` that, inside the client, opens
its own connection and pre-builds up to ``budget`` requests, then yields ``op(i)`` performing
request ``i``. Everything it does before yielding is outside the timed window.

Clients are processes by default (forked, each with its own connection), so that the Python
client code of eight clients is not serialised by one GIL; ``threads`` is available to compare.
Every workload, ours and ssh-agent's, is driven the same way, so their ratios are fair.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import signal
import threading
import time
import traceback
from array import array
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

Workload = Callable[[int], AbstractContextManager[Callable[[int], object]]]

CLIENT_MODES = ("processes", "threads")
CALIBRATION_WARMUP_OPS = 10
CALIBRATION_MAX_OPS = 5000
CALIBRATION_SECONDS = 0.2
BUDGET_MARGIN = 2.0
READY_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class CaseResult:
    """What N clients achieved together in one timed window."""

    name: str
    clients: int
    ops: int
    seconds: float
    p50_ms: float
    p99_ms: float
    ran_out: bool  # a client used every pre-built request before the time was up

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0


class WorkloadFailed(RuntimeError):
    """A client's request failed; the benchmark stops rather than report a partial figure."""


def fastest_op_seconds(workload: Workload) -> float:
    """The quickest of a lone client's requests (after a warm-up), measured in this process.

    No client can sustain more than one request per this time, so it bounds how many
    requests a client must pre-build.
    """
    fastest = float("inf")
    with workload(CALIBRATION_WARMUP_OPS + CALIBRATION_MAX_OPS) as op:
        for i in range(CALIBRATION_WARMUP_OPS):
            op(i)
        deadline = time.perf_counter() + CALIBRATION_SECONDS
        for i in range(CALIBRATION_WARMUP_OPS, CALIBRATION_WARMUP_OPS + CALIBRATION_MAX_OPS):
            before = time.perf_counter()
            op(i)
            after = time.perf_counter()
            fastest = min(fastest, after - before)
            if after > deadline:
                break
    return fastest


def budget_for(seconds: float, fastest_op: float) -> int:
    """Requests to pre-build per client so that none runs out before the time is up."""
    return int(seconds / max(fastest_op, 1e-7) * BUDGET_MARGIN) + 100


def run_case(name: str, workload: Workload, *, clients: int, seconds: float, budget: int, mode: str) -> CaseResult:
    """Start ``clients`` clients, release them together, time them for ``seconds``."""
    if mode not in CLIENT_MODES:
        raise ValueError(f"client mode must be one of {CLIENT_MODES}")
    context = multiprocessing.get_context("fork")
    go = context.Event()
    pipes, workers = [], []
    try:
        for _ in range(clients):
            receiver, sender = context.Pipe(duplex=False)
            args = (workload, budget, seconds, go, sender, mode == "processes")
            worker = context.Process(target=_client, args=args, daemon=True) if mode == "processes" \
                else threading.Thread(target=_client, args=args, daemon=True)
            worker.start()
            pipes.append(receiver)
            workers.append(worker)
        for receiver in pipes:
            _expect(receiver, "ready", READY_TIMEOUT_SECONDS)
        go.set()
        reports = [_expect(receiver, "done", seconds + READY_TIMEOUT_SECONDS) for receiver in pipes]
    finally:
        _stop_workers(workers)
    return _combine(name, clients, reports)


def _expect(receiver, kind: str, timeout: float):
    if not receiver.poll(timeout):
        raise WorkloadFailed(f"a client did not report {kind!r} within {timeout:g} s")
    try:
        got, payload = receiver.recv()
    except EOFError:
        raise WorkloadFailed("a client exited without reporting") from None
    if got == "error":
        raise WorkloadFailed(payload)
    return payload


def _stop_workers(workers) -> None:
    for worker in workers:
        if isinstance(worker, threading.Thread):
            worker.join(timeout=5)
            continue
        worker.join(timeout=5)
        if worker.is_alive():
            worker.terminate()
            worker.join(timeout=5)


def _client(workload: Workload, budget: int, seconds: float, go, sender, own_process: bool) -> None:
    """One client: build its requests, wait for the start, run until the deadline, report."""
    if own_process:
        # Ctrl-C and termination are the parent's business; it stops us.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with workload(budget) as op:
            sender.send(("ready", None))
            go.wait()
            sender.send(("done", _timed_loop(op, budget, seconds)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        with contextlib.suppress(OSError, ValueError):
            sender.send(("error", f"client failed: {detail}"))
    finally:
        sender.close()


def _timed_loop(op, budget: int, seconds: float) -> tuple[int, float, bytes, bool]:
    latencies = array("d")
    started = time.perf_counter()
    deadline = started + seconds
    finished = started
    i = 0
    while i < budget:
        before = time.perf_counter()
        if before >= deadline:
            break
        op(i)
        finished = time.perf_counter()
        latencies.append(finished - before)
        i += 1
    return i, finished - started, latencies.tobytes(), i == budget


def _combine(name: str, clients: int, reports) -> CaseResult:
    latencies = array("d")
    for _, _, raw, _ in reports:
        latencies.frombytes(raw)
    ordered = sorted(latencies)
    return CaseResult(
        name=name,
        clients=clients,
        ops=sum(report[0] for report in reports),
        seconds=max(report[1] for report in reports),
        p50_ms=percentile(ordered, 0.50) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        ran_out=any(report[3] for report in reports),
    )


def median_results(results: list[CaseResult]) -> list[CaseResult]:
    """One result per (case, clients), in first-measured order: the round with the median rate
    (the lower middle of an even count), so its latencies are those of a round that happened."""
    rounds: dict[tuple[str, int], list[CaseResult]] = {}
    for result in results:
        rounds.setdefault((result.name, result.clients), []).append(result)
    return [sorted(found, key=lambda r: r.ops_per_s)[(len(found) - 1) // 2] for found in rounds.values()]


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when it is empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
