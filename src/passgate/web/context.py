"""Per-request access to the service context, the client's cookies and the signed-in user."""

from __future__ import annotations

import ipaddress

from starlette.requests import Request
from starlette.responses import Response

from passgate.config import Settings
from passgate.core.errors import NotSignedIn
from passgate.service.context import Client, Context
from passgate.service.sessions import SignedIn, resolve

SESSION_COOKIE = "passgate_session"
CEREMONY_COOKIE = "passgate_ceremony"


def ctx_of(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _canonical_ip(host: str) -> str:
    # One spelling per address ("2001:DB8:0::1" is "2001:db8::1"): rate limits count addresses, not spellings.
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def client_of(request: Request) -> Client:
    return Client(
        browser_token=request.cookies.get(CEREMONY_COOKIE),
        session_token=request.cookies.get(SESSION_COOKIE),
        ip=_canonical_ip(request.client.host) if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


async def signed_in(request: Request) -> SignedIn | None:
    # Cached on the request: a route and a page may both ask.
    if "passgate_signed_in" not in request.scope:
        request.scope["passgate_signed_in"] = await resolve(ctx_of(request), request.cookies.get(SESSION_COOKIE))
    current: SignedIn | None = request.scope["passgate_signed_in"]
    return current


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header (RFC 6750 section 2.1), or None without one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def require_signed_in_or_bearer(request: Request) -> SignedIn:
    """The signed-in user, by the session token in `Authorization: Bearer` when there is one (a native app or a
    backend forwarding it), else by the session cookie. Raises NotSignedIn."""
    token = bearer_token(request)
    if token is None:
        return await require_signed_in(request)
    current = await resolve(ctx_of(request), token)
    if current is None:
        raise NotSignedIn()
    return current


async def require_signed_in(request: Request) -> SignedIn:
    """The signed-in user. Raises NotSignedIn."""
    current = await signed_in(request)
    if current is None:
        raise NotSignedIn()
    return current


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings = settings_of(request)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_absolute_hours * 3600,
        path="/",
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, secure=settings_of(request).secure_cookies, samesite="lax"
    )


def set_ceremony_cookie(request: Request, response: Response, token: str) -> None:
    """The browser binding of ceremonies and email links: whatever this browser starts must finish here."""
    settings = settings_of(request)
    # Outlives challenges and links a little, so a slow user hears "expired" rather than "unknown".
    lifetime = max(settings.challenge_timeout_seconds, settings.magic_link_minutes * 60) + 300
    response.set_cookie(
        CEREMONY_COOKIE,
        token,
        max_age=lifetime,
        path="/auth",
        httponly=True,
        secure=settings.secure_cookies,
        samesite="strict",
    )
