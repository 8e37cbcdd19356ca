"""Registration ceremony verification (WebAuthn §7.1)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from passgate.core import attestation, cose
from passgate.core.checks import check_authenticator_data, check_client_data
from passgate.core.data import RegistrationResponse
from passgate.core.errors import (
    AttestationUntrusted,
    AuthenticatorCompromised,
    AuthenticatorNotAllowed,
    AuthenticatorNotCertified,
    DeviceBoundRequired,
    MalformedResponse,
    UnsupportedAlgorithm,
)
from passgate.core.policy import CERTIFICATION_LEVELS, AuthenticatorMetadata, Policy


@dataclass(frozen=True, kw_only=True)
class RegisteredCredential:
    """A credential whose registration was verified: what the relying party stores.

    `aaguid` is the model the authenticator data names. `aaguid_attested` says whether a verified
    attestation proved it (a certificate chain checked against a trust anchor, whose AAGUID extension,
    if any, names that model); otherwise the AAGUID is only the authenticator's claim. A claim may name
    the passkey's maker for people and may refuse (block lists, compromised models), but never grants.
    """

    credential_id: bytes
    public_key: bytes  # COSE_Key bytes
    algorithm: int
    sign_count: int
    aaguid: str
    aaguid_attested: bool
    attestation_format: str
    attestation_trust: attestation.Trust
    transports: tuple[str, ...]
    authenticator_attachment: str | None
    user_verified: bool
    backup_eligible: bool
    backed_up: bool
    discoverable: bool | None  # from the credProps extension, when the client reported it


def verify_registration(
    response: Mapping[str, Any] | str | bytes | RegistrationResponse,
    *,
    expected_challenge: bytes,
    expected_rp_id: str,
    expected_origins: Sequence[str],
    policy: Policy = Policy(),
    now: datetime | None = None,
    metadata: Mapping[str, AuthenticatorMetadata] | None = None,
    require_user_presence: bool = True,
) -> RegisteredCredential:
    """Verify a RegistrationResponseJSON (what `navigator.credentials.create()` gives, as JSON), as a dict,
    a JSON string, or already parsed.

    `now` is the time at which attestation certificates are validated (default: the current time).
    `metadata` (FIDO metadata by AAGUID) adds trust anchors, and refuses models reported compromised.
    `require_user_presence=False` accepts a response with the UP and UV flags both clear: only for the challenge of
    a conditional create (`mediation: "conditional"`), which the browser may answer without a prompt.

    Raises:
        MalformedResponse, TypeMismatch, ChallengeMismatch, OriginMismatch, CrossOriginNotAllowed,
        TokenBindingInvalid, RpIdMismatch, UserNotPresent, UserNotVerified, UnsupportedAlgorithm,
        UnsupportedAttestation, AttestationInvalid, AttestationUntrusted, AuthenticatorNotAllowed,
        DeviceBoundRequired, AuthenticatorCompromised, AuthenticatorNotCertified: all `PasskeyError`s.
    """
    parsed = response if isinstance(response, RegistrationResponse) else RegistrationResponse.parse(response)
    check_client_data(
        parsed.client_data,
        expected_type="webauthn.create",
        expected_challenge=expected_challenge,
        expected_origins=expected_origins,
        policy=policy,
    )
    auth_data = parsed.attestation.auth_data
    check_authenticator_data(
        auth_data, expected_rp_id=expected_rp_id, policy=policy, require_user_presence=require_user_presence
    )
    attested = auth_data.attested
    if attested is None:
        raise MalformedResponse("The authenticator did not include the new credential.")
    if attested.credential_id != parsed.credential_id:
        raise MalformedResponse("The credential id differs from the one in authenticator data.")
    key = cose.parse_public_key(attested.public_key)
    if key.algorithm not in policy.allowed_algorithms:
        name = cose.ALGORITHM_NAMES.get(key.algorithm, str(key.algorithm))
        raise UnsupportedAlgorithm(f"{name} keys are not accepted here.")
    aaguid = str(attested.aaguid)
    # Refusing on a claim is safe: blocked and compromised models are refused before any attestation.
    if aaguid in policy.aaguid_block:
        raise AuthenticatorNotAllowed()
    if auth_data.backup_eligible and not policy.allow_backup_eligible:
        raise DeviceBoundRequired()
    model = (metadata or {}).get(aaguid)
    if model is not None and model.compromised:
        raise AuthenticatorCompromised()
    model_roots = model.attestation_root_certificates if model is not None else ()

    def roots_for(fmt: str) -> tuple[str, ...]:
        return tuple(policy.trusted_roots.get(fmt, ())) + tuple(model_roots)

    statement = attestation.Statement(
        attestation=parsed.attestation,
        client_data=parsed.client_data,
        client_data_hash=hashlib.sha256(parsed.client_data.raw).digest(),
        credential_key=key,
        roots_for=roots_for,
        trust_platform_roots=policy.trust_platform_roots,
        require_cts_profile_match=policy.require_cts_profile_match,
    )
    trust = attestation.verify_statement(statement, now=now)
    aaguid_attested = trust == "attested" and attestation.anchored(statement)
    if policy.require_attestation and not aaguid_attested:
        raise AttestationUntrusted("This site accepts only authenticators whose attestation it can verify.")
    # What grants (an allow list, a certification level) rests on the attested AAGUID only.
    if policy.aaguid_allow and not (aaguid_attested and aaguid in policy.aaguid_allow):
        raise AuthenticatorNotAllowed()
    if policy.min_certification_level:
        level = CERTIFICATION_LEVELS.get(model.certification_level or "", 0) if model and aaguid_attested else 0
        if level < policy.min_certification_level:
            raise AuthenticatorNotCertified()
    cred_props = parsed.client_extension_results.get("credProps")
    discoverable = cred_props.get("rk") if isinstance(cred_props, dict) else None
    return RegisteredCredential(
        credential_id=attested.credential_id,
        public_key=attested.public_key,
        algorithm=key.algorithm,
        sign_count=auth_data.sign_count,
        aaguid=aaguid,
        aaguid_attested=aaguid_attested,
        attestation_format=parsed.attestation.fmt,
        attestation_trust=trust,
        transports=parsed.transports,
        authenticator_attachment=parsed.authenticator_attachment,
        user_verified=auth_data.user_verified,
        backup_eligible=auth_data.backup_eligible,
        backed_up=auth_data.backed_up,
        discoverable=discoverable if isinstance(discoverable, bool) else None,
    )
