"""Mail through the queue: answers before delivery, retries, durability; limits and content of verification mail."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from passgate.testing import SoftwareAuthenticator
from tests.mailbox import SmtpServer
from tests.web.conftest import ORIGIN, Server, sign_up


async def eventually(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait, letting the server's worker run, until `condition()` holds."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not hold in time")


def error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code


async def verify(client: httpx.AsyncClient, smtp: SmtpServer, address: str) -> None:
    token = (await smtp.mailbox.newest_link(address, "/email/verify")).split("token=")[1]
    assert (await client.post("/auth/email/verify", json={"token": token})).status_code == 200


async def test_requests_are_answered_before_the_mail_server_has_the_message(
    make_server: Callable[..., Server], smtp: SmtpServer
) -> None:
    smtp.mailbox.delay = 1.5  # a slow relay: the old synchronous send made every known address this much slower
    server = make_server(**smtp.settings)
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "amy")
        assert (await browser.post("/auth/email", json={"email": "amy@example.com"})).status_code == 202
        assert smtp.mailbox.to("amy@example.com") == []
        await verify(browser, smtp, "amy@example.com")
    async with server.client() as asker:
        known = await asker.post("/auth/recovery/email", json={"email": "amy@example.com"})
        assert known.status_code == 202
        assert len(smtp.mailbox.to("amy@example.com")) == 1  # answered; the sign-in link is not there yet
        assert await smtp.mailbox.newest_link("amy@example.com", "/recover/email", count=2)


async def test_mail_the_server_refused_is_delivered_by_a_retry(
    make_server: Callable[..., Server], smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp.mailbox.refuse = 1
    server = make_server(**smtp.settings)
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "bo")
        with caplog.at_level(logging.WARNING, logger="passgate.mail"):
            assert (await browser.post("/auth/email", json={"email": "bo@example.com"})).status_code == 202
            await eventually(lambda: server.rows("SELECT 1 FROM mail_outbox WHERE last_error IS NOT NULL"))
        [(attempts, status, last_error)] = server.rows("SELECT attempts, status, last_error FROM mail_outbox")
        assert (attempts, status) == (1, "queued") and "451" in last_error
        assert smtp.mailbox.to("bo@example.com") == []
        server.clock.advance(seconds=31)  # past the first retry's wait
        server.app.state.ctx.mail_ready.set()  # the next poll, now rather than in a few seconds
        await verify(browser, smtp, "bo@example.com")
    assert server.rows("SELECT count(*) FROM mail_outbox") == [(0,)]
    logged = caplog.text
    assert "retrying in 30 s" in logged and "verify?token" not in logged and "Someone asked" not in logged


async def test_mail_queued_by_a_process_that_stopped_is_sent_after_the_restart(
    make_server: Callable[..., Server], smtp: SmtpServer, tmp_path: Path
) -> None:
    node = tmp_path / "node"
    stopped = make_server(directory=node, lifespan=False, secret_key="the same key", **smtp.settings)
    async with stopped.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "cy")
        assert (await browser.post("/auth/email", json={"email": "cy@example.com"})).status_code == 202
    await stopped.stop()  # before its worker sent anything
    assert smtp.mailbox.to("cy@example.com") == []
    [(recipient, status, body)] = stopped.rows("SELECT recipient, status, body FROM mail_outbox")
    assert (recipient, status) == ("cy@example.com", "queued")
    restarted = make_server(directory=node, secret_key="the same key", **smtp.settings)
    async with restarted.client() as browser:
        link = await smtp.mailbox.newest_link("cy@example.com", "/email/verify")
        assert (await browser.post("/auth/email/verify", json={"token": link.split("token=")[1]})).status_code == 200
    assert link.split("token=")[1].encode() not in body and b"/email/verify" not in body  # sealed at rest


async def test_a_node_with_another_secret_key_leaves_the_mail_to_one_that_can_read_it(
    make_server: Callable[..., Server], smtp: SmtpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = tmp_path / "node"
    stopped = make_server(directory=node, lifespan=False, secret_key="right", **smtp.settings)
    async with stopped.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "di")
        assert (await browser.post("/auth/email", json={"email": "di@example.com"})).status_code == 202
    await stopped.stop()
    wrong = make_server(directory=node, secret_key="wrong", **smtp.settings)
    with caplog.at_level(logging.WARNING, logger="passgate.mail"):
        async with wrong.client():
            await eventually(lambda: wrong.rows("SELECT attempts FROM mail_outbox") == [(1,)])
            await eventually(lambda: wrong.rows("SELECT last_error FROM mail_outbox") != [(None,)])
    await wrong.stop()
    assert "sealed under another secret_key" in caplog.text
    assert wrong.rows("SELECT status, last_error FROM mail_outbox") == [("queued", "sealed under another secret_key")]
    right = make_server(directory=node, secret_key="right", **smtp.settings)
    right.clock.advance(seconds=31)
    async with right.client() as browser:
        await verify(browser, smtp, "di@example.com")


async def test_mail_refused_at_every_attempt_is_kept_as_failed(
    mail_server: Server, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp.mailbox.refuse = 1000
    async with mail_server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "ev")
        with caplog.at_level(logging.WARNING, logger="passgate.mail"):
            assert (await browser.post("/auth/email", json={"email": "ev@example.com"})).status_code == 202
            for attempt in range(1, 10):
                await eventually(lambda n=attempt: smtp.mailbox.refused == n)
                await eventually(lambda: mail_server.rows("SELECT claimed_by FROM mail_outbox") == [(None,)])
                mail_server.clock.advance(hours=9)  # past the longest wait between attempts
                mail_server.app.state.ctx.mail_ready.set()
    [(attempts, status)] = mail_server.rows("SELECT attempts, status FROM mail_outbox")
    assert (attempts, status) == (9, "failed")
    assert "failed 9 times, kept as failed" in caplog.text and "verify?token" not in caplog.text
    assert smtp.mailbox.refused == 9 and smtp.mailbox.to("ev@example.com") == []


async def test_passgate_mail_flush_sends_what_a_stopped_node_queued(
    make_server: Callable[..., Server], smtp: SmtpServer, tmp_path: Path
) -> None:
    stopped = make_server(lifespan=False, secret_key="the key", **smtp.settings)
    async with stopped.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "fi")
        assert (await browser.post("/auth/email", json={"email": "fi@example.com"})).status_code == 202
    await stopped.stop()
    command = [sys.executable, "-m", "passgate", "mail"]
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PASSGATE_")},
        "PASSGATE_DATABASE_URL": f"sqlite:///{stopped.database}",
        **{f"PASSGATE_{name.upper()}": str(value) for name, value in smtp.settings.items()},
    }

    def run(action: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, action], capture_output=True, text=True, env={**environment, **extra}, check=False
        )

    listed = run("list")
    assert listed.returncode == 0 and "fi@example.com" in listed.stdout and "attempts 0" in listed.stdout
    refused = run("flush")  # without the server's secret key, nothing could be read
    assert refused.returncode == 2 and "secret_key" in refused.stderr
    flushed = run("flush", PASSGATE_SECRET_KEY="the key")
    assert flushed.returncode == 0 and "1 sent" in flushed.stdout, flushed.stderr
    assert len(smtp.mailbox.to("fi@example.com")) == 1
    assert stopped.rows("SELECT count(*) FROM mail_outbox") == [(0,)]


async def test_verification_mail_is_limited_per_account(mail_server: Server, smtp: SmtpServer) -> None:
    async with mail_server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "ed")
        for number in range(5):
            assert (await browser.post("/auth/email", json={"email": f"ed{number}@example.com"})).status_code == 202
        error(await browser.post("/auth/email", json={"email": "stranger@example.com"}), 429, "rate_limited")
        assert (await browser.get("/auth/account")).json()["email"] == "ed4@example.com"  # the refusal changed nothing
    assert mail_server.rows("SELECT count(*) FROM email_tokens WHERE email = 'stranger@example.com'") == [(0,)]
    assert mail_server.rows("SELECT count(*) FROM mail_outbox WHERE recipient = 'stranger@example.com'") == [(0,)]


async def test_verification_mail_is_limited_per_address_of_the_requester(mail_server: Server) -> None:
    # Three accounts from one address: the third is refused although it has not sent anything yet.
    for name in ("fay", "gus"):
        async with mail_server.client() as browser:
            await sign_up(browser, SoftwareAuthenticator(), name)
            for number in range(5):
                answer = await browser.post("/auth/email", json={"email": f"{name}{number}@example.com"})
                assert answer.status_code == 202
    async with mail_server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "hum")
        error(await browser.post("/auth/email", json={"email": "stranger@example.com"}), 429, "rate_limited")
        assert (await browser.get("/auth/account")).json()["email"] is None


async def test_mail_to_an_unverified_address_carries_nothing_the_requester_chose(
    mail_server: Server, smtp: SmtpServer
) -> None:
    chosen_name, chosen_display = "claim-your-prize", "Win 1000 EUR at evil.example now"
    async with mail_server.client() as browser:
        begin = await browser.post(
            "/auth/passkey/register/begin", json={"username": chosen_name, "displayName": chosen_display}
        )
        options = begin.json()
        created = await browser.post(
            "/auth/passkey/register/complete", json=SoftwareAuthenticator().create(options, origin=ORIGIN)
        )
        assert created.status_code == 200
        assert (await browser.post("/auth/email", json={"email": "victim@example.com"})).status_code == 202
        [message] = await smtp.mailbox.received("victim@example.com")
    text = message.get_content() + message["Subject"] + message["From"]
    assert "/email/verify?token=" in text
    for chosen in (chosen_name, chosen_display, "evil.example", "prize"):
        assert chosen.casefold() not in text.casefold()


@pytest.fixture
def mail_server(make_server: Callable[..., Server], smtp: SmtpServer) -> Server:
    return make_server(**smtp.settings)
