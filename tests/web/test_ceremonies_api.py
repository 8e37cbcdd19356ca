"""The JSON API's happy paths, driven by the software authenticator over real HTTP semantics."""

from __future__ import annotations

import httpx

from passgate.core.encoding import b64url_decode
from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, login_options, sign_up


async def test_sign_up_creates_the_account_and_signs_in(server: Server, browser: httpx.AsyncClient) -> None:
    authenticator = SoftwareAuthenticator()
    result = await sign_up(browser, authenticator, "Alice")
    assert result["verified"] is True and result["newAccount"] is True
    assert result["user"]["username"] == "Alice"
    session = await browser.get("/auth/session")
    assert session.status_code == 200
    assert session.json()["user"]["id"] == result["user"]["id"]
    users = server.rows("SELECT username, user_handle FROM users")
    assert len(users) == 1 and len(users[0][1]) == 32
    assert users[0][1] not in (b"Alice", result["user"]["id"].encode())
    assert server.rows("SELECT count(*) FROM credentials") == [(1,)]
    # The token is stored only as its hash.
    token = browser.cookies["passgate_session"]
    assert all(token.encode() not in row[0] for row in server.rows("SELECT token_hash FROM sessions"))


async def test_creation_options_follow_the_spec(browser: httpx.AsyncClient) -> None:
    response = await browser.post("/auth/passkey/register/begin", json={"username": "bob", "displayName": "Bob B"})
    options = response.json()
    # The sealed ceremony state (at least the spec's 16 random bytes in it), new at each begin.
    again = await browser.post("/auth/passkey/register/begin", json={"username": "bob", "displayName": "Bob B"})
    assert again.json()["challenge"] != options["challenge"]
    assert len(b64url_decode(options["challenge"])) >= 16 + 32
    assert len(b64url_decode(options["user"]["id"])) >= 32
    assert options["user"]["name"] == "bob" and options["user"]["displayName"] == "Bob B"
    assert options["rp"]["id"] == "localhost"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["attestation"] == "none"
    assert options["extensions"] == {"credProps": True}
    assert "excludeCredentials" not in options
    cookie = response.headers["set-cookie"]
    assert "passgate_ceremony=" in cookie and "HttpOnly" in cookie


async def test_discoverable_sign_in_with_no_body_and_no_content_type(
    server: Server, browser: httpx.AsyncClient
) -> None:
    authenticator = SoftwareAuthenticator(sign_count=0)
    await sign_up(browser, authenticator, "carol")
    await browser.post("/auth/logout")
    assert (await browser.get("/auth/session")).status_code == 401
    begin = await browser.post("/auth/passkey/login/begin")  # exactly what the seed's code sends
    assert begin.status_code == 200
    assert begin.json()["allowCredentials"] == []
    complete = await browser.post("/auth/passkey/login/complete", json=authenticator.get(begin.json(), origin=ORIGIN))
    assert complete.status_code == 200, complete.text
    assert complete.json()["user"]["username"] == "carol"
    assert (await browser.get("/auth/session")).status_code == 200
    assert server.rows("SELECT sign_count FROM credentials") == [(1,)]
    assert server.rows("SELECT last_used_at IS NOT NULL FROM credentials") == [(1,)]
    assert server.rows("SELECT type, outcome FROM events WHERE type = 'sign_in'") == [("sign_in", "success")]


async def test_username_first_lists_the_users_passkeys(browser: httpx.AsyncClient) -> None:
    authenticator = SoftwareAuthenticator()
    result = await sign_up(browser, authenticator, "dave")
    options = await login_options(browser, username="DAVE")  # usernames are case-insensitive
    assert [c["id"] for c in options["allowCredentials"]] == [result["credentialId"]]
    complete = await browser.post("/auth/passkey/login/complete", json=authenticator.get(options, origin=ORIGIN))
    assert complete.status_code == 200


async def test_unknown_username_is_not_revealed(browser: httpx.AsyncClient) -> None:
    await sign_up(browser, SoftwareAuthenticator(), "erin")
    known = await login_options(browser, username="erin")
    unknown = await login_options(browser, username="nobody-here")
    again = await login_options(browser, username="nobody-here")
    assert set(known) == set(unknown)
    assert len(known["allowCredentials"]) == 1 and 1 <= len(unknown["allowCredentials"]) <= 3
    assert all(set(c) == {"type", "id", "transports"} for c in unknown["allowCredentials"])
    assert unknown["allowCredentials"] == again["allowCredentials"]  # stable, so repeated probes learn nothing


async def test_adding_a_passkey_when_signed_in(server: Server, browser: httpx.AsyncClient) -> None:
    phone, laptop = SoftwareAuthenticator(), SoftwareAuthenticator(algorithm=-8)
    result = await sign_up(browser, phone, "frank")
    begin = await browser.post(
        "/auth/passkey/register/begin", json={"userId": result["user"]["id"], "excludeCredentials": True}
    )
    assert begin.status_code == 200
    options = begin.json()
    assert [c["id"] for c in options["excludeCredentials"]] == [result["credentialId"]]
    complete = await browser.post("/auth/passkey/register/complete", json=laptop.create(options, origin=ORIGIN))
    assert complete.status_code == 200 and complete.json()["newAccount"] is False
    assert server.rows("SELECT count(*) FROM credentials WHERE user_id = ?", result["user"]["id"]) == [(2,)]
    listed = (await browser.get("/auth/passkeys")).json()["passkeys"]
    assert len(listed) == 2


async def test_sign_in_rotates_the_session(browser: httpx.AsyncClient, server: Server) -> None:
    authenticator = SoftwareAuthenticator()
    await sign_up(browser, authenticator, "gina")
    first = browser.cookies["passgate_session"]
    options = await login_options(browser)
    await browser.post("/auth/passkey/login/complete", json=authenticator.get(options, origin=ORIGIN))
    second = browser.cookies["passgate_session"]
    assert first != second
    assert server.rows("SELECT count(*) FROM sessions") == [(1,)]
    async with server.client() as stale:
        stale.cookies.set("passgate_session", first)
        assert (await stale.get("/auth/session")).status_code == 401


async def test_sessions_expire_when_idle_and_at_their_absolute_end(server: Server, browser: httpx.AsyncClient) -> None:
    await sign_up(browser, SoftwareAuthenticator(), "hank")
    server.clock.advance(hours=11)
    assert (await browser.get("/auth/session")).status_code == 200
    server.clock.advance(hours=12, minutes=1)
    assert (await browser.get("/auth/session")).status_code == 401


async def test_logout_ends_the_session(server: Server, browser: httpx.AsyncClient) -> None:
    await sign_up(browser, SoftwareAuthenticator(), "ivy")
    response = await browser.post("/auth/logout")
    assert response.status_code == 200 and response.json() == {"signedOut": True}
    assert server.rows("SELECT count(*) FROM sessions") == [(0,)]
    assert (await browser.get("/auth/session")).status_code == 401


async def test_abandoned_sign_up_does_not_hold_the_username(server: Server) -> None:
    async with server.client() as first, server.client() as second:
        await first.post("/auth/passkey/register/begin", json={"username": "jo"})
        assert server.rows("SELECT count(*) FROM users") == [(0,)]
        await sign_up(second, SoftwareAuthenticator(), "jo")
        assert server.rows("SELECT username FROM users") == [("jo",)]


async def test_openapi_describes_the_api(browser: httpx.AsyncClient) -> None:
    spec = (await browser.get("/openapi.json")).json()
    for path in (
        "/auth/passkey/register/begin",
        "/auth/passkey/register/complete",
        "/auth/passkey/login/begin",
        "/auth/passkey/login/complete",
        "/auth/session",
        "/auth/logout",
        "/auth/consents",
        "/auth/consents/{client_id}",
        "/auth/password/available",
        "/auth/password/login",
        "/auth/password",
    ):
        assert path in spec["paths"]
    begin = spec["paths"]["/auth/passkey/register/begin"]["post"]
    assert {"username", "conditional"} <= set(
        begin["requestBody"]["content"]["application/json"]["schema"]["properties"]
    )
    login = spec["paths"]["/auth/password/login"]["post"]
    assert set(login["requestBody"]["content"]["application/json"]["schema"]["properties"]) == {"username", "password"}
    assert "delete" in spec["paths"]["/auth/password"]


async def test_pages_are_served_with_security_headers(browser: httpx.AsyncClient) -> None:
    for path in ("/signin", "/signup"):
        page = await browser.get(path)
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    assert (await browser.get("/account")).status_code == 303
    script = await browser.get("/static/passgate.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
