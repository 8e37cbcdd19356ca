"""The authorization request's demands on the sign-in: prompt=login, max_age, id_token_hint, acr_values. A fresh
sign-in is a real passkey ceremony on the hosted page's API, and the request comes back to the endpoint; tests are
named after the OpenID conformance suite's modules."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token

from passgate.testing import SoftwareAuthenticator
from passgate.testing.packed import packed_attestation
from tests.web.conftest import ORIGIN, Server, login_options, sign_up
from tests.web.test_oidc_code_flow import CLIENTS, authorize, discover, query, relying_party, verified_id_token

LOGIN_AFTER = "passgate_login_after"


@pytest.fixture
def provider(make_server: Callable[..., Server]) -> Server:
    return make_server(oidc_clients=CLIENTS)


async def sign_in(browser: httpx.AsyncClient, authenticator: SoftwareAuthenticator) -> None:
    options = await login_options(browser)
    response = await browser.post("/auth/passkey/login/complete", json=authenticator.get(options, origin=ORIGIN))
    assert response.status_code == 200, response.text


def sign_in_page_next(response: httpx.Response) -> str:
    """The request the hosted sign-in page goes back to, from the endpoint's redirect to that page."""
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/signin?")
    back = query(response.headers["location"])["next"]
    assert back.startswith("/oauth2/authorize?")
    return back


async def id_token_for(server: Server, browser: httpx.AsyncClient, response: httpx.Response, **flow: str) -> Any:
    """The verified ID token claims for the code in `response` (a redirect to the client)."""
    assert response.status_code == 302, response.text
    async with relying_party(server) as rp:
        metadata = await discover(rp)
        token = await rp.fetch_token(
            metadata["token_endpoint"],
            authorization_response=response.headers["location"],
            state=flow["state"],
            code_verifier=flow["verifier"],
        )
        return await verified_id_token(rp, token["id_token"], server)


async def start(server: Server, browser: httpx.AsyncClient, **extra: str) -> tuple[httpx.Response, dict[str, str]]:
    """An authorization request from the shop: the endpoint's answer, and the state and verifier to redeem it."""
    verifier = generate_token(48)
    async with relying_party(server) as rp:
        url, state = rp.create_authorization_url(f"{ORIGIN}/oauth2/authorize", code_verifier=verifier, **extra)
    return await authorize(browser, url), {"state": state, "verifier": verifier}


def error_of(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    answer = query(response.headers["location"])
    assert "code" not in answer
    return answer


async def test_oidcc_prompt_login(provider: Server) -> None:
    """Signed in already, prompt=login still asks for a passkey; coming back without one asks again, never loops
    into a code; after a new sign-in the code follows, its auth_time that sign-in's."""
    authenticator = SoftwareAuthenticator()
    async with provider.client() as browser:
        await sign_up(browser, authenticator, "alice")
        signed_up_at = int(provider.clock().timestamp())
        provider.clock.advance(seconds=30)
        response, flow = await start(provider, browser, prompt="login")
        back = sign_in_page_next(response)
        assert query(back)[LOGIN_AFTER] == str(signed_up_at + 30)
        assert sign_in_page_next(await browser.get(back)) == back  # no new ceremony yet: the page again
        provider.clock.advance(seconds=5)
        await sign_in(browser, authenticator)
        claims = await id_token_for(provider, browser, await browser.get(back), **flow)
    assert claims["auth_time"] == signed_up_at + 35


async def test_a_fresh_sign_in_marker_older_than_the_window_does_not_count(provider: Server) -> None:
    authenticator = SoftwareAuthenticator()
    async with provider.client() as browser:
        await sign_up(browser, authenticator, "alice")
        provider.clock.advance(minutes=1)
        long_ago = int(provider.clock().timestamp()) - 3600
        response, _ = await start(provider, browser, prompt="login", **{LOGIN_AFTER: str(long_ago)})
        assert query(sign_in_page_next(response))[LOGIN_AFTER] != str(long_ago)


async def test_oidcc_max_age_1(provider: Server) -> None:
    authenticator = SoftwareAuthenticator()
    async with provider.client() as browser:
        await sign_up(browser, authenticator, "alice")
        provider.clock.advance(seconds=2)
        response, flow = await start(provider, browser, max_age="1")
        back = sign_in_page_next(response)
        await sign_in(browser, authenticator)
        fresh_at = int(provider.clock().timestamp())
        provider.clock.advance(seconds=3)  # the sign-in made for this request counts, however long it took
        claims = await id_token_for(provider, browser, await browser.get(back), **flow)
    assert claims["auth_time"] == fresh_at


async def test_max_age_0_always_asks(provider: Server) -> None:
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        provider.clock.advance(seconds=1)
        response, _ = await start(provider, browser, max_age="0")
        sign_in_page_next(response)


async def test_oidcc_max_age_10000(provider: Server) -> None:
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        signed_up_at = int(provider.clock().timestamp())
        provider.clock.advance(seconds=20)
        response, flow = await start(provider, browser, max_age="10000")
        claims = await id_token_for(provider, browser, response, **flow)
    assert claims["auth_time"] == signed_up_at


async def test_prompt_none_with_a_stale_sign_in_is_login_required(provider: Server) -> None:
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        provider.clock.advance(seconds=20)
        response, flow = await start(provider, browser, max_age="10", prompt="none")
    answer = error_of(response)
    assert answer["error"] == "login_required" and answer["state"] == flow["state"]


async def test_oidcc_id_token_hint(provider: Server) -> None:
    """An ID token Passgate issued, even expired, names whom the client expects: the same person goes on, without
    a page for prompt=none; another person signed in is login_required with prompt=none, else the sign-in page,
    for the hinted person."""
    alice = SoftwareAuthenticator()
    async with provider.client() as browser, provider.client() as bob:
        await sign_up(browser, alice, "alice")
        await sign_up(bob, SoftwareAuthenticator(), "bob")
        response, flow = await start(provider, browser)
        assert response.status_code == 302
        async with relying_party(provider) as rp:
            token = await rp.fetch_token(
                f"{ORIGIN}/oauth2/token",
                authorization_response=response.headers["location"],
                state=flow["state"],
                code_verifier=flow["verifier"],
            )
        hint = token["id_token"]
        provider.clock.advance(minutes=6)  # the ID token has expired: still a hint
        again, flow = await start(provider, browser, prompt="none", id_token_hint=hint)
        claims = await id_token_for(provider, browser, again, **flow)
        as_bob, _ = await start(provider, bob, prompt="none", id_token_hint=hint)
        shown, _ = await start(provider, bob, id_token_hint=hint)
        alice_id = (await browser.get("/auth/session")).json()["user"]["id"]
    assert claims["sub"] == alice_id
    assert error_of(as_bob)["error"] == "login_required"
    assert query(shown.headers["location"])["login_hint"] == "alice"
    sign_in_page_next(shown)


async def test_an_id_token_hint_passgate_did_not_sign_is_refused(provider: Server) -> None:
    forged = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwOi8vbG9jYWxob3N0OjgwMDAiLCJzdWIiOiJ4In0."
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        response, _ = await start(provider, browser, id_token_hint=forged)
    assert error_of(response)["error"] == "invalid_request"


async def test_oidcc_ensure_request_with_acr_values_succeeds(provider: Server) -> None:
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        response, flow = await start(provider, browser, acr_values="phrh phr")
        claims = await id_token_for(provider, browser, response, **flow)
    assert claims["acr"] == "phr"


async def test_acr_values_phrh_with_a_synced_passkey_is_unmet(provider: Server) -> None:
    """A synced passkey cannot be hardware-bound: after the fresh sign-in asked for, the requirement is still not
    met, and the client hears so."""
    authenticator = SoftwareAuthenticator(backup_eligible=True, backed_up=True)
    async with provider.client() as browser:
        await sign_up(browser, authenticator, "alice")
        response, flow = await start(provider, browser, acr_values="phrh")
        back = sign_in_page_next(response)
        await sign_in(browser, authenticator)
        answer = error_of(await browser.get(back))
    assert answer["error"] == "unmet_authentication_requirements"
    assert answer["state"] == flow["state"] and answer["iss"] == ORIGIN
    assert provider.rows("SELECT count(*) FROM authorization_codes") == [(0,)]


async def test_acr_values_phrh_with_a_device_bound_attested_passkey(provider: Server) -> None:
    authenticator = SoftwareAuthenticator(aaguid=bytes(range(16)), backup_eligible=False)
    async with provider.client() as browser:
        begin = await browser.post("/auth/passkey/register/begin", json={"username": "hal", "displayName": "Hal"})
        packed = packed_attestation(authenticator.create(begin.json(), origin=ORIGIN))
        ctx = provider.app.state.ctx
        policy = dataclasses.replace(ctx.rp.policy, trusted_roots={"packed": (packed.root_pem,)})
        provider.app.state.ctx = dataclasses.replace(ctx, rp=dataclasses.replace(ctx.rp, policy=policy))
        complete = await browser.post("/auth/passkey/register/complete", json=packed.response)
        assert complete.status_code == 200, complete.text
        response, flow = await start(provider, browser, acr_values="phrh")
        claims = await id_token_for(provider, browser, response, **flow)
    assert claims["acr"] == "phrh" and "hwk" in claims["amr"]
