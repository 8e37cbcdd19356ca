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
from passgate.core.errors import MalformedResponse, UnsupportedAlgorithm
from passgate.core.policy import Policy


@dataclass(frozen=True, kw_only=True)
class RegisteredCredential:
    """A credential whose registration was verified: what the relying party stores."""

    credential_id: bytes
    public_key: bytes  # COSE_Key bytes
    algorithm: int
    sign_count: int
    aaguid: str
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
) -> RegisteredCredential:
    """Verify a RegistrationResponseJSON (what `navigator.credentials.create()` gives, as JSON), as a dict,
    a JSON string, or already parsed.

    `now` is the time at which attestation certificates are validated (default: the current time).

    Raises:
        MalformedResponse, TypeMismatch, ChallengeMismatch, OriginMismatch, CrossOriginNotAllowed,
        TokenBindingInvalid, RpIdMismatch, UserNotPresent, UserNotVerified, UnsupportedAlgorithm,
        UnsupportedAttestation, AttestationInvalid, AttestationUntrusted: all `PasskeyError`s.
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
    check_authenticator_data(auth_data, expected_rp_id=expected_rp_id, policy=policy)
    attested = auth_data.attested
    if attested is None:
        raise MalformedResponse("The authenticator did not include the new credential.")
    if attested.credential_id != parsed.credential_id:
        raise MalformedResponse("The credential id differs from the one in authenticator data.")
    key = cose.parse_public_key(attested.public_key)
    if key.algorithm not in policy.allowed_algorithms:
        name = cose.ALGORITHM_NAMES.get(key.algorithm, str(key.algorithm))
        raise UnsupportedAlgorithm(f"{name} keys are not accepted here.")
    trust = attestation.verify_statement(
        attestation.Statement(
            attestation=parsed.attestation,
            client_data=parsed.client_data,
            client_data_hash=hashlib.sha256(parsed.client_data.raw).digest(),
            credential_key=key,
            trusted_roots=tuple(policy.trusted_roots.get(parsed.attestation.fmt, ())),
        ),
        now=now,
    )
    cred_props = parsed.client_extension_results.get("credProps")
    discoverable = cred_props.get("rk") if isinstance(cred_props, dict) else None
    return RegisteredCredential(
        credential_id=attested.credential_id,
        public_key=attested.public_key,
        algorithm=key.algorithm,
        sign_count=auth_data.sign_count,
        aaguid=str(attested.aaguid),
        attestation_format=parsed.attestation.fmt,
        attestation_trust=trust,
        transports=parsed.transports,
        authenticator_attachment=parsed.authenticator_attachment,
        user_verified=auth_data.user_verified,
        backup_eligible=auth_data.backup_eligible,
        backed_up=auth_data.backed_up,
        discoverable=discoverable if isinstance(discoverable, bool) else None,
    )
