"""Drive the real `jarvis-wallet` command through the whole flow, showing each step."""

from __future__ import annotations

import shlex
import subprocess
import sys


def run(*args: str, expect_failure: bool = False) -> str:
    print(f"\n$ jarvis-wallet {shlex.join(args)}", flush=True)
    result = subprocess.run(["jarvis-wallet", *args], text=True, capture_output=True)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if (result.returncode != 0) != expect_failure:
        print(f"demo: unexpected exit code {result.returncode}", file=sys.stderr)
        sys.exit(1)
    if expect_failure:
        print(f"(exit code {result.returncode}, as expected)")
    return result.stdout


def main() -> None:
    wallet = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"  # any public key works for the tour
    run("--version")
    run("init-db")
    run("init-db")
    run("config", "set", "rpc_url", "https://api.devnet.solana.com")
    run("config", "set", "wallet_public_key", wallet)
    run("config", "list")
    run("limits", "show", "--wallet", wallet, expect_failure=True)
    run("limits", "set", "--per-tx", "0.5SOL", "--daily", "2SOL", "--notify-above", "0.25 SOL")
    run("limits", "show", "--wallet", wallet, "--json")
    run("limits", "set", "--per-tx", "3SOL", "--daily", "2SOL", expect_failure=True)
    run("tx", "list")
    print("\nDemo finished.")


if __name__ == "__main__":
    main()
