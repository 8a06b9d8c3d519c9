"""`jarvis-wallet keygen` and `jarvis-wallet pubkey` end to end: real files, exact output, exit codes."""

from __future__ import annotations

import json
import os
import stat

import base58
import nacl.signing
import pytest

# A known dummy key (never used for funds): seed 0x01..0x20. Its bytes must never reach a message.
DUMMY_SEED = bytes(range(1, 33))
DUMMY_PUBLIC = bytes(nacl.signing.SigningKey(DUMMY_SEED).verify_key)
OTHER_PUBLIC = bytes(nacl.signing.SigningKey(bytes(range(101, 133))).verify_key)


def _json_array(data: bytes) -> str:
    return "[" + ",".join(str(b) for b in data) + "]"


def _write_private(path, text: str | bytes, mode: int = 0o600):
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    os.chmod(path, mode)
    return path


def _assert_no_key_material(text: str) -> None:
    """Neither half of the dummy key, in any encoding we accept, appears in ``text``."""
    for secret in (DUMMY_SEED, DUMMY_SEED + DUMMY_PUBLIC, DUMMY_SEED + OTHER_PUBLIC):
        assert base58.b58encode(secret).decode() not in text
        assert _json_array(secret)[1:40] not in text
        assert secret.hex() not in text
    assert ",".join(str(b) for b in DUMMY_SEED[:8]) not in text
    assert "Traceback" not in text


def _one_error_line(result) -> str:
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.endswith("\n")
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


# -- keygen ----------------------------------------------------------------------------------


def test_keygen_writes_a_solana_keygen_file_0600_whatever_the_umask(cli, tmp_path):
    path = tmp_path / "signer.json"
    old_umask = os.umask(0)  # the file must be 0600 from creation, not thanks to the umask
    try:
        result = cli("keygen", "--outfile", path)
    finally:
        os.umask(old_umask)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    printed = result.stdout.removesuffix("\n")
    assert result.stdout == printed + "\n" and "\n" not in printed

    numbers = json.loads(path.read_text())
    assert isinstance(numbers, list) and len(numbers) == 64
    assert all(type(n) is int and 0 <= n <= 255 for n in numbers)
    secret = bytes(numbers)
    assert base58.b58encode(secret[32:]).decode() == printed
    # PyNaCl re-derives the public half from the seed half.
    assert bytes(nacl.signing.SigningKey(secret[:32]).verify_key) == secret[32:]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    assert cli("pubkey", path).stdout == f"{printed}\n"


def test_keygen_never_overwrites_without_force(cli, tmp_path):
    path = tmp_path / "signer.json"
    first = cli("keygen", "--outfile", path)
    before = path.read_bytes()

    again = cli("keygen", "--outfile", path)
    assert again.exit_code == 2
    assert _one_error_line(again) == f"Error: keypair file {path} already exists; use --force to overwrite it\n"
    assert path.read_bytes() == before

    # A file that is not a keypair at all is protected the same way.
    other = _write_private(tmp_path / "notes.txt", "keep me\n", mode=0o644)
    refused = cli("keygen", "-o", other)
    assert refused.exit_code == 2
    assert other.read_text() == "keep me\n"
    assert first.stdout == cli("pubkey", path).stdout


def test_keygen_force_replaces_the_key(cli, tmp_path):
    path = tmp_path / "signer.json"
    old_key = cli("keygen", "--outfile", path).stdout
    os.chmod(path, 0o644)  # the replacement is 0600 again, not the old file's mode

    replaced = cli("keygen", "--outfile", path, "--force")
    assert replaced.exit_code == 0, replaced.stderr
    assert replaced.stdout != old_key
    assert cli("pubkey", path).stdout == replaced.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signer.json"]  # no temporary file left


def test_keygen_into_a_missing_directory(cli, tmp_path):
    path = tmp_path / "missing" / "signer.json"
    result = cli("keygen", "--outfile", path)
    assert result.exit_code == 2
    assert _one_error_line(result) == f"Error: cannot write keypair file {path}: its directory does not exist\n"
    assert not path.parent.exists()


def test_keygen_needs_an_outfile(cli):
    result = cli("keygen")
    assert result.exit_code == 2
    assert "Missing option '--outfile'" in result.stderr


# -- pubkey ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding",
    [
        pytest.param(lambda: _json_array(DUMMY_SEED + DUMMY_PUBLIC), id="solana-keygen-json"),
        pytest.param(lambda: _json_array(DUMMY_SEED + DUMMY_PUBLIC) + "\n", id="json-with-newline"),
        pytest.param(lambda: base58.b58encode(DUMMY_SEED + DUMMY_PUBLIC).decode(), id="base58-secret-key"),
        pytest.param(lambda: base58.b58encode(DUMMY_SEED).decode() + "\n", id="base58-seed"),
        pytest.param(lambda: _json_array(DUMMY_SEED), id="json-seed"),
    ],
)
def test_pubkey_prints_the_key_of_every_accepted_encoding(cli, tmp_path, encoding):
    path = _write_private(tmp_path / "key", encoding())
    result = cli("pubkey", path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == base58.b58encode(DUMMY_PUBLIC).decode() + "\n"
    assert result.stderr == ""


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660])
def test_pubkey_refuses_a_file_others_can_use(cli, tmp_path, mode):
    path = _write_private(tmp_path / "signer.json", _json_array(DUMMY_SEED + DUMMY_PUBLIC), mode=mode)
    result = cli("pubkey", path)
    assert result.exit_code == 2
    assert _one_error_line(result) == (
        f"Error: keypair file {path} is accessible by group or others (mode {mode:04o}); run chmod 600 {path}\n"
    )
    _assert_no_key_material(result.stderr)


def test_pubkey_chmod_hint_quotes_the_path(cli, tmp_path):
    path = _write_private(tmp_path / "my key.json", _json_array(DUMMY_SEED + DUMMY_PUBLIC), mode=0o644)
    result = cli("pubkey", path)
    assert result.exit_code == 2
    assert result.stderr.endswith(f"run chmod 600 '{path}'\n")


@pytest.mark.parametrize(
    "content, message",
    [
        pytest.param(_json_array(DUMMY_SEED + OTHER_PUBLIC),
                     ": the public key stored in it does not match the key derived from its seed", id="mismatched-halves"),
        pytest.param(base58.b58encode(DUMMY_SEED + OTHER_PUBLIC).decode(),
                     ": the public key stored in it does not match the key derived from its seed", id="mismatched-base58"),
        pytest.param(_json_array(DUMMY_SEED + DUMMY_PUBLIC + b"\x07"),
                     " holds 65 bytes; expected 64 (seed and public key) or 32 (seed)", id="65-bytes"),
        pytest.param(_json_array(DUMMY_SEED[:31]), " holds 31 bytes; expected 64 (seed and public key) or 32 (seed)", id="31-bytes"),
        pytest.param("[" + ",".join(str(b) for b in DUMMY_SEED) + ",256]",
                     " is not a JSON array of integers 0..255 (solana-keygen format)", id="byte-out-of-range"),
        pytest.param(_json_array(DUMMY_SEED + DUMMY_PUBLIC)[:-1],
                     " is not a JSON array of integers 0..255 (solana-keygen format)", id="truncated-json"),
        pytest.param("this is not a key " + DUMMY_SEED.hex(),
                     " is neither a JSON array of bytes (solana-keygen format) nor base58 text", id="not-a-key"),
        pytest.param("", " is empty", id="empty"),
        pytest.param(b"\xff\xfe" + DUMMY_SEED, " is not UTF-8 text", id="not-utf8"),
    ],
)
def test_pubkey_refuses_a_malformed_file_in_one_line_without_key_material(cli, tmp_path, content, message):
    path = _write_private(tmp_path / "signer.json", content)
    result = cli("pubkey", path)
    assert result.exit_code == 2
    assert _one_error_line(result) == f"Error: keypair file {path}{message}\n"
    _assert_no_key_material(result.stderr)
    assert base58.b58encode(OTHER_PUBLIC).decode() not in result.stderr


def test_pubkey_of_a_missing_file(cli, tmp_path):
    path = tmp_path / "nowhere.json"
    result = cli("pubkey", path)
    assert result.exit_code == 2
    assert _one_error_line(result) == f"Error: keypair file {path} does not exist\n"


def test_pubkey_of_a_directory(cli, tmp_path):
    os.chmod(tmp_path, 0o700)
    result = cli("pubkey", tmp_path)
    assert result.exit_code == 2
    assert _one_error_line(result) == f"Error: keypair file {tmp_path} is not a regular file\n"


def test_pubkey_of_an_oversized_file(cli, tmp_path):
    path = _write_private(tmp_path / "big.json", " " * 20_000 + _json_array(DUMMY_SEED + DUMMY_PUBLIC))
    result = cli("pubkey", path)
    assert result.exit_code == 2
    assert _one_error_line(result) == (
        f"Error: keypair file {path} is larger than 16384 bytes; it is not a keypair file\n"
    )


# -- encrypted keystores ---------------------------------------------------------------------


def _passphrase_fd(tmp_path, text: str) -> str:
    path = tmp_path / f"passphrase-{os.urandom(4).hex()}"
    path.write_text(text)
    return str(os.open(path, os.O_RDONLY))  # read to EOF and closed by the command


def test_keygen_encrypt_writes_only_a_keystore(cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = cli("keygen", "--encrypt", "--kdf", "interactive", "--outfile", out / "signer.keystore",
                 "--passphrase-fd", _passphrase_fd(tmp_path, "pw one\n"))
    assert result.exit_code == 0, result.stderr
    public = result.stdout.strip()
    assert [p.name for p in out.iterdir()] == ["signer.keystore"]
    document = json.loads((out / "signer.keystore").read_text())
    assert document["public_key"] == public and set(document) == {"format", "version", "public_key", "kdf", "cipher"}
    assert stat.S_IMODE((out / "signer.keystore").stat().st_mode) == 0o600
    shown = cli("pubkey", out / "signer.keystore", "--json")
    assert shown.json() == {"public_key": public, "path": str(out / "signer.keystore"), "encrypted": True}
    # Decrypted back with the passphrase (its trailing newline dropped), it is the same key.
    back = cli("keys", "decrypt", out / "signer.keystore", "--out", tmp_path / "back.json", "--yes",
               "--passphrase-fd", _passphrase_fd(tmp_path, "pw one"))
    assert back.exit_code == 0, back.stderr
    assert cli("pubkey", tmp_path / "back.json").stdout.strip() == public


def test_keys_encrypt_and_decrypt_round_trip_the_dummy_key_without_showing_it(cli, tmp_path):
    source = _write_private(tmp_path / "dummy.json", _json_array(DUMMY_SEED + DUMMY_PUBLIC))
    sealed = cli("keys", "encrypt", source, "--out", tmp_path / "dummy.keystore", "--kdf", "interactive",
                 "--passphrase-fd", _passphrase_fd(tmp_path, "s3cret pass"))
    assert sealed.exit_code == 0, sealed.stderr
    assert sealed.stdout == base58.b58encode(DUMMY_PUBLIC).decode() + "\n"
    assert "the plaintext" in sealed.stderr and "shred" in sealed.stderr
    keystore_text = (tmp_path / "dummy.keystore").read_text()
    _assert_no_key_material(keystore_text)
    assert "s3cret pass" not in keystore_text

    unconfirmed = cli("keys", "decrypt", tmp_path / "dummy.keystore", "--out", tmp_path / "x.json",
                      "--passphrase-fd", _passphrase_fd(tmp_path, "s3cret pass"))
    assert unconfirmed.exit_code == 2
    assert _one_error_line(unconfirmed) == (
        "Error: decrypting writes the key in plaintext: confirm with --yes (no terminal to ask on)\n"
    )
    assert not (tmp_path / "x.json").exists()

    wrong = cli("keys", "decrypt", tmp_path / "dummy.keystore", "--out", tmp_path / "x.json", "--yes",
                "--passphrase-fd", _passphrase_fd(tmp_path, "s3cret pas"))
    assert wrong.exit_code == 2
    assert _one_error_line(wrong) == (
        f"Error: cannot decrypt keystore {tmp_path / 'dummy.keystore'}: wrong passphrase (or the keystore was altered)\n"
    )
    assert not (tmp_path / "x.json").exists()

    exported = cli("keys", "decrypt", tmp_path / "dummy.keystore", "--out", tmp_path / "x.json", "--yes",
                   "--passphrase-fd", _passphrase_fd(tmp_path, "s3cret pass"))
    assert exported.exit_code == 0, exported.stderr
    assert (tmp_path / "x.json").read_bytes() == source.read_bytes()
    for result in (sealed, unconfirmed, wrong, exported):
        _assert_no_key_material(result.stdout + result.stderr)
        assert "s3cret" not in result.stdout + result.stderr


def test_a_passphrase_is_never_an_argument(cli, tmp_path):
    """There is no option that takes the passphrase itself: argv is readable by every user."""
    import typer

    from jarvis_wallet.cli import app

    def options(command):
        for sub in getattr(command, "commands", {}).values():
            yield from options(sub)
        for param in getattr(command, "params", []):
            yield from getattr(param, "opts", [])

    names = set(options(typer.main.get_command(app)))
    assert "--passphrase" not in names
    assert {name for name in names if "passphrase" in name} == {"--passphrase-fd", "--passphrase-credential"}
