"""The credentials native apps send, in the shape the WebAuthn verifiers read (`PublicKeyCredential.toJSON()`).

Two shapes besides that one are accepted as the apps produce them:

- Android's Credential Manager hands the app `registrationResponseJson` or `authenticationResponseJson`: a string
  holding a RegistrationResponseJSON or AuthenticationResponseJSON. The app may post that string's JSON as the body
  (nothing to do), or the wrapper `{"registrationResponseJson": "<the string>"}` as it is.
- iOS's AuthenticationServices hands it the raw parts of
  ASAuthorizationPlatformPublicKeyCredentialRegistration (`credentialID`, `rawAttestationObject`,
  `rawClientDataJSON`) or ...Assertion (`credentialID`, `rawAuthenticatorData`, `rawClientDataJSON`, `signature`,
  `userID`), which it posts under those names, base64url-encoded (plain base64, as `Data.base64EncodedString()`
  writes it, is read too).

Whatever the shape, what is verified afterwards is the same: the client data's challenge, origin and type, and the
signature over them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from passgate.core.encoding import load_json
from passgate.core.errors import MalformedResponse

Ceremony = Literal["registration", "authentication"]

ANDROID_KEYS: dict[Ceremony, str] = {
    "registration": "registrationResponseJson",
    "authentication": "authenticationResponseJson",
}

# The iOS fields: the response member each becomes, or None for the credential id.
IOS_FIELDS: dict[Ceremony, dict[str, str | None]] = {
    "registration": {
        "credentialID": None,
        "rawAttestationObject": "attestationObject",
        "rawClientDataJSON": "clientDataJSON",
    },
    "authentication": {
        "credentialID": None,
        "rawAuthenticatorData": "authenticatorData",
        "rawClientDataJSON": "clientDataJSON",
        "signature": "signature",
        "userID": "userHandle",
    },
}
IOS_OPTIONAL = frozenset({"userID"})
MAX_WRAPPED_CHARS = 60_000  # bounded anyway by the request body limit; this keeps the nested text in proportion


def credential_json(body: Any, ceremony: Ceremony) -> Any:
    """The body as a RegistrationResponseJSON or AuthenticationResponseJSON, when it is one of the native shapes;
    any other body unchanged (for the schema and the verifier to judge).

    Raises:
        MalformedResponse: an Android wrapper that is not a string of a JSON object, or an iOS credential with a
            field missing, of the wrong type, or not base64.
    """
    if not isinstance(body, Mapping):
        return body
    wrapped = ANDROID_KEYS[ceremony]
    if wrapped in body:
        return _unwrapped(body, wrapped)
    if "rawClientDataJSON" in body:
        return _from_ios(body, ceremony)
    return body


def _unwrapped(body: Mapping[str, Any], key: str) -> Any:
    text = body[key]
    if len(body) != 1 or not isinstance(text, str) or len(text) > MAX_WRAPPED_CHARS:
        raise MalformedResponse(f"{key} must be the only member, a string holding the credential's JSON.")
    inner = load_json(text, what=key)
    if not isinstance(inner, dict):
        raise MalformedResponse(f"{key} must hold a JSON object.")
    return inner


def _from_ios(body: Mapping[str, Any], ceremony: Ceremony) -> dict[str, Any]:
    fields = IOS_FIELDS[ceremony]
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise MalformedResponse(f"Unexpected member {unknown[0]!r} in an iOS credential.")
    response: dict[str, Any] = {}
    credential_id = ""
    for name, member in fields.items():
        value = body.get(name)
        if value is None and name in IOS_OPTIONAL:
            continue
        if not isinstance(value, str) or not value:
            raise MalformedResponse(f"{name} must be a base64url string.")
        encoded = _base64url(value, name)
        if member is None:
            credential_id = encoded
        else:
            response[member] = encoded
    return {
        "id": credential_id,
        "rawId": credential_id,
        "type": "public-key",
        "response": response,
        "clientExtensionResults": {},
    }


_BASE64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _base64url(value: str, name: str) -> str:
    """Unpadded base64url, from base64url or plain base64 (padded or not)."""
    encoded = value.rstrip("=").replace("+", "-").replace("/", "_")
    if not set(encoded) <= _BASE64URL or len(encoded) % 4 == 1:
        raise MalformedResponse(f"{name} must be a base64url string.")
    return encoded
