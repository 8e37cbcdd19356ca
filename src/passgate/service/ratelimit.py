"""Rate limits: fixed windows counted in the storage's counter store (in-process, or Redis when shared)."""

from __future__ import annotations

from dataclasses import dataclass

from passgate import metrics
from passgate.core.errors import RateLimited
from passgate.service.context import Client, Context, digest


@dataclass(frozen=True, kw_only=True)
class Limit:
    name: str
    count: int
    window_seconds: int


async def check(ctx: Context, limit: Limit, key: str) -> None:
    """Count one attempt for `key`; refuse past the limit.

    `key` is used as given: an IP address, an account id, or a username or email address in its
    `normalize_identifier` form - the form storage looks it up by, so every spelling that reaches an
    account counts against the same limit. Keys are hashed, so counters name no address or username.

    Raises:
        RateLimited: the limit is reached for this window.
    """
    bucket = f"{limit.name}:{digest(key).hex()[:32]}"
    attempts, retry_after = await ctx.storage.counters.hit(bucket, limit.window_seconds, ctx.clock())
    if attempts > limit.count:
        metrics.RATE_LIMIT_REFUSALS.labels(limit.name).inc()
        raise RateLimited(retry_after=retry_after)


async def ceremony(ctx: Context, client: Client, step: str, *, account: str | None = None, per_ip: bool = True) -> None:
    """The limits every ceremony step has: per IP address, and per account once it is known.

    `account` is an account id, or a normalized identifier (`normalize_identifier`) before the account is known.
    The numbers are per minute (`RelyingParty.rate_limit_per_ip` / `rate_limit_per_account`); 0 turns one off.

    Raises:
        RateLimited: past a limit.
    """
    if per_ip and ctx.rp.rate_limit_per_ip and client.ip:
        await check(ctx, Limit(name=f"{step}-ip", count=ctx.rp.rate_limit_per_ip, window_seconds=60), client.ip)
    if ctx.rp.rate_limit_per_account and account:
        limit = Limit(name=f"{step}-account", count=ctx.rp.rate_limit_per_account, window_seconds=60)
        await check(ctx, limit, account)
