"""Issuing and taking challenges: 32 random bytes, single use, short-lived, bound to a browser."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from passgate.core.errors import ChallengeExpired, ChallengeMismatch, ChallengeNotFound
from passgate.service.context import Client, Context, digest
from passgate.store.base import Ceremony, PendingChallenge


async def issue(
    ctx: Context,
    client: Client,
    ceremony: Ceremony,
    *,
    user_id: str | None = None,
    pending_user: dict[str, Any] | None = None,
) -> tuple[bytes, str]:
    """Store a new challenge; returns it and the browser token the ceremony cookie must carry."""
    browser_token = client.browser_token or secrets.token_urlsafe(32)
    challenge = ctx.random(32)
    await ctx.storage.challenges.put(
        PendingChallenge(
            id=digest(challenge),
            challenge=challenge,
            ceremony=ceremony,
            browser=digest(browser_token),
            user_id=user_id,
            pending_user=pending_user,
            expires_at=ctx.clock() + ctx.rp.challenge_ttl,
        )
    )
    return challenge, browser_token


async def take(ctx: Context, client: Client, ceremony: Ceremony, challenge: bytes) -> PendingChallenge:
    """Take the challenge a response answers (read from its client data), atomically, before anything is verified.

    Whatever happens next, the challenge is gone: a response can be tried once.

    Raises:
        ChallengeNotFound: never issued, already used or purged.
        ChallengeMismatch: issued to another browser or for another ceremony.
        ChallengeExpired: issued too long ago.
    """
    pending = await ctx.storage.challenges.take(digest(challenge))
    if pending is None:
        raise ChallengeNotFound()
    browser = digest(client.browser_token or "")
    if not client.browser_token or not hmac.compare_digest(pending.browser, browser):
        raise ChallengeMismatch("This attempt was started in another browser or tab that has since been reset.")
    if pending.ceremony != ceremony:
        raise ChallengeMismatch("The response answers a challenge issued for another kind of ceremony.")
    if ctx.clock() >= pending.expires_at:
        raise ChallengeExpired()
    return pending
