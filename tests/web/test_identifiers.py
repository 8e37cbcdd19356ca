"""Usernames and email addresses: one normalized form for look-ups, limits and decoys; an address has one owner;
links are used up only by the browser they were sent for."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from passgate.config import load_settings
from passgate.core.identifiers import normalize_identifier
from passgate.store.migrate import upgrade
from passgate.testing import SoftwareAuthenticator
from passgate.web import create_app
from tests.mailbox import SmtpServer, text_of
from tests.services import PostgresServer
from tests.web.conftest import ORIGIN, Clock, Server, login_options, sign_up
from tests.web.test_account_api import account, error, set_verified_email

FULLWIDTH = {chr(code): chr(code + 0xFEE0) for code in range(0x21, 0x7F)}
LONG_ONCE_NORMALIZED = "\ufdfa" * 4  # 4 characters as typed, 72 in NFKC


def fullwidth(text: str) -> str:
    return "".join(FULLWIDTH.get(ch, ch) for ch in text)


@pytest.fixture
def mail_server(make_server: Callable[..., Server], smtp: SmtpServer) -> Server:
    return make_server(**smtp.settings)


_databases = itertools.count()


@pytest.fixture
async def postgres_client(postgres: PostgresServer) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on a Passgate app whose storage is a migrated PostgreSQL database."""
    url = postgres.create_database(f"identifiers_{next(_databases)}")
    upgrade(url)
    settings = load_settings({"database_url": url, "rp_id": "localhost", "origins": [ORIGIN], "secret_key": "test"})
    app = create_app(settings, clock=Clock())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=ORIGIN, headers={"Origin": ORIGIN}
    ) as client:
        yield client
    await app.state.close_storage()


def test_fullwidth_spellings_are_one_identifier() -> None:
    assert fullwidth("Gus") == "\uff27\uff55\uff53"
    assert normalize_identifier(fullwidth("Gus")) == normalize_identifier(" GUS ") == "gus"
    assert normalize_identifier("Straße@Example.com") == normalize_identifier("STRASSE@example.com")


async def test_a_fullwidth_spelling_after_five_wrong_codes_is_rate_limited(server: Server) -> None:
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "gus")
        await browser.post("/auth/recovery/codes")
        await browser.post("/auth/logout")
        for _ in range(5):
            wrong = await browser.post("/auth/recovery/codes/sign-in", json={"username": "gus", "code": "aaaaa-aaaaa"})
            error(wrong, 400, "invalid_code")
        sixth = await browser.post(
            "/auth/recovery/codes/sign-in", json={"username": fullwidth("gus"), "code": "aaaaa-aaaaa"}
        )
        error(sixth, 429, "rate_limited")


async def test_login_begin_counts_every_spelling_of_a_name_together(make_server: Callable[..., Server]) -> None:
    server = make_server(rate_limit_per_account=3)
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "gus")
        for spelling in ("gus", "Gus", "GUS"):
            assert (await browser.post("/auth/passkey/login/begin", json={"username": spelling})).status_code == 200
        error(await browser.post("/auth/passkey/login/begin", json={"username": fullwidth("Gus")}), 429, "rate_limited")
        # A name without an account is counted the same way.
        for spelling in ("nobody", "NOBODY", "Nobody"):
            assert (await browser.post("/auth/passkey/login/begin", json={"username": spelling})).status_code == 200
        error(
            await browser.post("/auth/passkey/login/begin", json={"username": fullwidth("nobody")}), 429, "rate_limited"
        )


async def test_every_spelling_of_an_unknown_name_gets_the_same_decoys(browser: httpx.AsyncClient) -> None:
    plain = await login_options(browser, username="nobody")
    wide = await login_options(browser, username=fullwidth("NoBody"))
    assert plain["allowCredentials"] == wide["allowCredentials"]


async def test_a_username_too_long_once_normalized_is_refused(browser: httpx.AsyncClient) -> None:
    await check_long_username_refused(browser)


async def test_a_username_too_long_once_normalized_is_refused_on_postgresql(
    postgres_client: httpx.AsyncClient,
) -> None:
    await check_long_username_refused(postgres_client)
    # Just under the limit once normalized (54 characters): a whole sign-up works, and sign-in finds it.
    await sign_up(postgres_client, SoftwareAuthenticator(), "\ufdfa" * 3)
    options = await login_options(postgres_client, username="\ufdfa" * 3)
    assert len(options["allowCredentials"]) == 1


async def check_long_username_refused(client: httpx.AsyncClient) -> None:
    requests: list[tuple[str, dict[str, Any]]] = [
        ("/auth/passkey/register/begin", {"username": LONG_ONCE_NORMALIZED, "displayName": "x"}),
        ("/auth/passkey/login/begin", {"username": LONG_ONCE_NORMALIZED}),
        ("/auth/recovery/codes/sign-in", {"username": LONG_ONCE_NORMALIZED, "code": "aaaaa-aaaaa"}),
    ]
    for path, body in requests:
        response = await client.post(path, json=body)
        error(response, 400, "invalid_request")
        assert "username" in response.json()["message"], path


async def test_an_address_too_long_once_normalized_is_refused(browser: httpx.AsyncClient) -> None:
    address = "a@" + "\u3392" * 240 + ".com"  # 246 characters as typed; each "MHz" sign is 3 once normalized
    await sign_up(browser, SoftwareAuthenticator(), "wendy")
    for path in ("/auth/email", "/auth/recovery/email"):
        response = await browser.post(path, json={"email": address})
        error(response, 400, "invalid_request")
        assert "email" in response.json()["message"], path
    assert (await account(browser))["email"] is None


async def test_a_second_account_cannot_verify_an_address_another_verified(
    mail_server: Server, smtp: SmtpServer
) -> None:
    server = mail_server
    async with server.client() as owner, server.client() as latecomer:
        await sign_up(owner, SoftwareAuthenticator(), "olga")
        await set_verified_email(owner, smtp, "olga@example.com")
        await sign_up(latecomer, SoftwareAuthenticator(), "lena")
        assert (await latecomer.post("/auth/email", json={"email": "OLGA@Example.com"})).status_code == 202
        token = (await smtp.mailbox.newest_link("OLGA@Example.com", "/email/verify")).split("token=")[1]
        before = server.rows("SELECT id, email, email_verified_at, email_normalized FROM users ORDER BY id")
        error(await latecomer.post("/auth/email/verify", json={"token": token}), 409, "email_taken")
        assert server.rows("SELECT id, email, email_verified_at, email_normalized FROM users ORDER BY id") == before
        state = await account(latecomer)
        assert state["email"] == "OLGA@Example.com" and state["emailVerified"] is False
        # The address is no way back in for the latecomer: its only passkey stays.
        [only] = state["passkeys"]
        error(await latecomer.delete(f"/auth/passkeys/{only['id']}"), 409, "last_passkey")
        events = (await latecomer.get("/auth/events")).json()["events"]
        assert any(e["type"] == "email.verify" and e["reason"] == "email_taken" for e in events)


async def test_an_address_that_does_not_route_to_the_account_is_no_way_in(server: Server) -> None:
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "rita")
        # Marked verified, but sign-in links for it are not looked up to this account (no normalized owner).
        server.rows(
            "UPDATE users SET email = 'rita@example.com', email_verified_at = '2026-01-01 11:00:00' WHERE username = ?",
            "rita",
        )
        state = await account(browser)
        assert state["emailVerified"] is True
        [only] = state["passkeys"]
        error(await browser.delete(f"/auth/passkeys/{only['id']}"), 409, "last_passkey")
        assert len((await account(browser))["passkeys"]) == 1


async def test_a_non_ascii_address_receives_sign_in_links(mail_server: Server, smtp: SmtpServer) -> None:
    async with mail_server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "sven")
        await set_verified_email(browser, smtp, "Straße@example.com")
        await browser.post("/auth/logout")
        for spelling in ("Straße@example.com", "strasse@EXAMPLE.com"):
            assert (await browser.post("/auth/recovery/email", json={"email": spelling})).status_code == 202
        links = (await smtp.mailbox.received("Straße@example.com", count=3))[1:]
        assert all("/recover/email?token=" in text_of(m) for m in links)
        token = (await smtp.mailbox.newest_link("Straße@example.com", "/recover/email", count=3)).split("token=")[1]
        used = await browser.post("/auth/recovery/email/complete", json={"token": token})
        assert used.status_code == 200 and used.json()["user"]["username"] == "sven"


async def test_a_wrong_code_for_an_existing_account_is_in_its_activity(server: Server) -> None:
    async with server.client() as owner, server.client() as attacker:
        await sign_up(owner, SoftwareAuthenticator(), "tess")
        await owner.post("/auth/recovery/codes")
        same_id = {"X-Request-Id": "probe"}  # echoed back: else each answer carries a fresh random one
        unknown = await attacker.post(
            "/auth/recovery/codes/sign-in", json={"username": "nobody", "code": "aaaaa-aaaaa"}, headers=same_id
        )
        wrong = await attacker.post(
            "/auth/recovery/codes/sign-in", json={"username": "TESS", "code": "aaaaa-aaaaa"}, headers=same_id
        )
        # The attacker learns nothing: the same status, headers and bytes.
        assert (wrong.status_code, wrong.content) == (unknown.status_code, unknown.content)
        assert sorted(wrong.headers.items()) == sorted(unknown.headers.items())
        [failure] = [
            e for e in (await owner.get("/auth/events")).json()["events"] if e["type"] == "sign_in.backup_code"
        ]
        assert failure["outcome"] == "failure" and failure["reason"] == "invalid_code"
        user_id = (await account(owner))["user"]["id"]
        recorded = server.rows("SELECT user_id FROM events WHERE type = 'sign_in.backup_code' ORDER BY id")
        assert recorded == [(None,), (user_id,)]  # the unknown name's attempt belongs to nobody


async def test_a_link_opened_in_another_browser_still_works_in_the_one_that_asked(
    mail_server: Server, smtp: SmtpServer
) -> None:
    server = mail_server
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "uma")
        await set_verified_email(browser, smtp, "uma@example.com")
        await browser.post("/auth/logout")
    async with server.client() as asker, server.client() as other:
        assert (await asker.post("/auth/recovery/email", json={"email": "uma@example.com"})).status_code == 202
        token = (await smtp.mailbox.newest_link("uma@example.com", "/recover/email", count=2)).split("token=")[1]
        error(await other.post("/auth/recovery/email/complete", json={"token": token}), 403, "link_other_browser")
        # Nor does presenting it as another kind of link use it up.
        error(await other.post("/auth/email/verify", json={"token": token}), 400, "invalid_link")
        error(await asker.post("/auth/email/verify", json={"token": token}), 400, "invalid_link")
        used = await asker.post("/auth/recovery/email/complete", json={"token": token})
        assert used.status_code == 200 and used.json()["recovery"] is True
        error(await asker.post("/auth/recovery/email/complete", json={"token": token}), 400, "invalid_link")
        error(await other.post("/auth/recovery/email/complete", json={"token": token}), 400, "invalid_link")


def shape(options: dict[str, Any]) -> tuple[Any, ...]:
    """What an answer looks like, values aside: its keys and, per listed passkey, its keys and value types."""
    listed = options["allowCredentials"]
    return sorted(options), {tuple(sorted((key, type(value).__name__) for key, value in c.items())) for c in listed}


async def test_decoys_look_like_real_answers(make_server: Callable[..., Server]) -> None:
    server = make_server(secret_key="a fixed key, so the names below always draw the same decoys")
    async with server.client() as browser:
        phone = SoftwareAuthenticator(transports=("hybrid", "internal"))
        key = SoftwareAuthenticator(transports=("nfc", "usb"), attachment="cross-platform")
        await sign_up(browser, phone, "vera")
        await step_up_and_add(browser, phone, key)
        await browser.post("/auth/logout")
        real = await login_options(browser, username="vera")
        assert [c["transports"] for c in real["allowCredentials"]] == [["hybrid", "internal"], ["nfc", "usb"]]
        answers = [await login_options(browser, username=f"nobody{n}") for n in range(40)]
    for decoy in answers:
        assert shape(decoy) == shape(real)
        for listed in decoy["allowCredentials"]:
            assert listed["type"] == "public-key" and listed["transports"] in (
                ["hybrid", "internal"],
                ["internal"],
                ["usb"],
                ["nfc", "usb"],
                ["ble", "nfc", "usb"],
            )
    assert {len(a["allowCredentials"]) for a in answers} == {1, 2, 3}
    assert len({tuple(c["id"] for c in a["allowCredentials"]) for a in answers}) == len(answers)


async def step_up_and_add(
    browser: httpx.AsyncClient, signed_in_with: SoftwareAuthenticator, new: SoftwareAuthenticator
) -> None:
    options = await login_options(browser, stepUp=True)
    confirmed = await browser.post("/auth/passkey/login/complete", json=signed_in_with.get(options, origin=ORIGIN))
    assert confirmed.status_code == 200, confirmed.text
    begin = await browser.post("/auth/passkey/register/begin", json={})
    added = await browser.post("/auth/passkey/register/complete", json=new.create(begin.json(), origin=ORIGIN))
    assert added.status_code == 200, added.text


async def test_one_address_spelled_two_ways_shares_its_limit(make_server: Callable[..., Server]) -> None:
    server = make_server(rate_limit_per_ip=2)

    def from_ip(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=server.app, client=(ip, 50000))
        return httpx.AsyncClient(transport=transport, base_url=ORIGIN, headers={"Origin": ORIGIN})

    async with from_ip("2001:DB8::1") as upper, from_ip("2001:db8:0:0::1") as expanded:
        assert (await upper.post("/auth/passkey/login/begin")).status_code == 200
        assert (await expanded.post("/auth/passkey/login/begin")).status_code == 200
        error(await upper.post("/auth/passkey/login/begin"), 429, "rate_limited")
