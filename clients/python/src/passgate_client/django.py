"""Django: middleware, an authentication backend linking a local user by ``sub``, and a view decorator.

In settings::

    PASSGATE = {"ISSUER": "https://id.example", "AUDIENCE": "https://shop.example"}
    # optional: "JWKS_URI", "TYP" (accepted token types), "REQUIRE_ACR", "MAX_AGE", "CREATE_USERS" (default True),
    # or "VERIFIER": a PassgateVerifier built by the project itself
    AUTHENTICATION_BACKENDS = ["passgate_client.django.PassgateBackend", "django.contrib.auth.backends.ModelBackend"]
    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "passgate_client.django.PassgateMiddleware", ...]

A request with a good bearer token gets ``request.user`` (the local user whose username is the token's ``sub``,
created on first sight unless ``CREATE_USERS`` is False) and ``request.passgate_user``; a refused token is answered
401/403/503 as the other adapters do; a request without one goes on as before (session sign-in still works).
A bearer-token request is exempt from CSRF checks: a browser never adds an Authorization header to a forged request.
``passgate_required(require_acr=..., max_age=...)`` guards one view; ``passgate_client.drf`` serves DRF.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.backends import BaseBackend
from django.http import HttpRequest, HttpResponse, JsonResponse

from ._http import bearer_token, refusal
from .errors import PassgateError, PassgateTokenError
from .user import PassgateUser
from .verifier import TYP_ACCESS, TYP_SESSION, PassgateVerifier, check_acr_name

View = Callable[..., HttpResponse]


class NoLocalUser(PassgateTokenError):
    """The token is good but names no local user that may sign in (unknown with CREATE_USERS off, or inactive)."""

    code = "no_local_user"


def get_verifier() -> PassgateVerifier:
    """The verifier the ``PASSGATE`` setting describes (one per distinct setting, so its key cache is shared)."""
    config: dict[str, Any] = getattr(settings, "PASSGATE", None) or {}
    verifier = config.get("VERIFIER")
    if isinstance(verifier, PassgateVerifier):
        return verifier
    if "ISSUER" not in config or "AUDIENCE" not in config:
        raise ValueError("settings.PASSGATE needs ISSUER and AUDIENCE (or a VERIFIER)")
    audience = config["AUDIENCE"]
    return _verifier(
        config["ISSUER"],
        (audience,) if isinstance(audience, str) else tuple(audience),
        config.get("JWKS_URI"),
        tuple(config.get("TYP", (TYP_SESSION, TYP_ACCESS))),
        config.get("REQUIRE_ACR"),
        config.get("MAX_AGE"),
    )


@functools.cache
def _verifier(
    issuer: str,
    audience: tuple[str, ...],
    jwks_uri: str | None,
    typ: tuple[str, ...],
    require_acr: str | None,
    max_age: float | None,
) -> PassgateVerifier:
    return PassgateVerifier(issuer, audience, jwks_uri=jwks_uri, typ=typ, require_acr=require_acr, max_age=max_age)


def _creates_users() -> bool:
    config: dict[str, Any] = getattr(settings, "PASSGATE", None) or {}
    return bool(config.get("CREATE_USERS", True))


class PassgateBackend(BaseBackend):
    """Links a verified ``PassgateUser`` to the local user whose username is its ``sub``.

    ``authenticate(request, passgate_user=...)`` takes a user the verifier already checked; it never sees a token.
    """

    def authenticate(self, request: HttpRequest | None, passgate_user: PassgateUser | None = None, **_: Any) -> Any:
        if passgate_user is None:
            return None
        model = get_user_model()
        lookup = {model.USERNAME_FIELD: passgate_user.sub}
        try:
            user = model._default_manager.get(**lookup)
        except model.DoesNotExist:
            if not _creates_users():
                return None
            user = model(**lookup)
            user.set_unusable_password()  # signs in through Passgate only
            user.save()
        return user if getattr(user, "is_active", True) else None

    def get_user(self, user_id: Any) -> Any:
        model = get_user_model()
        try:
            return model._default_manager.get(pk=user_id)
        except model.DoesNotExist:
            return None


def authenticate_bearer(
    request: HttpRequest, *, require_acr: str | None = None, max_age: float | None = None
) -> tuple[Any, PassgateUser] | None:
    """The local user and ``PassgateUser`` of the request's bearer token, or None when it carries none.

    :raises PassgateError: the token is refused (``NoLocalUser`` when no local user may sign in with it).
    """
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        return None
    passgate_user = get_verifier().verify(token, require_acr=require_acr, max_age=max_age)
    user = authenticate(request, passgate_user=passgate_user)
    if user is None:
        raise NoLocalUser(f"no local user may sign in as {passgate_user.sub!r}")
    return user, passgate_user


class PassgateMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            signed_in = authenticate_bearer(request)
        except PassgateError as error:
            return refused(error)
        if signed_in is not None:
            _sign_in(request, *signed_in)
        return self.get_response(request)


def passgate_required(
    view: View | None = None, /, *, require_acr: str | None = None, max_age: float | None = None
) -> Any:
    """Let the view run only for a request with a good bearer token (and, if asked, a strong or fresh sign-in)."""
    check_acr_name(require_acr)

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                signed_in = authenticate_bearer(request, require_acr=require_acr, max_age=max_age)
            except PassgateError as error:
                return refused(error)
            if signed_in is None:
                return refused(None)
            _sign_in(request, *signed_in)
            return view(request, *args, **kwargs)

        # Only bearer-token requests reach the view, and no forged browser request carries one.
        guarded.csrf_exempt = True  # type: ignore[attr-defined]
        return guarded

    return decorate if view is None else decorate(view)


def refused(error: PassgateError | None) -> HttpResponse:
    answer = refusal(error)
    response = JsonResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response


def _sign_in(request: HttpRequest, user: Any, passgate_user: PassgateUser) -> None:
    request.user = user
    request.passgate_user = passgate_user
    request._dont_enforce_csrf_checks = True
