"""Hostile input never raises anything but PasskeyError: random and mutated responses through the public API."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import passgate
from passgate.core.cose import parse_public_key
from passgate.core.data import AttestationObject, AuthenticatorData, ClientData
from passgate.core.encoding import b64url_decode, b64url_encode
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


def verify_registration(response: Any) -> None:
    try:
        passgate.verify_registration(
            response,
            expected_challenge=b64url_decode(REGISTRATION["expected_challenge_b64url"]),
            expected_rp_id="example.org",
            expected_origins=["https://example.org"],
        )
    except passgate.PasskeyError as error:
        assert error.code and error.message


def verify_authentication(response: Any) -> None:
    try:
        passgate.verify_authentication(
            response,
            expected_challenge=b64url_decode(ASSERTION["expected_challenge_b64url"]),
            expected_rp_id="example.org",
            expected_origins=["https://example.org"],
            credential_public_key=b64url_decode(ASSERTION["public_key_cose_b64url"]),
            stored_sign_count=0,
        )
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
