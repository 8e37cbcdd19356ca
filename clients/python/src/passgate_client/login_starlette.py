"""Starlette and FastAPI: ``/login``, ``/callback`` and ``/logout`` for a ``PassgateLogin``, kept in the session.

    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=SECRET, session_cookie="shop_session")
    app.include_router(login_router(login), prefix="/auth")  # Starlette: Mount("/auth", routes=login_routes(login))

    @app.get("/orders")
    async def orders(user: Annotated[SessionUser, Depends(require_session_user)]) -> ...: ...

``GET /login?next=/orders`` sends the person to Passgate (``next`` only if it is a path of this site);
``GET /callback`` (the client's redirect URI) checks the answer and keeps a ``SessionUser`` in Starlette's
``SessionMiddleware`` session; ``POST /logout`` forgets it, then goes to Passgate's end-session endpoint when
discovery advertises one, else to ``after_logout``. A refused callback is a 400 page (503: Passgate unreachable).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .errors import IssuerUnreachable, PassgateError
from .login import PENDING_KEY, USER_KEY, PassgateLogin, PendingLogin, SessionUser, refusal_of, safe_next

if TYPE_CHECKING:
    from fastapi import APIRouter

logger = logging.getLogger("passgate_client.login")


def session_user(request: Request) -> SessionUser | None:
    """The person signed in to this app, or None (usable as a FastAPI dependency)."""
    return SessionUser.from_session(request.session.get(USER_KEY))


def require_session_user(request: Request) -> SessionUser:
    """``session_user``, or a 401 (a FastAPI dependency)."""
    user = session_user(request)
    if user is None:
        raise HTTPException(status_code=401, detail="sign in first")
    return user


def login_routes(login: PassgateLogin, *, after_logout: str = "/") -> list[Route]:
    """The three routes, for ``Mount`` in a Starlette app (``login_router`` for FastAPI)."""
    after_logout = safe_next(after_logout)

    def refused(request: Request, error: PassgateError) -> Response:
        logger.warning("sign-in refused: %s", error.code)
        refusal = refusal_of(error, retry_url=str(request.url_for("passgate_login")))
        return HTMLResponse(refusal.html, status_code=refusal.status, headers={"Cache-Control": "no-store"})

    async def sign_in(request: Request) -> Response:
        try:
            url, pending = await login.abegin(safe_next(request.query_params.get("next")))
        except IssuerUnreachable as error:
            return refused(request, error)
        request.session[PENDING_KEY] = pending.to_session()
        return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})

    async def callback(request: Request) -> Response:
        # Taken whatever the outcome: a pending sign-in is answered once.
        pending = PendingLogin.from_session(request.session.pop(PENDING_KEY, None))
        try:
            signed_in = await login.acomplete(dict(request.query_params), pending)
        except PassgateError as error:
            return refused(request, error)
        request.session.clear()
        request.session[USER_KEY] = signed_in.session_user().to_session()
        return RedirectResponse(signed_in.next_path, status_code=303, headers={"Cache-Control": "no-store"})

    async def sign_out(request: Request) -> Response:
        user = session_user(request)
        request.session.clear()
        hint = None if user is None else user.id_token
        return RedirectResponse(await login.aafter_logout(id_token_hint=hint, default=after_logout), status_code=303)

    return [
        Route("/login", sign_in, methods=["GET"], name="passgate_login"),
        Route("/callback", callback, methods=["GET"], name="passgate_callback"),
        Route("/logout", sign_out, methods=["POST"], name="passgate_logout"),
    ]


def login_router(login: PassgateLogin, *, after_logout: str = "/") -> APIRouter:
    """The three routes as a FastAPI ``APIRouter`` (``app.include_router(login_router(login), prefix="/auth")``)."""
    from fastapi import APIRouter

    router = APIRouter(include_in_schema=False)
    for route in login_routes(login, after_logout=after_logout):
        router.add_route(route.path, route.endpoint, methods=list(route.methods or ()), name=route.name)
    return router
