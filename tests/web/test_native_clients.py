"""Native apps on the first-party API: no Origin, no cookies, the Passgate-Ceremony header, bearer session tokens,
and the credential shapes of iOS (AuthenticationServices) and Android (Credential Manager)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from passgate.core.encoding import b64url_decode
from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, sign_up
from tests.web.test_account_api import error

FINGERPRINT = ":".join(f"{byte:02X}" for byte in hashlib.sha256(b"the app's signing certificate").digest())
ANDROID_ORIGIN = (
    "android:apk-key-hash:"
    + base64.urlsafe_b64encode(bytes.fromhex(FINGERPRINT.replace(":", ""))).rstrip(b"=").decode()
)
CEREMONY = "Passgate-Ceremony"


def native_client(server: Server) -> httpx.AsyncClient:
    """An app's HTTP client: no Origin header, and (as long as the server sets none) no cookies."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url=ORIGIN)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def no_cookie_set(response: httpx.Response) -> None:
    assert "set-cookie" not in response.headers, response.headers.get("set-cookie")


def ios_registration(response: dict[str, Any]) -> dict[str, Any]:
    """What the Swift code posts: ASAuthorizationPlatformPublicKeyCredentialRegistration's raw parts. The client
    data comes as `Data.base64EncodedString()` writes it (plain, padded base64): that is read too."""
    return {
        "credentialID": response["rawId"],
        "rawAttestationObject": response["response"]["attestationObject"],
        "rawClientDataJSON": base64.b64encode(b64url_decode(response["response"]["clientDataJSON"])).decode(),
    }


def ios_assertion(response: dict[str, Any]) -> dict[str, Any]:
    """ASAuthorizationPlatformPublicKeyCredentialAssertion's raw parts, base64url-encoded."""
    parts = response["response"]
    return {
        "credentialID": response["rawId"],
        "rawAuthenticatorData": parts["authenticatorData"],
        "rawClientDataJSON": parts["clientDataJSON"],
        "signature": parts["signature"],
        "userID": parts["userHandle"],
    }


async def begin(client: httpx.AsyncClient, path: str, **body: Any) -> tuple[dict[str, Any], str]:
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    no_cookie_set(response)
    options: dict[str, Any] = response.json()
    return options, response.headers[CEREMONY]


async def complete(client: httpx.AsyncClient, path: str, payload: dict[str, Any], binding: str) -> dict[str, Any]:
    response = await client.post(path, json=payload, headers={CEREMONY: binding})
    assert response.status_code == 200, response.text
    no_cookie_set(response)
    assert response.headers["cache-control"] == "no-store"
    answer: dict[str, Any] = response.json()
    return answer


async def account_name(client: httpx.AsyncClient, token: str) -> str:
    response = await client.get("/auth/account", headers=bearer(token))
    assert response.status_code == 200, response.text
    name: str = response.json()["user"]["displayName"]
    return name


async def test_an_ios_app_signs_up_signs_in_and_uses_the_account_api(server: Server) -> None:
    authenticator = SoftwareAuthenticator()
    async with native_client(server) as app:
        options, binding = await begin(app, "/auth/passkey/register/begin", username="ios", displayName="iOS")
        created = authenticator.create(options, origin=ORIGIN)  # an iOS app's client data names the site
        signed_up = await complete(app, "/auth/passkey/register/complete", ios_registration(created), binding)
        assert signed_up["newAccount"] is True and signed_up["credentialId"] == created["rawId"]
        first = signed_up["sessionToken"]
        assert await account_name(app, first) == "iOS"

        options, binding = await begin(app, "/auth/passkey/login/begin")
        signed_in = await complete(
            app, "/auth/passkey/login/complete", ios_assertion(authenticator.get(options, origin=ORIGIN)), binding
        )
        second = signed_in["sessionToken"]
        assert second != first and signed_in["user"]["id"] == signed_up["user"]["id"]

        renamed = await app.patch("/auth/account", json={"displayName": "Ada"}, headers=bearer(second))
        assert renamed.status_code == 200, renamed.text
        assert await account_name(app, second) == "Ada"
        session = await app.get("/auth/session", headers=bearer(second))
        assert session.json()["user"]["username"] == "ios"
        issued = await app.post("/auth/session/token", headers=bearer(second))
        assert issued.status_code == 200 and issued.json()["token"].count(".") == 2
        step_up = await app.post("/auth/passkey/login/begin", json={"stepUp": True}, headers=bearer(second))
        assert [c["id"] for c in step_up.json()["allowCredentials"]] == [created["rawId"]]
        assert not app.cookies
    rows = server.rows("SELECT type, outcome FROM events WHERE type IN ('passkey.register', 'sign_in')")
    assert rows == [("passkey.register", "success"), ("sign_in", "success")]


async def test_an_android_app_signs_up_signs_in_and_adds_a_passkey(make_server: Callable[..., Server]) -> None:
    server = make_server(android_apps=[f"com.example.app={FINGERPRINT}"])
    authenticator = SoftwareAuthenticator()
    async with native_client(server) as app:
        options, binding = await begin(app, "/auth/passkey/register/begin", username="droid", displayName="Droid")
        # Credential Manager's registrationResponseJson, posted as it comes
        created = json.dumps(authenticator.create(options, origin=ANDROID_ORIGIN))
        signed_up = await complete(
            app, "/auth/passkey/register/complete", {"registrationResponseJson": created}, binding
        )
        token = signed_up["sessionToken"]

        options, binding = await begin(app, "/auth/passkey/login/begin")
        assertion = json.dumps(authenticator.get(options, origin=ANDROID_ORIGIN))
        signed_in = await complete(
            app, "/auth/passkey/login/complete", {"authenticationResponseJson": assertion}, binding
        )
        token = signed_in["sessionToken"]

        # signed in by the bearer token, a second passkey (the response JSON posted itself as the body)
        added = await app.post("/auth/passkey/register/begin", json={}, headers=bearer(token))
        assert added.status_code == 200, added.text
        second = SoftwareAuthenticator().create(added.json(), origin=ANDROID_ORIGIN)
        stored = await app.post(
            "/auth/passkey/register/complete", json=second, headers={**bearer(token), CEREMONY: added.headers[CEREMONY]}
        )
        assert stored.status_code == 200, stored.text
        assert stored.json()["newAccount"] is False and "sessionToken" not in stored.json()
        listed = await app.get("/auth/passkeys", headers=bearer(token))
        assert len(listed.json()["passkeys"]) == 2
        assert not app.cookies


async def test_an_android_app_that_is_not_configured_is_refused(make_server: Callable[..., Server]) -> None:
    server = make_server()
    async with native_client(server) as app:
        options, binding = await begin(app, "/auth/passkey/register/begin", username="other", displayName="Other")
        created = json.dumps(SoftwareAuthenticator().create(options, origin=ANDROID_ORIGIN))
        before = server.snapshot()
        response = await app.post(
            "/auth/passkey/register/complete", json={"registrationResponseJson": created}, headers={CEREMONY: binding}
        )
        error(response, 400, "origin_mismatch")
        assert server.snapshot() == before


async def test_the_binding_header_is_required_and_must_be_the_ceremonys(server: Server) -> None:
    authenticator = SoftwareAuthenticator()
    async with native_client(server) as app:
        options, _ = await begin(app, "/auth/passkey/register/begin", username="eve", displayName="Eve")
        _, other = await begin(app, "/auth/passkey/register/begin", username="fay", displayName="Fay")
        created = ios_registration(authenticator.create(options, origin=ORIGIN))
        before = server.snapshot()
        error(await app.post("/auth/passkey/register/complete", json=created), 400, "challenge_mismatch")
        options, _ = await begin(app, "/auth/passkey/register/begin", username="eve", displayName="Eve")
        created = ios_registration(authenticator.create(options, origin=ORIGIN))
        wrong = await app.post("/auth/passkey/register/complete", json=created, headers={CEREMONY: other})
        error(wrong, 400, "challenge_mismatch")
        assert server.snapshot() == before


async def test_cookies_without_an_origin_are_refused(server: Server) -> None:
    """The CSRF defence stays: a request that carries cookies needs an allowed Origin, native shapes or not."""
    authenticator = SoftwareAuthenticator()
    async with server.client() as browser:
        await sign_up(browser, authenticator, "gus")
        cookie = f"passgate_session={browser.cookies['passgate_session']}"
    async with native_client(server) as app:
        options, binding = await begin(app, "/auth/passkey/login/begin")
        assertion = ios_assertion(authenticator.get(options, origin=ORIGIN))
        before = server.snapshot()
        for response in [
            await app.post("/auth/passkey/register/begin", json={"username": "hal"}, headers={"Cookie": cookie}),
            await app.post(
                "/auth/passkey/login/complete", json=assertion, headers={CEREMONY: binding, "Cookie": cookie}
            ),
            await app.patch("/auth/account", json={"displayName": "Mallory"}, headers={"Cookie": cookie}),
            await app.post("/auth/logout", headers={"Cookie": cookie}),
        ]:
            error(response, 403, "origin_not_allowed")
        assert server.snapshot() == before
        # reading needs no Origin: the cookie still signs the person in
        assert (await app.get("/auth/account", headers={"Cookie": cookie})).status_code == 200


async def test_a_bearer_token_ignores_cookies_and_needs_no_origin(server: Server) -> None:
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "ida")
        cookie = f"passgate_session={browser.cookies['passgate_session']}"
    async with native_client(server) as app:
        stale = await app.patch(
            "/auth/account",
            json={"displayName": "Mallory"},
            headers={**bearer("not-a-session"), "Cookie": cookie, "Origin": "https://evil.example"},
        )
        error(stale, 401, "not_signed_in")  # the cookie is not what a bearer request is signed in by
        options, binding = await begin(app, "/auth/passkey/register/begin", username="jo", displayName="Jo")
        created = ios_registration(SoftwareAuthenticator().create(options, origin=ORIGIN))
        token = (await complete(app, "/auth/passkey/register/complete", created, binding))["sessionToken"]
        # whoever holds the token may send it from anywhere: a page can only if it was given the token
        renamed = await app.patch(
            "/auth/account", json={"displayName": "Jo B"}, headers={**bearer(token), "Origin": "https://evil.example"}
        )
        assert renamed.status_code == 200, renamed.text
    assert server.rows("SELECT display_name FROM users ORDER BY username") == [("ida",), ("Jo B",)]


async def test_a_bearer_token_after_logout_is_refused(server: Server) -> None:
    async with native_client(server) as app:
        options, binding = await begin(app, "/auth/passkey/register/begin", username="kim", displayName="Kim")
        created = ios_registration(SoftwareAuthenticator().create(options, origin=ORIGIN))
        token = (await complete(app, "/auth/passkey/register/complete", created, binding))["sessionToken"]
        assert await account_name(app, token) == "Kim"
        out = await app.post("/auth/logout", headers=bearer(token))
        assert out.status_code == 200 and out.json() == {"signedOut": True}
        no_cookie_set(out)
        error(await app.get("/auth/account", headers=bearer(token)), 401, "not_signed_in")
        error(await app.get("/auth/session", headers=bearer(token)), 401, "not_signed_in")
        refused = await app.patch("/auth/account", json={"displayName": "Back"}, headers=bearer(token))
        error(refused, 401, "not_signed_in")
    assert server.rows("SELECT count(*) FROM sessions") == [(0,)]


async def test_native_ceremonies_are_rate_limited_like_browsers(make_server: Callable[..., Server]) -> None:
    server = make_server(rate_limit_per_ip=2)
    async with native_client(server) as app:
        answers = [(await app.post("/auth/passkey/login/begin")).status_code for _ in range(3)]
    assert answers == [200, 200, 429]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"registrationResponseJson": {"id": "x"}}, "registrationResponseJson must be"),
        ({"registrationResponseJson": "{not json"}, "registrationResponseJson is not valid JSON"),
        ({"registrationResponseJson": "[]"}, "registrationResponseJson must hold a JSON object"),
        ({"registrationResponseJson": "{}", "id": "x"}, "registrationResponseJson must be"),
        ({"credentialID": "AAAA", "rawClientDataJSON": "AAAA"}, "rawAttestationObject must be"),
        ({"credentialID": "AAAA", "rawAttestationObject": 7, "rawClientDataJSON": "AAAA"}, "rawAttestationObject"),
        ({"credentialID": "A*A", "rawAttestationObject": "AAAA", "rawClientDataJSON": "AAAA"}, "credentialID must"),
        (
            {"credentialID": "AAAA", "rawAttestationObject": "AAAA", "rawClientDataJSON": "AAAA", "extra": 1},
            "Unexpected member 'extra'",
        ),
    ],
)
async def test_malformed_native_credentials_are_refused(server: Server, payload: dict[str, Any], message: str) -> None:
    async with native_client(server) as app:
        _, binding = await begin(app, "/auth/passkey/register/begin", username="lee", displayName="Lee")
        before = server.snapshot()
        response = await app.post("/auth/passkey/register/complete", json=payload, headers={CEREMONY: binding})
        error(response, 400, "malformed_response")
        assert message in response.json()["message"]
        assert server.snapshot() == before


async def test_a_backup_code_signs_a_native_app_in_with_a_session_token(server: Server) -> None:
    async with native_client(server) as app:
        options, binding = await begin(app, "/auth/passkey/register/begin", username="max", displayName="Max")
        created = ios_registration(SoftwareAuthenticator().create(options, origin=ORIGIN))
        token = (await complete(app, "/auth/passkey/register/complete", created, binding))["sessionToken"]
        codes = await app.post("/auth/recovery/codes", headers=bearer(token))
        assert codes.status_code == 200, codes.text
        used = await app.post(
            "/auth/recovery/codes/sign-in", json={"username": "max", "code": codes.json()["codes"][0]}
        )
        assert used.status_code == 200, used.text
        no_cookie_set(used)
        recovery = used.json()["sessionToken"]
        assert (await app.get("/auth/account", headers=bearer(recovery))).json()["session"]["kind"] == "recovery"


async def test_the_openapi_document_names_the_binding_header(server: Server) -> None:
    async with native_client(server) as app:
        paths = (await app.get("/openapi.json")).json()["paths"]
    for path in ("/auth/passkey/register/begin", "/auth/passkey/login/begin"):
        assert CEREMONY in paths[path]["post"]["responses"]["200"]["headers"]
