"""A bounded run of campaigns/soak.py in the suite: 32 clients for about 10 s against live
signers, mixing allowed, refused and malformed requests; the campaign's own verdict (throughput
every window, memory and descriptors flat, signer counters, the accounting check) must be ok.

The long runs and their figures are in docs/reliability.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BACKENDS, POSTGRES_URL

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_short_soak_keeps_every_promise(backend):
    argv = [sys.executable, str(ROOT / "campaigns" / "soak.py"), "--seconds", str(SECONDS), "--window", "2.5", "--json"]
    if backend == "postgresql":
        argv += ["--database-url", POSTGRES_URL]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=SECONDS + 120, cwd=ROOT)
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    assert report["failures"] == [] and report["ok"] is True, report["failures"]
    assert result.returncode == 0
    assert len(report["windows"]) >= 3 and all(w["requests"] > 0 and w["errors"] == 0 for w in report["windows"])
    totals = report["totals"]
    assert totals["signed"] > 0 and totals["refused"] > 0 and totals["malformed"] > 0
    outcomes = report["outcomes"]
    for kind, code in [
        ("over_limit", "per_tx_limit_exceeded"),
        ("program", "program_not_allowed"),
        ("no_limits", "no_limits"),
        ("bad_hmac", "auth_failed"),
        ("garbage", "bad_request"),
        ("bad_base64", "invalid_tx"),
    ]:
        assert outcomes.get(f"{kind}:{code}", 0) > 0, (kind, outcomes)
    accounting = report["accounting"]
    assert accounting["ok"] and accounting["signatures_missing"] == 0
    assert accounting["signatures_accounted"] == accounting["signatures_received"] >= totals["signed"]
    assert all(m["ok"] and m["samples"] >= 4 for m in report["memory"].values())
    assert all(d["ok"] and d["after"] <= d["baseline"] for d in report["descriptors"].values())
