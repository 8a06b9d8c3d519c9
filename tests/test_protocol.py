"""protocol.py: framing, request validation, HMAC, freshness, replay, responses, legacy mode,
and the worked example of docs/protocol.md recomputed from the code."""

from __future__ import annotations

import base64
import codecs
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import base58
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jarvis_wallet import protocol
from jarvis_wallet.errors import AuthenticationFailed, PolicyDenied, ProtocolError
from jarvis_wallet.keys import Keypair, SharedSecret
from jarvis_wallet.protocol import (
    ERROR_CODES,
    MAX_LINE_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_PURPOSE_CHARS,
    MAX_TX_BYTES,
    FrameBuffer,
    ReplayCache,
    Request,
    authenticate_request,
    build_request,
    canonical_hmac_input,
    check_freshness,
    compute_hmac,
    compute_legacy_hmac,
    decode_frame,
    encode_frame,
    error_response,
    error_response_for,
    is_legacy_request,
    legacy_error_code,
    legacy_error_response,
    legacy_ok_response,
    ok_response,
    parse_legacy_request,
    parse_request,
    request_id_for_reply,
    sign_request,
    verify_legacy_hmac,
    verify_request_hmac,
)

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"jarvis-wallet-example-secret-0001"
REQUEST_ID = "3f1c9a52-7b4e-4d0a-9c6f-2e8b5d7a1f03"
OTHER_ID = "b0e5d1c4-2a7f-4c39-8e16-7d4f9a3b2c58"
NOW_MS = 1_767_225_600_000
TX_BYTES = bytes([1]) + bytes(64) + bytes([1, 0, 1, 1]) + bytes(range(64)) + bytes([0])
TX_BASE64 = base64.b64encode(TX_BYTES).decode()


def sign_fields(**overrides):
    fields = {"op": "sign", "requestId": REQUEST_ID, "timestamp": NOW_MS, "txBase64": TX_BASE64}
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def signed(**overrides):
    return sign_request(SECRET, sign_fields(**overrides))


def refused(call, *args, **kwargs) -> ProtocolError | AuthenticationFailed:
    with pytest.raises((ProtocolError, AuthenticationFailed)) as excinfo:
        call(*args, **kwargs)
    return excinfo.value


# --- framing ---------------------------------------------------------------------------------


def test_encode_frame_is_compact_ascii_json_and_one_newline():
    line = encode_frame({"requestId": None, "ok": True, "text": "café ☕"})
    assert line == b'{"requestId":null,"ok":true,"text":"caf\\u00e9 \\u2615"}\n'
    assert decode_frame(line) == {"requestId": None, "ok": True, "text": "café ☕"}


def test_encode_frame_never_fails_on_odd_text_and_refuses_nan():
    assert decode_frame(encode_frame({"m": "\udc80\n\x00"})) == {"m": "\udc80\n\x00"}
    with pytest.raises(ValueError):
        encode_frame({"x": float("nan")})


def test_encode_frame_refuses_oversized_frames():
    assert refused(encode_frame, {"x": "a" * MAX_LINE_BYTES}).wire_code == "line_too_long"


def test_decode_frame_accepts_a_line_with_or_without_its_newline():
    assert decode_frame(b'{"a":1}') == decode_frame(b'{"a":1}\n') == {"a": 1}
    assert decode_frame(b' {"a":1} \r\n') == {"a": 1}


DECODE_FAILURES = {
    "not-utf8": (b'{"a":"\xff"}', "bad_request", "not valid UTF-8"),
    "overlong-utf8": (b'{"a":"\xc0\xaf"}', "bad_request", "not valid UTF-8"),
    "utf8-bom": (b'\xef\xbb\xbf{"a":1}', "bad_request", "not valid JSON"),
    "empty": (b"", "bad_request", "not valid JSON"),
    "not-json": (b"hello", "bad_request", "not valid JSON"),
    "truncated": (b'{"a":', "bad_request", "not valid JSON"),
    "two-objects": (b'{"a":1}{"b":2}', "bad_request", "not valid JSON"),
    "array": (b"[1,2]", "bad_request", "not a JSON object"),
    "string": (b'"x"', "bad_request", "not a JSON object"),
    "null": (b"null", "bad_request", "not a JSON object"),
    "duplicate-key": (b'{"op":"ping","op":"sign"}', "bad_request", "duplicate key"),
    "nested-duplicate": (b'{"a":{"b":1,"b":1}}', "bad_request", "duplicate key"),
    "nan": (b'{"a":NaN}', "bad_request", "non-finite"),
    "infinity": (b'{"a":-Infinity}', "bad_request", "non-finite"),
    "overflowing-float": (b'{"a":1e999}', "bad_request", "non-finite"),
    "huge-integer": (b'{"a":' + b"9" * 5000 + b"}", "bad_request", "too large"),
    "deep-nesting": (b'{"a":' + b"[" * 30_000 + b"]" * 30_000 + b"}", "bad_request", "nested"),
    "too-long": (b'{"a":"' + b"x" * MAX_LINE_BYTES + b'"}', "line_too_long", "exceeds"),
}


@pytest.mark.parametrize(
    ("line", "code", "fragment"), DECODE_FAILURES.values(), ids=DECODE_FAILURES.keys()
)
def test_decode_frame_refusals_have_stable_codes(line, code, fragment):
    error = refused(decode_frame, line)
    assert isinstance(error, ProtocolError)
    assert error.wire_code == code
    assert fragment in error.message
    assert error.__context__ is None  # JSONDecodeError.doc (the whole line) is not carried along


def test_decode_frame_accepts_exactly_the_maximum_length():
    body = b'{"a":"' + b"x" * (MAX_LINE_BYTES - 8) + b'"}'
    assert len(body) == MAX_LINE_BYTES
    assert decode_frame(body + b"\n")["a"] == "x" * (MAX_LINE_BYTES - 8)


def test_frame_buffer_reassembles_lines_across_chunks():
    buffer = FrameBuffer()
    assert buffer.feed(b'{"a"') == []
    assert buffer.feed(b':1}\n{"b":2}\n{"c"') == [b'{"a":1}', b'{"b":2}']
    assert buffer.pending_bytes == 4
    assert buffer.feed(b":3}\n") == [b'{"c":3}']
    assert buffer.feed(b"\n\n") == [b"", b""]
    assert buffer.pending_bytes == 0


def test_frame_buffer_allows_a_line_of_exactly_the_maximum():
    buffer = FrameBuffer(max_line_bytes=10)
    assert buffer.feed(b"0123456789") == []
    assert buffer.feed(b"\n") == [b"0123456789"]


def test_frame_buffer_refuses_an_unfinished_line_over_the_limit():
    buffer = FrameBuffer(max_line_bytes=10)
    buffer.feed(b"01234")
    error = refused(buffer.feed, b"567890")
    assert error.wire_code == "line_too_long"


def test_frame_buffer_refuses_a_finished_line_over_the_limit():
    buffer = FrameBuffer(max_line_bytes=10)
    assert refused(buffer.feed, b"ok\n01234567890\n").wire_code == "line_too_long"


def test_frame_buffer_holds_at_most_the_limit_of_a_trickled_line():
    buffer = FrameBuffer()
    start = time.perf_counter()
    for _ in range(MAX_LINE_BYTES):
        buffer.feed(b"x")
    assert buffer.pending_bytes == MAX_LINE_BYTES
    with pytest.raises(ProtocolError):
        buffer.feed(b"x")
    # Not a timing assertion on speed, a guard against rescanning: quadratic work would take
    # minutes here; linear work takes milliseconds.
    assert time.perf_counter() - start < 30


# --- requests --------------------------------------------------------------------------------


def test_parse_request_types_every_field():
    request = parse_request(signed(purpose="coffee"))
    assert request == Request(
        op="sign",
        request_id=REQUEST_ID,
        timestamp_ms=NOW_MS,
        hmac=request.hmac,
        tx_base64=TX_BASE64,
        tx_bytes=TX_BYTES,
        purpose="coffee",
    )
    assert request.requires_authentication
    assert request.to_wire() == signed(purpose="coffee")
    assert "tx_bytes" not in repr(request)


@pytest.mark.parametrize(
    "fields",
    [
        {"op": "ping", "requestId": REQUEST_ID},
        {"op": "pubkey", "requestId": REQUEST_ID},
        {"op": "ping", "requestId": REQUEST_ID, "timestamp": NOW_MS},
        sign_request(SECRET, {"op": "ping", "requestId": REQUEST_ID, "timestamp": NOW_MS}),
        sign_request(SECRET, {"op": "status", "requestId": REQUEST_ID, "timestamp": NOW_MS}),
        sign_request(
            SECRET,
            {"op": "sign_message", "requestId": REQUEST_ID, "timestamp": NOW_MS, "message": "hi"},
        ),
        signed(),
        signed(purpose=""),
        signed(purpose="x" * MAX_PURPOSE_CHARS),
        signed(purpose="☕" * MAX_PURPOSE_CHARS),
        signed(purpose="emoji 👩‍👩‍👧 with joiners, Arabic مرحبا, accents é"),
        signed(txBase64=base64.b64encode(b"\x01" * MAX_TX_BYTES).decode()),
        signed(timestamp=0),
        signed(timestamp=2**53 - 1),
    ],
    ids=lambda f: f"{f['op']}-{'+'.join(sorted(f))}"[:60],
)
def test_valid_requests_round_trip(fields):
    request = parse_request(fields)
    assert request.to_wire() == fields
    assert parse_request(decode_frame(encode_frame(fields))) == request


def test_only_authenticated_ops_require_authentication():
    assert not parse_request({"op": "ping", "requestId": REQUEST_ID}).requires_authentication
    pinged = sign_request(SECRET, {"op": "ping", "requestId": REQUEST_ID, "timestamp": NOW_MS})
    assert parse_request(pinged).requires_authentication


def _message_request(message):
    return sign_request(
        SECRET,
        {"op": "sign_message", "requestId": REQUEST_ID, "timestamp": NOW_MS, "message": message},
    )


HMAC_HEX = "0" * 64
PARSE_FAILURES = {
    "missing-op": ({"requestId": REQUEST_ID}, "bad_request", "missing field 'op'"),
    "op-not-string": ({"op": 1, "requestId": REQUEST_ID}, "bad_request", "'op' must be"),
    "unknown-op": ({"op": "sing", "requestId": REQUEST_ID}, "unknown_op", "unknown op 'sing'"),
    "op-case": ({"op": "PING", "requestId": REQUEST_ID}, "unknown_op", "unknown op"),
    "unknown-field": (
        {"op": "ping", "requestId": REQUEST_ID, "extra": 1},
        "bad_request",
        "unknown field(s): 'extra'",
    ),
    "field-case": (
        {"op": "ping", "requestid": REQUEST_ID},
        "bad_request",
        "unknown field(s): 'requestid'",
    ),
    "field-not-for-op": (
        {"op": "ping", "requestId": REQUEST_ID, "txBase64": TX_BASE64},
        "bad_request",
        "not allowed for op 'ping'",
    ),
    "purpose-on-status": (
        {"op": "status", "requestId": REQUEST_ID, "timestamp": NOW_MS, "hmac": HMAC_HEX,
         "purpose": "x"},
        "bad_request",
        "not allowed for op 'status'",
    ),
    "message-on-sign": (sign_fields(hmac=HMAC_HEX, message="hi"), "bad_request", "not allowed"),
    "tx-on-sign-message": (
        {"op": "sign_message", "requestId": REQUEST_ID, "timestamp": NOW_MS, "hmac": HMAC_HEX,
         "message": "hi", "txBase64": TX_BASE64},
        "bad_request",
        "not allowed",
    ),
    "missing-request-id": ({"op": "ping"}, "bad_request", "missing field 'requestId'"),
    "missing-hmac": (sign_fields(), "bad_request", "missing field 'hmac'"),
    "missing-timestamp": (sign_fields(timestamp=None, hmac=HMAC_HEX), "bad_request", "'timestamp'"),
    "missing-tx": (sign_fields(txBase64=None, hmac=HMAC_HEX), "bad_request", "'txBase64'"),
    "status-without-hmac": (
        {"op": "status", "requestId": REQUEST_ID, "timestamp": NOW_MS},
        "bad_request",
        "missing field 'hmac'",
    ),
    "ping-hmac-without-timestamp": (
        {"op": "ping", "requestId": REQUEST_ID, "hmac": HMAC_HEX},
        "bad_request",
        "missing field 'timestamp'",
    ),
    "request-id-uppercase": (
        {"op": "ping", "requestId": REQUEST_ID.upper()}, "bad_request", "lowercase UUID"),
    "request-id-braces": (
        {"op": "ping", "requestId": "{" + REQUEST_ID + "}"}, "bad_request", "lowercase UUID"),
    "request-id-no-dashes": (
        {"op": "ping", "requestId": REQUEST_ID.replace("-", "")}, "bad_request", "UUID"),
    "request-id-trailing-newline": (
        {"op": "ping", "requestId": REQUEST_ID + "\n"}, "bad_request", "UUID"),
    "request-id-unicode-digits": (
        {"op": "ping", "requestId": "٣" + REQUEST_ID[1:]}, "bad_request", "UUID"),
    "request-id-number": ({"op": "ping", "requestId": 7}, "bad_request", "must be a string"),
    "timestamp-bool": (sign_fields(timestamp=True, hmac=HMAC_HEX), "bad_request", "integer"),
    "timestamp-float": (sign_fields(timestamp=1.0 * NOW_MS, hmac=HMAC_HEX), "bad_request", "int"),
    "timestamp-string": (sign_fields(timestamp=str(NOW_MS), hmac=HMAC_HEX), "bad_request", "int"),
    "timestamp-negative": (sign_fields(timestamp=-1, hmac=HMAC_HEX), "bad_request", "between"),
    "timestamp-too-big": (sign_fields(timestamp=2**53, hmac=HMAC_HEX), "bad_request", "between"),
    "hmac-uppercase": (sign_fields(hmac="A" * 64), "bad_request", "lowercase hexadecimal"),
    "hmac-short": (sign_fields(hmac="a" * 63), "bad_request", "64 lowercase"),
    "hmac-not-string": (sign_fields(hmac=1), "bad_request", "must be a string"),
    "tx-not-string": (sign_fields(txBase64=["x"], hmac=HMAC_HEX), "bad_request", "a string"),
    "tx-empty": (sign_fields(txBase64="", hmac=HMAC_HEX), "invalid_tx", "empty"),
    "tx-noncanonical-bits": (sign_fields(txBase64="AB==", hmac=HMAC_HEX), "invalid_tx", "canon"),
    "tx-missing-padding": (sign_fields(txBase64="AA", hmac=HMAC_HEX), "invalid_tx", "canonical"),
    "tx-whitespace": (sign_fields(txBase64=TX_BASE64[:8] + "\n" + TX_BASE64[8:], hmac=HMAC_HEX),
                      "invalid_tx", "canonical"),
    "tx-urlsafe": (sign_fields(txBase64="-_-_", hmac=HMAC_HEX), "invalid_tx", "canonical"),
    "tx-non-ascii": (sign_fields(txBase64="AAé=", hmac=HMAC_HEX), "invalid_tx", "canonical"),
    "tx-too-long": (
        sign_fields(txBase64=base64.b64encode(bytes(MAX_TX_BYTES + 1)).decode(), hmac=HMAC_HEX),
        "invalid_tx",
        "1232 bytes",
    ),
    "purpose-too-long": (sign_fields(hmac=HMAC_HEX, purpose="x" * 513), "bad_request", "512"),
    "purpose-not-string": (sign_fields(hmac=HMAC_HEX, purpose=5), "bad_request", "string"),
    "purpose-escape-sequence": (
        sign_fields(hmac=HMAC_HEX, purpose="\x1b[2Jok"), "bad_request", "control"),
    "purpose-newline": (sign_fields(hmac=HMAC_HEX, purpose="a\nb"), "bad_request", "control"),
    "purpose-c1-control": (sign_fields(hmac=HMAC_HEX, purpose="a\x9bb"), "bad_request", "control"),
    "purpose-bidi-override": (
        sign_fields(hmac=HMAC_HEX, purpose="pay \u202egnp.exe"), "bad_request", "bidi"),
    "purpose-line-separator": (
        sign_fields(hmac=HMAC_HEX, purpose="a\u2028b"), "bad_request", "line-separator"),
    "purpose-lone-surrogate": (
        sign_fields(hmac=HMAC_HEX, purpose="a\ud800"), "bad_request", "surrogate"),
    "message-empty": (_message_request("") | {"hmac": HMAC_HEX}, "bad_request", "empty"),
    "message-too-long": (
        {"op": "sign_message", "requestId": REQUEST_ID, "timestamp": NOW_MS, "hmac": HMAC_HEX,
         "message": "é" * (MAX_MESSAGE_BYTES // 2 + 1)},
        "bad_request",
        f"at most {MAX_MESSAGE_BYTES}",
    ),
    "message-control": (
        {"op": "sign_message", "requestId": REQUEST_ID, "timestamp": NOW_MS, "hmac": HMAC_HEX,
         "message": "a\rb"},
        "bad_request",
        "control",
    ),
    "message-not-string": (
        {"op": "sign_message", "requestId": REQUEST_ID, "timestamp": NOW_MS, "hmac": HMAC_HEX,
         "message": {"text": "hi"}},
        "bad_request",
        "string",
    ),
    "not-an-object": ([], "bad_request", "not a JSON object"),
}


@pytest.mark.parametrize(
    ("obj", "code", "fragment"), PARSE_FAILURES.values(), ids=PARSE_FAILURES.keys()
)
def test_parse_request_refusals(obj, code, fragment):
    error = refused(parse_request, obj)
    assert isinstance(error, ProtocolError)
    assert (error.wire_code, fragment in error.message) == (code, True), error.message


def test_message_may_hold_tab_and_newline_and_exactly_the_maximum():
    assert parse_request(_message_request("line one\n\tline two")).message == "line one\n\tline two"
    assert parse_request(_message_request("é" * (MAX_MESSAGE_BYTES // 2))).message


def test_error_messages_do_not_echo_long_client_text():
    error = refused(parse_request, {"op": "x" * 10_000, "requestId": REQUEST_ID})
    assert len(error.message) < 200


def test_request_id_for_reply_only_echoes_well_formed_ids():
    assert request_id_for_reply({"requestId": REQUEST_ID, "op": 5}) == REQUEST_ID
    assert request_id_for_reply({"requestId": REQUEST_ID.upper()}) is None
    assert request_id_for_reply({"requestId": 5}) is None
    assert request_id_for_reply([REQUEST_ID]) is None
    legacy = {"txBase64": "x", "requestId": "job-42"}
    assert request_id_for_reply(legacy) == "job-42"
    assert request_id_for_reply({"op": "ping", "requestId": "job-42"}) is None
    assert request_id_for_reply({"txBase64": "x", "requestId": "a\nb"}) is None


def test_build_request_fills_id_timestamp_and_hmac():
    before = protocol.current_time_ms()
    fields = build_request(SECRET, op="sign", tx_base64=TX_BASE64, purpose="test")
    request = parse_request(fields)
    assert protocol.is_request_id(request.request_id)
    assert before <= request.timestamp_ms <= protocol.current_time_ms()
    verify_request_hmac(SECRET, request)
    assert build_request(None, op="ping", request_id=REQUEST_ID) == {
        "op": "ping",
        "requestId": REQUEST_ID,
    }
    assert refused(build_request, None, op="sign", tx_base64=TX_BASE64).wire_code == "bad_request"


def test_new_request_ids_are_fresh_uuids():
    ids = {protocol.new_request_id() for _ in range(100)}
    assert len(ids) == 100 and all(protocol.is_request_id(i) for i in ids)


# --- HMAC ------------------------------------------------------------------------------------


def test_canonical_encoding_by_hand():
    fields = {"timestamp": 12, "op": "ping", "requestId": REQUEST_ID, "hmac": "ignored"}
    assert canonical_hmac_input(fields) == (
        b"jarvis-wallet/v1\n"
        b"2:op,4:ping,"
        b"9:requestId,36:" + REQUEST_ID.encode() + b","
        b"9:timestamp,2:12,"
    )


def test_canonical_lengths_are_bytes_not_characters():
    encoded = canonical_hmac_input({"purpose": "é☕"})
    assert encoded == "jarvis-wallet/v1\n7:purpose,5:é☕,".encode()


# Golden vectors: changing the canonical encoding or the key handling breaks these. The first and
# the legacy one were cross-checked with `printf ... | openssl dgst -sha256 -hmac SECRET`.
GOLDEN_VECTORS = [
    (
        {"op": "ping", "requestId": REQUEST_ID, "timestamp": NOW_MS},
        "fe6ae6d95e8725f0b19e45e496d593b135625b6718b4fcd0659f38d2c98023ab",
    ),
    (
        {"op": "status", "requestId": OTHER_ID, "timestamp": 0},
        "06e442f38669d21d18f8bcb3569321a735983be305020a808b4c8ceb7317d5c4",
    ),
    (
        {"op": "sign", "requestId": REQUEST_ID, "timestamp": NOW_MS, "txBase64": "AQID",
         "purpose": "é☕ unicode"},
        "b961a8964a16eeba3b74d93e5338eabcd46a4801065172e2a5a71f1d2f1639a7",
    ),
    (
        {"op": "sign_message", "requestId": REQUEST_ID, "timestamp": NOW_MS,
         "message": "line 1\nline 2"},
        "878016c86cc88b8a97ace4cb0d409d7a4676785e20487a21c5b20915404b2fd6",
    ),
]


def _hmac_by_hand(secret: bytes, fields: dict) -> str:
    """An independent implementation of section 5.1, to check compute_hmac against."""
    data = b"jarvis-wallet/v1\n"
    for name in sorted(fields, key=lambda n: n.encode()):
        if name == "hmac":
            continue
        value = fields[name]
        value_bytes = str(value).encode() if isinstance(value, int) else value.encode()
        data += b"%d:%s,%d:%s," % (len(name.encode()), name.encode(), len(value_bytes), value_bytes)
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(("fields", "expected"), GOLDEN_VECTORS)
def test_hmac_golden_vectors(fields, expected):
    assert compute_hmac(SECRET, fields) == _hmac_by_hand(SECRET, fields) == expected
    assert compute_hmac(SharedSecret(SECRET), fields) == expected
    assert compute_hmac(SECRET, fields | {"hmac": "anything"}) == expected


def test_verify_request_hmac_accepts_a_signed_request_in_either_form():
    fields = signed(purpose="coffee")
    verify_request_hmac(SECRET, fields)
    verify_request_hmac(SharedSecret(SECRET), parse_request(fields))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda f: f | {"timestamp": f["timestamp"] + 1},
        lambda f: f | {"requestId": OTHER_ID},
        lambda f: f | {"purpose": "coffee!"},
        lambda f: {k: v for k, v in f.items() if k != "purpose"},
        lambda f: f | {"txBase64": base64.b64encode(TX_BYTES[:-1] + b"\x01").decode()},
        lambda f: f | {"op": "sign_message"},
        lambda f: f | {"hmac": f["hmac"][:-1] + ("0" if f["hmac"][-1] != "0" else "1")},
    ],
    ids=["timestamp", "requestId", "purpose", "purpose-removed", "tx", "op", "hmac"],
)
def test_any_change_to_a_signed_request_fails_authentication(tamper):
    tampered = tamper(signed(purpose="coffee"))
    error = refused(verify_request_hmac, SECRET, tampered)
    assert isinstance(error, AuthenticationFailed) and error.wire_code == "auth_failed"


def test_an_added_purpose_fails_authentication():
    unsigned_purpose = signed() | {"purpose": "added later"}
    assert refused(verify_request_hmac, SECRET, unsigned_purpose).wire_code == "auth_failed"


def test_the_wrong_secret_fails_authentication():
    error = refused(verify_request_hmac, b"another-secret-of-at-least-32-bytes!", signed())
    assert error.wire_code == "auth_failed" and "shared secret" in error.message


def test_a_missing_or_malformed_hmac_fails_authentication():
    assert refused(verify_request_hmac, SECRET, sign_fields()).wire_code == "auth_failed"
    malformed = sign_fields(hmac="é" * 64)
    assert refused(verify_request_hmac, SECRET, malformed).wire_code == "auth_failed"


field_names = st.sampled_from(sorted(protocol.KNOWN_FIELDS - {"hmac"}) + ["a", "é", "a,b", "1:"])
field_values = st.one_of(st.text(), st.integers(min_value=0, max_value=2**63))


@settings(max_examples=300)
@given(
    st.dictionaries(field_names, field_values, max_size=5),
    st.dictionaries(field_names, field_values, max_size=5),
)
def test_canonical_encoding_is_injective(first, second):
    try:
        encoded_first, encoded_second = canonical_hmac_input(first), canonical_hmac_input(second)
    except ProtocolError:  # lone surrogates cannot be encoded
        return
    normalised = lambda d: {k: str(v) for k, v in d.items()}  # noqa: E731 ("5" and 5 encode alike)
    if normalised(first) != normalised(second):
        assert encoded_first != encoded_second


# --- freshness and replay --------------------------------------------------------------------


@pytest.mark.parametrize("offset", [0, 1, -1, 30_000, -30_000])
def test_fresh_timestamps_pass(offset):
    check_freshness(NOW_MS + offset, NOW_MS)


@pytest.mark.parametrize(
    ("offset", "words"), [(-30_001, "behind"), (30_001, "ahead of"), (-3_600_000, "3600.0 s")]
)
def test_stale_timestamps_are_refused_with_the_skew(offset, words):
    error = refused(check_freshness, NOW_MS + offset, NOW_MS)
    assert isinstance(error, AuthenticationFailed)
    assert error.wire_code == "stale_request" and words in error.message


def test_freshness_window_is_configurable():
    check_freshness(NOW_MS - 5_000, NOW_MS, window_ms=5_000)
    assert refused(check_freshness, NOW_MS - 5_001, NOW_MS, 5_000).wire_code == "stale_request"


def test_replay_cache_accepts_an_id_once():
    cache = ReplayCache()
    cache.check_and_remember(REQUEST_ID, NOW_MS, NOW_MS)
    cache.check_and_remember(OTHER_ID, NOW_MS, NOW_MS)
    error = refused(cache.check_and_remember, REQUEST_ID, NOW_MS, NOW_MS + 1)
    assert error.wire_code == "replayed_request"
    # A different timestamp does not make the id new again.
    assert refused(cache.check_and_remember, REQUEST_ID, NOW_MS + 5, NOW_MS + 5).wire_code == (
        "replayed_request"
    )


def test_replay_cache_forgets_ids_only_once_their_timestamps_are_stale():
    cache = ReplayCache(window_ms=1_000)
    cache.check_and_remember(REQUEST_ID, NOW_MS + 1_000, NOW_MS)  # a client clock 1 s ahead
    cache.check_and_remember(OTHER_ID, NOW_MS + 2_000, NOW_MS + 2_000)
    assert len(cache) == 2  # now - window == timestamp: still remembered
    # Ids are forgotten a second at a time: REQUEST_ID's second (NOW_MS + 1_000 to + 1_999)
    # is kept until its last millisecond is stale.
    cache.check_and_remember("11111111-1111-4111-8111-111111111111", NOW_MS + 2_999, NOW_MS + 2_999)
    assert len(cache) == 3
    error = refused(cache.check_and_remember, REQUEST_ID, NOW_MS + 1_000, NOW_MS + 2_999)
    assert error.wire_code == "replayed_request"
    cache.check_and_remember("33333333-3333-4333-8333-333333333333", NOW_MS + 3_000, NOW_MS + 3_000)
    assert len(cache) == 3  # the first id's second expired: its timestamps are stale anyway
    assert cache.low_water_ms == NOW_MS + 1_999
    error = refused(cache.check_and_remember, REQUEST_ID, NOW_MS + 1_000, NOW_MS + 3_000)
    assert error.wire_code == "stale_request"


def test_a_clock_step_forward_and_back_cannot_revive_a_forgotten_id():
    cache = ReplayCache(window_ms=30_000)
    cache.check_and_remember(REQUEST_ID, NOW_MS, NOW_MS)
    cache.check_and_remember(OTHER_ID, NOW_MS + 3_600_000, NOW_MS + 3_600_000)  # clock jumped
    assert len(cache) == 1
    # The clock comes back; the first request is fresh again but must not be accepted twice.
    check_freshness(NOW_MS, NOW_MS + 1_000)
    error = refused(cache.check_and_remember, REQUEST_ID, NOW_MS, NOW_MS + 1_000)
    assert error.wire_code == "stale_request"
    # So is anything else from the forgotten second; requests newer than it are fine.
    error = refused(cache.check_and_remember, OTHER_ID.replace("b", "c"), NOW_MS + 999, NOW_MS + 1_000)
    assert error.wire_code == "stale_request"
    cache.check_and_remember("22222222-2222-4222-8222-222222222222", NOW_MS + 1_000, NOW_MS + 1_000)


def test_a_full_replay_cache_forgets_the_oldest_second_and_refuses_what_it_forgot():
    cache = ReplayCache(max_entries=3)
    ids = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(6)]
    for offset, request_id in enumerate(ids[:3]):
        cache.check_and_remember(request_id, NOW_MS + offset * 1_000, NOW_MS)
    cache.check_and_remember(ids[3], NOW_MS + 3_000, NOW_MS)
    assert len(cache) == 3 and cache.low_water_ms == NOW_MS + 999
    assert refused(cache.check_and_remember, ids[0], NOW_MS, NOW_MS).wire_code == "stale_request"
    assert refused(cache.check_and_remember, ids[4], NOW_MS + 999, NOW_MS).wire_code == "stale_request"
    # A request in the oldest remembered second would have to evict its own second: refused.
    assert refused(cache.check_and_remember, ids[5], NOW_MS + 1_500, NOW_MS).wire_code == (
        "stale_request"
    )
    assert refused(cache.check_and_remember, ids[1], NOW_MS + 1_000, NOW_MS).wire_code == (
        "replayed_request"
    )
    assert len(cache) == 3


def test_replay_cache_memory_is_bounded_under_a_flood():
    cache = ReplayCache(max_entries=1_000)
    outcomes = Counter()
    for i in range(20_000):  # 5,000 a second for 4 s
        try:
            cache.check_and_remember(f"{i:08x}-0000-4000-8000-000000000000", NOW_MS + i // 5, NOW_MS)
            outcomes["accepted"] += 1
        except AuthenticationFailed as exc:
            outcomes[exc.wire_code] += 1
        assert len(cache) <= 1_000
    # Each new second evicts the oldest whole; the rest of a second past the cap is refused
    # as stale, never accepted unremembered.
    assert outcomes == {"accepted": 4_000, "stale_request": 16_000}
    assert cache.low_water_ms == NOW_MS + 2_999


def test_a_long_steady_load_keeps_the_cache_to_one_window_of_small_sets():
    # Ten simulated minutes at 3,000 requests/s, 1 ms apart in bursts: the cache must hold
    # one window's ids in at most one set per second of it, however long the load runs
    # (finding 9 of docs/reliability.md: one big table, resized again and again, crept).
    cache = ReplayCache(window_ms=30_000)
    largest_set_seen = 0
    for second in range(600):
        now_ms = NOW_MS + second * 1_000
        for i in range(3_000 if second % 60 == 59 else 30):
            cache.check_and_remember(f"{second:08x}-{i:04x}-4000-8000-000000000000", now_ms + i // 3, now_ms)
        largest_set_seen = max(largest_set_seen, max(len(ids) for ids in cache._ids_by_second.values()))
        assert cache.seconds_held <= 32
        assert len(cache) <= 31 * 3_000
    assert largest_set_seen == 3_000  # a burst's second holds only that second's ids
    assert cache.low_water_ms == NOW_MS + 569 * 1_000 - 1


def _fresh_request(**overrides):
    return parse_request(signed(**overrides))


def test_authenticate_request_runs_hmac_then_freshness_then_replay():
    cache = ReplayCache()
    authenticate_request(_fresh_request(), secret=SECRET, now_ms=NOW_MS, replay_cache=cache)
    assert refused(
        authenticate_request, _fresh_request(), secret=SECRET, now_ms=NOW_MS, replay_cache=cache
    ).wire_code == "replayed_request"


def test_unauthenticated_or_stale_requests_are_not_remembered():
    cache = ReplayCache()
    wrong = b"wrong-secret-wrong-secret-wrong-secret"
    assert refused(
        authenticate_request, _fresh_request(), secret=wrong, now_ms=NOW_MS, replay_cache=cache
    ).wire_code == "auth_failed"
    assert refused(
        authenticate_request, _fresh_request(), secret=SECRET, now_ms=NOW_MS + 60_000,
        replay_cache=cache,
    ).wire_code == "stale_request"
    assert len(cache) == 0
    authenticate_request(_fresh_request(), secret=SECRET, now_ms=NOW_MS, replay_cache=cache)


def test_authenticate_request_uses_the_cache_window():
    cache = ReplayCache(window_ms=1_000)
    error = refused(
        authenticate_request, _fresh_request(), secret=SECRET, now_ms=NOW_MS + 1_001,
        replay_cache=cache,
    )
    assert error.wire_code == "stale_request"


# --- responses -------------------------------------------------------------------------------


def test_ok_and_error_responses():
    assert ok_response(REQUEST_ID, publicKey="abc") == {
        "requestId": REQUEST_ID,
        "ok": True,
        "publicKey": "abc",
    }
    assert error_response(None, "bad_request", "nope") == {
        "requestId": None,
        "ok": False,
        "error": {"code": "bad_request", "message": "nope"},
    }
    with pytest.raises(ValueError):
        ok_response(REQUEST_ID, ok=False)


def test_error_response_for_uses_the_exception_wire_code():
    denied = PolicyDenied("over the daily limit", reason="daily_limit_exceeded")
    assert error_response_for(REQUEST_ID, denied)["error"] == {
        "code": "daily_limit_exceeded",
        "message": "over the daily limit",
    }


def test_error_codes_are_snake_case_and_cover_the_error_classes():
    from jarvis_wallet import errors

    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", code) for code in ERROR_CODES)
    server_side = {
        cls.wire_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.JarvisWalletError)
        and not issubclass(cls, (errors.SignerUnavailable, errors.NotFound, errors.OutputNotWritten, errors.ChainError))  # client side only
    }
    assert server_side <= set(ERROR_CODES)
    # The one op that looks something up is wait_for_approval (issue 13); no other answers not_found.
    assert "wait_for_approval" in ERROR_CODES["not_found"]


# --- legacy mode -----------------------------------------------------------------------------

LEGACY_HMAC = hmac.new(SECRET, TX_BASE64.encode(), hashlib.sha256).hexdigest()


def legacy(**overrides):
    obj = {"hmac": LEGACY_HMAC, "txBase64": TX_BASE64, "requestId": "agent-job-42"}
    obj.update(overrides)
    return {k: v for k, v in obj.items() if v is not None}


def test_legacy_requests_are_recognised_by_shape():
    assert is_legacy_request(legacy())
    assert is_legacy_request(legacy(requestId=None))
    assert not is_legacy_request(signed())
    assert not is_legacy_request({"op": "ping", "requestId": REQUEST_ID})
    assert not is_legacy_request({"requestId": REQUEST_ID})
    assert not is_legacy_request(["txBase64"])


def test_legacy_hmac_golden_vector():
    assert compute_legacy_hmac(SECRET, "AQID") == (
        "4ed57511cc0bc6cabb309769b5a37678a72607965bd36ab758e28a9a46ec3dc1"
    )
    assert compute_legacy_hmac(SECRET, TX_BASE64) == LEGACY_HMAC


def test_parse_and_verify_a_legacy_request():
    request = parse_legacy_request(legacy())
    assert (request.request_id, request.tx_bytes) == ("agent-job-42", TX_BYTES)
    verify_legacy_hmac(SECRET, request)
    verify_legacy_hmac(SharedSecret(SECRET), request)
    assert refused(verify_legacy_hmac, SECRET + b"x", request).wire_code == "auth_failed"


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        (legacy(requestId=None), "bad_request"),
        (legacy(hmac=None), "bad_request"),
        (legacy(timestamp=NOW_MS), "bad_request"),
        (legacy(requestId="a" * 65), "bad_request"),
        (legacy(requestId="two words"), "bad_request"),
        (legacy(requestId=42), "bad_request"),
        (legacy(hmac=LEGACY_HMAC.upper()), "bad_request"),
        (legacy(txBase64="AB=="), "invalid_tx"),
        (legacy(txBase64=""), "invalid_tx"),
    ],
)
def test_malformed_legacy_requests(obj, code):
    assert refused(parse_legacy_request, obj).wire_code == code


def test_legacy_responses():
    signature = bytes(range(64))
    assert legacy_ok_response("job", signature) == {
        "ok": True,
        "signedTxBase64": base64.b64encode(signature).decode(),
        "requestId": "job",
    }
    with pytest.raises(ValueError):
        legacy_ok_response("job", signature[:63])
    assert legacy_error_response("job", "daily_limit_exceeded", "over the limit") == {
        "ok": False,
        "error": "sign_error",
        "requestId": "job",
        "reason": "daily_limit_exceeded",
        "message": "over the limit",
    }


def test_every_code_maps_onto_one_of_the_three_legacy_codes():
    expected = {
        "auth_failed": "auth_failed",
        "stale_request": "auth_failed",
        "replayed_request": "auth_failed",
        "peer_not_allowed": "auth_failed",
        "invalid_tx": "invalid_tx",
        "bad_request": "invalid_tx",
        "unknown_op": "invalid_tx",
        "line_too_long": "invalid_tx",
    }
    for code in ERROR_CODES:
        assert legacy_error_code(code) == expected.get(code, "sign_error")
    assert legacy_error_code("a_code_from_the_future") == "sign_error"


# --- robustness (invariant 8) ----------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
plausible_values = st.one_of(
    json_values,
    st.sampled_from(["ping", "pubkey", "status", "sign", "sign_message", REQUEST_ID, TX_BASE64,
                     "AB==", "", "a" * 64, "\ud800", "\x1b"]),
    st.integers(min_value=0, max_value=2**53 + 2),
)
plausible_requests = st.dictionaries(
    st.sampled_from(sorted(protocol.KNOWN_FIELDS)) | st.text(max_size=6),
    plausible_values,
    max_size=7,
)


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_decode_frame_raises_only_protocol_errors_on_any_bytes(data):
    try:
        assert isinstance(decode_frame(data), dict)
    except ProtocolError:
        pass


@settings(max_examples=300)
@given(json_values)
def test_decode_frame_raises_only_protocol_errors_on_any_json(value):
    line = json.dumps(value).encode()
    try:
        assert decode_frame(line) == value
    except ProtocolError:
        pass


def _handle_like_the_signer(obj, cache: ReplayCache) -> None:
    """The signer's request path up to dispatch, as a pure function of the decoded object."""
    if is_legacy_request(obj):
        verify_legacy_hmac(SECRET, parse_legacy_request(obj))
        return
    request = parse_request(obj)
    if request.requires_authentication:
        authenticate_request(request, secret=SECRET, now_ms=NOW_MS, replay_cache=cache)


@settings(max_examples=1000)
@given(plausible_requests)
def test_request_handling_raises_only_protocol_or_authentication_errors(obj):
    try:
        _handle_like_the_signer(obj, ReplayCache())
    except (ProtocolError, AuthenticationFailed) as error:
        assert error.wire_code in ERROR_CODES
        encode_frame(error_response(request_id_for_reply(obj), error.wire_code, error.message))


@settings(max_examples=300)
@given(plausible_requests)
def test_signed_requests_that_parse_always_authenticate(obj):
    obj = {k: v for k, v in obj.items() if k != "hmac"}
    try:
        fields = sign_request(SECRET, obj)
        request = parse_request(fields)
    except ProtocolError:
        return
    if request.timestamp_ms is not None:
        authenticate_request(
            request, secret=SECRET, now_ms=request.timestamp_ms, replay_cache=ReplayCache()
        )


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=40), max_size=20))
def test_frame_buffer_splits_exactly_like_bytes_split(chunks):
    buffer = FrameBuffer()
    lines = [line for chunk in chunks for line in buffer.feed(chunk)]
    assert lines == b"".join(chunks).split(b"\n")[:-1]


def test_protocol_does_not_import_the_server_or_the_database():
    code = (
        "import sys, jarvis_wallet.protocol;"
        "bad = [m for m in ('jarvis_wallet.signer', 'jarvis_wallet.db', 'jarvis_wallet.models',"
        " 'peewee', 'sqlite3', 'psycopg2', 'socket') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_message_limit_matches_the_offchain_module():
    offchain = pytest.importorskip("jarvis_wallet.solana.offchain")
    assert MAX_MESSAGE_BYTES == offchain.MAX_LENGTH_LEDGER


# --- docs/protocol.md ------------------------------------------------------------------------

PROTOCOL_DOC = (ROOT / "docs" / "protocol.md").read_text()
EXAMPLES = dict(re.findall(r"<!-- example: ([\w-]+) -->\n```\w*\n(.*?)\n```", PROTOCOL_DOC, re.S))


def example_bytes(name: str) -> bytes:
    """A `text` block of the doc as bytes, with its backslash escapes (\\n) decoded."""
    return codecs.escape_decode(EXAMPLES[name].encode())[0]


EXAMPLE_SEED = bytes(range(1, 33))


def test_the_doc_has_all_examples():
    assert set(EXAMPLES) == {
        "secret", "wallet", "sign-fields", "sign-canonical", "sign-hmac", "sign-request",
        "sign-response", "sign-refusal", "sign-message-canonical", "sign-message-request",
        "sign-message-response", "ping-request", "ping-response", "approval-required",
        "approval-intent", "wait-canonical", "wait-request", "wait-response",
    }


def test_worked_example_secret_and_wallet():
    assert EXAMPLES["secret"].encode() == SECRET and len(SECRET) >= 32
    assert Keypair.from_seed(EXAMPLE_SEED).public_key_base58 == EXAMPLES["wallet"]


def test_worked_example_canonical_bytes_and_hmac():
    fields = json.loads(EXAMPLES["sign-fields"])
    canonical = example_bytes("sign-canonical")
    assert canonical_hmac_input(fields) == canonical
    assert f"those {len(canonical)} bytes" in PROTOCOL_DOC
    expected = hmac.new(SECRET, canonical, hashlib.sha256).hexdigest()
    assert compute_hmac(SECRET, fields) == _hmac_by_hand(SECRET, fields) == expected
    assert EXAMPLES["sign-hmac"] == expected


def test_worked_example_request_line():
    fields = json.loads(EXAMPLES["sign-fields"])
    line = EXAMPLES["sign-request"].encode() + b"\n"
    assert encode_frame(sign_request(SECRET, fields)) == line
    request = parse_request(decode_frame(line))
    assert request.hmac == EXAMPLES["sign-hmac"]
    authenticate_request(
        request, secret=SECRET, now_ms=request.timestamp_ms + 30_000, replay_cache=ReplayCache()
    )
    assert request.timestamp_ms == 1_767_225_600_000  # "2026-01-01T00:00:00Z" in the text
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(request.timestamp_ms / 1000)) == (
        "2026-01-01T00:00:00Z"
    )


def test_worked_example_transaction_is_what_the_text_says():
    tx = base64.b64decode(json.loads(EXAMPLES["sign-fields"])["txBase64"])
    wallet = base58.b58decode(EXAMPLES["wallet"])
    assert tx[0] == 1 and tx[1:65] == bytes(64)  # one empty signature slot
    message = tx[65:]
    assert message[:4] == bytes([1, 0, 1, 3])  # header, three accounts
    assert message[4:36] == wallet
    assert base58.b58encode(message[36:68]).decode() in PROTOCOL_DOC  # destination
    assert message[68:100] == bytes(32)  # System Program
    assert base58.b58encode(message[100:132]).decode() in PROTOCOL_DOC  # blockhash
    instruction = message[132:]
    assert instruction[:6] == bytes([1, 2, 2, 0, 1, 12])
    assert int.from_bytes(instruction[6:10], "little") == 2  # System transfer
    assert int.from_bytes(instruction[10:18], "little") == 1_000_000
    assert len(instruction) == 18


def test_worked_example_response_verifies():
    response = decode_frame(EXAMPLES["sign-response"].encode())
    keypair = Keypair.from_seed(EXAMPLE_SEED)
    tx = base64.b64decode(json.loads(EXAMPLES["sign-fields"])["txBase64"])
    message = tx[65:]
    signature = keypair.sign(message)
    assert response == ok_response(
        "3f1c9a52-7b4e-4d0a-9c6f-2e8b5d7a1f03",
        signature=base58.b58encode(signature).decode(),
        signedTxBase64=base64.b64encode(tx[:1] + signature + message).decode(),
        wallet=keypair.public_key_base58,
        lamports=1_005_000,  # the spend counted: transfer plus fee
        feeLamports=5_000,
        transactionId=1,
        duplicate=False,
        signedAt="2026-01-01T00:00:00.250000Z",
    )
    nacl.signing.VerifyKey(keypair.public_key).verify(message, signature)
    refusal = decode_frame(EXAMPLES["sign-refusal"].encode())
    assert refusal["ok"] is False and refusal["error"]["code"] in ERROR_CODES


def test_worked_example_sign_message():
    line = EXAMPLES["sign-message-request"].encode()
    request = parse_request(decode_frame(line))
    assert canonical_hmac_input(request.signed_fields()) == example_bytes("sign-message-canonical")
    assert encode_frame(build_request(
        SECRET, op="sign_message", request_id=request.request_id,
        timestamp_ms=request.timestamp_ms, message=request.message,
    )) == line + b"\n"
    response = decode_frame(EXAMPLES["sign-message-response"].encode())
    envelope = base64.b64decode(response["signedMessageBase64"])
    body = request.message.encode()
    assert envelope == b"\xffsolana offchain\x00\x01" + len(body).to_bytes(2, "little") + body
    keypair = Keypair.from_seed(EXAMPLE_SEED)
    assert base58.b58decode(response["signature"]) == keypair.sign(envelope)
    assert response["wallet"] == keypair.public_key_base58
    offchain = pytest.importorskip("jarvis_wallet.solana.offchain")
    assert offchain.build_offchain_message(request.message) == envelope


def example_approval_reply(url: str) -> bytes:
    """The sign example's answer from a real handler and signing service, on a wallet whose
    approval threshold is 500,000 lamports, with the signer's clock at the example's time."""
    import datetime

    from jarvis_wallet.db import session
    from jarvis_wallet.handler import RequestHandler
    from jarvis_wallet.limits import set_limits
    from jarvis_wallet.signing import SigningService

    keypair = Keypair.from_seed(EXAMPLE_SEED)
    with session(url):
        set_limits(keypair.public_key_base58, per_tx_lamports=5_000_000, daily_lamports=5_000_000,
                   approve_above_lamports=500_000)
    service = SigningService(
        keypair=keypair, database_url=url, clock=lambda: datetime.datetime(2026, 1, 1, 0, 0, 0, 250000),
    )
    try:
        handler = RequestHandler(
            secret=SECRET, public_key=keypair.public_key, sign=service.sign, clock_ms=lambda: 1_767_225_600_250,
        )
        return handler.handle_line(EXAMPLES["sign-request"].encode())
    finally:
        service.close()


def test_worked_example_approval_required(initialised_url):
    assert example_approval_reply(initialised_url) == EXAMPLES["approval-required"].encode() + b"\n"
    tx = base64.b64decode(json.loads(EXAMPLES["sign-fields"])["txBase64"])
    from jarvis_wallet.approvals import intent_digest
    from jarvis_wallet.solana import parse_message

    message = parse_message(tx[65:])
    assert intent_digest(message, durable_nonce=False) == EXAMPLES["approval-intent"]
    zeroed = tx[65:][:100] + bytes(32) + tx[65:][132:]  # the blockhash is bytes 100..131 (see above)
    assert hashlib.sha256(b"jarvis-wallet/intent/v1\n" + zeroed).hexdigest() == EXAMPLES["approval-intent"]


def test_worked_example_wait_for_approval():
    line = EXAMPLES["wait-request"].encode()
    request = parse_request(decode_frame(line))
    assert canonical_hmac_input(request.signed_fields()) == example_bytes("wait-canonical")
    assert f"those {len(example_bytes('wait-canonical'))} bytes" in PROTOCOL_DOC
    assert encode_frame(build_request(
        SECRET, op="wait_for_approval", request_id=request.request_id, timestamp_ms=request.timestamp_ms,
        approval_id=request.approval_id, wait_ms=request.wait_ms,
    )) == line + b"\n"
    authenticate_request(request, secret=SECRET, now_ms=request.timestamp_ms, replay_cache=ReplayCache())
    response = decode_frame(EXAMPLES["wait-response"].encode())
    assert response == ok_response(
        request.request_id, approvalId=1, wallet=EXAMPLES["wallet"], state="approved",
        expiresAt="2026-01-01T00:17:05.000000Z", decidedAt="2026-01-01T00:02:05.000000Z", reason=None,
        transactionId=None,
    )


def test_worked_example_ping():
    assert parse_request(decode_frame(EXAMPLES["ping-request"].encode())).op == "ping"
    assert decode_frame(EXAMPLES["ping-response"].encode()) == ok_response(
        "5a0c3e1b-9f2d-4b6a-8c7e-1d3f5b7a9c20", pong=True, version=protocol.PROTOCOL_VERSION
    )


def test_the_doc_lists_exactly_the_error_codes():
    section = PROTOCOL_DOC.split("## 6. Error codes", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))
    assert documented == set(ERROR_CODES)


def test_the_doc_lists_every_op_and_field():
    for op in protocol.OPS:
        assert f"| `{op}` |" in PROTOCOL_DOC
    for name in protocol.KNOWN_FIELDS:
        assert f"| `{name}` |" in PROTOCOL_DOC


def test_the_doc_states_the_code_limits():
    for number in (
        f"{MAX_LINE_BYTES:,}",
        f"{MAX_TX_BYTES:,}",
        f"{MAX_MESSAGE_BYTES:,}",
        f"at most {MAX_PURPOSE_CHARS}",
        f"{protocol.DEFAULT_FRESHNESS_WINDOW_MS:,} ms",
        f"2^53−1",
    ):
        assert number in PROTOCOL_DOC, number
    assert protocol.HMAC_DOMAIN_PREFIX == b"jarvis-wallet/v1\n"
    assert "`jarvis-wallet/v1\\n`" in PROTOCOL_DOC
