"""build-transfer --token with the real registry: tokens add, limits --token, a real signer, and
what LiteSVM moves when the signed bytes run."""

from __future__ import annotations

import base64

from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from jarvis_wallet.solana.associated_token import associated_token_address
from jarvis_wallet.solana.token import TOKEN_PROGRAM_ID
from tests.runtime import SOL
from tests.token_chain import TokenChain

USDC = Pubkey(bytes([91]) * 32)
ISSUER = Pubkey(bytes([92]) * 32)


def ata(owner: Pubkey) -> Pubkey:
    return Pubkey(associated_token_address(bytes(owner), bytes(USDC), TOKEN_PROGRAM_ID))


def test_built_signed_and_executed(signers, cli, tmp_path):
    url = signers.database_url
    wallet = Pubkey(signers.keypair().public_key)
    owner = Pubkey.from_string("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM")  # on the curve
    signers.set_limits(per_tx=SOL, daily=10 * SOL)
    assert cli("tokens", "add", "USDC", "--mint", str(USDC), "--decimals", "6", "--program", "token", url=url).exit_code == 0
    limits = cli("limits", "set", "--wallet", str(wallet), "--token", "USDC", "--per-tx", "20", "--daily", "30", url=url)
    assert limits.exit_code == 0, limits.stderr
    handle = signers.start()
    chain = TokenChain()
    chain.fund(wallet, SOL)
    chain.mint(USDC, authority=ISSUER, decimals=6, supply=10**9)
    chain.token_account(ata(wallet), mint=USDC, owner=wallet, amount=10**9)
    chain.token_account(ata(owner), mint=USDC, owner=owner, amount=0)

    def build(amount, *extra):
        result = cli("build-transfer", "--from", wallet, "--to", owner, "--token", "usdc", "--amount", amount,
                     "--blockhash", chain.blockhash, *extra, url=url)
        assert result.exit_code == 0, result.stderr
        path = tmp_path / f"{amount}{len(extra)}.b64"
        path.write_text(result.stdout)
        return path

    signed = cli("sign", build("12.5", "--no-create"), "--socket", handle.socket_path, "--json", url=url)
    assert signed.exit_code == 0, signed.stderr
    reply = signed.json()
    transaction = VersionedTransaction.from_bytes(base64.b64decode(reply["signed_transaction"]))
    sol_before = chain.balance(wallet)
    execution = chain.execute(transaction)
    assert execution.ok, execution.error
    assert chain.token_state(ata(owner)).amount == 12_500_000 == 10**9 - chain.token_state(ata(wallet)).amount
    assert sol_before - chain.balance(wallet) == reply["lamports"] == execution.fee
    assert reply["tokens"] == [{"amount": "12500000", "mint": str(USDC), "symbol": "USDC"}]

    # With the ATA creation (not executable here: LiteSVM has no ATA program) the rent counts as SOL
    # spend; 12.5 + 17.5 is exactly the daily 30 USDC, and one base unit more is refused.
    created = cli("sign", build("17.5"), "--socket", handle.socket_path, "--json", url=url)
    assert created.exit_code == 0, created.stderr
    assert created.json()["lamports"] == 5000 + chain.rent_exempt(165)
    over = cli("sign", build("0.000001"), "--socket", handle.socket_path, "--json", url=url)
    assert over.exit_code == 5, over.stdout
    assert over.stderr.startswith("Error: refused (token_daily_limit_exceeded): this transaction moves 0.000001 USDC")
