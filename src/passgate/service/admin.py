"""What an administrator does: find and look at accounts, disable, enable and delete them, end their sessions,
remove their passkeys, read the event log, and manage OpenID Connect clients and apps.

Every action is an event of type `admin.*` whose detail names the admin key that asked (`cli` for the command
line). Disabling and deleting are made here, in one place each, every change of each in one transaction
(passgate.store.base.AccountAdminStore); back-channel logout for the sessions they end is queued right after.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from passgate.core.apps import App, AppKey
from passgate.core.encoding import b64url_encode
from passgate.core.errors import InvalidRequest, NotFound
from passgate.core.oidc_clients import OidcClient
from passgate.service import account, apps, backchannel, oidc_clients, sessions, webhooks
from passgate.service.context import Audit, Client, Context, audited, event_of
from passgate.store.base import Credential, Event, EventQuery, Session, User, WebhookDelivery, WebhookEndpoint

MAX_PAGE = 200
MAX_SEARCH = 255  # the longest field searched (an external id)
EXPORT_BATCH = 500
RECENT_EVENTS = 20
PSEUDONYM_LABEL = b"passgate deleted user v1"


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who acts: an admin key's name (`cli` for the command line) and the request it came with."""

    admin_key: str
    client: Client


@dataclass(frozen=True, kw_only=True)
class UserPage:
    users: list[User]
    next_cursor: str | None  # pass as `cursor` for the next page; None on the last


@dataclass(frozen=True, kw_only=True)
class Recovery:
    backup_codes_left: int
    email_verified: bool
    password: bool


@dataclass(frozen=True, kw_only=True)
class UserDetails:
    user: User
    passkeys: list[Credential]
    sessions: list[Session]
    recovery: Recovery
    recent_events: list[Event]


@dataclass(frozen=True, kw_only=True)
class Ended:
    """Sessions an action ended, and the back-channel logout tokens queued for them."""

    sessions: int
    logout_tokens: int


@dataclass(frozen=True, kw_only=True)
class EventPage:
    events: list[Event]
    next_cursor: str | None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def user_json(user: User) -> dict[str, Any]:
    """An account as the admin API and `--json` show it."""
    return {
        "id": user.id,
        "username": user.username,
        "displayName": user.display_name,
        "email": user.email,
        "emailVerified": user.email_verified_at is not None,
        "externalId": user.external_id,
        "createdAt": _iso(user.created_at),
        "disabledAt": _iso(user.disabled_at),
    }


def event_json(event: Event) -> dict[str, Any]:
    """An event as the admin API, its export and `--json` show it."""
    return {
        "id": event.id,
        "type": event.type,
        "outcome": event.outcome,
        "reason": event.reason,
        "userId": event.user_id,
        "credentialId": b64url_encode(event.credential_id) if event.credential_id else None,
        "ip": event.ip,
        "userAgent": event.user_agent,
        "detail": event.detail,
        "createdAt": _iso(event.created_at),
    }


def pseudonym(ctx: Context, user_id: str) -> str:
    """The stable stand-in for a deleted account's id in its events: an HMAC under the secret key, so the same
    person's events stay together and nobody without the key can tell whose they were."""
    mac = hmac.new(ctx.rp.secret_key, PSEUDONYM_LABEL + user_id.encode(), hashlib.sha256).digest()
    return "anon_" + base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode()


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}.")
    return limit


async def user(ctx: Context, user_id: str) -> User:
    """Raises NotFound."""
    found = await ctx.storage.users.get(user_id)
    if found is None:
        raise NotFound("There is no account with this id.")
    return found


async def find(ctx: Context, name_or_id: str) -> User | None:
    """The account with this username, else with this id (the command line takes either)."""
    by_name = await ctx.storage.users.by_username(name_or_id) if len(name_or_id) <= 64 else None
    return by_name or await ctx.storage.users.get(name_or_id)


async def list_users(
    ctx: Context, *, search: str | None = None, cursor: str | None = None, limit: int = 50
) -> UserPage:
    """A page of accounts in a stable order (by id); `search` matches username, email or external id.

    Raises:
        InvalidRequest: `limit` out of range, or a search or cursor longer than any account's field.
    """
    limit = _limit(limit)
    if len(search or "") > MAX_SEARCH or len(cursor or "") > MAX_SEARCH:
        raise InvalidRequest(f"search and cursor must be at most {MAX_SEARCH} characters.")
    found = await ctx.storage.admin.list_users(search=search or None, after=cursor or None, limit=limit + 1)
    more = len(found) > limit
    found = found[:limit]
    return UserPage(users=found, next_cursor=found[-1].id if more else None)


async def details(ctx: Context, user_id: str) -> UserDetails:
    """An account with its passkeys, sessions, ways to recover and latest events. Raises NotFound."""
    found = await user(ctx, user_id)
    return UserDetails(
        user=found,
        passkeys=await ctx.storage.credentials.list_for_user(found.id),
        sessions=await ctx.storage.admin.sessions_for_user(found.id),
        recovery=Recovery(
            backup_codes_left=len(await ctx.storage.backup_codes.unused(found.id)),
            email_verified=found.email is not None and found.email_verified_at is not None,
            password=await ctx.storage.passwords.get(found.id) is not None,
        ),
        recent_events=await ctx.storage.admin.events(EventQuery(user_id=found.id), limit=RECENT_EVENTS),
    )


def _event(ctx: Context, actor: Actor, type_: str, user_id: str, **detail: Any) -> Event:
    audit = Audit(type=type_, user_id=user_id, detail={"admin_key": actor.admin_key, **detail})
    return event_of(ctx, actor.client, audit, outcome="success", reason=None)


async def disable(ctx: Context, actor: Actor, user_id: str) -> Ended:
    """Disable the account: from now on no ceremony or recovery lets it in (`account_disabled`). Its sessions end
    and its refresh tokens are revoked in the same transaction, so an open session stops working at once.

    Raises:
        NotFound: no such account.
    """
    async with audited(ctx, actor.client, "admin.user.disable") as audit:
        audit.user_id, audit.detail["admin_key"] = user_id, actor.admin_key
        event = _event(ctx, actor, "admin.user.disable", user_id)
        outbox = webhooks.with_sessions_ended(ctx, user_id, webhooks.user_disabled(ctx, user_id), "user_disabled")
        ended = await ctx.storage.admin.disable(user_id, ctx.clock(), event=event, outbox=outbox)
        if ended is None:
            raise NotFound("There is no account with this id.")
        audit.recorded = True
    webhooks.wake(ctx)
    return Ended(sessions=len(ended), logout_tokens=await backchannel.sessions_ended(ctx, ended))


async def enable(ctx: Context, actor: Actor, user_id: str) -> None:
    """Enable a disabled account again: its passkeys and recovery ways sign in as before. Raises NotFound."""
    async with audited(ctx, actor.client, "admin.user.enable") as audit:
        audit.user_id, audit.detail["admin_key"] = user_id, actor.admin_key
        if not await ctx.storage.admin.enable(user_id, event=_event(ctx, actor, "admin.user.enable", user_id)):
            raise NotFound("There is no account with this id.")
        audit.recorded = True


async def delete(ctx: Context, actor: Actor, user_id: str) -> Ended:
    """Delete the account and erase the person's data (store.base.AccountAdminStore.delete_user); their events
    stay under a pseudonym. The clients their sessions signed in to are told by back-channel logout first.

    Raises:
        NotFound: no such account.
    """
    alias = pseudonym(ctx, user_id)
    async with audited(ctx, actor.client, "admin.user.delete") as audit:
        audit.user_id, audit.detail["admin_key"] = alias, actor.admin_key
        await user(ctx, user_id)
        # Logout tokens are queued from what the sessions' clients were told; those records go with the account.
        signed_out = await ctx.storage.sessions.delete_for_user(
            user_id, outbox=webhooks.sessions_ended(ctx, user_id, "user_deleted")
        )
        logout_tokens = await backchannel.sessions_ended(ctx, signed_out)
        event = _event(ctx, actor, "admin.user.delete", alias)
        outbox = webhooks.with_sessions_ended(ctx, user_id, webhooks.user_deleted(ctx, user_id), "user_deleted")
        ended = await ctx.storage.admin.delete_user(user_id, pseudonym=alias, event=event, outbox=outbox)
        if ended is None:
            raise NotFound("There is no account with this id.")
        audit.recorded = True
    webhooks.wake(ctx)
    return Ended(sessions=len(signed_out) + len(ended), logout_tokens=logout_tokens)


async def end_sessions(ctx: Context, actor: Actor, user_id: str) -> sessions.EndedEverywhere:
    """End every session of the account, with back-channel logout and its refresh tokens revoked (the same as
    `passgate users sign-out`). Raises NotFound."""
    return await sessions.end_everywhere(ctx, actor.client, await user(ctx, user_id), admin_key=actor.admin_key)


async def end_session(ctx: Context, actor: Actor, user_id: str, sid: str) -> None:
    """End one of the account's sessions, named by its public id (`sid`), with back-channel logout.

    Raises:
        NotFound: no such account, or no such session of it.
    """
    async with audited(ctx, actor.client, "admin.session.end") as audit:
        audit.user_id, audit.detail["admin_key"] = user_id, actor.admin_key
        found = await ctx.storage.sessions.by_sid(sid) if sid and len(sid) <= 64 else None
        if found is None or found.user_id != user_id:
            raise NotFound("The account has no session with this id.")
        audit.detail["sid"] = sid
        await ctx.storage.sessions.delete(
            found.token_hash, outbox=webhooks.session_ended(ctx, user_id, found.token_hash, "ended_by_admin")
        )
        webhooks.wake(ctx)
        audit.detail["logout_tokens"] = await backchannel.sessions_ended(ctx, [found.token_hash])


async def passkeys(ctx: Context, user_id: str) -> list[Credential]:
    """Raises NotFound."""
    return await ctx.storage.credentials.list_for_user((await user(ctx, user_id)).id)


async def remove_passkey(ctx: Context, actor: Actor, user_id: str, credential_id: bytes) -> None:
    """Remove one of the account's passkeys as the user's own removal does (sessions it opened end, the user is
    told by email). Raises NotFound, UnknownCredential or LastPasskey."""
    await account.remove_for(ctx, actor.client, await user(ctx, user_id), credential_id, admin_key=actor.admin_key)


async def events(ctx: Context, query: EventQuery, *, limit: int = 50) -> EventPage:
    """A page of events, newest first; `next_cursor` continues it."""
    limit = _limit(limit)
    found = await ctx.storage.admin.events(query, limit=limit + 1)
    more = len(found) > limit
    found = found[:limit]
    last = found[-1].id if more and found else None
    return EventPage(events=found, next_cursor=str(last) if last is not None else None)


def event_cursor(cursor: str | None) -> int | None:
    """A page's cursor as the id it continues before. Raises InvalidRequest."""
    if not cursor:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidRequest("cursor is not one this API gave.")
    return int(cursor)


async def export_events(ctx: Context, query: EventQuery) -> AsyncIterator[Event]:
    """Every event matching `query`, newest first, read in batches by id: never all in memory."""
    before = query.before_id
    while True:
        batch = await ctx.storage.admin.events(
            EventQuery(
                user_id=query.user_id,
                type=query.type,
                outcome=query.outcome,
                since=query.since,
                until=query.until,
                before_id=before,
            ),
            limit=EXPORT_BATCH,
        )
        for found in batch:
            yield found
        if len(batch) < EXPORT_BATCH:
            return
        before = batch[-1].id


async def list_clients(ctx: Context) -> list[OidcClient]:
    """The configuration file's clients, then the stored ones."""
    return await oidc_clients.list_clients(ctx)


async def list_apps(ctx: Context) -> list[App]:
    return await ctx.storage.apps.list_apps()


async def add_client(ctx: Context, actor: Actor, **settings: Any) -> tuple[OidcClient, str | None]:
    """Add an OpenID Connect client (passgate.service.oidc_clients.add, whose errors it raises)."""
    async with audited(ctx, actor.client, "admin.client.add") as audit:
        audit.detail["admin_key"] = actor.admin_key
        added, secret = await oidc_clients.add(ctx, **settings)
        audit.detail["client_id"] = added.client_id
    return added, secret


async def remove_client(ctx: Context, actor: Actor, client_id: str) -> None:
    """Remove a stored client and its consents. Raises NotFound (or InvalidRequest for a file client)."""
    async with audited(ctx, actor.client, "admin.client.remove") as audit:
        audit.detail.update({"admin_key": actor.admin_key, "client_id": client_id[:64]})
        outcome = await oidc_clients.remove(ctx, client_id)
        if outcome == "from_file":
            raise InvalidRequest("This client is set in the configuration file: remove it there.")
        if outcome == "not_found":
            raise NotFound("There is no client with this client_id.")


async def add_app(
    ctx: Context, actor: Actor, *, name: str, origins: Iterable[str], rp_id: str | None, policy: str
) -> tuple[App, AppKey, str]:
    """Register an app of the passkey API with its first key (passgate.service.apps.add, whose errors it raises)."""
    async with audited(ctx, actor.client, "admin.app.add") as audit:
        audit.detail["admin_key"] = actor.admin_key
        added = await apps.add(ctx, name=name, origins=origins, rp_id=rp_id, policy=policy)
        audit.detail["app_id"] = added[0].app_id
    return added


async def remove_app(ctx: Context, actor: Actor, app_id: str) -> None:
    """Remove an app with its keys, users and passkeys. Raises NotFound."""
    async with audited(ctx, actor.client, "admin.app.remove") as audit:
        audit.detail.update({"admin_key": actor.admin_key, "app_id": app_id[:32]})
        if not await ctx.storage.apps.remove(app_id):
            raise NotFound("There is no app with this id.")


async def add_webhook(ctx: Context, actor: Actor, *, url: str, events: Sequence[str]) -> webhooks.AddedEndpoint:
    """Subscribe an endpoint (passgate.service.webhooks.add_endpoint, whose errors it raises); its secret is
    in the answer only."""
    async with audited(ctx, actor.client, "admin.webhook.add") as audit:
        audit.detail["admin_key"] = actor.admin_key
        added = await webhooks.add_endpoint(ctx, url, events)
        audit.detail["endpoint_id"] = added.endpoint.id
    return added


async def _stored_endpoint(ctx: Context, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await webhooks.get_endpoint(ctx, endpoint_id)
    if endpoint.source == "file":
        raise InvalidRequest("This endpoint is set in the configuration file: change it there.")
    return endpoint


async def remove_webhook(ctx: Context, actor: Actor, endpoint_id: str) -> None:
    """Remove a stored endpoint with its deliveries. Raises UnknownWebhookEndpoint, or InvalidRequest for one
    of the configuration file's (it would come back at the next start)."""
    async with audited(ctx, actor.client, "admin.webhook.remove") as audit:
        audit.detail.update({"admin_key": actor.admin_key, "endpoint_id": endpoint_id[:64]})
        await _stored_endpoint(ctx, endpoint_id)
        await webhooks.remove_endpoint(ctx, endpoint_id)


async def enable_webhook(ctx: Context, actor: Actor, endpoint_id: str) -> WebhookEndpoint:
    """Turn an endpoint disabled by a 410 Gone on again. Raises UnknownWebhookEndpoint."""
    async with audited(ctx, actor.client, "admin.webhook.enable") as audit:
        audit.detail.update({"admin_key": actor.admin_key, "endpoint_id": endpoint_id[:64]})
        return await webhooks.enable_endpoint(ctx, endpoint_id)


async def rotate_webhook_secret(ctx: Context, actor: Actor, endpoint_id: str) -> str:
    """A new secret for a stored endpoint, both signing until the next rotation; returns it. Raises
    UnknownWebhookEndpoint, or InvalidRequest for one of the configuration file's."""
    async with audited(ctx, actor.client, "admin.webhook.rotate") as audit:
        audit.detail.update({"admin_key": actor.admin_key, "endpoint_id": endpoint_id[:64]})
        await _stored_endpoint(ctx, endpoint_id)
        return await webhooks.rotate_secret(ctx, endpoint_id)


async def webhook_deliveries(ctx: Context, endpoint_id: str, *, limit: int = 50) -> list[WebhookDelivery]:
    """The endpoint's delivery log, newest first. Raises UnknownWebhookEndpoint, or InvalidRequest for a limit
    out of 1 to MAX_PAGE."""
    return await webhooks.deliveries(ctx, endpoint_id, limit=_limit(limit))


async def redeliver_webhook(ctx: Context, actor: Actor, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again now, with its webhook-id. Raises UnknownWebhookDelivery."""
    async with audited(ctx, actor.client, "admin.webhook.redeliver") as audit:
        audit.detail.update({"admin_key": actor.admin_key, "delivery_id": delivery_id})
        return await webhooks.redeliver(ctx, delivery_id)
