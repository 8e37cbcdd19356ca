"""The JSON API: the two ceremonies, password sign-in (while accounts move to passkeys), the session."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse
from starlette.routing import Match, Route
from starlette.types import Scope

from passgate.core import native
from passgate.core.encoding import b64url_encode
from passgate.service import authentication, passwords, registration, session_tokens, sessions
from passgate.store.base import User
from passgate.web import schemas
from passgate.web.context import (
    by_headers,
    clear_session_cookie,
    client_of,
    ctx_of,
    require_signed_in,
    require_signed_in_or_bearer,
    session_response,
    set_ceremony,
    signed_in,
)
from passgate.web.requests import request_body, state_changing_body, validate

router = APIRouter(prefix="/auth", tags=["passkeys"])

CREDENTIAL = schemas.CredentialResponse
BINDING: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The options.",
        "headers": {
            "Passgate-Ceremony": {
                "description": "The ceremony binding: a client without cookies (a native app) sends it back in a "
                "Passgate-Ceremony request header on complete.",
                "schema": {"type": "string"},
            }
        },
    }
}


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "displayName": user.display_name}


@router.post(
    "/passkey/register/begin",
    responses=BINDING,
    openapi_extra=request_body(
        schemas.RegisterBegin,
        'Signed out: username and display name of a new account. Signed in: {} to add a passkey, {"conditional": '
        "true} for the upgrade right after a password sign-in.",
    ),
)
async def register_begin(request: Request) -> JSONResponse:
    """PublicKeyCredentialCreationOptionsJSON for a new account or a new passkey."""
    body = validate(schemas.RegisterBegin, await state_changing_body(request))
    current = await signed_in(request)
    options, browser = await registration.begin(
        ctx_of(request),
        client_of(request),
        signed_in=current,
        username=body.username,
        display_name=body.displayName,
        user_id=body.userId,
        exclude_credentials=body.excludeCredentials,
        conditional=body.conditional,
    )
    response = JSONResponse(options, headers={"Cache-Control": "no-store"})
    set_ceremony(request, response, browser)
    return response


@router.post("/passkey/register/complete", openapi_extra=request_body(CREDENTIAL, "RegistrationResponseJSON"))
async def register_complete(request: Request) -> JSONResponse:
    """Verify and store the new passkey; a sign-up also signs the new user in. Also reads the credential shapes of
    native apps (core.native)."""
    body = native.credential_json(await state_changing_body(request), "registration")
    validate(CREDENTIAL, body)
    current = await signed_in(request)
    client = client_of(request)
    result = await registration.complete(ctx_of(request), client, body, signed_in=current)
    answer = {
        "verified": True,
        "user": user_json(result.user),
        "credentialId": b64url_encode(result.credential.credential_id),
        "newAccount": result.new_account,
    }
    if result.session_token is None:
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})
    return session_response(request, answer, result.session_token, headers={"Cache-Control": "no-store"})


@router.post(
    "/passkey/login/begin",
    responses=BINDING,
    openapi_extra=request_body(
        schemas.LoginBegin, 'Omit for discoverable sign-in, or {"username"} for username-first.'
    ),
)
async def login_begin(request: Request) -> JSONResponse:
    """PublicKeyCredentialRequestOptionsJSON."""
    body = validate(schemas.LoginBegin, await state_changing_body(request))
    step_up = None
    if body.stepUp:
        step_up = (await require_signed_in(request)).user
    options, browser = await authentication.begin(
        ctx_of(request), client_of(request), username=body.username, step_up=step_up
    )
    response = JSONResponse(options, headers={"Cache-Control": "no-store"})
    set_ceremony(request, response, browser)
    return response


@router.post("/passkey/login/complete", openapi_extra=request_body(CREDENTIAL, "AuthenticationResponseJSON"))
async def login_complete(request: Request) -> JSONResponse:
    """Verify the assertion and start a session (rotating any previous one). Also reads the credential shapes of
    native apps (core.native)."""
    body = native.credential_json(await state_changing_body(request), "authentication")
    validate(CREDENTIAL, body)
    client = client_of(request)
    ctx = ctx_of(request)
    result = await authentication.complete(ctx, client, body)
    answer = {
        "verified": True,
        "user": user_json(result.user),
        "credentialId": b64url_encode(result.credential.credential_id),
    }
    return session_response(request, answer, result.session_token, headers={"Cache-Control": "no-store"})


class LeanRoute(Route):
    """A ceremony endpoint on the lean path: a plain Starlette route (no per-request dependency resolution),
    matched ahead of every other route. Marked as the scope's route, as FastAPI's are, for the metrics' labels."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match != Match.NONE:
            child_scope["route"] = self
        return match, child_scope


def lean_routes() -> list[Route]:
    """The four ceremony endpoints, the same functions as above, which the app puts first among its routes: the
    FastAPI routes of these paths stay for the OpenAPI document only."""
    endpoints = (register_begin, register_complete, login_begin, login_complete)
    paths = ("/passkey/register/begin", "/passkey/register/complete", "/passkey/login/begin", "/passkey/login/complete")
    return [
        LeanRoute(router.prefix + path, endpoint, methods=["POST"], include_in_schema=False)
        for path, endpoint in zip(paths, endpoints, strict=True)
    ]


@router.post(
    "/password/available",
    openapi_extra=request_body(schemas.PasswordAvailable, "The username typed on the sign-in page."),
)
async def password_available(request: Request) -> JSONResponse:
    """Whether to ask for a password: true for an account with one and for an unknown username alike (the answer
    tells no unknown name apart); 403 passwords_off unless password sign-in is offered."""
    body = validate(schemas.PasswordAvailable, await state_changing_body(request))
    answer = await passwords.available(ctx_of(request), client_of(request), body.username)
    return JSONResponse({"password": answer}, headers={"Cache-Control": "no-store"})


@router.post("/password/login", openapi_extra=request_body(schemas.PasswordLogin, "Username and password."))
async def password_login(request: Request) -> JSONResponse:
    """Sign in with the password an account was imported with: a password session (rotating any previous one), and
    `upgrade: true`, the page's cue to offer a passkey now. 401 password_incorrect for an unknown user, an account
    without a password and a wrong password alike."""
    body = validate(schemas.PasswordLogin, await state_changing_body(request))
    result = await passwords.login(ctx_of(request), client_of(request), body.username, body.password)
    answer = {"verified": True, "user": user_json(result.user), "upgrade": True}
    return session_response(request, answer, result.session_token, headers={"Cache-Control": "no-store"})


@router.delete("/password")
async def remove_password(request: Request) -> JSONResponse:
    """Remove the account's password (needs a recent passkey: step-up); 404 no_password if it has none."""
    await state_changing_body(request)
    current = await require_signed_in(request)
    await passwords.remove(ctx_of(request), client_of(request), current)
    return JSONResponse({"removed": True}, headers={"Cache-Control": "no-store"})


@router.get("/session")
async def session(request: Request) -> JSONResponse:
    """The signed-in user, by the session cookie or `Authorization: Bearer <session token>`; or 401
    not_signed_in."""
    current = await require_signed_in_or_bearer(request)
    return JSONResponse(
        {
            "user": user_json(current.user),
            "session": {
                "createdAt": current.session.created_at.isoformat(),
                "expiresAt": current.session.expires_at.isoformat(),
            },
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post("/session/token")
async def session_token(request: Request) -> JSONResponse:
    """A five-minute signed JWT (typ session+jwt) naming the signed-in user, for a backend of this site to
    verify against /.well-known/jwks.json; or 401 not_signed_in."""
    await state_changing_body(request)
    current = await require_signed_in(request)
    issued = await session_tokens.issue(ctx_of(request), client_of(request), current)
    return JSONResponse(
        {"token": issued.token, "expiresAt": issued.expires_at.isoformat()}, headers={"Cache-Control": "no-store"}
    )


@router.post("/logout")
async def logout(request: Request) -> JSONResponse:
    """End the session (if any: the cookie's, or the bearer token's) and clear its cookie."""
    await state_changing_body(request)
    await sessions.end(ctx_of(request), client_of(request))
    response = JSONResponse({"signedOut": True})
    if not by_headers(request):
        clear_session_cookie(request, response)
    return response
