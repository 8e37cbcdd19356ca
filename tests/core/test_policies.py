"""Each policy preset accepts and refuses the right credentials: software authenticator and real vectors."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import passgate
from passgate.config import ConfigError, load_settings
from passgate.core.encoding import b64url_decode
from passgate.core.policy import PRESETS, preset
from passgate.testing import SoftwareAuthenticator
from tests.conftest import load_vector
from tests.core.test_ceremonies import CHALLENGE, ORIGIN, RP_ID, options, sign_in

PACKED = load_vector("w3c_reg_packed_es256.json")
PACKED_AAGUID = "876ca4f5-2071-c3e9-b255-09ef2cdf7ed6"  # what the spec vector's authenticator data names
YUBIKEY = load_vector("pyw_reg_packed_x5c_yubikey_firefox.json")  # a real security key: device-bound, UV
YUBIKEY_AAGUID = "6d44ba9b-f6ec-2e49-b930-0c8fe920cb73"  # "Security Key by Yubico with NFC"


def yubikey_model() -> Model:
    """The YubiKey's entry in the real FIDO metadata BLOB of the vectors (roots and certification)."""
    blob = load_vector("mds3_real_fido_blob_no9_webauthn4j.json")["mds_blob_jwt"].split(".")[1]
    payload = json.loads(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)))
    [entry] = [e for e in payload["entries"] if e.get("aaguid") == YUBIKEY_AAGUID]
    roots = tuple(
        "-----BEGIN CERTIFICATE-----\n" + der + "\n-----END CERTIFICATE-----\n"
        for der in entry["metadataStatement"]["attestationRootCertificates"]
    )
    return Model(attestation_root_certificates=roots, certification_level=entry["statusReports"][-1]["status"])


@dataclass(frozen=True)
class Model:
    """FIDO metadata for one authenticator model (the shape passgate.core.mds produces)."""

    attestation_root_certificates: tuple[str, ...] = ()
    certification_level: str | None = "FIDO_CERTIFIED_L1"
    compromised: bool = False


def register_software(policy: passgate.Policy, **authenticator: Any) -> passgate.RegisteredCredential:
    response = SoftwareAuthenticator(**authenticator).create(options(), origin=ORIGIN)
    return passgate.verify_registration(
        response, expected_challenge=CHALLENGE, expected_rp_id=RP_ID, expected_origins=[ORIGIN], policy=policy
    )


def register_vector(policy: passgate.Policy, metadata: dict[str, Any] | None = None) -> passgate.RegisteredCredential:
    return passgate.verify_registration(
        PACKED["credential_json"],
        expected_challenge=b64url_decode(PACKED["expected_challenge_b64url"]),
        expected_rp_id=PACKED["rp_id"],
        expected_origins=[PACKED["origin"]],
        policy=policy,
        metadata=metadata,
    )


def register_yubikey(policy: passgate.Policy, metadata: dict[str, Any] | None = None) -> passgate.RegisteredCredential:
    return passgate.verify_registration(
        YUBIKEY["credential_json"],
        expected_challenge=b64url_decode(YUBIKEY["expected_challenge_b64url"]),
        expected_rp_id=YUBIKEY["rp_id"],
        expected_origins=[YUBIKEY["origin"]],
        policy=policy,
        metadata=metadata,
    )


def vector_roots() -> dict[str, list[str]]:
    return {"trusted_roots": {"packed": PACKED["pem_root_certs_by_fmt"]["packed"]}}


def test_the_vector_names_the_expected_model() -> None:
    assert register_vector(passgate.Policy()).aaguid == PACKED_AAGUID


def test_consumer_welcomes_synced_passkeys_without_attestation() -> None:
    registered = register_software(preset("consumer"), backup_eligible=True, backed_up=True)
    assert registered.backed_up and registered.attestation_format == "none"


@pytest.mark.parametrize("name", ["enterprise", "high-assurance"])
@pytest.mark.parametrize("attestation", ["none", "packed"])  # packed here is self attestation
def test_attested_presets_refuse_unattested_passkeys(name: str, attestation: str) -> None:
    with pytest.raises(passgate.AttestationUntrusted):
        register_software(preset(name), attestation=attestation)


def test_enterprise_accepts_an_attested_model_it_trusts() -> None:
    registered = register_vector(preset("enterprise", **vector_roots()))
    assert registered.attestation_trust == "attested"


def test_enterprise_trusts_roots_from_metadata() -> None:
    roots = tuple(PACKED["pem_root_certs_by_fmt"]["packed"])
    assert register_vector(preset("enterprise"), {PACKED_AAGUID: Model(attestation_root_certificates=roots)})
    with pytest.raises(passgate.AttestationUntrusted):
        register_vector(preset("enterprise"))  # no anchor at all


def test_a_wrong_root_is_refused() -> None:
    other = load_vector("pyw_reg_packed_yubikey_wrong_root_NEG.json")["pem_root_certs_by_fmt"]["packed"]
    with pytest.raises(passgate.AttestationUntrusted):
        register_vector(preset("enterprise", trusted_roots={"packed": other}))


def test_aaguid_allow_and_block_lists() -> None:
    with pytest.raises(passgate.AuthenticatorNotAllowed):
        register_vector(preset("enterprise", aaguid_block=[PACKED_AAGUID.upper()], **vector_roots()))
    with pytest.raises(passgate.AuthenticatorNotAllowed):
        register_vector(preset("enterprise", aaguid_allow=["ee882879-721c-4913-9775-3dfcce97072a"], **vector_roots()))
    assert register_vector(preset("enterprise", aaguid_allow=[PACKED_AAGUID], **vector_roots()))


def test_compromised_models_are_refused_whatever_the_preset() -> None:
    with pytest.raises(passgate.AuthenticatorCompromised) as refused:
        register_vector(preset("consumer"), {PACKED_AAGUID: Model(compromised=True)})
    assert refused.value.code == "authenticator_compromised"


def test_high_assurance_wants_device_bound_certified_hardware() -> None:
    with pytest.raises(passgate.DeviceBoundRequired):
        register_software(preset("high-assurance"), backup_eligible=True)
    with pytest.raises(passgate.DeviceBoundRequired):
        register_vector(preset("high-assurance", **vector_roots()))  # the spec's vector is backup eligible
    with pytest.raises(passgate.UnsupportedAlgorithm):
        register_software(preset("high-assurance"), algorithm=-8)  # EdDSA is not on its list
    model = yubikey_model()
    with pytest.raises(passgate.AttestationUntrusted):
        register_yubikey(preset("high-assurance"))  # no metadata: no trust anchor
    with pytest.raises(passgate.AuthenticatorNotCertified):
        register_yubikey(preset("high-assurance"), {YUBIKEY_AAGUID: Model(model.attestation_root_certificates, None)})
    certified = register_yubikey(preset("high-assurance"), {YUBIKEY_AAGUID: model})
    assert not certified.backup_eligible and certified.attestation_trust == "attested"
    assert model.certification_level == "FIDO_CERTIFIED_L1"


def test_payments_verify_the_user_every_time() -> None:
    with pytest.raises(passgate.UserNotVerified):
        register_software(preset("payments"), user_verified=False)
    software = SoftwareAuthenticator()
    registered = passgate.verify_registration(
        software.create(options(), origin=ORIGIN),
        expected_challenge=CHALLENGE,
        expected_rp_id=RP_ID,
        expected_origins=[ORIGIN],
    )
    software.user_verified = False
    with pytest.raises(passgate.UserNotVerified):
        sign_in(software, registered, policy=preset("payments"))
    assert sign_in(software, registered, policy=preset("consumer")).user_verified is False


def test_the_sign_count_rule_can_flag_instead_of_refusing() -> None:
    software = SoftwareAuthenticator(sign_count=10)
    registered = passgate.verify_registration(
        software.create(options(), origin=ORIGIN),
        expected_challenge=CHALLENGE,
        expected_rp_id=RP_ID,
        expected_origins=[ORIGIN],
    )
    with pytest.raises(passgate.SignCountRegression):
        sign_in(software, registered, stored_sign_count=50)
    flagged = sign_in(software, registered, stored_sign_count=50, policy=preset("consumer", sign_count_rule="flag"))
    assert flagged.clone_warning is True
    assert sign_in(software, registered, stored_sign_count=0).clone_warning is False


def test_options_carry_the_policy() -> None:
    policy = preset("high-assurance", authenticator_attachment="cross-platform")
    created = passgate.creation_options(
        rp_id=RP_ID,
        rp_name="x",
        user_handle=b"u" * 32,
        username="u",
        display_name="u",
        challenge=CHALLENGE,
        policy=policy,
    )
    assert created["attestation"] == "direct"
    assert created["authenticatorSelection"]["authenticatorAttachment"] == "cross-platform"
    assert created["authenticatorSelection"]["userVerification"] == "required"
    assert created["hints"] == ["security-key", "client-device"]
    assert [p["alg"] for p in created["pubKeyCredParams"]] == [-7, -35, -36, -37, -257]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"colour": "blue"}, "Unknown policy setting"),
        ({"user_verification": "always"}, "user_verification"),
        ({"require_attestation": True, "attestation": "none"}, "require_attestation"),
        ({"min_certification_level": 4}, "min_certification_level"),
        ({"allowed_algorithms": [-7, 12345]}, "allowed_algorithms"),
    ],
)
def test_inconsistent_policies_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        preset("consumer", **overrides)
    with pytest.raises(ValueError, match="Unknown policy"):
        preset("paranoid")


def test_every_preset_is_consistent() -> None:
    assert set(PRESETS) == {"consumer", "enterprise", "high-assurance", "payments"}
    for name in PRESETS:
        assert preset(name).name == name


def test_the_policy_comes_from_the_configuration_file(tmp_path: Path) -> None:
    config = tmp_path / "passgate.toml"
    config.write_text(
        '[policy]\npreset = "enterprise"\naaguid_block = ["876CA4F5-2071-C3E9-B255-09EF2CDF7ED6"]\n'
        'sign_count_rule = "flag"\n'
    )
    policy = load_settings({}, {}, config).effective_policy()
    assert policy.name == "enterprise" and policy.require_attestation and policy.sign_count_rule == "flag"
    assert policy.aaguid_block == frozenset({PACKED_AAGUID})
    assert load_settings({"policy": "payments"}, {}).effective_policy().confirm_transactions
    assert load_settings({"user_verification": "discouraged"}, {}).effective_policy().user_verification == "discouraged"
    config.write_text('[policy]\npreset = "enterprise"\nattestation = "none"\n')
    with pytest.raises(ConfigError, match="require_attestation"):
        load_settings({}, {}, config)
