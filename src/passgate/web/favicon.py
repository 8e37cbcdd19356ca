"""The site's icon: /favicon.svg (and /favicon.ico, where browsers look without a <link rel=icon>), a key in the
brand colour, or a redirect to the configured `brand_favicon_url`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from passgate.web.context import settings_of

router = APIRouter(include_in_schema=False)

# The colour comes from core.brand.Brand.accent: #rgb or #rrggbb, checked, so it cannot end the attribute.
KEY_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="{colour}" stroke-width="2.2"'
    ' stroke-linecap="round" stroke-linejoin="round"><circle cx="7.5" cy="7.5" r="4.5"/>'
    '<path d="M10.7 10.7 21 21M16.4 16.4l2.6-2.6M19 19l2.2-2.2"/></svg>\n'
)
CACHE = "public, max-age=86400"


@router.get("/favicon.svg")
@router.get("/favicon.ico")
async def favicon(request: Request) -> Response:
    brand = settings_of(request).brand
    if brand.favicon_url:
        return RedirectResponse(brand.favicon_url, status_code=302, headers={"Cache-Control": CACHE})
    return Response(KEY_SVG.format(colour=brand.accent), media_type="image/svg+xml", headers={"Cache-Control": CACHE})
