"""The encrypted keystore: round trips, one error for a wrong passphrase or any altered field,
bounded KDF parameters, and no plaintext key on disk."""

from __future__ import annotations

import base64
import json
import os

import base58
import nacl.signing
import pytest

from jarvis_wallet.errors import KeyMaterialError
from jarvis_wallet.keys import Keypair, generate_keypair_file, load_keypair_file
from jarvis_wallet.keystore import (
    KDF_STRENGTHS,
    KEYSTORE_VERSION,
    Passphrase,
    decrypt_keystore_file,
    encrypt_keypair,
    encrypt_keypair_file,
    load_keystore,
    parse_keystore,
    read_keystore_if_any,
    write_keystore,
)

# A known dummy key (never used for funds): seed 0x01..0x20.
DUMMY_SEED = bytes(range(1, 33))
DUMMY = Keypair.from_seed(DUMMY_SEED)
PASSPHRASE = "correct horse battery staple"


def secret_encodings(seed: bytes = DUMMY_SEED) -> list[bytes]:
    """Every form the seed could take in a file or an output."""
    public = bytes(nacl.signing.SigningKey(seed).verify_key)
    full = seed + public
    return [
        seed, full, seed.hex().encode(), full.hex().encode(),
        base58.b58encode(seed), base58.b58encode(full),
        base64.b64encode(seed), base64.b64encode(full),
        ",".join(str(b) for b in seed[:12]).encode(), ", ".join(str(b) for b in seed[:12]).encode(),
    ]


def assert_no_secret(data: bytes, *, passphrase: str | None = PASSPHRASE) -> None:
    for form in secret_encodings():
        assert form not in data, form
    if passphrase is not None:
        assert passphrase.encode() not in data


def scan_tree(root) -> list[str]:
    """Every file under ``root`` (tests write nothing else there) checked for the dummy secret."""
    scanned = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                assert_no_secret(open(path, "rb").read())
                scanned.append(path)
    return scanned


def _keystore(path, **kwargs):
    write_keystore(path, DUMMY, Passphrase(PASSPHRASE), strength="interactive", **kwargs)
    return path


def test_round_trip_and_format(tmp_path):
    path = _keystore(tmp_path / "signer.keystore")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    document = json.loads(path.read_text())
    assert document["format"] == "jarvis-wallet-keystore" and document["version"] == KEYSTORE_VERSION
    assert document["public_key"] == DUMMY.public_key_base58
    ops, mem = KDF_STRENGTHS["interactive"]
    assert document["kdf"] == {"name": "argon2id", "opslimit": ops, "memlimit": mem, "salt": document["kdf"]["salt"]}
    assert len(base64.b64decode(document["kdf"]["salt"])) == 16
    assert document["cipher"]["name"] == "xchacha20poly1305-ietf"
    assert len(base64.b64decode(document["cipher"]["nonce"])) == 24
    assert len(base64.b64decode(document["cipher"]["ciphertext"])) == 48
    keypair = load_keystore(path, Passphrase(PASSPHRASE))
    assert keypair == DUMMY and keypair.sign(b"x") == DUMMY.sign(b"x")
    assert_no_secret(path.read_bytes())


def test_salt_and_nonce_are_fresh_each_time():
    first = json.loads(encrypt_keypair(DUMMY, Passphrase(PASSPHRASE), strength="interactive"))
    second = json.loads(encrypt_keypair(DUMMY, Passphrase(PASSPHRASE), strength="interactive"))
    assert first["kdf"]["salt"] != second["kdf"]["salt"]
    assert first["cipher"]["nonce"] != second["cipher"]["nonce"]
    assert first["cipher"]["ciphertext"] != second["cipher"]["ciphertext"]


def test_a_wrong_passphrase_is_one_clear_error(tmp_path):
    path = _keystore(tmp_path / "k")
    with pytest.raises(KeyMaterialError) as caught:
        load_keystore(path, Passphrase("correct horse battery stapler"))
    assert str(caught.value) == f"cannot decrypt keystore {path}: wrong passphrase (or the keystore was altered)"
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def _flip(text: str) -> str:
    """The same base64 text with one bit of its decoded bytes flipped."""
    raw = bytearray(base64.b64decode(text))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _other_address() -> str:
    return Keypair.from_seed(bytes(range(101, 133))).public_key_base58


TAMPERS = {
    "salt": lambda d: d["kdf"].__setitem__("salt", _flip(d["kdf"]["salt"])),
    "nonce": lambda d: d["cipher"].__setitem__("nonce", _flip(d["cipher"]["nonce"])),
    "ciphertext": lambda d: d["cipher"].__setitem__("ciphertext", _flip(d["cipher"]["ciphertext"])),
    "tag": lambda d: d["cipher"].__setitem__(
        "ciphertext", base64.b64encode(base64.b64decode(d["cipher"]["ciphertext"])[:-1] + b"\0").decode()
    ),
    "public_key": lambda d: d.__setitem__("public_key", _other_address()),
    "opslimit": lambda d: d["kdf"].__setitem__("opslimit", d["kdf"]["opslimit"] + 1),
    "memlimit": lambda d: d["kdf"].__setitem__("memlimit", d["kdf"]["memlimit"] + 1024),
}


@pytest.mark.parametrize("field", sorted(TAMPERS))
def test_any_altered_field_fails_decryption(tmp_path, field):
    """The tag covers every field: a changed public key or KDF parameter fails like a wrong passphrase."""
    path = _keystore(tmp_path / "k")
    document = json.loads(path.read_text())
    TAMPERS[field](document)
    path.write_text(json.dumps(document))
    with pytest.raises(KeyMaterialError, match="wrong passphrase \\(or the keystore was altered\\)"):
        load_keystore(path, Passphrase(PASSPHRASE))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.__setitem__("version", 2), "keystore version 2; this jarvis-wallet reads version 1"),
        (lambda d: d.__setitem__("version", True), "keystore version True"),
        (lambda d: d.__setitem__("format", "other"), "is not a jarvis-wallet keystore"),
        (lambda d: d["kdf"].__setitem__("name", "scrypt"), "unsupported KDF or cipher"),
        (lambda d: d["cipher"].__setitem__("name", "xsalsa20poly1305"), "unsupported KDF or cipher"),
        (lambda d: d["kdf"].__setitem__("memlimit", 2**40), "memlimit must be an integer"),
        (lambda d: d["kdf"].__setitem__("opslimit", 10**9), "opslimit must be an integer"),
        (lambda d: d["kdf"].__setitem__("salt", "AAAA"), "salt is not canonical base64 of 16 bytes"),
        (lambda d: d["cipher"].__setitem__("nonce", "not base64!"), "nonce is not canonical base64"),
        (lambda d: d.__setitem__("extra", 1), "unexpected or missing fields"),
        (lambda d: d.pop("public_key"), "unexpected or missing fields"),
    ],
)
def test_malformed_keystores_are_refused_before_any_kdf(tmp_path, change, message):
    """A crafted file cannot make the signer allocate a terabyte: bounds are checked first."""
    path = _keystore(tmp_path / "k")
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    with pytest.raises(KeyMaterialError, match=message.replace("(", "\\(").replace(")", "\\)")):
        load_keystore(path, Passphrase(PASSPHRASE))


def test_a_keystore_is_refused_when_others_can_read_it(tmp_path):
    path = _keystore(tmp_path / "k")
    path.chmod(0o644)
    with pytest.raises(KeyMaterialError, match="accessible by group or others"):
        load_keystore(path, Passphrase(PASSPHRASE))


def test_encrypt_then_decrypt_files_writes_no_plaintext_but_the_export(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    source = plain / "signer.json"
    source.write_text("[" + ",".join(str(b) for b in DUMMY_SEED + DUMMY.public_key) + "]")
    source.chmod(0o600)
    sealed = tmp_path / "sealed"
    sealed.mkdir()
    encrypt_keypair_file(source, sealed / "signer.keystore", Passphrase(PASSPHRASE), strength="interactive")
    assert scan_tree(sealed) == [str(sealed / "signer.keystore")]  # nothing else written, no temp left
    assert read_keystore_if_any(sealed / "signer.keystore").public_key == DUMMY.public_key_base58
    assert read_keystore_if_any(source) is None
    exported = tmp_path / "exported.json"
    decrypt_keystore_file(sealed / "signer.keystore", exported, Passphrase(PASSPHRASE))
    assert load_keypair_file(exported) == DUMMY
    assert exported.read_bytes() == source.read_bytes()
    assert oct(exported.stat().st_mode & 0o777) == "0o600"


def test_generated_keys_round_trip(tmp_path):
    generate_keypair_file(tmp_path / "k.json")
    keypair = load_keypair_file(tmp_path / "k.json")
    encrypt_keypair_file(tmp_path / "k.json", tmp_path / "k.keystore", Passphrase("pw"), strength="interactive")
    assert load_keystore(tmp_path / "k.keystore", Passphrase("pw")) == keypair


def test_passphrase_hides_and_wipes():
    passphrase = Passphrase(PASSPHRASE)
    assert PASSPHRASE not in repr(passphrase) and PASSPHRASE not in str(passphrase)
    passphrase.wipe()
    assert passphrase._bytes() == bytes(len(PASSPHRASE))
    with pytest.raises(KeyMaterialError):
        Passphrase("")
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(Passphrase("x"))


def test_parse_refuses_non_json():
    for data in (b"", b"{", b"[1,2]", b"\xff\xfe", b'{"format": "jarvis-wallet-keystore"}'):
        with pytest.raises(KeyMaterialError):
            parse_keystore(data, source="k")
