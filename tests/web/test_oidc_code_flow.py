"""The OpenID Connect code flow with a real relying party (authlib's client) against the app, the person signing in
with a software passkey over the JSON API. Tests are named after the OpenID conformance suite's modules."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet

from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, login_options, sign_up

SECRET = "a-long-random-client-secret-for-the-shop-0123"
CALLBACK = "https://shop.example/callback"
SPA_CALLBACK = "https://spa.example/callback"
PARTNER_CALLBACK = "https://partner.example/callback"
CLIENTS = [
    {"client_id": "shop", "client_secret": SECRET, "redirect_uris": [CALLBACK], "first_party": True},
    {"client_id": "spa", "redirect_uris": [SPA_CALLBACK], "first_party": True},
    {"client_id": "partner", "client_secret": SECRET, "redirect_uris": [PARTNER_CALLBACK]},
]


@pytest.fixture
def provider(make_server: Callable[..., Server]) -> Server:
    return make_server(oidc_clients=CLIENTS)


@pytest.fixture
async def person(provider: Server) -> AsyncIterator[httpx.AsyncClient]:
    """A browser in which Alice has signed up (and so is signed in)."""
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        yield browser


def relying_party(provider: Server, client_id: str = "shop", **options: Any) -> AsyncOAuth2Client:
    """authlib's client, talking to the app in-process; a confidential client uses client_secret_basic."""
    secret = SECRET if client_id in ("shop", "partner") else None
    return AsyncOAuth2Client(
        client_id=client_id,
        client_secret=secret,
        scope="openid profile email",
        redirect_uri={"shop": CALLBACK, "spa": SPA_CALLBACK, "partner": PARTNER_CALLBACK}[client_id],
        code_challenge_method="S256",
        transport=httpx.ASGITransport(app=provider.app),
        base_url=ORIGIN,
        **{"token_endpoint_auth_method": "client_secret_basic" if secret else "none", **options},
    )


async def public_get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """GET a public document (no access token sent, even by the relying party)."""
    if isinstance(client, AsyncOAuth2Client):
        return await client.request("GET", url.removeprefix(ORIGIN), withhold_token=True)
    return await client.get(url.removeprefix(ORIGIN))


async def discover(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await public_get(client, "/.well-known/openid-configuration")
    assert response.status_code == 200
    metadata: dict[str, Any] = response.json()
    return metadata


async def authorize(browser: httpx.AsyncClient, url: str) -> httpx.Response:
    return await browser.get(url.removeprefix(ORIGIN))


def query(location: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


async def code_for(
    rp: AsyncOAuth2Client, browser: httpx.AsyncClient, metadata: dict[str, Any], **extra: Any
) -> tuple[str, str, str]:
    """The authorization response's URL, the state and the PKCE verifier."""
    verifier = generate_token(48)
    url, state = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier, **extra)
    response = await authorize(browser, url)
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(rp.redirect_uri + "?")
    return response.headers["location"], state, verifier


async def verified_id_token(client: httpx.AsyncClient, token: str, server: Server) -> dict[str, Any]:
    metadata = await discover(client)
    jwks = KeySet.import_key_set((await public_get(client, metadata["jwks_uri"])).json())
    decoded = jwt.decode(token, jwks, algorithms=metadata["id_token_signing_alg_values_supported"])
    assert decoded.header["alg"] == "RS256"
    jwt.JWTClaimsRegistry(now=int(server.clock().timestamp()), exp={"essential": True}).validate(decoded.claims)
    return dict(decoded.claims)


async def test_oidcc_server(provider: Server, person: httpx.AsyncClient) -> None:
    """Discovery, code + PKCE for a signed-in person, the exchange, the ID token against the JWKS, userinfo."""
    async with relying_party(provider) as rp:
        metadata = await discover(rp)
        assert metadata["issuer"] == ORIGIN
        location, state, verifier = await code_for(rp, person, metadata, nonce="n-0S6_WzA2Mj")
        assert query(location)["iss"] == ORIGIN  # RFC 9207
        assert query(location)["state"] == state
        token = await rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
        )
        assert token["token_type"] == "Bearer" and token["expires_in"] == 300
        claims = await verified_id_token(rp, token["id_token"], provider)
        userinfo = await rp.get(metadata["userinfo_endpoint"].removeprefix(ORIGIN))
    session = (await person.get("/auth/session")).json()
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "acr", "azp"}
    assert claims["iss"] == ORIGIN and claims["aud"] == "shop" and claims["azp"] == "shop"
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["sub"] == session["user"]["id"]
    assert claims["amr"] == ["pop", "user", "mfa", "swk"] and claims["acr"] == "phr"
    assert userinfo.status_code == 200 and userinfo.headers["cache-control"] == "no-store"
    assert userinfo.json() == {"sub": claims["sub"], "preferred_username": "alice", "name": "alice"}


async def test_the_access_token_is_an_rfc_9068_jwt(provider: Server, person: httpx.AsyncClient) -> None:
    async with relying_party(provider) as rp:
        metadata = await discover(rp)
        location, state, verifier = await code_for(rp, person, metadata)
        token = await rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
        )
        jwks = KeySet.import_key_set((await public_get(rp, "/.well-known/jwks.json")).json())
    decoded = jwt.decode(token["access_token"], jwks, algorithms=["RS256"])
    claims = decoded.claims
    assert decoded.header["typ"] == "at+jwt"
    assert {"iss", "sub", "aud", "client_id", "scope", "jti", "iat", "exp", "auth_time", "acr", "amr", "sid"} <= set(
        claims
    )
    assert claims["aud"] == "shop" and claims["client_id"] == "shop" and claims["scope"] == "openid profile email"
    assert 300 <= claims["exp"] - claims["iat"] <= 600


async def test_a_signed_out_person_signs_in_on_the_hosted_page_and_comes_back(provider: Server) -> None:
    authenticator = SoftwareAuthenticator()
    async with provider.client() as first:
        await sign_up(first, authenticator, "alice")
    async with provider.client() as browser, relying_party(provider) as rp:
        metadata = await discover(rp)
        verifier = generate_token(48)
        url, state = rp.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, login_hint="alice"
        )
        to_sign_in = await authorize(browser, url)
        assert to_sign_in.status_code == 303
        page_url = to_sign_in.headers["location"]
        assert page_url.startswith("/signin?")
        back = query(page_url)["next"]
        assert back.startswith("/oauth2/authorize?")
        page = await browser.get(page_url)
        assert f'data-next="{back.replace("&", "&amp;")}"' in page.text
        assert 'value="alice"' in page.text  # login_hint fills the username
        options = await login_options(browser, username="alice")
        signed_in = await browser.post("/auth/passkey/login/complete", json=authenticator.get(options, origin=ORIGIN))
        assert signed_in.status_code == 200
        response = await browser.get(back)
        assert response.status_code == 302
        location = response.headers["location"]
        token = await rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
        )
    assert "id_token" in token


@pytest.mark.parametrize(
    "next_path", ["https://evil.example/", "//evil.example/", "/\\evil.example", "evil", "/\tx", "javascript:x"]
)
async def test_the_sign_in_page_goes_only_to_a_local_path(provider: Server, next_path: str) -> None:
    async with provider.client() as browser:
        page = await browser.get("/signin", params={"next": next_path})
    assert page.status_code == 200 and "data-next" not in page.text


async def test_oidcc_prompt_none_not_logged_in(provider: Server) -> None:
    async with provider.client() as browser, relying_party(provider) as rp:
        url, state = rp.create_authorization_url(
            f"{ORIGIN}/oauth2/authorize", code_verifier=generate_token(48), prompt="none"
        )
        response = await authorize(browser, url)
    assert response.status_code == 302
    answer = query(response.headers["location"])
    assert answer == {
        "error": "login_required",
        "error_description": answer["error_description"],
        "state": state,
        "iss": ORIGIN,
    }


async def test_oidcc_prompt_none_logged_in(provider: Server, person: httpx.AsyncClient) -> None:
    async with relying_party(provider) as rp:
        location, _, _ = await code_for(rp, person, await discover(rp), prompt="none")
    assert "code" in query(location)


async def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(
    provider: Server, person: httpx.AsyncClient
) -> None:
    async with relying_party(provider) as rp:
        metadata = await discover(rp)
        location, state, verifier = await code_for(rp, person, metadata)
        token = await rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
        )
        claims = await verified_id_token(rp, token["id_token"], provider)
    assert "nonce" not in claims


async def test_oidcc_userinfo_get_and_post(provider: Server, person: httpx.AsyncClient) -> None:
    async with relying_party(provider) as rp:
        metadata = await discover(rp)
        location, state, verifier = await code_for(rp, person, metadata, scope="openid email")
        await rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
        )
        got = await rp.get("/oauth2/userinfo")
        posted = await rp.post("/oauth2/userinfo")
    assert got.status_code == posted.status_code == 200
    assert got.json() == posted.json() and set(got.json()) == {"sub"}  # email scope, but no address on file


async def test_oidcc_client_secret_post_and_public_client(provider: Server, person: httpx.AsyncClient) -> None:
    async with relying_party(provider, token_endpoint_auth_method="client_secret_post") as rp:
        metadata = await discover(rp)
        location, state, verifier = await code_for(rp, person, metadata)
        token = await rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
        )
        assert "id_token" in token
    async with relying_party(provider, "spa") as spa:
        location, state, verifier = await code_for(spa, person, metadata)
        token = await spa.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
        )
        assert (await verified_id_token(spa, token["id_token"], provider))["aud"] == "spa"


async def test_discovery_advertises_exactly_what_is_implemented(provider: Server) -> None:
    async with provider.client() as client:
        metadata = await discover(client)
        same = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert same == metadata
    assert metadata == {
        "issuer": ORIGIN,
        "authorization_endpoint": f"{ORIGIN}/oauth2/authorize",
        "token_endpoint": f"{ORIGIN}/oauth2/token",
        "userinfo_endpoint": f"{ORIGIN}/oauth2/userinfo",
        "jwks_uri": f"{ORIGIN}/.well-known/jwks.json",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": [
            *("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "acr", "azp"),
            *("preferred_username", "name", "email", "email_verified"),
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "acr_values_supported": ["phr", "phrh"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "revocation_endpoint": f"{ORIGIN}/oauth2/revoke",
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint": f"{ORIGIN}/oauth2/introspect",
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "end_session_endpoint": f"{ORIGIN}/oauth2/logout",
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }


async def test_the_issuer_is_the_public_url(make_server: Callable[..., Server]) -> None:
    server = make_server(
        oidc_clients=CLIENTS, public_url="https://id.localhost", origins=["https://id.localhost", ORIGIN]
    )
    async with server.client() as client:
        metadata = await discover(client)
    assert metadata["issuer"] == "https://id.localhost"
    assert metadata["token_endpoint"] == "https://id.localhost/oauth2/token"


async def test_the_authorization_request_may_be_posted(provider: Server) -> None:
    """By POST (OpenID Connect Core 3.1.2.1); a signed-out person comes back to it as a GET."""
    authenticator = SoftwareAuthenticator()
    async with provider.client() as browser, relying_party(provider) as rp:
        await sign_up(browser, authenticator, "alice")
        await browser.post("/auth/logout")
        verifier = generate_token(48)
        url, state = rp.create_authorization_url(f"{ORIGIN}/oauth2/authorize", code_verifier=verifier)
        form = query(url)
        to_sign_in = await browser.post("/oauth2/authorize", data=form)
        assert to_sign_in.status_code == 303
        back = query(to_sign_in.headers["location"])["next"]
        assert query(back) == form
        options = await login_options(browser)
        await browser.post("/auth/passkey/login/complete", json=authenticator.get(options, origin=ORIGIN))
        posted = await browser.post("/oauth2/authorize", data=form)
    assert posted.status_code == 302 and query(posted.headers["location"])["state"] == state


def form_post_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))


async def test_oidcc_response_mode_form_post(provider: Server, person: httpx.AsyncClient) -> None:
    """The response in a form the page posts to the redirect URI; the page's CSP lets it go nowhere else."""
    async with relying_party(provider) as rp:
        metadata = await discover(rp)
        verifier = generate_token(48)
        url, state = rp.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, response_mode="form_post"
        )
        page = await authorize(person, url)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert f'<form id="form-post" method="post" action="{CALLBACK}">' in page.text
        assert '<script type="module" src="/static/form_post.js">' in page.text
        csp = page.headers["content-security-policy"]
        assert "form-action https://shop.example;" in csp and "script-src 'self'" in csp
        fields = form_post_fields(page.text)
        assert set(fields) == {"code", "state", "iss"} and fields["state"] == state and fields["iss"] == ORIGIN
        token = await rp.fetch_token(
            metadata["token_endpoint"], code=fields["code"], state=state, code_verifier=verifier
        )
    assert "id_token" in token


async def test_form_post_carries_errors_too(provider: Server) -> None:
    async with provider.client() as browser, relying_party(provider) as rp:
        url, state = rp.create_authorization_url(
            f"{ORIGIN}/oauth2/authorize", code_verifier=generate_token(48), response_mode="form_post", prompt="none"
        )
        page = await authorize(browser, url)
    fields = form_post_fields(page.text)
    assert page.status_code == 200 and fields["error"] == "login_required" and fields["state"] == state
