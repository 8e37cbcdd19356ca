"""Per-request access to the service context, the client's cookies and the signed-in user."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from passgate.config import Settings
from passgate.core.errors import NotSignedIn
from passgate.service.context import Client, Context
from passgate.service.sessions import SignedIn, resolve
from passgate.web.languages import language_of

SESSION_COOKIE = "passgate_session"
CEREMONY_COOKIE = "passgate_ceremony"
CEREMONY_HEADER = "Passgate-Ceremony"  # the ceremony binding of clients that keep no cookies


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


def is_native(request: Request) -> bool:
    """A request with neither an Origin header nor cookies: a native app's (or any client that is not a browser).
    Nothing ambient comes with it, so it needs no CSRF defence: its binding and session travel in headers."""
    return "origin" not in request.headers and "cookie" not in request.headers


def by_headers(request: Request) -> bool:
    """Whether the request's ceremony binding and session are read from headers only (Passgate-Ceremony,
    `Authorization: Bearer`), never from cookies: a native request, or any request with a bearer token."""
    return is_native(request) or bearer_token(request) is not None


def ceremony_token(request: Request) -> str | None:
    """The ceremony binding: the Passgate-Ceremony header if sent, else (for a browser) the ceremony cookie."""
    header = request.headers.get(CEREMONY_HEADER, "").strip()
    if header:
        return header
    return None if by_headers(request) else request.cookies.get(CEREMONY_COOKIE)


def session_token_of(request: Request) -> str | None:
    """The session token: the bearer token if sent, else (for a browser) the session cookie."""
    token = bearer_token(request)
    if token is not None or is_native(request):
        return token
    return request.cookies.get(SESSION_COOKIE)


def client_of(request: Request) -> Client:
    return Client(
        browser_token=ceremony_token(request),
        session_token=session_token_of(request),
        ip=_canonical_ip(request.client.host) if request.client else None,
        user_agent=request.headers.get("user-agent"),
        language=language_of(request),
    )


async def signed_in(request: Request) -> SignedIn | None:
    # Cached on the request: a route and a page may both ask.
    if "passgate_signed_in" not in request.scope:
        request.scope["passgate_signed_in"] = await resolve(ctx_of(request), session_token_of(request))
    current: SignedIn | None = request.scope["passgate_signed_in"]
    request.scope.setdefault("state", {})["user_id"] = current.user.id if current else None  # for the access log
    return current


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header (RFC 6750 section 2.1), or None without one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def require_signed_in_or_bearer(request: Request) -> SignedIn:
    """The signed-in user, by the session token in `Authorization: Bearer` when there is one (a native app or a
    backend forwarding it), else by the session cookie. Raises NotSignedIn."""
    return await require_signed_in(request)


async def require_signed_in(request: Request) -> SignedIn:
    """The signed-in user, by `Authorization: Bearer <session token>` or else the session cookie. Raises
    NotSignedIn."""
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


def set_ceremony(request: Request, response: Response, token: str) -> None:
    """Hand the ceremony binding over: in the Passgate-Ceremony header always (a client without cookies sends it
    back on `complete`), and in the ceremony cookie for a browser."""
    response.headers[CEREMONY_HEADER] = token
    if not by_headers(request):
        set_ceremony_cookie(request, response, token)


def session_response(
    request: Request, body: dict[str, Any], token: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The answer of a sign-in or sign-up: the new session in a cookie for a browser, or as `sessionToken` in the
    body for a client that sends its session as a bearer token (a native app)."""
    if by_headers(request):
        return JSONResponse({**body, "sessionToken": token}, headers=headers)
    response = JSONResponse(body, headers=headers)
    set_session_cookie(request, response, token)
    return response
