"""The admin API (/admin/v1): support and operations, authenticated with an admin key (`Authorization: Bearer
pga_...`, made with `passgate admin keys add`) and never with a person's session cookie or session token.

Each route needs one scope of the key: users:read, users:write, sessions:write, events:read or apps:write
(OpenID Connect clients, apps and webhook endpoints, read and changed). Every change is an `admin.*` event naming
the key.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import JSONResponse, Response, StreamingResponse

from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.core.errors import InvalidRequest, NotFound
from passgate.core.oidc_clients import DEFAULT_SCOPES, OidcClient
from passgate.service import admin, admin_keys, webhooks
from passgate.service.admin import Actor
from passgate.service.context import Client
from passgate.store.base import AdminKey, AdminScope, Credential, EventQuery, Session, WebhookDelivery, WebhookEndpoint
from passgate.web.context import client_of, ctx_of, settings_of
from passgate.web.requests import read_json

BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="adminKey",
    bearerFormat="pga_...",
    description="An admin key made with `passgate admin keys add NAME --scope ...`.",
)
NO_STORE = {"Cache-Control": "no-store"}
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

router = APIRouter(prefix="/admin/v1", tags=["admin API"])
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


def needs(scope: AdminScope) -> Callable[..., Awaitable[Actor]]:
    """The route's dependency: the admin key of the request, which must have `scope`.

    A body is read first, as every JSON route of Passgate reads it: a malformed one is refused (400) alike for every
    caller, before the key. Raises InvalidAdminKey (none, unknown, revoked, or not an admin key: a session cookie is
    never looked at) or InsufficientScope."""

    async def actor(request: Request, credentials: Bearer) -> Actor:
        if request.method in BODY_METHODS:
            request.state.admin_body = await read_json(request, settings_of(request))
        key: AdminKey = await admin_keys.authenticate(ctx_of(request), credentials.credentials if credentials else None)
        admin_keys.require_scope(key, scope)
        seen = client_of(request)
        return Actor(admin_key=key.name, client=Client(ip=seen.ip, user_agent=seen.user_agent))

    return actor


UsersRead = Annotated[Actor, Depends(needs("users:read"))]
UsersWrite = Annotated[Actor, Depends(needs("users:write"))]
SessionsWrite = Annotated[Actor, Depends(needs("sessions:write"))]
EventsRead = Annotated[Actor, Depends(needs("events:read"))]
AppsWrite = Annotated[Actor, Depends(needs("apps:write"))]


def _body(request: Request) -> dict[str, Any]:
    """The JSON object `needs` read before the key."""
    body = request.state.admin_body
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _passkey_json(credential: Credential) -> dict[str, Any]:
    return {
        "id": b64url_encode(credential.credential_id),
        "nickname": credential.nickname,
        "aaguid": credential.aaguid,
        "createdAt": _moment(credential.created_at),
        "lastUsedAt": _moment(credential.last_used_at),
        "backupEligible": credential.backup_eligible,
        "backedUp": credential.backed_up,
        "userVerified": credential.user_verified,
        "transports": list(credential.transports),
        "createdBy": credential.created_by,
    }


def _session_json(session: Session) -> dict[str, Any]:
    return {
        "sid": session.sid,
        "kind": session.kind,
        "createdAt": _moment(session.created_at),
        "lastSeenAt": _moment(session.last_seen_at),
        "expiresAt": _moment(session.expires_at),
        "authenticatedAt": _moment(session.authenticated_at),
        "passkeyId": b64url_encode(session.credential_id) if session.credential_id else None,
    }


def _client_json(client: OidcClient) -> dict[str, Any]:
    return {
        "clientId": client.client_id,
        "name": client.name,
        "public": client.public,
        "firstParty": client.first_party,
        "redirectUris": list(client.redirect_uris),
        "postLogoutRedirectUris": list(client.post_logout_redirect_uris),
        "backchannelLogoutUri": client.backchannel_logout_uri,
        "scopes": list(client.scopes),
        "source": client.source,
        "createdAt": _moment(client.created_at),
    }


# Users


@router.get("/users")
async def list_users(
    request: Request,
    _actor: UsersRead,
    search: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> JSONResponse:
    """Accounts in a stable order, `limit` a page; `search` matches username, email or external id;
    `nextCursor` continues."""
    page = await admin.list_users(ctx_of(request), search=search, cursor=cursor, limit=limit)
    return JSONResponse(
        {"users": [admin.user_json(u) for u in page.users], "nextCursor": page.next_cursor}, headers=NO_STORE
    )


@router.get("/users/{user_id}")
async def get_user(request: Request, user_id: str, _actor: UsersRead) -> JSONResponse:
    """The account with its passkeys, sessions, recovery state and latest events."""
    found = await admin.details(ctx_of(request), user_id)
    return JSONResponse(
        {
            **admin.user_json(found.user),
            "passkeys": [_passkey_json(c) for c in found.passkeys],
            "sessions": [_session_json(s) for s in found.sessions],
            "recovery": {
                "backupCodesLeft": found.recovery.backup_codes_left,
                "emailVerified": found.recovery.email_verified,
                "password": found.recovery.password,
            },
            "recentEvents": [admin.event_json(e) for e in found.recent_events],
        },
        headers=NO_STORE,
    )


@router.post("/users/{user_id}/disable")
async def disable_user(request: Request, user_id: str, actor: UsersWrite) -> JSONResponse:
    """Disable the account: no ceremony or recovery lets it in, and its sessions end at once."""
    ended = await admin.disable(ctx_of(request), actor, user_id)
    return JSONResponse({"disabled": True, "sessionsEnded": ended.sessions, "logoutTokens": ended.logout_tokens})


@router.post("/users/{user_id}/enable")
async def enable_user(request: Request, user_id: str, actor: UsersWrite) -> JSONResponse:
    await admin.enable(ctx_of(request), actor, user_id)
    return JSONResponse({"disabled": False})


@router.delete("/users/{user_id}")
async def delete_user(request: Request, user_id: str, actor: UsersWrite) -> JSONResponse:
    """Delete the account and erase the person's data; their events stay, pseudonymised."""
    ended = await admin.delete(ctx_of(request), actor, user_id)
    return JSONResponse({"deleted": True, "sessionsEnded": ended.sessions, "logoutTokens": ended.logout_tokens})


# Passkeys


@router.get("/users/{user_id}/passkeys")
async def list_passkeys(request: Request, user_id: str, _actor: UsersRead) -> JSONResponse:
    found = await admin.passkeys(ctx_of(request), user_id)
    return JSONResponse({"passkeys": [_passkey_json(c) for c in found]}, headers=NO_STORE)


@router.delete("/users/{user_id}/passkeys/{passkey_id}")
async def remove_passkey(request: Request, user_id: str, passkey_id: str, actor: UsersWrite) -> Response:
    """Remove a passkey as the user's own removal does: the sessions it opened end, the user is told by email."""
    try:
        credential_id = b64url_decode(passkey_id)
    except ValueError as exc:
        raise NotFound("The account has no passkey with this id.") from exc
    await admin.remove_passkey(ctx_of(request), actor, user_id, credential_id)
    return Response(status_code=204)


# Sessions


@router.get("/users/{user_id}/sessions")
async def list_sessions(request: Request, user_id: str, _actor: UsersRead) -> JSONResponse:
    found = await admin.details(ctx_of(request), user_id)
    return JSONResponse({"sessions": [_session_json(s) for s in found.sessions]}, headers=NO_STORE)


@router.delete("/users/{user_id}/sessions")
async def end_sessions(request: Request, user_id: str, actor: SessionsWrite) -> JSONResponse:
    """End every session of the account: back-channel logout, refresh tokens revoked."""
    ended = await admin.end_sessions(ctx_of(request), actor, user_id)
    return JSONResponse(
        {
            "sessionsEnded": ended.sessions,
            "logoutTokens": ended.logout_tokens,
            "refreshTokensRevoked": ended.refresh_tokens,
        }
    )


@router.delete("/users/{user_id}/sessions/{sid}")
async def end_session(request: Request, user_id: str, sid: str, actor: SessionsWrite) -> Response:
    await admin.end_session(ctx_of(request), actor, user_id, sid)
    return Response(status_code=204)


# Events


def _time(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be an ISO 8601 date or time.") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _query(
    user_id: str | None, type: str | None, outcome: str | None, since: str | None, until: str | None
) -> EventQuery:
    if outcome not in (None, "success", "failure"):
        raise InvalidRequest("outcome must be success or failure.")
    return EventQuery(
        user_id=user_id or None,
        type=type or None,
        outcome=outcome,
        since=_time("since", since),
        until=_time("until", until),
    )


@router.get("/events")
async def list_events(
    request: Request,
    _actor: EventsRead,
    user_id: str | None = None,
    type: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> JSONResponse:
    """Events newest first, filtered by user, type, outcome and time (`since` included, `until` not)."""
    query = _query(user_id, type, outcome, since, until)
    query = EventQuery(**{**query.__dict__, "before_id": admin.event_cursor(cursor)})
    page = await admin.events(ctx_of(request), query, limit=limit)
    return JSONResponse(
        {"events": [admin.event_json(e) for e in page.events], "nextCursor": page.next_cursor}, headers=NO_STORE
    )


@router.get("/events/export", response_class=StreamingResponse)
async def export_events(
    request: Request,
    _actor: EventsRead,
    user_id: str | None = None,
    type: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> StreamingResponse:
    """Every matching event as NDJSON (one JSON object a line), newest first, streamed in batches."""
    query = _query(user_id, type, outcome, since, until)
    ctx = ctx_of(request)

    async def lines() -> AsyncIterator[bytes]:
        async for event in admin.export_events(ctx, query):
            yield (json.dumps(admin.event_json(event), ensure_ascii=False) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=NO_STORE)


# OpenID Connect clients and apps


@router.get("/clients")
async def list_clients(request: Request, _actor: AppsWrite) -> JSONResponse:
    found = await admin.list_clients(ctx_of(request))
    return JSONResponse({"clients": [_client_json(c) for c in found]}, headers=NO_STORE)


def _strings(body: dict[str, Any], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    value = body.get(name, list(default))
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest(f"{name} must be an array of strings.")
    return tuple(value)


def _optional_string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string.")
    return value


@router.post("/clients")
async def add_client(request: Request, actor: AppsWrite) -> JSONResponse:
    """Add an OpenID Connect client; its secret (confidential clients) is in this answer only."""
    body = _body(request)
    name = _optional_string(body, "name")
    if not name:
        raise InvalidRequest("name is required.")
    added, secret = await admin.add_client(
        ctx_of(request),
        actor,
        name=name,
        redirect_uris=_strings(body, "redirectUris"),
        post_logout_redirect_uris=_strings(body, "postLogoutRedirectUris"),
        backchannel_logout_uri=_optional_string(body, "backchannelLogoutUri"),
        scopes=_strings(body, "scopes", DEFAULT_SCOPES),
        public=body.get("public") is True,
        first_party=body.get("firstParty") is True,
        client_id=_optional_string(body, "clientId"),
    )
    return JSONResponse({**_client_json(added), "clientSecret": secret}, status_code=201, headers=NO_STORE)


@router.delete("/clients/{client_id}")
async def remove_client(request: Request, client_id: str, actor: AppsWrite) -> Response:
    await admin.remove_client(ctx_of(request), actor, client_id)
    return Response(status_code=204)


@router.get("/apps")
async def list_apps(request: Request, _actor: AppsWrite) -> JSONResponse:
    found = await admin.list_apps(ctx_of(request))
    return JSONResponse(
        {
            "apps": [
                {
                    "appId": a.app_id,
                    "name": a.name,
                    "origins": list(a.origins),
                    "rpId": a.rp_id,
                    "policy": a.policy,
                    "createdAt": _moment(a.created_at),
                }
                for a in found
            ]
        },
        headers=NO_STORE,
    )


@router.post("/apps")
async def add_app(request: Request, actor: AppsWrite) -> JSONResponse:
    """Register an app of the passkey API; its first API key is in this answer only."""
    body = _body(request)
    name = _optional_string(body, "name")
    if not name:
        raise InvalidRequest("name is required.")
    app, key, secret = await admin.add_app(
        ctx_of(request),
        actor,
        name=name,
        origins=_strings(body, "origins"),
        rp_id=_optional_string(body, "rpId"),
        policy=_optional_string(body, "policy") or "",
    )
    return JSONResponse(
        {"appId": app.app_id, "name": app.name, "keyId": key.key_id, "apiKey": secret},
        status_code=201,
        headers=NO_STORE,
    )


@router.delete("/apps/{app_id}")
async def remove_app(request: Request, app_id: str, actor: AppsWrite) -> Response:
    await admin.remove_app(ctx_of(request), actor, app_id)
    return Response(status_code=204)


def _endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "source": endpoint.source,
        "enabled": endpoint.enabled,
        "disabledReason": endpoint.disabled_reason,
        "disabledAt": _moment(endpoint.disabled_at),
        "createdAt": _moment(endpoint.created_at),
    }


def _delivery_json(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "endpointId": delivery.endpoint_id,
        "webhookId": delivery.message_id,
        "type": delivery.type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "createdAt": _moment(delivery.created_at),
        "nextAttemptAt": _moment(delivery.next_attempt_at) if delivery.status == "queued" else None,
        "finishedAt": _moment(delivery.finished_at),
        "lastStatus": delivery.last_status,
        "lastError": delivery.last_error,
    }


@router.get("/webhooks")
async def list_webhooks(request: Request, _actor: AppsWrite) -> JSONResponse:
    """The webhook endpoints, the configuration file's and those added here, oldest first."""
    found = await webhooks.list_endpoints(ctx_of(request))
    return JSONResponse({"webhooks": [_endpoint_json(e) for e in found]}, headers=NO_STORE)


@router.post("/webhooks")
async def add_webhook(request: Request, actor: AppsWrite) -> JSONResponse:
    """Subscribe an endpoint (`url`, `events`: types, `group.*` or `*`); its signing secret is in this answer only."""
    body = _body(request)
    url = _optional_string(body, "url")
    if not url:
        raise InvalidRequest("url is required.")
    added = await admin.add_webhook(ctx_of(request), actor, url=url, events=_strings(body, "events", ("*",)))
    return JSONResponse({**_endpoint_json(added.endpoint), "secret": added.secret}, status_code=201, headers=NO_STORE)


@router.delete("/webhooks/{endpoint_id}")
async def remove_webhook(request: Request, endpoint_id: str, actor: AppsWrite) -> Response:
    await admin.remove_webhook(ctx_of(request), actor, endpoint_id)
    return Response(status_code=204)


@router.post("/webhooks/{endpoint_id}/enable")
async def enable_webhook(request: Request, endpoint_id: str, actor: AppsWrite) -> JSONResponse:
    """Turn on an endpoint a `410 Gone` disabled: what was queued for it goes out."""
    endpoint = await admin.enable_webhook(ctx_of(request), actor, endpoint_id)
    return JSONResponse(_endpoint_json(endpoint), headers=NO_STORE)


@router.post("/webhooks/{endpoint_id}/rotate")
async def rotate_webhook_secret(request: Request, endpoint_id: str, actor: AppsWrite) -> JSONResponse:
    """A new signing secret, in this answer only; requests carry both signatures until the next rotation."""
    secret = await admin.rotate_webhook_secret(ctx_of(request), actor, endpoint_id)
    return JSONResponse({"secret": secret}, headers=NO_STORE)


@router.get("/webhooks/{endpoint_id}/deliveries")
async def list_webhook_deliveries(
    request: Request, endpoint_id: str, _actor: AppsWrite, limit: int = 50
) -> JSONResponse:
    """The endpoint's delivery log, newest first: queued, delivered and failed."""
    found = await admin.webhook_deliveries(ctx_of(request), endpoint_id, limit=limit)
    return JSONResponse({"deliveries": [_delivery_json(d) for d in found]}, headers=NO_STORE)


@router.post("/webhooks/deliveries/{delivery_id}/redeliver")
async def redeliver_webhook(request: Request, delivery_id: int, actor: AppsWrite) -> JSONResponse:
    """Send a delivery again now, with the same webhook-id, whatever became of it."""
    delivery = await admin.redeliver_webhook(ctx_of(request), actor, delivery_id)
    return JSONResponse(_delivery_json(delivery), headers=NO_STORE)
