"""The code-flow login (PassgateLogin and its FastAPI router) against a real Passgate app, in-process over httpx's
ASGI transport: a person signs up with a software passkey, the app sends them to Passgate and takes them back."""

# No `from __future__ import annotations`: FastAPI reads the dependencies from annotations.
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.middleware.sessions import SessionMiddleware

from passgate_client import (
    AuthorizationDenied,
    IssuerMismatch,
    NonceMismatch,
    PassgateLogin,
    SessionUser,
    StateMismatch,
    TokenExchangeFailed,
)
from passgate_client.login import PendingLogin, safe_next
from passgate_client.login_starlette import login_router, require_session_user
from provider import APP, CALLBACK, ISSUER, SECRET, browser, passgate_app, sign_up, unused_port


@pytest.fixture
async def passgate(tmp_path: Path) -> AsyncIterator[Any]:
    async with passgate_app(tmp_path) as app:
        yield app


@pytest.fixture
async def person(passgate: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Alice's browser on Passgate's site, where she has signed up (and so is signed in)."""
    async with browser(passgate, ISSUER) as client:
        await sign_up(client, "alice")
        yield client


def login_for(passgate: Any, client_id: str = "shop", secret: str | None = SECRET) -> PassgateLogin:
    return PassgateLogin(
        issuer=ISSUER,
        client_id=client_id,
        client_secret=secret,
        redirect_uri=CALLBACK,
        async_transport=httpx.ASGITransport(app=passgate),
    )


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


async def authorize(person: httpx.AsyncClient, url: str) -> dict[str, str]:
    """Follow the authorization URL in the person's browser: the parameters Passgate sends back to the callback."""
    answer = await person.get(url.removeprefix(ISSUER))
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return query(location)


async def test_oidcc_client_test(passgate: Any, person: httpx.AsyncClient) -> None:
    """The code flow of a confidential client (client_secret_basic), PKCE S256, nonce, userinfo."""
    login = login_for(passgate)
    url, pending = await login.abegin("/orders")
    asked = query(url)
    assert asked["code_challenge_method"] == "S256" and asked["state"] == pending.state
    assert asked["nonce"] == pending.nonce and asked["scope"] == "openid profile"

    signed_in = await login.acomplete(await authorize(person, url), pending)

    account = (await person.get("/auth/session")).json()["user"]
    assert signed_in.sub == account["id"] and signed_in.user.client_id == "shop"
    assert signed_in.user.token_type == "JWT" and "pop" in signed_in.user.amr
    assert signed_in.userinfo["preferred_username"] == "alice"
    assert signed_in.next_path == "/orders" and signed_in.scope == ("openid", "profile")
    assert signed_in.access_token and signed_in.access_token_expires_at > signed_in.user.claims["iat"]
    assert signed_in.session_user().display_name == "alice"


async def test_a_public_client_exchanges_its_code_without_a_secret(passgate: Any, person: httpx.AsyncClient) -> None:
    login = login_for(passgate, "spa", secret=None)
    url, pending = await login.abegin()

    signed_in = await login.acomplete(await authorize(person, url), pending)

    assert signed_in.user.claims["aud"] == "spa" and signed_in.userinfo["preferred_username"] == "alice"


async def test_a_response_with_another_state_is_refused(passgate: Any, person: httpx.AsyncClient) -> None:
    login = login_for(passgate)
    url, pending = await login.abegin()
    answer = await authorize(person, url)

    with pytest.raises(StateMismatch):
        await login.acomplete({**answer, "state": pending.state[:-1] + "x"}, pending)
    with pytest.raises(StateMismatch):
        await login.acomplete({name: value for name, value in answer.items() if name != "state"}, pending)
    with pytest.raises(StateMismatch):  # no sign-in pending in this session: a forged callback
        await login.acomplete(answer, None)
    # A refused callback did not reach the token endpoint: the code still works for the right state.
    assert (await login.acomplete(answer, pending)).userinfo["preferred_username"] == "alice"


async def test_rfc9207_an_answer_from_another_issuer_is_refused(passgate: Any, person: httpx.AsyncClient) -> None:
    login = login_for(passgate)
    url, pending = await login.abegin()
    answer = await authorize(person, url)
    assert answer["iss"] == ISSUER

    with pytest.raises(IssuerMismatch):
        await login.acomplete({**answer, "iss": "https://attacker.example"}, pending)
    with pytest.raises(IssuerMismatch):  # discovery says Passgate always sends iss
        await login.acomplete({name: value for name, value in answer.items() if name != "iss"}, pending)


async def test_an_error_answer_is_refused_with_its_error(passgate: Any) -> None:
    login = login_for(passgate)
    url, pending = await login.abegin(prompt="none")  # nobody is signed in to Passgate in this browser
    async with browser(passgate, ISSUER) as signed_out:
        answer = await authorize(signed_out, url)

    with pytest.raises(AuthorizationDenied) as refused:
        await login.acomplete(answer, pending)
    assert refused.value.error == "login_required" and refused.value.code == "authorization_denied"


async def test_oidcc_client_test_nonce_invalid(passgate: Any, person: httpx.AsyncClient) -> None:
    login = login_for(passgate)
    url, pending = await login.abegin()
    answer = await authorize(person, url)

    # The session's nonce is not the one the authorization request carried (a code injected from another login).
    with pytest.raises(NonceMismatch):
        await login.acomplete(answer, replace(pending, nonce=PendingLogin.new("/").nonce))


async def test_a_wrong_client_secret_fails_the_exchange(passgate: Any, person: httpx.AsyncClient) -> None:
    login = login_for(passgate, secret="not-the-secret-of-the-shop-but-long-enough")
    url, pending = await login.abegin()

    with pytest.raises(TokenExchangeFailed) as refused:
        await login.acomplete(await authorize(person, url), pending)
    assert refused.value.error == "invalid_client"


@pytest.mark.parametrize(
    "next_path",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "/\t/evil.example", ""],
)
def test_safe_next_refuses_other_sites(next_path: str) -> None:
    assert safe_next(next_path) == "/"


def test_scope_is_a_list_or_a_space_separated_string_with_openid() -> None:
    assert PassgateLogin(issuer=ISSUER, client_id="shop", redirect_uri=CALLBACK, scope="openid email").scope == (
        "openid",
        "email",
    )
    with pytest.raises(ValueError, match="openid"):
        PassgateLogin(issuer=ISSUER, client_id="shop", redirect_uri=CALLBACK, scope="profile openidx")


def test_safe_next_keeps_a_path_of_this_site() -> None:
    assert safe_next("/orders?id=1#top") == "/orders?id=1#top"


# -- the FastAPI router -----------------------------------------------------------------------------------------


def shop(login: PassgateLogin) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key="a test secret for the shop's sessions")
    app.include_router(login_router(login), prefix="/auth")
    user_dependency = Depends(require_session_user)

    @app.get("/orders")
    async def orders(user: Annotated[SessionUser, user_dependency]) -> dict[str, str]:
        return {"signed_in_as": user.display_name}

    return app


async def through_the_router(shop_browser: httpx.AsyncClient, person: httpx.AsyncClient, next_path: str) -> str:
    """Click "sign in" on the shop with ``next``: where the shop sends the person once Passgate sent them back."""
    started = await shop_browser.get("/auth/login?" + urlencode({"next": next_path}))
    assert started.status_code == 303 and started.headers["location"].startswith(ISSUER + "/oauth2/authorize?")
    answer = await authorize(person, started.headers["location"])
    back = await shop_browser.get("/auth/callback?" + urlencode(answer))
    assert back.status_code == 303, back.text
    return str(back.headers["location"])


async def test_the_router_signs_in_and_out(passgate: Any, person: httpx.AsyncClient) -> None:
    login = login_for(passgate)
    async with browser(shop(login), APP) as shop_browser:
        assert (await shop_browser.get("/orders")).status_code == 401

        assert await through_the_router(shop_browser, person, "/orders?page=2") == "/orders?page=2"
        orders = await shop_browser.get("/orders")
        assert orders.status_code == 200 and orders.json() == {"signed_in_as": "alice"}

        signed_out = await shop_browser.post("/auth/logout")
        assert (await shop_browser.get("/orders")).status_code == 401
    # On to Passgate's end_session_endpoint with the ID token as the hint: Passgate's session ends too.
    end_session = signed_out.headers["location"]
    assert signed_out.status_code == 303 and end_session.startswith(f"{login.issuer}/oauth2/logout?client_id=shop&")
    assert "id_token_hint=" in end_session
    assert (await person.get(end_session)).status_code == 200  # "You are signed out"
    assert (await person.get("/auth/session")).status_code == 401


@pytest.mark.parametrize("next_path", ["//evil.example/", "https://evil.example/orders", "/\\evil.example"])
async def test_the_router_never_sends_the_person_to_another_site(
    passgate: Any, person: httpx.AsyncClient, next_path: str
) -> None:
    async with browser(shop(login_for(passgate)), APP) as shop_browser:
        assert await through_the_router(shop_browser, person, next_path) == "/"


async def test_the_router_refuses_a_callback_it_did_not_start(passgate: Any, person: httpx.AsyncClient) -> None:
    login = login_for(passgate)
    url, _ = await login.abegin()
    answer = await authorize(person, url)  # a code for someone else's pending sign-in (login CSRF)
    async with browser(shop(login), APP) as shop_browser:
        refused = await shop_browser.get("/auth/callback?" + urlencode(answer))
        orders = await shop_browser.get("/orders")

    assert refused.status_code == 400 and "state_mismatch" in refused.text
    assert orders.status_code == 401


async def test_the_router_answers_each_pending_sign_in_once(passgate: Any, person: httpx.AsyncClient) -> None:
    async with browser(shop(login_for(passgate)), APP) as shop_browser:
        started = await shop_browser.get("/auth/login")
        answer = await authorize(person, started.headers["location"])
        wrong = await shop_browser.get("/auth/callback?" + urlencode({**answer, "state": "guessed"}))
        right = await shop_browser.get("/auth/callback?" + urlencode(answer))

        assert wrong.status_code == 400 and right.status_code == 400  # the first answer used the pending sign-in up
        assert (await shop_browser.get("/orders")).status_code == 401


async def test_the_router_answers_503_when_passgate_cannot_be_reached() -> None:
    login = PassgateLogin(issuer=f"http://127.0.0.1:{unused_port()}", client_id="shop", redirect_uri=CALLBACK)
    async with browser(shop(login), APP) as shop_browser:
        started = await shop_browser.get("/auth/login")

    assert started.status_code == 503 and "issuer_unreachable" in started.text
