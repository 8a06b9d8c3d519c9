"""`jarvis-wallet approvals ...`, `limits set --approve-above` and `sign --wait-approval`, against a
real forked signer and database."""

from __future__ import annotations

import base64
import datetime
import json
import os
import shlex
import subprocess
import sys

import base58
import pytest

from jarvis_wallet import approvals
from jarvis_wallet.db import session
from jarvis_wallet.errors import ApprovalRequired
from jarvis_wallet.models import ApprovalRequest

from conftest import transfer_message

BIG = 500_000


@pytest.fixture
def held(signers, cli):
    """A signer whose wallet holds anything above 100,000 lamports, and one held request (id 1)."""
    keypair = signers.keypair()
    url = signers.database_url
    wallet = keypair.public_key_base58
    assert cli("limits", "set", "--wallet", wallet, "--per-tx", "1SOL", "--daily", "2SOL", "--approve-above", "100000",
               url=url).exit_code == 0
    handle = signers.start()
    message = transfer_message(from_key=keypair.public_key, lamports=BIG)
    (signers.tmp_path / "held.b64").write_text(base64.b64encode(message).decode())
    with signers.client(handle) as client:
        with pytest.raises(ApprovalRequired) as first:
            client.sign_transaction(message, purpose="rent for May")
    assert first.value.approval_id == 1
    return handle, url, keypair


def test_limits_set_approve_above_is_shown_and_cleared(signers, cli):
    wallet = signers.keypair().public_key_base58
    url = signers.database_url
    result = cli("limits", "set", "--wallet", wallet, "--per-tx", "1SOL", "--daily", "2SOL", "--approve-above", "0.1SOL", url=url)
    assert result.exit_code == 0 and result.stdout.rstrip().endswith("approval above 100,000,000 (0.1 SOL)")
    assert cli("limits", "show", "--wallet", wallet, "--json", url=url).json()["approve_above_lamports"] == 100_000_000
    assert "approve above" in cli("limits", "show", url=url, env={"COLUMNS": "250"}).stdout
    both = cli("limits", "set", "--wallet", wallet, "--approve-above", "1", "--clear-approve-above", url=url)
    assert both.exit_code == 2 and "not both" in both.stderr
    cleared = cli("limits", "set", "--wallet", wallet, "--clear-approve-above", url=url)
    assert cleared.exit_code == 0 and cleared.stdout.rstrip().endswith("no approval threshold")
    assert "approve above" not in cli("limits", "show", url=url, env={"COLUMNS": "250"}).stdout


def test_list_show_and_approve_in_text(held, cli):
    handle, url, keypair = held
    listed = cli("approvals", "list", url=url, env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    assert "pending" in listed.stdout and "rent for May" in listed.stdout and "505,000" in listed.stdout
    shown = cli("approvals", "show", "1", url=url, env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "#0 transfer 500000 lamports to" in shown.stdout
    approved = cli("approvals", "approve", "1", "--note", "ok", url=url)
    assert approved.exit_code == 0 and approved.stdout.startswith("Approval request 1 approved by ")
    assert cli("approvals", "list", url=url).stderr == "No request waits for approval.\n"
    everything = cli("approvals", "list", "--all", "--json", url=url).json()
    assert [(r["approval_id"], r["status"], r["note"]) for r in everything] == [(1, "approved", "ok")]
    twice = cli("approvals", "approve", "1", url=url)
    assert twice.exit_code == 2 and twice.stderr == "Error: approval request 1 is approved\n"


@pytest.mark.parametrize("note", ["line\nbreak", "bell\x07", "x" * 513, "bidi\u202e"])
def test_a_note_that_could_rewrite_the_operators_screen_is_refused(held, cli, note):
    handle, url, keypair = held
    result = cli("approvals", "approve", "1", "--note", note, url=url)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    with session(url):
        assert ApprovalRequest.get_by_id(1).status == "pending"


def test_the_configured_lifetime_applies_to_an_approval(held, cli):
    handle, url, keypair = held
    assert cli("config", "set", "approval_ttl_seconds", "59", url=url).exit_code == 2
    assert cli("config", "set", "approval_ttl_seconds", "120", url=url).exit_code == 0
    report = cli("approvals", "approve", "1", "--json", url=url).json()
    decided = datetime.datetime.fromisoformat(report["decided_at"].rstrip("Z"))
    assert datetime.datetime.fromisoformat(report["expires_at"].rstrip("Z")) - decided == datetime.timedelta(seconds=120)


def test_watch_shows_the_pending_requests(held, cli):
    handle, url, keypair = held
    result = cli("approvals", "watch", "--count", "2", "--interval", "0.2", url=url, env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Pending approvals" in result.stdout and "rent for May" in result.stdout


def test_sign_without_wait_exits_5_with_the_approval_id(held, cli, tmp_path):
    handle, url, keypair = held
    tx = tmp_path / "tx.b64"
    tx.write_text(base64.b64encode(transfer_message(from_key=keypair.public_key, lamports=BIG + 1)).decode())
    result = cli("sign", tx, "--socket", handle.socket_path, url=url)
    assert result.exit_code == 5
    assert result.stderr.startswith("Error: refused (approval_required): ") and "approval request 2 " in result.stderr
    assert cli("sign", tx, "--socket", handle.socket_path, "--rebuild", "true", url=url).exit_code == 2


REBUILD = r"""
import base64, os, sys
import base58
from jarvis_wallet.solana import build_transfer_message
print(base64.b64encode(build_transfer_message(from_pubkey=base58.b58decode(sys.argv[1]), to_pubkey=base58.b58decode(sys.argv[2]),
      lamports=int(sys.argv[3]), recent_blockhash=os.urandom(32))).decode())
"""


def test_sign_wait_approval_from_the_shell_rebuilds_with_a_fresh_blockhash(held, cli, tmp_path):
    """`sign --wait-approval --rebuild` waits in its own process; the operator approves in another."""
    handle, url, keypair = held
    destination = base58.b58encode(os.urandom(32)).decode()
    rebuild = tmp_path / "rebuild.py"
    rebuild.write_text(REBUILD)
    command = shlex.join([sys.executable, str(rebuild), keypair.public_key_base58, destination, str(BIG)])
    tx = tmp_path / "tx.b64"
    tx.write_text(subprocess.run(shlex.split(command), capture_output=True, text=True, check=True).stdout)
    agent = subprocess.Popen(
        [sys.executable, "-m", "jarvis_wallet", "--database-url", url, "sign", str(tx), "--socket", str(handle.socket_path),
         "--wait-approval", "--approval-timeout", "120", "--rebuild", command, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first_line = agent.stderr.readline()
        assert first_line.startswith("Held for approval: request 2, until ")
        approved = cli("approvals", "approve", "2", url=url)
        assert approved.exit_code == 0, approved.stderr
        out, err = agent.communicate(timeout=120)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 0, err
    assert "Approved: request 2; signing" in err
    signed = json.loads(out)
    message = base64.b64decode(signed["signed_transaction"])[65:]
    assert message != base64.b64decode(tx.read_text())  # the rebuilt one, with its own blockhash
    with session(url):
        grant = ApprovalRequest.get_by_id(2)
    assert (grant.status, grant.signed_transaction_id) == ("consumed", signed["transaction_id"])


def test_a_denial_is_exit_5_with_the_reason(held, cli, signers):
    handle, url, keypair = held
    with session(url):
        approvals.deny(1, reason="not in the budget")
    result = cli("sign", signers.tmp_path / "held.b64", "--socket", handle.socket_path, "--wait-approval", "--json", url=url)
    assert result.exit_code == 5
    assert result.stderr.startswith("Error: refused (approval_denied): the operator denied approval request 1")
    assert result.json()["approval_id"] == 1 and "not in the budget" in result.json()["message"]
