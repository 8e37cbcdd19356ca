"""The OpenID Foundation conformance suite's RP-initiated logout plan (oidcc-rp-initiated-logout-certification-
test-plan), module by module, where no test of test_oidc_logout.py stands for the module already
(docs/oidc-conformance.md maps every module to its test).

Each module signs a person in at the client first, then sends the browser to the end-session endpoint with the
parameters it names (`id_token_hint`, `post_logout_redirect_uri`, a 128-character `state`), and then, where the
person was sent back, asks again with prompt=none, which must fail now that nobody is signed in."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from authlib.common.security import generate_token

from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, sign_up
from tests.web.test_oidc_code_flow import CALLBACK, SECRET, authorize, query, relying_party
from tests.web.test_oidc_logout import AFTER_LOGOUT, signed_in_at_shop

STATE = "s" * 128  # the suite's modules use a long state, to see that it comes back whole


@pytest.fixture
def provider(make_server: Callable[..., Server]) -> Server:
    shop = {
        "client_id": "shop",
        "client_secret": SECRET,
        "redirect_uris": [CALLBACK],
        "post_logout_redirect_uris": [AFTER_LOGOUT],
        "first_party": True,
    }
    return make_server(oidc_clients=[shop])


@pytest.fixture
async def person(provider: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        yield browser


async def signed_in(browser: httpx.AsyncClient) -> bool:
    return (await browser.get("/auth/session")).json().get("user") is not None


async def assert_prompt_none_fails(provider: Server, browser: httpx.AsyncClient) -> None:
    """The module's second authorization: prompt=none, now that nobody is signed in."""
    async with relying_party(provider) as rp:
        url, state = rp.create_authorization_url(
            f"{ORIGIN}/oauth2/authorize", code_verifier=generate_token(48), prompt="none"
        )
    response = await authorize(browser, url)
    assert response.status_code == 302
    answer = query(response.headers["location"])
    assert answer["error"] == "login_required" and answer["state"] == state and "code" not in answer


async def assert_refused(browser: httpx.AsyncClient, parameters: dict[str, str]) -> None:
    """Not redirected anywhere, an error page, and the person still signed in."""
    answer = await browser.get("/oauth2/logout", params=parameters)
    assert answer.status_code == 400 and "location" not in answer.headers
    assert 'id="logout-error" data-error="invalid_request"' in answer.text
    assert await signed_in(browser)


async def confirmed(browser: httpx.AsyncClient, parameters: dict[str, str]) -> httpx.Response:
    """Without a hint naming this session, the page asks first; the person's click posts the confirmation."""
    asked = await browser.get("/oauth2/logout", params=parameters)
    assert asked.status_code == 200 and 'id="logout-confirm"' in asked.text
    assert await signed_in(browser)
    [confirmation] = re.findall(r'name="confirmation" value="([^"]+)"', asked.text)
    return await browser.post("/oauth2/logout", data={**parameters, "confirmation": confirmation})


def assert_signed_out_page(response: httpx.Response) -> None:
    assert response.status_code == 200 and "location" not in response.headers
    assert 'id="signed-out"' in response.text


async def test_oidcc_rp_initiated_logout(provider: Server, person: httpx.AsyncClient) -> None:
    token, _, _ = await signed_in_at_shop(provider, person)
    answer = await person.get(
        "/oauth2/logout",
        params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT, "state": STATE},
    )
    assert answer.status_code == 303 and answer.headers["location"] == f"{AFTER_LOGOUT}?state={STATE}"
    assert not await signed_in(person)
    await assert_prompt_none_fails(provider, person)


async def test_oidcc_rp_initiated_logout_modified_id_token_hint(provider: Server, person: httpx.AsyncClient) -> None:
    """The client's real ID token, its header changed to alg none and its signature dropped."""
    token, _, _ = await signed_in_at_shop(provider, person)
    _, payload, _ = token["id_token"].split(".")
    none = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    hint = f"{none}.{payload}."
    await assert_refused(person, {"id_token_hint": hint, "post_logout_redirect_uri": AFTER_LOGOUT, "state": STATE})


async def test_oidcc_rp_initiated_logout_no_id_token_hint(provider: Server, person: httpx.AsyncClient) -> None:
    """A post_logout_redirect_uri with nothing naming the client: never followed."""
    await signed_in_at_shop(provider, person)
    await assert_refused(person, {"post_logout_redirect_uri": AFTER_LOGOUT, "state": STATE})


async def test_oidcc_rp_initiated_logout_no_params(provider: Server, person: httpx.AsyncClient) -> None:
    """No parameters: the person is asked, then signed out and shown so; nobody redirected."""
    await signed_in_at_shop(provider, person)
    assert_signed_out_page(await confirmed(person, {}))
    assert not await signed_in(person)


async def test_oidcc_rp_initiated_logout_no_post_logout_redirect_uri(
    provider: Server, person: httpx.AsyncClient
) -> None:
    """The hint names this session: signed out at once, and shown so, as there is nowhere to go back to."""
    token, _, _ = await signed_in_at_shop(provider, person)
    answer = await person.get("/oauth2/logout", params={"id_token_hint": token["id_token"], "state": STATE})
    assert_signed_out_page(answer)
    assert not await signed_in(person)


async def test_oidcc_rp_initiated_logout_no_state(provider: Server, person: httpx.AsyncClient) -> None:
    token, _, _ = await signed_in_at_shop(provider, person)
    answer = await person.get(
        "/oauth2/logout", params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT}
    )
    assert answer.status_code == 303 and answer.headers["location"] == AFTER_LOGOUT
    assert not await signed_in(person)
    await assert_prompt_none_fails(provider, person)


async def test_oidcc_rp_initiated_logout_only_state(provider: Server, person: httpx.AsyncClient) -> None:
    await signed_in_at_shop(provider, person)
    done = await confirmed(person, {"state": STATE})
    assert_signed_out_page(done)
    assert STATE not in done.text
    assert not await signed_in(person)


async def test_oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri(
    provider: Server, person: httpx.AsyncClient
) -> None:
    """The registered URI with ?foo=bar added is not the registered URI: registered URIs match exactly."""
    token, _, _ = await signed_in_at_shop(provider, person)
    await assert_refused(
        person,
        {"id_token_hint": token["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT + "?foo=bar", "state": STATE},
    )
