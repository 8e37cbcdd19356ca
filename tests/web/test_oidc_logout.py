"""RP-initiated and back-channel logout against a real receiver on loopback. Named after the OpenID conformance
suite's modules."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
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
        assert (await browser.get("/oauth2/logout", params={"client_id": "shop"})).status_code == 200  # signed out
    [(user_id, detail)] = provider.rows("SELECT user_id, detail FROM events WHERE type = 'sign_out'")
    assert user_id == sub and json.loads(detail) == {"sid": sid, "logout_tokens": 1, "client_id": "shop"}


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


async def test_oidcc_backchannel_logout_when_an_administrator_signs_a_person_out(
    make_server: Callable[..., Server], receiver: Receiver, tmp_path: Path
) -> None:
    """`passgate users sign-out`: every session ends, the app is told, and its refresh token stops working."""
    from passgate.service import mail_queue
    from tests.web.test_keys_cli import SECRET as SERVER_SECRET
    from tests.web.test_oidc_refresh import OFFLINE, offline_party, refresh, tokens_for

    shop = {
        "client_id": "shop",
        "client_secret": SECRET,
        "redirect_uris": [CALLBACK],
        "backchannel_logout_uri": receiver.url,
        "first_party": True,
        "scopes": OFFLINE,
    }
    provider = make_server(oidc_clients=[shop], secret_key=SERVER_SECRET)
    config = tmp_path / "passgate.toml"  # the command reads the server's configuration file
    config.write_text("[[oidc.clients]]\n" + "".join(f"{name} = {json.dumps(value)}\n" for name, value in shop.items()))
    authenticator = SoftwareAuthenticator()
    async with provider.client() as browser, provider.client() as laptop:
        await sign_up(browser, authenticator, "alice")
        async with offline_party(provider) as rp:
            token = await tokens_for(rp, browser)
        claims = jwt.decode(token["id_token"], await jwks(browser)).claims
        await sign_in(laptop, authenticator)
        async with provider.client() as bob:
            await sign_up(bob, SoftwareAuthenticator(), "bob")

            refused = passgate_cli(provider, config, "users", "sign-out", "nobody")
            assert refused.returncode == 1 and "no account" in refused.stderr
            done = passgate_cli(provider, config, "users", "sign-out", "ALICE")  # one normalisation for every look-up
            assert done.returncode == 0, done.stderr
            assert "2 session(s) ended, 1 back-channel logout(s) queued, 1 refresh token(s) revoked" in done.stdout

            for device in (browser, laptop):
                assert (await device.get("/auth/session")).status_code == 401
            assert (await bob.get("/auth/session")).status_code == 200  # another person is untouched
        assert (await refresh(provider, token["refresh_token"])).json()["error"] == "invalid_grant"
        provider.clock.now = datetime.now(UTC)  # the command queued at the real time
        await mail_queue.flush(provider.app.state.ctx)
        [logout_token] = await received(receiver)
        await assert_logout_token(browser, logout_token, sid=claims["sid"], sub=claims["sub"])
    [(detail,)] = provider.rows("SELECT detail FROM events WHERE type = 'admin.sign_out' AND outcome = 'success'")
    assert json.loads(detail) == {"admin_key": "cli", "sessions": 2, "logout_tokens": 1, "refresh_tokens": 1}


def passgate_cli(server: Server, config: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    from tests.web.test_keys_cli import SECRET as SERVER_SECRET

    environment = {name: value for name, value in os.environ.items() if not name.startswith("PASSGATE_")}
    environment["PASSGATE_SECRET_KEY"] = SERVER_SECRET
    database = f"sqlite:///{server.database}"
    command = [sys.executable, "-m", "passgate", *arguments, "--config", str(config), "--database-url", database]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120, check=False)


async def test_oidcc_rp_initiated_logout_refuses_a_hint_before_anything_was_signed(provider: Server) -> None:
    """A provider that has signed no token yet refuses a hint that is no token, or one with a key id it never had."""
    unknown_kid = jwt.encode(
        {"alg": "RS256", "kid": "never"}, {"iss": ORIGIN, "aud": "shop"}, RSAKey.generate_key(2048)
    )
    async with provider.client() as browser:
        for hint in ("x", unknown_kid):
            answer = await browser.get("/oauth2/logout", params={"id_token_hint": hint})
            assert answer.status_code == 400 and "location" not in answer.headers
