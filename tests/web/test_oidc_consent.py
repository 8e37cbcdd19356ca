"""Consent for clients that are not first-party: the page, its Allow and Deny, remembering, prompt=none and
prompt=consent, new scopes, offline_access, and withdrawing consent on the account API. Every code is redeemed by
authlib's client; tests are named after the OpenID conformance suite's modules where one fits."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, sign_up
from tests.web.test_oidc_code_flow import SECRET, authorize, query

PARTNER_CALLBACK = "https://partner.example/callback"
SHOP_CALLBACK = "https://shop.example/callback"
OFFLINE = ["openid", "profile", "email", "offline_access"]
CLIENTS = [
    {"client_id": "shop", "client_secret": SECRET, "redirect_uris": [SHOP_CALLBACK], "first_party": True},
    {
        "client_id": "partner",
        "name": "Partner Travel",
        "client_secret": SECRET,
        "redirect_uris": [PARTNER_CALLBACK],
        "scopes": OFFLINE,
    },
]
TOKEN_ENDPOINT = f"{ORIGIN}/oauth2/token"
DECISION, CONFIRMATION = "passgate_consent", "passgate_confirmation"


@pytest.fixture
def provider(make_server: Callable[..., Server]) -> Server:
    return make_server(oidc_clients=CLIENTS, rp_name="Example Bank")


@pytest.fixture
async def person(provider: Server) -> AsyncIterator[httpx.AsyncClient]:
    """A browser in which Alice has signed up (and so is signed in)."""
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        yield browser


def party(provider: Server, client_id: str = "partner", scope: str = "openid profile") -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=client_id,
        client_secret=SECRET,
        scope=scope,
        redirect_uri=PARTNER_CALLBACK if client_id == "partner" else SHOP_CALLBACK,
        code_challenge_method="S256",
        transport=httpx.ASGITransport(app=provider.app),
        base_url=ORIGIN,
        token_endpoint_auth_method="client_secret_basic",
    )


async def start(
    provider: Server,
    browser: httpx.AsyncClient,
    client_id: str = "partner",
    scope: str = "openid profile",
    **extra: str,
) -> tuple[httpx.Response, dict[str, str]]:
    """An authorization request: the endpoint's answer, and what redeeming its code needs."""
    verifier = generate_token(48)
    async with party(provider, client_id, scope) as rp:
        url, state = rp.create_authorization_url(f"{ORIGIN}/oauth2/authorize", code_verifier=verifier, **extra)
    return await authorize(browser, url), {"state": state, "verifier": verifier, "client_id": client_id}


def consent_form(response: httpx.Response) -> dict[str, str]:
    """The consent page's hidden fields (the request and the confirmation)."""
    assert response.status_code == 200, response.text
    assert 'id="consent-form"' in response.text
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', response.text)
    return {html.unescape(name): html.unescape(value) for name, value in fields}


def scopes_shown(response: httpx.Response) -> list[str]:
    listed = re.search(r'<ul id="consent-scopes">(.*?)</ul>', response.text, re.S)
    assert listed is not None
    return [html.unescape(item.strip()) for item in re.findall(r"<li>(.*?)</li>", listed.group(1), re.S)]


async def decide(browser: httpx.AsyncClient, form: dict[str, str], decision: str, **headers: str) -> httpx.Response:
    return await browser.post("/oauth2/authorize", data={**form, DECISION: decision}, headers=headers)


async def redeem(provider: Server, response: httpx.Response, flow: dict[str, str]) -> dict[str, Any]:
    assert response.status_code == 302, response.text
    async with party(provider, flow["client_id"]) as rp:
        token: dict[str, Any] = await rp.fetch_token(
            TOKEN_ENDPOINT,
            authorization_response=response.headers["location"],
            state=flow["state"],
            code_verifier=flow["verifier"],
        )
    return token


def refused(response: httpx.Response, error: str, flow: dict[str, str]) -> None:
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(PARTNER_CALLBACK + "?")
    answer = query(response.headers["location"])
    assert answer["error"] == error and answer["state"] == flow["state"] and answer["iss"] == ORIGIN
    assert "code" not in answer


def codes(provider: Server) -> list[tuple[Any, ...]]:
    return provider.rows("SELECT client_id, scope FROM authorization_codes ORDER BY created_at")


def consents(provider: Server) -> list[tuple[str, str]]:
    return [(client, scopes) for client, scopes in provider.rows("SELECT client_id, scopes FROM consents")]


def events(provider: Server, type_: str) -> list[tuple[str, dict[str, Any]]]:
    rows = provider.rows("SELECT outcome, detail FROM events WHERE type = ? ORDER BY id", type_)
    return [(outcome, json.loads(detail)) for outcome, detail in rows]


async def consented(
    provider: Server, person: httpx.AsyncClient, scope: str = "openid profile", **extra: str
) -> dict[str, Any]:
    """Ask, Allow, redeem: the tokens."""
    response, flow = await start(provider, person, scope=scope, **extra)
    return await redeem(provider, await decide(person, consent_form(response), "allow"), flow)


async def test_consent_page_then_remembered(provider: Server, person: httpx.AsyncClient) -> None:
    response, flow = await start(provider, person, scope="openid profile email")
    form = consent_form(response)
    assert "Allow Partner Travel to use your Example Bank account?" in response.text
    assert scopes_shown(response) == [
        "Know who you are on Example Bank",
        "Your username and name",
        "Your email address",
    ]
    assert response.headers["cache-control"] == "no-store"
    assert "form-action 'self' https://partner.example;" in response.headers["content-security-policy"]
    assert codes(provider) == [] and consents(provider) == [] and events(provider, "oidc.consent") == []
    token = await redeem(provider, await decide(person, form, "allow"), flow)
    assert token["scope"] == "openid profile email" and "id_token" in token
    assert consents(provider) == [("partner", "email openid profile")]
    assert events(provider, "oidc.consent") == [
        ("success", {"client_id": "partner", "scopes": ["openid", "profile", "email"]})
    ]
    # Remembered: the next request, and one asking for fewer scopes, get their code at once.
    again, flow = await start(provider, person, scope="openid email")
    assert (await redeem(provider, again, flow))["scope"] == "openid email"
    assert len(events(provider, "oidc.consent")) == 1


async def test_deny_answers_access_denied(provider: Server, person: httpx.AsyncClient) -> None:
    response, flow = await start(provider, person)
    refused(await decide(person, consent_form(response), "deny"), "access_denied", flow)
    assert codes(provider) == [] and consents(provider) == []
    assert events(provider, "oidc.consent_denied") == [
        ("success", {"client_id": "partner", "scopes": ["openid", "profile"]})
    ]
    # Nothing was remembered: the next request asks again.
    consent_form((await start(provider, person))[0])


async def test_prompt_none_without_consent_answers_consent_required(
    provider: Server, person: httpx.AsyncClient
) -> None:
    response, flow = await start(provider, person, prompt="none")
    refused(response, "consent_required", flow)
    assert codes(provider) == [] and consents(provider) == []


async def test_oidcc_prompt_none_logged_in(provider: Server, person: httpx.AsyncClient) -> None:
    """Signed in and consented: prompt=none gets its code without any page."""
    await consented(provider, person)
    response, flow = await start(provider, person, prompt="none")
    assert (await redeem(provider, response, flow))["scope"] == "openid profile"


async def test_prompt_consent_asks_again(provider: Server, person: httpx.AsyncClient) -> None:
    await consented(provider, person)
    response, flow = await start(provider, person, prompt="consent")
    form = consent_form(response)
    assert form["prompt"] == "consent"
    assert len(codes(provider)) == 1  # the first consent's only
    token = await redeem(provider, await decide(person, form, "allow"), flow)
    assert token["scope"] == "openid profile" and len(codes(provider)) == 2
    # prompt=consent and Deny: access_denied, though consent is remembered.
    response, flow = await start(provider, person, prompt="consent")
    refused(await decide(person, consent_form(response), "deny"), "access_denied", flow)
    assert len(codes(provider)) == 2


async def test_prompt_consent_for_a_first_party_client_is_met(provider: Server, person: httpx.AsyncClient) -> None:
    response, flow = await start(provider, person, "shop", prompt="consent")
    assert (await redeem(provider, response, flow))["scope"] == "openid profile"
    assert consents(provider) == []


async def test_new_scope_asks_again(provider: Server, person: httpx.AsyncClient) -> None:
    await consented(provider, person, scope="openid profile")
    response, flow = await start(provider, person, scope="openid profile email")
    assert scopes_shown(response) == [
        "Know who you are on Example Bank",
        "Your username and name",
        "Your email address",
    ]
    assert len(codes(provider)) == 1
    assert (await redeem(provider, await decide(person, consent_form(response), "allow"), flow))["scope"] == (
        "openid profile email"
    )
    assert consents(provider) == [("partner", "email openid profile")]


async def test_offline_access_needs_consent(provider: Server, person: httpx.AsyncClient) -> None:
    await consented(provider, person, scope="openid profile")
    offline = "openid profile offline_access"
    response, flow = await start(provider, person, scope=offline, prompt="none")
    refused(response, "consent_required", flow)
    assert len(codes(provider)) == 1 and provider.rows("SELECT * FROM refresh_tokens") == []
    response, flow = await start(provider, person, scope=offline)
    assert "Stay connected when you are not using it" in scopes_shown(response)
    assert len(codes(provider)) == 1
    token = await redeem(provider, await decide(person, consent_form(response), "allow"), flow)
    assert token["scope"] == offline and token["refresh_token"]


async def test_confirmation_is_single_use_and_bound_to_the_session(provider: Server, person: httpx.AsyncClient) -> None:
    response, flow = await start(provider, person)
    form = consent_form(response)
    # Another person's session posting Alice's page: asked on a page of their own, nothing issued.
    async with provider.client() as other:
        await sign_up(other, SoftwareAuthenticator(), "bob")
        consent_form(await decide(other, form, "allow"))
    # Another site's page posting it (the Origin check): refused on a page, nothing issued.
    forged = await decide(person, form, "allow", origin="https://evil.example")
    assert forged.status_code == 403 and "location" not in forged.headers
    assert 'data-error="origin_not_allowed"' in forged.text
    # Taken once by the other session, the confirmation no longer works for Alice either.
    consent_form(await decide(person, form, "allow"))
    assert codes(provider) == [] and consents(provider) == []
    # A fresh page's confirmation works once: with prompt=consent, posted again it asks again.
    response, flow = await start(provider, person, prompt="consent")
    form = consent_form(response)
    await redeem(provider, await decide(person, form, "allow"), flow)
    consent_form(await decide(person, form, "allow"))
    assert len(codes(provider)) == 1
    # It expires.
    response, flow = await start(provider, person, prompt="consent")
    provider.clock.advance(minutes=11)
    consent_form(await decide(person, consent_form(response), "allow"))
    assert len(codes(provider)) == 1
    # A confirmation for another request (more scopes) allows nothing.
    response, _ = await start(provider, person, prompt="consent")
    wider = {**consent_form(response), "scope": "openid profile email"}
    consent_form(await decide(person, wider, "allow"))
    assert len(codes(provider)) == 1 and consents(provider) == [("partner", "openid profile")]


async def test_a_consent_page_answer_needs_a_known_decision(provider: Server, person: httpx.AsyncClient) -> None:
    response, _ = await start(provider, person)
    answer = await decide(person, consent_form(response), "maybe")
    assert answer.status_code == 400 and 'data-error="invalid_request"' in answer.text
    assert codes(provider) == [] and consents(provider) == []


async def test_withdrawn_consent_asks_again_and_revokes_refresh_tokens(
    provider: Server, person: httpx.AsyncClient
) -> None:
    token = await consented(provider, person, scope="openid profile offline_access")
    listed = (await person.get("/auth/consents")).json()
    assert listed["consents"] == [
        {
            "clientId": "partner",
            "name": "Partner Travel",
            "scopes": ["openid", "profile", "offline_access"],
            "grantedAt": provider.clock().isoformat(),
            "updatedAt": provider.clock().isoformat(),
        }
    ]
    withdrawn = await person.delete("/auth/consents/partner")
    assert withdrawn.status_code == 204 and withdrawn.content == b""
    assert consents(provider) == [] and (await person.get("/auth/consents")).json() == {"consents": []}
    async with party(provider) as rp:
        rp.token = token
        with pytest.raises(OAuthError) as refused_refresh:
            await rp.refresh_token(TOKEN_ENDPOINT, refresh_token=token["refresh_token"])
    assert refused_refresh.value.error == "invalid_grant"
    assert events(provider, "oidc.consent_withdrawn") == [
        ("success", {"client_id": "partner", "revoked_refresh_tokens": 1})
    ]
    consent_form((await start(provider, person))[0])  # asked again
    unknown = await person.delete("/auth/consents/partner")
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_consent"


async def test_consents_need_a_signed_in_person_and_a_page_of_the_site(
    provider: Server, person: httpx.AsyncClient
) -> None:
    await consented(provider, person)
    async with provider.client() as stranger:
        assert (await stranger.get("/auth/consents")).status_code == 401
        assert (await stranger.delete("/auth/consents/partner")).status_code == 401
    forged = await person.delete("/auth/consents/partner", headers={"origin": "https://evil.example"})
    assert forged.status_code == 403 and forged.json()["error"] == "origin_not_allowed"
    assert consents(provider) == [("partner", "openid profile")]


async def test_the_account_page_lists_connected_apps(provider: Server, person: httpx.AsyncClient) -> None:
    page = await person.get("/account")
    assert "No apps are connected to your account." in page.text
    await consented(provider, person, scope="openid email offline_access")
    page = await person.get("/account")
    listed = re.search(r'<ul id="connected-apps".*?</ul>\s*</dd>', page.text, re.S)
    assert listed is not None
    assert 'data-client-id="partner"' in listed.group(0) and "Partner Travel" in listed.group(0)
    assert re.findall(r"<li>(.*?)</li>", listed.group(0)) == [
        "Know who you are on Example Bank",
        "Your email address",
        "Stay connected when you are not using it",
    ]
    assert "Allowed an app to use your account" in page.text  # the activity list
