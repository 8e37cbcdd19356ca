"""RP-initiated and back-channel logout against a real receiver on loopback. Named after the OpenID conformance
suite's modules."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, sign_up
from tests.web.test_account_api import account, add_passkey
from tests.web.test_oidc_code_flow import CALLBACK, SECRET, code_for, discover, query, relying_party
from tests.web.test_passkey_removal import passkey_id, sign_in

AFTER_LOGOUT = "https://shop.example/signed-out"


class Receiver:
    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.refuse = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                if receiver.refuse:
                    receiver.refuse -= 1
                    self.send_response(503)
                else:
                    receiver.tokens.append(parse_qs(body)["logout_token"][0])
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/backchannel"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    thread = threading.Thread(target=receiving.server.serve_forever, daemon=True)
    thread.start()
    yield receiving
    receiving.server.shutdown()


@pytest.fixture
def provider(make_server: Callable[..., Server], receiver: Receiver) -> Server:
    shop = {
        "client_id": "shop",
        "client_secret": SECRET,
        "redirect_uris": [CALLBACK],
        "post_logout_redirect_uris": [AFTER_LOGOUT],
        "backchannel_logout_uri": receiver.url,
        "first_party": True,
    }
    return make_server(oidc_clients=[shop])


async def signed_in_at_shop(provider: Server, browser: httpx.AsyncClient) -> tuple[dict[str, Any], str, str]:
    """The token response, the ID token's sid and the access token."""
    async with relying_party(provider) as rp:
        metadata = await discover(rp)
        location, state, verifier = await code_for(rp, browser, metadata)
        token = await rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
        )
    sid = jwt.decode(token["id_token"], await jwks(browser)).claims["sid"]
    return token, sid, token["access_token"]


async def jwks(client: httpx.AsyncClient) -> KeySet:
    return KeySet.import_key_set((await client.get("/.well-known/jwks.json")).json())


async def received(receiver: Receiver, count: int = 1) -> list[str]:
    for _ in range(200):
        if len(receiver.tokens) >= count:
            return receiver.tokens
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(receiver.tokens)} logout tokens received")


async def assert_logout_token(client: httpx.AsyncClient, token: str, *, sid: str, sub: str) -> None:
    decoded = jwt.decode(token, await jwks(client), algorithms=["RS256"])
    assert decoded.header["typ"] == "logout+jwt"
    claims = decoded.claims
    assert claims["iss"] == ORIGIN and claims["aud"] == "shop" and claims["sid"] == sid and claims["sub"] == sub
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert "nonce" not in claims and claims["exp"] - claims["iat"] == 120 and claims["jti"]


async def test_oidcc_backchannel_rp_initiated_logout(provider: Server, receiver: Receiver) -> None:
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        token, sid, access = await signed_in_at_shop(provider, browser)
        sub = jwt.decode(token["id_token"], await jwks(browser)).claims["sub"]
        answer = await browser.get(
            "/oauth2/logout",
            params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT, "state": "s1"},
        )
        assert answer.status_code == 303
        assert answer.headers["location"].startswith(AFTER_LOGOUT + "?") and query(answer.headers["location"]) == {
            "state": "s1"
        }
        assert (await browser.get("/auth/session")).json().get("user") is None
        userinfo = await browser.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {access}"})
        assert userinfo.status_code == 401
        [logout_token] = await received(receiver)
        await assert_logout_token(browser, logout_token, sid=sid, sub=sub)


async def test_oidcc_backchannel_logout_on_sign_out_delivered_by_retry(provider: Server, receiver: Receiver) -> None:
    receiver.refuse = 1  # down at first
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        token, sid, _ = await signed_in_at_shop(provider, browser)
        sub = jwt.decode(token["id_token"], await jwks(browser)).claims["sub"]
        assert (await browser.post("/auth/logout")).status_code == 200
        for _ in range(100):
            if receiver.refuse == 0:
                break
            await asyncio.sleep(0.05)
        assert receiver.tokens == []
        provider.clock.advance(seconds=31)
        [logout_token] = await received(receiver)
        await assert_logout_token(browser, logout_token, sid=sid, sub=sub)


@pytest.mark.parametrize(
    "parameters",
    [
        {"client_id": "shop", "post_logout_redirect_uri": "https://evil.example/"},
        {"post_logout_redirect_uri": AFTER_LOGOUT},
        {"id_token_hint": "eyJhbGciOiJub25lIn0.eyJhdWQiOiJzaG9wIn0.", "post_logout_redirect_uri": AFTER_LOGOUT},
    ],
)
async def test_oidcc_rp_initiated_logout_bad_post_logout_redirect_uri(
    provider: Server, parameters: dict[str, str]
) -> None:
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        answer = await browser.get("/oauth2/logout", params=parameters)
        assert answer.status_code == 400 and "location" not in answer.headers
        assert (await browser.get("/auth/session")).json()["user"]["username"] == "alice"


async def test_oidcc_backchannel_logout_on_passkey_removal_from_another_device(
    provider: Server, receiver: Receiver
) -> None:
    phone, laptop = SoftwareAuthenticator(), SoftwareAuthenticator()
    async with provider.client() as on_phone, provider.client() as on_laptop:
        await sign_up(on_phone, phone, "nia")
        assert (await add_passkey(on_phone, laptop)).status_code == 200
        token, sid, _ = await signed_in_at_shop(provider, on_phone)
        sub = jwt.decode(token["id_token"], await jwks(on_phone)).claims["sub"]
        await sign_in(on_laptop, laptop)
        lost = passkey_id(phone, (await account(on_laptop))["passkeys"])
        assert (await on_laptop.delete(f"/auth/passkeys/{lost}")).status_code == 200
        [logout_token] = await received(receiver)
        await assert_logout_token(on_laptop, logout_token, sid=sid, sub=sub)


async def test_oidcc_rp_initiated_logout_asks_without_a_hint_for_this_session(provider: Server) -> None:
    async with provider.client() as browser, provider.client() as elsewhere:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        asked = await browser.get(
            "/oauth2/logout", params={"client_id": "shop", "post_logout_redirect_uri": AFTER_LOGOUT, "state": "s2"}
        )
        assert asked.status_code == 200 and 'id="logout-confirm"' in asked.text
        [confirmation] = re.findall(r'name="confirmation" value="([^"]+)"', asked.text)
        assert (await browser.get("/auth/session")).json()["user"]["username"] == "alice"
        form = {"client_id": "shop", "post_logout_redirect_uri": AFTER_LOGOUT, "state": "s2"}
        forged = await browser.post("/oauth2/logout", data={**form, "confirmation": "forged"})
        assert forged.status_code == 200 and (await browser.get("/auth/session")).json()["user"]
        await sign_up(elsewhere, SoftwareAuthenticator(), "bob")
        another = await elsewhere.post("/oauth2/logout", data={**form, "confirmation": confirmation})
        assert another.status_code == 200 and (await elsewhere.get("/auth/session")).json()["user"]
        done = await browser.post("/oauth2/logout", data={**form, "confirmation": confirmation})
        assert done.status_code == 303 and query(done.headers["location"]) == {"state": "s2"}
        assert (await browser.get("/auth/session")).json().get("user") is None


async def test_oidcc_rp_initiated_logout_refuses_a_hint_signed_by_another_key(provider: Server) -> None:
    foreign = jwt.encode(
        {"alg": "RS256"}, {"iss": ORIGIN, "aud": "shop", "sub": "x", "sid": "y"}, RSAKey.generate_key(2048)
    )
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        answer = await browser.get(
            "/oauth2/logout", params={"id_token_hint": foreign, "post_logout_redirect_uri": AFTER_LOGOUT}
        )
        assert answer.status_code == 400 and "location" not in answer.headers
        assert (await browser.get("/auth/session")).json()["user"]["username"] == "alice"
