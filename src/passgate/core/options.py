"""The options JSON a relying party sends to `navigator.credentials.create()` and `.get()`.

Shapes follow PublicKeyCredentialCreationOptionsJSON / PublicKeyCredentialRequestOptionsJSON
(WebAuthn Level 3), so `PublicKeyCredential.parse*OptionsFromJSON` accepts them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from passgate.core.encoding import b64url_encode
from passgate.core.policy import Policy


@dataclass(frozen=True, kw_only=True)
class CredentialDescriptor:
    credential_id: bytes
    transports: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        descriptor: dict[str, Any] = {"type": "public-key", "id": b64url_encode(self.credential_id)}
        if self.transports:
            descriptor["transports"] = list(self.transports)
        return descriptor


def creation_options(
    *,
    rp_id: str,
    rp_name: str,
    user_handle: bytes,
    username: str,
    display_name: str,
    challenge: bytes,
    policy: Policy,
    exclude: Sequence[CredentialDescriptor] = (),
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "rp": {"id": rp_id, "name": rp_name},
        "user": {"id": b64url_encode(user_handle), "name": username, "displayName": display_name},
        "challenge": b64url_encode(challenge),
        "pubKeyCredParams": [{"type": "public-key", "alg": alg} for alg in policy.allowed_algorithms],
        "timeout": policy.timeout_ms,
        "authenticatorSelection": {
            "residentKey": policy.resident_key,
            "requireResidentKey": policy.resident_key == "required",
            "userVerification": policy.user_verification,
        },
        "attestation": policy.attestation,
        "extensions": {"credProps": True},
    }
    if policy.authenticator_attachment:
        options["authenticatorSelection"]["authenticatorAttachment"] = policy.authenticator_attachment
    if policy.hints:
        options["hints"] = list(policy.hints)
    if exclude:
        options["excludeCredentials"] = [descriptor.to_json() for descriptor in exclude]
    return options


def request_options(
    *,
    rp_id: str,
    challenge: bytes,
    policy: Policy,
    allow: Sequence[CredentialDescriptor] = (),
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "rpId": rp_id,
        "challenge": b64url_encode(challenge),
        "timeout": policy.timeout_ms,
        "userVerification": policy.user_verification,
        "allowCredentials": [descriptor.to_json() for descriptor in allow],
    }
    if policy.hints:
        options["hints"] = list(policy.hints)
    return options
