"""SoftwareAuthenticator's output is genuine: an independent verifier (py_webauthn) accepts it."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AttestationFormat,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
)

from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.testing import (
    ALG_EDDSA,
    ALG_ES256,
    ALG_RS256,
    SoftwareAuthenticator,
    SoftwareAuthenticatorError,
)

RP_ID = "example.com"
ORIGIN = "https://example.com"
ALGORITHMS = [ALG_ES256, ALG_EDDSA, ALG_RS256]
ALG_IDS = {ALG_ES256: "ES256", ALG_EDDSA: "EdDSA", ALG_RS256: "RS256"}


def registration_options(
    *,
    user_id: bytes = b"user-1",
    user_name: str = "alice",
    challenge: bytes = b"registration-challenge-0123456789",
    algs: list[int] | None = None,
    exclude: list[bytes] | None = None,
    rp_id: str = RP_ID,
) -> dict[str, Any]:
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name="Example",
        user_name=user_name,
        user_id=user_id,
        challenge=challenge,
        supported_pub_key_algs=algs,  # type: ignore[arg-type]
        exclude_credentials=[PublicKeyCredentialDescriptor(id=i) for i in exclude or []],
    )
    result: dict[str, Any] = json.loads(options_to_json(options))
    return result


def authentication_options(
    *, challenge: bytes = b"authentication-challenge-987654321", allow: list[bytes] | None = None
) -> dict[str, Any]:
    options = generate_authentication_options(
        rp_id=RP_ID,
        challenge=challenge,
        allow_credentials=[PublicKeyCredentialDescriptor(id=i) for i in allow or []],
    )
    result: dict[str, Any] = json.loads(options_to_json(options))
    return result


def register(authenticator: SoftwareAuthenticator, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    """Create a credential and verify it with py_webauthn, requiring user verification."""
    options = registration_options(**kwargs)
    response = authenticator.create(options, origin=ORIGIN)
    verified = verify_registration_response(
        credential=response,
        expected_challenge=b64url_decode(options["challenge"]),
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        require_user_verification=True,
    )
    return response, verified


def authenticate(
    response: dict[str, Any],
    public_key: bytes,
    current_count: int,
    challenge: bytes,
    *,
    require_uv: bool = True,
) -> Any:
    return verify_authentication_response(
        credential=response,
        expected_challenge=challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        credential_public_key=public_key,
        credential_current_sign_count=current_count,
        require_user_verification=require_uv,
    )


def auth_data_of(response: dict[str, Any]) -> bytes:
    return b64url_decode(response["response"]["authenticatorData"])


# -- genuine registration and authentication ----------------------------------------------------------


@pytest.mark.parametrize("attestation", ["none", "packed"])
@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=ALG_IDS.get)
def test_registration_and_authentication_verify_with_py_webauthn(algorithm: int, attestation: str) -> None:
    authenticator = SoftwareAuthenticator(algorithm=algorithm, attestation=attestation)
    # A JSON string, as a server would send it over HTTP.
    options_json = options_to_json(
        generate_registration_options(
            rp_id=RP_ID,
            rp_name="Example",
            user_name="alice",
            user_id=b"user-1",
            challenge=b"c" * 32,
            supported_pub_key_algs=[algorithm],  # type: ignore[list-item]
        )
    )
    response = authenticator.create(options_json, origin=ORIGIN)

    verified = verify_registration_response(
        credential=response,
        expected_challenge=b"c" * 32,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        require_user_verification=True,
        supported_pub_key_algs=[algorithm],  # type: ignore[list-item]
    )
    credential = authenticator.credentials[-1]
    assert verified.fmt == AttestationFormat(attestation)
    assert verified.credential_id == credential.credential_id == b64url_decode(response["rawId"])
    assert verified.credential_public_key == credential.public_key_cose
    assert verified.user_verified is True
    assert verified.sign_count == 0
    assert response["response"]["publicKeyAlgorithm"] == algorithm
    assert credential.algorithm == algorithm

    challenge = b"a" * 32
    assertion = authenticator.get(authentication_options(challenge=challenge), origin=ORIGIN)
    verified_auth = authenticate(assertion, verified.credential_public_key, verified.sign_count, challenge)
    assert verified_auth.credential_id == credential.credential_id
    assert verified_auth.new_sign_count == 1
    assert verified_auth.user_verified is True


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=ALG_IDS.get)
def test_signature_is_bound_to_the_key_and_the_challenge(algorithm: int) -> None:
    authenticator = SoftwareAuthenticator(algorithm=algorithm)
    _, first = register(authenticator, user_id=b"u1")
    _, second = register(authenticator, user_id=b"u2")
    challenge = b"b" * 32
    assertion = authenticator.get(
        authentication_options(challenge=challenge, allow=[first.credential_id]), origin=ORIGIN
    )

    authenticate(assertion, first.credential_public_key, 0, challenge)
    with pytest.raises(InvalidAuthenticationResponse):
        authenticate(assertion, second.credential_public_key, 0, challenge)
    with pytest.raises(InvalidAuthenticationResponse):
        authenticate(assertion, first.credential_public_key, 0, b"x" * 32)

    # Flip one byte of the signed clientDataJSON: the signature must stop verifying.
    client_data = bytearray(b64url_decode(assertion["response"]["clientDataJSON"]))
    client_data[-2] ^= 0x01
    tampered = {
        **assertion,
        "response": {**assertion["response"], "clientDataJSON": b64url_encode(bytes(client_data))},
    }
    with pytest.raises(InvalidAuthenticationResponse):
        authenticate(tampered, first.credential_public_key, 0, challenge)


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=ALG_IDS.get)
def test_registration_response_shape_and_public_key(algorithm: int) -> None:
    authenticator = SoftwareAuthenticator(
        algorithm=algorithm, transports=("usb", "nfc"), attachment="cross-platform", aaguid=bytes(range(16))
    )
    response, verified = register(authenticator)
    credential = authenticator.credentials[0]

    assert response["type"] == "public-key"
    assert response["id"] == response["rawId"] == b64url_encode(credential.credential_id)
    assert "=" not in response["id"]
    assert 16 <= len(credential.credential_id) <= 32
    assert response["authenticatorAttachment"] == "cross-platform"
    assert response["response"]["transports"] == ["usb", "nfc"]
    assert response["clientExtensionResults"] == {}
    assert verified.aaguid == "00010203-0405-0607-0809-0a0b0c0d0e0f"

    spki = b64url_decode(response["response"]["publicKey"])
    loaded = serialization.load_der_public_key(spki)
    assert loaded.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == credential.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki == credential.public_key_spki

    attestation = cbor2.loads(b64url_decode(response["response"]["attestationObject"]))
    assert list(attestation) == ["fmt", "attStmt", "authData"]
    assert attestation["authData"] == b64url_decode(response["response"]["authenticatorData"])
    cose = cbor2.loads(credential.public_key_cose)
    assert cose[3] == algorithm
    assert list(cose)[:2] == [1, 3]


def test_cose_keys_have_the_expected_parameters() -> None:
    es = cbor2.loads(_cose_for(ALG_ES256))
    assert (es[1], es[3], es[-1], len(es[-2]), len(es[-3])) == (2, -7, 1, 32, 32)
    ed = cbor2.loads(_cose_for(ALG_EDDSA))
    assert (ed[1], ed[3], ed[-1], len(ed[-2])) == (1, -8, 6, 32)
    rs = cbor2.loads(_cose_for(ALG_RS256))
    assert (rs[1], rs[3], len(rs[-1]), rs[-2]) == (3, -257, 256, b"\x01\x00\x01")


def _cose_for(algorithm: int) -> bytes:
    authenticator = SoftwareAuthenticator(algorithm=algorithm)
    authenticator.create(registration_options(), origin=ORIGIN)
    return authenticator.credentials[0].public_key_cose


def test_packed_self_attestation_signs_auth_data_and_client_data_hash() -> None:
    authenticator = SoftwareAuthenticator(attestation="packed")
    response, _ = register(authenticator)
    attestation = cbor2.loads(b64url_decode(response["response"]["attestationObject"]))
    assert attestation["fmt"] == "packed"
    assert set(attestation["attStmt"]) == {"alg", "sig"}
    assert attestation["attStmt"]["alg"] == ALG_ES256

    # Corrupt the self-attestation signature: py_webauthn must reject the registration.
    attestation["attStmt"]["sig"] = attestation["attStmt"]["sig"][:-1] + bytes([attestation["attStmt"]["sig"][-1] ^ 1])
    forged = {
        **response,
        "response": {**response["response"], "attestationObject": b64url_encode(cbor2.dumps(attestation))},
    }
    with pytest.raises(InvalidRegistrationResponse):
        verify_registration_response(
            credential=forged,
            expected_challenge=b"registration-challenge-0123456789",
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
        )


# -- client data -----------------------------------------------------------------------------------------


def test_client_data_json_is_compact_and_in_browser_key_order() -> None:
    authenticator = SoftwareAuthenticator()
    response = authenticator.create(registration_options(challenge=b"\xff" * 20), origin=ORIGIN)
    assert b64url_decode(response["response"]["clientDataJSON"]) == (
        b'{"type":"webauthn.create","challenge":"'
        + b64url_encode(b"\xff" * 20).encode()
        + b'","origin":"https://example.com","crossOrigin":false}'
    )

    assertion = authenticator.get(
        authentication_options(challenge=b"z" * 16),
        origin=ORIGIN,
        cross_origin=True,
        top_origin="https://embedder.test",
    )
    assert json.loads(b64url_decode(assertion["response"]["clientDataJSON"])) == {
        "type": "webauthn.get",
        "challenge": b64url_encode(b"z" * 16),
        "origin": ORIGIN,
        "crossOrigin": True,
        "topOrigin": "https://embedder.test",
    }
    text = b64url_decode(assertion["response"]["clientDataJSON"]).decode()
    assert text.startswith('{"type":"webauthn.get","challenge":')
    assert text.index('"crossOrigin"') < text.index('"topOrigin"')


def test_wrong_origin_is_caught_by_the_relying_party() -> None:
    authenticator = SoftwareAuthenticator()
    options = registration_options()
    response = authenticator.create(options, origin="https://evil.test", rp_id=RP_ID)
    with pytest.raises(InvalidRegistrationResponse):
        verify_registration_response(
            credential=response,
            expected_challenge=b64url_decode(options["challenge"]),
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
        )


def test_rp_id_defaults_to_the_origin_host_and_argument_overrides() -> None:
    authenticator = SoftwareAuthenticator()
    options = registration_options()
    del options["rp"]["id"]
    response = authenticator.create(options, origin="https://login.example.org:8443")
    assert auth_data_of(response)[:32] == hashlib.sha256(b"login.example.org").digest()
    assert authenticator.credentials[-1].rp_id == "login.example.org"

    response = authenticator.create(registration_options(user_id=b"u2"), origin=ORIGIN, rp_id="other.test")
    assert auth_data_of(response)[:32] == hashlib.sha256(b"other.test").digest()
    with pytest.raises(InvalidRegistrationResponse):
        verify_registration_response(
            credential=response,
            expected_challenge=b"registration-challenge-0123456789",
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
        )


# -- flags -------------------------------------------------------------------------------------------------


def test_user_verification_off_is_rejected_when_required() -> None:
    authenticator = SoftwareAuthenticator(user_verified=False)
    options = registration_options()
    response = authenticator.create(options, origin=ORIGIN)
    assert auth_data_of(response)[32] & 0x04 == 0
    with pytest.raises(InvalidRegistrationResponse):
        verify_registration_response(
            credential=response,
            expected_challenge=b64url_decode(options["challenge"]),
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
            require_user_verification=True,
        )
    verified = verify_registration_response(
        credential=response,
        expected_challenge=b64url_decode(options["challenge"]),
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        require_user_verification=False,
    )
    assert verified.user_verified is False

    challenge = b"q" * 32
    assertion = authenticator.get(authentication_options(challenge=challenge), origin=ORIGIN)
    with pytest.raises(InvalidAuthenticationResponse):
        authenticate(assertion, verified.credential_public_key, 0, challenge, require_uv=True)
    assert (
        authenticate(assertion, verified.credential_public_key, 0, challenge, require_uv=False).user_verified is False
    )

    # The flag is a live attribute: turning it back on yields verified assertions.
    authenticator.user_verified = True
    assertion = authenticator.get(authentication_options(challenge=challenge), origin=ORIGIN)
    assert authenticate(assertion, verified.credential_public_key, 1, challenge).user_verified is True


def test_user_presence_off_is_rejected() -> None:
    authenticator = SoftwareAuthenticator(user_present=False, user_verified=False)
    options = registration_options()
    response = authenticator.create(options, origin=ORIGIN)
    assert auth_data_of(response)[32] & 0x01 == 0
    with pytest.raises(InvalidRegistrationResponse):
        verify_registration_response(
            credential=response,
            expected_challenge=b64url_decode(options["challenge"]),
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
        )


def test_flag_bits_in_authenticator_data() -> None:
    authenticator = SoftwareAuthenticator(backup_eligible=True, backed_up=True)
    response, verified = register(authenticator)
    assert auth_data_of(response)[32] == 0x01 | 0x04 | 0x08 | 0x10 | 0x40
    assert verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    assert verified.credential_backed_up is True

    authenticator.backed_up = False
    challenge = b"f" * 32
    assertion = authenticator.get(authentication_options(challenge=challenge), origin=ORIGIN)
    assert auth_data_of(assertion)[32] == 0x01 | 0x04 | 0x08
    result = authenticate(assertion, verified.credential_public_key, 0, challenge)
    assert result.credential_backed_up is False
    assert result.credential_device_type == CredentialDeviceType.MULTI_DEVICE

    plain = SoftwareAuthenticator()
    _, plain_verified = register(plain)
    assert plain_verified.credential_device_type == CredentialDeviceType.SINGLE_DEVICE


# -- counter -----------------------------------------------------------------------------------------------


def test_counter_increments_on_every_assertion() -> None:
    authenticator = SoftwareAuthenticator()
    response, verified = register(authenticator)
    assert struct.unpack(">I", auth_data_of(response)[33:37])[0] == 0
    current = verified.sign_count
    for expected in (1, 2, 3):
        challenge = bytes([expected]) * 32
        assertion = authenticator.get(authentication_options(challenge=challenge), origin=ORIGIN)
        current = authenticate(assertion, verified.credential_public_key, current, challenge).new_sign_count
        assert current == expected
        assert authenticator.sign_count == expected
        assert authenticator.credentials[0].sign_count == expected


def test_counter_starts_where_told_and_can_be_rewound_to_simulate_a_clone() -> None:
    authenticator = SoftwareAuthenticator(sign_count=41)
    _, verified = register(authenticator)
    assert verified.sign_count == 41
    challenge = b"k" * 32
    assertion = authenticator.get(authentication_options(challenge=challenge), origin=ORIGIN)
    assert authenticate(assertion, verified.credential_public_key, 41, challenge).new_sign_count == 42

    authenticator.sign_count = 10
    assertion = authenticator.get(authentication_options(challenge=challenge), origin=ORIGIN)
    assert struct.unpack(">I", auth_data_of(assertion)[33:37])[0] == 11
    with pytest.raises(InvalidAuthenticationResponse):
        authenticate(assertion, verified.credential_public_key, 42, challenge)


def test_no_counter_always_reports_zero() -> None:
    authenticator = SoftwareAuthenticator(sign_count=None)
    _, verified = register(authenticator)
    assert verified.sign_count == 0
    for _ in range(3):
        challenge = b"n" * 32
        assertion = authenticator.get(authentication_options(challenge=challenge), origin=ORIGIN)
        assert auth_data_of(assertion)[33:37] == bytes(4)
        assert authenticate(assertion, verified.credential_public_key, 0, challenge).new_sign_count == 0
    assert authenticator.sign_count is None


# -- credential selection ------------------------------------------------------------------------------------


def test_exclude_credentials_refuses_a_second_registration() -> None:
    authenticator = SoftwareAuthenticator()
    _, verified = register(authenticator)
    with pytest.raises(SoftwareAuthenticatorError) as info:
        authenticator.create(registration_options(exclude=[b"someone-else", verified.credential_id]), origin=ORIGIN)
    assert info.value.code == "already_registered"
    assert len(authenticator.credentials) == 1

    # Credentials of another authenticator, or for another rp id, do not block it.
    authenticator.create(registration_options(exclude=[b"someone-else"]), origin=ORIGIN)
    authenticator.create(
        registration_options(exclude=[verified.credential_id], rp_id="other.test"),
        origin="https://other.test",
    )
    assert len(authenticator.credentials) == 3


def test_unsupported_algorithm_is_refused() -> None:
    authenticator = SoftwareAuthenticator(algorithm=ALG_EDDSA)
    with pytest.raises(SoftwareAuthenticatorError) as info:
        authenticator.create(registration_options(algs=[ALG_ES256, ALG_RS256]), origin=ORIGIN)
    assert info.value.code == "not_supported"
    assert authenticator.credentials == []


def test_discoverable_sign_in_uses_the_newest_credential_and_returns_its_user_handle() -> None:
    authenticator = SoftwareAuthenticator()
    _, alice = register(authenticator, user_id=b"alice-handle", user_name="alice")
    _, bob = register(authenticator, user_id=b"bob-handle", user_name="bob")
    authenticator.create(registration_options(user_id=b"carol", rp_id="other.test"), origin="https://other.test")

    challenge = b"d" * 32
    assertion = authenticator.get(authentication_options(challenge=challenge), origin=ORIGIN)
    assert b64url_decode(assertion["rawId"]) == bob.credential_id
    assert b64url_decode(assertion["response"]["userHandle"]) == b"bob-handle"
    authenticate(assertion, bob.credential_public_key, 0, challenge)

    assertion = authenticator.get(
        authentication_options(challenge=challenge, allow=[b"unknown", alice.credential_id]), origin=ORIGIN
    )
    assert b64url_decode(assertion["rawId"]) == alice.credential_id
    assert b64url_decode(assertion["response"]["userHandle"]) == b"alice-handle"
    assert assertion["clientExtensionResults"] == {}
    assert assertion["authenticatorAttachment"] == "platform"
    authenticate(assertion, alice.credential_public_key, 0, challenge)

    assertion = authenticator.get(authentication_options(), origin=ORIGIN, credential_id=alice.credential_id)
    assert b64url_decode(assertion["rawId"]) == alice.credential_id


def test_no_usable_credential_is_not_allowed() -> None:
    authenticator = SoftwareAuthenticator()
    with pytest.raises(SoftwareAuthenticatorError) as info:
        authenticator.get(authentication_options(), origin=ORIGIN)
    assert info.value.code == "not_allowed"

    _, verified = register(authenticator)
    with pytest.raises(SoftwareAuthenticatorError) as info:
        authenticator.get(authentication_options(allow=[b"not-mine"]), origin=ORIGIN)
    assert info.value.code == "not_allowed"
    with pytest.raises(SoftwareAuthenticatorError) as info:
        authenticator.get(authentication_options(), origin="https://other.test", rp_id="other.test")
    assert info.value.code == "not_allowed"
    with pytest.raises(SoftwareAuthenticatorError) as info:
        authenticator.get(authentication_options(), origin=ORIGIN, credential_id=b"not-mine")
    assert info.value.code == "not_allowed"
    # A refused assertion does not advance the counter.
    assert authenticator.sign_count == 0
    assert authenticator.credential(verified.credential_id).credential_id == verified.credential_id


# -- options handling ----------------------------------------------------------------------------------------


def test_cred_props_extension_and_public_key_wrapper() -> None:
    authenticator = SoftwareAuthenticator()
    options = registration_options()
    options["extensions"] = {"credProps": True}
    response = authenticator.create({"publicKey": options}, origin=ORIGIN)
    assert response["clientExtensionResults"] == {"credProps": {"rk": True}}
    assert authenticator.credentials[0].user_name == "alice"


def test_empty_pub_key_cred_params_means_es256_or_rs256() -> None:
    options = registration_options()
    options["pubKeyCredParams"] = []
    SoftwareAuthenticator(algorithm=ALG_RS256).create(options, origin=ORIGIN)
    with pytest.raises(SoftwareAuthenticatorError):
        SoftwareAuthenticator(algorithm=ALG_EDDSA).create(options, origin=ORIGIN)


def test_invalid_configuration_and_options_raise_value_error() -> None:
    with pytest.raises(ValueError):
        SoftwareAuthenticator(algorithm=-53)  # Ed448: not made here
    with pytest.raises(ValueError):
        SoftwareAuthenticator(attestation="tpm")
    with pytest.raises(ValueError):
        SoftwareAuthenticator(aaguid=b"short")
    with pytest.raises(ValueError):
        SoftwareAuthenticator(sign_count=-1)
    authenticator = SoftwareAuthenticator()
    options = registration_options()
    options["challenge"] = 12
    with pytest.raises(ValueError):
        authenticator.create(options, origin=ORIGIN)
    with pytest.raises(ValueError):
        authenticator.get("[]", origin=ORIGIN)

    authenticator = SoftwareAuthenticator(sign_count=0xFFFFFFFF)
    authenticator.create(registration_options(), origin=ORIGIN)
    with pytest.raises(ValueError):
        authenticator.get(authentication_options(), origin=ORIGIN)
