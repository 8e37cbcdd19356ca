"""The admin API (/admin/v1) over HTTP: admin keys and their scopes, support actions, and what disabling and deleting
an account do to its sign-ins, recoveries and sessions."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from passgate.core.encoding import b64url_encode
from passgate.service import admin_keys
from passgate.service.context import Client
from passgate.store.base import ADMIN_SCOPES
from passgate.testing import SoftwareAuthenticator
from tests.mailbox import SmtpServer, text_of
from tests.services import RedisServer
from tests.web.conftest import ORIGIN, Server, login_options, sign_up
from tests.web.test_account_api import account, error, set_verified_email, step_up
from tests.web.test_oidc_refresh import CLIENTS, offline_party, refresh, tokens_for
from tests.web.test_passwords import imported, password_login

# Every route, the scope it needs, and a request the right key gets past the key check with ("nobody": no such
# account, so a change answers 404 and changes nothing).
ROUTES: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("GET", "/admin/v1/users", "users:read", None),
    ("GET", "/admin/v1/users/nobody", "users:read", None),
    ("POST", "/admin/v1/users/nobody/disable", "users:write", None),
    ("POST", "/admin/v1/users/nobody/enable", "users:write", None),
    ("DELETE", "/admin/v1/users/nobody", "users:write", None),
    ("GET", "/admin/v1/users/nobody/passkeys", "users:read", None),
    ("DELETE", "/admin/v1/users/nobody/passkeys/AAAA", "users:write", None),
    ("GET", "/admin/v1/users/nobody/sessions", "users:read", None),
    ("DELETE", "/admin/v1/users/nobody/sessions", "sessions:write", None),
    ("DELETE", "/admin/v1/users/nobody/sessions/some-sid", "sessions:write", None),
    ("GET", "/admin/v1/events", "events:read", None),
    ("GET", "/admin/v1/events/export", "events:read", None),
    ("GET", "/admin/v1/clients", "apps:write", None),
    ("POST", "/admin/v1/clients", "apps:write", {"name": "CRM", "redirectUris": ["https://crm.example/cb"]}),
    ("DELETE", "/admin/v1/clients/nobody", "apps:write", None),
    ("GET", "/admin/v1/apps", "apps:write", None),
    ("POST", "/admin/v1/apps", "apps:write", {"name": "Shop", "origins": ["http://localhost:3000"]}),
    ("DELETE", "/admin/v1/apps/nobody", "apps:write", None),
    ("GET", "/admin/v1/webhooks", "apps:write", None),
    ("POST", "/admin/v1/webhooks", "apps:write", {"url": "https://crm.example/hooks", "events": ["user.*"]}),
    ("DELETE", "/admin/v1/webhooks/nobody", "apps:write", None),
    ("POST", "/admin/v1/webhooks/nobody/enable", "apps:write", None),
    ("POST", "/admin/v1/webhooks/nobody/rotate", "apps:write", None),
    ("GET", "/admin/v1/webhooks/nobody/deliveries", "apps:write", None),
    ("POST", "/admin/v1/webhooks/deliveries/1/redeliver", "apps:write", None),
]
ALLOWED = {"GET": {200, 404}, "POST": {200, 201, 404}, "DELETE": {204, 404}}


@pytest.fixture
def server(make_server: Callable[..., Server], smtp: SmtpServer) -> Server:
    return make_server(passwords="migrate", oidc_clients=CLIENTS, **smtp.settings)


async def new_key(server: Server, *scopes: str, name: str = "support") -> str:
    _key, secret = await admin_keys.add(server.app.state.ctx, Client(), name, scopes)
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def call(
    client: httpx.AsyncClient, method: str, path: str, secret: str | None, body: dict[str, Any] | None = None
) -> httpx.Response:
    headers = bearer(secret) if secret is not None else {}
    return await client.request(method, path, headers=headers, json=body)


async def user_id(client: httpx.AsyncClient, secret: str, username: str) -> str:
    found = (await call(client, "GET", f"/admin/v1/users?search={username}", secret)).json()["users"]
    assert [u["username"] for u in found] == [username]
    return str(found[0]["id"])


async def sign_in(
    client: httpx.AsyncClient, authenticator: SoftwareAuthenticator, username: str | None = None
) -> httpx.Response:
    options = await login_options(client, username=username) if username else await login_options(client)
    return await client.post("/auth/passkey/login/complete", json=authenticator.get(options, origin=ORIGIN))


@pytest.mark.parametrize(("method", "path", "scope", "body"), ROUTES)
async def test_every_route_needs_an_admin_key_with_its_scope(
    server: Server, method: str, path: str, scope: str, body: dict[str, Any] | None
) -> None:
    others = await new_key(server, *(s for s in ADMIN_SCOPES if s != scope), name="others")
    right = await new_key(server, scope, name="right")
    async with server.client() as client:
        error(await call(client, method, path, None, body), 401, "invalid_admin_key")
        error(await call(client, method, path, "pga_" + "x" * 43, body), 401, "invalid_admin_key")
        error(await call(client, method, path, others, body), 403, "insufficient_scope")
        allowed = await call(client, method, path, right, body)
        assert allowed.status_code in ALLOWED[method], (path, allowed.text)


async def test_a_persons_own_session_never_reaches_the_admin_api(server: Server) -> None:
    secret = await new_key(server, *ADMIN_SCOPES)
    async with server.client() as person:
        await sign_up(person, SoftwareAuthenticator(), "ana")
        cookie = person.cookies["passgate_session"]
        token = (await person.post("/auth/session/token")).json()["token"]
        error(await person.get("/admin/v1/users"), 401, "invalid_admin_key")  # the session cookie
        error(await person.get("/admin/v1/users", headers=bearer(cookie)), 401, "invalid_admin_key")
        error(await person.get("/admin/v1/users", headers=bearer(token)), 401, "invalid_admin_key")
        # An admin key that is revoked is refused at once.
        assert (await person.get("/admin/v1/users", headers=bearer(secret))).status_code == 200
        assert await admin_keys.revoke(server.app.state.ctx, Client(), "support")
        error(await person.get("/admin/v1/users", headers=bearer(secret)), 401, "invalid_admin_key")


async def test_the_schema_lists_the_admin_api_with_its_security_scheme(server: Server) -> None:
    async with server.client() as client:
        schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["adminKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "pga_...",
        "description": "An admin key made with `passgate admin keys add NAME --scope ...`.",
    }
    assert schema["paths"]["/admin/v1/users/{user_id}/disable"]["post"]["security"] == [{"adminKey": []}]


async def test_support_finds_a_person_and_reads_their_account_and_events(server: Server, smtp: SmtpServer) -> None:
    secret = await new_key(server, "users:read", "events:read")
    async with server.client() as person:
        await sign_up(person, SoftwareAuthenticator(), "bea")
        await set_verified_email(person, smtp, "bea@example.com")
        await person.post("/auth/recovery/codes")
    async with server.client() as other:
        await sign_up(other, SoftwareAuthenticator(), "cai")
    async with server.client() as client:
        everyone = (await call(client, "GET", "/admin/v1/users?limit=1", secret)).json()
        assert len(everyone["users"]) == 1 and everyone["nextCursor"] == everyone["users"][0]["id"]
        rest = (await call(client, "GET", f"/admin/v1/users?cursor={everyone['nextCursor']}", secret)).json()
        assert rest["nextCursor"] is None
        names = {u["username"] for u in everyone["users"] + rest["users"]}
        assert names == {"bea", "cai"}
        by_email = (await call(client, "GET", "/admin/v1/users?search=BEA@example", secret)).json()["users"]
        assert [u["username"] for u in by_email] == ["bea"]
        bea = by_email[0]["id"]
        shown = (await call(client, "GET", f"/admin/v1/users/{bea}", secret)).json()
        assert shown["email"] == "bea@example.com" and shown["disabledAt"] is None
        assert len(shown["passkeys"]) == 1 and len(shown["sessions"]) == 1
        assert shown["recovery"] == {"backupCodesLeft": 10, "emailVerified": True, "password": False}
        assert "passkey.register" in [e["type"] for e in shown["recentEvents"]]
        first = (await call(client, "GET", f"/admin/v1/events?user_id={bea}&limit=2", secret)).json()
        assert len(first["events"]) == 2 and first["nextCursor"]
        more = (
            await call(client, "GET", f"/admin/v1/events?user_id={bea}&cursor={first['nextCursor']}", secret)
        ).json()
        paged = [e["id"] for e in first["events"] + more["events"]]
        assert paged == sorted(paged, reverse=True) and len(set(paged)) == len(paged)
        registered = (await call(client, "GET", "/admin/v1/events?type=passkey.register", secret)).json()["events"]
        assert {e["userId"] for e in registered} == {bea, await user_id(client, secret, "cai")}
        error(await call(client, "GET", "/admin/v1/events?since=yesterday", secret), 400, "invalid_request")
        error(await call(client, "GET", "/admin/v1/events?outcome=maybe", secret), 400, "invalid_request")
        export = await call(client, "GET", f"/admin/v1/events/export?user_id={bea}", secret)
        assert export.status_code == 200 and export.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in export.text.splitlines()]
        assert [line["id"] for line in lines] == paged


async def test_disabling_refuses_every_ceremony_and_recovery_and_ends_the_open_session(
    server: Server, smtp: SmtpServer
) -> None:
    secret = await new_key(server, "users:write", "users:read", "events:read")
    authenticator = SoftwareAuthenticator()
    shop = offline_party(server)
    async with server.client() as person, server.client() as other_browser:
        await sign_up(person, authenticator, "dee")
        await set_verified_email(person, smtp, "dee@example.com")
        codes = (await person.post("/auth/recovery/codes")).json()["codes"]
        tokens = await tokens_for(shop, person)
        assert (await other_browser.post("/auth/recovery/email", json={"email": "dee@example.com"})).status_code == 202
        link = (await smtp.mailbox.newest_link("dee@example.com", "/recover/email", count=2)).split("token=")[1]
        dee = await user_id(person, secret, "dee")

        disabled = await call(person, "POST", f"/admin/v1/users/{dee}/disable", secret)
        assert disabled.status_code == 200 and disabled.json()["sessionsEnded"] == 1

        # The open session has ended; a new passkey cannot be registered with it.
        error(await person.get("/auth/account"), 401, "not_signed_in")
        error(await person.post("/auth/passkey/register/begin", json={"userId": dee}), 401, "not_signed_in")
        # Sign-in, username first (refused at begin) and discoverable (the account known only at complete).
        error(await person.post("/auth/passkey/login/begin", json={"username": "dee"}), 403, "account_disabled")
        error(await sign_in(person, authenticator), 403, "account_disabled")
        # Recovery: a backup code (left unused), an email link sent before, a new link (never sent).
        refused = await person.post("/auth/recovery/codes/sign-in", json={"username": "dee", "code": codes[0]})
        error(refused, 403, "account_disabled")
        error(await other_browser.post("/auth/recovery/email/complete", json={"token": link}), 403, "account_disabled")
        sent = len(smtp.mailbox.to("dee@example.com"))
        assert (await person.post("/auth/recovery/email", json={"email": "dee@example.com"})).status_code == 202
        # The app's refresh token stops too.
        answer = await refresh(server, tokens["refresh_token"])
        assert answer.status_code == 403 and answer.json()["error"] == "account_disabled"

        events = (await call(person, "GET", f"/admin/v1/events?user_id={dee}&type=admin.user.disable", secret)).json()
        assert [e["detail"]["admin_key"] for e in events["events"]] == ["support"]
        shown = (await call(person, "GET", f"/admin/v1/users/{dee}", secret)).json()
        assert shown["disabledAt"] is not None and shown["sessions"] == []

        assert (await call(person, "POST", f"/admin/v1/users/{dee}/enable", secret)).status_code == 200
        assert (await sign_in(person, authenticator, "dee")).status_code == 200
        assert (await account(person))["user"]["username"] == "dee"
        used = await other_browser.post("/auth/recovery/codes/sign-in", json={"username": "dee", "code": codes[0]})
        assert used.status_code == 200  # the code the disabled account was refused with was not used up
    assert len(smtp.mailbox.to("dee@example.com")) >= sent
    assert not any("/recover/email" in text_of(m) for m in smtp.mailbox.to("dee@example.com")[sent:])


async def test_a_disabled_password_account_is_refused_once_the_password_is_right(server: Server) -> None:
    secret = await new_key(server, "users:write")
    moved = await imported(server, "eli")
    async with server.client() as client:
        assert (await call(client, "POST", f"/admin/v1/users/{moved.id}/disable", secret)).status_code == 200
        error(await password_login(client, "eli", "wrong"), 401, "password_incorrect")
        error(await password_login(client, "eli"), 403, "account_disabled")


async def test_disabling_ends_a_session_served_from_the_redis_cache_at_once(
    make_server: Callable[..., Server],
) -> None:
    redis_server = RedisServer.start()  # its own: nothing another test left in a shared one plays a part
    try:
        await _disabling_ends_a_cached_session(make_server, redis_server)
    finally:
        redis_server.stop()


async def _disabling_ends_a_cached_session(make_server: Callable[..., Server], redis_server: RedisServer) -> None:
    server = make_server(redis_url=redis_server.url, secret_key="k" * 43)
    server.clock.now = datetime.now(UTC)  # Redis expires challenges by the wall clock
    secret = await new_key(server, "users:write", "users:read")
    async with server.client() as person:
        await sign_up(person, SoftwareAuthenticator(), "fia")
        assert (await account(person))["user"]["username"] == "fia"  # the session is cached now
        fia = await user_id(person, secret, "fia")
        assert (await call(person, "POST", f"/admin/v1/users/{fia}/disable", secret)).status_code == 200
        error(await person.get("/auth/account"), 401, "not_signed_in")


async def test_an_admin_removes_a_passkey_as_its_owner_would(server: Server, smtp: SmtpServer) -> None:
    secret = await new_key(server, "users:write", "users:read")
    phone, laptop = SoftwareAuthenticator(), SoftwareAuthenticator()
    async with server.client() as on_phone, server.client() as on_laptop:
        await sign_up(on_phone, phone, "gil")
        await set_verified_email(on_phone, smtp, "gil@example.com")
        await step_up(on_phone, phone)
        begin = await on_phone.post("/auth/passkey/register/begin", json={})
        await on_phone.post("/auth/passkey/register/complete", json=laptop.create(begin.json(), origin=ORIGIN))
        assert (await sign_in(on_laptop, laptop, "gil")).status_code == 200
        gil = await user_id(on_phone, secret, "gil")
        passkeys = (await call(on_phone, "GET", f"/admin/v1/users/{gil}/passkeys", secret)).json()["passkeys"]
        assert len(passkeys) == 2
        laptop_id = b64url_encode(laptop.credentials[0].credential_id)
        removed = await call(on_phone, "DELETE", f"/admin/v1/users/{gil}/passkeys/{laptop_id}", secret)
        assert removed.status_code == 204
        error(await on_laptop.get("/auth/account"), 401, "not_signed_in")  # the session the passkey opened
        assert (await account(on_phone))["user"]["username"] == "gil"
        error(
            await call(on_phone, "DELETE", f"/admin/v1/users/{gil}/passkeys/{laptop_id}", secret),
            401,
            "unknown_credential",
        )
    # The address's verification, the laptop's passkey added, and its removal (in whichever order they arrive).
    messages = await smtp.mailbox.received("gil@example.com", count=3)
    assert any("A passkey was removed" in m["Subject"] for m in messages)


async def test_sessions_are_listed_and_ended_one_or_all(server: Server) -> None:
    secret = await new_key(server, "users:read", "sessions:write")
    authenticator = SoftwareAuthenticator()
    async with server.client() as first, server.client() as second, server.client() as third:
        await sign_up(first, authenticator, "hal")
        hal = await user_id(first, secret, "hal")

        async def sids() -> set[str]:
            listed = (await call(first, "GET", f"/admin/v1/users/{hal}/sessions", secret)).json()["sessions"]
            return {session["sid"] for session in listed}

        before = await sids()
        await sign_in(second, authenticator, "hal")
        [second_sid] = await sids() - before
        await sign_in(third, authenticator, "hal")
        assert len(await sids()) == 3
        assert (await call(first, "DELETE", f"/admin/v1/users/{hal}/sessions/{second_sid}", secret)).status_code == 204
        error(await second.get("/auth/account"), 401, "not_signed_in")
        assert (await first.get("/auth/account")).status_code == 200
        error(await call(first, "DELETE", f"/admin/v1/users/{hal}/sessions/{second_sid}", secret), 404, "not_found")
        ended = (await call(first, "DELETE", f"/admin/v1/users/{hal}/sessions", secret)).json()
        assert ended["sessionsEnded"] == 2
        error(await first.get("/auth/account"), 401, "not_signed_in")
        error(await third.get("/auth/account"), 401, "not_signed_in")


async def test_clients_and_apps_are_listed_added_and_removed(server: Server) -> None:
    secret = await new_key(server, "apps:write")
    async with server.client() as client:
        added = await call(
            client, "POST", "/admin/v1/clients", secret, {"name": "CRM", "redirectUris": ["https://crm.example/cb"]}
        )
        assert added.status_code == 201 and added.json()["clientSecret"]
        crm = added.json()["clientId"]
        listed = {c["clientId"] for c in (await call(client, "GET", "/admin/v1/clients", secret)).json()["clients"]}
        assert {crm, "shop"} <= listed
        bad = await call(client, "POST", "/admin/v1/clients", secret, {"name": "X", "redirectUris": ["ftp://x"]})
        assert bad.status_code == 400
        error(await call(client, "DELETE", "/admin/v1/clients/shop", secret), 400, "invalid_request")  # the file's
        assert (await call(client, "DELETE", f"/admin/v1/clients/{crm}", secret)).status_code == 204
        app = await call(
            client, "POST", "/admin/v1/apps", secret, {"name": "Shop", "origins": ["http://localhost:3000"]}
        )
        assert app.status_code == 201 and app.json()["apiKey"].startswith("pg_sk_")
        assert [a["name"] for a in (await call(client, "GET", "/admin/v1/apps", secret)).json()["apps"]] == ["Shop"]
        assert (await call(client, "DELETE", f"/admin/v1/apps/{app.json()['appId']}", secret)).status_code == 204
    types = server.rows("SELECT type, detail FROM events WHERE type LIKE 'admin.%' ORDER BY id")
    assert [t for t, _ in types] == [
        "admin.key.add",
        "admin.client.add",
        "admin.client.add",
        "admin.client.remove",
        "admin.client.remove",
        "admin.app.add",
        "admin.app.remove",
    ]
    assert all(json.loads(detail)["admin_key"] in ("cli", "support") for _, detail in types)


async def test_a_deleted_persons_passkey_no_longer_signs_in_and_their_data_is_gone(
    server: Server, smtp: SmtpServer
) -> None:
    secret = await new_key(server, "users:write", "users:read", "events:read")
    authenticator = SoftwareAuthenticator()
    async with server.client() as person:
        await sign_up(person, authenticator, "ivy")
        await set_verified_email(person, smtp, "ivy@example.com")
        await person.post("/auth/recovery/codes")
        await tokens_for(offline_party(server), person)
        ivy = await user_id(person, secret, "ivy")
        deleted = await call(person, "DELETE", f"/admin/v1/users/{ivy}", secret)
        assert deleted.status_code == 200 and deleted.json()["sessionsEnded"] == 1
        error(await person.get("/auth/account"), 401, "not_signed_in")
        error(await sign_in(person, authenticator), 401, "unknown_credential")
        error(await call(person, "GET", f"/admin/v1/users/{ivy}", secret), 404, "not_found")
        kept = (await call(person, "GET", "/admin/v1/events?type=passkey.register", secret)).json()["events"]
    assert [e["userId"].startswith("anon_") for e in kept] == [True]
    for table in [row[0] for row in server.rows("SELECT name FROM sqlite_master WHERE type = 'table'")]:
        for row in server.rows(f'SELECT * FROM "{table}"'):  # noqa: S608 - table names from the schema
            text = " ".join(str(value) for value in row)
            assert ivy not in text and "ivy@example.com" not in text.lower() and "'ivy'" not in repr(row), table
