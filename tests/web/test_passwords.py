"""Password sign-in and the upgrade to a passkey over the first-party JSON API, and what a password session is worth
to OpenID Connect clients."""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from passgate.core import errors
from passgate.core.errors import NoPassword, PasskeyError, PasswordIncorrect, PasswordsOff, UpgradeNotAllowed
from passgate.core.passwords import hash_password
from passgate.store.base import StoredPassword, User
from passgate.testing import SoftwareAuthenticator
from passgate.web.errors import error_response, status_for
from tests.web.conftest import ORIGIN, Server
from tests.web.test_account_api import error, step_up
from tests.web.test_oidc_code_flow import CLIENTS
from tests.web.test_oidc_prompt import id_token_for, sign_in, sign_in_page_next, start

PASSWORD = "correct horse battery staple"


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server(passwords="migrate", oidc_clients=CLIENTS)


async def imported(server: Server, username: str, password: str | None = PASSWORD) -> User:
    ctx = server.app.state.ctx
    now = server.clock()
    user = User(
        id=secrets.token_urlsafe(9),
        username=username,
        display_name=username.title(),
        user_handle=secrets.token_bytes(32),
        created_at=now,
    )
    stored = None
    if password is not None:
        stored = StoredPassword(user_id=user.id, hash=hash_password(password), created_at=now, updated_at=now)
    await ctx.storage.users.create_imported(user, [], stored)
    return user


async def password_login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/auth/password/login", json={"username": username, "password": password})


async def upgrade(client: httpx.AsyncClient, authenticator: SoftwareAuthenticator) -> httpx.Response:
    begin = await client.post("/auth/passkey/register/begin", json={"conditional": True})
    assert begin.status_code == 200, begin.text
    return await client.post("/auth/passkey/register/complete", json=authenticator.create(begin.json(), origin=ORIGIN))


def silent() -> SoftwareAuthenticator:
    return SoftwareAuthenticator(user_present=False, user_verified=False)


@pytest.mark.parametrize(
    ("error_", "status", "code"),
    [
        (PasswordIncorrect(), 401, "password_incorrect"),
        (PasswordsOff(), 403, "passwords_off"),
        (UpgradeNotAllowed(), 403, "upgrade_not_allowed"),
        (NoPassword(), 404, "no_password"),
    ],
)
def test_password_errors_have_a_status_and_a_code(error_: PasskeyError, status: int, code: str) -> None:
    response = error_response(error_)
    assert status_for(error_) == status == response.status_code
    assert json.loads(bytes(response.body))["error"] == code
    tree = errors.__doc__ or ""
    assert isinstance(error_, errors.AccountError)
    [line] = [line for line in tree.splitlines() if f"── {type(error_).__name__} " in line]
    assert line.split("── ")[1].split()[:2] == [type(error_).__name__, code]


async def test_a_password_sign_in(server: Server) -> None:
    user = await imported(server, "grace")
    async with server.client() as browser:
        response = await password_login(browser, "Grace")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "verified": True,
            "user": {"id": user.id, "username": "grace", "displayName": "Grace"},
            "upgrade": True,
        }
        assert "passgate_session=" in response.headers["set-cookie"]
        account = (await browser.get("/auth/account")).json()
    assert account["session"] == {"kind": "password", "stepUpValidUntil": None}
    assert account["hasPassword"] is True and account["passwords"] == "migrate"
    [(kind,)] = server.rows("SELECT kind FROM sessions")
    assert kind == "password"


async def test_a_native_app_gets_the_session_token_in_the_body(server: Server) -> None:
    await imported(server, "grace")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url=ORIGIN) as app:
        response = await password_login(app, "grace")
        assert response.status_code == 200 and "set-cookie" not in response.headers
        token = response.json()["sessionToken"]
        session = await app.get("/auth/session", headers={"Authorization": f"Bearer {token}"})
    assert session.status_code == 200 and session.json()["user"]["username"] == "grace"


async def test_refusals_are_one_answer_and_change_nothing(server: Server) -> None:
    await imported(server, "grace")
    await imported(server, "linus", None)
    async with server.client() as browser:
        before = server.snapshot()
        answers = [
            await password_login(browser, "nobody"),
            await password_login(browser, "linus"),
            await password_login(browser, "grace", "wrong password"),
        ]
        assert server.snapshot() == before
    assert {a.status_code for a in answers} == {401}
    assert len({a.content for a in answers}) == 1 and answers[0].json()["error"] == "password_incorrect"


async def test_available(server: Server) -> None:
    await imported(server, "grace")
    await imported(server, "linus", None)
    async with server.client() as browser:
        answers = {
            name: (await browser.post("/auth/password/available", json={"username": name})).json()
            for name in ("grace", "nobody", "linus")
        }
        refused = await browser.post("/auth/password/available", json={"username": ""})
    assert answers == {"grace": {"password": True}, "nobody": {"password": True}, "linus": {"password": False}}
    error(refused, 400, "invalid_request")


async def test_the_sixth_attempt_a_minute_is_refused_even_with_the_password(server: Server) -> None:
    await imported(server, "grace")
    async with server.client() as browser:
        guesses = [(await password_login(browser, "grace", f"guess {n}")).status_code for n in range(5)]
        right = await password_login(browser, "grace")
    assert guesses == [401] * 5
    error(right, 429, "rate_limited")
    assert int(right.headers["retry-after"]) >= 1


async def test_attempts_are_limited_per_address(make_server: Callable[..., Server]) -> None:
    server = make_server(passwords="migrate", rate_limit_per_ip=3)
    await imported(server, "grace")
    async with server.client() as browser:
        answers = [(await password_login(browser, name, "guess")).status_code for name in ("a", "b", "c")]
        error(await password_login(browser, "grace"), 429, "rate_limited")
    assert answers == [401] * 3


async def test_with_passwords_off(make_server: Callable[..., Server]) -> None:
    server = make_server()
    await imported(server, "grace")
    async with server.client() as browser:
        error(await browser.post("/auth/password/available", json={"username": "grace"}), 403, "passwords_off")
        error(await password_login(browser, "grace"), 403, "passwords_off")
    assert server.rows("SELECT count(*) FROM sessions") == [(0,)]


async def test_turning_passwords_off_ends_password_sessions(server: Server) -> None:
    await imported(server, "grace")
    async with server.client() as browser:
        assert (await password_login(browser, "grace")).status_code == 200
        assert (await browser.get("/auth/account")).status_code == 200
        ctx = server.app.state.ctx
        server.app.state.ctx = dataclasses.replace(ctx, rp=dataclasses.replace(ctx.rp, passwords="off"))
        error(await browser.get("/auth/account"), 401, "not_signed_in")
    assert server.rows("SELECT count(*) FROM sessions") == [(0,)]


async def test_the_upgrade_accepts_a_passkey_made_without_a_prompt(server: Server) -> None:
    await imported(server, "grace")
    async with server.client() as browser:
        assert (await password_login(browser, "grace")).status_code == 200
        added = await upgrade(browser, silent())
        assert added.status_code == 200, added.text
        assert added.json()["newAccount"] is False
        account = (await browser.get("/auth/account")).json()
    assert len(account["passkeys"]) == 1 and account["session"]["kind"] == "password"
    assert server.rows("SELECT created_by FROM credentials") == [("upgrade",)]
    [(detail,)] = server.rows("SELECT detail FROM events WHERE type = 'passkey.register'")
    assert json.loads(detail) == {"upgrade": True}


async def test_without_the_upgrade_challenge_user_presence_is_required(server: Server) -> None:
    await imported(server, "grace")
    async with server.client() as browser:
        assert (await password_login(browser, "grace")).status_code == 200
        begin = await browser.post("/auth/passkey/register/begin", json={})
        assert begin.status_code == 200, begin.text  # no step-up for a password session
        refused = await browser.post(
            "/auth/passkey/register/complete", json=silent().create(begin.json(), origin=ORIGIN)
        )
    error(refused, 400, "user_not_present")
    assert server.rows("SELECT count(*) FROM credentials") == [(0,)]


async def test_the_upgrade_is_refused_late_signed_out_or_in_another_browser(server: Server) -> None:
    await imported(server, "grace")
    async with server.client() as browser, server.client() as other:
        refused = await browser.post("/auth/passkey/register/begin", json={"conditional": True})
        error(refused, 403, "upgrade_not_allowed")
        assert (await password_login(browser, "grace")).status_code == 200
        assert (await password_login(other, "grace")).status_code == 200
        begin = await browser.post("/auth/passkey/register/begin", json={"conditional": True})
        response = silent().create(begin.json(), origin=ORIGIN)
        error(await other.post("/auth/passkey/register/complete", json=response), 400, "challenge_mismatch")
        server.clock.advance(minutes=5, seconds=1)
        late = await browser.post("/auth/passkey/register/begin", json={"conditional": True})
        error(late, 403, "upgrade_not_allowed")
    assert server.rows("SELECT count(*) FROM credentials") == [(0,)]


async def test_a_passkey_session_gets_no_upgrade(server: Server) -> None:
    authenticator = SoftwareAuthenticator()
    await imported(server, "grace")
    async with server.client() as browser:
        assert (await password_login(browser, "grace")).status_code == 200
        assert (await upgrade(browser, authenticator)).status_code == 200
        await step_up(browser, authenticator)  # now a passkey session
        error(
            await browser.post("/auth/passkey/register/begin", json={"conditional": True}), 403, "upgrade_not_allowed"
        )
        begin = await browser.post("/auth/passkey/register/begin", json={})
        refused = await browser.post(
            "/auth/passkey/register/complete", json=silent().create(begin.json(), origin=ORIGIN)
        )
    error(refused, 400, "user_not_present")


async def test_removing_the_password(server: Server) -> None:
    authenticator = SoftwareAuthenticator()
    await imported(server, "grace")
    async with server.client() as browser:
        assert (await password_login(browser, "grace")).status_code == 200
        assert (await upgrade(browser, authenticator)).status_code == 200
        [passkey] = (await browser.get("/auth/account")).json()["passkeys"]
        error(await browser.delete("/auth/password"), 403, "step_up_required")
        error(await browser.delete(f"/auth/passkeys/{passkey['id']}"), 403, "step_up_required")
        await step_up(browser, authenticator)
        removed = await browser.delete("/auth/password")
        assert removed.status_code == 200 and removed.json() == {"removed": True}
        assert (await browser.get("/auth/account")).json()["hasPassword"] is False
        error(await browser.delete("/auth/password"), 404, "no_password")
        error(await password_login(browser, "grace"), 401, "password_incorrect")


async def test_a_password_session_for_an_openid_connect_client(server: Server) -> None:
    """amr pwd, no acr, and the auth_time of the password sign-in."""
    await imported(server, "grace")
    async with server.client() as browser:
        assert (await password_login(browser, "grace")).status_code == 200
        signed_in_at = int(server.clock().timestamp())
        server.clock.advance(minutes=2)
        response, flow = await start(server, browser)
        claims = await id_token_for(server, browser, response, **flow)
    assert claims["amr"] == ["pwd"] and "acr" not in claims
    assert claims["auth_time"] == signed_in_at


async def test_acr_values_phr_needs_a_passkey_sign_in(server: Server) -> None:
    authenticator = SoftwareAuthenticator()
    await imported(server, "grace")
    async with server.client() as browser:
        assert (await password_login(browser, "grace")).status_code == 200
        assert (await upgrade(browser, authenticator)).status_code == 200
        response, flow = await start(server, browser, acr_values="phr")
        back = sign_in_page_next(response)
        assert sign_in_page_next(await browser.get(back)) == back  # still the password session: sign in again
        await sign_in(browser, authenticator)
        claims: dict[str, Any] = await id_token_for(server, browser, await browser.get(back), **flow)
    assert claims["acr"] == "phr" and "pwd" not in claims["amr"]


async def test_a_password_session_confirms_no_payment(make_server: Callable[..., Server]) -> None:
    shop = make_server(passwords="migrate", policy="payments")
    authenticator = SoftwareAuthenticator()
    transaction = {"transaction": {"payee": "Bakery Ltd", "amount": "12.50", "currency": "EUR"}}
    await imported(shop, "grace")
    async with shop.client() as browser:
        assert (await password_login(browser, "grace")).status_code == 200
        assert (await upgrade(browser, authenticator)).status_code == 200
        error(await browser.post("/auth/payments/confirm/begin", json=transaction), 403, "step_up_required")
        await step_up(browser, authenticator)  # a passkey session now
        begin = await browser.post("/auth/payments/confirm/begin", json=transaction)
        assert begin.status_code == 200, begin.text


async def test_available_is_rate_limited_like_sign_in_begin(make_server: Callable[..., Server]) -> None:
    server = make_server(passwords="migrate", rate_limit_per_account=3)
    async with server.client() as one, server.client() as other:
        answers = [
            await client.post("/auth/password/available", json={"username": name})
            for client, name in ((one, "target"), (other, "TARGET"), (one, "target"), (other, "target"))
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert (await one.post("/auth/password/available", json={"username": "someone"})).status_code == 200


async def test_nothing_secret_is_logged_or_recorded(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    await imported(server, "grace")
    async with server.client() as browser:
        await password_login(browser, "grace", "a wrong guess")
        await password_login(browser, "grace")
    [(stored,)] = server.rows("SELECT hash FROM passwords")
    events = json.dumps(server.rows("SELECT * FROM events"), default=str)
    for secret in (PASSWORD, "a wrong guess", stored):
        assert secret not in events and secret not in caplog.text
