"""The site's own host names. Passkeys work only on the configured origins, so a page asked for under another
name (http://127.0.0.1:8000 for http://localhost:8000, a server's IP address, a stray DNS name) is sent there.

The redirect's target is always the configured origin (`public_url`, else the first origin), never built from the
Host header: a forged Host cannot make Passgate send a browser elsewhere.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

from passgate.config import Settings
from passgate.web.context import settings_of


class OtherHost(Exception):
    """A page was asked for under a host name that is not the site's; `location` is the same page on the site."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def hostname(authority: str | None) -> str | None:
    """The lower-case host name of a Host header or an origin ("127.0.0.1" from "127.0.0.1:8000"), if it has one."""
    if not authority:
        return None
    try:
        return urlsplit(authority if "//" in authority else "//" + authority).hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


def is_site_host(settings: Settings, authority: str | None) -> bool:
    return hostname(authority) in {hostname(origin) for origin in settings.allowed_origins}


async def on_site_host(request: Request) -> None:
    """A dependency of every page.

    Raises:
        OtherHost: the Host header names another host; the same path and query on the site's origin.
    """
    settings = settings_of(request)
    if is_site_host(settings, request.headers.get("host")):
        return
    path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    raise OtherHost(settings.link_base + path + (f"?{query}" if query else ""))
