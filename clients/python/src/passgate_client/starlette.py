"""Starlette: an ``AuthenticationBackend`` giving ``request.user`` from a Passgate bearer token.

    app = Starlette(middleware=[Middleware(
        AuthenticationMiddleware, backend=PassgateBackend(verifier), on_error=on_auth_error,
    )])

A request without a token gets Starlette's ``UnauthenticatedUser``; a refused token is answered by ``on_auth_error``
(401, 403 or 503, as ``passgate_client.fastapi`` does). ``request.user`` is a ``PassgateStarletteUser``: a
``PassgateUser`` that is also Starlette's ``BaseUser``; ``request.auth.scopes`` holds ``authenticated`` and the
token's scopes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, BaseUser
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from ._http import bearer_token, refusal
from .errors import PassgateError, PassgateTokenError
from .user import PassgateUser
from .verifier import PassgateVerifier, check_acr_name


@dataclass(frozen=True, kw_only=True)
class PassgateStarletteUser(PassgateUser, BaseUser):
    @classmethod
    def of(cls, user: PassgateUser) -> PassgateStarletteUser:
        return cls(**{f.name: getattr(user, f.name) for f in fields(user)})

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.sub

    @property
    def identity(self) -> str:
        return self.sub


class PassgateAuthenticationError(AuthenticationError):
    def __init__(self, error: PassgateError) -> None:
        super().__init__(str(error))
        self.error = error


class PassgateBackend(AuthenticationBackend):
    """Verifies the request's bearer token; ``require_acr`` and ``max_age`` apply to every request."""

    def __init__(
        self, verifier: PassgateVerifier, *, require_acr: str | None = None, max_age: float | None = None
    ) -> None:
        check_acr_name(require_acr)
        self.verifier = verifier
        self.require_acr = require_acr
        self.max_age = max_age

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        token = bearer_token(conn.headers.get("authorization"))
        if token is None:
            return None
        try:
            user = await self.verifier.averify(token, require_acr=self.require_acr, max_age=self.max_age)
        except PassgateError as error:
            raise PassgateAuthenticationError(error) from None
        return AuthCredentials(["authenticated", *user.scope]), PassgateStarletteUser.of(user)


def on_auth_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    """The ``on_error`` for ``AuthenticationMiddleware``: the RFC 6750 / RFC 9470 answer to a refused token."""
    error = exc.error if isinstance(exc, PassgateAuthenticationError) else PassgateTokenError(str(exc))
    answer = refusal(error)
    return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)
