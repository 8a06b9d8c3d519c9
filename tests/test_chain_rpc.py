"""The RPC client against the LiteSVM-backed endpoint, with solana-py's own types as the oracle:
our requests are the ones solders builds, and every answer the test endpoint gives parses with
``solders.rpc.responses`` (so the endpoint the other tests trust speaks the real shapes)."""

from __future__ import annotations

import base64
import json

import pytest
import solders.rpc.responses as responses
from solders.account_decoder import UiAccountEncoding
from solders.commitment_config import CommitmentLevel
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc import requests
from solders.rpc.config import (
    RpcAccountInfoConfig,
    RpcContextConfig,
    RpcSignatureStatusConfig,
    RpcTransactionConfig,
)
from solders.signature import Signature
from solders.transaction_status import UiTransactionEncoding
import solders.system_program as system_program
from solders.account import Account
from solders.token.state import Mint, TokenAccount, TokenAccountState

from jarvis_wallet.chain.rpc import RpcClient, endpoint_label, resolve_rpc_url
from jarvis_wallet.errors import InvalidConfig, RpcBadResponse, RpcUnavailable, TransactionRefused

from rpc_server import RpcServer
from runtime import SOL, sign
from token_chain import TOKEN_PROGRAM


@pytest.fixture
def rpc():
    with RpcServer() as server:
        yield server


def _transfer(server: RpcServer, payer: Keypair, lamports: int, to: Pubkey | None = None) -> bytes:
    instruction = system_program.transfer(
        system_program.TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to or Keypair().pubkey(), lamports=lamports)
    )
    return bytes(sign(Message.new_with_blockhash([instruction], payer.pubkey(), server.chain.blockhash), [payer]))


def _exercise(server: RpcServer) -> dict[str, str]:
    """Call every method once (and sendTransaction's failures); the signatures involved."""
    client = RpcClient(server.url)
    payer = Keypair()
    server.chain.fund(payer.pubkey(), SOL)
    client.get_balance(str(payer.pubkey()))
    client.get_latest_blockhash()
    client.get_block_height()
    client.get_account_info(str(payer.pubkey()))
    client.get_account_info(str(Keypair().pubkey()))
    ok = client.send_transaction(_transfer(server, payer, SOL // 10))
    with pytest.raises(TransactionRefused):
        client.send_transaction(_transfer(server, payer, 10 * SOL))
    failed = client.send_transaction(_transfer(server, payer, 10 * SOL), skip_preflight=True)
    client.get_signature_statuses([ok, failed, str(Signature.default())])
    client.get_transaction(ok)
    client.get_transaction(failed)
    client.get_transaction(str(Signature.default()))
    mint, holder = Keypair().pubkey(), Keypair().pubkey()
    server.chain.put_account(mint, Account(10**7, bytes(Mint(payer.pubkey(), 10**6, 6, True, None)), TOKEN_PROGRAM, False, 0))
    server.chain.put_account(holder, Account(10**7, bytes(
        TokenAccount(mint, payer.pubkey(), 12_500_000, None, TokenAccountState.Initialized, None, 0, None)
    ), TOKEN_PROGRAM, False, 0))
    assert client.get_token_account_balance(str(holder)) == (12_500_000, 6)
    assert client.get_token_account_balance(str(Keypair().pubkey())) is None  # no account: invalid params
    assert client.get_token_account_balance(str(payer.pubkey())) is None  # not a token account
    return {"ok": ok, "failed": failed}


RESPONSE_TYPES = {
    "getBalance": responses.GetBalanceResp,
    "getLatestBlockhash": responses.GetLatestBlockhashResp,
    "getBlockHeight": responses.GetBlockHeightResp,
    "getAccountInfo": responses.GetAccountInfoResp,
    "sendTransaction": responses.SendTransactionResp,
    "getSignatureStatuses": responses.GetSignatureStatusesResp,
    "getTransaction": responses.GetTransactionResp,
    "getTokenAccountBalance": responses.GetTokenAccountBalanceResp,
}


def test_every_answer_of_the_test_endpoint_parses_with_solders(rpc):
    _exercise(rpc)
    seen = set()
    for request, answer in rpc.exchanges:
        method = json.loads(request)["method"]
        parsed = RESPONSE_TYPES[method].from_json(answer.decode())
        error = json.loads(answer).get("error")
        if error is None:
            assert not isinstance(parsed, responses.InvalidParamsMessage), (method, parsed)
            assert "value" in dir(parsed), (method, parsed)
        elif method == "getTokenAccountBalance":  # no token account there, as a validator says it
            assert isinstance(parsed, responses.InvalidParamsMessage), parsed
        else:  # the preflight failure, as solana-py reads it
            assert isinstance(parsed, responses.SendTransactionPreflightFailureMessage), parsed
            assert "insufficient lamports" in " ".join(parsed.data.logs)
        seen.add(method)
    assert seen == set(RESPONSE_TYPES)


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def test_our_requests_are_the_ones_solders_builds(rpc):
    _exercise(rpc)
    confirmed, finalized = CommitmentLevel.Confirmed, CommitmentLevel.Finalized
    by_method = {}
    for request, _ in rpc.exchanges:
        body = json.loads(request)
        by_method.setdefault(body["method"], body)
    key = Pubkey.from_string(by_method["getBalance"]["params"][0])
    signatures = [Signature.from_string(s) for s in by_method["getSignatureStatuses"]["params"][0]]
    expected = {
        "getBalance": requests.GetBalance(key, RpcContextConfig(commitment=confirmed)),
        "getLatestBlockhash": requests.GetLatestBlockhash(RpcContextConfig(commitment=confirmed)),
        "getBlockHeight": requests.GetBlockHeight(RpcContextConfig(commitment=finalized)),
        "getSignatureStatuses": requests.GetSignatureStatuses(signatures, RpcSignatureStatusConfig(True)),
        "getTransaction": requests.GetTransaction(
            Signature.from_string(by_method["getTransaction"]["params"][0]),
            RpcTransactionConfig(UiTransactionEncoding.Json, finalized, 0),
        ),
        "getAccountInfo": requests.GetAccountInfo(key, RpcAccountInfoConfig(UiAccountEncoding.Base64, commitment=confirmed)),
        "getTokenAccountBalance": requests.GetTokenAccountBalance(
            Pubkey.from_string(by_method["getTokenAccountBalance"]["params"][0]), confirmed
        ),
    }
    for method, request in expected.items():
        assert _without_nulls(json.loads(request.to_json())["params"]) == by_method[method]["params"], method
    send = by_method["sendTransaction"]["params"]
    assert send[1] == {"encoding": "base64", "skipPreflight": False, "preflightCommitment": "confirmed"}
    base64.b64decode(send[0], validate=True)


def test_answers_carry_what_the_runtime_did(rpc):
    signatures = _exercise(rpc)
    client = RpcClient(rpc.url)
    ok, failed, unknown = client.get_signature_statuses([signatures["ok"], signatures["failed"], str(Signature.default())])
    assert ok.err is None and ok.reached("finalized")
    assert failed.err == {"InstructionError": [0, {"Custom": 1}]}
    assert unknown is None
    landed = client.get_transaction(signatures["failed"])
    payer = landed.account_keys[0]
    assert landed.fee == 5000 and landed.lamports_lost(payer) == 5000  # a failure costs the fee only
    assert client.get_balance(payer) == SOL - SOL // 10 - 5000 - 5000 == rpc.chain.balance(Pubkey.from_string(payer))


def test_account_info_is_owner_lamports_and_data_or_none(rpc):
    client = RpcClient(rpc.url)
    address = Keypair().pubkey()
    owner = Keypair().pubkey()
    from solders.account import Account

    rpc.chain.put_account(address, Account(123_456, b"\x01\x02mint-ish", owner, False, 0))
    assert client.get_account_info(str(address)) == (bytes(owner), 123_456, b"\x01\x02mint-ish")
    assert client.get_account_info(str(Keypair().pubkey())) is None


def test_latest_blockhash_and_heights_follow_the_chain(rpc):
    client = RpcClient(rpc.url)
    first = client.get_latest_blockhash()
    assert first.last_valid_block_height == client.get_block_height() + 150
    rpc.advance(3)
    second = client.get_latest_blockhash()
    assert second.blockhash != first.blockhash and second.last_valid_block_height == first.last_valid_block_height + 3


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def test_429_and_5xx_are_retried_with_backoff_and_retry_after(rpc):
    sleeps = Sleeps()
    client = RpcClient(rpc.url, sleep=sleeps)
    rpc.set_fault("429", 2)
    assert client.get_block_height() == rpc.block_height
    assert sleeps == [0.0, 0.0]  # the endpoint's Retry-After: 0
    sleeps.clear()
    rpc.set_fault("503", 3)
    assert client.get_block_height() == rpc.block_height
    assert sleeps == [0.25, 0.5, 1.0]
    sleeps.clear()
    rpc.set_fault("500")
    with pytest.raises(RpcUnavailable, match=r"answered HTTP 500 for getBlockHeight after 3 retries$"):
        client.get_block_height()
    assert len(sleeps) == 3


def test_down_slow_and_garbage_are_one_line_errors(rpc):
    client = RpcClient(rpc.url, sleep=lambda s: None, timeout=0.5)
    rpc.slow_seconds = 1.5
    rpc.set_fault("slow", 1)
    with pytest.raises(RpcUnavailable, match=r"did not answer getBlockHeight within 0.5 s$"):
        client.get_block_height()
    rpc.set_fault("garbage", 1)
    with pytest.raises(RpcBadResponse, match=r"answered getBlockHeight with garbage: the answer is not JSON$"):
        client.get_block_height()
    for method in ("get_balance", "get_account_info"):
        rpc.set_fault("wrong_shape", 1)
        with pytest.raises(RpcBadResponse, match=r"^RPC endpoint http://127.0.0.1:\d+ answered get\w+ with garbage: "):
            getattr(client, method)(str(Keypair().pubkey()))
    rpc.set_fault("down")
    with pytest.raises(RpcUnavailable, match=r"cannot be reached \(Connection refused\) for getBlockHeight after 3 retries$"):
        client.get_block_height()


def test_the_endpoint_is_named_without_its_path_or_credentials():
    url = "https://user:secret@rpc.example.com:8443/v1/API-KEY-123?token=abc"
    assert endpoint_label(url) == "https://rpc.example.com:8443"
    assert RpcClient(url).label == "https://rpc.example.com:8443"


def test_endpoint_resolution_order():
    assert resolve_rpc_url("http://flag:1", "http://config:2") == "http://flag:1"
    assert resolve_rpc_url(None, "http://config:2") == "http://config:2"
    with pytest.raises(InvalidConfig, match="no Solana RPC endpoint"):
        resolve_rpc_url(None, None)
    with pytest.raises(InvalidConfig):
        resolve_rpc_url("ftp://x", None)


def test_status_batches_are_bounded_by_the_method_limit(rpc):
    client = RpcClient(rpc.url)
    with pytest.raises(ValueError):
        client.get_signature_statuses([str(Signature.default())] * 257)
    assert client.get_signature_statuses([str(Signature.default())] * 256) == [None] * 256
