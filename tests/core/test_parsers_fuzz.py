"""Hostile input never raises anything but PasskeyError: random and mutated responses through the public API."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import passgate
from passgate.core.cose import parse_public_key
from passgate.core.data import AttestationObject, AuthenticatorData, ClientData
from passgate.core.encoding import MAX_NESTING, b64url_decode, b64url_encode, nesting_depth
from tests.conftest import load_vector

REGISTRATION = load_vector("w3c_reg_packed_es256.json")
ASSERTION = load_vector("w3c_auth_packed_es256.json")
# Derandomized: the same examples every run, so CI is repeatable; raise max_examples locally to search wider.
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    raw = bytearray(data)
    for position, value in edits:
        if raw:
            raw[position % len(raw)] = value
    return bytes(raw[:cut] if cut is not None else raw)


edits = st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=8)
cuts = st.none() | st.integers(min_value=0, max_value=2000)


def register(response: Any) -> None:
    passgate.verify_registration(
        response,
        expected_challenge=b64url_decode(REGISTRATION["expected_challenge_b64url"]),
        expected_rp_id="example.org",
        expected_origins=["https://example.org"],
    )


def authenticate(response: Any) -> None:
    passgate.verify_authentication(
        response,
        expected_challenge=b64url_decode(ASSERTION["expected_challenge_b64url"]),
        expected_rp_id="example.org",
        expected_origins=["https://example.org"],
        credential_public_key=b64url_decode(ASSERTION["public_key_cose_b64url"]),
        stored_sign_count=0,
    )


def verify_registration(response: Any) -> None:
    try:
        register(response)
    except passgate.PasskeyError as error:
        assert error.code and error.message


def verify_authentication(response: Any) -> None:
    try:
        authenticate(response)
    except passgate.PasskeyError as error:
        assert error.code and error.message


def with_field(vector: dict[str, Any], name: str, value: bytes) -> dict[str, Any]:
    response = json.loads(json.dumps(vector["credential_json"]))
    response["response"][name] = b64url_encode(value)
    return response


@FUZZ
@given(edits, cuts)
def test_mutated_attestation_objects(changes: list[tuple[int, int]], cut: int | None) -> None:
    original = b64url_decode(REGISTRATION["credential_json"]["response"]["attestationObject"])
    verify_registration(with_field(REGISTRATION, "attestationObject", mutate(original, changes, cut)))


FORMATS = [
    load_vector(name)
    for name in (
        "pyw_reg_tpm_rs256_surface_pro_4.json",
        "pyw_reg_android_key_pixel8a.json",
        "pyw_reg_apple_anonymous_passkey.json",
        "pyw_reg_fido_u2f_yubikey_firefox.json",
        "pyw_reg_packed_x5c_yubikey_firefox.json",
        "pyw_reg_android_safetynet_chrome.json",
    )
]


@FUZZ
@given(st.sampled_from(FORMATS), edits, cuts)
def test_mutated_attestations_of_every_format(
    vector: dict[str, Any], changes: list[tuple[int, int]], cut: int | None
) -> None:
    original = b64url_decode(vector["credential_json"]["response"]["attestationObject"])
    response = with_field(vector, "attestationObject", mutate(original, changes, cut))
    try:
        passgate.verify_registration(
            response,
            expected_challenge=b64url_decode(vector["expected_challenge_b64url"]),
            expected_rp_id=vector["rp_id"],
            expected_origins=[vector["origin"]],
        )
    except passgate.PasskeyError as error:
        assert error.code


@FUZZ
@given(edits, cuts)
def test_mutated_client_data(changes: list[tuple[int, int]], cut: int | None) -> None:
    original = b64url_decode(REGISTRATION["credential_json"]["response"]["clientDataJSON"])
    verify_registration(with_field(REGISTRATION, "clientDataJSON", mutate(original, changes, cut)))


@FUZZ
@given(edits, cuts)
def test_mutated_authenticator_data_and_signatures(changes: list[tuple[int, int]], cut: int | None) -> None:
    for name in ("authenticatorData", "signature", "clientDataJSON"):
        original = b64url_decode(ASSERTION["credential_json"]["response"][name])
        verify_authentication(with_field(ASSERTION, name, mutate(original, changes, cut)))


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_everywhere(data: bytes) -> None:
    for parse in (AuthenticatorData, AttestationObject.parse, ClientData.parse, parse_public_key):
        with contextlib.suppress(passgate.PasskeyError):
            parse(data)
    verify_registration(with_field(REGISTRATION, "attestationObject", data))
    verify_authentication(with_field(ASSERTION, "authenticatorData", data))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(json_values)
def test_random_json_credentials(value: Any) -> None:
    verify_registration(value)
    verify_authentication(value)
    if isinstance(value, dict):
        verify_registration({**REGISTRATION["credential_json"], "response": value})
        verify_authentication({**ASSERTION["credential_json"], "response": value})


# Deep nesting: hostile depth must be refused as malformed, never reach the recursive decoders' stack limits.

depths = st.integers(min_value=1, max_value=3000)
shapes = st.text(alphabet="[{", min_size=1, max_size=6)  # the containers, repeated outwards


def nested_json(depth: int, shape: str) -> str:
    kinds = [shape[level % len(shape)] for level in range(depth)]
    opening = "".join("[" if kind == "[" else '{"k":' for kind in kinds)
    return opening + "0" + "".join("]" if kind == "[" else "}" for kind in reversed(kinds))


def nested_cbor(depth: int, shape: str) -> bytes:
    # A one-element array, a one-entry map keyed 1, or a tag: each wraps what follows.
    headers = {"[": b"\x81", "{": b"\xa1\x01"}
    return b"".join(headers[shape[level % len(shape)]] for level in range(depth)) + b"\x00"


def refuses_as_malformed(depth: int, call: Any, *args: Any) -> None:
    try:
        call(*args)
    except passgate.PasskeyError as error:
        assert error.code == "malformed_response" or depth <= MAX_NESTING, error
    else:
        assert depth <= MAX_NESTING


def json_depth(value: Any) -> int:
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    return 0 if children is None else 1 + max(map(json_depth, children), default=0)


@FUZZ
@given(json_values)
def test_nesting_depth_measures_json_text(value: Any) -> None:
    # Keys and strings are any text, brackets, quotes and backslashes included: none of them may count.
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        assert nesting_depth(text) == json_depth(value)


@FUZZ
@given(depths, shapes)
def test_deeply_nested_client_data(depth: int, shape: str) -> None:
    for vector, verify in ((REGISTRATION, register), (ASSERTION, authenticate)):
        original = b64url_decode(vector["credential_json"]["response"]["clientDataJSON"]).rstrip().rstrip(b"}")
        client_data = original + b',"nested":' + nested_json(depth, shape).encode() + b"}"
        refuses_as_malformed(depth, verify, with_field(vector, "clientDataJSON", client_data))
        refuses_as_malformed(depth, ClientData.parse, client_data)


@FUZZ
@given(depths, shapes)
def test_deeply_nested_credentials(depth: int, shape: str) -> None:
    whole = nested_json(depth, shape)
    inside = json.dumps(REGISTRATION["credential_json"])[:-1] + ', "clientExtensionResults": ' + whole + "}"
    for text in (whole, inside, inside.encode()):
        refuses_as_malformed(depth, register, text)
        refuses_as_malformed(depth, authenticate, text)


def cbor_map(*items: Any) -> bytes:
    """A CBOR map of (key, value) pairs whose values may be ready-made CBOR bytes."""
    encoded = [cbor2.dumps(key) + (value if isinstance(value, bytes) else cbor2.dumps(value)) for key, value in items]
    return bytes([0xA0 + len(items)]) + b"".join(encoded)


@FUZZ
@given(depths, shapes)
def test_deeply_nested_cbor(depth: int, shape: str) -> None:
    nested = nested_cbor(depth, shape)
    attestation = cbor2.loads(b64url_decode(REGISTRATION["credential_json"]["response"]["attestationObject"]))
    auth_data = AuthenticatorData(attestation["authData"])
    assert auth_data.attested is not None
    prefix = auth_data[: len(auth_data) - len(auth_data.attested.public_key)]
    objects = [
        cbor_map(("fmt", "none"), ("attStmt", nested), ("authData", attestation["authData"])),
        cbor_map(("fmt", "packed"), ("attStmt", attestation["attStmt"]), ("authData", cbor2.dumps(prefix + nested))),
        cbor_map(
            ("fmt", "none"),
            ("attStmt", {}),
            (
                "authData",
                cbor2.dumps(
                    bytes([*prefix[:32], prefix[32] | 0x80, *prefix[33:]])
                    + cbor2.dumps({1: 2, 3: -7, -1: 1, -2: b"\0" * 32, -3: b"\0" * 32})
                    + nested
                ),
            ),
        ),
    ]
    for raw in objects:
        refuses_as_malformed(depth, register, with_field(REGISTRATION, "attestationObject", raw))
        refuses_as_malformed(depth, AttestationObject.parse, raw)
    assertion_data = b64url_decode(ASSERTION["credential_json"]["response"]["authenticatorData"])
    extended = bytes([*assertion_data[:32], assertion_data[32] | 0x80, *assertion_data[33:37]]) + nested
    refuses_as_malformed(depth, authenticate, with_field(ASSERTION, "authenticatorData", extended))
    refuses_as_malformed(depth, parse_public_key, nested)
