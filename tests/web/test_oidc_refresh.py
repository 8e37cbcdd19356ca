"""Refresh tokens (offline_access), revocation (RFC 7009) and introspection (RFC 7662), with authlib's client as
the relying party. Tests are named after the OpenID conformance suite's modules where one fits."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, sign_up
from tests.web.test_oidc_code_flow import (
    CALLBACK,
    SECRET,
    SPA_CALLBACK,
    code_for,
    discover,
    verified_id_token,
)

OFFLINE = ["openid", "profile", "email", "offline_access"]
CLIENTS = [
    {"client_id": "shop", "client_secret": SECRET, "redirect_uris": [CALLBACK], "first_party": True, "scopes": OFFLINE},
    {"client_id": "spa", "redirect_uris": [SPA_CALLBACK], "first_party": True, "scopes": OFFLINE},
    {
        "client_id": "partner",
        "client_secret": SECRET,
        "redirect_uris": ["https://partner.example/cb"],
        "scopes": OFFLINE,
    },
    {"client_id": "online", "client_secret": SECRET, "redirect_uris": [CALLBACK], "first_party": True},
]
TOKEN_ENDPOINT = f"{ORIGIN}/oauth2/token"


@pytest.fixture
def provider(make_server: Callable[..., Server]) -> Server:
    return make_server(oidc_clients=CLIENTS)


@pytest.fixture
async def person(provider: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        yield browser


def offline_party(provider: Server, client_id: str = "shop", scope: str = " ".join(OFFLINE)) -> AsyncOAuth2Client:
    """authlib's client; a confidential client uses client_secret_basic, a public one `none`."""
    secret = None if client_id == "spa" else SECRET
    return AsyncOAuth2Client(
        client_id=client_id,
        client_secret=secret,
        scope=scope,
        redirect_uri=SPA_CALLBACK if client_id == "spa" else CALLBACK,
        code_challenge_method="S256",
        transport=httpx.ASGITransport(app=provider.app),
        base_url=ORIGIN,
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
    )


async def tokens_for(rp: AsyncOAuth2Client, person: httpx.AsyncClient) -> dict[str, Any]:
    metadata = await discover(rp)
    location, state, verifier = await code_for(rp, person, metadata)
    token: dict[str, Any] = await rp.fetch_token(
        metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
    )
    return token


def basic(client_id: str = "shop", secret: str = SECRET) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def post(provider: Server, path: str, form: dict[str, str], headers: dict[str, str]) -> httpx.Response:
    async with provider.client() as client:
        return await client.post(path, data=form, headers=headers)


async def refresh(provider: Server, refresh_token: str, client_id: str = "shop", **extra: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return await post(provider, "/oauth2/token", form, basic(client_id))


async def introspect(provider: Server, token: str, client_id: str = "shop", **extra: str) -> dict[str, Any]:
    response = await post(provider, "/oauth2/introspect", {"token": token, **extra}, basic(client_id))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    answer: dict[str, Any] = response.json()
    return answer


def events(provider: Server, type_: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    rows = provider.rows("SELECT outcome, reason, detail FROM events WHERE type = ? ORDER BY id", type_)
    return [(outcome, reason, json.loads(detail)) for outcome, reason, detail in rows]


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    assert "refresh_token" not in response.json()


async def test_oidcc_refresh_token(provider: Server, person: httpx.AsyncClient) -> None:
    """The refresh token rotates on each use; the new ID token has the same sub, auth_time and sid."""
    async with offline_party(provider) as rp:
        first = await tokens_for(rp, person)
        assert first["scope"] == "openid profile email offline_access" and first["refresh_token"]
        original = await verified_id_token(rp, first["id_token"], provider)
        provider.clock.advance(minutes=10)  # the first access token has expired
        second = await rp.refresh_token(TOKEN_ENDPOINT)
        refreshed = await verified_id_token(rp, second["id_token"], provider)
        userinfo = await rp.get("/oauth2/userinfo")
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"] and second["expires_in"] == 300
    for claim in ("iss", "sub", "aud", "azp", "auth_time", "sid", "amr", "acr"):
        assert refreshed[claim] == original[claim], claim
    assert refreshed["iat"] == original["iat"] + 600 and "nonce" not in refreshed
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == original["sub"]
    assert_invalid_grant(await refresh(provider, first["refresh_token"]))  # the rotated one is used up
    [(_, _, detail)] = [e for e in events(provider, "oidc.refresh") if e[0] == "success"]
    assert detail["generation"] == 1 and detail["sid"] == original["sid"]


async def test_a_reused_refresh_token_revokes_its_family(provider: Server, person: httpx.AsyncClient) -> None:
    async with offline_party(provider) as rp:
        first = await tokens_for(rp, person)
    second = (await refresh(provider, first["refresh_token"])).json()
    assert await introspect(provider, second["access_token"]) != {"active": False}
    assert_invalid_grant(await refresh(provider, first["refresh_token"]))
    assert_invalid_grant(await refresh(provider, second["refresh_token"]))  # the family's newest, too
    assert await introspect(provider, second["access_token"]) == {"active": False}
    assert await introspect(provider, second["refresh_token"]) == {"active": False}
    assert await introspect(provider, first["access_token"]) == {"active": False}
    reuse = [detail for _, reason, detail in events(provider, "oidc.refresh") if detail.get("reuse")]
    assert len(reuse) == 1 and events(provider, "oidc.refresh")[1][1] == "invalid_grant"


async def test_two_uses_of_one_refresh_token_at_once_rotate_it_once(
    provider: Server, person: httpx.AsyncClient
) -> None:
    async with offline_party(provider) as rp:
        first = await tokens_for(rp, person)
    answers = await asyncio.gather(*(refresh(provider, first["refresh_token"]) for _ in range(2)))
    assert sorted(response.status_code for response in answers) == [200, 400]
    [issued] = [response.json() for response in answers if response.status_code == 200]
    assert_invalid_grant(await refresh(provider, issued["refresh_token"]))  # the family is revoked


@pytest.mark.parametrize(("client_id", "scope"), [("shop", "openid profile"), ("online", " ".join(OFFLINE))])
async def test_no_refresh_token_without_offline_access(
    provider: Server, person: httpx.AsyncClient, client_id: str, scope: str
) -> None:
    """Not asked for, or asked for by a client that may not have it."""
    async with offline_party(provider, client_id, scope) as rp:
        token = await tokens_for(rp, person)
    assert "refresh_token" not in token and "offline_access" not in token["scope"].split()
    assert provider.rows("SELECT count(*) FROM refresh_tokens") == [(0,)]


async def test_a_refresh_may_narrow_the_scope_never_widen_it(provider: Server, person: httpx.AsyncClient) -> None:
    async with offline_party(provider, scope="openid profile offline_access") as rp:
        first = await tokens_for(rp, person)
    wider = await refresh(provider, first["refresh_token"], scope="openid profile email offline_access")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    narrower = await refresh(provider, first["refresh_token"], scope="openid offline_access")  # still usable
    assert narrower.status_code == 200, narrower.text
    assert narrower.json()["scope"] == "openid offline_access"
    async with provider.client() as client:
        bearer = {"authorization": f"Bearer {narrower.json()['access_token']}"}
        userinfo = (await client.get("/oauth2/userinfo", headers=bearer)).json()
    assert set(userinfo) == {"sub"}  # profile was narrowed away
    # The refresh token keeps the grant's scope (RFC 6749 section 6).
    again = await refresh(provider, narrower.json()["refresh_token"])
    assert again.json()["scope"] == "openid profile offline_access"


async def test_a_public_client_refreshes_with_its_client_id(provider: Server, person: httpx.AsyncClient) -> None:
    async with offline_party(provider, "spa") as rp:
        first = await tokens_for(rp, person)
        second = await rp.refresh_token(TOKEN_ENDPOINT)
    assert second["refresh_token"] != first["refresh_token"] and second["id_token"]
    stolen = await refresh(provider, second["refresh_token"], client_id="shop")  # another client's
    assert_invalid_grant(stolen)
    async with provider.client() as client:
        form = {"grant_type": "refresh_token", "refresh_token": second["refresh_token"], "client_id": "spa"}
        third = await client.post("/oauth2/token", data=form)
    assert third.status_code == 200 and third.json()["refresh_token"]


async def test_a_refresh_token_outlives_the_session_until_it_idles_out(
    provider: Server, person: httpx.AsyncClient
) -> None:
    async with offline_party(provider) as rp:
        first = await tokens_for(rp, person)
    await person.post("/auth/logout")
    assert await introspect(provider, first["access_token"]) == {"active": False}  # the session's
    second = await refresh(provider, first["refresh_token"])
    assert second.status_code == 200, second.text
    assert (await introspect(provider, second.json()["access_token"]))["active"] is True  # the grant's
    provider.clock.advance(days=14)
    assert await introspect(provider, second.json()["refresh_token"]) == {"active": False}
    assert_invalid_grant(await refresh(provider, second.json()["refresh_token"]))


async def test_revoking_a_refresh_token_revokes_its_family(provider: Server, person: httpx.AsyncClient) -> None:
    async with offline_party(provider) as rp:
        first = await tokens_for(rp, person)
    second = (await refresh(provider, first["refresh_token"])).json()
    form = {"token": second["refresh_token"], "token_type_hint": "refresh_token"}
    response = await post(provider, "/oauth2/revoke", form, basic())
    assert response.status_code == 200 and response.content == b""
    assert_invalid_grant(await refresh(provider, second["refresh_token"]))
    assert await introspect(provider, second["access_token"]) == {"active": False}
    [(outcome, _, detail)] = events(provider, "oidc.revoke")
    assert outcome == "success" and detail["token_type"] == "refresh_token"


async def test_revoking_an_access_token(provider: Server, person: httpx.AsyncClient) -> None:
    async with offline_party(provider) as rp:
        token = await tokens_for(rp, person)
    other = await post(provider, "/oauth2/revoke", {"token": token["access_token"]}, basic("partner"))
    assert other.status_code == 200  # another client's token: answered the same, left alone
    assert (await introspect(provider, token["access_token"]))["active"] is True
    revoked = await post(provider, "/oauth2/revoke", {"token": token["access_token"]}, basic())
    assert revoked.status_code == 200
    assert await introspect(provider, token["access_token"]) == {"active": False}
    async with provider.client() as client:
        userinfo = await client.get("/oauth2/userinfo", headers={"authorization": f"Bearer {token['access_token']}"})
    assert userinfo.status_code == 401
    assert (await refresh(provider, token["refresh_token"])).status_code == 200  # the refresh token stays


async def test_revocation_answers_unknown_tokens_and_refuses_public_clients(provider: Server) -> None:
    unknown = await post(provider, "/oauth2/revoke", {"token": "never-issued"}, basic())
    assert unknown.status_code == 200
    missing = await post(provider, "/oauth2/revoke", {}, basic())
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    public = await post(provider, "/oauth2/revoke", {"token": "x", "client_id": "spa"}, {})
    assert public.status_code == 401 and public.json()["error"] == "invalid_client"
    wrong = await post(provider, "/oauth2/revoke", {"token": "x"}, basic(secret="wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


async def test_introspection_of_live_tokens(provider: Server, person: httpx.AsyncClient) -> None:
    async with offline_party(provider) as rp:
        token = await tokens_for(rp, person)
        claims = await verified_id_token(rp, token["id_token"], provider)
    access = await introspect(provider, token["access_token"], token_type_hint="access_token")
    issued_at = int(provider.clock().timestamp())
    assert access == {
        "active": True,
        "token_type": "Bearer",
        "iss": ORIGIN,
        "sub": claims["sub"],
        "aud": "shop",
        "client_id": "shop",
        "scope": "openid profile email offline_access",
        "iat": issued_at,
        "exp": issued_at + 300,
        "sid": claims["sid"],
    }
    refresh_token = await introspect(provider, token["refresh_token"], token_type_hint="access_token")  # hint wrong
    assert refresh_token["active"] is True and refresh_token["token_type"] == "refresh_token"
    assert refresh_token["sub"] == claims["sub"] and refresh_token["sid"] == claims["sid"]
    assert refresh_token["exp"] == issued_at + 14 * 24 * 3600
    provider.clock.advance(minutes=6)
    assert await introspect(provider, token["access_token"]) == {"active": False}  # expired


async def test_introspection_of_what_is_not_live(provider: Server, person: httpx.AsyncClient) -> None:
    async with offline_party(provider) as rp:
        token = await tokens_for(rp, person)
    for what in ("nonsense", token["id_token"]):
        assert await introspect(provider, what) == {"active": False}
    for what in (token["access_token"], token["refresh_token"]):
        assert await introspect(provider, what, client_id="partner") == {"active": False}  # another client's
    public = await post(provider, "/oauth2/introspect", {"token": token["access_token"], "client_id": "spa"}, {})
    assert public.status_code == 401 and public.json()["error"] == "invalid_client"
    wrong = await post(provider, "/oauth2/introspect", {"token": token["access_token"]}, basic(secret="wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")


async def test_refresh_refusals_issue_nothing(provider: Server, person: httpx.AsyncClient) -> None:
    async with offline_party(provider) as rp:
        token = await tokens_for(rp, person)
    before = provider.rows("SELECT token_hash, used_at, revoked FROM refresh_tokens")
    assert_invalid_grant(await refresh(provider, "never-issued"))
    missing = await post(provider, "/oauth2/token", {"grant_type": "refresh_token"}, basic())
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    bad_secret = await post(
        provider,
        "/oauth2/token",
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        basic(secret="x"),
    )
    assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"
    assert provider.rows("SELECT token_hash, used_at, revoked FROM refresh_tokens") == before
    with pytest.raises(OAuthError):
        async with offline_party(provider, "partner") as partner:
            await partner.refresh_token(TOKEN_ENDPOINT, refresh_token=token["refresh_token"])
    assert provider.rows("SELECT token_hash, used_at, revoked FROM refresh_tokens") == before


async def test_housekeeping_deletes_refresh_tokens_once_their_family_has_expired(
    provider: Server, person: httpx.AsyncClient
) -> None:
    from passgate.service import housekeeping

    async with offline_party(provider) as rp:
        first = await tokens_for(rp, person)
    assert (await refresh(provider, first["refresh_token"])).status_code == 200
    await housekeeping.purge(provider.app.state.ctx)
    assert provider.rows("SELECT count(*) FROM refresh_tokens") == [(2,)]  # the used one still detects reuse
    provider.clock.advance(days=30, seconds=1)
    await housekeeping.purge(provider.app.state.ctx)
    assert provider.rows("SELECT count(*) FROM refresh_tokens") == [(0,)]
