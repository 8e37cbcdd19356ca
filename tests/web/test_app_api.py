"""The app passkey API: an app's server asks for registration tokens and verifies sign-ins with its API key; the
app's pages create and use passkeys with no secret."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from passgate.service import apps
from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import Server

SHOP = "http://shop.localhost:3000"


async def new_app(server: Server, name: str = "Shop", origin: str = SHOP) -> tuple[str, str]:
    app, _, secret = await apps.add(server.app.state.ctx, name=name, origins=[origin])
    return app.app_id, secret


def page(server: Server, origin: str = SHOP) -> httpx.AsyncClient:
    """The app's page in a browser: Passgate's cookies are third-party there, so none are kept."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.app), base_url="http://localhost:8000", headers={"Origin": origin}
    )


def backend(server: Server, secret: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.app),
        base_url="http://localhost:8000",
        headers={"Authorization": f"Bearer {secret}"},
    )


async def registration_token(server: Server, secret: str, user_id: str = "u-42") -> str:
    async with backend(server, secret) as api:
        response = await api.post("/api/v1/registrations", json={"userId": user_id, "username": "ada@shop"})
    assert response.status_code == 200, response.text
    token: str = response.json()["registrationToken"]
    return token


async def add_passkey(server: Server, authenticator: SoftwareAuthenticator, token: str) -> dict[str, Any]:
    async with page(server) as browser:
        begin = await browser.post("/api/v1/passkeys/register/begin", json={"registrationToken": token})
        assert begin.status_code == 200, begin.text
        binding = begin.headers["Passgate-Ceremony"]
        complete = await browser.post(
            "/api/v1/passkeys/register/complete",
            json=authenticator.create(begin.json(), origin=SHOP),
            headers={"Passgate-Ceremony": binding},
        )
    assert complete.status_code == 200, complete.text
    result: dict[str, Any] = complete.json()
    return result


async def sign_in(server: Server, authenticator: SoftwareAuthenticator, app_id: str, **body: Any) -> httpx.Response:
    async with page(server) as browser:
        begin = await browser.post("/api/v1/passkeys/login/begin", json={"appId": app_id, **body})
        assert begin.status_code == 200, begin.text
        return await browser.post(
            "/api/v1/passkeys/login/complete",
            json=authenticator.get(begin.json(), origin=SHOP),
            headers={"Passgate-Ceremony": begin.headers["Passgate-Ceremony"]},
        )


async def test_an_app_adds_a_passkey_to_its_user_and_verifies_who_signed_in(server: Server) -> None:
    app_id, secret = await new_app(server)
    authenticator = SoftwareAuthenticator()
    token = await registration_token(server, secret)
    added = await add_passkey(server, authenticator, token)
    assert added["verified"] is True

    # The WebAuthn user.id is Passgate's random handle, never the app's id for the user.
    handle = server.rows("SELECT user_handle FROM app_users")[0][0]
    assert len(handle) == 32 and b"u-42" not in handle

    signed = await sign_in(server, authenticator, app_id)
    assert signed.status_code == 200, signed.text
    async with backend(server, secret) as api:
        verified = await api.post("/api/v1/signins/verify", json={"token": signed.json()["token"]})
        assert verified.status_code == 200, verified.text
        claims = verified.json()
        assert claims["userId"] == "u-42"
        assert claims["credentialId"] == added["credentialId"]
        assert claims["origin"] == SHOP and claims["rpId"] == "localhost"
        assert "pop" in claims["amr"]
        again = await api.post("/api/v1/signins/verify", json={"token": signed.json()["token"]})
        assert again.status_code == 410 and again.json()["error"] == "token_used"
        listed = await api.get("/api/v1/users/u-42/passkeys")
        assert [p["id"] for p in listed.json()["passkeys"]] == [added["credentialId"]]
    events = server.rows("SELECT type, outcome, detail FROM events WHERE type = 'sign_in'")
    assert events and all(app_id in detail for _, _, detail in events)


async def test_username_first_sign_in_offers_the_users_passkeys(server: Server) -> None:
    app_id, secret = await new_app(server)
    authenticator = SoftwareAuthenticator()
    added = await add_passkey(server, authenticator, await registration_token(server, secret))
    async with page(server) as browser:
        begin = await browser.post("/api/v1/passkeys/login/begin", json={"appId": app_id, "userId": "u-42"})
    assert [c["id"] for c in begin.json()["allowCredentials"]] == [added["credentialId"]]
    assert (await sign_in(server, authenticator, app_id, userId="u-42")).status_code == 200


async def test_a_registration_token_is_spent_once_and_expires(server: Server) -> None:
    _, secret = await new_app(server)
    token = await registration_token(server, secret)
    async with page(server) as browser:
        first = await browser.post("/api/v1/passkeys/register/begin", json={"registrationToken": token})
        assert first.status_code == 200
        again = await browser.post("/api/v1/passkeys/register/begin", json={"registrationToken": token})
        assert again.status_code == 400 and again.json()["error"] == "invalid_registration_token"
        late = await registration_token(server, secret)
        server.clock.advance(minutes=11)
        expired = await browser.post("/api/v1/passkeys/register/begin", json={"registrationToken": late})
        assert expired.status_code == 400 and expired.json()["error"] == "invalid_registration_token"


async def test_a_sign_in_token_expires(server: Server) -> None:
    app_id, secret = await new_app(server)
    authenticator = SoftwareAuthenticator()
    await add_passkey(server, authenticator, await registration_token(server, secret))
    token = (await sign_in(server, authenticator, app_id)).json()["token"]
    server.clock.advance(seconds=121)
    async with backend(server, secret) as api:
        late = await api.post("/api/v1/signins/verify", json={"token": token})
    assert late.status_code == 401 and late.json()["error"] == "invalid_signin_token"


async def test_another_apps_key_sees_nothing_and_cannot_verify_its_tokens(server: Server) -> None:
    app_id, secret = await new_app(server)
    _, other = await new_app(server, name="Other", origin="http://other.localhost:3000")
    authenticator = SoftwareAuthenticator()
    added = await add_passkey(server, authenticator, await registration_token(server, secret))
    token = (await sign_in(server, authenticator, app_id)).json()["token"]
    async with backend(server, other) as api:
        refused = await api.post("/api/v1/signins/verify", json={"token": token})
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_signin_token"
        assert (await api.get("/api/v1/users/u-42/passkeys")).status_code == 404
        assert (await api.get("/api/v1/users/nobody/passkeys")).status_code == 404
        renamed = await api.patch(f"/api/v1/passkeys/{added['credentialId']}", json={"nickname": "x"})
        assert renamed.status_code == 404 and renamed.json()["error"] == "not_found"
        assert (await api.delete(f"/api/v1/passkeys/{added['credentialId']}")).status_code == 404
        assert (await api.delete("/api/v1/users/u-42")).status_code == 404
    async with backend(server, secret) as api:
        # Refused by the other app's key, so still unused: the app's own key verifies it.
        assert (await api.post("/api/v1/signins/verify", json={"token": token})).status_code == 200
        assert len((await api.get("/api/v1/users/u-42/passkeys")).json()["passkeys"]) == 1


async def test_keys_rotate_and_revoked_keys_are_refused(server: Server) -> None:
    app_id, old = await new_app(server)
    ctx = server.app.state.ctx
    new_key, new = await apps.add_key(ctx, app_id)
    (old_key,) = [k for k in await ctx.storage.apps.list_keys(app_id) if k.key_id != new_key.key_id]
    await registration_token(server, old)  # both work during the rotation
    await registration_token(server, new)
    assert await apps.revoke_key(ctx, app_id, old_key.key_id)
    async with backend(server, old) as api:
        refused = await api.post("/api/v1/registrations", json={"userId": "u", "username": "u"})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_api_key"
    await registration_token(server, new)
    for wrong in ("", "pg_sk_nothing"):
        async with backend(server, wrong) as api:
            assert (await api.get("/api/v1/users/u-42/passkeys")).status_code == 401


async def test_passkeys_are_renamed_and_removed_with_their_user(server: Server) -> None:
    app_id, secret = await new_app(server)
    authenticator = SoftwareAuthenticator()
    added = await add_passkey(server, authenticator, await registration_token(server, secret))
    async with backend(server, secret) as api:
        renamed = await api.patch(f"/api/v1/passkeys/{added['credentialId']}", json={"nickname": "Laptop"})
        assert renamed.status_code == 200 and renamed.json()["nickname"] == "Laptop"
        assert (await api.delete("/api/v1/users/u-42")).status_code == 200
        assert (await api.get("/api/v1/users/u-42/passkeys")).status_code == 404
    assert server.rows("SELECT count(*) FROM app_credentials") == [(0,)]
    refused = await sign_in(server, authenticator, app_id)
    assert refused.status_code == 401 and refused.json()["error"] == "unknown_credential"


async def test_app_challenges_do_not_complete_first_party_ceremonies(
    server: Server, browser: httpx.AsyncClient
) -> None:
    _, secret = await new_app(server, origin="http://localhost:8000")
    authenticator = SoftwareAuthenticator()
    begin = await browser.post(
        "/api/v1/passkeys/register/begin", json={"registrationToken": await registration_token(server, secret)}
    )
    crossed = await browser.post(
        "/auth/passkey/register/complete",
        json=authenticator.create(begin.json(), origin="http://localhost:8000"),
        headers={"Cookie": f"passgate_ceremony={begin.headers['Passgate-Ceremony']}"},
    )
    assert crossed.status_code == 400 and crossed.json()["error"] == "challenge_mismatch"
    assert server.rows("SELECT count(*) FROM users") == [(0,)]


@pytest.mark.parametrize("origin", ["http://shop.example", "https://localhost.evil", "http://x/path"])
async def test_an_apps_origins_must_fit_its_rp_id(server: Server, origin: str) -> None:
    with pytest.raises(Exception, match="Origin"):
        await apps.add(server.app.state.ctx, name="Shop", origins=[origin])
    assert await server.app.state.ctx.storage.apps.list_apps() == []


async def started(server: Server, origin: str) -> None:
    """Start the server's lifespan (as uvicorn does) and let its start-up run: the file's apps are stored then."""
    async with server.client():
        for _ in range(1000):
            stored = await server.app.state.ctx.storage.apps.get("shop")
            if stored is not None and stored.origins == (origin,):
                return
            await asyncio.sleep(0.01)
    pytest.fail("the configuration file's app was not stored at start-up")


async def test_apps_of_the_configuration_file_are_served_and_kept_current(make_server: Any, tmp_path: Any) -> None:
    tables = [{"app_id": "shop", "name": "Shop", "origins": [SHOP], "policy": "enterprise"}]
    first = make_server(directory=tmp_path / "db", apps=tables)
    await started(first, SHOP)
    _, secret = await apps.add_key(first.app.state.ctx, "shop")
    await registration_token(first, secret)
    await first.stop()
    # Restarted with the app's origins changed: its key still works, and the new origin is the app's.
    other = "http://new.localhost:3000"
    second = make_server(directory=tmp_path / "db", apps=[{**tables[0], "origins": [other]}])
    await started(second, other)
    stored = await second.app.state.ctx.storage.apps.get("shop")
    assert stored is not None and stored.policy == "enterprise"
    await registration_token(second, secret)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"name": "x", "origins": [SHOP]}, "app_id"),
        ({"app_id": "x", "origins": ["https://shop.example"]}, "neither"),
        ({"app_id": "x", "origins": [SHOP], "policy": "lax"}, "policy"),
        ({"app_id": "x", "origins": [SHOP], "secret": "s"}, "unknown"),
    ],
)
def test_a_bad_app_in_the_configuration_file_is_refused(table: dict[str, Any], message: str) -> None:
    from passgate.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=message):
        load_settings({"database_url": "sqlite:///:memory:", "apps": (table,)})


async def test_each_app_follows_its_own_policy_preset(server: Server) -> None:
    _, consumer = await new_app(server)
    strict, _, enterprise = await apps.add(
        server.app.state.ctx, name="Bank", origins=["http://bank.localhost:3000"], policy="enterprise"
    )
    async with page(server) as browser:
        relaxed = await browser.post(
            "/api/v1/passkeys/register/begin", json={"registrationToken": await registration_token(server, consumer)}
        )
        demanding = await browser.post(
            "/api/v1/passkeys/register/begin", json={"registrationToken": await registration_token(server, enterprise)}
        )
    assert relaxed.json()["attestation"] == "none"
    assert demanding.json()["attestation"] == "direct"
    assert demanding.json()["authenticatorSelection"]["userVerification"] == "required"
    # The enterprise app refuses an unattested passkey, as the preset does.
    async with page(server, "http://bank.localhost:3000") as browser:
        begin = await browser.post(
            "/api/v1/passkeys/register/begin", json={"registrationToken": await registration_token(server, enterprise)}
        )
        refused = await browser.post(
            "/api/v1/passkeys/register/complete",
            json=SoftwareAuthenticator().create(begin.json(), origin="http://bank.localhost:3000"),
            headers={"Passgate-Ceremony": begin.headers["Passgate-Ceremony"]},
        )
    assert refused.status_code == 400, refused.text
    assert server.rows("SELECT count(*) FROM app_credentials WHERE app_id = ?", strict.app_id) == [(0,)]


async def test_rate_limits_count_per_app_user(make_server: Any) -> None:
    server = make_server(rate_limit_per_account=2)
    app_id, _ = await new_app(server)
    async with page(server) as browser:
        for _ in range(2):
            assert (
                await browser.post("/api/v1/passkeys/login/begin", json={"appId": app_id, "userId": "a"})
            ).is_success
        limited = await browser.post("/api/v1/passkeys/login/begin", json={"appId": app_id, "userId": "a"})
        assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
        other = await browser.post("/api/v1/passkeys/login/begin", json={"appId": app_id, "userId": "b"})
        assert other.status_code == 200


async def test_rate_limits_count_per_api_key(make_server: Any) -> None:
    server = make_server(rate_limit_per_ip=2)
    app_id, secret = await new_app(server)
    other_key, other = await apps.add_key(server.app.state.ctx, app_id)
    async with backend(server, secret) as api:
        for _ in range(2):
            assert (await api.get("/api/v1/users/nobody/passkeys")).status_code == 404
        limited = await api.get("/api/v1/users/nobody/passkeys")
        assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    async with backend(server, other) as api:
        assert (await api.get("/api/v1/users/nobody/passkeys")).status_code == 404
    assert other_key.key_id
