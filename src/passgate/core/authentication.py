"""Authentication ceremony verification (WebAuthn §7.2)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from passgate.core import cose
from passgate.core.checks import check_authenticator_data, check_client_data
from passgate.core.data import AuthenticationResponse
from passgate.core.errors import BackupEligibilityChanged, SignCountRegression, UnsupportedAlgorithm
from passgate.core.policy import Policy


@dataclass(frozen=True, kw_only=True)
class VerifiedSignIn:
    """An assertion that verified: who signed, and what the authenticator reported."""

    credential_id: bytes
    user_handle: bytes | None
    sign_count: int
    user_verified: bool
    backup_eligible: bool
    backed_up: bool
    clone_warning: bool = False  # the counter went backwards and the policy says to flag, not reject


def verify_authentication(
    response: Mapping[str, Any] | str | bytes | AuthenticationResponse,
    *,
    expected_challenge: bytes,
    expected_rp_id: str,
    expected_origins: Sequence[str],
    credential_public_key: bytes,
    stored_sign_count: int,
    stored_backup_eligible: bool | None = None,
    policy: Policy = Policy(),
    now: datetime | None = None,
) -> VerifiedSignIn:
    """Verify an AuthenticationResponseJSON (a dict, a JSON string, or already parsed) against the stored
    credential.

    The caller looks up the credential by the response's id and checks that its user handle names
    the credential's owner. `stored_backup_eligible` is the BE flag the credential registered with:
    WebAuthn L3 §7.2 forbids it to change, so a device-bound passkey cannot pass itself off as synced
    (None skips the check, for callers that did not store it). `now` is accepted for symmetry with
    registration; assertions carry no certificates.

    Raises:
        MalformedResponse, TypeMismatch, ChallengeMismatch, OriginMismatch, CrossOriginNotAllowed,
        TokenBindingInvalid, RpIdMismatch, UserNotPresent, UserNotVerified, BackupEligibilityChanged,
        UnsupportedAlgorithm, BadSignature, SignCountRegression: all `PasskeyError`s.
    """
    del now
    parsed = response if isinstance(response, AuthenticationResponse) else AuthenticationResponse.parse(response)
    check_client_data(
        parsed.client_data,
        expected_type="webauthn.get",
        expected_challenge=expected_challenge,
        expected_origins=expected_origins,
        policy=policy,
    )
    auth_data = parsed.auth_data
    check_authenticator_data(auth_data, expected_rp_id=expected_rp_id, policy=policy)
    key = cose.parse_public_key(credential_public_key)
    if key.algorithm not in policy.allowed_algorithms:
        raise UnsupportedAlgorithm(f"COSE algorithm {key.algorithm} is no longer accepted here.")
    key.verify(parsed.signature, bytes(auth_data) + hashlib.sha256(parsed.client_data.raw).digest())
    # Only a signed flag is worth a verdict: checked once the signature has verified.
    if stored_backup_eligible is not None and auth_data.backup_eligible != stored_backup_eligible:
        raise BackupEligibilityChanged()
    # Authenticators that do not count report 0 (synced passkeys do); only two real counts compare.
    clone_warning = bool(auth_data.sign_count and stored_sign_count and auth_data.sign_count <= stored_sign_count)
    if clone_warning and policy.sign_count_rule == "reject":
        raise SignCountRegression(f"The counter is {auth_data.sign_count}; {stored_sign_count} was seen before.")
    return VerifiedSignIn(
        credential_id=parsed.credential_id,
        user_handle=parsed.user_handle,
        sign_count=auth_data.sign_count,
        user_verified=auth_data.user_verified,
        backup_eligible=auth_data.backup_eligible,
        backed_up=auth_data.backed_up,
        clone_warning=clone_warning,
    )
