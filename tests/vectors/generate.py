"""Write the Solana golden vectors in tests/vectors/solana/ (see tests/vectors/README.md).

Run from the repository root:  .venv/bin/python tests/vectors/generate.py

Two kinds of vector come out of this script:

* external: the input bytes are copied exactly as another Solana tool published them
  (repository, path and commit are recorded); this script only derives the expected facts.
* generated: built here with solders, for categories no published vector covers.

For every vector the expected facts (header, keys, instructions, spend) are derived with
solders' decoders and an independent reference of the spend rules of the design brief, section 4,
every published signature is checked with PyNaCl, and where a secret seed is published the
signature is recomputed with PyNaCl (Ed25519 is deterministic) and must match bit for bit.
The script refuses to write anything if one of those checks fails. It needs no network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path

import base58
import nacl.signing
import solders
import solders.system_program as system
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.token.instructions import decode_transfer_checked

OUT_DIR = Path(__file__).resolve().parent / "solana"

SYSTEM_PROGRAM = "11111111111111111111111111111111"
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
COMPUTE_BUDGET_PROGRAM = "ComputeBudget111111111111111111111111111111"
MEMO_PROGRAMS = {
    "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr",  # SPL Memo v2
    "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo",  # SPL Memo v1
}
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"

LAMPORTS_PER_SIGNATURE = 5_000
MICRO_LAMPORTS_PER_LAMPORT = 1_000_000
MAX_COMPUTE_UNIT_LIMIT = 1_400_000
DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT = 200_000  # non-builtin program instruction
MAX_BUILTIN_ALLOCATION_COMPUTE_UNIT_LIMIT = 3_000  # builtin program instruction (SIMD-0170)
# Programs that agave counts as non-migrating builtins when it computes the default limit.
# Only the ones that appear in these vectors matter here.
BUILTIN_PROGRAMS = {SYSTEM_PROGRAM, COMPUTE_BUDGET_PROGRAM}

WC = "trustwallet/wallet-core"
WC_SIGN_RS = ("rust/tw_tests/tests/chains/solana/solana_sign.rs", "57998c4b7e43b300b36aa7497a4476501be7b158")
WC_TX_FFI_RS = (
    "rust/tw_tests/tests/chains/solana/solana_transaction_ffi.rs",
    "020495465092cd08e808db0a568268cc2fda5e13",
)
WC_SIGNER_CPP = ("tests/chains/Solana/SignerTests.cpp", "24666e5430d9c9a712f2c4c4562c855c331d441b")
WC_ANYSIGNER_CPP = ("tests/chains/Solana/TWAnySignerTests.cpp", "e3bc4a587300cd6467b206abb3b863724a45b022")
WC_TOOL = "Trust Wallet Core (trustwallet/wallet-core) Solana signer"
SOLANA_PY = "michaelhly/solana-py"


def wc_source(file_and_commit: tuple[str, str], test: str, note: str = "") -> dict:
    path, commit = file_and_commit
    source = {"repository": WC, "path": path, "commit": commit, "test": test, "tool": WC_TOOL}
    if note:
        source["note"] = note
    return source


def secret(published: str, encoding: str, where: str = "") -> dict:
    """A secret seed exactly as the source publishes it (public test key, never a real wallet)."""
    entry = {"published": published, "encoding": encoding, "public_test_key": True}
    if where:
        entry["where"] = where
    return entry


# --------------------------------------------------------------------------------------------
# External vectors: input exactly as published.
# --------------------------------------------------------------------------------------------

EXTERNAL = [
    {
        "name": "wallet_core_legacy_transfer",
        "category": "legacy transfer",
        "description": "System transfer of 42 lamports; blockhash all zeroes.",
        "source": wc_source(WC_SIGN_RS, "test_solana_sign_transfer",
                            "also SignerTests.cpp SingleSignTransaction and TWAnySignerTests.cpp SignTransfer"),
        "input": {"kind": "transaction", "encoding": "base58", "data": (
            "3p2kzZ1DvquqC6LApPuxpTg5CCDVPqJFokGSnGhnBHrta4uq7S2EyehV1XNUVXp51D69GxGzQZUjikfDzbWBG2aFtG3gHT1Q"
            "fLzyFKHM4HQtMQMNXqay1NAeiiYZjNhx9UvMX4uAQZ4Q6rx6m2AYfQ7aoMUrejq298q1wBFdtS9XVB5QTiStnzC7zs97FUEK"
            "2T4XapjF1519EyFBViTfHpGpnf5bfizDzsW9kYUtRDW1UC2LgHr7npgq5W9TBmHf9hSmRgM9XXucjXLqubNWE7HUMhbKjuBq"
            "kirRM")},
        "secrets": [secret("A7psj2GW7ZMdY4E5hJq14KMeYg7HFjULSsWSrTXZLvYr", "base58 32-byte seed")],
        "published_signatures": [
            "5T6uZBHnHFd8uWErDBTFRVkbKuhbcm94K5MJ2beTYDruzqv4FjS7EMKvC94ZfxNAiWUXZ6bZxS3WXUbhJwYNPWn"],
        "published_message": {"encoding": "base58", "data": (
            "87PYsiS4MUU1UqXrsDoCBmD5FcKsXhwEBD8hc4zbq78yePu7bLENmbnmjmVbsj4VvaxnZhy4bERndPFzjSRH5WpwKwMLSCKv"
            "n9eSDmPESNcdkqne2UdMfWiFoq8ZeQBnF9h98dP8GM9kfzWPjvLmhjwuwA1E2k5WCtfii7LKQ34v6AtmFQGZqgdKiNqygP7Z"
            "KusHWGT8ZkTZ"), "what": "output.unsigned_tx: the message bytes (what is signed)"},
        "wallets": ["7v91N7iZ9mNicL8WfG6cgSCKyRXydQjLh6UYBWwm6y1Q", "EN2sCsJ1WDV8UFqsiTXHcUPUxQ4juE71eCknHYYMifkd"],
    },
    {
        "name": "wallet_core_legacy_transfer_to_self",
        "category": "legacy transfer",
        "description": "System transfer of 42 lamports from the wallet to itself: only the fee is spend.",
        "source": wc_source(WC_SIGN_RS, "test_solana_sign_transfer_to_self",
                            "also SignerTests.cpp SignTransactionToSelf"),
        "input": {"kind": "transaction", "encoding": "base58", "data": (
            "EKUmihvvUPKVN4GSCFwZRtz8WiyAuPvthW69Smo19SCjcPLQ6T7EVZd1HU71WAoe1bfgmPNS5JhU7ZLA9XKG3qbZqeEFJ1xm"
            "RwW9ZKw8SKMAL6VRWxp87oLu7PSmf5b8R34vCaww3XLKtZkoP49a7TUK31DqPN5xJCceMB3BZJyaojQaKU8nUkzSGf89LY6a"
            "bZXp9krKAebvc6bSMzTP8SHSvbmZbf3VtejmpQeN9X6e7WVDn6oDa2bGT")},
        "secrets": [secret("AevJ4EWcvQ6dptBDvF2Ri5pU6QSBjkzSGHMfbLFKa746", "base58 32-byte seed")],
        "published_signatures": [
            "3CFWDEK51noPJP4v2t8JZ3qj7kC7kLKyws9akfHMyuJnQ35EtzBptHqvaHfeswiLsvUSxzMVNoj4CuRxWtDD9zB1"],
        "wallets": ["zVSpQnbBZ7dyUWzXhrUQRsTYYNzoAdJWHsHSqhPj3Xu"],
    },
    {
        "name": "solana_py_legacy_transfer_wire",
        "category": "legacy transfer",
        "description": "System transfer of 49 lamports, signed with the seed 32 x 0x08.",
        "source": {
            "repository": SOLANA_PY, "path": "tests/unit/test_transaction.py",
            "commit": "0a0075108c25485422ed79082d9a4526b0cffdc6",
            "test": "test_wire_format_and_desrialize / test_serialize_unsigned_transaction",
            "tool": "solana-py (and solana-web3.js, whose legacy test 'parse wire format and serialize' "
                    "publishes the same base64)",
            "note": "the sender is the stubbed_sender fixture, Keypair.from_seed(bytes([8] * 32)), in "
                    "michaelhly/solana-py tests/conftest.py at 00d17a969f6ffbddf59338709961ae7de3f45ae5",
        },
        "input": {"kind": "transaction", "encoding": "base64", "data": (
            "AVuErQHaXv0SG0/PchunfxHKt8wMRfMZzqV0tkC5qO6owYxWU2v871AoWywGoFQr4z+q/7mE8lIufNl/kxj+nQ0BAAEDE5j2"
            "LG0aRXxRumpLXz29L2n8qTIWIY3ImX5Ba9F9k8r9Q5/Mtmcn8onFxt47xKj+XdXXd3C8j/FcPu7csUrz/AAAAAAAAAAAAAAA"
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAxJrndgN4IFTxep3s6kO0ROug7bEsbx0xxuDkqEvwUusBAgIAAQwCAAAAMQAAAAAAAAA=")},
        "secrets": [secret("0808080808080808080808080808080808080808080808080808080808080808", "hex 32-byte seed",
                           "bytes([8] * 32) in tests/conftest.py")],
        "published_message": {"encoding": "base64", "data": (
            "AQABAxOY9ixtGkV8UbpqS189vS9p/KkyFiGNyJl+QWvRfZPK/UOfzLZnJ/KJxcbeO8So/l3V13dwvI/xXD7u3LFK8/wAAAAAAAAA"
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAMSa53YDeCBU8Xqd7OpDtETroO2xLG8dMcbg5KhL8FLrAQICAAEMAgAAADEAAAAAAAAA"),
            "what": "txn.serialize_message()"},
        "wallets": ["2KW2XRd9kwqet15Aha2oK3tYvd3nWbTFH1MBiRAv1BE1"],
    },
    {
        "name": "wallet_core_legacy_transfer_with_memo_and_references",
        "category": "memo",
        "description": "SPL Memo 'HelloSolanaMemo' then a transfer of 10,000,000 lamports whose instruction "
                       "carries two extra read-only reference accounts (Solana Pay style).",
        "source": wc_source(WC_SIGN_RS, "test_solana_sign_transfer_with_memo_and_references",
                            "also TWAnySignerTests.cpp SignTransferWithMemoAndReference"),
        "input": {"kind": "transaction", "encoding": "base58", "data": (
            "NfNH76sST3nJ4FmFGTZJBUpJou7DRuHM3YNprT1HeEau699CQF65xNf21Hoi491bbtVKUXfqCJyeZhfTCEnABuXNC1JrhGBe"
            "Cv2AbQdaS9gpp9j4xHHomhCYdwYaBWFMcKkdMXrx9xHqL9Vkny4HezkwQfb3wGqcaE9XVRdkkNxsoJnVKddRnrQbjhsZGTcK"
            "dfmbTghoUeRECNPTm6nZTA1owWF1Dq6mfr6M3GZRh4ucqEquxKsQC2HQwNRrGZahsfyUvwspPWwMt78q5Jpjd9kHqkFDspZL"
            "6Pepv4dAA4uHhYDCHeP2bbDiFMBYxxWCVDDtRKSh3H92xUgh1GCSgNcjGdbVfQUhSDPX3k9xuuszPTsVZ2GnsavAsRp6Vf6f"
            "FEikBX6pVV9zjW1cx94EepQ2aGEBSsVu4RzX7rJjCLCq87h8cxxf1XnF8mvYGEK7wzF")},
        "secrets": [secret("AevJ4EWcvQ6dptBDvF2Ri5pU6QSBjkzSGHMfbLFKa746", "base58 32-byte seed")],
        "wallets": ["zVSpQnbBZ7dyUWzXhrUQRsTYYNzoAdJWHsHSqhPj3Xu"],
    },
    {
        "name": "wallet_core_compute_budget_limit_price_transfer",
        "category": "compute budget + transfer",
        "description": "SetComputeUnitPrice 2 micro-lamports, SetComputeUnitLimit 2,000, transfer 1,001: "
                       "priority fee ceil(2 * 2000 / 1e6) = 1 lamport.",
        "source": wc_source(WC_SIGN_RS, "test_solana_sign_transfer_with_priority_fee"),
        "input": {"kind": "transaction", "encoding": "base58", "data": (
            "4WReC2rmup9nZjtFQbBbha5uADkVb54CRd6a3vbAoptbuzYvdud2Xau2tkzCejZsfsUC2ppqhMqbXXzaoiSpYH8XEDo6QtUV"
            "8EGXcE3GFxVjjtBT2U8abtC2qcBMDGAghtzpsmKWfWMxmQj8wWKjpmzamiU6PjfMbuAyAX5VPhQxZQ84Ay2HtQJBK8LA9CJ9"
            "qva9ehmu7g41wKBXLPq22NGjeSHq6ubjcNLQrFx34sKGtPJ68Z2oZgrju7XjKFhtnKzqUCWcgVUjUsyHyyBJ3awaExYHEw2u"
            "Kq9NVoKmf9JDkjf2LBjNpUJ3EGzFHrfwnVEQ7B5XCX4nQRPir7eLuunLwVKhrdATKDbxin3ANe5D")},
        "secrets": [secret("1eb5264f82747294e7481ecae700bd1d21e50db620bcf0d2af7582f712c71b40", "hex 32-byte seed")],
        "wallets": ["7HP8cENhoDxS7yT6UHyT3mVwvN5rv6gMrzwRXXWFJvDU"],
    },
    {
        "name": "wallet_core_compute_budget_limit_only_transfer",
        "category": "compute budget + transfer",
        "description": "SetComputeUnitLimit 1,000 without a price, transfer 160,000: no priority fee. "
                       "Broadcast on mainnet per the source.",
        "source": wc_source(WC_SIGN_RS, "test_solana_sign_transfer_with_priority_fee_limit"),
        "input": {"kind": "transaction", "encoding": "base58", "data": (
            "23MBXQ2GgD4CWLXG5MrhmXa6YDf4ghZdxEAzdrG9U457PMBAeg3WbSy7WA7H7a8VEFZ5eYR8TSvSAJ4ZBqhS4bLT7e8VSTsz"
            "LDu159RmeKcfXtn7Ae4hQybb6uALWSkdBjSHyURYZoto6HWzS57htjUQkmAimaWFG5nwfkox9wqxAZqDNVAFYEAzM3eNWwWe"
            "N2rCnNy4vLfyKSZeNTRdvPg8PjUFyXrWcKkd3NFTqSchQmZsccaxpN32sNjg2Br2thCrcazon3rBY9T1BwuaWTtZsvm653dh"
            "hKENNajaD3TyA79K1m4rP6wYVaEs6UWr6qcwsdR6WD5TCkwmmmEjVYeQp2Py")},
        "secrets": [secret("1eb5264f82747294e7481ecae700bd1d21e50db620bcf0d2af7582f712c71b40", "hex 32-byte seed")],
        "published_signatures": [
            "4ei1iejYd1Yr11hdi7ziFjc6GyUAtNnUQqURqssBXB7H6kYJ4CXxYiSks3PjoPdJfZFMXTSAYTp7wqYrjCKgKxcV"],
        "wallets": ["7HP8cENhoDxS7yT6UHyT3mVwvN5rv6gMrzwRXXWFJvDU"],
    },
    {
        "name": "wallet_core_compute_budget_transfer_broadcast",
        "category": "compute budget + transfer",
        "description": "SetComputeUnitLimit 10,000, transfer 1,000, SetComputeUnitPrice 1,000 "
                       "(price after the transfer): priority fee 10 lamports. Broadcast on mainnet.",
        "source": wc_source(WC_TX_FFI_RS, "test_solana_transaction_set_priority_fee_transfer", "signed_tx"),
        "input": {"kind": "transaction", "encoding": "base64", "data": (
            "AVUye82Mv+/aWeU2G+B6Nes365mUU2m8iqcGZn/8kFJvw4wY6AgKGG+vJHaknHlCDwE1yi1SIMVUUtNCOm3kHg8BAAIEODI+"
            "iWe7g68B9iwCy8bFkJKvsIEj350oSOpcv4gNnv/st+6qmqipl9lwMK6toB9TiL7LrJVfij+pKwr+pUKxfwAAAAAAAAAAAAAA"
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAwZGb+UhFzL/7K26csOb57yM5bvF9xJrLEObOkAAAAAboZ09wD3Y5HNUl7aN8bwpCqow"
            "ev1hMu7fSgziLswUSgMDAAUCECcAAAICAAEMAgAAAOgDAAAAAAAAAwAJA+gDAAAAAAAA")},
        "secrets": [secret("baf2b2dbbbad7ca96c1fa199c686f3d8fbd2c7b352f307e37e04f33df6741f18", "hex 32-byte seed")],
        "published_signatures": [
            "2ho7wZUXbDNz12xGfsXg2kcNMqkBAQjv7YNXNcVcuCmbC4p9FZe9ELeM2gMjq9MKQPpmE3nBW5pbdgwVCfNLr1h8"],
        "wallets": ["4nNGWSvPBFq3XXxMS1hitrPpUTcNtjnHJwsNdaePSkrr"],
    },
    {
        "name": "wallet_core_v0_transfer_no_lookup",
        "category": "v0 without address lookup table",
        "description": "Version 0 message, transfer of 5,000 lamports from the wallet to itself, no lookups. "
                       "Broadcast on testnet per the source.",
        "source": wc_source(WC_SIGN_RS, "test_solana_sign_transfer_v0",
                            "also test_solana_sign_raw_message_v0 and TWAnySignerTests.cpp SignV0Transfer"),
        "input": {"kind": "transaction", "encoding": "base58", "data": (
            "6NijVxwQoDjqt6A41HXCK9kXwNDp48uLgvRyE8uz6NY5dEzaEDLzjzuMnc5TGatHZZUXehKrzUGzbg9jPSdn6pVsMc9TXNH6"
            "JGe5RJLmHwWey3MC1p8Hs2zhjw5P439P57NToatraDX9ZwvBtK4EzZzRjWbyGdicheTPjeYKCzvPCLxDkTFtPCM9VZGGXSN2"
            "Bne92NLDvf6ntNm5pxsPkZGxPe4w9Eq26gkE83hZyrYXKaiDh8TbqbHatSkw")},
        "secrets": [secret("833a053c59e78138a3ed090459bc6743cca6a9cbc2809a7bf5dbc7939b8775c8", "hex 32-byte seed")],
        "published_signatures": [
            "4ffBzXxLPYEEdCYpQGETkCTCCsH6iTdmKzwUZXZZgFemdhRpxQwboguFFoKCeGF3SsZPzuwwE7LbRwLgJbsyRqyP"],
        "wallets": ["6pEfiZjMycJY4VA2FtAbKgYvRwzXDpxY58Xp4b7FQCz9"],
    },
    {
        "name": "wallet_core_v0_lookup_table_transfer",
        "category": "v0 with address lookup table",
        "description": "Version 0 transfer of 500 lamports to an address loaded from lookup table "
                       "9rzBPNBqnNspwvEAfzdioUUPsFkjykHxwDVZc1uraaga (writable index 0). Broadcast on "
                       "mainnet per the source (original_tx before compute budget was added).",
        "source": wc_source(WC_TX_FFI_RS, "test_solana_transaction_set_priority_fee_transfer_with_address_lookup",
                            "original_tx"),
        "input": {"kind": "transaction", "encoding": "base64", "data": (
            "Acjjw79E1WGC531Oq6lsyg3X+D65Fo37i6A4nKaqDjxWVrF/djOxbyShfg0HwMuCMp2Mj2JtsiGMkJbt/iD8rQ2AAQABAgEF"
            "uF07bbuXk4EuSECBjRkLhDeGEZ4Jm4QbrRF/TN0CAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAUE/bdT0AlTN8m"
            "+IZkrbzaTUxHcnoKW3WZucqu7msImQEBAgACDAIAAAD0AQAAAAAAAAGDq5uNdcMMtPgcMghpRBOza1eEzcNhvr0zid3hRZoV"
            "0wEAAA==")},
        "secrets": [secret("a73613f265ae572772e28bd921a7bcd0f020e188aae4d1ebd07b9b487fde3573", "hex 32-byte seed")],
        "wallets": ["4zU4oWc3j789Xyf4s1NZSNtiQCEMGFBNJCdUMqSry2q"],
    },
    {
        "name": "wallet_core_v0_lookup_table_compute_budget_transfer",
        "category": "v0 with address lookup table",
        "description": "The previous transaction with SetComputeUnitLimit 10,000 and SetComputeUnitPrice "
                       "1,000 added, re-signed: priority fee 10 lamports.",
        "source": wc_source(WC_TX_FFI_RS, "test_solana_transaction_set_priority_fee_transfer_with_address_lookup",
                            "signed_tx"),
        "input": {"kind": "transaction", "encoding": "base64", "data": (
            "AcRmE7GRYYh3XKjfYpBRvTdXjYMLtowRUxaStETGPTm0qxa7sm11yqGXKiO3SgOdsRL2Y9IQRBMfqwkBZyrK9gKAAQACAwEF"
            "uF07bbuXk4EuSECBjRkLhDeGEZ4Jm4QbrRF/TN0CAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAADBkZv5SEXMv/s"
            "rbpyw5vnvIzlu8X3EmssQ5s6QAAAABQT9t1PQCVM3yb4hmStvNpNTEdyegpbdZm5yq7uawiZAwIABQIQJwAAAQIAAwwCAAAA"
            "9AEAAAAAAAACAAkD6AMAAAAAAAABg6ubjXXDDLT4HDIIaUQTs2tXhM3DYb69M4nd4UWaFdMBAAA=")},
        "secrets": [secret("a73613f265ae572772e28bd921a7bcd0f020e188aae4d1ebd07b9b487fde3573", "hex 32-byte seed")],
        "published_signatures": [
            "4vkDYvXnAyauDwgQUT9pjhvArCm1jZZFp6xFiT6SYKDHwabPNyNskzzd8YJZR4UJVXakBtRAFku3axVQoA7Apido"],
        "wallets": ["4zU4oWc3j789Xyf4s1NZSNtiQCEMGFBNJCdUMqSry2q"],
    },
    {
        "name": "wallet_core_v0_external_fee_payer_two_signers",
        "category": "several signers",
        "description": "Version 0, two signers: an external fee payer and a sender transferring "
                       "111,123,456 lamports. Signatures produced outside, compiled by wallet-core; "
                       "broadcast on devnet per the source.",
        "source": wc_source(WC_TX_FFI_RS, "test_solana_transaction_set_fee_payer", "output.encoded"),
        "input": {"kind": "transaction", "encoding": "base64", "data": (
            "Av658VzDRfoVZFBnYQADOGDtvoCm9h2rgZnpT9xHZ47P25XjvBDsCn+GOrjvXDjtrnLbfl1yhV2yJf2TX9WbcAqTbNbRducB"
            "0fdIAxklsvAp9vGrS5mux24kzPBWSewmlWmgjsC9gPX+4cuNE+zUIL9QxfZK50x6+iZ0WMq7TlgEgAIAAQTLKvCJtWpVdze8"
            "Fxjgy/Iyz1sC4U7gqnxmdSM/X2+bV2uEKrOPvZNBtdUtSFXcg8+kj4O/Z1Ht/hwvnaqq5s6mTXd3KtwUyJFfRs2PBfeQW8xC"
            "EZvNr/5J/Tx8ltbn0pwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACo+QRbvXWNKoOfaOL4cSpfYrmn/2TV+dBmc"
            "t+HsmmwdAQMCAQIMAgAAAACcnwYAAAAAAA==")},
        "secrets": [secret("66ApBuKpo2uSzpjGBraHq7HP8UZMUJzp3um8FdEjkC9c", "base58 32-byte seed",
                           "fee payer Eg5jqooyG6ySaXKbQUu4Lpvu2SqUPZrNkM4zXs9iUDLJ; published in solana_sign.rs "
                           "(fee_payer_private_key); the sender's key is not published")],
        "published_signatures": [
            "feb9f15cc345fa156450676100033860edbe80a6f61dab8199e94fdc47678ecfdb95e3bc10ec0a7f863ab8ef5c38edae"
            "72db7e5d72855db225fd935fd59b700a",
            "936cd6d176e701d1f748031925b2f029f6f1ab4b99aec76e24ccf05649ec269569a08ec0bd80f5fee1cb8d13ecd420bf"
            "50c5f64ae74c7afa267458cabb4e5804"],
        "published_signatures_encoding": "hex",
        "published_message": {"encoding": "hex", "data": (
            "8002000104cb2af089b56a557737bc1718e0cbf232cf5b02e14ee0aa7c6675233f5f6f9b576b842ab38fbd9341b5d52d"
            "4855dc83cfa48f83bf6751edfe1c2f9daaaae6cea64d77772adc14c8915f46cd8f05f7905bcc42119bcdaffe49fd3c7c"
            "96d6e7d29c00000000000000000000000000000000000000000000000000000000000000002a3e4116ef5d634aa0e7da"
            "38be1c4a97d8ae69ffd9357e74199cb7e1ec9a6c1d01030201020c02000000009c9f060000000000"),
            "what": "preimage_output.data: the message bytes (what is signed)"},
        "wallets": ["Eg5jqooyG6ySaXKbQUu4Lpvu2SqUPZrNkM4zXs9iUDLJ", "8EhWjZGEt58UKzeiburZVx6QQF3rbayScpDjPNqCx62q"],
    },
    {
        "name": "wallet_core_durable_nonce_transfer",
        "category": "durable nonce + transfer",
        "description": "AdvanceNonceAccount (nonce ALAaqqt4..., authority = the wallet) first, then a "
                       "transfer of 1,000 lamports; the blockhash field holds the nonce.",
        "source": wc_source(WC_SIGN_RS, "test_solana_sign_transfer_with_durable_nonce"),
        "input": {"kind": "transaction", "encoding": "base58", "data": (
            "6zRqmNP5waeyartbf8GuQrWxdSy4SCYBTEmGhiXfYNxQTuUrvrBjia18YoCM367AQZWZ5yTjcN6FaXuaPWju7aVZNFjyqpuM"
            "ZLNEbpm8ZNmKP4Na2VzR59iAdSPEZGTPuesZEniNMAD7ZSux6fayxgwrEwMWjeiskFQEwdvFzKNHfNLbjoVpdSTxhKiqfbwx"
            "nFBpBxNE4nqMj3bUR37cYJAFoDFokxy23HGpV93V9mbGG89aLBNQnd9LKTjpYFv49VMd48mptUd7uyrRwZLMneew2Bxq3PLs"
            "j9SaJyCWbsnqYj6bBahhsErz67PJTJepx4BEhqRxHGUSbpeNiL7qyERri1GZsXhN8fgU3nPiYr7tMMxuLAoUFRMJ79HCex7v"
            "xhf7SapvcP")},
        "secrets": [secret("044014463e2ee3cc9c67a6f191dbac82288eb1d5c1111d21245bdc6a855082a1", "hex 32-byte seed")],
        "wallets": ["sp6VUqq1nDEuU83bU2hstmEYrJNipJYpwS7gZ7Jv7ZH"],
    },
    {
        "name": "wallet_core_advance_nonce_only",
        "category": "durable nonce",
        "description": "AdvanceNonceAccount alone: only the fee is spend.",
        "source": wc_source(WC_SIGN_RS, "test_solana_sign_advance_nonce_account",
                            "also TWAnySignerTests.cpp SignAdvanceNonceAccount"),
        "input": {"kind": "transaction", "encoding": "base58", "data": (
            "7YPgNzjCnUd2zBb6ZC6bf1YaoLjhJPHixLUdTjqMjq1YdzADJCx2wsTTBFFrqDKSHXEL6ntRq8NVJTQMGzGH5AQRKwtKtute"
            "hxesmtzkZCPY9ADZ4ijFyveLmTt7kjZXX7ZWVoUmKAqiaYsPTex728uMBSRJpV4zRw2yKGdQRHTKy2QFEb9acwLjmrbEgoyz"
            "PCarxjPhw21QZnNcy8RiYJB2mzZ9nvhrD5d2jB5TtdiroQPgTSdKFzkNEd7hJUKpqUppjDFcNHGK73FE9pCP2dKxCLH8Wfae"
            "z8bLtopjmWun9cbikxo7LZsarYzMXvxwZmerRd1")},
        "secrets": [secret("9YtuoD4sH4h88CVM8DSnkfoAaLY7YeGC2TarDJ8eyMS5", "base58 32-byte seed")],
        "wallets": ["B1iGmDJdvmxyUiYM8UEo2Uw2D58EmUrw4KyLYMmrhf8V"],
    },
    {
        "name": "wallet_core_withdraw_nonce_account",
        "category": "durable nonce",
        "description": "WithdrawNonceAccount of 10,000,000 lamports from nonce account 6vNrYDm6... to "
                       "3UVYmECP..., under the wallet's authority: counted as spend.",
        "source": wc_source(WC_SIGN_RS, "test_solana_sign_withdraw_nonce_account",
                            "also TWAnySignerTests.cpp SignWithdrawNonceAccount"),
        "input": {"kind": "transaction", "encoding": "base58", "data": (
            "7gdEdDymvtfPfVgVvCTPzafmZc1Z8Zu4uXgJDLm8KGpLyPHysxFGjtFzimZDmGtNhQCh22Ygv3ZtPZmSbANbafikR3S1tvuj"
            "atHW9gMo35jveq7TxwcGoNSqc7tnH85hkEZwnDryVaiKRvtCeH3dgFE9YqPHxiBuZT5eChHJvVNb9iTTdMsJXMusRtzeRV45"
            "CvrLKUvsAH7SSWHYW6bGow5TbEJie4buuz2rnbeVG5cxaZ6vyG2nJWHNuDPWZJTRi1MFEwHoxst3a5jQPv9UrG9rNZFCw4uZ"
            "izVcG6HEqHWgQBu8gVpYpzFCX5SrhjGPZpbK3YmHhUEMEpJx3Fn7jX7Kt4t3hhhrieXppoqKNuqjeNVjfEf3Q8dJRfuVMLdX"
            "YbmitCVTPQzYKWBR6ERqWLYoAVqjoAS2pRUw1nrqi1HR")},
        "secrets": [secret("044014463e2ee3cc9c67a6f191dbac82288eb1d5c1111d21245bdc6a855082a1", "hex 32-byte seed")],
        "wallets": ["sp6VUqq1nDEuU83bU2hstmEYrJNipJYpwS7gZ7Jv7ZH"],
    },
    {
        "name": "wallet_core_create_nonce_account_two_signers",
        "category": "create account",
        "description": "CreateAccount funded by the wallet (10,000,000 lamports, 80 bytes, owner System) "
                       "then InitializeNonceAccount; the new account is the second signer.",
        "source": wc_source(WC_SIGN_RS, "test_solana_sign_create_nonce_account",
                            "also TWAnySignerTests.cpp SignCreateNonceAccount"),
        "input": {"kind": "transaction", "encoding": "base58", "data": (
            "3wu6xJSbb2NysVgi7pdfMgwVBT1knAdeCr9NR8EktJLoByzM4s9SMto2PPmrnbRqPtHwnpAKxXkC4vqyWY2dRBgdGGCC1bep"
            "6qN5nSLVzpPYAWUSq5cd4gfYMAVriFYRRNHmYUnEq8vMn4vjiECmZoHrpabBj8HpXGqYBo87sbZa8ZPCxUcB71hxXiHWZHj2"
            "rovx2kr75Uuv1buWXyW6M8uR4UNvQcPPvzVbwBG82RjDYTuancMSAxmrVNR8GLBQNhrCCYrZyte3EWgEyMQxxfW8T3xNXqnb"
            "gdfvFJ3UjRBxXj3hrmv17xEivTjfs81aG2AAi24yiYrk8ep7eQqwDHVSArsrynnwVKVNUcCQCnSy7fuiuS7FweFX8DEN1K9B"
            "rfecHyWrF15fYzhkmWSs64aH6ZTYHWPv5znhFKYmAuopGwbsBEb2j5p8NS3iJZ2skb2wi47n1rpLZfoCHWKxNiikkDUJTGQN"
            "cSDrGUMfeW5aGubJrCfecPKEo9Wo9kd36iSsxYPYSWNKrz2HTooa1rCRhqjXD8dyX3bXGV8TK6W2sEgf4JkcDnNoWQLbindc"
            "P8XR")},
        "secrets": [
            secret("044014463e2ee3cc9c67a6f191dbac82288eb1d5c1111d21245bdc6a855082a1", "hex 32-byte seed", "funder"),
            secret("2a9737aca3cde2dc0b4f3ae3487e3a90000490cb39fbc979da32b974ff5d7490", "hex 32-byte seed",
                   "new nonce account")],
        "wallets": ["sp6VUqq1nDEuU83bU2hstmEYrJNipJYpwS7gZ7Jv7ZH", "6vNrYDm6EHcvBALY7HywuDWpTSc6uGt3y2nf5MuG1TmJ"],
    },
    {
        "name": "wallet_core_legacy_two_signers_truncated_create_account",
        "category": "several signers",
        "description": "Two signers over one System instruction whose data is 4 zero bytes: a "
                       "CreateAccount tag with its 48 bytes of fields missing. The framing parses and "
                       "both signatures verify, but the instruction cannot be decoded: a strict "
                       "signer must refuse it.",
        "source": wc_source(WC_SIGNER_CPP, "SolanaSigner.MultipleSignTransaction"),
        "input": {"kind": "transaction", "encoding": "base58", "data": (
            "oL2CmkcP9xf2DiU7eo6hh3JdHnX3NGjunheXYo6SjVchzc8LtFJpPs4jccWUd7oPZUPQNTcR7EeHn259ror9A7aXgJdP4djh"
            "ntoD8irF1kuBZCj7pubtoWfiAKzagSL4hChQsTSe7e9jaGtoXu58mPHCMKTz55TLjhdmCj7ixoWRowWEzkrF49MxXnurb4yf"
            "6ASru1XdHPFn3DdzkRHgypYwvRM6ci8p27trQvXFukhWX6qG6JkxqsWYSzACcAAGGWfAxSi63Yx1RxkxGUzyxy5f2thQhWZ6"
            "Nx6pR1im65yVYMYPXj94kgtHxXw9h5V4p7xSAwRpmhw4jewYyQVX4jmnfro3gFNdX9AqpqMs4uGHA4rZM")},
        "secrets": [secret("96PKHuMPtniu1T74RvUNkbDPXPPRZ8Mg1zXwciCAyaDq", "base58 32-byte seed"),
                    secret("GvGmNPMQLZE2VNx3KG2GdiC4ndS8uCqd7PjioPgm9Qhi", "base58 32-byte seed")],
        "published_signatures": [
            "37beWPhNMfWUz75Tb24TX3PCS89FZscbCgwwLpFnzVfZYPqDpAWruvqzc9eeQYft35H23Vm9Tv1dPwEKWT3vAVPb",
            "5NxQshVaAXtQ8YVdcBtCanT62KbxnRfhubjGndFvetgn9AiaoLVZvRGutR5D7FJebRxq8bd6nQXn59LFzavEUrdQ"],
        "wallets": [],
    },
    {
        "name": "wallet_core_sign_raw_message",
        "category": "legacy transfer (message input)",
        "description": "A bare legacy message (transfer of 42 lamports) given to the signer; the expected "
                       "output is the signed transaction.",
        "source": wc_source(WC_SIGNER_CPP, "SolanaSigner.SignRawMessage"),
        "input": {"kind": "message", "encoding": "hex", "data": (
            "01000203207be13c43c4528592eaf3fd34e064c641c5be3cb6691877d7ade94dff36734108eaea30723c33b52507bc54"
            "024910612f885e4c80c10b99a047fd42c0acbace000000000000000000000000000000000000000000000000000000000"
            "0000000040404040404040404040404040404040404040404040404040404040404040401020200010c020000002a0000"
            "0000000000")},
        "secrets": [secret("GjXseuD8JavBjKMdd6GEsPYZPV7tMMa46GS2JRS5tHRq", "base58 32-byte seed")],
        "expected_signed_transaction": {"encoding": "hex", "data": (
            "016e7f8349977b482bccf0bfc202ad917295803831e59ccb865b97d657464791ebfe3336879b84b9f165e464a3"
            "4751fe30d54b01f3c9f33f969aafe1e85951b10901000203207be13c43c4528592eaf3fd34e064c641c5be3cb6"
            "691877d7ade94dff36734108eaea30723c33b52507bc54024910612f885e4c80c10b99a047fd42c0acbace0000"
            "000000000000000000000000000000000000000000000000000000000000040404040404040404040404040404"
            "040404040404040404040404040404040401020200010c020000002a00000000000000")},
        "wallets": ["3BocAWPm1oNXN5qkAV4QeDUmAPpkTcN1rrmCMWAfsXJY"],
    },
    {
        "name": "solana_py_three_signers_message",
        "category": "several signers (message input)",
        "description": "Unsigned legacy message: three signers each transferring 2,000,000 lamports to "
                       "their own receiver; the first signer is the fee payer. The test names it the "
                       "message web3.js compiles for the same instructions.",
        "source": {
            "repository": SOLANA_PY, "path": "tests/unit/test_transaction.py",
            "commit": "0a0075108c25485422ed79082d9a4526b0cffdc6", "test": "test_sort_account_metas",
            "tool": "solana-py, checked against @solana/web3.js output (js_msg_b64_check)",
            "note": "signer seeds are published in the same test as Keypair.from_seed byte lists",
        },
        "input": {"kind": "message", "encoding": "base64", "data": (
            "AwABBwZtbiRMvgQjcE2kVx9yon8XqPSO5hwc2ApflnOZMu0Qo9G5/xbhB0sp8/03Rv9x4MKSkQ+k4LB6lNLvCgKZ/ju/aw+E"
            "yQpTObVa3Xm+NA1gSTzutgFCTfkDto/0KtuIHHAMpKRb92NImxKeWQJ2/291j6nTzFj1D6nW25p7TofHmVsGt8uFnTv7+8vs"
            "WZ0uN7azdxa+jCIIm4WzKK+4uKfX39t5UA7S1soBQaJkTGOQkSbBo39gIjDkbW0TrevslgAAAAAAAAAAAAAAAAAAAAAAAAAA"
            "AAAAAAAAAAAAAAAAxJrndgN4IFTxep3s6kO0ROug7bEsbx0xxuDkqEvwUusDBgIABAwCAAAAgIQeAAAAAAAGAgIFDAIAAACA"
            "hB4AAAAAAAYCAQMMAgAAAICEHgAAAAAA")},
        "secrets": [
            secret(bytes([216, 214, 184, 213, 199, 75, 129, 160, 237, 96, 96, 228, 46, 251, 146, 3, 71, 162, 37,
                          117, 121, 70, 143, 16, 128, 78, 53, 189, 222, 230, 165, 249]).hex(),
                   "hex 32-byte seed", "signer_one (S6EA7XsN...), the fee payer"),
            secret(bytes([177, 182, 154, 154, 5, 145, 253, 138, 211, 126, 222, 195, 21, 64, 117, 211, 225, 47, 115,
                          31, 247, 242, 80, 195, 38, 8, 236, 155, 255, 27, 20, 142]).hex(),
                   "hex 32-byte seed", "signer_two (DtDZCnXE...)"),
            secret(bytes([29, 79, 73, 16, 137, 117, 183, 2, 131, 0, 209, 142, 134, 100, 190, 35, 95, 220, 200, 163,
                          247, 237, 161, 70, 226, 223, 100, 148, 49, 202, 154, 180]).hex(),
                   "hex 32-byte seed", "signer_three (C2UwQHqJ...)")],
        "wallets": ["S6EA7XsNyxg4yx4DJRMm7fP21jgZb1fuzBAUGhgVtkP", "DtDZCnXEN69n5W6rN5SdJFgedrWdK8NV9bsMiJekNRyu",
                    "C2UwQHqJ3BmEJHSMVmrtZDQGS2fGv8fZrWYGi18nHF5k"],
    },
    {
        "name": "wallet_core_sponsored_token_and_sol_transfer",
        "category": "program outside the default allow-list",
        "description": "SPL Token TransferChecked (10,000 units) signed by the wallet as token owner, and a "
                       "System transfer of 200,000 lamports. Spend counts only the System outflow and the "
                       "fee; the Token instruction passes the wallet's key to a program outside the "
                       "default allow-list, so a default policy must refuse it. Broadcast on mainnet.",
        "source": wc_source(WC_SIGN_RS, "test_solana_sign_sponsored_transfer"),
        "input": {"kind": "transaction", "encoding": "base64", "data": (
            "Acms/WrZj/mOpUTTBFHLtBFKrMSAJPBBkD8qYK+oqgE0gFT5aoEfw5dlJZZl1edVde325gi0qVPai7ddgoP2WQUBAAMHgKRC"
            "BGe2W59ezw1CyHDoV4KZVuJFTtmsN0F25EL3I8228PMELJSiAl2nvEzyY4v/LfSQnxkFNlH4pjU2F3nMpcBeC+e4AaQzF6GC"
            "h63HW7KnhG+YuIbF1AvkM6nwOXMjzDg4vU3/xSfZJTqguxQVNsgitkm5dHCm6V6l4NCCDp7OAQ5gr+2yJxe9YxkvVBRaP5Za"
            "M7uC0scCnrLOHiCCZAbd9uHXZaGT2cvhRs7reawctIXtX1s3kTqM9YV+/wCpAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            "AAAAAACbeRZf0sbtT6rwdYyf6Z9h66lKwNsb48euTgiPa0h+WAIFBAEEAgAKDBAnAAAAAAAABgYCAAMMAgAAAEANAwAAAAAA")},
        "secrets": [secret("7537978967203bdca1bcde4caa811c2771b36043a303824110cf240b10d9fde8", "hex 32-byte seed")],
        "published_signatures": [
            "52s8gt34WfZyJv1cDdadwA3V9PeRwazNqhVKDJ43F9JyxTE7ncqMSmqYAi1u4TsG2AyXNPbswG7krBHqWAhstCtL"],
        "wallets": ["9fATSMy2QhUjd1RpJgGTcs6kJzeSHzzL6DzCCEFv5Xvc"],
    },
]


# --------------------------------------------------------------------------------------------
# Generated vectors: categories no published vector covers.
# --------------------------------------------------------------------------------------------

def seed_of(byte: int) -> bytes:
    return bytes([byte]) * 32


def keypair(byte: int) -> Keypair:
    return Keypair.from_seed(seed_of(byte))


def blockhash_for(name: str) -> Hash:
    return Hash(hashlib.sha256(b"jarvis-wallet test blockhash " + name.encode()).digest())


def address_for(label: str) -> Pubkey:
    return Pubkey(hashlib.sha256(b"jarvis-wallet test address " + label.encode()).digest())


def memo(text: str, signers: list[Pubkey] = ()) -> Instruction:
    return Instruction(Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"), text.encode(),
                       [AccountMeta(s, True, False) for s in signers])


def signed(message, keypairs: list[Keypair]) -> bytes:
    return bytes(VersionedTransaction(message, keypairs))


def gen_create_account() -> dict:
    wallet, new_account = keypair(0x11), keypair(0x12)
    name = "generated_create_account"
    ix = system.create_account(system.CreateAccountParams(
        from_pubkey=wallet.pubkey(), to_pubkey=new_account.pubkey(), lamports=2_039_280, space=165,
        owner=Pubkey.from_string(TOKEN_PROGRAM)))
    msg = Message.new_with_blockhash([ix], wallet.pubkey(), blockhash_for(name))
    return {"name": name, "category": "create account",
            "description": "CreateAccount funded by the wallet: 2,039,280 lamports, 165 bytes, owner SPL "
                           "Token; the new account co-signs.",
            "raw": signed(msg, [wallet, new_account]), "kind": "transaction", "seeds": [0x11, 0x12],
            "wallets": [str(wallet.pubkey()), str(new_account.pubkey())]}


def gen_create_account_with_seed() -> dict:
    wallet = keypair(0x21)
    name = "generated_create_account_with_seed"
    owner = Pubkey.from_string(SYSTEM_PROGRAM)
    derived = Pubkey.create_with_seed(wallet.pubkey(), "jarvis-1", owner)
    ix = system.create_account_with_seed(system.CreateAccountWithSeedParams(
        from_pubkey=wallet.pubkey(), to_pubkey=derived, base=wallet.pubkey(), seed="jarvis-1",
        lamports=1_000_000, space=0, owner=owner))
    msg = Message.new_with_blockhash([ix], wallet.pubkey(), blockhash_for(name))
    return {"name": name, "category": "create account with seed",
            "description": "CreateAccountWithSeed, the wallet is funder and base, seed 'jarvis-1', "
                           "1,000,000 lamports, owner System.",
            "raw": signed(msg, [wallet]), "kind": "transaction", "seeds": [0x21],
            "wallets": [str(wallet.pubkey())]}


def gen_transfer_with_seed() -> dict:
    wallet, fee_payer = keypair(0x31), keypair(0x32)
    name = "generated_transfer_with_seed_external_fee_payer"
    owner = Pubkey.from_string(SYSTEM_PROGRAM)
    derived = Pubkey.create_with_seed(wallet.pubkey(), "savings", owner)
    recipient = address_for("transfer-with-seed recipient")
    ix = system.transfer_with_seed(system.TransferWithSeedParams(
        from_pubkey=derived, from_base=wallet.pubkey(), from_seed="savings", from_owner=owner,
        to_pubkey=recipient, lamports=750_000))
    msg = Message.new_with_blockhash([ix], fee_payer.pubkey(), blockhash_for(name))
    return {"name": name, "category": "transfer with seed",
            "description": "TransferWithSeed of 750,000 lamports from the account derived from the wallet "
                           "(base) with seed 'savings'; another key pays the fee.",
            "raw": signed(msg, [fee_payer, wallet]), "kind": "transaction", "seeds": [0x32, 0x31],
            "wallets": [str(wallet.pubkey()), str(fee_payer.pubkey())]}


def gen_v0_lookup_tables_memo_price_only() -> dict:
    wallet = keypair(0x41)
    name = "generated_v0_two_lookup_tables_price_without_limit"
    table_a, table_b = address_for("lookup table A"), address_for("lookup table B")
    recipient_a, recipient_b = address_for("lookup recipient A"), address_for("lookup recipient B")
    reference = address_for("lookup reference")
    tables = [
        AddressLookupTableAccount(table_a, [address_for("filler A0"), recipient_a, reference]),
        AddressLookupTableAccount(table_b, [recipient_b]),
    ]
    transfer_a = system.transfer(system.TransferParams(
        from_pubkey=wallet.pubkey(), to_pubkey=recipient_a, lamports=123_456))
    transfer_a.accounts = [*transfer_a.accounts, AccountMeta(reference, False, False)]
    transfer_b = system.transfer(system.TransferParams(
        from_pubkey=wallet.pubkey(), to_pubkey=recipient_b, lamports=654_321))
    instructions = [set_compute_unit_price(12_345), memo("invoice 42"), transfer_a, transfer_b]
    msg = MessageV0.try_compile(wallet.pubkey(), instructions, tables, blockhash_for(name))
    return {"name": name, "category": "v0 with address lookup table",
            "description": "Version 0 with two lookup tables: transfers of 123,456 and 654,321 lamports to "
                           "looked-up addresses (the first with a looked-up read-only reference), a memo, "
                           "and SetComputeUnitPrice 12,345 micro-lamports without a limit, so the default "
                           "limit decides the priority fee.",
            "raw": signed(msg, [wallet]), "kind": "transaction", "seeds": [0x41],
            "wallets": [str(wallet.pubkey())],
            "lookup_tables": {str(t.key): [str(a) for a in t.addresses] for t in tables}}


def gen_v0_durable_nonce_compute_budget() -> dict:
    wallet = keypair(0x51)
    name = "generated_v0_durable_nonce_compute_budget_transfer"
    nonce_account = address_for("nonce account")
    nonce_value = blockhash_for(name + " nonce value")
    recipient = address_for("nonce recipient")
    instructions = [
        system.advance_nonce_account(system.AdvanceNonceAccountParams(
            nonce_pubkey=nonce_account, authorized_pubkey=wallet.pubkey())),
        set_compute_unit_limit(450),
        set_compute_unit_price(1_000_001),
        system.transfer(system.TransferParams(from_pubkey=wallet.pubkey(), to_pubkey=recipient,
                                              lamports=3_000_000)),
    ]
    msg = MessageV0.try_compile(wallet.pubkey(), instructions, [], nonce_value)
    return {"name": name, "category": "durable nonce + transfer",
            "description": "Version 0: AdvanceNonceAccount first (the wallet is the authority), "
                           "SetComputeUnitLimit 450, SetComputeUnitPrice 1,000,001 micro-lamports "
                           "(priority fee ceil(450.00045) = 451), transfer 3,000,000.",
            "raw": signed(msg, [wallet]), "kind": "transaction", "seeds": [0x51],
            "wallets": [str(wallet.pubkey())]}


def gen_compute_limit_above_cap() -> dict:
    wallet = keypair(0x61)
    name = "generated_compute_unit_limit_above_cap"
    recipient = address_for("cap recipient")
    instructions = [
        set_compute_unit_limit(2_000_000),
        set_compute_unit_price(1_000),
        system.transfer(system.TransferParams(from_pubkey=wallet.pubkey(), to_pubkey=recipient, lamports=1)),
    ]
    msg = Message.new_with_blockhash(instructions, wallet.pubkey(), blockhash_for(name))
    return {"name": name, "category": "compute budget + transfer",
            "description": "SetComputeUnitLimit 2,000,000 (above the 1,400,000 cap) and price 1,000: the "
                           "runtime charges for 1,400,000 units, 1,400 lamports, not 2,000.",
            "raw": signed(msg, [wallet]), "kind": "transaction", "seeds": [0x61],
            "wallets": [str(wallet.pubkey())]}


def gen_v0_several_signers_message() -> dict:
    payer, wallet, cosigner = keypair(0x71), keypair(0x72), keypair(0x73)
    name = "generated_v0_three_signers_message"
    table = AddressLookupTableAccount(address_for("three signers table"), [address_for("shared recipient")])
    instructions = [
        set_compute_unit_limit(20_000),
        set_compute_unit_price(5_000),
        system.transfer(system.TransferParams(from_pubkey=wallet.pubkey(),
                                              to_pubkey=address_for("shared recipient"), lamports=40_000)),
        system.transfer(system.TransferParams(from_pubkey=cosigner.pubkey(), to_pubkey=wallet.pubkey(),
                                              lamports=15_000)),
        system.transfer(system.TransferParams(from_pubkey=wallet.pubkey(), to_pubkey=wallet.pubkey(),
                                              lamports=99)),
        memo("split bill", [cosigner.pubkey()]),
    ]
    msg = MessageV0.try_compile(payer.pubkey(), instructions, [table], blockhash_for(name))
    return {"name": name, "category": "several signers (message input)",
            "description": "Unsigned version 0 message with three signers: a fee payer, the wallet (pays "
                           "40,000 to a looked-up recipient, receives 15,000 from the co-signer, and moves "
                           "99 to itself) and a co-signer that also signs a memo. Limit 20,000 at 5,000 "
                           "micro-lamports: priority fee 100.",
            "raw": to_bytes_versioned(msg), "kind": "message", "seeds": [0x71, 0x72, 0x73],
            "wallets": [str(payer.pubkey()), str(wallet.pubkey()), str(cosigner.pubkey())]}


GENERATORS = [gen_create_account, gen_create_account_with_seed, gen_transfer_with_seed,
              gen_v0_lookup_tables_memo_price_only, gen_v0_durable_nonce_compute_budget,
              gen_compute_limit_above_cap, gen_v0_several_signers_message]


# --------------------------------------------------------------------------------------------
# Derivation of the expected facts (solders decoding + reference spend rules).
# --------------------------------------------------------------------------------------------

def decode_text(encoding: str, text: str) -> bytes:
    if encoding == "base58":
        return base58.b58decode(text)
    if encoding == "base64":
        return base64.b64decode(text, validate=True)
    if encoding == "hex":
        return bytes.fromhex(text)
    raise ValueError(encoding)


def encode_text(encoding: str, raw: bytes) -> str:
    if encoding == "base58":
        return base58.b58encode(raw).decode()
    if encoding == "base64":
        return base64.b64encode(raw).decode()
    return raw.hex()


def seed_from_secret(entry: dict) -> bytes:
    raw = decode_text(entry["encoding"].split()[0], entry["published"])
    if len(raw) != 32:
        raise ValueError("expected a 32-byte seed")
    return raw


def split_input(kind: str, raw: bytes):
    """Return (signatures, message bytes, solders message) for a transaction or a bare message."""
    if kind == "transaction":
        tx = VersionedTransaction.from_bytes(raw)
        if bytes(tx) != raw:
            raise AssertionError("solders does not reproduce the transaction bytes")
        message_bytes = to_bytes_versioned(tx.message)
        if not raw.endswith(message_bytes):
            raise AssertionError("message bytes are not the tail of the transaction")
        return [bytes(s) for s in tx.signatures], message_bytes, tx.message
    if raw[0] & 0x80:
        message = MessageV0.from_bytes(raw[1:])
        if b"\x80" + bytes(message) != raw:
            raise AssertionError("solders does not reproduce the v0 message bytes")
    else:
        message = Message.from_bytes(raw)
        if bytes(message) != raw:
            raise AssertionError("solders does not reproduce the legacy message bytes")
    return [], raw, message


def resolved_keys(message) -> list[dict]:
    """All account keys in runtime order: static, then writable lookups, then read-only lookups."""
    keys = [{"pubkey": str(k)} for k in message.account_keys]
    if isinstance(message, MessageV0):
        lookups = message.address_table_lookups
        for lookup in lookups:
            for index in lookup.writable_indexes:
                keys.append({"lookup_table": str(lookup.account_key), "index": index, "writable": True})
        for lookup in lookups:
            for index in lookup.readonly_indexes:
                keys.append({"lookup_table": str(lookup.account_key), "index": index, "writable": False})
    return keys


def placeholder(i: int) -> Pubkey:
    return Pubkey(hashlib.sha256(b"placeholder for looked-up account %d" % i).digest())


def account_label(keys: list[dict], index: int):
    entry = keys[index]
    return entry["pubkey"] if "pubkey" in entry else {k: entry[k] for k in ("lookup_table", "index")}


SYSTEM_DECODERS = {
    0: ("create_account", system.decode_create_account),
    1: ("assign", system.decode_assign),
    2: ("transfer", system.decode_transfer),
    3: ("create_account_with_seed", system.decode_create_account_with_seed),
    4: ("advance_nonce_account", system.decode_advance_nonce_account),
    5: ("withdraw_nonce_account", system.decode_withdraw_nonce_account),
    6: ("initialize_nonce_account", system.decode_initialize_nonce_account),
    7: ("authorize_nonce_account", system.decode_authorize_nonce_account),
    8: ("allocate", system.decode_allocate),
    9: ("allocate_with_seed", system.decode_allocate_with_seed),
    10: ("assign_with_seed", system.decode_assign_with_seed),
    11: ("transfer_with_seed", system.decode_transfer_with_seed),
    12: ("upgrade_nonce_account", system.decode_upgrade_nonce_account),
}


def decode_instruction(message, keys: list[dict], compiled) -> dict:
    program = keys[compiled.program_id_index]["pubkey"]
    data = bytes(compiled.data)
    accounts = list(compiled.accounts)
    out = {"program": program, "accounts": [account_label(keys, a) for a in accounts], "data_hex": data.hex()}
    if program == SYSTEM_PROGRAM:
        tag = int.from_bytes(data[:4], "little") if len(data) >= 4 else None
        if tag not in SYSTEM_DECODERS:
            out.update(kind="undecodable", error="unknown System instruction")
            return out
        kind, decoder = SYSTEM_DECODERS[tag]
        metas = []
        for a in accounts:
            entry = keys[a]
            pubkey = Pubkey.from_string(entry["pubkey"]) if "pubkey" in entry else placeholder(a)
            metas.append(AccountMeta(pubkey, message.is_signer(a), False))
        try:
            fields = decoder(Instruction(Pubkey.from_string(program), data, metas))
        except Exception as exc:  # noqa: BLE001 - solders raises several error types
            out.update(kind="undecodable", error=f"{kind}: {exc}")
            return out
        # solders ignores trailing bytes in some layouts; the reference refuses them.
        reencoded = {
            "transfer": lambda f: (2).to_bytes(4, "little") + f["lamports"].to_bytes(8, "little"),
            "advance_nonce_account": lambda f: (4).to_bytes(4, "little"),
            "withdraw_nonce_account": lambda f: (5).to_bytes(4, "little") + f["lamports"].to_bytes(8, "little"),
        }
        if kind in reencoded and reencoded[kind](fields) != data:
            out.update(kind="undecodable", error=f"{kind}: unexpected data length")
            return out
        out["kind"] = kind
        for field, value in fields.items():
            if isinstance(value, Pubkey):
                position = [str(m.pubkey) for m in metas].index(str(value)) if str(value) in [
                    str(m.pubkey) for m in metas] else None
                value = account_label(keys, accounts[position]) if position is not None else str(value)
            out[field] = value
        return out
    if program == COMPUTE_BUDGET_PROGRAM:
        layouts = {1: ("request_heap_frame", "bytes", 4), 2: ("set_compute_unit_limit", "units", 4),
                   3: ("set_compute_unit_price", "micro_lamports", 8),
                   4: ("set_loaded_accounts_data_size_limit", "bytes", 4)}
        if data and data[0] in layouts and len(data) == 1 + layouts[data[0]][2]:
            kind, field, _ = layouts[data[0]]
            out.update(kind=kind, **{field: int.from_bytes(data[1:], "little")})
        else:
            out.update(kind="undecodable", error="unknown or malformed Compute Budget instruction")
        return out
    if program in MEMO_PROGRAMS:
        out.update(kind="memo", text=data.decode("utf-8"))
        return out
    if program == TOKEN_PROGRAM:
        # solana-py's SPL Token decoder; only TransferChecked appears in the vectors so far.
        if data[:1] != bytes([12]) or len(data) != 10:
            raise SystemExit(f"add a reference decoder for SPL Token data {data.hex()}")
        metas = [AccountMeta(Pubkey.from_string(keys[a]["pubkey"]), message.is_signer(a), False) for a in accounts]
        params = decode_transfer_checked(Instruction(Pubkey.from_string(program), data, metas))
        out.update(kind="transfer_checked", amount=params.amount, decimals=params.decimals)
        return out
    out["kind"] = "opaque"  # a program this reference does not decode
    return out


def compute_budget(decoded: list[dict]) -> dict:
    limit = next((d["units"] for d in decoded if d.get("kind") == "set_compute_unit_limit"), None)
    price = next((d["micro_lamports"] for d in decoded if d.get("kind") == "set_compute_unit_price"), None)
    builtin = sum(1 for d in decoded if d["program"] in BUILTIN_PROGRAMS)
    non_builtin = len(decoded) - builtin
    non_compute_budget = sum(1 for d in decoded if d["program"] != COMPUTE_BUDGET_PROGRAM)
    if limit is not None:
        effective = min(limit, MAX_COMPUTE_UNIT_LIMIT)
        legacy = effective
    else:
        effective = min(builtin * MAX_BUILTIN_ALLOCATION_COMPUTE_UNIT_LIMIT
                        + non_builtin * DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT, MAX_COMPUTE_UNIT_LIMIT)
        legacy = min(non_compute_budget * DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT, MAX_COMPUTE_UNIT_LIMIT)

    def priority(units: int) -> int:
        return -(-(price or 0) * units // MICRO_LAMPORTS_PER_LAMPORT)

    return {"unit_limit": limit, "unit_price_micro_lamports": price, "effective_unit_limit": effective,
            "priority_fee_lamports": priority(effective),
            "pre_simd_0170_effective_unit_limit": legacy,
            "pre_simd_0170_priority_fee_lamports": priority(legacy)}


def spend_for(wallet: str, fee_payer: str, num_signers: int, decoded: list[dict], budget: dict) -> dict:
    outflows = []
    for position, d in enumerate(decoded):
        kind = d.get("kind")
        source = lamports = to = None
        if kind == "transfer":
            source, to, lamports = d["from_pubkey"], d["to_pubkey"], d["lamports"]
        elif kind == "create_account":
            source, to, lamports = d["from_pubkey"], d["to_pubkey"], d["lamports"]
        elif kind == "create_account_with_seed":
            to, lamports = d["to_pubkey"], d["lamports"]
            source = wallet if wallet in (d["from_pubkey"], d["base"]) else d["from_pubkey"]
        elif kind == "transfer_with_seed":
            to, lamports = d["to_pubkey"], d["lamports"]
            source = wallet if d["from_base"] == wallet else d["from_pubkey"]
        elif kind == "withdraw_nonce_account":
            to, lamports = d["to_pubkey"], d["lamports"]
            source = wallet if d["authorized_pubkey"] == wallet else d["nonce_pubkey"]
        if source == wallet and to != wallet:
            outflows.append({"instruction": position, "kind": kind, "to": to, "lamports": lamports})
    is_fee_payer = wallet == fee_payer
    fee = (LAMPORTS_PER_SIGNATURE * num_signers + budget["priority_fee_lamports"]) if is_fee_payer else 0
    outflow = sum(o["lamports"] for o in outflows)
    legacy_fee = (LAMPORTS_PER_SIGNATURE * num_signers + budget["pre_simd_0170_priority_fee_lamports"]
                  ) if is_fee_payer else 0
    return {"is_fee_payer": is_fee_payer, "outflow_lamports": outflow, "fee_lamports": fee,
            "total_lamports": outflow + fee, "destinations": outflows,
            "pre_simd_0170_fee_lamports": legacy_fee}


def derive(entry: dict, raw: bytes, kind: str) -> dict:
    signatures, message_bytes, message = split_input(kind, raw)
    header = message.header
    keys = resolved_keys(message)
    decoded = [decode_instruction(message, keys, ix) for ix in message.instructions]
    budget = compute_budget(decoded)
    version = 0 if isinstance(message, MessageV0) else "legacy"
    signer_keys = [str(k) for k in message.account_keys[:header.num_required_signatures]]
    fee_payer = signer_keys[0]
    expected = {
        "version": version,
        "is_full_transaction": kind == "transaction",
        "num_required_signatures": header.num_required_signatures,
        "num_readonly_signed_accounts": header.num_readonly_signed_accounts,
        "num_readonly_unsigned_accounts": header.num_readonly_unsigned_accounts,
        "account_keys": [str(k) for k in message.account_keys],
        "signer_keys": signer_keys,
        "fee_payer": fee_payer,
        "recent_blockhash": str(message.recent_blockhash),
        "address_table_lookups": [
            {"account_key": str(l.account_key), "writable_indexes": list(l.writable_indexes),
             "readonly_indexes": list(l.readonly_indexes)}
            for l in (message.address_table_lookups if version == 0 else [])],
        "programs": sorted({d["program"] for d in decoded}),
        "instructions": decoded,
        "decodable": all(d["kind"] != "undecodable" for d in decoded),
        "compute_budget": budget,
        "message_base64": base64.b64encode(message_bytes).decode(),
        "signatures": [base58.b58encode(s).decode() for s in signatures],
    }
    if expected["decodable"]:
        expected["spend"] = {w: spend_for(w, fee_payer, header.num_required_signatures, decoded, budget)
                             for w in entry["wallets"]}
    else:
        expected["spend"] = {}
    return expected, signatures, message_bytes


def verify_signatures(name: str, expected: dict, signatures: list[bytes], message_bytes: bytes,
                      seeds: list[bytes], published: list[bytes]) -> dict:
    """Check every signature with PyNaCl; re-sign with every published seed."""
    report = {"verified_with_pynacl": [], "resigned_with_published_seed": []}
    signer_keys = [base58.b58decode(k) for k in expected["signer_keys"]]
    for position, signature in enumerate(signatures):
        if signature == bytes(64):
            continue
        nacl.signing.VerifyKey(signer_keys[position]).verify(message_bytes, signature)
        report["verified_with_pynacl"].append(expected["signer_keys"][position])
    for signature in published:
        if signature not in signatures:
            raise AssertionError(f"{name}: a published signature is not in the transaction")
    for seed in seeds:
        signing_key = nacl.signing.SigningKey(seed)
        pubkey = bytes(signing_key.verify_key)
        if pubkey not in signer_keys:
            raise AssertionError(f"{name}: a published seed is not one of the signers")
        position = signer_keys.index(pubkey)
        fresh = signing_key.sign(message_bytes).signature
        if signatures and signatures[position] != bytes(64) and signatures[position] != fresh:
            raise AssertionError(f"{name}: PyNaCl re-signing does not give the published signature")
        report["resigned_with_published_seed"].append(base58.b58encode(pubkey).decode())
    return report


def build_external(entry: dict) -> dict:
    raw = decode_text(entry["input"]["encoding"], entry["input"]["data"])
    expected, signatures, message_bytes = derive(entry, raw, entry["input"]["kind"])
    published = [decode_text(entry.get("published_signatures_encoding", "base58"), s)
                 for s in entry.get("published_signatures", [])]
    seeds = [seed_from_secret(s) for s in entry.get("secrets", [])]
    if "published_message" in entry:
        pm = entry["published_message"]
        if decode_text(pm["encoding"], pm["data"]) != message_bytes:
            raise AssertionError(f"{entry['name']}: published message bytes differ from the transaction's")
    checks = verify_signatures(entry["name"], expected, signatures, message_bytes, seeds, published)
    if "expected_signed_transaction" in entry:
        est = entry["expected_signed_transaction"]
        signed_raw = decode_text(est["encoding"], est["data"])
        tx = VersionedTransaction.from_bytes(signed_raw)
        if to_bytes_versioned(tx.message) != message_bytes:
            raise AssertionError(f"{entry['name']}: signed transaction carries another message")
        fresh = nacl.signing.SigningKey(seeds[0]).sign(message_bytes).signature
        if bytes(tx.signatures[0]) != fresh or signed_raw != bytes([1]) + fresh + message_bytes:
            raise AssertionError(f"{entry['name']}: re-signing does not give the published transaction")
        expected["signed_transaction_signatures"] = [base58.b58encode(fresh).decode()]
        checks["signed_transaction_reproduced"] = True
    vector = {k: entry[k] for k in ("name", "category", "description", "source", "input") if k in entry}
    vector["provenance"] = "external"
    for key in ("secrets", "published_signatures", "published_signatures_encoding", "published_message",
                "expected_signed_transaction"):
        if key in entry:
            vector[key] = entry[key]
    vector["wallets"] = entry["wallets"]
    vector["expected"] = expected
    vector["checks_at_generation"] = checks
    return vector


def build_generated(spec: dict, function: str) -> dict:
    raw = spec["raw"]
    encoding = "base64"
    expected, signatures, message_bytes = derive(spec, raw, spec["kind"])
    seeds = [seed_of(b) for b in spec["seeds"]]
    checks = verify_signatures(spec["name"], expected, signatures, message_bytes, seeds, [])
    vector = {
        "name": spec["name"], "category": spec["category"], "description": spec["description"],
        "provenance": "generated",
        "source": {"tool": f"solders {solders.__version__}", "generator": "tests/vectors/generate.py",
                   "function": function},
        "input": {"kind": spec["kind"], "encoding": encoding, "data": encode_text(encoding, raw)},
        "secrets": [secret(s.hex(), "hex 32-byte seed") for s in seeds],
        "wallets": spec["wallets"],
    }
    if "lookup_tables" in spec:
        vector["lookup_tables_used_to_compile"] = spec["lookup_tables"]
    vector["expected"] = expected
    vector["checks_at_generation"] = checks
    return vector


def main() -> int:
    vectors = [build_external(e) for e in EXTERNAL]
    vectors += [build_generated(g(), g.__name__) for g in GENERATORS]
    names = [v["name"] for v in vectors]
    if len(set(names)) != len(names):
        raise AssertionError("duplicate vector names")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for old in OUT_DIR.glob("*.json"):
        old.unlink()
    for vector in vectors:
        path = OUT_DIR / f"{vector['name']}.json"
        path.write_text(json.dumps(vector, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(vectors)} vectors to {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
