"""Docs move with the code: every command is documented and has an example in --help."""

from pathlib import Path

import pytest
import typer.main

from jarvis_wallet.cli import app

ROOT = Path(__file__).resolve().parent.parent


def _command_paths(command=None, prefix=("jarvis-wallet",)):
    command = command or typer.main.get_command(app)
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        path = prefix + (name,)
        if getattr(sub, "commands", None):
            yield from _command_paths(sub, path)
        else:
            yield path


COMMANDS = list(_command_paths())


def test_there_are_commands():
    assert ("jarvis-wallet", "limits", "set") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p[1:]))
def test_every_command_is_documented(path):
    text = (ROOT / "docs" / "cli.md").read_text()
    assert f"### `{' '.join(path)}`" in text


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p[1:]))
def test_every_command_has_an_example_in_help(cli, path):
    result = cli(*path[1:], "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "jarvis-wallet" in result.stdout


def test_documented_commands_exist():
    import re

    text = (ROOT / "docs" / "cli.md").read_text()
    documented = {tuple(m.split()) for m in re.findall(r"^### `(jarvis-wallet [^`]*)`", text, re.M)}
    assert documented == set(COMMANDS)


def test_every_option_of_signer_start_is_documented():
    """Its options are the signer's settings (budgets, windows, caps): cli.md names each one."""
    text = (ROOT / "docs" / "cli.md").read_text()
    start = typer.main.get_command(app).commands["signer"].commands["start"]
    options = [param.opts[0] for param in start.params if param.opts[0].startswith("--")]
    assert "--free-decision-rate" in options
    assert [option for option in options if f"[{option}" not in text and f"`{option}`" not in text] == []


def test_every_migration_and_audit_column_is_documented():
    from jarvis_wallet.migrations import MIGRATIONS
    from jarvis_wallet.models import WalletTransaction

    text = (ROOT / "docs" / "database.md").read_text()
    assert [m.name for m in MIGRATIONS if f"| `{m.name}` |" not in text] == []
    assert [name for name in WalletTransaction._meta.sorted_field_names if f"`{name}`" not in text] == []


def test_readme_names_the_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    assert "scripts/demo" in readme and "scripts/test" in readme


def test_readme_client_example_runs_against_a_real_signer(signers, monkeypatch, capsys):
    """The README's agent snippet, executed as written against a forked signer."""
    import re

    from conftest import transfer_message

    snippet = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    keypair = signers.keypair()
    signers.set_limits(per_tx=10**6, daily=10**6)
    handle = signers.start()
    monkeypatch.setenv("SIGNER_SOCKET_PATH", str(handle.socket_path))
    sent = []
    exec(snippet, {"message_bytes": transfer_message(from_key=keypair.public_key, lamports=1000), "send": sent.append})
    assert len(sent) == 1 and len(sent[0]) > 64
    exec(snippet, {"message_bytes": transfer_message(from_key=keypair.public_key, lamports=10**6), "send": sent.append})
    assert capsys.readouterr().out == "refused: per_tx_limit_exceeded\n"


def test_every_document_the_readme_links_exists():
    import re

    readme = (ROOT / "README.md").read_text()
    links = set(re.findall(r"\]\((docs/[^)#]+)", readme))
    assert {"docs/cli.md", "docs/protocol.md", "docs/security.md", "docs/performance.md", "docs/reliability.md"} <= links
    assert [link for link in links if not (ROOT / link).is_file()] == []


def test_database_doc_names_the_isolation_level_the_signer_pins():
    from jarvis_wallet.signing import DECISION_ISOLATION_LEVEL

    text = (ROOT / "docs" / "database.md").read_text()
    assert f"BEGIN TRANSACTION ISOLATION LEVEL {DECISION_ISOLATION_LEVEL.upper()}" in text
    assert "## Locking and isolation" in text and "BEGIN IMMEDIATE" in text


# -- docs/protocol.md and the signer agree (issue 18): each test pins one documented behaviour ------


PROTOCOL_DOC = (ROOT / "docs" / "protocol.md").read_text()
PROTOCOL_TEXT = " ".join(PROTOCOL_DOC.split())  # sentences as one line, whatever the wrapping


class _Line:
    """One raw connection to a real signer: write lines, read reply lines."""

    def __init__(self, handle) -> None:
        import socket

        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(handle.socket_path))
        self.buffer = b""

    def ask(self, request) -> dict:
        from jarvis_wallet import protocol

        self.sock.sendall(protocol.encode_frame(request) if isinstance(request, dict) else request)
        return self.read()

    def read(self) -> dict | None:
        import json

        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)


def _secret(handle) -> bytes:
    return Path(handle.info.secret_path).read_bytes().rstrip(b"\n")


def _tx_base64(message: bytes) -> str:
    import base64

    return base64.b64encode(message).decode()


def test_protocol_doc_states_the_signers_connection_defaults():
    from jarvis_wallet import signer

    assert f"(default {signer.DEFAULT_MAX_CONNECTIONS})" in PROTOCOL_TEXT
    assert f"`--connection-wait` seconds (default {signer.DEFAULT_CONNECTION_WAIT_SECONDS:g})" in PROTOCOL_TEXT
    backlog = signer.BACKLOG_PER_CONNECTION * signer.DEFAULT_MAX_CONNECTIONS
    assert f"(default {signer.BACKLOG_PER_CONNECTION} per slot: {backlog})" in PROTOCOL_TEXT
    assert f"`--idle-timeout` seconds (default {signer.DEFAULT_IDLE_TIMEOUT_SECONDS:g})" in PROTOCOL_TEXT
    assert f"at most {signer.REFUSAL_READ_SECONDS:g} second" in PROTOCOL_TEXT
    assert "`busy` is always safe to retry" in PROTOCOL_TEXT


def test_protocol_doc_idle_connections_are_closed_without_a_line(signers):
    """Section 1: closed after the idle timeout, and nothing is written before the close."""
    import time

    signers.set_limits(per_tx=10**6, daily=10**6)
    handle = signers.start(idle_timeout_seconds=0.3)
    idle, half = _Line(handle), _Line(handle)
    half.sock.sendall(b'{"op":"ping",')  # a line must be complete within the timeout too
    started = time.monotonic()
    assert idle.read() is None and half.read() is None  # end of stream, not an error line
    assert idle.buffer == half.buffer == b""
    assert time.monotonic() - started < 5
    assert "closed without a reply" in PROTOCOL_TEXT


def test_protocol_doc_retry_rule_holds_whatever_the_limits_are_now(signers):
    """Section 5.3: the recorded signature, duplicate, the earlier transactionId and signedAt,
    after the limits were lowered or removed; a new message is refused as the limits say."""
    from jarvis_wallet import protocol
    from jarvis_wallet.db import session
    from jarvis_wallet.limits import remove_limits, set_limits
    from jarvis_wallet.models import WalletTransaction

    from conftest import transfer_message

    keypair = signers.keypair()
    wallet = signers.set_limits(per_tx=10**6, daily=10**6)
    handle = signers.start()
    line, secret = _Line(handle), _secret(handle)
    message = transfer_message(from_key=keypair.public_key, lamports=500_000)

    def sign(tx: bytes, purpose: str) -> dict:
        return line.ask(protocol.build_request(secret, op="sign", tx_base64=_tx_base64(tx), purpose=purpose))

    first = sign(message, "pay")
    assert first["ok"] and first["duplicate"] is False
    replies = []
    for change in (lambda: set_limits(wallet, per_tx_lamports=1, daily_lamports=1), lambda: remove_limits(wallet)):
        with session(signers.database_url):
            change()
        replies.append(sign(message, "pay, retried"))
        assert replies[-1]["ok"], replies[-1]
        assert {k: replies[-1][k] for k in ("signature", "transactionId", "signedAt", "lamports")} == {
            k: first[k] for k in ("signature", "transactionId", "signedAt", "lamports")
        }
        assert replies[-1]["duplicate"] is True
    refused = sign(transfer_message(from_key=keypair.public_key, lamports=1000), "new")
    assert refused["error"]["code"] == "no_limits"
    with session(signers.database_url):
        rows = {r["request_id"]: r for r in WalletTransaction.select().dicts()}
    for reply in replies:
        row = rows[reply["requestId"]]
        assert (row["status"], row["duplicate_of"], row["lamports"], row["purpose"]) == (
            "duplicate", first["transactionId"], 0, "pay, retried")
    assert "stops every new signature, not the return of one already released" in PROTOCOL_TEXT

    # sign_message de-duplicates the same way, and says so.
    signers.set_limits(per_tx=10**6, daily=10**6)
    texts = [line.ask(protocol.build_request(secret, op="sign_message", message="hello")) for _ in range(2)]
    assert [t.get("duplicate") for t in texts] == [False, True], texts
    assert texts[0]["signature"] == texts[1]["signature"] and texts[0]["transactionId"] == texts[1]["transactionId"]
    with signers.client(handle) as client:  # and the Python client hands both on
        again = client.sign_message("hello")
        assert (again.duplicate, again.signed_at, again.transaction_id) == (
            True, texts[0]["signedAt"], texts[0]["transactionId"])
        retried = client.sign_transaction(message)
        assert (retried.duplicate, retried.signed_at) == (True, first["signedAt"])


def test_protocol_doc_unauthenticated_ops_are_not_held_to_single_use(signers):
    """Section 3.2: ping and pubkey without hmac: id not remembered, timestamp not checked; with
    hmac, checked like any authenticated request."""
    from jarvis_wallet import protocol

    handle = signers.start()
    line, secret = _Line(handle), _secret(handle)
    request_id = protocol.new_request_id()
    for op in ("ping", "pubkey", "ping"):
        assert line.ask({"op": op, "requestId": request_id})["ok"] is True  # the same id, three times
    assert line.ask({"op": "ping", "requestId": protocol.new_request_id(), "timestamp": 0})["ok"] is True
    stale = protocol.build_request(secret, op="ping", timestamp_ms=0)
    assert line.ask(stale)["error"]["code"] == "stale_request"
    signed = protocol.build_request(secret, op="pubkey")
    assert line.ask(signed)["ok"] is True
    assert line.ask(signed)["error"]["code"] == "replayed_request"
    assert "the only kind of request that is not authenticated" in PROTOCOL_TEXT


def test_protocol_doc_status_counters(signers):
    """Section 4: refused counts refused decisions only; errors counts every error answer by code."""
    from jarvis_wallet import protocol

    from conftest import transfer_message

    keypair = signers.keypair()
    signers.set_limits(per_tx=10_000, daily=10**6)
    handle = signers.start()
    line, secret = _Line(handle), _secret(handle)
    codes = [
        line.ask(protocol.build_request(b"x" * 32, op="sign", tx_base64=_tx_base64(b"\x01")))["error"]["code"],
        line.ask(b"not json\n")["error"]["code"],
        line.ask(dict(protocol.build_request(secret, op="ping"), requestId="nope"))["error"]["code"],
        line.ask(protocol.build_request(secret, op="sign", tx_base64=_tx_base64(b"\x01\x02garbage")))["error"]["code"],
        line.ask(protocol.build_request(
            secret, op="sign", tx_base64=_tx_base64(transfer_message(from_key=keypair.public_key, lamports=10**5))
        ))["error"]["code"],
    ]
    assert codes == ["auth_failed", "bad_request", "bad_request", "invalid_tx", "per_tx_limit_exceeded"]
    status = line.ask(protocol.build_request(secret, op="status"))
    assert status["refused"] == 2  # the unparseable transaction and the policy refusal: decisions
    assert status["errors"] == {"auth_failed": 1, "bad_request": 2, "invalid_tx": 1, "per_tx_limit_exceeded": 1}
    assert status["signed"] == 0


def test_protocol_doc_codes_of_invalid_text_and_an_offchain_envelope_sent_to_sign(signers):
    """Section 3.1: an invalid message or purpose is bad_request; control characters include DEL
    and C1; an off-chain envelope sent to sign is invalid_tx, recorded."""
    from jarvis_wallet import protocol
    from jarvis_wallet.solana import build_offchain_message

    signers.set_limits(per_tx=10**6, daily=10**6)
    handle = signers.start()
    line, secret = _Line(handle), _secret(handle)

    def code(**fields) -> str:
        op = "sign_message" if "message" in fields else "sign"
        request = {"op": op, "requestId": protocol.new_request_id(), "timestamp": protocol.current_time_ms(), **fields}
        reply = line.ask(protocol.sign_request(secret, request))
        return "ok" if reply["ok"] else reply["error"]["code"]

    for bad in ("", "del \x7f", "next line \x85", "nul \x00", "c1 \x9f", "bidi \u202e"):
        assert code(message=bad) == "bad_request", repr(bad)
        if bad:
            assert code(message="fine", purpose=bad) == "bad_request", repr(bad)
    assert code(message="tab\tand\nnewline") == "ok"
    assert code(message="fine", purpose="a tab\t") == "bad_request"
    envelope = build_offchain_message("Sign in to example.com")
    assert code(txBase64=_tx_base64(envelope)) == "invalid_tx"
    assert "U+007F (DEL)" in PROTOCOL_TEXT and "U+0085" in PROTOCOL_TEXT
    assert "an off-chain message envelope (section 3.2) sent to `sign`" in PROTOCOL_TEXT


def test_protocol_doc_refusal_example_is_what_the_signer_writes(initialised_url):
    """Section 8: the refusal example is the signer's own sentence for the situation it names."""
    import base64
    import json
    import re

    from jarvis_wallet import protocol
    from jarvis_wallet.db import session
    from jarvis_wallet.errors import PolicyDenied
    from jarvis_wallet.keys import Keypair
    from jarvis_wallet.limits import set_limits
    from jarvis_wallet.models import WalletTransaction, utc_now
    from jarvis_wallet.signing import SignJob, SigningService

    examples = dict(re.findall(r"<!-- example: ([\w-]+) -->\n```\w*\n(.*?)\n```", PROTOCOL_DOC, re.S))
    fields = json.loads(examples["sign-fields"])
    keypair = Keypair.from_seed(bytes(range(1, 33)))
    with session(initialised_url):
        set_limits(keypair.public_key_base58, per_tx_lamports=5_000_000, daily_lamports=5_000_000)
        WalletTransaction.create(  # 4,600,000 already spent in the last 24 hours
            request_id="earlier", wallet=keypair.public_key_base58, status="signed", lamports=4_600_000,
            fee_lamports=5_000, message_sha256="0" * 64, signature="earlier-signature",
            created_at=utc_now(), updated_at=utc_now(),
        )
    service = SigningService(keypair=keypair, database_url=initialised_url)
    try:
        with pytest.raises(PolicyDenied) as refused:
            service.sign(SignJob(request_id=fields["requestId"], tx_bytes=base64.b64decode(fields["txBase64"])))
    finally:
        service.close()
    reply = protocol.error_response(fields["requestId"], refused.value.wire_code, refused.value.message)
    assert protocol.encode_frame(reply) == examples["sign-refusal"].encode() + b"\n"


def test_protocol_doc_fee_formula_and_other_signers_slots(signers):
    """Section 4.1: the fee as the document computes it; another signer's slot comes back as sent."""
    import base64
    import os

    from jarvis_wallet import protocol
    from jarvis_wallet.keys import Keypair
    from jarvis_wallet.solana.build import AccountMeta, Instruction, compile_message
    from jarvis_wallet.solana.programs import COMPUTE_BUDGET_PROGRAM_ID, SYSTEM_PROGRAM_ID

    keypair = signers.keypair()
    signers.set_limits(per_tx=10**6, daily=10**6)
    handle = signers.start()
    other = Keypair.from_seed(os.urandom(32))
    price, limit = 1_001, 300_000
    message = compile_message(
        payer=keypair.public_key,
        instructions=[
            Instruction(COMPUTE_BUDGET_PROGRAM_ID, (), bytes([2]) + limit.to_bytes(4, "little")),
            Instruction(COMPUTE_BUDGET_PROGRAM_ID, (), bytes([3]) + price.to_bytes(8, "little")),
            Instruction(
                SYSTEM_PROGRAM_ID,
                (AccountMeta(other.public_key, True, True), AccountMeta(os.urandom(32), False, True)),
                (2).to_bytes(4, "little") + (1234).to_bytes(8, "little"),
            ),
        ],
        recent_blockhash=os.urandom(32),
    )
    other_signature = other.sign(message)
    transaction = bytes([2]) + bytes(64) + other_signature + message
    reply = _Line(handle).ask(protocol.build_request(_secret(handle), op="sign", tx_base64=_tx_base64(transaction)))
    assert reply["ok"], reply
    expected_fee = 5_000 * 2 + -(-price * limit // 1_000_000)  # 10,000 + ceil(300.3) = 10,301
    assert (reply["feeLamports"], reply["lamports"]) == (expected_fee, expected_fee)  # the transfer is not the wallet's
    signed = base64.b64decode(reply["signedTxBase64"])
    assert signed[1 + 64:1 + 128] == other_signature and signed[1:65] == base64.b64decode(
        base64.b64encode(keypair.sign(message)))
    assert "feeLamports = 5,000 × signatures + ceil(price × limit / 1,000,000)" in PROTOCOL_DOC


def test_readme_using_it_runs_as_written(tmp_path):
    """The README's "Using it" block, run by a shell in a fresh home against the LiteSVM-backed
    endpoint standing in for devnet (funded where the block says so): every command exits 0, and
    the payment it sends lands."""
    import os
    import re
    import subprocess
    import sys

    from solders.pubkey import Pubkey

    from rpc_server import RpcServer

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Using it\n\n[^`]*```sh\n(.*?)```", readme, re.S).group(1)
    assert "build-transfer" in block and "tx.b64" in block and "send tx.b64" in block
    recipient = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"), "XDG_RUNTIME_DIR": str(home / "run"),
    }
    with RpcServer() as rpc:
        script = block.replace("RECIPIENT_PUBKEY", recipient).replace("https://api.devnet.solana.com", rpc.url)
        until_funded, _, rest = script.partition("jarvis-wallet balance")
        runs = [until_funded + "jarvis-wallet balance", 'WALLET="$(jarvis-wallet pubkey signer.json)"\n' + rest]
        outputs = []
        for index, part in enumerate(runs):
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", part], cwd=home, env=env, capture_output=True,
                                    text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout)
            if index == 0:
                wallet = Pubkey.from_string(outputs[0].strip().splitlines()[-1].split(":")[0])
                rpc.chain.fund(wallet, 10**9)
        landed = [s for s, info in rpc.landed.items() if info["err"] is None]
        assert len(landed) == 1 and landed[0] in outputs[1]  # send printed the signature that landed
        assert rpc.chain.balance(Pubkey.from_string(recipient)) == 10**7  # 0.01 SOL arrived
    assert not (home / "run" / "jarvis-wallet" / "signer.sock").exists()  # stopped at the end


def test_every_option_of_build_transfer_is_documented():
    text = (ROOT / "docs" / "cli.md").read_text()
    command = typer.main.get_command(app).commands["build-transfer"]
    options = [param.opts[0] for param in command.params if param.opts[0].startswith("--")]
    assert {"--token", "--no-create", "--allow-owner-off-curve"} <= set(options)
    section = text.split("### `jarvis-wallet build-transfer`", 1)[1].split("\n### ", 1)[0]
    assert [option for option in options if option not in section] == []


def test_the_shipped_systemd_unit_is_the_documented_one_and_checks_health():
    import re
    import shlex

    unit = (ROOT / "contrib" / "systemd" / "jarvis-wallet-signer.service").read_text()
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert f"```ini\n{unit}```" in operations
    assert "LoadCredentialEncrypted=jarvis-wallet-passphrase:" in unit
    assert re.search(r"^ExecStartPost=.*jarvis-wallet signer status", unit, re.M)
    serve = typer.main.get_command(app).commands["signer"].commands["serve"]
    known = {opt for param in serve.params for opt in param.opts}
    exec_start = re.search(r"^ExecStart=(.*?)(?<!\\)$", unit, re.M | re.S).group(1).replace("\\\n", " ")
    used = [word for word in shlex.split(exec_start) if word.startswith("--")]
    assert used and set(used) <= known, set(used) - known


def test_operations_doc_names_every_metric_the_signer_exports(tmp_path):
    import re

    from jarvis_wallet.metrics import SignerMetrics

    # No database: the wallets' gauges are still declared, with no samples.
    metrics = SignerMetrics(database_url=f"sqlite://{tmp_path}/none.db", started_at=0.0,
                            budget_refusals=lambda: 0, locked=lambda: False)
    declared = re.findall(r"^# TYPE (\S+) \w+$", metrics.text().decode(), re.M)
    exported = set(declared)  # counters are declared with their _total name
    text = (ROOT / "docs" / "operations.md").read_text()
    assert len(declared) == 12
    assert [name for name in exported if f"`{name}`" not in text] == []


def test_every_systemd_unit_is_shipped_in_one_place_and_documented():
    units = sorted(path.name for path in (ROOT / "contrib" / "systemd").iterdir())
    assert {"jarvis-wallet-signer.service", "jarvis-wallet-sync.service", "jarvis-wallet-sync.timer"} <= set(units)
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert [unit for unit in units if unit not in operations] == []
    assert not (ROOT / "docs" / "systemd").exists()
    texts = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "jarvis_wallet").rglob("*.py")]
    assert [str(path) for path in texts if "docs/systemd" in path.read_text() or "](systemd/" in path.read_text()] == []
