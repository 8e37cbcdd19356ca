"""Verify Passgate tokens in Python apps.

``PassgateVerifier`` checks a token and returns a ``PassgateUser``; the adapters put it in front of an app:
``passgate_client.fastapi`` (a dependency), ``passgate_client.starlette`` (an AuthenticationBackend),
``passgate_client.flask`` (an extension) and ``passgate_client.django`` (middleware, backend, DRF, decorator).

``PassgateLogin`` signs people in with the authorization code flow; its adapters are
``passgate_client.login_starlette`` (FastAPI and Starlette), ``passgate_client.login_flask`` and
``passgate_client.login_django``.

``PasskeyApi`` is the app passkey API, for apps that keep their own users.
"""

from .errors import (
    AuthenticationTooOld,
    AuthorizationDenied,
    InsufficientAcr,
    InsufficientAuthentication,
    IssuerMismatch,
    IssuerUnreachable,
    LoginError,
    NonceMismatch,
    PassgateError,
    PassgateTokenError,
    StateMismatch,
    TokenExchangeFailed,
    TokenExpired,
    TokenNotYetValid,
    UnknownKey,
    UnsupportedAlgorithm,
    WrongAudience,
    WrongIssuer,
    WrongType,
)
from .login import PassgateLogin, SessionUser, SignedIn
from .passkey_api import PasskeyApi, PasskeyApiError
from .user import PassgateUser
from .verifier import ACR_ORDER, TYP_ACCESS, TYP_ID, TYP_SESSION, PassgateVerifier

__all__ = [
    "ACR_ORDER",
    "TYP_ACCESS",
    "TYP_ID",
    "TYP_SESSION",
    "AuthenticationTooOld",
    "AuthorizationDenied",
    "InsufficientAcr",
    "InsufficientAuthentication",
    "IssuerMismatch",
    "IssuerUnreachable",
    "LoginError",
    "NonceMismatch",
    "PassgateError",
    "PassgateLogin",
    "PassgateTokenError",
    "PassgateUser",
    "PassgateVerifier",
    "PasskeyApi",
    "PasskeyApiError",
    "SessionUser",
    "SignedIn",
    "StateMismatch",
    "TokenExchangeFailed",
    "TokenExpired",
    "TokenNotYetValid",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "WrongAudience",
    "WrongIssuer",
    "WrongType",
]
