"""`jarvis-wallet mcp` with approvals (issues 13 and 15): a model's payment above the threshold is
held, the error says how a person approves it, the person approves from the real CLI, the model's
wait_for_approval reports it, and the re-sign with a fresh blockhash gets exactly one signature.

The same real parts as test_mcp_server.py: a forked signer, the MCP server as a subprocess driven
by the SDK's stdio client, the operator's CLI as a process of its own, SQLite and PostgreSQL.
"""

from __future__ import annotations

import anyio
import base58

from test_approvals import BIG, DESTINATION, FEE, THRESHOLD, cli_process, limits_with_threshold, request_row, rows
from test_mcp_server import Wallet, b64, call, verify

from conftest import transfer_message


def test_held_by_the_signer_approved_from_the_cli_waited_for_and_signed_once(signers):
    wallet = Wallet(signers)
    url = wallet.url
    limits_with_threshold(url, wallet.address)

    def payment(lamports: int = BIG) -> bytes:
        # The same payment each time; a fresh random blockhash, as a rebuilt transaction has.
        return transfer_message(from_key=base58.b58decode(wallet.address), lamports=lamports, to_key=DESTINATION)

    found: dict = {}

    async def body(session) -> None:
        is_error, held = await call(session, "sign_transaction", {"transaction_base64": b64(payment()), "purpose": "invoice 42"})
        assert is_error and held["reason"] == "approval_required", held
        approval_id = held["approval_id"]
        found["approval_id"] = approval_id
        assert isinstance(approval_id, int) and held["expires_at"].endswith("Z")
        assert held["approve_command"] == f"jarvis-wallet approvals approve {approval_id}"
        assert held["deny_command"] == f"jarvis-wallet approvals deny {approval_id}"
        assert held["retry"] is False
        assert held["held"]["spend_lamports"] == str(BIG + FEE) and held["held"]["fee_lamports"] == str(FEE)
        assert held["held"]["destinations"] == [base58.b58encode(DESTINATION).decode()]
        assert held["held"]["purpose"] == "invoice 42"
        message = held["message"]
        assert f"`jarvis-wallet approvals approve {approval_id}`" in message and "Do not ask again" in message
        assert "wait_for_approval" in message

        # The wallet's status shows the threshold and what waits for the person.
        is_error, status = await call(session, "wallet_status")
        assert not is_error, status
        assert status["limits"]["approval_threshold_lamports"] == str(THRESHOLD)
        assert [(p["approval_id"], p["spend_lamports"], p["purpose"], p["approve_command"])
                for p in status["pending_approvals"]] == [
            (approval_id, str(BIG + FEE), "invoice 42", held["approve_command"])
        ]

        # Nobody has decided yet: a bounded wait says so, and nothing is signed.
        is_error, pending = await call(session, "wait_for_approval", {"approval_id": approval_id, "timeout_seconds": 1})
        assert is_error and pending["reason"] == "approval_pending", pending
        assert pending["approve_command"] == held["approve_command"]

        # The model waits while the operator approves from the CLI in another process.
        async with anyio.create_task_group() as group:
            waited: dict = {}

            async def wait() -> None:
                waited["result"] = await call(session, "wait_for_approval", {"approval_id": approval_id, "timeout_seconds": 60})

            group.start_soon(wait)
            approved = await anyio.to_thread.run_sync(cli_process, url, "approvals", "approve", str(approval_id))
            assert approved.returncode == 0, approved.stderr
        is_error, state = waited["result"]
        assert not is_error, state
        assert (state["approval_id"], state["state"]) == (approval_id, "approved")

        # The same payment, rebuilt with a fresh blockhash: signed once.
        again = payment()
        is_error, signed = await call(session, "sign_transaction", {"transaction_base64": b64(again), "purpose": "invoice 42"})
        assert not is_error, signed
        verify(wallet.address, again, signed["signature"])
        found["transaction_id"] = signed["transaction_id"]
        # Used: a third build of it is refused, and the model is told not to retry.
        is_error, used = await call(session, "sign_transaction", {"transaction_base64": b64(payment()), "purpose": "invoice 42"})
        assert is_error and used["reason"] == "approval_consumed" and used["approval_id"] == approval_id, used
        assert used["retry"] is False and "each approval signs once" in used["message"]
        is_error, status = await call(session, "wallet_status")
        assert status["pending_approvals"] == []

        # Denied: the wait reports it with the operator's reason, and the payment stays refused.
        other = payment(BIG + 1)
        is_error, held = await call(session, "sign_transaction", {"transaction_base64": b64(other), "purpose": "other"})
        assert is_error and held["reason"] == "approval_required" and held["approval_id"] != approval_id
        denied = await anyio.to_thread.run_sync(
            cli_process, url, "approvals", "deny", str(held["approval_id"]), "--reason", "not our invoice"
        )
        assert denied.returncode == 0, denied.stderr
        is_error, told = await call(session, "wait_for_approval", {"approval_id": held["approval_id"], "timeout_seconds": 30})
        assert is_error and told["reason"] == "approval_denied" and "not our invoice" in told["message"], told
        assert "do not retry" in told["message"]
        is_error, refused = await call(session, "sign_transaction", {"transaction_base64": b64(payment(BIG + 1)), "purpose": "x"})
        assert is_error and refused["reason"] == "approval_denied"

        # Strict arguments: an id must be a positive whole number, the wait bounded.
        for bad in ({"approval_id": 0}, {"approval_id": "7"}, {"approval_id": 7.0}, {"approval_id": 1, "timeout_seconds": 301},
                    {}, {"approval_id": 1, "wait": 5}):
            is_error, error = await call(session, "wait_for_approval", bad)
            assert is_error and error["reason"] == "bad_request", (bad, error)
        is_error, missing = await call(session, "wait_for_approval", {"approval_id": 10**9, "timeout_seconds": 1})
        assert is_error and missing["reason"] == "not_found", missing

    wallet.run(body)
    # Exactly one signature for the approved payment, linked to the grant it consumed.
    signed = [row for row in rows(url, wallet.address) if row.status == "signed"]
    assert [(row.id, row.approval_id, row.lamports) for row in signed] == [
        (found["transaction_id"], found["approval_id"], BIG + FEE)
    ]
    grant = request_row(url, found["approval_id"])
    assert (grant.status, grant.signed_transaction_id) == ("consumed", found["transaction_id"])


def test_a_transfer_held_for_approval_is_sent_once_approved_with_the_same_arguments(signers):
    """transfer: held (nothing sent), the operator approves, the same arguments again build a
    fresh blockhash, the signer consumes the grant, and the runtime moves the payment once."""
    from rpc_server import RpcServer
    from solders.keypair import Keypair
    from solders.pubkey import Pubkey

    wallet = Wallet(signers)
    limits_with_threshold(wallet.url, wallet.address)
    rpc = RpcServer().start()  # after the signer's fork
    try:
        rpc.chain.fund(Pubkey.from_string(wallet.address), 10**9)
        recipient = Keypair().pubkey()
        amount = 2 * BIG  # above the rent-exempt minimum of the new account it creates
        arguments = {"to": str(recipient), "amount": f"{amount} lamports", "purpose": "invoice 43"}

        async def body(session) -> None:
            is_error, held = await call(session, "transfer", arguments)
            assert is_error and held["reason"] == "approval_required", held
            assert "call transfer again with the same arguments" in held["message"]
            assert rpc.chain.balance(recipient) == 0  # nothing was sent
            approved = await anyio.to_thread.run_sync(cli_process, wallet.url, "approvals", "approve", str(held["approval_id"]))
            assert approved.returncode == 0, approved.stderr
            is_error, state = await call(session, "wait_for_approval", {"approval_id": held["approval_id"]})
            assert not is_error and state["state"] == "approved", state
            rpc.advance(5)  # a new blockhash on chain: the rebuilt transfer differs from the held one
            is_error, sent = await call(session, "transfer", arguments)
            assert not is_error and sent["status"] == "confirmed", sent
            is_error, again = await call(session, "transfer", arguments)
            assert is_error and again["reason"] == "approval_consumed", again

        wallet.run(body, "--rpc-url", rpc.url)
        assert rpc.chain.balance(recipient) == amount
    finally:
        rpc.stop()
    signed = [row for row in rows(wallet.url, wallet.address) if row.signature and row.status != "rejected"]
    assert [(row.status, row.lamports, row.approval_id is not None) for row in signed] == [("confirmed", amount + FEE, True)]
