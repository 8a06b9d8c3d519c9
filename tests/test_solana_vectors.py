"""Golden vectors: the parser against transactions published by other Solana tools.

Each file in tests/vectors/solana/ holds one input exactly as published (or generated with
solders where nothing was published), its provenance, and the facts expected of it; see
tests/vectors/README.md. For every vector this checks the parse, the decoded instructions,
the spend for each named wallet and the re-serialization; every published signature is
verified, and where a secret seed is published, signing ``signing_bytes()`` must give the
published signature bit for bit. Facts are also re-derived with solders here, so the data
files cannot drift from what an independent implementation reads.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import base58
import nacl.signing
import pytest
from solders.message import Message as SoldersMessage
from solders.message import MessageV0 as SoldersMessageV0
from solders.message import to_bytes_versioned
from solders.transaction import VersionedTransaction

VECTOR_DIR = Path(__file__).parent / "vectors" / "solana"
VECTORS = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(VECTOR_DIR.glob("*.json"))]
IDS = [vector["name"] for vector in VECTORS]


def _decode(encoding: str, text: str) -> bytes:
    if encoding == "base58":
        return base58.b58decode(text)
    if encoding == "base64":
        return base64.b64decode(text, validate=True)
    if encoding == "hex":
        return bytes.fromhex(text)
    raise ValueError(f"unknown encoding {encoding}")


def _raw(vector: dict) -> bytes:
    return _decode(vector["input"]["encoding"], vector["input"]["data"])


def _key(text: str) -> bytes:
    return base58.b58decode(text)


def _seeds(vector: dict) -> list[bytes]:
    return [_decode(entry["encoding"].split()[0], entry["published"]) for entry in vector.get("secrets", [])]


# Vectors where the parser is known to differ from the network's rule, with the reason. They
# stay strict xfails so that a fix shows up as XPASS and this entry must be removed.
KNOWN_FEE_DIVERGENCES: dict[str, str] = {}


def _fee_param(vector: dict):
    reason = KNOWN_FEE_DIVERGENCES.get(vector["name"])
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(vector, id=vector["name"], marks=marks)


FEE_PARAMS = [_fee_param(vector) for vector in VECTORS]


def _solana():
    return pytest.importorskip("jarvis_wallet.solana")


def _errors():
    return pytest.importorskip("jarvis_wallet.errors")


def _solders_message(vector: dict):
    raw = _raw(vector)
    if vector["input"]["kind"] == "transaction":
        return VersionedTransaction.from_bytes(raw).message
    return SoldersMessageV0.from_bytes(raw[1:]) if raw[0] & 0x80 else SoldersMessage.from_bytes(raw)


# -- the data files themselves -------------------------------------------------------------


def test_vector_set_covers_the_issue() -> None:
    categories = {vector["category"] for vector in VECTORS}
    for needed in (
        "legacy transfer",
        "compute budget + transfer",
        "v0 without address lookup table",
        "v0 with address lookup table",
        "durable nonce + transfer",
        "create account",
        "several signers",
    ):
        assert needed in categories, needed
    external = [vector for vector in VECTORS if vector["provenance"] == "external"]
    assert len(external) >= 5
    for vector in external:
        assert {"repository", "path", "commit", "tool"} <= vector["source"].keys()
    for vector in VECTORS:
        assert all(entry["public_test_key"] for entry in vector.get("secrets", []))


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_expected_facts_match_solders(vector: dict) -> None:
    """The recorded facts are what solders reads from the input bytes."""
    message = _solders_message(vector)
    expected = vector["expected"]
    assert expected["version"] == (0 if isinstance(message, SoldersMessageV0) else "legacy")
    assert expected["num_required_signatures"] == message.header.num_required_signatures
    assert expected["num_readonly_signed_accounts"] == message.header.num_readonly_signed_accounts
    assert expected["num_readonly_unsigned_accounts"] == message.header.num_readonly_unsigned_accounts
    assert expected["account_keys"] == [str(key) for key in message.account_keys]
    assert expected["recent_blockhash"] == str(message.recent_blockhash)
    assert base64.b64decode(expected["message_base64"]) == to_bytes_versioned(message)
    if vector["input"]["kind"] == "transaction":
        transaction = VersionedTransaction.from_bytes(_raw(vector))
        assert bytes(transaction) == _raw(vector)
        assert expected["signatures"] == [str(signature) for signature in transaction.signatures]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_published_signatures_verify(vector: dict) -> None:
    message_bytes = base64.b64decode(vector["expected"]["message_base64"])
    signers = [_key(key) for key in vector["expected"]["signer_keys"]]
    for position, signature in enumerate(vector["expected"]["signatures"]):
        nacl.signing.VerifyKey(signers[position]).verify(message_bytes, _key(signature))
    for seed in _seeds(vector):
        assert bytes(nacl.signing.SigningKey(seed).verify_key) in signers


# -- the parser ----------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_parse(vector: dict) -> None:
    solana = _solana()
    expected = vector["expected"]
    parsed = solana.parse_transaction_input(_raw(vector))
    message = parsed.message
    assert parsed.is_full_transaction is expected["is_full_transaction"]
    assert message.version == expected["version"]
    assert message.num_required_signatures == expected["num_required_signatures"]
    assert message.num_readonly_signed_accounts == expected["num_readonly_signed_accounts"]
    assert message.num_readonly_unsigned_accounts == expected["num_readonly_unsigned_accounts"]
    assert tuple(message.account_keys) == tuple(_key(key) for key in expected["account_keys"])
    assert message.fee_payer == _key(expected["fee_payer"])
    assert message.recent_blockhash == _key(expected["recent_blockhash"])
    assert [
        (lookup.account_key, tuple(lookup.writable_indexes), tuple(lookup.readonly_indexes))
        for lookup in message.address_table_lookups
    ] == [
        (_key(lookup["account_key"]), tuple(lookup["writable_indexes"]), tuple(lookup["readonly_indexes"]))
        for lookup in expected["address_table_lookups"]
    ]
    assert parsed.signing_bytes() == base64.b64decode(expected["message_base64"])
    assert message.serialized == base64.b64decode(expected["message_base64"])
    assert list(parsed.signatures) == [_key(signature) for signature in expected["signatures"]]
    # Parsing the bare message gives the same message.
    assert solana.parse_message(parsed.signing_bytes()) == message


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_decode_instructions(vector: dict) -> None:
    solana = _solana()
    expected = vector["expected"]
    message = solana.parse_transaction_input(_raw(vector)).message
    if not expected["decodable"]:
        with pytest.raises(_errors().InvalidTransaction):
            solana.decode_instructions(message)
        return
    decoded = solana.decode_instructions(message)
    assert [instruction.kind for instruction in decoded] == [i["kind"] for i in expected["instructions"]]
    assert [instruction.program_id for instruction in decoded] == [
        _key(i["program"]) for i in expected["instructions"]
    ]
    for instruction, facts in zip(decoded, expected["instructions"]):
        for field in ("lamports", "units", "micro_lamports", "text", "space", "seed", "amount", "decimals"):
            if field in facts:
                assert instruction.fields[field] == facts[field], (instruction.index, field)


@pytest.mark.parametrize("vector", FEE_PARAMS)
def test_spend(vector: dict) -> None:
    solana = _solana()
    expected = vector["expected"]
    message = solana.parse_transaction_input(_raw(vector)).message
    if not expected["decodable"]:
        with pytest.raises(_errors().InvalidTransaction):
            solana.compute_spend(message, message.fee_payer)
        return
    for wallet, spend in expected["spend"].items():
        summary = solana.compute_spend(message, _key(wallet))
        facts = (
            summary.wallet_is_fee_payer,
            summary.outflow_lamports,
            summary.wallet_fee_lamports,
            summary.spend_lamports,
        )
        assert facts == (
            spend["is_fee_payer"],
            spend["outflow_lamports"],
            spend["fee_lamports"],
            spend["total_lamports"],
        ), wallet
        expected_payments = [
            (d["instruction"], _key(d["to"]) if isinstance(d["to"], str) else None, d["lamports"])
            for d in spend["destinations"]
        ]
        actual_payments = [(p.instruction_index, p.destination, p.lamports) for p in summary.payments]
        assert actual_payments == expected_payments, wallet


@pytest.mark.parametrize("vector", FEE_PARAMS)
def test_compute_budget_and_fee(vector: dict) -> None:
    solana = _solana()
    expected = vector["expected"]
    if not expected["decodable"]:
        pytest.skip("undecodable: refused before any fee is computed")
    message = solana.parse_transaction_input(_raw(vector)).message
    summary = solana.compute_spend(message, message.fee_payer)
    budget = expected["compute_budget"]
    assert summary.compute_unit_price_micro_lamports == (budget["unit_price_micro_lamports"] or 0)
    assert summary.priority_fee_lamports == budget["priority_fee_lamports"]
    assert summary.fee_lamports == 5_000 * expected["num_required_signatures"] + budget["priority_fee_lamports"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_reserialize_with_published_signatures(vector: dict) -> None:
    """A full transaction comes back byte for byte when its own signatures are put back."""
    solana = _solana()
    raw = _raw(vector)
    parsed = solana.parse_transaction_input(raw)
    signers = [_key(key) for key in vector["expected"]["signer_keys"]]
    if not parsed.is_full_transaction:
        pytest.skip("bare message: see test_sign_with_published_seeds")
    for signer, signature in zip(signers, parsed.signatures):
        assert parsed.with_signature(signer, signature) == raw


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_sign_with_published_seeds(vector: dict) -> None:
    """Ed25519 over signing_bytes() with a published seed gives the published signature."""
    solana = _solana()
    raw = _raw(vector)
    seeds = _seeds(vector)
    if not seeds:
        pytest.skip("no secret published for this vector")
    parsed = solana.parse_transaction_input(raw)
    signers = list(parsed.message.signer_keys)
    current = raw
    for seed in seeds:
        key = nacl.signing.SigningKey(seed)
        pubkey = bytes(key.verify_key)
        signature = key.sign(parsed.signing_bytes()).signature
        if parsed.is_full_transaction:
            assert parsed.signatures[signers.index(pubkey)] == signature
        current = solana.parse_transaction_input(current).with_signature(pubkey, signature)
    if parsed.is_full_transaction:
        assert current == raw
    else:
        transaction = VersionedTransaction.from_bytes(current)
        assert to_bytes_versioned(transaction.message) == raw
        if len(seeds) == len(signers):
            assert transaction.verify_with_results() == [True] * len(signers)
    if "expected_signed_transaction" in vector:
        published = vector["expected_signed_transaction"]
        assert current == _decode(published["encoding"], published["data"])


@pytest.mark.parametrize("text", ["AAAA====", "AAA=A", "AB==", "AAAAAB=="])
def test_base64_input_must_be_canonical(text):
    from jarvis_wallet.errors import InvalidTransaction
    from jarvis_wallet.solana import decode_base64_input

    with pytest.raises(InvalidTransaction):
        decode_base64_input(text)
