"""Verify Passgate tokens in Python apps.

``PassgateVerifier`` checks a token and returns a ``PassgateUser``; the adapters put it in front of an app:
``passgate_client.fastapi`` (a dependency), ``passgate_client.starlette`` (an AuthenticationBackend),
``passgate_client.flask`` (an extension) and ``passgate_client.django`` (middleware, backend, DRF, decorator).
"""

from .errors import (
    AuthenticationTooOld,
    InsufficientAcr,
    InsufficientAuthentication,
    IssuerUnreachable,
    PassgateError,
    PassgateTokenError,
    TokenExpired,
    TokenNotYetValid,
    UnknownKey,
    UnsupportedAlgorithm,
    WrongAudience,
    WrongIssuer,
    WrongType,
)
from .user import PassgateUser
from .verifier import ACR_ORDER, TYP_ACCESS, TYP_ID, TYP_SESSION, PassgateVerifier

__all__ = [
    "ACR_ORDER",
    "TYP_ACCESS",
    "TYP_ID",
    "TYP_SESSION",
    "AuthenticationTooOld",
    "InsufficientAcr",
    "InsufficientAuthentication",
    "IssuerUnreachable",
    "PassgateError",
    "PassgateTokenError",
    "PassgateUser",
    "PassgateVerifier",
    "TokenExpired",
    "TokenNotYetValid",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "WrongAudience",
    "WrongIssuer",
    "WrongType",
]
