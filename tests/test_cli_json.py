"""Every command that takes --json, against a real signer and database: on success its stable
keys, on failure one JSON error object (ok, reason, message, exit_code) and the exit code; never
a traceback."""

from __future__ import annotations

import base64

import base58
import pytest

from conftest import transfer_message
from jarvis_wallet.errors import ApprovalRequired

ERROR_KEYS = {"ok", "reason", "message", "exit_code"}
TX_KEYS = {"id", "request_id", "wallet", "status", "purpose", "lamports", "fee_lamports", "destination_address",
           "message_sha256", "signature", "rejection_reason", "peer_uid", "peer_pid", "created_at", "updated_at",
           "confirmed_at", "kind", "message_text", "above_notify_threshold", "tokens", "approval_id", "last_valid_block_height",
           "chain_fee_lamports"}
SEND_KEYS = {"signature", "transaction_id", "wallet", "lamports", "fee_lamports", "duplicate", "status",
             "last_valid_block_height", "slot", "released_lamports", "released_tokens", "chain_fee_lamports", "error"}
SYNC_KEYS = {"checked", "confirmed", "failed", "expired", "pending", "no_expiry_height", "settled_elsewhere",
             "released_lamports", "released_tokens", "batches", "settled"}
LIMITS_KEYS = {"wallet", "per_tx_lamports", "daily_lamports", "notify_above_lamports", "above_notify_24h",
               "spent_24h_lamports", "remaining_24h_lamports", "updated_at", "tokens", "approve_above_lamports"}
TOKEN_KEYS = {"symbol", "mint", "program", "decimals", "extensions", "allowed_extensions", "created_at"}
TOKEN_LIMITS_KEYS = {"mint", "symbol", "decimals", "per_tx", "per_tx_base_units", "daily", "daily_base_units",
                     "spent_24h", "spent_24h_base_units", "remaining_24h", "remaining_24h_base_units", "updated_at",
                     "approve_above", "approve_above_base_units"}
USDC_MINT = base58.b58encode(bytes(range(2, 34))).decode()
APPROVAL_KEYS = {"approval_id", "wallet", "status", "intent_sha256", "lamports", "fee_lamports", "payments", "destinations",
                 "purpose", "request_id", "peer_uid", "peer_pid", "created_at", "expires_at", "age_seconds", "seconds_left",
                 "decided_at", "decided_by", "decided_by_uid", "note", "consumed_at", "signed_transaction_id", "transactions"}
CONFIG_KEYS = {"key", "value", "description", "updated_at"}
STATUS_KEYS = {"public_key", "pid", "version", "database", "cli_database", "same_database", "uptime_seconds", "signed",
               "refused", "rate_limited", "socket_path", "log_path", "keystore", "locked", "locked_reason",
               "key_ttl_seconds_left", "failed_unlocks", "database_writable", "database_error", "healthy"}
SIGN_KEYS = {"signature", "signed_transaction", "request_id", "wallet", "lamports", "fee_lamports", "transaction_id",
             "duplicate", "tokens"}
START_KEYS = {"public_key", "pid", "socket_path", "secret_path", "pid_path", "detached", "database", "version", "log_path",
              "keystore", "key_ttl_seconds", "metrics_file", "metrics_listen"}
INSPECT_KEYS = {"version", "fee_payer", "signers", "programs", "instructions", "fee_lamports", "spend_lamports", "wallet",
                "decision"}


@pytest.fixture
def world(signers, cli, tmp_path):
    handle = signers.start()
    signers.set_limits(per_tx=100_000, daily=1_000_000)
    url = signers.database_url
    tx = tmp_path / "tx.b64"
    tx.write_text(base64.b64encode(transfer_message(from_key=base58.b58decode(handle.public_key), lamports=1000)).decode())
    big = tmp_path / "big.b64"
    big.write_text(base64.b64encode(transfer_message(from_key=base58.b58decode(handle.public_key), lamports=10**6)).decode())
    cli("config", "set", "wallet_public_key", handle.public_key, url=url)
    # Two payments held for approval (requests 1 and 2), and the file of a third.
    cli("limits", "set", "--approve-above", "50000", url=url)
    held = tmp_path / "held.b64"
    with signers.client(handle) as client:
        client.sign_transaction(base64.b64decode(tx.read_text()))  # transaction 1 stays a signed one
        for lamports in (60_000, 60_001, 60_002):
            message = transfer_message(from_key=base58.b58decode(handle.public_key), lamports=lamports)
            held.write_text(base64.b64encode(message).decode())
            if lamports < 60_002:
                with pytest.raises(ApprovalRequired):
                    client.sign_transaction(message)
    return handle, url, tx, big


def _successes(handle, tx, big, key_path):
    sock = str(handle.socket_path)
    return [
        (("init-db",), dict, {"database", "applied", "schema_version"}),
        (("config", "get", "wallet_public_key"), dict, CONFIG_KEYS),
        (("config", "list"), list, CONFIG_KEYS),
        (("limits", "show", "--wallet", handle.public_key), dict, LIMITS_KEYS),
        (("limits", "show"), list, LIMITS_KEYS),
        (("sign", tx, "--socket", sock), dict, SIGN_KEYS),
        (("sign-message", "hello", "--socket", sock), dict, {"signature", "signed_message", "request_id", "wallet",
                                                            "transaction_id"}),
        (("tx", "list"), list, TX_KEYS),
        (("tx", "show", "1"), dict, TX_KEYS),
        (("signer", "status", "--socket", sock), dict, STATUS_KEYS),
        (("inspect", tx, "--wallet", handle.public_key), dict, INSPECT_KEYS),
        (("config", "set", "x.team", "ops"), dict, CONFIG_KEYS),
        (("config", "unset", "x.team"), dict, {"key", "unset"}),
        (("limits", "set", "--wallet", handle.public_key, "--notify-above", "1"), dict, LIMITS_KEYS),
        (("tokens", "add", "USDC", "--mint", USDC_MINT, "--decimals", "6", "--program", "token"), dict, TOKEN_KEYS),
        (("tokens", "list"), list, TOKEN_KEYS),
        (("limits", "set", "--wallet", handle.public_key, "--token", "USDC", "--per-tx", "1", "--daily", "2"), dict,
         TOKEN_LIMITS_KEYS),
        (("tx", "mark", "1", "--status", "submitted"), dict, TX_KEYS),
        (("keygen", "--outfile", key_path), dict, {"public_key", "path", "encrypted"}),
        (("pubkey", key_path), dict, {"public_key", "path", "encrypted"}),
        (("build-transfer", "--from", handle.public_key, "--to", handle.public_key, "--amount", "1",
          "--blockhash", handle.public_key), dict, {"message_base64", "message_bytes", "blockhash", "last_valid_block_height"}),
        (("nonce", "advance", base58.b58encode(bytes(range(1, 33))).decode(), "--blockhash", handle.public_key,
          "--socket", sock), dict, SIGN_KEYS | {"nonce_account"}),
        (("approvals", "list"), list, APPROVAL_KEYS),
        (("approvals", "show", "1"), dict, APPROVAL_KEYS),
        (("approvals", "approve", "1", "--note", "checked"), dict, APPROVAL_KEYS),
        (("approvals", "deny", "2", "--reason", "unknown"), dict, APPROVAL_KEYS),
    ]


def test_every_json_command_prints_its_stable_keys(world, cli, signers):
    handle, url, tx, big = world
    for args, shape, keys in _successes(handle, tx, big, tx.with_name("new-key.json")):
        result = cli(*args, "--json", url=url)
        assert result.exit_code == 0, (args, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        data = result.json()
        assert isinstance(data, shape), args
        for item in data if isinstance(data, list) else [data]:
            assert keys <= set(item), (args, keys - set(item))


def test_every_json_command_prints_one_error_object_when_it_fails(world, cli, tmp_path):
    handle, url, tx, big = world
    sock = str(handle.socket_path)
    nowhere = str(tmp_path / "nobody" / "signer.sock")
    bad_key = tmp_path / "bad.json"
    bad_key.write_text("[1, 2, 3]")
    bad_key.chmod(0o600)
    failures = [
        (("init-db",), {"url": "mysql://x/y"}, 2, "bad_request"),
        (("config", "get", "x.unset"), {}, 4, "not_found"),
        (("config", "list"), {"url": f"sqlite://{tmp_path}/missing.db"}, 3, "database_unavailable"),
        (("limits", "show", "--wallet", base58.b58encode(bytes(range(32))).decode()), {}, 4, "not_found"),
        (("sign", big, "--socket", sock), {}, 5, "per_tx_limit_exceeded"),
        (("sign", tx, "--socket", nowhere), {}, 6, "signer_unavailable"),
        (("sign-message", "", "--socket", sock), {}, 2, "bad_request"),
        (("tx", "list", "--status", "nope"), {}, 2, "bad_request"),
        (("tx", "show", "999999"), {}, 4, "not_found"),
        (("signer", "status", "--socket", nowhere), {}, 6, "signer_unavailable"),
        (("signer", "start", "--keypair", bad_key, "--socket", nowhere), {}, 9, "internal_error"),
        (("inspect", tmp_path / "missing.b64"), {}, 2, "bad_request"),
        (("config", "set", "rpc_url", "ftp://x"), {}, 2, "bad_request"),
        (("config", "unset", "x.never"), {}, 4, "not_found"),
        (("limits", "set", "--per-tx", "2", "--daily", "1"), {}, 2, "bad_request"),
        (("tokens", "add", "X", "--mint", USDC_MINT), {}, 2, "bad_request"),
        (("tokens", "list"), {"url": f"sqlite://{tmp_path}/missing.db"}, 3, "database_unavailable"),
        (("limits", "set", "--token", "NOPE", "--per-tx", "1", "--daily", "1"), {}, 4, "not_found"),
        (("tx", "mark", "999999", "--status", "submitted"), {}, 4, "not_found"),
        (("keygen", "--outfile", bad_key), {}, 2, "bad_request"),
        (("pubkey", bad_key), {}, 2, "bad_request"),
        (("build-transfer", "--from", "x", "--to", "y", "--amount", "1", "--blockhash", "z"), {}, 2, "bad_request"),
        (("signer", "stop", "--socket", nowhere), {}, 6, "signer_unavailable"),
        (("nonce", "advance", "not-a-key", "--blockhash", handle.public_key, "--socket", sock), {}, 2, "bad_request"),
        (("sign", tx.with_name("held.b64"), "--socket", sock), {}, 5, "approval_required"),
        (("approvals", "list", "--wallet", "x"), {}, 2, "bad_request"),
        (("approvals", "show", "999"), {}, 4, "not_found"),
        (("approvals", "approve", "999"), {}, 4, "not_found"),
        (("approvals", "deny", "999"), {}, 4, "not_found"),
    ]
    for args, kwargs, code, reason in failures:
        result = cli(*args, "--json", url=kwargs.get("url", url))
        assert result.exit_code == code, (args, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        data = result.json()
        assert ERROR_KEYS <= set(data), args
        assert (data["ok"], data["exit_code"], data["reason"]) == (False, code, reason), (args, data)
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


def test_signer_start_json_keys(signers, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    jarvis = Path(sys.executable).with_name("jarvis-wallet")
    key = signers.keypair_file("other.json")
    socket = tmp_path / "other" / "signer.sock"
    argv = [str(jarvis), "--database-url", signers.database_url, "signer"]
    started = subprocess.run(argv + ["start", "--keypair", str(key), "--socket", str(socket), "--detach", "--json"],
                             capture_output=True, text=True, timeout=60)
    try:
        assert started.returncode == 0, started.stderr
        import json

        assert set(json.loads(started.stdout)) == START_KEYS
        stopped = subprocess.run(argv + ["stop", "--socket", str(socket), "--json"], capture_output=True, text=True,
                                 timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        assert set(json.loads(stopped.stdout)) == {"pid", "socket_path", "stopped"}
    finally:
        subprocess.run(argv + ["stop", "--socket", str(socket)], capture_output=True, timeout=60)


def test_the_walks_cover_every_command_that_takes_json():
    import click
    import typer

    from jarvis_wallet.cli import app

    def leaves(command, path=()):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from leaves(sub, path + (name,))
        elif any(p.name == "json_output" for p in command.params):
            yield " ".join(path)

    covered = {"init-db", "config get", "config list", "config set", "config unset", "limits show", "limits set",
               "sign", "sign-message", "tx list", "tx show", "tx mark", "signer status", "signer start", "signer stop",
               "inspect", "keygen", "pubkey", "build-transfer", "nonce advance", "tokens add", "tokens list",
               "keys encrypt", "keys decrypt", "signer lock", "signer unlock", "db backup",
               "approvals list", "approvals show", "approvals approve", "approvals deny",
               "balance", "blockhash", "send", "tx sync"}  # the chain: test_chain_commands_json_keys_and_errors
    assert set(leaves(typer.main.get_command(app))) == covered


def test_chain_commands_json_keys_and_errors(signers, cli, tmp_path):
    from solders.pubkey import Pubkey

    from rpc_server import RpcServer

    handle = signers.start()
    rpc = RpcServer().start()  # after the fork
    try:
        url, sock = signers.database_url, str(handle.socket_path)
        signers.set_limits(per_tx=10**9, daily=10**9)
        cli("config", "set", "wallet_public_key", handle.public_key, url=url)
        rpc.chain.fund(Pubkey.from_string(handle.public_key), 10**9)
        built = cli("build-transfer", "--from", handle.public_key, "--to", base58.b58encode(bytes(range(32))).decode(),
                    "--amount", "0.01SOL", "--rpc-url", rpc.url, url=url)
        tx = tmp_path / "chain.b64"
        tx.write_text(built.stdout)
        successes = [
            (("balance", "--rpc-url", rpc.url), {"wallet", "lamports", "sol", "endpoint", "commitment", "tokens"}),
            (("blockhash", "--rpc-url", rpc.url), {"blockhash", "last_valid_block_height", "slot"}),
            (("send", tx, "--socket", sock, "--rpc-url", rpc.url, "--wait"), SEND_KEYS),
            (("tx", "sync", "--rpc-url", rpc.url), SYNC_KEYS),
        ]
        for args, keys in successes:
            result = cli(*args, "--json", url=url)
            assert result.exit_code == 0, (args, result.stderr)
            assert set(result.json()) == keys, args
        down = "http://127.0.0.1:9"  # discard: nothing listens
        failures = [
            (("balance",), 2, "bad_request"),  # no endpoint configured
            (("balance", "--rpc-url", down, "--rpc-timeout", "1"), 11, "rpc_unavailable"),
            (("blockhash", "--rpc-url", "ftp://x"), 2, "bad_request"),
            (("send", tx, "--socket", sock, "--rpc-url", down), 11, "rpc_unavailable"),
            (("tx", "sync", "--rpc-url", down), 11, "rpc_unavailable"),
        ]
        for args, code, reason in failures:
            result = cli(*args, "--json", url=url)
            assert result.exit_code == code, (args, result.stderr)
            data = result.json()
            assert (data["ok"], data["exit_code"], data["reason"]) == (False, code, reason), (args, data)
            assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    finally:
        rpc.stop()


def test_keystore_lock_and_backup_commands_json(world, cli, tmp_path):
    """keys encrypt/decrypt, signer lock/unlock: stable keys on success, one error object on failure."""
    import os

    handle, url, _, _ = world
    sock = str(handle.socket_path)

    def fd(text: str) -> str:
        path = tmp_path / f"pass-{os.urandom(4).hex()}"
        path.write_text(text)
        return str(os.open(path, os.O_RDONLY))  # the command reads it to EOF and closes it

    plain = tmp_path / "plain.json"
    assert cli("keygen", "--outfile", plain).exit_code == 0
    steps = [
        (("keys", "encrypt", plain, "--out", tmp_path / "k.keystore", "--kdf", "interactive", "--passphrase-fd",
          fd("pw")), 0, {"public_key", "path", "source"}),
        (("keys", "decrypt", tmp_path / "k.keystore", "--out", tmp_path / "back.json", "--yes", "--passphrase-fd",
          fd("pw")), 0, {"public_key", "path", "source"}),
        (("keys", "decrypt", tmp_path / "k.keystore", "--out", tmp_path / "x.json", "--yes", "--passphrase-fd",
          fd("wrong")), 2, "bad_request"),
        (("keys", "encrypt", tmp_path / "missing.json", "--out", tmp_path / "y", "--passphrase-fd", fd("pw")), 2,
         "bad_request"),
        (("signer", "unlock", "--socket", sock, "--passphrase-fd", fd("pw")), 7, "bad_passphrase"),
        (("signer", "lock", "--socket", sock), 0, {"locked", "was_unlocked", "socket_path"}),
        (("signer", "lock", "--socket", str(tmp_path / "nobody.sock")), 6, "signer_unavailable"),
        # SQLite: a copy, then a refusal to overwrite it; PostgreSQL: pointed to pg_dump.
        (("db", "backup", "--to", tmp_path / "backup.db"), *(
            (0, {"database", "path", "pages", "bytes", "transactions"}) if url.startswith("sqlite") else (2, "bad_request")
        )),
        (("db", "backup", "--to", tmp_path / "backup.db"), 2, "bad_request"),
    ]
    for args, code, expected in steps:
        result = cli(*args, "--json", url=url)
        assert result.exit_code == code, (args, result.stderr)
        data = result.json()
        if code == 0:
            assert expected <= set(data), (args, expected - set(data))
        else:
            assert (data["ok"], data["exit_code"], data["reason"]) == (False, code, expected), (args, data)
