"""`jarvis-wallet inspect` and `jarvis-wallet build-transfer` end to end.

Inputs come from build-transfer itself and from the golden vectors in tests/vectors/solana/
(published by wallet-core and solana-py, or generated with solders; see tests/vectors/README.md).
build-transfer's bytes are compared with solders built from the same inputs.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import base58
import nacl.signing
import pytest
import solders.compute_budget as cb
from solders.hash import Hash
from solders.instruction import Instruction
from solders.message import Message as SoldersMessage
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer

from conftest import random_pubkey, transfer_message

VECTOR_DIR = Path(__file__).parent / "vectors" / "solana"
MEMO_V2 = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"
SYSTEM = "11111111111111111111111111111111"
COMPUTE_BUDGET = "ComputeBudget111111111111111111111111111111"

# A fixed sender, recipient and blockhash, so that expected text can be written out.
SENDER = base58.b58encode(bytes([7]) * 32).decode()
RECIPIENT = base58.b58encode(bytes([9]) * 32).decode()
BLOCKHASH = base58.b58encode(bytes([3]) * 32).decode()

# Plain-words descriptions per vector, written out from each vector's `expected` facts.
VECTOR_DESCRIPTIONS = {
    "wallet_core_legacy_transfer": [
        "transfer 0.000000042 SOL from 7v91N7iZ9mNicL8WfG6cgSCKyRXydQjLh6UYBWwm6y1Q to "
        "EN2sCsJ1WDV8UFqsiTXHcUPUxQ4juE71eCknHYYMifkd",
    ],
    "wallet_core_compute_budget_limit_price_transfer": [
        "set the compute unit price to 2 micro-lamports",
        "set the compute unit limit to 2000",
        "transfer 0.000001001 SOL from 7HP8cENhoDxS7yT6UHyT3mVwvN5rv6gMrzwRXXWFJvDU to "
        "HwHDGHYeYfXdzwvCZu7zm21SzQ7ZLBGTLNkuscyFdpvZ",
    ],
    "wallet_core_legacy_transfer_with_memo_and_references": [
        "memo 'HelloSolanaMemo'",
        "transfer 0.01 SOL from zVSpQnbBZ7dyUWzXhrUQRsTYYNzoAdJWHsHSqhPj3Xu to 71e8mDsh3PR6gN64zL1HjwuxyKpgRXrPDUJT7XXojsVd",
    ],
    "wallet_core_v0_lookup_table_transfer": [
        "transfer 0.0000005 SOL from 4zU4oWc3j789Xyf4s1NZSNtiQCEMGFBNJCdUMqSry2q to lookup table "
        "9rzBPNBqnNspwvEAfzdioUUPsFkjykHxwDVZc1uraaga entry 0",
    ],
    "wallet_core_v0_external_fee_payer_two_signers": [
        "transfer 0.111123456 SOL from 8EhWjZGEt58UKzeiburZVx6QQF3rbayScpDjPNqCx62q to "
        "6DQ3pZEbQJ7rrirz2WiKJzrUsHSHf1c7y17M1it2eFWT",
    ],
    "solana_py_three_signers_message": [
        "transfer 0.002 SOL from S6EA7XsNyxg4yx4DJRMm7fP21jgZb1fuzBAUGhgVtkP to BKdt9U6V922P17ui81dzLoqgSY2B5ds1UD13rpwFB2zi",
        "transfer 0.002 SOL from DtDZCnXEN69n5W6rN5SdJFgedrWdK8NV9bsMiJekNRyu to FXgds3n6SNCoVVV4oELSumv8nKzAfqSgmeu7cNPikKFT",
        "transfer 0.002 SOL from C2UwQHqJ3BmEJHSMVmrtZDQGS2fGv8fZrWYGi18nHF5k to 8YPqwYXZtWPd31puVLEUPamS4wTv6F89n8nXDA5Ce2Bg",
    ],
    "wallet_core_sponsored_token_and_sol_transfer": [
        "transfer 10000 base units (6 decimals) of mint Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB from token "
        "account DK8JGfS6Acsjh7KCdT7rEZ4ECNXztNmbJMs1mgjdZCXE to DwvTHUygHJ2xdHBHT1HgvHaJfqHkPbS5omrGEEGpLHDc, "
        "authorised by 9fATSMy2QhUjd1RpJgGTcs6kJzeSHzzL6DzCCEFv5Xvc",
        "transfer 0.0002 SOL from 9fATSMy2QhUjd1RpJgGTcs6kJzeSHzzL6DzCCEFv5Xvc to EkBtoCtDihccznHSF3P64kvcTt5xNxQ2jxYMjPXVH3DX",
    ],
    "generated_compute_unit_limit_above_cap": [
        "set the compute unit limit to 2000000",
        "set the compute unit price to 1000 micro-lamports",
        "transfer 0.000000001 SOL from CnEDk9HrMnmiHXEV1WFgbVCRteYnPqsJwrTdcZaNhFVW to 7G5vGjwTC2FzRUpBG4c8PBXzWrtD3m1SxMrH3ZFcHvL6",
    ],
    "generated_create_account": None,  # None: kinds, fee and spend only
    "wallet_core_withdraw_nonce_account": None,
}


def load_vector(name: str) -> dict:
    return json.loads((VECTOR_DIR / f"{name}.json").read_text(encoding="utf-8"))


def vector_bytes(vector: dict) -> bytes:
    data, encoding = vector["input"]["data"], vector["input"]["encoding"]
    if encoding == "base58":
        return base58.b58decode(data)
    if encoding == "base64":
        return base64.b64decode(data, validate=True)
    return bytes.fromhex(data)


def b64_file(tmp_path: Path, data: bytes, name: str = "input.b64") -> Path:
    path = tmp_path / name
    path.write_text(base64.b64encode(data).decode() + "\n")
    return path


def one_error_line(result) -> str:
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.endswith("\n"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def inspect_json(cli, path, *args, url=None):
    result = cli("inspect", path, "--json", *args, url=url)
    assert result.exit_code == 0, result.stderr
    return result.json(), result.stderr


# -- inspect on the golden vectors -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VECTOR_DESCRIPTIONS))
def test_inspect_vector(cli, tmp_path, name):
    vector = load_vector(name)
    expected = vector["expected"]
    path = b64_file(tmp_path, vector_bytes(vector))

    report, stderr = inspect_json(cli, path)
    assert stderr == ""  # no --wallet: no database is touched, nothing to note
    assert "decision" not in report
    assert report["version"] == expected["version"]
    assert report["fee_payer"] == expected["fee_payer"]
    assert report["signers"] == expected["signer_keys"]
    assert report["recent_blockhash"] == expected["recent_blockhash"]
    assert sorted(report["programs"]) == sorted(expected["programs"])
    assert [i["kind"] for i in report["instructions"]] == [i["kind"] for i in expected["instructions"]]
    assert all(i["description"] for i in report["instructions"])
    if VECTOR_DESCRIPTIONS[name] is not None:
        assert [i["description"] for i in report["instructions"]] == VECTOR_DESCRIPTIONS[name]
    budget = expected["compute_budget"]
    assert report["fee_lamports"] == 5000 * expected["num_required_signatures"] + budget["priority_fee_lamports"]
    assert report["address_table_lookups"] == [
        {"account_key": t["account_key"], "writable_indexes": t["writable_indexes"], "readonly_indexes": t["readonly_indexes"]}
        for t in expected["address_table_lookups"]
    ]
    fee_payer_spend = expected["spend"].get(expected["fee_payer"])
    if fee_payer_spend is not None:
        assert report["wallet"] == expected["fee_payer"]
        assert report["spend_lamports"] == fee_payer_spend["total_lamports"]


@pytest.mark.parametrize("name", sorted(VECTOR_DESCRIPTIONS))
def test_inspect_vector_spend_per_wallet_without_a_database(cli, tmp_path, name):
    """--wallet with no usable database: the spend is still computed; a note explains the missing decision."""
    vector = load_vector(name)
    path = b64_file(tmp_path, vector_bytes(vector))
    missing = tmp_path / "no-such" / "wallet.db"
    for wallet in vector["wallets"]:
        report, stderr = inspect_json(cli, path, "--wallet", wallet, url=f"sqlite://{missing}")
        assert report["wallet"] == wallet
        assert report["spend_lamports"] == vector["expected"]["spend"][wallet]["total_lamports"]
        assert report["decision"] is None
        assert stderr == f"Note: no decision shown: no database at {missing}; run `jarvis-wallet init-db` first\n"
    assert not missing.parent.exists()  # inspect never creates a database


def test_inspect_with_an_unreachable_database_still_decodes(cli, tmp_path):
    vector = load_vector("wallet_core_legacy_transfer")
    path = b64_file(tmp_path, vector_bytes(vector))
    wallet = vector["wallets"][0]
    url = "postgresql://postgres@127.0.0.1:1/test"
    report, stderr = inspect_json(cli, path, "--wallet", wallet, url=url)
    assert report["spend_lamports"] == 5042 and report["decision"] is None
    assert stderr.startswith(f"Note: no decision shown: database {url} is unavailable: ")
    assert stderr.count("\n") == 1
    table = cli("inspect", path, "--wallet", wallet, url=url)
    assert table.exit_code == 0
    assert "signer decision" not in table.stdout and "5,042 (0.000005042 SOL)" in table.stdout


def test_inspect_reads_stdin(cli, tmp_path):
    message = transfer_message(from_key=base58.b58decode(SENDER), to_key=base58.b58decode(RECIPIENT), lamports=42)
    result = cli("inspect", "-", "--json", input="  " + base64.b64encode(message).decode() + "\n\n")
    assert result.exit_code == 0, result.stderr
    assert result.json()["instructions"][0]["description"] == f"transfer 0.000000042 SOL from {SENDER} to {RECIPIENT}"


@pytest.mark.parametrize(
    "content, message",
    [
        pytest.param("%%%", "input is not valid base64", id="bad-base64"),
        pytest.param("", "empty base64 input", id="empty"),
        pytest.param(base64.b64encode(b"\x00\x01\x02").decode(),
                     "not a transaction (transaction carries no signature slots) nor a message "
                     "(truncated compact-u16 length at byte 3)", id="garbage-bytes"),
        pytest.param(
            base64.b64encode(vector_bytes(load_vector("wallet_core_legacy_two_signers_truncated_create_account"))).decode(),
            "instruction 0 (System Program create_account): instruction data is too short (4 bytes)",
            id="truncated-instruction-vector",
        ),
    ],
)
def test_inspect_bad_input_exits_2(cli, tmp_path, content, message):
    path = tmp_path / "input.b64"
    path.write_text(content)
    result = cli("inspect", path)
    assert result.exit_code == 2
    assert one_error_line(result) == f"Error: {message}\n"


def test_inspect_missing_file_and_bad_wallet(cli, tmp_path):
    missing = cli("inspect", tmp_path / "missing.b64")
    assert missing.exit_code == 2
    assert one_error_line(missing) == f"Error: cannot read transaction file {tmp_path / 'missing.b64'}: No such file or directory\n"
    path = b64_file(tmp_path, vector_bytes(load_vector("wallet_core_legacy_transfer")))
    bad = cli("inspect", path, "--wallet", "xyz")
    assert bad.exit_code == 2
    assert one_error_line(bad) == "Error: invalid wallet 'xyz': decodes to 3 bytes, expected 32\n"


# -- the decision under the wallet's limits ------------------------------------------------------


def test_inspect_shows_what_the_signer_would_decide(cli, initialised_url, tmp_path):
    url = initialised_url
    vector = load_vector("wallet_core_compute_budget_limit_price_transfer")  # spends 6,002 lamports
    wallet = vector["wallets"][0]
    path = b64_file(tmp_path, vector_bytes(vector))

    no_limits, _ = inspect_json(cli, path, "--wallet", wallet, url=url)
    assert (no_limits["decision"]["allowed"], no_limits["decision"]["reason"]) == (False, "no_limits")

    cli("limits", "set", "--wallet", wallet, "--per-tx", "10000", "--daily", "20000", url=url)
    allowed, stderr = inspect_json(cli, path, "--wallet", wallet, url=url)
    assert stderr == ""
    assert allowed["decision"] == {
        "allowed": True, "reason": None, "spent_24h_lamports": 0,
        "message": f"allowed: spends 6002 lamports (0.000006002 SOL) from wallet {wallet}",
    }
    table = cli("inspect", path, "--wallet", wallet, url=url)
    assert "would sign: allowed: spends 6002 lamports" in table.stdout

    cli("limits", "set", "--wallet", wallet, "--per-tx", "6001", "--daily", "20000", url=url)
    refused, _ = inspect_json(cli, path, "--wallet", wallet, url=url)
    assert (refused["decision"]["allowed"], refused["decision"]["reason"]) == (False, "per_tx_limit_exceeded")
    assert "would refuse (per_tx_limit_exceeded)" in cli("inspect", path, "--wallet", wallet, url=url).stdout

    stranger = random_pubkey()
    cli("limits", "set", "--wallet", stranger, "--per-tx", "10000", "--daily", "20000", url=url)
    not_signer, _ = inspect_json(cli, path, "--wallet", stranger, url=url)
    assert (not_signer["decision"]["reason"], not_signer["spend_lamports"]) == ("not_a_signer", 0)


def test_inspect_json_of_a_transfer_checked(cli, tmp_path):
    """A TransferChecked built by solana-py: decoded fields, named roles, a sentence, JSON-able."""
    from spl.token.constants import TOKEN_PROGRAM_ID
    from spl.token.instructions import transfer_checked
    from spl.token.models import TransferCheckedParams

    owner, source, mint, destination, signer = (Pubkey.from_string(random_pubkey()) for _ in range(5))
    instruction = transfer_checked(
        TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID, source=source, mint=mint, dest=destination, owner=owner,
            amount=2_500_000, decimals=6, signers=[signer],
        )
    )  # fmt: skip
    message = SoldersMessage.new_with_blockhash([instruction], owner, Hash.default())
    report, _ = inspect_json(cli, b64_file(tmp_path, bytes(message)))
    [entry] = report["instructions"]
    assert (entry["program"], entry["program_id"], entry["kind"]) == ("token", str(TOKEN_PROGRAM_ID), "transfer_checked")
    assert entry["fields"] == {"amount": 2_500_000, "decimals": 6}
    assert {role: account["address"] for role, account in entry["roles"].items()} == {
        "source": str(source), "mint": str(mint), "destination": str(destination), "authority": str(owner),
    }  # fmt: skip
    assert [account["address"] for account in entry["account_lists"]["multisig_signers"]] == [str(signer)]
    assert entry["description"] == (
        f"transfer 2500000 base units (6 decimals) of mint {mint} from token account {source} to {destination}, "
        f"authorised by {owner} (multisig, 1 signer)"
    )
    assert "data_hex" not in entry
    assert report["spend_lamports"] == 10_000  # two signatures; tokens are not counted in lamports


def test_inspect_refuses_a_malformed_token_instruction(cli, tmp_path):
    message = SoldersMessage.new_with_blockhash(
        [Instruction(Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"), bytes([12, 1]), [])],
        Pubkey.from_string(random_pubkey()),
        Hash.default(),
    )
    result = cli("inspect", b64_file(tmp_path, bytes(message)), "--json")
    assert result.exit_code == 2
    reason = "instruction 0 (SPL Token transfer_checked): instruction data is too short (2 bytes)"
    assert result.stderr == f"Error: {reason}\n"
    assert result.json() == {"ok": False, "exit_code": 2, "reason": "invalid_tx", "message": reason}


def test_inspect_decision_governs_tokens_by_the_registry_not_the_program_allow_list(cli, initialised_url, tmp_path):
    """Issue 12: the Token program is no longer allowed or refused by the allow-list; the mint
    must be registered and the wallet must have limits for it."""
    url = initialised_url
    vector = load_vector("wallet_core_sponsored_token_and_sol_transfer")
    wallet = vector["wallets"][0]
    usdt = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"
    path = b64_file(tmp_path, vector_bytes(vector))
    cli("limits", "set", "--wallet", wallet, "--per-tx", "1SOL", "--daily", "1SOL", url=url)
    cli("config", "set", "allowed_programs", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", url=url)
    refused, _ = inspect_json(cli, path, "--wallet", wallet, url=url)
    assert refused["decision"]["reason"] == "token_not_registered"
    assert usdt in refused["decision"]["message"]
    assert cli("tokens", "add", "USDT", "--mint", usdt, "--decimals", "6", "--program", "token", url=url).exit_code == 0
    no_limits, _ = inspect_json(cli, path, "--wallet", wallet, url=url)
    assert no_limits["decision"]["reason"] == "token_no_limits"
    cli("limits", "set", "--wallet", wallet, "--token", "USDT", "--per-tx", "0.01", "--daily", "1", url=url)
    allowed, _ = inspect_json(cli, path, "--wallet", wallet, url=url)
    assert allowed["decision"]["allowed"] is True
    (movement,) = allowed["token_movements"]
    assert (movement["symbol"], movement["amount"], movement["amount_base_units"], movement["mint"]) == (
        "USDT", "0.01", "10000", usdt,
    )
    assert allowed["token_spend"] == [{"mint": usdt, "symbol": "USDT", "amount_base_units": "10000", "amount": "0.01"}]
    text = cli("inspect", path, "--wallet", wallet, url=url).stdout
    assert "0.01 USDT of " + usdt in text and "token spend of wallet" in text
    cli("limits", "set", "--wallet", wallet, "--token", "USDT", "--per-tx", "0.009999", url=url)
    over, _ = inspect_json(cli, path, "--wallet", wallet, url=url)
    assert over["decision"]["reason"] == "token_per_tx_limit_exceeded"


def test_inspect_names_the_owner_of_an_associated_destination(cli, tmp_path):
    from jarvis_wallet.solana.associated_token import associated_token_address
    from jarvis_wallet.solana.build import AccountMeta, Instruction, compile_message
    from jarvis_wallet.solana.token import TOKEN_PROGRAM_ID

    wallet, owner, mint = bytes([7]) * 32, bytes([8]) * 32, bytes([9]) * 32
    create = Instruction(
        base58.b58decode("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"),
        (AccountMeta(wallet, True, True), AccountMeta(associated_token_address(owner, mint, TOKEN_PROGRAM_ID), False, True),
         AccountMeta(owner, False, False), AccountMeta(mint, False, False), AccountMeta(bytes(32), False, False),
         AccountMeta(TOKEN_PROGRAM_ID, False, False)),
        bytes([1]),
    )
    pay = Instruction(
        TOKEN_PROGRAM_ID,
        (AccountMeta(associated_token_address(wallet, mint, TOKEN_PROGRAM_ID), False, True), AccountMeta(mint, False, False),
         AccountMeta(associated_token_address(owner, mint, TOKEN_PROGRAM_ID), False, True), AccountMeta(wallet, True, False)),
        bytes([12]) + (1_250_000).to_bytes(8, "little") + bytes([6]),
    )
    path = b64_file(tmp_path, compile_message(payer=wallet, instructions=[create, pay], recent_blockhash=bytes(32)))
    report, _ = inspect_json(cli, path)
    (movement,) = report["token_movements"]
    assert movement["destination_owner"] == base58.b58encode(owner).decode()
    assert movement["amount"] == "1.25" and movement["symbol"] is None
    assert report["spend_lamports"] == 5_000 + 2_039_280  # the fee and the new account's rent


def test_inspect_predicts_the_real_signer(signers, cli, tmp_path):
    """What inspect says the signer would do is what the signer then does, spend included."""
    url = signers.database_url
    handle = signers.start()
    wallet = handle.public_key
    signers.set_limits(per_tx=10_000, daily=13_000)
    for lamports, outcome in ((1000, "signed"), (1500, "signed"), (1000, "daily_limit_exceeded"), (20_000, "per_tx_limit_exceeded")):
        path = b64_file(tmp_path, transfer_message(from_key=base58.b58decode(wallet), lamports=lamports), name=f"{lamports}-{outcome}.b64")
        report, _ = inspect_json(cli, path, "--wallet", wallet, url=url)
        signed = cli("sign", path, "--socket", handle.socket_path, "--json", url=url)
        if outcome == "signed":
            assert report["decision"]["allowed"] is True
            assert signed.exit_code == 0, signed.stderr
            assert signed.json()["lamports"] == report["spend_lamports"] == lamports + 5000
        else:
            assert report["decision"]["reason"] == outcome
            assert signed.exit_code == 5
            assert signed.stderr == f"Error: refused ({outcome}): {report['decision']['message']}\n"


# -- build-transfer --------------------------------------------------------------------------


def build(cli, *extra, amount="0.5SOL", sender=SENDER, recipient=RECIPIENT, blockhash=BLOCKHASH):
    return cli("build-transfer", "--from", sender, "--to", recipient, "--amount", amount, "--blockhash", blockhash, *extra)


@pytest.mark.parametrize("v0", [False, True], ids=["legacy", "v0"])
def test_build_transfer_parses_back_to_the_same_transfer(cli, tmp_path, v0):
    result = build(cli, *(["--v0"] if v0 else []), amount="0.5SOL")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    encoded = result.stdout.removesuffix("\n")
    assert result.stdout == encoded + "\n" and "\n" not in encoded
    path = tmp_path / "tx.b64"
    path.write_text(result.stdout)

    report, _ = inspect_json(cli, path)
    assert report["version"] == (0 if v0 else "legacy")
    assert report["is_full_transaction"] is False  # a bare message, ready for `sign`
    assert (report["fee_payer"], report["signers"], report["recent_blockhash"]) == (SENDER, [SENDER], BLOCKHASH)
    assert report["programs"] == [SYSTEM]
    (instruction,) = report["instructions"]
    assert instruction["kind"] == "transfer" and instruction["fields"] == {"lamports": 500_000_000}
    assert instruction["description"] == f"transfer 0.5 SOL from {SENDER} to {RECIPIENT}"
    assert [a["address"] for a in instruction["accounts"]] == [SENDER, RECIPIENT]
    assert report["spend"]["payments"][0]["destination"] == RECIPIENT
    assert (report["fee_lamports"], report["spend_lamports"]) == (5000, 500_005_000)
    assert report["address_table_lookups"] == []


def test_build_transfer_with_memo_and_compute_budget(cli, tmp_path):
    result = build(cli, "--memo", "invoice 42 [paid]", "--compute-unit-price", "1000", "--compute-unit-limit", "200000",
                   amount="0.002 SOL")
    assert result.exit_code == 0, result.stderr
    path = tmp_path / "tx.b64"
    path.write_text(result.stdout)
    report, _ = inspect_json(cli, path)
    assert [i["description"] for i in report["instructions"]] == [
        "set the compute unit limit to 200000",
        "set the compute unit price to 1000 micro-lamports",
        f"transfer 0.002 SOL from {SENDER} to {RECIPIENT}",
        "memo 'invoice 42 [paid]'",
    ]
    assert sorted(report["programs"]) == sorted([SYSTEM, COMPUTE_BUDGET, MEMO_V2])
    # 5,000 per signature plus ceil(1000 micro-lamports x 200,000 CU / 1e6) = 200 lamports.
    assert (report["fee_lamports"], report["spend_lamports"]) == (5200, 2_000_000 + 5200)
    table = cli("inspect", path)
    assert "memo 'invoice 42 [paid]'" in table.stdout  # shown literally, not as rich markup


def solders_transfer(*, v0, memo, price, limit, lamports) -> bytes:
    """The reference, in build-transfer's instruction order: limit, price, transfer, memo."""
    source, dest, blockhash = Pubkey.from_string(SENDER), Pubkey.from_string(RECIPIENT), Hash.from_string(BLOCKHASH)
    instructions = []
    if limit is not None:
        instructions.append(cb.set_compute_unit_limit(limit))
    if price is not None:
        instructions.append(cb.set_compute_unit_price(price))
    instructions.append(transfer(TransferParams(from_pubkey=source, to_pubkey=dest, lamports=lamports)))
    if memo is not None:
        instructions.append(Instruction(Pubkey.from_string(MEMO_V2), memo.encode(), []))
    if v0:
        return to_bytes_versioned(MessageV0.try_compile(source, instructions, [], blockhash))
    return bytes(SoldersMessage.new_with_blockhash(instructions, source, blockhash))


@pytest.mark.parametrize("v0", [False, True], ids=["legacy", "v0"])
@pytest.mark.parametrize(
    "memo, price, limit",
    [(None, None, None), ("thanks \u2713", None, None), (None, 5, None), (None, None, 1_400_000), ("m", 2**64 - 1, 2**32 - 1)],
    ids=["plain", "memo", "price", "limit", "everything"],
)
def test_build_transfer_is_byte_identical_to_solders(cli, v0, memo, price, limit):
    extra = (["--v0"] if v0 else []) + (["--memo", memo] if memo is not None else [])
    extra += (["--compute-unit-price", str(price)] if price is not None else [])
    extra += (["--compute-unit-limit", str(limit)] if limit is not None else [])
    result = build(cli, *extra, amount="123456789")
    assert result.exit_code == 0, result.stderr
    ours = base64.b64decode(result.stdout.strip(), validate=True)
    assert ours == solders_transfer(v0=v0, memo=memo, price=price, limit=limit, lamports=123_456_789)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"amount": "-1"}, "invalid --amount '-1': must not be negative"),
        ({"amount": "1.5"}, "invalid --amount '1.5': lamports are whole numbers; write SOL for fractions (0.5SOL)"),
        ({"amount": "abc"}, "invalid --amount 'abc': use integer lamports (1500000) or SOL with a unit (1.5SOL)"),
        ({"amount": "0.0000000001SOL"}, None),
        ({"sender": "xx"}, "invalid --from key 'xx': decodes to 2 bytes, expected 32"),
        ({"recipient": "0OIl"}, "invalid --to key '0OIl': not base58"),
        ({"blockhash": "0OOO"}, "invalid --blockhash '0OOO': not base58"),
        ({"blockhash": "1" * 31}, "invalid --blockhash '1111111111111111111111111111111': decodes to 31 bytes, expected 32"),
        ({"sender": SYSTEM}, "the sender cannot be a program id"),
    ],
    ids=["negative", "fraction-of-lamport", "not-a-number", "too-precise", "short-from", "bad-to", "bad-blockhash",
         "short-blockhash", "program-sender"],
)
def test_build_transfer_bad_input_exits_2(cli, overrides, message):
    result = build(cli, **overrides)
    assert result.exit_code == 2
    line = one_error_line(result)
    if message is not None:
        assert line == f"Error: {message}\n"


def test_build_transfer_limits_and_missing_options(cli):
    too_big = build(cli, "--memo", "a" * 1300)  # 1 + 64 + 1486: four keys, a transfer and a 1,304-byte memo
    assert too_big.exit_code == 2
    assert one_error_line(too_big) == "Error: the signed transaction would be 1551 bytes, over Solana's 1232-byte limit\n"
    limit = build(cli, "--compute-unit-limit", str(2**32))
    assert limit.exit_code == 2
    assert one_error_line(limit) == (
        "Error: Invalid value for '--compute-unit-limit': 4294967296 is not in the range 0<=x<=4294967295. "
        "(see `jarvis-wallet build-transfer --help`)\n"
    )
    missing = cli("build-transfer", "--from", SENDER, "--to", RECIPIENT, "--amount", "1")  # and no endpoint
    assert missing.exit_code == 2
    assert one_error_line(missing) == (
        "Error: give --blockhash HASH, or --blockhash auto with an endpoint (--rpc-url, or `config set rpc_url URL`)\n"
    )


def test_build_transfer_output_signs_as_is(signers, cli, tmp_path):
    """The printed base64 goes straight to `sign`, and the signature is over exactly those bytes."""
    handle = signers.start()
    signers.set_limits(per_tx=1_000_000, daily=1_000_000)
    result = build(cli, "--memo", "x", sender=handle.public_key, amount="1000")
    path = tmp_path / "tx.b64"
    path.write_text(result.stdout)
    signed = cli("sign", path, "--socket", handle.socket_path, url=signers.database_url)
    assert signed.exit_code == 0, signed.stderr
    nacl.signing.VerifyKey(base58.b58decode(handle.public_key)).verify(
        base64.b64decode(result.stdout.strip()), base58.b58decode(signed.stdout.strip())
    )
