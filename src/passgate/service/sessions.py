"""Sessions: an opaque random token in a cookie, stored only as its SHA-256."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from passgate.service.context import Client, Context, digest
from passgate.store.base import Session, User

# Writing last-seen on every request would make each page view a database write.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class SignedIn:
    user: User
    session: Session


def new_session(ctx: Context, user_id: str) -> tuple[str, Session]:
    """A new session's token (for the cookie) and its stored form (the token's hash only)."""
    token = secrets.token_urlsafe(32)
    now = ctx.clock()
    return token, Session(
        token_hash=digest(token),
        user_id=user_id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + ctx.rp.session_absolute,
    )


async def start(ctx: Context, client: Client, user_id: str) -> str:
    """Start a session and return its token; any session the browser held is ended (rotation)."""
    if client.session_token:
        await ctx.storage.sessions.delete(digest(client.session_token))
    token, session = new_session(ctx, user_id)
    await ctx.storage.sessions.create(session)
    return token


async def resolve(ctx: Context, token: str | None) -> SignedIn | None:
    """The signed-in user for a session token, or None if unknown, idle too long or past its end."""
    if not token or len(token) > 128:
        return None
    token_hash = digest(token)
    session = await ctx.storage.sessions.get(token_hash)
    if session is None:
        return None
    now = ctx.clock()
    if now >= session.expires_at or now >= session.last_seen_at + ctx.rp.session_idle:
        await ctx.storage.sessions.delete(token_hash)
        return None
    user = await ctx.storage.users.get(session.user_id)
    if user is None:
        return None
    if now - session.last_seen_at >= TOUCH_INTERVAL:
        await ctx.storage.sessions.touch(token_hash, now)
    return SignedIn(user=user, session=session)


async def end(ctx: Context, token: str | None) -> None:
    if token:
        await ctx.storage.sessions.delete(digest(token))
