"""Consent: what a person allows an OpenID Connect client that is not first-party, remembered per user and client.

At the authorization endpoint (`settle`), once the person is signed in and every sign-in requirement is met, such
a client gets its code only if the person consented to every scope it asks for, before or now, and without
prompt=consent. Otherwise the person is asked on a page whose Allow and Deny buttons post the request back with a
confirmation: single-use and expiring (kept as a challenge, taken once), bound to the session the way the sign-out
page's confirmation is (`confirmations.session_bound`), and to the request it allows (client, redirect URI,
scopes). Allow remembers the scopes, widening what was remembered; Deny answers access_denied. Withdrawing the
consent from the account page (`withdraw`) also revokes the person's refresh tokens for the client.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from passgate.core import authorization
from passgate.core.authorization import AuthorizationRequest
from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.core.errors import AccessDenied, ConsentRequired, MalformedResponse, UnknownConsent
from passgate.core.oidc_clients import SCOPES, OidcClient
from passgate.service import confirmations, oidc_clients
from passgate.service.context import Client, Context, audited, digest
from passgate.service.sessions import SignedIn
from passgate.store.base import PendingChallenge

CONFIRMATION_LABEL = b"passgate consent confirmation v1"
CONFIRMATION_LIFETIME = timedelta(minutes=10)  # how long the consent page's buttons work


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What the consent page posted back: Allow or Deny, and its confirmation."""

    allow: bool
    confirmation: str


@dataclass(frozen=True, kw_only=True)
class ConsentNeeded:
    """Ask the person: show the consent page for `client` and `scopes`, its buttons posting `confirmation`."""

    client: OidcClient
    scopes: tuple[str, ...]
    confirmation: str


@dataclass(frozen=True, kw_only=True)
class ConnectedApp:
    client_id: str
    name: str  # the client's, or its client_id once it is no longer registered
    scopes: tuple[str, ...]  # in the order SCOPES lists them
    granted_at: datetime
    updated_at: datetime


async def settle(
    ctx: Context, client: Client, current: SignedIn, request: AuthorizationRequest, decision: Decision | None
) -> ConsentNeeded | None:
    """None if the request may have its code (first-party client, consent remembered, or Allow posted now and
    remembered); else the consent page to show.

    A Deny is honoured whatever its confirmation (denying grants nothing); an Allow only with a confirmation this
    page issued to this session for this request, unused and unexpired: with any other, the person is asked again.

    Raises:
        ConsentRequired: prompt=none, and consent is needed.
        AccessDenied: the person pressed Deny.
    """
    if request.client.first_party:
        return None
    if decision is not None and not decision.allow:
        await _taken(ctx, current, request, decision.confirmation)
        async with audited(ctx, client, "oidc.consent_denied") as audit:
            audit.user_id = current.user.id
            audit.detail.update({"client_id": request.client.client_id, "scopes": list(request.scope)})
        raise AccessDenied()
    if decision is not None and await _taken(ctx, current, request, decision.confirmation):
        async with audited(ctx, client, "oidc.consent") as audit:
            audit.user_id = current.user.id
            audit.detail.update({"client_id": request.client.client_id, "scopes": list(request.scope)})
            await ctx.storage.consents.grant(current.user.id, request.client.client_id, request.scope, ctx.clock())
        return None
    remembered = await ctx.storage.consents.get(current.user.id, request.client.client_id)
    if not authorization.consent_needed(request, remembered.scopes if remembered is not None else ()):
        return None
    if request.prompt_none:
        raise ConsentRequired()
    return ConsentNeeded(client=request.client, scopes=request.scope, confirmation=await _issued(ctx, current, request))


def _allowing(request: AuthorizationRequest) -> dict[str, Any]:
    return {"client_id": request.client.client_id, "redirect_uri": request.redirect_uri, "scope": list(request.scope)}


async def _issued(ctx: Context, current: SignedIn, request: AuthorizationRequest) -> str:
    value = ctx.random(32)
    await ctx.storage.challenges.put(
        PendingChallenge(
            id=digest(value),
            challenge=value,
            ceremony="consent",
            browser=digest(confirmations.session_bound(ctx, current, CONFIRMATION_LABEL)),
            user_id=current.user.id,
            pending_user=_allowing(request),
            expires_at=ctx.clock() + CONFIRMATION_LIFETIME,
        )
    )
    return b64url_encode(value)


async def _taken(ctx: Context, current: SignedIn, request: AuthorizationRequest, confirmation: str) -> bool:
    """Take the confirmation (used up whatever follows); True if this page issued it to this session for this
    request, and it has not expired."""
    try:
        value = b64url_decode(confirmation, field="confirmation")
    except MalformedResponse:
        return False
    pending = await ctx.storage.challenges.take(digest(value))
    if pending is None or pending.ceremony != "consent":
        return False
    session = digest(confirmations.session_bound(ctx, current, CONFIRMATION_LABEL))
    return (
        hmac.compare_digest(pending.browser, session)
        and pending.user_id == current.user.id
        and pending.pending_user == _allowing(request)
        and ctx.clock() < pending.expires_at
    )


async def connected_apps(ctx: Context, user_id: str) -> list[ConnectedApp]:
    """The clients the person consented to, oldest first."""
    apps = []
    for consent in await ctx.storage.consents.list_for_user(user_id):
        registered = await oidc_clients.get(ctx, consent.client_id)
        apps.append(
            ConnectedApp(
                client_id=consent.client_id,
                name=registered.name if registered is not None else consent.client_id,
                scopes=tuple(scope for scope in SCOPES if scope in consent.scopes),
                granted_at=consent.granted_at,
                updated_at=consent.updated_at,
            )
        )
    return apps


async def withdraw(ctx: Context, client: Client, current: SignedIn, client_id: str) -> None:
    """Forget the person's consent to the client and revoke their refresh tokens for it, so that it loses offline
    access at once (access tokens a refresh issued follow their refresh token; the others expire with their
    session or within minutes). The client asks for consent again next time.

    Raises:
        UnknownConsent: the person has no consent remembered for this client.
    """
    async with audited(ctx, client, "oidc.consent_withdrawn") as audit:
        audit.user_id = current.user.id
        audit.detail["client_id"] = client_id[:64]
        if await ctx.storage.consents.get(current.user.id, client_id) is None:
            raise UnknownConsent()
        audit.detail["revoked_refresh_tokens"] = await ctx.storage.refresh_tokens.revoke_for_user(
            current.user.id, client_id=client_id
        )
        await ctx.storage.consents.withdraw(current.user.id, client_id)
