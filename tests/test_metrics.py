"""The signer's Prometheus metrics, scraped from the textfile and over HTTP while a live signer
signs and refuses: counts by outcome and reason, budget refusals, audit write failures, the
latency histogram, uptime, and each wallet's headroom against the limits report."""

from __future__ import annotations

import os
import socket as socketlib
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import random_pubkey, transfer_message
from test_cli_signer import wait_until
from jarvis_wallet.errors import DatabaseUnavailable, InvalidConfig, PolicyDenied, RateLimited, SignerLocked
from jarvis_wallet.metrics import (
    HELD_REASONS, NOT_DECIDED_REASONS, OUTCOMES, REFUSED_REASONS, SIGNED_REASONS, parse_loopback_address,
)


def _free_port() -> int:
    with socketlib.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def samples(text: str) -> dict[tuple, float]:
    """{(name, sorted label items): value} of an exposition text."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def decisions(found, outcome, reason) -> float:
    return found[("jarvis_wallet_decisions_total", (("outcome", outcome), ("reason", reason)))]


def scrape_http(address: str) -> dict:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        return samples(response.read().decode())


def test_metrics_count_signing_and_refusing_in_the_textfile_and_over_http(signers, tmp_path):
    from jarvis_wallet.db import session
    from jarvis_wallet.limits import get_limits, limits_report

    wallet = signers.set_limits(per_tx=1_000_000, daily=10_000_000)
    other = signers.set_limits(per_tx=1, daily=1, wallet=random_pubkey())
    textfile = tmp_path / "textfile" / "jarvis_wallet.prom"
    textfile.parent.mkdir()
    handle = signers.start(metrics_file=textfile, metrics_listen=f"127.0.0.1:{_free_port()}", metrics_interval_seconds=1)
    address = handle.info.metrics_listen
    keypair = signers.keypair()
    before = scrape_http(address)
    assert decisions(before, "signed", "signed") == 0
    with signers.client(handle) as client:
        for lamports in (1000, 2000, 3000):
            client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=lamports))
        with pytest.raises(PolicyDenied):
            client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=2_000_000))
        with pytest.raises(PolicyDenied):
            client.sign_transaction(transfer_message(from_key=os.urandom(32), lamports=1))  # not_a_signer
        client.sign_message("hello")
        client.sign_message("hello")  # a re-sign: duplicate
    found = scrape_http(address)
    assert decisions(found, "signed", "signed") == 4
    assert decisions(found, "signed", "duplicate") == 1
    assert decisions(found, "refused", "per_tx_limit_exceeded") == 1
    assert decisions(found, "refused", "not_a_signer") == 1
    assert found[("jarvis_wallet_decision_seconds_count", ())] == 7
    assert found[("jarvis_wallet_audit_write_failures_total", ())] == 0
    assert found[("jarvis_wallet_budget_refusals_total", ())] == 0
    assert found[("jarvis_wallet_locked", ())] == 0
    assert found[("jarvis_wallet_uptime_seconds", ())] >= 0
    # Headroom is what `limits show` reports, for every wallet with limits (read at most once a second).
    with session(signers.database_url):
        report = limits_report(get_limits(wallet))
    spent = ("jarvis_wallet_spent_24h_lamports", (("wallet", wallet),))
    wait_until(lambda: scrape_http(address)[spent] == report["spent_24h_lamports"], what="the headroom to be read again")
    found = scrape_http(address)
    assert found[("jarvis_wallet_spent_24h_lamports", (("wallet", wallet),))] == report["spent_24h_lamports"] == 21_000
    assert found[("jarvis_wallet_daily_headroom_lamports", (("wallet", wallet),))] == report["remaining_24h_lamports"]
    assert found[("jarvis_wallet_daily_headroom_ratio", (("wallet", wallet),))] == pytest.approx(
        report["remaining_24h_lamports"] / 10_000_000
    )
    assert found[("jarvis_wallet_daily_limit_lamports", (("wallet", other),))] == 1
    # Labels: only the fixed sets, and wallets the operator configured.
    for (name, labels), _ in found.items():
        for key, value in labels:
            assert (key, value) in {("outcome", o) for o in OUTCOMES} | {
                ("reason", r) for r in (*SIGNED_REASONS, *HELD_REASONS, *REFUSED_REASONS, *NOT_DECIDED_REASONS)
            } | {("wallet", wallet), ("wallet", other)} or key == "le", (name, key, value)
    # The textfile follows within its interval, and holds the final counts after the stop.
    handle.stop()
    final = samples(textfile.read_text())
    assert decisions(final, "signed", "signed") == 4 and decisions(final, "refused", "not_a_signer") == 1
    assert [p.name for p in textfile.parent.iterdir()] == [textfile.name]  # written by rename: no temp left


def test_budget_refusals_audit_write_failures_and_locks_are_counted(signers, tmp_path):
    if not signers.database_url.startswith("sqlite"):
        pytest.skip("the database is made unwritable through its SQLite file")
    import subprocess

    signers.set_limits(per_tx=1_000_000, daily=10_000_000)
    textfile = tmp_path / "m.prom"
    handle = signers.start(metrics_file=textfile, metrics_listen=f"127.0.0.1:{_free_port()}",
                           free_decisions_per_second=0.001, free_decision_burst=1)
    keypair = signers.keypair()
    with signers.client(handle) as client:
        with pytest.raises(PolicyDenied):  # a free decision: spends the burst of 1
            client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=2_000_000))
        for _ in range(3):
            with pytest.raises(RateLimited):
                client.sign_message("free")
    found = scrape_http(handle.info.metrics_listen)
    assert found[("jarvis_wallet_budget_refusals_total", ())] == 3
    assert decisions(found, "refused", "per_tx_limit_exceeded") == 1
    assert found[("jarvis_wallet_decision_seconds_count", ())] == 1  # the turned-away ones were never decided
    handle.stop()

    # Audit write failures: a signer whose database and WAL turn immutable cannot record.
    handle = signers.start(metrics_listen=f"127.0.0.1:{_free_port()}")
    db_path = signers.database_url.removeprefix("sqlite://")
    with signers.client(handle) as client:
        client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1000))
        files = [db_path, db_path + "-wal"]
        if subprocess.run(["chattr", "+i", *files], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here")
        try:
            for _ in range(2):
                with pytest.raises(DatabaseUnavailable):
                    client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1000))
        finally:
            subprocess.run(["chattr", "-i", *files], check=True)
        client.lock()
        with pytest.raises(SignerLocked):
            client.sign_transaction(transfer_message(from_key=keypair.public_key, lamports=1000))
    found = scrape_http(handle.info.metrics_listen)
    assert decisions(found, "not_decided", "locked") == 1
    assert found[("jarvis_wallet_locked", ())] == 1
    assert found[("jarvis_wallet_audit_write_failures_total", ())] == 2
    assert decisions(found, "not_decided", "database_unavailable") == 2
    assert decisions(found, "signed", "signed") == 1


@pytest.mark.parametrize(
    "address", ["0.0.0.0:9108", "10.1.2.3:9108", "[::]:9108", "localhost:9108", "127.0.0.1", "127.0.0.1:0",
                "127.0.0.1:70000", "192.168.1.1:80"],
)
def test_metrics_listen_is_loopback_only(address):
    with pytest.raises(InvalidConfig):
        parse_loopback_address(address)


def test_loopback_addresses_are_accepted():
    assert parse_loopback_address("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert parse_loopback_address("127.0.0.2:1") == ("127.0.0.2", 1)
    assert parse_loopback_address("[::1]:9108") == ("::1", 9108)


def test_the_cli_refuses_a_network_address_before_starting(cli, tmp_path):
    from jarvis_wallet.keys import generate_keypair_file

    generate_keypair_file(tmp_path / "k.json")
    socket = tmp_path / "run" / "signer.sock"
    result = cli("signer", "start", "--keypair", tmp_path / "k.json", "--socket", socket,
                 "--metrics-listen", "0.0.0.0:9108")
    assert result.exit_code == 2
    assert "is not a loopback address" in result.stderr and result.stderr.count("\n") == 1
    assert not socket.parent.exists()


def test_a_port_in_use_fails_the_start_cleanly(signers):
    with socketlib.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        from jarvis_wallet.errors import SignerStartError

        with pytest.raises(SignerStartError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            signers.start(metrics_listen=f"127.0.0.1:{port}")


def test_the_sign_path_does_not_import_prometheus_client():
    import subprocess
    import sys

    code = ("import sys, jarvis_wallet.cli, jarvis_wallet.client, jarvis_wallet.signer; "
            "print('prometheus_client' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_approvals_pending_and_their_outcomes_are_scraped_while_held_and_after_approval(signers, tmp_path):
    """A payment above the threshold is held (outcome held, not refused) and shows in the
    wallet's pending gauge; the operator approves from the CLI; the gauge drops to 0; the re-sign
    with a fresh blockhash is counted signed/approved, a second use refused/approval_consumed."""
    from test_approvals import cli_process, hold, limits_with_threshold, transfer

    from jarvis_wallet.errors import ApprovalRefused

    keypair = signers.keypair()
    wallet = keypair.public_key_base58
    limits_with_threshold(signers.database_url, wallet)
    textfile = tmp_path / "jarvis_wallet.prom"
    handle = signers.start(metrics_file=textfile, metrics_interval_seconds=1)
    pending = ("jarvis_wallet_approvals_pending", (("wallet", wallet),))

    def scraped() -> dict:
        return samples(textfile.read_text())

    assert scraped()[pending] == 0
    with signers.client(handle) as client:
        held = hold(client, transfer(keypair.public_key), purpose="invoice 42")
        wait_until(lambda: scraped()[pending] == 1, what="the pending request in the textfile")
        found = scraped()
        assert decisions(found, "held", "approval_required") == 1
        refused_series = ("jarvis_wallet_decisions_total", (("outcome", "refused"), ("reason", "approval_required")))
        assert refused_series not in found  # held is not a refusal
        approved = cli_process(signers.database_url, "approvals", "approve", str(held.approval_id))
        assert approved.returncode == 0, approved.stderr
        wait_until(lambda: scraped()[pending] == 0, what="the approval to leave the pending gauge")
        client.sign_transaction(transfer(keypair.public_key), purpose="invoice 42")  # a fresh blockhash
        with pytest.raises(ApprovalRefused) as used:
            client.sign_transaction(transfer(keypair.public_key), purpose="invoice 42")
        assert used.value.reason == "approval_consumed"
    handle.stop()
    final = scraped()
    assert final[pending] == 0
    assert decisions(final, "held", "approval_required") == 1
    assert decisions(final, "signed", "approved") == 1
    assert decisions(final, "signed", "signed") == 0
    assert decisions(final, "refused", "approval_consumed") == 1
    for reason in ("approval_denied", "approval_expired"):
        assert decisions(final, "refused", reason) == 0  # declared from the start, at 0
    assert HELD_REASONS == ("approval_required",)
