"""Errors as a browser sees them: an HTML page in the site's look and the person's language for anything that is not
an API route; the JSON error body (web.errors) for the API routes, whatever the client accepts.

The page says what happened in the person's words, never the server's own message (which is English and for
developers).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from passgate.i18n import N_
from passgate.web import pages
from passgate.web.context import signed_in

# Paths whose answers are for programs: their errors stay JSON (or the protocol's own), even for a browser.
API_PREFIXES = (
    "/auth/",
    "/admin/",
    "/api/",
    "/.well-known/",
    "/oauth2/token",
    "/oauth2/revoke",
    "/oauth2/introspect",
    "/oauth2/userinfo",
    "/metrics",
    "/healthz",
    "/readyz",
    "/attestation/",
    "/assertion/",
)

# What a status means to the person: (title, explanation). A status not here is told as its class's (4xx, 5xx).
WORDS: dict[int, tuple[str, str]] = {
    404: (
        N_("Page not found"),
        N_("There is no page at this address. The link may be incomplete, or the page may have moved."),
    ),
    401: (N_("You cannot open this page"), N_("Sign in, then try again with an account that may open it.")),
    403: (N_("You cannot open this page"), N_("Sign in, then try again with an account that may open it.")),
    429: (N_("Too many attempts"), N_("Wait a minute, then try again.")),
    503: (N_("The site is unavailable for a moment"), N_("Try again in a moment.")),
    400: (N_("This request could not be handled"), N_("Go back to the page you came from and try again.")),
    500: (N_("Something went wrong"), N_("The site could not finish your request. Try again in a moment.")),
}


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES) or path in {prefix.rstrip("/") for prefix in API_PREFIXES}


def wants_page(request: Request) -> bool:
    """Whether an error should be answered with a page: a browser (Accept: text/html) asked for a path that is not
    an API route."""
    return not is_api_path(request.url.path) and "text/html" in request.headers.get("accept", "")


async def error_page(request: Request, status: int, headers: dict[str, str] | None = None) -> Response:
    """The error page for `status`, in the request's language. Below 500 its header shows who is signed in, as
    every page's does; a server error's does not look the session up (the storage may be what failed)."""
    title, explanation = WORDS.get(status) or WORDS[500 if status >= 500 else 400]
    current = await signed_in(request) if status < 500 else None
    response = pages.render(
        request,
        "error.html",
        user=current.user if current is not None else None,
        status=status,
        title=title,
        explanation=explanation,
    )
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
