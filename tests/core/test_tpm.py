"""TPM attestation, including Windows AIK certificates whose extensions `cryptography` refuses."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509

import passgate
from passgate.core.encoding import b64url_decode
from passgate.testing import SoftwareAuthenticator
from passgate.testing.tpm import tpm_attestation
from tests.core.test_ceremonies import CHALLENGE, ORIGIN, RP_ID, options


def registration(algorithm: int = -7, **tpm: Any) -> tuple[dict[str, Any], passgate.Policy]:
    authenticator = SoftwareAuthenticator(algorithm=algorithm, aaguid=bytes(range(16)))
    attested = tpm_attestation(authenticator.create(options(), origin=ORIGIN), **tpm)
    policy = passgate.Policy(
        trusted_roots={"tpm": (attested.root_pem,)}, attestation="direct", require_attestation=True
    )
    return attested.response, policy


def verify(response: dict[str, Any], policy: passgate.Policy) -> passgate.RegisteredCredential:
    return passgate.verify_registration(
        response, expected_challenge=CHALLENGE, expected_rp_id=RP_ID, expected_origins=[ORIGIN], policy=policy
    )


def aik_certificate(response: dict[str, Any]) -> bytes:
    import cbor2

    statement = cbor2.loads(b64url_decode(response["response"]["attestationObject"]))["attStmt"]
    certificate: bytes = statement["x5c"][0]
    return certificate


@pytest.mark.parametrize("algorithm", [-7, -257])
def test_a_software_tpm_attests(algorithm: int) -> None:
    registered = verify(*registration(algorithm))
    assert registered.attestation_format == "tpm" and registered.attestation_trust == "attested"


def test_windows_certificates_that_cryptography_refuses_still_verify() -> None:
    response, policy = registration(windows_policies=True)
    with pytest.raises(ValueError, match="asn1"):
        x509.load_der_x509_certificate(aik_certificate(response)).extensions  # noqa: B018 - the library's refusal
    registered = verify(response, policy)
    assert registered.attestation_trust == "attested"


@pytest.mark.parametrize(
    "tpm",
    [
        {"aik_is_ca": True},
        {"manufacturer": "not-an-id"},
        {"aaguid_extension": bytes(16)},  # names another model than the authenticator data
    ],
)
def test_windows_certificates_are_still_checked(tpm: dict[str, Any]) -> None:
    with pytest.raises(passgate.AttestationInvalid):
        verify(*registration(windows_policies=True, **tpm))
    with pytest.raises(passgate.AttestationInvalid):
        verify(*registration(windows_policies=False, **tpm))


def test_windows_certificates_need_their_chain_and_signature() -> None:
    response, _ = registration(windows_policies=True)
    _, other_root = registration()
    with pytest.raises(passgate.AttestationUntrusted):
        verify(response, other_root)
    response, policy = registration(windows_policies=True)
    client_data = response["response"]["clientDataJSON"]
    tampered = {**response, "response": {**response["response"], "clientDataJSON": client_data[:-4] + "AAAA"}}
    with pytest.raises(passgate.PasskeyError):
        verify(tampered, policy)


def test_a_matching_aaguid_extension_is_accepted() -> None:
    assert verify(*registration(windows_policies=True, aaguid_extension=bytes(range(16)))).aaguid
