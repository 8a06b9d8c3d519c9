"""keys.py: reading, checking and writing key material without ever showing it."""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import pickle
import stat
import traceback

import base58
import nacl.signing
import pytest

from jarvis_wallet.errors import KeyMaterialError
from jarvis_wallet.keys import (
    MIN_SHARED_SECRET_BYTES,
    Keypair,
    SharedSecret,
    generate_keypair_file,
    generate_shared_secret_file,
    load_keypair,
    load_keypair_file,
    load_shared_secret,
    parse_keypair,
    read_public_key,
)

# A dummy key used only by tests. Its seed is distinctive so any leak is easy to spot.
DUMMY_SEED = bytes(range(0xA0, 0xC0))
DUMMY_PUBLIC = bytes(nacl.signing.SigningKey(DUMMY_SEED).verify_key)
DUMMY_SECRET_KEY = DUMMY_SEED + DUMMY_PUBLIC
DUMMY_ADDRESS = base58.b58encode(DUMMY_PUBLIC).decode()
OTHER_PUBLIC = bytes(nacl.signing.SigningKey(bytes(32)).verify_key)


def _json_array(raw: bytes, *, spaced: bool = False) -> str:
    return json.dumps(list(raw), separators=(", ", ": ") if spaced else (",", ":"))


def _secret_renderings() -> list[str]:
    """Every way the dummy seed could show up in text if it leaked."""
    forms = []
    for raw in (DUMMY_SEED, DUMMY_SECRET_KEY):
        forms += [
            base58.b58encode(raw).decode(),
            raw.hex(),
            raw.hex().upper(),
            _json_array(raw),
            _json_array(raw, spaced=True),
            " ".join(str(b) for b in raw),
            str(int.from_bytes(raw, "big")),
            str(int.from_bytes(raw, "little")),
            repr(raw),
        ]
    # Fragments too: the first 8 seed bytes in each form (a partial leak is still a leak).
    head = DUMMY_SEED[:8]
    forms += [head.hex(), _json_array(head)[1:-1], ", ".join(map(str, head)), repr(head)[2:-1]]
    return forms


SECRET_RENDERINGS = _secret_renderings()


def assert_no_secret(text: str) -> None:
    for form in SECRET_RENDERINGS:
        assert form not in text, f"secret material leaked as {form[:20]}..."


def assert_error_is_clean(excinfo: pytest.ExceptionInfo[KeyMaterialError]) -> None:
    """The error shows no secret and carries no foreign exception that might quote the input."""
    error = excinfo.value
    assert error.__cause__ is None and error.__context__ is None
    rendered = "".join(traceback.format_exception(error))
    assert_no_secret(str(error) + repr(error) + rendered)


def write_private(path, text: str | bytes, mode: int = 0o600):
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(data)
    path.chmod(mode)
    return path


# --- Keypair ---------------------------------------------------------------------------------


def test_keypair_from_seed_derives_the_public_key():
    keypair = Keypair.from_seed(DUMMY_SEED)
    assert keypair.public_key == DUMMY_PUBLIC
    assert keypair.public_key_base58 == DUMMY_ADDRESS


def test_sign_gives_a_64_byte_signature_that_verifies():
    keypair = Keypair.from_seed(DUMMY_SEED)
    signature = keypair.sign(b"hello")
    assert len(signature) == 64
    nacl.signing.VerifyKey(DUMMY_PUBLIC).verify(b"hello", signature)
    assert keypair.verify(b"hello", signature)
    assert not keypair.verify(b"hellO", signature)


def test_sign_refuses_text():
    with pytest.raises(TypeError):
        Keypair.from_seed(DUMMY_SEED).sign("hello")  # type: ignore[arg-type]


def test_repr_and_str_show_only_the_public_key():
    keypair = Keypair.from_seed(DUMMY_SEED)
    assert repr(keypair) == f"Keypair(public_key={DUMMY_ADDRESS})"
    assert str(keypair) == repr(keypair)
    assert f"{keypair}" == repr(keypair)
    assert_no_secret(repr(keypair) + str(keypair) + repr([keypair]) + repr({"k": keypair}))


def test_keypair_has_no_instance_dict_to_dump():
    keypair = Keypair.from_seed(DUMMY_SEED)
    assert not hasattr(keypair, "__dict__")
    with pytest.raises(TypeError):
        vars(keypair)


@pytest.mark.parametrize(
    "attempt",
    [
        pickle.dumps,
        lambda k: pickle.dumps(k, protocol=0),
        copy.copy,
        copy.deepcopy,
        lambda k: k.__getstate__(),
        lambda k: k.__reduce__(),
    ],
    ids=["pickle", "pickle-protocol-0", "copy", "deepcopy", "getstate", "reduce"],
)
def test_keypair_cannot_be_pickled_or_copied(attempt):
    with pytest.raises(TypeError, match="cannot be pickled"):
        attempt(Keypair.from_seed(DUMMY_SEED))


def test_keypair_cannot_cross_a_multiprocessing_pipe():
    sender, receiver = multiprocessing.Pipe()
    try:
        with pytest.raises(TypeError, match="cannot be pickled"):
            sender.send(Keypair.from_seed(DUMMY_SEED))
        assert not receiver.poll(0.05)
    finally:
        sender.close()
        receiver.close()


def test_keypairs_compare_by_public_key():
    assert Keypair.from_seed(DUMMY_SEED) == Keypair.from_seed(DUMMY_SEED)
    assert Keypair.from_seed(DUMMY_SEED) != Keypair.from_seed(bytes(32))
    assert len({Keypair.from_seed(DUMMY_SEED), Keypair.from_seed(DUMMY_SEED)}) == 1


def test_generated_keypairs_differ():
    assert Keypair.generate().public_key != Keypair.generate().public_key


def test_from_secret_key_refuses_a_mismatched_public_half():
    assert Keypair.from_secret_key(DUMMY_SECRET_KEY).public_key == DUMMY_PUBLIC
    with pytest.raises(KeyMaterialError, match="does not match") as excinfo:
        Keypair.from_secret_key(DUMMY_SEED + OTHER_PUBLIC)
    assert_error_is_clean(excinfo)


@pytest.mark.parametrize("bad", [b"", DUMMY_SEED[:31], DUMMY_SEED + b"\x00"])
def test_from_seed_refuses_wrong_lengths(bad):
    with pytest.raises(KeyMaterialError):
        Keypair.from_seed(bad)


# --- parsing key text ------------------------------------------------------------------------

VALID_ENCODINGS = {
    "json-64": _json_array(DUMMY_SECRET_KEY),
    "json-64-spaced": _json_array(DUMMY_SECRET_KEY, spaced=True),
    "json-64-pretty": json.dumps(list(DUMMY_SECRET_KEY), indent=2) + "\n",
    "json-32-seed": _json_array(DUMMY_SEED),
    "base58-64": base58.b58encode(DUMMY_SECRET_KEY).decode(),
    "base58-64-newline": base58.b58encode(DUMMY_SECRET_KEY).decode() + "\n",
    "base58-32-seed": base58.b58encode(DUMMY_SEED).decode(),
}


@pytest.mark.parametrize("text", VALID_ENCODINGS.values(), ids=VALID_ENCODINGS.keys())
def test_parse_keypair_accepts_every_documented_encoding(text):
    assert parse_keypair(text, source="test").public_key == DUMMY_PUBLIC


# (input, fragment of the message). Each input embeds the secret so a leak would be visible.
B58_SECRET = base58.b58encode(DUMMY_SECRET_KEY).decode()
JSON_SECRET = _json_array(DUMMY_SECRET_KEY)
INVALID_ENCODINGS = {
    "mismatched-public-half": (_json_array(DUMMY_SEED + OTHER_PUBLIC), "does not match"),
    "base58-mismatch": (base58.b58encode(DUMMY_SEED + OTHER_PUBLIC).decode(), "does not match"),
    "63-bytes": (_json_array(DUMMY_SECRET_KEY[:63]), "holds 63 bytes"),
    "65-bytes": (_json_array(DUMMY_SECRET_KEY + b"\x01"), "holds 65 bytes"),
    "byte-out-of-range": (JSON_SECRET[:-1] + ",256]", "integers 0..255"),
    "negative": ("[-1," + JSON_SECRET[1:], "integers 0..255"),
    "boolean-element": ("[true," + JSON_SECRET[1:], "integers 0..255"),
    "float-element": ("[1.0," + JSON_SECRET[1:], "integers 0..255"),
    "string-element": ('["1",' + JSON_SECRET[1:], "integers 0..255"),
    "truncated-json": (JSON_SECRET[:-1], "integers 0..255"),
    "trailing-garbage": (JSON_SECRET + "x", "integers 0..255"),
    "nested": ("[" + JSON_SECRET + "]", "integers 0..255"),
    "deeply-nested": ("[" * 100_000, "integers 0..255"),
    "base58-bad-character": (B58_SECRET[:20] + "0" + B58_SECRET[20:], "base58"),
    "base58-non-ascii": (B58_SECRET + "é", "base58"),
    "hex": (DUMMY_SECRET_KEY.hex() + "0", "base58"),
    "object": ('{"secretKey": ' + JSON_SECRET + "}", "base58"),
    "empty": ("  \n", "is empty"),
}


@pytest.mark.parametrize(
    ("text", "fragment"), INVALID_ENCODINGS.values(), ids=INVALID_ENCODINGS.keys()
)
def test_parse_keypair_refuses_malformed_text_without_quoting_it(text, fragment):
    with pytest.raises(KeyMaterialError, match=fragment) as excinfo:
        parse_keypair(text, source="SOLANA_PRIVATE_KEY")
    assert str(excinfo.value).startswith("SOLANA_PRIVATE_KEY")
    assert_error_is_clean(excinfo)


# --- keypair files ---------------------------------------------------------------------------


def test_load_keypair_file_reads_a_solana_keygen_file(tmp_path):
    path = write_private(tmp_path / "id.json", JSON_SECRET)
    assert load_keypair_file(path).public_key == DUMMY_PUBLIC
    assert read_public_key(path) == DUMMY_ADDRESS
    assert read_public_key(str(path)) == DUMMY_ADDRESS


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606, 0o610, 0o601, 0o777])
def test_keypair_file_open_to_group_or_others_is_refused_like_ssh(tmp_path, mode):
    path = write_private(tmp_path / "id.json", JSON_SECRET, mode=mode)
    with pytest.raises(KeyMaterialError) as excinfo:
        load_keypair_file(path)
    assert str(excinfo.value) == (
        f"keypair file {path} is accessible by group or others (mode {mode:04o}); "
        f"run chmod 600 {path}"
    )
    assert_error_is_clean(excinfo)
    with pytest.raises(KeyMaterialError, match="accessible by group or others"):
        read_public_key(path)


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_owner_only_modes_are_accepted(tmp_path, mode):
    path = write_private(tmp_path / "id.json", JSON_SECRET, mode=mode)
    assert load_keypair_file(path).public_key == DUMMY_PUBLIC


def test_the_chmod_hint_quotes_awkward_paths(tmp_path):
    path = write_private(tmp_path / "my key.json", JSON_SECRET, mode=0o644)
    with pytest.raises(KeyMaterialError, match=r"run chmod 600 '.*/my key\.json'$"):
        load_keypair_file(path)


def test_a_directory_is_not_a_keypair_file(tmp_path):
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o700)
    with pytest.raises(KeyMaterialError, match="is not a regular file"):
        load_keypair_file(directory)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "id.json"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(KeyMaterialError, match="is not a regular file"):
        load_keypair_file(fifo)


def test_a_missing_keypair_file_is_named(tmp_path):
    with pytest.raises(KeyMaterialError, match=r"keypair file .*nope\.json does not exist"):
        load_keypair_file(tmp_path / "nope.json")


def test_a_symlink_to_a_private_file_is_followed(tmp_path):
    target = write_private(tmp_path / "real.json", JSON_SECRET)
    link = tmp_path / "id.json"
    link.symlink_to(target)
    assert load_keypair_file(link).public_key == DUMMY_PUBLIC


def test_an_oversized_file_is_refused(tmp_path):
    path = write_private(tmp_path / "id.json", JSON_SECRET + " " * 20_000)
    with pytest.raises(KeyMaterialError, match="larger than"):
        load_keypair_file(path)


def test_file_errors_never_quote_the_file(tmp_path):
    cases = {
        "mismatch.json": _json_array(DUMMY_SEED + OTHER_PUBLIC),
        "garbage.json": JSON_SECRET + "}",
        "base58.txt": B58_SECRET + "0",
        "short.json": _json_array(DUMMY_SECRET_KEY[:40]),
    }
    for name, text in cases.items():
        path = write_private(tmp_path / name, text)
        with pytest.raises(KeyMaterialError) as excinfo:
            load_keypair_file(path)
        assert str(path) in str(excinfo.value)
        assert_error_is_clean(excinfo)
    path = write_private(tmp_path / "latin1.json", b"\xff\xfe" + DUMMY_SEED)
    with pytest.raises(KeyMaterialError, match="not UTF-8") as excinfo:
        load_keypair_file(path)
    assert_error_is_clean(excinfo)


def test_load_keypair_prefers_the_path_over_the_environment(tmp_path):
    path = write_private(tmp_path / "id.json", _json_array(bytes(32) + OTHER_PUBLIC))
    assert load_keypair(path=path, env_value=JSON_SECRET).public_key == OTHER_PUBLIC
    assert load_keypair(path=None, env_value=JSON_SECRET).public_key == DUMMY_PUBLIC
    assert load_keypair(env_value=B58_SECRET).public_key == DUMMY_PUBLIC
    with pytest.raises(KeyMaterialError, match="no keypair given"):
        load_keypair()


def test_environment_errors_name_the_variable():
    with pytest.raises(KeyMaterialError, match="^SOLANA_PRIVATE_KEY") as excinfo:
        load_keypair(env_value=B58_SECRET[:-3])
    assert_error_is_clean(excinfo)


# --- generating keypair files ----------------------------------------------------------------


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def permissive_umask():
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_generate_writes_a_solana_keygen_file_with_mode_0600(tmp_path, permissive_umask):
    path = tmp_path / "id.json"
    keypair = generate_keypair_file(path)
    assert _mode(path) == 0o600
    numbers = json.loads(path.read_text())
    assert len(numbers) == 64 and all(type(n) is int and 0 <= n <= 255 for n in numbers)
    assert bytes(numbers[32:]) == keypair.public_key
    assert path.read_text() == "[" + ",".join(map(str, numbers)) + "]"  # solana-keygen's layout
    assert load_keypair_file(path) == keypair
    assert read_public_key(path) == keypair.public_key_base58
    assert_no_secret(repr(keypair))


def test_generate_creates_the_file_0600_from_the_first_instant(tmp_path, monkeypatch):
    """O_CREAT|O_EXCL with mode 0600 in the open call itself: there is no chmod-later window."""
    calls = []
    real_open = os.open

    def recording_open(path, flags, mode=0o777, **kwargs):
        calls.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    path = tmp_path / "id.json"
    generate_keypair_file(path)
    creates = [call for call in calls if call[1] & os.O_CREAT]
    assert creates == [(str(path), creates[0][1], 0o600)]
    assert creates[0][1] & os.O_EXCL


def test_generate_keeps_0600_under_a_strict_umask(tmp_path):
    previous = os.umask(0o277)
    try:
        generate_keypair_file(tmp_path / "id.json")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "id.json") == 0o600


def test_generate_refuses_to_overwrite_without_force(tmp_path):
    path = write_private(tmp_path / "id.json", JSON_SECRET)
    with pytest.raises(KeyMaterialError) as excinfo:
        generate_keypair_file(path)
    assert str(excinfo.value) == f"keypair file {path} already exists; use --force to overwrite it"
    assert path.read_text() == JSON_SECRET


def test_generate_refuses_a_dangling_symlink_without_force(tmp_path):
    link = tmp_path / "id.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(KeyMaterialError, match="already exists"):
        generate_keypair_file(link)
    assert not (tmp_path / "elsewhere.json").exists()


def test_generate_with_force_replaces_atomically(tmp_path, permissive_umask):
    path = write_private(tmp_path / "id.json", JSON_SECRET, mode=0o644)
    keypair = generate_keypair_file(path, force=True)
    assert _mode(path) == 0o600
    assert load_keypair_file(path) == keypair != Keypair.from_seed(DUMMY_SEED)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["id.json"]  # no temporary left behind


def test_generate_into_a_missing_directory_says_so(tmp_path):
    with pytest.raises(KeyMaterialError, match="its directory does not exist"):
        generate_keypair_file(tmp_path / "missing" / "id.json")
    with pytest.raises(KeyMaterialError, match="its directory does not exist"):
        generate_keypair_file(tmp_path / "missing" / "id.json", force=True)


def test_generate_with_force_onto_a_directory_fails_cleanly(tmp_path):
    target = tmp_path / "id.json"
    target.mkdir()
    with pytest.raises(KeyMaterialError, match="cannot write keypair file"):
        generate_keypair_file(target, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["id.json"]


# --- the shared secret -----------------------------------------------------------------------

DUMMY_SHARED = "s3cr3t-shared-between-signer-and-agent-0001"


def test_shared_secret_from_the_environment_is_its_exact_utf8_bytes():
    secret = load_shared_secret(env_value=DUMMY_SHARED + " \n", path=None)
    assert secret.value == (DUMMY_SHARED + " \n").encode()
    assert load_shared_secret(env_value="é" * 16, path=None).value == ("é" * 16).encode()


def test_the_environment_wins_over_the_file(tmp_path):
    path = write_private(tmp_path / "secret", "f" * 64)
    assert load_shared_secret(env_value=DUMMY_SHARED, path=path).value == DUMMY_SHARED.encode()
    assert load_shared_secret(env_value=None, path=path).value == b"f" * 64


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"a" * 40 + b"\n", b"a" * 40),
        (b"a" * 40, b"a" * 40),
        (b"a" * 40 + b"\n\n", b"a" * 40 + b"\n"),
        (b"a" * 40 + b"\r\n", b"a" * 40 + b"\r"),
        (b" " + b"a" * 40 + b" \n", b" " + b"a" * 40 + b" "),
    ],
)
def test_a_secret_file_loses_exactly_one_trailing_newline(tmp_path, content, expected):
    path = write_private(tmp_path / "secret", content)
    assert load_shared_secret(env_value=None, path=path).value == expected


def test_a_secret_file_is_held_to_keypair_file_rules(tmp_path):
    path = write_private(tmp_path / "secret", DUMMY_SHARED, mode=0o640)
    with pytest.raises(KeyMaterialError) as excinfo:
        load_shared_secret(env_value=None, path=path)
    assert str(excinfo.value) == (
        f"shared secret file {path} is accessible by group or others (mode 0640); "
        f"run chmod 600 {path}"
    )
    assert DUMMY_SHARED not in str(excinfo.value)


def test_short_secrets_are_refused_without_being_shown(tmp_path):
    short = "x" * (MIN_SHARED_SECRET_BYTES - 1)
    with pytest.raises(KeyMaterialError, match="holds 31 bytes") as excinfo:
        load_shared_secret(env_value=short, path=None)
    assert short not in str(excinfo.value)
    with pytest.raises(KeyMaterialError, match="holds 0 bytes"):
        load_shared_secret(env_value="", path=None)
    path = write_private(tmp_path / "secret", short + "\n")
    with pytest.raises(KeyMaterialError, match="holds 31 bytes"):
        load_shared_secret(env_value=None, path=path)
    assert len(load_shared_secret(env_value="x" * 32, path=None)) == 32


def test_a_secret_that_is_not_utf8_text_is_refused_cleanly():
    with pytest.raises(KeyMaterialError, match="not valid UTF-8") as excinfo:
        load_shared_secret(env_value="\udcff" * 40, path=None)
    assert excinfo.value.__context__ is None


def test_no_secret_source_is_an_error():
    with pytest.raises(KeyMaterialError, match="no shared secret"):
        load_shared_secret(env_value=None, path=None)


def test_shared_secret_hides_its_value():
    secret = SharedSecret(DUMMY_SHARED.encode())
    assert repr(secret) == f"SharedSecret(<{len(DUMMY_SHARED)} bytes hidden>)"
    assert str(secret) == repr(secret)
    assert DUMMY_SHARED not in repr([secret]) + f"{secret}"
    for attempt in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match="cannot be pickled"):
            attempt(secret)
    assert secret == SharedSecret(DUMMY_SHARED.encode())
    assert secret != SharedSecret(b"y" * 40)
    with pytest.raises(TypeError):
        hash(secret)
    with pytest.raises(TypeError):
        SharedSecret(DUMMY_SHARED)  # type: ignore[arg-type]


def test_generate_shared_secret_file(tmp_path, permissive_umask):
    path = tmp_path / "secret"
    secret = generate_shared_secret_file(path)
    assert _mode(path) == 0o600
    content = path.read_bytes()
    assert len(content) == 65 and content.endswith(b"\n")
    int(content[:64], 16)  # 64 hex digits
    assert secret.value == content[:64]
    assert load_shared_secret(env_value=None, path=path) == secret
    # The same text works as an agent's SIGNER_SHARED_SECRET.
    assert load_shared_secret(env_value=content[:64].decode(), path=None) == secret
    assert generate_shared_secret_file(tmp_path / "other") != secret


def test_generate_shared_secret_file_respects_force(tmp_path):
    path = tmp_path / "secret"
    first = generate_shared_secret_file(path)
    with pytest.raises(KeyMaterialError, match="use --force"):
        generate_shared_secret_file(path)
    assert load_shared_secret(env_value=None, path=path) == first
    second = generate_shared_secret_file(path, force=True)
    assert second != first and _mode(path) == 0o600
    assert load_shared_secret(env_value=None, path=path) == second
