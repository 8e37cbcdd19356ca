"""Hosted pages: sign up, sign in (button and autofill), the account page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from passgate.core.encoding import b64url_encode
from passgate.store.base import Credential
from passgate.web.context import ctx_of, settings_of, signed_in

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


@dataclass(frozen=True, kw_only=True)
class PasskeyView:
    credential_id_b64: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    synced: bool
    transports: list[str]


def passkey_view(credential: Credential) -> PasskeyView:
    return PasskeyView(
        credential_id_b64=b64url_encode(credential.credential_id),
        label=credential.nickname or ("Synced passkey" if credential.backed_up else "Passkey on one device"),
        created_at=credential.created_at,
        last_used_at=credential.last_used_at,
        synced=credential.backed_up,
        transports=list(credential.transports),
    )


def _render(request: Request, name: str, **context: Any) -> Response:
    response = templates.TemplateResponse(request, name, {"rp_name": settings_of(request).rp_name, **context})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/")
async def home(request: Request) -> Response:
    return RedirectResponse("/account" if await signed_in(request) else "/signin", status_code=303)


@router.get("/signin")
async def signin_page(request: Request) -> Response:
    if await signed_in(request):
        return RedirectResponse("/account", status_code=303)
    return _render(request, "signin.html", user=None)


@router.get("/signup")
async def signup_page(request: Request) -> Response:
    if await signed_in(request):
        return RedirectResponse("/account", status_code=303)
    return _render(request, "signup.html", user=None)


@router.get("/account")
async def account_page(request: Request) -> Response:
    current = await signed_in(request)
    if current is None:
        return RedirectResponse("/signin", status_code=303)
    credentials = await ctx_of(request).storage.credentials.list_for_user(current.user.id)
    return _render(request, "account.html", user=current.user, passkeys=[passkey_view(c) for c in credentials])
