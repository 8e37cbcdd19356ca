"""Checks both ceremonies make, in the order WebAuthn §7.1 and §7.2 give them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from passgate.core.data import AuthenticatorData, ClientData
from passgate.core.errors import (
    ChallengeMismatch,
    CrossOriginNotAllowed,
    MalformedResponse,
    OriginMismatch,
    RpIdMismatch,
    TokenBindingInvalid,
    TypeMismatch,
    UserNotPresent,
    UserNotVerified,
)
from passgate.core.policy import Policy


def check_client_data(
    client_data: ClientData,
    *,
    expected_type: str,
    expected_challenge: bytes,
    expected_origins: Sequence[str],
    policy: Policy,
) -> None:
    if client_data.type != expected_type:
        raise TypeMismatch(f'clientData.type is "{client_data.type}", expected "{expected_type}".')
    if not hmac.compare_digest(client_data.challenge, expected_challenge):
        raise ChallengeMismatch()
    if client_data.origin not in expected_origins:
        raise OriginMismatch(f'Origin "{client_data.origin}" is not allowed.')
    if client_data.cross_origin:
        if not policy.allow_cross_origin:
            raise CrossOriginNotAllowed()
        top = client_data.top_origin
        if policy.allowed_top_origins and top not in policy.allowed_top_origins:
            raise CrossOriginNotAllowed(f'Top origin "{top}" may not embed this site.')
    if client_data.token_binding_status not in (None, "present", "supported"):
        raise TokenBindingInvalid()


def check_authenticator_data(
    auth_data: AuthenticatorData, *, expected_rp_id: str, policy: Policy, require_user_presence: bool = True
) -> None:
    """`require_user_presence=False` is for a conditional create only (WebAuthn L3 section 7.1, as amended for
    conditional mediation): the browser may make that passkey with no prompt, so neither UP nor UV is required."""
    if not hmac.compare_digest(auth_data.rp_id_hash, hashlib.sha256(expected_rp_id.encode()).digest()):
        raise RpIdMismatch()
    if require_user_presence:
        if not auth_data.user_present:
            raise UserNotPresent()
        if policy.requires_user_verification and not auth_data.user_verified:
            raise UserNotVerified()
    if auth_data.backed_up and not auth_data.backup_eligible:
        raise MalformedResponse("The backup state flag is set on a credential that is not backup eligible.")
