"""Account life over the JSON API: passkey management, step-up, backup codes, email, and their refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from passgate.core.encoding import b64url_decode
from passgate.testing import SoftwareAuthenticator
from tests.mailbox import SmtpServer
from tests.web.conftest import ORIGIN, Server, login_options, sign_up


@pytest.fixture
def mail_server(make_server: Callable[..., Server], smtp: SmtpServer) -> Server:
    return make_server(**smtp.settings)


async def step_up(client: httpx.AsyncClient, authenticator: SoftwareAuthenticator) -> None:
    options = await login_options(client, stepUp=True)
    response = await client.post("/auth/passkey/login/complete", json=authenticator.get(options, origin=ORIGIN))
    assert response.status_code == 200, response.text


async def add_passkey(client: httpx.AsyncClient, authenticator: SoftwareAuthenticator) -> httpx.Response:
    begin = await client.post("/auth/passkey/register/begin", json={})
    if begin.status_code != 200:
        return begin
    return await client.post("/auth/passkey/register/complete", json=authenticator.create(begin.json(), origin=ORIGIN))


async def account(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/auth/account")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def set_verified_email(client: httpx.AsyncClient, smtp: SmtpServer, address: str) -> None:
    assert (await client.post("/auth/email", json={"email": address})).status_code == 202
    token = (await smtp.mailbox.newest_link(address, "/email/verify")).split("token=")[1]
    verified = await client.post("/auth/email/verify", json={"token": token})
    assert verified.status_code == 200 and verified.json()["email"] == address


def error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code


async def test_passkeys_are_named_renamed_and_listed(browser: httpx.AsyncClient) -> None:
    await sign_up(browser, SoftwareAuthenticator(), "ana")
    [passkey] = (await account(browser))["passkeys"]
    assert passkey["name"] == "Passkey" and passkey["provider"]["known"] is False  # an unknown AAGUID
    rename = await browser.patch(f"/auth/passkeys/{passkey['id']}", json={"nickname": "<b>Laptop</b>"})
    assert rename.status_code == 200
    [renamed] = (await account(browser))["passkeys"]
    assert renamed["name"] == renamed["nickname"] == "<b>Laptop</b>"  # stored as text; pages escape it
    error(await browser.patch(f"/auth/passkeys/{passkey['id']}", json={"nickname": "x" * 65}), 400, "invalid_request")


async def test_a_known_aaguid_gets_its_provider_name(browser: httpx.AsyncClient) -> None:
    google = bytes.fromhex("ea9b8d664d011d213ce4b6b48cb575d4")  # Google Password Manager
    await sign_up(browser, SoftwareAuthenticator(aaguid=google, backup_eligible=True, backed_up=True), "ben")
    [passkey] = (await account(browser))["passkeys"]
    assert passkey["provider"]["known"] is True
    assert "Google" in passkey["name"]
    assert passkey["synced"] is True
    assert (passkey["provider"]["iconLight"] or "").startswith("data:image/")


async def test_another_users_passkey_cannot_be_renamed_or_removed(server: Server) -> None:
    async with server.client() as alice, server.client() as mallory:
        await sign_up(alice, SoftwareAuthenticator(), "alice")
        await add_passkey(alice, SoftwareAuthenticator())
        victim = (await account(alice))["passkeys"][0]["id"]
        await sign_up(mallory, SoftwareAuthenticator(), "mallory")
        before = server.snapshot()
        error(await mallory.patch(f"/auth/passkeys/{victim}", json={"nickname": "mine"}), 401, "unknown_credential")
        error(await mallory.delete(f"/auth/passkeys/{victim}"), 401, "unknown_credential")
        error(await mallory.delete("/auth/passkeys/not-base64!"), 401, "unknown_credential")
        assert server.snapshot() == before


async def test_removal_needs_a_recent_passkey(server: Server, browser: httpx.AsyncClient) -> None:
    phone, laptop = SoftwareAuthenticator(), SoftwareAuthenticator()
    await sign_up(browser, phone, "cleo")
    assert (await add_passkey(browser, laptop)).status_code == 200
    second = (await account(browser))["passkeys"][1]["id"]
    server.clock.advance(minutes=5, seconds=1)
    before = server.snapshot()
    error(await browser.delete(f"/auth/passkeys/{second}"), 403, "step_up_required")
    error(await add_passkey(browser, SoftwareAuthenticator()), 403, "step_up_required")
    assert server.snapshot() == before
    await step_up(browser, phone)
    assert (await browser.delete(f"/auth/passkeys/{second}")).status_code == 200
    assert len((await account(browser))["passkeys"]) == 1
    types = [e["type"] for e in (await browser.get("/auth/events")).json()["events"]]
    assert types[0] == "passkey.remove" and "step_up" in types


async def test_step_up_is_only_for_ones_own_passkeys(server: Server) -> None:
    async with server.client() as alice, server.client() as bob:
        alice_key = SoftwareAuthenticator()
        await sign_up(alice, alice_key, "alice2")
        bob_key = SoftwareAuthenticator()
        await sign_up(bob, bob_key, "bob2")
        options = await login_options(alice, stepUp=True)
        assert {c["id"] for c in options["allowCredentials"]} == {p["id"] for p in (await account(alice))["passkeys"]}
        response = bob_key.get(options, origin=ORIGIN, credential_id=bob_key.credentials[0].credential_id)
        error(await alice.post("/auth/passkey/login/complete", json=response), 401, "unknown_credential")
        assert (await account(alice))["user"]["username"] == "alice2"


async def test_the_last_passkey_stays_unless_there_is_another_way_in(browser: httpx.AsyncClient) -> None:
    await sign_up(browser, SoftwareAuthenticator(), "dan")
    [only] = (await account(browser))["passkeys"]
    response = await browser.delete(f"/auth/passkeys/{only['id']}")
    error(response, 409, "last_passkey")
    assert "backup codes" in response.json()["message"]
    assert len((await browser.post("/auth/recovery/codes")).json()["codes"]) == 10
    assert (await browser.delete(f"/auth/passkeys/{only['id']}")).status_code == 200
    assert (await account(browser))["passkeys"] == []


async def test_backup_codes_recover_an_account(mail_server: Server, smtp: SmtpServer) -> None:
    server = mail_server
    async with server.client() as browser:
        lost = SoftwareAuthenticator()
        await sign_up(browser, lost, "eve")
        await set_verified_email(browser, smtp, "eve@example.com")
        codes = (await browser.post("/auth/recovery/codes")).json()["codes"]
        assert len(set(codes)) == 10 and all(len(c) == 11 for c in codes)
        assert (await account(browser))["backupCodesRemaining"] == 10
        stored = server.rows("SELECT code_hash FROM backup_codes")
        assert all(c.replace("-", "").encode() not in h for c in codes for (h,) in stored)  # hashed at rest
        await browser.post("/auth/logout")
    async with server.client() as new_browser:
        signed_in = await new_browser.post("/auth/recovery/codes/sign-in", json={"username": "EVE", "code": codes[3]})
        assert signed_in.status_code == 200 and signed_in.json()["recovery"] is True
        state = await account(new_browser)
        assert state["session"]["kind"] == "recovery" and state["backupCodesRemaining"] == 9
        only = state["passkeys"][0]["id"]
        error(await new_browser.delete(f"/auth/passkeys/{only}"), 403, "step_up_required")
        error(await new_browser.post("/auth/recovery/codes"), 403, "step_up_required")
        # Straight to a new passkey, no step-up needed; then the session is a normal one.
        assert (await add_passkey(new_browser, SoftwareAuthenticator())).status_code == 200
        assert (await account(new_browser))["session"]["kind"] == "passkey"
        assert (await new_browser.delete(f"/auth/passkeys/{only}")).status_code == 200
    async with server.client() as again:
        reused = await again.post("/auth/recovery/codes/sign-in", json={"username": "eve", "code": codes[3]})
        error(reused, 400, "invalid_code")
    # The confirmation, then three notifications: queued in order, delivered by the worker.
    subjects = [m["Subject"] for m in await smtp.mailbox.received("eve@example.com", count=4)]
    assert any("backup code was used" in s for s in subjects)
    assert any("passkey was added" in s for s in subjects)
    assert any("passkey was removed" in s for s in subjects)


async def test_regenerating_codes_invalidates_the_old_set(server: Server, browser: httpx.AsyncClient) -> None:
    await sign_up(browser, SoftwareAuthenticator(), "fay")
    old = (await browser.post("/auth/recovery/codes")).json()["codes"]
    new = (await browser.post("/auth/recovery/codes")).json()["codes"]
    assert not set(old) & set(new)
    await browser.post("/auth/logout")
    error(
        await browser.post("/auth/recovery/codes/sign-in", json={"username": "fay", "code": old[0]}),
        400,
        "invalid_code",
    )
    ok = await browser.post("/auth/recovery/codes/sign-in", json={"username": "fay", "code": new[0].upper()})
    assert ok.status_code == 200  # typed in capitals, still the code


async def test_wrong_codes_and_unknown_users_look_alike_and_are_rate_limited(server: Server) -> None:
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "gus")
        await browser.post("/auth/recovery/codes")
        await browser.post("/auth/logout")
        before = server.snapshot()
        unknown = await browser.post("/auth/recovery/codes/sign-in", json={"username": "nobody", "code": "aaaaa-aaaaa"})
        wrong = await browser.post("/auth/recovery/codes/sign-in", json={"username": "gus", "code": "aaaaa-aaaaa"})
        assert unknown.json() == wrong.json() and unknown.status_code == wrong.status_code == 400
        statuses = [
            (await browser.post("/auth/recovery/codes/sign-in", json={"username": "gus", "code": "bbbbb-bbbbb"}))
            for _ in range(5)
        ]
        assert statuses[-1].status_code == 429 and statuses[-1].json()["error"] == "rate_limited"
        assert int(statuses[-1].headers["retry-after"]) > 0
        assert server.snapshot() == before


async def test_email_verification_links_work_once(mail_server: Server, smtp: SmtpServer) -> None:
    async with mail_server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "hal")
        assert (await browser.post("/auth/email", json={"email": "hal@example.com"})).status_code == 202
        state = await account(browser)
        assert state["email"] == "hal@example.com" and state["emailVerified"] is False
        token = (await smtp.mailbox.newest_link("hal@example.com", "/email/verify")).split("token=")[1]
        assert (await browser.post("/auth/email/verify", json={"token": token})).status_code == 200
        assert (await account(browser))["emailVerified"] is True
        error(await browser.post("/auth/email/verify", json={"token": token}), 400, "invalid_link")
        error(await browser.post("/auth/email", json={"email": "not an address"}), 400, "invalid_request")


async def test_expired_links_are_refused(mail_server: Server, smtp: SmtpServer) -> None:
    async with mail_server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "ida")
        await browser.post("/auth/email", json={"email": "ida@example.com"})
        token = (await smtp.mailbox.newest_link("ida@example.com", "/email/verify")).split("token=")[1]
        mail_server.clock.advance(hours=24, seconds=1)
        error(await browser.post("/auth/email/verify", json={"token": token}), 400, "invalid_link")


async def test_email_sign_in_links(mail_server: Server, smtp: SmtpServer) -> None:
    server = mail_server
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "jan")
        await set_verified_email(browser, smtp, "jan@example.com")
        await browser.post("/auth/logout")
    async with server.client() as asker, server.client() as stranger:
        known = await asker.post("/auth/recovery/email", json={"email": "JAN@example.com"})
        unknown = await stranger.post("/auth/recovery/email", json={"email": "who@example.com"})
        # The same answer either way: nothing tells whether an address has an account.
        assert known.status_code == unknown.status_code == 202 and known.json() == unknown.json()
        assert ("passgate_ceremony" in known.headers["set-cookie"]) == (
            "passgate_ceremony" in unknown.headers["set-cookie"]
        )
        await smtp.mailbox.received("jan@example.com", count=2)
        token = (await smtp.mailbox.newest_link("jan@example.com", "/recover/email")).split("token=")[1]
        assert smtp.mailbox.to("who@example.com") == []
        # Bound to the browser that asked: elsewhere it fails.
        error(await stranger.post("/auth/recovery/email/complete", json={"token": token}), 403, "link_other_browser")
        assert (await asker.post("/auth/recovery/email", json={"email": "jan@example.com"})).status_code == 202
        token = (await smtp.mailbox.newest_link("jan@example.com", "/recover/email", count=3)).split("token=")[1]
        used = await asker.post("/auth/recovery/email/complete", json={"token": token})
        assert used.status_code == 200 and used.json()["recovery"] is True
        assert (await account(asker))["session"]["kind"] == "recovery"
        # Each link sent is in the account's activity; the requests themselves name nobody.
        types = [e["type"] for e in (await asker.get("/auth/events")).json()["events"]]
        assert types.count("sign_in_link.sent") == 2 and "sign_in_link.request" not in types
        error(await asker.post("/auth/recovery/email/complete", json={"token": token}), 400, "invalid_link")
        assert (await asker.post("/auth/recovery/email", json={"email": "jan@example.com"})).status_code == 202
        late = (await smtp.mailbox.newest_link("jan@example.com", "/recover/email", count=5)).split("token=")[1]
        server.clock.advance(minutes=15, seconds=1)
        error(await asker.post("/auth/recovery/email/complete", json={"token": late}), 400, "invalid_link")
    assert any(
        "email sign-in link was used" in m["Subject"] for m in await smtp.mailbox.received("jan@example.com", count=5)
    )


async def test_sign_in_links_are_rate_limited(mail_server: Server, smtp: SmtpServer) -> None:
    async with mail_server.client() as browser:
        answers = [await browser.post("/auth/recovery/email", json={"email": "kim@example.com"}) for _ in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]


async def test_signal_api_details(browser: httpx.AsyncClient) -> None:
    authenticator = SoftwareAuthenticator()
    result = await sign_up(browser, authenticator, "lou")
    details = (await browser.get("/auth/passkeys/signal")).json()
    assert details["rpId"] == "localhost"
    assert details["allAcceptedCredentialIds"] == [result["credentialId"]]
    assert b64url_decode(details["userId"]) == authenticator.credentials[0].user_handle
    assert details["name"] == "lou"
    renamed = await browser.patch("/auth/account", json={"displayName": "Louise"})
    assert renamed.json()["user"]["displayName"] == "Louise"
    assert (await browser.get("/auth/passkeys/signal")).json()["displayName"] == "Louise"


async def test_the_second_passkey_nudge(browser: httpx.AsyncClient) -> None:
    await sign_up(browser, SoftwareAuthenticator(), "max")
    assert (await account(browser))["suggestSecondPasskey"] is True
    assert (await browser.post("/auth/account/nudge/dismiss")).status_code == 200
    assert (await account(browser))["suggestSecondPasskey"] is False


async def test_the_events_command(server: Server, browser: httpx.AsyncClient) -> None:
    await sign_up(browser, SoftwareAuthenticator(), "ned")
    await browser.post("/auth/passkey/register/complete", json={"id": "AA", "type": "public-key", "response": {}})
    command = [sys.executable, "-m", "passgate", "events", "--database-url", f"sqlite:///{server.database}"]
    lines = subprocess.run([*command, "--json"], check=True, capture_output=True, text=True).stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["type"] for e in events][-1] == "passkey.register"
    assert events[-1]["user"] == "ned" and events[-1]["outcome"] == "success"
    failures = subprocess.run(
        [*command, "--json", "--outcome", "failure"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert [json.loads(line)["reason"] for line in failures] == ["malformed_response"]
    table = subprocess.run([*command, "--user", "ned"], check=True, capture_output=True, text=True).stdout
    assert table.splitlines()[0].split()[:3] == ["TIME", "TYPE", "OUTCOME"] and "passkey.register" in table
