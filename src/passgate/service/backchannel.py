"""OpenID Connect Back-Channel Logout 1.0: when a session ends, each client that received tokens for it is told.

A client is recorded for a session when it exchanges a code (`recorded`). When sessions end, whatever ended them
(signing out, RP-initiated logout, removing the passkey that opened them, an administrator), `sessions_ended`
takes their clients (atomically: of two nodes, one gets each) and queues one delivery per client with a
`backchannel_logout_uri` in the durable outbox of `passgate.service.mail_queue`, kind "logout_token": the
request that ended the session neither waits for a client nor fails with it. The delivery worker signs a fresh
logout token at each attempt (it lives two minutes, retries come later) and POSTs it; a 2xx answer is delivery,
anything else is retried with the outbox's backoff and kept as failed after its last attempt.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import timedelta

import httpx

from passgate.service import keys, mail_queue, oidc_clients
from passgate.service.context import Context
from passgate.store.base import Session, SessionClient

LOGOUT_TOKEN_TYP = "logout+jwt"  # noqa: S105 (a header value, not a secret)
LOGOUT_TOKEN_LIFETIME = timedelta(minutes=2)
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
TIMEOUT_SECONDS = 10.0


class DeliveryFailed(Exception):
    """The client's back-channel logout URI did not accept the logout token (its answer or the network's)."""


async def recorded(ctx: Context, session: Session, client_id: str) -> None:
    """Remember that `client_id` received tokens for `session`."""
    if session.sid is None:
        return
    entry = SessionClient(
        token_hash=session.token_hash,
        sid=session.sid,
        user_id=session.user_id,
        client_id=client_id,
        recorded_at=ctx.clock(),
    )
    await ctx.storage.session_clients.record(entry)


async def sessions_ended(ctx: Context, token_hashes: Sequence[bytes]) -> int:
    """Queue a logout token for each client that received tokens for these (deleted) sessions and has a
    back-channel logout URI; returns how many were queued."""
    queued = 0
    for entry in await ctx.storage.session_clients.take(list(token_hashes)):
        client = await oidc_clients.get(ctx, entry.client_id)
        if client is None or not client.backchannel_logout_uri:
            continue
        job = json.dumps({"sid": entry.sid, "sub": entry.user_id})
        await mail_queue.enqueue(ctx, entry.client_id, "", job, kind="logout_token")
        queued += 1
    return queued


async def logout_token(ctx: Context, *, client_id: str, sub: str, sid: str) -> str:
    """A logout token (Back-Channel Logout 1.0 section 2.4), signed with the ID tokens' key."""
    now = int(ctx.clock().timestamp())
    claims = {
        "iss": ctx.rp.public_url.rstrip("/"),
        "aud": client_id,
        "iat": now,
        "exp": now + int(LOGOUT_TOKEN_LIFETIME.total_seconds()),
        "jti": secrets.token_urlsafe(16),
        "sub": sub,
        "sid": sid,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    return await keys.sign(ctx, claims, typ=LOGOUT_TOKEN_TYP, alg="RS256")


async def deliver(ctx: Context, client_id: str, job: str) -> None:
    """POST a fresh logout token to the client's back-channel logout URI (nothing if it has none any more).

    Raises:
        DeliveryFailed: the client answered other than 2xx, or could not be reached.
    """
    client = await oidc_clients.get(ctx, client_id)
    if client is None or not client.backchannel_logout_uri:
        return
    what = json.loads(job)
    token = await logout_token(ctx, client_id=client_id, sub=str(what["sub"]), sid=str(what["sid"]))
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as http:
            answer = await http.post(client.backchannel_logout_uri, data={"logout_token": token})
    except httpx.HTTPError as exc:
        raise DeliveryFailed(type(exc).__name__) from exc
    if not answer.is_success:
        raise DeliveryFailed(f"HTTP {answer.status_code}")
