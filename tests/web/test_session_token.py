"""POST /auth/session/token and /.well-known/jwks.json: session JWTs a backend verifies offline, their amr and acr."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from passgate.core.encoding import b64url_encode
from passgate.service.context import digest
from passgate.testing import SoftwareAuthenticator
from passgate.testing.packed import packed_attestation
from tests.conftest import SmtpServer
from tests.web.conftest import ORIGIN, Server, login_options, sign_up
from tests.web.test_account_api import error, set_verified_email


async def fetch_jwks(client: httpx.AsyncClient) -> KeySet:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return KeySet.import_key_set(response.json())


async def session_token(client: httpx.AsyncClient) -> dict[str, Any]:
    """The token's header and claims, verified against the JWKS the server publishes."""
    response = await client.post("/auth/session/token")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    decoded = jwt.decode(body["token"], await fetch_jwks(client), algorithms=["ES256"])
    return {"header": decoded.header, "claims": decoded.claims, "expiresAt": body["expiresAt"]}


async def sign_in(client: httpx.AsyncClient, authenticator: SoftwareAuthenticator) -> None:
    options = await login_options(client)
    response = await client.post("/auth/passkey/login/complete", json=authenticator.get(options, origin=ORIGIN))
    assert response.status_code == 200, response.text


async def test_the_jwks_publishes_an_es256_and_an_rs256_key(server: Server) -> None:
    async with server.client() as client:
        response = await client.get("/.well-known/jwks.json")
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    keys = response.json()["keys"]
    assert sorted((key["kty"], key["alg"], key["use"]) for key in keys) == [
        ("EC", "ES256", "sig"),
        ("RSA", "RS256", "sig"),
    ]
    assert not any(private in key for key in keys for private in ("d", "p", "q", "dp", "dq", "qi"))
    imported = KeySet.import_key_set(response.json())
    assert sorted(key.thumbprint() for key in imported.keys) == sorted(key["kid"] for key in keys)


async def test_a_session_token_names_the_session_and_what_its_sign_in_proved(server: Server) -> None:
    async with server.client() as browser:
        signed_up = await sign_up(browser, SoftwareAuthenticator(), "ada")
        issued = await session_token(browser)
        cookie = browser.cookies["passgate_session"]
    now = int(server.clock.now.timestamp())
    assert issued["header"]["typ"] == "session+jwt" and issued["header"]["alg"] == "ES256"
    claims = issued["claims"]
    [sid] = server.rows("SELECT sid FROM sessions")
    [token_hash] = server.rows("SELECT token_hash FROM sessions")
    assert claims == {
        "iss": ORIGIN,
        "sub": signed_up["user"]["id"],
        "aud": ORIGIN,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": claims["jti"],
        "auth_time": now,
        "sid": sid[0],
        "amr": ["pop", "user", "mfa", "swk"],
        "acr": "phr",
    }
    assert len(claims["jti"]) >= 22
    assert issued["expiresAt"] == (server.clock.now + timedelta(minutes=5)).isoformat()
    # The session's public id is neither its token nor its token's hash.
    assert claims["sid"] not in (cookie, digest(cookie).hex(), b64url_encode(token_hash[0]))
    [event] = server.rows("SELECT type, outcome, user_id FROM events WHERE type = 'session.token'")
    assert event == ("session.token", "success", signed_up["user"]["id"])


async def test_a_configured_audience_and_stable_subject(make_server: Callable[..., Server]) -> None:
    server = make_server(session_token_audience="https://api.example.com")
    authenticator = SoftwareAuthenticator()
    async with server.client() as first:
        await sign_up(first, authenticator, "bea")
        before = (await session_token(first))["claims"]
    server.clock.advance(minutes=10)
    async with server.client() as second:
        await sign_in(second, authenticator)
        after = (await session_token(second))["claims"]
    assert before["aud"] == after["aud"] == "https://api.example.com"
    assert before["sub"] == after["sub"] and before["sid"] != after["sid"] and before["jti"] != after["jti"]
    assert after["auth_time"] == int(server.clock.now.timestamp())


async def test_a_token_needs_a_session_and_a_page_of_the_site(server: Server) -> None:
    async with server.client() as browser:
        error(await browser.post("/auth/session/token"), 401, "not_signed_in")
        await sign_up(browser, SoftwareAuthenticator(), "cat")
        error(
            await browser.post("/auth/session/token", headers={"Origin": "https://evil.example"}),
            403,
            "origin_not_allowed",
        )
    assert server.rows("SELECT count(*) FROM events WHERE type = 'session.token' AND outcome = 'success'") == [(0,)]


async def test_session_tokens_are_rate_limited(make_server: Callable[..., Server]) -> None:
    server = make_server(rate_limit_per_account=2)
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "dan")
        answers = [(await browser.post("/auth/session/token")).status_code for _ in range(3)]
    assert answers == [200, 200, 429]


# The amr and acr table (README, "Signed tokens"): one test a row.


async def test_a_passkey_that_verified_its_user(server: Server) -> None:
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(user_verified=True), "eve")
        claims = (await session_token(browser))["claims"]
    assert (claims["amr"], claims["acr"]) == (["pop", "user", "mfa", "swk"], "phr")


async def test_a_passkey_sign_in_without_user_verification(make_server: Callable[..., Server]) -> None:
    server = make_server(user_verification="preferred")
    authenticator = SoftwareAuthenticator()
    async with server.client() as browser:
        await sign_up(browser, authenticator, "fay")
    authenticator.user_verified = False  # this sign-in did not verify the user, whatever registration did
    async with server.client() as browser:
        await sign_in(browser, authenticator)
        claims = (await session_token(browser))["claims"]
    assert (claims["amr"], claims["acr"]) == (["pop", "swk"], "phr")


async def test_a_synced_passkey(server: Server) -> None:
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(backup_eligible=True, backed_up=True), "gus")
        claims = (await session_token(browser))["claims"]
    assert (claims["amr"], claims["acr"]) == (["pop", "user", "mfa", "swk"], "phr")


@pytest.mark.parametrize(("backup_eligible", "amr", "acr"), [(False, "hwk", "phrh"), (True, "swk", "phr")])
async def test_an_attested_passkey(server: Server, backup_eligible: bool, amr: str, acr: str) -> None:
    """Attestation verified against a trust anchor: hardware-bound only if the passkey cannot leave its device."""
    authenticator = SoftwareAuthenticator(aaguid=bytes(range(16)), backup_eligible=backup_eligible)
    async with server.client() as browser:
        begin = await browser.post("/auth/passkey/register/begin", json={"username": "hal", "displayName": "Hal"})
        packed = packed_attestation(authenticator.create(begin.json(), origin=ORIGIN))
        ctx = server.app.state.ctx
        policy = dataclasses.replace(ctx.rp.policy, trusted_roots={"packed": (packed.root_pem,)})
        server.app.state.ctx = dataclasses.replace(ctx, rp=dataclasses.replace(ctx.rp, policy=policy))
        complete = await browser.post("/auth/passkey/register/complete", json=packed.response)
        assert complete.status_code == 200, complete.text
        claims = (await session_token(browser))["claims"]
    assert server.rows("SELECT attested FROM credentials") == [(1,)]
    assert (claims["amr"], claims["acr"]) == (["pop", "user", "mfa", amr], acr)


async def test_an_attestation_without_a_trust_anchor_is_not_hardware(server: Server) -> None:
    authenticator = SoftwareAuthenticator(aaguid=bytes(range(16)))
    async with server.client() as browser:
        begin = await browser.post("/auth/passkey/register/begin", json={"username": "ian", "displayName": "Ian"})
        packed = packed_attestation(authenticator.create(begin.json(), origin=ORIGIN))
        assert (await browser.post("/auth/passkey/register/complete", json=packed.response)).status_code == 200
        claims = (await session_token(browser))["claims"]
    assert server.rows("SELECT attested FROM credentials") == [(0,)]
    assert (claims["amr"], claims["acr"]) == (["pop", "user", "mfa", "swk"], "phr")


async def test_a_backup_code_session(server: Server) -> None:
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "jan")
        codes = (await browser.post("/auth/recovery/codes")).json()["codes"]
    async with server.client() as browser:
        signed_in = await browser.post("/auth/recovery/codes/sign-in", json={"username": "jan", "code": codes[0]})
        assert signed_in.status_code == 200, signed_in.text
        claims = (await session_token(browser))["claims"]
        assert claims["amr"] == ["otp"] and "acr" not in claims
        # A passkey added while recovering (as recovery asks) makes it a passkey session.
        begin = await browser.post("/auth/passkey/register/begin", json={})
        new = SoftwareAuthenticator()
        complete = await browser.post("/auth/passkey/register/complete", json=new.create(begin.json(), origin=ORIGIN))
        assert complete.status_code == 200, complete.text
        claims = (await session_token(browser))["claims"]
    assert (claims["amr"], claims["acr"]) == (["pop", "user", "mfa", "swk"], "phr")


async def test_an_email_link_session(make_server: Callable[..., Server], smtp: SmtpServer) -> None:
    server = make_server(**smtp.settings)
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "kim")
        await set_verified_email(browser, smtp, "kim@example.com")
    async with server.client() as browser:
        assert (await browser.post("/auth/recovery/email", json={"email": "kim@example.com"})).status_code == 202
        token = (await smtp.mailbox.newest_link("kim@example.com", "/recover/email", count=2)).split("token=")[1]
        assert (await browser.post("/auth/recovery/email/complete", json={"token": token})).status_code == 200
        claims = (await session_token(browser))["claims"]
    assert claims["amr"] == ["otp"] and "acr" not in claims


async def test_get_session_accepts_the_session_token_as_a_bearer_token(server: Server) -> None:
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "cat")
        token = browser.cookies["passgate_session"]
        async with server.client() as app:  # no cookie: a native app, or a backend the token was forwarded to
            error(await app.get("/auth/session"), 401, "not_signed_in")
            answer = await app.get("/auth/session", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200 and answer.json()["user"]["username"] == "cat"
            assert answer.headers["cache-control"] == "no-store"
            forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
            error(await app.get("/auth/session", headers={"Authorization": f"Bearer {forged}"}), 401, "not_signed_in")
        # A bearer token is what is asked about, even beside a valid cookie.
        error(await browser.get("/auth/session", headers={"Authorization": "Bearer unknown"}), 401, "not_signed_in")
        assert (await browser.post("/auth/logout")).status_code == 200
    async with server.client() as app:
        error(await app.get("/auth/session", headers={"Authorization": f"Bearer {token}"}), 401, "not_signed_in")


async def test_a_backend_checks_a_session_tokens_sid_by_introspection(make_server: Callable[..., Server]) -> None:
    """A first-party confidential client (a backend of the site) learns from introspection whether the session a
    session token names still lasts; no other client learns anything."""
    secret = "a-long-random-client-secret-for-the-backend"
    clients = [
        {
            "client_id": "backend",
            "client_secret": secret,
            "redirect_uris": ["https://a.example/cb"],
            "first_party": True,
        },
        {"client_id": "partner", "client_secret": secret, "redirect_uris": ["https://b.example/cb"]},
    ]
    server = make_server(oidc_clients=clients)

    async def introspect(token: str, client_id: str = "backend") -> dict[str, Any]:
        async with server.client() as backend:
            answer = await backend.post("/oauth2/introspect", data={"token": token}, auth=(client_id, secret))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "cat")
        response = await browser.post("/auth/session/token")
        token = response.json()["token"]
        claims = jwt.decode(token, await fetch_jwks(browser), algorithms=["ES256"]).claims
        live = await introspect(token)
        assert live.pop("active") is True and live.pop("token_type") == "session_token"
        assert live == {name: claims[name] for name in ("iss", "sub", "aud", "sid", "iat", "exp")}
        assert await introspect(token, "partner") == {"active": False}  # not a backend of this site
        assert await introspect(token[:-4] + "AAAA") == {"active": False}
        assert (await browser.post("/auth/logout")).status_code == 200
    assert await introspect(token) == {"active": False}  # signed out: the token still verifies, its session is gone
