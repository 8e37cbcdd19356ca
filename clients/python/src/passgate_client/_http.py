"""What every adapter answers when a token is missing or refused: the one table from error to HTTP status.

A missing or refused token is a 401 with ``WWW-Authenticate: Bearer`` (RFC 6750: no error code when no token came,
``error="invalid_token"`` when one was refused). A good token whose sign-in is too weak or too old is a 403 with
``error="insufficient_user_authentication"`` and the ``acr_values`` or ``max_age`` that would do (RFC 9470), so the
app can send the person through a stronger or fresh sign-in. An unreachable issuer is a 503: no verdict on the token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import (
    AuthenticationTooOld,
    InsufficientAcr,
    InsufficientAuthentication,
    IssuerUnreachable,
    PassgateError,
    PassgateTokenError,
)


@dataclass(frozen=True, kw_only=True)
class Refusal:
    status: int
    body: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None when there is none."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def refusal(error: PassgateError | None) -> Refusal:
    """The answer to a request whose token was missing (``None``) or refused with ``error``."""
    headers = {"Cache-Control": "no-store"}
    if error is None:
        headers["WWW-Authenticate"] = "Bearer"
        return Refusal(status=401, body={"error": "missing_token", "message": "no bearer token"}, headers=headers)
    body = {"error": error.code, "message": error.message}
    if isinstance(error, InsufficientAuthentication):
        challenge = f'Bearer error="insufficient_user_authentication", error_description="{error.code}"'
        if isinstance(error, InsufficientAcr):
            challenge += f', acr_values="{error.required_acr}"'
        if isinstance(error, AuthenticationTooOld):
            challenge += f', max_age="{int(error.max_age)}"'
        headers["WWW-Authenticate"] = challenge
        return Refusal(status=403, body=body, headers=headers)
    if isinstance(error, PassgateTokenError):
        headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{error.code}"'
        return Refusal(status=401, body=body, headers=headers)
    if isinstance(error, IssuerUnreachable):
        return Refusal(status=503, body=body, headers=headers)
    return Refusal(status=500, body=body, headers=headers)
