"""Flask: a blueprint with ``/login``, ``/callback`` and ``/logout`` for a ``PassgateLogin``, kept in the session.

    app.secret_key = SECRET  # Flask's session cookie keeps the pending sign-in, then the signed-in person
    app.register_blueprint(login_blueprint(login), url_prefix="/auth")

    @app.get("/orders")
    @login_required
    def orders():
        return f"Signed in as {session_user().display_name}"

``GET /login?next=/orders`` sends the person to Passgate (``next`` only if it is a path of this site);
``GET /callback`` (the client's redirect URI) checks the answer and keeps a ``SessionUser`` in ``flask.session``;
``POST /logout`` forgets it, then goes to Passgate's end-session endpoint when discovery advertises one, else to
``after_logout``. A refused callback is a 400 page (503: Passgate unreachable). ``login_required`` answers 401.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Blueprint, Response, abort, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from .errors import IssuerUnreachable, PassgateError
from .login import PENDING_KEY, USER_KEY, PassgateLogin, PendingLogin, SessionUser, refusal_of, safe_next

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("passgate_client.login")


def session_user() -> SessionUser | None:
    """The person signed in to this app in the current request, or None."""
    return SessionUser.from_session(session.get(USER_KEY))


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """Let the view run only for a signed-in person; anyone else gets a 401."""

    @functools.wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        if session_user() is None:
            abort(401)
        return view(*args, **kwargs)

    return guarded


def login_blueprint(login: PassgateLogin, *, name: str = "passgate_login", after_logout: str = "/") -> Blueprint:
    """The three routes; register the blueprint where the client's redirect URI points (``.../callback``)."""
    after_logout = safe_next(after_logout)
    blueprint = Blueprint(name, __name__)

    def refused(error: PassgateError) -> BaseResponse:
        logger.warning("sign-in refused: %s", error.code)
        refusal = refusal_of(error, retry_url=url_for(f"{name}.sign_in"))
        return _no_store(Response(refusal.html, status=refusal.status, mimetype="text/html"))

    @blueprint.get("/login")
    def sign_in() -> BaseResponse:
        try:
            url, pending = login.begin(safe_next(request.args.get("next")))
        except IssuerUnreachable as error:
            return refused(error)
        session[PENDING_KEY] = pending.to_session()
        return _no_store(redirect(url, code=303))

    @blueprint.get("/callback")
    def callback() -> BaseResponse:
        # Taken whatever the outcome: a pending sign-in is answered once.
        pending = PendingLogin.from_session(session.pop(PENDING_KEY, None))
        try:
            signed_in = login.complete(request.args.to_dict(), pending)
        except PassgateError as error:
            return refused(error)
        session.clear()
        session[USER_KEY] = signed_in.session_user().to_session()
        return _no_store(redirect(signed_in.next_path, code=303))

    @blueprint.post("/logout")
    def sign_out() -> BaseResponse:
        user = session_user()
        session.clear()
        hint = None if user is None else user.id_token
        return redirect(login.after_logout(id_token_hint=hint, default=after_logout), code=303)

    return blueprint


def _no_store(response: BaseResponse) -> BaseResponse:
    response.headers["Cache-Control"] = "no-store"
    return response
