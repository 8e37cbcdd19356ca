"""Periodic clean-up: challenges of abandoned ceremonies and sessions that have ended."""

from __future__ import annotations

import asyncio
import logging

from passgate.service.context import Context

log = logging.getLogger("passgate")


async def purge(ctx: Context) -> tuple[int, int]:
    """Delete expired challenges and ended sessions; returns how many of each."""
    now = ctx.clock()
    challenges = await ctx.storage.challenges.purge_expired(now)
    sessions = await ctx.storage.sessions.purge_expired(now, ctx.rp.session_idle)
    await ctx.storage.email_tokens.purge_expired(now)
    return challenges, sessions


async def run_forever(ctx: Context, interval_seconds: float = 60.0) -> None:
    while True:
        try:
            await purge(ctx)
        except Exception:  # a failed clean-up must not stop the next one
            log.exception("housekeeping failed")
        await asyncio.sleep(interval_seconds)
