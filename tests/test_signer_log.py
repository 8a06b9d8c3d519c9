"""The signer's JSON-lines log: decisions and lifecycle, rotation, tail and follow."""

from __future__ import annotations

import json
import threading

import pytest

from jarvis_wallet.errors import PolicyDenied
from jarvis_wallet.signer_log import SignerLog, follow, logged, tail
from jarvis_wallet.signing import Peer, SignJob, SignOutcome


def test_a_decision_is_one_line_without_the_purpose_or_the_bytes(tmp_path):
    log = SignerLog(tmp_path / "signer.log")
    outcome = SignOutcome(
        7, "W" * 44, b"s" * 64, b"signed-bytes", 6000, 5000, duplicate=False, tokens=(("M" * 44, "USDC", 2**64 - 1),)
    )

    def refuse(job):
        raise PolicyDenied("over the daily limit", reason="daily_limit_exceeded")

    sign_ok = logged(lambda job: outcome, log)
    sign_refused = logged(refuse, log)
    job = SignJob(request_id="r1", tx_bytes=b"tx-bytes-here", purpose="secret plan", peer=Peer(uid=1000, pid=42))
    assert sign_ok(job) is outcome
    with pytest.raises(PolicyDenied):
        sign_refused(job)
    text = (tmp_path / "signer.log").read_text()
    signed, refused = (json.loads(line) for line in text.splitlines())
    assert {k: signed[k] for k in ("event", "op", "request_id", "transaction_id", "lamports", "peer_uid", "peer_pid")} == {
        "event": "signed", "op": "sign", "request_id": "r1", "transaction_id": 7, "lamports": 6000,
        "peer_uid": 1000, "peer_pid": 42,
    }
    assert signed["tokens"] == [{"mint": "M" * 44, "symbol": "USDC", "amount": str(2**64 - 1)}]
    assert (refused["event"], refused["reason"]) == ("refused", "daily_limit_exceeded")
    assert "secret plan" not in text and "tx-bytes" not in text and "signed-bytes" not in text


def test_the_log_rotates_and_tail_reads_the_end(tmp_path):
    path = tmp_path / "signer.log"
    log = SignerLog(path, max_bytes=2000)
    for index in range(100):
        log.event("tick", index=index)
    assert path.with_name("signer.log.1").exists()
    assert path.stat().st_size < 2100
    last = [json.loads(line)["index"] for line in tail(path, 3)]
    assert last == [97, 98, 99]
    assert tail(tmp_path / "missing.log", 3) == []


def test_follow_yields_lines_written_after_it_started(tmp_path):
    path = tmp_path / "signer.log"
    log = SignerLog(path)
    log.event("before")
    seen: list[str] = []
    lines = follow(path, poll_seconds=0.01)

    def read_two():
        for line in lines:
            seen.append(json.loads(line)["event"])
            if len(seen) == 2:
                return

    reader = threading.Thread(target=read_two, daemon=True)
    reader.start()
    import time

    time.sleep(0.1)
    log.event("after-1")
    log.event("after-2")
    reader.join(timeout=5)
    assert seen == ["after-1", "after-2"]
