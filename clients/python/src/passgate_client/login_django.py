"""Django: views for ``/login``, ``/callback`` and ``/logout`` signing people in with Passgate, kept in the session.

In settings (and ``django.contrib.sessions``' middleware)::

    PASSGATE_LOGIN = {
        "ISSUER": "https://id.example", "CLIENT_ID": "shop", "CLIENT_SECRET": "...",
        "REDIRECT_URI": "https://shop.example/auth/callback",
        # optional: "SCOPE" (default ["openid", "profile"]), "POST_LOGOUT_REDIRECT_URI", "AFTER_LOGOUT" (a path,
        # default "/"), or "LOGIN": a PassgateLogin built by the project itself
    }

and in urls.py: ``path("auth/", include("passgate_client.login_django"))`` (the URL names are ``passgate_login``,
``passgate_callback``, ``passgate_logout``). ``GET login?next=/orders`` sends the person to Passgate (``next`` only
if it is a path of this site); ``GET callback`` checks the answer and keeps a ``SessionUser`` in ``request.session``
(a new session key: no fixation); ``POST logout`` (with Django's CSRF token) forgets it, then goes to Passgate's
end-session endpoint when discovery advertises one. ``session_user(request)`` reads it; ``login_required`` answers
401 to anyone else.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

from .errors import IssuerUnreachable, PassgateError
from .login import PENDING_KEY, USER_KEY, PassgateLogin, PendingLogin, SessionUser, refusal_of, safe_next

View = Callable[..., HttpResponse]
logger = logging.getLogger("passgate_client.login")


def get_login() -> PassgateLogin:
    """The ``PassgateLogin`` the ``PASSGATE_LOGIN`` setting describes (one per distinct setting)."""
    config: dict[str, Any] = getattr(settings, "PASSGATE_LOGIN", None) or {}
    login = config.get("LOGIN")
    if isinstance(login, PassgateLogin):
        return login
    missing = [name for name in ("ISSUER", "CLIENT_ID", "REDIRECT_URI") if not config.get(name)]
    if missing:
        raise ValueError(f"settings.PASSGATE_LOGIN needs {', '.join(missing)} (or a LOGIN)")
    return _login(
        config["ISSUER"],
        config["CLIENT_ID"],
        config["REDIRECT_URI"],
        config.get("CLIENT_SECRET"),
        config.get("POST_LOGOUT_REDIRECT_URI"),
        tuple(config.get("SCOPE", ("openid", "profile"))),
    )


@functools.cache
def _login(
    issuer: str,
    client_id: str,
    redirect_uri: str,
    client_secret: str | None,
    post_logout_redirect_uri: str | None,
    scope: tuple[str, ...],
) -> PassgateLogin:
    return PassgateLogin(
        issuer=issuer,
        client_id=client_id,
        redirect_uri=redirect_uri,
        client_secret=client_secret,
        post_logout_redirect_uri=post_logout_redirect_uri,
        scope=scope,
    )


def session_user(request: HttpRequest) -> SessionUser | None:
    """The person signed in to this app, or None."""
    return SessionUser.from_session(request.session.get(USER_KEY))


def login_required(view: View) -> View:
    """Let the view run only for a signed-in person; anyone else gets a 401."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if session_user(request) is None:
            return HttpResponse("Sign in first.", status=401, content_type="text/plain")
        return view(request, *args, **kwargs)

    return guarded


def sign_in(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    try:
        url, pending = get_login().begin(safe_next(request.GET.get("next")))
    except IssuerUnreachable as error:
        return _refused(error)
    request.session[PENDING_KEY] = pending.to_session()
    return _no_store(HttpResponseRedirect(url, status=303))


def callback(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    # Taken whatever the outcome: a pending sign-in is answered once.
    pending = PendingLogin.from_session(request.session.pop(PENDING_KEY, None))
    try:
        signed_in = get_login().complete(request.GET.dict(), pending)
    except PassgateError as error:
        return _refused(error)
    request.session.flush()
    request.session[USER_KEY] = signed_in.session_user().to_session()
    return _no_store(HttpResponseRedirect(signed_in.next_path, status=303))


def sign_out(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    user = session_user(request)
    request.session.flush()
    config: dict[str, Any] = getattr(settings, "PASSGATE_LOGIN", None) or {}
    default = safe_next(config.get("AFTER_LOGOUT", "/"))
    hint = None if user is None else user.id_token
    return HttpResponseRedirect(get_login().after_logout(id_token_hint=hint, default=default), status=303)


def _refused(error: PassgateError) -> HttpResponse:
    logger.warning("sign-in refused: %s", error.code)
    refusal = refusal_of(error, retry_url=reverse("passgate_login"))
    return _no_store(HttpResponse(refusal.html, status=refusal.status, content_type="text/html"))


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("login", sign_in, name="passgate_login"),
    path("callback", callback, name="passgate_callback"),
    path("logout", sign_out, name="passgate_logout"),
]
