"""Removing a passkey signs out the devices it signed in, over the JSON API (with and without Redis)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from passgate.core.encoding import b64url_encode
from passgate.testing import SoftwareAuthenticator
from tests.services import RedisServer
from tests.web.conftest import ORIGIN, Server, login_options, sign_up
from tests.web.test_account_api import account, add_passkey, error, step_up


@pytest.fixture(params=["database", "redis"])
def server(request: pytest.FixtureRequest, make_server: Callable[..., Server]) -> Server:
    if request.param == "database":
        return make_server()
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    server = make_server(redis_url=redis_server.url, secret_key="test")
    server.clock.now = datetime.now(UTC)  # Redis expires challenges by the wall clock
    return server


async def sign_in(client: httpx.AsyncClient, authenticator: SoftwareAuthenticator) -> None:
    options = await login_options(client)
    response = await client.post("/auth/passkey/login/complete", json=authenticator.get(options, origin=ORIGIN))
    assert response.status_code == 200, response.text


def passkey_id(authenticator: SoftwareAuthenticator, passkeys: list[dict[str, object]]) -> str:
    [found] = [p["id"] for p in passkeys if p["id"] == b64url_encode(authenticator.credentials[0].credential_id)]
    return str(found)


def sessions_ended(server: Server) -> list[int]:
    rows = server.rows("SELECT detail FROM events WHERE type = 'passkey.remove' AND outcome = 'success' ORDER BY id")
    return [json.loads(detail)["sessions_ended"] for (detail,) in rows]


async def test_removing_a_passkey_signs_out_the_sessions_it_opened(server: Server) -> None:
    phone, laptop = SoftwareAuthenticator(), SoftwareAuthenticator()
    async with server.client() as on_phone, server.client() as on_phone_too, server.client() as on_laptop:
        await sign_up(on_phone, phone, "nia")
        assert (await add_passkey(on_phone, laptop)).status_code == 200
        await sign_in(on_phone_too, phone)
        await sign_in(on_laptop, laptop)
        for client in (on_phone, on_phone_too, on_laptop):
            assert (await client.get("/auth/session")).status_code == 200  # cached, where there is a cache
        lost = passkey_id(phone, (await account(on_laptop))["passkeys"])
        assert (await on_laptop.delete(f"/auth/passkeys/{lost}")).status_code == 200
        error(await on_phone.get("/auth/session"), 401, "not_signed_in")
        error(await on_phone_too.get("/auth/account"), 401, "not_signed_in")
        assert [p["id"] for p in (await account(on_laptop))["passkeys"]] != [lost]
        assert len((await account(on_laptop))["passkeys"]) == 1
    assert sessions_ended(server) == [2]


async def test_the_session_a_passkey_is_removed_from_stays(server: Server) -> None:
    phone, laptop = SoftwareAuthenticator(), SoftwareAuthenticator()
    async with server.client() as on_phone, server.client() as on_laptop:
        await sign_up(on_phone, phone, "oda")
        assert (await add_passkey(on_phone, laptop)).status_code == 200
        await sign_in(on_laptop, laptop)
        own = passkey_id(phone, (await account(on_phone))["passkeys"])
        assert (await on_phone.delete(f"/auth/passkeys/{own}")).status_code == 200
        assert (await on_phone.get("/auth/session")).status_code == 200
        assert (await on_laptop.get("/auth/session")).status_code == 200  # opened with the other passkey
    assert sessions_ended(server) == [0]


async def test_a_step_up_moves_the_session_to_the_passkey_it_used(server: Server) -> None:
    phone, key = SoftwareAuthenticator(), SoftwareAuthenticator()
    async with server.client() as on_phone, server.client() as on_laptop:
        await sign_up(on_phone, phone, "pam")
        assert (await add_passkey(on_phone, key)).status_code == 200
        await sign_in(on_laptop, phone)  # signed in with the phone (across devices) ...
        await step_up(on_laptop, key)  # ... then confirmed with the security key plugged into the laptop
        lost = passkey_id(phone, (await account(on_phone))["passkeys"])
        assert (await on_laptop.delete(f"/auth/passkeys/{lost}")).status_code == 200
        assert (await on_laptop.get("/auth/session")).status_code == 200
        error(await on_phone.get("/auth/session"), 401, "not_signed_in")
    assert sessions_ended(server) == [1]


async def test_a_recovery_session_belongs_to_the_passkey_it_added(server: Server) -> None:
    phone, new_phone = SoftwareAuthenticator(), SoftwareAuthenticator()
    async with server.client() as on_laptop, server.client() as recovering, server.client() as recovered:
        await sign_up(on_laptop, phone, "quin")
        codes = (await on_laptop.post("/auth/recovery/codes")).json()["codes"]
        for client, code in ((recovering, codes[0]), (recovered, codes[1])):
            signed_in = await client.post("/auth/recovery/codes/sign-in", json={"username": "quin", "code": code})
            assert signed_in.status_code == 200, signed_in.text
        assert (await add_passkey(recovered, new_phone)).status_code == 200
        added = passkey_id(new_phone, (await account(on_laptop))["passkeys"])
        assert (await on_laptop.delete(f"/auth/passkeys/{added}")).status_code == 200
        error(await recovered.get("/auth/session"), 401, "not_signed_in")
        assert (await recovering.get("/auth/session")).status_code == 200  # opened by a code, not a passkey
    assert sessions_ended(server) == [1]
