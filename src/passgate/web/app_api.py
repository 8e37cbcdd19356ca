"""The app passkey API (/api/v1): server-to-server endpoints, authenticated with an app's API key, and the browser
endpoints the app's pages call with no secret.

The browser endpoints may be called from the app's own site, where Passgate's cookies are third-party: the
ceremony binding travels in the `Passgate-Ceremony` response header of `begin`, which the page sends back on
`complete`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from passgate.core.apps import App
from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.core.errors import NotFound
from passgate.service import apps
from passgate.store.base import Credential
from passgate.web.context import CEREMONY_HEADER, bearer_token, client_of, ctx_of, settings_of
from passgate.web.requests import read_json

router = APIRouter(prefix="/api/v1", tags=["app passkey API"])

NO_STORE = {"Cache-Control": "no-store"}


def app_ceremony_token(request: Request) -> str | None:
    """The ceremony binding an app's page sends back: the `Passgate-Ceremony` header only. Unlike the first-party
    API (web.context.ceremony_token), never a cookie: the page is on the app's site, where Passgate's cookies are
    third-party ones."""
    return request.headers.get(CEREMONY_HEADER, "").strip() or None


def set_ceremony_header(response: Response, token: str) -> None:
    response.headers[CEREMONY_HEADER] = token


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json(request, settings_of(request))
    return body if isinstance(body, dict) else {}


async def _app(request: Request) -> App:
    return await apps.authenticate(ctx_of(request), bearer_token(request))


def _passkey_json(credential: Credential) -> dict[str, Any]:
    return {
        "id": b64url_encode(credential.credential_id),
        "userId": credential.user_id,
        "nickname": credential.nickname,
        "createdAt": credential.created_at.isoformat(),
        "lastUsedAt": credential.last_used_at.isoformat() if credential.last_used_at else None,
        "backedUp": credential.backed_up,
        "transports": list(credential.transports),
    }


def _credential_id(value: str) -> bytes:
    try:
        return b64url_decode(value)
    except ValueError as exc:
        raise NotFound() from exc


# Server to server: Authorization: Bearer pg_sk_...


@router.post("/registrations")
async def create_registration(request: Request) -> JSONResponse:
    """A single-use registration token for one of the app's users, `{userId, username, displayName}`."""
    body = await _body(request)  # a malformed body is refused alike for every caller, before the key
    app = await _app(request)
    issued = await apps.create_registration(
        ctx_of(request),
        app,
        user_id=body.get("userId"),
        username=body.get("username"),
        display_name=body.get("displayName"),
    )
    return JSONResponse(
        {"registrationToken": issued.token, "expiresAt": issued.expires_at.isoformat()}, headers=NO_STORE
    )


@router.post("/signins/verify")
async def verify_sign_in(request: Request) -> JSONResponse:
    """Who signed in: the claims of a sign-in token of this app, once (then 410 token_used)."""
    body = await _body(request)  # a malformed body is refused alike for every caller, before the key
    app = await _app(request)
    claims = await apps.verify_sign_in(ctx_of(request), client_of(request), app, body.get("token"))
    return JSONResponse(
        {
            "userId": claims["sub"],
            "credentialId": claims["cred"],
            "userVerified": claims["uv"],
            "backedUp": claims["bs"],
            "amr": claims["amr"],
            "acr": claims.get("acr"),
            "origin": claims["origin"],
            "rpId": claims["rp_id"],
            "signedInAt": claims["iat"],
        },
        headers=NO_STORE,
    )


@router.get("/users/{user_id:path}/passkeys")
async def list_passkeys(request: Request, user_id: str) -> JSONResponse:
    app = await _app(request)
    found = await apps.passkeys(ctx_of(request), app, user_id)
    return JSONResponse({"passkeys": [_passkey_json(c) for c in found]}, headers=NO_STORE)


@router.patch("/passkeys/{credential_id}")
async def rename_passkey(request: Request, credential_id: str) -> JSONResponse:
    body = await _body(request)  # a malformed body is refused alike for every caller, before the key
    app = await _app(request)
    renamed = await apps.rename_passkey(ctx_of(request), app, _credential_id(credential_id), body.get("nickname"))
    return JSONResponse(_passkey_json(renamed), headers=NO_STORE)


@router.delete("/passkeys/{credential_id}")
async def remove_passkey(request: Request, credential_id: str) -> JSONResponse:
    await _body(request)  # none is needed; a malformed one is refused as on every route
    app = await _app(request)
    await apps.remove_passkey(ctx_of(request), client_of(request), app, _credential_id(credential_id))
    return JSONResponse({"removed": True}, headers=NO_STORE)


@router.delete("/users/{user_id:path}")
async def remove_user(request: Request, user_id: str) -> JSONResponse:
    await _body(request)  # none is needed; a malformed one is refused as on every route
    app = await _app(request)
    await apps.remove_user(ctx_of(request), client_of(request), app, user_id)
    return JSONResponse({"removed": True}, headers=NO_STORE)


# From the browser: no secret


def _browser_client(request: Request) -> Any:
    return replace(client_of(request), browser_token=app_ceremony_token(request), session_token=None)


@router.post("/passkeys/register/begin")
async def register_begin(request: Request) -> JSONResponse:
    """Creation options for the user a registration token names, `{registrationToken}`."""
    body = await _body(request)
    options, browser = await apps.register_begin(
        ctx_of(request), _browser_client(request), body.get("registrationToken")
    )
    response = JSONResponse(options, headers=NO_STORE)
    set_ceremony_header(response, browser)
    return response


@router.post("/passkeys/register/complete")
async def register_complete(request: Request) -> JSONResponse:
    """Verify and store the passkey (the RegistrationResponseJSON)."""
    body = await read_json(request, settings_of(request))
    credential = await apps.register_complete(ctx_of(request), _browser_client(request), body)
    return JSONResponse({"verified": True, "credentialId": b64url_encode(credential.credential_id)}, headers=NO_STORE)


@router.post("/passkeys/login/begin")
async def login_begin(request: Request) -> JSONResponse:
    """Request options, `{appId, userId?}`: discoverable, or the user's passkeys."""
    body = await _body(request)
    options, browser = await apps.login_begin(
        ctx_of(request), _browser_client(request), body.get("appId"), body.get("userId")
    )
    response = JSONResponse(options, headers=NO_STORE)
    set_ceremony_header(response, browser)
    return response


@router.post("/passkeys/login/complete")
async def login_complete(request: Request) -> JSONResponse:
    """Verify the assertion (the AuthenticationResponseJSON); answers a single-use sign-in token."""
    body = await read_json(request, settings_of(request))
    signed = await apps.login_complete(ctx_of(request), _browser_client(request), body)
    return JSONResponse({"token": signed.token, "expiresAt": signed.expires_at.isoformat()}, headers=NO_STORE)
