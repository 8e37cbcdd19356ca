"""Cross-origin resource sharing: which CORS headers a request from another origin gets (the Fetch standard's
CORS protocol), decided purely from the request's Origin and the configured origins.

Two kinds of origin are allowed:
- credentialed: pages that call the first-party API with the person's cookies (`cors_origins`); they get
  `Access-Control-Allow-Credentials: true`, and only an exact match of the whole origin does.
- public: pages that call the public API without cookies; they get the origin echoed, never credentials.

Every other origin, `null` included, gets no CORS header at all, and no answer is ever `*`.
"""

from __future__ import annotations

from dataclasses import dataclass

ALLOWED_METHODS = ("GET", "POST", "PATCH", "DELETE")
# What the browser client sends beyond the CORS-safelisted headers: JSON bodies, bearer tokens, and the
# ceremony binding of clients that have no cookie for this site.
ALLOWED_HEADERS = ("Content-Type", "Authorization", "Passgate-Ceremony")
# Response headers a page on another origin may read beyond the safelisted ones.
EXPOSED_HEADERS = ("Passgate-Ceremony", "Retry-After")
PREFLIGHT_MAX_AGE_SECONDS = 600


@dataclass(frozen=True, kw_only=True)
class CorsOrigins:
    """The origins allowed to read this server's answers, each written as the browser sends it
    (`https://shop.example`, `http://localhost:5173`: scheme, host and any non-default port, no path)."""

    credentialed: frozenset[str] = frozenset()
    public: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True)
class CorsAnswer:
    """What to do with a request: `headers` to add to its response; `preflight` when the request is a CORS
    preflight this decision answers by itself (no route runs)."""

    headers: tuple[tuple[str, str], ...]
    preflight: bool


def decide(
    origins: CorsOrigins,
    *,
    origin: str | None,
    method: str,
    request_method: str | None = None,
) -> CorsAnswer | None:
    """The CORS answer to a request with `origin` (its Origin header), `method`, and, for a preflight, the
    `request_method` it asks about (Access-Control-Request-Method). None when the origin is not allowed:
    the request goes on as if CORS did not exist, and its response carries no CORS header.
    """
    if origin is None:
        return None
    if origin in origins.credentialed:
        allowed = [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true")]
    elif origin in origins.public:
        allowed = [("Access-Control-Allow-Origin", origin)]
    else:
        return None
    if method.upper() == "OPTIONS" and request_method is not None:
        return CorsAnswer(
            headers=(
                *allowed,
                ("Access-Control-Allow-Methods", ", ".join(ALLOWED_METHODS)),
                ("Access-Control-Allow-Headers", ", ".join(ALLOWED_HEADERS)),
                ("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE_SECONDS)),
            ),
            preflight=True,
        )
    return CorsAnswer(
        headers=(*allowed, ("Access-Control-Expose-Headers", ", ".join(EXPOSED_HEADERS))), preflight=False
    )
