"""The origins allowed to read this server's answers from their pages (CORS): see core.cors."""

from __future__ import annotations

import time

from passgate.core.cors import CorsOrigins
from passgate.service import apps
from passgate.service.context import Context

# Every request with an Origin asks: the apps' origins are read from storage at most this often, so an app added
# on one node (or with `passgate apps add`) is allowed everywhere within this many seconds.
APP_ORIGINS_SECONDS = 30.0


async def allowed_origins(ctx: Context) -> CorsOrigins:
    """Credentialed: the configured `cors_origins`, whose pages call the first-party API with the person's
    cookies. Public (no credentials): the apps' origins, whose pages call the app API's browser endpoints."""
    return CorsOrigins(credentialed=frozenset(ctx.rp.cors_origins), public=await _apps_origins(ctx))


async def _apps_origins(ctx: Context) -> frozenset[str]:
    cache, now = ctx.app_origins, time.monotonic()
    if now >= cache.until:
        cache.origins, cache.until = frozenset(await apps.all_origins(ctx)), now + APP_ORIGINS_SECONDS
    return cache.origins
