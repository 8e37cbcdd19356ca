"""Hosted pages: sign up, sign in (button and autofill), recovery, email links, the account page.

Pages only read: every change goes through the JSON API from /static/pages.js, so a link followed by a mail
scanner (GET /email/verify, GET /recover/email) changes nothing until the person presses the page's button.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from passgate import i18n
from passgate.core.brand import css_properties
from passgate.core.encoding import b64url_encode
from passgate.i18n import N_
from passgate.service import account, consent, passwords, recovery
from passgate.store.base import Event, User
from passgate.web.context import ctx_of, settings_of, signed_in
from passgate.web.languages import language_of, remember_choice, templates_for

router = APIRouter(include_in_schema=False)

ACTIVITY_SHOWN = 20
ACTIVITY_MORE = 200  # after "Show more"
# Where the account's passkeys were created: the latest creations are looked up (an account has a handful).
PASSKEYS_LOOKED_UP = 100
SECURITY_KEY_TRANSPORTS = frozenset({"usb", "nfc", "ble", "smart-card"})

# What each recorded event means to the person: (success, failure).
EVENT_WORDS: dict[str, tuple[str, str]] = {
    "sign_in": (N_("Signed in with a passkey"), N_("A passkey sign-in was refused")),
    "step_up": (N_("Confirmed it was you with a passkey"), N_("A passkey confirmation was refused")),
    "payment.confirm": (N_("Confirmed a payment with a passkey"), N_("A payment confirmation was refused")),
    "passkey.register": (N_("Added a passkey"), N_("Adding a passkey failed")),
    "passkey.remove": (N_("Removed a passkey"), N_("Removing a passkey was refused")),
    "passkey.rename": (N_("Renamed a passkey"), N_("Renaming a passkey failed")),
    "account.display_name": (N_("Changed your display name"), N_("Changing your display name failed")),
    "backup_codes.generate": (N_("Created new backup codes"), N_("Creating backup codes was refused")),
    "email.set": (
        N_("Set your email address and sent a confirmation link"),
        N_("Setting your email address was refused"),
    ),
    "email.verify": (N_("Confirmed your email address"), N_("An email confirmation link was refused")),
    "sign_in.backup_code": (N_("Signed in with a backup code"), N_("A backup code was refused")),
    "sign_in.email_link": (N_("Signed in with an email link"), N_("An email sign-in link was refused")),
    "sign_in_link.request": (N_("Asked for an email sign-in link"), N_("Asking for an email sign-in link was refused")),
    "sign_in_link.sent": (N_("Sent an email sign-in link to your address"), N_("Sending an email sign-in link failed")),
    "oidc.consent": (N_("Allowed an app to use your account"), N_("Allowing an app failed")),
    "oidc.consent_denied": (N_("Refused an app the use of your account"), N_("Refusing an app failed")),
    "oidc.consent_withdrawn": (N_("Disconnected an app"), N_("Disconnecting an app was refused")),
    "password.sign_in": (N_("Signed in with your password"), N_("A password sign-in was refused")),
    "password.removed": (N_("Removed your password"), N_("Removing your password was refused")),
    "sign_out": (N_("Signed out"), N_("Signing out failed")),
    "admin.sign_out": (N_("An administrator signed you out"), N_("An administrator could not sign you out")),
    "admin.passkey.remove": (
        N_("An administrator removed a passkey"),
        N_("An administrator could not remove a passkey"),
    ),
    "user.imported": (N_("Your account was imported"), N_("Importing your account failed")),
}

PASSKEY_EVENTS = frozenset({"sign_in", "step_up", "passkey.register", "passkey.remove", "passkey.rename"})

# What each scope lets an application have, as the consent page and the account page say it.
SCOPE_WORDS = {
    "openid": N_("Know who you are on %(site)s"),
    "profile": N_("Your username and name"),
    "email": N_("Your email address"),
    "offline_access": N_("Stay connected when you are not using it"),
}

REASON_WORDS = {
    "step_up_required": N_("a fresh passkey confirmation was needed"),
    "last_passkey": N_("it was the only passkey"),
    "invalid_code": N_("wrong or already used code"),
    "invalid_link": N_("the link was used or had expired"),
    "link_other_browser": N_("opened in another browser"),
    "email_taken": N_("the address belongs to another account"),
    "rate_limited": N_("too many attempts"),
    "unknown_credential": N_("unknown passkey"),
    "credential_exists": N_("already registered"),
    "user_not_verified": N_("fingerprint, face or PIN not confirmed"),
    "sign_count_regression": N_("possible copy of a passkey"),
    "password_incorrect": N_("wrong password"),
    "no_password": N_("there was no password"),
}

_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Mac OS X", "macOS"),
    ("Windows", "Windows"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


@dataclass(frozen=True, kw_only=True)
class PasskeyView:
    id: str  # base64url credential id
    label: str  # the nickname, else a name for what made it
    default_label: str  # what the label goes back to when the nickname is cleared
    nickname: str | None
    provider: str
    provider_known: bool  # named by the AAGUID registry, not a name for a kind of passkey
    icon_light: str | None  # data: URIs from the AAGUID registry
    icon_dark: str | None
    synced: bool
    transports: list[str]
    created_at: datetime
    last_used_at: datetime | None
    created_in: str | None  # "Chrome on macOS": the browser that created it, while its creation is in the activity
    signed_in_here: bool  # the passkey this browser's session signed in (or signed up) with


@dataclass(frozen=True, kw_only=True)
class ActivityView:
    text: str
    failed: bool
    at: datetime
    where: str  # "Chrome on Linux, 127.0.0.1"


@dataclass(frozen=True, kw_only=True)
class ConnectedAppView:
    client_id: str
    name: str
    scopes: list[str]  # in words
    granted_at: datetime


def scope_words(scope: str, rp_name: str, language: str = "en") -> str:
    """What a scope lets an application have, in words of `language`."""
    if scope not in SCOPE_WORDS:
        return scope
    return i18n.translator(language).gettext(SCOPE_WORDS[scope]) % {"site": rp_name}


def connected_app_view(app: consent.ConnectedApp, rp_name: str, language: str) -> ConnectedAppView:
    return ConnectedAppView(
        client_id=app.client_id,
        name=app.name,
        scopes=[scope_words(scope, rp_name, language) for scope in app.scopes],
        granted_at=app.granted_at,
    )


def passkey_view(
    passkey: account.Passkey, language: str, *, created_by: str | None = None, signed_in_here: bool = False
) -> PasskeyView:
    """`created_by`: the User-Agent of the request that created the passkey, when it is known."""
    _ = i18n.translator(language).gettext
    provider = passkey.provider.name
    if not passkey.provider.known:
        # No registry entry for the AAGUID (many security keys, and authenticators that send zeros).
        if SECURITY_KEY_TRANSPORTS.intersection(passkey.transports):
            provider = _("Security key")
        elif passkey.synced:
            provider = _("Synced passkey")
        elif provider == account.GENERIC_PROVIDER:
            provider = _("Passkey")
    return PasskeyView(
        id=passkey.id,
        label=passkey.nickname or provider,
        default_label=provider,
        nickname=passkey.nickname,
        provider=provider,
        provider_known=passkey.provider.known,
        icon_light=passkey.provider.icon_light,
        icon_dark=passkey.provider.icon_dark or passkey.provider.icon_light,
        synced=passkey.synced,
        transports=list(passkey.transports),
        created_at=passkey.created_at,
        last_used_at=passkey.last_used_at,
        created_in=browser_of(created_by, language) if created_by else None,
        signed_in_here=signed_in_here,
    )


def browser_of(user_agent: str | None, language: str = "en") -> str:
    """'Chrome on macOS' from a User-Agent header; a rough summary is all the activity list needs."""
    _ = i18n.translator(language).gettext
    if not user_agent:
        return _("Unknown browser")
    browser = next((name for token, name in _BROWSERS if token in user_agent), None) or _("Unknown browser")
    system = next((name for token, name in _SYSTEMS if token in user_agent), None)
    return _("%(browser)s on %(system)s") % {"browser": browser, "system": system} if system else browser


def activity_view(event: Event, labels: dict[str, str], language: str) -> ActivityView:
    _ = i18n.translator(language).gettext
    if event.type in EVENT_WORDS:
        success, failure = (_(words) for words in EVENT_WORDS[event.type])
    else:
        success, failure = event.type, _("%(event)s failed") % {"event": event.type}
    if event.type == "passkey.register" and event.detail.get("new_account"):
        success = _("Created your account with a passkey")
    elif event.type == "passkey.register" and event.detail.get("upgrade"):
        success = _("Your browser created a passkey after a password sign-in")
    failed = event.outcome == "failure"
    text = failure if failed else success
    routine = failed and event.reason == "step_up_required"
    if routine:
        # The first try of a change that needs a fresh passkey: the confirmation follows, nothing went wrong.
        failed, text = False, _("Asked you to confirm it was you with a passkey")
    label = labels.get(b64url_encode(event.credential_id)) if event.credential_id else None
    label = label or event.detail.get("name")  # a removed passkey's name, kept in its removal
    if not routine and label and label not in (account.GENERIC_PROVIDER, _("Passkey")) and event.type in PASSKEY_EVENTS:
        text = _("%(event)s (%(passkey)s)") % {"event": text, "passkey": label}
    if failed and event.reason:
        reason = _(REASON_WORDS[event.reason]) if event.reason in REASON_WORDS else event.reason.replace("_", " ")
        text = _("%(event)s: %(reason)s") % {"event": text, "reason": reason}
    where = _(", ").join(part for part in (browser_of(event.user_agent, language), event.ip) if part)
    return ActivityView(text=text, failed=failed, at=event.created_at, where=where)


def render(request: Request, name: str, **context: Any) -> Response:
    """The page `name` in the request's language (see web.languages)."""
    context.setdefault("user", None)
    templates = templates_for(language_of(request))
    settings = settings_of(request)
    look = {"rp_name": settings.rp_name, "brand": settings.brand, "brand_css": css_properties(settings.brand)}
    response = templates.TemplateResponse(request, name, {**look, **context})
    remember_choice(request, response)
    # The app's Referrer-Policy (same-origin) keeps the token of an emailed link from leaving the site. Not
    # no-referrer: with it, browsers send `Origin: null` on the page's POSTs, which the Origin check refuses.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = language_of(request)
    response.headers["Vary"] = "Accept-Language, Cookie"
    return response


def _see_other(request: Request, url: str) -> Response:
    """A redirect from a page, keeping a `lang` it was asked with for the page it leads to."""
    response = RedirectResponse(url, status_code=303)
    remember_choice(request, response)
    return response


@router.get("/")
async def home(request: Request) -> Response:
    return _see_other(request, "/account" if await signed_in(request) else "/signin")


def local_path(value: str | None) -> str | None:
    """`value` if it is a path on this site ("/oauth2/authorize?..."), else None: a `next` parameter must never
    send the person to another site ("//evil.example", "/\\evil.example", "https://evil.example")."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(character) < 0x21 or ord(character) == 0x7F for character in value):
        return None
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else None


def return_target(allowed_origins: Iterable[str], value: str | None) -> str | None:
    """Where a page's `return_to` (or `next`) may send the person once signed in: a path on this site (see
    local_path), or an absolute URL on one of `allowed_origins` (the site's origins and its `cors_origins`,
    compared whole: scheme, host and port); else None, and the person goes to the account page."""
    path = local_path(value)
    if path is not None or not value:
        return path
    if "\\" in value or any(ord(character) < 0x21 or ord(character) == 0x7F for character in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or "@" in parts.netloc:
        return None
    return value if f"{parts.scheme}://{parts.netloc}" in set(allowed_origins) else None


def _return_to(request: Request) -> str | None:
    settings = settings_of(request)
    value = request.query_params.get("return_to") or request.query_params.get("next")
    return return_target((*settings.allowed_origins, *settings.cors_origins), value)


@router.get("/signin")
async def signin_page(request: Request) -> Response:
    # `next` (or `return_to`): where to go once signed in (an authorization request waiting for the person, a
    # page of an allowed origin). With a path, the page is shown even to a signed-in person, who comes here only
    # when that request wants a new sign-in; with another origin's page, a signed-in person goes straight back.
    next_path = _return_to(request)
    if (next_path is None or not next_path.startswith("/")) and await signed_in(request):
        return _see_other(request, next_path or "/account")
    login_hint = request.query_params.get("login_hint", "")[:64]
    passwords = ctx_of(request).rp.passwords == "migrate"  # imported accounts may still sign in with a password
    return render(request, "signin.html", login_hint=login_hint, passwords=passwords, **_next_of(next_path))


@router.get("/signup")
async def signup_page(request: Request) -> Response:
    # `next` as on the sign-in page: a new person an authorization request sent here goes back to it once signed up.
    next_path = _return_to(request)
    if await signed_in(request):
        return _see_other(request, next_path or "/account")
    return render(request, "signup.html", **_next_of(next_path))


def _next_of(next_path: str | None) -> dict[str, str | None]:
    """The template values for a page's `next`: the path, and the query that carries it to the other page."""
    return {"next_path": next_path, "next_query": "?" + urlencode({"next": next_path}) if next_path else ""}


@router.get("/recover")
async def recover_page(request: Request) -> Response:
    """Lost passkeys: a backup code, or a sign-in link to the account's verified email address."""
    if await signed_in(request):
        return _see_other(request, "/account")
    return render(request, "recover.html", magic_link_minutes=settings_of(request).magic_link_minutes)


@router.get("/email/verify")
async def verify_email_page(request: Request) -> Response:
    """The emailed confirmation link lands here; only the page's button (a POST) confirms the address."""
    return render(request, "verify_email.html", user=await _user(request))


@router.get("/recover/email")
async def email_link_page(request: Request) -> Response:
    """The emailed sign-in link lands here; only the page's button (a POST) signs in."""
    return render(request, "email_link.html", user=await _user(request))


@router.get("/account")
async def account_page(request: Request) -> Response:
    current = await signed_in(request)
    if current is None:
        return _see_other(request, "/signin")
    ctx = ctx_of(request)
    user = current.user
    language = language_of(request)
    created_by = await _creating_user_agents(request, user.id)
    used_here = current.session.credential_id
    passkeys = [
        passkey_view(
            p,
            language,
            created_by=created_by.get(p.id),
            signed_in_here=used_here is not None and p.id == b64url_encode(used_here),
        )
        for p in await account.passkeys(ctx, user.id)
    ]
    labels = {p.id: p.label for p in passkeys}
    shown = ACTIVITY_MORE if request.query_params.get("activity") == "more" else ACTIVITY_SHOWN
    events = await ctx.storage.events.list(user_id=user.id, limit=shown + 1)  # one more: is there more to show?
    recovering = current.session.kind == "recovery"
    # The password section: while passwords sign in, for an account that still has one.
    has_password = ctx.rp.passwords == "migrate" and await passwords.has_password(ctx, user.id)
    return render(
        request,
        "account.html",
        user=user,
        passkeys=passkeys,
        recovering=recovering,
        password_session=current.session.kind == "password",
        has_password=has_password,
        suggest_second_passkey=not recovering and await account.show_nudge(ctx, user),
        codes_remaining=await recovery.codes_remaining(ctx, user.id),
        email=user.email,
        email_verified=user.email_verified_at is not None,
        activity=[activity_view(e, labels, language) for e in events[:shown]],
        more_activity=len(events) > shown,
        connected_apps=[
            connected_app_view(app, ctx.rp.rp_name, language) for app in await consent.connected_apps(ctx, user.id)
        ],
    )


async def _creating_user_agents(request: Request, user_id: str) -> dict[str, str]:
    """The User-Agent each of the user's passkeys was created with (base64url id -> header), from the activity."""
    created = await ctx_of(request).storage.events.list(
        user_id=user_id, type="passkey.register", outcome="success", limit=PASSKEYS_LOOKED_UP
    )
    return {b64url_encode(e.credential_id): e.user_agent for e in created if e.credential_id and e.user_agent}


async def _user(request: Request) -> User | None:
    current = await signed_in(request)
    return current.user if current else None
