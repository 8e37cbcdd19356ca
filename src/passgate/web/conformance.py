"""The FIDO2 conformance-test transport binding: four JSON routes the FIDO conformance tools call.

Served only with `conformance = true` (a test server's setting; see docs/conformance.md). Every answer is a
ServerResponse envelope, `{"status": "ok" | "failed", "errorMessage": ...}`, a failure with the HTTP status of
its error code (web/errors.py) and the code itself in `error`. The tools keep no state but their cookies, so the
ceremony binding, the choices of the options call and the session all travel in cookies on the whole site.
There is no Origin check: the tools call from a page of their own, and a test server holds nothing to protect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from passgate.core.errors import PasskeyError
from passgate.service import conformance
from passgate.service.context import Client
from passgate.service.sessions import SignedIn, resolve
from passgate.web.context import SESSION_COOKIE, client_of, ctx_of, settings_of
from passgate.web.errors import status_for
from passgate.web.requests import read_json

router = APIRouter(tags=["conformance"], include_in_schema=False)

CEREMONY_COOKIE = "passgate_conformance_ceremony"
STATE_COOKIE = "passgate_conformance_state"
NO_STORE = {"Cache-Control": "no-store"}


def _ok(body: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"status": "ok", "errorMessage": "", **(body or {})}, headers=NO_STORE)


def _failed(error: PasskeyError) -> JSONResponse:
    body = {"status": "failed", "errorMessage": error.message, "error": error.code}
    return JSONResponse(body, status_code=status_for(error), headers=NO_STORE)


def _cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
    settings = settings_of(request)
    # A tool's page calls from another origin with credentials: over https only SameSite=None cookies come back.
    secure = settings.secure_cookies
    response.set_cookie(
        name,
        value,
        max_age=max_age or settings.challenge_timeout_seconds + 300,
        path="/",
        httponly=True,
        secure=secure,
        samesite="none" if secure else "lax",
    )


def _client(request: Request) -> Client:
    # The profile's own cookies, whatever headers the tool sends.
    return replace(
        client_of(request),
        browser_token=request.cookies.get(CEREMONY_COOKIE),
        session_token=request.cookies.get(SESSION_COOKIE),
    )


def _state(request: Request) -> conformance.CeremonyState:
    return conformance.CeremonyState.decode(request.cookies.get(STATE_COOKIE))


async def _answer(run: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await run()
    except PasskeyError as error:
        return _failed(error)


@router.post("/attestation/options")
async def attestation_options(request: Request) -> Response:
    """ServerPublicKeyCredentialCreationOptionsResponse."""

    async def run() -> Response:
        body = await read_json(request, settings_of(request))
        options, browser, state = await conformance.attestation_options(
            ctx_of(request), _client(request), body, signed_in=await _signed_in(request)
        )
        response = _ok(options)
        _cookie(request, response, CEREMONY_COOKIE, browser)
        _cookie(request, response, STATE_COOKIE, state.encode())
        return response

    return await _answer(run)


@router.post("/attestation/result")
async def attestation_result(request: Request) -> Response:
    """Verify and store the new passkey (a ServerPublicKeyCredential); a new account is signed in."""

    async def run() -> Response:
        body = await read_json(request, settings_of(request))
        _, token = await conformance.attestation_result(
            ctx_of(request), _client(request), body, signed_in=await _signed_in(request), state=_state(request)
        )
        response = _ok()
        if token is not None:
            _session_cookie(request, response, token)
        return response

    return await _answer(run)


@router.post("/assertion/options")
async def assertion_options(request: Request) -> Response:
    """ServerPublicKeyCredentialGetOptionsResponse."""

    async def run() -> Response:
        body = await read_json(request, settings_of(request))
        options, browser, state = await conformance.assertion_options(ctx_of(request), _client(request), body)
        response = _ok(options)
        _cookie(request, response, CEREMONY_COOKIE, browser)
        _cookie(request, response, STATE_COOKIE, state.encode())
        return response

    return await _answer(run)


@router.post("/assertion/result")
async def assertion_result(request: Request) -> Response:
    """Verify the assertion (a ServerPublicKeyCredential) and start a session."""

    async def run() -> Response:
        body = await read_json(request, settings_of(request))
        result = await conformance.assertion_result(ctx_of(request), _client(request), body, state=_state(request))
        response = _ok()
        _session_cookie(request, response, result.session_token)
        return response

    return await _answer(run)


async def _signed_in(request: Request) -> SignedIn | None:
    return await resolve(ctx_of(request), request.cookies.get(SESSION_COOKIE))


def _session_cookie(request: Request, response: Response, token: str) -> None:
    _cookie(request, response, SESSION_COOKIE, token, max_age=settings_of(request).session_absolute_hours * 3600)
