"""The main job: drive the real `jarvis-wallet` command through the whole flow, showing each step.

init-db, keygen, limits, signer start, build a transfer, sign it, show the
recorded transaction and the remaining allowance, a refused over-limit
transfer, signer stop. Everything runs on the embedded SQLite default, in
the throw-away directory that scripts/demo prepares.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

RECIPIENT = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"  # any address works: nothing is sent
BLOCKHASH = "EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N"  # a placeholder recent blockhash


def run(*args: str, expect_exit: int = 0, stdin: str | None = None) -> str:
    print(f"\n$ jarvis-wallet {shlex.join(args)}", flush=True)
    result = subprocess.run(["jarvis-wallet", *args], text=True, capture_output=True, input=stdin)
    sys.stdout.write(result.stdout)
    sys.stdout.write(result.stderr)
    if result.returncode != expect_exit:
        print(f"demo: expected exit code {expect_exit}, got {result.returncode}", file=sys.stderr)
        sys.exit(1)
    if expect_exit:
        print(f"(exit code {result.returncode}, as expected)")
    return result.stdout


def step(title: str) -> None:
    print(f"\n=== {title}")


def main(workdir: str) -> None:
    keyfile = os.path.join(workdir, "signer-keypair.json")
    step("The database: SQLite in the user's data directory, created and then found up to date")
    run("init-db")
    run("init-db")
    step("A key for the signer (only the signer process will ever read it)")
    wallet = run("keygen", "--outfile", keyfile).strip()
    run("config", "set", "wallet_public_key", wallet)
    step("Without limits the signer would refuse everything; set them")
    run("limits", "set", "--per-tx", "0.5SOL", "--daily", "1SOL", "--notify-above", "0.25 SOL")
    step("Start the signer: a forked process holding the key, reporting readiness")
    run("signer", "start", "--keypair", keyfile, "--detach")
    try:
        run("signer", "status")
        step("An agent builds a transfer of 0.3 SOL and asks for a signature")
        tx = run("build-transfer", "--from", wallet, "--to", RECIPIENT, "--amount", "0.3SOL",
                 "--blockhash", BLOCKHASH, "--memo", "invoice 42").strip()
        run("inspect", "-", "--wallet", wallet, stdin=tx)
        signed = json.loads(run("sign", "-", "--purpose", "pay invoice 42", "--json", stdin=tx))
        step("The signature was recorded before it left the signer")
        run("tx", "show", signed["signature"])
        run("limits", "show", "--wallet", wallet)
        step("A transfer of 0.6 SOL is over the per-transaction limit: refused, and recorded as such")
        big = run("build-transfer", "--from", wallet, "--to", RECIPIENT, "--amount", "0.6SOL",
                  "--blockhash", BLOCKHASH).strip()
        run("sign", "-", "--purpose", "too much", stdin=big, expect_exit=5)
        step("Two more of 0.3 SOL: the second would pass the 1 SOL daily ceiling")
        for amount, code in (("0.3SOL", 0), ("0.4SOL", 5)):
            tx = run("build-transfer", "--from", wallet, "--to", RECIPIENT, "--amount", amount,
                     "--blockhash", BLOCKHASH).strip()
            run("sign", "-", "--purpose", f"another {amount}", stdin=tx, expect_exit=code)
        run("tx", "list")
        run("limits", "show", "--wallet", wallet, "--json")
    finally:
        step("Stop the signer")
        run("signer", "stop")
    print("\nDemo finished: every signature and every refusal is in the audit trail.")


if __name__ == "__main__":
    main(sys.argv[1])
