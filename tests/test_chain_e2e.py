"""The chain, end to end: a real forked signer, a real database (SQLite and PostgreSQL), the CLI
in-process, and a real HTTP JSON-RPC endpoint backed by LiteSVM (tests/rpc_server.py), so
balances, fees, failures and blockhash expiry are the runtime's own.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from rpc_server import RpcServer
from runtime import SOL

FEE = 5000


def one_error_line(result) -> str:
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


class World:
    """One signer, one endpoint, the CLI pointed at both."""

    def __init__(self, signers, cli, tmp_path, rpc: RpcServer) -> None:
        self.signers, self._cli, self.tmp_path, self.rpc = signers, cli, tmp_path, rpc
        self.handle = signers.start()
        rpc.start()  # after the fork: a signer must not inherit the endpoint's listening socket
        self.wallet = self.handle.public_key
        self.url = signers.database_url
        self._files = 0
        assert self.cli("config", "set", "rpc_url", rpc.url).exit_code == 0
        assert self.cli("config", "set", "wallet_public_key", self.wallet).exit_code == 0

    def cli(self, *args, **kwargs):
        return self._cli(*args, url=self.url, **kwargs)

    def limits(self, per_tx: int, daily: int) -> None:
        assert self.cli("limits", "set", "--per-tx", per_tx, "--daily", daily).exit_code == 0

    def remaining(self) -> int:
        result = self.cli("limits", "show", "--wallet", self.wallet, "--json")
        assert result.exit_code == 0, result.stderr
        return result.json()["remaining_24h_lamports"]

    def build(self, lamports: int, to: str | None = None, *extra) -> str:
        """build-transfer with the blockhash fetched from the endpoint (the default); the file."""
        to = to or str(Keypair().pubkey())
        result = self.cli("build-transfer", "--from", self.wallet, "--to", to, "--amount", lamports, "--json", *extra)
        assert result.exit_code == 0, result.stderr
        self._files += 1
        path = self.tmp_path / f"tx{self._files}.b64"
        path.write_text(result.json()["message_base64"])
        return str(path)

    def build_offline(self) -> str:
        """A transfer built with --blockhash given: no endpoint asked."""
        result = self.cli("build-transfer", "--from", self.wallet, "--to", str(Keypair().pubkey()), "--amount", 7,
                          "--blockhash", str(Keypair().pubkey()))
        assert result.exit_code == 0, result.stderr
        path = self.tmp_path / "offline.b64"
        path.write_text(result.stdout)
        return str(path)

    def send(self, path: str, *args):
        return self.cli("send", path, "--socket", self.handle.socket_path, "--json", *args)

    def show(self, tx_id) -> dict:
        result = self.cli("tx", "show", tx_id, "--json")
        assert result.exit_code == 0, result.stderr
        return result.json()


@pytest.fixture
def rpc():
    server = RpcServer()
    yield server
    server.stop()


@pytest.fixture
def world(signers, cli, tmp_path, rpc):
    return World(signers, cli, tmp_path, rpc)


def test_build_with_a_fetched_blockhash_send_and_confirm(world):
    world.limits(SOL, 2 * SOL)
    world.rpc.chain.fund(Pubkey.from_string(world.wallet), 3 * SOL)
    recipient = str(Keypair().pubkey())
    built = world.cli("build-transfer", "--from", world.wallet, "--to", recipient, "--amount", "0.25SOL", "--json")
    assert built.exit_code == 0, built.stderr
    assert built.json()["blockhash"] == str(world.rpc.chain.blockhash)
    assert built.json()["last_valid_block_height"] == world.rpc.block_height + 150
    path = world.tmp_path / "pay.b64"
    path.write_text(built.json()["message_base64"])

    result = world.send(str(path), "--wait", "--purpose", "invoice 7")
    assert result.exit_code == 0, result.stderr
    sent = result.json()
    assert sent["status"] == "confirmed" and sent["released_lamports"] == 0
    assert sent["last_valid_block_height"] == built.json()["last_valid_block_height"]
    assert world.rpc.chain.balance(Pubkey.from_string(recipient)) == SOL // 4  # the runtime moved it
    assert world.rpc.chain.balance(Pubkey.from_string(world.wallet)) == 3 * SOL - SOL // 4 - FEE
    row = world.show(sent["transaction_id"])
    assert row["status"] == "confirmed" and row["signature"] == sent["signature"] and row["confirmed_at"]
    assert row["last_valid_block_height"] == sent["last_valid_block_height"]
    assert row["releases"] == []
    assert world.remaining() == 2 * SOL - SOL // 4 - FEE  # confirmed: counted in full

    balance = world.cli("balance", "--json")
    assert balance.exit_code == 0 and balance.json()["lamports"] == 3 * SOL - SOL // 4 - FEE


def test_a_failing_transaction_ends_failed_with_the_real_fee_counted(world):
    world.limits(SOL, 2 * SOL)
    world.rpc.chain.fund(Pubkey.from_string(world.wallet), SOL // 10)  # too little for the transfer
    before = world.rpc.chain.balance(Pubkey.from_string(world.wallet))
    path = world.build(SOL // 2)

    refused = world.send(path)  # preflight simulation refuses it: nothing lands
    assert refused.exit_code == 12, refused.stderr
    assert "insufficient" in refused.json()["rpc_error_data"]["logs"][1]
    assert world.rpc.chain.balance(Pubkey.from_string(world.wallet)) == before
    tx_id = refused.json()["transaction_id"]
    assert world.show(tx_id)["status"] == "signed"  # signed and counted until proven otherwise

    result = world.send(path, "--wait", "--skip-preflight")  # the same message: the recorded signature
    assert result.exit_code == 13, result.stderr
    sent = result.json()
    charged = before - world.rpc.chain.balance(Pubkey.from_string(world.wallet))
    assert charged == FEE  # what the runtime took: the fee only
    assert sent["status"] == "failed" and sent["chain_fee_lamports"] == charged
    assert sent["released_lamports"] == SOL // 2 + FEE - charged
    row = world.show(tx_id)
    assert row["status"] == "failed" and row["chain_fee_lamports"] == charged
    assert "InstructionError" in row["rejection_reason"]
    (release,) = row["releases"]
    assert release["reason"] == "failed" and release["amount"] == SOL // 2
    assert release["evidence"]["fee"] == FEE and "uid" in release["released_by"]
    assert world.remaining() == 2 * SOL - charged  # only the fee still counts


def test_an_unsent_transaction_expires_and_the_headroom_comes_back(world):
    world.limits(SOL, SOL)
    world.rpc.chain.fund(Pubkey.from_string(world.wallet), 3 * SOL)
    path = world.build(SOL - FEE)
    signed = world.cli("sign", path, "--socket", world.handle.socket_path, "--json")  # signed, never sent
    assert signed.exit_code == 0, signed.stderr
    assert world.remaining() == 0
    over = world.cli("sign", world.build(1), "--socket", world.handle.socket_path)
    assert over.exit_code == 5  # the window is full

    synced = world.cli("tx", "sync", "--json")
    assert synced.exit_code == 0 and synced.json()["pending"] == 1 and synced.json()["expired"] == 0
    world.rpc.advance(150)  # the last valid block height itself: still valid
    assert world.cli("tx", "sync", "--json").json()["expired"] == 0
    world.rpc.advance(1)
    synced = world.cli("tx", "sync", "--json")
    assert synced.json()["expired"] == 1 and synced.json()["released_lamports"] == SOL
    again = world.cli("tx", "sync", "--json")  # idempotent: nothing left, nothing released twice
    assert again.json()["checked"] == 0 and again.json()["released_lamports"] == 0
    row = world.show(signed.json()["transaction_id"])
    assert row["status"] == "expired" and len(row["releases"]) == 1
    assert row["releases"][0]["evidence"]["signature_status"] is None
    assert world.remaining() == SOL  # the headroom is back
    # ... and the signer (its kept 24-hour sum) agrees: a full-size payment signs and confirms.
    result = world.send(world.build(SOL - FEE), "--wait")
    assert result.exit_code == 0 and result.json()["status"] == "confirmed", result.stderr
    assert world.remaining() == 0


def test_send_wait_sees_its_own_expiry(world):
    world.limits(SOL, SOL)
    world.rpc.chain.fund(Pubkey.from_string(world.wallet), 3 * SOL)
    path = world.build(SOL // 2)
    world.rpc.advance(151)  # the blockhash is gone before it is sent
    result = world.send(path, "--wait", "--skip-preflight")
    assert result.exit_code == 13
    assert result.json()["status"] == "expired" and result.json()["released_lamports"] == SOL // 2 + FEE
    assert world.remaining() == SOL


@pytest.mark.parametrize("fault", ["down", "slow", "429", "500", "garbage", "wrong_shape"])
def test_endpoint_faults_give_one_line_and_change_nothing(world, fault):
    world.limits(SOL, SOL)
    world.rpc.chain.fund(Pubkey.from_string(world.wallet), 3 * SOL)
    path = world.build(SOL // 4)
    signed = world.cli("sign", path, "--socket", world.handle.socket_path, "--json")
    world.rpc.advance(151)
    world.rpc.slow_seconds = 2.0
    world.rpc.set_fault(fault)
    timeout = ("--rpc-timeout", "0.5")
    for args in (("balance", *timeout), ("blockhash", *timeout), ("tx", "sync", *timeout),
                 ("send", world.build_offline(), "--socket", world.handle.socket_path, *timeout)):
        result = world.cli(*args)
        assert result.exit_code == 11, (args, result.stderr)
        line = one_error_line(result)
        assert "RPC endpoint http://127.0.0.1:" in line
    world.rpc.set_fault(None)
    rows = world.cli("tx", "list", "--json").json()
    assert [r["status"] for r in rows] == ["signed"]  # the failed send signed nothing
    assert world.remaining() == SOL - SOL // 4 - FEE
    assert world.cli("tx", "sync", "--json").json()["expired"] == 1  # back up: settles
    assert world.show(signed.json()["transaction_id"])["status"] == "expired"


def test_no_endpoint_is_a_clear_error(signers, cli):
    url = signers.database_url
    result = cli("balance", "--wallet", str(Keypair().pubkey()), url=url)
    assert result.exit_code == 2
    assert "no Solana RPC endpoint: pass --rpc-url URL or run `jarvis-wallet config set rpc_url URL`" in one_error_line(result)
    built = cli("build-transfer", "--from", str(Keypair().pubkey()), "--to", str(Keypair().pubkey()), "--amount", "1", url=url)
    assert built.exit_code == 2 and "--blockhash" in one_error_line(built)


def test_rpc_url_flag_wins_over_the_setting(world):
    other = RpcServer().start()
    try:
        other.advance(7)
        result = world.cli("blockhash", "--rpc-url", other.url, "--json")
        assert result.json()["blockhash"] == str(other.chain.blockhash) != str(world.rpc.chain.blockhash)
    finally:
        other.stop()


def test_sync_batches_and_two_syncs_at_once_release_once(world):
    world.limits(SOL, 10 * SOL)
    world.rpc.chain.fund(Pubkey.from_string(world.wallet), 3 * SOL)
    from jarvis_wallet.client import SignerClient

    from jarvis_wallet.solana import build_transfer_message
    from jarvis_wallet.solana.pubkey import decode_pubkey

    world.build(1000)  # fetches (and records) the blockhash all of them use
    blockhash = decode_pubkey(str(world.rpc.chain.blockhash))
    with SignerClient(world.handle.socket_path) as client:
        for _ in range(300):
            message = build_transfer_message(
                from_pubkey=decode_pubkey(world.wallet), to_pubkey=bytes(Keypair().pubkey()), lamports=1000,
                recent_blockhash=blockhash,
            )
            client.sign_transaction(message)
    world.rpc.advance(151)
    command = [sys.executable, "-m", "jarvis_wallet", "--database-url", world.url, "tx", "sync", "--json"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err for _, err in outputs]
    reports = [json.loads(out) for out, _ in outputs]
    assert sum(r["expired"] for r in reports) == 300
    assert sum(r["released_lamports"] for r in reports) == 300 * (1000 + FEE)
    assert all(len(params[0]) <= 256 for params in world.rpc.method_calls("getSignatureStatuses"))
    assert max(len(params[0]) for params in world.rpc.method_calls("getSignatureStatuses")) == 256
    assert world.remaining() == 10 * SOL  # 1,000 + 5,000 released once each


def test_human_output_and_hand_marking(world):
    world.limits(SOL, SOL)
    world.rpc.chain.fund(Pubkey.from_string(world.wallet), 3 * SOL)
    path = world.build(SOL // 10)
    sent = world.cli("send", path, "--socket", world.handle.socket_path, "--wait")
    assert sent.exit_code == 0, sent.stderr
    signature = sent.stdout.strip()
    assert world.rpc.landed[signature]["err"] is None  # the signature printed is the one that landed
    assert "confirmed in slot" in sent.stderr
    assert world.cli("tx", "show", signature).exit_code == 0

    unsent = world.cli("sign", world.build(SOL // 10), "--socket", world.handle.socket_path, "--json").json()
    refused = world.cli("tx", "mark", unsent["transaction_id"], "--status", "expired")
    assert refused.exit_code == 2
    assert "only on proof from the chain: run `jarvis-wallet tx sync`" in one_error_line(refused)
    world.rpc.advance(151)
    synced = world.cli("tx", "sync")
    assert synced.exit_code == 0
    assert synced.stdout.startswith("Checked 1: 0 confirmed, 0 failed, 1 expired, 0 not proven yet; 100,005,000")


def test_a_blockhash_fetched_elsewhere_cannot_be_proven_expired(world):
    world.limits(SOL, SOL)
    world.rpc.chain.fund(Pubkey.from_string(world.wallet), 3 * SOL)
    blockhash = str(world.rpc.chain.blockhash)  # never fetched through jarvis-wallet
    built = world.cli("build-transfer", "--from", world.wallet, "--to", str(Keypair().pubkey()), "--amount", 1000,
                      "--blockhash", blockhash)
    path = world.tmp_path / "elsewhere.b64"
    path.write_text(built.stdout)
    assert world.cli("sign", path, "--socket", world.handle.socket_path).exit_code == 0
    world.rpc.advance(151)
    synced = world.cli("tx", "sync")
    assert synced.exit_code == 0 and "0 expired, 1 not proven yet" in synced.stdout
    assert "cannot be proven expired" in synced.stderr
    world.cli("blockhash")  # the latest, not that one: still unknown
    assert world.cli("tx", "sync", "--json").json()["no_expiry_height"] == 1


def test_send_without_the_database_still_signs_and_sends(world, cli, tmp_path):
    world.limits(SOL, SOL)
    world.rpc.chain.fund(Pubkey.from_string(world.wallet), 3 * SOL)
    path = world.build(SOL // 10)
    elsewhere = f"sqlite://{tmp_path}/absent.db"  # an agent without the operator's database
    result = cli("send", path, "--socket", world.handle.socket_path, "--rpc-url", world.rpc.url, "--wait", "--json",
                 url=elsewhere)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("Note: nothing recorded in the database")
    assert result.json()["status"] == "confirmed"
    assert world.show(result.json()["transaction_id"])["status"] == "signed"  # the operator's sync settles it
    assert world.cli("tx", "sync", "--json").json()["confirmed"] == 1
