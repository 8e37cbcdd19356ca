"""The OpenID Foundation conformance suite's Basic OP plan (oidcc-basic-certification-test-plan), module by module,
where no other test stands for the module already (docs/oidc-conformance.md maps every module to its test).

Each test does what its module does to the provider, with authlib's client for the relying party and a software
passkey for the person, and checks what the module accepts as a pass. Where the module accepts either support or
a clean refusal, the refusal is what is tested."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from joserfc import jwt
from joserfc.jwk import KeySet

from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, login_options, sign_up
from tests.web.test_oidc_code_flow import (
    CALLBACK,
    CLIENTS,
    authorize,
    code_for,
    discover,
    public_get,
    query,
    relying_party,
    verified_id_token,
)


@pytest.fixture
def provider(make_server: Callable[..., Server]) -> Server:
    return make_server(oidc_clients=CLIENTS)


@pytest.fixture
async def person(provider: Server) -> AsyncIterator[httpx.AsyncClient]:
    """A browser in which Alice has signed up (and so is signed in)."""
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        yield browser


def codes(server: Server) -> list[tuple[Any, ...]]:
    return server.rows("SELECT client_id FROM authorization_codes")


async def tokens(
    provider: Server, person: httpx.AsyncClient, **extra: Any
) -> tuple[dict[str, Any], dict[str, Any], httpx.Response]:
    """A happy flow for the shop with `extra` authorization parameters: the token response, the verified ID
    token's claims, and userinfo's answer."""
    async with relying_party(provider) as rp:
        metadata = await discover(rp)
        location, state, verifier = await code_for(rp, person, metadata, **extra)
        token = await rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
        )
        claims = await verified_id_token(rp, token["id_token"], provider)
        userinfo = await rp.get("/oauth2/userinfo")
    return dict(token), claims, userinfo


async def signed_out_flow(provider: Server, **extra: str) -> tuple[httpx.Response, dict[str, Any]]:
    """The modules that ask for the sign-in page ("remove any cookies"): a signed-out browser is sent to it, the
    person signs in with their passkey there and comes back. The sign-in page, and the verified ID token."""
    authenticator = SoftwareAuthenticator()
    async with provider.client() as first:
        await sign_up(first, authenticator, "alice")
    async with provider.client() as browser, relying_party(provider) as rp:
        metadata = await discover(rp)
        verifier = generate_token(48)
        url, state = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier, **extra)
        to_sign_in = await authorize(browser, url)
        assert to_sign_in.status_code == 303, to_sign_in.text
        page_url = to_sign_in.headers["location"]
        assert page_url.startswith("/signin?")
        page = await browser.get(page_url)
        assert page.status_code == 200
        options = await login_options(browser, username="alice")
        signed_in = await browser.post("/auth/passkey/login/complete", json=authenticator.get(options, origin=ORIGIN))
        assert signed_in.status_code == 200, signed_in.text
        back = await browser.get(query(page_url)["next"])
        assert back.status_code == 302, back.text
        token = await rp.fetch_token(
            metadata["token_endpoint"],
            authorization_response=back.headers["location"],
            state=state,
            code_verifier=verifier,
        )
        return page, await verified_id_token(rp, token["id_token"], provider)


def suite_request(**parameters: str) -> str:
    """An authorization URL the way the suite's modules build one: no PKCE (only
    oidcc-ensure-request-with-valid-pkce-succeeds sends it)."""
    return "/oauth2/authorize?" + urlencode(parameters)


def unsigned(claims: dict[str, Any]) -> str:
    """A request object with alg none, as the suite serializes one."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}."


async def test_oidcc_response_type_missing(provider: Server, person: httpx.AsyncClient) -> None:
    """The module accepts an unsupported_response_type or invalid_request redirect (or an error page)."""
    response = await person.get(
        suite_request(client_id="shop", redirect_uri=CALLBACK, scope="openid", state="st4te", nonce="n0nce")
    )
    assert response.status_code == 302
    answer = query(response.headers["location"])
    assert response.headers["location"].startswith(CALLBACK + "?")
    assert answer["error"] == "unsupported_response_type" and answer["state"] == "st4te" and "code" not in answer
    assert codes(provider) == []


async def test_oidcc_idtoken_signature(provider: Server, person: httpx.AsyncClient) -> None:
    """No algorithm asked for: RS256, and a `kid` naming one key of the JWKS, which alone verifies it."""
    token, _, _ = await tokens(provider, person)
    header = json.loads(base64.urlsafe_b64decode(token["id_token"].split(".")[0] + "=="))
    assert header["alg"] == "RS256"
    published = (await public_get(person, "/.well-known/jwks.json")).json()["keys"]
    [key] = [key for key in published if key["kid"] == header["kid"]]
    assert key["alg"] == "RS256" and key["use"] == "sig"
    assert jwt.decode(token["id_token"], KeySet.import_key_set({"keys": [key]}), algorithms=["RS256"]).claims


async def test_oidcc_idtoken_unsigned(provider: Server, person: httpx.AsyncClient) -> None:
    """Skipped by the module when discovery does not offer `none`, which it never does: every ID token is
    signed."""
    metadata = await discover(person)
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    token, _, _ = await tokens(provider, person)
    assert json.loads(base64.urlsafe_b64decode(token["id_token"].split(".")[0] + "=="))["alg"] == "RS256"


async def test_oidcc_userinfo_post_body(provider: Server, person: httpx.AsyncClient) -> None:
    """The access token in a POSTed form (RFC 6750 section 2.2) is read as the header's would be; both at once,
    or a form without it, is refused."""
    token, _, _ = await tokens(provider, person)
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    async with provider.client() as client:
        body = await client.post("/oauth2/userinfo", data={"access_token": token["access_token"]})
        header = await client.post("/oauth2/userinfo", headers=bearer)
        both = await client.post("/oauth2/userinfo", data={"access_token": token["access_token"]}, headers=bearer)
        neither = await client.post("/oauth2/userinfo", data={"other": "x"})
        forged = await client.post("/oauth2/userinfo", data={"access_token": token["access_token"][:-4] + "AAAA"})
    assert body.status_code == 200 and body.json() == header.json()
    assert set(header.json()) == {"sub", "preferred_username", "name"}
    for refused in (both, neither):
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_request"
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_token"


async def test_oidcc_scope_profile(provider: Server, person: httpx.AsyncClient) -> None:
    token, claims, userinfo = await tokens(provider, person, scope="openid profile")
    assert token["scope"] == "openid profile"
    assert userinfo.status_code == 200
    assert userinfo.json() == {"sub": claims["sub"], "preferred_username": "alice", "name": "alice"}
    assert "name" not in claims  # the claims of a scope come from userinfo (OpenID Connect Core 5.4)


async def test_oidcc_scope_email(provider: Server, person: httpx.AsyncClient) -> None:
    assert (await person.post("/auth/email", json={"email": "alice@example.com"})).status_code == 202
    token, claims, userinfo = await tokens(provider, person, scope="openid email")
    assert token["scope"] == "openid email"
    assert userinfo.json() == {"sub": claims["sub"], "email": "alice@example.com", "email_verified": False}


async def assert_left_out(provider: Server, person: httpx.AsyncClient, scope: str, granted: str) -> None:
    """A scope Passgate does not offer: not in discovery's scopes_supported (the module's skip), and left out of
    the grant when asked for anyway."""
    offered = (await discover(person))["scopes_supported"]
    assert not {"address", "phone"} & set(offered)
    token, claims, userinfo = await tokens(provider, person, scope=scope)
    assert token["scope"] == granted
    answer = userinfo.json()
    assert answer["sub"] == claims["sub"]
    assert not {"address", "phone_number", "phone_number_verified"} & (set(answer) | set(claims))


async def test_oidcc_scope_address(provider: Server, person: httpx.AsyncClient) -> None:
    await assert_left_out(provider, person, "openid address", "openid")


async def test_oidcc_scope_phone(provider: Server, person: httpx.AsyncClient) -> None:
    await assert_left_out(provider, person, "openid phone", "openid")


async def test_oidcc_scope_all(provider: Server, person: httpx.AsyncClient) -> None:
    await assert_left_out(provider, person, "openid address email phone profile", "openid profile email")


async def test_oidcc_alternate_happy_flow(provider: Server, person: httpx.AsyncClient) -> None:
    """The scope's entries reversed (RFC 6749 section 3.3: their order does not matter) and the parameters in
    reverse alphabetical order."""
    verifier = generate_token(48)
    async with relying_party(provider) as rp:
        url, state = rp.create_authorization_url(
            f"{ORIGIN}/oauth2/authorize", code_verifier=verifier, scope="email openid", nonce="n-1"
        )
        reordered = suite_request(**dict(sorted(query(url).items(), reverse=True)))
        assert reordered.split("?")[1].startswith("state=") and reordered.endswith("client_id=shop")
        response = await authorize(person, reordered)
        assert response.status_code == 302
        token = await rp.fetch_token(
            f"{ORIGIN}/oauth2/token",
            authorization_response=response.headers["location"],
            state=state,
            code_verifier=verifier,
        )
        claims = await verified_id_token(rp, token["id_token"], provider)
    assert token["scope"] == "openid email" and claims["nonce"] == "n-1"


async def test_oidcc_display_page(provider: Server) -> None:
    """display is accepted and needs nothing different: the one sign-in page."""
    page, claims = await signed_out_flow(provider, display="page")
    assert 'id="signin-form"' in page.text and claims["aud"] == "shop"


async def test_oidcc_display_popup(provider: Server) -> None:
    page, claims = await signed_out_flow(provider, display="popup")
    assert 'id="signin-form"' in page.text and claims["aud"] == "shop"


async def test_oidcc_prompt_none_logged_in_same_sub_and_auth_time(provider: Server, person: httpx.AsyncClient) -> None:
    """The second authorization, with prompt=none, signs nobody in again: same sub, same auth_time."""
    _, first, _ = await tokens(provider, person)
    provider.clock.advance(seconds=5)
    _, second, _ = await tokens(provider, person, prompt="none")
    assert (second["sub"], second["auth_time"], second["sid"]) == (first["sub"], first["auth_time"], first["sid"])
    assert second["iat"] == first["iat"] + 5


async def test_oidcc_ensure_request_with_unknown_parameter_succeeds(
    provider: Server, person: httpx.AsyncClient
) -> None:
    token, claims, _ = await tokens(provider, person, extra="foobar")
    assert claims["aud"] == "shop" and token["token_type"] == "Bearer"


async def test_oidcc_login_hint(provider: Server) -> None:
    """A login_hint naming nobody Passgate knows (the module's default, buffy@ the issuer's host) fills the
    sign-in page's username and is no error; whoever signs in with their passkey is the one signed in."""
    page, claims = await signed_out_flow(provider, login_hint="buffy@localhost")
    assert 'value="buffy@localhost"' in page.text
    [(alice,)] = provider.rows("SELECT id FROM users WHERE username = 'alice'")
    assert claims["sub"] == alice


async def test_oidcc_ui_locales(provider: Server) -> None:
    """ui_locales=se is no error; the pages are in English, the one language Passgate's pages have."""
    page, claims = await signed_out_flow(provider, ui_locales="se")
    assert '<html lang="en"' in page.text and claims["aud"] == "shop"


async def test_oidcc_claims_locales(provider: Server, person: httpx.AsyncClient) -> None:
    _, claims, userinfo = await tokens(provider, person, claims_locales="se")
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == claims["sub"]


async def test_oidcc_codereuse_30seconds(provider: Server, person: httpx.AsyncClient) -> None:
    """The code presented again 30 seconds after its exchange, within its minute: invalid_grant, and the access
    token of the first exchange is revoked (RFC 6749 section 4.1.2)."""
    async with relying_party(provider) as rp:
        metadata = await discover(rp)
        location, state, verifier = await code_for(rp, person, metadata)
        await rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
        )
        assert (await rp.get("/oauth2/userinfo")).status_code == 200
        provider.clock.advance(seconds=30)
        with pytest.raises(OAuthError) as reused:
            await rp.fetch_token(
                metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
            )
        refused = await rp.get("/oauth2/userinfo")
    assert reused.value.error == "invalid_grant"
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"


async def test_oidcc_ensure_registered_redirect_uri(provider: Server, person: httpx.AsyncClient) -> None:
    """A redirect URI the suite randomised from the registered one: an error page, no redirect to either URI,
    and no code; checked before anything else, so the suite's request without PKCE gets this page too."""
    bad = CALLBACK + "/Xy7kq2LmP0"  # the suite appends a random path segment
    response = await person.get(
        suite_request(response_type="code", client_id="shop", redirect_uri=bad, scope="openid", state="st4te")
    )
    assert response.status_code == 400 and "location" not in response.headers
    assert 'id="authorize-error"' in response.text and "not registered" in response.text
    assert codes(provider) == []


async def test_oidcc_ensure_post_request_succeeds(provider: Server, person: httpx.AsyncClient) -> None:
    """The authorization request POSTed as a form by a signed-in person: the code comes back at once."""
    verifier = generate_token(48)
    async with relying_party(provider) as rp:
        url, state = rp.create_authorization_url(f"{ORIGIN}/oauth2/authorize", code_verifier=verifier, nonce="n-2")
        response = await person.post("/oauth2/authorize", data=query(url))
        assert response.status_code == 302
        token = await rp.fetch_token(
            f"{ORIGIN}/oauth2/token",
            authorization_response=response.headers["location"],
            state=state,
            code_verifier=verifier,
        )
        claims = await verified_id_token(rp, token["id_token"], provider)
    assert claims["nonce"] == "n-2"


def request_object_url(redirect_uri: str = CALLBACK) -> str:
    """As the suite sends a request object by value: response_type, client_id, scope and redirect_uri beside it,
    state and nonce inside it only."""
    claims = {
        "response_type": "code",
        "client_id": "shop",
        "redirect_uri": CALLBACK,
        "scope": "openid",
        "state": "st4te",
        "nonce": "n0nce",
    }
    return suite_request(
        client_id="shop", redirect_uri=redirect_uri, request=unsigned(claims), response_type="code", scope="openid"
    )


async def test_oidcc_ensure_request_object_with_redirect_uri(provider: Server, person: httpx.AsyncClient) -> None:
    """The registered redirect URI inside the request object, an unregistered one beside it: the module accepts
    an invalid redirect_uri error page, and fails a redirect to either."""
    response = await person.get(request_object_url(redirect_uri="https://shop.example/callback/invalid"))
    assert response.status_code == 400 and "location" not in response.headers
    assert 'id="authorize-error"' in response.text
    assert codes(provider) == []


async def test_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(
    provider: Server, person: httpx.AsyncClient
) -> None:
    """The module accepts request_not_supported (OpenID Connect Core 3.1.2.6), whatever else the request lacks."""
    response = await person.get(request_object_url())
    assert response.status_code == 302 and response.headers["location"].startswith(CALLBACK + "?")
    answer = query(response.headers["location"])
    assert answer["error"] == "request_not_supported" and answer["iss"] == ORIGIN and "code" not in answer
    assert codes(provider) == []


async def test_oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(
    provider: Server, person: httpx.AsyncClient
) -> None:
    response = await person.get(
        suite_request(
            client_id="shop",
            redirect_uri=CALLBACK,
            request_uri="https://rp.example/request.jwt#abc",
            response_type="code",
            scope="openid",
        )
    )
    assert response.status_code == 302
    assert query(response.headers["location"])["error"] == "request_uri_not_supported"
    assert codes(provider) == []


async def test_client_metadata_in_the_request_is_registration_not_supported(
    provider: Server, person: httpx.AsyncClient
) -> None:
    response = await person.get(
        suite_request(client_id="shop", redirect_uri=CALLBACK, registration="{}", response_type="code", scope="openid")
    )
    assert response.status_code == 302
    assert query(response.headers["location"])["error"] == "registration_not_supported"
    assert codes(provider) == []


async def test_oidcc_claims_essential(provider: Server, person: httpx.AsyncClient) -> None:
    """The claims parameter is not supported (discovery says claims_parameter_supported false) and is ignored:
    a claim left out is never an error (OpenID Connect Core 5.5.1). The module warns when name is missing."""
    asked = json.dumps({"userinfo": {"name": {"essential": True}}})
    token, claims, userinfo = await tokens(provider, person, scope="openid", claims=asked)
    assert token["scope"] == "openid"
    assert userinfo.status_code == 200 and userinfo.json() == {"sub": claims["sub"]}
    assert "name" not in claims


@pytest.mark.parametrize("prompt", [None, "none"])
async def test_the_suites_requests_without_pkce_are_invalid_request(provider: Server, prompt: str | None) -> None:
    """What the suite's modules get when run against Passgate (docs/oidc-conformance.md, Running the real suite):
    they send no PKCE, which every client of Passgate must; the refusal comes before any sign-in, so even
    prompt=none gets invalid_request rather than login_required."""
    parameters = {"response_type": "code", "client_id": "shop", "redirect_uri": CALLBACK, "scope": "openid"}
    parameters |= {"state": "st4te", "nonce": "n0nce"} | ({"prompt": prompt} if prompt else {})
    async with provider.client() as browser:
        response = await browser.get(suite_request(**parameters))
    assert response.status_code == 302
    assert query(response.headers["location"]) == {
        "error": "invalid_request",
        "error_description": "PKCE is required: code_challenge is missing.",
        "state": "st4te",
        "iss": ORIGIN,
    }
    assert codes(provider) == []
