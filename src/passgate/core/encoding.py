"""base64url without padding, as WebAuthn's JSON forms use it."""

from __future__ import annotations

import base64
import binascii

from passgate.core.errors import MalformedResponse


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: object, *, field: str = "value") -> bytes:
    """Decode base64url (padding optional; standard base64 alphabet tolerated).

    Raises:
        MalformedResponse: `value` is not a string of base64url.
    """
    if not isinstance(value, str):
        raise MalformedResponse(f"{field} must be a base64url string")
    text = value.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedResponse(f"{field} is not valid base64url") from exc
