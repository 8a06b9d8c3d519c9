import base64
import datetime
import hashlib
import os

import base58
import pytest

from jarvis_wallet.db import session
from jarvis_wallet.models import WalletTransaction, utc_now
from jarvis_wallet.solana import parse_transaction_input

from conftest import payments_message, random_pubkey


@pytest.fixture
def ledger(initialised_url):
    """Three rows: a signed one, a big signed one, a rejected one (as the signer writes them)."""
    wallet = random_pubkey()
    now = utc_now()
    with session(initialised_url):
        rows = [
            WalletTransaction.create(request_id="a", wallet=wallet, status="signed", lamports=1000, fee_lamports=5000,
                                     message_sha256="a" * 64, signature="SigA", purpose="coffee [bold]",
                                     created_at=now - datetime.timedelta(hours=3), updated_at=now),
            WalletTransaction.create(request_id="b", wallet=wallet, status="signed", lamports=900_000, fee_lamports=5000,
                                     message_sha256="b" * 64, signature="SigB", destination_address=random_pubkey(),
                                     created_at=now - datetime.timedelta(minutes=5), updated_at=now),
            WalletTransaction.create(request_id="c", wallet=wallet, status="rejected", lamports=10**9,
                                     message_sha256="c" * 64, rejection_reason="daily_limit_exceeded",
                                     created_at=now, updated_at=now),
        ]
    return initialised_url, wallet, rows


def test_list_filters(cli, ledger):
    url, wallet, rows = ledger
    assert [r["id"] for r in cli("tx", "list", "--json", url=url).json()] == [rows[2].id, rows[1].id, rows[0].id]
    assert [r["request_id"] for r in cli("tx", "list", "--status", "rejected", "--json", url=url).json()] == ["c"]
    assert [r["request_id"] for r in cli("tx", "list", "--since", "1h", "--json", url=url).json()] == ["c", "b"]
    assert len(cli("tx", "list", "--limit", "1", "--json", url=url).json()) == 1
    assert cli("tx", "list", "--wallet", random_pubkey(), "--json", url=url).json() == []
    assert len(cli("tx", "list", "--wallet", wallet, "--json", url=url).json()) == 3
    since_iso = (utc_now() - datetime.timedelta(hours=1)).isoformat() + "Z"
    assert len(cli("tx", "list", "--since", since_iso, "--json", url=url).json()) == 2


def test_notify_threshold_flags_rows(cli, ledger):
    url, wallet, _ = ledger
    cli("limits", "set", "--wallet", wallet, "--per-tx", "1SOL", "--daily", "2SOL", "--notify-above", "100000", url=url)
    flagged = {r["request_id"]: r["above_notify_threshold"] for r in cli("tx", "list", "--json", url=url).json()}
    assert flagged == {"a": False, "b": True, "c": True}
    assert cli("limits", "show", "--wallet", wallet, "--json", url=url).json()["above_notify_24h"] == 1
    assert "! 1 above notify" in cli("limits", "show", url=url).stdout
    table = cli("tx", "list", url=url).stdout
    assert "coffee [bold]" in table  # agent text is shown literally, not as markup


def test_show_by_id_and_signature(cli, ledger):
    url, _, rows = ledger
    by_id = cli("tx", "show", rows[1].id, "--json", url=url).json()
    by_sig = cli("tx", "show", "SigB", "--json", url=url).json()
    assert by_id == by_sig and by_id["lamports"] == 900_000 and by_id["created_at"].endswith("Z")
    assert "900,000" in cli("tx", "show", "SigB", url=url).stdout
    for missing in ("999999", "NoSuchSig"):
        result = cli("tx", "show", missing, url=url)
        assert result.exit_code == 4 and f"Error: no transaction with id or signature '{missing}'" in result.stderr


def test_a_row_from_before_payments_were_recorded_shows_none(cli, ledger):
    url, _, rows = ledger
    shown = cli("tx", "show", rows[1].id, "--json", url=url).json()
    assert (shown["payments"], shown["message_base64"]) == (None, None)
    human = cli("tx", "show", rows[1].id, url=url).stdout
    assert "payments" in human and "not recorded" in human and "message" in human


def test_every_destination_is_shown_with_its_amount(cli, signers):
    """A 1-lamport decoy placed first used to be the only destination the trail named."""
    keypair = signers.keypair()
    signers.set_limits(per_tx=10**9, daily=10**10)
    handle = signers.start()
    decoy, payee = os.urandom(32), os.urandom(32)
    decoy_text, payee_text = (base58.b58encode(key).decode() for key in (decoy, payee))
    message = payments_message(from_key=keypair.public_key, payments=[(decoy, 1), (payee, 250_000_000)])
    with signers.client(handle) as client:
        signed = client.sign_transaction(message, purpose="rent")
    url = signers.database_url

    shown = cli("tx", "show", signed.transaction_id, "--json", url=url).json()
    assert shown["payments"] == [
        {"instruction_index": 0, "kind": "transfer", "destination": decoy_text, "destination_label": decoy_text,
         "lamports": 1},
        {"instruction_index": 1, "kind": "transfer", "destination": payee_text, "destination_label": payee_text,
         "lamports": 250_000_000},
    ]
    assert shown["lamports"] == 250_000_001 + 5_000
    # The recorded message re-parses to the very bytes that were signed and hashed.
    recorded = base64.b64decode(shown["message_base64"])
    assert recorded == message
    assert hashlib.sha256(parse_transaction_input(recorded).signing_bytes()).hexdigest() == shown["message_sha256"]

    human = cli("tx", "show", signed.transaction_id, url=url).stdout
    assert f"1 (0.000000001 SOL) to {decoy_text} (instruction 0, transfer)" in human
    assert f"250,000,000 (0.25 SOL) to {payee_text} (instruction 1, transfer)" in human
    assert f"{len(message)} bytes (message_base64 in --json" in human

    listed = cli("tx", "list", url=url).stdout
    assert f"{decoy_text} +1 more" in listed
    assert cli("tx", "list", "--json", url=url).json()[0]["payments"] == shown["payments"]


def test_mark_moves_forward_only(cli, ledger):
    url, _, rows = ledger
    signed, rejected = rows[0].id, rows[2].id
    assert cli("tx", "mark", signed, "--status", "submitted", url=url).exit_code == 0
    back = cli("tx", "mark", signed, "--status", "submitted", url=url)
    assert back.exit_code == 2 and "is submitted; it cannot become submitted" in back.stderr
    assert cli("tx", "mark", signed, "--status", "failed", "--reason", "blockhash expired", url=url).exit_code == 0
    shown = cli("tx", "show", signed, "--json", url=url).json()
    assert shown["status"] == "failed" and shown["rejection_reason"] == "blockhash expired"
    assert cli("tx", "mark", signed, "--status", "confirmed", url=url).exit_code == 2
    confirmed = cli("tx", "mark", "SigB", "--status", "confirmed", url=url)
    assert confirmed.exit_code == 0
    assert cli("tx", "show", "SigB", "--json", url=url).json()["confirmed_at"] is not None
    never = cli("tx", "mark", rejected, "--status", "submitted", url=url)
    assert never.exit_code == 2 and f"transaction {rejected} is rejected" in never.stderr
    for status in ("signed", "rejected", "bogus"):
        result = cli("tx", "mark", signed, "--status", status, url=url)
        assert result.exit_code == 2 and "use submitted, confirmed or failed" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("--status", "pending"), "unknown status 'pending'"),
        (("--since", "yesterday"), "invalid --since 'yesterday'"),
        (("--limit", "0"), "Invalid value for '--limit': 0 is not in the range 1<=x<=10000."),
        (("--limit", "9223372036854775808"), "Invalid value for '--limit'"),  # was an OverflowError on SQLite
        (("--wallet", "abc"), "invalid wallet 'abc'"),
    ],
)
def test_list_bad_filters(cli, ledger, args, message):
    result = cli("tx", "list", *args, url=ledger[0])
    assert result.exit_code == 2 and message in result.stderr


def test_list_says_how_many_more_rows_there_are_and_how_to_page(cli, ledger):
    url, wallet, rows = ledger
    first = cli("tx", "list", "--limit", "2", "--json", url=url)
    assert [r["id"] for r in first.json()] == [rows[2].id, rows[1].id]
    assert first.stderr == (
        f"1 more row(s) older than id {rows[1].id}: add --before-id {rows[1].id} for the next page, or a larger --limit\n"
    )
    page = cli("tx", "list", "--limit", "2", "--before-id", str(rows[1].id), "--json", url=url)
    assert [r["id"] for r in page.json()] == [rows[0].id]
    assert page.stderr == ""
    exact = cli("tx", "list", "--limit", "3", url=url)
    assert exact.exit_code == 0 and exact.stderr == ""  # nothing more: nothing said
    filtered = cli("tx", "list", "--limit", "1", "--status", "signed", url=url)
    assert filtered.stderr.startswith(f"1 more row(s) older than id {rows[1].id}")  # counted under the same filter


def _tokens_of(rows) -> list[str]:
    return [t for r in rows for t in (r.wallet, r.destination_address) if t]


@pytest.mark.parametrize("columns", [80, 120, 200])
@pytest.mark.parametrize("command", [("tx", "list"), ("limits", "show"), ("tx", "show", "2")])
def test_tables_never_break_a_key_an_amount_or_a_reason_code(cli, ledger, command, columns):
    url, wallet, rows = ledger
    cli("limits", "set", "--wallet", wallet, "--per-tx", "1234567891", "--daily", "9876543219", url=url)
    if command[-1] == "2":
        command = ("tx", "show", str(rows[1].id))
    narrow = cli(*command, url=url, env={"COLUMNS": str(columns)})
    assert narrow.exit_code == 0, narrow.stderr
    lines = narrow.stdout.splitlines()
    assert lines and all(len(line) <= columns for line in lines), narrow.stdout
    text = narrow.stdout
    for key in [wallet] if command[0] == "limits" else _tokens_of(rows):
        # whole, or abbreviated as 9WzD…AWWM: never cut across two lines
        assert key in text or f"{key[:4]}…{key[-4:]}" in text, (key, text)
    if command[0] == "limits":
        assert any(f" {amount}" in text for amount in ("1.234567891 ", "1,234,567,891 "))
    if command == ("tx", "list"):
        assert "[daily_limit_exceeded]" in text
        assert any(amount in text for amount in ("900,000", "0.0009 SOL"))
    wide = cli(*command, url=url, env={"COLUMNS": "250"})
    assert wallet in wide.stdout  # the full key where there is room
    assert cli(*command, "--json", url=url).stdout.count(wallet) >= 1  # and always in --json


def test_out_of_range_since_and_ids_are_errors_not_overflows(cli, ledger):
    url = ledger[0]
    since = cli("tx", "list", "--since", "999999w", url=url)
    assert since.exit_code == 2 and since.stderr == "Error: invalid --since '999999w': that is before the year 1\n"
    for command in (("tx", "show", "9223372036854775808"), ("tx", "mark", "9999999999999999999", "--status", "failed")):
        result = cli(*command, url=url)
        assert result.exit_code == 4, result.stderr
        assert result.stderr == f"Error: no transaction with id or signature '{command[2]}'\n"
