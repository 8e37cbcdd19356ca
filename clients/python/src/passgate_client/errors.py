"""Why a Passgate token was refused.

Every error carries a stable snake_case ``code`` and a human message::

    PassgateError
    ├── PassgateTokenError             invalid_token: the token proves nothing (answer 401)
    │   ├── UnsupportedAlgorithm       unsupported_algorithm: not ES256 or RS256 (none, HS256...)
    │   ├── WrongType                  wrong_type: header typ is not one this verifier accepts
    │   ├── UnknownKey                 unknown_key: no published key has the token's kid
    │   ├── WrongIssuer                wrong_issuer
    │   ├── WrongAudience              wrong_audience
    │   ├── TokenExpired               expired
    │   ├── TokenNotYetValid           not_yet_valid: nbf (or iat) is in the future
    │   └── InsufficientAuthentication the token is good but its sign-in is too weak (answer 403)
    │       ├── InsufficientAcr        insufficient_acr: acr weaker than required
    │       └── AuthenticationTooOld   too_old: auth_time older than max_age
    ├── IssuerUnreachable              issuer_unreachable: no key set or document could be had (answer 503)
    └── LoginError                     login_failed: a sign-in's callback was refused (answer 400)
        ├── StateMismatch              state_mismatch: no sign-in is pending in this session, or not this one
        ├── IssuerMismatch             issuer_mismatch: the response's RFC 9207 iss is missing or another issuer's
        ├── AuthorizationDenied        authorization_denied: the issuer answered with an error (.error)
        ├── TokenExchangeFailed        token_exchange_failed: the token endpoint refused the code (.error)
        └── NonceMismatch              nonce_mismatch: the ID token is not the one this sign-in asked for

``IssuerUnreachable`` is no verdict on the token: the issuer could not be asked and no key set was cached.
The ID token of a sign-in is checked by ``PassgateVerifier``: its refusal is a ``PassgateTokenError``.
"""

from __future__ import annotations


class PassgateError(Exception):
    code = "passgate_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class PassgateTokenError(PassgateError):
    code = "invalid_token"


class UnsupportedAlgorithm(PassgateTokenError):
    code = "unsupported_algorithm"


class WrongType(PassgateTokenError):
    code = "wrong_type"


class UnknownKey(PassgateTokenError):
    code = "unknown_key"


class WrongIssuer(PassgateTokenError):
    code = "wrong_issuer"


class WrongAudience(PassgateTokenError):
    code = "wrong_audience"


class TokenExpired(PassgateTokenError):
    code = "expired"


class TokenNotYetValid(PassgateTokenError):
    code = "not_yet_valid"


class InsufficientAuthentication(PassgateTokenError):
    code = "insufficient_authentication"


class InsufficientAcr(InsufficientAuthentication):
    code = "insufficient_acr"

    def __init__(self, message: str, *, required_acr: str) -> None:
        super().__init__(message)
        self.required_acr = required_acr


class AuthenticationTooOld(InsufficientAuthentication):
    code = "too_old"

    def __init__(self, message: str, *, max_age: float) -> None:
        super().__init__(message)
        self.max_age = max_age


class IssuerUnreachable(PassgateError):
    code = "issuer_unreachable"


class LoginError(PassgateError):
    code = "login_failed"


class StateMismatch(LoginError):
    code = "state_mismatch"


class IssuerMismatch(LoginError):
    code = "issuer_mismatch"


class AuthorizationDenied(LoginError):
    """The issuer sent the person back with an OAuth 2 ``error`` (``access_denied``, ``login_required``...)."""

    code = "authorization_denied"

    def __init__(self, message: str, *, error: str) -> None:
        super().__init__(message)
        self.error = error


class TokenExchangeFailed(LoginError):
    code = "token_exchange_failed"

    def __init__(self, message: str, *, error: str | None) -> None:
        super().__init__(message)
        self.error = error


class NonceMismatch(LoginError):
    code = "nonce_mismatch"
