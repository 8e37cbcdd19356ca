"""The origins allowed to read this server's answers from their pages (CORS): see core.cors."""

from __future__ import annotations

from passgate.core.cors import CorsOrigins
from passgate.service.context import Context


async def allowed_origins(ctx: Context) -> CorsOrigins:
    """Credentialed: the configured `cors_origins`, whose pages call the first-party API with the person's
    cookies. Public (no credentials): none yet."""
    return CorsOrigins(credentialed=frozenset(ctx.rp.cors_origins))
