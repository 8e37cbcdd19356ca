"""Flask: an extension whose ``login_required`` decorator verifies the request's Passgate bearer token.

    passgate = PassgateFlask(app, PassgateVerifier("https://id.example", "https://shop.example"))

    @app.get("/orders")
    @passgate.login_required
    def orders():
        return {"sub": passgate.user.sub}

    @app.post("/payouts")
    @passgate.login_required(require_acr="phrh", max_age=300)
    def payout(): ...

Refusals are answered as the other adapters do (401, 403 or 503 with the Bearer challenge). When Flask-Login's
``LoginManager`` is set up on the app before this extension, a request loader is registered with it, so
``flask_login.current_user`` is the token's user (``load_user`` turns a ``PassgateUser`` into the app's own user).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ParamSpec, TypeVar

from flask import Flask, Request, Response, g, jsonify, request

from ._http import bearer_token, refusal
from .errors import PassgateError
from .user import PassgateUser
from .verifier import PassgateVerifier, check_acr_name

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, kw_only=True)
class PassgateFlaskLoginUser(PassgateUser):
    """A ``PassgateUser`` with the four members Flask-Login asks of a user."""

    @classmethod
    def of(cls, user: PassgateUser) -> PassgateFlaskLoginUser:
        return cls(**{f.name: getattr(user, f.name) for f in fields(user)})

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return self.sub


class PassgateFlask:
    def __init__(
        self,
        app: Flask | None = None,
        verifier: PassgateVerifier | None = None,
        *,
        load_user: Callable[[PassgateUser], Any] | None = None,
    ) -> None:
        self.verifier = verifier
        self.load_user = load_user
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, verifier: PassgateVerifier | None = None) -> None:
        if verifier is not None:
            self.verifier = verifier
        if self.verifier is None:
            raise ValueError("PassgateFlask needs a PassgateVerifier")
        app.extensions["passgate"] = self
        login_manager = getattr(app, "login_manager", None)
        if login_manager is not None:
            login_manager.request_loader(self._flask_login_user)

    @property
    def user(self) -> PassgateUser | None:
        """The user ``login_required`` verified for this request, or None."""
        user: PassgateUser | None = g.get("passgate_user")
        return user

    def login_required(
        self, view: Callable[P, R] | None = None, /, *, require_acr: str | None = None, max_age: float | None = None
    ) -> Any:
        """Let the view run only for a request with a good token; ``require_acr``/``max_age`` as the verifier's."""
        check_acr_name(require_acr)

        def decorate(view: Callable[P, R]) -> Callable[P, R | Response]:
            @functools.wraps(view)
            def guarded(*args: P.args, **kwargs: P.kwargs) -> R | Response:
                try:
                    g.passgate_user = self._verify(request, require_acr=require_acr, max_age=max_age)
                except PassgateError as error:
                    return _refused(error)
                if g.passgate_user is None:
                    return _refused(None)
                return view(*args, **kwargs)

            return guarded

        return decorate if view is None else decorate(view)

    def _verify(self, req: Request, *, require_acr: str | None, max_age: float | None) -> PassgateUser | None:
        token = bearer_token(req.headers.get("Authorization"))
        if token is None or self.verifier is None:
            return None
        return self.verifier.verify(token, require_acr=require_acr, max_age=max_age)

    def _flask_login_user(self, req: Request) -> Any:
        try:
            user = self._verify(req, require_acr=None, max_age=None)
        except PassgateError:
            return None  # Flask-Login then treats the request as anonymous, and its own login_required refuses it
        if user is None:
            return None
        return self.load_user(user) if self.load_user is not None else PassgateFlaskLoginUser.of(user)


def _refused(error: PassgateError | None) -> Response:
    answer = refusal(error)
    response = jsonify(answer.body)
    response.status_code = answer.status
    response.headers.update(answer.headers)
    return response
