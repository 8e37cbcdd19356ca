"""Django REST framework: an authentication class for Passgate bearer tokens.

    REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": ["passgate_client.drf.PassgateAuthentication"]}

``request.user`` is the local user (linked by ``sub`` through ``passgate_client.django.PassgateBackend``) and
``request.auth`` the ``PassgateUser``. Configuration is the ``PASSGATE`` setting. A view that needs a strong or
fresh sign-in subclasses the class with ``require_acr``/``max_age`` set. Refusals carry the same Bearer challenges
as the other adapters: 401 invalid_token, 403 insufficient_user_authentication, 503 when the issuer is unreachable.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from ._http import refusal
from .django import authenticate_bearer
from .errors import InsufficientAuthentication, IssuerUnreachable, PassgateError
from .user import PassgateUser


class InsufficientUserAuthentication(exceptions.APIException):
    status_code = 403
    default_code = "insufficient_user_authentication"


class IssuerUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "issuer_unreachable"


class PassgateAuthentication(BaseAuthentication):
    require_acr: str | None = None
    max_age: float | None = None

    def authenticate(self, request: Request) -> tuple[Any, PassgateUser] | None:
        try:
            return authenticate_bearer(request._request, require_acr=self.require_acr, max_age=self.max_age)
        except PassgateError as error:
            request._passgate_error = error
            answer = refusal(error)
            if isinstance(error, InsufficientAuthentication):
                denied = InsufficientUserAuthentication(error.message, code=error.code)
                denied.auth_header = answer.headers["WWW-Authenticate"]
                raise denied from None
            if isinstance(error, IssuerUnreachable):
                raise IssuerUnavailable(error.message, code=error.code) from None
            raise exceptions.AuthenticationFailed(error.message, code=error.code) from None

    def authenticate_header(self, request: Request) -> str:
        """The challenge of a 401: ``Bearer`` alone when no token came, with ``error="invalid_token"`` otherwise."""
        return refusal(getattr(request, "_passgate_error", None)).headers["WWW-Authenticate"]
