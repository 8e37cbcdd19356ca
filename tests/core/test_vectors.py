"""Every real authenticator response in tests/vectors, through the public API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

import passgate
from passgate.core.encoding import b64url_decode
from tests.conftest import VECTORS, load_vector

NAMES = sorted(p.name for p in VECTORS.glob("*.json") if not p.name.startswith("mds3_"))

# The code each negative vector must produce.
FAILURE_CODES = {
    "pyw_auth_uv_required_but_not_set_NEG.json": "user_not_verified",
    "pyw_auth_wrong_public_key_NEG.json": "bad_signature",
    "pyw_reg_fido_u2f_yubikey_tokenbinding_status_not_supported_NEG.json": "token_binding_invalid",
    "pyw_reg_packed_yubikey_wrong_root_NEG.json": "attestation_untrusted",
    "pyw_reg_unknown_fmt_NEG.json": "unsupported_attestation_format",
    # Disputed between implementations; Passgate refuses its attestation.
    "w3c_reg_android_key_es256.json": "attestation_untrusted",
}


def verify(vector: dict[str, Any], name: str, *, allow_cross_origin: bool = False) -> Any:
    roots = {fmt: tuple(pems) for fmt, pems in (vector.get("pem_root_certs_by_fmt") or {}).items()}
    policy = passgate.Policy(
        trusted_roots=roots,
        allow_cross_origin=allow_cross_origin,
        user_verification="required" if "uv_required" in name else "preferred",
    )
    when = vector.get("verify_at_time")
    now = datetime.fromisoformat(when.split(" ")[0].replace("Z", "+00:00")) if when else None
    common: dict[str, Any] = {
        "expected_challenge": b64url_decode(vector["expected_challenge_b64url"]),
        "expected_rp_id": vector["rp_id"],
        "expected_origins": [vector["origin"]],
        "policy": policy,
        "now": now,
    }
    if "_reg_" in name:
        return passgate.verify_registration(vector["credential_json"], **common)
    return passgate.verify_authentication(
        vector["credential_json"],
        credential_public_key=b64url_decode(vector["public_key_cose_b64url"]),
        stored_sign_count=vector["sign_count_stored"],
        **common,
    )


def test_the_vectors_are_there() -> None:
    assert len(NAMES) >= 50


@pytest.mark.parametrize("name", NAMES)
def test_vector(name: str) -> None:
    vector = load_vector(name)
    expected = vector["expected"]
    if expected == "pass":
        result = verify(vector, name)
        assert result.credential_id == b64url_decode(vector["credential_json"]["rawId"])
    elif expected == "pass_if_rp_allows_cross_origin":
        assert verify(vector, name, allow_cross_origin=True).credential_id
        with pytest.raises(passgate.CrossOriginNotAllowed) as refused:
            verify(vector, name)
        assert refused.value.code == "cross_origin_not_allowed"
    elif expected in ("fail", "disputed_fail"):
        with pytest.raises(passgate.PasskeyError) as failure:
            verify(vector, name)
        assert failure.value.code == FAILURE_CODES[name]
    elif expected == "disputed":
        # Implementations disagree; Passgate must decide cleanly either way.
        try:
            verify(vector, name)
        except passgate.PasskeyError as exc:
            assert exc.code in {"attestation_invalid", "attestation_untrusted"}
    else:
        pytest.fail(f"unknown expectation {expected!r}")


def test_registration_result_carries_what_the_server_stores() -> None:
    vector = load_vector("w3c_reg_packed_es256.json")
    registered = verify(vector, "w3c_reg_packed_es256.json")
    assert registered.attestation_format == "packed"
    assert registered.attestation_trust == "attested"
    assert registered.algorithm == -7
    assert len(registered.aaguid) == 36
    assert registered.public_key.startswith(b"\xa5")


def test_an_expired_safetynet_attestation_fails_with_the_real_clock() -> None:
    vector = load_vector("pyw_reg_android_safetynet_chrome.json")
    vector["verify_at_time"] = None  # the verdict is from September 2021, its leaf certificate expired in October
    with pytest.raises(passgate.AttestationInvalid, match="Payload has expired"):
        verify(vector, "pyw_reg_android_safetynet_chrome.json")


def test_tpm_manufacturers_must_be_well_formed() -> None:
    from passgate.core.attestation import _any_tpm_manufacturer

    assert _any_tpm_manufacturer("id:414D4400").name  # AMD, in the TCG registry
    assert _any_tpm_manufacturer("id:00000000").name == "unregistered"
    with pytest.raises(KeyError):
        _any_tpm_manufacturer("id:not-hex!")
