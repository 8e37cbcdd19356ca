"""The JSON API of account life: passkeys, profile, recovery (backup codes, email), activity, connected apps."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from passgate.core import native
from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.core.errors import MalformedResponse, UnknownCredential
from passgate.service import account, consent, passwords, payments, recovery
from passgate.store.base import Event
from passgate.web import schemas
from passgate.web.api import user_json
from passgate.web.context import (
    client_of,
    ctx_of,
    require_signed_in,
    session_response,
    set_ceremony,
)
from passgate.web.requests import request_body, state_changing_body, validate

router = APIRouter(prefix="/auth", tags=["account"])
NO_STORE = {"Cache-Control": "no-store"}


def _credential_id(value: str) -> bytes:
    try:
        return b64url_decode(value, field="credential id")
    except MalformedResponse as exc:
        raise UnknownCredential() from exc


def passkey_json(passkey: account.Passkey) -> dict[str, Any]:
    return {
        "id": passkey.id,
        "name": passkey.label,
        "nickname": passkey.nickname,
        "provider": {
            "name": passkey.provider.name,
            "known": passkey.provider.known,
            "iconLight": passkey.provider.icon_light,
            "iconDark": passkey.provider.icon_dark,
        },
        "synced": passkey.synced,
        "backupEligible": passkey.backup_eligible,
        "transports": list(passkey.transports),
        "createdAt": passkey.created_at.isoformat(),
        "lastUsedAt": passkey.last_used_at.isoformat() if passkey.last_used_at else None,
    }


def event_json(event: Event) -> dict[str, Any]:
    return {
        "type": event.type,
        "outcome": event.outcome,
        "reason": event.reason,
        "credentialId": b64url_encode(event.credential_id) if event.credential_id else None,
        "ip": event.ip,
        "userAgent": event.user_agent,
        "at": event.created_at.isoformat(),
    }


@router.get("/account")
async def get_account(request: Request) -> JSONResponse:
    """Everything the account page shows: profile, passkeys, recovery set-up, step-up state."""
    current = await require_signed_in(request)
    ctx = ctx_of(request)
    user = current.user
    step_up_until = (
        (current.session.authenticated_at + ctx.rp.step_up_window).isoformat()
        if current.session.authenticated_at
        else None
    )
    return JSONResponse(
        {
            "user": user_json(user),
            "email": user.email,
            "emailVerified": user.email_verified_at is not None,
            "backupCodesRemaining": await recovery.codes_remaining(ctx, user.id),
            "passkeys": [passkey_json(p) for p in await account.passkeys(ctx, user.id)],
            "suggestSecondPasskey": await account.show_nudge(ctx, user),
            "session": {"kind": current.session.kind, "stepUpValidUntil": step_up_until},
            "hasPassword": await passwords.has_password(ctx, user.id),
            "passwords": ctx.rp.passwords,
        },
        headers=NO_STORE,
    )


@router.patch("/account", openapi_extra=request_body(schemas.AccountUpdate, "The new display name."))
async def update_account(request: Request) -> JSONResponse:
    body = validate(schemas.AccountUpdate, await state_changing_body(request))
    current = await require_signed_in(request)
    name = await account.set_display_name(ctx_of(request), client_of(request), current, body.displayName)
    return JSONResponse({"user": {**user_json(current.user), "displayName": name}}, headers=NO_STORE)


@router.post("/account/nudge/dismiss")
async def dismiss_nudge(request: Request) -> JSONResponse:
    await state_changing_body(request)
    await account.dismiss_nudge(ctx_of(request), await require_signed_in(request))
    return JSONResponse({"dismissed": True})


@router.get("/passkeys")
async def list_passkeys(request: Request) -> JSONResponse:
    """The signed-in user's passkeys, with provider names and icons."""
    current = await require_signed_in(request)
    return JSONResponse(
        {"passkeys": [passkey_json(p) for p in await account.passkeys(ctx_of(request), current.user.id)]},
        headers=NO_STORE,
    )


@router.get("/passkeys/signal")
async def signal_details(request: Request) -> JSONResponse:
    """What the WebAuthn Signal API calls need: signalAllAcceptedCredentials and signalCurrentUserDetails."""
    current = await require_signed_in(request)
    ctx = ctx_of(request)
    credentials = await ctx.storage.credentials.list_for_user(current.user.id)
    return JSONResponse(
        {
            "rpId": ctx.rp.rp_id,
            "userId": b64url_encode(current.user.user_handle),
            "allAcceptedCredentialIds": [b64url_encode(c.credential_id) for c in credentials],
            "name": current.user.username,
            "displayName": current.user.display_name,
        },
        headers=NO_STORE,
    )


@router.patch("/passkeys/{credential_id}", openapi_extra=request_body(schemas.PasskeyUpdate, "The new nickname."))
async def rename_passkey(request: Request, credential_id: str) -> JSONResponse:
    body = validate(schemas.PasskeyUpdate, await state_changing_body(request))
    current = await require_signed_in(request)
    await account.rename(ctx_of(request), client_of(request), current, _credential_id(credential_id), body.nickname)
    return JSONResponse({"renamed": True})


@router.delete("/passkeys/{credential_id}")
async def remove_passkey(request: Request, credential_id: str) -> JSONResponse:
    """Needs a recent passkey (step-up); refuses the last passkey unless another way back in exists."""
    await state_changing_body(request)
    current = await require_signed_in(request)
    await account.remove(ctx_of(request), client_of(request), current, _credential_id(credential_id))
    return JSONResponse({"removed": True})


@router.get("/events")
async def recent_activity(request: Request) -> JSONResponse:
    """The signed-in user's recent activity, newest first."""
    current = await require_signed_in(request)
    events = await ctx_of(request).storage.events.list(user_id=current.user.id, limit=50)
    return JSONResponse({"events": [event_json(e) for e in events]}, headers=NO_STORE)


def connected_app_json(app: consent.ConnectedApp) -> dict[str, Any]:
    return {
        "clientId": app.client_id,
        "name": app.name,
        "scopes": list(app.scopes),
        "grantedAt": app.granted_at.isoformat(),
        "updatedAt": app.updated_at.isoformat(),
    }


@router.get("/consents")
async def list_consents(request: Request) -> JSONResponse:
    """The applications (OpenID Connect clients that are not first-party) the signed-in user allowed on the
    consent page, with the scopes allowed, oldest first."""
    current = await require_signed_in(request)
    apps = await consent.connected_apps(ctx_of(request), current.user.id)
    return JSONResponse({"consents": [connected_app_json(app) for app in apps]}, headers=NO_STORE)


@router.delete(
    "/consents/{client_id}",
    status_code=204,
    responses={204: {"description": "Withdrawn"}, 404: {"description": "No consent for this client (unknown_consent)"}},
)
async def withdraw_consent(request: Request, client_id: str) -> Response:
    """Withdraw the consent given to an application: its refresh tokens are revoked at once, and it must ask
    again next time."""
    await state_changing_body(request)
    current = await require_signed_in(request)
    await consent.withdraw(ctx_of(request), client_of(request), current, client_id)
    return Response(status_code=204)


@router.post("/recovery/codes")
async def generate_codes(request: Request) -> JSONResponse:
    """A new set of 10 backup codes, shown this once (needs step-up)."""
    await state_changing_body(request)
    current = await require_signed_in(request)
    codes = await recovery.generate_codes(ctx_of(request), client_of(request), current)
    return JSONResponse({"codes": codes}, headers=NO_STORE)


@router.post("/recovery/codes/sign-in", openapi_extra=request_body(schemas.CodeSignIn, "Username and backup code."))
async def sign_in_with_code(request: Request) -> JSONResponse:
    """A recovery session: the next step is registering a new passkey."""
    body = validate(schemas.CodeSignIn, await state_changing_body(request))
    result = await recovery.sign_in_with_code(ctx_of(request), client_of(request), body.username, body.code)
    answer = {"verified": True, "user": user_json(result.user), "recovery": True}
    return session_response(request, answer, result.session_token, headers=NO_STORE)


@router.post("/email", openapi_extra=request_body(schemas.EmailAddress, "The address to verify (needs step-up)."))
async def set_email(request: Request) -> JSONResponse:
    body = validate(schemas.EmailAddress, await state_changing_body(request))
    current = await require_signed_in(request)
    await recovery.set_email(ctx_of(request), client_of(request), current, body.email)
    return JSONResponse({"sent": True}, status_code=202)


@router.post("/email/verify", openapi_extra=request_body(schemas.EmailToken, "The token from the link."))
async def verify_email(request: Request) -> JSONResponse:
    body = validate(schemas.EmailToken, await state_changing_body(request))
    user = await recovery.verify_email(ctx_of(request), client_of(request), body.token)
    return JSONResponse({"verified": True, "email": user.email})


@router.post("/recovery/email", openapi_extra=request_body(schemas.EmailAddress, "The account's verified address."))
async def request_sign_in_link(request: Request) -> JSONResponse:
    """Always the same answer, whether or not the address belongs to an account."""
    body = validate(schemas.EmailAddress, await state_changing_body(request))
    client = client_of(request)
    browser = client.browser_token or secrets.token_urlsafe(32)
    await recovery.request_sign_in_link(ctx_of(request), client, body.email, browser)
    response = JSONResponse({"sent": True}, status_code=202, headers=NO_STORE)
    set_ceremony(request, response, browser)
    return response


@router.post("/recovery/email/complete", openapi_extra=request_body(schemas.EmailToken, "The token from the link."))
async def sign_in_with_link(request: Request) -> JSONResponse:
    body = validate(schemas.EmailToken, await state_changing_body(request))
    result = await recovery.sign_in_with_link(ctx_of(request), client_of(request), body.token)
    answer = {"verified": True, "user": user_json(result.user), "recovery": True}
    return session_response(request, answer, result.session_token, headers=NO_STORE)


@router.post("/payments/confirm/begin", openapi_extra=request_body(schemas.ConfirmBegin, "The transaction to confirm."))
async def confirm_begin(request: Request) -> JSONResponse:
    """Request options whose challenge commits to the transaction (payments policy; UV required)."""
    body = await state_changing_body(request)
    validate(schemas.ConfirmBegin, body)
    current = await require_signed_in(request)
    options, browser = await payments.begin(ctx_of(request), client_of(request), current, (body or {})["transaction"])
    response = JSONResponse(options, headers=NO_STORE)
    set_ceremony(request, response, browser)
    return response


@router.post("/payments/confirm/complete", openapi_extra=request_body(schemas.CredentialResponse, "The assertion."))
async def confirm_complete(request: Request) -> JSONResponse:
    body = native.credential_json(await state_changing_body(request), "authentication")
    validate(schemas.CredentialResponse, body)
    current = await require_signed_in(request)
    confirmed = await payments.complete(ctx_of(request), client_of(request), current, body)
    return JSONResponse(
        {"confirmed": True, "transaction": confirmed.transaction, "transactionHash": confirmed.transaction_hash},
        headers=NO_STORE,
    )
