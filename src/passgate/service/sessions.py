"""Sessions: an opaque random token in a cookie, stored only as its SHA-256."""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import timedelta

from passgate.core.assurance import Assurance, SignInProof, assurance
from passgate.core.errors import StepUpRequired
from passgate.service import backchannel, webhooks
from passgate.service.context import Client, Context, audited, digest
from passgate.store.base import Session, SessionKind, User

# Writing last-seen on every request would make each page view a database write.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class EndedEverywhere:
    """What `end_everywhere` did: sessions ended, back-channel logout tokens queued, refresh tokens revoked."""

    sessions: int
    logout_tokens: int
    refresh_tokens: int


@dataclass(frozen=True, kw_only=True)
class SignedIn:
    user: User
    session: Session


def new_session(
    ctx: Context,
    user_id: str,
    kind: SessionKind = "passkey",
    *,
    credential_id: bytes | None = None,
    user_verified: bool = False,
) -> tuple[str, Session]:
    """A new session's token (for the cookie) and its stored form (the token's hash only).

    A passkey session counts as a fresh authentication (step-up) now; a recovery or password session does not.
    `credential_id` is the passkey that opened it: removing that passkey ends the session. `user_verified`:
    that passkey's assertion (or attestation, at sign-up) had the UV flag; never for a recovery path.
    """
    token = secrets.token_urlsafe(32)
    now = ctx.clock()
    return token, Session(
        token_hash=digest(token),
        user_id=user_id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + ctx.rp.session_absolute,
        authenticated_at=now if kind == "passkey" else None,
        kind=kind,
        credential_id=credential_id,
        user_verified=user_verified and credential_id is not None,
        sid=secrets.token_urlsafe(32),
    )


async def start(
    ctx: Context,
    client: Client,
    user_id: str,
    kind: SessionKind = "passkey",
    *,
    credential_id: bytes | None = None,
    user_verified: bool = False,
) -> str:
    """Start a session and return its token; any session the browser held is ended (rotation)."""
    if client.session_token:
        await ctx.storage.sessions.delete(digest(client.session_token))
    token, session = new_session(ctx, user_id, kind, credential_id=credential_id, user_verified=user_verified)
    await ctx.storage.sessions.create(session)
    return token


async def resolve(ctx: Context, token: str | None) -> SignedIn | None:
    """The signed-in user for a session token, or None if unknown, idle too long or past its end.

    A password session also ends once password sign-in could not open it again: passwords turned off
    (`passwords = "off"`), or the account's password removed (whoever might have known it is signed out too).
    """
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
    if session.kind == "password" and not await _password_still_signs_in(ctx, session.user_id):
        await ctx.storage.sessions.delete(token_hash)
        return None
    user = await ctx.storage.users.get(session.user_id)
    if user is None:
        return None
    if user.disabled_at is not None:  # disabling ends the sessions; one read just before ends here
        await ctx.storage.sessions.delete(token_hash)
        return None
    if now - session.last_seen_at >= TOUCH_INTERVAL:
        await ctx.storage.sessions.touch(token_hash, now)
    return SignedIn(user=user, session=session)


async def _password_still_signs_in(ctx: Context, user_id: str) -> bool:
    return ctx.rp.passwords == "migrate" and await ctx.storage.passwords.get(user_id) is not None


async def end(ctx: Context, client: Client, *, asked_by: str | None = None) -> None:
    """Sign out: end the browser's session, and queue back-channel logout for the clients that received tokens for
    it. Recorded as a "sign_out" event, with the OpenID Connect client that `asked_by` RP-initiated logout."""
    token = client.session_token
    if not token or len(token) > 128:
        return
    token_hash = digest(token)
    session = await ctx.storage.sessions.get(token_hash)
    if session is None:
        return  # signed out already: nothing to record
    async with audited(ctx, client, "sign_out") as audit:
        audit.user_id, audit.credential_id = session.user_id, session.credential_id
        ended = webhooks.session_ended(ctx, session.user_id, token_hash, "signed_out")
        if await ctx.storage.sessions.delete(token_hash, outbox=ended):
            webhooks.wake(ctx)
        queued = await backchannel.sessions_ended(ctx, [token_hash])
        audit.detail.update({"sid": session.sid, "logout_tokens": queued})
        if asked_by is not None:
            audit.detail["client_id"] = asked_by


async def end_everywhere(ctx: Context, client: Client, user: User, *, admin_key: str = "cli") -> EndedEverywhere:
    """End every session of the user (an administrator's "sign out everywhere"): back-channel logout for each
    client that received tokens for one of them, and every refresh token the user's sign-ins granted is revoked,
    so no app keeps acting for the user either. The event names the admin key (`cli`: the command line)."""
    async with audited(ctx, client, "admin.sign_out") as audit:
        audit.user_id = user.id
        audit.detail["admin_key"] = admin_key
        ended = await ctx.storage.sessions.delete_for_user(
            user.id, outbox=webhooks.sessions_ended(ctx, user.id, "ended_everywhere")
        )
        webhooks.wake(ctx)
        ended_everywhere = EndedEverywhere(
            sessions=len(ended),
            logout_tokens=await backchannel.sessions_ended(ctx, ended),
            refresh_tokens=await ctx.storage.refresh_tokens.revoke_for_user(user.id),
        )
        audit.detail.update(dataclasses.asdict(ended_everywhere))
    return ended_everywhere


def require_recent_passkey(ctx: Context, current: SignedIn) -> None:
    """Sensitive changes need a passkey used within the step-up window.

    Raises:
        StepUpRequired: the session is a recovery or password session, or its last passkey use is too old.
    """
    at = current.session.authenticated_at
    if at is None or ctx.clock() - at > ctx.rp.step_up_window:
        raise StepUpRequired()


async def assurance_of(ctx: Context, session: Session) -> Assurance:
    """The `amr` and `acr` of what the session's sign-in proved (passgate.core.assurance), from the session and
    the passkey that opened it or last proved it."""
    credential = await ctx.storage.credentials.get(session.credential_id) if session.credential_id else None
    if credential is None:
        return assurance(SignInProof(kind=session.kind, passkey=False))
    return assurance(
        SignInProof(
            kind=session.kind,
            passkey=True,
            user_verified=session.user_verified,
            backup_eligible=credential.backup_eligible,
            attested=credential.attested,
        )
    )
