"""Refused OpenID Connect requests: each answers the error the specs name, and issues nothing."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.web.conftest import ORIGIN, Server
from tests.web.test_oidc_code_flow import (
    CALLBACK,
    PARTNER_CALLBACK,
    SECRET,
    SPA_CALLBACK,
    code_for,
    discover,
    query,
    relying_party,
)

pytest_plugins = ["tests.web.test_oidc_code_flow"]


def authorization_url(**overrides: Any) -> str:
    parameters = {
        "response_type": "code",
        "client_id": "shop",
        "redirect_uri": CALLBACK,
        "scope": "openid",
        "state": "st4te",
        "code_challenge": create_s256_code_challenge(generate_token(48)),
        "code_challenge_method": "S256",
        **overrides,
    }
    return "/oauth2/authorize?" + urlencode({k: v for k, v in parameters.items() if v is not None})


def codes(server: Server) -> list[tuple[Any, ...]]:
    return server.rows("SELECT client_id, used_at, revoked FROM authorization_codes")


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "https://shop.example/callback/other"},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": None},
        {"client_id": "nobody"},
        {"client_id": None},
        {"redirect_uri": SPA_CALLBACK},  # another client's
    ],
)
async def test_oidcc_ensure_redirect_uri_in_authorization_request(
    provider: Server, person: httpx.AsyncClient, overrides: dict[str, Any]
) -> None:
    """An unknown client or a redirect URI not registered for it: an error page, never a redirect."""
    response = await person.get(authorization_url(**overrides))
    assert response.status_code in (400, 401)
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="authorize-error"' in response.text
    assert codes(provider) == []


async def test_a_parameter_given_twice_is_shown_not_redirected(provider: Server, person: httpx.AsyncClient) -> None:
    response = await person.get(authorization_url() + "&redirect_uri=https%3A%2F%2Fevil.example%2F")
    assert response.status_code == 400 and "location" not in response.headers
    assert codes(provider) == []


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),  # PKCE missing
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # plain by default: refused too
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"scope": "profile email"}, "invalid_scope"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"prompt": "select_account"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        ({"id_token_hint": "not-a-token"}, "invalid_request"),
        ({"nonce": "n" * 513}, "invalid_request"),
        ({"client_id": "partner", "redirect_uri": PARTNER_CALLBACK, "prompt": "none"}, "consent_required"),
        ({"prompt": "none consent"}, "invalid_request"),
    ],
)
async def test_refused_authorization_requests_go_back_to_the_client(
    provider: Server, person: httpx.AsyncClient, overrides: dict[str, Any], error: str
) -> None:
    response = await person.get(authorization_url(**overrides))
    assert response.status_code == 302
    location = response.headers["location"]
    answer = query(location)
    assert location.startswith(overrides.get("redirect_uri", CALLBACK) + "?")
    assert answer["error"] == error and answer["state"] == "st4te" and answer["iss"] == ORIGIN
    assert "code" not in answer
    assert codes(provider) == []


async def exchange(provider: Server, form: dict[str, str], **headers: str) -> httpx.Response:
    async with provider.client() as client:
        return await client.post("/oauth2/token", data=form, headers=headers)


def basic(client_id: str = "shop", secret: str = SECRET) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def a_code(provider: Server, person: httpx.AsyncClient, client_id: str = "shop") -> tuple[str, str]:
    """A fresh code and its PKCE verifier."""
    async with relying_party(provider, client_id) as rp:
        location, _, verifier = await code_for(rp, person, await discover(rp))
    return query(location)["code"], verifier


def token_form(code: str, verifier: str | None, redirect_uri: str = CALLBACK, **extra: str) -> dict[str, str]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, **extra}
    if verifier is not None:
        form["code_verifier"] = verifier
    return form


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error and "error_description" in response.json()
    assert response.headers["cache-control"] == "no-store"
    assert "access_token" not in response.text and "id_token" not in response.text


async def test_a_wrong_code_verifier_is_invalid_grant_and_uses_the_code_up(
    provider: Server, person: httpx.AsyncClient
) -> None:
    code, verifier = await a_code(provider, person)
    wrong = await exchange(provider, token_form(code, generate_token(48)), authorization=basic())
    assert_oauth_error(wrong, 400, "invalid_grant")
    right_too_late = await exchange(provider, token_form(code, verifier), authorization=basic())
    assert_oauth_error(right_too_late, 400, "invalid_grant")


async def test_a_plain_verifier_is_refused(provider: Server, person: httpx.AsyncClient) -> None:
    """The S256 challenge itself, sent as if the method were plain."""
    code, verifier = await a_code(provider, person)
    response = await exchange(provider, token_form(code, create_s256_code_challenge(verifier)), authorization=basic())
    assert_oauth_error(response, 400, "invalid_grant")


async def test_a_public_client_without_a_verifier_is_refused(provider: Server, person: httpx.AsyncClient) -> None:
    code, _ = await a_code(provider, person, "spa")
    response = await exchange(provider, token_form(code, None, SPA_CALLBACK, client_id="spa"))
    assert_oauth_error(response, 400, "invalid_request")


async def test_oidcc_ensure_redirect_uri_in_token_request_matches(provider: Server, person: httpx.AsyncClient) -> None:
    code, verifier = await a_code(provider, person)
    missing = token_form(code, verifier)
    del missing["redirect_uri"]
    assert_oauth_error(await exchange(provider, missing, authorization=basic()), 400, "invalid_grant")
    code, verifier = await a_code(provider, person)
    other = token_form(code, verifier, "https://shop.example/callback/")
    assert_oauth_error(await exchange(provider, other, authorization=basic()), 400, "invalid_grant")


@pytest.mark.parametrize(
    "credentials",
    [
        {"authorization": basic(secret="a-wrong-secret-that-is-long-enough-0123456")},
        {"authorization": basic("nobody")},
        {"authorization": "Basic not-base64!"},
        {},  # a confidential client sending no secret
    ],
)
async def test_a_bad_client_secret_is_invalid_client(
    provider: Server, person: httpx.AsyncClient, credentials: dict[str, str]
) -> None:
    code, verifier = await a_code(provider, person)
    form = token_form(code, verifier, **({} if credentials else {"client_id": "shop"}))
    response = await exchange(provider, form, **credentials)
    assert_oauth_error(response, 401, "invalid_client")
    # The code was not taken: the real client still exchanges it.
    assert codes(provider) == [("shop", None, 0)]
    exchanged = await exchange(provider, token_form(code, verifier), authorization=basic())
    assert exchanged.status_code == 200 and exchanged.headers["cache-control"] == "no-store"


async def test_another_clients_code_is_invalid_grant(provider: Server, person: httpx.AsyncClient) -> None:
    code, verifier = await a_code(provider, person, "spa")
    response = await exchange(provider, token_form(code, verifier, SPA_CALLBACK), authorization=basic())
    assert_oauth_error(response, 400, "invalid_grant")


async def test_an_expired_code_is_invalid_grant(provider: Server, person: httpx.AsyncClient) -> None:
    code, verifier = await a_code(provider, person)
    provider.clock.advance(seconds=61)
    assert_oauth_error(
        await exchange(provider, token_form(code, verifier), authorization=basic()), 400, "invalid_grant"
    )


async def test_only_authorization_code_and_refresh_token_grants(provider: Server) -> None:
    response = await exchange(provider, {"grant_type": "password", "username": "a"}, authorization=basic())
    assert_oauth_error(response, 400, "unsupported_grant_type")
    response = await exchange(provider, {"grant_type": "client_credentials"}, authorization=basic())
    assert_oauth_error(response, 400, "unsupported_grant_type")


async def test_the_token_endpoint_takes_only_forms(provider: Server) -> None:
    async with provider.client() as client:
        response = await client.post("/oauth2/token", json={"grant_type": "authorization_code"})
    assert_oauth_error(response, 400, "invalid_request")


async def test_oidcc_codereuse(provider: Server, person: httpx.AsyncClient) -> None:
    """The second exchange of a code fails, and the access token of the first is refused from then on."""
    async with relying_party(provider) as rp:
        metadata = await discover(rp)
        location, state, verifier = await code_for(rp, person, metadata)
        await rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
        )
        assert (await rp.get("/oauth2/userinfo")).status_code == 200
        with pytest.raises(OAuthError) as reused:
            await rp.fetch_token(
                metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
            )
        assert reused.value.error == "invalid_grant"
        refused = await rp.get("/oauth2/userinfo")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert codes(provider)[0][2] == 1
    reuse = provider.rows("SELECT reason, detail FROM events WHERE type = 'oidc.token' AND outcome = 'failure'")
    assert [reason for reason, _ in reuse] == ["invalid_grant"] and '"reuse": true' in reuse[0][1]


async def test_userinfo_refuses_what_is_not_a_live_access_token(provider: Server, person: httpx.AsyncClient) -> None:
    async with relying_party(provider) as rp:
        metadata = await discover(rp)
        location, state, verifier = await code_for(rp, person, metadata)
        token = await rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
        )
    async with provider.client() as client:
        missing = await client.get("/oauth2/userinfo")
        id_token = await client.get("/oauth2/userinfo", headers={"authorization": f"Bearer {token['id_token']}"})
        garbage = await client.get("/oauth2/userinfo", headers={"authorization": "Bearer abc.def.ghi"})
        provider.clock.advance(minutes=6)
        expired = await client.get("/oauth2/userinfo", headers={"authorization": f"Bearer {token['access_token']}"})
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    for response in (id_token, garbage, expired):
        assert response.status_code == 401 and response.json()["error"] == "invalid_token"


async def test_signing_out_ends_the_access_tokens_of_the_session(provider: Server, person: httpx.AsyncClient) -> None:
    async with relying_party(provider) as rp:
        metadata = await discover(rp)
        location, state, verifier = await code_for(rp, person, metadata)
        await rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
        )
        await person.post("/auth/logout")
        response = await rp.get("/oauth2/userinfo")
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


async def test_the_token_endpoint_is_rate_limited(make_server: Any, tmp_path: Any) -> None:
    from tests.web.test_oidc_code_flow import CLIENTS

    server = make_server(oidc_clients=CLIENTS, rate_limit_per_ip=3)
    statuses = [(await exchange(server, token_form("nope", None), authorization=basic())).status_code for _ in range(5)]
    assert statuses == [400, 400, 400, 429, 429]


async def test_housekeeping_keeps_a_code_until_its_access_token_has_expired(
    provider: Server, person: httpx.AsyncClient
) -> None:
    from passgate.service import housekeeping

    code, verifier = await a_code(provider, person)
    assert (await exchange(provider, token_form(code, verifier), authorization=basic())).status_code == 200
    provider.clock.advance(minutes=5)  # the code expired 4 minutes ago; its access token is alive
    await housekeeping.purge(provider.app.state.ctx)
    assert len(codes(provider)) == 1
    provider.clock.advance(minutes=1, seconds=1)
    await housekeeping.purge(provider.app.state.ctx)
    assert codes(provider) == []
