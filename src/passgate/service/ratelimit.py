"""Rate limits: fixed windows counted in the storage's counter store (in-process, or Redis when shared)."""

from __future__ import annotations

from dataclasses import dataclass

from passgate.core.errors import RateLimited
from passgate.service.context import Context, digest


@dataclass(frozen=True, kw_only=True)
class Limit:
    name: str
    count: int
    window_seconds: int


async def check(ctx: Context, limit: Limit, key: str) -> None:
    """Count one attempt for `key` (an IP, a username, an address); refuse past the limit.

    Keys are hashed, so counters name no address or username.

    Raises:
        RateLimited: the limit is reached for this window.
    """
    bucket = f"{limit.name}:{digest(key.casefold()).hex()[:32]}"
    attempts, retry_after = await ctx.storage.counters.hit(bucket, limit.window_seconds, ctx.clock())
    if attempts > limit.count:
        raise RateLimited(retry_after=retry_after)
