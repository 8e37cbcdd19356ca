"""The core ceremonies with genuine responses from the software authenticator."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

import passgate
from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.core.policy import PRESETS
from passgate.testing import SoftwareAuthenticator

RP_ID = "example.com"
ORIGIN = "https://example.com"
CHALLENGE = hashlib.sha256(b"challenge").digest()


def options(**extra: Any) -> dict[str, Any]:
    return passgate.creation_options(
        rp_id=RP_ID,
        rp_name="Example",
        user_handle=b"\x01" * 32,
        username="alice",
        display_name="Alice",
        challenge=CHALLENGE,
        policy=passgate.Policy(),
        **extra,
    )


def register(
    authenticator: SoftwareAuthenticator, policy: passgate.Policy | None = None, **kwargs: Any
) -> passgate.RegisteredCredential:
    response = authenticator.create(options(), origin=kwargs.pop("origin", ORIGIN), **kwargs)
    return passgate.verify_registration(
        response,
        expected_challenge=CHALLENGE,
        expected_rp_id=RP_ID,
        expected_origins=[ORIGIN],
        policy=policy or passgate.Policy(),
    )


def sign_in(
    authenticator: SoftwareAuthenticator,
    registered: passgate.RegisteredCredential,
    *,
    stored_sign_count: int | None = None,
    policy: passgate.Policy | None = None,
) -> passgate.VerifiedSignIn:
    request = passgate.request_options(rp_id=RP_ID, challenge=CHALLENGE, policy=passgate.Policy())
    response = authenticator.get(request, origin=ORIGIN)
    return passgate.verify_authentication(
        response,
        expected_challenge=CHALLENGE,
        expected_rp_id=RP_ID,
        expected_origins=[ORIGIN],
        credential_public_key=registered.public_key,
        stored_sign_count=registered.sign_count if stored_sign_count is None else stored_sign_count,
        stored_backup_eligible=registered.backup_eligible,
        policy=policy or passgate.Policy(),
    )


@pytest.mark.parametrize("algorithm", [-7, -8, -257])
@pytest.mark.parametrize("attestation", ["none", "packed"])
def test_register_and_sign_in(algorithm: int, attestation: str) -> None:
    authenticator = SoftwareAuthenticator(algorithm=algorithm, attestation=attestation, sign_count=0)
    registered = register(authenticator)
    assert registered.algorithm == algorithm
    assert registered.attestation_format == attestation
    assert registered.attestation_trust == ("self" if attestation == "packed" else "none")
    assert registered.transports == ("internal",)
    assert registered.discoverable is True
    verified = sign_in(authenticator, registered)
    assert verified.credential_id == registered.credential_id
    assert verified.user_handle == b"\x01" * 32
    assert verified.sign_count == 1 and verified.user_verified


def test_backup_flags_are_reported() -> None:
    authenticator = SoftwareAuthenticator(backup_eligible=True, backed_up=True)
    registered = register(authenticator)
    assert registered.backup_eligible and registered.backed_up
    authenticator.backed_up = False
    assert sign_in(authenticator, registered).backed_up is False


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("registered_eligible", [False, True])
def test_backup_eligibility_may_not_change_between_sign_ins(name: str, registered_eligible: bool) -> None:
    policy = PRESETS[name]
    authenticator = SoftwareAuthenticator(backup_eligible=registered_eligible)
    registered = register(authenticator)
    authenticator.backup_eligible = authenticator.backed_up = not registered_eligible
    with pytest.raises(passgate.BackupEligibilityChanged) as refused:
        sign_in(authenticator, registered, policy=policy)
    assert refused.value.code == "backup_eligibility_changed"
    authenticator.backup_eligible, authenticator.backed_up = registered_eligible, False
    assert sign_in(authenticator, registered, policy=policy).backup_eligible is registered_eligible


def test_backed_up_without_eligibility_is_malformed() -> None:
    with pytest.raises(passgate.MalformedResponse):
        register(SoftwareAuthenticator(backup_eligible=False, backed_up=True))


def test_algorithms_outside_the_policy_are_refused() -> None:
    with pytest.raises(passgate.UnsupportedAlgorithm) as refused:
        register(SoftwareAuthenticator(algorithm=-257), policy=passgate.Policy(allowed_algorithms=(-7,)))
    assert refused.value.code == "unsupported_algorithm"


def test_user_verification_required() -> None:
    authenticator = SoftwareAuthenticator(user_verified=False)
    required = passgate.Policy(user_verification="required")
    with pytest.raises(passgate.UserNotVerified):
        register(authenticator, policy=required)
    registered = register(authenticator)
    assert registered.user_verified is False
    with pytest.raises(passgate.UserNotVerified):
        sign_in(authenticator, registered, policy=required)


def test_sign_count_rule() -> None:
    authenticator = SoftwareAuthenticator(sign_count=10)
    registered = register(authenticator)
    assert sign_in(authenticator, registered, stored_sign_count=10).sign_count == 11
    with pytest.raises(passgate.SignCountRegression):
        sign_in(authenticator, registered, stored_sign_count=12)  # reports 12: not above what was seen
    # An authenticator that does not count (synced passkeys) always reports 0: accepted.
    counterless = SoftwareAuthenticator(sign_count=None)
    registered = register(counterless)
    assert sign_in(counterless, registered, stored_sign_count=0).sign_count == 0


def test_cross_origin_needs_the_policy() -> None:
    authenticator = SoftwareAuthenticator()
    with pytest.raises(passgate.CrossOriginNotAllowed):
        register(authenticator, cross_origin=True, top_origin="https://shop.example")
    allowed = passgate.Policy(allow_cross_origin=True, allowed_top_origins=("https://shop.example",))
    assert register(authenticator, policy=allowed, cross_origin=True, top_origin="https://shop.example")
    with pytest.raises(passgate.CrossOriginNotAllowed):
        register(authenticator, policy=allowed, cross_origin=True, top_origin="https://evil.example")


def test_challenge_compared_exactly() -> None:
    response = SoftwareAuthenticator().create(options(), origin=ORIGIN)
    with pytest.raises(passgate.ChallengeMismatch):
        passgate.verify_registration(
            response, expected_challenge=CHALLENGE[:-1] + b"\x00", expected_rp_id=RP_ID, expected_origins=[ORIGIN]
        )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.pop("response"),
        lambda r: r.update(type="password"),
        lambda r: r.update(id="AAAA"),
        lambda r: r["response"].update(clientDataJSON="not base64!"),
        lambda r: r["response"].update(clientDataJSON=b64url_encode(b"[1, 2]")),
        lambda r: r["response"].update(attestationObject=b64url_encode(b"\xff\x00")),
        lambda r: r["response"].update(
            attestationObject=b64url_encode(b64url_decode(r["response"]["attestationObject"])[:-5])
        ),
        lambda r: r["response"].update(transports="usb"),
    ],
)
def test_malformed_registrations(mutate: Any) -> None:
    response = SoftwareAuthenticator().create(options(), origin=ORIGIN)
    mutate(response)
    with pytest.raises(passgate.MalformedResponse) as refused:
        passgate.verify_registration(
            response, expected_challenge=CHALLENGE, expected_rp_id=RP_ID, expected_origins=[ORIGIN]
        )
    assert refused.value.code == "malformed_response"


def test_json_string_input_is_accepted() -> None:
    import json

    response = SoftwareAuthenticator().create(options(), origin=ORIGIN)
    assert passgate.verify_registration(
        json.dumps(response), expected_challenge=CHALLENGE, expected_rp_id=RP_ID, expected_origins=[ORIGIN]
    ).credential_id


def test_error_codes_are_unique_and_snake_case() -> None:
    import re

    classes = [
        c for c in vars(passgate.core.errors).values() if isinstance(c, type) and issubclass(c, passgate.PasskeyError)
    ]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", code) for code in codes)


def compound(response: dict[str, Any], parts: list[dict[str, Any]]) -> dict[str, Any]:
    import cbor2

    attestation = cbor2.loads(b64url_decode(response["response"]["attestationObject"]))
    attestation["fmt"], attestation["attStmt"] = "compound", parts
    response["response"]["attestationObject"] = b64url_encode(cbor2.dumps(attestation))
    return response


def test_compound_attestation() -> None:
    import cbor2

    response = SoftwareAuthenticator(attestation="packed").create(options(), origin=ORIGIN)
    packed = cbor2.loads(b64url_decode(response["response"]["attestationObject"]))["attStmt"]
    both = compound(dict(response), [{"fmt": "packed", "attStmt": packed}, {"fmt": "packed", "attStmt": packed}])
    registered = passgate.verify_registration(
        both, expected_challenge=CHALLENGE, expected_rp_id=RP_ID, expected_origins=[ORIGIN]
    )
    assert registered.attestation_format == "compound" and registered.attestation_trust == "self"
    broken = {**packed, "sig": packed["sig"][:-1] + bytes([packed["sig"][-1] ^ 1])}
    for parts, error in (
        ([{"fmt": "packed", "attStmt": packed}, {"fmt": "packed", "attStmt": broken}], passgate.AttestationInvalid),
        ([{"fmt": "packed", "attStmt": packed}], passgate.AttestationInvalid),
        ([{"fmt": "packed", "attStmt": packed}, {"fmt": "nope", "attStmt": {}}], passgate.UnsupportedAttestation),
        ([{"fmt": "packed", "attStmt": packed}, {"fmt": "compound", "attStmt": {}}], passgate.AttestationInvalid),
    ):
        with pytest.raises(error):
            passgate.verify_registration(
                compound(dict(response), parts),
                expected_challenge=CHALLENGE,
                expected_rp_id=RP_ID,
                expected_origins=[ORIGIN],
            )
