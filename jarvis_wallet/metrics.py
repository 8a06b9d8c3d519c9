"""The signer's Prometheus metrics: a node_exporter textfile, or a loopback HTTP listener.

Off unless asked for (``signer start --metrics-file PATH`` or ``--metrics-listen
127.0.0.1:PORT``). ``prometheus_client`` is imported only then: ``jarvis-wallet sign`` and a
signer without metrics never load it.

Metrics (docs/operations.md lists them with sample alerts)::

    jarvis_wallet_decisions_total{outcome, reason}     counter  (signed, held, refused, not_decided)
    jarvis_wallet_budget_refusals_total                counter  (rate_limited: turned away undecided)
    jarvis_wallet_audit_write_failures_total           counter  (decisions the database could not record)
    jarvis_wallet_decision_seconds                     histogram
    jarvis_wallet_uptime_seconds                       gauge
    jarvis_wallet_locked                               gauge    (1 while the key is locked)
    jarvis_wallet_daily_limit_lamports{wallet}         gauge    (each wallet with limits)
    jarvis_wallet_spent_24h_lamports{wallet}           gauge
    jarvis_wallet_daily_headroom_lamports{wallet}      gauge
    jarvis_wallet_daily_headroom_ratio{wallet}         gauge    (headroom / daily limit)
    jarvis_wallet_approvals_pending{wallet}            gauge    (approval requests awaiting the operator)
    jarvis_wallet_wallets_read_ok                      gauge    (0: the last read of the wallets failed)

Label values come from fixed sets (``OUTCOMES`` and the reason codes below; anything else is
counted as ``other``), never request ids or amounts. The ``wallet`` label is the address of a
wallet the operator configured limits for: public, and as few as the rows of ``spend_limits``.

Serving metrics never touches the key and never waits for the signing worker: counters are
bumped by the serving loop after each decision (before its reply), and the wallets' headroom is read with a
connection of the metrics' own, outside any lock, at most once a second.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
import time
from collections.abc import Callable

from . import protocol
from .errors import InvalidConfig, JarvisWalletError, SignerStartError
from .policy import REASONS

OUTCOMES = ("signed", "held", "refused", "not_decided")
# approved: signed by consuming an operator's grant (approval_consumed is a second use, refused).
SIGNED_REASONS = ("signed", "duplicate", "approved")
# Held for a person: within the limits, above the approval threshold. Not a refusal, so the
# "refusals spiking" alert does not fire for payments waiting on the operator.
HELD_REASONS = (protocol.APPROVAL_REQUIRED,)
REFUSED_REASONS = (
    *REASONS, protocol.INVALID_TX, protocol.APPROVAL_DENIED, protocol.APPROVAL_EXPIRED, protocol.APPROVAL_CONSUMED,
)
NOT_DECIDED_REASONS = (
    protocol.LOCKED, protocol.DATABASE_UNAVAILABLE, protocol.REPLAYED_REQUEST, protocol.BUSY,
    protocol.INTERNAL_ERROR, "other",
)
_REASONS_BY_OUTCOME = {
    "signed": SIGNED_REASONS, "held": HELD_REASONS, "refused": REFUSED_REASONS, "not_decided": NOT_DECIDED_REASONS,
}
# The wallets are read at most once a second, however often metrics are scraped.
HEADROOM_MAX_AGE_SECONDS = 1.0
DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def parse_loopback_address(text: str) -> tuple[str, int]:
    """``127.0.0.1:9108`` or ``[::1]:9108`` -> (host, port); anything not loopback is refused."""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address = ipaddress.ip_address(host) if sep else None
    except ValueError:
        address = None
    if address is None or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise InvalidConfig(f"--metrics-listen {text!r} is not HOST:PORT with an IP address and a port 1 to 65535")
    if not address.is_loopback:
        raise InvalidConfig(
            f"--metrics-listen {text!r} is not a loopback address: metrics are served on 127.0.0.1 or ::1 only "
            "(use --metrics-file with node_exporter to publish them further)"
        )
    return str(address), int(port_text)


class WalletHeadroom:
    """Each configured wallet's daily limit and 24-hour spend, read on a connection of its own."""

    def __init__(self, database_url: str, *, max_age_seconds: float) -> None:
        self._url = database_url
        self._max_age = max_age_seconds
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._rows: list[tuple[str, int, int, int]] = []
        self.ok = True

    def rows(self) -> list[tuple[str, int, int, int]]:
        """(wallet, daily limit, spent in the last 24 hours, approval requests pending), at most
        ``max_age`` seconds old."""
        with self._lock:
            now = time.monotonic()
            if self._read_at is None or now - self._read_at >= self._max_age:
                try:
                    self._rows = self._read()
                    self.ok = True
                except Exception:  # noqa: BLE001 - a metrics read must never take the signer down
                    self.ok = False
                self._read_at = now
            return list(self._rows)

    def _read(self) -> list[tuple[str, int, int, int]]:
        from .db import close_database, open_database, translate_errors
        from .models import utc_now
        from .spend_window import RollingSpend

        db = open_database(self._url, bind=False)  # raw SQL only: the signer's models stay bound
        try:
            with translate_errors(db):
                limits = db.execute_sql("SELECT wallet, daily_lamports FROM spend_limits ORDER BY wallet").fetchall()
                now = utc_now()
                # Pending and not yet expired, as `approvals list` shows them; only wallets with
                # limits are labelled (a request exists only for one that has them).
                pending = dict(db.execute_sql(
                    "SELECT wallet, COUNT(*) FROM approval_requests "
                    f"WHERE status = 'pending' AND expires_at > {db.param} GROUP BY wallet",
                    (now,),
                ).fetchall())
                return [
                    (wallet, int(daily), RollingSpend(db, wallet).current(now), int(pending.get(wallet, 0)))
                    for wallet, daily in limits
                ]
        finally:
            close_database(db)


class SignerMetrics:
    """The registry of one signer, and what feeds it."""

    def __init__(
        self,
        *,
        database_url: str,
        started_at: float,
        budget_refusals: Callable[[], int],
        locked: Callable[[], bool],
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

        disable_created_metrics()  # no *_created series: they double the output and no alert uses them
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "jarvis_wallet_decisions", "Signing requests handed to the signing worker, by outcome and reason code.",
            ["outcome", "reason"], registry=self.registry,
        )
        for outcome, reasons in _REASONS_BY_OUTCOME.items():
            for reason in reasons:
                self.decisions.labels(outcome, reason)  # every series from the start, at 0
        self.audit_write_failures = Counter(
            "jarvis_wallet_audit_write_failures",
            "Decisions the database could not record (nothing was signed for them).", registry=self.registry,
        )
        self.decision_seconds = Histogram(
            "jarvis_wallet_decision_seconds", "Time from handing a request to the signing worker to its answer.",
            buckets=DECISION_BUCKETS, registry=self.registry,
        )
        self.headroom = WalletHeadroom(database_url, max_age_seconds=HEADROOM_MAX_AGE_SECONDS)
        self.registry.register(_LiveCollector(self, started_at, budget_refusals, locked))

    def record(self, outcome: str, reason: str, seconds: float) -> None:
        if reason not in _REASONS_BY_OUTCOME[outcome]:
            outcome, reason = "not_decided", "other"  # never a label value outside the fixed sets
        self.decisions.labels(outcome, reason).inc()
        self.decision_seconds.observe(seconds)

    def measured(self, sign):
        """``sign`` that also counts each decision and its latency."""

        def sign_and_measure(job):
            started = time.perf_counter()
            try:
                outcome = sign(job)
            except JarvisWalletError as exc:
                self.observe(exc, time.perf_counter() - started)
                raise
            self.observe(outcome, time.perf_counter() - started)
            return outcome

        return sign_and_measure

    def observe(self, result, seconds: float) -> None:
        """Count one decision that took ``seconds``: ``result`` is its SignOutcome or the
        JarvisWalletError that refused it (anything else is not a decision and not counted)."""
        if isinstance(result, JarvisWalletError):
            code = result.wire_code
            if code == protocol.DATABASE_UNAVAILABLE:
                self.audit_write_failures.inc()
            outcome_label = "held" if code in HELD_REASONS else "refused" if code in REFUSED_REASONS else "not_decided"
            self.record(outcome_label, code, seconds)
        elif not isinstance(result, BaseException):
            reason = "duplicate" if result.duplicate else "approved" if result.approval_id is not None else "signed"
            self.record("signed", reason, seconds)

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _LiveCollector:
    """What is read at collection time: uptime, lock state, budget refusals, headroom."""

    def __init__(self, metrics: SignerMetrics, started_at: float, budget_refusals, locked) -> None:
        self._metrics = metrics
        self._started_at = started_at
        self._budget_refusals = budget_refusals
        self._locked = locked

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        yield GaugeMetricFamily("jarvis_wallet_uptime_seconds", "Seconds since the signer started.",
                                value=time.monotonic() - self._started_at)
        yield GaugeMetricFamily("jarvis_wallet_locked", "1 while the signer's key is locked.",
                                value=1 if self._locked() else 0)
        yield CounterMetricFamily("jarvis_wallet_budget_refusals",
                                  "Signing requests turned away by the free-decision budget (rate_limited), undecided.",
                                  value=self._budget_refusals())
        rows = self._metrics.headroom.rows()
        yield GaugeMetricFamily("jarvis_wallet_wallets_read_ok", "0 when the last read of the wallets' limits failed.",
                                value=1 if self._metrics.headroom.ok else 0)
        families = {
            name: GaugeMetricFamily(f"jarvis_wallet_{name}", text, labels=["wallet"])
            for name, text in (
                ("daily_limit_lamports", "The wallet's rolling 24-hour ceiling."),
                ("spent_24h_lamports", "Lamports counted against the wallet in the last 24 hours."),
                ("daily_headroom_lamports", "What the wallet may still spend in the rolling 24 hours."),
                ("daily_headroom_ratio", "Headroom as a fraction of the daily ceiling (1 when the ceiling is 0)."),
                ("approvals_pending", "Approval requests of the wallet waiting for the operator (not yet expired)."),
            )
        }
        for wallet, daily, spent, pending in rows:
            headroom = max(daily - spent, 0)
            families["daily_limit_lamports"].add_metric([wallet], daily)
            families["spent_24h_lamports"].add_metric([wallet], spent)
            families["daily_headroom_lamports"].add_metric([wallet], headroom)
            families["daily_headroom_ratio"].add_metric([wallet], headroom / daily if daily else 1.0)
            families["approvals_pending"].add_metric([wallet], pending)
        yield from families.values()


class MetricsExporter:
    """Writes the textfile every interval and at stop, and/or serves HTTP on loopback."""

    def __init__(self, metrics: SignerMetrics, *, textfile=None, listen: str | None = None,
                 interval_seconds: float, on_error: Callable[[str], None] = lambda message: None) -> None:
        self.metrics = metrics
        self.textfile = None if textfile is None else str(textfile)
        self.listen = listen
        self.bound: str | None = None
        self._interval = interval_seconds
        self._on_error = on_error
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._httpd = None

    def start(self) -> None:
        if self.listen is not None:
            from prometheus_client import start_http_server

            host, port = parse_loopback_address(self.listen)
            try:
                self._httpd, _ = start_http_server(port, addr=host, registry=self.metrics.registry)
            except OSError as exc:
                raise SignerStartError(f"cannot serve metrics on {self.listen}: {exc.strerror}") from None
            bound_host, bound_port = self._httpd.server_address[:2]
            self.bound = f"[{bound_host}]:{bound_port}" if ":" in bound_host else f"{bound_host}:{bound_port}"
        if self.textfile is not None:
            self.write_textfile()
            self._writer = threading.Thread(target=self._write_loop, name="metrics-textfile", daemon=True)
            self._writer.start()

    def write_textfile(self) -> None:
        """Atomically (a temporary file renamed over the old one): a reader never sees half."""
        from prometheus_client import write_to_textfile

        try:
            write_to_textfile(self.textfile, self.metrics.registry)
        except OSError as exc:
            self._on_error(f"cannot write metrics to {self.textfile}: {exc.strerror}")

    def _write_loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.write_textfile()

    def stop(self) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=5)
            self.write_textfile()  # the final counts, at exit
        if self._httpd is not None:
            with contextlib.suppress(Exception):
                self._httpd.shutdown()
                self._httpd.server_close()
