"""Trust decisions rest on verified facts: what attestation proves, which roots anchor it, which policy values hold."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from webauthn.helpers import known_root_certs

import passgate
from passgate.config import ConfigError, load_settings
from passgate.core import attestation, cose
from passgate.core.data import RegistrationResponse
from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.core.policy import preset
from passgate.testing import SoftwareAuthenticator
from passgate.testing.certificates import TestRoot
from passgate.testing.packed import ATTESTATION_SUBJECT, packed_attestation
from passgate.testing.tpm import tpm_attestation
from tests.conftest import load_vector
from tests.core.test_ceremonies import CHALLENGE, ORIGIN, RP_ID, compound, options

AAGUID = bytes(range(16))
AAGUID_TEXT = "00010203-0405-0607-0809-0a0b0c0d0e0f"
OTHER_AAGUID = "ee882879-721c-4913-9775-3dfcce97072a"


def verify(
    response: dict[str, Any], policy: passgate.Policy, *, now: datetime.datetime | None = None
) -> passgate.RegisteredCredential:
    return passgate.verify_registration(
        response, expected_challenge=CHALLENGE, expected_rp_id=RP_ID, expected_origins=[ORIGIN], policy=policy, now=now
    )


def software_response(**authenticator: Any) -> dict[str, Any]:
    return SoftwareAuthenticator(aaguid=AAGUID, **authenticator).create(options(), origin=ORIGIN)


def attested_policy(**fields: Any) -> passgate.Policy:
    return passgate.Policy(attestation="direct", require_attestation=True, **fields)


def statement_of(response: dict[str, Any]) -> dict[str, Any]:
    statement: dict[str, Any] = cbor2.loads(b64url_decode(response["response"]["attestationObject"]))["attStmt"]
    return statement


# Packed x5c: the certificate requirements and its AAGUID extension (WebAuthn §8.2, §8.2.1)


@pytest.mark.parametrize("aaguid_extension", [True, False])
def test_a_packed_certificate_proves_its_model(aaguid_extension: bool) -> None:
    packed = packed_attestation(software_response(), aaguid_extension=aaguid_extension)
    registered = verify(packed.response, attested_policy(trusted_roots={"packed": (packed.root_pem,)}))
    assert registered.attestation_trust == "attested"
    assert registered.aaguid == AAGUID_TEXT and registered.aaguid_attested


def test_a_packed_certificate_for_another_model_is_refused() -> None:
    # An attestation key of one model may not register as another, allowed or certified, model.
    packed = packed_attestation(software_response(), aaguid_extension=bytes.fromhex(OTHER_AAGUID.replace("-", "")))
    policy = attested_policy(trusted_roots={"packed": (packed.root_pem,)}, aaguid_allow=frozenset({AAGUID_TEXT}))
    with pytest.raises(passgate.AttestationInvalid, match="AAGUID"):
        verify(packed.response, policy)


def subject(**replaced: str | None) -> x509.Name:
    names = {"C": NameOID.COUNTRY_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME}
    names["CN"] = NameOID.COMMON_NAME
    values = {name: ATTESTATION_SUBJECT.get_attributes_for_oid(oid)[0].value for name, oid in names.items()}
    values.update(replaced)
    return x509.Name([x509.NameAttribute(names[n], str(v)) for n, v in values.items() if v is not None])


@pytest.mark.parametrize(
    ("maker", "message"),
    [
        ({"version": 1}, "version 3"),
        ({"certificate_is_ca": True}, "CA certificate"),
        ({"subject": subject(OU="Security Keys")}, "Authenticator Attestation"),
        ({"subject": subject(OU=None)}, "no OU"),
        ({"subject": subject(C=None)}, "no C"),
        ({"subject": subject(O=None)}, "no O"),
        ({"subject": subject(CN=None)}, "no CN"),
    ],
)
def test_packed_certificates_must_meet_the_spec(maker: dict[str, Any], message: str) -> None:
    packed = packed_attestation(software_response(), **maker)
    with pytest.raises(passgate.AttestationInvalid, match=message):
        verify(packed.response, attested_policy(trusted_roots={"packed": (packed.root_pem,)}))


def test_an_allow_list_is_satisfied_only_by_an_attested_model() -> None:
    allow = frozenset({AAGUID_TEXT})
    with pytest.raises(passgate.AuthenticatorNotAllowed):  # "none": the AAGUID is only claimed
        verify(software_response(), passgate.Policy(aaguid_allow=allow))
    packed = packed_attestation(software_response())
    unanchored = passgate.Policy(attestation="direct", aaguid_allow=allow)
    with pytest.raises(passgate.AuthenticatorNotAllowed):  # a certificate no trust anchor vouches for
        verify(packed.response, unanchored)
    registered = verify(
        packed.response, attested_policy(trusted_roots={"packed": (packed.root_pem,)}, aaguid_allow=allow)
    )
    assert registered.aaguid_attested


def test_a_claimed_model_is_refused_by_a_block_list_but_never_attested() -> None:
    registered = verify(software_response(), passgate.Policy())
    assert registered.aaguid == AAGUID_TEXT and not registered.aaguid_attested
    with pytest.raises(passgate.AuthenticatorNotAllowed):
        verify(software_response(), passgate.Policy(aaguid_block=frozenset({AAGUID_TEXT})))


def test_an_allow_list_without_required_attestation_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="aaguid_allow needs require_attestation"):
        preset("consumer", aaguid_allow=[AAGUID_TEXT])


# Platform vendors' roots


def verify_vector(name: str, policy: passgate.Policy) -> passgate.RegisteredCredential:
    vector = load_vector(name)
    when = datetime.datetime.fromisoformat(vector["verify_at_time"].split(" ")[0].replace("Z", "+00:00"))
    return passgate.verify_registration(
        vector["credential_json"],
        expected_challenge=b64url_decode(vector["expected_challenge_b64url"]),
        expected_rp_id=vector["rp_id"],
        expected_origins=[vector["origin"]],
        policy=policy,
        now=when,
    )


PLATFORM_VECTORS = {
    "apple": "pyw_reg_apple_anonymous_passkey.json",
    "android-key": "pyw_reg_android_key_pixel8a.json",
    "android-safetynet": "pyw_reg_android_safetynet_chrome.json",
}


@pytest.mark.parametrize("fmt", sorted(PLATFORM_VECTORS))
@pytest.mark.parametrize("name", ["enterprise", "high-assurance"])
def test_attested_presets_do_not_trust_platform_roots(fmt: str, name: str) -> None:
    other_root = packed_attestation(software_response()).root_pem
    lenient = dict(  # what these vectors' authenticators are: not always UV, synced, not certified
        user_verification="preferred",
        allow_backup_eligible=True,
        min_certification_level=0,
        allowed_algorithms=passgate.Policy().allowed_algorithms,
    )
    for roots in ({}, {fmt: [other_root]}):  # nothing configured, or only another root
        with pytest.raises(passgate.AttestationUntrusted):
            verify_vector(PLATFORM_VECTORS[fmt], preset(name, trusted_roots=roots, **lenient))
    trusting = preset(name, trust_platform_roots=True, **lenient)
    assert verify_vector(PLATFORM_VECTORS[fmt], trusting).aaguid_attested


def test_consumer_and_payments_trust_platform_roots() -> None:
    for name in ("consumer", "payments"):
        assert preset(name).trust_platform_roots
        policy = preset(name, attestation="direct", require_attestation=True, user_verification="preferred")
        assert verify_vector(PLATFORM_VECTORS["apple"], policy).aaguid_attested


def test_a_platform_root_configured_by_the_operator_is_trusted() -> None:
    policy = preset(
        "enterprise", user_verification="preferred", trusted_roots={"apple": [known_root_certs.apple_webauthn_root_ca]}
    )
    assert not policy.trust_platform_roots
    assert verify_vector(PLATFORM_VECTORS["apple"], policy).aaguid_attested


# SafetyNet


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def safetynet_attestation(response: dict[str, Any], **payload: Any) -> tuple[dict[str, Any], str]:
    """A SafetyNet attestation of `response`, its JWS signed by an attest.android.com certificate of a test root."""
    body = response["response"]
    attestation_object = cbor2.loads(b64url_decode(body["attestationObject"]))
    auth_data = attestation_object["authData"]
    client_data_hash = hashlib.sha256(b64url_decode(body["clientDataJSON"])).digest()
    now = datetime.datetime.now(datetime.UTC)
    root_key, leaf_key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Passgate Test SafetyNet Root")])

    def certificate(name: x509.Name, key: rsa.RSAPrivateKey, ca: bool) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(root_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(root_key, hashes.SHA256())
        )

    root = certificate(root_name, root_key, True)
    leaf = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attest.android.com")]), leaf_key, False)
    nonce = base64.b64encode(hashlib.sha256(auth_data + client_data_hash).digest()).decode()
    claims = {
        "nonce": nonce,
        "timestampMs": int(now.timestamp() * 1000),
        "basicIntegrity": True,
        "ctsProfileMatch": True,
        **payload,
    }
    header = {"alg": "RS256", "x5c": [base64.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode()]}
    signed = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = leaf_key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    statement = {"ver": "1", "response": f"{signed}.{b64(signature)}".encode()}
    attestation_object.update(fmt="android-safetynet", attStmt=statement)
    rewritten = {**response, "response": {**body, "attestationObject": b64url_encode(cbor2.dumps(attestation_object))}}
    return rewritten, root.public_bytes(serialization.Encoding.PEM).decode()


def test_safetynet_without_cts_profile_match_is_refused_by_default() -> None:
    response, root = safetynet_attestation(software_response(), ctsProfileMatch=False)
    with pytest.raises(passgate.AttestationInvalid, match="ctsProfileMatch"):
        verify(response, attested_policy(trusted_roots={"android-safetynet": (root,)}))
    lenient = attested_policy(trusted_roots={"android-safetynet": (root,)}, require_cts_profile_match=False)
    assert verify(response, lenient).attestation_trust == "attested"


def test_safetynet_with_cts_profile_match_chains_to_a_configured_root() -> None:
    response, root = safetynet_attestation(software_response())
    policy = attested_policy(trusted_roots={"android-safetynet": (root,)}, trust_platform_roots=False)
    assert verify(response, policy).aaguid_attested
    _, other_root = safetynet_attestation(software_response())
    with pytest.raises(passgate.AttestationUntrusted):
        verify(response, attested_policy(trusted_roots={"android-safetynet": (other_root,)}))


# Compound


def packed_and_tpm() -> tuple[dict[str, Any], str, str]:
    response = software_response()
    packed, tpm = packed_attestation(response), tpm_attestation(response)
    parts = [
        {"fmt": "packed", "attStmt": statement_of(packed.response)},
        {"fmt": "tpm", "attStmt": statement_of(tpm.response)},
    ]
    return compound(dict(response), parts), packed.root_pem, tpm.root_pem


def test_each_part_of_a_compound_attestation_is_checked_against_its_own_formats_roots() -> None:
    response, packed_root, tpm_root = packed_and_tpm()
    registered = verify(response, attested_policy(trusted_roots={"packed": (packed_root,), "tpm": (tpm_root,)}))
    assert registered.attestation_format == "compound" and registered.aaguid_attested
    for roots in (
        {"packed": (tpm_root,), "tpm": (packed_root,)},  # each part's chain reaches only the other's root
        {"packed": (packed_root,)},  # the tpm part has no anchor
        {"compound": (packed_root, tpm_root)},  # "compound" is not the format of any chain
    ):
        with pytest.raises(passgate.AttestationUntrusted):
            verify(response, attested_policy(trusted_roots=roots))


# Roots as the Policy receives them, and errors that are bugs


def test_trusted_roots_may_be_bytes_pem() -> None:
    google = [  # bytes, as py_webauthn itself keeps them
        known_root_certs.google_hardware_attestation_root_2,
        known_root_certs.google_hardware_attestation_root_3,
        known_root_certs.google_hardware_attestation_root_4,
        known_root_certs.google_hardware_attestation_root_5,
    ]
    policy = preset("enterprise", user_verification="preferred", trusted_roots={"android-key": google})
    assert verify_vector(PLATFORM_VECTORS["android-key"], policy).attestation_trust == "attested"
    assert all(isinstance(pem, str) for pem in policy.trusted_roots["android-key"])
    packed = packed_attestation(software_response())
    assert verify(packed.response, attested_policy(trusted_roots={"packed": [packed.root_pem.encode()]}))


@pytest.mark.parametrize(
    ("roots", "error", "message"),
    [
        ({"packed": [1]}, TypeError, "holds a int"),
        ({"packed": "-----BEGIN CERTIFICATE-----"}, TypeError, "must be a list"),
        ({"packed": ["not a certificate"]}, ValueError, "not a PEM certificate"),
        ([("packed", [])], TypeError, "must map"),
    ],
)
def test_trusted_roots_of_another_kind_are_refused_when_the_policy_is_built(
    roots: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        passgate.Policy(trusted_roots=roots)


def test_a_programming_error_in_a_verifier_is_not_an_attestation_verdict() -> None:
    packed = packed_attestation(software_response())
    parsed = RegistrationResponse.parse(packed.response)
    statement = attestation.Statement(
        attestation=parsed.attestation,
        client_data=parsed.client_data,
        client_data_hash=hashlib.sha256(parsed.client_data.raw).digest(),
        credential_key=cose.parse_public_key(verify(packed.response, passgate.Policy()).public_key),
        roots_for=lambda fmt: (),
    )

    def buggy(statement: attestation.Statement, parsed: Any, roots: list[bytes]) -> bool:
        return bool(statement.attestation.raw.no_such_method())  # type: ignore[attr-defined]

    with pytest.raises(AttributeError):
        attestation._certified(buggy)(statement)


# AAGUID lists


def test_aaguid_entries_are_kept_in_canonical_form() -> None:
    hyphenless = AAGUID_TEXT.replace("-", "").upper()
    policy = passgate.Policy(aaguid_block=frozenset({hyphenless}))
    assert policy.aaguid_block == frozenset({AAGUID_TEXT})
    with pytest.raises(passgate.AuthenticatorNotAllowed):
        verify(software_response(), policy)
    assert preset("enterprise", aaguid_allow=[OTHER_AAGUID.upper()]).aaguid_allow == frozenset({OTHER_AAGUID})


@pytest.mark.parametrize("entry", ["not-an-aaguid", AAGUID_TEXT[:-1], AAGUID_TEXT + "0", "0001-0203" + "0" * 24, 7])
def test_bad_aaguid_entries_are_refused_naming_them(entry: Any) -> None:
    with pytest.raises(ValueError, match="is not an AAGUID") as refused:
        passgate.Policy(aaguid_block=frozenset({entry}))
    assert repr(entry) in str(refused.value)
    with pytest.raises(ValueError, match="aaguid_allow"):
        preset("enterprise", aaguid_allow=[entry])
    with pytest.raises(TypeError, match="list of AAGUIDs"):
        preset("enterprise", aaguid_block=AAGUID_TEXT)  # one string, not a list


def test_the_configuration_file_names_a_bad_aaguid(tmp_path: Path) -> None:
    config = tmp_path / "passgate.toml"
    config.write_text('[policy]\npreset = "enterprise"\naaguid_block = ["876CA4F5-2071"]\n')
    with pytest.raises(ConfigError, match="876CA4F5-2071"):
        load_settings({}, {}, config)


@pytest.mark.parametrize("seconds", [-61, 30])
def test_a_safetynet_verdict_must_be_from_the_verification_time(seconds: int) -> None:
    response, root = safetynet_attestation(software_response())
    policy = attested_policy(trusted_roots={"android-safetynet": (root,)})
    now = datetime.datetime.now(datetime.UTC)
    assert verify(response, policy, now=now).attestation_trust == "attested"
    with pytest.raises(passgate.AttestationInvalid, match="not from the time of this registration"):
        verify(response, policy, now=now + datetime.timedelta(seconds=seconds))


def test_a_packed_x5c_that_carries_its_root_is_refused() -> None:
    root = TestRoot.create("Passgate Test Attestation Root", datetime.datetime.now(datetime.UTC))
    response = software_response()
    policy = attested_policy(trusted_roots={"packed": (root.pem,)})
    assert verify(packed_attestation(response, root=root, intermediate=True).response, policy).aaguid_attested
    with_root = packed_attestation(response, root=root, intermediate=True, chain="with-root").response
    with pytest.raises(passgate.AttestationInvalid, match="must not include a root"):
        verify(with_root, policy)
