"""Issuing and taking challenges: single use, short-lived, bound to a browser and a ceremony.

A ceremony's challenge is its own state, sealed (AES-GCM under a key from `secret_key`, see service.sealing):
16 random bytes, the ceremony, the digest of the browser binding, the user and the pending sign-up, and the
expiry. So `begin` writes nothing anywhere (one process only notes it as outstanding, in memory), any node can
take what another issued, and what storage keeps is that a challenge was answered (`ChallengeStore.spend`, one
write), till it would have expired. A challenge that does not open this way is looked up as a stored one
(`put`): those commit to something else, like a payment's transaction.
"""

from __future__ import annotations

import hmac
import json
import secrets
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

from passgate.core.errors import ChallengeExpired, ChallengeMismatch, ChallengeNotFound
from passgate.service import sealing
from passgate.service.context import Audit, Client, Context, digest, spend_unspent
from passgate.store.base import Ceremony, PendingChallenge, Spend

# Spent marks outlive the challenge's expiry by this much, so a node whose clock is behind still refuses a replay.
CLOCK_SKEW = timedelta(minutes=5)
_RANDOM = 16
_HEAD = struct.Struct(">16s32sq")  # random bytes, browser digest, expiry in microseconds since the epoch
_NO_BINDING = b""  # the state is bound to nothing else: it is the whole of what a challenge stands for


async def issue(
    ctx: Context,
    client: Client,
    ceremony: Ceremony,
    *,
    user_id: str | None = None,
    pending_user: dict[str, Any] | None = None,
) -> tuple[bytes, str]:
    """A new sealed challenge; returns it and the browser token the ceremony cookie must carry."""
    browser_token = client.browser_token or secrets.token_urlsafe(32)
    expires_at = ctx.clock() + ctx.rp.challenge_ttl
    head = _HEAD.pack(ctx.random(_RANDOM), digest(browser_token), _microseconds(expires_at))
    body = json.dumps([ceremony, user_id, pending_user], separators=(",", ":")).encode()
    challenge = sealing.seal(ctx.rp.secret_key, purpose=sealing.CHALLENGES, bound_to=_NO_BINDING, plaintext=head + body)
    await ctx.storage.challenges.issued(digest(challenge), expires_at)
    return challenge, browser_token


async def take(
    ctx: Context, client: Client, ceremony: Ceremony, challenge: bytes, *, audit: Audit | None = None
) -> PendingChallenge:
    """Take the challenge a response answers (read from its client data), atomically, before anything is verified.

    Whatever happens next, the challenge is spent: a response can be tried once. Given the use case's `audit`,
    where storage marks a challenge in the transaction that records the sign-in
    (`ChallengeStore.spent_with_sign_in`), the mark is left to that write: `audit.unspent` says what it must
    spend, and `audited` spends it if the use case fails.

    Raises:
        ChallengeNotFound: never issued (or forged), already used or purged.
        ChallengeMismatch: issued to another browser or for another ceremony.
        ChallengeExpired: issued too long ago.
    """
    pending = _opened(ctx, challenge)
    if pending is None:
        pending = await ctx.storage.challenges.take(digest(challenge))
        if pending is None:
            raise ChallengeNotFound()
    elif ctx.clock() >= pending.expires_at:
        raise ChallengeExpired()  # refused as it is, whether answered before or not: no need to mark it
    elif audit is not None and ctx.storage.challenges.spent_with_sign_in:
        audit.unspent = Spend(pending.id, pending.expires_at + CLOCK_SKEW)
    elif not await ctx.storage.challenges.spend(pending.id, pending.expires_at + CLOCK_SKEW):
        raise ChallengeNotFound()
    browser = digest(client.browser_token or "")
    if not client.browser_token or not hmac.compare_digest(pending.browser, browser):
        raise ChallengeMismatch("This attempt was started in another browser or tab that has since been reset.")
    if pending.ceremony != ceremony:
        raise ChallengeMismatch("The response answers a challenge issued for another kind of ceremony.")
    if ctx.clock() >= pending.expires_at:
        raise ChallengeExpired()
    return pending


async def spend(ctx: Context, audit: Audit) -> None:
    """Spend now, on its own, the challenge `take` left to a record that turned out not to be written.

    Raises:
        ChallengeNotFound: it was answered before.
    """
    if not await spend_unspent(ctx, audit):
        raise ChallengeNotFound()


def _opened(ctx: Context, challenge: bytes) -> PendingChallenge | None:
    """The state a sealed challenge carries; None if it is not one of ours."""
    try:
        plaintext = sealing.unseal(
            ctx.rp.secret_key, purpose=sealing.CHALLENGES, bound_to=_NO_BINDING, sealed=challenge
        )
    except sealing.InvalidTag:
        return None
    _random, browser, expires = _HEAD.unpack_from(plaintext)
    ceremony, user_id, pending_user = json.loads(plaintext[_HEAD.size :])
    return PendingChallenge(
        id=digest(challenge),
        challenge=challenge,
        ceremony=ceremony,
        browser=browser,
        user_id=user_id,
        pending_user=pending_user,
        expires_at=_EPOCH + timedelta(microseconds=expires),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _microseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)
