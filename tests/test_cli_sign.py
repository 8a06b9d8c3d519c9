"""`jarvis-wallet sign` and `jarvis-wallet sign-message` end to end.

The signer is the real forked process on a real socket and database (the ``signers``
fixture); the CLI runs in-process, and once as a real subprocess reading a real pipe.
Signatures are verified with PyNaCl, never with our own code.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import base58
import nacl.signing
import pytest
from solders.transaction import VersionedTransaction

from conftest import transfer_message

SIGN_KEYS = {"signature", "signed_transaction", "request_id", "wallet", "lamports", "fee_lamports",
             "transaction_id", "duplicate", "tokens"}
FEE = 5000


def verify(wallet: str, message: bytes, signature: str) -> None:
    """Raises nacl.exceptions.BadSignatureError unless ``signature`` is the wallet's over ``message``."""
    nacl.signing.VerifyKey(base58.b58decode(wallet)).verify(message, base58.b58decode(signature))


def one_error_line(result) -> str:
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.endswith("\n"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


class Session:
    """One running signer and the CLI pointed at it."""

    def __init__(self, signers, cli, tmp_path) -> None:
        self.signers, self._cli, self.tmp_path = signers, cli, tmp_path
        self.handle = signers.start()
        self.wallet = self.handle.public_key
        self.socket = self.handle.socket_path
        self.url = signers.database_url
        self._files = 0

    def cli(self, *args, **kwargs):
        return self._cli(*args, url=self.url, **kwargs)

    def sign(self, *args, **kwargs):
        return self.cli("sign", *args, "--socket", self.socket, **kwargs)

    def sign_message(self, *args, **kwargs):
        return self.cli("sign-message", *args, "--socket", self.socket, **kwargs)

    def limits(self, per_tx: int, daily: int) -> None:
        self.signers.set_limits(per_tx=per_tx, daily=daily)

    def message(self, lamports: int = 1000, **kwargs) -> bytes:
        return transfer_message(from_key=base58.b58decode(self.wallet), lamports=lamports, **kwargs)

    def file(self, content: str | bytes, name: str | None = None) -> Path:
        self._files += 1
        path = self.tmp_path / (name or f"in{self._files}.b64")
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    def b64_file(self, data: bytes, around: str = "") -> Path:
        return self.file(around + base64.b64encode(data).decode() + around)

    def rows(self) -> list[dict]:
        result = self.cli("tx", "list", "--json")
        assert result.exit_code == 0, result.stderr
        return result.json()

    def spent(self) -> int:
        return self.cli("limits", "show", "--wallet", self.wallet, "--json").json()["spent_24h_lamports"]

    def counts(self) -> tuple[int, int]:
        status = self.cli("signer", "status", "--socket", self.socket, "--json").json()
        return status["signed"], status["refused"]


@pytest.fixture
def session(signers, cli, tmp_path):
    return Session(signers, cli, tmp_path)


# -- sign ------------------------------------------------------------------------------------


def test_sign_a_file_prints_a_signature_that_verifies(session):
    session.limits(per_tx=100_000, daily=1_000_000)
    message = session.message(1000)
    result = session.sign(session.b64_file(message, around="\n  \t"), "--purpose", "pay invoice 42")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    signature = result.stdout.removesuffix("\n")
    assert result.stdout == signature + "\n" and len(base58.b58decode(signature)) == 64
    verify(session.wallet, message, signature)
    assert session.counts() == (1, 0)


def test_sign_from_stdin(session):
    session.limits(per_tx=100_000, daily=1_000_000)
    message = session.message(2000)
    result = session.sign("-", input=base64.b64encode(message).decode() + "\n")
    assert result.exit_code == 0, result.stderr
    verify(session.wallet, message, result.stdout.strip())


def test_sign_from_stdin_through_a_real_pipe(session):
    session.limits(per_tx=100_000, daily=1_000_000)
    message = session.message(3000)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("jarvis-wallet")), "sign", "-", "--socket", str(session.socket)],
        input=base64.b64encode(message).decode(), capture_output=True, text=True, timeout=30,
    )
    assert (result.returncode, result.stderr) == (0, "")
    verify(session.wallet, message, result.stdout.strip())
    assert session.rows()[0]["peer_pid"] not in (None, os.getpid())  # the subprocess asked, not pytest


FULL_APP = "import sys; from jarvis_wallet.cli import app; app(prog_name='jarvis-wallet')"


@pytest.mark.parametrize(
    "args",
    [["sign", "--help"], ["sign", "-h"], ["sign"], ["sign", "missing.b64"], ["sign", "missing.b64", "--json"],
     ["sign", "tx.b64", "--timeout", "0"], ["sign", "tx.b64", "--purpose", ""], ["sign", "tx.b64", "--bogus"],
     ["sign", "tx.b64", "--rebuild", "true"], ["sign", "tx.b64", "--socket", "nowhere/signer.sock"]],
    ids=["help", "short-help", "no-file", "missing", "missing-json", "bad-timeout", "empty-purpose", "unknown-option",
         "rebuild-alone", "no-signer"],
)
def test_the_sign_only_root_answers_as_the_whole_app_does(tmp_path, args):
    """`jarvis-wallet sign` runs from a root holding only `sign` (start-up); every answer is the same."""
    (tmp_path / "tx.b64").write_text(base64.b64encode(transfer_message(from_key=bytes(range(32)), lamports=5000)).decode())
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SIGNER_", "JARVIS_WALLET_"))}
    env.update(COLUMNS="100", XDG_RUNTIME_DIR=str(tmp_path / "run"))
    script = str(Path(sys.executable).with_name("jarvis-wallet"))
    runs = [subprocess.run(argv + args, capture_output=True, text=True, timeout=30, cwd=tmp_path, env=env)
            for argv in ([script], [sys.executable, "-c", FULL_APP])]
    assert [(r.returncode, r.stdout, r.stderr) for r in runs][0] == [(r.returncode, r.stdout, r.stderr) for r in runs][1]
    assert runs[0].returncode != 0 or args[-1] in ("--help", "-h")


def test_the_sign_command_loads_no_other_command():
    code = (
        "import sys; sys.argv = ['jarvis-wallet', 'sign', '--help']\n"
        "from jarvis_wallet.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('jarvis_wallet.commands.')), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.stderr.strip() == "['jarvis_wallet.commands._common', 'jarvis_wallet.commands.sign']"


@pytest.mark.parametrize("as_transaction", [False, True], ids=["bare-message", "unsigned-transaction"])
def test_out_writes_the_signed_transaction(session, as_transaction):
    session.limits(per_tx=100_000, daily=1_000_000)
    message = session.message(1000)
    given = (b"\x01" + bytes(64) + message) if as_transaction else message
    out = session.tmp_path / "signed.b64"
    result = session.sign(session.b64_file(given), "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    text = out.read_text()
    assert text == data["signed_transaction"] + "\n"
    signed = base64.b64decode(text.removesuffix("\n"), validate=True)
    signature = base58.b58decode(data["signature"])
    assert signed == b"\x01" + signature + message  # one slot, holding the signature, then the message
    verify(session.wallet, message, data["signature"])
    parsed = VersionedTransaction.from_bytes(signed)  # solders reads it as a signed transaction
    assert bytes(parsed.signatures[0]) == signature
    assert parsed.verify_with_results() == [True]


def test_json_output_and_a_duplicate_counts_once(session):
    session.limits(per_tx=100_000, daily=1_000_000)
    message = session.message(1000)
    path = session.b64_file(message)

    first = session.sign(path, "--json", "--purpose", "coffee")
    assert first.exit_code == 0, first.stderr
    data = first.json()
    assert set(data) == SIGN_KEYS
    assert data["wallet"] == session.wallet
    assert (data["lamports"], data["fee_lamports"], data["duplicate"]) == (1000 + FEE, FEE, False)
    assert isinstance(data["transaction_id"], int) and data["request_id"]
    verify(session.wallet, message, data["signature"])
    assert base64.b64decode(data["signed_transaction"]) == b"\x01" + base58.b58decode(data["signature"]) + message

    again = session.sign(path, "--json").json()
    assert again["signature"] == data["signature"]
    assert again["signed_transaction"] == data["signed_transaction"]
    assert again["duplicate"] is True
    assert again["transaction_id"] == data["transaction_id"]
    assert again["request_id"] != data["request_id"]  # a new request, answered with the recorded signature
    plain = session.sign(path)
    assert plain.stdout == data["signature"] + "\n"

    assert session.spent() == 1000 + FEE  # counted once, not three times
    rows = sorted(session.rows(), key=lambda r: r["id"])
    assert [(r["id"], r["status"], r["purpose"]) for r in rows][0] == (data["transaction_id"], "signed", "coffee")
    assert [(r["status"], r["duplicate_of"]) for r in rows[1:]] == [("duplicate", data["transaction_id"])] * 2


def test_over_the_limits_exits_5_with_the_reason(session):
    session.limits(per_tx=10_000, daily=20_000)
    over = session.sign(session.b64_file(session.message(6_000)))  # 11,000 with the fee
    assert over.exit_code == 5
    assert one_error_line(over) == (
        "Error: refused (per_tx_limit_exceeded): this transaction spends 11000 lamports (0.000011 SOL), above the per-transaction limit "
        "of 10000 lamports (0.00001 SOL)\n"
    )
    for lamports in (4_000, 4_000):  # 9,000 each: 18,000 of the daily 20,000
        assert session.sign(session.b64_file(session.message(lamports))).exit_code == 0
    daily = session.sign(session.b64_file(session.message(1_000)))
    assert daily.exit_code == 5
    assert one_error_line(daily) == (
        "Error: refused (daily_limit_exceeded): this transaction spends 6000 lamports (0.000006 SOL); with 18000 lamports (0.000018 SOL) "
        "already spent in the last 24 hours that is above the daily limit of 20000 lamports (0.00002 SOL)\n"
    )
    assert session.spent() == 18_000
    assert session.counts() == (2, 2)


def test_without_limits_everything_is_refused(session):
    result = session.sign(session.b64_file(session.message(1)))
    assert result.exit_code == 5
    assert one_error_line(result) == (
        f"Error: refused (no_limits): wallet {session.wallet} has no spend limits; set them with "
        f"`jarvis-wallet limits set --wallet {session.wallet} --per-tx AMOUNT --daily AMOUNT`\n"
    )
    message = session.sign_message("hello")
    assert message.exit_code == 5
    assert "`jarvis-wallet limits set --wallet" in message.stderr


def test_no_signer_exits_6(cli, tmp_path):
    socket = tmp_path / "nobody" / "signer.sock"
    path = tmp_path / "tx.b64"
    path.write_text(base64.b64encode(transfer_message(from_key=os.urandom(32), lamports=1)).decode())
    expected = f"Error: no signer is listening on {socket}; start one with `jarvis-wallet signer start`\n"
    # With no secret file anywhere (no signer ever ran here) it is still "no signer", not a secret problem.
    for env in ({}, {"SIGNER_SHARED_SECRET": "s" * 40}):
        result = cli("sign", path, "--socket", socket, env=env)
        assert result.exit_code == 6, result.stderr
        assert one_error_line(result) == expected
        message = cli("sign-message", "hello", "--socket", socket, env=env)
        assert message.exit_code == 6
        assert message.stderr == expected


@pytest.mark.parametrize(
    "content, message",
    [
        pytest.param("not base64 at all!", "input is not valid base64", id="bad-base64"),
        pytest.param("AQID\nAQ=D", "input is not valid base64", id="padding-inside"),
        pytest.param("", "empty base64 input", id="empty-file"),
        pytest.param(" \n\t\n", "empty base64 input", id="whitespace-only"),
        pytest.param("AQID\u00e9", "base64 input contains non-ASCII characters", id="non-ascii"),
        pytest.param(b"\xff\xfe\x00", None, id="not-utf8"),
    ],
)
def test_bad_input_exits_2_and_reaches_no_signer(session, content, message):
    session.limits(per_tx=100_000, daily=1_000_000)
    path = session.file(content)
    result = session.sign(path)
    assert result.exit_code == 2
    expected = f"cannot read transaction file {path}: not UTF-8 text" if message is None else message
    assert one_error_line(result) == f"Error: {expected}\n"
    assert session.rows() == []
    assert session.counts() == (0, 0)


def test_garbage_bytes_are_refused_and_recorded(session):
    session.limits(per_tx=100_000, daily=1_000_000)
    result = session.sign(session.b64_file(b"\x00\x01\x02"))
    assert result.exit_code == 2
    assert one_error_line(result).startswith("Error: not a transaction (")
    (row,) = session.rows()
    assert row["status"] == "rejected" and row["rejection_reason"].startswith("invalid_tx: not a transaction")
    assert row["signature"] is None
    assert session.counts() == (0, 1)


def test_missing_file_exits_2(session):
    path = session.tmp_path / "missing.b64"
    result = session.sign(path)
    assert result.exit_code == 2
    assert one_error_line(result) == f"Error: cannot read transaction file {path}: No such file or directory\n"


def test_wrong_secret_exits_7_and_signs_nothing(session):
    session.limits(per_tx=100_000, daily=1_000_000)
    path = session.b64_file(session.message(1000))
    for env in ({"SIGNER_SHARED_SECRET": "x" * 32}, {"SIGNER_SHARED_SECRET": "y" * 64}):
        result = session.sign(path, env=env)
        assert result.exit_code == 7
        assert one_error_line(result) == "Error: hmac does not match the request; check the shared secret\n"
    other = session.file("z" * 64 + "\n", name="other-secret")
    other.chmod(0o600)
    assert session.sign(path, "--secret-file", other).exit_code == 7
    assert session.rows() == []
    assert session.spent() == 0


def _unwritable_paths(tmp_path):
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("")
    os.mkfifo(tmp_path / "a-fifo")
    paths = [
        (tmp_path / "missing-dir" / "out.b64", "No such file or directory"),
        (tmp_path / "a-directory", "Is a directory"),
        (tmp_path / "a-file" / "out.b64", "Not a directory"),
        (tmp_path / "a-fifo", "No such device or address"),  # no reader: refused, not a hang
    ]
    # Permission bits do not tell: root passes os.access(W_OK) on this file, yet cannot open it for writing.
    notes = Path("/sys/kernel/notes")
    if os.access(notes, os.W_OK):
        paths.append((notes, "Permission denied"))
    return paths


def test_out_to_an_unwritable_path_exits_2_before_signing(session):
    session.limits(per_tx=100_000, daily=1_000_000)
    path = session.b64_file(session.message(1000))
    for out, reason in _unwritable_paths(session.tmp_path):
        result = session.sign(path, "--out", out)
        assert result.exit_code == 2, (out, result.stderr)
        assert one_error_line(result) == f"Error: cannot write --out {out}: {reason}\n"
    assert session.rows() == []
    assert session.spent() == 0
    assert session.counts() == (0, 0)
    assert not (session.tmp_path / "missing-dir").exists()


def test_out_check_leaves_no_file_when_signing_is_refused(session):
    out = session.tmp_path / "signed.b64"
    result = session.sign(session.b64_file(session.message(1000)), "--out", out)  # no limits: refused
    assert result.exit_code == 5
    assert not out.exists()
    existing = session.tmp_path / "keep.b64"
    existing.write_text("previous\n")
    assert session.sign(session.b64_file(session.message(1000)), "--out", existing).exit_code == 5
    assert existing.read_text() == "previous\n"


def test_tx_list_shows_the_signed_and_the_rejected_rows(session):
    session.limits(per_tx=10_000, daily=1_000_000)
    signed = session.sign(session.b64_file(session.message(1000)), "--purpose", "pay invoice 42", "--json").json()
    refused = session.sign(session.b64_file(session.message(50_000)), "--purpose", "too much")
    assert refused.exit_code == 5

    rejected_row, signed_row = session.rows()  # newest first
    assert signed_row["id"] == signed["transaction_id"]
    assert (signed_row["status"], signed_row["purpose"], signed_row["signature"]) == (
        "signed", "pay invoice 42", signed["signature"]
    )
    assert (signed_row["lamports"], signed_row["fee_lamports"], signed_row["rejection_reason"]) == (1000 + FEE, FEE, None)
    assert signed_row["peer_uid"] == os.getuid()
    assert (rejected_row["status"], rejected_row["purpose"], rejected_row["signature"]) == ("rejected", "too much", None)
    assert rejected_row["rejection_reason"] == (
        "per_tx_limit_exceeded: this transaction spends 55000 lamports (0.000055 SOL), above the "
        "per-transaction limit of 10000 lamports (0.00001 SOL)"
    )
    assert rejected_row["lamports"] == 50_000 + FEE
    shown = session.cli("tx", "show", signed["signature"], "--json").json()
    assert shown["id"] == signed["transaction_id"]


# -- sign-message ----------------------------------------------------------------------------


def envelope(text: str, fmt: int) -> bytes:
    """The off-chain message header `solana sign-offchain-message` signs (version 0)."""
    body = text.encode("utf-8")
    return b"\xffsolana offchain" + bytes([0, fmt]) + len(body).to_bytes(2, "little") + body


@pytest.mark.parametrize("text, fmt", [("I control this wallet", 0), ("J'envoie 1 SOL \u2713", 1)])
def test_sign_message_text(session, text, fmt):
    session.limits(per_tx=100_000, daily=1_000_000)
    result = session.sign_message(text, "--json", "--purpose", "prove ownership")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert set(data) == {"signature", "signed_message", "request_id", "wallet", "transaction_id"}
    signed_message = base64.b64decode(data["signed_message"])
    assert signed_message == envelope(text, fmt)
    verify(session.wallet, signed_message, data["signature"])
    assert data["wallet"] == session.wallet
    (row,) = session.rows()
    assert (row["id"], row["status"], row["lamports"], row["purpose"], row["signature"]) == (
        data["transaction_id"], "signed", 0, "prove ownership", data["signature"]
    )
    assert session.spent() == 0


def test_sign_message_from_a_file(session):
    session.limits(per_tx=100_000, daily=1_000_000)
    path = session.file("agent 7 owns this wallet", name="message.txt")
    result = session.sign_message("--file", path)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    verify(session.wallet, envelope("agent 7 owns this wallet", 0), result.stdout.removesuffix("\n"))


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "give the text to sign, or --file PATH"),
        (("hello", "--file", "message.txt"), "give the text or --file, not both"),
    ],
    ids=["neither", "both"],
)
def test_sign_message_needs_exactly_one_source(session, args, message):
    session.limits(per_tx=100_000, daily=1_000_000)
    session.file("hello", name="message.txt")
    result = session.sign_message(*[str(session.tmp_path / a) if a == "message.txt" else a for a in args])
    assert result.exit_code == 2
    assert one_error_line(result) == f"Error: {message}\n"
    assert session.rows() == []


def test_sign_message_missing_file(session):
    path = session.tmp_path / "missing.txt"
    result = session.sign_message("--file", path)
    assert result.exit_code == 2
    assert one_error_line(result) == f"Error: cannot read message file {path}: No such file or directory\n"


# -- operator experience (issue 11) ------------------------------------------------------------


def test_a_secret_file_named_in_the_secret_variable_is_refused(session):
    """SIGNER_SHARED_SECRET holds the secret itself; a path there used to become the key."""
    session.limits(per_tx=100_000, daily=1_000_000)
    secret_file = session.socket.parent / "secret"
    result = session.sign(session.b64_file(session.message(1000)), env={"SIGNER_SHARED_SECRET": str(secret_file)})
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "Error: SIGNER_SHARED_SECRET names an existing file, but it must hold the secret itself; give the file "
        "with --secret-file PATH (or secret_file= in Python) and unset SIGNER_SHARED_SECRET\n"
    )
    assert session.rows() == []


def test_secret_file_option_wins_over_the_environment(session):
    session.limits(per_tx=100_000, daily=1_000_000)
    secret_file = session.socket.parent / "secret"
    message = session.message(1000)
    result = session.sign(session.b64_file(message), "--secret-file", secret_file, env={"SIGNER_SHARED_SECRET": "w" * 40})
    assert result.exit_code == 0, result.stderr
    verify(session.wallet, message, result.stdout.strip())


def test_every_secret_file_help_says_the_variable_holds_the_secret_itself():
    import click
    import typer

    from jarvis_wallet.cli import app

    root = typer.main.get_command(app)
    found = []
    for name in ("sign", "sign-message", "signer start", "signer serve", "signer status"):
        command = root
        for part in name.split():
            command = command.commands[part]
        option = next(p for p in command.params if isinstance(p, click.Option) and "--secret-file" in p.opts)
        found.append(option.help)
    assert all("$SIGNER_SHARED_SECRET, which holds the secret itself (not a path)" in text for text in found), found


def test_out_that_fails_after_signing_prints_the_signature_and_exits_10(session):
    """/dev/full opens for writing (the check passes) and then fails the write: ENOSPC."""
    session.limits(per_tx=100_000, daily=1_000_000)
    message = session.message(1000)
    path = session.b64_file(message)
    result = session.sign(path, "--out", "/dev/full")
    assert result.exit_code == 10
    signature, signed_b64 = result.stdout.splitlines()
    verify(session.wallet, message, signature)
    assert base64.b64decode(signed_b64) == b"\x01" + base58.b58decode(signature) + message
    [row] = session.rows()
    assert result.stderr == (
        f"Error: signed (transaction {row['id']}), but cannot write --out /dev/full: No space left on device; "
        "the signature and the signed transaction are on stdout, and signing the same transaction again returns "
        "them without counting it twice\n"
    )
    as_json = session.sign(path, "--out", "/dev/full", "--json")
    assert as_json.exit_code == 10
    data = as_json.json()
    assert set(data) == SIGN_KEYS | {"ok", "reason", "message", "exit_code"}
    assert (data["ok"], data["reason"], data["signature"], data["duplicate"]) == (False, "output_not_written", signature, True)
    assert session.spent() == 1000 + FEE  # counted once


def test_json_refusal_prints_one_object_with_the_reason_and_the_numbers(session):
    session.limits(per_tx=5_000, daily=1_000_000)
    result = session.sign(session.b64_file(session.message(7_000)), "--json")
    assert result.exit_code == 5
    data = result.json()
    assert data == {
        "ok": False, "reason": "per_tx_limit_exceeded", "exit_code": 5, "message": data["message"],
        "wallet": session.wallet, "lamports": 7_000 + FEE, "fee_lamports": FEE,
    }
    assert "12000 lamports" in data["message"]
    assert result.stderr.startswith("Error: refused (per_tx_limit_exceeded): ")


@pytest.mark.parametrize("purpose, complaint", [("line one\nline two", "field 'purpose' contains control"),
                                                ("p" * 513, "field 'purpose' is longer than 512 characters")])
def test_a_purpose_the_signer_would_refuse_is_bad_input_before_any_signer(cli, tmp_path, purpose, complaint):
    path = tmp_path / "tx.b64"
    path.write_text(base64.b64encode(transfer_message(from_key=bytes([7]) * 32, lamports=1)).decode())
    nobody = tmp_path / "no-signer" / "signer.sock"
    for command in (("sign", path), ("sign-message", "hello")):
        result = cli(*command, "--purpose", purpose, "--socket", nobody)
        assert result.exit_code == 2, result.stderr
        assert one_error_line(result).startswith(f"Error: {complaint}")


@pytest.mark.parametrize("text, complaint", [("", "field 'message' is empty"),
                                             ("m" * 1213, "field 'message' is 1213 bytes of UTF-8; at most 1212")])
def test_a_message_the_signer_would_refuse_is_bad_input(cli, tmp_path, text, complaint):
    result = cli("sign-message", text, "--socket", tmp_path / "no-signer" / "signer.sock")
    assert result.exit_code == 2
    assert one_error_line(result) == f"Error: {complaint}\n"


def test_a_duplicate_sign_says_so_in_human_output(session):
    session.limits(per_tx=100_000, daily=1_000_000)
    path = session.b64_file(session.message(1000))
    first = session.sign(path, "--purpose", "coffee")
    assert (first.exit_code, first.stderr) == (0, "")
    again = session.sign(path, "--purpose", "tea")
    assert again.exit_code == 0 and again.stdout == first.stdout
    signed, resign = sorted(session.rows(), key=lambda row: row["id"])
    assert (signed["status"], signed["purpose"]) == ("signed", "coffee")
    # The new request is recorded too, with its own purpose, naming the signed row (issue 11).
    assert (resign["status"], resign["purpose"], resign["duplicate_of"]) == ("duplicate", "tea", signed["id"])
    assert again.stderr == (
        f"Note: already signed at {signed['created_at'].replace('Z', '')}Z (transaction {signed['id']}): this is the "
        f"recorded signature, and nothing more was counted against the limits; see `jarvis-wallet tx show {signed['id']}`\n"
    )


def test_sign_reads_base64_wrapped_at_76_columns(session):
    """What `base64 tx.bin > tx.b64` writes (coreutils wraps at 76) used to be refused."""
    session.limits(per_tx=100_000, daily=1_000_000)
    message = session.message(1000, memo="m" * 120)
    wrapped = subprocess.run(["base64"], input=message, capture_output=True, check=True).stdout.decode()
    assert wrapped.count("\n") >= 3
    result = session.sign(session.file(wrapped))
    assert result.exit_code == 0, result.stderr
    verify(session.wallet, message, result.stdout.strip())


def test_an_off_chain_message_is_listed_as_a_message_and_cannot_be_marked(session):
    session.limits(per_tx=100_000, daily=1_000_000)
    text = "I control this wallet\nsecond line"
    signed = session.sign_message(text, "--json")
    assert signed.exit_code == 0, signed.stderr
    transaction = session.sign(session.b64_file(session.message(1000)), "--json").json()
    message_row, tx_row = session.rows()[1], session.rows()[0]
    assert (message_row["kind"], message_row["message_text"], message_row["lamports"]) == ("message", text, 0)
    assert (tx_row["kind"], tx_row["message_text"], tx_row["id"]) == ("transaction", None, transaction["transaction_id"])
    table = session.cli("tx", "list")
    line = next(line for line in table.stdout.splitlines() if f" {message_row['id']} " in line)
    assert " message " in line and "0 (0 SOL)" not in line  # not a zero-value transaction
    for status in ("submitted", "confirmed", "failed"):
        marked = session.cli("tx", "mark", str(message_row["id"]), "--status", status)
        assert marked.exit_code == 2
        assert marked.stderr == (
            f"Error: transaction {message_row['id']} is an off-chain message: it never goes to the chain, "
            f"so it cannot become {status}\n"
        )
    assert session.cli("tx", "mark", str(tx_row["id"]), "--status", "submitted").exit_code == 0


@pytest.mark.parametrize("command", [("sign", "/dev/zero"), ("inspect", "/dev/zero"), ("sign-message", "--file", "/dev/zero")])
def test_an_endless_input_file_is_refused_not_read_forever(cli, tmp_path, command):
    result = cli(*command, *(["--socket", tmp_path / "nobody.sock"] if command[0] != "inspect" else []))
    assert result.exit_code == 2
    assert one_error_line(result).endswith("/dev/zero is larger than 64 KiB\n")
